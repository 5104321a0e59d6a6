/* holders.c - who else is using a file (see holders.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "holders.h"
#include "link.h"

/* QEMU's lock bytes (block/file-posix.c): RAW_LOCK_PERM_BASE + bit for a
 * permission it holds, RAW_LOCK_SHARED_BASE + bit for one it does not
 * share; BLK_PERM_WRITE is bit 1. */
#define QEMU_LOCK_FIRST 100
#define QEMU_LOCK_LAST 299
#define QEMU_WRITE_BYTE 101

bool vk_vmware_lock_present(const char *path)
{
    size_t n = strlen(path) + 5;
    char *lck = malloc(n);
    if (!lck)
        return false;
    snprintf(lck, n, "%s.lck", path);
    struct stat st;
    bool present = lstat(lck, &st) == 0;
    free(lck);
    return present;
}

/* One line of /proc/locks:
 *   "1: OFDLCK ADVISORY  READ -1 fe:00:10953000 100 101"
 *   "2: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 EOF"
 * Lines of waiters ("1: -> ...") are skipped by the caller. */
static bool parse_lock_line(const char *line, char *mode, size_t mode_size, unsigned *maj, unsigned *min,
                            uint64_t *ino, uint64_t *start, uint64_t *end, bool *to_eof)
{
    char kind[16], adv[16], m[16], endtok[32];
    long pid;
    unsigned long long i, s;
    if (sscanf(line, "%*[^:]: %15s %15s %15s %ld %x:%x:%llu %llu %31s", kind, adv, m, &pid, maj, min, &i,
               &s, endtok) != 9)
        return false;
    snprintf(mode, mode_size, "%s", m);
    *ino = i;
    *start = s;
    *to_eof = strcmp(endtok, "EOF") == 0;
    *end = *to_eof ? UINT64_MAX : strtoull(endtok, NULL, 10);
    return true;
}

/* One lock of /proc/locks. */
typedef struct lock_entry {
    dev_t dev;
    uint64_t ino, start, end;
    bool to_eof, write;
} lock_entry;

struct vk_lock_snapshot {
    lock_entry *v;
    size_t n;
};
typedef struct vk_lock_snapshot lock_table;

static int entry_cmp(const void *a, const void *b)
{
    const lock_entry *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Read /proc/locks once into T, sorted by file; false when the table
 * cannot be read (or no memory for it). */
static bool load_proc_locks(lock_table *t)
{
    t->v = NULL;
    t->n = 0;
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return false;
    size_t cap = 0;
    bool ok = true;
    char line[512];
    while (ok && fgets(line, sizeof line, f)) {
        if (strstr(line, "->"))
            continue; /* a waiter, not a holder */
        char mode[16];
        unsigned maj, min;
        lock_entry x;
        if (!parse_lock_line(line, mode, sizeof mode, &maj, &min, &x.ino, &x.start, &x.end, &x.to_eof))
            continue;
        x.dev = makedev(maj, min);
        x.write = strcmp(mode, "WRITE") == 0;
        if (t->n == cap) {
            cap = cap ? cap * 2 : 64;
            lock_entry *v = realloc(t->v, cap * sizeof *v);
            if (!v) {
                ok = false;
                break;
            }
            t->v = v;
        }
        t->v[t->n++] = x;
    }
    fclose(f);
    if (!ok) {
        free(t->v);
        return false;
    }
    if (t->n)
        qsort(t->v, t->n, sizeof *t->v, entry_cmp);
    return true;
}

/* Is X one of the shared ranges a vmdkit reader takes besides its mark
 * (io.c vk_lock_fd)? */
static bool is_reader_range(const lock_entry *x)
{
    if (x->write || x->to_eof)
        return false;
    return (x->start == 0 && x->end == VK_QEMU_READ_BYTE) ||
           (x->start == VK_QEMU_NO_WRITE_BYTE && x->end == VK_QEMU_NO_WRITE_BYTE) ||
           (x->start == VK_QEMU_NO_RESIZE_BYTE && x->end == VK_QEMU_NO_RESIZE_BYTE);
}

/* Classify the locks of table T on the file ST.  A vmdkit reader's lock
 * takes QEMU's reader bytes too: while its mark is there, those ranges are
 * counted as its own (a QEMU reader beside it is a reader all the same;
 * a QEMU writer is still seen on its write byte, which no vmdkit reader
 * takes). */
static void classify_locks(const lock_table *t, const struct stat *st, vk_holders *h)
{
    lock_entry key = {.dev = st->st_dev, .ino = (uint64_t)st->st_ino};
    size_t lo = 0, hi = t->n;
    while (lo < hi) { /* the first entry not below KEY */
        size_t mid = lo + (hi - lo) / 2;
        if (entry_cmp(&t->v[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < t->n && entry_cmp(&t->v[end], &key) == 0)
        end++;
    for (size_t i = lo; i < end; i++) {
        const lock_entry *x = &t->v[i];
        if (x->start == 0 && x->to_eof && x->write)
            h->vmdkit_writer = true;
        else if (x->start == VK_READER_MARK_START && x->to_eof && !x->write)
            h->vmdkit_reader = true;
    }
    for (size_t i = lo; i < end; i++) {
        const lock_entry *x = &t->v[i];
        if ((x->start == 0 && x->to_eof) || (x->start == VK_READER_MARK_START && x->to_eof))
            continue; /* counted above */
        if (h->vmdkit_reader && is_reader_range(x))
            continue;
        if (x->start >= QEMU_LOCK_FIRST && x->end <= QEMU_LOCK_LAST) {
            h->qemu = true;
            if (x->start <= QEMU_WRITE_BYTE && QEMU_WRITE_BYTE <= x->end)
                h->qemu_writer = true;
        } else {
            h->unknown = true;
        }
    }
}

/* Without /proc/locks: is any lock held on the file at all? */
static void probe_getlk(const char *path, vk_holders *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
        /* the first lock found; a reader's mark is asked for by itself */
        struct flock mark = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = VK_READER_MARK_START};
        if (fl.l_start == 0 && fl.l_len == 0 && fl.l_type == F_WRLCK)
            h->vmdkit_writer = true;
        else if (fcntl(fd, F_OFD_GETLK, &mark) == 0 && mark.l_type == F_RDLCK &&
                 mark.l_start == VK_READER_MARK_START && mark.l_len == 0)
            h->vmdkit_reader = true;
        else
            h->unknown = true;
    }
    close(fd);
}

/* Probe PATH with the lock table T (NULL: none could be read). */
static void probe_with(const char *path, const lock_table *t, vk_holders *h)
{
    memset(h, 0, sizeof *h);
    h->vmware = vk_vmware_lock_present(path);
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (t)
        classify_locks(t, &st, h);
    else
        probe_getlk(path, h);
}

vk_lock_snapshot *vk_lock_snapshot_take(void)
{
    lock_table *t = malloc(sizeof *t);
    if (t && !load_proc_locks(t)) {
        free(t);
        t = NULL;
    }
    return t;
}

void vk_lock_snapshot_free(vk_lock_snapshot *s)
{
    if (s) {
        free(s->v);
        free(s);
    }
}

int vk_holders_probe(const char *path, vk_holders *h, vk_err *e)
{
    vk_lock_snapshot *t = vk_lock_snapshot_take();
    int r = vk_holders_probe_in(t, path, h, e);
    vk_lock_snapshot_free(t);
    return r;
}

int vk_holders_probe_in(const vk_lock_snapshot *t, const char *path, vk_holders *h, vk_err *e)
{
    (void)e;
    probe_with(path, t, h);
    return 0;
}

/* What holders H of PATH mean for NEED. */
static int verdict(const char *path, const vk_holders *h, enum vk_hold_need need, vk_err *e)
{
    bool any = need == VK_NEED_EXCLUSIVE;
    if (h->vmware)
        return vk_fail(e, VMDKIT_ELOCKED,
                       "%s: in use by VMware (%s.lck exists): shut its virtual machine down first", path,
                       path);
    if (h->qemu_writer || (any && h->qemu))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by QEMU (%s): stop it first", path,
                       h->qemu_writer ? "open for writing" : "open");
    if (h->vmdkit_writer)
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by another process (a write lock held)", path);
    if (any && (h->vmdkit_reader || h->unknown))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by another process (%s)", path,
                       h->vmdkit_reader ? "a read lock held" : "a lock held");
    return 0;
}

int vk_holders_check(const char *path, enum vk_hold_need need, vk_err *e)
{
    vk_lock_snapshot *t = vk_lock_snapshot_take();
    int r = vk_holders_check_in(t, path, need, e);
    vk_lock_snapshot_free(t);
    return r;
}

int vk_holders_check_in(const vk_lock_snapshot *t, const char *path, enum vk_hold_need need, vk_err *e)
{
    vk_holders h;
    probe_with(path, t, &h);
    return verdict(path, &h, need, e);
}

/* /proc/locks is read once for all the files: once per file would cost
 * the square of their number on a chain of thousands of pieces. */
int vk_disk_check_no_writer(const vmdkit_disk *d, vk_err *e)
{
    vk_lock_snapshot *t = vk_lock_snapshot_take();
    int r = 0;
    for (const vk_link *l = d->top; !r && l; l = l->parent) {
        r = vk_holders_check_in(t, l->path, VK_NEED_NO_WRITER, e);
        for (size_t i = 0; !r && i < l->n_ext; i++)
            if (l->ext[i].path && strcmp(l->ext[i].path, l->path) != 0)
                r = vk_holders_check_in(t, l->ext[i].path, VK_NEED_NO_WRITER, e);
    }
    vk_lock_snapshot_free(t);
    return r;
}
