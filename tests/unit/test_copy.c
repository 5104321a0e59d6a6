/* test_copy.c - the copy engine under vmdkit_convert (copy.c), with a small
 * sparse raw file as the source: every output type holds the source's
 * bytes; all-zero grains are never stored (zero skip), and a raw output
 * keeps them as holes; progress starts with DONE 0 and the total, never
 * goes back and ends at the total; a progress callback that asks to stop
 * gives VMDKIT_ECANCELED and leaves no file behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmdkit.h"

#define GRAIN 65536u
#define GRAINS 128u
#define SIZE ((uint64_t)GRAIN * GRAINS)

static char dir[] = "/tmp/vmdkit-test-copy.XXXXXX";
static char src_path[256];
static uint8_t *expected; /* the source's content */

/* The grains of the source that hold a non-zero byte. */
static const unsigned data_grains[] = {0, 2, 64, 127};
#define N_DATA (sizeof data_grains / sizeof *data_grains)

static uint8_t pattern(uint64_t off) { return (uint8_t)((off * 7 + (off >> 16) * 13) | 1); }

static void pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
}

/*
 * The source, 128 grains of 64 KiB:
 *   0      data
 *   1      zeros written as bytes (stored by the file, all zero)
 *   2      4 KiB of data, then zeros
 *   3-63   a hole
 *   64     zeros and one byte of data at its last offset
 *   65-126 zeros written as bytes
 *   127    data
 */
static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(src_path, sizeof src_path, "%s/src.raw", dir);
    expected = calloc(1, SIZE);
    if (!expected)
        return -1;
    for (uint64_t i = 0; i < GRAIN; i++)
        expected[i] = pattern(i);
    for (uint64_t i = 2 * GRAIN; i < 2 * GRAIN + 4096; i++)
        expected[i] = pattern(i);
    expected[65 * (uint64_t)GRAIN - 1] = 0x5a;
    for (uint64_t i = 127 * (uint64_t)GRAIN; i < SIZE; i++)
        expected[i] = pattern(i);
    int fd = open(src_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)SIZE) != 0)
        return -1;
    pwrite_all(fd, expected, 3 * GRAIN, 0);
    pwrite_all(fd, expected + 64 * (uint64_t)GRAIN, 63 * GRAIN, 64 * (uint64_t)GRAIN);
    pwrite_all(fd, expected + 127 * (uint64_t)GRAIN, GRAIN, 127 * (uint64_t)GRAIN);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    free(expected);
    return system(cmd) == 0 ? 0 : -1;
}

static vmdkit_disk *open_source(void)
{
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(src_path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_RAW, &d, &err))
        fail_msg("open %s: %s", src_path, err.msg);
    return d;
}

/* ---- what the outputs hold ---- */

static void expect_content(const char *path, unsigned flags)
{
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY | flags, &d, &err))
        fail_msg("open %s: %s", path, err.msg);
    assert_int_equal(vmdkit_size(d), SIZE);
    uint8_t *buf = malloc(SIZE);
    assert_non_null(buf);
    assert_int_equal(vmdkit_pread(d, buf, SIZE, 0), 0);
    for (uint64_t i = 0; i < SIZE; i++)
        if (buf[i] != expected[i])
            fail_msg("%s: byte %llu is 0x%02x, expected 0x%02x", path, (unsigned long long)i, buf[i],
                     expected[i]);
    free(buf);
    vmdkit_close(d, NULL);
}

/* The grains PATH stores data for are exactly the source's data grains. */
static void expect_stored_grains(const char *path)
{
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err))
        fail_msg("open %s: %s", path, err.msg);
    bool stored[GRAINS] = {false};
    for (uint64_t off = 0; off < SIZE;) {
        vmdkit_block_status st;
        assert_int_equal(vmdkit_block_status_at(d, SIZE - off, off, &st), 0);
        assert_true(st.length > 0);
        if (st.alloc == VMDKIT_ALLOC_DATA)
            for (uint64_t g = off / GRAIN; g * GRAIN < off + st.length; g++)
                stored[g] = true;
        off += st.length;
    }
    vmdkit_close(d, NULL);
    for (unsigned g = 0; g < GRAINS; g++) {
        bool want = false;
        for (size_t i = 0; i < N_DATA; i++)
            want |= data_grains[i] == g;
        if (stored[g] != want)
            fail_msg("%s: grain %u is %s, expected %s", path, g, stored[g] ? "stored" : "not stored",
                     want ? "stored" : "not stored");
    }
}

/* Every zero grain of a raw output is a hole (where the file system can say). */
static void expect_holes(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)SIZE);
    /* blocks: the four data grains and a little metadata, not the 8 MiB */
    assert_true((uint64_t)st.st_blocks * 512 <= (N_DATA + 1) * (uint64_t)GRAIN);
    off_t next = lseek(fd, GRAIN, SEEK_DATA);
    if (next < 0 && errno == EINVAL) {
        print_message("SEEK_DATA not supported here: holes measured by blocks only\n");
    } else {
        assert_int_equal(next, 2 * (off_t)GRAIN); /* grain 1 is a hole */
        assert_int_equal(lseek(fd, 3 * (off_t)GRAIN, SEEK_DATA), 64 * (off_t)GRAIN);
        assert_int_equal(lseek(fd, 65 * (off_t)GRAIN, SEEK_DATA), 127 * (off_t)GRAIN);
    }
    close(fd);
}

/* ---- progress ---- */

typedef struct calls {
    unsigned n;
    uint64_t first_done, first_total, last_done, total;
    bool backwards, total_changed;
    unsigned cancel_at; /* return non-zero on this call (1 = the first); 0 never */
} calls;

static int record(void *opaque, uint64_t done, uint64_t total)
{
    calls *c = opaque;
    c->n++;
    if (c->n == 1) {
        c->first_done = done;
        c->first_total = total;
        c->total = total;
    } else {
        c->backwards |= done < c->last_done;
        c->total_changed |= total != c->total;
    }
    c->last_done = done;
    return c->cancel_at && c->n >= c->cancel_at;
}

static int convert(const char *dst, vmdkit_convert_opts *o, calls *c, vmdkit_error *err)
{
    o->progress = record;
    o->progress_opaque = c;
    vmdkit_disk *s = open_source();
    int r = vmdkit_convert(s, dst, o, err);
    vmdkit_close(s, NULL);
    return r;
}

static void expect_progress(const calls *c)
{
    assert_true(c->n >= 2);
    assert_int_equal(c->first_done, 0);
    assert_int_equal(c->first_total, SIZE);
    assert_false(c->backwards);
    assert_false(c->total_changed);
    assert_int_equal(c->last_done, SIZE);
}

/* ---- tests ---- */

static void test_to_sparse(void **state)
{
    (void)state;
    char dst[300];
    snprintf(dst, sizeof dst, "%s/sparse.vmdk", dir);
    vmdkit_convert_opts o = {.struct_size = sizeof o,
                             .vmdk = &(vmdkit_create_opts){.struct_size = sizeof(vmdkit_create_opts),
                                                           .type = VMDKIT_MONOLITHIC_SPARSE}};
    calls c = {0};
    vmdkit_error err = {0};
    if (convert(dst, &o, &c, &err))
        fail_msg("convert: %s", err.msg);
    expect_content(dst, 0);
    expect_stored_grains(dst);
    expect_progress(&c);
}

static void test_to_stream(void **state)
{
    (void)state;
    char dst[300];
    snprintf(dst, sizeof dst, "%s/stream.vmdk", dir);
    vmdkit_convert_opts o = {.struct_size = sizeof o,
                             .vmdk = &(vmdkit_create_opts){.struct_size = sizeof(vmdkit_create_opts),
                                                           .type = VMDKIT_STREAM_OPTIMIZED},
                             .threads = 2};
    calls c = {0};
    vmdkit_error err = {0};
    if (convert(dst, &o, &c, &err))
        fail_msg("convert: %s", err.msg);
    expect_content(dst, 0);
    expect_stored_grains(dst);
    expect_progress(&c);
}

static void test_to_raw_keeps_holes(void **state)
{
    (void)state;
    char dst[300];
    snprintf(dst, sizeof dst, "%s/out.raw", dir);
    vmdkit_convert_opts o = {.struct_size = sizeof o, .to_raw = true};
    calls c = {0};
    vmdkit_error err = {0};
    if (convert(dst, &o, &c, &err))
        fail_msg("convert: %s", err.msg);
    expect_content(dst, VMDKIT_OPEN_RAW);
    expect_holes(dst);
    expect_progress(&c);
}

static void test_to_flat(void **state)
{
    (void)state;
    char dst[300];
    snprintf(dst, sizeof dst, "%s/flat.vmdk", dir);
    vmdkit_convert_opts o = {.struct_size = sizeof o,
                             .vmdk = &(vmdkit_create_opts){.struct_size = sizeof(vmdkit_create_opts),
                                                           .type = VMDKIT_MONOLITHIC_FLAT}};
    calls c = {0};
    vmdkit_error err = {0};
    if (convert(dst, &o, &c, &err))
        fail_msg("convert: %s", err.msg);
    expect_content(dst, 0);
    expect_progress(&c);
}

/* Files of the test folder other than the source. */
static unsigned other_files(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "src.raw"))
            n++;
    closedir(d);
    return n;
}

static void clean_outputs(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 ! -name src.raw -delete", dir);
    assert_int_equal(system(cmd), 0);
}

static void expect_cancel(bool to_raw, vmdkit_create_type type, const char *name, unsigned at)
{
    clean_outputs();
    char dst[300];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    vmdkit_convert_opts o = {
        .struct_size = sizeof o,
        .to_raw = to_raw,
        .vmdk = &(vmdkit_create_opts){.struct_size = sizeof(vmdkit_create_opts), .type = type},
        .threads = 2};
    calls c = {.cancel_at = at};
    vmdkit_error err = {0};
    int r = convert(dst, &o, &c, &err);
    if (r != VMDKIT_ECANCELED)
        fail_msg("%s, cancelled at call %u: returned %d (%s), expected VMDKIT_ECANCELED", name, at, r,
                 err.msg);
    assert_int_equal(err.code, VMDKIT_ECANCELED);
    assert_int_equal(c.n, at); /* asked no further once told to stop */
    if (other_files() != 0)
        fail_msg("%s, cancelled at call %u: files left in %s", name, at, dir);
}

static void test_cancel(void **state)
{
    (void)state;
    /* at the first call (DONE 0) and after some data was stored */
    for (unsigned at = 1; at <= 3; at += 2) {
        expect_cancel(true, 0, "c.raw", at);
        expect_cancel(false, VMDKIT_MONOLITHIC_SPARSE, "c.vmdk", at);
        expect_cancel(false, VMDKIT_MONOLITHIC_FLAT, "cf.vmdk", at);
        expect_cancel(false, VMDKIT_TWOGB_SPARSE, "cs.vmdk", at);
        expect_cancel(false, VMDKIT_STREAM_OPTIMIZED, "co.vmdk", at);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_sparse),
        cmocka_unit_test(test_to_stream),
        cmocka_unit_test(test_to_raw_keeps_holes),
        cmocka_unit_test(test_to_flat),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
