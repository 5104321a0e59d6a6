/* test_sparse_write.c - the hosted sparse driver's writes (extent_sparse.c),
 * driven through its ops table like the link layer drives it:
 *  - a partial-grain write over a parent copies the rest of the grain from
 *    the vk_backing callback (asked for the grain's sectors of the link, the
 *    extent's start included), once, and never for an allocated grain;
 *    without a backing the rest is zeros;
 *  - the grain-table cache evicts under writes that spread over more tables
 *    than it holds: an evicted modified table reaches the file (with every
 *    other modified one) before another takes its slot, a table read back
 *    after eviction holds its earlier writes, and after close the file reads
 *    the same through vmdkit_open and passes vmdkit_check;
 *  - a grain appended never lands on a grain of a damaged file that reaches
 *    past the end of the file. */
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

#include "extent.h"

#define TEST_DIR_NAME "sparse-write"
#include "test_dir.h"

#define GRAIN_SECTORS 128u
#define GRAIN_BYTES (GRAIN_SECTORS * 512u)
#define GTES 512u

static void make_disk(char *path, size_t n, const char *name, uint64_t size)
{
    snprintf(path, n, "%s/%s", dir, name);
    vmdkit_create_opts o = {
        .struct_size = sizeof o, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = size};
    vmdkit_error err;
    if (vmdkit_create(path, &o, &err))
        fail_msg("create %s: %s", path, err.msg);
}

static uint64_t le(const uint8_t *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static uint64_t file_u(const char *path, uint64_t off, int n)
{
    uint8_t b[8];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, (size_t)n, (off_t)off), n);
    close(fd);
    return le(b, n);
}

/* The grain table entry of grain G as the file holds it now. */
static uint32_t gte_on_disk(const char *path, uint64_t g)
{
    uint64_t gd = file_u(path, 56, 8);
    uint32_t gt = (uint32_t)file_u(path, gd * 512 + 4 * (g / GTES), 4);
    assert_int_not_equal(gt, 0);
    return (uint32_t)file_u(path, (uint64_t)gt * 512 + 4 * (g % GTES), 4);
}

/* Open the sparse file PATH as the link layer opens an extent of it. */
static void open_extent(vk_extent *x, const char *path, bool writable, uint64_t start_sector)
{
    memset(x, 0, sizeof *x);
    x->path = (char *)path;
    x->type = VK_EXT_SPARSE;
    x->access = VK_ACCESS_RW;
    x->writable = writable;
    x->start_sector = start_sector;
    x->size_sectors = file_u(path, 12, 8); /* capacity */
    x->fd = open(path, writable ? O_RDWR : O_RDONLY);
    assert_true(x->fd >= 0);
    vk_err e = {0};
    if (vk_sparse_open(x, &e))
        fail_msg("open %s: %s", path, e.msg);
}

static void close_extent(vk_extent *x)
{
    vk_err e = {0};
    if (x->ops->close(x, &e))
        fail_msg("close %s: %s", x->path, e.msg);
    close(x->fd);
}

/* ---- a parent seen through vk_backing ---- */

static uint8_t parent_byte(uint64_t link_byte) { return (uint8_t)(link_byte * 31 / 512 + 7); }

typedef struct parent {
    unsigned calls;
    uint64_t sector, n; /* the last request */
} parent;

static int parent_read(void *opaque, uint64_t link_sector, uint64_t n, void *buf, vk_err *e)
{
    (void)e;
    parent *p = opaque;
    p->calls++;
    p->sector = link_sector;
    p->n = n;
    uint8_t *b = buf;
    for (uint64_t i = 0; i < n * 512; i++)
        b[i] = parent_byte(link_sector * 512 + i);
    return 0;
}

static void read_grain(vk_extent *x, uint64_t g, uint8_t *buf)
{
    vk_err e = {0};
    if (x->ops->read(x, g * GRAIN_SECTORS, GRAIN_SECTORS, buf, &e))
        fail_msg("read grain %llu: %s", (unsigned long long)g, e.msg);
}

/* Grain G of X holds the parent's bytes (of the link, X starting at START)
 * but for sectors [ws, ws+wn) of the grain, which hold BYTE. */
static void expect_cow_grain(vk_extent *x, uint64_t start, uint64_t g, uint64_t ws, uint64_t wn,
                             uint8_t byte)
{
    uint8_t buf[GRAIN_BYTES];
    read_grain(x, g, buf);
    for (uint64_t i = 0; i < GRAIN_BYTES; i++) {
        bool written = i >= ws * 512 && i < (ws + wn) * 512;
        uint8_t want = written ? byte : parent_byte((start + g * GRAIN_SECTORS) * 512 + i);
        if (buf[i] != want)
            fail_msg("grain %llu byte %llu is 0x%02x, expected 0x%02x", (unsigned long long)g,
                     (unsigned long long)i, buf[i], want);
    }
}

static void test_partial_grain_over_parent(void **state)
{
    (void)state;
    char path[300];
    make_disk(path, sizeof path, "child.vmdk", 64u << 20);
    const uint64_t start = 4096; /* the extent begins 2 MiB into its link */
    vk_extent x;
    open_extent(&x, path, true, start);
    parent par = {0};
    vk_backing bk = {.read = parent_read, .opaque = &par};
    vk_err e = {0};
    uint8_t sec[3 * 512];
    memset(sec, 0xab, sizeof sec);

    /* three sectors inside grain 5 */
    assert_int_equal(x.ops->write(&x, 5 * GRAIN_SECTORS + 10, 3, sec, &bk, &e), 0);
    assert_int_equal(par.calls, 1);
    assert_int_equal(par.sector, start + 5 * GRAIN_SECTORS);
    assert_int_equal(par.n, GRAIN_SECTORS);
    expect_cow_grain(&x, start, 5, 10, 3, 0xab);
    /* the grain is allocated now: a second partial write goes in place */
    memset(sec, 0xcd, sizeof sec);
    assert_int_equal(x.ops->write(&x, 5 * GRAIN_SECTORS + 100, 2, sec, &bk, &e), 0);
    assert_int_equal(par.calls, 1);
    uint8_t buf[GRAIN_BYTES];
    read_grain(&x, 5, buf);
    assert_int_equal(buf[100 * 512], 0xcd);
    assert_int_equal(buf[10 * 512], 0xab);
    assert_int_equal(buf[50 * 512], parent_byte((start + 5 * GRAIN_SECTORS + 50) * 512));
    /* a write across a grain boundary: the end of grain 7 and the start of grain 8 */
    memset(sec, 0xef, sizeof sec);
    assert_int_equal(x.ops->write(&x, 8 * GRAIN_SECTORS - 1, 2, sec, &bk, &e), 0);
    assert_int_equal(par.calls, 3);
    expect_cow_grain(&x, start, 7, GRAIN_SECTORS - 1, 1, 0xef);
    expect_cow_grain(&x, start, 8, 0, 1, 0xef);
    /* no backing (no parent): the rest of the grain is zeros */
    assert_int_equal(x.ops->write(&x, 20 * GRAIN_SECTORS + 1, 1, sec, NULL, &e), 0);
    read_grain(&x, 20, buf);
    for (unsigned i = 0; i < GRAIN_BYTES; i++)
        assert_int_equal(buf[i], i >= 512 && i < 1024 ? 0xef : 0);
    /* a whole grain never asks the parent */
    uint8_t whole[GRAIN_BYTES];
    memset(whole, 0x11, sizeof whole);
    assert_int_equal(x.ops->write(&x, 30 * GRAIN_SECTORS, GRAIN_SECTORS, whole, &bk, &e), 0);
    assert_int_equal(par.calls, 3);
    int alloc;
    uint64_t run;
    assert_int_equal(x.ops->status(&x, 6 * GRAIN_SECTORS, GRAIN_SECTORS, &alloc, &run, &e), 0);
    assert_int_equal(alloc, VMDKIT_ALLOC_UNALLOC); /* a grain not written */
    close_extent(&x);

    /* what reached the file, read back by a new open */
    open_extent(&x, path, false, start);
    expect_cow_grain(&x, start, 7, GRAIN_SECTORS - 1, 1, 0xef);
    expect_cow_grain(&x, start, 8, 0, 1, 0xef);
    read_grain(&x, 30, buf);
    assert_memory_equal(buf, whole, GRAIN_BYTES);
    close_extent(&x);
    assert_int_equal(file_u(path, 72, 1), 0); /* closed cleanly */
}

/* One grain per table, tables STRIDE apart.  The cache holds 8192 tables
 * (GT_CACHE_BYTES, 16 MiB, of 2 KiB tables), direct-mapped: tables 0, 8192
 * and 16384 share a slot, and so do 1024, 9216 and 17408, and so on. */
#define BIG_BYTES (UINT64_C(600) << 30) /* 19200 tables */
#define STRIDE 1024u
#define N_TABLES 19u

static uint64_t grain_of(unsigned t, unsigned round)
{
    return (uint64_t)t * STRIDE * GTES + t % GTES + round;
}
static uint8_t byte_of(unsigned t, unsigned round) { return (uint8_t)(t * 8 + round + 1); }

static void test_cache_eviction(void **state)
{
    (void)state;
    char path[300];
    make_disk(path, sizeof path, "big.vmdk", BIG_BYTES);
    vk_extent x;
    open_extent(&x, path, true, 0);
    vk_err e = {0};
    uint8_t g[GRAIN_BYTES], buf[GRAIN_BYTES];

    /* table 0, then table 8192: the same slot of the 8192-slot cache */
    memset(g, byte_of(0, 0), sizeof g);
    assert_int_equal(x.ops->write(&x, grain_of(0, 0) * GRAIN_SECTORS, GRAIN_SECTORS, g, NULL, &e), 0);
    assert_int_equal(file_u(path, 72, 1), 1);               /* the unclean flag went first */
    assert_int_equal(gte_on_disk(path, grain_of(0, 0)), 0); /* table 0 is still in memory only */
    memset(g, byte_of(8, 0), sizeof g);
    assert_int_equal(x.ops->write(&x, grain_of(8, 0) * GRAIN_SECTORS, GRAIN_SECTORS, g, NULL, &e), 0);
    /* evicted: table 0 reached the file first; table 8192 is the cached one now */
    assert_int_not_equal(gte_on_disk(path, grain_of(0, 0)), 0);
    assert_int_equal(gte_on_disk(path, grain_of(8, 0)), 0);

    /* three rounds over 19 tables, each round evicting the last one's tables */
    for (unsigned round = 0; round < 3; round++)
        for (unsigned t = 0; t < N_TABLES; t++) {
            if (round == 0 && (t == 0 || t == 8))
                continue; /* written above */
            memset(g, byte_of(t, round), sizeof g);
            if (x.ops->write(&x, grain_of(t, round) * GRAIN_SECTORS, GRAIN_SECTORS, g, NULL, &e))
                fail_msg("write table %u round %u: %s", t, round, e.msg);
        }
    /* read back through the thrashing cache, in another order */
    for (unsigned t = N_TABLES; t-- > 0;)
        for (unsigned round = 0; round < 3; round++) {
            read_grain(&x, grain_of(t, round), buf);
            memset(g, byte_of(t, round), sizeof g);
            if (memcmp(buf, g, GRAIN_BYTES) != 0)
                fail_msg("table %u round %u: grain reads wrong after eviction", t, round);
        }
    close_extent(&x);
    assert_int_equal(file_u(path, 72, 1), 0);

    /* the public reader and the independent checker agree */
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err))
        fail_msg("open: %s", err.msg);
    for (unsigned t = 0; t < N_TABLES; t++)
        for (unsigned round = 0; round < 3; round++) {
            assert_int_equal(vmdkit_pread(d, buf, GRAIN_BYTES, grain_of(t, round) * GRAIN_BYTES), 0);
            memset(g, byte_of(t, round), sizeof g);
            assert_memory_equal(buf, g, GRAIN_BYTES);
        }
    assert_int_equal(vmdkit_pread(d, buf, GRAIN_BYTES, (grain_of(3, 0) + 3) * GRAIN_BYTES), 0);
    memset(g, 0, sizeof g);
    assert_memory_equal(buf, g, GRAIN_BYTES); /* a grain never written */
    vmdkit_close(d, NULL);
    vmdkit_check_result res;
    assert_int_equal(vmdkit_check(path,
                                  &(vmdkit_check_opts){.struct_size = sizeof(vmdkit_check_opts),
                                                       .flags = 0,
                                                       .on_finding = NULL,
                                                       .finding_opaque = NULL},
                                  &res, &err),
                     0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    assert_int_equal(res.stale, 0);
}

/* A table on the embedded descriptor: reading works, a writer is refused
 * before its first table update could overwrite the descriptor. */
static void test_table_on_metadata(void **state)
{
    (void)state;
    char path[600];
    make_disk(path, sizeof path, "onmeta.vmdk", 8u << 20);
    uint64_t desc = file_u(path, 28, 8), rgd = file_u(path, 48, 8);
    assert_int_not_equal(desc, 0);
    assert_int_not_equal(rgd, 0);
    uint8_t le32[4] = {(uint8_t)desc, (uint8_t)(desc >> 8), (uint8_t)(desc >> 16),
                       (uint8_t)(desc >> 24)};
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, le32, 4, (off_t)(rgd * 512)), 4); /* redundant table 0: the descriptor */
    close(fd);
    vk_extent x;
    open_extent(&x, path, false, 0); /* readers do not use the redundant copy */
    close_extent(&x);
    memset(&x, 0, sizeof x);
    x.path = path;
    x.type = VK_EXT_SPARSE;
    x.access = VK_ACCESS_RW;
    x.writable = true;
    x.size_sectors = file_u(path, 12, 8);
    x.fd = open(path, O_RDWR);
    assert_true(x.fd >= 0);
    vk_err e = {0};
    assert_int_equal(vk_sparse_open(&x, &e), VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, "redundant grain directory entry 0"));
    close(x.fd);
}

/* Point grain G's entry (primary table) at SECTOR, behind the driver's back. */
static void set_gte_on_disk(const char *path, uint64_t g, uint32_t sector)
{
    uint64_t gd = file_u(path, 56, 8);
    uint32_t gt = (uint32_t)file_u(path, gd * 512 + 4 * (g / GTES), 4);
    uint8_t b[4] = {(uint8_t)sector, (uint8_t)(sector >> 8), (uint8_t)(sector >> 16),
                    (uint8_t)(sector >> 24)};
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, 4, (off_t)(gt * 512ull + 4 * (g % GTES))), 4);
    close(fd);
}

static void write_grain(vk_extent *x, uint64_t g, uint8_t byte)
{
    static uint8_t buf[GRAIN_BYTES];
    memset(buf, byte, sizeof buf);
    vk_err e = {0};
    if (x->ops->write(x, g * GRAIN_SECTORS, GRAIN_SECTORS, buf, NULL, &e))
        fail_msg("write grain %llu: %s", (unsigned long long)g, e.msg);
}

/* A damaged file: grain 1 begins one sector before the end of the file, off
 * the grain boundary, and reaches past it.  A grain appended afterwards must
 * not land on its sectors (what grain 1 reads stays as it was); a grain wholly
 * past the end of the file stops appending, with an error naming it, while
 * overwriting an allocated grain still works. */
static void test_grain_past_end(void **state)
{
    (void)state;
    char path[600];
    make_disk(path, sizeof path, "pastend.vmdk", 8u << 20);
    vk_extent x;
    open_extent(&x, path, true, 0);
    write_grain(&x, 0, 0xa1);
    close_extent(&x);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t end = lseek(fd, 0, SEEK_END);
    assert_int_equal(end % GRAIN_BYTES, 0);
    static uint8_t two[1024];
    memset(two + 512, 0xb2, 512);
    assert_int_equal(pwrite(fd, two, sizeof two, end), (ssize_t)sizeof two);
    close(fd);
    set_gte_on_disk(path, 1, (uint32_t)(end / 512 + 1));

    static uint8_t before[GRAIN_BYTES], after[GRAIN_BYTES];
    open_extent(&x, path, true, 0);
    read_grain(&x, 1, before);
    assert_int_equal(before[0], 0xb2);
    assert_int_equal(before[GRAIN_BYTES - 1], 0); /* past the end: zeros */
    write_grain(&x, 2, 0xc3);
    write_grain(&x, 3, 0xd4);
    read_grain(&x, 1, after);
    assert_memory_equal(before, after, GRAIN_BYTES);
    close_extent(&x);
    open_extent(&x, path, false, 0);
    read_grain(&x, 1, after);
    assert_memory_equal(before, after, GRAIN_BYTES);
    read_grain(&x, 2, after);
    assert_int_equal(after[0], 0xc3);
    assert_int_equal(after[GRAIN_BYTES - 1], 0xc3);
    close_extent(&x);

    /* grain 4 wholly past the end of the file */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    set_gte_on_disk(path, 4, (uint32_t)(st.st_size / 512 + 10 * GRAIN_SECTORS));
    open_extent(&x, path, true, 0);
    write_grain(&x, 0, 0xe5); /* no append: allowed */
    static uint8_t buf[GRAIN_BYTES];
    memset(buf, 0xf6, sizeof buf);
    vk_err e = {0};
    assert_int_equal(x.ops->write(&x, 5 * GRAIN_SECTORS, GRAIN_SECTORS, buf, NULL, &e), VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, "grain table entry for grain 4"));
    assert_non_null(strstr(e.msg, "past the end of the file"));
    close_extent(&x);
    struct stat st2;
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st2.st_size, st.st_size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_grain_over_parent),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_table_on_metadata),
        cmocka_unit_test(test_grain_past_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
