/* test_parallel_read.c - several threads reading one disk at once: a chain
 * (a sparse base and a delta over it, with copy-on-write of partial grains
 * and zeroed ranges), a streamOptimized disk made from that chain (larger
 * than its grain cache, so grains are evicted while others read them), and
 * the delta opened read-write with tables changed in memory only, and a
 * 258 GiB disk with more grain tables than its table cache holds, read
 * where two tables share a cache slot.  Eight threads read random ranges
 * (unaligned, tiny to 1 MiB) with vmdkit_pread_r, mixed with
 * vmdkit_block_status_r and vmdkit_prefetch; every byte is compared with
 * the content the disk was given. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmdkit.h"

#include "test_base.h"

#define DISK_BYTES (40u << 20) /* more than a stream extent's 16 MiB grain cache */
#define N_THREADS 8
#define READS_PER_THREAD 160
#define MAX_READ (1u << 20)

static uint8_t *expected; /* DISK_BYTES: what every disk below must read */

/* Byte OFF of the data written in pass SEED: hard to produce by mistake
 * from any other offset or pass. */
static uint8_t pattern(uint64_t off, unsigned seed)
{
    uint64_t v = (off + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 56);
    return (uint8_t)(v >> 29 ^ v >> 47);
}

/* Write LEN bytes of pass SEED at OFF into D and into the expected content. */
static void put(vmdkit_disk *d, uint64_t off, size_t len, unsigned seed)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(off + i, seed);
    assert_int_equal(vmdkit_pwrite(d, buf, len, off), 0);
    memcpy(expected + off, buf, len);
    free(buf);
}

static void zero(vmdkit_disk *d, uint64_t off, size_t len)
{
    assert_int_equal(vmdkit_pzero(d, len, off), 0);
    memset(expected + off, 0, len);
}

static int setup(void **state)
{
    (void)state;
    if (base_make("parallel"))
        return -1;
    expected = calloc(1, DISK_BYTES);
    if (!expected)
        return -1;
    vmdkit_error err = {0};
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = DISK_BYTES};
    if (vmdkit_create(at("base.vmdk"), &co, &err) < 0)
        return -1;
    vmdkit_disk *d;
    if (vmdkit_open(at("base.vmdk"), VMDKIT_OPEN_RDWR, &d, &err) < 0)
        return -1;
    /* base: data in most of the disk, with holes between the runs */
    for (uint64_t off = 0; off + (3u << 20) <= DISK_BYTES; off += 3u << 20)
        put(d, off + 4096 * (off >> 20 & 7), (2u << 20) + 777, 1);
    if (vmdkit_close(d, &err) < 0)
        return -1;
    if (vmdkit_create_delta(at("base.vmdk"), at("delta.vmdk"), 0, &err) < 0)
        return -1;
    if (vmdkit_open(at("delta.vmdk"), VMDKIT_OPEN_RDWR, &d, &err) < 0)
        return -1;
    /* delta: partial grains over the parent's data (copy-on-write), whole
     * new grains in holes, zeroed ranges hiding the parent */
    for (uint64_t off = 1u << 20; off + (5u << 20) <= DISK_BYTES; off += 5u << 20) {
        put(d, off + 1000, 70000, 2);
        put(d, off + (2u << 20) + 65536, 3 * 65536, 3);
        zero(d, off + (1u << 20) + 512, 200000);
    }
    if (vmdkit_close(d, &err) < 0)
        return -1;
    /* the same content as a streamOptimized disk */
    vmdkit_disk *src;
    if (vmdkit_open(at("delta.vmdk"), VMDKIT_OPEN_RDONLY, &src, &err) < 0)
        return -1;
    vmdkit_convert_opts cv = {.struct_size = sizeof cv,
                              .vmdk = &(vmdkit_create_opts){.struct_size = sizeof(vmdkit_create_opts),
                                                            .type = VMDKIT_STREAM_OPTIMIZED},
                              .threads = 2};
    int r = vmdkit_convert(src, at("stream.vmdk"), &cv, &err);
    vmdkit_close(src, NULL);
    return r < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"base.vmdk", "delta.vmdk", "stream.vmdk"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(at(names[i]));
    rmdir(base);
    free(expected);
    return 0;
}

/* What a disk must read: the expected bytes of [OFF, OFF + LEN) into OUT,
 * and where reads go (a random range of at most MAX bytes). */
typedef struct content {
    uint64_t size;
    unsigned reads; /* per thread */
    void (*expect)(uint64_t off, size_t len, uint8_t *out);
    void (*pick)(uint64_t *s, uint64_t *off, size_t *len);
} content;

typedef struct reader {
    vmdkit_disk *disk;
    const content *c;
    unsigned seed;
    uint64_t bytes_checked;
    unsigned mismatches;    /* reads whose content differed */
    unsigned errors;        /* calls that failed */
    uint64_t first_bad_off; /* offset of the first wrong byte */
    char first_error[VMDKIT_ERRMSG_MAX];
} reader;

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Four times LEN, at most MAX. */
static uint64_t vk_min4(size_t len, uint64_t max)
{
    return 4 * (uint64_t)len < max ? 4 * (uint64_t)len : max;
}

static void note_error(reader *rd, const vmdkit_error *err)
{
    if (rd->errors++ == 0)
        snprintf(rd->first_error, sizeof rd->first_error, "%s", err->msg);
}

/* One thread: random reads checked byte by byte, with block status and
 * prefetch calls in between (their results are checked too: a run the
 * disk calls zero must read as zeros). */
static void *read_randomly(void *arg)
{
    reader *rd = arg;
    uint64_t s = 0x243F6A8885A308D3ull * (rd->seed + 1);
    uint8_t *buf = malloc(MAX_READ), *want = malloc(MAX_READ);
    if (!buf || !want) {
        rd->errors++;
        free(buf);
        free(want);
        return NULL;
    }
    uint64_t size = rd->c->size;
    for (unsigned i = 0; i < rd->c->reads; i++) {
        uint64_t off;
        size_t len;
        rd->c->pick(&s, &off, &len);
        vmdkit_error err = {0};
        if (vmdkit_pread_r(rd->disk, buf, len, off, &err) < 0) {
            note_error(rd, &err);
            continue;
        }
        rd->c->expect(off, len, want);
        if (memcmp(buf, want, len) != 0) {
            size_t k = 0;
            while (buf[k] == want[k])
                k++;
            if (rd->mismatches++ == 0)
                rd->first_bad_off = off + k;
        }
        rd->bytes_checked += len;
        if (i % 8 == 1) {
            vmdkit_block_status st;
            if (vmdkit_block_status_r(rd->disk, len, off, &st, &err) < 0) {
                note_error(rd, &err);
            } else if (st.alloc != VMDKIT_ALLOC_DATA) {
                for (uint64_t k = 0; k < st.length && k < len; k++)
                    if (want[k]) {
                        if (rd->mismatches++ == 0)
                            rd->first_bad_off = off + k;
                        break;
                    }
            }
        } else if (i % 8 == 5 && vmdkit_prefetch(rd->disk, vk_min4(len, size - off), off, &err) < 0) {
            note_error(rd, &err);
        }
    }
    free(buf);
    free(want);
    return NULL;
}

/* N_THREADS readers on D at once; every byte they read must be right. */
static void read_in_parallel(vmdkit_disk *d, const content *c, const char *what)
{
    reader rd[N_THREADS];
    pthread_t tid[N_THREADS];
    for (unsigned t = 0; t < N_THREADS; t++) {
        rd[t] = (reader){.disk = d, .c = c, .seed = t};
        assert_int_equal(pthread_create(&tid[t], NULL, read_randomly, &rd[t]), 0);
    }
    uint64_t checked = 0;
    unsigned bad = 0, errors = 0;
    for (unsigned t = 0; t < N_THREADS; t++) {
        pthread_join(tid[t], NULL);
        checked += rd[t].bytes_checked;
        bad += rd[t].mismatches;
        errors += rd[t].errors;
        if (rd[t].mismatches)
            print_error("%s: thread %u: wrong byte at offset %llu\n", what, t,
                        (unsigned long long)rd[t].first_bad_off);
        if (rd[t].errors)
            print_error("%s: thread %u: %s\n", what, t, rd[t].first_error);
    }
    print_message("%s: %u threads read and checked %llu MiB\n", what, N_THREADS,
                  (unsigned long long)(checked >> 20));
    assert_int_equal(errors, 0);
    assert_int_equal(bad, 0);
    assert_true(checked >= (uint64_t)N_THREADS * c->reads);
}

/* The small disks: their content is the expected buffer. */
static void expect_buffer(uint64_t off, size_t len, uint8_t *out) { memcpy(out, expected + off, len); }

static void pick_anywhere(uint64_t *s, uint64_t *off, size_t *len)
{
    uint64_t v = next_random(s);
    *len = v % 4 == 0 ? 1 + v % 700 : 1 + (size_t)(next_random(s) % MAX_READ);
    *off = next_random(s) % (DISK_BYTES - *len + 1);
}

static const content small_disk = {DISK_BYTES, READS_PER_THREAD, expect_buffer, pick_anywhere};

static void open_and_read(const char *name, unsigned flags, const content *c)
{
    vmdkit_disk *d;
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_open(at(name), flags, &d, &err), 0);
    assert_int_equal(vmdkit_size(d), c->size);
    read_in_parallel(d, c, name);
    assert_int_equal(vmdkit_close(d, &err), 0);
}

static void test_chain(void **state)
{
    (void)state;
    open_and_read("delta.vmdk", VMDKIT_OPEN_RDONLY, &small_disk);
}

static void test_stream(void **state)
{
    (void)state;
    open_and_read("stream.vmdk", VMDKIT_OPEN_RDONLY, &small_disk);
}

/* A writable handle whose delta holds changes not yet flushed: reads
 * beside each other see them (nothing writes while they run). */
static void test_writable_unflushed(void **state)
{
    (void)state;
    vmdkit_disk *d;
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_open(at("delta.vmdk"), VMDKIT_OPEN_RDWR, &d, &err), 0);
    put(d, 12345, 300000, 4);
    put(d, DISK_BYTES - 65536 - 100, 65536, 5);
    zero(d, 7u << 20, 1u << 20);
    read_in_parallel(d, &small_disk, "delta.vmdk read-write");
    assert_int_equal(vmdkit_close(d, &err), 0);
    open_and_read("delta.vmdk", VMDKIT_OPEN_RDONLY, &small_disk);
}

/*
 * A disk with more grain tables than the table cache holds (16 MiB of
 * 2 KiB tables: 8192 slots, each table mapping 32 MiB): data in tables T
 * and T + 8192, which share a slot, so readers keep evicting the table
 * another reader is using.
 */
#define TABLE_BYTES (32ull << 20)
#define CACHE_TABLES 8192ull
#define BIG_BYTES ((CACHE_TABLES + 64) * TABLE_BYTES)
#define N_PAIRS 3
#define PIECE 100000u

/* Piece K (0 <= K < 2 * N_PAIRS) of the big disk: its offset. */
static uint64_t piece_off(unsigned k)
{
    uint64_t table = (k / 2) * 3 + (k % 2) * CACHE_TABLES;
    return table * TABLE_BYTES + 4096 * (k + 1) + k;
}

static void expect_pieces(uint64_t off, size_t len, uint8_t *out)
{
    memset(out, 0, len);
    for (unsigned k = 0; k < 2 * N_PAIRS; k++) {
        uint64_t a = piece_off(k), b = a + PIECE;
        uint64_t lo = off > a ? off : a, hi = off + len < b ? off + len : b;
        for (uint64_t o = lo; o < hi; o++)
            out[o - off] = pattern(o, 6);
    }
}

static void pick_near_pieces(uint64_t *s, uint64_t *off, size_t *len)
{
    /* short reads: many table lookups, each likely to evict the other table */
    unsigned k = (unsigned)(next_random(s) % (2 * N_PAIRS));
    *len = 1 + (size_t)(next_random(s) % 8192);
    *off = piece_off(k) - 4096 + next_random(s) % (PIECE + 4096);
}

static void test_table_cache_evictions(void **state)
{
    (void)state;
    vmdkit_error err = {0};
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = BIG_BYTES};
    assert_int_equal(vmdkit_create(at("big.vmdk"), &co, &err), 0);
    vmdkit_disk *d;
    assert_int_equal(vmdkit_open(at("big.vmdk"), VMDKIT_OPEN_RDWR, &d, &err), 0);
    uint8_t *buf = malloc(PIECE);
    assert_non_null(buf);
    for (unsigned k = 0; k < 2 * N_PAIRS; k++) {
        expect_pieces(piece_off(k), PIECE, buf);
        assert_int_equal(vmdkit_pwrite(d, buf, PIECE, piece_off(k)), 0);
    }
    free(buf);
    assert_int_equal(vmdkit_close(d, &err), 0);
    static const content big_disk = {BIG_BYTES, 5000, expect_pieces, pick_near_pieces};
    open_and_read("big.vmdk", VMDKIT_OPEN_RDONLY, &big_disk);
    unlink(at("big.vmdk"));
}

/* The errors of concurrent readers go to their own records, not the
 * handle's: a read past the end fails in the caller's record only. */
static void test_errors_are_the_callers(void **state)
{
    (void)state;
    vmdkit_disk *d;
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_open(at("stream.vmdk"), VMDKIT_OPEN_RDONLY, &d, &err), 0);
    uint8_t b[16];
    vmdkit_error mine = {0};
    assert_int_equal(vmdkit_pread_r(d, b, sizeof b, DISK_BYTES - 8, &mine), VMDKIT_EINVAL);
    assert_int_equal(mine.code, VMDKIT_EINVAL);
    assert_non_null(strstr(mine.msg, "outside the disk"));
    assert_int_equal(vmdkit_last_error(d)->code, 0);
    vmdkit_block_status st;
    assert_int_equal(vmdkit_block_status_r(d, 1, DISK_BYTES, &st, &mine), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_prefetch(d, 2, DISK_BYTES - 1, &mine), VMDKIT_EINVAL);
    assert_int_equal(vmdkit_last_error(d)->code, 0);
    assert_int_equal(vmdkit_pread_r(d, b, sizeof b, 0, NULL), 0); /* NULL: no record wanted */
    assert_int_equal(vmdkit_close(d, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_writable_unflushed),
        cmocka_unit_test(test_table_cache_evictions),
        cmocka_unit_test(test_errors_are_the_callers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
