/* fuzz_util.c - see fuzz_util.h. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

#define MAX_RUNS 64
#define MAX_READ (1u << 20)
#define MAX_WRITE_GRAIN_SECTORS 2048u
#define MAX_COMPACT_BYTES (8u << 20)

static char dir[64];

static void remove_dir(void)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *fuzz_dir(void)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vmdkit-fuzz-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

char *fuzz_write_file(const char *name, const uint8_t *data, size_t len)
{
    size_t n = strlen(fuzz_dir()) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path)
        abort();
    snprintf(path, n, "%s/%s", fuzz_dir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(path);
        abort();
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, data + done, len - done);
        if (w <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)w;
    }
    close(fd);
    return path;
}

uint64_t fuzz_hash(const uint8_t *data, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * 0x100000001b3ull;
    return h;
}

void fuzz_walk(vmdkit_disk *d, uint64_t seed)
{
    static uint8_t buf[MAX_READ];
    uint64_t size = vmdkit_size(d);
    uint64_t off = 0;
    for (int runs = 0; runs < MAX_RUNS && off < size; runs++) {
        vmdkit_block_status st;
        if (vmdkit_block_status_at(d, size - off, off, &st) < 0)
            break;
        if (st.length == 0 || st.length > size - off)
            abort(); /* the contract: a run is non-empty and inside the disk */
        if (st.alloc == VMDKIT_ALLOC_DATA)
            (void)vmdkit_pread(d, buf, (size_t)(st.length < MAX_READ ? st.length : MAX_READ), off);
        off += st.length;
    }
    for (int i = 0; i < 4 && size > 0; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t at = (seed >> 11) % size;
        size_t len = (size_t)((seed >> 3) % 70000) + 1;
        if (len > size - at)
            len = (size_t)(size - at);
        (void)vmdkit_pread(d, buf, len, at);
    }
    int links = vmdkit_chain_length(d);
    for (int l = 0; l < links; l++) {
        vmdkit_link_info info;
        if (vmdkit_link_info_get(d, l, &info) == 0)
            vmdkit_link_info_free(&info);
    }
}

/* One write (or zero) of fuzz_write_some: where, how long, whether it succeeded. */
struct fuzz_op {
    uint64_t at;
    size_t len;
    bool zero, done;
};

static void print_ops(const struct fuzz_op *ops, int n)
{
    for (int j = 0; j < n; j++)
        fprintf(stderr, "fuzz:   %s %zu bytes at %llu\n", ops[j].zero ? "zero" : "write", ops[j].len,
                (unsigned long long)ops[j].at);
}

/* After the writes to a disk the checker found no corruption in: the disk
 * must open again read-only, and if the checker had nothing at all to say
 * (SOUND) every range written must read back as the writes left it (later
 * writes over earlier ones).  A write that "succeeded" but lost the file (a
 * descriptor written over the data) or the data is a finding.  A damaged
 * disk may be damaged further by writes (the checker says so: a table
 * over the embedded descriptor, two grains its tables make overlap). */
static void read_back(const char *path, const struct fuzz_op *ops, int n, uint8_t byte, bool sound)
{
    vmdkit_disk *d;
    vmdkit_error err;
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK, &d, &err) < 0) {
        fprintf(stderr, "fuzz: %s: written, then no longer opens: %s\n", path, err.msg);
        print_ops(ops, n);
        abort();
    }
    static uint8_t got[4096];
    for (int i = 0; sound && i < n; i++) {
        if (vmdkit_pread(d, got, ops[i].len, ops[i].at) < 0) {
            fprintf(stderr, "fuzz: %s: written, then %zu bytes at %llu do not read: %s\n", path,
                    ops[i].len, (unsigned long long)ops[i].at, vmdkit_last_error(d)->msg);
            print_ops(ops, n);
            abort();
        }
        for (size_t k = 0; k < ops[i].len; k++) {
            /* the last op that covers this byte decides what it holds */
            uint64_t b = ops[i].at + k;
            uint8_t want = 0;
            for (int j = 0; j < n; j++)
                if (b >= ops[j].at && b - ops[j].at < ops[j].len)
                    want = ops[j].zero ? 0 : byte;
            if (got[k] != want) {
                fprintf(stderr, "fuzz: %s: byte %llu reads 0x%02x after the writes, expected 0x%02x\n",
                        path, (unsigned long long)b, got[k], want);
                print_ops(ops, n);
                abort();
            }
        }
    }
    vmdkit_close(d, NULL);
}

/* Findings that make a read-back meaningless: an Info (a grain that reaches
 * past the end of the file, the unclean flag) leaves the data as it reads. */
static void count_finding(void *opaque, const vmdkit_check_finding *f)
{
    if (f->kind != VMDKIT_FIND_INFO)
        ++*(unsigned *)opaque;
}

void fuzz_write_some(const char *path, uint64_t seed)
{
    /* sound: the checker has nothing but Infos to say about it; intact: no
     * corruption */
    vmdkit_check_result res;
    unsigned findings = 0;
    vmdkit_check_opts copts = {
        .struct_size = sizeof copts, .on_finding = count_finding, .finding_opaque = &findings};
    bool checked = vmdkit_check(path, &copts, &res, NULL) == 0;
    bool intact = checked && res.corruptions == 0, sound = intact && findings == 0;
    vmdkit_disk *d;
    if (vmdkit_open(path, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_LOCK, &d, NULL) < 0)
        return;
    vmdkit_link_info info;
    bool small = vmdkit_link_info_get(d, 0, &info) == 0;
    if (small) {
        for (size_t i = 0; i < info.n_extents; i++)
            if (info.extents[i].sparse.present &&
                info.extents[i].sparse.grain_sectors > MAX_WRITE_GRAIN_SECTORS)
                small = false;
        vmdkit_link_info_free(&info);
    }
    uint64_t size = vmdkit_size(d);
    static uint8_t buf[4096];
    uint8_t byte = (uint8_t)(seed & 0xff);
    memset(buf, byte, sizeof buf);
    struct fuzz_op ops[3];
    int n = 0;
    bool all_done = true;
    for (int i = 0; small && i < 3 && size > 0; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t at = (seed >> 11) % size;
        size_t len = (size_t)((seed >> 5) % sizeof buf) + 1;
        if (len > size - at)
            len = (size_t)(size - at);
        struct fuzz_op *op = &ops[n++];
        *op = (struct fuzz_op){.at = at, .len = len, .zero = i == 2};
        if (op->zero)
            op->done = vmdkit_pzero(d, len, at) == 0;
        else
            op->done = vmdkit_pwrite(d, buf, len, at) == 0;
        all_done &= op->done;
    }
    all_done &= vmdkit_flush(d) == 0;
    all_done &= vmdkit_close(d, NULL) == 0;
    /* errors are fine (a damaged input), but what was accepted must hold */
    if (n > 0 && all_done && intact)
        read_back(path, ops, n, byte, sound);
}

/* The whole of the disk at PATH, at most MAX_COMPACT_BYTES (malloc'd, in
 * *LEN), or NULL when it does not open, is larger, or a read fails. */
static uint8_t *read_whole(const char *path, size_t *len)
{
    vmdkit_disk *d;
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK, &d, NULL) < 0)
        return NULL;
    uint64_t size = vmdkit_size(d);
    uint8_t *buf = size <= MAX_COMPACT_BYTES ? malloc(size ? (size_t)size : 1) : NULL;
    if (buf && size && vmdkit_pread(d, buf, (size_t)size, 0) < 0) {
        free(buf);
        buf = NULL;
    }
    vmdkit_close(d, NULL);
    *len = (size_t)size;
    return buf;
}

void fuzz_compact_keeps(const char *path)
{
    vmdkit_check_result res;
    if (vmdkit_check(path, NULL, &res, NULL) != 0 || res.corruptions)
        return;
    size_t before_len, after_len;
    uint8_t *before = read_whole(path, &before_len);
    if (!before)
        return;
    vmdkit_compact_opts o = {.struct_size = sizeof o, .root = fuzz_dir()};
    int rc = vmdkit_compact(path, &o, NULL, NULL);
    uint8_t *after = read_whole(path, &after_len);
    if (!after || after_len != before_len || memcmp(before, after, before_len) != 0) {
        fprintf(stderr, "fuzz: %s reads differently after compact (which returned %d)\n", path, rc);
        abort();
    }
    free(before);
    free(after);
}
