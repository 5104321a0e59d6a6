/* sparse_grow.c - more capacity for a hosted sparse extent file.
 *
 * Crash safety (see maint.h): the new grain tables, and the directories
 * when they must move, go to the end of the file first; the header that
 * points at them is written last, by the caller, together with the
 * descriptor line that gives the extent its new size.  Until then every
 * reader sees the old extent; the new tables are all zero and stay
 * holes. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "maint.h"
#include "sparse_header.h"

static int read_header(int fd, const char *path, vk_sparse_header *h, uint64_t *file_sectors, vk_err *e)
{
    uint64_t size;
    uint8_t buf[512];
    int r = vk_file_size(fd, &size, path, e);
    if (!r && size < sizeof buf)
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: header: file is %llu bytes, shorter than a sparse header",
                    path, (unsigned long long)size);
    if (!r)
        r = vk_pread_full(fd, buf, sizeof buf, 0, path, e);
    if (r)
        return r;
    vk_sparse_header_decode(buf, h);
    *file_sectors = vk_div_round_up(size, VK_SECTOR);
    if ((r = vk_sparse_header_validate(h, *file_sectors, path, e)))
        return r;
    if (h->flags & (VK_FLAG_COMPRESSED | VK_FLAG_MARKERS))
        return vk_fail(
            e, VMDKIT_EUNSUPPORTED,
            "%s: flags: a compressed (streamOptimized) extent cannot grow in place; convert it first",
            path);
    return 0;
}

int vk_sparse_capacity(int fd, const char *path, uint64_t *capacity, bool *zeroed_grain, vk_err *e)
{
    vk_sparse_header h;
    uint64_t fs;
    int r = read_header(fd, path, &h, &fs, e);
    if (r)
        return r;
    *capacity = h.capacity_sectors;
    if (zeroed_grain)
        *zeroed_grain = (h.flags & VK_FLAG_ZEROED_GRAIN) != 0;
    return 0;
}

/* The directory at SECTOR (OLD_N entries) with NEW_N entries, the new
 * ones pointing at consecutive tables from FIRST_GT, in GD_SECS sectors. */
static uint8_t *grown_directory(int fd, const char *path, uint64_t sector, uint64_t old_n,
                                uint64_t new_n, uint64_t first_gt, uint64_t gt_secs, uint64_t gd_secs,
                                vk_err *e)
{
    uint8_t *gd = vk_calloc(1, (size_t)(gd_secs * VK_SECTOR), e);
    if (!gd)
        return NULL;
    if (vk_pread_full(fd, gd, (size_t)(vk_gd_sectors(old_n) * VK_SECTOR), sector * VK_SECTOR, path, e)) {
        free(gd);
        return NULL;
    }
    /* bytes past the old entries are padding: make them exactly the new entries or zero */
    memset(gd + 4 * old_n, 0, (size_t)(gd_secs * VK_SECTOR - 4 * old_n));
    for (uint64_t i = old_n; i < new_n; i++)
        vk_put32(gd + 4 * i, (uint32_t)(first_gt + (i - old_n) * gt_secs));
    return gd;
}

int vk_sparse_grow_tables(int fd, const char *path, uint64_t new_capacity, uint8_t header[512],
                          bool *changed, vk_err *e)
{
    vk_sparse_header h;
    uint64_t file_sectors;
    *changed = false;
    int r = read_header(fd, path, &h, &file_sectors, e);
    if (r)
        return r;
    vk_sparse_header_encode(&h, header);
    if (h.capacity_sectors >= new_capacity)
        return 0;
    vk_sparse_header n = h;
    n.capacity_sectors = new_capacity;
    uint64_t old_gdes = vk_num_gdes(&h), new_gdes = vk_num_gdes(&n);
    uint64_t gt_secs = vk_gt_sectors(h.gtes_per_gt);
    uint64_t old_gd_secs = vk_gd_sectors(old_gdes), new_gd_secs = vk_gd_sectors(new_gdes);
    bool redundant = (h.flags & VK_FLAG_REDUNDANT_GD) != 0;
    bool move = new_gd_secs > old_gd_secs;
    uint64_t add = new_gdes - old_gdes;
    /* the end of the file: tables, redundant tables, moved directories */
    uint64_t gs = h.grain_sectors;
    uint64_t at = vk_div_round_up(vk_max(file_sectors, h.overhead_sectors), gs) * gs;
    uint64_t gt_at = at, rgt_at = gt_at + add * gt_secs;
    uint64_t gd_at = (redundant ? rgt_at + add * gt_secs : rgt_at);
    uint64_t rgd_at = gd_at + new_gd_secs;
    uint64_t end = move ? (redundant ? rgd_at + new_gd_secs : rgd_at) : gd_at;
    end = vk_div_round_up(end, gs) * gs;
    if (new_capacity >= VK_MAX_EXTENT_FILE_SECTORS || end >= VK_MAX_EXTENT_FILE_SECTORS)
        return vk_fail(
            e, VMDKIT_ELIMIT,
            "%s: capacity: %llu sectors is more than a sparse extent addresses with its 32-bit tables (2 TiB)",
            path, (unsigned long long)new_capacity);
    if (!move) {
        gd_at = h.gd_offset_sectors;
        rgd_at = h.rgd_offset_sectors;
    }
    uint8_t *gd = grown_directory(fd, path, h.gd_offset_sectors, old_gdes, new_gdes, gt_at, gt_secs,
                                  new_gd_secs, e);
    uint8_t *rgd = NULL;
    if (!gd)
        return e->code ? e->code : VMDKIT_ENOMEM;
    if (redundant && !(rgd = grown_directory(fd, path, h.rgd_offset_sectors, old_gdes, new_gdes, rgt_at,
                                             gt_secs, new_gd_secs, e))) {
        free(gd);
        return e->code ? e->code : VMDKIT_ENOMEM;
    }
    /* 1. the new (all-zero) tables as holes, the directories */
    if (end > file_sectors && ftruncate(fd, (off_t)(end * VK_SECTOR)) != 0)
        r = vk_fail_errno(e, errno, "%s: extend", path);
    if (!r && rgd)
        r = vk_pwrite_full(fd, rgd, (size_t)(new_gd_secs * VK_SECTOR), rgd_at * VK_SECTOR, path, e);
    if (!r)
        r = vk_pwrite_full(fd, gd, (size_t)(new_gd_secs * VK_SECTOR), gd_at * VK_SECTOR, path, e);
    if (!r)
        r = vk_fdatasync(fd, path, e);
    /* 2. is the caller's: the header that points at them */
    if (!r) {
        n.gd_offset_sectors = gd_at;
        n.rgd_offset_sectors = redundant ? rgd_at : h.rgd_offset_sectors;
        vk_sparse_header_encode(&n, header);
        *changed = true;
    }
    free(gd);
    free(rgd);
    return r;
}
