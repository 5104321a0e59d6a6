/* test_geometry.c - ddb.geometry values against VMware-written examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
    expect_chs("ide", 5 * GiB_SECTORS, 10402, 16, 63);      /* VDF5 example */
    expect_chs("ide", 8 * GiB_SECTORS, 16383, 16, 63);      /* capped */
    expect_chs("ide", 16383u * 1008u, 16383, 16, 63);       /* exactly at the cap */
    expect_chs("ide", 16383u * 1008u - 1, 16382, 16, 63);
    expect_chs("ide", 1007, 0, 16, 63);
    expect_chs("ide", UINT64_MAX, 16383, 16, 63);
    expect_chs("IDE", 5 * GiB_SECTORS, 10402, 16, 63);
}

static void test_scsi_small(void **state)
{
    (void)state;
    expect_chs("lsilogic", 192780, 94, 64, 32);              /* ESXi descriptor */
    expect_chs("buslogic", 192780, 94, 64, 32);
    expect_chs("legacyESX", 192780, 94, 64, 32);
    expect_chs("lsilogic", 4096, 2, 64, 32);                 /* vmfs_thick.vmdk */
    expect_chs("lsilogic", GiB_SECTORS - 1, 1023, 64, 32);  /* just below 1 GiB */
}

static void test_scsi_large(void **state)
{
    (void)state;
    expect_chs("lsilogic", GiB_SECTORS, 130, 255, 63);       /* 1 GiB switches to 255/63 */
    expect_chs("lsilogic", 5 * GiB_SECTORS, 652, 255, 63);   /* KB306526 */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ide),
        cmocka_unit_test(test_scsi_small),
        cmocka_unit_test(test_scsi_large),
        cmocka_unit_test(test_unknown_adapter_is_ide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
