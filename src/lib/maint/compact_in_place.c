/* compact_in_place.c - compact a hosted sparse extent where it lies, with
 * no copy and no free space needed.
 *
 * The header, descriptor, directories and tables stay where they are;
 * only grains move.  The grains lie on a grid of grain-sized slots after
 * the last table (as VMware, QEMU and vmdkit write them).  A grain the
 * rule drops (compact.h) frees its slot; then the last kept grains move
 * into the lowest free slots, and the file is cut after the last one.
 *
 * Crash safety: each step is made durable (fdatasync) before the next.
 *   1. The header's unclean-shutdown flag is set: a primary table that
 *      differs from its redundant copy is then what an interrupted update
 *      leaves (check: stale, the primary is the newer).
 *   2. The tables without the dropped grains, primary then redundant.  A
 *      dropped grain reads the same either way, so any mix of old and new
 *      entries reads as before.
 *   3. The moved grains' data, into slots no table on disk names (freed by
 *      step 2, or never used): nothing reads them yet.
 *   4. The tables naming the new places, primary then redundant.  An old
 *      place is never written: a grain moves only into a slot below every
 *      slot still to be emptied, so an entry old or new reads the same.
 *   5. The file cut after the last kept grain (no table names what lay
 *      there).
 *   6. The header as it was, the flag clear (everything is durable and
 *      the tables agree: no update is left interrupted).
 * The flag may be set already, by a writer that stopped half way: its
 * update left the tables either agreeing (then it is over, whatever it
 * wrote past them is unreferenced) or differing (then this file is
 * rewritten instead).  A cut anywhere leaves the disk reading as before, with at most leaked
 * space and stale redundant entries, which check reports (exit 3) and
 * check --repair removes; running compact again finishes the work.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "../sparse_header.h"
#include "compact.h"

/* The memory bound: entries of the tables and grain slots of the file
 * kept in memory (4 bytes each).  A larger extent is rewritten instead. */
#define MAX_IN_PLACE_ENTRIES (UINT32_C(1) << 22)
/* Grains are read and moved in runs of up to this many bytes. */
#define RUN_BYTES (UINT64_C(1) << 20)

typedef struct packer {
    const vk_compact_rule *rule;
    vk_extent *x;
    int fd;
    const char *path;
    uint8_t hdr[512]; /* sector 0 */
    vk_sparse_header h;
    uint64_t gs, per, n_gdes, file_sectors;
    bool has_rgd;
    uint32_t *gd, *rgd;
    uint32_t *gte; /* every entry of the primary tables, host order */
    uint64_t n_gtes;
    uint64_t base;  /* sector of slot 0 */
    uint32_t *slot; /* per slot: 1 + the entry whose grain lies there, 0 free */
    uint64_t n_slots;
    uint64_t kept;     /* stored grains after the rule */
    uint8_t *dirty;    /* per table: entries changed since the last write */
    uint8_t *run;      /* RUN_BYTES of grain data */
    uint8_t *zeros;    /* a grain of zeros */
    uint64_t unkicked; /* bytes written since the last writeback start */
} packer;

static bool is_data(const packer *p, uint32_t v)
{
    return v != 0 && !(v == VK_GTE_ZEROED && (p->h.flags & VK_FLAG_ZEROED_GRAIN));
}

static uint64_t end_of(uint64_t at, uint64_t n) { return at + n; }

typedef struct region {
    uint64_t at, n;
} region;

static int by_start(const void *a, const void *b)
{
    const region *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* Do the header, descriptor, directories and tables lie apart?  Writing
 * one table must never change another (a crafted file may share them). */
static int metadata_apart(const packer *p, bool *apart, vk_err *e)
{
    uint64_t gt_secs = vk_gt_sectors((uint32_t)p->per), gd_secs = vk_gd_sectors(p->n_gdes);
    region *rg = vk_calloc((size_t)(2 * p->n_gdes + 4), sizeof *rg, e);
    if (!rg)
        return VMDKIT_ENOMEM;
    size_t n = 0;
    rg[n++] = (region){0, 1};
    if (p->h.desc_size_sectors)
        rg[n++] = (region){p->h.desc_offset_sectors, p->h.desc_size_sectors};
    rg[n++] = (region){p->h.gd_offset_sectors, gd_secs};
    if (p->has_rgd)
        rg[n++] = (region){p->h.rgd_offset_sectors, gd_secs};
    for (uint64_t i = 0; i < p->n_gdes; i++) {
        if (p->gd[i])
            rg[n++] = (region){p->gd[i], gt_secs};
        if (p->has_rgd && p->rgd[i])
            rg[n++] = (region){p->rgd[i], gt_secs};
    }
    qsort(rg, n, sizeof *rg, by_start);
    *apart = true;
    for (size_t i = 1; i < n; i++)
        if (rg[i].at < end_of(rg[i - 1].at, rg[i - 1].n))
            *apart = false;
    free(rg);
    return 0;
}

/* Read the directories and the tables; false in *OK when the layout is
 * not one this packs. */
static int load_tables(packer *p, bool *ok, vk_err *e)
{
    uint64_t gt_secs = vk_gt_sectors((uint32_t)p->per), gd_secs = vk_gd_sectors(p->n_gdes);
    size_t gt_bytes = (size_t)p->per * 4;
    *ok = false;
    uint8_t *buf = vk_malloc(vk_max(gt_bytes, (size_t)(gd_secs * VK_SECTOR)), e);
    uint8_t *rbuf = vk_malloc(gt_bytes, e);
    p->gd = vk_calloc((size_t)p->n_gdes, sizeof *p->gd, e);
    p->rgd = vk_calloc((size_t)p->n_gdes, sizeof *p->rgd, e);
    p->gte = vk_calloc((size_t)p->n_gtes, sizeof *p->gte, e);
    int r = buf && rbuf && p->gd && p->rgd && p->gte ? 0 : VMDKIT_ENOMEM;
    /* everything that is not a grain lies below META_END */
    uint64_t meta_end = vk_max(p->h.overhead_sectors, 1);
    meta_end = vk_max(meta_end, end_of(p->h.desc_offset_sectors, p->h.desc_size_sectors));
    meta_end = vk_max(meta_end, end_of(p->h.gd_offset_sectors, gd_secs));
    if (p->has_rgd)
        meta_end = vk_max(meta_end, end_of(p->h.rgd_offset_sectors, gd_secs));
    for (int copy = 0; !r && copy < (p->has_rgd ? 2 : 1); copy++) {
        uint32_t *dir = copy ? p->rgd : p->gd;
        uint64_t at = copy ? p->h.rgd_offset_sectors : p->h.gd_offset_sectors;
        if (!(r = vk_pread_full(p->fd, buf, (size_t)(p->n_gdes * 4), at * VK_SECTOR, p->path, e)))
            for (uint64_t i = 0; i < p->n_gdes; i++)
                dir[i] = vk_le32(buf + 4 * i);
    }
    bool fits = true;
    if (!r)
        r = metadata_apart(p, &fits, e);
    for (uint64_t i = 0; !r && fits && i < p->n_gdes; i++) {
        if (p->has_rgd && (!p->gd[i] != !p->rgd[i]))
            fits = false;
        if (!p->gd[i] || !fits)
            continue;
        if (end_of(p->gd[i], gt_secs) > p->file_sectors ||
            (p->has_rgd && end_of(p->rgd[i], gt_secs) > p->file_sectors)) {
            fits = false;
            break;
        }
        meta_end = vk_max(meta_end, end_of(p->gd[i], gt_secs));
        if (p->has_rgd)
            meta_end = vk_max(meta_end, end_of(p->rgd[i], gt_secs));
        if ((r = vk_pread_full(p->fd, buf, gt_bytes, (uint64_t)p->gd[i] * VK_SECTOR, p->path, e)))
            break;
        if (p->has_rgd &&
            (r = vk_pread_full(p->fd, rbuf, gt_bytes, (uint64_t)p->rgd[i] * VK_SECTOR, p->path, e)))
            break;
        if (p->has_rgd && memcmp(buf, rbuf, gt_bytes) != 0)
            fits = false; /* copies that differ: the checker's business */
        for (uint64_t j = 0; j < p->per; j++)
            p->gte[i * p->per + j] = vk_le32(buf + 4 * j);
    }
    free(buf);
    free(rbuf);
    if (r || !fits)
        return r;

    /* the grid: slot 0 at the lowest place at or past META_END in step
     * with the first grain */
    uint64_t lowest = UINT64_MAX;
    for (uint64_t g = 0; g < p->n_gtes; g++)
        if (is_data(p, p->gte[g]))
            lowest = vk_min(lowest, p->gte[g]);
    if (lowest == UINT64_MAX || lowest < meta_end)
        return 0; /* no grain, or grains among the tables */
    p->base = lowest - (lowest - meta_end) / p->gs * p->gs;
    p->n_slots = (p->file_sectors - p->base) / p->gs;
    if (p->n_slots > MAX_IN_PLACE_ENTRIES)
        return 0;
    if (!(p->slot = vk_calloc((size_t)vk_max(p->n_slots, 1), sizeof *p->slot, e)))
        return VMDKIT_ENOMEM;
    for (uint64_t g = 0; g < p->n_gtes; g++) {
        uint32_t v = p->gte[g];
        if (!is_data(p, v))
            continue;
        uint64_t k = (v - p->base) / p->gs;
        if ((v - p->base) % p->gs || k >= p->n_slots || p->slot[k] || g * p->gs >= p->x->size_sectors)
            return 0; /* off the grid, past the end, shared, or past the capacity */
        p->slot[k] = (uint32_t)(g + 1);
        p->kept++;
    }
    *ok = true;
    return 0;
}

/* Set entry G to V, its table to be written. */
static void set_entry(packer *p, uint64_t g, uint32_t v)
{
    p->gte[g] = v;
    p->dirty[g / p->per] = 1;
}

/* Step 0 (no writes): ask the rule of every grain, stored ones in file
 * order, in runs. */
static int classify(packer *p, vk_compact_progress *prog, vk_err *e)
{
    size_t gb = (size_t)(p->gs * VK_SECTOR);
    uint64_t per_run = vk_max(RUN_BYTES / gb, 1), reported = 0;
    int r = 0;
    /* zeroed-grain entries (before the stored grains make more of them):
     * dropped where what shows through reads zeros */
    for (uint64_t g = 0; !r && g < p->n_gtes; g++) {
        uint64_t s = g * p->gs;
        if (p->gte[g] != VK_GTE_ZEROED || is_data(p, p->gte[g]) || s >= p->x->size_sectors)
            continue;
        enum vk_grain_fate fate;
        r = vk_compact_grain_fate(p->rule, p->x->start_sector + s, vk_min(p->gs, p->x->size_sectors - s),
                                  p->zeros, false, &fate, e);
        if (!r && fate == VK_GRAIN_DROP)
            set_entry(p, g, 0);
    }
    for (uint64_t k = 0; !r && k < p->n_slots;) {
        if (!p->slot[k]) {
            k++;
            continue;
        }
        uint64_t n = 1;
        while (n < per_run && k + n < p->n_slots && p->slot[k + n])
            n++;
        if ((r = vk_pread_full(p->fd, p->run, (size_t)(n * gb), (p->base + k * p->gs) * VK_SECTOR,
                               p->path, e)))
            break;
        uint64_t covered = 0;
        for (uint64_t i = 0; !r && i < n; i++) {
            uint64_t g = p->slot[k + i] - 1, s = g * p->gs;
            uint64_t len = vk_min(p->gs, p->x->size_sectors - s);
            enum vk_grain_fate fate;
            r = vk_compact_grain_fate(p->rule, p->x->start_sector + s, len, p->run + i * gb, true, &fate,
                                      e);
            covered += len;
            if (r || fate == VK_GRAIN_KEEP)
                continue;
            set_entry(p, g, fate == VK_GRAIN_ZEROED ? VK_GTE_ZEROED : 0);
            p->slot[k + i] = 0;
            p->kept--;
        }
        if (!r)
            r = vk_compact_progress_add(prog, covered * VK_SECTOR, e);
        reported += covered;
        k += n;
    }
    if (!r && reported < p->x->size_sectors)
        r = vk_compact_progress_add(prog, (p->x->size_sectors - reported) * VK_SECTOR, e);
    return r;
}

/* Write every changed table, primary then redundant, and make it durable. */
static int write_tables(packer *p, vk_err *e)
{
    size_t bytes = (size_t)p->per * 4;
    uint8_t *buf = vk_malloc(bytes, e);
    int r = buf ? 0 : VMDKIT_ENOMEM;
    for (int copy = 0; !r && copy < (p->has_rgd ? 2 : 1); copy++)
        for (uint64_t i = 0; !r && i < p->n_gdes; i++) {
            if (!p->dirty[i])
                continue;
            for (uint64_t j = 0; j < p->per; j++)
                vk_put32(buf + 4 * j, p->gte[i * p->per + j]);
            uint32_t at = copy ? p->rgd[i] : p->gd[i];
            r = vk_pwrite_full(p->fd, buf, bytes, (uint64_t)at * VK_SECTOR, p->path, e);
        }
    free(buf);
    if (!r)
        r = vk_fdatasync(p->fd, p->path, e);
    if (!r)
        memset(p->dirty, 0, (size_t)p->n_gdes);
    return r;
}

/* Step 3: the last kept grains into the lowest free slots, in runs, data
 * only (the tables follow in step 4). */
static int move_grains(packer *p, vk_err *e)
{
    size_t gb = (size_t)(p->gs * VK_SECTOR);
    uint64_t per_run = vk_max(RUN_BYTES / gb, 1);
    uint64_t lo = 0, hi = p->n_slots;
    int r = 0;
    while (!r) {
        while (lo < p->n_slots && p->slot[lo])
            lo++;
        while (hi > 0 && !p->slot[hi - 1])
            hi--;
        if (hi == 0 || lo >= hi - 1)
            break;
        uint64_t top = hi - 1; /* the last kept grain */
        /* C grains: free slots [lo, lo+c) and kept ones [top-c+1, top], apart */
        uint64_t c = 1;
        while (c < per_run && 2 * (c + 1) <= top - lo + 1 && !p->slot[lo + c] && p->slot[top - c])
            c++;
        uint64_t src = top + 1 - c;
        if ((r = vk_pread_full(p->fd, p->run, (size_t)(c * gb), (p->base + src * p->gs) * VK_SECTOR,
                               p->path, e)) ||
            (r = vk_pwrite_full(p->fd, p->run, (size_t)(c * gb), (p->base + lo * p->gs) * VK_SECTOR,
                                p->path, e)))
            break;
        for (uint64_t i = 0; i < c; i++) {
            uint64_t g = p->slot[src + i] - 1;
            set_entry(p, g, (uint32_t)(p->base + (lo + i) * p->gs));
            p->slot[lo + i] = p->slot[src + i];
            p->slot[src + i] = 0;
        }
        if ((p->unkicked += c * gb) >= VK_WRITEBACK_BYTES) {
            vk_start_writeback(p->fd);
            p->unkicked = 0;
        }
    }
    return r ? r : vk_fdatasync(p->fd, p->path, e);
}

/* The header as it was, with the unclean-shutdown flag UNCLEAN. */
static int write_header(packer *p, bool unclean, vk_err *e)
{
    uint8_t b[512];
    vk_sparse_header h = p->h;
    h.unclean_shutdown = unclean;
    vk_sparse_header_encode(&h, b);
    int r = vk_pwrite_full(p->fd, b, sizeof b, 0, p->path, e);
    return r ? r : vk_fdatasync(p->fd, p->path, e);
}

static int pack(packer *p, vk_compact_progress *prog, bool *done, vk_err *e)
{
    uint64_t size;
    int r = vk_file_size(p->fd, &size, p->path, e);
    if (!r)
        r = vk_pread_full(p->fd, p->hdr, sizeof p->hdr, 0, p->path, e);
    if (r)
        return r;
    vk_sparse_header_decode(p->hdr, &p->h);
    p->file_sectors = size / VK_SECTOR;
    if (p->h.magic != VK_KDMV_MAGIC || (p->h.flags & VK_FLAGS_KNOWN_INCOMPAT) ||
        p->h.gd_offset_sectors == VK_GD_AT_END || size % VK_SECTOR ||
        vk_sparse_header_validate(&p->h, p->file_sectors, p->path, NULL))
        return 0;
    p->gs = p->h.grain_sectors;
    p->per = p->h.gtes_per_gt;
    p->n_gdes = vk_num_gdes(&p->h);
    p->n_gtes = p->n_gdes * p->per;
    p->has_rgd = (p->h.flags & VK_FLAG_REDUNDANT_GD) && p->h.rgd_offset_sectors;
    if (p->h.capacity_sectors != p->x->size_sectors || p->n_gtes > MAX_IN_PLACE_ENTRIES)
        return 0;
    bool ok;
    if ((r = load_tables(p, &ok, e)) || !ok)
        return r;
    size_t gb = (size_t)(p->gs * VK_SECTOR);
    p->dirty = vk_calloc((size_t)p->n_gdes, 1, e);
    p->run = vk_malloc((size_t)vk_max(RUN_BYTES / gb, 1) * gb, e);
    p->zeros = vk_calloc(1, gb, e);
    if (!p->dirty || !p->run || !p->zeros)
        return VMDKIT_ENOMEM;
    if ((r = classify(p, prog, e)))
        return r;
    *done = true;
    uint64_t new_end = p->base + p->kept * p->gs;
    if (new_end >= p->file_sectors)
        return 0; /* nothing would get shorter: left as it was */
    /* the order of the top of this file */
    if ((r = write_header(p, true, e)) || (r = write_tables(p, e)) || (r = move_grains(p, e)) ||
        (r = write_tables(p, e)))
        return r;
    if (ftruncate(p->fd, (off_t)(new_end * VK_SECTOR)) != 0)
        return vk_fail_errno(e, errno, "%s: cut after the last grain", p->path);
    if ((r = vk_fdatasync(p->fd, p->path, e)))
        return r;
    return write_header(p, false, e);
}

int vk_compact_in_place(const vk_compact_rule *rule, vk_extent *x, vk_compact_progress *prog, bool *done,
                        vk_err *e)
{
    *done = false;
    if (x->type != VK_EXT_SPARSE || !x->writable || x->file_bytes)
        return 0;
    vk_compact_rule r1 = *rule;
    packer p = {.rule = &r1, .x = x, .fd = x->fd, .path = x->path};
    int r = 0;
    size_t gb = 0;
    {
        uint8_t b[512];
        vk_sparse_header h;
        if ((r = vk_pread_full(x->fd, b, sizeof b, 0, x->path, e)))
            return r;
        vk_sparse_header_decode(b, &h);
        if (!vk_grain_sectors_ok(h.grain_sectors) || h.grain_sectors == 0)
            return 0;
        gb = (size_t)(h.grain_sectors * VK_SECTOR);
        r1.zeroed_flag = (h.flags & VK_FLAG_ZEROED_GRAIN) != 0;
    }
    if (!(r1.below = vk_malloc(gb, e)))
        return VMDKIT_ENOMEM;
    r = pack(&p, prog, done, e);
    free(r1.below);
    free(p.gd);
    free(p.rgd);
    free(p.gte);
    free(p.slot);
    free(p.dirty);
    free(p.run);
    free(p.zeros);
    return r;
}
