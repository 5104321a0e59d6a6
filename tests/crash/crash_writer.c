/*
 * crash_writer.c - seeded random writer and verifier for crash tests.
 *
 *   crash_writer write  DISK JOURNAL SEED [-n OPS] [-f MAXGAP] [-z] [-b SEED:OPS] [-w OFF:LEN ...]
 *   crash_writer verify DISK JOURNAL SEED [same options]
 *
 * "write" opens DISK read-write and runs OPS operations (default: until
 * killed) inside the windows: writes of every shape (sub-sector, unaligned,
 * grain-crossing, whole grains, runs across the middle of a window) and,
 * with -z, zeroing.  Every byte an operation writes is a function of (SEED,
 * operation index, disk offset), so the content is reproducible.  Before
 * operation N it appends "op N" to JOURNAL; it flushes after every 1..MAXGAP
 * operations and, once vmdkit_flush returned, appends "flushed N" (N
 * operations are durable) and fsyncs the journal.  After the last operation
 * it closes the disk and appends "closed N".
 *
 * "verify" replays the same operations in memory: every byte must hold the
 * value of the last durable operation that wrote it, or the value of an
 * operation started after that flush (those may or may not have landed).
 * Bytes next to the windows must read as zeros.  It also walks the block
 * status of every window.  -b SEED:OPS says the disk started with the
 * content that OPS operations of SEED write (a parent filled beforehand).
 * With -r, verify reads DISK as a raw image (another tool's conversion).
 *
 * Exit status: 0 success, 1 verification failed, 2 usage, 3 a library call
 * failed (its message names the file).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmdkit.h"

#define MAX_WINDOWS 8
#define GRAIN (64u * 1024u) /* the default grain: shapes are built around it */
#define READ_CHUNK (1u << 20)

struct window {
    uint64_t off, len;
    uint8_t *shadow; /* verify: expected content after the durable prefix */
};

struct config {
    const char *disk, *journal;
    uint64_t seed;
    uint64_t n_ops;   /* 0: until killed */
    unsigned max_gap; /* flush after 1..max_gap operations */
    bool zero_ops;
    bool raw;                     /* verify: DISK is a raw image (made by another tool) */
    uint64_t base_seed, base_ops; /* -b: content underneath before the first operation */
    struct window win[MAX_WINDOWS];
    int n_win;
};

struct op {
    uint64_t off, len;
    bool zero;
};

/* ---- deterministic numbers ---- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t below(uint64_t *state, uint64_t n)
{
    *state = mix64(*state);
    return n ? *state % n : 0;
}

/* Byte written by operation I at disk offset O. */
static uint8_t pattern_byte(uint64_t seed, uint64_t i, uint64_t o)
{
    uint64_t w = mix64(seed * 0x100000001b3ull ^ mix64(i + 1) ^ (o >> 3) * 0xd6e8feb86659fd93ull);
    return (uint8_t)(w >> (8 * (o & 7)));
}

static void fill_pattern(uint64_t seed, uint64_t i, uint64_t off, uint8_t *buf, size_t len)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = pattern_byte(seed, i, off + k);
}

/* Operation I: a function of (seed, i, windows) only. */
static struct op make_op(const struct config *c, uint64_t i)
{
    uint64_t st = mix64(c->seed ^ mix64(i * 2 + 1));
    uint64_t total = 0;
    for (int k = 0; k < c->n_win; k++)
        total += c->win[k].len;
    uint64_t pick = below(&st, total);
    const struct window *w = &c->win[0];
    for (int k = 0; k < c->n_win; k++) {
        if (pick < c->win[k].len) {
            w = &c->win[k];
            break;
        }
        pick -= c->win[k].len;
    }
    struct op op = {0};
    uint64_t kind = i % 5 == 3 ? 100 : below(&st, 100);
    if (kind < 40) { /* small, unaligned, often inside one sector */
        op.len = 1 + below(&st, 4096);
        op.off = w->off + below(&st, w->len);
    } else if (kind < 65) { /* up to three grains at any offset */
        op.len = 1 + below(&st, 3 * GRAIN);
        op.off = w->off + below(&st, w->len);
    } else if (kind < 80) { /* whole aligned grains */
        op.len = GRAIN * (1 + below(&st, 4));
        op.off = w->off + below(&st, w->len / GRAIN) * GRAIN;
    } else if (kind < 90) { /* one sector-aligned run */
        op.len = 512 * (1 + below(&st, 256));
        op.off = w->off + below(&st, w->len / 512) * 512;
    } else { /* across the middle of the window (a piece boundary) */
        uint64_t mid = w->off + w->len / 2;
        op.len = 2 + below(&st, 2 * GRAIN);
        uint64_t back = 1 + below(&st, op.len - 1);
        op.off = mid - w->off > back ? mid - back : w->off;
    }
    if (op.off < w->off)
        op.off = w->off;
    if (op.off + op.len > w->off + w->len)
        op.len = w->off + w->len - op.off;
    if (op.len == 0)
        op.len = 1, op.off = w->off;
    op.zero = c->zero_ops && below(&st, 10) == 0;
    return op;
}

/* ---- journal ---- */

static int journal_line(int fd, const char *what, uint64_t n, bool sync)
{
    char line[64];
    int len = snprintf(line, sizeof line, "%s %" PRIu64 "\n", what, n);
    if (write(fd, line, (size_t)len) != len) {
        fprintf(stderr, "crash_writer: journal: write: %s\n", strerror(errno));
        return -1;
    }
    if (sync && fsync(fd) != 0) {
        fprintf(stderr, "crash_writer: journal: fsync: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int lib_error(const char *call, vmdkit_disk *d, int e)
{
    const char *msg = d ? vmdkit_last_error(d)->msg : "";
    fprintf(stderr, "crash_writer: %s: %s (%s)\n", call, *msg ? msg : "failed", vmdkit_errcode_name(e));
    return 3;
}

/* ---- write mode ---- */

static int run_writer(const struct config *c)
{
    int jfd = open(c->journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (jfd < 0) {
        fprintf(stderr, "crash_writer: %s: %s\n", c->journal, strerror(errno));
        return 2;
    }
    vmdkit_error err;
    vmdkit_disk *d = NULL;
    int e = vmdkit_open(c->disk, VMDKIT_OPEN_RDWR, &d, &err);
    if (e < 0) {
        fprintf(stderr, "crash_writer: open: %s (%s)\n", err.msg, vmdkit_errcode_name(e));
        close(jfd);
        return 3;
    }
    uint8_t *buf = malloc(4 * GRAIN);
    int rc = buf ? 0 : 2;
    uint64_t fst = mix64(c->seed ^ 0xf1a5f1a5f1a5f1a5ull);
    uint64_t gap = 1 + below(&fst, c->max_gap);
    uint64_t i;
    for (i = 0; !rc && (c->n_ops == 0 || i < c->n_ops); i++) {
        struct op op = make_op(c, i);
        if (journal_line(jfd, "op", i, false)) {
            rc = 2;
            break;
        }
        if (op.zero) {
            e = vmdkit_pzero(d, (size_t)op.len, op.off);
        } else {
            fill_pattern(c->seed, i, op.off, buf, (size_t)op.len);
            e = vmdkit_pwrite(d, buf, (size_t)op.len, op.off);
        }
        if (e < 0) {
            rc = lib_error(op.zero ? "pzero" : "pwrite", d, e);
            break;
        }
        if (--gap == 0) {
            if ((e = vmdkit_flush(d)) < 0) {
                rc = lib_error("flush", d, e);
                break;
            }
            if (journal_line(jfd, "flushed", i + 1, true))
                rc = 2;
            gap = 1 + below(&fst, c->max_gap);
        }
    }
    free(buf);
    e = vmdkit_close(d, &err);
    if (e < 0) {
        fprintf(stderr, "crash_writer: close: %s (%s)\n", err.msg, vmdkit_errcode_name(e));
        if (!rc)
            rc = 3;
    } else if (!rc) {
        journal_line(jfd, "closed", i, true);
    }
    close(jfd);
    return rc;
}

/* ---- verify mode ---- */

struct journal_state {
    uint64_t durable; /* operations known durable */
    uint64_t started; /* operations that may have started */
};

static int read_journal(const char *path, struct journal_state *js)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) /* killed before the first operation */
            return 0;
        fprintf(stderr, "crash_writer: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char what[16];
    uint64_t n;
    while (fscanf(f, "%15s %" SCNu64, what, &n) == 2) {
        if (strcmp(what, "op") == 0 && n + 1 > js->started)
            js->started = n + 1;
        else if ((strcmp(what, "flushed") == 0 || strcmp(what, "closed") == 0) && n > js->durable)
            js->durable = n;
    }
    fclose(f);
    if (js->durable > js->started)
        js->started = js->durable;
    return 0;
}

static void apply_op(const struct config *c, struct window *w, uint64_t i, const struct op *op)
{
    uint64_t lo = op->off > w->off ? op->off : w->off;
    uint64_t hi = op->off + op->len < w->off + w->len ? op->off + op->len : w->off + w->len;
    for (uint64_t o = lo; o < hi; o++)
        w->shadow[o - w->off] = op->zero ? 0 : pattern_byte(c->seed, i, o);
}

/* May byte O hold V because an operation in [FROM, TO) wrote it? */
static bool later_value(const struct config *c, const struct op *ops, uint64_t from, uint64_t to,
                        uint64_t o, uint8_t v)
{
    for (uint64_t i = from; i < to; i++) {
        const struct op *op = &ops[i - from];
        if (o >= op->off && o < op->off + op->len && v == (op->zero ? 0 : pattern_byte(c->seed, i, o)))
            return true;
    }
    return false;
}

static int check_zero_margin(vmdkit_disk *d, uint64_t off, uint64_t len, uint8_t *buf,
                             const struct config *c)
{
    uint64_t size = vmdkit_size(d);
    if (off >= size)
        return 0;
    if (len > size - off)
        len = size - off;
    for (int k = 0; k < c->n_win; k++) { /* skip parts inside another window */
        const struct window *w = &c->win[k];
        if (off < w->off + w->len && off + len > w->off)
            return 0;
    }
    int e = vmdkit_pread(d, buf, (size_t)len, off);
    if (e < 0)
        return lib_error("pread", d, e);
    for (uint64_t k = 0; k < len; k++)
        if (buf[k]) {
            fprintf(stderr, "crash_writer: byte at %" PRIu64 " outside the windows is 0x%02x, not 0\n",
                    off + k, buf[k]);
            return 1;
        }
    return 0;
}

static int walk_status(vmdkit_disk *d, const struct window *w)
{
    for (uint64_t at = w->off; at < w->off + w->len;) {
        vmdkit_block_status st;
        int e = vmdkit_block_status_at(d, w->off + w->len - at, at, &st);
        if (e < 0)
            return lib_error("block status", d, e);
        if (st.length == 0 || st.length > w->off + w->len - at) {
            fprintf(stderr, "crash_writer: block status at %" PRIu64 ": bad run length %" PRIu64 "\n",
                    at, st.length);
            return 1;
        }
        at += st.length;
    }
    return 0;
}

static int run_verify(struct config *c)
{
    struct journal_state js = {0};
    if (read_journal(c->journal, &js))
        return 2;
    if (c->n_ops && js.started > c->n_ops)
        js.started = c->n_ops;
    uint64_t n_later = js.started - js.durable;
    struct op *later = calloc(n_later ? n_later : 1, sizeof *later);
    uint8_t *buf = malloc(READ_CHUNK);
    if (!later || !buf) {
        fprintf(stderr, "crash_writer: out of memory\n");
        return 2;
    }
    for (int k = 0; k < c->n_win; k++) {
        if (!(c->win[k].shadow = calloc(1, (size_t)c->win[k].len))) {
            fprintf(stderr, "crash_writer: out of memory\n");
            return 2;
        }
    }
    if (c->base_ops) {
        struct config base = *c;
        base.seed = c->base_seed;
        for (uint64_t i = 0; i < c->base_ops; i++) {
            struct op op = make_op(&base, i);
            for (int k = 0; k < c->n_win; k++)
                apply_op(&base, &c->win[k], i, &op);
        }
    }
    for (uint64_t i = 0; i < js.durable; i++) {
        struct op op = make_op(c, i);
        for (int k = 0; k < c->n_win; k++)
            apply_op(c, &c->win[k], i, &op);
    }
    for (uint64_t i = js.durable; i < js.started; i++)
        later[i - js.durable] = make_op(c, i);

    vmdkit_error err;
    vmdkit_disk *d = NULL;
    int e = vmdkit_open(c->disk, c->raw ? VMDKIT_OPEN_RAW : VMDKIT_OPEN_RDONLY, &d, &err);
    if (e < 0) {
        fprintf(stderr, "crash_writer: open: %s (%s)\n", err.msg, vmdkit_errcode_name(e));
        return 3;
    }
    int rc = 0;
    for (int k = 0; !rc && k < c->n_win; k++) {
        struct window *w = &c->win[k];
        for (uint64_t done = 0; !rc && done < w->len;) {
            size_t n = w->len - done < READ_CHUNK ? (size_t)(w->len - done) : READ_CHUNK;
            if ((e = vmdkit_pread(d, buf, n, w->off + done)) < 0) {
                rc = lib_error("pread", d, e);
                break;
            }
            for (size_t b = 0; b < n; b++) {
                uint64_t o = w->off + done + b;
                uint8_t want = w->shadow[done + b];
                if (buf[b] != want && !later_value(c, later, js.durable, js.started, o, buf[b])) {
                    fprintf(stderr,
                            "crash_writer: byte at %" PRIu64 " is 0x%02x; durable value 0x%02x "
                            "(%" PRIu64 " operations durable, %" PRIu64 " started)\n",
                            o, buf[b], want, js.durable, js.started);
                    rc = 1;
                    break;
                }
            }
            done += n;
        }
        if (!rc)
            rc = walk_status(d, w);
        if (!rc && w->off > 0) {
            uint64_t m = w->off < 2 * GRAIN ? w->off : 2 * GRAIN;
            rc = check_zero_margin(d, w->off - m, m, buf, c);
        }
        if (!rc)
            rc = check_zero_margin(d, w->off + w->len, 2 * GRAIN, buf, c);
    }
    if (!rc)
        printf("verified: %" PRIu64 " operations durable, %" PRIu64 " started\n", js.durable,
               js.started);
    e = vmdkit_close(d, &err);
    if (e < 0 && !rc)
        rc = 3;
    for (int k = 0; k < c->n_win; k++)
        free(c->win[k].shadow);
    free(later);
    free(buf);
    return rc;
}

/* ---- command line ---- */

static int usage(void)
{
    fprintf(stderr, "usage: crash_writer write|verify DISK JOURNAL SEED [-n OPS] [-f MAXGAP] [-z] "
                    "[-b SEED:OPS] [-r] [-w OFF:LEN ...]\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-')
        return false;
    *v = x;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return usage();
    struct config c = {.disk = argv[2], .journal = argv[3], .max_gap = 8};
    bool verify = strcmp(argv[1], "verify") == 0;
    if (!verify && strcmp(argv[1], "write") != 0)
        return usage();
    if (!parse_u64(argv[4], &c.seed))
        return usage();
    for (int i = 5; i < argc; i++) {
        uint64_t v;
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc && parse_u64(argv[i + 1], &v)) {
            c.n_ops = v;
            i++;
        } else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc && parse_u64(argv[i + 1], &v) && v > 0 &&
                   v < 1000000) {
            c.max_gap = (unsigned)v;
            i++;
        } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            char *colon = strchr(argv[++i], ':');
            if (!colon)
                return usage();
            *colon = 0;
            if (!parse_u64(argv[i], &c.base_seed) || !parse_u64(colon + 1, &c.base_ops))
                return usage();
        } else if (strcmp(argv[i], "-r") == 0 && verify) {
            c.raw = true;
        } else if (strcmp(argv[i], "-z") == 0) {
            c.zero_ops = true;
        } else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc && c.n_win < MAX_WINDOWS) {
            char *colon = strchr(argv[++i], ':');
            uint64_t off, len;
            if (!colon)
                return usage();
            *colon = 0;
            if (!parse_u64(argv[i], &off) || !parse_u64(colon + 1, &len) || len < GRAIN || off % GRAIN ||
                len % GRAIN)
                return usage();
            c.win[c.n_win++] = (struct window){.off = off, .len = len};
        } else {
            return usage();
        }
    }
    if (c.n_win == 0) {
        /* default window: the whole disk, which must be small */
        vmdkit_error err;
        vmdkit_disk *d;
        int e = vmdkit_open(c.disk, c.raw ? VMDKIT_OPEN_RAW : VMDKIT_OPEN_RDONLY, &d, &err);
        if (e < 0) {
            fprintf(stderr, "crash_writer: open: %s (%s)\n", err.msg, vmdkit_errcode_name(e));
            return 3;
        }
        uint64_t size = vmdkit_size(d);
        vmdkit_close(d, NULL);
        if (size > (256u << 20) || size < GRAIN) {
            fprintf(stderr, "crash_writer: give windows (-w) for a disk of %" PRIu64 " bytes\n", size);
            return 2;
        }
        c.win[c.n_win++] = (struct window){.off = 0, .len = size / GRAIN * GRAIN};
    }
    return verify ? run_verify(&c) : run_writer(&c);
}
