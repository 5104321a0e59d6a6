/* sparse_header.c - KDMV header and stream markers. */
#include <string.h>

#include "sparse_header.h"

void vk_sparse_header_decode(const uint8_t b[512], vk_sparse_header *h)
{
    h->magic = vk_le32(b + 0);
    h->version = vk_le32(b + 4);
    h->flags = vk_le32(b + 8);
    h->capacity_sectors = vk_le64(b + 12);
    h->grain_sectors = vk_le64(b + 20);
    h->desc_offset_sectors = vk_le64(b + 28);
    h->desc_size_sectors = vk_le64(b + 36);
    h->gtes_per_gt = vk_le32(b + 44);
    h->rgd_offset_sectors = vk_le64(b + 48);
    h->gd_offset_sectors = vk_le64(b + 56);
    h->overhead_sectors = vk_le64(b + 64);
    h->unclean_shutdown = b[72];
    memcpy(h->newline_chars, b + 73, 4);
    h->compress_algorithm = vk_le16(b + 77);
}

void vk_sparse_header_encode(const vk_sparse_header *h, uint8_t b[512])
{
    memset(b, 0, 512);
    vk_put32(b + 0, h->magic);
    vk_put32(b + 4, h->version);
    vk_put32(b + 8, h->flags);
    vk_put64(b + 12, h->capacity_sectors);
    vk_put64(b + 20, h->grain_sectors);
    vk_put64(b + 28, h->desc_offset_sectors);
    vk_put64(b + 36, h->desc_size_sectors);
    vk_put32(b + 44, h->gtes_per_gt);
    vk_put64(b + 48, h->rgd_offset_sectors);
    vk_put64(b + 56, h->gd_offset_sectors);
    vk_put64(b + 64, h->overhead_sectors);
    b[72] = h->unclean_shutdown;
    memcpy(b + 73, h->newline_chars, 4);
    vk_put16(b + 77, h->compress_algorithm);
}

/* Is the run [off, off+len) sectors inside a file of FILE_SECTORS? */
static bool inside(uint64_t off, uint64_t len, uint64_t file_sectors)
{
    uint64_t end;
    return vk_add_ok(off, len, &end) && end <= file_sectors;
}

int vk_sparse_header_validate(const vk_sparse_header *h, uint64_t file_sectors, const char *file,
                              vk_err *e)
{
    if (h->magic != VK_KDMV_MAGIC)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: magic: not a hosted sparse extent (KDMV)", file);
    if (h->version < 1 || h->version > 3)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: version: %u is not a known sparse version (1-3)",
                       file, h->version);
    uint32_t incompat = h->flags & 0xffff0000u;
    if (incompat & ~VK_FLAGS_KNOWN_INCOMPAT)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: flags: unknown incompatible flags 0x%08x", file,
                       incompat & ~VK_FLAGS_KNOWN_INCOMPAT);
    if ((h->flags & VK_FLAG_MARKERS) && !(h->flags & VK_FLAG_COMPRESSED))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: flags: markers without compression", file);
    if ((h->flags & VK_FLAG_COMPRESSED) && h->compress_algorithm != 1)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: compressAlgorithm: %u is not deflate (1)", file,
                       h->compress_algorithm);
    if ((h->flags & VK_FLAG_NEWLINE_CHECK) && memcmp(h->newline_chars, "\n \r\n", 4) != 0)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: newline check bytes: damaged (file was probably transferred in text mode)",
                       file);
    if (!vk_grain_sectors_ok(h->grain_sectors))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: grainSize: %llu sectors is not a power of two up to %llu",
                       file, (unsigned long long)h->grain_sectors,
                       (unsigned long long)VK_MAX_GRAIN_SECTORS);
    if (!vk_is_pow2(h->gtes_per_gt) || h->gtes_per_gt > VK_MAX_GTES_PER_GT)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: numGTEsPerGT: %u is not a power of two up to %u", file,
                       h->gtes_per_gt, VK_MAX_GTES_PER_GT);
    if (h->capacity_sectors == 0)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: capacity: 0 (a text-descriptor container is not supported)", file);
    /* GD entries are bounded by the capacity; the GD itself must lie in the
     * file (checked below), which bounds the memory a hostile file can claim. */
    if (h->capacity_sectors > (UINT64_C(1) << 48))
        return vk_fail(e, VMDKIT_ELIMIT, "%s: capacity: %llu sectors is beyond any supported size", file,
                       (unsigned long long)h->capacity_sectors);
    if (h->desc_offset_sectors) {
        if (h->desc_offset_sectors < 1 || h->desc_size_sectors > 20480 ||
            !inside(h->desc_offset_sectors, h->desc_size_sectors, file_sectors))
            return vk_fail(e, VMDKIT_EFORMAT,
                           "%s: descriptorOffset/descriptorSize: %llu+%llu sectors lie outside the file",
                           file, (unsigned long long)h->desc_offset_sectors,
                           (unsigned long long)h->desc_size_sectors);
    }
    uint64_t gd_secs = vk_gd_sectors(vk_num_gdes(h));
    if (h->gd_offset_sectors != VK_GD_AT_END) {
        if (h->gd_offset_sectors < 1 || !inside(h->gd_offset_sectors, gd_secs, file_sectors))
            return vk_fail(
                e, VMDKIT_EFORMAT,
                "%s: gdOffset: grain directory at sector %llu (%llu sectors) lies outside the file (%llu sectors)",
                file, (unsigned long long)h->gd_offset_sectors, (unsigned long long)gd_secs,
                (unsigned long long)file_sectors);
    }
    if ((h->flags & VK_FLAG_REDUNDANT_GD) && !(h->flags & VK_FLAG_COMPRESSED)) {
        if (h->rgd_offset_sectors < 1 || !inside(h->rgd_offset_sectors, gd_secs, file_sectors))
            return vk_fail(
                e, VMDKIT_EFORMAT,
                "%s: rgdOffset: redundant grain directory at sector %llu lies outside the file", file,
                (unsigned long long)h->rgd_offset_sectors);
    }
    return 0;
}

void vk_sparse_layout(vk_sparse_header *h, uint64_t desc_sectors, bool redundant)
{
    uint64_t gdes = vk_num_gdes(h);
    uint64_t gd_secs = vk_gd_sectors(gdes);
    uint64_t gt_secs = vk_gt_sectors(h->gtes_per_gt);
    uint64_t next = 1;
    h->desc_offset_sectors = desc_sectors ? 1 : 0;
    h->desc_size_sectors = desc_sectors;
    next += desc_sectors;
    if (redundant) {
        h->rgd_offset_sectors = next;
        next += gd_secs + gdes * gt_secs;
    } else {
        h->rgd_offset_sectors = 0;
    }
    h->gd_offset_sectors = next;
    next += gd_secs + gdes * gt_secs;
    h->overhead_sectors = vk_div_round_up(next, h->grain_sectors) * h->grain_sectors;
}

void vk_marker_decode(const uint8_t *b, vk_marker *m)
{
    m->val = vk_le64(b);
    m->size = vk_le32(b + 8);
    m->type = vk_le32(b + 12);
}

void vk_marker_encode_meta(uint8_t b[512], uint64_t sectors, uint32_t type)
{
    memset(b, 0, 512);
    vk_put64(b, sectors);
    vk_put32(b + 8, 0);
    vk_put32(b + 12, type);
}

enum vk_file_magic vk_file_magic(const uint8_t b[8], uint64_t size)
{
    if (size >= 4 && vk_le32(b) == VK_KDMV_MAGIC)
        return VK_MAGIC_KDMV;
    if (size >= 4 && vk_le32(b) == VK_COWD_MAGIC)
        return VK_MAGIC_COWD;
    if (size >= 8 && vk_le64(b) == VK_SESPARSE_MAGIC)
        return VK_MAGIC_SESPARSE;
    return VK_MAGIC_OTHER;
}
