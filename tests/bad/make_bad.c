/*
 * make_bad.c - write the malformed images and descriptors of tests/bad.
 *
 *   make_bad OUTDIR
 *
 * Every file is built here from scratch, byte by byte, so the corpus does
 * not depend on any other tool: tiny hosted sparse extents (grains of 8
 * sectors, one grain table), tiny streamOptimized files whose grains are
 * zlib streams of stored (uncompressed) deflate blocks, ESX COWD extents,
 * and text descriptors.  Each case starts from a valid file and breaks one
 * thing.  tests/bad/EXPECTED says how vmdkit must react to each; run.sh
 * checks that the committed files equal what this program writes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECTOR 512u
#define MAX_FILE (64u * 1024u)

static const char *outdir;
static uint8_t img[MAX_FILE];
static size_t img_len;

/* ---- bytes ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void save_bytes(const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_bad: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void save_img(const char *name) { save_bytes(name, img, img_len); }

static void save_text(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void save_text(const char *name, const char *fmt, ...)
{
    static char text[MAX_FILE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof text) {
        fprintf(stderr, "make_bad: %s: text too long\n", name);
        exit(1);
    }
    save_bytes(name, text, (size_t)n);
}

/* ---- hosted sparse (KDMV) ---- */

/* Header field offsets. */
enum {
    H_MAGIC = 0,
    H_VERSION = 4,
    H_FLAGS = 8,
    H_CAPACITY = 12,
    H_GRAIN = 20,
    H_DESC_OFF = 28,
    H_DESC_SIZE = 36,
    H_GTES = 44,
    H_RGD = 48,
    H_GD = 56,
    H_OVERHEAD = 64,
    H_UNCLEAN = 72,
    H_NEWLINE = 73,
    H_ALGORITHM = 77,
};

#define SP_CAPACITY 256u /* sectors: 32 grains of 8 sectors */
#define SP_GRAIN 8u
#define SP_GTES 512u
#define SP_DESC 1u /* embedded descriptor: sectors 1-2 */
#define SP_RGD 3u  /* redundant directory, table at 4-7 */
#define SP_RGT 4u
#define SP_GD 8u /* directory, table at 9-12 */
#define SP_GT 9u
#define SP_OVERHEAD 16u
#define SP_GRAIN0 16u /* grain 0 at sector 16, grain 1 at 24 */
#define SP_GRAIN1 24u

static void header(uint8_t *h, uint32_t version, uint32_t flags, uint64_t capacity, uint64_t grain,
                   uint64_t desc_off, uint64_t desc_size, uint32_t gtes, uint64_t rgd, uint64_t gd,
                   uint64_t overhead)
{
    memset(h, 0, SECTOR);
    memcpy(h + H_MAGIC, "KDMV", 4);
    put32(h + H_VERSION, version);
    put32(h + H_FLAGS, flags);
    put64(h + H_CAPACITY, capacity);
    put64(h + H_GRAIN, grain);
    put64(h + H_DESC_OFF, desc_off);
    put64(h + H_DESC_SIZE, desc_size);
    put32(h + H_GTES, gtes);
    put64(h + H_RGD, rgd);
    put64(h + H_GD, gd);
    put64(h + H_OVERHEAD, overhead);
    memcpy(h + H_NEWLINE, "\n \r\n", 4);
}

static void fill_grain(uint8_t *p, uint8_t seed)
{
    for (unsigned i = 0; i < SP_GRAIN * SECTOR; i++)
        p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

static void embed_descriptor(uint8_t *at, const char *create_type, const char *extent_line)
{
    snprintf((char *)at, 2 * SECTOR,
             "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=ffffffff\n"
             "createType=\"%s\"\n\n# Extent description\n%s\n\n# The Disk Data Base\n#DDB\n\n"
             "ddb.adapterType = \"ide\"\nddb.geometry.cylinders = \"1\"\n"
             "ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\n",
             create_type, extent_line);
}

/* A valid monolithicSparse file of 32 sectors: header, embedded descriptor,
 * redundant directory and table, directory and table, two data grains. */
static void base_sparse(uint32_t flags)
{
    memset(img, 0, sizeof img);
    header(img, flags & 4 ? 2 : 1, flags, SP_CAPACITY, SP_GRAIN, SP_DESC, 2, SP_GTES, SP_RGD, SP_GD,
           SP_OVERHEAD);
    embed_descriptor(img + SP_DESC * SECTOR, "monolithicSparse", "RW 256 SPARSE \"base.vmdk\"");
    put32(img + SP_RGD * SECTOR, SP_RGT);
    put32(img + SP_GD * SECTOR, SP_GT);
    for (unsigned t = 0; t < 2; t++) {
        uint8_t *gt = img + (t ? SP_GT : SP_RGT) * SECTOR;
        put32(gt + 0, SP_GRAIN0);
        put32(gt + 4, SP_GRAIN1);
        if (flags & 4)
            put32(gt + 8, 1); /* grain 2: a zeroed-grain entry */
    }
    fill_grain(img + SP_GRAIN0 * SECTOR, 0x11);
    fill_grain(img + SP_GRAIN1 * SECTOR, 0x22);
    img_len = (SP_GRAIN1 + SP_GRAIN) * SECTOR;
}

static void set32(size_t off, uint32_t v) { put32(img + off, v); }
static void set64(size_t off, uint64_t v) { put64(img + off, v); }
/* Entry I of the primary grain table / both tables. */
static void set_gte(unsigned i, uint32_t v) { put32(img + SP_GT * SECTOR + 4 * i, v); }
static void set_both_gte(unsigned i, uint32_t v)
{
    set_gte(i, v);
    put32(img + SP_RGT * SECTOR + 4 * i, v);
}

/* An empty monolithicSparse file whose capacity is one grain of GRAIN
 * sectors (nothing allocated: the file stays small). */
static void big_grain_sparse(uint32_t grain)
{
    char line[64];
    base_sparse(3);
    set64(H_CAPACITY, grain);
    set64(H_GRAIN, grain);
    snprintf(line, sizeof line, "RW %u SPARSE \"base.vmdk\"", grain);
    memset(img + SP_DESC * SECTOR, 0, 2 * SECTOR);
    embed_descriptor(img + SP_DESC * SECTOR, "monolithicSparse", line);
    set_both_gte(0, 0);
    set_both_gte(1, 0);
    img_len = SP_OVERHEAD * SECTOR;
}

static void sparse_cases(void)
{
    base_sparse(3);
    save_img("ok-sparse.vmdk");
    base_sparse(7);
    save_img("ok-sparse-zeroed.vmdk");

    base_sparse(3);
    memcpy(img, "KDMX", 4);
    save_img("hdr-magic.vmdk");

    /* the embedded descriptor calls its own file a FLAT extent: read so,
     * the header would be data and a write would overwrite it */
    base_sparse(3);
    char flat_self[64];
    snprintf(flat_self, sizeof flat_self, "RW %zu FLAT \"\" 0", img_len / SECTOR);
    memset(img + SP_DESC * SECTOR, 0, 2 * SECTOR);
    embed_descriptor(img + SP_DESC * SECTOR, "monolithicFlat", flat_self);
    save_img("hdr-embedded-flat-self.vmdk");
    base_sparse(3);
    set32(H_VERSION, 0);
    save_img("hdr-version-0.vmdk");
    base_sparse(3);
    set32(H_VERSION, 4);
    save_img("hdr-version-4.vmdk");
    base_sparse(3);
    set32(H_FLAGS, 3 | 0x40000);
    save_img("hdr-unknown-incompat-flag.vmdk");
    base_sparse(3);
    set32(H_FLAGS, 3 | 0x20000);
    save_img("hdr-markers-without-compression.vmdk");
    base_sparse(3);
    set32(H_FLAGS, 3 | 0x10000);
    put16(img + H_ALGORITHM, 2);
    save_img("hdr-compress-algorithm-2.vmdk");
    base_sparse(3);
    img[H_NEWLINE + 2] = '\n';
    save_img("hdr-newline-damaged.vmdk");
    base_sparse(3);
    set64(H_GRAIN, 0);
    save_img("hdr-grain-0.vmdk");
    base_sparse(3);
    set64(H_GRAIN, 3);
    save_img("hdr-grain-3.vmdk");
    base_sparse(3);
    set64(H_GRAIN, 1ull << 40);
    save_img("hdr-grain-2pow40.vmdk");
    base_sparse(3);
    set64(H_GRAIN, 1ull << 21);
    save_img("hdr-grain-1gib.vmdk");
    /* the largest grain accepted (1 MiB) and the next power of two */
    big_grain_sparse(2048);
    save_img("ok-sparse-grain-1mib.vmdk");
    big_grain_sparse(4096);
    save_img("hdr-grain-2mib.vmdk");
    /* 1 GiB grains over 1 GiB: a 1-byte write would cost a whole grain */
    big_grain_sparse(1u << 21);
    save_img("hdr-grain-1gib-capacity-1gib.vmdk");
    base_sparse(3);
    set32(H_GTES, 0);
    save_img("hdr-gtes-0.vmdk");
    base_sparse(3);
    set32(H_GTES, 3);
    save_img("hdr-gtes-3.vmdk");
    base_sparse(3);
    set32(H_GTES, 0x80000000u);
    save_img("hdr-gtes-huge.vmdk");
    base_sparse(3);
    set64(H_CAPACITY, 0);
    save_img("hdr-capacity-0.vmdk");
    base_sparse(3);
    set64(H_CAPACITY, 1ull << 60);
    save_img("hdr-capacity-2pow60.vmdk");
    /* a directory of 2^31 entries (8 GiB) for a 16 KiB file */
    base_sparse(3);
    set64(H_CAPACITY, (1ull << 31) * SP_GRAIN * SP_GTES);
    save_img("hdr-gd-8gib.vmdk");
    base_sparse(3);
    set64(H_OVERHEAD, UINT64_MAX);
    save_img("hdr-overhead-max.vmdk");
    base_sparse(3);
    set64(H_OVERHEAD, 1ull << 40);
    save_img("hdr-overhead-past-eof.vmdk");
    base_sparse(3);
    set64(H_GD, 1ull << 20);
    save_img("hdr-gd-past-eof.vmdk");
    base_sparse(3);
    set64(H_GD, 0);
    save_img("hdr-gd-0.vmdk");
    base_sparse(3);
    set64(H_GD, UINT64_MAX - 1);
    save_img("hdr-gd-wraps.vmdk");
    base_sparse(3);
    set64(H_RGD, 1ull << 20);
    save_img("hdr-rgd-past-eof.vmdk");
    base_sparse(3);
    set64(H_RGD, 0);
    save_img("hdr-rgd-0.vmdk");
    base_sparse(3);
    set64(H_DESC_OFF, 1ull << 30);
    save_img("hdr-descriptor-past-eof.vmdk");
    base_sparse(3);
    set64(H_DESC_SIZE, 1ull << 40);
    save_img("hdr-descriptor-size-huge.vmdk");
    base_sparse(3);
    img_len = 300;
    save_img("hdr-file-cut.vmdk");

    /* tables */
    base_sparse(3);
    set32(SP_GD * SECTOR, 1u << 20);
    save_img("gd-entry-past-eof.vmdk");
    base_sparse(3);
    set32(SP_GD * SECTOR, 0xffffffffu);
    save_img("gd-entry-max.vmdk");
    base_sparse(3);
    set32(SP_GD * SECTOR, 30);
    save_img("gd-entry-table-cut-by-eof.vmdk");
    base_sparse(3);
    set32(SP_GD * SECTOR, SP_GD);
    save_img("gd-entry-points-at-directory.vmdk");
    base_sparse(3);
    set32(SP_GD * SECTOR, SP_RGT);
    save_img("gd-entry-points-at-redundant-table.vmdk");
    base_sparse(3);
    set32(SP_RGD * SECTOR, 1u << 20);
    save_img("rgd-entry-past-eof.vmdk");
    base_sparse(3);
    set_gte(0, 1u << 20);
    save_img("gte-past-eof.vmdk");
    base_sparse(3);
    set_gte(1, 0xffffffffu);
    save_img("gte-max.vmdk");
    base_sparse(3);
    set_both_gte(0, 0);
    set_both_gte(1, 0);
    set_both_gte(5, 31);
    save_img("gte-grain-cut-by-eof.vmdk");
    base_sparse(3);
    set_both_gte(0, 2);
    save_img("gte-points-into-header.vmdk");
    base_sparse(3);
    set_both_gte(0, SP_GD);
    save_img("gte-points-at-directory.vmdk");
    base_sparse(3);
    set_both_gte(0, SP_GT);
    save_img("gte-points-at-own-table.vmdk");
    base_sparse(3);
    set_both_gte(1, SP_GRAIN0);
    save_img("gte-two-grains-share-data.vmdk");
    base_sparse(3);
    set_gte(0, SP_GRAIN1);
    save_img("gt-differs-from-redundant.vmdk");
    base_sparse(3);
    set_both_gte(0, 1);
    save_img("gte-zeroed-without-flag.vmdk");
}

/* ---- streamOptimized ---- */

#define ST_FLAGS (0x30001u)
#define MAX_GRAINS 8

static uint32_t adler32(const uint8_t *p, size_t n)
{
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521;
        b = (b + a) % 65521;
    }
    return b << 16 | a;
}

/* A zlib stream of one stored deflate block holding LEN bytes of DATA. */
static size_t zlib_stored(uint8_t *out, const uint8_t *data, size_t len)
{
    out[0] = 0x78;
    out[1] = 0x01;
    out[2] = 0x01; /* final block, stored */
    put16(out + 3, (uint16_t)len);
    put16(out + 5, (uint16_t)~len);
    memcpy(out + 7, data, len);
    uint32_t ad = adler32(data, len);
    out[7 + len] = (uint8_t)(ad >> 24);
    out[8 + len] = (uint8_t)(ad >> 16);
    out[9 + len] = (uint8_t)(ad >> 8);
    out[10 + len] = (uint8_t)ad;
    return len + 11;
}

static void marker(uint8_t *at, uint64_t val, uint32_t size, uint32_t type)
{
    memset(at, 0, SECTOR);
    put64(at, val);
    put32(at + 8, size);
    put32(at + 12, type);
}

struct stream_opts {
    uint64_t footer_capacity; /* 0: same as the header */
    uint64_t footer_gd;       /* 0: the real directory */
    uint32_t footer_gtes;     /* 0: same */
    int grain_lba_shift;      /* added to the LBA of the second grain's marker */
    int grain_len_delta;      /* added to the stored length of the second grain */
    int csize_delta;          /* added to the marker's size of the second grain */
    uint64_t csize_set;       /* non-zero: the marker's size of the second grain */
    bool corrupt_second;      /* flip bytes inside the second grain's stream */
    bool no_footer, no_eos, no_markers_flag;
    uint32_t gte1_set; /* non-zero: the table entry of the second grain */
};

/* A streamOptimized file: header with gdOffset at the end, descriptor,
 * two compressed grains (0 and 3), grain table, directory, footer, end. */
static void build_stream(const struct stream_opts *o)
{
    memset(img, 0, sizeof img);
    uint32_t flags = o->no_markers_flag ? 0x10001u : ST_FLAGS;
    header(img, 3, flags, SP_CAPACITY, SP_GRAIN, 1, 2, SP_GTES, 0, UINT64_MAX, 8);
    put16(img + H_ALGORITHM, 1);
    embed_descriptor(img + SECTOR, "streamOptimized", "RW 256 SPARSE \"stream.vmdk\"");
    size_t at = 8; /* sectors */
    uint32_t gte[2];
    uint8_t grain[2 * SP_GRAIN * SECTOR]; /* room for a grain that inflates too long */
    for (int g = 0; g < 2; g++) {
        uint64_t lba = (g ? 3 : 0) * SP_GRAIN;
        size_t len = SP_GRAIN * SECTOR;
        memset(grain, 0x5a, sizeof grain);
        fill_grain(grain, (uint8_t)(0x40 + g));
        if (g == 1) {
            lba += (uint64_t)(int64_t)o->grain_lba_shift;
            len = (size_t)((long)len + o->grain_len_delta);
        }
        gte[g] = (uint32_t)at;
        uint8_t *m = img + at * SECTOR;
        size_t csize = zlib_stored(m + 12, grain, len);
        memset(m, 0, 12);
        put64(m, lba);
        uint32_t claimed = (uint32_t)csize;
        if (g == 1) {
            claimed = (uint32_t)((long)claimed + o->csize_delta);
            if (o->csize_set)
                claimed = (uint32_t)o->csize_set;
            if (o->corrupt_second)
                m[12 + 2] = 0x07; /* block type 3: invalid */
        }
        put32(m + 8, claimed);
        at += (12 + csize + SECTOR - 1) / SECTOR;
    }
    if (o->gte1_set)
        gte[1] = o->gte1_set;
    /* grain table marker and table (4 sectors) */
    marker(img + at * SECTOR, 4, 0, 1);
    at++;
    uint64_t gt_at = at;
    put32(img + at * SECTOR + 0, gte[0]);
    put32(img + at * SECTOR + 12, gte[1]);
    at += 4;
    marker(img + at * SECTOR, 1, 0, 2);
    at++;
    uint64_t gd_at = at;
    put32(img + at * SECTOR, (uint32_t)gt_at);
    at++;
    if (!o->no_footer) {
        marker(img + at * SECTOR, 1, 0, 3);
        at++;
        header(img + at * SECTOR, 3, flags, o->footer_capacity ? o->footer_capacity : SP_CAPACITY,
               SP_GRAIN, 1, 2, o->footer_gtes ? o->footer_gtes : SP_GTES, 0,
               o->footer_gd ? o->footer_gd : gd_at, 8);
        put16(img + at * SECTOR + H_ALGORITHM, 1);
        at++;
    }
    if (!o->no_eos) {
        marker(img + at * SECTOR, 0, 0, 0);
        at++;
    }
    img_len = at * SECTOR;
}

static void stream_cases(void)
{
    build_stream(&(struct stream_opts){0});
    save_img("ok-stream.vmdk");
    build_stream(&(struct stream_opts){.footer_gd = 1u << 20});
    save_img("stream-footer-gd-past-eof.vmdk");
    build_stream(&(struct stream_opts){.footer_gd = UINT64_MAX});
    save_img("stream-footer-gd-unset.vmdk");
    build_stream(&(struct stream_opts){.footer_capacity = 2 * SP_CAPACITY});
    save_img("stream-footer-capacity-differs.vmdk");
    build_stream(&(struct stream_opts){.footer_capacity = 1ull << 62});
    save_img("stream-footer-capacity-huge.vmdk");
    build_stream(&(struct stream_opts){.footer_gtes = 128});
    save_img("stream-footer-gtes-differ.vmdk");
    build_stream(&(struct stream_opts){.no_footer = true});
    save_img("stream-no-footer.vmdk");
    build_stream(&(struct stream_opts){.no_eos = true});
    save_img("stream-no-end-marker.vmdk");
    build_stream(&(struct stream_opts){.no_markers_flag = true});
    save_img("stream-gd-at-end-without-markers.vmdk");
    build_stream(&(struct stream_opts){.grain_lba_shift = SP_GRAIN});
    save_img("stream-grain-wrong-lba.vmdk");
    build_stream(&(struct stream_opts){.grain_len_delta = -1024});
    save_img("stream-grain-inflates-short.vmdk");
    build_stream(&(struct stream_opts){.grain_len_delta = 1024});
    save_img("stream-grain-inflates-long.vmdk");
    build_stream(&(struct stream_opts){.csize_set = 0xffffffffu});
    save_img("stream-grain-size-huge.vmdk");
    build_stream(&(struct stream_opts){.csize_delta = -100});
    save_img("stream-grain-size-short.vmdk");
    build_stream(&(struct stream_opts){.corrupt_second = true});
    save_img("stream-grain-corrupt-deflate.vmdk");
    build_stream(&(struct stream_opts){.gte1_set = 1u << 20});
    save_img("stream-gte-past-eof.vmdk");
    build_stream(&(struct stream_opts){.gte1_set = 9});
    save_img("stream-gte-inside-grain.vmdk");
    build_stream(&(struct stream_opts){0});
    set64(H_GRAIN, 4096);
    save_img("stream-grain-2mib.vmdk");
}

/* ---- ESX COWD ---- */

#define COWD_HDR 2048u

static void base_cowd(void)
{
    memset(img, 0, sizeof img);
    memcpy(img, "COWD", 4);
    put32(img + 4, 1);          /* version */
    put32(img + 8, 3);          /* flags */
    put32(img + 12, 64);        /* sectors */
    put32(img + 16, 1);         /* grain sectors */
    put32(img + 20, 4);         /* directory at sector 4 */
    put32(img + 24, 1);         /* one entry */
    put32(img + 4 * SECTOR, 5); /* table at sector 5 (4096 entries, 32 sectors) */
    put32(img + 5 * SECTOR, 37);
    fill_grain(img + 37 * SECTOR, 0x77);
    img_len = 38 * SECTOR;
}

static void cowd_cases(void)
{
    base_cowd();
    save_img("ok-cowd.vmdk");
    base_cowd();
    put32(img + 4, 2);
    save_img("cowd-version-2.vmdk");
    base_cowd();
    put32(img + 16, 0);
    save_img("cowd-grain-0.vmdk");
    base_cowd();
    put32(img + 16, 4096);
    save_img("cowd-grain-2mib.vmdk");
    base_cowd();
    put32(img + 20, 1u << 20);
    save_img("cowd-gd-past-eof.vmdk");
    base_cowd();
    put32(img + 24, 0xffffffffu);
    save_img("cowd-gd-entries-huge.vmdk");
    base_cowd();
    put32(img + 4 * SECTOR, 36);
    save_img("cowd-gt-cut-by-eof.vmdk");
    base_cowd();
    put32(img + 5 * SECTOR, 1u << 22);
    save_img("cowd-grain-past-eof.vmdk");
    base_cowd();
    img_len = 1000;
    save_img("cowd-header-cut.vmdk");
}

/* ---- text descriptors ---- */

#define DESC_HEAD "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=ffffffff\n"
#define DESC_DDB "\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"ide\"\n"

/* A descriptor with createType TYPE and the given extent lines. */
static void desc(const char *name, const char *type, const char *extents)
{
    save_text(name, DESC_HEAD "createType=\"%s\"\n\n# Extent description\n%s" DESC_DDB, type, extents);
}

static void descriptor_cases(void)
{
    /* the flat file several cases point at: 64 sectors */
    memset(img, 0, sizeof img);
    for (unsigned i = 0; i < 64 * SECTOR; i++)
        img[i] = (uint8_t)(i * 13);
    img_len = 64 * SECTOR;
    save_img("flat.img");

    desc("ok-flat.vmdk", "monolithicFlat", "RW 64 FLAT \"flat.img\" 0\n");
    desc("ok-zero.vmdk", "partitionedDevice", "RW 64 FLAT \"flat.img\" 0\nRW 1000 ZERO\n");
    desc("desc-create-type-unknown.vmdk", "hyperSparse", "RW 64 FLAT \"flat.img\" 0\n");
    save_text("desc-version-99.vmdk",
              "# Disk DescriptorFile\nversion=99\nCID=1a2b3c4d\n"
              "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 64 FLAT \"flat.img\" 0\n");
    save_text("desc-version-not-a-number.vmdk",
              "# Disk DescriptorFile\nversion=one\nCID=1a2b3c4d\n"
              "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 64 FLAT \"flat.img\" 0\n");
    save_text("desc-cid-not-hex.vmdk",
              "# Disk DescriptorFile\nversion=1\nCID=xyz\n"
              "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 64 FLAT \"flat.img\" 0\n");
    save_text("desc-cid-too-long.vmdk",
              "# Disk DescriptorFile\nversion=1\nCID=1234567890abcdef\n"
              "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 64 FLAT \"flat.img\" 0\n");
    save_text("desc-create-type-unterminated-quote.vmdk",
              DESC_HEAD "createType=\"monolithicFlat\nRW 64 FLAT \"flat.img\" 0\n");
    desc("desc-extent-name-unterminated-quote.vmdk", "monolithicFlat", "RW 64 FLAT \"flat.img 0\n");
    desc("desc-extent-name-unquoted.vmdk", "monolithicFlat", "RW 64 FLAT flat.img 0\n");
    desc("desc-extent-size-negative.vmdk", "monolithicFlat", "RW -64 FLAT \"flat.img\" 0\n");
    desc("desc-extent-size-overflow.vmdk", "monolithicFlat",
         "RW 99999999999999999999999 FLAT \"flat.img\" 0\n");
    desc("desc-extent-size-not-a-number.vmdk", "monolithicFlat", "RW 6x4 FLAT \"flat.img\" 0\n");
    desc("desc-extent-size-0.vmdk", "monolithicFlat", "RW 0 FLAT \"flat.img\" 0\n");
    desc("desc-extent-sizes-sum-overflow.vmdk", "partitionedDevice",
         "RW 9223372036854775807 ZERO\nRW 9223372036854775807 ZERO\nRW 64 FLAT \"flat.img\" 0\n");
    desc("desc-capacity-2pow60.vmdk", "partitionedDevice", "RW 1152921504606846976 ZERO\n");
    desc("desc-capacity-bytes-overflow.vmdk", "partitionedDevice", "RW 36028797018963968 ZERO\n");
    desc("desc-flat-offset-overflow.vmdk", "monolithicFlat",
         "RW 64 FLAT \"flat.img\" 18446744073709551615\n");
    desc("desc-flat-offset-negative.vmdk", "monolithicFlat", "RW 64 FLAT \"flat.img\" -1\n");
    desc("desc-flat-larger-than-file.vmdk", "monolithicFlat", "RW 128 FLAT \"flat.img\" 0\n");
    desc("desc-flat-offset-past-file.vmdk", "monolithicFlat", "RW 64 FLAT \"flat.img\" 32\n");
    desc("desc-extent-type-unknown.vmdk", "monolithicFlat", "RW 64 FLAKY \"flat.img\" 0\n");
    desc("desc-extent-access-unknown.vmdk", "monolithicFlat", "RWX 64 FLAT \"flat.img\" 0\n");
    desc("desc-extent-name-empty.vmdk", "monolithicFlat", "RW 64 FLAT \"\" 0\n");
    desc("desc-extent-missing.vmdk", "monolithicFlat", "RW 64 FLAT \"missing-flat.img\" 0\n");
    desc("desc-extent-absolute.vmdk", "monolithicFlat", "RW 64 FLAT \"/etc/hostname\" 0\n");
    desc("desc-extent-dotdot.vmdk", "monolithicFlat", "RW 64 FLAT \"../bad/flat.img\" 0\n");
    desc("desc-extent-devnull.vmdk", "monolithicFlat", "RW 64 FLAT \"/dev/null\" 0\n");
    desc("desc-extent-is-sparse-text.vmdk", "twoGbMaxExtentSparse", "RW 64 SPARSE \"flat.img\"\n");
    desc("desc-extent-is-this-descriptor.vmdk", "monolithicFlat",
         "RW 64 SPARSE \"desc-extent-is-this-descriptor.vmdk\"\n");
    desc("desc-sparse-extent-larger-than-header.vmdk", "twoGbMaxExtentSparse",
         "RW 512 SPARSE \"ok-sparse.vmdk\"\n");
    desc("desc-no-extents.vmdk", "monolithicFlat", "");
    save_text("desc-nul-in-header.vmdk",
              DESC_HEAD "createType=\"monolithic%cFlat\"\n\n"
                        "# Extent description\nRW 64 FLAT \"flat.img\" 0\n" DESC_DDB,
              0);
    save_text("desc-nul-in-extent-name.vmdk",
              DESC_HEAD "createType=\"monolithicFlat\"\n\n"
                        "# Extent description\nRW 64 FLAT \"fl%cat.img\" 0\n" DESC_DDB,
              0);
    save_text("desc-control-bytes.vmdk",
              DESC_HEAD "createType=\"monolithicFlat\"\n\x01\x02\x7f\xff\xfe\n"
                        "RW 64 FLAT \"flat.img\" 0\n");
    save_text("desc-parentcid-without-hint.vmdk",
              "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\n"
              "parentCID=22223333\ncreateType=\"monolithicFlat\"\nRW 64 FLAT \"flat.img\" 0\n");

    /* chains (of ZERO extents: a shared file would be locked twice when writing);
     * the child's parentCID must match the parent's CID */
    save_text("chain-self.vmdk", "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=1a2b3c4d\n"
                                 "createType=\"custom\"\nparentFileNameHint=\"chain-self.vmdk\"\n"
                                 "RW 64 ZERO\n");
    save_text("chain-loop-a.vmdk", "# Disk DescriptorFile\nversion=1\nCID=aaaa0001\nparentCID=bbbb0002\n"
                                   "createType=\"custom\"\nparentFileNameHint=\"chain-loop-b.vmdk\"\n"
                                   "RW 64 ZERO\n");
    save_text("chain-loop-b.vmdk", "# Disk DescriptorFile\nversion=1\nCID=bbbb0002\nparentCID=aaaa0001\n"
                                   "createType=\"custom\"\nparentFileNameHint=\"chain-loop-a.vmdk\"\n"
                                   "RW 64 ZERO\n");
    save_text("chain-parent-missing.vmdk", "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\n"
                                           "parentCID=99998888\ncreateType=\"custom\"\n"
                                           "parentFileNameHint=\"no-such-parent.vmdk\"\nRW 64 ZERO\n");
    save_text("chain-cid-mismatch.vmdk",
              "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\n"
              "parentCID=99998888\ncreateType=\"custom\"\nparentFileNameHint=\"ok-flat.vmdk\"\n"
              "RW 64 ZERO\n");
    /* larger than its parent (1064 sectors): it would read past the
     * parent's end (a smaller child reads the parent's first part) */
    save_text("chain-capacity-mismatch.vmdk",
              "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\n"
              "parentCID=1a2b3c4d\ncreateType=\"custom\"\nparentFileNameHint=\"ok-zero.vmdk\"\n"
              "RW 2000 ZERO\n");
    save_text("chain-parent-is-raw.vmdk",
              "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\n"
              "parentCID=1a2b3c4d\ncreateType=\"custom\"\nparentFileNameHint=\"flat.img\"\n"
              "RW 64 ZERO\n");
    save_text("chain-parent-is-broken.vmdk",
              "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\n"
              "parentCID=1a2b3c4d\ncreateType=\"custom\"\n"
              "parentFileNameHint=\"hdr-gd-past-eof.vmdk\"\nRW 256 ZERO\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_bad OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    sparse_cases();
    stream_cases();
    cowd_cases();
    descriptor_cases();
    return 0;
}
