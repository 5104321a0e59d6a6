/* test_disk.c - the disk and link layers (disk.c over link.c) through the public API:
 *  - reads and writes at any alignment across the pieces of a split disk
 *    land in the right piece and read back byte for byte, and a model of
 *    the disk kept in memory agrees after every step;
 *  - a delta reads through to its parent where it stores nothing; block
 *    status names the link that holds each run (0 the delta, 1 the parent,
 *    -1 none) and runs never cross a change of link;
 *  - a zero over parent data reads as zeros in the delta, the parent
 *    unchanged;
 *  - ranges outside the disk and writes to a read-only handle fail with
 *    their error class and a message naming the disk, changing nothing;
 *  - writing and zeroing the same grain again and again (a guest that
 *    discards what it wrote) keeps the file at most a grain larger, and at
 *    close it is as small as before and checks clean (no leaked grain);
 *  - zeroing a ZERO extent succeeds and changes nothing. */
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

#define TEST_DIR_NAME "disk"
#include "test_dir.h"

#define MiB (UINT64_C(1) << 20)
#define PIECE_SECTORS 2048u             /* 1 MiB pieces */
#define SPLIT_BYTES (3 * MiB + 512 * 5) /* three whole pieces and a short one */
#define DELTA_BYTES (4 * MiB)

static char pathbuf[4][4096];

static const char *at(int slot, const char *name)
{
    snprintf(pathbuf[slot], sizeof pathbuf[slot], "%s/%s", dir, name);
    return pathbuf[slot];
}

static vmdkit_disk *open_disk(const char *path, unsigned flags)
{
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(path, flags, &d, &err))
        fail_msg("open %s: %s", path, err.msg);
    return d;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

static void assert_reads_as(vmdkit_disk *d, const uint8_t *model, uint64_t size)
{
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(vmdkit_pread(d, buf, size, 0), 0);
    assert_memory_equal(buf, model, size);
    free(buf);
}

static void test_split_pieces(void **state)
{
    (void)state;
    vmdkit_create_opts o = {.struct_size = sizeof o,
                            .type = VMDKIT_TWOGB_SPARSE,
                            .size_bytes = SPLIT_BYTES,
                            .split_sectors = PIECE_SECTORS};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(at(0, "split.vmdk"), &o, &err), 0);
    vmdkit_link_info li;
    vmdkit_disk *d = open_disk(at(0, "split.vmdk"), VMDKIT_OPEN_RDWR);
    assert_int_equal(vmdkit_link_info_get(d, 0, &li), 0);
    assert_int_equal(li.n_extents, 4);
    assert_int_equal(li.extents[3].size_sectors, 5);
    assert_int_equal(li.extents[0].kind, VMDKIT_EXTENT_SPARSE);
    assert_int_equal(li.extents[0].mode, VMDKIT_ACCESS_RW);
    vmdkit_link_info_free(&li);

    uint8_t *model = calloc(1, SPLIT_BYTES);
    assert_non_null(model);
    /* odd offsets and lengths, each across at least one piece boundary */
    const struct {
        uint64_t off;
        size_t len;
    } w[] = {
        {MiB - 3, 10}, {2 * MiB - 700, 1500}, {MiB / 2 + 1, 2 * MiB}, {SPLIT_BYTES - 513, 513}, {0, 1}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        uint8_t *p = malloc(w[i].len);
        assert_non_null(p);
        fill(p, w[i].len, (unsigned)i + 1);
        assert_int_equal(vmdkit_pwrite(d, p, w[i].len, w[i].off), 0);
        memcpy(model + w[i].off, p, w[i].len);
        free(p);
        assert_reads_as(d, model, SPLIT_BYTES);
    }
    assert_int_equal(vmdkit_close(d, &err), 0);
    /* and after reopening, from the files */
    d = open_disk(at(0, "split.vmdk"), VMDKIT_OPEN_RDONLY);
    assert_reads_as(d, model, SPLIT_BYTES);
    vmdkit_close(d, NULL);
    free(model);
}

static void test_delta_and_status(void **state)
{
    (void)state;
    vmdkit_create_opts o = {
        .struct_size = sizeof o, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = DELTA_BYTES};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(at(0, "base.vmdk"), &o, &err), 0);
    uint8_t *model = calloc(1, DELTA_BYTES), *chunk = malloc(MiB);
    assert_non_null(model);
    assert_non_null(chunk);
    vmdkit_disk *b = open_disk(at(0, "base.vmdk"), VMDKIT_OPEN_RDWR);
    fill(chunk, MiB, 9);
    assert_int_equal(vmdkit_pwrite(b, chunk, MiB, MiB), 0); /* the base holds [1, 2) MiB */
    memcpy(model + MiB, chunk, MiB);
    assert_int_equal(vmdkit_close(b, &err), 0);

    assert_int_equal(vmdkit_create_delta(at(0, "base.vmdk"), at(1, "delta.vmdk"), 0, &err), 0);
    vmdkit_disk *d = open_disk(at(1, "delta.vmdk"), VMDKIT_OPEN_RDWR);
    assert_int_equal(vmdkit_chain_length(d), 2);
    assert_reads_as(d, model, DELTA_BYTES); /* everything from the parent */
    fill(chunk, 4096, 3);
    assert_int_equal(vmdkit_pwrite(d, chunk, 4096, MiB + 65536), 0); /* inside the parent's data */
    memcpy(model + MiB + 65536, chunk, 4096);
    assert_int_equal(vmdkit_pzero(d, 65536, MiB + 4 * 65536), 0); /* a grain over parent data */
    memset(model + MiB + 4 * 65536, 0, 65536);
    assert_reads_as(d, model, DELTA_BYTES);

    /* block status: who holds each run, runs cover the disk exactly */
    uint64_t off = 0;
    int seen_delta = 0, seen_parent = 0, seen_none = 0;
    while (off < DELTA_BYTES) {
        vmdkit_block_status st;
        assert_int_equal(vmdkit_block_status_at(d, DELTA_BYTES - off, off, &st), 0);
        assert_true(st.length > 0 && off + st.length <= DELTA_BYTES);
        if (st.link == 0)
            seen_delta++;
        else if (st.link == 1)
            seen_parent++;
        else
            seen_none += st.link == -1 && st.alloc == VMDKIT_ALLOC_UNALLOC;
        /* a run held by the parent lies in [1, 2) MiB; none outside it */
        if (st.link == 1)
            assert_true(off >= MiB && off + st.length <= 2 * MiB);
        off += st.length;
    }
    assert_int_equal(off, DELTA_BYTES);
    assert_true(seen_delta >= 1 && seen_parent >= 2 && seen_none >= 2);
    assert_int_equal(vmdkit_close(d, &err), 0);

    /* the parent is unchanged */
    b = open_disk(at(0, "base.vmdk"), VMDKIT_OPEN_RDONLY);
    uint8_t *want = calloc(1, DELTA_BYTES);
    assert_non_null(want);
    fill(want + MiB, MiB, 9);
    assert_reads_as(b, want, DELTA_BYTES);
    vmdkit_close(b, NULL);
    free(want);
    free(model);
    free(chunk);
}

static void test_refusals(void **state)
{
    (void)state;
    vmdkit_create_opts o = {.struct_size = sizeof o, .type = VMDKIT_MONOLITHIC_FLAT, .size_bytes = MiB};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(at(0, "flat.vmdk"), &o, &err), 0);
    vmdkit_disk *d = open_disk(at(0, "flat.vmdk"), VMDKIT_OPEN_RDWR);
    uint8_t buf[1024];
    memset(buf, 0x77, sizeof buf);
    assert_int_equal(vmdkit_pwrite(d, buf, sizeof buf, MiB - 512), VMDKIT_EINVAL);
    assert_non_null(strstr(vmdkit_last_error(d)->msg, "flat.vmdk"));
    assert_non_null(strstr(vmdkit_last_error(d)->msg, "outside the disk"));
    assert_int_equal(vmdkit_pread(d, buf, 1, MiB), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_pread(d, buf, 512, UINT64_MAX - 100), VMDKIT_EINVAL); /* no wrap-around */
    vmdkit_block_status st;
    assert_int_equal(vmdkit_block_status_at(d, 1, MiB, &st), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_close(d, &err), 0);

    d = open_disk(at(0, "flat.vmdk"), VMDKIT_OPEN_RDONLY);
    assert_int_equal(vmdkit_pwrite(d, buf, 512, 0), VMDKIT_ERDONLY);
    assert_int_equal(vmdkit_pzero(d, 512, 0), VMDKIT_ERDONLY);
    uint8_t zeros[1024] = {0};
    assert_int_equal(vmdkit_pread(d, buf, sizeof buf, MiB - sizeof buf), 0);
    assert_memory_equal(buf, zeros, sizeof buf); /* the refused writes changed nothing */
    vmdkit_close(d, NULL);
}

static long long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long long)st.st_size;
}

static void test_write_zero_cycles(void **state)
{
    (void)state;
    const char *path = at(0, "zg.vmdk");
    vmdkit_create_opts o = {.struct_size = sizeof o,
                            .type = VMDKIT_MONOLITHIC_SPARSE,
                            .size_bytes = 8 * MiB,
                            .zeroed_grain = true};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(path, &o, &err), 0);
    long long empty = file_size(path);
    vmdkit_disk *d = open_disk(path, VMDKIT_OPEN_RDWR);
    uint8_t grain[65536];
    long long largest = 0;
    for (int i = 0; i < 20; i++) {
        fill(grain, sizeof grain, (unsigned)i);
        assert_int_equal(vmdkit_pwrite(d, grain, sizeof grain, 2 * MiB), 0);
        assert_int_equal(vmdkit_pwrite(d, grain, 512, 3 * MiB + 512), 0); /* a partial grain too */
        assert_int_equal(vmdkit_pzero(d, sizeof grain, 2 * MiB), 0);
        assert_int_equal(vmdkit_pzero(d, sizeof grain, 3 * MiB), 0);
        assert_int_equal(vmdkit_flush(d), 0);
        if (file_size(path) > largest)
            largest = file_size(path);
    }
    /* the first cycle's grains are reused by every later one */
    assert_true(largest <= empty + 4 * (long long)sizeof grain);
    uint8_t *zeros = calloc(1, 8 * MiB);
    assert_non_null(zeros);
    assert_reads_as(d, zeros, 8 * MiB);
    assert_int_equal(vmdkit_close(d, &err), 0);
    assert_int_equal(file_size(path), empty);
    vmdkit_check_result res;
    assert_int_equal(vmdkit_check(path, NULL, &res, &err), 0);
    assert_int_equal(res.leaks, 0);
    assert_int_equal(res.corruptions, 0);
    d = open_disk(path, VMDKIT_OPEN_RDONLY);
    assert_reads_as(d, zeros, 8 * MiB);
    vmdkit_close(d, NULL);
    free(zeros);
}

static void test_zero_of_zero_extent(void **state)
{
    (void)state;
    const char *desc = at(0, "z.vmdk"), *flat = at(1, "z-flat.vmdk");
    FILE *f = fopen(desc, "w");
    assert_non_null(f);
    fprintf(f, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
               "createType=\"monolithicFlat\"\n\nRW 2048 FLAT \"z-flat.vmdk\" 0\nRW 2048 ZERO\n\n"
               "ddb.adapterType = \"ide\"\n");
    fclose(f);
    f = fopen(flat, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)MiB), 0);
    fclose(f);
    vmdkit_disk *d = open_disk(desc, VMDKIT_OPEN_RDWR);
    assert_int_equal(vmdkit_pzero(d, 65536, MiB), 0); /* inside the ZERO extent */
    assert_int_equal(vmdkit_pzero(d, 2 * MiB, 0), 0); /* across both */
    uint8_t buf[512];
    memset(buf, 1, sizeof buf);
    assert_int_equal(vmdkit_pwrite(d, buf, sizeof buf, MiB), VMDKIT_ERDONLY); /* data cannot go there */
    assert_int_equal(vmdkit_close(d, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_pieces),
        cmocka_unit_test(test_delta_and_status),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_write_zero_cycles),
        cmocka_unit_test(test_zero_of_zero_extent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
