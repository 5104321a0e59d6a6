/* test_cowd.c - ESX COWD (vmfsSparse) extents: small images are generated
 * here (header, grain directory, grain tables, patterned grains), then read
 * back through the driver and compared with what was written. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "extent.h"
#include "sparse_header.h"

#define HDR_BYTES 2048u

typedef struct image {
    uint32_t version;
    uint32_t capacity; /* sectors */
    uint32_t grain;    /* sectors */
    uint32_t gtes;     /* entries per grain table */
    uint32_t n_gdes;
    uint32_t n_grains;
    uint8_t *bytes; /* the file */
    size_t len;
    uint8_t *expect; /* content of every sector */
    bool *stored;    /* per grain */
} image;

static char tmpdir[] = "/tmp/test_cowd.XXXXXX";

static uint8_t pattern(uint64_t sector, size_t byte) { return (uint8_t)(sector * 31u + byte * 7u + 1u); }

/* Build a COWD file whose grains ORDER[0..n) are stored, in that order. */
static void image_build(image *m, uint32_t version, uint32_t capacity, uint32_t grain,
                        const uint32_t *order, size_t n)
{
    memset(m, 0, sizeof *m);
    m->version = version;
    m->capacity = capacity;
    m->grain = grain;
    m->gtes = version == 3 ? 512 : 4096;
    m->n_grains = (capacity + grain - 1) / grain;
    m->n_gdes = (m->n_grains + m->gtes - 1) / m->gtes;
    m->stored = calloc(m->n_grains, sizeof *m->stored);
    m->expect = calloc(capacity, VK_SECTOR);
    assert_non_null(m->stored);
    assert_non_null(m->expect);

    bool *has_gt = calloc(m->n_gdes, sizeof *has_gt);
    assert_non_null(has_gt);
    for (size_t i = 0; i < n; i++) {
        assert_true(order[i] < m->n_grains);
        m->stored[order[i]] = true;
        has_gt[order[i] / m->gtes] = true;
    }
    uint32_t gd_sector = HDR_BYTES / VK_SECTOR;
    uint32_t next = gd_sector + (m->n_gdes * 4 + VK_SECTOR - 1) / VK_SECTOR;
    uint32_t gt_sectors = m->gtes * 4 / VK_SECTOR;
    uint32_t *gt_at = calloc(m->n_gdes, sizeof *gt_at);
    assert_non_null(gt_at);
    for (uint32_t g = 0; g < m->n_gdes; g++)
        if (has_gt[g]) {
            gt_at[g] = next;
            next += gt_sectors;
        }
    uint32_t data_start = next;
    m->len = ((size_t)data_start + n * grain) * VK_SECTOR;
    m->bytes = calloc(1, m->len);
    assert_non_null(m->bytes);

    uint8_t *h = m->bytes;
    vk_put32(h + 0, VK_COWD_MAGIC);
    vk_put32(h + 4, version);
    vk_put32(h + 8, version == 3 ? 0x1b : 3);
    vk_put32(h + 12, capacity);
    vk_put32(h + 16, grain);
    vk_put32(h + 20, gd_sector);
    vk_put32(h + 24, m->n_gdes);
    vk_put32(h + 28, (uint32_t)(m->len / VK_SECTOR));
    for (uint32_t g = 0; g < m->n_gdes; g++)
        vk_put32(m->bytes + (size_t)gd_sector * VK_SECTOR + g * 4, gt_at[g]);
    for (size_t i = 0; i < n; i++) {
        uint32_t gi = order[i];
        uint32_t sector = data_start + (uint32_t)i * grain;
        size_t gte_at = (size_t)gt_at[gi / m->gtes] * VK_SECTOR + (gi % m->gtes) * 4;
        vk_put32(m->bytes + gte_at, sector);
        for (uint32_t s = 0; s < grain; s++) {
            uint64_t virt = (uint64_t)gi * grain + s;
            uint8_t *dst = m->bytes + ((size_t)sector + s) * VK_SECTOR;
            for (size_t b = 0; b < VK_SECTOR; b++)
                dst[b] = pattern(virt, b);
            if (virt < capacity)
                memcpy(m->expect + virt * VK_SECTOR, dst, VK_SECTOR);
        }
    }
    free(has_gt);
    free(gt_at);
}

static void image_free(image *m)
{
    free(m->bytes);
    free(m->expect);
    free(m->stored);
}

/* Byte offset of the grain table entry of grain GI. */
static size_t gte_offset(const image *m, uint32_t gi)
{
    uint32_t gd = vk_le32(m->bytes + 20);
    uint32_t gt = vk_le32(m->bytes + (size_t)gd * VK_SECTOR + (gi / m->gtes) * 4);
    assert_int_not_equal(gt, 0);
    return (size_t)gt * VK_SECTOR + (gi % m->gtes) * 4;
}

typedef struct opened {
    char path[256];
    vk_extent x;
} opened;

/* Write LEN bytes of M as a file and open it as an extent of SIZE sectors. */
static int open_bytes(const uint8_t *bytes, size_t len, uint64_t size, opened *o, vk_err *e)
{
    static unsigned counter;
    snprintf(o->path, sizeof o->path, "%s/delta-%u.vmdk", tmpdir, counter++);
    FILE *f = fopen(o->path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    memset(&o->x, 0, sizeof o->x);
    o->x.name = o->path;
    o->x.path = o->path;
    o->x.access = VK_ACCESS_RW;
    o->x.type = VK_EXT_VMFSSPARSE;
    o->x.size_sectors = size;
    o->x.fd = open(o->path, O_RDONLY);
    assert_true(o->x.fd >= 0);
    memset(e, 0, sizeof *e);
    int r = vk_cowd_open(&o->x, e);
    if (r) {
        close(o->x.fd);
        unlink(o->path);
    }
    return r;
}

static void close_opened(opened *o)
{
    vk_err e;
    assert_int_equal(o->x.ops->close(&o->x, &e), 0);
    close(o->x.fd);
    unlink(o->path);
}

/* Expected run at SECTOR (at most N) from the image's grain map. */
static void expected_run(const image *m, uint64_t sector, uint64_t n, int *alloc, uint64_t *run)
{
    bool kind = m->stored[sector / m->grain];
    uint64_t s = sector;
    while (s < sector + n && m->stored[s / m->grain] == kind)
        s++;
    *alloc = kind ? VMDKIT_ALLOC_DATA : VMDKIT_ALLOC_UNALLOC;
    *run = s - sector;
}

/* Walk [START, START+N) with status calls limited to N, comparing each run. */
static void check_status(const image *m, opened *o, uint64_t start, uint64_t n)
{
    uint64_t s = start;
    while (s < start + n) {
        int alloc, want_alloc;
        uint64_t run, want_run;
        vk_err e;
        assert_int_equal(o->x.ops->status(&o->x, s, start + n - s, &alloc, &run, &e), 0);
        expected_run(m, s, start + n - s, &want_alloc, &want_run);
        assert_int_equal(alloc, want_alloc);
        assert_int_equal(run, want_run);
        s += run;
    }
}

/* Read everything in chunks of CHUNK sectors and compare with the image. */
static void check_content(const image *m, opened *o, uint64_t size, uint64_t chunk)
{
    uint8_t *buf = malloc(chunk * VK_SECTOR);
    assert_non_null(buf);
    for (uint64_t s = 0; s < size; s += chunk) {
        uint64_t n = size - s < chunk ? size - s : chunk;
        memset(buf, 0xee, n * VK_SECTOR);
        vk_err e;
        assert_int_equal(o->x.ops->read(&o->x, s, n, buf, &e), 0);
        assert_memory_equal(buf, m->expect + s * VK_SECTOR, n * VK_SECTOR);
    }
    free(buf);
}

static void check_image(const image *m, uint64_t size, size_t n_stored)
{
    opened o;
    vk_err e;
    assert_int_equal(open_bytes(m->bytes, m->len, size, &o, &e), 0);
    assert_null(o.x.ops->write);
    assert_null(o.x.ops->zero);
    check_status(m, &o, 0, size);
    check_status(m, &o, 3, size - 3);
    check_status(m, &o, 1, 37);
    check_content(m, &o, size, size);
    check_content(m, &o, size, 777);
    check_content(m, &o, size, 1);

    vmdkit_sparse_facts f;
    uint64_t allocated = 0;
    o.x.ops->describe(&o.x, &f, &allocated);
    assert_true(f.present);
    assert_string_equal(f.magic, "COWD");
    assert_int_equal(f.version, m->version);
    assert_int_equal(f.grain_sectors, m->grain);
    assert_int_equal(f.gtes_per_gt, m->gtes);
    assert_int_equal(f.gd_offset_sectors, HDR_BYTES / VK_SECTOR);
    assert_false(f.unclean_shutdown);
    assert_int_equal(allocated, (uint64_t)n_stored * m->grain * VK_SECTOR);
    assert_null(o.x.ops->flush); /* read-only: nothing to make durable */
    close_opened(&o);
}

static void test_grain1(void **state)
{
    (void)state;
    /* runs inside and across grain tables, stored out of order */
    static const uint32_t order[] = {0, 1, 2, 10, 4095, 4096, 4097, 8191, 20479, 5, 12000, 11999};
    image m;
    image_build(&m, 1, 20480, 1, order, sizeof order / sizeof order[0]);
    check_image(&m, 20480, sizeof order / sizeof order[0]);
    image_free(&m);
}

static void test_grain16(void **state)
{
    (void)state;
    static const uint32_t order[] = {0, 1, 3, 100, 1279, 2, 640};
    image m;
    image_build(&m, 1, 20480, 16, order, sizeof order / sizeof order[0]);
    check_image(&m, 20480, sizeof order / sizeof order[0]);
    image_free(&m);
}

static void test_vmdk3_small_tables(void **state)
{
    (void)state;
    static const uint32_t order[] = {511, 512, 513, 7000, 20000};
    image m;
    image_build(&m, 3, 20480, 1, order, sizeof order / sizeof order[0]);
    check_image(&m, 20480, sizeof order / sizeof order[0]);
    image_free(&m);
}

/* The descriptor may describe less than the header capacity. */
static void test_extent_smaller_than_capacity(void **state)
{
    (void)state;
    static const uint32_t order[] = {0, 700, 1279};
    image m;
    image_build(&m, 1, 20480, 16, order, sizeof order / sizeof order[0]);
    /* grain 1279 lies beyond the extent and is not counted */
    check_image(&m, 20000, 2);
    image_free(&m);
}

/* A last partial grain may end where the extent ends, before a full grain. */
static void test_partial_last_grain(void **state)
{
    (void)state;
    static const uint32_t order[] = {4, 1279};
    image m;
    image_build(&m, 1, 20472, 16, order, sizeof order / sizeof order[0]);
    m.len -= 8 * VK_SECTOR;
    check_image(&m, 20472, 2);
    image_free(&m);
}

static void test_unclean_flag(void **state)
{
    (void)state;
    static const uint32_t order[] = {3};
    image m;
    image_build(&m, 1, 4096, 1, order, 1);
    vk_put32(m.bytes + 1648, 1);
    opened o;
    vk_err e;
    assert_int_equal(open_bytes(m.bytes, m.len, 4096, &o, &e), 0);
    vmdkit_sparse_facts f;
    o.x.ops->describe(&o.x, &f, NULL);
    assert_true(f.unclean_shutdown);
    close_opened(&o);
    image_free(&m);
}

/* Open a patched copy of a valid image and expect CODE; the message must
 * name the file and contain WORD. */
static void expect_open_error(const image *m, size_t len, uint64_t size, int code, const char *word)
{
    opened o;
    vk_err e;
    int r = open_bytes(m->bytes, len, size, &o, &e);
    if (r == 0)
        close_opened(&o);
    assert_int_equal(r, code);
    assert_int_equal(e.code, code);
    assert_non_null(strstr(e.msg, o.path));
    assert_non_null(strstr(e.msg, word));
}

static void test_bad_headers(void **state)
{
    (void)state;
    static const uint32_t order[] = {0, 9000};
    image m;
    image_build(&m, 1, 20480, 1, order, 2);
    uint8_t saved[HDR_BYTES];
    memcpy(saved, m.bytes, HDR_BYTES);

    vk_put32(m.bytes + 0, VK_KDMV_MAGIC);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "magic");
    memcpy(m.bytes, saved, HDR_BYTES);

    vk_put32(m.bytes + 4, 2);
    expect_open_error(&m, m.len, 20480, VMDKIT_EUNSUPPORTED, "version");
    memcpy(m.bytes, saved, HDR_BYTES);

    /* capacity smaller than the extent in the descriptor: both named */
    vk_put32(m.bytes + 12, 20000);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "20000");
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "20480");
    memcpy(m.bytes, saved, HDR_BYTES);

    vk_put32(m.bytes + 16, 0);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "grainSize");
    vk_put32(m.bytes + 16, 3);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "grainSize");
    memcpy(m.bytes, saved, HDR_BYTES);

    /* grain directory past the end of the file, or inside the header */
    vk_put32(m.bytes + 20, 0xfffffff0u);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "gdOffset");
    vk_put32(m.bytes + 20, (uint32_t)(m.len / VK_SECTOR));
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "gdOffset");
    vk_put32(m.bytes + 20, 1);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "gdOffset");
    memcpy(m.bytes, saved, HDR_BYTES);

    /* absurd or insufficient numGDEntries */
    vk_put32(m.bytes + 24, 0xffffffffu);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "gdOffset");
    vk_put32(m.bytes + 24, 0);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "numGDEntries");
    vk_put32(m.bytes + 24, 4);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "numGDEntries");
    memcpy(m.bytes, saved, HDR_BYTES);

    /* a grain table beyond the end of the file */
    vk_put32(m.bytes + 4 * VK_SECTOR + 2 * 4, (uint32_t)(m.len / VK_SECTOR) - 1);
    expect_open_error(&m, m.len, 20480, VMDKIT_EFORMAT, "grain directory entry 2");
    memcpy(m.bytes, saved, HDR_BYTES);

    /* truncated inside the header */
    expect_open_error(&m, 1000, 20480, VMDKIT_EFORMAT, "header");
    image_free(&m);
}

/* A grain pointing past the end of the file fails reads and status. */
static void test_grain_past_eof(void **state)
{
    (void)state;
    static const uint32_t order[] = {0, 9000};
    image m;
    image_build(&m, 1, 20480, 1, order, 2);
    vk_put32(m.bytes + gte_offset(&m, 9000), 0x7ffffff0u);
    opened o;
    vk_err e;
    assert_int_equal(open_bytes(m.bytes, m.len, 20480, &o, &e), 0);

    uint8_t buf[4 * VK_SECTOR];
    assert_int_equal(o.x.ops->read(&o.x, 0, 4, buf, &e), 0);
    assert_memory_equal(buf, m.expect, sizeof buf);

    assert_int_equal(o.x.ops->read(&o.x, 8998, 4, buf, &e), VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, o.path));
    assert_non_null(strstr(e.msg, "grain table 2 entry 808"));
    assert_non_null(strstr(e.msg, "2147483632"));

    int alloc;
    uint64_t run;
    memset(&e, 0, sizeof e);
    assert_int_equal(o.x.ops->status(&o.x, 8000, 2000, &alloc, &run, &e), VMDKIT_EFORMAT);
    assert_int_equal(e.code, VMDKIT_EFORMAT);

    /* out-of-range requests are refused, not read */
    assert_int_equal(o.x.ops->read(&o.x, 20479, 2, buf, &e), VMDKIT_EINVAL);
    assert_int_equal(o.x.ops->status(&o.x, 20480, 1, &alloc, &run, &e), VMDKIT_EINVAL);
    close_opened(&o);
    image_free(&m);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grain1),
        cmocka_unit_test(test_grain16),
        cmocka_unit_test(test_vmdk3_small_tables),
        cmocka_unit_test(test_extent_smaller_than_capacity),
        cmocka_unit_test(test_partial_last_grain),
        cmocka_unit_test(test_unclean_flag),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_grain_past_eof),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
