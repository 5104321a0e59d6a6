/* test_check_progress.c - vmdkit_check's progress: the first report is
 * (0, TOTAL), TOTAL is the capacity times the links of the chain, DONE
 * never goes back and grows table by table inside an extent, and the last
 * report is (TOTAL, TOTAL); a repair's re-check adds nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmdkit.h"

#define CAPACITY (3ull << 30) /* 96 grain tables of 32 MiB: many steps */

static char dir[256];

typedef struct calls {
    uint64_t done[100000];
    uint64_t total[100000];
    size_t n;
} calls;

static int record(void *opaque, uint64_t done, uint64_t total)
{
    calls *c = opaque;
    if (c->n < sizeof c->done / sizeof c->done[0]) {
        c->done[c->n] = done;
        c->total[c->n] = total;
        c->n++;
    }
    return 1; /* asks to cancel: a check goes on regardless */
}

static char *at(const char *name)
{
    static char buf[2][512];
    static int i;
    i ^= 1;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/vmdkit-check-progress-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    vmdkit_create_opts o = {
        .struct_size = sizeof o, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = CAPACITY};
    vmdkit_error e;
    if (vmdkit_create(at("base.vmdk"), &o, &e) != 0)
        return -1;
    vmdkit_disk *d;
    if (vmdkit_open(at("base.vmdk"), VMDKIT_OPEN_RDWR, &d, &e) != 0)
        return -1;
    static char grain[65536];
    memset(grain, 0x3c, sizeof grain);
    for (uint64_t off = 0; off < CAPACITY; off += 100ull << 20)
        if (vmdkit_pwrite(d, grain, sizeof grain, off) != 0)
            return -1;
    if (vmdkit_close(d, &e) != 0)
        return -1;
    if (vmdkit_create_delta(at("base.vmdk"), at("top.vmdk"), 0, &e) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void assert_well_formed(const calls *c, uint64_t total)
{
    assert_true(c->n >= 2);
    assert_int_equal(c->done[0], 0);
    for (size_t i = 0; i < c->n; i++) {
        assert_int_equal(c->total[i], total);
        if (i)
            assert_true(c->done[i] >= c->done[i - 1]);
    }
    assert_int_equal(c->done[c->n - 1], total);
}

static void test_chain(void **state)
{
    (void)state;
    calls *c = calloc(1, sizeof *c);
    assert_non_null(c);
    vmdkit_check_result res;
    vmdkit_error e;
    assert_int_equal(vmdkit_check(at("top.vmdk"),
                                  &(vmdkit_check_opts){.struct_size = sizeof(vmdkit_check_opts),
                                                       .flags = 0,
                                                       .on_finding = NULL,
                                                       .finding_opaque = NULL,
                                                       .progress = record,
                                                       .progress_opaque = c},
                                  &res, &e),
                     0);
    assert_int_equal(res.corruptions, 0);
    assert_well_formed(c, 2 * CAPACITY);
    /* the base's 96 tables are reported one by one, twice (judged, then
     * their grains): many distinct values strictly inside the base's half */
    size_t inside = 0;
    for (size_t i = 1; i < c->n; i++)
        inside += c->done[i] != c->done[i - 1] && c->done[i] > CAPACITY && c->done[i] < 2 * CAPACITY;
    assert_true(inside >= 96);
    free(c);
}

static void test_repair_not_reported_twice(void **state)
{
    (void)state;
    calls *c = calloc(1, sizeof *c);
    assert_non_null(c);
    vmdkit_check_result res;
    vmdkit_error e;
    vmdkit_check_opts o = {
        .struct_size = sizeof o, .flags = VMDKIT_CHECK_REPAIR, .progress = record, .progress_opaque = c};
    assert_int_equal(vmdkit_check(at("base.vmdk"), &o, &res, &e), 0);
    assert_well_formed(c, CAPACITY);
    free(c);
}

static void test_without_progress(void **state)
{
    (void)state;
    vmdkit_check_result res;
    vmdkit_error e;
    assert_int_equal(vmdkit_check(at("top.vmdk"), NULL, &res, &e), 0);
    assert_int_equal(vmdkit_check(at("missing.vmdk"), NULL, &res, &e), VMDKIT_ENOENT);
}

/* The options rule of every long operation: struct_size must be set, and
 * a newer caller's longer struct may only hold zeros past what is known. */
static void test_opts_size(void **state)
{
    (void)state;
    vmdkit_check_result res;
    vmdkit_error e;
    vmdkit_check_opts unset = {.struct_size = 0};
    assert_int_equal(vmdkit_check(at("top.vmdk"), &unset, &res, &e), VMDKIT_EINVAL);
    assert_non_null(strstr(e.msg, "vmdkit_check_opts: struct_size 0"));
    struct {
        vmdkit_check_opts known;
        uint64_t later;
    } longer = {.known = {.struct_size = sizeof longer}, .later = 7};
    assert_int_equal(vmdkit_check(at("top.vmdk"), &longer.known, &res, &e), VMDKIT_EINVAL);
    assert_non_null(strstr(e.msg, "unknown to this library"));
    longer.later = 0;
    assert_int_equal(vmdkit_check(at("top.vmdk"), &longer.known, &res, &e), 0);
    /* the same rule for compare */
    vmdkit_disk *d;
    assert_int_equal(vmdkit_open(at("top.vmdk"), VMDKIT_OPEN_RDONLY, &d, &e), 0);
    uint64_t diff = 1;
    vmdkit_compare_opts cunset = {.struct_size = 0};
    assert_int_equal(vmdkit_compare(d, d, &diff, &cunset, &e), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_compare(d, d, &diff, NULL, &e), 0);
    vmdkit_close(d, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_repair_not_reported_twice),
        cmocka_unit_test(test_without_progress),
        cmocka_unit_test(test_opts_size),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
