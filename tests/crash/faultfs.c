/*
 * faultfs.c - an LD_PRELOAD fault layer for crash tests (never part of the
 * library).  It watches writes to regular files under $FAULTFS_DIR and,
 * depending on the environment:
 *
 *   FAULTFS_FAIL_NTH=N [FAULTFS_ERRNO=EIO|ENOSPC]
 *       the N-th write fails with that errno (default EIO) and writes
 *       nothing; later writes succeed.
 *   FAULTFS_FAIL_SYNC_NTH=N
 *       the N-th fsync/fdatasync fails with EIO.
 *   FAULTFS_CUT_NTH=N [FAULTFS_SEED=S]
 *       power cut at the N-th write: every write made since the last
 *       fsync/fdatasync of its file, this one included, is kept, dropped
 *       (the old bytes come back from an undo log) or torn at a 512-byte
 *       boundary of the file (a prefix of its sectors kept), each chosen by
 *       a random generator seeded with S; then the process ends with
 *       _exit(99).  A sync makes everything written to that file before it
 *       durable.
 *   FAULTFS_CUT_NTH=N FAULTFS_TEAR_AT=K
 *       a power cut at the N-th write that keeps every earlier write and
 *       exactly the first K sectors of the N-th (a systematic tear, where
 *       the seeded choice above finds such a case only by chance).
 *   FAULTFS_COUNT=FILE
 *       at exit, append "writes W syncs S" (the calls seen under the
 *       folder) to FILE, to size a test matrix.
 *
 * Writes are pwrite, pwritev, write and ftruncate (and their 64-bit
 * names); syncs are
 * fsync and fdatasync.  Files are told apart by device and inode, so several
 * descriptors of one file share its undo log.
 */
/* the wrappers below define both the plain and the 64-bit names themselves */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define CUT_EXIT_STATUS 99
#define MAX_SAVED_TRUNCATE (256u << 20)

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*sync_fn)(int);
typedef int (*ftruncate_fn)(int, off_t);

static pwrite_fn real_pwrite, real_pwrite64;
static pwritev_fn real_pwritev, real_pwritev64;
static write_fn real_write;
static sync_fn real_fsync, real_fdatasync;
static ftruncate_fn real_ftruncate, real_ftruncate64;

/* One write (or truncate) not yet made durable by a sync. */
struct pending {
    dev_t dev;
    ino_t ino;
    char *path; /* to reopen the file at the cut */
    bool truncate;
    off_t off; /* write: where; truncate: the new size */
    size_t len;
    uint8_t *new_data; /* write: what was written */
    uint8_t *old_data; /* bytes overwritten (those below old_size) */
    size_t old_len;
    off_t old_size; /* file size before this call */
};

static struct {
    bool ready;
    char dir[PATH_MAX];
    size_t dir_len;
    long fail_nth, fail_sync_nth, cut_nth, tear_at;
    int fail_errno;
    uint64_t rng;
    const char *count_file;
    long writes, syncs;
    struct pending *log;
    size_t n_log, cap_log;
} st;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static long env_long(const char *name)
{
    const char *s = getenv(name);
    return s && *s ? strtol(s, NULL, 10) : 0;
}

static void init(void)
{
    if (st.ready)
        return;
    real_pwrite = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    real_pwritev = (pwritev_fn)dlsym(RTLD_NEXT, "pwritev");
    real_pwritev64 = (pwritev_fn)dlsym(RTLD_NEXT, "pwritev64");
    real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    real_fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = (ftruncate_fn)dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = (ftruncate_fn)dlsym(RTLD_NEXT, "ftruncate64");
    const char *d = getenv("FAULTFS_DIR");
    if (d && realpath(d, st.dir))
        st.dir_len = strlen(st.dir);
    st.fail_nth = env_long("FAULTFS_FAIL_NTH");
    st.fail_sync_nth = env_long("FAULTFS_FAIL_SYNC_NTH");
    st.cut_nth = env_long("FAULTFS_CUT_NTH");
    st.tear_at = env_long("FAULTFS_TEAR_AT");
    const char *en = getenv("FAULTFS_ERRNO");
    st.fail_errno = en && strcmp(en, "ENOSPC") == 0 ? ENOSPC : EIO;
    st.rng = (uint64_t)env_long("FAULTFS_SEED") * 0x9e3779b97f4a7c15ull + 1;
    st.count_file = getenv("FAULTFS_COUNT");
    st.ready = true;
}

static uint64_t rnd(uint64_t n)
{
    uint64_t x = (st.rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return n ? x % n : x;
}

/* Is FD a regular file under the watched folder?  Fills PATH and ST. */
static bool watched(int fd, char *path, struct stat *sb)
{
    if (!st.dir_len || fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode))
        return false;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n <= 0)
        return false;
    path[n] = 0;
    return strncmp(path, st.dir, st.dir_len) == 0 && path[st.dir_len] == '/';
}

static void die(const char *what)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "faultfs: %s: %s\n", what, strerror(errno));
    if (real_write)
        (void)!real_write(2, msg, (size_t)n);
    _exit(98);
}

/* Record a write of LEN bytes at OFF (before it happens). */
static void log_call(int fd, const char *path, const struct stat *sb, bool truncate, off_t off,
                     const void *data, size_t len)
{
    if (st.n_log == st.cap_log) {
        st.cap_log = st.cap_log ? 2 * st.cap_log : 64;
        st.log = realloc(st.log, st.cap_log * sizeof *st.log);
        if (!st.log)
            die("undo log");
    }
    struct pending *p = &st.log[st.n_log++];
    memset(p, 0, sizeof *p);
    p->dev = sb->st_dev;
    p->ino = sb->st_ino;
    p->path = strdup(path);
    p->truncate = truncate;
    p->off = off;
    p->len = len;
    p->old_size = sb->st_size;
    off_t from = off; /* a truncate saves the tail it cuts off */
    size_t span = truncate ? (off < sb->st_size ? (size_t)(sb->st_size - off) : 0) : len;
    if (truncate && span > MAX_SAVED_TRUNCATE)
        die("truncate too large to undo");
    if (from < sb->st_size) {
        p->old_len = (size_t)(sb->st_size - from) < span ? (size_t)(sb->st_size - from) : span;
        p->old_data = malloc(p->old_len ? p->old_len : 1);
        if (!p->path || !p->old_data)
            die("undo log");
        /* a write-only descriptor cannot read: open the file again */
        int rfd = (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY ? open(path, O_RDONLY | O_CLOEXEC) : fd;
        size_t got = 0;
        while (rfd >= 0 && got < p->old_len) {
            ssize_t r = pread(rfd, p->old_data + got, p->old_len - got, from + (off_t)got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (rfd != fd && rfd >= 0)
            close(rfd);
        if (got < p->old_len)
            die("read for the undo log");
    }
    if (!truncate) {
        p->new_data = malloc(len ? len : 1);
        if (!p->new_data)
            die("undo log");
        memcpy(p->new_data, data, len);
    }
}

static void forget_file(dev_t dev, ino_t ino)
{
    size_t k = 0;
    for (size_t i = 0; i < st.n_log; i++) {
        struct pending *p = &st.log[i];
        if (p->dev == dev && p->ino == ino) {
            free(p->path);
            free(p->new_data);
            free(p->old_data);
        } else {
            st.log[k++] = *p;
        }
    }
    st.n_log = k;
}

static void put_bytes(int fd, const uint8_t *data, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = real_pwrite(fd, data + done, len - done, off + (off_t)done);
        if (r <= 0)
            die("write at the power cut");
        done += (size_t)r;
    }
}

/* The power cut: undo every pending call newest first, then replay the
 * survivors oldest first, whole or torn. */
static void power_cut(void)
{
    int *fds = calloc(st.n_log ? st.n_log : 1, sizeof *fds);
    int *fate = calloc(st.n_log ? st.n_log : 1, sizeof *fate);
    if (!fds || !fate)
        die("power cut");
    for (size_t i = 0; i < st.n_log; i++) {
        fds[i] = open(st.log[i].path, O_WRONLY | O_CLOEXEC);
        if (fds[i] < 0)
            die(st.log[i].path);
        fate[i] = (int)rnd(3); /* 0 kept, 1 dropped, 2 torn */
        if (st.tear_at > 0)
            fate[i] = i + 1 < st.n_log ? 0 : 2;
    }
    for (size_t i = st.n_log; i-- > 0;) {
        struct pending *p = &st.log[i];
        if (p->old_len)
            put_bytes(fds[i], p->old_data, p->old_len, p->off);
        if (real_ftruncate(fds[i], p->old_size) != 0)
            die("truncate at the power cut");
    }
    for (size_t i = 0; i < st.n_log; i++) {
        struct pending *p = &st.log[i];
        if (p->truncate) {
            if (fate[i] != 1 && real_ftruncate(fds[i], p->off) != 0)
                die("truncate at the power cut");
            continue;
        }
        size_t keep = p->len;
        if (fate[i] == 1) {
            keep = 0;
        } else if (fate[i] == 2) {
            /* sector boundaries of the file strictly inside the write */
            off_t first = (p->off / 512 + 1) * 512;
            off_t end = p->off + (off_t)p->len;
            uint64_t n = first < end ? (uint64_t)((end - 1 - first) / 512 + 1) : 0;
            uint64_t k = st.tear_at > 0 ? (uint64_t)st.tear_at - 1 : rnd(n + 1);
            keep = n && k <= n ? (size_t)(first + (off_t)(512 * k) - p->off) : (n ? p->len : 0);
            if (keep > p->len)
                keep = p->len;
        }
        if (keep)
            put_bytes(fds[i], p->new_data, keep, p->off);
    }
    for (size_t i = 0; i < st.n_log; i++)
        close(fds[i]);
    _exit(CUT_EXIT_STATUS);
}

/* Common path of every write: returns -1 with errno set when the call must
 * fail, 1 when the caller must proceed, and never returns at a power cut
 * (the write is then performed here). */
static int before_write(int fd, bool truncate, off_t off, const void *data, size_t len)
{
    char path[PATH_MAX];
    struct stat sb;
    if (!watched(fd, path, &sb))
        return 1;
    pthread_mutex_lock(&lock);
    long n = ++st.writes;
    if (n == st.fail_nth) {
        pthread_mutex_unlock(&lock);
        errno = st.fail_errno;
        return -1;
    }
    if (st.cut_nth)
        log_call(fd, path, &sb, truncate, off, data, len);
    if (n == st.cut_nth) {
        /* the write in flight when the power fails is one of the pending ones */
        if (truncate)
            (void)real_ftruncate(fd, off);
        else
            put_bytes(fd, data, len, off);
        power_cut();
    }
    pthread_mutex_unlock(&lock);
    return 1;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    init();
    if (before_write(fd, false, off, buf, len) < 0)
        return -1;
    return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    init();
    if (before_write(fd, false, off, buf, len) < 0)
        return -1;
    return real_pwrite64(fd, buf, len, off);
}

static ssize_t any_pwritev(pwritev_fn fn, int fd, const struct iovec *iov, int cnt, off_t off)
{
    size_t len = 0;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    uint8_t *flat = malloc(len ? len : 1);
    if (!flat)
        die("pwritev");
    for (size_t i = 0, at = 0; i < (size_t)cnt; at += iov[i].iov_len, i++)
        memcpy(flat + at, iov[i].iov_base, iov[i].iov_len);
    int r = before_write(fd, false, off, flat, len);
    free(flat);
    if (r < 0)
        return -1;
    return fn(fd, iov, cnt, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    init();
    return any_pwritev(real_pwritev, fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    init();
    return any_pwritev(real_pwritev64, fd, iov, cnt, off);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    init();
    if (fd > 2) {
        off_t off = (fcntl(fd, F_GETFL) & O_APPEND) ? lseek(fd, 0, SEEK_END) : lseek(fd, 0, SEEK_CUR);
        if (off >= 0 && before_write(fd, false, off, buf, len) < 0)
            return -1;
    }
    return real_write(fd, buf, len);
}

int ftruncate(int fd, off_t size)
{
    init();
    if (before_write(fd, true, size, NULL, 0) < 0)
        return -1;
    return real_ftruncate(fd, size);
}

int ftruncate64(int fd, off_t size)
{
    init();
    if (before_write(fd, true, size, NULL, 0) < 0)
        return -1;
    return real_ftruncate64(fd, size);
}

static int on_sync(int fd, sync_fn fn)
{
    char path[PATH_MAX];
    struct stat sb;
    if (!watched(fd, path, &sb))
        return fn(fd);
    pthread_mutex_lock(&lock);
    long n = ++st.syncs;
    if (n == st.fail_sync_nth) {
        pthread_mutex_unlock(&lock);
        errno = EIO;
        return -1;
    }
    forget_file(sb.st_dev, sb.st_ino);
    pthread_mutex_unlock(&lock);
    return fn(fd);
}

int fsync(int fd)
{
    init();
    return on_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
    init();
    return on_sync(fd, real_fdatasync);
}

__attribute__((destructor)) static void report_counts(void)
{
    if (!st.ready || !st.count_file)
        return;
    FILE *f = fopen(st.count_file, "a");
    if (f) {
        fprintf(f, "writes %ld syncs %ld\n", st.writes, st.syncs);
        fclose(f);
    }
}
