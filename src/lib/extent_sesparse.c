/* extent_sesparse.c - ESXi seSparse (space-efficient sparse) extents, read-only.
 *
 * A constant header of uint64 fields at sector 0 places the regions of the
 * file: volatile header, journal, grain directory, grain tables, free
 * bitmap, backmap, grains.  Directory entries select a grain table by
 * index; table entries say in their top nibble whether a 4 KiB grain is
 * absent, unmapped or zero, or stored (with a cluster number in the rest).
 * Grain tables are read on demand into a small direct-mapped cache, guarded
 * by a mutex so that several threads may read at once (entries are copied
 * out under it).
 */
#include <pthread.h>
#include <stdlib.h>

#include "extent.h"
#include "sparse_header.h"

#define SES_VERSION UINT64_C(0x0000000200000001)
#define SES_VOLATILE_MAGIC UINT64_C(0xcafecafe)
#define SES_GRAIN_SECTORS 8u
#define SES_GT_SECTORS 64u
#define SES_GTES_PER_GT 4096u /* 64 sectors of 8-byte entries */
#define SES_GT_BYTES (SES_GTES_PER_GT * 8u)
#define SES_GDE_ALLOCATED UINT64_C(0x10000000) /* top 32 bits of a used entry */
#define SES_CACHE_SLOTS 16u
#define SES_NO_GT UINT64_MAX

/* constant header field offsets (all uint64) */
#define SES_OFF_MAGIC 0
#define SES_OFF_VERSION 8
#define SES_OFF_CAPACITY 16
#define SES_OFF_GRAIN 24
#define SES_OFF_GT_SIZE 32
#define SES_OFF_FLAGS 40
#define SES_OFF_VOLATILE 80 /* then offset/size pairs, see ses_region_names */
#define SES_N_REGIONS 8
#define SES_REGION_VOLATILE 0
#define SES_REGION_GD 3
#define SES_REGION_GT 4
#define SES_REGION_GRAINS 7

/* volatile header field offsets */
#define SES_VOFF_MAGIC 0
#define SES_VOFF_REPLAY 24

/* GT entry kinds (top nibble) */
#define SES_GTE_UNALLOCATED 0u
#define SES_GTE_UNMAPPED 1u
#define SES_GTE_ZERO 2u
#define SES_GTE_ALLOCATED 3u

static const char *const ses_region_names[SES_N_REGIONS] = {
    "volatile header", "journal header", "journal", "grain directory",
    "grain tables",    "free bitmap",    "backmap", "grains",
};

typedef struct ses_slot {
    uint64_t gt_index; /* SES_NO_GT when empty */
    uint64_t *gtes;
} ses_slot;

typedef struct ses {
    const char *file;
    uint64_t file_bytes;
    uint64_t region_off[SES_N_REGIONS];  /* sectors */
    uint64_t region_size[SES_N_REGIONS]; /* sectors */
    uint64_t num_gdes;                   /* entries covering the extent (loaded) */
    uint64_t *gd;
    pthread_mutex_t lock; /* guards cache */
    bool lock_ok;
    ses_slot cache[SES_CACHE_SLOTS];
} ses;

/* Is [off, off + len) sectors inside a file of FILE_BYTES? */
static bool inside_sectors(uint64_t off, uint64_t len, uint64_t file_bytes)
{
    uint64_t end, end_bytes;
    return vk_add_ok(off, len, &end) && vk_mul_ok(end, VK_SECTOR, &end_bytes) && end_bytes <= file_bytes;
}

/* The grain table of directory entry GDI (which is allocated). */
static int ses_gt(ses *s, int fd, uint64_t gdi, const uint64_t **out, vk_err *e)
{
    uint64_t index = s->gd[gdi] & 0xffffffffu;
    ses_slot *slot = &s->cache[index % SES_CACHE_SLOTS];
    if (slot->gt_index == index) {
        *out = slot->gtes;
        return 0;
    }
    if (!slot->gtes) {
        slot->gtes = vk_malloc(SES_GT_BYTES, e);
        if (!slot->gtes)
            return VMDKIT_ENOMEM;
    }
    slot->gt_index = SES_NO_GT;
    /* the index was checked against the grain-table region when loaded */
    uint64_t sector = s->region_off[SES_REGION_GT] + index * SES_GT_SECTORS;
    uint8_t *raw = (uint8_t *)slot->gtes;
    int r = vk_pread_full(fd, raw, SES_GT_BYTES, sector * VK_SECTOR, s->file, e);
    if (r)
        return r;
    /* decode in place: entry i occupies the same 8 bytes either way */
    for (size_t i = 0; i < SES_GTES_PER_GT; i++)
        slot->gtes[i] = vk_le64(raw + i * 8);
    slot->gt_index = index;
    *out = slot->gtes;
    return 0;
}

/* Kind and (for stored grains) file sector of the grain at GDI/GTI. */
static int ses_grain(vk_extent *x, uint64_t gdi, uint64_t gti, uint64_t v, int *alloc, uint64_t *phys,
                     vk_err *e)
{
    ses *s = x->priv;
    unsigned kind = (unsigned)(v >> 60);
    switch (kind) {
    case SES_GTE_UNALLOCATED:
        if (v != 0)
            break;
        *alloc = VMDKIT_ALLOC_UNALLOC;
        return 0;
    case SES_GTE_UNMAPPED:
    case SES_GTE_ZERO:
        *alloc = VMDKIT_ALLOC_ZERO;
        return 0;
    case SES_GTE_ALLOCATED: {
        uint64_t cluster =
            ((v & UINT64_C(0x0FFF000000000000)) >> 48) | ((v & UINT64_C(0x0000FFFFFFFFFFFF)) << 12);
        uint64_t grain_start = (gdi * SES_GTES_PER_GT + gti) * SES_GRAIN_SECTORS;
        uint64_t used = vk_min(SES_GRAIN_SECTORS, x->size_sectors - grain_start);
        uint64_t rel, rel_end, sector;
        if (!vk_mul_ok(cluster, SES_GRAIN_SECTORS, &rel) || !vk_add_ok(rel, used, &rel_end) ||
            rel_end > s->region_size[SES_REGION_GRAINS] ||
            !vk_add_ok(s->region_off[SES_REGION_GRAINS], rel, &sector) ||
            !inside_sectors(sector, used, s->file_bytes))
            return vk_fail(
                e, VMDKIT_EFORMAT,
                "%s: grain table %llu entry %llu: value 0x%016llx places the grain outside the grains area or past the end of the file (%llu bytes)",
                s->file, (unsigned long long)(s->gd[gdi] & 0xffffffffu), (unsigned long long)gti,
                (unsigned long long)v, (unsigned long long)s->file_bytes);
        *alloc = VMDKIT_ALLOC_DATA;
        *phys = sector;
        return 0;
    }
    default:
        break;
    }
    return vk_fail(e, VMDKIT_EFORMAT, "%s: grain table %llu entry %llu: 0x%016llx is not a valid entry",
                   s->file, (unsigned long long)(s->gd[gdi] & 0xffffffffu), (unsigned long long)gti,
                   (unsigned long long)v);
}

/* The grain, or the table-less stretch, holding SECTOR (see vk_grain_fn). */
static int ses_grain_at(vk_extent *x, uint64_t at, uint64_t max, int *alloc, uint64_t *phys,
                        uint64_t *len, vk_err *e)
{
    ses *s = x->priv;
    const uint64_t cover = (uint64_t)SES_GTES_PER_GT * SES_GRAIN_SECTORS;
    uint64_t gdi = at / cover;
    if (s->gd[gdi] == 0) {
        *alloc = VMDKIT_ALLOC_UNALLOC;
        *len = vk_min(cover - at % cover, max);
        return 0;
    }
    const uint64_t *gt;
    uint64_t gti = (at / SES_GRAIN_SECTORS) % SES_GTES_PER_GT;
    uint64_t gte = 0;
    pthread_mutex_lock(&s->lock);
    int r = ses_gt(s, x->fd, gdi, &gt, e);
    if (!r)
        gte = gt[gti];
    pthread_mutex_unlock(&s->lock);
    if (r)
        return r;
    uint64_t within = at % SES_GRAIN_SECTORS;
    *len = vk_min(SES_GRAIN_SECTORS - within, max);
    *phys = 0;
    if ((r = ses_grain(x, gdi, gti, gte, alloc, phys, e)))
        return r;
    *phys += within;
    return 0;
}

static int ses_status(vk_extent *x, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e)
{
    return vk_grain_status(x, ses_grain_at, sector, n, alloc, run, e);
}

static int ses_read(vk_extent *x, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    return vk_grain_read(x, ses_grain_at, sector, n, buf, e);
}

static int ses_close(vk_extent *x, vk_err *e)
{
    (void)e;
    ses *s = x->priv;
    if (s) {
        for (unsigned i = 0; i < SES_CACHE_SLOTS; i++)
            free(s->cache[i].gtes);
        if (s->lock_ok)
            pthread_mutex_destroy(&s->lock);
        free(s->gd);
        free(s);
    }
    x->priv = NULL;
    return 0;
}

/* seSparse is not a KDMV/COWD file: only the allocated bytes are reported. */
static void ses_describe(vk_extent *x, vmdkit_sparse_facts *f, uint64_t *allocated_bytes)
{
    ses *s = x->priv;
    if (f)
        memset(f, 0, sizeof *f);
    if (!allocated_bytes)
        return;
    /* count stored grains the extent uses; unreadable tables count as none */
    uint64_t grains_used = vk_div_round_up(x->size_sectors, SES_GRAIN_SECTORS);
    uint64_t stored = 0;
    pthread_mutex_lock(&s->lock);
    for (uint64_t gdi = 0; gdi < s->num_gdes; gdi++) {
        const uint64_t *gt;
        vk_err ignored;
        if (s->gd[gdi] == 0 || ses_gt(s, x->fd, gdi, &gt, &ignored) != 0)
            continue;
        uint64_t first = gdi * SES_GTES_PER_GT;
        uint64_t count = vk_min(SES_GTES_PER_GT, grains_used - first);
        for (uint64_t i = 0; i < count; i++)
            stored += (gt[i] >> 60) == SES_GTE_ALLOCATED;
    }
    pthread_mutex_unlock(&s->lock);
    *allocated_bytes = stored * SES_GRAIN_SECTORS * VK_SECTOR;
}

static const vk_extent_ops ses_ops = {
    .name = "SESPARSE",
    .status = ses_status,
    .read = ses_read,
    .write = NULL,
    .zero = NULL,
    .flush = NULL, /* read-only */
    .close = ses_close,
    .describe = ses_describe,
};

/* Check the constant header (512 bytes at H) against the file and the extent. */
static int ses_parse_header(vk_extent *x, ses *s, const uint8_t *h, vk_err *e)
{
    const char *f = s->file;
    if (vk_le64(h + SES_OFF_MAGIC) != VK_SESPARSE_MAGIC)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: magic: not a seSparse extent (0xcafebabe)", f);
    uint64_t version = vk_le64(h + SES_OFF_VERSION);
    if (version != SES_VERSION)
        return vk_fail(e, VMDKIT_EUNSUPPORTED,
                       "%s: version: 0x%llx is not the known seSparse version 0x%llx", f,
                       (unsigned long long)version, (unsigned long long)SES_VERSION);
    uint64_t capacity = vk_le64(h + SES_OFF_CAPACITY);
    if (capacity < x->size_sectors)
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: capacity: %llu sectors is smaller than the extent size %llu in the descriptor", f,
            (unsigned long long)capacity, (unsigned long long)x->size_sectors);
    uint64_t grain = vk_le64(h + SES_OFF_GRAIN);
    if (grain != SES_GRAIN_SECTORS)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: grain_size: %llu sectors (only %u is known)", f,
                       (unsigned long long)grain, SES_GRAIN_SECTORS);
    uint64_t gt_size = vk_le64(h + SES_OFF_GT_SIZE);
    if (gt_size != SES_GT_SECTORS)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: grain_table_size: %llu sectors (only %u is known)",
                       f, (unsigned long long)gt_size, SES_GT_SECTORS);
    uint64_t flags = vk_le64(h + SES_OFF_FLAGS);
    if (flags != 0)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: flags: unknown flags 0x%llx", f,
                       (unsigned long long)flags);
    for (int i = 0; i < SES_N_REGIONS; i++) {
        s->region_off[i] = vk_le64(h + SES_OFF_VOLATILE + 16 * i);
        s->region_size[i] = vk_le64(h + SES_OFF_VOLATILE + 16 * i + 8);
        uint64_t end;
        if (s->region_off[i] == 0 || s->region_size[i] == 0 ||
            !vk_add_ok(s->region_off[i], s->region_size[i], &end) || end > UINT64_MAX / VK_SECTOR)
            return vk_fail(e, VMDKIT_EFORMAT,
                           "%s: %s offset/size: %llu+%llu sectors is not a valid region", f,
                           ses_region_names[i], (unsigned long long)s->region_off[i],
                           (unsigned long long)s->region_size[i]);
    }
    /* regions read here must be in the file; grains only as far as they are used */
    static const int needed[] = {SES_REGION_VOLATILE, SES_REGION_GD, SES_REGION_GT};
    for (size_t k = 0; k < sizeof needed / sizeof needed[0]; k++) {
        int i = needed[k];
        if (!inside_sectors(s->region_off[i], s->region_size[i], s->file_bytes))
            return vk_fail(
                e, VMDKIT_EFORMAT,
                "%s: %s offset/size: %llu+%llu sectors reach past the end of the file (%llu bytes)", f,
                ses_region_names[i], (unsigned long long)s->region_off[i],
                (unsigned long long)s->region_size[i], (unsigned long long)s->file_bytes);
    }
    const uint64_t cover = (uint64_t)SES_GTES_PER_GT * SES_GRAIN_SECTORS;
    s->num_gdes = vk_div_round_up(x->size_sectors, cover);
    uint64_t gd_entries = s->region_size[SES_REGION_GD] * (VK_SECTOR / 8);
    if (gd_entries < s->num_gdes)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: grain directory size: %llu entries cannot cover %llu sectors (%llu needed)",
                       f, (unsigned long long)gd_entries, (unsigned long long)x->size_sectors,
                       (unsigned long long)s->num_gdes);
    return 0;
}

/* The volatile header must say the journal needs no replay. */
static int ses_check_volatile(ses *s, int fd, vk_err *e)
{
    uint8_t v[VK_SECTOR];
    int r = vk_pread_full(fd, v, sizeof v, s->region_off[SES_REGION_VOLATILE] * VK_SECTOR, s->file, e);
    if (r)
        return r;
    if (vk_le64(v + SES_VOFF_MAGIC) != SES_VOLATILE_MAGIC)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: volatile header magic: not 0xcafecafe", s->file);
    uint64_t replay = vk_le64(v + SES_VOFF_REPLAY);
    if (replay != 0)
        return vk_fail(
            e, VMDKIT_EUNSUPPORTED,
            "%s: volatile header replay_journal: %llu (the journal must be replayed by ESXi first)",
            s->file, (unsigned long long)replay);
    return 0;
}

/* Load the directory entries covering the extent and check each one. */
static int ses_load_gd(ses *s, int fd, vk_err *e)
{
    size_t bytes = (size_t)s->num_gdes * 8;
    s->gd = vk_malloc(bytes, e);
    if (!s->gd)
        return VMDKIT_ENOMEM;
    uint8_t *raw = (uint8_t *)s->gd;
    int r = vk_pread_full(fd, raw, bytes, s->region_off[SES_REGION_GD] * VK_SECTOR, s->file, e);
    if (r)
        return r;
    uint64_t n_gts = s->region_size[SES_REGION_GT] / SES_GT_SECTORS;
    for (uint64_t i = 0; i < s->num_gdes; i++) {
        uint64_t v = vk_le64(raw + i * 8);
        s->gd[i] = v;
        if (v == 0)
            continue;
        if ((v >> 32) != SES_GDE_ALLOCATED)
            return vk_fail(e, VMDKIT_EFORMAT,
                           "%s: grain directory entry %llu: 0x%016llx is not a valid entry", s->file,
                           (unsigned long long)i, (unsigned long long)v);
        if ((v & 0xffffffffu) >= n_gts)
            return vk_fail(
                e, VMDKIT_EFORMAT,
                "%s: grain directory entry %llu: grain table %llu is beyond the %llu tables of the grain-table region",
                s->file, (unsigned long long)i, (unsigned long long)(v & 0xffffffffu),
                (unsigned long long)n_gts);
    }
    return 0;
}

int vk_sesparse_open(vk_extent *x, vk_err *e)
{
    ses *s = vk_calloc(1, sizeof *s, e);
    if (!s)
        return VMDKIT_ENOMEM;
    for (unsigned i = 0; i < SES_CACHE_SLOTS; i++)
        s->cache[i].gt_index = SES_NO_GT;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return vk_fail(e, VMDKIT_ENOMEM, "%s: cannot create a lock", vk_extent_file(x));
    }
    s->lock_ok = true;
    s->file = vk_extent_file(x);
    x->priv = s;
    x->ops = &ses_ops;

    uint8_t h[VK_SECTOR];
    int r = vk_file_size(x->fd, &s->file_bytes, s->file, e);
    if (!r && s->file_bytes < VK_SECTOR)
        r = vk_fail(e, VMDKIT_EFORMAT,
                    "%s: header: file of %llu bytes is too short for a seSparse header", s->file,
                    (unsigned long long)s->file_bytes);
    if (!r)
        r = vk_pread_full(x->fd, h, sizeof h, 0, s->file, e);
    if (!r)
        r = ses_parse_header(x, s, h, e);
    if (!r)
        r = ses_check_volatile(s, x->fd, e);
    if (!r)
        r = ses_load_gd(s, x->fd, e);
    if (r) {
        ses_close(x, NULL);
        x->ops = NULL;
    }
    return r;
}
