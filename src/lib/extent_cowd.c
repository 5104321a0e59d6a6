/* extent_cowd.c - ESX COWD (vmfsSparse) redo-log extents, read-only.
 *
 * A 2048-byte header, a grain directory of uint32 sector numbers of grain
 * tables (0 = no table), grain tables of uint32 sector numbers of grains
 * (0 = not stored in this link).  Version 1 tables hold 4096 entries; the
 * older Workstation 3 flavour (version 3) holds 512.  Grain tables are read
 * on demand into a small direct-mapped cache, guarded by a mutex so that
 * several threads may read at once (entries are copied out under it).
 */
#include <pthread.h>
#include <stdlib.h>

#include "extent.h"
#include "sparse_header.h"

#define COWD_HEADER_BYTES 2048u
#define COWD_GTES_V1 4096u
#define COWD_GTES_VMDK3 512u
#define COWD_CACHE_SLOTS 16u
#define COWD_NO_GT UINT64_MAX

/* header field offsets */
#define COWD_OFF_MAGIC 0
#define COWD_OFF_VERSION 4
#define COWD_OFF_FLAGS 8
#define COWD_OFF_SECTORS 12
#define COWD_OFF_GRAIN 16
#define COWD_OFF_GD 20
#define COWD_OFF_GDES 24
#define COWD_OFF_UNCLEAN 1648

typedef struct cowd_slot {
    uint64_t gd_index; /* COWD_NO_GT when empty */
    uint32_t *gtes;
} cowd_slot;

typedef struct cowd {
    const char *file;
    uint64_t file_bytes;
    uint32_t version;
    uint32_t flags;
    uint64_t grain_sectors;
    uint32_t gtes_per_gt;
    uint64_t gd_offset_sectors;
    uint64_t num_gdes; /* entries covering the extent (loaded) */
    bool unclean;
    uint32_t *gd;
    pthread_mutex_t lock; /* guards cache */
    bool lock_ok;
    cowd_slot cache[COWD_CACHE_SLOTS];
} cowd;

/* Is [off, off + len) bytes inside a file of FILE_BYTES? */
static bool inside(uint64_t off, uint64_t len, uint64_t file_bytes)
{
    uint64_t end;
    return vk_add_ok(off, len, &end) && end <= file_bytes;
}

/* The grain table of directory entry GDI (which is non-zero). */
static int cowd_gt(cowd *c, int fd, uint64_t gdi, const uint32_t **out, vk_err *e)
{
    cowd_slot *s = &c->cache[gdi % COWD_CACHE_SLOTS];
    if (s->gd_index == gdi) {
        *out = s->gtes;
        return 0;
    }
    size_t gt_bytes = (size_t)c->gtes_per_gt * 4;
    if (!s->gtes) {
        s->gtes = vk_malloc(gt_bytes, e);
        if (!s->gtes)
            return VMDKIT_ENOMEM;
    }
    s->gd_index = COWD_NO_GT;
    /* bounds were checked when the directory was loaded */
    uint64_t off = (uint64_t)c->gd[gdi] * VK_SECTOR;
    uint8_t *raw = (uint8_t *)s->gtes;
    int r = vk_pread_full(fd, raw, gt_bytes, off, c->file, e);
    if (r)
        return r;
    /* decode in place: entry i occupies the same 4 bytes either way */
    for (uint32_t i = 0; i < c->gtes_per_gt; i++)
        s->gtes[i] = vk_le32(raw + (size_t)i * 4);
    s->gd_index = gdi;
    *out = s->gtes;
    return 0;
}

/* The grain, or the table-less stretch, holding SECTOR (see vk_grain_fn). */
static int cowd_grain_at(vk_extent *x, uint64_t s, uint64_t max, int *alloc, uint64_t *phys,
                         uint64_t *len, vk_err *e)
{
    cowd *c = x->priv;
    uint64_t grain = c->grain_sectors;
    uint64_t cover = grain * c->gtes_per_gt;
    uint64_t gdi = s / cover;
    *alloc = VMDKIT_ALLOC_UNALLOC;
    if (c->gd[gdi] == 0) {
        *len = vk_min(cover - s % cover, max);
        return 0;
    }
    const uint32_t *gt;
    uint64_t gti = (s / grain) % c->gtes_per_gt;
    uint32_t gte = 0;
    pthread_mutex_lock(&c->lock);
    int r = cowd_gt(c, x->fd, gdi, &gt, e);
    if (!r)
        gte = gt[gti];
    pthread_mutex_unlock(&c->lock);
    if (r)
        return r;
    uint64_t within = s % grain;
    *len = vk_min(grain - within, max);
    if (gte == 0)
        return 0;
    /* the part of the grain the extent uses must be in the file */
    uint64_t grain_start = s - within;
    uint64_t used = vk_min(grain, x->size_sectors - grain_start);
    uint64_t off, bytes;
    if (!vk_mul_ok(gte, VK_SECTOR, &off) || !vk_mul_ok(used, VK_SECTOR, &bytes) ||
        !inside(off, bytes, c->file_bytes))
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: grain table %llu entry %llu: grain at sector %u reaches past the end of the file (%llu bytes)",
            c->file, (unsigned long long)gdi, (unsigned long long)gti, gte,
            (unsigned long long)c->file_bytes);
    *alloc = VMDKIT_ALLOC_DATA;
    *phys = (uint64_t)gte + within;
    return 0;
}

static int cowd_status(vk_extent *x, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e)
{
    return vk_grain_status(x, cowd_grain_at, sector, n, alloc, run, e);
}

static int cowd_read(vk_extent *x, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    return vk_grain_read(x, cowd_grain_at, sector, n, buf, e);
}

static int cowd_close(vk_extent *x, vk_err *e)
{
    (void)e;
    cowd *c = x->priv;
    if (c) {
        for (unsigned i = 0; i < COWD_CACHE_SLOTS; i++)
            free(c->cache[i].gtes);
        if (c->lock_ok)
            pthread_mutex_destroy(&c->lock);
        free(c->gd);
        free(c);
    }
    x->priv = NULL;
    return 0;
}

static void cowd_describe(vk_extent *x, vmdkit_sparse_facts *f, uint64_t *allocated_bytes)
{
    cowd *c = x->priv;
    if (f) {
        memset(f, 0, sizeof *f);
        f->present = true;
        memcpy(f->magic, "COWD", 5);
        f->version = c->version;
        f->flags = c->flags;
        f->grain_sectors = c->grain_sectors;
        f->gtes_per_gt = c->gtes_per_gt;
        f->gd_offset_sectors = c->gd_offset_sectors;
        f->unclean_shutdown = c->unclean;
    }
    if (!allocated_bytes)
        return;
    /* count stored grains the extent uses; unreadable tables count as none */
    uint64_t grains_used = vk_div_round_up(x->size_sectors, c->grain_sectors);
    uint64_t stored = 0;
    pthread_mutex_lock(&c->lock);
    for (uint64_t gdi = 0; gdi < c->num_gdes; gdi++) {
        const uint32_t *gt;
        vk_err ignored;
        if (c->gd[gdi] == 0 || cowd_gt(c, x->fd, gdi, &gt, &ignored) != 0)
            continue;
        uint64_t first = gdi * c->gtes_per_gt;
        uint64_t count = vk_min(c->gtes_per_gt, grains_used - first);
        for (uint64_t i = 0; i < count; i++)
            stored += gt[i] != 0;
    }
    pthread_mutex_unlock(&c->lock);
    *allocated_bytes = stored * c->grain_sectors * VK_SECTOR;
}

static const vk_extent_ops cowd_ops = {
    .name = "COWD",
    .status = cowd_status,
    .read = cowd_read,
    .write = NULL,
    .zero = NULL,
    .flush = NULL, /* read-only */
    .close = cowd_close,
    .describe = cowd_describe,
};

/* Check the header against the file and the extent; fill C. */
static int cowd_parse_header(vk_extent *x, cowd *c, const uint8_t *h, vk_err *e)
{
    const char *f = c->file;
    if (vk_le32(h + COWD_OFF_MAGIC) != VK_COWD_MAGIC)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: magic: not an ESX sparse extent (COWD)", f);
    c->version = vk_le32(h + COWD_OFF_VERSION);
    if (c->version == 1)
        c->gtes_per_gt = COWD_GTES_V1;
    else if (c->version == 3)
        c->gtes_per_gt = COWD_GTES_VMDK3;
    else
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: version: %u is not a known COWD version (1 or 3)", f,
                       c->version);
    c->flags = vk_le32(h + COWD_OFF_FLAGS);
    uint64_t capacity = vk_le32(h + COWD_OFF_SECTORS);
    if (capacity < x->size_sectors)
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: numSectors: %llu sectors is smaller than the extent size %llu in the descriptor", f,
            (unsigned long long)capacity, (unsigned long long)x->size_sectors);
    c->grain_sectors = vk_le32(h + COWD_OFF_GRAIN);
    if (!vk_grain_sectors_ok(c->grain_sectors))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: grainSize: %llu sectors is not a power of two up to %llu",
                       f, (unsigned long long)c->grain_sectors,
                       (unsigned long long)VK_MAX_GRAIN_SECTORS);
    c->gd_offset_sectors = vk_le32(h + COWD_OFF_GD);
    uint64_t num_gdes_hdr = vk_le32(h + COWD_OFF_GDES);
    c->unclean = vk_le32(h + COWD_OFF_UNCLEAN) != 0;

    uint64_t cover = c->grain_sectors * c->gtes_per_gt; /* <= 2^11 * 2^12 */
    c->num_gdes = vk_div_round_up(x->size_sectors, cover);
    if (num_gdes_hdr < c->num_gdes)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: numGDEntries: %llu entries cannot cover %llu sectors (%llu needed)", f,
                       (unsigned long long)num_gdes_hdr, (unsigned long long)x->size_sectors,
                       (unsigned long long)c->num_gdes);
    uint64_t gd_off, gd_bytes;
    if (!vk_mul_ok(c->gd_offset_sectors, VK_SECTOR, &gd_off) || gd_off < COWD_HEADER_BYTES ||
        !vk_mul_ok(num_gdes_hdr, 4, &gd_bytes) || !inside(gd_off, gd_bytes, c->file_bytes))
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: gdOffset: grain directory of %llu entries at sector %llu is not inside the file (%llu bytes)",
            f, (unsigned long long)num_gdes_hdr, (unsigned long long)c->gd_offset_sectors,
            (unsigned long long)c->file_bytes);
    return 0;
}

/* Load the directory entries covering the extent; each table must lie in the file. */
static int cowd_load_gd(cowd *c, int fd, vk_err *e)
{
    size_t bytes = (size_t)c->num_gdes * 4;
    c->gd = vk_malloc(bytes, e);
    if (!c->gd)
        return VMDKIT_ENOMEM;
    uint8_t *raw = (uint8_t *)c->gd;
    int r = vk_pread_full(fd, raw, bytes, c->gd_offset_sectors * VK_SECTOR, c->file, e);
    if (r)
        return r;
    uint64_t gt_bytes = (uint64_t)c->gtes_per_gt * 4;
    for (uint64_t i = 0; i < c->num_gdes; i++) {
        c->gd[i] = vk_le32(raw + i * 4);
        uint64_t off;
        if (c->gd[i] != 0 &&
            (!vk_mul_ok(c->gd[i], VK_SECTOR, &off) || !inside(off, gt_bytes, c->file_bytes)))
            return vk_fail(
                e, VMDKIT_EFORMAT,
                "%s: grain directory entry %llu: grain table at sector %u reaches past the end of the file (%llu bytes)",
                c->file, (unsigned long long)i, c->gd[i], (unsigned long long)c->file_bytes);
    }
    return 0;
}

int vk_cowd_open(vk_extent *x, vk_err *e)
{
    cowd *c = vk_calloc(1, sizeof *c, e);
    if (!c)
        return VMDKIT_ENOMEM;
    for (unsigned i = 0; i < COWD_CACHE_SLOTS; i++)
        c->cache[i].gd_index = COWD_NO_GT;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return vk_fail(e, VMDKIT_ENOMEM, "%s: cannot create a lock", vk_extent_file(x));
    }
    c->lock_ok = true;
    c->file = vk_extent_file(x);
    x->priv = c;
    x->ops = &cowd_ops;

    uint8_t h[COWD_HEADER_BYTES];
    int r = vk_file_size(x->fd, &c->file_bytes, c->file, e);
    if (!r && c->file_bytes < COWD_HEADER_BYTES)
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: header: file of %llu bytes is too short for a COWD header",
                    c->file, (unsigned long long)c->file_bytes);
    if (!r)
        r = vk_pread_full(x->fd, h, sizeof h, 0, c->file, e);
    if (!r)
        r = cowd_parse_header(x, c, h, e);
    if (!r)
        r = cowd_load_gd(c, x->fd, e);
    if (r) {
        cowd_close(x, NULL);
        x->ops = NULL;
    }
    return r;
}
