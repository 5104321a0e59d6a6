/* create.c - new disks of every createType, with VMware's conventions:
 * extent names (-flat, -sNNN, -fNNN), split pieces of 4064 MiB as current
 * products write them (2047 MiB on request; a delta's pieces follow its
 * parent's), geometry per adapter, ddb.uuid / ddb.longContentID /
 * ddb.virtualHWVersion. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "create.h"
#include "holders.h"
#include "path.h"
#include "scan.h"
#include "sparse_header.h"
#include "stream_writer.h"

/* -s001 ... -s999: three digits */
#define MAX_SPLIT_PIECES VK_MAX_SPLIT_PIECES
/* Sectors reserved for an embedded descriptor (as VMware and qemu do). */
#define EMBEDDED_DESC_SECTORS 20u

static const struct {
    vmdkit_create_type type;
    const char *name;
} type_names[] = {
    {VMDKIT_MONOLITHIC_SPARSE, "monolithicSparse"}, {VMDKIT_MONOLITHIC_FLAT, "monolithicFlat"},
    {VMDKIT_TWOGB_SPARSE, "twoGbMaxExtentSparse"},  {VMDKIT_TWOGB_FLAT, "twoGbMaxExtentFlat"},
    {VMDKIT_STREAM_OPTIMIZED, "streamOptimized"},   {VMDKIT_VMFS, "vmfs"},
};

int vmdkit_create_type_parse(const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (strcasecmp(name, type_names[i].name) == 0)
            return (int)type_names[i].type;
    if (strcasecmp(name, "2GbMaxExtentSparse") == 0)
        return VMDKIT_TWOGB_SPARSE;
    if (strcasecmp(name, "2GbMaxExtentFlat") == 0)
        return VMDKIT_TWOGB_FLAT;
    return -1;
}

const char *vmdkit_create_type_name(vmdkit_create_type t)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (type_names[i].type == t)
            return type_names[i].name;
    return "unknown";
}

int vk_hw_version_of(const char *text)
{
    long v = 0;
    for (const char *p = text; p && *p; p++) {
        if (*p < '0' || *p > '9' || v > VK_MAX_HW_VERSION)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v <= VK_MAX_HW_VERSION ? (int)v : 0;
}

int vk_create_descriptor(vk_descriptor *d, const char *create_type, uint64_t capacity_sectors,
                         const char *adapter, int hw_version, vk_err *e)
{
    memset(d, 0, sizeof *d);
    d->version = 1;
    d->parent_cid = VK_CID_NONE;
    char buf[64];
    int r;
    if (!(d->encoding = vk_strdup("UTF-8", e)) || !(d->create_type = vk_strdup(create_type, e)))
        return VMDKIT_ENOMEM;
    uint64_t cyl;
    uint32_t heads, secs;
    if (vmdkit_adapter_name(adapter))
        adapter = vmdkit_adapter_name(adapter); /* VMware's spelling, whatever the caller's case */
    vk_geometry_for(adapter, capacity_sectors, &cyl, &heads, &secs);
    uint8_t u[16];
    vk_random(u, sizeof u);
    /* VMware's disk UUIDs start 60 00 C2 */
    u[0] = 0x60;
    u[1] = 0x00;
    u[2] = 0xc2;
    char uuid[64];
    snprintf(uuid, sizeof uuid,
             "%02x %02x %02x %02x %02x %02x %02x %02x-%02x %02x %02x %02x %02x %02x %02x %02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    uint32_t w[3];
    vk_random(w, sizeof w);
    char lcid[40];
    snprintf(lcid, sizeof lcid, "%08x%08x%08x%08x", w[0], w[1], w[2], 0u);
    snprintf(buf, sizeof buf, "%d", hw_version > 0 ? hw_version : 4);
    char cyl_s[24], heads_s[12], secs_s[12];
    snprintf(cyl_s, sizeof cyl_s, "%llu", (unsigned long long)cyl);
    snprintf(heads_s, sizeof heads_s, "%u", heads);
    snprintf(secs_s, sizeof secs_s, "%u", secs);
    if ((r = vk_descriptor_ddb_set(d, "ddb.adapterType", adapter, e)) ||
        (r = vk_descriptor_ddb_set(d, "ddb.geometry.cylinders", cyl_s, e)) ||
        (r = vk_descriptor_ddb_set(d, "ddb.geometry.heads", heads_s, e)) ||
        (r = vk_descriptor_ddb_set(d, "ddb.geometry.sectors", secs_s, e)) ||
        (r = vk_descriptor_ddb_set(d, "ddb.longContentID", lcid, e)) ||
        (r = vk_descriptor_ddb_set(d, "ddb.uuid", uuid, e)) ||
        (r = vk_descriptor_ddb_set(d, "ddb.virtualHWVersion", buf, e)) ||
        (r = vk_descriptor_ddb_set(d, "ddb.toolsVersion", "2147483647", e)))
        return r;
    /* sets the CID and the low word of longContentID together */
    return vk_descriptor_set_cid(d, vk_random_cid(), e);
}

static int create_file(const char *path, int *fd, vk_err *e)
{
    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (*fd < 0) {
        if (errno == EEXIST)
            return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", path);
        return vk_fail_errno(e, errno, "%s: create", path);
    }
    return 0;
}

int vk_create_sparse_extent(const char *path, uint64_t capacity_sectors, const char *desc_text,
                            bool zeroed_grain, vk_err *e)
{
    vk_sparse_header h = {
        .magic = VK_KDMV_MAGIC,
        .version = zeroed_grain ? 2 : 1,
        .flags =
            VK_FLAG_NEWLINE_CHECK | VK_FLAG_REDUNDANT_GD | (zeroed_grain ? VK_FLAG_ZEROED_GRAIN : 0),
        .capacity_sectors = capacity_sectors,
        .grain_sectors = VK_DEFAULT_GRAIN_SECTORS,
        .gtes_per_gt = VK_DEFAULT_GTES_PER_GT,
        .newline_chars = {'\n', ' ', '\r', '\n'},
    };
    size_t desc_len = desc_text ? strlen(desc_text) : 0;
    if (desc_len > EMBEDDED_DESC_SECTORS * VK_SECTOR)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: descriptor of %zu bytes does not fit the embedded area",
                       path, desc_len);
    vk_sparse_layout(&h, desc_text ? EMBEDDED_DESC_SECTORS : 0, true);
    uint64_t gdes = vk_num_gdes(&h);
    uint64_t gt_secs = vk_gt_sectors(h.gtes_per_gt);
    uint64_t gd_bytes = vk_gd_sectors(gdes) * VK_SECTOR;
    if (h.overhead_sectors > VK_MAX_EXTENT_FILE_SECTORS)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: capacity too large for a sparse extent", path);
    int fd;
    int r = create_file(path, &fd, e);
    if (r)
        return r;
    uint8_t *gd = vk_calloc(1, (size_t)gd_bytes, e);
    uint8_t *rgd = vk_calloc(1, (size_t)gd_bytes, e);
    if (!gd || !rgd)
        r = VMDKIT_ENOMEM;
    /* every grain table is pre-allocated, as VMware does; the tables are
     * all zero, so they stay holes in the file until a grain is written
     * (a new delta of a large disk then costs only a few KiB) */
    for (uint64_t i = 0; !r && i < gdes; i++) {
        vk_put32(rgd + 4 * i, (uint32_t)(h.rgd_offset_sectors + vk_gd_sectors(gdes) + i * gt_secs));
        vk_put32(gd + 4 * i, (uint32_t)(h.gd_offset_sectors + vk_gd_sectors(gdes) + i * gt_secs));
    }
    /* order: tables and descriptor, then the header last, so a crash never
     * leaves a file that looks like a complete sparse extent */
    if (!r && ftruncate(fd, (off_t)(h.overhead_sectors * VK_SECTOR)) != 0)
        r = vk_fail_errno(e, errno, "%s: extend", path);
    if (!r && desc_text) /* the rest of the area stays NUL, as readers expect */
        r = vk_pwrite_full(fd, desc_text, desc_len, VK_SECTOR, path, e);
    if (!r)
        r = vk_pwrite_full(fd, rgd, (size_t)gd_bytes, h.rgd_offset_sectors * VK_SECTOR, path, e);
    if (!r)
        r = vk_pwrite_full(fd, gd, (size_t)gd_bytes, h.gd_offset_sectors * VK_SECTOR, path, e);
    if (!r)
        r = vk_fdatasync(fd, path, e);
    if (!r) {
        uint8_t hb[512];
        vk_sparse_header_encode(&h, hb);
        r = vk_pwrite_full(fd, hb, sizeof hb, 0, path, e);
    }
    if (!r)
        r = vk_fdatasync(fd, path, e);
    free(gd);
    free(rgd);
    if (close(fd) != 0 && !r)
        r = vk_fail_errno(e, errno, "%s: close", path);
    if (r)
        unlink(path);
    return r;
}

int vk_create_flat_file(const char *path, uint64_t sectors, vk_err *e)
{
    int fd;
    int r = create_file(path, &fd, e);
    if (r)
        return r;
    /* host-sparse: holes read as zeros */
    if (ftruncate(fd, (off_t)(sectors * VK_SECTOR)) != 0)
        r = vk_fail_errno(e, errno, "%s: set size", path);
    if (!r)
        r = vk_fdatasync(fd, path, e);
    close(fd);
    if (r)
        unlink(path);
    return r;
}

/* Extent file name for piece I (1-based) of a split disk, or the single
 * extent of a flat disk: "-s001", "-f001", "-flat". */
static char *extent_path(const char *path, const char *kind, unsigned i, vk_err *e)
{
    char suffix[16];
    if (i == 0)
        snprintf(suffix, sizeof suffix, "-%s", kind);
    else
        snprintf(suffix, sizeof suffix, "-%s%03u", kind, i);
    return vk_path_with_suffix(path, suffix, e);
}

static int write_descriptor_file(const char *path, const vk_descriptor *d, vk_err *e)
{
    char *text;
    size_t len;
    int r = vk_descriptor_format(d, &text, &len, e);
    if (r)
        return r;
    int fd;
    if (!(r = create_file(path, &fd, e))) {
        r = vk_pwrite_full(fd, text, len, 0, path, e);
        if (!r)
            r = vk_fdatasync(fd, path, e);
        close(fd);
        if (r)
            unlink(path);
    }
    free(text);
    return r;
}

/* Refuse up front when any file the disk would consist of exists. */
static int check_free(const char *path, vk_err *e)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", path);
    return 0;
}

/* Piece sizes of a split disk of CAP sectors: PIECE each, the last smaller. */
static int uniform_pieces(const char *path, uint64_t cap, uint64_t piece, uint64_t **sizes, size_t *n,
                          vk_err *e)
{
    uint64_t pieces = vk_div_round_up(cap, piece);
    if (pieces > MAX_SPLIT_PIECES)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: size needs %llu pieces, more than %u", path,
                       (unsigned long long)pieces, MAX_SPLIT_PIECES);
    uint64_t *s = vk_calloc((size_t)pieces, sizeof *s, e);
    if (!s)
        return VMDKIT_ENOMEM;
    for (uint64_t i = 0; i < pieces; i++)
        s[i] = vk_min(piece, cap - i * piece);
    *sizes = s;
    *n = (size_t)pieces;
    return 0;
}

/* A split disk whose N pieces have the given SIZES (sectors). */
static int create_split(const char *path, vk_descriptor *d, const uint64_t *sizes, size_t pieces,
                        bool sparse, bool zeroed, vk_err *e)
{
    if (pieces > MAX_SPLIT_PIECES)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: %zu pieces, more than %u", path, pieces, MAX_SPLIT_PIECES);
    char **names = vk_calloc(pieces ? pieces : 1, sizeof *names, e);
    if (!names)
        return VMDKIT_ENOMEM;
    int r = check_free(path, e);
    for (size_t i = 0; !r && i < pieces; i++) {
        if (!(names[i] = extent_path(path, sparse ? "s" : "f", (unsigned)i + 1, e)))
            r = VMDKIT_ENOMEM;
        else
            r = check_free(names[i], e);
    }
    size_t made = 0;
    for (size_t i = 0; !r && i < pieces; i++) {
        r = sparse ? vk_create_sparse_extent(names[i], sizes[i], NULL, zeroed, e)
                   : vk_create_flat_file(names[i], sizes[i], e);
        if (!r) {
            made++;
            r = vk_descriptor_add_extent(d, VK_ACCESS_RW, sizes[i], sparse ? VK_EXT_SPARSE : VK_EXT_FLAT,
                                         vk_path_basename(names[i]), !sparse, 0, e);
        }
    }
    /* the descriptor goes last: until it exists there is no disk */
    if (!r)
        r = write_descriptor_file(path, d, e);
    for (size_t i = 0; i < pieces; i++) {
        if (r && i < made)
            unlink(names[i]);
        free(names[i]);
    }
    free(names);
    return r;
}

static int create_split_uniform(const char *path, vk_descriptor *d, uint64_t cap, uint64_t piece,
                                bool sparse, bool zeroed, vk_err *e)
{
    uint64_t *sizes = NULL;
    size_t n = 0;
    int r = uniform_pieces(path, cap, piece, &sizes, &n, e);
    if (r)
        return r;
    r = create_split(path, d, sizes, n, sparse, zeroed, e);
    free(sizes);
    return r;
}

static int create_single_flat(const char *path, vk_descriptor *d, uint64_t cap, bool vmfs, vk_err *e)
{
    char *flat = extent_path(path, "flat", 0, e);
    if (!flat)
        return VMDKIT_ENOMEM;
    int r = check_free(path, e);
    if (!r)
        r = vk_create_flat_file(flat, cap, e);
    if (!r) {
        r = vk_descriptor_add_extent(d, VK_ACCESS_RW, cap, vmfs ? VK_EXT_VMFS : VK_EXT_FLAT,
                                     vk_path_basename(flat), !vmfs, 0, e);
        if (!r)
            r = write_descriptor_file(path, d, e);
        if (r)
            unlink(flat);
    }
    free(flat);
    return r;
}

int vk_create_stream_descriptor(const char *path, uint64_t cap, const char *adapter, int hw, char **text,
                                vk_err *e)
{
    vk_descriptor d;
    int r = vk_create_descriptor(&d, "streamOptimized", cap, adapter, hw, e);
    if (!r)
        r = vk_descriptor_add_extent(&d, VK_ACCESS_RW, cap, VK_EXT_SPARSE, vk_path_basename(path), false,
                                     0, e);
    size_t len;
    if (!r)
        r = vk_descriptor_format(&d, text, &len, e);
    vk_descriptor_free(&d);
    return r;
}

bool vk_create_fits(vmdkit_create_type type, uint64_t capacity_sectors)
{
    if (capacity_sectors > (UINT64_C(1) << 40))
        return false;
    switch (type) {
    case VMDKIT_MONOLITHIC_SPARSE:
    case VMDKIT_STREAM_OPTIMIZED:
        return capacity_sectors < VK_MAX_EXTENT_FILE_SECTORS;
    case VMDKIT_TWOGB_SPARSE:
    case VMDKIT_TWOGB_FLAT:
        return vk_div_round_up(capacity_sectors, VMDKIT_SPLIT_4G_SECTORS) <= MAX_SPLIT_PIECES;
    default:
        return true;
    }
}

int vk_create_check_opts(const char *path, const vmdkit_create_opts *o, uint64_t *cap, vk_err *e)
{
    const char *adapter = o->adapter ? o->adapter : "ide";
    if (!vmdkit_adapter_name(adapter))
        return vk_fail(e, VMDKIT_EINVAL,
                       "%s: adapter type \"%s\": not ide, buslogic, lsilogic or legacyESX", path,
                       adapter);
    if (o->size_bytes == 0)
        return vk_fail(e, VMDKIT_EINVAL, "%s: size: must be larger than 0", path);
    *cap = vk_div_round_up(o->size_bytes, VK_SECTOR);
    if (o->type > VMDKIT_VMFS)
        return vk_fail(e, VMDKIT_EINVAL, "%s: createType: unknown", path);
    if (o->split_sectors && o->type != VMDKIT_TWOGB_SPARSE && o->type != VMDKIT_TWOGB_FLAT)
        return vk_fail(e, VMDKIT_EINVAL, "%s: a split size applies to twoGbMaxExtent disks only", path);
    if (o->split_sectors &&
        (o->split_sectors % VK_DEFAULT_GRAIN_SECTORS || o->split_sectors > VMDKIT_SPLIT_4G_SECTORS))
        return vk_fail(e, VMDKIT_EINVAL,
                       "%s: split size of %llu sectors: must be a multiple of %u sectors, at most %llu",
                       path, (unsigned long long)o->split_sectors, (unsigned)VK_DEFAULT_GRAIN_SECTORS,
                       (unsigned long long)VMDKIT_SPLIT_4G_SECTORS);
    bool sparse = o->type == VMDKIT_MONOLITHIC_SPARSE || o->type == VMDKIT_TWOGB_SPARSE ||
                  o->type == VMDKIT_STREAM_OPTIMIZED;
    if (o->zeroed_grain && (!sparse || o->type == VMDKIT_STREAM_OPTIMIZED))
        return vk_fail(e, VMDKIT_EINVAL, "%s: zeroed grains exist only in sparse disks", path);
    if (o->parent && (o->type != VMDKIT_MONOLITHIC_SPARSE && o->type != VMDKIT_TWOGB_SPARSE))
        return vk_fail(e, VMDKIT_EINVAL,
                       "%s: a disk with a parent must be monolithicSparse or twoGbMaxExtentSparse",
                       path);
    /* GTEs are 32-bit sector numbers: a monolithic sparse file ends below 2 TiB */
    if (o->type == VMDKIT_MONOLITHIC_SPARSE && *cap >= VK_MAX_EXTENT_FILE_SECTORS)
        return vk_fail(e, VMDKIT_ELIMIT,
                       "%s: size: monolithicSparse disks hold less than 2 TiB; use twoGbMaxExtentSparse",
                       path);
    if (*cap > (UINT64_C(1) << 40))
        return vk_fail(e, VMDKIT_ELIMIT, "%s: size: %llu bytes is beyond what vmdkit creates", path,
                       (unsigned long long)o->size_bytes);
    return 0;
}

int vk_check_depth_for_child(const char *parent, vk_err *e)
{
    char *cur = vk_strdup(parent, e);
    if (!cur)
        return VMDKIT_ENOMEM;
    int links = 0;
    while (cur && links < VK_MAX_CHAIN_LINKS) {
        links++;
        char *next = vk_hint_parent_of(cur);
        free(cur);
        cur = next;
    }
    free(cur);
    if (links >= VK_MAX_CHAIN_LINKS)
        return vk_fail(
            e, VMDKIT_ELIMIT,
            "%s: parent chain: already %d links deep, the most a disk may have: a child could never be opened",
            parent, VK_MAX_CHAIN_LINKS);
    return 0;
}

/* Fill parentCID and the hint from the parent disk at o->parent. */
static int set_parent(const char *path, vk_descriptor *d, const vmdkit_create_opts *o, uint64_t cap,
                      vk_err *e)
{
    int r = vk_check_parent_arg(o->parent, e);
    if (r)
        return r;
    vmdkit_disk *pd;
    r = vk_check_depth_for_child(o->parent, e);
    if (r || (r = vmdkit_open(o->parent, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT, &pd, e)))
        return r;
    uint32_t pcid = pd->top->desc.cid;
    uint64_t pcap = pd->top->capacity_sectors;
    bool raw = pd->top->raw, bare = pd->top->bare;
    vmdkit_close(pd, NULL);
    if (raw)
        return vk_fail(e, VMDKIT_EINVAL, "%s: parent is not a VMDK", o->parent);
    if (bare)
        return vk_fail(e, VMDKIT_EINVAL, "%s: " VK_PIECE_OF_DISK ", never a parent: name its descriptor",
                       o->parent);
    if (pcap != cap)
        return vk_fail(e, VMDKIT_ECHAIN, "%s: size %llu sectors differs from parent %s (%llu sectors)",
                       path, (unsigned long long)cap, o->parent, (unsigned long long)pcap);
    d->parent_cid = pcid;
    char *hint;
    if (o->parent_absolute) {
        hint = vk_path_absolute(o->parent, e);
    } else {
        char *dir = vk_path_dirname(path, e);
        hint = dir ? vk_path_relative(dir, o->parent, e) : NULL;
        free(dir);
    }
    if (!hint)
        return e ? e->code : VMDKIT_ENOMEM;
    d->parent_hint = hint;
    return 0;
}

int vmdkit_create(const char *path, const vmdkit_create_opts *opts, vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_create_opts known;
    int r =
        vk_entry_opts(&e, err, &local, NULL, 0, NULL, &known, sizeof known, opts, "vmdkit_create_opts");
    if (r)
        return r;
    const vmdkit_create_opts *o = &known;
    uint64_t cap;
    r = vk_create_check_opts(path, o, &cap, e);
    if (r)
        return r;
    const char *adapter = vmdkit_adapter_name(o->adapter ? o->adapter : "ide");
    if (o->type == VMDKIT_STREAM_OPTIMIZED) {
        char *text;
        if ((r = vk_create_stream_descriptor(path, cap, adapter, o->hw_version, &text, e)))
            return r;
        vk_stream_writer *w;
        r = vk_stream_writer_open(path, cap, text, 1, 0, &w, e);
        free(text);
        return r ? r : vk_stream_writer_finish(w, e);
    }
    vk_descriptor d;
    if ((r = vk_create_descriptor(&d, vmdkit_create_type_name(o->type), cap, adapter, o->hw_version, e)))
        goto out;
    if (o->parent && (r = set_parent(path, &d, o, cap, e)))
        goto out;
    switch (o->type) {
    case VMDKIT_MONOLITHIC_SPARSE: {
        if ((r = vk_descriptor_add_extent(&d, VK_ACCESS_RW, cap, VK_EXT_SPARSE, vk_path_basename(path),
                                          false, 0, e)))
            break;
        char *text;
        size_t len;
        if ((r = vk_descriptor_format(&d, &text, &len, e)))
            break;
        r = vk_create_sparse_extent(path, cap, text, o->zeroed_grain, e);
        free(text);
        break;
    }
    case VMDKIT_TWOGB_SPARSE:
    case VMDKIT_TWOGB_FLAT: {
        uint64_t piece = o->split_sectors ? o->split_sectors : VMDKIT_SPLIT_4G_SECTORS;
        bool sparse = o->type == VMDKIT_TWOGB_SPARSE;
        r = create_split_uniform(path, &d, cap, piece, sparse, sparse && o->zeroed_grain, e);
        break;
    }
    case VMDKIT_MONOLITHIC_FLAT:
        r = create_single_flat(path, &d, cap, false, e);
        break;
    case VMDKIT_VMFS:
        r = create_single_flat(path, &d, cap, true, e);
        break;
    default:
        r = vk_fail(e, VMDKIT_EINVAL, "%s: createType: unknown", path);
    }
out:
    vk_descriptor_free(&d);
    return r;
}

/* ---- deltas ---- */

static bool is_split_type(const char *t)
{
    return t &&
           (strcasecmp(t, "twoGbMaxExtentSparse") == 0 || strcasecmp(t, "twoGbMaxExtentFlat") == 0 ||
            strcasecmp(t, "2GbMaxExtentSparse") == 0 || strcasecmp(t, "2GbMaxExtentFlat") == 0);
}

/* Copy a ddb key from the parent when it has one. */
static int inherit_ddb(vk_descriptor *d, const vk_descriptor *parent, const char *key, vk_err *e)
{
    const char *v = vk_descriptor_ddb_get(parent, key);
    return v ? vk_descriptor_ddb_set(d, key, v, e) : 0;
}

int vk_parent_hint_for(const char *child_path, const char *parent_path, bool absolute, char **hint,
                       vk_err *e)
{
    if (absolute) {
        *hint = vk_path_absolute(parent_path, e);
    } else {
        char *dir = vk_path_dirname(child_path, e);
        *hint = dir ? vk_path_relative(dir, parent_path, e) : NULL;
        free(dir);
    }
    return *hint ? 0 : (e ? e->code : VMDKIT_ENOMEM);
}

int vmdkit_create_delta(const char *parent_path, const char *new_path, unsigned flags, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    if (flags & ~(unsigned)VMDKIT_DELTA_ABSOLUTE_HINT)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_create_delta: flags %#x: unknown", flags);
    bool absolute_hint = (flags & VMDKIT_DELTA_ABSOLUTE_HINT) != 0;
    vmdkit_disk *pd;
    int r = vk_check_depth_for_child(parent_path, e);
    if (r || (r = vmdkit_open(parent_path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT, &pd, e)))
        return r;
    vk_link *p = pd->top;
    vk_descriptor d;
    memset(&d, 0, sizeof d);
    /* a parent must not change once it has a child: refuse one that
     * VMware, QEMU or another vmdkit is writing */
    if ((r = vk_disk_check_no_writer(pd, e)))
        goto out;
    if (p->raw) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: a raw image cannot be a parent; convert it to VMDK first",
                    parent_path);
        goto out;
    }
    if (p->bare) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: " VK_PIECE_OF_DISK ", never a parent: name its descriptor",
                    parent_path);
        goto out;
    }
    bool split = is_split_type(p->desc.create_type);
    const char *adapter = vmdkit_adapter_name(vk_descriptor_ddb_get(&p->desc, "ddb.adapterType"));
    if (!adapter)
        adapter = "ide";
    int hwv = vk_hw_version_of(vk_descriptor_ddb_get(&p->desc, "ddb.virtualHWVersion"));
    uint64_t cap = p->capacity_sectors;
    if (!split && cap >= VK_MAX_EXTENT_FILE_SECTORS)
        split = true; /* a monolithic sparse file cannot address that much */
    if ((r = vk_create_descriptor(&d, split ? "twoGbMaxExtentSparse" : "monolithicSparse", cap, adapter,
                                  hwv, e)))
        goto out;
    /* the parent's geometry and tools version, not a recomputed one */
    if ((r = inherit_ddb(&d, &p->desc, "ddb.geometry.cylinders", e)) ||
        (r = inherit_ddb(&d, &p->desc, "ddb.geometry.heads", e)) ||
        (r = inherit_ddb(&d, &p->desc, "ddb.geometry.sectors", e)) ||
        (r = inherit_ddb(&d, &p->desc, "ddb.toolsVersion", e)))
        goto out;
    d.parent_cid = p->desc.cid;
    if ((r = vk_parent_hint_for(new_path, parent_path, absolute_hint, &d.parent_hint, e)))
        goto out;
    if (split && is_split_type(p->desc.create_type)) {
        /* the parent's piece sizes: a delta is laid out like its parent */
        uint64_t *sizes = vk_calloc(p->desc.n_extents ? p->desc.n_extents : 1, sizeof *sizes, e);
        if (!sizes) {
            r = VMDKIT_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < p->desc.n_extents; i++)
            sizes[i] = p->desc.extents[i].size_sectors;
        r = create_split(new_path, &d, sizes, p->desc.n_extents, true, false, e);
        free(sizes);
    } else if (split) {
        r = create_split_uniform(new_path, &d, cap, VMDKIT_SPLIT_4G_SECTORS, true, false, e);
    } else {
        if ((r = check_free(new_path, e)))
            goto out;
        if ((r = vk_descriptor_add_extent(&d, VK_ACCESS_RW, cap, VK_EXT_SPARSE,
                                          vk_path_basename(new_path), false, 0, e)))
            goto out;
        char *text;
        size_t len;
        if ((r = vk_descriptor_format(&d, &text, &len, e)))
            goto out;
        r = vk_create_sparse_extent(new_path, cap, text, false, e);
        free(text);
    }
out:
    vk_descriptor_free(&d);
    vmdkit_close(pd, NULL);
    return r;
}

/* "dir/Base-000003.vmdk" -> stem "dir/Base" (a trailing -NNNNNN is dropped). */
static char *snapshot_stem(const char *path, vk_err *e)
{
    const char *base = vk_path_basename(path);
    const char *dot = strrchr(base, '.');
    size_t len = dot ? (size_t)(dot - path) : strlen(path);
    if (len >= 7 && path[len - 7] == '-' && (size_t)(path + len - 7 - base) > 0) {
        bool digits = true;
        for (size_t i = len - 6; i < len; i++)
            digits = digits && path[i] >= '0' && path[i] <= '9';
        if (digits)
            len -= 7;
    }
    return vk_strndup(path, len, e);
}

int vmdkit_snapshot(const char *disk_path, unsigned flags, char **new_path, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    if (!new_path)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_snapshot: new_path is required");
    *new_path = NULL;
    char path[PATH_MAX];
    int r = vk_snapshot_beside(disk_path, flags, path, sizeof path, e);
    if (!r && !(*new_path = strdup(path)))
        r = vk_fail(e, VMDKIT_ENOMEM, "%s: out of memory", disk_path);
    return r;
}

int vk_snapshot_beside(const char *disk_path, unsigned flags, char *new_path, size_t new_path_size,
                       vk_err *e)
{
    char *stem = snapshot_stem(disk_path, e);
    if (!stem)
        return VMDKIT_ENOMEM;
    int r = VMDKIT_EEXIST;
    for (unsigned n = 1; n <= 999999; n++) {
        char cand[4096];
        int len = snprintf(cand, sizeof cand, "%s-%06u.vmdk", stem, n);
        if (len < 0 || (size_t)len >= sizeof cand || (size_t)len >= new_path_size) {
            r = vk_fail(e, VMDKIT_ELIMIT, "%s: path too long", disk_path);
            break;
        }
        struct stat st;
        char *s001 = vk_path_with_suffix(cand, "-s001", NULL);
        bool taken = lstat(cand, &st) == 0 || (s001 && lstat(s001, &st) == 0);
        free(s001);
        if (taken)
            continue; /* numbers of deleted snapshots are reused */
        r = vmdkit_create_delta(disk_path, cand, flags, e);
        if (r == VMDKIT_EEXIST)
            continue; /* lost a race with another creator */
        if (!r)
            memcpy(new_path, cand, (size_t)len + 1);
        break;
    }
    if (r == VMDKIT_EEXIST)
        vk_fail(e, r, "%s: no free snapshot number", disk_path);
    free(stem);
    return r;
}
