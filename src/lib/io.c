/* io.c - I/O loops, durability, locking, small-file helpers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"
#include "vk.h"

void *vk_malloc(size_t n, vk_err *e)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        vk_fail(e, VMDKIT_ENOMEM, "out of memory (%zu bytes)", n);
    return p;
}

void *vk_calloc(size_t n, size_t sz, vk_err *e)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        vk_fail(e, VMDKIT_ENOMEM, "out of memory (%zu x %zu bytes)", n, sz);
    return p;
}

char *vk_strdup(const char *s, vk_err *e)
{
    char *p = strdup(s);
    if (!p)
        vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    return p;
}

char *vk_strndup(const char *s, size_t n, vk_err *e)
{
    char *p = vk_malloc(n + 1, e);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

int vk_grow(void **a, size_t *cap, size_t n, size_t size, vk_err *e)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap <= n) { /* room for N + 1, however far N jumped */
        if (ncap > SIZE_MAX / 2)
            return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
        ncap *= 2;
    }
    if (size && ncap > SIZE_MAX / size)
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    void *na = realloc(*a, ncap * size);
    if (!na)
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    *a = na;
    *cap = ncap;
    return 0;
}

void *vk_aligned_alloc(size_t n, vk_err *e)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, n ? n : 1) != 0) {
        vk_fail(e, VMDKIT_ENOMEM, "out of memory (%zu bytes)", n);
        return NULL;
    }
    return p;
}

static int pread_loop(int fd, void *buf, size_t len, uint64_t off, size_t *got, const char *what,
                      vk_err *e)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        if (off + done > (uint64_t)INT64_MAX)
            return vk_fail(e, VMDKIT_ELIMIT, "%s: offset %llu out of range", what,
                           (unsigned long long)(off + done));
        ssize_t r = pread(fd, p + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vk_fail_errno(e, errno, "%s: read at offset %llu", what,
                                 (unsigned long long)(off + done));
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

int vk_pread_full(int fd, void *buf, size_t len, uint64_t off, const char *what, vk_err *e)
{
    size_t got = 0;
    int r = pread_loop(fd, buf, len, off, &got, what, e);
    if (r)
        return r;
    if (got < len)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: file too short: %zu bytes at offset %llu reach past its end", what, len,
                       (unsigned long long)off);
    return 0;
}

int vk_pread_zfill(int fd, void *buf, size_t len, uint64_t off, const char *what, vk_err *e)
{
    size_t got = 0;
    int r = pread_loop(fd, buf, len, off, &got, what, e);
    if (r)
        return r;
    if (got < len)
        memset((uint8_t *)buf + got, 0, len - got);
    return 0;
}

int vk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off, const char *what, vk_err *e)
{
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        if (off + done > (uint64_t)INT64_MAX)
            return vk_fail(e, VMDKIT_ELIMIT, "%s: offset %llu out of range", what,
                           (unsigned long long)(off + done));
        ssize_t r = pwrite(fd, p + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vk_fail_errno(e, errno, "%s: write at offset %llu", what,
                                 (unsigned long long)(off + done));
        }
        if (r == 0)
            return vk_fail(e, VMDKIT_EIO, "%s: write at offset %llu made no progress", what,
                           (unsigned long long)(off + done));
        done += (size_t)r;
    }
    return 0;
}

int vk_fdatasync(int fd, const char *what, vk_err *e)
{
    while (fdatasync(fd) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINVAL || errno == EROFS) /* special files without sync */
            return 0;
        return vk_fail_errno(e, errno, "%s: fdatasync", what);
    }
    return 0;
}

void vk_start_writeback(int fd) { (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); }

int vk_file_size(int fd, uint64_t *size, const char *what, vk_err *e)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return vk_fail_errno(e, errno, "%s: stat", what);
    if (S_ISBLK(st.st_mode)) {
        uint64_t sz = 0;
        if (ioctl(fd, BLKGETSIZE64, &sz) != 0)
            return vk_fail_errno(e, errno, "%s: size of block device", what);
        *size = sz;
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: not a regular file or block device", what);
    *size = (uint64_t)st.st_size;
    return 0;
}

bool vk_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    /* check the head byte-wise, then compare the buffer with itself shifted */
    size_t head = len < 16 ? len : 16;
    for (size_t i = 0; i < head; i++)
        if (p[i])
            return false;
    return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

void vk_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* getrandom cannot fail otherwise on Linux >= 3.17; fall back */
            for (size_t i = 0; i < len; i++)
                p[i] = (uint8_t)rand();
            return;
        }
        p += r;
        len -= (size_t)r;
    }
}

uint32_t vk_random_cid(void)
{
    uint32_t cid;
    do
        vk_random(&cid, sizeof cid);
    while (cid == 0xffffffffu || cid == 0xfffffffeu);
    return cid;
}

/* The ranges of a lock (start, length; 0 = to the end of the file). */
static const struct lock_range {
    off_t start, len;
} writer_lock[] = {{0, 0}}, reader_lock[] = {
                                {0, VK_QEMU_READ_BYTE + 1},
                                {VK_QEMU_NO_WRITE_BYTE, 1},
                                {VK_QEMU_NO_RESIZE_BYTE, 1},
                                {VK_READER_MARK_START, 0},
};

int vk_lock_fd(int fd, bool exclusive, const char *what, vk_err *e)
{
    const struct lock_range *ranges = exclusive ? writer_lock : reader_lock;
    size_t n =
        exclusive ? sizeof writer_lock / sizeof *writer_lock : sizeof reader_lock / sizeof *reader_lock;
    size_t i;
    for (i = 0; i < n; i++) {
        struct flock fl = {
            .l_type = exclusive ? F_WRLCK : F_RDLCK,
            .l_whence = SEEK_SET,
            .l_start = ranges[i].start,
            .l_len = ranges[i].len,
        };
        if (fcntl(fd, F_OFD_SETLK, &fl) != 0)
            break;
    }
    if (i == n)
        return 0;
    int err = errno;
    if (i > 0) { /* all or nothing: drop the ranges taken */
        struct flock un = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
        (void)fcntl(fd, F_OFD_SETLK, &un);
    }
    errno = err;
    if (errno == EAGAIN || errno == EACCES)
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by another process (%s lock held)", what,
                       exclusive ? "a" : "a write");
    if (errno == EINVAL || errno == ENOLCK || errno == EBADF)
        return 0; /* file system without locks, or fd opened without the needed mode */
    return vk_fail_errno(e, errno, "%s: lock", what);
}

int vk_fsync_dir(const char *dir, vk_err *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return vk_fail_errno(e, errno, "%s: open folder", dir);
    int r = 0;
    while (fsync(fd) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EINVAL)
            r = vk_fail_errno(e, errno, "%s: fsync folder", dir);
        break;
    }
    close(fd);
    return r;
}

int vk_fsync_parent(const char *path, vk_err *e)
{
    char *dir = vk_path_dirname(path, e);
    if (!dir)
        return VMDKIT_ENOMEM;
    int r = vk_fsync_dir(dir, e);
    free(dir);
    return r;
}

bool vk_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int write_file_atomic(const char *path, const void *data, size_t len, vk_err *e);

int vk_write_file_atomic(const char *path, const void *data, size_t len, vk_err *e)
{
    /* a rename over a symbolic link would replace the link, not its file */
    struct stat lst;
    char *target = NULL;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) && !(target = realpath(path, NULL)))
        return vk_fail_errno(e, errno, "%s: resolve the symbolic link", path);
    int r = write_file_atomic(target ? target : path, data, len, e);
    free(target);
    return r;
}

static int write_file_atomic(const char *path, const void *data, size_t len, vk_err *e)
{
    size_t n = strlen(path) + 32;
    char *tmp = vk_malloc(n, e);
    if (!tmp)
        return VMDKIT_ENOMEM;
    snprintf(tmp, n, "%s.vmdkit-tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int r = vk_fail_errno(e, errno, "%s: create temporary file", path);
        free(tmp);
        return r;
    }
    struct stat st;
    if (stat(path, &st) == 0)
        (void)fchmod(fd, st.st_mode & 07777);
    else
        (void)fchmod(fd, 0644);
    int r = vk_pwrite_full(fd, data, len, 0, path, e);
    if (!r && fsync(fd) != 0)
        r = vk_fail_errno(e, errno, "%s: fsync", tmp);
    if (close(fd) != 0 && !r)
        r = vk_fail_errno(e, errno, "%s: close", tmp);
    if (!r && rename(tmp, path) != 0)
        r = vk_fail_errno(e, errno, "%s: rename", path);
    if (r) {
        unlink(tmp);
        free(tmp);
        return r;
    }
    free(tmp);
    return vk_fsync_parent(path, e);
}

int vk_read_file(const char *path, size_t max, char **data, size_t *len, vk_err *e)
{
    /* without blocking: a FIFO would wait for a writer forever */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return vk_fail_errno(e, errno, "%s: open", path);
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) != 0)
        r = vk_fail_errno(e, errno, "%s: stat", path);
    else if (!S_ISREG(st.st_mode))
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: not a regular file", path);
    if (r) {
        close(fd);
        return r;
    }
    uint64_t size;
    r = vk_file_size(fd, &size, path, e);
    if (!r && size > max)
        r = vk_fail(e, VMDKIT_ELIMIT, "%s: file is %llu bytes, more than the %zu accepted", path,
                    (unsigned long long)size, max);
    char *buf = NULL;
    if (!r && !(buf = vk_malloc((size_t)size + 1, e)))
        r = VMDKIT_ENOMEM;
    if (!r)
        r = vk_pread_full(fd, buf, (size_t)size, 0, path, e);
    close(fd);
    if (r) {
        free(buf);
        return r;
    }
    buf[size] = 0;
    *data = buf;
    *len = (size_t)size;
    return 0;
}

static size_t budget;
static pthread_once_t budget_once = PTHREAD_ONCE_INIT;

static void budget_init(void)
{
    const char *env = getenv("VMDKIT_MAX_OPEN_EXTENTS");
    char *end;
    unsigned long v = env && *env ? strtoul(env, &end, 10) : 0;
    if (env && *env && !*end && v >= 1) {
        budget = v;
        return;
    }
    struct rlimit rl;
    rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    /* a quarter: the rest is for the links' own descriptors (descriptor
     * files, folders, monolithic files), the copy engine and the caller */
    rlim_t q = soft == RLIM_INFINITY ? 65536 : soft / 4;
    budget = q < 8 ? 8 : q > 65536 ? 65536 : (size_t)q;
}

size_t vk_open_files_budget(void)
{
    pthread_once(&budget_once, budget_init);
    return budget;
}
