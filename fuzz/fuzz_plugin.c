/* fuzz_plugin.c - the nbdkit plugin's callbacks driven by a stranger's
 * sequence of requests, checked against a model after every request.
 *
 * The plugin (src/nbdkit/vmdkit-plugin.c) is compiled into the harness;
 * the nbdkit_* functions it calls are a small shim below.  The input's
 * first byte picks a small (1 MiB) writable disk: monolithicSparse, the
 * same with zeroed-grain entries, monolithicFlat, a delta over a sparse
 * base that holds data, or an export of dir=DIR whose name the input
 * gives.  Then every 8 bytes are one request - read, write, zero, trim,
 * flush, block status, cache, or closing and opening the disk again - with
 * offsets, lengths and flags (FUA, MAY_TRIM, FAST_ZERO, REQ_ONE) from the
 * input, sometimes past the end.  A raw model follows every change the
 * plugin reports done; after each request the whole disk must read as the
 * model, block status must call zero only what is zeros, a request past
 * the end must change nothing, and a fast zero or trim that must be
 * metadata work (whole grains of a zeroed-grain disk, whole sectors of a
 * flat one) must succeed.  A failure aborts with what differed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the nbdkit shim ---- */

static char last_error[1024];
static int last_errno;
static const char *export_name = "";

/* nbdkit's header gives these no format attribute unless its build says so */
void nbdkit_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nbdkit_verror(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
void nbdkit_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nbdkit_vdebug(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static void record_error(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void record_error(const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
}

void nbdkit_verror(const char *fmt, va_list ap) { record_error(fmt, ap); }

void nbdkit_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_error(fmt, ap);
    va_end(ap);
}

void nbdkit_vdebug(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

void nbdkit_debug(const char *fmt, ...) { (void)fmt; }

void nbdkit_set_error(int err) { last_errno = err; }

char *nbdkit_realpath(const char *path)
{
    char *r = realpath(path, NULL);
    if (!r)
        nbdkit_error("realpath: %s: %s", path, strerror(errno));
    return r;
}

int nbdkit_parse_bool(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on") || !strcmp(s, "yes"))
        return 1;
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off") || !strcmp(s, "no"))
        return 0;
    nbdkit_error("could not decipher boolean (%s)", s);
    return -1;
}

const char *nbdkit_export_name(void) { return export_name; }

#define MAX_EXTENTS 4096
struct nbdkit_extents {
    uint64_t off[MAX_EXTENTS], len[MAX_EXTENTS];
    uint32_t type[MAX_EXTENTS];
    size_t n;
};

int nbdkit_add_extent(struct nbdkit_extents *x, uint64_t offset, uint64_t length, uint32_t type)
{
    if (x->n == MAX_EXTENTS) {
        nbdkit_error("too many extents");
        return -1;
    }
    x->off[x->n] = offset;
    x->len[x->n] = length;
    x->type[x->n] = type;
    x->n++;
    return 0;
}

struct nbdkit_exports {
    size_t n;
};

int nbdkit_add_export(struct nbdkit_exports *x, const char *name, const char *description)
{
    (void)name;
    (void)description;
    x->n++;
    return 0;
}

int nbdkit_use_default_export(struct nbdkit_exports *x)
{
    x->n++;
    return 0;
}

/* ---- the harness ---- */

struct nbdkit_plugin *plugin_init(void);

#define DISK_BYTES (1u << 20)
#define GRAIN 65536u
#define SECTOR 512u

enum kind { SPARSE, ZSPARSE, FLAT, DELTA, DIR_EXPORT, N_KINDS };

static const struct nbdkit_plugin *p;
static uint8_t model[DISK_BYTES];
static uint8_t base_content[DISK_BYTES];
static uint8_t buf[DISK_BYTES + 2 * GRAIN];

#define FAIL(...)                                                                 \
    do {                                                                          \
        fprintf(stderr, "fuzz_plugin: " __VA_ARGS__);                             \
        fprintf(stderr, " (last error: %s, errno %d)\n", last_error, last_errno); \
        abort();                                                                  \
    } while (0)

static char *path_of(const char *name)
{
    size_t n = strlen(fuzz_dir()) + strlen(name) + 2;
    char *s = malloc(n);
    if (!s)
        abort();
    snprintf(s, n, "%s/%s", fuzz_dir(), name);
    return s;
}

/* The base of the delta: made once, with data in most grains; never
 * written (a parent is opened read-only). */
static void make_base(void)
{
    static bool done;
    if (done)
        return;
    char *base = path_of("base.vmdk");
    vmdkit_create_opts co = {
        .struct_size = sizeof co, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = DISK_BYTES};
    vmdkit_disk *d;
    if (vmdkit_create(base, &co, NULL) < 0 || vmdkit_open(base, VMDKIT_OPEN_RDWR, &d, NULL) < 0)
        FAIL("cannot make the base");
    for (size_t i = 0; i < DISK_BYTES; i++)
        base_content[i] = (i / GRAIN) % 3 == 1 ? 0 : (uint8_t)(i * 7 + 1);
    if (vmdkit_pwrite(d, base_content, DISK_BYTES, 0) < 0 || vmdkit_close(d, NULL) < 0)
        FAIL("cannot write the base");
    free(base);
    char *lib = path_of("lib");
    if (mkdir(lib, 0700) != 0 && errno != EEXIST)
        FAIL("cannot make lib");
    free(lib);
    done = true;
}

/* A fresh disk of KIND; its path (freed by the caller) and the model. */
static char *make_disk(enum kind k)
{
    static const char *const names[N_KINDS] = {"sparse.vmdk", "zsparse.vmdk", "flat.vmdk", "delta.vmdk",
                                               "lib/d.vmdk"};
    char *path = path_of(names[k]);
    unlink(path);
    if (k == FLAT) {
        char *extent = path_of("flat-flat.vmdk");
        unlink(extent);
        free(extent);
    }
    vmdkit_create_opts co = {.struct_size = sizeof co,
                             .type = k == FLAT ? VMDKIT_MONOLITHIC_FLAT : VMDKIT_MONOLITHIC_SPARSE,
                             .size_bytes = DISK_BYTES,
                             .zeroed_grain = k == ZSPARSE || k == DIR_EXPORT};
    vmdkit_error err = {0};
    int r;
    if (k == DELTA) {
        char *base = path_of("base.vmdk");
        r = vmdkit_create_delta(base, path, 0, &err);
        free(base);
        memcpy(model, base_content, DISK_BYTES);
    } else {
        r = vmdkit_create(path, &co, &err);
        memset(model, 0, DISK_BYTES);
    }
    if (r < 0)
        FAIL("cannot make %s: %s", path, err.msg);
    return path;
}

/* Start the plugin as nbdkit does; NULL when its open refused. */
static void *start(enum kind k, const char *path)
{
    int r;
    if (k == DIR_EXPORT) {
        char *lib = path_of("lib");
        r = p->config("dir", lib);
        free(lib);
    } else {
        r = p->config("file", path);
    }
    if (r < 0 || p->config_complete() < 0 || p->get_ready() < 0)
        FAIL("the plugin does not start on %s", path);
    return p->open(0);
}

static void stop(void *h)
{
    if (h)
        p->close(h);
    p->cleanup();
}

/* The whole disk reads as the model, and block status calls zero only
 * what the model holds as zeros. */
static void check_content(void *h, const char *after)
{
    if (p->pread(h, buf, DISK_BYTES, 0, 0) < 0)
        FAIL("read of the disk failed after %s", after);
    if (memcmp(buf, model, DISK_BYTES) != 0) {
        size_t i = 0;
        while (buf[i] == model[i])
            i++;
        FAIL("after %s: byte %zu reads 0x%02x, the model holds 0x%02x", after, i, buf[i], model[i]);
    }
}

static void check_extents(const struct nbdkit_extents *x, uint64_t off, uint64_t len, bool one)
{
    uint64_t at = off;
    if (x->n == 0 || (one && x->n != 1))
        FAIL("block status at %llu+%llu gave %zu runs", (unsigned long long)off, (unsigned long long)len,
             x->n);
    for (size_t i = 0; i < x->n; i++) {
        if (x->off[i] != at || x->len[i] == 0 || x->off[i] + x->len[i] > DISK_BYTES)
            FAIL("block status run %zu: %llu+%llu, expected to start at %llu", i,
                 (unsigned long long)x->off[i], (unsigned long long)x->len[i], (unsigned long long)at);
        static const uint8_t zeros[DISK_BYTES];
        if ((x->type[i] & NBDKIT_EXTENT_ZERO) && memcmp(model + x->off[i], zeros, x->len[i]) != 0)
            FAIL("block status calls %llu+%llu zero, the model holds data there",
                 (unsigned long long)x->off[i], (unsigned long long)x->len[i]);
        at += x->len[i];
    }
    if (at < off + len && !one && at < DISK_BYTES && x->n < MAX_EXTENTS)
        FAIL("block status at %llu+%llu stopped at %llu", (unsigned long long)off,
             (unsigned long long)len, (unsigned long long)at);
}

static void zero_model(uint64_t off, uint64_t len) { memset(model + off, 0, (size_t)len); }

/* The part [*a, *b) of a range made of whole UNITs. */
static void whole_units(uint64_t off, uint64_t len, uint64_t unit, uint64_t *a, uint64_t *b)
{
    *a = (off + unit - 1) / unit * unit;
    *b = (off + len) / unit * unit;
    if (*b < *a)
        *b = *a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!p)
        p = plugin_init();
    if (size < 1)
        return 0;
    make_base();
    enum kind k = (enum kind)(data[0] % N_KINDS);
    data++;
    size--;
    char name[40] = "d.vmdk";
    if (k == DIR_EXPORT && size > 0) {
        /* the export name: the disk's own, or up to 32 bytes of the input */
        size_t n = data[0] % 40;
        data++;
        size--;
        if (n > 0 && n <= 32 && n <= size) {
            memcpy(name, data, n);
            name[n] = 0;
            data += n;
            size -= n;
        }
    }
    export_name = name;
    char *path = make_disk(k);
    void *h = start(k, path);
    if (k == DIR_EXPORT && strcmp(name, "d.vmdk") != 0) {
        if (h)
            FAIL("export \"%s\" was opened; only d.vmdk is a disk under the folder", name);
        stop(NULL);
        p->unload();
        free(path);
        return 0;
    }
    if (!h)
        FAIL("the plugin does not open %s", path);
    bool flat = k == FLAT;
    for (size_t at = 0; at + 8 <= size && at < 8 * 64; at += 8) {
        const uint8_t *q = data + at;
        unsigned op = q[0] % 8;
        uint64_t off =
            ((uint64_t)q[1] | (uint64_t)q[2] << 8 | (uint64_t)q[3] << 16) % (DISK_BYTES + 8192);
        uint64_t len =
            1 + ((uint64_t)q[4] | (uint64_t)q[5] << 8 | (uint64_t)q[6] << 16) % (DISK_BYTES / 2);
        uint8_t f = q[7];
        if (f & 0x80)
            off -= off % GRAIN;
        else if (f & 0x40)
            off -= off % SECTOR;
        if (f & 0x20)
            len = (len + GRAIN - 1) / GRAIN * GRAIN;
        else if (f & 0x10)
            len = (len + SECTOR - 1) / SECTOR * SECTOR;
        bool inside = off + len <= DISK_BYTES;
        bool fua = f & 1, may_trim = f & 2, fast = f & 4, req_one = f & 8;
        char what[96];
        static const char *const ops[] = {"read",  "write",   "zero",  "trim",
                                          "flush", "extents", "cache", "reopen"};
        snprintf(what, sizeof what, "%s %llu+%llu flags 0x%02x", ops[op], (unsigned long long)off,
                 (unsigned long long)len, f);
        last_error[0] = 0;
        last_errno = 0;
        int r = 0;
        switch (op) {
        case 0:
            r = p->pread(h, buf, (uint32_t)len, off, 0);
            if (inside && (r < 0 || memcmp(buf, model + off, (size_t)len) != 0))
                FAIL("%s: %s", what, r < 0 ? "failed" : "read other bytes than the model's");
            break;
        case 1:
            for (uint64_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(q[7] + i * (q[0] | 1));
            r = p->pwrite(h, buf, (uint32_t)len, off, fua ? NBDKIT_FLAG_FUA : 0);
            if (inside) {
                if (r < 0)
                    FAIL("%s: failed", what);
                memcpy(model + off, buf, (size_t)len);
            }
            break;
        case 2: {
            uint32_t zf = (may_trim ? NBDKIT_FLAG_MAY_TRIM : 0) | (fua ? NBDKIT_FLAG_FUA : 0) |
                          (fast && p->can_fast_zero(h) ? NBDKIT_FLAG_FAST_ZERO : 0);
            r = p->zero(h, (uint32_t)len, off, zf);
            if (!inside)
                break;
            /* a fast zero must succeed where it is metadata work */
            bool meta = (k == ZSPARSE || k == DIR_EXPORT) ? off % GRAIN == 0 && len % GRAIN == 0
                        : flat ? off % SECTOR == 0 && len % SECTOR == 0 && may_trim
                               : false;
            bool partial = off % SECTOR || len % SECTOR;
            if (r < 0 && !((zf & NBDKIT_FLAG_FAST_ZERO) && last_errno == ENOTSUP))
                FAIL("%s: failed", what);
            if ((zf & NBDKIT_FLAG_FAST_ZERO) && meta && r < 0)
                FAIL("%s: a fast zero of whole units was refused", what);
            if ((zf & NBDKIT_FLAG_FAST_ZERO) && partial && r == 0)
                FAIL("%s: a fast zero of partial sectors was done", what);
            if (r == 0)
                zero_model(off, len);
            break;
        }
        case 3:
            if (!p->can_trim(h))
                continue; /* nbdkit refuses it itself */
            r = p->trim(h, (uint32_t)len, off, fua ? NBDKIT_FLAG_FUA : 0);
            if (inside) {
                uint64_t a, b;
                if (r < 0)
                    FAIL("%s: failed", what);
                whole_units(off, len, flat ? SECTOR : GRAIN, &a, &b);
                zero_model(a, b - a);
            }
            break;
        case 4:
            if (p->flush(h, 0) < 0)
                FAIL("%s: failed", what);
            break;
        case 5: {
            static struct nbdkit_extents x;
            x.n = 0;
            r = p->extents(h, (uint32_t)len, off, req_one ? NBDKIT_FLAG_REQ_ONE : 0, &x);
            if (off < DISK_BYTES && inside) {
                if (r < 0)
                    FAIL("%s: failed", what);
                check_extents(&x, off, len, req_one);
            }
            break;
        }
        case 6:
            r = p->cache(h, (uint32_t)len, off, 0);
            if (inside && r < 0)
                FAIL("%s: failed", what);
            break;
        case 7:
            /* everything acknowledged survives a close and an open */
            stop(h);
            h = p->open(0);
            if (!h && (p->get_ready() < 0 || !(h = p->open(0))))
                FAIL("%s: the disk does not open again", what);
            break;
        }
        if (fua && r == 0 && (op == 1 || op == 2) && p->flush(h, 0) < 0)
            FAIL("%s: the flush of FUA failed", what);
        if (!inside && op <= 2 && r == 0) /* read, write, zero */
            FAIL("%s: a request past the end succeeded", what);
        check_content(h, what);
    }
    stop(h);
    p->unload();
    /* closed cleanly: the file opens as a disk and reads as the model */
    vmdkit_disk *d;
    vmdkit_error err = {0};
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err) < 0)
        FAIL("%s does not open after the requests: %s", path, err.msg);
    if (vmdkit_pread(d, buf, DISK_BYTES, 0) < 0 || memcmp(buf, model, DISK_BYTES) != 0)
        FAIL("%s does not read as the model after it was closed", path);
    vmdkit_close(d, NULL);
    free(path);
    return 0;
}
