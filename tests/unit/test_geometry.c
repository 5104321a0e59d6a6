/* test_geometry.c - ddb.geometry values against VMware-written examples;
 * the one list of adapter types (its spelling, its geometry family, and
 * vmdkit_create taking any case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "descriptor.h"

#define GiB_SECTORS (UINT64_C(1) << 21)

static void expect_chs(const char *adapter, uint64_t cap, uint64_t c, uint32_t h, uint32_t s)
{
    uint64_t cyl = 0;
    uint32_t heads = 0, sectors = 0;
    vk_geometry_for(adapter, cap, &cyl, &heads, &sectors);
    assert_int_equal(cyl, c);
    assert_int_equal(heads, h);
    assert_int_equal(sectors, s);
}

static void test_ide(void **state)
{
    (void)state;
    expect_chs("ide", 5 * GiB_SECTORS, 10402, 16, 63); /* VDF5 example */
    expect_chs("ide", 8 * GiB_SECTORS, 16383, 16, 63); /* capped */
    expect_chs("ide", 16383u * 1008u, 16383, 16, 63);  /* exactly at the cap */
    expect_chs("ide", 16383u * 1008u - 1, 16382, 16, 63);
    expect_chs("ide", 1007, 0, 16, 63);
    expect_chs("ide", UINT64_MAX, 16383, 16, 63);
    expect_chs("IDE", 5 * GiB_SECTORS, 10402, 16, 63);
}

static void test_scsi_small(void **state)
{
    (void)state;
    expect_chs("lsilogic", 192780, 94, 64, 32); /* ESXi descriptor */
    expect_chs("buslogic", 192780, 94, 64, 32);
    expect_chs("legacyESX", 192780, 94, 64, 32);
    expect_chs("lsilogic", 4096, 2, 64, 32);               /* vmfs_thick.vmdk */
    expect_chs("lsilogic", GiB_SECTORS - 1, 1023, 64, 32); /* just below 1 GiB */
}

static void test_scsi_large(void **state)
{
    (void)state;
    expect_chs("lsilogic", GiB_SECTORS, 130, 255, 63);     /* 1 GiB switches to 255/63 */
    expect_chs("lsilogic", 5 * GiB_SECTORS, 652, 255, 63); /* KB306526 */
    expect_chs("buslogic", 40 * GiB_SECTORS, 5221, 255, 63);
    expect_chs("lsilogic", 60 * GiB_SECTORS, 7832, 255, 63); /* ms3-win.vmdk */
    /* 1.66 TiB ESXi disk with 221922 cylinders: no 16383 or 65535 cap */
    expect_chs("lsilogic", 221922u * 16065u + 16064u, 221922, 255, 63);
}

static void test_unknown_adapter_is_ide(void **state)
{
    (void)state;
    expect_chs("pvscsi", 5 * GiB_SECTORS, 10402, 16, 63);
    expect_chs(NULL, 8 * GiB_SECTORS, 16383, 16, 63);
}

static void test_adapter_names(void **state)
{
    (void)state;
    assert_string_equal(vmdkit_adapter_name("ide"), "ide");
    assert_string_equal(vmdkit_adapter_name("LSILOGIC"), "lsilogic");
    assert_string_equal(vmdkit_adapter_name("BusLogic"), "buslogic");
    assert_string_equal(vmdkit_adapter_name("legacyesx"), "legacyESX");
    assert_null(vmdkit_adapter_name("pvscsi"));
    assert_null(vmdkit_adapter_name("lsilogic "));
    assert_null(vmdkit_adapter_name(""));
    assert_null(vmdkit_adapter_name(NULL));
    assert_false(vk_adapter_is_scsi("ide"));
    assert_true(vk_adapter_is_scsi("LsiLogic"));
    assert_true(vk_adapter_is_scsi("legacyESX"));
    assert_false(vk_adapter_is_scsi("pvscsi"));
    expect_chs("LSILOGIC", 192780, 94, 64, 32);
}

/* vmdkit_create takes an adapter in any case and writes VMware's spelling
 * with the geometry of that adapter. */
static void test_create_adapter_any_case(void **state)
{
    (void)state;
    char dir[] = "/tmp/vmdkit-test-geometry.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], flat[128];
    snprintf(path, sizeof path, "%s/d.vmdk", dir);
    snprintf(flat, sizeof flat, "%s/d-flat.vmdk", dir);
    vmdkit_create_opts o = {.struct_size = sizeof o,
                            .type = VMDKIT_MONOLITHIC_FLAT,
                            .size_bytes = 192780 * 512,
                            .adapter = "LsiLogic"};
    vmdkit_error err = {0};
    int rc = vmdkit_create(path, &o, &err);
    char text[4096] = "";
    FILE *f = rc == 0 ? fopen(path, "r") : NULL;
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    unlink(flat);
    unlink(path);
    rmdir(dir);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(text, "ddb.adapterType = \"lsilogic\"\n"));
    assert_non_null(strstr(text, "ddb.geometry.heads = \"64\"\n"));
    assert_non_null(strstr(text, "ddb.geometry.sectors = \"32\"\n"));
    assert_non_null(strstr(text, "ddb.geometry.cylinders = \"94\"\n"));

    o.adapter = "scsi";
    assert_int_equal(vmdkit_create(path, &o, &err), VMDKIT_EINVAL);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ide),           cmocka_unit_test(test_scsi_small),
        cmocka_unit_test(test_scsi_large),    cmocka_unit_test(test_unknown_adapter_is_ide),
        cmocka_unit_test(test_adapter_names), cmocka_unit_test(test_create_adapter_any_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
