/* test_check.c - vmdkit_check through the public API: disks made with
 * vmdkit_create and vmdkit_pwrite are checked clean, then copies are
 * damaged byte by byte and each damage must be found with its exact
 * classification and count; --repair must fix the fixable ones (a re-check
 * is clean, the data reads back, the backup holds the old bytes) and leave
 * the others reported. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vk.h"
#include "vmdkit.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define GRAIN_BYTES 65536u

static char tmpdir[] = "/tmp/test_check.XXXXXX";

/* ---- files ---- */

static void mkpath(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

static void read_at(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void write_at(const char *path, uint64_t off, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static uint32_t get32(const char *path, uint64_t off)
{
    uint8_t b[4];
    read_at(path, off, b, 4);
    return vk_le32(b);
}

static uint64_t get64(const char *path, uint64_t off)
{
    uint8_t b[8];
    read_at(path, off, b, 8);
    return vk_le64(b);
}

static void put32(const char *path, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    vk_put32(b, v);
    write_at(path, off, b, 4);
}

static void append_bytes(const char *path, size_t n, uint8_t byte)
{
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, byte, n);
    write_at(path, file_size(path), buf, n);
    free(buf);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    *len = (size_t)file_size(path);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    read_at(path, 0, buf, *len);
    buf[*len] = 0;
    return buf;
}

/* Replace the first FROM in the text file PATH by TO (same file size or not). */
static void edit_text(const char *path, const char *from, const char *to)
{
    size_t len;
    char *text = (char *)slurp(path, &len);
    char *at = strstr(text, from);
    assert_non_null(at);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    assert_int_equal(fclose(f), 0);
    free(text);
}

/* ---- disks ---- */

static uint8_t pattern(uint64_t off, unsigned seed)
{
    return (uint8_t)(((off >> 9) * 131u + (off & 511) * 7u + seed * 29u) | 1u);
}

static void create(const char *path, vmdkit_create_type t, uint64_t size, const char *parent)
{
    vmdkit_create_opts o = {.struct_size = sizeof o, .type = t, .size_bytes = size, .parent = parent};
    vmdkit_error err;
    int r = vmdkit_create(path, &o, &err);
    if (r)
        fail_msg("create %s: %s", path, err.msg);
}

static void fill(const char *path, uint64_t off, uint64_t len, unsigned seed)
{
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(path, VMDKIT_OPEN_RDWR, &d, &err))
        fail_msg("open %s: %s", path, err.msg);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (uint64_t i = 0; i < len; i++)
        buf[i] = pattern(off + i, seed);
    assert_int_equal(vmdkit_pwrite(d, buf, len, off), 0);
    assert_int_equal(vmdkit_close(d, &err), 0);
    free(buf);
}

/* The disk reads PATTERN(seed) over [off, off+len). */
static void expect_data(const char *path, uint64_t off, uint64_t len, unsigned seed)
{
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err))
        fail_msg("open %s: %s", path, err.msg);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(vmdkit_pread(d, buf, len, off), 0);
    for (uint64_t i = 0; i < len; i++)
        if (buf[i] != pattern(off + i, seed))
            fail_msg("%s: byte %llu differs", path, (unsigned long long)(off + i));
    free(buf);
    vmdkit_close(d, NULL);
}

static void expect_zeros(const char *path, uint64_t off, size_t len)
{
    vmdkit_disk *d;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, NULL), 0);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(vmdkit_pread(d, buf, len, off), 0);
    for (size_t i = 0; i < len; i++)
        if (buf[i])
            fail_msg("%s: byte %llu is not zero", path, (unsigned long long)(off + i));
    free(buf);
    vmdkit_close(d, NULL);
}

/* Layout of a hosted sparse file, read from its header. */
typedef struct kdmv {
    uint64_t gd, rgd, overhead, grain, gtes;
} kdmv;

static kdmv layout(const char *path)
{
    kdmv k = {
        .grain = get64(path, 20),
        .gtes = get32(path, 44),
        .rgd = get64(path, 48),
        .gd = get64(path, 56),
        .overhead = get64(path, 64),
    };
    return k;
}

static uint64_t gde_off(const kdmv *k, bool red, uint64_t i)
{
    return (red ? k->rgd : k->gd) * 512 + 4 * i;
}

static uint64_t gte_off(const char *path, const kdmv *k, bool red, uint64_t grain)
{
    uint32_t gt = get32(path, gde_off(k, red, grain / k->gtes));
    assert_int_not_equal(gt, 0);
    return (uint64_t)gt * 512 + 4 * (grain % k->gtes);
}

/* Set the entry of GRAIN in the primary table, and in the redundant one too when BOTH. */
static void set_gte(const char *path, uint64_t grain, uint32_t v, bool both)
{
    kdmv k = layout(path);
    put32(path, gte_off(path, &k, false, grain), v);
    if (both)
        put32(path, gte_off(path, &k, true, grain), v);
}

static uint32_t get_gte(const char *path, uint64_t grain)
{
    kdmv k = layout(path);
    return get32(path, gte_off(path, &k, false, grain));
}

/* A 100 MiB monolithicSparse disk with data: grains 0-3 (table 0), grain
 * 640 (table 1), grain 1200 (table 2). */
static void sparse_disk(const char *path)
{
    create(path, VMDKIT_MONOLITHIC_SPARSE, 100 * MiB, NULL);
    fill(path, 0, 4 * GRAIN_BYTES, 1);
    fill(path, 640 * (uint64_t)GRAIN_BYTES, GRAIN_BYTES, 1);
    fill(path, 1200 * (uint64_t)GRAIN_BYTES + 4096, 8192, 1);
}

static void expect_sparse_data(const char *path)
{
    expect_data(path, 0, 4 * GRAIN_BYTES, 1);
    expect_data(path, 640 * (uint64_t)GRAIN_BYTES, GRAIN_BYTES, 1);
    expect_data(path, 1200 * (uint64_t)GRAIN_BYTES + 4096, 8192, 1);
}

/* ---- checking ---- */

typedef struct findings {
    unsigned n[6];     /* before any repair, by kind */
    unsigned after[6]; /* reported by the re-check after a repair */
    char first[6][VMDKIT_ERRMSG_MAX];
} findings;

static void collect(void *opaque, const vmdkit_check_finding *f)
{
    findings *fs = opaque;
    assert_true(f->kind >= 0 && f->kind <= VMDKIT_FIND_UNREPAIRED);
    assert_non_null(f->file);
    assert_non_null(f->message);
    if (f->after_repair) {
        fs->after[f->kind]++;
        return;
    }
    if (!fs->n[f->kind]++)
        snprintf(fs->first[f->kind], sizeof fs->first[f->kind], "%s", f->message);
}

static int check(const char *path, unsigned flags, vmdkit_check_result *res, findings *fs)
{
    memset(fs, 0, sizeof *fs);
    vmdkit_error err = {0};
    int r = vmdkit_check(path,
                         &(vmdkit_check_opts){.struct_size = sizeof(vmdkit_check_opts),
                                              .flags = flags,
                                              .on_finding = collect,
                                              .finding_opaque = fs},
                         res, &err);
    if (r)
        print_message("check %s: %s\n", path, err.msg);
    return r;
}

/* No finding of any kind, no count. */
static void expect_clean(const char *path)
{
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(path, 0, &res, &fs), 0);
    for (int k = 0; k < 6; k++)
        if (fs.n[k])
            fail_msg("%s: unexpected finding: %s", path, fs.first[k]);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    assert_int_equal(res.stale, 0);
    assert_false(res.incomplete);
    assert_false(res.unclean_shutdown);
}

/* Exactly CORRUPT corruptions, LEAKS leaked grains, STALE stale entries. */
static void expect_counts(const char *path, unsigned corrupt, unsigned leaks, unsigned stale)
{
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(path, 0, &res, &fs), 0);
    if (res.corruptions != corrupt || res.leaks != leaks || res.stale != stale)
        fail_msg(
            "%s: %llu corruptions, %llu leaks, %llu stale; expected %u, %u, %u (first: %s / %s / %s)",
            path, (unsigned long long)res.corruptions, (unsigned long long)res.leaks,
            (unsigned long long)res.stale, corrupt, leaks, stale, fs.first[VMDKIT_FIND_CORRUPT],
            fs.first[VMDKIT_FIND_LEAK], fs.first[VMDKIT_FIND_STALE]);
    assert_int_equal(fs.n[VMDKIT_FIND_CORRUPT], corrupt);
    assert_int_equal(fs.n[VMDKIT_FIND_STALE], stale);
    assert_int_equal(fs.n[VMDKIT_FIND_REPAIRED], 0);
}

/* Repair and expect everything fixed; returns the backup path in BAK. */
static void repair_all(const char *path, char *bak, size_t n)
{
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(path, VMDKIT_CHECK_REPAIR, &res, &fs), 0);
    if (res.corruptions || res.leaks || res.stale)
        fail_msg("%s: after repair %llu corruptions, %llu leaks, %llu stale remain", path,
                 (unsigned long long)res.corruptions, (unsigned long long)res.leaks,
                 (unsigned long long)res.stale);
    assert_true(res.repaired > 0);
    assert_int_equal(fs.n[VMDKIT_FIND_REPAIRED], res.repaired);
    assert_int_equal(res.unrepaired, 0);
    for (int k = 0; k < 6; k++)
        if (k != VMDKIT_FIND_REPAIRED && fs.after[k])
            fail_msg("%s: finding left after repair", path);
    assert_true(res.backup_path[0] != 0);
    assert_true(access(res.backup_path, R_OK) == 0);
    snprintf(bak, n, "%s", res.backup_path);
    expect_clean(path);
}

/* Repair must change nothing it cannot justify: what was found stays. */
static void repair_none(const char *path, unsigned corrupt, unsigned leaks)
{
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(path, VMDKIT_CHECK_REPAIR, &res, &fs), 0);
    assert_int_equal(res.corruptions, corrupt);
    assert_int_equal(res.leaks, leaks);
    assert_int_equal(res.repaired, 0);
    assert_int_equal(res.unrepaired, corrupt + (leaks ? 1 : 0));
    assert_int_equal(res.backup_path[0], 0);
}

/* Find in backup BAK the region of PATH at OFF; compare its bytes with OLD. */
static void expect_backup_region(const char *bak, const char *path, uint64_t off, const void *old,
                                 size_t len)
{
    size_t n;
    uint8_t *b = slurp(bak, &n);
    const char magic[] = "vmdkit-repair-backup 1\n";
    assert_memory_equal(b, magic, sizeof magic - 1);
    size_t pos = sizeof magic - 1;
    bool found = false;
    while (pos < n && !found) {
        unsigned long long a, l;
        size_t plen;
        int used = 0;
        char *line = (char *)b + pos;
        if (strncmp(line, "end\n", 4) == 0)
            break;
        if (sscanf(line, "file %llu %zu\n%n", &a, &plen, &used) == 2 && used) {
            pos += (size_t)used + plen + 1;
            continue;
        }
        assert_int_equal(sscanf(line, "region %llu %llu %zu\n%n", &a, &l, &plen, &used), 3);
        pos += (size_t)used;
        bool same_path = plen == strlen(path) && memcmp(b + pos, path, plen) == 0;
        pos += plen + 1;
        if (same_path && a <= off && off + len <= a + l) {
            assert_memory_equal(b + pos + (off - a), old, len);
            found = true;
        }
        pos += (size_t)l + 1;
    }
    free(b);
    if (!found)
        fail_msg("%s: no region of %s at %llu", bak, path, (unsigned long long)off);
}

/* ---- clean disks ---- */

static void test_clean_sparse(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "clean-sparse.vmdk");
    sparse_disk(p);
    expect_clean(p);

    /* zeroed-grain entries and an all-zero write */
    mkpath(p, sizeof p, "clean-zeroed.vmdk");
    vmdkit_create_opts o = {.struct_size = sizeof o,
                            .type = VMDKIT_MONOLITHIC_SPARSE,
                            .size_bytes = 20 * MiB,
                            .zeroed_grain = true};
    assert_int_equal(vmdkit_create(p, &o, NULL), 0);
    fill(p, 0, 8 * GRAIN_BYTES, 2);
    vmdkit_disk *d;
    assert_int_equal(vmdkit_open(p, VMDKIT_OPEN_RDWR, &d, NULL), 0);
    assert_int_equal(vmdkit_pzero(d, 2 * GRAIN_BYTES, 20 * GRAIN_BYTES), 0);
    assert_int_equal(vmdkit_close(d, NULL), 0);
    expect_clean(p);
    /* zeroing stored grains leaves their space behind, unreferenced */
    assert_int_equal(vmdkit_open(p, VMDKIT_OPEN_RDWR, &d, NULL), 0);
    assert_int_equal(vmdkit_pzero(d, 2 * GRAIN_BYTES, GRAIN_BYTES), 0);
    assert_int_equal(vmdkit_close(d, NULL), 0);
    expect_counts(p, 0, 2, 0);
    expect_data(p, 0, GRAIN_BYTES, 2);
    expect_zeros(p, GRAIN_BYTES, 2 * GRAIN_BYTES);
}

static void test_clean_other_types(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "clean-2g.vmdk");
    create(p, VMDKIT_TWOGB_SPARSE, 3 * GiB, NULL);
    fill(p, 5 * GiB / 2, 3 * GRAIN_BYTES, 3);
    expect_clean(p);
    mkpath(p, sizeof p, "clean-flat.vmdk");
    create(p, VMDKIT_MONOLITHIC_FLAT, 10 * MiB, NULL);
    fill(p, MiB, 4096, 3);
    expect_clean(p);
    mkpath(p, sizeof p, "clean-2gflat.vmdk");
    create(p, VMDKIT_TWOGB_FLAT, 3 * GiB, NULL);
    expect_clean(p);
    mkpath(p, sizeof p, "clean-vmfs.vmdk");
    create(p, VMDKIT_VMFS, 10 * MiB, NULL);
    expect_clean(p);
    mkpath(p, sizeof p, "clean-stream-empty.vmdk");
    create(p, VMDKIT_STREAM_OPTIMIZED, 10 * MiB, NULL);
    expect_clean(p);
}

/* A streamOptimized copy of a sparse disk holding data. */
static void stream_disk(const char *path)
{
    char src[512];
    snprintf(src, sizeof src, "%s.src.vmdk", path);
    create(src, VMDKIT_MONOLITHIC_SPARSE, 40 * MiB, NULL);
    fill(src, 0, 3 * GRAIN_BYTES, 4);
    fill(src, 600 * (uint64_t)GRAIN_BYTES, GRAIN_BYTES, 4);
    vmdkit_disk *d;
    assert_int_equal(vmdkit_open(src, VMDKIT_OPEN_RDONLY, &d, NULL), 0);
    vmdkit_convert_opts o = {.struct_size = sizeof o,
                             .vmdk = &(vmdkit_create_opts){.struct_size = sizeof(vmdkit_create_opts),
                                                           .type = VMDKIT_STREAM_OPTIMIZED},
                             .threads = 1};
    vmdkit_error err;
    if (vmdkit_convert(d, path, &o, &err))
        fail_msg("convert: %s", err.msg);
    vmdkit_close(d, NULL);
    unlink(src);
}

static void test_clean_stream(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "clean-stream.vmdk");
    stream_disk(p);
    expect_clean(p);
    expect_data(p, 0, 3 * GRAIN_BYTES, 4);
}

static void test_clean_chain(void **state)
{
    (void)state;
    char base[512], child[512];
    mkpath(base, sizeof base, "chain-base.vmdk");
    mkpath(child, sizeof child, "chain-child.vmdk");
    create(base, VMDKIT_MONOLITHIC_SPARSE, 10 * MiB, NULL);
    fill(base, 0, GRAIN_BYTES, 5);
    create(child, VMDKIT_MONOLITHIC_SPARSE, 10 * MiB, base);
    fill(child, 4096, 512, 6);
    expect_clean(child);
}

/* ---- directories and tables ---- */

static void test_gd_entry_differs(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "gd.vmdk");
    sparse_disk(p);
    kdmv k = layout(p);
    put32(p, gde_off(&k, false, 1), 0x00ffffffu); /* past the end of the file */

    size_t before_len, after_len;
    uint8_t *before = slurp(p, &before_len);
    expect_counts(p, 1, 0, 0);
    uint8_t *after = slurp(p, &after_len);
    assert_int_equal(before_len, after_len); /* a check alone writes nothing */
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);

    repair_all(p, bak, sizeof bak);
    assert_int_equal(get32(p, gde_off(&k, false, 1)), k.gd + 1 + 4); /* back where the layout keeps it */
    uint8_t old[4];
    vk_put32(old, 0x00ffffffu);
    expect_backup_region(bak, p, gde_off(&k, false, 1), old, 4);
    expect_sparse_data(p);

    /* two directory entries naming the same table: the one off the layout is wrong */
    put32(p, gde_off(&k, false, 2), get32(p, gde_off(&k, false, 1)));
    expect_counts(p, 1, 0, 0);
    repair_all(p, bak, sizeof bak);
    expect_sparse_data(p);

    /* the primary entry pointing at the redundant table: the layout decides */
    put32(p, gde_off(&k, false, 2), get32(p, gde_off(&k, true, 2)));
    expect_counts(p, 1, 0, 0);
    repair_all(p, bak, sizeof bak);
    expect_sparse_data(p);
}

/* Move every table of a monolithicSparse file to the end of the file, one
 * per grain, as writers that allocate tables on demand place them. */
static void move_tables_to_end(const char *path)
{
    kdmv k = layout(path);
    uint8_t gt[2048];
    for (int red = 0; red < 2; red++) {
        for (uint64_t i = 0; i < 4; i++) {
            uint32_t at = get32(path, gde_off(&k, red, i));
            read_at(path, (uint64_t)at * 512, gt, sizeof gt);
            uint64_t end = (file_size(path) + GRAIN_BYTES - 1) / GRAIN_BYTES * GRAIN_BYTES;
            write_at(path, end, gt, sizeof gt);
            put32(path, gde_off(&k, red, i), (uint32_t)(end / 512));
        }
    }
}

static void test_gd_entry_new_table(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "gd-append.vmdk");
    sparse_disk(p);
    move_tables_to_end(p);
    expect_clean(p);
    expect_sparse_data(p);
    kdmv k = layout(p);
    uint64_t size = file_size(p);
    uint32_t old = get32(p, gde_off(&k, false, 1));
    put32(p, gde_off(&k, false, 1), 0x00ffffffu);
    expect_counts(p, 1, 1, 0); /* the table nothing points at any more is leaked */
    /* no layout to restore: the table is written anew at the end */
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(p, VMDKIT_CHECK_REPAIR, &res, &fs), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.corruptions_fixed, 1);
    assert_int_equal(res.leaks, 1); /* where the old table was */
    assert_true(file_size(p) > size);
    uint32_t now = get32(p, gde_off(&k, false, 1));
    assert_int_not_equal(now, old);
    assert_true((uint64_t)now * 512 >= size);
    snprintf(bak, sizeof bak, "%s", res.backup_path);
    uint8_t was[4];
    vk_put32(was, 0x00ffffffu);
    expect_backup_region(bak, p, gde_off(&k, false, 1), was, 4);
    expect_counts(p, 0, 1, 0);
    expect_sparse_data(p);
}

static void test_gt_differs(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "gt.vmdk");
    sparse_disk(p);
    /* the primary table lists grain 0's sector for grain 5 too: it is wrong */
    uint32_t g0 = get_gte(p, 0);
    set_gte(p, 5, g0, false);
    expect_counts(p, 1, 0, 0);
    repair_all(p, bak, sizeof bak);
    assert_int_equal(get_gte(p, 5), 0);
    expect_sparse_data(p);
    expect_zeros(p, 5 * GRAIN_BYTES, GRAIN_BYTES);
}

static void test_gt_differs_both_plausible(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "gt-plausible.vmdk");
    sparse_disk(p);
    uint32_t end = (uint32_t)(file_size(p) / 512);
    append_bytes(p, GRAIN_BYTES, 0x5a);
    set_gte(p, 7, end, false); /* a grain only the primary table knows */
    expect_counts(p, 1, 0, 0);
    repair_none(p, 1, 0);
    expect_counts(p, 1, 0, 0);
}

static void test_stale_after_unclean(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "stale.vmdk");
    sparse_disk(p);
    uint32_t end = (uint32_t)(file_size(p) / 512);
    append_bytes(p, GRAIN_BYTES, 0x5a);
    set_gte(p, 7, end, false);
    uint8_t one = 1;
    write_at(p, 72, &one, 1); /* the writer died between the two table writes */
    expect_counts(p, 0, 0, 1);
    repair_all(p, bak, sizeof bak);
    uint8_t flag;
    read_at(p, 72, &flag, 1);
    assert_int_equal(flag, 0);
    expect_backup_region(bak, p, 72, &one, 1);
    kdmv k = layout(p);
    assert_int_equal(get32(p, gte_off(p, &k, true, 7)), end);
    expect_sparse_data(p);
}

static void test_gte_past_eof(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "gte-eof.vmdk");
    sparse_disk(p);
    set_gte(p, 9, 0x00ffffffu, true);
    expect_counts(p, 1, 0, 0);
    repair_none(p, 1, 0);
}

static void test_gte_into_metadata(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "gte-meta.vmdk");
    sparse_disk(p);
    kdmv k = layout(p);
    set_gte(p, 9, (uint32_t)k.gd, true);
    expect_counts(p, 1, 0, 0);
    repair_none(p, 1, 0);
}

static void test_grain_used_twice(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "twice.vmdk");
    sparse_disk(p);
    set_gte(p, 9, get_gte(p, 0), true); /* same table */
    expect_counts(p, 1, 0, 0);
    repair_none(p, 1, 0);

    mkpath(p, sizeof p, "twice2.vmdk");
    sparse_disk(p);
    set_gte(p, 700, get_gte(p, 0), true); /* another table */
    expect_counts(p, 1, 0, 0);
}

/* ---- leaks ---- */

static void test_leak_at_tail(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "leak-tail.vmdk");
    sparse_disk(p);
    uint64_t size = file_size(p);
    append_bytes(p, GRAIN_BYTES, 0xaa);
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(p, 0, &res, &fs), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 1);
    assert_int_equal(res.leaked_bytes, GRAIN_BYTES);
    assert_int_equal(fs.n[VMDKIT_FIND_LEAK], 1);

    /* a trailing partial grain counts as a leak too */
    append_bytes(p, 4096, 0xbb);
    assert_int_equal(check(p, 0, &res, &fs), 0);
    assert_int_equal(res.leaks, 2);
    assert_int_equal(res.leaked_bytes, GRAIN_BYTES + 4096);

    repair_all(p, bak, sizeof bak);
    assert_int_equal(file_size(p), size);
    uint8_t old[GRAIN_BYTES];
    memset(old, 0xaa, sizeof old);
    expect_backup_region(bak, p, size, old, sizeof old);
    expect_sparse_data(p);
}

/* More than 1 GiB of leaked space at the end is reported but not cut (the
 * rule of check_space.c, which the stream checks apply too).  The tail is a
 * hole: nothing of it is written. */
static void tail_over_limit(const char *p)
{
    uint64_t size = file_size(p);
    assert_int_equal(truncate(p, (off_t)(size + GiB + GRAIN_BYTES)), 0);
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(p, VMDKIT_CHECK_REPAIR, &res, &fs), 0);
    assert_true(res.leaks > 0);
    assert_int_equal(res.repaired, 0);
    assert_int_equal(res.unrepaired, 1);
    assert_int_equal(fs.n[VMDKIT_FIND_UNREPAIRED], 1);
    assert_non_null(strstr(fs.first[VMDKIT_FIND_UNREPAIRED], "larger than the 1 GiB the repair cuts"));
    assert_int_equal(res.backup_path[0], 0);
    assert_int_equal(file_size(p), size + GiB + GRAIN_BYTES);
}

static void test_leak_at_tail_over_limit(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "leak-tail-big.vmdk");
    sparse_disk(p);
    tail_over_limit(p);
    expect_sparse_data(p);
}

static void test_leak_in_middle(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "leak-mid.vmdk");
    sparse_disk(p);
    set_gte(p, 1, 0, true); /* grain 1's data stays in the file, unreferenced */
    expect_counts(p, 0, 1, 0);
    repair_none(p, 0, 1);
}

/* ---- flags, descriptors, files ---- */

static void test_unclean_flag(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "unclean.vmdk");
    sparse_disk(p);
    uint8_t one = 1;
    write_at(p, 72, &one, 1);
    vmdkit_check_result res;
    findings fs;
    assert_int_equal(check(p, 0, &res, &fs), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    assert_true(res.unclean_shutdown);
    assert_int_equal(fs.n[VMDKIT_FIND_INFO], 1);
    repair_all(p, bak, sizeof bak);
    uint8_t flag;
    read_at(p, 72, &flag, 1);
    assert_int_equal(flag, 0);
}

static void test_split_size_wrong(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "split.vmdk");
    /* two pieces of 4064 MiB at most: the data lies in the second */
    create(p, VMDKIT_TWOGB_SPARSE, 5 * GiB, NULL);
    fill(p, 9 * GiB / 2, 2 * GRAIN_BYTES, 7);
    size_t len;
    uint8_t *old = slurp(p, &len);
    edit_text(p, "RW 8323072 SPARSE", "RW 8322816 SPARSE");
    expect_counts(p, 1, 0, 0);
    repair_all(p, bak, sizeof bak);
    size_t n;
    uint8_t *now = slurp(p, &n);
    assert_int_equal(n, len);
    assert_memory_equal(now, old, len); /* the very same text as before the damage */
    free(now);
    free(old);
    expect_data(p, 9 * GiB / 2, 2 * GRAIN_BYTES, 7);
}

static void test_embedded_size_wrong(void **state)
{
    (void)state;
    char p[512], bak[4096];
    mkpath(p, sizeof p, "embedded.vmdk");
    sparse_disk(p);
    uint64_t desc = get64(p, 28) * 512;
    /* the line claims more than the header holds: readers refuse the disk */
    char text[20 * 512 + 1];
    read_at(p, desc, text, 20 * 512);
    text[20 * 512] = 0;
    char *line = strstr(text, "RW 204800 SPARSE");
    assert_non_null(line);
    memcpy(line, "RW 209800 SPARSE", 16);
    write_at(p, desc, text, 20 * 512);
    expect_counts(p, 1, 0, 0);
    repair_all(p, bak, sizeof bak);
    read_at(p, desc, text, 20 * 512);
    assert_non_null(strstr(text, "RW 204800 SPARSE"));
    expect_sparse_data(p);
}

static void test_flat_too_short(void **state)
{
    (void)state;
    char p[512], flat[512];
    mkpath(p, sizeof p, "short.vmdk");
    mkpath(flat, sizeof flat, "short-flat.vmdk");
    create(p, VMDKIT_MONOLITHIC_FLAT, 10 * MiB, NULL);
    assert_int_equal(truncate(flat, 5 * MiB), 0);
    expect_counts(p, 1, 0, 0);
    repair_none(p, 1, 0);
}

static void test_missing_extent_and_createtype(void **state)
{
    (void)state;
    char p[512], piece[512];
    mkpath(p, sizeof p, "missing.vmdk");
    mkpath(piece, sizeof piece, "missing-f001.vmdk");
    create(p, VMDKIT_TWOGB_FLAT, 10 * MiB, NULL);
    assert_int_equal(unlink(piece), 0);
    expect_counts(p, 1, 0, 0);

    mkpath(p, sizeof p, "ctype.vmdk");
    create(p, VMDKIT_MONOLITHIC_FLAT, 10 * MiB, NULL);
    edit_text(p, "createType=\"monolithicFlat\"", "createType=\"monolithicSparse\"");
    expect_counts(p, 1, 0, 0);
}

/* ---- streams ---- */

static void test_stream_damage(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "stream-lba.vmdk");
    stream_disk(p);
    uint64_t first = get64(p, 64) * 512; /* the first grain record */
    uint64_t lba = get64(p, first);
    assert_int_equal(lba, 0);
    uint8_t b[8];
    vk_put64(b, 128); /* claims to be grain 1 */
    write_at(p, first, b, 8);
    expect_counts(p, 1, 0, 0);

    mkpath(p, sizeof p, "stream-size.vmdk");
    stream_disk(p);
    put32(p, first + 8, 0x7fffffffu);
    expect_counts(p, 1, 0, 0);

    mkpath(p, sizeof p, "stream-inflate.vmdk");
    stream_disk(p);
    uint32_t csize = get32(p, first + 8);
    put32(p, first + 8, csize - 4); /* the zlib stream is cut */
    expect_counts(p, 1, 0, 0);

    mkpath(p, sizeof p, "stream-footer.vmdk");
    stream_disk(p);
    uint64_t footer = file_size(p) - 1024;
    assert_int_equal(get32(p, footer), 0x564d444bu);
    put32(p, footer + 48, 12345); /* rgdOffset differs from the header */
    expect_counts(p, 1, 0, 0);
}

/* ---- chains ---- */

static void test_chain_cid_mismatch(void **state)
{
    (void)state;
    char base[512], child[512];
    mkpath(base, sizeof base, "cid-base.vmdk");
    mkpath(child, sizeof child, "cid-child.vmdk");
    create(base, VMDKIT_MONOLITHIC_SPARSE, 10 * MiB, NULL);
    create(child, VMDKIT_MONOLITHIC_SPARSE, 10 * MiB, base);
    fill(base, 0, 512, 8); /* the parent changes: its CID too */
    expect_counts(child, 1, 0, 0);
    repair_none(child, 1, 0);
}

/* ---- odd inputs ---- */

static void test_not_a_disk(void **state)
{
    (void)state;
    char p[512];
    mkpath(p, sizeof p, "junk.vmdk");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs("this is not a disk\n", f);
    fclose(f);
    expect_counts(p, 1, 0, 0);

    vmdkit_check_result res;
    vmdkit_error err;
    mkpath(p, sizeof p, "absent.vmdk");
    assert_int_equal(vmdkit_check(p,
                                  &(vmdkit_check_opts){.struct_size = sizeof(vmdkit_check_opts),
                                                       .flags = 0,
                                                       .on_finding = NULL,
                                                       .finding_opaque = NULL},
                                  &res, &err),
                     VMDKIT_ENOENT);
    assert_int_equal(vmdkit_check(p,
                                  &(vmdkit_check_opts){.struct_size = sizeof(vmdkit_check_opts),
                                                       .flags = 0,
                                                       .on_finding = NULL,
                                                       .finding_opaque = NULL},
                                  NULL, &err),
                     VMDKIT_EINVAL);
}

static void test_cowd(void **state)
{
    (void)state;
    /* header (4 sectors), directory at sector 4, one table at 5 (32
     * sectors), one grain of 1 sector at 37 */
    char p[512];
    mkpath(p, sizeof p, "redo-delta.vmdk");
    uint8_t img[38 * 512] = {0};
    vk_put32(img + 0, 0x44574f43u);
    vk_put32(img + 4, 1);
    vk_put32(img + 8, 3);
    vk_put32(img + 12, 8192);
    vk_put32(img + 16, 1);
    vk_put32(img + 20, 4);
    vk_put32(img + 24, 2);
    vk_put32(img + 28, 38);
    vk_put32(img + 4 * 512, 5);
    vk_put32(img + 5 * 512 + 4 * 10, 37);
    memset(img + 37 * 512, 0x77, 512);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(img, 1, sizeof img, f), sizeof img);
    fclose(f);
    expect_clean(p);
    put32(p, 5 * 512 + 4 * 11, 5000);
    expect_counts(p, 1, 0, 0);
}

static void test_vmware_lock(void **state)
{
    (void)state;
    char p[512], lck[600];
    mkpath(p, sizeof p, "locked.vmdk");
    sparse_disk(p);
    snprintf(lck, sizeof lck, "%s.lck", p);
    assert_int_equal(mkdir(lck, 0755), 0);
    vmdkit_check_result res;
    vmdkit_error err;
    assert_int_equal(vmdkit_check(p,
                                  &(vmdkit_check_opts){.struct_size = sizeof(vmdkit_check_opts),
                                                       .flags = VMDKIT_CHECK_REPAIR,
                                                       .on_finding = NULL,
                                                       .finding_opaque = NULL},
                                  &res, &err),
                     VMDKIT_ELOCKED);
    expect_clean(p); /* a check alone is fine */
    rmdir(lck);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_sparse),        cmocka_unit_test(test_clean_other_types),
        cmocka_unit_test(test_clean_stream),        cmocka_unit_test(test_clean_chain),
        cmocka_unit_test(test_gd_entry_differs),    cmocka_unit_test(test_gd_entry_new_table),
        cmocka_unit_test(test_gt_differs),          cmocka_unit_test(test_gt_differs_both_plausible),
        cmocka_unit_test(test_stale_after_unclean), cmocka_unit_test(test_gte_past_eof),
        cmocka_unit_test(test_gte_into_metadata),   cmocka_unit_test(test_grain_used_twice),
        cmocka_unit_test(test_leak_at_tail),        cmocka_unit_test(test_leak_at_tail_over_limit),
        cmocka_unit_test(test_leak_in_middle),      cmocka_unit_test(test_unclean_flag),
        cmocka_unit_test(test_split_size_wrong),    cmocka_unit_test(test_embedded_size_wrong),
        cmocka_unit_test(test_flat_too_short),      cmocka_unit_test(test_missing_extent_and_createtype),
        cmocka_unit_test(test_stream_damage),       cmocka_unit_test(test_chain_cid_mismatch),
        cmocka_unit_test(test_not_a_disk),          cmocka_unit_test(test_cowd),
        cmocka_unit_test(test_vmware_lock),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
