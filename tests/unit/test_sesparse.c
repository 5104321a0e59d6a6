/* test_sesparse.c - ESXi seSparse extents: the corpus file written by ESXi
 * (16 MiB of 'a' then zeros in a 512 MiB extent), and patched copies of it
 * with damaged or unusual fields. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "extent.h"
#include "sparse_header.h"

#define EXTENT_SECTORS UINT64_C(1048576) /* 512 MiB */
#define DATA_SECTORS UINT64_C(32768)     /* 16 MiB of 'a' */
#define CHUNK_SECTORS 2048u

/* Field places in the corpus file (from its constant header). */
#define VOLATILE_REPLAY (512 + 24)
#define GD_OFFSET_FIELD 128
#define GD_BYTE (UINT64_C(0x1000) * 512)
#define GT0_BYTE (UINT64_C(0x1800) * 512)
#define GRAINS_BYTE (UINT64_C(0x3000) * 512)
#define GRAINS_SIZE_FIELD 200

static char tmpdir[] = "/tmp/test_sesparse.XXXXXX";
static char corpus_copy[300];
static uint8_t *original; /* the gunzipped corpus file */
static size_t original_len;

typedef struct opened {
    char path[300];
    vk_extent x;
} opened;

static int open_path(const char *path, uint64_t size, opened *o, vk_err *e)
{
    snprintf(o->path, sizeof o->path, "%s", path);
    memset(&o->x, 0, sizeof o->x);
    o->x.name = o->path;
    o->x.path = o->path;
    o->x.access = VK_ACCESS_RW;
    o->x.type = VK_EXT_SESPARSE;
    o->x.size_sectors = size;
    o->x.fd = open(o->path, O_RDONLY);
    assert_true(o->x.fd >= 0);
    memset(e, 0, sizeof *e);
    int r = vk_sesparse_open(&o->x, e);
    if (r)
        close(o->x.fd);
    return r;
}

static void close_opened(opened *o)
{
    vk_err e;
    assert_int_equal(o->x.ops->close(&o->x, &e), 0);
    close(o->x.fd);
}

static const char *patched_path(void)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/patched.vmdk", tmpdir);
    return path;
}

/* Write the corpus file with LEN bytes at OFF replaced, return its path. */
static const char *patched_bytes(uint64_t off, const void *bytes, size_t len)
{
    const char *path = patched_path();
    assert_true(off + len <= original_len);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(original, 1, off, f), off);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fwrite(original + off + len, 1, original_len - off - len, f),
                     original_len - off - len);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Write the corpus file with N (at most 4) uint64 fields at OFFS set to VALS. */
static const char *patched_fields(size_t n, const uint64_t *offs, const uint64_t *vals)
{
    uint64_t old[4];
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++) {
        assert_true(offs[i] + 8 <= original_len);
        old[i] = vk_le64(original + offs[i]);
        vk_put64(original + offs[i], vals[i]);
    }
    const char *path = patched_path();
    FILE *f = fopen(path, "wb");
    size_t wrote = f ? fwrite(original, 1, original_len, f) : 0;
    /* restore before asserting so later tests see the real file */
    for (size_t i = n; i-- > 0;)
        vk_put64(original + offs[i], old[i]);
    assert_non_null(f);
    assert_int_equal(wrote, original_len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *patched64(uint64_t off, uint64_t v) { return patched_fields(1, &off, &v); }

static void expect_open_error(const char *path, uint64_t size, int code, const char *word)
{
    opened o;
    vk_err e;
    int r = open_path(path, size, &o, &e);
    if (r == 0)
        close_opened(&o);
    assert_int_equal(r, code);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, word));
    unlink(path);
}

#define NEED_CORPUS()                                                   \
    do {                                                                \
        if (!original) {                                                \
            print_message("seSparse corpus file not found, skipped\n"); \
            skip();                                                     \
        }                                                               \
    } while (0)

static void test_corpus_status(void **state)
{
    (void)state;
    NEED_CORPUS();
    opened o;
    vk_err e;
    assert_int_equal(open_path(corpus_copy, EXTENT_SECTORS, &o, &e), 0);
    assert_null(o.x.ops->write);
    assert_null(o.x.ops->zero);
    int alloc;
    uint64_t run;
    assert_int_equal(o.x.ops->status(&o.x, 0, EXTENT_SECTORS, &alloc, &run, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_DATA);
    assert_int_equal(run, DATA_SECTORS);
    /* limited and mid-grain requests */
    assert_int_equal(o.x.ops->status(&o.x, 3, 10, &alloc, &run, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_DATA);
    assert_int_equal(run, 10);
    assert_int_equal(o.x.ops->status(&o.x, DATA_SECTORS - 5, 100, &alloc, &run, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_DATA);
    assert_int_equal(run, 5);
    for (uint64_t s = DATA_SECTORS; s < EXTENT_SECTORS; s += run) {
        assert_int_equal(o.x.ops->status(&o.x, s, EXTENT_SECTORS - s, &alloc, &run, &e), 0);
        assert_true(alloc == VMDKIT_ALLOC_UNALLOC || alloc == VMDKIT_ALLOC_ZERO);
        assert_true(run >= 1 && run <= EXTENT_SECTORS - s);
    }
    vmdkit_sparse_facts f;
    uint64_t allocated = 0;
    o.x.ops->describe(&o.x, &f, &allocated);
    assert_false(f.present);
    assert_int_equal(allocated, DATA_SECTORS * 512);
    assert_null(o.x.ops->flush); /* read-only: nothing to make durable */
    close_opened(&o);
}

static void test_corpus_content(void **state)
{
    (void)state;
    NEED_CORPUS();
    opened o;
    vk_err e;
    assert_int_equal(open_path(corpus_copy, EXTENT_SECTORS, &o, &e), 0);
    uint8_t *buf = malloc(DATA_SECTORS * 512);
    uint8_t *want = malloc(DATA_SECTORS * 512);
    assert_non_null(buf);
    assert_non_null(want);

    memset(want, 'a', DATA_SECTORS * 512);
    assert_int_equal(o.x.ops->read(&o.x, 0, DATA_SECTORS, buf, &e), 0);
    assert_memory_equal(buf, want, DATA_SECTORS * 512);

    /* the whole extent in chunks, one starting inside a grain */
    for (uint64_t s = 0; s < EXTENT_SECTORS;) {
        uint64_t n = s == 0 ? 3 : CHUNK_SECTORS;
        if (n > EXTENT_SECTORS - s)
            n = EXTENT_SECTORS - s;
        memset(buf, 0xee, n * 512);
        assert_int_equal(o.x.ops->read(&o.x, s, n, buf, &e), 0);
        for (uint64_t i = 0; i < n * 512; i++) {
            uint8_t expect = s * 512 + i < DATA_SECTORS * 512 ? 'a' : 0;
            if (buf[i] != expect)
                fail_msg("byte %llu is 0x%02x, expected 0x%02x", (unsigned long long)(s * 512 + i),
                         buf[i], expect);
        }
        s += n;
    }
    free(buf);
    free(want);
    close_opened(&o);
}

static void test_bad_fields(void **state)
{
    (void)state;
    NEED_CORPUS();
    expect_open_error(patched64(0, 0xcafebabfu), EXTENT_SECTORS, VMDKIT_EFORMAT, "magic");
    expect_open_error(patched64(8, UINT64_C(0x0000000300000001)), EXTENT_SECTORS, VMDKIT_EUNSUPPORTED,
                      "version");
    expect_open_error(patched64(24, 16), EXTENT_SECTORS, VMDKIT_EUNSUPPORTED, "grain_size");
    expect_open_error(patched64(VOLATILE_REPLAY, 1), EXTENT_SECTORS, VMDKIT_EUNSUPPORTED,
                      "replay_journal");
    expect_open_error(patched64(512, 0), EXTENT_SECTORS, VMDKIT_EFORMAT, "volatile header");
    expect_open_error(patched64(GD_OFFSET_FIELD, original_len / 512), EXTENT_SECTORS, VMDKIT_EFORMAT,
                      "grain directory");
    expect_open_error(patched64(GD_OFFSET_FIELD, UINT64_C(0xfffffffffffffff0)), EXTENT_SECTORS,
                      VMDKIT_EFORMAT, "grain directory");
    expect_open_error(patched64(GD_OFFSET_FIELD + 8, 0), EXTENT_SECTORS, VMDKIT_EFORMAT,
                      "grain directory");
    /* a one-sector grain directory (64 tables of 16 MiB) for a larger extent */
    {
        const uint64_t offs[2] = {16, GD_OFFSET_FIELD + 8};
        const uint64_t vals[2] = {UINT64_C(1) << 30, 1};
        expect_open_error(patched_fields(2, offs, vals), 64 * UINT64_C(32768) + 8, VMDKIT_EFORMAT,
                          "grain directory size");
    }
    /* capacity smaller than the extent in the descriptor */
    {
        char path[300];
        snprintf(path, sizeof path, "%s", corpus_copy);
        expect_open_error(path, EXTENT_SECTORS + 8, VMDKIT_EFORMAT, "capacity");
    }
    /* directory entries: wrong tag, table index beyond the table region */
    expect_open_error(patched64(GD_BYTE + 8, UINT64_C(0x2000000000000000)), EXTENT_SECTORS,
                      VMDKIT_EFORMAT, "grain directory entry 1");
    expect_open_error(patched64(GD_BYTE + 8, UINT64_C(0x1000000000000020)), EXTENT_SECTORS,
                      VMDKIT_EFORMAT, "grain directory entry 1");
}

/* Patch grain table 0 entry INDEX (1..4094) to V and read grain INDEX in
 * one call together with its unchanged neighbours, which must read as 'a'. */
static int read_patched_grain(uint64_t index, uint64_t v, uint8_t *buf, int *alloc, vk_err *e)
{
    const char *path = patched64(GT0_BYTE + index * 8, v);
    opened o;
    assert_int_equal(open_path(path, EXTENT_SECTORS, &o, e), 0);
    uint64_t run;
    int r = o.x.ops->status(&o.x, index * 8, 8, alloc, &run, e);
    if (r == 0) {
        assert_int_equal(run, 8);
        uint8_t three[3 * 4096];
        r = o.x.ops->read(&o.x, index * 8 - 8, 24, three, e);
        if (r == 0) {
            for (size_t i = 0; i < 4096; i++) {
                assert_int_equal(three[i], 'a');
                assert_int_equal(three[2 * 4096 + i], 'a');
            }
            memcpy(buf, three + 4096, 4096);
        }
    }
    if (r) {
        assert_non_null(strstr(e->msg, path));
        assert_non_null(strstr(e->msg, "grain table 0 entry"));
    }
    close_opened(&o);
    unlink(path);
    return r;
}

static void test_grain_entries(void **state)
{
    (void)state;
    NEED_CORPUS();
    uint8_t buf[4096], zeros[4096] = {0};
    int alloc;
    vk_err e;
    /* unmapped and zero grains read as zeros */
    assert_int_equal(read_patched_grain(5, UINT64_C(0x1000000000000000), buf, &alloc, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_ZERO);
    assert_memory_equal(buf, zeros, sizeof buf);
    assert_int_equal(read_patched_grain(6, UINT64_C(0x2000000000000000), buf, &alloc, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_ZERO);
    assert_memory_equal(buf, zeros, sizeof buf);
    /* an unallocated entry must be entirely zero */
    assert_int_equal(read_patched_grain(7, 0, buf, &alloc, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_UNALLOC);
    assert_int_equal(read_patched_grain(7, 1, buf, &alloc, &e), VMDKIT_EFORMAT);
    /* unknown kind */
    assert_int_equal(read_patched_grain(8, UINT64_C(0x5000000000000000), buf, &alloc, &e),
                     VMDKIT_EFORMAT);
    /* cluster number past the end of the file, and past the grains area */
    assert_int_equal(read_patched_grain(9, UINT64_C(0x3000000000000005), buf, &alloc, &e),
                     VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, "0x3000000000000005"));
    assert_int_equal(read_patched_grain(9, UINT64_C(0x3000000000001000), buf, &alloc, &e),
                     VMDKIT_EFORMAT);
    assert_int_equal(read_patched_grain(9, UINT64_C(0x3000ffffffffffff), buf, &alloc, &e),
                     VMDKIT_EFORMAT);
    /* cluster numbers use both bit fields: 4096 is the spare grain of 0xff
     * bytes the file holds after the 'a' grains; 4095 is the last 'a' grain */
    uint8_t ff[4096], a[4096];
    memset(ff, 0xff, sizeof ff);
    memset(a, 'a', sizeof a);
    assert_int_equal(original_len, (0x3000 + 4097 * 8) * UINT64_C(512));
    assert_int_equal(read_patched_grain(10, UINT64_C(0x3000000000000001), buf, &alloc, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_DATA);
    assert_memory_equal(buf, ff, sizeof buf);
    assert_int_equal(read_patched_grain(10, UINT64_C(0x3fff000000000000), buf, &alloc, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_DATA);
    assert_memory_equal(buf, a, sizeof buf);
}

/* A cluster inside the file but beyond the declared grains area is refused. */
static void test_grains_area(void **state)
{
    (void)state;
    NEED_CORPUS();
    const uint64_t offs[2] = {GRAINS_SIZE_FIELD, GT0_BYTE + 10 * 8};
    const uint64_t vals[2] = {4096 * 8, UINT64_C(0x3000000000000001)};
    const char *path = patched_fields(2, offs, vals);
    opened o;
    vk_err e;
    assert_int_equal(open_path(path, EXTENT_SECTORS, &o, &e), 0);
    uint8_t buf[4096];
    assert_int_equal(o.x.ops->read(&o.x, 72, 8, buf, &e), 0);
    assert_int_equal(o.x.ops->read(&o.x, 80, 8, buf, &e), VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, "grain table 0 entry 10"));
    close_opened(&o);
    unlink(path);
}

/* Reads starting and ending inside grains land on the right bytes. */
static void test_grain_offsets(void **state)
{
    (void)state;
    NEED_CORPUS();
    uint8_t pat[4096];
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = (uint8_t)(i / 512 * 17 + i % 251);
    const char *path = patched_bytes(GRAINS_BYTE, pat, sizeof pat);
    opened o;
    vk_err e;
    assert_int_equal(open_path(path, EXTENT_SECTORS, &o, &e), 0);
    uint8_t buf[16 * 512];
    assert_int_equal(o.x.ops->read(&o.x, 3, 4, buf, &e), 0);
    assert_memory_equal(buf, pat + 3 * 512, 4 * 512);
    assert_int_equal(o.x.ops->read(&o.x, 5, 11, buf, &e), 0);
    assert_memory_equal(buf, pat + 5 * 512, 3 * 512);
    for (size_t i = 3 * 512; i < 11 * 512; i++)
        assert_int_equal(buf[i], 'a');
    close_opened(&o);
    unlink(path);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    const char *corpus = getenv("VMDKIT_CORPUS");
    char gz[600], cmd[1400];
    snprintf(gz, sizeof gz, "%s/dissect/sesparse.vmdk.gz", corpus ? corpus : "");
    if (!corpus || access(gz, R_OK) != 0)
        return 0;
    snprintf(corpus_copy, sizeof corpus_copy, "%s/sesparse.vmdk", tmpdir);
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' > '%s'", gz, corpus_copy);
    if (system(cmd) != 0)
        return -1;
    FILE *f = fopen(corpus_copy, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0)
        return -1;
    long len = ftell(f);
    original = len > 0 ? malloc((size_t)len) : NULL;
    if (!original || fseek(f, 0, SEEK_SET) != 0 || fread(original, 1, (size_t)len, f) != (size_t)len)
        return -1;
    original_len = (size_t)len;
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(original);
    if (corpus_copy[0])
        unlink(corpus_copy);
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_status), cmocka_unit_test(test_corpus_content),
        cmocka_unit_test(test_bad_fields),    cmocka_unit_test(test_grain_entries),
        cmocka_unit_test(test_grain_offsets), cmocka_unit_test(test_grains_area),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
