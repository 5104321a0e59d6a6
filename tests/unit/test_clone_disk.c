/* test_clone_disk.c - vmdkit_clone_disk: the createType, adapter and
 * hardware version a full clone gets from its source's base link, the
 * options struct read by its struct_size, and cancellation through the
 * progress callback leaving nothing behind. */
#include <dirent.h>
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
#include "test_base.h"

static int setup(void **state)
{
    (void)state;
    if (base_make("clone-disk") || mkdir(at("In.vmwarevm"), 0755) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void make(const char *rel, vmdkit_create_type type, uint64_t size, const char *adapter, int hw)
{
    vmdkit_create_opts o = {
        .struct_size = sizeof o, .type = type, .size_bytes = size, .adapter = adapter, .hw_version = hw};
    vmdkit_error err;
    assert_int_equal(vmdkit_create(at(rel), &o, &err), 0);
}

/* The createType, adapter and hw version of the disk at REL, "T A H". */
static const char *facts(const char *rel)
{
    static char out[128];
    vmdkit_disk *d;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(at(rel), VMDKIT_OPEN_RDONLY, &d, &err), 0);
    assert_int_equal(vmdkit_chain_length(d), 1);
    vmdkit_link_info li;
    assert_int_equal(vmdkit_link_info_get(d, 0, &li), 0);
    snprintf(out, sizeof out, "%s %s %s", li.create_type, li.adapter_type ? li.adapter_type : "-",
             li.hw_version ? li.hw_version : "-");
    vmdkit_link_info_free(&li);
    vmdkit_close(d, NULL);
    return out;
}

static void test_default_type(void **state)
{
    (void)state;
    vmdkit_error err;
    vmdkit_clone_disk_opts o = {.struct_size = sizeof o, .type = -1};
    /* an OVA import: a streamOptimized base under a delta */
    make("s.vmdk", VMDKIT_STREAM_OPTIMIZED, 4 << 20, "lsilogic", 11);
    char *delta;
    assert_int_equal(vmdkit_snapshot(at("s.vmdk"), 0, &delta, &err), 0);
    assert_int_equal(vmdkit_clone_disk(delta, at("c1.vmdk"), &o, &err), 0);
    assert_string_equal(facts("c1.vmdk"), "monolithicSparse lsilogic 11");
    /* in a bundle: split, as Fusion makes disks */
    assert_int_equal(vmdkit_clone_disk(delta, at("In.vmwarevm/c2.vmdk"), NULL, &err), 0);
    assert_string_equal(facts("In.vmwarevm/c2.vmdk"), "twoGbMaxExtentSparse lsilogic 11");
    /* vmfs gives monolithicSparse; a flat base stays flat */
    make("v.vmdk", VMDKIT_VMFS, 4 << 20, "buslogic", 7);
    assert_int_equal(vmdkit_clone_disk(at("v.vmdk"), at("c3.vmdk"), &o, &err), 0);
    assert_string_equal(facts("c3.vmdk"), "monolithicSparse buslogic 7");
    make("f.vmdk", VMDKIT_MONOLITHIC_FLAT, 4 << 20, NULL, 0);
    assert_int_equal(vmdkit_clone_disk(at("f.vmdk"), at("In.vmwarevm/c4.vmdk"), &o, &err), 0);
    assert_string_equal(facts("In.vmwarevm/c4.vmdk"), "monolithicFlat ide 4");
    /* the type asked for wins */
    o.type = VMDKIT_TWOGB_FLAT;
    assert_int_equal(vmdkit_clone_disk(delta, at("c5.vmdk"), &o, &err), 0);
    assert_string_equal(facts("c5.vmdk"), "twoGbMaxExtentFlat lsilogic 11");
    /* larger than a sparse disk addresses: flat, sparse on the host */
    make("big.vmdk", VMDKIT_STREAM_OPTIMIZED, (UINT64_C(2) << 40) + (1 << 20), NULL, 0);
    o.type = -1;
    int r = vmdkit_clone_disk(at("big.vmdk"), at("c6.vmdk"), &o, &err);
    if (r == VMDKIT_ENOSPC) {
        print_message("(the file system here does not take a 2 TiB sparse file: not tested)\n");
    } else {
        assert_int_equal(r, 0);
        assert_string_equal(facts("c6.vmdk"), "monolithicFlat ide 4");
    }
    /* never over an existing disk */
    assert_int_equal(vmdkit_clone_disk(delta, at("c1.vmdk"), &o, &err), VMDKIT_EEXIST);
    free(delta);
}

static int never_called(void *opaque, uint64_t done, uint64_t total)
{
    (void)opaque;
    (void)done;
    (void)total;
    fail_msg("a field past struct_size was used");
    return 1;
}

static void test_opts(void **state)
{
    (void)state;
    vmdkit_error err;
    make("o.vmdk", VMDKIT_MONOLITHIC_SPARSE, 1 << 20, NULL, 0);
    vmdkit_clone_disk_opts o = {.struct_size = 0, .type = -1};
    assert_int_equal(vmdkit_clone_disk(at("o.vmdk"), at("o1.vmdk"), &o, &err), VMDKIT_EINVAL);
    assert_non_null(strstr(err.msg, "struct_size 0"));
    o.struct_size = sizeof o;
    o.type = 42;
    assert_int_equal(vmdkit_clone_disk(at("o.vmdk"), at("o1.vmdk"), &o, &err), VMDKIT_EINVAL);
    assert_non_null(strstr(err.msg, "type 42"));
    /* a newer caller's longer struct: zeros past what is known are fine */
    struct {
        vmdkit_clone_disk_opts known;
        uint64_t later;
    } longer = {.known = {.struct_size = sizeof longer, .type = VMDKIT_MONOLITHIC_FLAT}, .later = 0};
    assert_int_equal(vmdkit_clone_disk(at("o.vmdk"), at("o2.vmdk"), &longer.known, &err), 0);
    assert_string_equal(facts("o2.vmdk"), "monolithicFlat ide 4");
    longer.later = 1;
    assert_int_equal(vmdkit_clone_disk(at("o.vmdk"), at("o3.vmdk"), &longer.known, &err), VMDKIT_EINVAL);
    assert_non_null(strstr(err.msg, "unknown to this library"));
    /* an older caller's shorter one: no progress fields */
    o.struct_size = offsetof(vmdkit_clone_disk_opts, progress);
    o.type = -1;
    o.progress = never_called; /* past its size: never read */
    assert_int_equal(vmdkit_clone_disk(at("o.vmdk"), at("o4.vmdk"), &o, &err), 0);
    assert_int_equal(access(at("o1.vmdk"), F_OK), -1);
    assert_int_equal(access(at("o3.vmdk"), F_OK), -1);
}

static int cancel_at_half(void *opaque, uint64_t done, uint64_t total)
{
    unsigned *calls = opaque;
    ++*calls;
    return done >= total / 2 && done > 0;
}

static void test_cancel(void **state)
{
    (void)state;
    vmdkit_error err;
    make("data.vmdk", VMDKIT_TWOGB_SPARSE, 32 << 20, NULL, 0);
    vmdkit_disk *d;
    assert_int_equal(vmdkit_open(at("data.vmdk"), VMDKIT_OPEN_RDWR, &d, &err), 0);
    static uint8_t buf[1 << 20];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    for (int k = 0; k < 32; k++)
        assert_int_equal(vmdkit_pwrite(d, buf, sizeof buf, (uint64_t)k << 20), 0);
    assert_int_equal(vmdkit_close(d, &err), 0);
    unsigned calls = 0;
    vmdkit_clone_disk_opts o = {
        .struct_size = sizeof o,
        .type = -1,
        .progress = cancel_at_half,
        .progress_opaque = &calls,
    };
    assert_int_equal(vmdkit_clone_disk(at("data.vmdk"), at("cut.vmdk"), &o, &err), VMDKIT_ECANCELED);
    assert_true(calls >= 2);
    assert_non_null(strstr(err.msg, "cut.vmdk: cancelled; the partial output was removed"));
    /* nothing of it is left: no disk, no extent, no hidden folder */
    DIR *dir = opendir(base);
    assert_non_null(dir);
    struct dirent *de;
    while ((de = readdir(dir))) {
        assert_null(strstr(de->d_name, "cut"));
        assert_null(strstr(de->d_name, "vmdkit-tmp"));
    }
    closedir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_type),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
