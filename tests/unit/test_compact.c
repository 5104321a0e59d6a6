/* test_compact.c - vmdkit_compact (maint/compact.c):
 *  - a base: stored zero grains are dropped (block status unallocated),
 *    data grains stay and read the same, the file shrinks, the header keeps
 *    capacity, grain size, table size and CID, the grains of the copy lie
 *    in virtual order, vmdkit_check is clean;
 *  - a delta: a stored zero grain over parent data stays (a read shows
 *    zeros, not the parent), one over an unallocated parent range goes;
 *  - VMDKIT_COMPACT_DEDUPE_PARENT: a delta's grains equal to the parent's
 *    go (read through to the parent), one differing in a sector and one
 *    of new data stay, zeros over nothing go as before; refused on a base
 *    and by defrag (EINVAL);
 *  - VMDKIT_COMPACT_CHAIN: both links of a chain compacted, base first,
 *    the sums in RES; the progress callback first gets (0, total), done
 *    never goes back and ends at total, the capacity times the links; a
 *    callback that cancels gives VMDKIT_ECANCELED, the files unchanged
 *    and no folder left; defrag refuses the flag (EINVAL);
 *  - refusals: a flat disk (EUNSUPPORTED), a bad struct_size (EINVAL). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <dirent.h>

#include "sparse_header.h"
#include "vmdkit.h"

#define GRAIN 65536u

#define TEST_DIR_NAME "compact"
#include "test_dir.h"

static void path_of(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", dir, name); }

static void fill(const char *path, uint64_t off, size_t len, int byte)
{
    vmdkit_disk *d;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDWR, &d, &err), 0);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, byte, len);
    assert_int_equal(vmdkit_pwrite(d, buf, len, off), 0);
    free(buf);
    assert_int_equal(vmdkit_close(d, &err), 0);
}

static void expect(const char *path, uint64_t off, size_t len, int byte)
{
    vmdkit_disk *d;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(vmdkit_pread(d, buf, len, off), 0);
    for (size_t i = 0; i < len; i++)
        if (buf[i] != byte)
            fail_msg("%s at %llu: %02x, expected %02x", path, (unsigned long long)(off + i), buf[i],
                     byte);
    free(buf);
    vmdkit_close(d, NULL);
}

static int status_of(const char *path, uint64_t off, int *link)
{
    vmdkit_disk *d;
    vmdkit_error err;
    vmdkit_block_status st;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    assert_int_equal(vmdkit_block_status_at(d, GRAIN, off, &st), 0);
    vmdkit_close(d, NULL);
    if (link)
        *link = st.link;
    return st.alloc;
}

static void header_of(const char *path, vk_sparse_header *h, uint32_t *gte0, uint32_t *gte1)
{
    uint8_t b[512];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, sizeof b, 0), 512);
    vk_sparse_header_decode(b, h);
    uint8_t gd[4], gt[8];
    assert_int_equal(pread(fd, gd, 4, (off_t)(h->gd_offset_sectors * 512)), 4);
    uint32_t t = (uint32_t)gd[0] | (uint32_t)gd[1] << 8 | (uint32_t)gd[2] << 16 | (uint32_t)gd[3] << 24;
    assert_int_equal(pread(fd, gt, 8, (off_t)t * 512), 8);
    *gte0 = (uint32_t)gt[0] | (uint32_t)gt[1] << 8 | (uint32_t)gt[2] << 16 | (uint32_t)gt[3] << 24;
    *gte1 = (uint32_t)gt[4] | (uint32_t)gt[5] << 8 | (uint32_t)gt[6] << 16 | (uint32_t)gt[7] << 24;
    close(fd);
}

static void check_clean(const char *path)
{
    vmdkit_error err;
    vmdkit_check_result res;
    assert_int_equal(vmdkit_check(path, NULL, &res, &err), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
}

static void test_base(void **state)
{
    (void)state;
    char p[600];
    path_of(p, sizeof p, "b.vmdk");
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = 64u << 20};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(p, &co, &err), 0);
    /* written out of order: grain 1 first, then 0; grains 2..9 zeros */
    fill(p, GRAIN, GRAIN, 0x22);
    fill(p, 0, GRAIN, 0x11);
    fill(p, 2 * GRAIN, 8 * GRAIN, 0);
    assert_int_equal(status_of(p, 2 * GRAIN, NULL), VMDKIT_ALLOC_DATA);
    vk_sparse_header before, after;
    uint32_t g0, g1;
    header_of(p, &before, &g0, &g1);
    assert_true(g1 < g0); /* grain 1 stored first */
    struct stat st0, st1;
    assert_int_equal(stat(p, &st0), 0);

    vmdkit_compact_opts o = {.struct_size = sizeof o};
    vmdkit_compact_result res;
    assert_int_equal(vmdkit_compact(p, &o, &res, &err), 0);
    assert_int_equal(res.grains_dropped, 8);
    assert_int_equal(stat(p, &st1), 0);
    assert_int_equal((uint64_t)st0.st_size, res.file_bytes_before);
    assert_int_equal((uint64_t)st1.st_size, res.file_bytes_after);
    assert_true(st1.st_size + 8 * GRAIN <= st0.st_size);
    header_of(p, &after, &g0, &g1);
    assert_int_equal(after.capacity_sectors, before.capacity_sectors);
    assert_int_equal(after.grain_sectors, before.grain_sectors);
    assert_int_equal(after.gtes_per_gt, before.gtes_per_gt);
    /* compacted where it lies: the same file, the two kept grains where
     * they were (the first two slots), the zeros after them cut off */
    assert_int_equal(st1.st_ino, st0.st_ino);
    assert_int_equal(g1, after.overhead_sectors);
    assert_int_equal(g0, after.overhead_sectors + after.grain_sectors);
    assert_int_equal((uint64_t)st1.st_size, (after.overhead_sectors + 2 * after.grain_sectors) * 512);
    assert_int_equal(after.unclean_shutdown, 0);
    assert_int_equal(status_of(p, 2 * GRAIN, NULL), VMDKIT_ALLOC_UNALLOC);
    expect(p, 0, GRAIN, 0x11);
    expect(p, GRAIN, GRAIN, 0x22);
    expect(p, 2 * GRAIN, 8 * GRAIN, 0);
    check_clean(p);
}

/* The kept grains of the back half move into the dropped ones' places in
 * the front half: the same file, each grain's data where its entry now
 * points, cut after the last one. */
static void test_in_place_moves(void **state)
{
    (void)state;
    char p[600];
    path_of(p, sizeof p, "m.vmdk");
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = 64u << 20};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(p, &co, &err), 0);
    /* grains 0..31 stored in order; the even ones read zeros */
    for (unsigned g = 0; g < 32; g++)
        fill(p, (uint64_t)g * GRAIN, GRAIN, g % 2 ? 0x40 + (int)g : 0);
    struct stat st0, st1;
    assert_int_equal(stat(p, &st0), 0);
    vmdkit_compact_opts o = {.struct_size = sizeof o};
    vmdkit_compact_result res;
    assert_int_equal(vmdkit_compact(p, &o, &res, &err), 0);
    assert_int_equal(res.grains_dropped, 16);
    assert_int_equal(stat(p, &st1), 0);
    assert_int_equal(st1.st_ino, st0.st_ino);
    vk_sparse_header h;
    uint32_t g0, g1;
    header_of(p, &h, &g0, &g1);
    assert_int_equal(g0, 0); /* a zero grain of a base: dropped */
    assert_true(g1 >= h.overhead_sectors && g1 < h.overhead_sectors + 16 * h.grain_sectors);
    assert_int_equal((uint64_t)st1.st_size, (h.overhead_sectors + 16 * h.grain_sectors) * 512);
    assert_int_equal((uint64_t)(st0.st_size - st1.st_size), 16 * GRAIN);
    assert_int_equal(h.unclean_shutdown, 0);
    for (unsigned g = 0; g < 32; g++)
        expect(p, (uint64_t)g * GRAIN, GRAIN, g % 2 ? 0x40 + (int)g : 0);
    check_clean(p);
}

/* Sector of the redundant grain table 0 of the sparse file PATH. */
static uint32_t redundant_table0(const char *path)
{
    uint8_t b[512], d[4];
    vk_sparse_header h;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, sizeof b, 0), (ssize_t)sizeof b);
    vk_sparse_header_decode(b, &h);
    assert_int_equal(pread(fd, d, 4, (off_t)(h.rgd_offset_sectors * 512)), 4);
    close(fd);
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static void poke(const char *path, off_t at, const void *bytes, size_t n)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, at), (ssize_t)n);
    close(fd);
}

/* A disk of 4 zero grains then 2 of 0x77, all stored, at PATH. */
static void make_zeros_then_data(const char *path)
{
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = 16u << 20};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(path, &co, &err), 0);
    fill(path, 0, 4 * GRAIN, 0);
    fill(path, 4 * GRAIN, 2 * GRAIN, 0x77);
}

/* Compact PATH: *SAME_FILE says whether it kept its inode. */
static void compact_4_dropped(const char *path, bool *same_file)
{
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    vmdkit_compact_opts o = {.struct_size = sizeof o};
    vmdkit_compact_result res;
    vmdkit_error err;
    assert_int_equal(vmdkit_compact(path, &o, &res, &err), 0);
    assert_int_equal(res.grains_dropped, 4);
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st1.st_size + 4 * GRAIN <= st0.st_size);
    *same_file = st1.st_ino == st0.st_ino;
    expect(path, 0, 4 * GRAIN, 0);
    expect(path, 4 * GRAIN, 2 * GRAIN, 0x77);
    check_clean(path);
    vk_sparse_header h;
    uint32_t g0, g1;
    header_of(path, &h, &g0, &g1);
    assert_int_equal(h.unclean_shutdown, 0);
}

/* The unclean-shutdown flag of a writer that stopped after its tables
 * agreed again: packed in place all the same, the flag cleared. */
static void test_unclean_in_place(void **state)
{
    (void)state;
    char p[600];
    path_of(p, sizeof p, "u.vmdk");
    make_zeros_then_data(p);
    uint8_t one = 1;
    poke(p, 72, &one, 1); /* uncleanShutdown */
    bool same;
    compact_4_dropped(p, &same);
    assert_true(same);
}

/* The two copies of a table differ (an interrupted update): which places
 * are free cannot be told from them, so the extent is rewritten into a
 * new file from the primary tables. */
static void test_differing_copies_rewritten(void **state)
{
    (void)state;
    char p[600];
    path_of(p, sizeof p, "r.vmdk");
    make_zeros_then_data(p);
    uint8_t one = 1, zero[4] = {0};
    poke(p, 72, &one, 1);
    poke(p, (off_t)redundant_table0(p) * 512, zero, sizeof zero); /* grain 0: a hole there */
    bool same;
    compact_4_dropped(p, &same);
    assert_false(same);
}

/* STEM.vmdk, a 16 MiB monolithicSparse disk whose first four grains hold
 * 0x55, and STEM-000001.vmdk, a delta over it; their paths in BASE and
 * DELTA (N bytes each). */
static void make_chain(const char *stem, char *base, char *delta, size_t n)
{
    char name[64];
    snprintf(name, sizeof name, "%s.vmdk", stem);
    path_of(base, n, name);
    snprintf(name, sizeof name, "%s-000001.vmdk", stem);
    path_of(delta, n, name);
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = 16u << 20};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(base, &co, &err), 0);
    fill(base, 0, 4 * GRAIN, 0x55);
    assert_int_equal(vmdkit_create_delta(base, delta, 0, &err), 0);
}

static void test_delta(void **state)
{
    (void)state;
    char base[600], delta[600];
    make_chain("p", base, delta, sizeof base);
    vmdkit_error err;
    fill(delta, 0, 2 * GRAIN, 0);         /* over parent data */
    fill(delta, 8 * GRAIN, 2 * GRAIN, 0); /* over nothing */
    vmdkit_compact_result res;
    assert_int_equal(vmdkit_compact(delta, NULL, &res, &err), 0);
    assert_int_equal(res.grains_dropped, 2);
    int link;
    assert_int_equal(status_of(delta, 0, &link), VMDKIT_ALLOC_DATA);
    assert_int_equal(link, 0);
    assert_int_equal(status_of(delta, 8 * GRAIN, NULL), VMDKIT_ALLOC_UNALLOC);
    expect(delta, 0, 2 * GRAIN, 0);
    expect(delta, 2 * GRAIN, 2 * GRAIN, 0x55);
    check_clean(delta);
}

static void test_dedupe(void **state)
{
    (void)state;
    char base[600], delta[600];
    make_chain("q", base, delta, sizeof base);
    vmdkit_error err;
    fill(delta, 0, 3 * GRAIN, 0x55);         /* the parent's data again */
    fill(delta, 2 * GRAIN + 512, 512, 0x56); /* one sector differs in grain 2 */
    fill(delta, 6 * GRAIN, GRAIN, 0x77);     /* new data */
    fill(delta, 8 * GRAIN, GRAIN, 0);        /* zeros over nothing */
    vmdkit_compact_opts o = {.struct_size = sizeof o, .flags = VMDKIT_COMPACT_DEDUPE_PARENT};
    vmdkit_compact_result res;
    assert_int_equal(vmdkit_compact(base, &o, &res, &err), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_defrag(delta, &o, &res, &err), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_compact(delta, &o, &res, &err), 0);
    assert_int_equal(res.grains_deduped, 2);
    assert_int_equal(res.grains_dropped, 1);
    int link;
    assert_int_equal(status_of(delta, 0, &link), VMDKIT_ALLOC_DATA);
    assert_int_equal(link, 1); /* the parent's */
    assert_int_equal(status_of(delta, 2 * GRAIN, &link), VMDKIT_ALLOC_DATA);
    assert_int_equal(link, 0);
    assert_int_equal(status_of(delta, 6 * GRAIN, &link), VMDKIT_ALLOC_DATA);
    assert_int_equal(link, 0);
    assert_int_equal(status_of(delta, 8 * GRAIN, NULL), VMDKIT_ALLOC_UNALLOC);
    expect(delta, 0, 2 * GRAIN, 0x55);
    expect(delta, 2 * GRAIN, 512, 0x55);
    expect(delta, 2 * GRAIN + 512, 512, 0x56);
    expect(delta, 2 * GRAIN + 1024, GRAIN - 1024, 0x55);
    expect(delta, 6 * GRAIN, GRAIN, 0x77);
    check_clean(delta);
}

static void test_refusals(void **state)
{
    (void)state;
    char p[600];
    path_of(p, sizeof p, "f.vmdk");
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_FLAT, .size_bytes = 1u << 20};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(p, &co, &err), 0);
    assert_int_equal(vmdkit_compact(p, NULL, NULL, &err), VMDKIT_EUNSUPPORTED);
    /* a newer caller's longer struct with a field this library does not know
     * (a real struct: the bytes past it are the test's, not the stack's) */
    struct {
        vmdkit_compact_opts known;
        uint64_t later;
    } longer = {.known = {.struct_size = sizeof longer}, .later = 1};
    assert_int_equal(vmdkit_compact(p, &longer.known, NULL, &err), VMDKIT_EINVAL);
}

/* What a progress callback saw; it cancels at call CANCEL_AT (0: never). */
struct seen {
    int calls, cancel_at;
    uint64_t first_done, first_total, last_done, total;
    bool back, total_changed;
};

static int on_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct seen *s = opaque;
    if (s->calls == 0) {
        s->first_done = done;
        s->first_total = total;
    } else {
        s->back |= done < s->last_done;
        s->total_changed |= total != s->total;
    }
    s->last_done = done;
    s->total = total;
    return ++s->calls == s->cancel_at;
}

static int leftover_folders(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, "vmdkit-tmp") != NULL;
    closedir(d);
    return n;
}

static void test_chain_progress(void **state)
{
    (void)state;
    char base[600], delta[600];
    path_of(base, sizeof base, "c.vmdk");
    path_of(delta, sizeof delta, "c-000001.vmdk");
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = 80u << 20};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(base, &co, &err), 0);
    fill(base, 0, 4 * GRAIN, 0x66);
    fill(base, 4 * GRAIN, 4 * GRAIN, 0); /* zeros over nothing: go */
    assert_int_equal(vmdkit_create_delta(base, delta, 0, &err), 0);
    fill(delta, 0, 2 * GRAIN, 0);          /* over base data: stay */
    fill(delta, 16 * GRAIN, 3 * GRAIN, 0); /* over nothing: go */
    struct stat b0, d0, b1, d1;
    assert_int_equal(stat(base, &b0), 0);
    assert_int_equal(stat(delta, &d0), 0);

    /* cancelled at the second report: nothing changes */
    struct seen c = {.cancel_at = 2};
    vmdkit_compact_opts o = {.struct_size = sizeof o,
                             .flags = VMDKIT_COMPACT_CHAIN,
                             .progress = on_progress,
                             .progress_opaque = &c};
    vmdkit_compact_result res;
    assert_int_equal(vmdkit_compact(delta, &o, &res, &err), VMDKIT_ECANCELED);
    assert_int_equal(stat(base, &b1), 0);
    assert_int_equal(stat(delta, &d1), 0);
    assert_int_equal(b1.st_ino, b0.st_ino);
    assert_int_equal(b1.st_size, b0.st_size);
    assert_int_equal(d1.st_ino, d0.st_ino);
    assert_int_equal(leftover_folders(), 0);

    struct seen s = {0};
    o.progress_opaque = &s;
    assert_int_equal(vmdkit_compact(delta, &o, &res, &err), 0);
    assert_int_equal(res.grains_dropped, 4 + 3);
    assert_int_equal(s.first_done, 0);
    assert_int_equal(s.first_total, 2 * (80u << 20));
    assert_false(s.back);
    assert_false(s.total_changed);
    assert_int_equal(s.last_done, s.total);
    assert_true(s.calls >= 3);
    assert_int_equal(stat(base, &b1), 0);
    assert_int_equal(stat(delta, &d1), 0);
    assert_true(b1.st_size + 4 * GRAIN <= b0.st_size);
    assert_true(d1.st_size + 3 * GRAIN <= d0.st_size);
    assert_int_equal(res.file_bytes_before, (uint64_t)(b0.st_size + d0.st_size));
    assert_int_equal(res.file_bytes_after, (uint64_t)(b1.st_size + d1.st_size));
    int link;
    assert_int_equal(status_of(delta, 0, &link), VMDKIT_ALLOC_DATA);
    assert_int_equal(link, 0);
    expect(delta, 0, 2 * GRAIN, 0);
    expect(delta, 2 * GRAIN, 2 * GRAIN, 0x66);
    expect(base, 0, 4 * GRAIN, 0x66);
    check_clean(base);
    check_clean(delta);

    vmdkit_compact_opts df = {.struct_size = sizeof df, .flags = VMDKIT_COMPACT_CHAIN};
    assert_int_equal(vmdkit_defrag(delta, &df, NULL, &err), VMDKIT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base),
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_chain_progress),
        cmocka_unit_test(test_in_place_moves),
        cmocka_unit_test(test_unclean_in_place),
        cmocka_unit_test(test_differing_copies_rewritten),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
