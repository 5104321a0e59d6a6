/* test_descriptor.c - descriptor grammar: real descriptors from the corpus,
 * hand-written tolerant and malformed texts, the canonical writer and edits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "descriptor.h"
#include "sparse_header.h"

/* ---- corpus access ---- */

static char corpus_path[4096];

/* $VMDKIT_CORPUS, else ../shared/vmdk-corpus beside the source tree. */
static const char *corpus(void)
{
    const char *env = getenv("VMDKIT_CORPUS");
    if (env && *env) {
        snprintf(corpus_path, sizeof corpus_path, "%s", env);
    } else {
        const char *src = __FILE__; /* .../tests/unit/test_descriptor.c */
        const char *cut = strstr(src, "/tests/unit/");
        if (!cut)
            return NULL;
        snprintf(corpus_path, sizeof corpus_path, "%.*s/../shared/vmdk-corpus", (int)(cut - src), src);
    }
    struct stat st;
    return stat(corpus_path, &st) == 0 && S_ISDIR(st.st_mode) ? corpus_path : NULL;
}

#define NEED_CORPUS()                                                                   \
    do {                                                                                \
        if (!corpus()) {                                                                \
            print_message("vmdk corpus not found (set VMDKIT_CORPUS): test skipped\n"); \
            skip();                                                                     \
        }                                                                               \
    } while (0)

static void read_whole(const char *rel, char **buf, size_t *len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", corpus_path, rel);
    vk_err e = {0};
    if (vk_read_file(path, 64u << 20, buf, len, &e) != 0)
        fail_msg("%s", e.msg);
}

/* A separate descriptor file, as an exact-length buffer (no terminator). */
static void load_text(const char *rel, char **buf, size_t *len)
{
    char *whole;
    read_whole(rel, &whole, len);
    *buf = malloc(*len ? *len : 1);
    assert_non_null(*buf);
    memcpy(*buf, whole, *len);
    free(whole);
}

/* The NUL-padded descriptor area of a hosted sparse extent, located through
 * its header, as an exact-length buffer. */
static void load_embedded(const char *rel, char **buf, size_t *len)
{
    char *whole;
    size_t wlen;
    read_whole(rel, &whole, &wlen);
    assert_true(wlen >= 512);
    vk_sparse_header h;
    vk_sparse_header_decode((const uint8_t *)whole, &h);
    assert_int_equal(h.magic, VK_KDMV_MAGIC);
    assert_true(h.desc_offset_sectors > 0);
    assert_true((h.desc_offset_sectors + h.desc_size_sectors) * 512 <= wlen);
    *len = (size_t)h.desc_size_sectors * 512;
    *buf = malloc(*len);
    assert_non_null(*buf);
    memcpy(*buf, whole + h.desc_offset_sectors * 512, *len);
    free(whole);
}

static void parse_ok(const char *text, size_t len, const char *file, vk_descriptor *d)
{
    vk_err e = {0};
    int r = vk_descriptor_parse(text, len, file, d, &e);
    if (r != 0)
        fail_msg("parse of %s failed (%d): %s", file, r, e.msg);
}

static uint64_t capacity_bytes(const vk_descriptor *d)
{
    uint64_t sectors = 0;
    vk_err e = {0};
    assert_int_equal(vk_descriptor_capacity(d, &sectors, &e), 0);
    return sectors * 512;
}

static void expect_extent(const vk_descriptor *d, size_t i, enum vk_access a, uint64_t size,
                          enum vk_extent_type t, const char *name, bool has_offset, uint64_t offset)
{
    assert_true(i < d->n_extents);
    const vk_extent_desc *x = &d->extents[i];
    assert_int_equal(x->access, a);
    assert_int_equal(x->size_sectors, size);
    assert_int_equal(x->type, t);
    if (name)
        assert_string_equal(x->filename, name);
    else
        assert_null(x->filename);
    assert_int_equal(x->has_offset, has_offset);
    assert_int_equal(x->offset_sectors, offset);
}

static void expect_str(const char *got, const char *want)
{
    if (want)
        assert_string_equal(got, want);
    else
        assert_null(got);
}

static void expect_kvs_equal(const vk_kv *a, size_t na, const vk_kv *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].key, b[i].key);
        assert_string_equal(a[i].value, b[i].value);
    }
}

static void expect_desc_equal(const vk_descriptor *a, const vk_descriptor *b)
{
    assert_int_equal(a->version, b->version);
    expect_str(b->encoding, a->encoding);
    assert_int_equal(a->cid, b->cid);
    assert_int_equal(a->parent_cid, b->parent_cid);
    expect_str(b->create_type, a->create_type);
    expect_str(b->parent_hint, a->parent_hint);
    assert_int_equal(a->n_extents, b->n_extents);
    for (size_t i = 0; i < a->n_extents; i++) {
        const vk_extent_desc *x = &a->extents[i];
        expect_extent(b, i, x->access, x->size_sectors, x->type, x->filename, x->has_offset,
                      x->offset_sectors);
    }
    expect_kvs_equal(a->header_extra, a->n_header_extra, b->header_extra, b->n_header_extra);
    expect_kvs_equal(a->ddb, a->n_ddb, b->ddb, b->n_ddb);
}

/* format -> parse -> format gives identical bytes; when SAME, the parsed
 * struct also equals D field by field. */
static void round_trip(const vk_descriptor *d, bool same)
{
    vk_err e = {0};
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (vk_descriptor_format(d, &t1, &l1, &e) != 0)
        fail_msg("format: %s", e.msg);
    assert_int_equal(strlen(t1), l1);
    assert_true(vk_descriptor_sniff(t1, l1));
    assert_memory_equal(t1, "# Disk DescriptorFile\n", 22);
    vk_descriptor d2;
    parse_ok(t1, l1, "formatted", &d2);
    if (same)
        expect_desc_equal(d, &d2);
    assert_int_equal(vk_descriptor_format(&d2, &t2, &l2, &e), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(t1, t2, l1);
    free(t1);
    free(t2);
    vk_descriptor_free(&d2);
}

/* ---- corpus: separate descriptor files ---- */

static void test_corpus_libvmdk(void **state)
{
    (void)state;
    NEED_CORPUS();
    char *t;
    size_t n;
    vk_descriptor d;
    load_text("libvmdk/descriptor_file.1", &t, &n);
    assert_true(vk_descriptor_sniff(t, n));
    parse_ok(t, n, "descriptor_file.1", &d);
    assert_int_equal(d.version, 1);
    expect_str(d.encoding, "windows-1252");
    assert_int_equal(d.cid, 0xfffffffeu);
    assert_int_equal(d.parent_cid, VK_CID_NONE);
    expect_str(d.create_type, "monolithicSparse");
    assert_null(d.parent_hint);
    assert_int_equal(d.n_extents, 1);
    expect_extent(&d, 0, VK_ACCESS_RW, 16777216, VK_EXT_SPARSE, "test1.vmdk", false, 0);
    assert_int_equal(capacity_bytes(&d), UINT64_C(8589934592));
    assert_int_equal(d.n_header_extra, 1);
    assert_string_equal(d.header_extra[0].key, "isNativeSnapshot");
    assert_string_equal(d.header_extra[0].value, "no");
    assert_int_equal(d.n_ddb, 7);
    assert_string_equal(d.ddb[0].key, "ddb.virtualHWVersion");
    assert_string_equal(d.ddb[6].key, "ddb.adapterType");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.virtualHWVersion"), "9");
    expect_str(vk_descriptor_ddb_get(&d, "DDB.GEOMETRY.CYLINDERS"), "16383");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.adapterType"), "ide");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.uuid"), "60 00 C2 99 3c 3b c5 c0-29 99 4b e2 5b 11 a2 45");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.longContentID"), "e61f2478a1f3c8bc7c3a8f36fffffffe");
    assert_null(vk_descriptor_ddb_get(&d, "ddb.toolsVersion"));
    round_trip(&d, true);
    vk_descriptor_free(&d);
    free(t);
}

static void test_corpus_vmware_flat(void **state)
{
    (void)state;
    NEED_CORPUS();
    char *t;
    size_t n;
    vk_descriptor d;
    load_text("vmdk-rs/monolithicFlat.vmdk", &t, &n);
    parse_ok(t, n, "monolithicFlat.vmdk", &d);
    assert_null(d.encoding);
    assert_int_equal(d.cid, 0);
    assert_int_equal(d.parent_cid, VK_CID_NONE);
    expect_str(d.create_type, "monolithicFlat");
    assert_int_equal(d.n_extents, 1);
    expect_extent(&d, 0, VK_ACCESS_RW, 20480, VK_EXT_FLAT, "monolithicFlat-flat.vmdk", true, 0);
    assert_int_equal(capacity_bytes(&d), 10485760);
    assert_int_equal(d.n_ddb, 10);
    expect_str(vk_descriptor_ddb_get(&d, "ddb.adapterType"), "buslogic");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.geometry.cylinders"), "301");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.geometry.heads"), "4");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.geometry.sectors"), "17");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.deletable"), "true");
    round_trip(&d, true);
    vk_descriptor_free(&d);
    free(t);
}

static void test_corpus_esxi_vmfs(void **state)
{
    (void)state;
    NEED_CORPUS();
    char *t;
    size_t n;
    vk_descriptor d;
    load_text("vmdk-rs/vmfs_thick.vmdk", &t, &n);
    parse_ok(t, n, "vmfs_thick.vmdk", &d);
    expect_str(d.encoding, "UTF-8");
    assert_int_equal(d.cid, 0x0172e8a4u);
    assert_int_equal(d.parent_cid, VK_CID_NONE);
    expect_str(d.create_type, "vmfs");
    assert_int_equal(d.n_header_extra, 0);
    expect_extent(&d, 0, VK_ACCESS_RW, 4096, VK_EXT_VMFS, "vmfs_thick-flat.vmdk", false, 0);
    assert_int_equal(capacity_bytes(&d), 2097152);
    expect_str(vk_descriptor_ddb_get(&d, "ddb.adapterType"), "lsilogic");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.virtualHWVersion"), "14");
    round_trip(&d, true);
    vk_descriptor_free(&d);
    free(t);

    load_text("vmdk-rs/vmfs_thick-000001.vmdk", &t, &n);
    parse_ok(t, n, "vmfs_thick-000001.vmdk", &d);
    assert_int_equal(d.cid, 0x8f67ca74u);
    assert_int_equal(d.parent_cid, 0x0172e8a4u);
    expect_str(d.create_type, "vmfsSparse");
    expect_str(d.parent_hint, "vmfs_thick.vmdk");
    assert_int_equal(d.n_extents, 1);
    expect_extent(&d, 0, VK_ACCESS_RW, 4096, VK_EXT_VMFSSPARSE, "vmfs_thick-000001-delta.vmdk", false,
                  0);
    assert_int_equal(d.n_ddb, 1);
    expect_str(vk_descriptor_ddb_get(&d, "ddb.longContentID"), "4b98b55ba6a6bc2e8fd6eb368f67ca74");
    round_trip(&d, true);
    vk_descriptor_free(&d);
    free(t);

    /* old vdiskmanager VMFS line carries an offset */
    load_text("vmdk-rs/old_vmfs_thick_descriptor_v1.vmdk.txt", &t, &n);
    parse_ok(t, n, "old_vmfs_thick_descriptor_v1.vmdk.txt", &d);
    expect_str(d.create_type, "vmfs");
    expect_extent(&d, 0, VK_ACCESS_RW, 20480, VK_EXT_VMFS, "vmfs_thick-flat.vmdk", true, 0);
    assert_int_equal(capacity_bytes(&d), 10485760);
    round_trip(&d, false); /* the writer drops a zero VMFS offset */
    vk_descriptor_free(&d);
    free(t);
}

static void test_corpus_ms3_win(void **state)
{
    (void)state;
    NEED_CORPUS();
    char *t;
    size_t n;
    vk_descriptor d;
    load_text("vmdk-forensic/ms3-win.vmdk", &t, &n);
    parse_ok(t, n, "ms3-win.vmdk", &d);
    expect_str(d.encoding, "UTF-8");
    assert_int_equal(d.cid, 0x216bc064u);
    expect_str(d.create_type, "twoGbMaxExtentSparse");
    assert_int_equal(d.n_extents, 16);
    for (size_t i = 0; i < 16; i++) {
        char name[32];
        snprintf(name, sizeof name, "disk-s%03zu.vmdk", i + 1);
        expect_extent(&d, i, VK_ACCESS_RW, i < 15 ? 8323072 : 983040, VK_EXT_SPARSE, name, false, 0);
    }
    assert_int_equal(capacity_bytes(&d), UINT64_C(64424509440));
    expect_str(vk_descriptor_ddb_get(&d, "ddb.toolsInstallType"), "1");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.geometry.cylinders"), "7832");
    round_trip(&d, true);
    vk_descriptor_free(&d);
    free(t);
}

/* ---- corpus: descriptors embedded in sparse extents ---- */

struct embedded_case {
    const char *file;
    uint32_t cid;
    const char *create_type;
    enum vk_access access;
    const char *extent_name;
    uint64_t capacity_bytes;
    const char *ddb_key, *ddb_value;
};

static const struct embedded_case embedded_cases[] = {
    {"vmdk-rs/monolithicSparse.vmdk", 0, "monolithicSparse", VK_ACCESS_RW, "monolithicSparse.vmdk",
     10485760, "ddb.longContentID", "6e3d2a3fb9f03cc89dfc119febc44fce"},
    /* VMware stream export: trailing blanks after header values */
    {"qemu-iotests/iotest-version3.vmdk", 0xa454774au, "streamOptimized", VK_ACCESS_RDONLY,
     "generated-stream.vmdk", UINT64_C(17179869184), "ddb.geometry.cylinders", "2088"},
    /* vmdktool: blank lines, no "# The Disk Data Base" */
    {"cot/blank.vmdk", 0x278f54ffu, "streamOptimized", VK_ACCESS_RDONLY, "generated-stream.vmdk",
     536870912, "ddb.toolsVersion", "6532"},
    /* VirtualBox: ddb keys without spaces, empty value */
    {"cot/ubuntu.2.0-disk1.vmdk", 0x255a27cdu, "streamOptimized", VK_ACCESS_RDONLY,
     "ubuntu.2.0-disk1.vmdk", UINT64_C(8589934592), "ddb.uuid.image",
     "428fbafb-8694-4ee2-9ce8-333d77f90140"},
    {"xo-vmdk-to-vhd/test.vmdk", 0xe4a19e81u, "streamOptimized", VK_ACCESS_RDONLY, "test-disk1.vmdk",
     4194304, "ddb.comment", ""},
    /* FreeBSD mkimg: empty extent file name, no blank lines */
    {"freebsd-mkimg/img-1x1-4096-gpt.vmdk", 0, "monolithicSparse", VK_ACCESS_RW, "", 5242880,
     "ddb.geometry.cylinders", "10240"},
    {"freebsd-mkimg/img-63x255-512-mbr.vmdk", 0, "monolithicSparse", VK_ACCESS_RW, "", 8388608,
     "ddb.geometry.heads", "255"},
    {"freebsd-mkimg/img-63x255-512-vtoc8.vmdk", 0, "monolithicSparse", VK_ACCESS_RW, "", 25165824,
     "ddb.geometry.cylinders", "3"},
    /* Python stream converter: non-standard first line, comments in the
     * ddb, no final newline */
    {"vmdk-rs/streamOptimizedWithMarkers.vmdk", 0x7e5b80a7u, "streamOptimized", VK_ACCESS_RDONLY,
     "call-me-stream.vmdk", 1048576, "ddb.virtualHWVersion", "11"},
    {"plaso/image.vmdk", 0x53554ac6u, "monolithicSparse", VK_ACCESS_RW, "image.vmdk", 102400,
     "ddb.geometry.cylinders", "0"},
};

static void test_corpus_embedded(void **state)
{
    (void)state;
    NEED_CORPUS();
    for (size_t i = 0; i < sizeof embedded_cases / sizeof embedded_cases[0]; i++) {
        const struct embedded_case *c = &embedded_cases[i];
        char *t;
        size_t n;
        vk_descriptor d;
        print_message("  %s\n", c->file);
        load_embedded(c->file, &t, &n);
        assert_true(vk_descriptor_sniff(t, n));
        parse_ok(t, n, c->file, &d);
        assert_int_equal(d.version, 1);
        assert_int_equal(d.cid, c->cid);
        assert_int_equal(d.parent_cid, VK_CID_NONE);
        expect_str(d.create_type, c->create_type);
        assert_null(d.parent_hint);
        assert_int_equal(d.n_extents, 1);
        expect_extent(&d, 0, c->access, c->capacity_bytes / 512, VK_EXT_SPARSE, c->extent_name, false,
                      0);
        assert_int_equal(capacity_bytes(&d), c->capacity_bytes);
        expect_str(vk_descriptor_ddb_get(&d, c->ddb_key), c->ddb_value);
        round_trip(&d, true);
        vk_descriptor_free(&d);
        free(t);
    }
}

/* ---- tolerant reading ---- */

static void test_tolerant_text(void **state)
{
    (void)state;
    static const char text[] = "  # comment with leading blanks\r\n"
                               "\r\n"
                               "VERSION = 2\r\n"
                               "Encoding\t=\t\"UTF-8\"\r\n"
                               "cid = \"ABCDEF12\"\r\n"
                               "\tParentCid=FFFFFFFE   \r\n"
                               "isNativeSnapshot = no\r\n"
                               "CREATETYPE = monolithicFlat\r\n"
                               "# Extent description\r\n"
                               "rw 100 flat \"a b.vmdk\" 5\r\n"
                               "\r\n"
                               "   \t\r\n"
                               "rdonly 200 Zero\r\n"
                               "NoAccess 7 vmfs \"c.vmdk\"\r\n"
                               "RW 63 FLAT \"\\\\.\\PhysicalDrive0\" 0 partitionUUID 1234\r\n"
                               "parentFileNameHint=\"../p/parent.vmdk\"\r\n"
                               "#DDB\r\n"
                               "ddb.Foo=\"bar baz\"\r\n"
                               "DDB.empty = \"\"\r\n"
                               "ddb.bare = 42 \r\n"
                               "changeTrackPath=\"t-ctk.vmdk\"";
    vk_descriptor d;
    parse_ok(text, sizeof text - 1, "tolerant.vmdk", &d);
    assert_int_equal(d.version, 2);
    expect_str(d.encoding, "UTF-8");
    assert_int_equal(d.cid, 0xabcdef12u);
    assert_int_equal(d.parent_cid, 0xfffffffeu);
    expect_str(d.create_type, "monolithicFlat");
    expect_str(d.parent_hint, "../p/parent.vmdk");
    assert_int_equal(d.n_extents, 4);
    expect_extent(&d, 0, VK_ACCESS_RW, 100, VK_EXT_FLAT, "a b.vmdk", true, 5);
    expect_extent(&d, 1, VK_ACCESS_RDONLY, 200, VK_EXT_ZERO, NULL, false, 0);
    expect_extent(&d, 2, VK_ACCESS_NOACCESS, 7, VK_EXT_VMFS, "c.vmdk", false, 0);
    expect_extent(&d, 3, VK_ACCESS_RW, 63, VK_EXT_FLAT, "\\\\.\\PhysicalDrive0", true, 0);
    assert_int_equal(capacity_bytes(&d), (100 + 200 + 7 + 63) * 512);
    assert_int_equal(d.n_header_extra, 2);
    assert_string_equal(d.header_extra[0].key, "isNativeSnapshot");
    assert_string_equal(d.header_extra[0].value, "no");
    assert_string_equal(d.header_extra[1].key, "changeTrackPath");
    assert_string_equal(d.header_extra[1].value, "t-ctk.vmdk");
    assert_int_equal(d.n_ddb, 3);
    assert_string_equal(d.ddb[0].key, "ddb.Foo"); /* spelling kept */
    expect_str(vk_descriptor_ddb_get(&d, "ddb.foo"), "bar baz");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.empty"), "");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.bare"), "42");
    round_trip(&d, true);
    vk_descriptor_free(&d);
}

static void test_every_extent_type(void **state)
{
    (void)state;
    for (int t = VK_EXT_SPARSE; t <= VK_EXT_SESPARSE; t++) {
        char text[256];
        const char *name = vk_extent_type_name((enum vk_extent_type)t);
        if (t == VK_EXT_ZERO)
            snprintf(text, sizeof text, "version=1\nRW 8 %s\n", name);
        else
            snprintf(text, sizeof text, "version=1\nRDONLY 8 %s \"f.vmdk\" 3\n", name);
        vk_descriptor d;
        parse_ok(text, strlen(text), name, &d);
        assert_int_equal(d.n_extents, 1);
        assert_int_equal(d.extents[0].type, t);
        assert_int_equal(d.extents[0].has_offset, t != VK_EXT_ZERO);
        vk_descriptor_free(&d);
    }
    assert_string_equal(vk_extent_type_name(VK_EXT_VMFSSPARSE), "VMFSSPARSE");
    assert_string_equal(vk_extent_type_name(VK_EXT_SESPARSE), "SESPARSE");
    assert_string_equal(vk_access_name(VK_ACCESS_RW), "RW");
    assert_string_equal(vk_access_name(VK_ACCESS_RDONLY), "RDONLY");
    assert_string_equal(vk_access_name(VK_ACCESS_NOACCESS), "NOACCESS");
}

static void test_defaults_and_duplicates(void **state)
{
    (void)state;
    static const char text[] = "RW 10 FLAT \"f\"\n"
                               "createType=\"first\"\n"
                               "createType=\"someFutureType\"\n"
                               "ddb.x = \"1\"\n"
                               "ddb.y = \"2\"\n"
                               "DDB.X = \"3\"\n";
    vk_descriptor d;
    parse_ok(text, sizeof text - 1, "dup.vmdk", &d);
    assert_int_equal(d.version, 1);
    assert_null(d.encoding);
    assert_int_equal(d.cid, VK_CID_NONE);
    assert_int_equal(d.parent_cid, VK_CID_NONE);
    expect_str(d.create_type, "someFutureType"); /* unknown types are the link layer's call */
    expect_extent(&d, 0, VK_ACCESS_RW, 10, VK_EXT_FLAT, "f", false, 0);
    assert_int_equal(d.n_ddb, 2);
    assert_string_equal(d.ddb[0].key, "DDB.X");
    assert_string_equal(d.ddb[0].value, "3");
    expect_str(vk_descriptor_ddb_get(&d, "ddb.y"), "2");
    vk_descriptor_free(&d);

    static const char no_type[] = "version=3\nCID=92adc14\nRW 1 ZERO\n";
    parse_ok(no_type, sizeof no_type - 1, "v3.vmdk", &d);
    assert_int_equal(d.version, 3);
    assert_int_equal(d.cid, 0x092adc14u);
    assert_null(d.create_type);
    vk_descriptor_free(&d);
}

static void test_stops_at_nul(void **state)
{
    (void)state;
    static const char text[] = "version=1\nRW 100 ZERO\n\0this is not a descriptor line\n";
    vk_descriptor d;
    parse_ok(text, sizeof text - 1, "nul.vmdk", &d);
    assert_int_equal(d.n_extents, 1);
    vk_descriptor_free(&d);

    /* a byte-order mark from a Windows editor */
    static const char bom[] = "\xef\xbb\xbfversion=1\nRW 100 ZERO\n";
    assert_true(vk_descriptor_sniff(bom, sizeof bom - 1));
    parse_ok(bom, sizeof bom - 1, "bom.vmdk", &d);
    assert_int_equal(d.n_extents, 1);
    vk_descriptor_free(&d);
}

static void test_max_sizes(void **state)
{
    (void)state;
    static const char text[] = "RW 18446744073709551615 FLAT \"a\" 18446744073709551615\n"
                               "RW 1 ZERO\n";
    vk_descriptor d;
    vk_err e = {0};
    parse_ok(text, sizeof text - 1, "max.vmdk", &d);
    assert_int_equal(d.extents[0].size_sectors, UINT64_MAX);
    assert_int_equal(d.extents[0].offset_sectors, UINT64_MAX);
    uint64_t cap = 7;
    assert_int_equal(vk_descriptor_capacity(&d, &cap, &e), VMDKIT_ELIMIT);
    assert_int_equal(e.code, VMDKIT_ELIMIT);
    assert_int_equal(cap, 7);
    vk_descriptor_free(&d);
}

/* ---- malformed input ---- */

/* five header lines and a section comment: the first extent is line 7 */
#define HEAD                                                               \
    "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n" \
    "createType=\"monolithicFlat\"\n# Extent description\n"
#define TAIL "\n# The Disk Data Base\n#DDB\nddb.adapterType = \"ide\"\nddb.toolsVersion = \"1\"\n"

static void expect_error_n(const char *text, size_t len, const char *file, int code, const char *msg)
{
    vk_descriptor d;
    memset(&d, 0x5a, sizeof d);
    vk_err e = {0};
    int r = vk_descriptor_parse(text, len, file, &d, &e);
    if (r != code)
        fail_msg("expected %d, got %d (%s)", code, r, e.msg);
    assert_int_equal(e.code, code);
    assert_string_equal(e.msg, msg);
    /* left empty and freeable */
    assert_null(d.extents);
    assert_int_equal(d.n_extents, 0);
    assert_null(d.ddb);
    assert_int_equal(d.n_ddb, 0);
    assert_null(d.header_extra);
    assert_null(d.create_type);
    assert_null(d.encoding);
    vk_descriptor_free(&d);
    vk_descriptor_free(&d);
}

static void expect_error(const char *text, int code, const char *msg)
{
    expect_error_n(text, strlen(text), "x.vmdk", code, msg);
}

static void test_bad_extent_lines(void **state)
{
    (void)state;
    expect_error(HEAD "RW -5 FLAT \"a.vmdk\" 0\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent size: \"-5\" is not a sector count");
    expect_error(HEAD "RW 18446744073709551616 FLAT \"a.vmdk\" 0\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent size: \"18446744073709551616\" is too large");
    expect_error(HEAD "RW 0x10 FLAT \"a.vmdk\" 0\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent size: \"0x10\" is not a sector count");
    expect_error(HEAD "RW\n" TAIL, VMDKIT_EFORMAT, "x.vmdk: line 7: extent size: missing");
    expect_error(HEAD "RW 100\n" TAIL, VMDKIT_EFORMAT, "x.vmdk: line 7: extent type: missing");
    expect_error(HEAD "RX 100 FLAT \"a.vmdk\" 0\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent access: \"RX\" is not RW, RDONLY or NOACCESS");
    expect_error(HEAD "RW 100 FLOPPY \"a.vmdk\"\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent type: \"FLOPPY\" is not a known extent type");
    expect_error(HEAD "RW 100 FLAT \"a.vmdk 0\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent file name: unterminated quote in \"a.vmdk 0");
    expect_error(HEAD "RW 100 FLAT a.vmdk 0\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent file name: missing (a double-quoted name)");
    expect_error(HEAD "RW 100 SPARSE\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent file name: missing (a double-quoted name)");
    expect_error(HEAD "RW 100 FLAT \"a.vmdk\" -1\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent offset: \"-1\" is not a sector count");
    expect_error(HEAD "RW 100 FLAT \"a\x02.vmdk\" 0\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 7: extent file name: control character 0x02 in the name");
    /* the second extent line is wrong: line numbers keep counting */
    expect_error(HEAD "RW 100 FLAT \"a.vmdk\" 0\n\nRW 99999999999999999999 ZERO\n" TAIL, VMDKIT_EFORMAT,
                 "x.vmdk: line 9: extent size: \"99999999999999999999\" is too large");
}

static void test_bad_header_lines(void **state)
{
    (void)state;
    expect_error("# Disk DescriptorFile\nversion=4\nRW 1 ZERO\n", VMDKIT_EUNSUPPORTED,
                 "x.vmdk: line 2: version: 4 is not supported");
    expect_error("version=0\nRW 1 ZERO\n", VMDKIT_EUNSUPPORTED,
                 "x.vmdk: line 1: version: 0 is not supported");
    expect_error("version=99999999999999999999999\nRW 1 ZERO\n", VMDKIT_EUNSUPPORTED,
                 "x.vmdk: line 1: version: 99999999999999999999999 is not supported");
    expect_error("version=one\nRW 1 ZERO\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 1: version: \"one\" is not a number");
    expect_error("version=1\nCID=123456789\nRW 1 ZERO\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 2: CID: \"123456789\" is not 1 to 8 hex digits");
    expect_error("version=1\nCID=\nRW 1 ZERO\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 2: CID: \"\" is not 1 to 8 hex digits");
    expect_error("version=1\nparentCID=-1\nRW 1 ZERO\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 2: parentCID: \"-1\" is not 1 to 8 hex digits");
    expect_error(HEAD "RW 1 ZERO\ncreateType=\"abc\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 8: createType: unterminated quote in \"abc");
    expect_error(HEAD "RW 1 ZERO\ncreateType=\"abc\" def\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 8: createType: text after the closing quote: def");
    expect_error(HEAD "RW 1 ZERO\ncreateType=ab\"c\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 8: createType: stray double quote in ab\"c");
    expect_error(HEAD "RW 1 ZERO\nddb.uuid = \"a\x01"
                      "b\"\n",
                 VMDKIT_EFORMAT, "x.vmdk: line 8: ddb.uuid: control character 0x01 in the value");
    /* a lone CR is not a line end */
    expect_error(HEAD "RW 1 ZERO\nddb.a = \"x\ry\"\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 8: ddb.a: control character 0x0d in the value");
    expect_error(HEAD "RW 1 ZERO\n = \"x\"\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 8: key: missing before '='");
    expect_error(HEAD "hello world\nRW 1 ZERO\n", VMDKIT_EFORMAT,
                 "x.vmdk: line 7: text: \"hello world\" is not a comment, key=value or extent line");
    /* the error after many good lines frees what was already built */
    expect_error(HEAD "RW 1 ZERO\nRW 2 FLAT \"f\" 0\nisNativeSnapshot=\"no\"\n" TAIL "ddb.bad = \"x\n",
                 VMDKIT_EFORMAT, "x.vmdk: line 15: ddb.bad: unterminated quote in \"x");
    /* no file name given */
    expect_error_n("version=x\n", 10, NULL, VMDKIT_EFORMAT,
                   "descriptor: line 1: version: \"x\" is not a number");
}

static void test_nul_inside_value(void **state)
{
    (void)state;
    static const char text[] = HEAD "RW 1 ZERO\ncreateType=\"mono\0lithic\"\n" TAIL;
    expect_error_n(text, sizeof text - 1, "x.vmdk", VMDKIT_EFORMAT,
                   "x.vmdk: line 8: createType: unterminated quote in \"mono");
}

static void test_no_extents(void **state)
{
    (void)state;
    expect_error("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n" TAIL,
                 VMDKIT_EFORMAT, "x.vmdk: extents: no extent lines");
    expect_error("", VMDKIT_EFORMAT, "x.vmdk: extents: no extent lines");
    expect_error_n("\0version=1\nRW 1 ZERO\n", 21, "x.vmdk", VMDKIT_EFORMAT,
                   "x.vmdk: extents: no extent lines");
}

static void test_limits(void **state)
{
    (void)state;
    /* a line over 64 KiB */
    size_t n = 70000;
    char *text = malloc(n + 64);
    assert_non_null(text);
    strcpy(text, "version=1\nRW 1 ZERO\n#");
    size_t at = strlen(text);
    memset(text + at, 'x', n);
    strcpy(text + at + n, "\n");
    expect_error(text, VMDKIT_ELIMIT, "x.vmdk: line 3: line: 70001 bytes, more than the 65536 accepted");
    free(text);

    /* more than VK_DESC_MAX_EXTENTS lines ("RW 1 ZERO\n" keeps it under 1 MiB) */
    static const char line[] = "RW 1 ZERO\n";
    size_t count = VK_DESC_MAX_EXTENTS + 1, ll = sizeof line - 1;
    assert_true(count * ll <= VK_DESC_MAX_BYTES);
    text = malloc(count * ll + 1);
    assert_non_null(text);
    for (size_t i = 0; i < count; i++)
        memcpy(text + i * ll, line, ll);
    text[count * ll] = 0;
    char msg[128];
    snprintf(msg, sizeof msg, "x.vmdk: line %zu: extent: more than %u extent lines", count,
             VK_DESC_MAX_EXTENTS);
    expect_error(text, VMDKIT_ELIMIT, msg);
    /* exactly the limit is accepted */
    vk_descriptor d;
    parse_ok(text, (count - 1) * ll, "many.vmdk", &d);
    assert_int_equal(d.n_extents, VK_DESC_MAX_EXTENTS);
    uint64_t cap = 0;
    assert_int_equal(vk_descriptor_capacity(&d, &cap, NULL), 0);
    assert_int_equal(cap, VK_DESC_MAX_EXTENTS);
    vk_descriptor_free(&d);
    free(text);

    /* more than VK_DESC_MAX_BYTES of text */
    n = VK_DESC_MAX_BYTES + 1;
    text = malloc(n + 1);
    assert_non_null(text);
    memset(text, '\n', n);
    memcpy(text, "version=1\nRW 1 ZERO\n", 20);
    text[n] = 0;
    snprintf(msg, sizeof msg, "x.vmdk: descriptor: %zu bytes, more than the %u accepted", n,
             VK_DESC_MAX_BYTES);
    expect_error(text, VMDKIT_ELIMIT, msg);
    free(text);
}

/* ---- sniffing ---- */

static void test_sniff(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool want;
    } cases[] = {
        {"version=1\n", true},
        {"# Disk DescriptorFile\nversion=1\nCID=1\n", true},
        {"  # c\r\n\r\n\tVersion = 3\r\nCID=1\r\n", true},
        {"# Disk DescriptorFile\nversion=1 \n", true},
        {"version=\"2\"", true},
        {"VERSION=1", true},
        {"# Disk DescriptorFile\n# only comments\n", false},
        {"# Disk DescriptorFile\nCID=1\nversion=1\n", false},
        {"", false},
        {"version=\n", false},
        {"version=x\n", false},
        {"version=1x\n", false},
        {"versions=1\n", false},
        {"RW 100 FLAT \"a\" 0\n", false},
        {"KDMV\x01\0\0\0", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (vk_descriptor_sniff(cases[i].text, strlen(cases[i].text)) != cases[i].want)
            fail_msg("sniff case %zu: expected %d", i, cases[i].want);
    }
    /* stops at NUL and at LEN */
    assert_false(vk_descriptor_sniff("# x\n\0version=1\n", 15));
    assert_false(vk_descriptor_sniff("version=1\n", 8));
    assert_true(vk_descriptor_sniff("version=1\n", 9));
}

/* ---- writer and edits ---- */

static void build_sample(vk_descriptor *d)
{
    vk_err e = {0};
    memset(d, 0, sizeof *d);
    d->version = 1;
    d->encoding = strdup("UTF-8");
    d->cid = 0x1a2b3c4d;
    d->parent_cid = 0x0000abcd;
    d->create_type = strdup("custom");
    d->parent_hint = strdup("../Base/Base.vmdk");
    d->header_extra = calloc(1, sizeof *d->header_extra);
    assert_non_null(d->header_extra);
    d->header_extra[0] = (vk_kv){strdup("isNativeSnapshot"), strdup("no")};
    d->n_header_extra = 1;
    assert_int_equal(
        vk_descriptor_add_extent(d, VK_ACCESS_RW, 2097152, VK_EXT_SPARSE, "x.vmdk", false, 0, &e), 0);
    assert_int_equal(
        vk_descriptor_add_extent(d, VK_ACCESS_RW, 2097152, VK_EXT_FLAT, "x-flat.vmdk", false, 0, &e), 0);
    assert_int_equal(
        vk_descriptor_add_extent(d, VK_ACCESS_RDONLY, 4096, VK_EXT_VMFS, "y-flat.vmdk", true, 0, &e), 0);
    assert_int_equal(vk_descriptor_add_extent(d, VK_ACCESS_RW, 8, VK_EXT_VMFS, "z.vmdk", true, 16, &e),
                     0);
    assert_int_equal(
        vk_descriptor_add_extent(d, VK_ACCESS_NOACCESS, 100, VK_EXT_ZERO, "ignored", true, 9, &e), 0);
    assert_int_equal(vk_descriptor_ddb_set(d, "ddb.virtualHWVersion", "4", &e), 0);
    assert_int_equal(vk_descriptor_ddb_set(d, "ddb.adapterType", "ide", &e), 0);
    assert_int_equal(
        vk_descriptor_ddb_set(d, "ddb.longContentID", "0123456789abcdef0123456789abcdef", &e), 0);
}

static void test_format_canonical(void **state)
{
    (void)state;
    vk_descriptor d;
    build_sample(&d);
    assert_null(d.extents[4].filename);
    assert_false(d.extents[4].has_offset);
    char *t;
    size_t n;
    vk_err e = {0};
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), 0);
    assert_string_equal(t, "# Disk DescriptorFile\n"
                           "version=1\n"
                           "encoding=\"UTF-8\"\n"
                           "CID=1a2b3c4d\n"
                           "parentCID=0000abcd\n"
                           "isNativeSnapshot=\"no\"\n"
                           "createType=\"custom\"\n"
                           "parentFileNameHint=\"../Base/Base.vmdk\"\n"
                           "\n"
                           "# Extent description\n"
                           "RW 2097152 SPARSE \"x.vmdk\"\n"
                           "RW 2097152 FLAT \"x-flat.vmdk\" 0\n"
                           "RDONLY 4096 VMFS \"y-flat.vmdk\"\n"
                           "RW 8 VMFS \"z.vmdk\" 16\n"
                           "NOACCESS 100 ZERO\n"
                           "\n"
                           "# The Disk Data Base\n"
                           "#DDB\n"
                           "\n"
                           "ddb.virtualHWVersion = \"4\"\n"
                           "ddb.adapterType = \"ide\"\n"
                           "ddb.longContentID = \"0123456789abcdef0123456789abcdef\"\n");
    assert_int_equal(n, strlen(t));
    free(t);

    /* optional keys left out */
    free(d.encoding);
    d.encoding = NULL;
    free(d.parent_hint);
    d.parent_hint = NULL;
    free(d.create_type);
    d.create_type = NULL;
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), 0);
    assert_null(strstr(t, "encoding"));
    assert_null(strstr(t, "parentFileNameHint"));
    assert_null(strstr(t, "createType"));
    assert_non_null(strstr(t, "version=1\nCID=1a2b3c4d\nparentCID=0000abcd\nisNativeSnapshot"));
    free(t);
    vk_descriptor_free(&d);
}

static void test_format_round_trip(void **state)
{
    (void)state;
    vk_descriptor d;
    build_sample(&d);
    /* the writer always puts an offset on FLAT lines */
    d.extents[1].has_offset = true;
    /* a zero VMFS offset is not written */
    d.extents[2].has_offset = false;
    round_trip(&d, true);
    d.version = 3;
    round_trip(&d, true);
    vk_descriptor_free(&d);
}

static void test_format_change_tracking(void **state)
{
    (void)state;
    static const char text[] = "version=3\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\n"
                               "RW 8 VMFS \"a-flat.vmdk\"\n\n# Change Tracking File\n"
                               "changeTrackPath=\"a-ctk.vmdk\"\n";
    vk_descriptor d;
    parse_ok(text, sizeof text - 1, "a.vmdk", &d);
    char *t;
    size_t n;
    assert_int_equal(vk_descriptor_format(&d, &t, &n, NULL), 0);
    /* VMware's place for it: its own section after the extents */
    assert_non_null(strstr(t, "RW 8 VMFS \"a-flat.vmdk\"\n\n# Change Tracking File\n"
                              "changeTrackPath=\"a-ctk.vmdk\"\n\n# The Disk Data Base\n"));
    free(t);
    round_trip(&d, true);
    vk_descriptor_free(&d);
}

static void test_format_refuses(void **state)
{
    (void)state;
    vk_descriptor d;
    vk_err e = {0};
    char *t = NULL;
    size_t n = 0;

    build_sample(&d);
    free(d.create_type);
    d.create_type = strdup("mono\"lithic");
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), VMDKIT_EINVAL);
    assert_string_equal(e.msg,
                        "descriptor: createType: value holds a double quote or control character");
    vk_descriptor_free(&d);

    build_sample(&d);
    free(d.extents[0].filename);
    d.extents[0].filename = strdup("a\nb");
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), VMDKIT_EINVAL);
    vk_descriptor_free(&d);

    build_sample(&d);
    free(d.ddb[0].key);
    d.ddb[0].key = strdup("virtualHWVersion");
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), VMDKIT_EINVAL);
    vk_descriptor_free(&d);

    build_sample(&d);
    free(d.header_extra[0].key);
    d.header_extra[0].key = strdup("createType");
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), VMDKIT_EINVAL);
    vk_descriptor_free(&d);

    build_sample(&d);
    d.version = 4;
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), VMDKIT_EINVAL);
    vk_descriptor_free(&d);

    memset(&d, 0, sizeof d);
    d.version = 1;
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), VMDKIT_EINVAL);
    assert_string_equal(e.msg, "descriptor: extents: no extent lines");
    assert_null(t);
    vk_descriptor_free(&d);
}

static void test_ddb_edits(void **state)
{
    (void)state;
    vk_descriptor d;
    vk_err e = {0};
    build_sample(&d);
    assert_int_equal(vk_descriptor_ddb_set(&d, "DDB.ADAPTERTYPE", "lsilogic", &e), 0);
    assert_int_equal(d.n_ddb, 3);
    assert_string_equal(d.ddb[1].key, "DDB.ADAPTERTYPE"); /* same place */
    expect_str(vk_descriptor_ddb_get(&d, "ddb.adapterType"), "lsilogic");
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.uuid", "60 00 C2 9a", &e), 0);
    assert_int_equal(d.n_ddb, 4);
    assert_string_equal(d.ddb[3].key, "ddb.uuid");

    assert_int_equal(vk_descriptor_ddb_set(&d, "adapterType", "ide", &e), VMDKIT_EINVAL);
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.a b", "ide", &e), VMDKIT_EINVAL);
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.x", "a\"b", &e), VMDKIT_EINVAL);
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.x", "a\nb", &e), VMDKIT_EINVAL);
    assert_int_equal(d.n_ddb, 4);
    assert_null(vk_descriptor_ddb_get(&d, "ddb.x"));

    assert_int_equal(vk_descriptor_add_extent(&d, VK_ACCESS_RW, 1, VK_EXT_FLAT, NULL, true, 0, &e),
                     VMDKIT_EINVAL);
    assert_int_equal(vk_descriptor_add_extent(&d, (enum vk_access)7, 1, VK_EXT_ZERO, NULL, false, 0, &e),
                     VMDKIT_EINVAL);
    assert_int_equal(d.n_extents, 5);
    round_trip(&d, false);
    vk_descriptor_free(&d);
}

static void test_set_cid(void **state)
{
    (void)state;
    vk_descriptor d;
    vk_err e = {0};
    build_sample(&d);
    assert_int_equal(vk_descriptor_set_cid(&d, 0x00c0ffee, &e), 0);
    assert_int_equal(d.cid, 0x00c0ffeeu);
    expect_str(vk_descriptor_ddb_get(&d, "ddb.longContentID"), "0123456789abcdef0123456700c0ffee");
    char *t;
    size_t n;
    assert_int_equal(vk_descriptor_format(&d, &t, &n, &e), 0);
    assert_non_null(strstr(t, "\nCID=00c0ffee\n"));
    free(t);

    /* not 32 hex digits: left alone */
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.longContentID", "xyz", &e), 0);
    assert_int_equal(vk_descriptor_set_cid(&d, 0x12345678, &e), 0);
    expect_str(vk_descriptor_ddb_get(&d, "ddb.longContentID"), "xyz");
    vk_descriptor_free(&d);

    /* no longContentID: none added */
    static const char text[] = "CID=fffffffe\nRW 1 ZERO\nddb.longcontentid = "
                               "\"E61F2478A1F3C8BC7C3A8F36FFFFFFFE\"\n";
    parse_ok(text, sizeof text - 1, "c.vmdk", &d);
    assert_int_equal(vk_descriptor_set_cid(&d, 0xdeadbeef, &e), 0);
    expect_str(vk_descriptor_ddb_get(&d, "ddb.longContentID"), "E61F2478A1F3C8BC7C3A8F36deadbeef");
    vk_descriptor_free(&d);
    static const char plain[] = "CID=fffffffe\nRW 1 ZERO\n";
    parse_ok(plain, sizeof plain - 1, "p.vmdk", &d);
    assert_int_equal(vk_descriptor_set_cid(&d, 0xdeadbeef, &e), 0);
    assert_int_equal(d.n_ddb, 0);
    vk_descriptor_free(&d);
}

static void test_free_is_safe(void **state)
{
    (void)state;
    vk_descriptor d;
    memset(&d, 0, sizeof d);
    vk_descriptor_free(&d);
    vk_descriptor_free(&d);
    vk_descriptor_free(NULL);
    build_sample(&d);
    vk_descriptor_free(&d);
    assert_null(d.extents);
    assert_int_equal(d.n_ddb, 0);
    vk_descriptor_free(&d);
}

/* The one list of createTypes, shared by the reader and the checker. */
static void test_create_type_known(void **state)
{
    (void)state;
    static const char *const known[] = {"monolithicSparse",
                                        "MONOLITHICFLAT",
                                        "twoGbMaxExtentSparse",
                                        "2GbMaxExtentFlat",
                                        "streamOptimized",
                                        "vmfs",
                                        "vmfsThin",
                                        "seSparse",
                                        "vmfsSparse",
                                        "vmfsPassthroughRawDeviceMap",
                                        "fullDevice",
                                        "custom"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        assert_true(vk_create_type_known(known[i]));
    assert_false(vk_create_type_known("monolithic"));
    assert_false(vk_create_type_known("monolithicSparse "));
    assert_false(vk_create_type_known(""));
    assert_false(vk_create_type_known(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_libvmdk),
        cmocka_unit_test(test_corpus_vmware_flat),
        cmocka_unit_test(test_corpus_esxi_vmfs),
        cmocka_unit_test(test_corpus_ms3_win),
        cmocka_unit_test(test_corpus_embedded),
        cmocka_unit_test(test_tolerant_text),
        cmocka_unit_test(test_every_extent_type),
        cmocka_unit_test(test_defaults_and_duplicates),
        cmocka_unit_test(test_stops_at_nul),
        cmocka_unit_test(test_max_sizes),
        cmocka_unit_test(test_bad_extent_lines),
        cmocka_unit_test(test_bad_header_lines),
        cmocka_unit_test(test_nul_inside_value),
        cmocka_unit_test(test_no_extents),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_format_canonical),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_change_tracking),
        cmocka_unit_test(test_format_refuses),
        cmocka_unit_test(test_ddb_edits),
        cmocka_unit_test(test_set_cid),
        cmocka_unit_test(test_free_is_safe),
        cmocka_unit_test(test_create_type_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
