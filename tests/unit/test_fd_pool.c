/* test_fd_pool.c - extent files through a tiny pool of descriptors
 * (VMDKIT_MAX_OPEN_EXTENTS=3) under a hard limit of 48 open files: a split
 * disk of 96 pieces and a split delta over it take random unaligned writes
 * across piece boundaries and read back every byte (one handle, and eight
 * threads reading the chain at once, so that files are closed and opened
 * again while other threads read); a flush reaches pieces the pool closed
 * after they were written (a process killed after it leaves every byte);
 * a piece replaced by another file after
 * the disk opened is refused, for reading and for writing, and the file
 * swapped in is never written. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmdkit.h"

#include "test_base.h"

#define PIECE_SECTORS 512u /* 256 KiB pieces */
#define N_PIECES 96u
#define DISK_BYTES ((uint64_t)N_PIECES * PIECE_SECTORS * 512)
#define N_THREADS 8

static uint8_t *expected; /* what the chain reads */

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint8_t pattern(uint64_t off, unsigned seed)
{
    uint64_t v = (off + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 56);
    return (uint8_t)(v >> 29 ^ v >> 47);
}

/* N random writes (1 byte to 600 KiB, so some span three pieces) into the
 * disk at PATH, flushed now and then, mirrored in EXPECTED. */
static void write_randomly(const char *path, unsigned n, unsigned seed)
{
    vmdkit_disk *d;
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDWR, &d, &err), 0);
    uint64_t s = 0x9E3779B97F4A7C15ull * seed;
    uint8_t *buf = malloc(600 << 10);
    assert_non_null(buf);
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = next_random(&s) % DISK_BYTES;
        size_t len = 1 + next_random(&s) % (i % 4 ? 70000 : 600 << 10);
        if (off + len > DISK_BYTES)
            len = (size_t)(DISK_BYTES - off);
        for (size_t k = 0; k < len; k++)
            buf[k] = pattern(off + k, seed + i);
        if (vmdkit_pwrite(d, buf, len, off) != 0)
            fail_msg("write %u: %s", i, vmdkit_last_error(d)->msg);
        memcpy(expected + off, buf, len);
        if (i % 50 == 49)
            assert_int_equal(vmdkit_flush(d), 0);
    }
    free(buf);
    assert_int_equal(vmdkit_close(d, &err), 0);
}

static void read_all(const char *path)
{
    vmdkit_disk *d;
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    uint8_t *buf = malloc(DISK_BYTES);
    assert_non_null(buf);
    if (vmdkit_pread(d, buf, DISK_BYTES, 0) != 0)
        fail_msg("read: %s", vmdkit_last_error(d)->msg);
    assert_memory_equal(buf, expected, DISK_BYTES);
    free(buf);
    assert_int_equal(vmdkit_close(d, &err), 0);
}

static int setup(void **state)
{
    (void)state;
    if (base_make("fdpool") || !(expected = calloc(1, DISK_BYTES)))
        return -1;
    vmdkit_error err = {0};
    vmdkit_create_opts co = {.struct_size = sizeof co,
                             .type = VMDKIT_TWOGB_SPARSE,
                             .size_bytes = DISK_BYTES,
                             .split_sectors = PIECE_SECTORS};
    return vmdkit_create(at("base.vmdk"), &co, &err) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    free(expected);
    return system(cmd) == 0 ? 0 : -1;
}

static void base_and_delta_random_io(void **state)
{
    (void)state;
    write_randomly(at("base.vmdk"), 400, 1);
    read_all(at("base.vmdk"));
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_create_delta(at("base.vmdk"), at("delta.vmdk"), 0, &err), 0);
    write_randomly(at("delta.vmdk"), 300, 1000);
    read_all(at("delta.vmdk"));
}

/* A flush makes every write durable, also those to pieces the pool closed
 * after writing them (their tables are written at the flush, through the
 * file opened again): a process that writes, flushes and dies without
 * closing leaves every byte on disk. */
static void flush_reaches_closed_pieces(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vmdkit_disk *d;
        vmdkit_error err = {0};
        if (vmdkit_open(at("delta.vmdk"), VMDKIT_OPEN_RDWR, &d, &err) != 0)
            _exit(2);
        uint8_t buf[4096];
        for (unsigned i = 0; i < N_PIECES; i++) {
            uint64_t off = (uint64_t)i * PIECE_SECTORS * 512 + 12345;
            for (size_t k = 0; k < sizeof buf; k++)
                buf[k] = pattern(off + k, 7777);
            if (vmdkit_pwrite(d, buf, sizeof buf, off) != 0)
                _exit(3);
        }
        _exit(vmdkit_flush(d) == 0 ? 0 : 4); /* no close: as if killed */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    for (unsigned i = 0; i < N_PIECES; i++) {
        uint64_t off = (uint64_t)i * PIECE_SECTORS * 512 + 12345;
        for (size_t k = 0; k < 4096; k++)
            expected[off + k] = pattern(off + k, 7777);
    }
    read_all(at("delta.vmdk"));
}

typedef struct reader {
    vmdkit_disk *d;
    unsigned seed, mismatches, errors;
    char first_error[VMDKIT_ERRMSG_MAX];
} reader;

static void *read_randomly(void *arg)
{
    reader *rd = arg;
    uint64_t s = 0x243F6A8885A308D3ull * (rd->seed + 1);
    uint8_t *buf = malloc(300 << 10);
    if (!buf) {
        rd->errors++;
        return NULL;
    }
    for (unsigned i = 0; i < 300; i++) {
        uint64_t off = next_random(&s) % DISK_BYTES;
        size_t len = 1 + next_random(&s) % (300 << 10);
        if (off + len > DISK_BYTES)
            len = (size_t)(DISK_BYTES - off);
        vmdkit_error err = {0};
        if (vmdkit_pread_r(rd->d, buf, len, off, &err) != 0) {
            if (rd->errors++ == 0)
                snprintf(rd->first_error, sizeof rd->first_error, "%s", err.msg);
        } else if (memcmp(buf, expected + off, len) != 0) {
            rd->mismatches++;
        }
    }
    free(buf);
    return NULL;
}

static void threads_read_the_chain(void **state)
{
    (void)state;
    vmdkit_disk *d;
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_open(at("delta.vmdk"), VMDKIT_OPEN_RDONLY, &d, &err), 0);
    reader rd[N_THREADS];
    pthread_t t[N_THREADS];
    for (unsigned i = 0; i < N_THREADS; i++) {
        rd[i] = (reader){.d = d, .seed = i};
        assert_int_equal(pthread_create(&t[i], NULL, read_randomly, &rd[i]), 0);
    }
    for (unsigned i = 0; i < N_THREADS; i++) {
        pthread_join(t[i], NULL);
        if (rd[i].errors)
            fail_msg("thread %u: %u errors, first: %s", i, rd[i].errors, rd[i].first_error);
        assert_int_equal(rd[i].mismatches, 0);
    }
    assert_int_equal(vmdkit_close(d, &err), 0);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*len + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* Replace piece 1 of the delta by a copy of piece 2 (a valid sparse
 * extent, another file) while the disk is open: its first I/O after that
 * (the pool has closed the piece, 95 others were opened after it) must
 * fail, naming the piece, and the copy must be unchanged. */
static void swapped_piece_refused(bool writable)
{
    vmdkit_disk *d;
    vmdkit_error err = {0};
    assert_int_equal(
        vmdkit_open(at("delta.vmdk"), writable ? VMDKIT_OPEN_RDWR : VMDKIT_OPEN_RDONLY, &d, &err), 0);
    char cmd[4096], p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s", at("delta-s001.vmdk"));
    snprintf(p2, sizeof p2, "%s", at("delta-s002.vmdk"));
    snprintf(cmd, sizeof cmd, "cp '%s' '%s.new' && mv '%s' '%s.old' && mv '%s.new' '%s'", p2, p1, p1, p1,
             p1, p1);
    assert_int_equal(system(cmd), 0);
    size_t before_len, after_len;
    uint8_t *before = slurp(at("delta-s001.vmdk"), &before_len);
    uint8_t buf[4096];
    int r;
    if (writable) {
        memset(buf, 0x5a, sizeof buf);
        r = vmdkit_pwrite(d, buf, sizeof buf, 8192);
        if (r == 0)
            r = vmdkit_flush(d);
    } else {
        r = vmdkit_pread(d, buf, sizeof buf, 8192);
    }
    assert_int_equal(r, VMDKIT_EPATH);
    const char *msg = vmdkit_last_error(d)->msg;
    if (!strstr(msg, "delta-s001.vmdk") || !strstr(msg, "replaced"))
        fail_msg("message: %s", msg);
    vmdkit_close(d, NULL);
    uint8_t *after = slurp(at("delta-s001.vmdk"), &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
    snprintf(cmd, sizeof cmd, "mv '%s.old' '%s'", p1, p1);
    assert_int_equal(system(cmd), 0);
}

static void swapped_piece_refused_for_reading(void **state)
{
    (void)state;
    swapped_piece_refused(false);
}

static void swapped_piece_refused_for_writing(void **state)
{
    (void)state;
    swapped_piece_refused(true);
}

int main(void)
{
    /* more pieces than descriptors: without the pool the disk cannot open */
    struct rlimit rl = {48, 48};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1;
    setenv("VMDKIT_MAX_OPEN_EXTENTS", "3", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base_and_delta_random_io),
        cmocka_unit_test(flush_reaches_closed_pieces),
        cmocka_unit_test(threads_read_the_chain),
        cmocka_unit_test(swapped_piece_refused_for_reading),
        cmocka_unit_test(swapped_piece_refused_for_writing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
