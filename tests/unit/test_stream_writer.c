/* test_stream_writer.c - streams written by vk_stream_writer are parsed
 * back here sector by sector (header, grain records, GT/GD, footer, EOS)
 * and, when qemu-img is installed, checked and converted by it too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libdeflate.h>

#include "sparse_header.h"
#include "stream_writer.h"

#define GRAIN_SECTORS 128u
#define GRAIN_BYTES (GRAIN_SECTORS * 512u)
#define GT_COVERAGE_GRAINS 512u

struct shape {
    uint64_t capacity_sectors;
    size_t count;
    const uint64_t *grains; /* ascending */
    size_t short_last;      /* bytes left out of the final put (counted as zeros) */
    int threads;
    int level;
    unsigned desc_padding; /* comment bytes added to make the descriptor longer */
};

/* ------------------------------------------------------------------ */
/* Test fixture: a fresh folder per test                                */

static int setup_dir(void **state)
{
    char *dir = strdup("/tmp/vk-stream-XXXXXX");
    if (!dir || !mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    char *dir = *state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[4096];
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
    return 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ------------------------------------------------------------------ */
/* Grain contents: compressible text, random bytes, or half zeros       */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Kinds of grain content; the compressed size each must reach (bytes). */
static size_t compressed_limit(uint64_t g)
{
    switch (g % 4) {
    case 0:
        return GRAIN_BYTES / 2; /* text */
    case 3:
        return GRAIN_BYTES / 4; /* one random block repeated */
    default:
        return GRAIN_BYTES + 64; /* random; half zeros */
    }
}

static void fill_grain(uint64_t g, uint8_t *buf, size_t len)
{
    switch (g % 4) {
    case 0: {
        size_t off = 0;
        unsigned line = 0;
        while (off < len) {
            char tmp[96];
            int n = snprintf(tmp, sizeof tmp, "grain %llu line %u: the quick brown fox\n",
                             (unsigned long long)g, line++);
            size_t c = (size_t)n < len - off ? (size_t)n : len - off;
            memcpy(buf + off, tmp, c);
            off += c;
        }
        break;
    }
    case 1: {
        uint64_t s = g * 0x9e3779b97f4a7c15ull + 1;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)xorshift(&s);
        break;
    }
    case 2:
        for (size_t i = 0; i < len; i++)
            buf[i] = i < len / 2 ? 0 : (uint8_t)(i * (g + 7));
        break;
    default: {
        /* random bytes with long repeats: deflate must find them */
        uint64_t s = g * 0x2545f4914f6cdd1dull + 3;
        for (size_t i = 0; i < len; i++)
            buf[i] = i < 8192 ? (uint8_t)xorshift(&s) : buf[i - 8192];
        break;
    }
    }
}

static size_t in_disk_bytes(uint64_t capacity_sectors, uint64_t g)
{
    uint64_t left = capacity_sectors - g * GRAIN_SECTORS;
    return (size_t)((left < GRAIN_SECTORS ? left : GRAIN_SECTORS) * 512);
}

/* Bytes passed to put() for the K-th grain of SH. */
static size_t put_len(const struct shape *sh, size_t k)
{
    size_t n = in_disk_bytes(sh->capacity_sectors, sh->grains[k]);
    return k + 1 == sh->count ? n - sh->short_last : n;
}

/* Expected content of grain K (in-disk bytes): the put bytes, then zeros. */
static void expected_grain(const struct shape *sh, size_t k, uint8_t *buf)
{
    size_t n = in_disk_bytes(sh->capacity_sectors, sh->grains[k]);
    size_t len = put_len(sh, k);
    fill_grain(sh->grains[k], buf, len);
    memset(buf + len, 0, n - len);
}

static char *make_descriptor(const struct shape *sh)
{
    size_t n = 1024 + sh->desc_padding;
    char *d = malloc(n);
    assert_non_null(d);
    int len = snprintf(d, n,
                       "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=ffffffff\n"
                       "createType=\"streamOptimized\"\n\n# Extent description\n"
                       "RW %llu SPARSE \"disk.vmdk\"\n\n# The Disk Data Base\n#DDB\n\n",
                       (unsigned long long)sh->capacity_sectors);
    for (unsigned i = 0; i < sh->desc_padding; i++)
        d[len++] = i % 64 == 63 ? '\n' : (i % 64 == 0 ? '#' : 'x');
    snprintf(d + len, n - (size_t)len,
             "ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n"
             "ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\n");
    return d;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

static void write_shape(const struct shape *sh, const char *path, const char *desc)
{
    vk_stream_writer *w = NULL;
    vk_err e = {0};
    int r = vk_stream_writer_open(path, sh->capacity_sectors, desc, sh->threads, sh->level, &w, &e);
    if (r)
        fail_msg("open: %s", e.msg);
    assert_int_equal(vk_stream_writer_grain_sectors(w), GRAIN_SECTORS);
    uint8_t *buf = malloc(GRAIN_BYTES);
    assert_non_null(buf);
    for (size_t k = 0; k < sh->count; k++) {
        size_t len = put_len(sh, k);
        fill_grain(sh->grains[k], buf, len);
        r = vk_stream_writer_put(w, sh->grains[k], buf, len, &e);
        if (r)
            fail_msg("put %zu: %s", k, e.msg);
        memset(buf, 0xa5, GRAIN_BYTES); /* the writer must have taken a copy */
    }
    free(buf);
    r = vk_stream_writer_finish(w, &e);
    if (r)
        fail_msg("finish: %s", e.msg);
}

/* ------------------------------------------------------------------ */
/* Parsing the stream back                                              */

static uint8_t *read_whole(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    size_t got = 0;
    while (got < *len) {
        ssize_t n = read(fd, b + got, *len - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    return b;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void check_header(const uint8_t *file, const struct shape *sh, const char *desc,
                         vk_sparse_header *h)
{
    vk_sparse_header_decode(file, h);
    size_t desc_len = strlen(desc);
    uint64_t desc_sectors = desc_len ? (desc_len + 511) / 512 : 1;
    assert_int_equal(h->magic, VK_KDMV_MAGIC);
    assert_memory_equal(file, "KDMV", 4);
    assert_int_equal(h->version, 3);
    assert_int_equal(h->flags, 0x30001u);
    assert_int_equal(h->capacity_sectors, sh->capacity_sectors);
    assert_int_equal(h->grain_sectors, GRAIN_SECTORS);
    assert_int_equal(h->desc_offset_sectors, 1);
    assert_int_equal(h->desc_size_sectors, desc_sectors);
    assert_int_equal(h->gtes_per_gt, GT_COVERAGE_GRAINS);
    assert_int_equal(h->rgd_offset_sectors, 0);
    assert_true(h->gd_offset_sectors == VK_GD_AT_END);
    assert_int_equal(h->overhead_sectors, (1 + desc_sectors + 127) / 128 * 128);
    assert_int_equal(h->unclean_shutdown, 0);
    assert_memory_equal(h->newline_chars, "\n \r\n", 4);
    assert_int_equal(h->compress_algorithm, 1);
    /* descriptor at sector 1, NUL padded, zeros up to overHead */
    assert_memory_equal(file + 512, desc, desc_len);
    assert_true(all_zero(file + 512 + desc_len, h->overhead_sectors * 512 - 512 - desc_len));
}

/* Index of grain G in SH, or -1. */
static long find_grain(const struct shape *sh, uint64_t g)
{
    for (size_t k = 0; k < sh->count; k++)
        if (sh->grains[k] == g)
            return (long)k;
    return -1;
}

static void verify_stream(const char *path, const struct shape *sh, const char *desc)
{
    size_t len;
    uint8_t *file = read_whole(path, &len);
    assert_true(len % 512 == 0);
    uint64_t nsect = len / 512;
    vk_sparse_header h;
    check_header(file, sh, desc, &h);

    uint64_t num_gdes = (sh->capacity_sectors + 65535) / 65536;
    uint64_t *grain_sector = calloc(sh->count ? sh->count : 1, sizeof *grain_sector);
    uint64_t *gt_sector = calloc(num_gdes, sizeof *gt_sector);
    uint8_t *want = malloc(GRAIN_BYTES), *got = malloc(GRAIN_BYTES);
    struct libdeflate_decompressor *dec = libdeflate_alloc_decompressor();
    assert_true(grain_sector && gt_sector && want && got && dec);

    size_t k = 0;
    uint64_t gd_data = 0, footer_at = 0, gts_seen = 0;
    bool eos = false;
    uint64_t pos = h.overhead_sectors;
    while (pos < nsect && !eos) {
        const uint8_t *p = file + pos * 512;
        vk_marker m;
        vk_marker_decode(p, &m);
        if (m.size) {
            /* grain record: in put order, LBA = grain * grainSize */
            assert_true(gd_data == 0);
            assert_true(k < sh->count);
            assert_int_equal(m.val, sh->grains[k] * GRAIN_SECTORS);
            uint64_t rec_sectors = (12 + (uint64_t)m.size + 511) / 512;
            assert_true(pos + rec_sectors <= nsect);
            size_t n = in_disk_bytes(sh->capacity_sectors, sh->grains[k]), out = 0;
            assert_int_equal(libdeflate_zlib_decompress(dec, p + 12, m.size, got, GRAIN_BYTES, &out),
                             LIBDEFLATE_SUCCESS);
            assert_int_equal(out, n);
            if (n == GRAIN_BYTES && sh->grains[k] != sh->grains[sh->count - 1])
                assert_true(m.size <= compressed_limit(sh->grains[k]));
            expected_grain(sh, k, want);
            assert_memory_equal(got, want, n);
            assert_true(all_zero(p + 12 + m.size, rec_sectors * 512 - 12 - m.size));
            grain_sector[k++] = pos;
            pos += rec_sectors;
            continue;
        }
        switch (m.type) {
        case VK_MARKER_GT: {
            /* follows the last grain of its range, before any later grain */
            assert_int_equal(m.val, 4);
            assert_true(k > 0 && pos + 5 <= nsect);
            assert_true(all_zero(p + 16, 496));
            uint64_t range = sh->grains[k - 1] / GT_COVERAGE_GRAINS;
            assert_true(k == sh->count || sh->grains[k] / GT_COVERAGE_GRAINS > range);
            assert_int_equal(gt_sector[range], 0);
            gt_sector[range] = pos + 1;
            for (unsigned j = 0; j < GT_COVERAGE_GRAINS; j++) {
                long idx = find_grain(sh, range * GT_COVERAGE_GRAINS + j);
                uint32_t gte = vk_le32(p + 512 + 4 * j);
                assert_int_equal(gte, idx < 0 ? 0 : grain_sector[idx]);
            }
            gts_seen++;
            pos += 5;
            break;
        }
        case VK_MARKER_GD: {
            assert_int_equal(k, sh->count);
            assert_int_equal(m.val, (num_gdes * 4 + 511) / 512);
            assert_true(pos + 1 + m.val <= nsect);
            gd_data = pos + 1;
            for (uint64_t i = 0; i < num_gdes; i++)
                assert_int_equal(vk_le32(file + gd_data * 512 + 4 * i), gt_sector[i]);
            assert_true(all_zero(file + gd_data * 512 + 4 * num_gdes, m.val * 512 - 4 * num_gdes));
            pos += 1 + m.val;
            break;
        }
        case VK_MARKER_FOOTER: {
            assert_int_equal(m.val, 1);
            assert_true(gd_data != 0 && pos + 2 <= nsect);
            footer_at = pos + 1;
            const uint8_t *f = file + footer_at * 512;
            assert_memory_equal(f, file, 56);
            assert_int_equal(vk_le64(f + 56), gd_data);
            assert_memory_equal(f + 64, file + 64, 512 - 64);
            pos += 2;
            break;
        }
        case VK_MARKER_EOS:
            assert_true(all_zero(p, 512));
            assert_int_equal(pos, nsect - 1); /* the file ends right after EOS */
            assert_int_equal(footer_at, nsect - 2);
            eos = true;
            break;
        default:
            fail_msg("unexpected marker type %u at sector %llu", m.type, (unsigned long long)pos);
        }
    }
    assert_true(eos);
    /* one GT per range holding data, none for the others */
    uint64_t ranges_with_data = 0;
    for (uint64_t i = 0; i < num_gdes; i++) {
        bool any = false;
        for (size_t j = 0; j < sh->count; j++)
            any |= sh->grains[j] / GT_COVERAGE_GRAINS == i;
        ranges_with_data += any;
        assert_int_equal(gt_sector[i] != 0, any);
    }
    assert_int_equal(gts_seen, ranges_with_data);

    libdeflate_free_decompressor(dec);
    free(want);
    free(got);
    free(gt_sector);
    free(grain_sector);
    free(file);
}

/* ------------------------------------------------------------------ */
/* Cross-check with qemu-img                                            */

static bool have_qemu_img(void) { return system("command -v qemu-img >/dev/null 2>&1") == 0; }

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

static void qemu_cross_check(const char *dir, const char *path, const struct shape *sh)
{
    if (!have_qemu_img()) {
        print_message("qemu-img not found: skipping the qemu-img check/convert part\n");
        return;
    }
    assert_int_equal(run("qemu-img check -f vmdk '%s' >/dev/null", path), 0);
    char *raw = join(dir, "out.raw");
    unlink(raw);
    assert_int_equal(run("qemu-img convert -f vmdk -O raw '%s' '%s'", path, raw), 0);
    int fd = open(raw, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal((uint64_t)st.st_size, sh->capacity_sectors * 512);
    uint8_t *got = malloc(GRAIN_BYTES), *want = malloc(GRAIN_BYTES);
    assert_true(got && want);
    uint64_t grains = (sh->capacity_sectors + GRAIN_SECTORS - 1) / GRAIN_SECTORS;
    for (uint64_t g = 0; g < grains; g++) {
        size_t n = in_disk_bytes(sh->capacity_sectors, g);
        assert_int_equal(pread(fd, got, n, (off_t)(g * GRAIN_BYTES)), (ssize_t)n);
        long k = find_grain(sh, g);
        if (k < 0)
            memset(want, 0, n);
        else
            expected_grain(sh, (size_t)k, want);
        if (memcmp(got, want, n) != 0)
            fail_msg("qemu-img convert: grain %llu differs", (unsigned long long)g);
    }
    close(fd);
    unlink(raw);
    free(raw);
    free(got);
    free(want);
}

static void write_and_verify(const char *dir, const struct shape *sh)
{
    char *path = join(dir, "disk.vmdk");
    char *desc = make_descriptor(sh);
    write_shape(sh, path, desc);
    verify_stream(path, sh, desc);
    qemu_cross_check(dir, path, sh);
    unlink(path);
    free(desc);
    free(path);
}

/* ------------------------------------------------------------------ */
/* Shapes                                                               */

static void empty_disk(void **state)
{
    for (int threads = 1; threads <= 3; threads += 2) {
        struct shape sh = {.capacity_sectors = 2048, .threads = threads};
        write_and_verify(*state, &sh);
    }
}

/* 5 MiB + 3 sectors: 81 grains, the last one 3 sectors long; a few holes. */
static const uint64_t small_grains[] = {0,  1,  2,  3,  4,  7,  8,  9,  10, 11, 12, 13,
                                        14, 15, 16, 17, 20, 21, 30, 31, 32, 33, 40, 50,
                                        60, 61, 62, 63, 64, 65, 70, 71, 72, 79, 80};

static void small_unaligned_disk(void **state)
{
    for (int threads = 1; threads <= 3; threads += 2) {
        struct shape sh = {.capacity_sectors = 5 * 2048 + 3,
                           .count = sizeof small_grains / sizeof small_grains[0],
                           .grains = small_grains,
                           .short_last = 700,
                           .threads = threads,
                           .desc_padding = 700};
        write_and_verify(*state, &sh);
    }
}

/* 4 GT ranges + a partial fifth; data in ranges 0 (crossing into 1) and 3:
 * the GTs of ranges 2 and 4 are omitted. */
static const uint64_t gap_grains[] = {
    0,   1,   2,   200, 505, 506, 507,  508,     509,         510,           511,
    512, 513, 514, 515, 516, 517, 1023, 3 * 512, 3 * 512 + 1, 3 * 512 + 300, 3 * 512 + 511};

static void gapped_disk(void **state)
{
    for (int threads = 1; threads <= 3; threads += 2) {
        struct shape sh = {.capacity_sectors = 4 * 65536 + 1000,
                           .count = sizeof gap_grains / sizeof gap_grains[0],
                           .grains = gap_grains,
                           .threads = threads,
                           .level = threads == 1 ? 1 : 9};
        write_and_verify(*state, &sh);
    }
}

/* Many grains through a small ring with threads = 0 (CPU count). */
static void many_grains_default_threads(void **state)
{
    static uint64_t grains[700];
    for (size_t i = 0; i < 700; i++)
        grains[i] = i;
    struct shape sh = {.capacity_sectors = 700 * 128, .count = 700, .grains = grains};
    write_and_verify(*state, &sh);
}

/* ------------------------------------------------------------------ */
/* Argument and failure handling                                         */

static void refuses_bad_arguments(void **state)
{
    char *path = join(*state, "bad.vmdk");
    vk_stream_writer *w = NULL;
    vk_err e = {0};
    assert_int_equal(vk_stream_writer_open(path, 0, "", 1, 0, &w, &e), VMDKIT_EINVAL);
    assert_int_equal(vk_stream_writer_open(path, 128, "", 1, 13, &w, &e), VMDKIT_EINVAL);
    assert_int_equal(vk_stream_writer_open(path, 128, "", -1, 0, &w, &e), VMDKIT_EINVAL);
    assert_false(file_exists(path));

    /* an existing file is refused and left alone */
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    assert_int_equal(vk_stream_writer_open(path, 128, "", 2, 0, &w, &e), VMDKIT_EEXIST);
    assert_non_null(strstr(e.msg, path));
    assert_true(file_exists(path));
    unlink(path);
    free(path);
}

static void refuses_bad_puts_then_finishes(void **state)
{
    char *path = join(*state, "disk.vmdk");
    static const uint64_t grains[] = {3, 5};
    struct shape sh = {.capacity_sectors = 6 * 128 + 5, .count = 2, .grains = grains, .threads = 2};
    char *desc = make_descriptor(&sh);
    vk_stream_writer *w = NULL;
    vk_err e = {0};
    assert_int_equal(vk_stream_writer_open(path, sh.capacity_sectors, desc, 2, 0, &w, &e), 0);
    uint8_t *buf = malloc(GRAIN_BYTES);
    assert_non_null(buf);
    fill_grain(3, buf, GRAIN_BYTES);
    assert_int_equal(vk_stream_writer_put(w, 3, buf, GRAIN_BYTES, &e), 0);
    /* not ascending */
    assert_int_equal(vk_stream_writer_put(w, 3, buf, GRAIN_BYTES, &e), VMDKIT_EINVAL);
    assert_int_equal(vk_stream_writer_put(w, 2, buf, GRAIN_BYTES, &e), VMDKIT_EINVAL);
    /* beyond the disk */
    assert_int_equal(vk_stream_writer_put(w, 7, buf, GRAIN_BYTES, &e), VMDKIT_EINVAL);
    /* the last grain holds only 5 sectors */
    assert_int_equal(vk_stream_writer_put(w, 6, buf, 5 * 512 + 1, &e), VMDKIT_EINVAL);
    fill_grain(5, buf, GRAIN_BYTES);
    assert_int_equal(vk_stream_writer_put(w, 5, buf, GRAIN_BYTES, &e), 0);
    assert_int_equal(vk_stream_writer_finish(w, &e), 0);
    verify_stream(path, &sh, desc);
    unlink(path);
    free(buf);
    free(desc);
    free(path);
}

static void abort_removes_file(void **state)
{
    char *path = join(*state, "aborted.vmdk");
    for (int threads = 1; threads <= 3; threads += 2) {
        vk_stream_writer *w = NULL;
        vk_err e = {0};
        assert_int_equal(vk_stream_writer_open(path, 64 * 128, "", threads, 0, &w, &e), 0);
        assert_true(file_exists(path));
        uint8_t *buf = malloc(GRAIN_BYTES);
        assert_non_null(buf);
        for (uint64_t g = 0; g < 40; g++) {
            fill_grain(g, buf, GRAIN_BYTES);
            assert_int_equal(vk_stream_writer_put(w, g, buf, GRAIN_BYTES, &e), 0);
        }
        free(buf);
        vk_stream_writer_abort(w);
        assert_false(file_exists(path));
    }
    free(path);
}

/* A file size limit makes writes fail with EFBIG: put() or finish() must
 * report it (as no-space) and the partial file must be gone. */
static void write_error_propagates(void **state)
{
    char *path = join(*state, "full.vmdk");
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    for (int threads = 1; threads <= 2; threads++) {
        vk_stream_writer *w = NULL;
        vk_err e = {0};
        assert_int_equal(vk_stream_writer_open(path, 256 * 128, "", threads, 0, &w, &e), 0);
        struct rlimit lim = {.rlim_cur = 3u << 20, .rlim_max = old.rlim_max};
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        uint8_t *buf = malloc(GRAIN_BYTES);
        assert_non_null(buf);
        int r = 0;
        uint64_t g = 0;
        for (; g < 256 && !r; g++) {
            fill_grain(g * 4 + 1, buf, GRAIN_BYTES); /* random: incompressible */
            r = vk_stream_writer_put(w, g, buf, GRAIN_BYTES, &e);
        }
        free(buf);
        /* 16 MiB of random grains cannot pass a 3 MiB limit without put()
         * flushing output on the way */
        assert_int_equal(r, VMDKIT_ENOSPC);
        assert_true(g < 256);
        /* sticky: a later valid put fails the same way */
        uint8_t z[512] = {1};
        assert_int_equal(vk_stream_writer_put(w, 255, z, sizeof z, &e), VMDKIT_ENOSPC);
        int f = vk_stream_writer_finish(w, &e);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        assert_int_equal(f, VMDKIT_ENOSPC);
        assert_non_null(strstr(e.msg, path));
        assert_false(file_exists(path));
    }
    signal(SIGXFSZ, old_handler);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_disk, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(small_unaligned_disk, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(gapped_disk, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(many_grains_default_threads, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(refuses_bad_arguments, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(refuses_bad_puts_then_finishes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(abort_removes_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(write_error_propagates, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
