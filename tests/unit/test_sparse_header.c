/* Unit tests: sparse (KDMV) header fields, validation, grain math, layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sparse_header.h"

static vk_sparse_header good_header(void)
{
    vk_sparse_header h = {
        .magic = VK_KDMV_MAGIC,
        .version = 1,
        .flags = VK_FLAG_NEWLINE_CHECK | VK_FLAG_REDUNDANT_GD,
        .capacity_sectors = 2097152,
        .grain_sectors = 128,
        .gtes_per_gt = 512,
        .newline_chars = {'\n', ' ', '\r', '\n'},
    };
    vk_sparse_layout(&h, 20, true);
    return h;
}

/* Field offsets as the format defines them (little-endian). */
static void test_encode_offsets(void **state)
{
    (void)state;
    vk_sparse_header h = good_header();
    h.unclean_shutdown = 1;
    h.compress_algorithm = 1;
    uint8_t b[512];
    vk_sparse_header_encode(&h, b);
    assert_memory_equal(b, "KDMV", 4);
    assert_int_equal(vk_le32(b + 4), 1);
    assert_int_equal(vk_le32(b + 8), 3);
    assert_int_equal(vk_le64(b + 12), 2097152);
    assert_int_equal(vk_le64(b + 20), 128);
    assert_int_equal(vk_le64(b + 28), 1);
    assert_int_equal(vk_le64(b + 36), 20);
    assert_int_equal(vk_le32(b + 44), 512);
    assert_int_equal(vk_le64(b + 48), 21);
    assert_int_equal(vk_le64(b + 56), 150);
    assert_int_equal(vk_le64(b + 64), 384);
    assert_int_equal(b[72], 1);
    assert_memory_equal(b + 73, "\n \r\n", 4);
    assert_int_equal(vk_le16(b + 77), 1);
    for (int i = 79; i < 512; i++)
        assert_int_equal(b[i], 0);
    vk_sparse_header d;
    vk_sparse_header_decode(b, &d);
    assert_int_equal(d.magic, h.magic);
    assert_int_equal(d.version, h.version);
    assert_int_equal(d.flags, h.flags);
    assert_int_equal(d.capacity_sectors, h.capacity_sectors);
    assert_int_equal(d.grain_sectors, h.grain_sectors);
    assert_int_equal(d.desc_offset_sectors, h.desc_offset_sectors);
    assert_int_equal(d.desc_size_sectors, h.desc_size_sectors);
    assert_int_equal(d.gtes_per_gt, h.gtes_per_gt);
    assert_int_equal(d.rgd_offset_sectors, h.rgd_offset_sectors);
    assert_int_equal(d.gd_offset_sectors, h.gd_offset_sectors);
    assert_int_equal(d.overhead_sectors, h.overhead_sectors);
    assert_int_equal(d.unclean_shutdown, 1);
    assert_memory_equal(d.newline_chars, "\n \r\n", 4);
    assert_int_equal(d.compress_algorithm, 1);
}

/* The worked layouts of the format notes: 1 GiB monolithic, 2047 MiB split piece. */
static void test_layout_worked_examples(void **state)
{
    (void)state;
    vk_sparse_header h = good_header();
    assert_int_equal(vk_num_gdes(&h), 32);
    assert_int_equal(vk_gd_sectors(vk_num_gdes(&h)), 1);
    assert_int_equal(vk_gt_sectors(h.gtes_per_gt), 4);
    assert_int_equal(h.desc_offset_sectors, 1);
    assert_int_equal(h.rgd_offset_sectors, 21);
    assert_int_equal(h.gd_offset_sectors, 150);
    assert_int_equal(h.overhead_sectors, 384);

    vk_sparse_header s = good_header();
    s.capacity_sectors = 4192256;
    vk_sparse_layout(&s, 0, true);
    assert_int_equal(vk_num_gdes(&s), 64);
    assert_int_equal(s.desc_offset_sectors, 0);
    assert_int_equal(s.rgd_offset_sectors, 1);
    assert_int_equal(s.gd_offset_sectors, 258);
    assert_int_equal(s.overhead_sectors, 640);
}

/* Grain math at the edges: capacities that are not a multiple of the grain. */
static void test_grain_math(void **state)
{
    (void)state;
    vk_sparse_header h = good_header();
    h.capacity_sectors = 200; /* plaso's image: 1.5 grains */
    assert_int_equal(vk_gt_coverage_sectors(&h), 65536);
    assert_int_equal(vk_num_gdes(&h), 1);
    h.capacity_sectors = 65537;
    assert_int_equal(vk_num_gdes(&h), 2);
    h.grain_sectors = 16; /* mkimg's 8 KiB grains */
    h.capacity_sectors = 10240;
    assert_int_equal(vk_num_gdes(&h), 2);
    h.gtes_per_gt = 4096;
    assert_int_equal(vk_gt_sectors(h.gtes_per_gt), 32);
    assert_int_equal(vk_gd_sectors(129), 2);
    assert_int_equal(vk_gd_sectors(128), 1);
}

static int validate(vk_sparse_header h, uint64_t file_sectors)
{
    vk_err e = {0};
    int r = vk_sparse_header_validate(&h, file_sectors, "t.vmdk", &e);
    if (r)
        assert_non_null(strstr(e.msg, "t.vmdk"));
    return r;
}

static void test_validate(void **state)
{
    (void)state;
    vk_sparse_header h = good_header();
    assert_int_equal(validate(h, 384), 0);

    vk_sparse_header x = h;
    x.magic = 0x12345678;
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.version = 0;
    assert_int_equal(validate(x, 384), VMDKIT_EUNSUPPORTED);
    x = h;
    x.version = 4;
    assert_int_equal(validate(x, 384), VMDKIT_EUNSUPPORTED);
    x = h;
    x.flags |= 0x40000; /* unknown incompatible bit */
    assert_int_equal(validate(x, 384), VMDKIT_EUNSUPPORTED);
    x = h;
    x.flags |= 0x100; /* unknown compatible bit is fine */
    assert_int_equal(validate(x, 384), 0);
    x = h;
    x.flags |= VK_FLAG_MARKERS; /* markers without compression */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.newline_chars[2] = '\n'; /* CR/LF translated */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x.flags &= ~VK_FLAG_NEWLINE_CHECK; /* not checked without the flag */
    assert_int_equal(validate(x, 384), 0);
    x = h;
    x.grain_sectors = 0;
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.grain_sectors = 96;
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.grain_sectors = UINT64_C(1) << 40;
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.grain_sectors = 2048; /* 1 MiB: the largest accepted */
    assert_int_equal(validate(x, 384), 0);
    x = h;
    x.grain_sectors = 4096; /* a write would cost 2 MiB */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.grain_sectors = UINT64_C(1) << 21; /* qemu's limit: 1 GiB */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.gtes_per_gt = 0;
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.gtes_per_gt = 506; /* afl9's value */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.capacity_sectors = UINT64_C(2233785398448881665);
    assert_int_equal(validate(x, 384), VMDKIT_ELIMIT);
    x = h;
    x.gd_offset_sectors = 400; /* past EOF */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.gd_offset_sectors = UINT64_MAX - 1; /* overflows */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.gd_offset_sectors = 0; /* inside the header */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.rgd_offset_sectors = 1000;
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x.flags &= ~VK_FLAG_REDUNDANT_GD; /* ignored without the flag */
    assert_int_equal(validate(x, 384), 0);
    x = h;
    x.desc_offset_sectors = 380; /* descriptor past EOF */
    assert_int_equal(validate(x, 384), VMDKIT_EFORMAT);
    x = h;
    x.gd_offset_sectors = VK_GD_AT_END; /* footer decides; not checked here */
    assert_int_equal(validate(x, 384), 0);
}

static void test_markers(void **state)
{
    (void)state;
    uint8_t b[512];
    vk_marker_encode_meta(b, 4, VK_MARKER_GT);
    vk_marker m;
    vk_marker_decode(b, &m);
    assert_int_equal(m.val, 4);
    assert_int_equal(m.size, 0);
    assert_int_equal(m.type, VK_MARKER_GT);
    for (int i = 16; i < 512; i++)
        assert_int_equal(b[i], 0);
    /* a grain marker: LBA + size, data from byte 12 */
    memset(b, 0, sizeof b);
    vk_put64(b, 128);
    vk_put32(b + 8, 794);
    vk_marker_decode(b, &m);
    assert_int_equal(m.val, 128);
    assert_int_equal(m.size, 794);
}

/* the file kinds the reader and the checker both classify by their first bytes */
static void test_file_magic(void **state)
{
    (void)state;
    uint8_t b[8] = {'K', 'D', 'M', 'V', 1, 0, 0, 0};
    assert_int_equal(vk_file_magic(b, 512), VK_MAGIC_KDMV);
    assert_int_equal(vk_file_magic(b, 3), VK_MAGIC_OTHER); /* too short to hold it */
    memcpy(b, "COWD", 4);
    assert_int_equal(vk_file_magic(b, 4), VK_MAGIC_COWD);
    vk_put64(b, VK_SESPARSE_MAGIC);
    assert_int_equal(vk_file_magic(b, 8), VK_MAGIC_SESPARSE);
    assert_int_equal(vk_file_magic(b, 7), VK_MAGIC_OTHER);
    memcpy(b, "# Disk D", 8);
    assert_int_equal(vk_file_magic(b, 8), VK_MAGIC_OTHER);
    assert_int_not_equal(VK_MAGIC_OTHER, 0); /* 0 stays free for "not looked at" */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_offsets), cmocka_unit_test(test_layout_worked_examples),
        cmocka_unit_test(test_grain_math),     cmocka_unit_test(test_validate),
        cmocka_unit_test(test_markers),        cmocka_unit_test(test_file_magic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
