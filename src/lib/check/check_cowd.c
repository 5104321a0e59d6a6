/* check_cowd.c - basic checks of ESX COWD (vmfsSparse) extents: a sane
 * header, and every grain directory, grain table and grain inside the file
 * and clear of the header and the directory. */
#include <stdlib.h>

#include "check.h"
#include "sparse_header.h"

#define COWD_HEADER_BYTES 2048u

typedef struct cowd_check {
    vk_check *c;
    const char *file;
    int fd;
    uint64_t file_bytes;
    uint64_t grain_sectors, gtes, gd_sectors_at, num_gdes, used_gdes;
    uint64_t meta_end; /* end of header and directory, bytes */
} cowd_check;

/* Is [off, off+len) bytes inside the file and past the header and directory? */
static bool placed_ok(const cowd_check *k, uint64_t off, uint64_t len, bool *past_eof)
{
    uint64_t end;
    *past_eof = !vk_add_ok(off, len, &end) || end > k->file_bytes;
    return !*past_eof && off >= k->meta_end;
}

static int check_tables(cowd_check *k, const uint32_t *gd, uint64_t extent_sectors)
{
    vk_check *c = k->c;
    size_t gt_bytes = (size_t)k->gtes * 4;
    uint8_t *gt = vk_malloc(gt_bytes, c->e);
    if (!gt)
        return VMDKIT_ENOMEM;
    int r = 0;
    for (uint64_t i = 0; !r && i < k->used_gdes; i++) {
        if (!gd[i])
            continue;
        bool past;
        uint64_t gde_off = k->gd_sectors_at * VK_SECTOR + 4 * i;
        if (!placed_ok(k, (uint64_t)gd[i] * VK_SECTOR, gt_bytes, &past)) {
            vk_check_report(c, VMDKIT_FIND_CORRUPT, k->file, gde_off,
                            "%s: grain directory entry %llu: table at sector %u %s", k->file,
                            (unsigned long long)i, gd[i],
                            past ? "reaches past the end of the file"
                                 : "lies inside the header or directory");
            continue;
        }
        if ((r = vk_pread_full(k->fd, gt, gt_bytes, (uint64_t)gd[i] * VK_SECTOR, k->file, c->e)))
            break;
        for (uint64_t j = 0; j < k->gtes; j++) {
            uint32_t v = vk_le32(gt + 4 * j);
            uint64_t first = (i * k->gtes + j) * k->grain_sectors;
            if (!v || first >= extent_sectors)
                continue;
            uint64_t used = vk_min(k->grain_sectors, extent_sectors - first) * VK_SECTOR;
            if (!placed_ok(k, (uint64_t)v * VK_SECTOR, used, &past))
                vk_check_report(c, VMDKIT_FIND_CORRUPT, k->file, (uint64_t)gd[i] * VK_SECTOR + 4 * j,
                                "%s: grain table %llu entry %llu: grain at sector %u %s", k->file,
                                (unsigned long long)i, (unsigned long long)j, v,
                                past ? "reaches past the end of the file"
                                     : "lies inside the header or directory");
        }
    }
    free(gt);
    return r;
}

int vk_check_cowd(vk_check *c, vk_check_extent *x)
{
    cowd_check k = {.c = c, .file = c->files[x->file].path};
    int r = vk_check_fd(c, x->file, &k.fd);
    if (!r)
        r = vk_file_size(k.fd, &k.file_bytes, k.file, c->e);
    if (r)
        return r;
    if (k.file_bytes < COWD_HEADER_BYTES) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, k.file, 0,
                        "%s: header: file of %llu bytes is too short for a COWD header", k.file,
                        (unsigned long long)k.file_bytes);
        return 0;
    }
    uint8_t h[COWD_HEADER_BYTES];
    if ((r = vk_pread_full(k.fd, h, sizeof h, 0, k.file, c->e)))
        return r;
    uint32_t version = vk_le32(h + 4);
    if (version != 1 && version != 3) {
        vk_check_report(c, VMDKIT_FIND_INFO, k.file, 4,
                        "%s: version: %u is not a known COWD version (not checked)", k.file, version);
        c->n.incomplete = true;
        return 0;
    }
    k.gtes = version == 1 ? 4096 : 512;
    uint64_t capacity = vk_le32(h + 12);
    k.grain_sectors = vk_le32(h + 16);
    k.gd_sectors_at = vk_le32(h + 20);
    k.num_gdes = vk_le32(h + 24);
    uint64_t free_sector = vk_le32(h + 28);
    bool ok = true;
    if (vk_le32(h + 1648)) {
        x->unclean = true;
        c->n.unclean = true;
        c->n.unclean_kept = true; /* the repair does not write redo logs */
        vk_check_report(
            c, VMDKIT_FIND_INFO, k.file, 1648,
            "%s: uncleanShutdown: set: the extent was not closed cleanly (not an error by itself)",
            k.file);
    }
    if (!vk_grain_sectors_ok(k.grain_sectors)) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, k.file, 16,
                        "%s: grainSize: %llu sectors is not a power of two up to %llu", k.file,
                        (unsigned long long)k.grain_sectors, (unsigned long long)VK_MAX_GRAIN_SECTORS);
        return 0;
    }
    x->header_ok = true;
    x->capacity_sectors = capacity;
    x->grain_sectors = k.grain_sectors;
    k.used_gdes = vk_div_round_up(vk_min(capacity, x->size_sectors), k.grain_sectors * k.gtes);
    if (k.num_gdes < vk_div_round_up(x->size_sectors, k.grain_sectors * k.gtes)) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, k.file, 24,
                        "%s: numGDEntries: %llu entries cannot cover the %llu sectors of the extent",
                        k.file, (unsigned long long)k.num_gdes, (unsigned long long)x->size_sectors);
        ok = false;
    }
    uint64_t gd_off = k.gd_sectors_at * VK_SECTOR, gd_end;
    if (gd_off < COWD_HEADER_BYTES || !vk_add_ok(gd_off, k.num_gdes * 4, &gd_end) ||
        gd_end > k.file_bytes) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, k.file, 20,
            "%s: gdOffset: directory of %llu entries at sector %llu is not inside the file after the header",
            k.file, (unsigned long long)k.num_gdes, (unsigned long long)k.gd_sectors_at);
        return 0;
    }
    k.meta_end = gd_end;
    if (free_sector > vk_div_round_up(k.file_bytes, VK_SECTOR))
        vk_check_report(c, VMDKIT_FIND_INFO, k.file, 28,
                        "%s: freeSector: %llu lies past the end of the file", k.file,
                        (unsigned long long)free_sector);
    if (!ok)
        return 0;
    uint32_t *gd = vk_calloc((size_t)k.used_gdes ? (size_t)k.used_gdes : 1, sizeof *gd, c->e);
    uint8_t *raw = vk_malloc((size_t)k.used_gdes * 4 + 1, c->e);
    if (!gd || !raw) {
        free(gd);
        free(raw);
        return VMDKIT_ENOMEM;
    }
    r = vk_pread_full(k.fd, raw, (size_t)k.used_gdes * 4, gd_off, k.file, c->e);
    for (uint64_t i = 0; !r && i < k.used_gdes; i++)
        gd[i] = vk_le32(raw + 4 * i);
    if (!r)
        r = check_tables(&k, gd, vk_min(capacity, x->size_sectors));
    free(gd);
    free(raw);
    return r;
}
