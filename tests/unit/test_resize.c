/* test_resize.c - growing disks (maint/sparse_grow.c, maint/resize.c):
 *  - vk_sparse_grow with room in the directory's sectors keeps the
 *    directory in place; past that it moves the directory and its
 *    redundant copy to the end of the file; either way the old grains read
 *    the same, the new range reads zeros and takes writes, the header holds
 *    the capacity, and vmdkit_check finds nothing;
 *  - tables written but not the header (a kill then) leave the old
 *    extent, header unchanged; a header holding more than the descriptor's
 *    extent line opens with the descriptor's size, and a resize of it
 *    leaves the header as it is;
 *  - vmdkit_resize refuses shrinking (EINVAL), a delta and its parent
 *    (ECHAIN), a bad struct_size (EINVAL), and grows by odd sizes. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "maint/maint.h"
#include "sparse_header.h"

#define TEST_DIR_NAME "resize"
#include "test_dir.h"

static void make_disk(char *path, size_t n, const char *name, uint64_t size)
{
    snprintf(path, n, "%s/%s", dir, name);
    unlink(path);
    vmdkit_create_opts o = {
        .struct_size = sizeof o, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = size};
    vmdkit_error err;
    if (vmdkit_create(path, &o, &err))
        fail_msg("create %s: %s", path, err.msg);
}

static void write_pattern(const char *path, uint64_t off, int byte)
{
    vmdkit_disk *d;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDWR, &d, &err), 0);
    static uint8_t buf[65536];
    memset(buf, byte, sizeof buf);
    assert_int_equal(vmdkit_pwrite(d, buf, sizeof buf, off), 0);
    assert_int_equal(vmdkit_close(d, &err), 0);
}

static void expect_pattern(const char *path, uint64_t off, int byte)
{
    vmdkit_disk *d;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    static uint8_t buf[65536];
    assert_int_equal(vmdkit_pread(d, buf, sizeof buf, off), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != byte)
            fail_msg("%s at %llu + %zu: %02x, expected %02x", path, (unsigned long long)off, i, buf[i],
                     byte);
    vmdkit_close(d, NULL);
}

static void header_of(const char *path, vk_sparse_header *h)
{
    uint8_t b[512];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, sizeof b, 0), 512);
    close(fd);
    vk_sparse_header_decode(b, h);
}

static void same_header(const vk_sparse_header *a, const vk_sparse_header *b)
{
    uint8_t x[512], y[512];
    vk_sparse_header_encode(a, x);
    vk_sparse_header_encode(b, y);
    assert_memory_equal(x, y, sizeof x);
}

/* No corruption; no leaked space unless LEAKS_OK (what a kill leaves). */
static void check_clean(const char *path, bool leaks_ok)
{
    vmdkit_error err;
    vmdkit_check_result res;
    assert_int_equal(vmdkit_check(path, NULL, &res, &err), 0);
    assert_int_equal(res.corruptions, 0);
    if (!leaks_ok)
        assert_int_equal(res.leaks, 0);
    assert_int_equal(res.stale, 0);
}

/* Step 1 of a grow (tables), then with WRITE_HEADER its header alone. */
static void grow_file(const char *path, uint64_t sectors, bool write_header)
{
    vmdkit_error err;
    uint8_t hdr[512];
    bool changed;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    int r = vk_sparse_grow_tables(fd, path, sectors, hdr, &changed, &err);
    if (r)
        fail_msg("grow: %s", err.msg);
    assert_true(changed);
    if (write_header)
        assert_int_equal(pwrite(fd, hdr, sizeof hdr, 0), 512);
    close(fd);
}

static void test_grow_in_place_and_moved(void **state)
{
    (void)state;
    char path[600];
    /* 64 MiB: 2 directory entries in one sector, which holds 128 (4 GiB) */
    make_disk(path, sizeof path, "g.vmdk", 64u << 20);
    write_pattern(path, 0, 0x5a);
    write_pattern(path, (64u << 20) - 65536, 0xa5);
    vk_sparse_header h0, h1, h2;
    header_of(path, &h0);

    grow_file(path, (UINT64_C(1) << 30) / 512 + 1, true); /* 1 GiB + 1 sector: directory stays */
    header_of(path, &h1);
    assert_int_equal(h1.capacity_sectors, (UINT64_C(1) << 30) / 512 + 1);
    assert_int_equal(h1.gd_offset_sectors, h0.gd_offset_sectors);
    assert_int_equal(h1.rgd_offset_sectors, h0.rgd_offset_sectors);
    assert_int_equal(h1.overhead_sectors, h0.overhead_sectors);

    /* tables written, header not: the old disk (a kill at that moment) */
    grow_file(path, (UINT64_C(10) << 30) / 512, false);
    header_of(path, &h2);
    same_header(&h1, &h2);
    grow_file(path, (UINT64_C(10) << 30) / 512, true); /* 10 GiB: 320 entries, 3 sectors: moved */
    header_of(path, &h2);
    assert_int_equal(h2.capacity_sectors, (UINT64_C(10) << 30) / 512);
    assert_true(h2.gd_offset_sectors > h1.overhead_sectors);
    assert_true(h2.rgd_offset_sectors > h1.overhead_sectors);
    assert_int_not_equal(h2.gd_offset_sectors, h2.rgd_offset_sectors);

    /* the descriptor still says 64 MiB: the old disk */
    vmdkit_disk *d;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    assert_int_equal(vmdkit_size(d), 64u << 20);
    vmdkit_close(d, NULL);

    /* resize writes the descriptor with the header: the new size, old
     * data, zeros, new writes */
    vmdkit_resize_opts o = {.struct_size = sizeof o};
    assert_int_equal(vmdkit_resize(path, UINT64_C(10) << 30, &o, &err), 0);
    header_of(path, &h1);
    same_header(&h1, &h2); /* a second grow changed nothing */
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    assert_int_equal(vmdkit_size(d), UINT64_C(10) << 30);
    vmdkit_close(d, NULL);
    expect_pattern(path, 0, 0x5a);
    expect_pattern(path, (64u << 20) - 65536, 0xa5);
    expect_pattern(path, 64u << 20, 0);
    expect_pattern(path, (UINT64_C(10) << 30) - 65536, 0);
    write_pattern(path, (UINT64_C(9) << 30) + 512, 0x77);
    expect_pattern(path, (UINT64_C(9) << 30) + 512, 0x77);
    expect_pattern(path, 0, 0x5a);
    check_clean(path, true); /* the tables of the interrupted grow are leaked */
}

static void test_refusals(void **state)
{
    (void)state;
    char path[600], child[600];
    make_disk(path, sizeof path, "r.vmdk", 8u << 20);
    vmdkit_error err;
    vmdkit_resize_opts o = {.struct_size = sizeof o};
    assert_int_equal(vmdkit_resize(path, 4u << 20, &o, &err), VMDKIT_EINVAL);
    assert_non_null(strstr(err.msg, "shrinking"));
    struct {
        vmdkit_resize_opts known;
        uint64_t later; /* a field this library does not know, set */
    } longer = {.known = {.struct_size = sizeof longer}, .later = 1};
    assert_int_equal(vmdkit_resize(path, 16u << 20, &longer.known, &err), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_resize(path, UINT64_C(2) << 40, NULL, &err), VMDKIT_ELIMIT);
    snprintf(child, sizeof child, "%s/r-000001.vmdk", dir);
    assert_int_equal(vmdkit_create_delta(path, child, 0, &err), 0);
    assert_int_equal(vmdkit_resize(child, 16u << 20, NULL, &err), VMDKIT_ECHAIN);
    assert_int_equal(vmdkit_resize(path, 16u << 20, NULL, &err), VMDKIT_ECHAIN);
    assert_non_null(strstr(err.msg, "r-000001.vmdk"));
    unlink(child);
    /* an odd size: rounded up to a sector */
    assert_int_equal(vmdkit_resize(path, (16u << 20) + 1, NULL, &err), 0);
    vmdkit_disk *d;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    assert_int_equal(vmdkit_size(d), (16u << 20) + 512);
    vmdkit_close(d, NULL);
    check_clean(path, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_in_place_and_moved),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
