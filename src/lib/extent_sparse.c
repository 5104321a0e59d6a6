/* extent_sparse.c - hosted sparse extents (KDMV): monolithicSparse,
 * twoGbMaxExtentSparse pieces and delta links, plus reading of
 * streamOptimized (compressed grains, with or without markers, GD in the
 * header or in the footer).
 *
 * Crash safety.  Grain data is written in place at once; grain-table and
 * grain-directory updates are kept in memory and written by flush in this
 * order, each step made durable before the next:
 *   1. grain data (fdatasync)
 *   2. grain tables, primary then redundant (fdatasync)
 *   3. grain directory entries of new tables, primary then redundant (fdatasync)
 * A crash at any point therefore leaves either the old or the new mapping of
 * every grain, never a table that points at unwritten data; the worst case
 * is leaked space at the end of the file.  The unclean-shutdown flag is set
 * (and made durable) before the first write and cleared on clean close.
 *
 * Threads.  Readers (status, read, prefetch, describe) may run at once
 * while nothing writes: the grain-table cache is guarded by a mutex and
 * readers copy the entries they need out of it under that mutex, because
 * another reader may load a different table into the same slot right
 * after; decompressed grains of compressed extents live in a shared
 * grain cache (grain_cache.c).  Writers own the extent alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extent.h"
#include "grain_cache.h"
#include "sparse_header.h"

/* Memory bound of the grain-table cache. */
#define GT_CACHE_BYTES (16u << 20)
/* Memory bound of the decompressed grains kept for a compressed extent. */
#define GRAIN_CACHE_BYTES (16u << 20)
/* DEFLATE output is at most this many times its input (258 bytes per
 * 2-bit code, plus block overhead): a record smaller than grain / ratio
 * cannot be a whole grain. */
#define DEFLATE_MAX_RATIO 1032u

typedef struct gt_slot {
    uint64_t gd_index;
    bool valid;
    bool dirty;
} gt_slot;

typedef struct sparse_priv {
    vk_sparse_header h; /* effective header (footer for streams) */
    bool from_footer;
    uint64_t file_sectors; /* current end of file, in sectors */
    uint64_t num_gdes;
    uint32_t *gd, *rgd; /* directories in memory; rgd NULL without redundancy */
    bool gd_dirty;
    uint32_t gt_bytes, gt_sectors;
    bool zeroed_flag, compressed, markers;

    pthread_mutex_t gt_lock; /* guards slots and gt_mem against concurrent readers */
    bool gt_lock_ok;
    gt_slot *slots;   /* direct-mapped cache: gd_index % n_slots */
    uint32_t *gt_mem; /* n_slots tables of gtes_per_gt entries, allocated
                         when the first table is cached (need_gt_mem) */
    size_t n_slots;
    /* Read-only handles: bit GDI set when the table of directory entry GDI
     * was read and holds only zeros (every grain unallocated).  It is then
     * treated as no table, without a cache slot: the preallocated, empty
     * tables of a large split disk (127 per 4 GiB piece) are read once and
     * cost no memory, so a walk over a 16 TiB chain (info, convert,
     * compare) stays within a few MiB instead of 254 KiB per piece. */
    uint8_t *gt_empty;
    uint8_t *gt_buf; /* one table as read from the file (get_table) */
    size_t n_dirty;

    uint64_t next_alloc;  /* append position (sectors), grain aligned */
    uint64_t first_alloc; /* next_alloc at open: grains past it were written
                             by this handle */
    bool ends_scanned;    /* next_alloc lies past every grain on file (see
                             move_past_grains) */
    /* Grains a zero released (their entry became a zeroed-grain one): once
     * the tables saying so are durable (flush step 2) they are spare, and
     * new grains are written there before the file grows; spare grains at
     * the end of the file are cut off at close.  So a guest that writes
     * and discards the same blocks again and again does not grow the file
     * without bound.  At most MAX_SPARE_GRAINS are remembered; beyond that
     * they stay leaked until a compact. */
    uint32_t *released, *spare; /* grain sectors */
    size_t n_released, cap_released, n_spare, cap_spare;
    bool unclean_written; /* header flag set on disk this session */
    bool data_written;    /* grain data written since the last flush */

    uint8_t *grain_buf;     /* one grain, for partial writes; allocated on
                               first use (see need_grain_buf) */
    vk_grain_cache *gcache; /* compressed extents: decoded grains */
    size_t cbuf_size;       /* compressed extents: largest record read */
} sparse_priv;

/* Every read of the extent's file: OFF is relative to the extent's first
 * byte, which for a member of an archive lies at x->file_base; nothing past
 * the member's end is read (ZFILL: it reads as zeros, else it is short). */
static int file_read(vk_extent *x, bool zfill, void *buf, size_t len, uint64_t off, const char *what,
                     vk_err *e)
{
    if (x->file_bytes) {
        uint64_t end;
        if (!vk_add_ok(off, len, &end) || end > x->file_bytes) {
            if (!zfill)
                return vk_fail(e, VMDKIT_EFORMAT, "%s: %zu bytes at %llu lie past its end (%llu bytes)",
                               what, len, (unsigned long long)off, (unsigned long long)x->file_bytes);
            size_t in = off >= x->file_bytes ? 0 : (size_t)(x->file_bytes - off);
            memset((uint8_t *)buf + in, 0, len - in);
            len = in;
        }
    }
    return zfill ? vk_pread_zfill(x->fd, buf, len, x->file_base + off, what, e)
                 : vk_pread_full(x->fd, buf, len, x->file_base + off, what, e);
}

static uint64_t grain_bytes(const sparse_priv *p) { return p->h.grain_sectors * VK_SECTOR; }

/* The one-grain buffer, made on first use: reading an uncompressed extent
 * never needs it, so a huge grainSize in a small hostile file costs nothing
 * until a grain really has to be held in memory. */
static int need_grain_buf(vk_extent *x, vk_err *e)
{
    sparse_priv *p = x->priv;
    if (p->grain_buf)
        return 0;
    p->grain_buf = malloc((size_t)grain_bytes(p));
    if (!p->grain_buf)
        return vk_fail(e, VMDKIT_ENOMEM, "%s: out of memory for a grain of %llu bytes", x->path,
                       (unsigned long long)grain_bytes(p));
    return 0;
}

/* Do the sector runs [a, a + an) and [b, b + bn) overlap? */
static bool overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
    return an && bn && a < b + bn && b < a + an;
}

/* Would stored data at [first, first + n) sectors, mapped by grain table
 * GDI, lie on metadata: the header, the embedded descriptor, a grain
 * directory, the tables mapping it, or (VMware's layout) anything before
 * the grain directory inside the overhead?  Such an entry is corrupt:
 * reading it would return metadata, writing it would destroy metadata. */
static bool on_metadata(const sparse_priv *p, uint64_t first, uint64_t n, uint64_t gdi)
{
    const vk_sparse_header *h = &p->h;
    uint64_t gd_secs = vk_gd_sectors(p->num_gdes);
    if (first < 1 || (first < h->overhead_sectors && first < h->gd_offset_sectors + 1))
        return true;
    if (h->desc_offset_sectors && overlaps(first, n, h->desc_offset_sectors, h->desc_size_sectors))
        return true;
    if (overlaps(first, n, h->gd_offset_sectors, gd_secs))
        return true;
    if ((h->flags & VK_FLAG_REDUNDANT_GD) && !p->compressed &&
        overlaps(first, n, h->rgd_offset_sectors, gd_secs))
        return true;
    if (p->gd[gdi] && overlaps(first, n, p->gd[gdi], p->gt_sectors))
        return true;
    return p->rgd && p->rgd[gdi] && overlaps(first, n, p->rgd[gdi], p->gt_sectors);
}

/* ---- grain tables ---- */

static uint32_t *slot_table(sparse_priv *p, size_t slot) { return p->gt_mem + slot * p->h.gtes_per_gt; }

static int need_gt_mem(vk_extent *x, vk_err *e)
{
    sparse_priv *p = x->priv;
    if (!p->gt_mem && !(p->gt_mem = vk_malloc(p->n_slots * p->gt_bytes, e)))
        return VMDKIT_ENOMEM;
    return 0;
}

/* Is directory entry GDI's table known to hold only zeros? */
static bool gt_known_empty(const sparse_priv *p, uint64_t gdi)
{
    return p->gt_empty && (p->gt_empty[gdi / 8] >> (gdi % 8) & 1);
}

static int write_table(vk_extent *x, uint64_t sector, const uint32_t *gt, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint8_t *buf = vk_calloc(1, (size_t)p->gt_sectors * VK_SECTOR, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    for (uint32_t i = 0; i < p->h.gtes_per_gt; i++)
        vk_put32(buf + 4 * i, gt[i]);
    int r =
        vk_pwrite_full(x->fd, buf, (size_t)p->gt_sectors * VK_SECTOR, sector * VK_SECTOR, x->path, e);
    free(buf);
    return r;
}

static int write_directory(vk_extent *x, uint64_t sector, const uint32_t *gd, vk_err *e)
{
    sparse_priv *p = x->priv;
    size_t bytes = (size_t)vk_gd_sectors(p->num_gdes) * VK_SECTOR;
    uint8_t *buf = vk_calloc(1, bytes, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    for (uint64_t i = 0; i < p->num_gdes; i++)
        vk_put32(buf + 4 * i, gd[i]);
    int r = vk_pwrite_full(x->fd, buf, bytes, sector * VK_SECTOR, x->path, e);
    free(buf);
    return r;
}

static int sparse_flush(vk_extent *x, vk_err *e);

/* Load the grain table for directory entry GDI into the cache; *gt is NULL
 * when the directory entry is 0 (no table: every grain unallocated). */
static int get_table(vk_extent *x, uint64_t gdi, uint32_t **gt, vk_err *e)
{
    sparse_priv *p = x->priv;
    size_t slot = (size_t)(gdi % p->n_slots);
    gt_slot *s = &p->slots[slot];
    if (s->valid && s->gd_index == gdi) {
        *gt = slot_table(p, slot);
        return 0;
    }
    uint32_t gde = p->gd[gdi];
    if (gde == 0 || gt_known_empty(p, gdi)) {
        *gt = NULL;
        return 0;
    }
    if (s->valid && s->dirty) {
        /* evicting a modified table: write all metadata out in order first */
        int r = sparse_flush(x, e);
        if (r)
            return r;
    }
    uint64_t end;
    if (!vk_add_ok(gde, p->gt_sectors, &end) || end > p->file_sectors)
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: grain directory entry %llu: grain table at sector %u lies past the end of the file",
            x->path, (unsigned long long)gdi, gde);
    if (gde < 1)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: grain directory entry %llu: points into the header",
                       x->path, (unsigned long long)gdi);
    if (!p->gt_buf && !(p->gt_buf = vk_malloc(p->gt_bytes, e)))
        return VMDKIT_ENOMEM;
    uint8_t *buf = p->gt_buf;
    int r = file_read(x, false, buf, p->gt_bytes, (uint64_t)gde * VK_SECTOR, x->path, e);
    if (!r && p->gt_empty && vk_is_zero(buf, p->gt_bytes)) {
        p->gt_empty[gdi / 8] |= (uint8_t)(1u << (gdi % 8));
        *gt = NULL;
        return 0;
    }
    if (!r)
        r = need_gt_mem(x, e);
    if (r)
        return r;
    uint32_t *t = slot_table(p, slot);
    for (uint32_t i = 0; i < p->h.gtes_per_gt; i++)
        t[i] = vk_le32(buf + 4 * i);
    s->valid = true;
    s->dirty = false;
    s->gd_index = gdi;
    *gt = t;
    return 0;
}

/* GTE of grain G (0 when there is no table), copied out of the cache
 * under its lock: safe beside other readers. */
static int get_gte(vk_extent *x, uint64_t g, uint32_t *gte, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint32_t *gt;
    pthread_mutex_lock(&p->gt_lock);
    int r = get_table(x, g / p->h.gtes_per_gt, &gt, e);
    if (!r)
        *gte = gt ? gt[g % p->h.gtes_per_gt] : 0;
    pthread_mutex_unlock(&p->gt_lock);
    return r;
}

enum gte_kind { GTE_UNALLOC, GTE_ZERO, GTE_DATA };

static enum gte_kind classify(const sparse_priv *p, uint32_t gte)
{
    if (gte == 0)
        return GTE_UNALLOC;
    if (gte == VK_GTE_ZEROED && p->zeroed_flag)
        return GTE_ZERO;
    return GTE_DATA;
}

/* ---- status ---- */

/* The status walk, with gt_lock held. */
static int status_locked(vk_extent *x, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors;
    uint64_t per_gt = p->h.gtes_per_gt;
    uint64_t cover = vk_gt_coverage_sectors(&p->h);
    uint64_t pos = sector, end = sector + n;
    uint64_t g_last = vk_div_round_up(end, gs); /* grains [.., g_last) hold the range */
    int kind = -1;
    while (pos < end) {
        uint64_t g = pos / gs;
        uint64_t gdi = g / per_gt;
        if ((p->gd[gdi] == 0 || gt_known_empty(p, gdi)) &&
            !(p->slots[gdi % p->n_slots].valid && p->slots[gdi % p->n_slots].gd_index == gdi)) {
            /* no table: its whole range is unallocated, in one step */
            if (kind >= 0 && kind != GTE_UNALLOC)
                break;
            kind = GTE_UNALLOC;
            pos = vk_min((gdi + 1) * cover, end);
            continue;
        }
        /* look the table up once, then walk its entries while their kind
         * stays the same (a chain asks every link about long runs) */
        uint32_t *gt;
        int r = get_table(x, gdi, &gt, e);
        if (r)
            return r;
        uint64_t g_end = vk_min((gdi + 1) * per_gt, g_last);
        bool changed = false;
        for (; g < g_end; g++) {
            int k = classify(p, gt ? gt[g % per_gt] : 0);
            if (kind >= 0 && k != kind) {
                changed = true;
                break;
            }
            kind = k;
        }
        pos = vk_min(vk_max(g * gs, pos), end);
        if (changed)
            break;
    }
    *alloc = kind == GTE_DATA   ? VMDKIT_ALLOC_DATA
             : kind == GTE_ZERO ? VMDKIT_ALLOC_ZERO
                                : VMDKIT_ALLOC_UNALLOC;
    *run = pos - sector;
    return 0;
}

static int sparse_status(vk_extent *x, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e)
{
    sparse_priv *p = x->priv;
    pthread_mutex_lock(&p->gt_lock);
    int r = status_locked(x, sector, n, alloc, run, e);
    pthread_mutex_unlock(&p->gt_lock);
    return r;
}

/* ---- reads ---- */

/* Decompress grain G, whose record starts at sector WHERE, into OUT (the
 * grain cache's loader: runs in any reading thread, with its own CTX). */
static int inflate_grain(void *opaque, uint64_t g, uint64_t where, uint8_t *out_buf, vk_inflate_ctx *ctx,
                         vk_err *e)
{
    vk_extent *x = opaque;
    sparse_priv *p = x->priv;
    uint32_t sec = (uint32_t)where;
    uint64_t gb = grain_bytes(p);
    uint64_t off = (uint64_t)sec * VK_SECTOR;
    uint64_t file_bytes = p->file_sectors * VK_SECTOR;
    size_t hdr = p->markers ? 12 : 0;
    size_t csize;
    int r;
    if (sec >= p->file_sectors)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: grain %llu: compressed grain at sector %u lies past the end of the file",
                       x->path, (unsigned long long)g, sec);
    if (p->markers) {
        uint8_t m[12];
        if ((r = file_read(x, false, m, sizeof m, off, x->path, e)))
            return r;
        uint64_t lba = vk_le64(m);
        csize = vk_le32(m + 8);
        if (lba != g * p->h.grain_sectors)
            return vk_fail(e, VMDKIT_EFORMAT, "%s: grain marker at sector %u: LBA %llu, expected %llu",
                           x->path, sec, (unsigned long long)lba,
                           (unsigned long long)(g * p->h.grain_sectors));
        if (csize == 0 || csize > ctx->cbuf_size - hdr || off + hdr + csize > file_bytes)
            return vk_fail(e, VMDKIT_EFORMAT,
                           "%s: grain marker at sector %u: compressed size %zu is out of range", x->path,
                           sec, csize);
    } else {
        /* no marker: the zlib stream starts at the grain sector, length unknown */
        csize = (size_t)vk_min(ctx->cbuf_size, file_bytes - off);
    }
    uint64_t in_disk = vk_min(gb, (x->size_sectors - g * p->h.grain_sectors) * VK_SECTOR);
    if (in_disk / DEFLATE_MAX_RATIO > csize)
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: grain %llu at sector %u: %zu compressed bytes cannot hold a grain of %llu bytes",
            x->path, (unsigned long long)g, sec, csize, (unsigned long long)in_disk);
    if ((r = file_read(x, false, ctx->cbuf, csize, off + hdr, x->path, e)))
        return r;
    size_t out = 0;
    size_t in_used = 0;
    enum libdeflate_result res =
        libdeflate_zlib_decompress_ex(ctx->dec, ctx->cbuf, csize, out_buf, (size_t)gb, &in_used, &out);
    if (res == LIBDEFLATE_BAD_DATA || (res != LIBDEFLATE_SUCCESS && res != LIBDEFLATE_SHORT_OUTPUT))
        /* some writers use raw deflate despite the zlib convention */
        res = libdeflate_deflate_decompress_ex(ctx->dec, ctx->cbuf, csize, out_buf, (size_t)gb, &in_used,
                                               &out);
    if ((res != LIBDEFLATE_SUCCESS && res != LIBDEFLATE_SHORT_OUTPUT) || out < in_disk)
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: grain %llu at sector %u: compressed data is corrupt or inflates to %zu bytes, expected %llu",
            x->path, (unsigned long long)g, sec, out, (unsigned long long)in_disk);
    if (out < gb)
        memset(out_buf + out, 0, (size_t)(gb - out));
    return 0;
}

static int sparse_read(vk_extent *x, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors;
    uint8_t *out = buf;
    while (n > 0) {
        uint64_t g = sector / gs, in = sector % gs;
        uint64_t k = vk_min(n, gs - in);
        uint32_t gte;
        int r = get_gte(x, g, &gte, e);
        if (r)
            return r;
        if (classify(p, gte) != GTE_DATA) {
            memset(out, 0, k * VK_SECTOR);
        } else if (p->compressed) {
            if ((r = vk_grain_cache_read(p->gcache, g, gte, (size_t)(in * VK_SECTOR),
                                         (size_t)(k * VK_SECTOR), out, e)))
                return r;
        } else {
            /* merge following grains that are stored contiguously */
            uint64_t first = gte;
            while (k < n) {
                uint32_t next;
                uint64_t ng = (sector + k) / gs;
                if ((r = get_gte(x, ng, &next, e)))
                    return r;
                if (classify(p, next) != GTE_DATA || next != first + (ng - g) * gs)
                    break;
                k = vk_min(n, k + gs);
            }
            if (first >= p->file_sectors)
                return vk_fail(
                    e, VMDKIT_EFORMAT,
                    "%s: grain table entry for grain %llu: sector %llu lies past the end of the file",
                    x->path, (unsigned long long)g, (unsigned long long)first);
            if (on_metadata(p, first, in + k, g / p->h.gtes_per_gt))
                return vk_fail(
                    e, VMDKIT_EFORMAT,
                    "%s: grain table entry for grain %llu: sector %llu lies inside the metadata",
                    x->path, (unsigned long long)g, (unsigned long long)first);
            /* the tail of the last grain may be missing in files cut at the data end */
            if ((r = file_read(x, true, out, k * VK_SECTOR, (first + in) * VK_SECTOR, x->path, e)))
                return r;
        }
        out += k * VK_SECTOR;
        sector += k;
        n -= k;
    }
    return 0;
}

/* ---- writes ---- */

static int mark_unclean(vk_extent *x, vk_err *e)
{
    sparse_priv *p = x->priv;
    if (p->unclean_written)
        return 0;
    uint8_t hdr[512];
    vk_sparse_header h = p->h;
    h.unclean_shutdown = 1;
    vk_sparse_header_encode(&h, hdr);
    int r = vk_pwrite_full(x->fd, hdr, sizeof hdr, 0, x->path, e);
    if (!r)
        r = vk_fdatasync(x->fd, x->path, e);
    if (!r)
        p->unclean_written = true;
    return r;
}

#define MAX_SPARE_GRAINS 4096u

/* Remember grain AT, whose entry now says "zeroed", for reuse once that is
 * durable.  Only a grain allocated since the open (past first_alloc): the
 * file's older entries are not trusted to name a grain that nothing else
 * uses (a crafted table may point two entries, or one, at a table).  Best
 * effort: without memory it just stays unused. */
static void release_grain(sparse_priv *p, uint32_t at)
{
    if (p->n_released + p->n_spare >= MAX_SPARE_GRAINS || at < p->first_alloc ||
        (uint64_t)at + p->h.grain_sectors > p->next_alloc)
        return;
    for (size_t i = 0; i < p->n_released; i++)
        if (p->released[i] == at)
            return;
    for (size_t i = 0; i < p->n_spare; i++)
        if (p->spare[i] == at)
            return;
    if (vk_grow((void **)&p->released, &p->cap_released, p->n_released + 1, sizeof *p->released, NULL) ==
        0)
        p->released[p->n_released++] = at;
}

/* A spare grain to write a new grain into, or false: no durable table
 * references a spare grain, so a crash before the new entry is durable
 * leaves it unreferenced again. */
static bool take_spare(sparse_priv *p, uint64_t *at)
{
    if (!p->n_spare)
        return false;
    *at = p->spare[--p->n_spare];
    return true;
}

/* The append position must lie past every grain the tables point at.  In a
 * damaged file a grain may begin before the end of the file and reach past
 * it (a file cut short in a grain that is not grain aligned), and a grain
 * appended at the end would then share its sectors: writing it would change
 * what the older grain reads.  So before the first sector this handle
 * appends, every table is read once (in table-sized reads beside the cache,
 * a cached table from the cache: it may hold changes not yet on file) and
 * the append position moves past the furthest such grain.  A grain wholly
 * past the end of the file (what check calls corrupt) stops appending: the
 * file would grow into it and give it content.  The cost is one read of the
 * tables per writing session that appends (capacity / 16384 bytes with
 * 64 KiB grains), none for sessions that only overwrite grains. */
static int move_past_grains(vk_extent *x, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors, end = p->next_alloc;
    uint8_t *buf = vk_malloc(p->gt_bytes, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    int r = 0;
    for (uint64_t gdi = 0; !r && gdi < p->num_gdes; gdi++) {
        uint32_t gde = p->gd[gdi];
        uint64_t gt_end;
        if (gde == 0 || !vk_add_ok(gde, p->gt_sectors, &gt_end) || gt_end > p->file_sectors)
            continue; /* no table, or one get_table refuses when it is used */
        const gt_slot *s = &p->slots[gdi % p->n_slots];
        const uint32_t *cached = s->valid && s->gd_index == gdi ? slot_table(p, gdi % p->n_slots) : NULL;
        if (!cached &&
            (r = file_read(x, false, buf, p->gt_bytes, (uint64_t)gde * VK_SECTOR, x->path, e)))
            break;
        for (uint32_t i = 0; i < p->h.gtes_per_gt; i++) {
            uint32_t gte = cached ? cached[i] : vk_le32(buf + 4 * i);
            if (classify(p, gte) != GTE_DATA || (uint64_t)gte + gs <= end)
                continue;
            if (gte >= p->file_sectors) {
                r = vk_fail(
                    e, VMDKIT_EFORMAT,
                    "%s: grain table entry for grain %llu: sector %u lies past the end of the file; "
                    "nothing is appended to the extent until check --repair clears it",
                    x->path, (unsigned long long)(gdi * p->h.gtes_per_gt + i), gte);
                break;
            }
            end = vk_div_round_up((uint64_t)gte + gs, gs) * gs;
        }
    }
    free(buf);
    if (r)
        return r;
    p->next_alloc = p->first_alloc = end;
    p->ends_scanned = true;
    return 0;
}

/* Reserve N sectors at the append position; keeps it grain aligned. */
static int reserve(vk_extent *x, uint64_t n, uint64_t *at, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors;
    int r = p->ends_scanned ? 0 : move_past_grains(x, e);
    if (r)
        return r;
    uint64_t end = p->next_alloc + vk_div_round_up(n, gs) * gs;
    if (end > VK_MAX_EXTENT_FILE_SECTORS)
        return vk_fail(e, VMDKIT_ENOSPC, "%s: extent file is full: grain tables address at most 2 TiB",
                       x->path);
    *at = p->next_alloc;
    p->next_alloc = end;
    if (end > p->file_sectors)
        p->file_sectors = end;
    return 0;
}

/* Table for G, creating an empty one (new GT and redundant GT at the end of
 * the file) when the directory has none.  The new table reaches the disk at
 * flush, before the directory entry that points at it. */
static int get_table_for_write(vk_extent *x, uint64_t gdi, uint32_t **gt, size_t *slot_out, vk_err *e)
{
    sparse_priv *p = x->priv;
    int r = get_table(x, gdi, gt, e);
    if (r)
        return r;
    size_t slot = (size_t)(gdi % p->n_slots);
    if (!*gt) {
        gt_slot *s = &p->slots[slot];
        if (s->valid && s->dirty && (r = sparse_flush(x, e)))
            return r;
        if ((r = need_gt_mem(x, e)))
            return r;
        /* table and redundant table share one grain-aligned reservation */
        uint64_t at = 0, rat = 0;
        if ((r = reserve(x, p->rgd ? 2 * (uint64_t)p->gt_sectors : p->gt_sectors, &at, e)))
            return r;
        rat = p->rgd ? at + p->gt_sectors : 0;
        p->gd[gdi] = (uint32_t)at;
        if (p->rgd)
            p->rgd[gdi] = (uint32_t)rat;
        p->gd_dirty = true;
        *gt = slot_table(p, slot);
        memset(*gt, 0, p->gt_bytes);
        s->valid = true;
        s->dirty = false;
        s->gd_index = gdi;
    }
    *slot_out = slot;
    return 0;
}

static void set_gte(sparse_priv *p, size_t slot, uint64_t g, uint32_t value)
{
    slot_table(p, slot)[g % p->h.gtes_per_gt] = value;
    if (!p->slots[slot].dirty) {
        p->slots[slot].dirty = true;
        p->n_dirty++;
    }
}

/* Fill grain_buf with the current content of grain G (zeros or backing). */
static int fill_from_below(vk_extent *x, uint64_t g, uint32_t gte, const vk_backing *bk, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors;
    int r = need_grain_buf(x, e);
    if (r)
        return r;
    memset(p->grain_buf, 0, grain_bytes(p));
    if (classify(p, gte) == GTE_ZERO || !bk || !bk->read)
        return 0;
    uint64_t first = g * gs;
    uint64_t n = vk_min(gs, x->size_sectors - first); /* the last grain may pass the end */
    return bk->read(bk->opaque, x->start_sector + first, n, p->grain_buf, e);
}

static int sparse_write(vk_extent *x, uint64_t sector, uint64_t n, const void *buf, const vk_backing *bk,
                        vk_err *e)
{
    sparse_priv *p = x->priv;
    int r = mark_unclean(x, e);
    if (r)
        return r;
    uint64_t gs = p->h.grain_sectors;
    const uint8_t *in = buf;
    while (n > 0) {
        uint64_t g = sector / gs, off = sector % gs;
        uint64_t k = vk_min(n, gs - off);
        uint32_t *gt;
        size_t slot;
        if ((r = get_table_for_write(x, g / p->h.gtes_per_gt, &gt, &slot, e)))
            return r;
        uint32_t gte = gt[g % p->h.gtes_per_gt];
        if (classify(p, gte) == GTE_DATA) {
            /* never write through an entry that points outside the data area */
            if (gte >= p->file_sectors || on_metadata(p, gte, gs, g / p->h.gtes_per_gt))
                return vk_fail(
                    e, VMDKIT_EFORMAT, "%s: grain table entry for grain %llu: sector %u lies %s",
                    x->path, (unsigned long long)g, gte,
                    gte >= p->file_sectors ? "past the end of the file" : "inside the metadata");
            if ((r = vk_pwrite_full(x->fd, in, k * VK_SECTOR, ((uint64_t)gte + off) * VK_SECTOR, x->path,
                                    e)))
                return r;
        } else if (off == 0 && k == gs) {
            /* whole unallocated grains: allocate a contiguous run within this table */
            uint64_t run = 1;
            uint64_t tbl_end = (g / p->h.gtes_per_gt + 1) * p->h.gtes_per_gt;
            while (g + run < tbl_end && (run + 1) * gs <= n &&
                   classify(p, gt[(g + run) % p->h.gtes_per_gt]) != GTE_DATA)
                run++;
            uint64_t at = 0;
            if (take_spare(p, &at))
                run = 1;
            else if ((r = reserve(x, run * gs, &at, e)))
                return r;
            if ((r = vk_pwrite_full(x->fd, in, run * gs * VK_SECTOR, at * VK_SECTOR, x->path, e)))
                return r;
            for (uint64_t i = 0; i < run; i++)
                set_gte(p, slot, g + i, (uint32_t)(at + i * gs));
            k = run * gs;
        } else {
            /* partial grain: copy-on-write from below, then write the whole grain */
            if ((r = fill_from_below(x, g, gte, bk, e)))
                return r;
            /* the backing read may have evicted our table; look it up again */
            if ((r = get_table_for_write(x, g / p->h.gtes_per_gt, &gt, &slot, e)))
                return r;
            memcpy(p->grain_buf + off * VK_SECTOR, in, k * VK_SECTOR);
            uint64_t at = 0;
            if (!take_spare(p, &at) && (r = reserve(x, gs, &at, e)))
                return r;
            if ((r = vk_pwrite_full(x->fd, p->grain_buf, grain_bytes(p), at * VK_SECTOR, x->path, e)))
                return r;
            set_gte(p, slot, g, (uint32_t)at);
        }
        p->data_written = true;
        in += k * VK_SECTOR;
        sector += k;
        n -= k;
    }
    return 0;
}

/* Is the piece [SECTOR, SECTOR + K) of a grain the whole grain?  The last
 * grain of an extent counts as whole up to the extent's end. */
static bool whole_grain(const vk_extent *x, uint64_t sector, uint64_t k)
{
    const sparse_priv *p = x->priv;
    return sector % p->h.grain_sectors == 0 &&
           (k == p->h.grain_sectors || sector + k == x->size_sectors);
}

/* VMDKIT_EUNSUPPORTED unless sparse_zero of the range writes no grain
 * data: every grain whole, and each either reading as zeros already or
 * able to take a zeroed-grain entry. */
static int zero_needs_no_data(vk_extent *x, uint64_t sector, uint64_t n, bool has_parent, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors;
    while (n > 0) {
        uint64_t g = sector / gs;
        uint64_t k = vk_min(n, gs - sector % gs);
        if (!whole_grain(x, sector, k))
            return vk_fail(e, VMDKIT_EUNSUPPORTED,
                           "%s: grain %llu: zeroing part of a grain means writing data", x->path,
                           (unsigned long long)g);
        if (!p->zeroed_flag) {
            uint32_t gte;
            int r = get_gte(x, g, &gte, e);
            if (r)
                return r;
            enum gte_kind kind = classify(p, gte);
            if (kind == GTE_DATA || (kind == GTE_UNALLOC && has_parent))
                return vk_fail(
                    e, VMDKIT_EUNSUPPORTED,
                    "%s: grain %llu %s and the extent has no zeroed-grain entries: zeroing it means writing data",
                    x->path, (unsigned long long)g,
                    kind == GTE_DATA ? "holds data" : "shows the parent");
        }
        sector += k;
        n -= k;
    }
    return 0;
}

static int sparse_zero(vk_extent *x, uint64_t sector, uint64_t n, unsigned how, const vk_backing *bk,
                       vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors;
    bool has_parent = (how & VK_ZERO_PARENT) != 0;
    int r;
    if ((how & VK_ZERO_FAST) &&
        ((r = zero_needs_no_data(x, sector, n, has_parent, e)) || (how & VK_ZERO_CHECK)))
        return r;
    if ((r = mark_unclean(x, e)))
        return r;
    uint8_t *zeros = NULL;
    while (n > 0) {
        uint64_t g = sector / gs, off = sector % gs;
        uint64_t k = vk_min(n, gs - off);
        uint32_t gte;
        if ((r = get_gte(x, g, &gte, e)))
            break;
        enum gte_kind kind = classify(p, gte);
        bool whole = whole_grain(x, sector, k);
        if (kind == GTE_ZERO || (kind == GTE_UNALLOC && !has_parent)) {
            /* already reads as zeros */
        } else if (whole && p->zeroed_flag) {
            uint32_t *gt;
            size_t slot;
            if ((r = get_table_for_write(x, g / p->h.gtes_per_gt, &gt, &slot, e)))
                break;
            if (kind == GTE_DATA)
                release_grain(p, gte);
            set_gte(p, slot, g, VK_GTE_ZEROED);
        } else {
            if (!zeros && !(zeros = vk_calloc(1, grain_bytes(p), e))) {
                r = VMDKIT_ENOMEM;
                break;
            }
            if ((r = sparse_write(x, sector, k, zeros, bk, e)))
                break;
        }
        sector += k;
        n -= k;
    }
    free(zeros);
    return r;
}

static int sparse_flush(vk_extent *x, vk_err *e)
{
    sparse_priv *p = x->priv;
    int r;
    if (!x->writable || (!p->data_written && !p->n_dirty && !p->gd_dirty))
        return 0;
    /* 1. grain data first */
    if ((r = vk_fdatasync(x->fd, x->path, e)))
        return r;
    p->data_written = false;
    /* 2. grain tables (primary, then redundant copy) */
    if (p->n_dirty) {
        for (size_t s = 0; s < p->n_slots; s++) {
            if (!p->slots[s].valid || !p->slots[s].dirty)
                continue;
            uint64_t gdi = p->slots[s].gd_index;
            if ((r = write_table(x, p->gd[gdi], slot_table(p, s), e)))
                return r;
            if (p->rgd && p->rgd[gdi] && (r = write_table(x, p->rgd[gdi], slot_table(p, s), e)))
                return r;
        }
        if ((r = vk_fdatasync(x->fd, x->path, e)))
            return r;
        for (size_t s = 0; s < p->n_slots; s++)
            p->slots[s].dirty = false;
        p->n_dirty = 0;
        /* no durable table references the released grains any more */
        if (p->n_released && vk_grow((void **)&p->spare, &p->cap_spare, p->n_spare + p->n_released,
                                     sizeof *p->spare, NULL) == 0) {
            memcpy(p->spare + p->n_spare, p->released, p->n_released * sizeof *p->spare);
            p->n_spare += p->n_released;
            p->n_released = 0;
        }
    }
    /* 3. directory entries of new tables (primary, then redundant) */
    if (p->gd_dirty) {
        if ((r = write_directory(x, p->h.gd_offset_sectors, p->gd, e)))
            return r;
        if (p->rgd && (r = write_directory(x, p->h.rgd_offset_sectors, p->rgd, e)))
            return r;
        if ((r = vk_fdatasync(x->fd, x->path, e)))
            return r;
        p->gd_dirty = false;
    }
    return 0;
}

/* After a flush: spare grains that end the file are cut off (nothing
 * durable references them), so write/zero cycles leave the file as
 * large as its data.  The cut is made durable before the header says
 * the file is clean. */
static int cut_spare_tail(vk_extent *x, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors, end = p->next_alloc;
    bool found = true;
    while (found && p->n_spare) {
        found = false;
        for (size_t i = 0; i < p->n_spare; i++) {
            if ((uint64_t)p->spare[i] + gs == end) {
                end = p->spare[i];
                p->spare[i] = p->spare[--p->n_spare];
                found = true;
                break;
            }
        }
    }
    if (end == p->next_alloc)
        return 0;
    uint64_t size;
    int r = vk_file_size(x->fd, &size, x->path, e);
    if (r)
        return r;
    if (size > p->next_alloc * VK_SECTOR)
        return 0; /* something lies past the grains: leave the file as it is */
    if (ftruncate(x->fd, (off_t)(end * VK_SECTOR)) != 0)
        return vk_fail_errno(e, errno, "%s: cutting off unused grains", x->path);
    p->next_alloc = end;
    p->file_sectors = vk_min(p->file_sectors, end);
    return vk_fdatasync(x->fd, x->path, e);
}

static void sparse_free(sparse_priv *p)
{
    if (!p)
        return;
    free(p->gd);
    free(p->rgd);
    free(p->slots);
    free(p->gt_mem);
    free(p->gt_empty);
    free(p->gt_buf);
    free(p->grain_buf);
    free(p->released);
    free(p->spare);
    vk_grain_cache_close(p->gcache);
    if (p->gt_lock_ok)
        pthread_mutex_destroy(&p->gt_lock);
    free(p);
}

static int sparse_close(vk_extent *x, vk_err *e)
{
    sparse_priv *p = x->priv;
    int r = 0;
    if (x->writable) {
        r = sparse_flush(x, e);
        if (!r)
            r = cut_spare_tail(x, e);
        if (!r && p->unclean_written) {
            /* clean close: everything is durable, so the flag can go */
            uint8_t hdr[512];
            vk_sparse_header h = p->h;
            h.unclean_shutdown = 0;
            vk_sparse_header_encode(&h, hdr);
            r = vk_pwrite_full(x->fd, hdr, sizeof hdr, 0, x->path, e);
            if (!r)
                r = vk_fdatasync(x->fd, x->path, e);
        }
    }
    sparse_free(p);
    x->priv = NULL;
    return r;
}

static void sparse_describe(vk_extent *x, vmdkit_sparse_facts *f, uint64_t *allocated)
{
    sparse_priv *p = x->priv;
    f->present = true;
    memcpy(f->magic, "KDMV", 5);
    f->version = p->h.version;
    f->flags = p->h.flags;
    f->grain_sectors = p->h.grain_sectors;
    f->gtes_per_gt = p->h.gtes_per_gt;
    f->gd_offset_sectors = p->h.gd_offset_sectors;
    f->rgd_offset_sectors =
        (p->h.flags & VK_FLAG_REDUNDANT_GD) && !p->compressed ? p->h.rgd_offset_sectors : 0;
    f->overhead_sectors = p->h.overhead_sectors;
    f->descriptor_offset_sectors = p->h.desc_offset_sectors;
    f->descriptor_size_sectors = p->h.desc_size_sectors;
    f->unclean_shutdown = p->h.unclean_shutdown != 0;
    f->compressed = p->compressed;
    f->markers = p->markers;
    f->zeroed_grain = p->zeroed_flag;
    f->footer = p->from_footer;
    uint64_t grains = 0;
    uint64_t total = vk_div_round_up(x->size_sectors, p->h.grain_sectors);
    pthread_mutex_lock(&p->gt_lock);
    for (uint64_t gdi = 0; gdi < p->num_gdes; gdi++) {
        uint32_t *gt;
        if (get_table(x, gdi, &gt, NULL) || !gt)
            continue;
        for (uint32_t i = 0; i < p->h.gtes_per_gt; i++) {
            uint64_t g = gdi * p->h.gtes_per_gt + i;
            if (g < total && classify(p, gt[i]) == GTE_DATA)
                grains++;
        }
    }
    pthread_mutex_unlock(&p->gt_lock);
    *allocated = grains * grain_bytes(p);
}

/* Prefetch: the grain tables of the range, then its data - decoded into
 * the grain cache for a compressed extent (no more grains than it holds),
 * else a readahead hint to the kernel for each contiguous stored run. */
static int sparse_prefetch(vk_extent *x, uint64_t sector, uint64_t n, vk_err *e)
{
    sparse_priv *p = x->priv;
    uint64_t gs = p->h.grain_sectors, per_gt = p->h.gtes_per_gt;
    uint64_t g = sector / gs, g_end = vk_div_round_up(sector + n, gs);
    if (p->gcache)
        g_end = vk_min(g_end, g + vk_grain_cache_slots(p->gcache));
    uint64_t run_start = 0, run_len = 0; /* pending readahead, sectors */
    int r = 0;
    while (!r && g < g_end) {
        if (p->gd[g / per_gt] == 0) { /* no table: nothing stored */
            g = (g / per_gt + 1) * per_gt;
            continue;
        }
        uint32_t gte;
        if ((r = get_gte(x, g, &gte, e)))
            break;
        if (classify(p, gte) == GTE_DATA) {
            if (p->gcache) {
                r = vk_grain_cache_prefetch(p->gcache, g, gte, e);
            } else if (run_len && gte == run_start + run_len) {
                run_len += gs;
            } else {
                if (run_len)
                    (void)posix_fadvise(x->fd, (off_t)(x->file_base + run_start * VK_SECTOR),
                                        (off_t)(run_len * VK_SECTOR), POSIX_FADV_WILLNEED);
                run_start = gte;
                run_len = gs;
            }
        }
        g++;
    }
    if (run_len)
        (void)posix_fadvise(x->fd, (off_t)(x->file_base + run_start * VK_SECTOR),
                            (off_t)(run_len * VK_SECTOR), POSIX_FADV_WILLNEED);
    return r;
}

static const vk_extent_ops sparse_ops = {
    .name = "sparse",
    .status = sparse_status,
    .read = sparse_read,
    .write = sparse_write,
    .zero = sparse_zero,
    .prefetch = sparse_prefetch,
    .flush = sparse_flush,
    .close = sparse_close,
    .describe = sparse_describe,
};

/* ---- open ---- */

/* For streams with GD_AT_END: take the header from the footer. */
static int read_footer(vk_extent *x, sparse_priv *p, vk_err *e)
{
    if (p->file_sectors < 3)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: footer: file too short for a stream footer", x->path);
    uint8_t buf[1536];
    uint64_t at = (p->file_sectors - 3) * VK_SECTOR;
    int r = file_read(x, false, buf, sizeof buf, at, x->path, e);
    if (r)
        return r;
    vk_marker fm, eos;
    vk_marker_decode(buf, &fm);
    vk_marker_decode(buf + 1024, &eos);
    vk_sparse_header f;
    vk_sparse_header_decode(buf + 512, &f);
    if (f.magic != VK_KDMV_MAGIC || fm.size != 0 || fm.type != VK_MARKER_FOOTER)
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: footer: gdOffset says the grain directory is at the end, but there is no valid footer",
            x->path);
    if (eos.val != 0 || eos.size != 0 || eos.type != VK_MARKER_EOS)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: end-of-stream marker: missing after the footer", x->path);
    if (f.gd_offset_sectors == VK_GD_AT_END)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: footer: gdOffset is still unset", x->path);
    if (f.capacity_sectors != p->h.capacity_sectors || f.grain_sectors != p->h.grain_sectors ||
        f.gtes_per_gt != p->h.gtes_per_gt)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: footer: capacity/grainSize/numGTEsPerGT differ from the header", x->path);
    int keep_unclean = p->h.unclean_shutdown;
    p->h = f;
    p->h.unclean_shutdown = (uint8_t)keep_unclean;
    p->from_footer = true;
    return 0;
}

static int load_directory(vk_extent *x, uint64_t sector, uint32_t **out, const char *what, vk_err *e)
{
    sparse_priv *p = x->priv;
    size_t bytes = (size_t)vk_gd_sectors(p->num_gdes) * VK_SECTOR;
    uint8_t *buf = vk_malloc(bytes, e);
    uint32_t *gd = vk_calloc((size_t)p->num_gdes, sizeof *gd, e);
    int r = (!buf || !gd) ? VMDKIT_ENOMEM : 0;
    if (!r)
        r = file_read(x, false, buf, bytes, sector * VK_SECTOR, x->path, e);
    if (!r) {
        for (uint64_t i = 0; i < p->num_gdes; i++) {
            gd[i] = vk_le32(buf + 4 * i);
            uint64_t end;
            if (gd[i] && (!vk_add_ok(gd[i], p->gt_sectors, &end) || end > p->file_sectors)) {
                r = vk_fail(e, VMDKIT_EFORMAT,
                            "%s: %s entry %llu: grain table at sector %u lies past the end of the file",
                            x->path, what, (unsigned long long)i, gd[i]);
                break;
            }
        }
    }
    free(buf);
    if (r) {
        free(gd);
        return r;
    }
    *out = gd;
    return 0;
}

/* A writer updates every grain table it changes, both copies: refuse to
 * write to a file whose tables lie on the header, the embedded descriptor
 * or a grain directory (a crafted or damaged file; check reports it), or
 * the first update would destroy them.  Readers are not affected. */
static int tables_clear_of_metadata(vk_extent *x, vk_err *e)
{
    const sparse_priv *p = x->priv;
    const vk_sparse_header *h = &p->h;
    uint64_t gd_secs = vk_gd_sectors(p->num_gdes), gt = p->gt_sectors;
    for (uint64_t i = 0; i < p->num_gdes; i++) {
        for (int copy = 0; copy < 2; copy++) {
            uint32_t *dir = copy ? p->rgd : p->gd;
            uint64_t t = dir ? dir[i] : 0;
            if (!t)
                continue;
            if (overlaps(t, gt, 0, 1) ||
                (h->desc_offset_sectors &&
                 overlaps(t, gt, h->desc_offset_sectors, h->desc_size_sectors)) ||
                overlaps(t, gt, h->gd_offset_sectors, gd_secs) ||
                (p->rgd && overlaps(t, gt, h->rgd_offset_sectors, gd_secs)))
                return vk_fail(
                    e, VMDKIT_EFORMAT,
                    "%s: %s entry %llu: grain table at sector %llu lies on the header, the descriptor or a grain directory; writing would destroy them (see vmdkit check)",
                    x->path, copy ? "redundant grain directory" : "grain directory",
                    (unsigned long long)i, (unsigned long long)t);
        }
    }
    return 0;
}

int vk_sparse_open(vk_extent *x, vk_err *e)
{
    uint64_t fsize = x->file_bytes;
    int r = fsize ? 0 : vk_file_size(x->fd, &fsize, x->path, e);
    if (r)
        return r;
    uint8_t hb[512];
    if (fsize < 512)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: header: file is %llu bytes, shorter than a sparse header",
                       x->path, (unsigned long long)fsize);
    if ((r = file_read(x, false, hb, sizeof hb, 0, x->path, e)))
        return r;
    sparse_priv *p = vk_calloc(1, sizeof *p, e);
    if (!p)
        return VMDKIT_ENOMEM;
    x->priv = p;
    vk_sparse_header_decode(hb, &p->h);
    p->file_sectors = vk_div_round_up(fsize, VK_SECTOR);
    if ((r = vk_sparse_header_validate(&p->h, p->file_sectors, x->path, e)))
        goto fail;
    p->compressed = (p->h.flags & VK_FLAG_COMPRESSED) != 0;
    p->markers = (p->h.flags & VK_FLAG_MARKERS) != 0;
    if (p->h.gd_offset_sectors == VK_GD_AT_END) {
        if (!p->markers) {
            r = vk_fail(e, VMDKIT_EFORMAT,
                        "%s: gdOffset: at end of stream, but the stream has no markers", x->path);
            goto fail;
        }
        if ((r = read_footer(x, p, e)) ||
            (r = vk_sparse_header_validate(&p->h, p->file_sectors, x->path, e)))
            goto fail;
    }
    p->zeroed_flag = (p->h.flags & VK_FLAG_ZEROED_GRAIN) != 0;
    if (p->h.capacity_sectors < x->size_sectors) {
        r = vk_fail(e, VMDKIT_EFORMAT,
                    "%s: capacity: header holds %llu sectors, the descriptor's extent line claims %llu",
                    x->path, (unsigned long long)p->h.capacity_sectors,
                    (unsigned long long)x->size_sectors);
        goto fail;
    }
    p->num_gdes = vk_num_gdes(&p->h);
    p->gt_bytes = p->h.gtes_per_gt * 4;
    p->gt_sectors = (uint32_t)vk_gt_sectors(p->h.gtes_per_gt);
    if ((r = load_directory(x, p->h.gd_offset_sectors, &p->gd, "grain directory", e)))
        goto fail;
    if ((p->h.flags & VK_FLAG_REDUNDANT_GD) && !p->compressed && x->writable &&
        (r = load_directory(x, p->h.rgd_offset_sectors, &p->rgd, "redundant grain directory", e)))
        goto fail;
    if (!x->writable && (p->h.flags & VK_FLAG_REDUNDANT_GD) && !p->compressed)
        p->rgd = NULL; /* only writers need the redundant copy */
    if (x->writable && (r = tables_clear_of_metadata(x, e)))
        goto fail;
    p->n_slots = (size_t)vk_max(1, vk_min(p->num_gdes, GT_CACHE_BYTES / p->gt_bytes));
    p->slots = vk_calloc(p->n_slots, sizeof *p->slots, e);
    /* a writer keeps every table it reads in a slot: it may change it */
    if (!x->writable)
        p->gt_empty = vk_calloc((size_t)vk_div_round_up(p->num_gdes, 8) + 1, 1, e);
    if (!p->slots || (!x->writable && !p->gt_empty)) {
        r = VMDKIT_ENOMEM;
        goto fail;
    }
    if (pthread_mutex_init(&p->gt_lock, NULL) != 0) {
        r = vk_fail(e, VMDKIT_ENOMEM, "%s: cannot create a lock", x->path);
        goto fail;
    }
    p->gt_lock_ok = true;
    if (p->compressed) {
        /* a compressed record never exceeds the file */
        p->cbuf_size = (size_t)vk_min(2 * grain_bytes(p) + 1024, p->file_sectors * VK_SECTOR);
        if ((r = vk_grain_cache_open(
                 (size_t)grain_bytes(p), vk_div_round_up(x->size_sectors, p->h.grain_sectors),
                 GRAIN_CACHE_BYTES, p->cbuf_size, inflate_grain, x, &p->gcache, e))) {
            vk_err_prefix(e, "%s", x->path);
            goto fail;
        }
    }
    /* grains go at the grain-aligned end of the file, never inside metadata */
    if (x->writable && p->h.overhead_sectors > VK_MAX_EXTENT_FILE_SECTORS) {
        r = vk_fail(e, VMDKIT_EFORMAT,
                    "%s: overHead: %llu sectors lies beyond the 2 TiB a sparse extent can address",
                    x->path, (unsigned long long)p->h.overhead_sectors);
        goto fail;
    }
    uint64_t gs = p->h.grain_sectors;
    uint64_t data_start =
        vk_min(vk_max(p->file_sectors, p->h.overhead_sectors), VK_MAX_EXTENT_FILE_SECTORS);
    p->next_alloc = vk_div_round_up(data_start, gs) * gs;
    p->first_alloc = p->next_alloc;
    /* checked after the whole structure: a damaged stream reports its damage */
    if (p->compressed && x->writable) {
        r = vk_fail(
            e, VMDKIT_ERDONLY,
            "%s: streamOptimized extents cannot be modified in place; open the disk read-only or convert it",
            x->path);
        goto fail;
    }
    x->grain_sectors = gs;
    x->ops = &sparse_ops;
    return 0;
fail:
    sparse_free(p);
    x->priv = NULL;
    return r;
}

int vk_sparse_read_embedded_descriptor(int fd, const char *path, char **text, size_t *len,
                                       uint64_t *off_sectors, uint64_t *size_sectors, vk_err *e)
{
    uint64_t fsize;
    int r = vk_file_size(fd, &fsize, path, e);
    if (r)
        return r;
    return vk_sparse_read_embedded_descriptor_at(fd, 0, fsize, path, text, len, off_sectors,
                                                 size_sectors, e);
}

int vk_sparse_read_embedded_descriptor_at(int fd, uint64_t base, uint64_t fsize, const char *path,
                                          char **text, size_t *len, uint64_t *off_sectors,
                                          uint64_t *size_sectors, vk_err *e)
{
    int r;
    uint8_t hb[512];
    if (fsize < 512)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: header: file is %llu bytes, shorter than a sparse header",
                       path, (unsigned long long)fsize);
    if ((r = vk_pread_full(fd, hb, sizeof hb, base, path, e)))
        return r;
    vk_sparse_header h;
    vk_sparse_header_decode(hb, &h);
    if ((r = vk_sparse_header_validate(&h, vk_div_round_up(fsize, VK_SECTOR), path, e)))
        return r;
    *text = NULL;
    *len = 0;
    *off_sectors = h.desc_offset_sectors;
    *size_sectors = h.desc_size_sectors;
    if (h.desc_offset_sectors == 0 || h.desc_size_sectors == 0)
        return 0;
    size_t bytes = (size_t)h.desc_size_sectors * VK_SECTOR;
    char *buf = vk_malloc(bytes + 1, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    if ((r = vk_pread_full(fd, buf, bytes, base + h.desc_offset_sectors * VK_SECTOR, path, e))) {
        free(buf);
        return r;
    }
    buf[bytes] = 0;
    *text = buf;
    *len = strnlen(buf, bytes);
    return 0;
}
