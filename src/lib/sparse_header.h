/* sparse_header.h - the 512-byte hosted sparse (KDMV) header and stream
 * markers: decode, validate, encode.  Pure: no I/O. */
#ifndef VK_SPARSE_HEADER_H
#define VK_SPARSE_HEADER_H

#include <stdbool.h>
#include <stdint.h>
#include "vk.h"

#define VK_KDMV_MAGIC 0x564d444bu /* "KDMV" little-endian */
#define VK_COWD_MAGIC 0x44574f43u /* "COWD" */
#define VK_SESPARSE_MAGIC 0xcafebabeu

/* What the first 8 bytes B of a file of SIZE bytes say it is.  0 is left
 * free for a caller's "not looked at". */
enum vk_file_magic { VK_MAGIC_OTHER = 1, VK_MAGIC_KDMV, VK_MAGIC_COWD, VK_MAGIC_SESPARSE };
enum vk_file_magic vk_file_magic(const uint8_t b[8], uint64_t size);

/* What a sparse file without a descriptor of its own is, in messages: the
 * piece of a split disk that its descriptor names (never a disk to write
 * to, nor a parent). */
#define VK_PIECE_OF_DISK "is one piece of a disk (a sparse extent without a descriptor of its own)"

#define VK_FLAG_NEWLINE_CHECK 0x1u
#define VK_FLAG_REDUNDANT_GD 0x2u
#define VK_FLAG_ZEROED_GRAIN 0x4u
#define VK_FLAG_COMPRESSED 0x10000u
#define VK_FLAG_MARKERS 0x20000u
#define VK_FLAGS_KNOWN_INCOMPAT (VK_FLAG_COMPRESSED | VK_FLAG_MARKERS)

#define VK_GD_AT_END UINT64_C(0xffffffffffffffff)
#define VK_GTE_ZEROED 1u /* zeroed-grain GTE (flag bit 2) */
#define VK_DEFAULT_GRAIN_SECTORS 128u
#define VK_DEFAULT_GTES_PER_GT 512u
/* The largest grainSize accepted on open, by every sparse driver (KDMV,
 * streamOptimized, COWD) and by the checker.  VMware, VirtualBox, qemu and
 * vmdkit write 128 sectors (COWD: 1); qemu reads up to 1 GiB, but a write
 * into a new grain costs a whole grain of memory and disk, so a tiny hostile
 * file could cost 1 GiB per written byte.  1 MiB keeps a 16x margin. */
#define VK_MAX_GRAIN_SECTORS 2048u
#define VK_MAX_GTES_PER_GT 4096u
#define VK_MAX_EXTENT_FILE_SECTORS (UINT64_C(1) << 32) /* GTEs are uint32 */

/* stream marker types */
#define VK_MARKER_EOS 0u
#define VK_MARKER_GT 1u
#define VK_MARKER_GD 2u
#define VK_MARKER_FOOTER 3u

typedef struct vk_sparse_header {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint64_t capacity_sectors;
    uint64_t grain_sectors;
    uint64_t desc_offset_sectors;
    uint64_t desc_size_sectors;
    uint32_t gtes_per_gt;
    uint64_t rgd_offset_sectors;
    uint64_t gd_offset_sectors;
    uint64_t overhead_sectors;
    uint8_t unclean_shutdown;
    uint8_t newline_chars[4]; /* '\n', ' ', '\r', '\n' */
    uint16_t compress_algorithm;
} vk_sparse_header;

/* A grainSize every driver accepts: a power of two up to VK_MAX_GRAIN_SECTORS. */
static inline bool vk_grain_sectors_ok(uint64_t sectors)
{
    return vk_is_pow2(sectors) && sectors <= VK_MAX_GRAIN_SECTORS;
}

/* Decode 512 bytes (no validation beyond the magic). */
void vk_sparse_header_decode(const uint8_t buf[512], vk_sparse_header *h);
/* Encode into 512 bytes (padding zeroed). */
void vk_sparse_header_encode(const vk_sparse_header *h, uint8_t buf[512]);

/*
 * Validate a decoded header for a file of FILE_SECTORS sectors: magic,
 * version (1..3), flags (unknown incompatible bits, markers without
 * compression), newline bytes, grain size (vk_grain_sectors_ok; 8+ for
 * writes is checked elsewhere), GT size, descriptor / GD / RGD inside the
 * file (unless GD_AT_END), overhead.  FILE names the file in messages.
 * Returns VMDKIT_EFORMAT / VMDKIT_EUNSUPPORTED / VMDKIT_ELIMIT.
 */
int vk_sparse_header_validate(const vk_sparse_header *h, uint64_t file_sectors, const char *file,
                              vk_err *e);

/* Grain math for an extent of CAPACITY sectors. */
static inline uint64_t vk_gt_coverage_sectors(const vk_sparse_header *h)
{
    return (uint64_t)h->gtes_per_gt * h->grain_sectors;
}
static inline uint64_t vk_num_gdes(const vk_sparse_header *h)
{
    return vk_div_round_up(h->capacity_sectors, vk_gt_coverage_sectors(h));
}
static inline uint64_t vk_gd_sectors(uint64_t num_gdes)
{
    return vk_div_round_up(num_gdes * 4, VK_SECTOR);
}
static inline uint64_t vk_gt_sectors(uint32_t gtes_per_gt)
{
    return vk_div_round_up((uint64_t)gtes_per_gt * 4, VK_SECTOR);
}

/*
 * Layout of a new (non-stream) sparse extent, VMware's order: header,
 * embedded descriptor (DESC_SECTORS, may be 0), redundant GD + GTs (when
 * REDUNDANT), GD + GTs, padding to a grain multiple.  Fills the offsets and
 * overhead in H (which must have capacity, grain size and GT size set).
 */
void vk_sparse_layout(vk_sparse_header *h, uint64_t desc_sectors, bool redundant);

/* Stream marker (12-byte prefix of a 512-byte sector). */
typedef struct vk_marker {
    uint64_t val;  /* grain: LBA; metadata: sectors following */
    uint32_t size; /* grain: compressed bytes; metadata: 0 */
    uint32_t type; /* metadata only */
} vk_marker;

void vk_marker_decode(const uint8_t *buf, vk_marker *m);
void vk_marker_encode_meta(uint8_t buf[512], uint64_t sectors, uint32_t type);

#endif
