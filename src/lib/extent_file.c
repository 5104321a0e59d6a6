/* extent_file.c - the pool of extent file descriptors.
 *
 * One process-wide pool, because what it bounds is the process's
 * RLIMIT_NOFILE, shared by every disk open in it (convert's source and
 * destination, the plugin's connections).  Each file is a vk_xfile shared
 * by the extents that name it; open unpinned files sit on a list, most
 * recently held first.  Holding a file counts a reference under the pool's
 * mutex (no system call while the file is open); a file with references
 * is never closed.  When more unpinned files are open than the pool
 * allows, holding one closes the least recently held free ones.
 *
 * Durability: closing a file that was written since its last flush first
 * fdatasyncs it, so the data written through the old descriptor is on
 * disk before any later flush writes the grain tables that point at it
 * through the new one (the order of extent_sparse.c: data, tables,
 * directory is kept).  A failed fdatasync there is remembered and
 * returned by the next flush of an extent of that file.  These closes and
 * the reopens run under the mutex: they are rare while the pool is large
 * enough for the working set, and simple to get right.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extent.h"

struct vk_xfile {
    int fd; /* -1 while the pool has it closed */
    dev_t dev;
    ino_t ino;
    bool pinned;
    unsigned refs;     /* holders now */
    int sync_errno;    /* a failed fdatasync at a close by the pool */
    vk_extent **users; /* the extents sharing it; users[0] opens it again */
    size_t n_users;
    vk_xfile_reopen_fn reopen;
    void *opaque;
    vk_xfile *newer, *older; /* on the list while open and unpinned */
    vk_xfile *next_same;     /* the next file in its hash bucket */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static vk_xfile *newest, *oldest;
static size_t n_open;   /* unpinned files open, held or not */
static size_t pool_max; /* vk_open_files_budget, read at the first adopt */

/* The hash table of every file by (dev, ino): n_buckets is 0 or a power of
 * two; it grows to keep about one file per bucket.  When it cannot grow it
 * only gets slower; when it was never allocated (no memory), by_id_ok is
 * false and vk_extent_find_file walks the link's extents. */
static vk_xfile **buckets;
static size_t n_buckets, n_files;
static bool by_id_ok = true;

static size_t bucket_of(dev_t dev, ino_t ino, size_t n)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15u ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fu;
    return (size_t)(h ^ (h >> 29)) & (n - 1);
}

static void by_id_grow(void)
{
    size_t n = n_buckets ? 2 * n_buckets : 64;
    vk_xfile **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < n_buckets; i++)
        for (vk_xfile *f = buckets[i], *next; f; f = next) {
            next = f->next_same;
            size_t k = bucket_of(f->dev, f->ino, n);
            f->next_same = b[k];
            b[k] = f;
        }
    free(buckets);
    buckets = b;
    n_buckets = n;
}

static void by_id_add(vk_xfile *f)
{
    if (n_files >= n_buckets)
        by_id_grow();
    if (!n_buckets) {
        by_id_ok = false; /* from now on vk_extent_find_file walks */
        return;
    }
    size_t k = bucket_of(f->dev, f->ino, n_buckets);
    f->next_same = buckets[k];
    buckets[k] = f;
    n_files++;
}

static void by_id_remove(vk_xfile *f)
{
    if (!n_buckets)
        return;
    for (vk_xfile **p = &buckets[bucket_of(f->dev, f->ino, n_buckets)]; *p; p = &(*p)->next_same)
        if (*p == f) {
            *p = f->next_same;
            n_files--;
            if (!n_files) { /* nothing open: give the memory back */
                free(buckets);
                buckets = NULL;
                n_buckets = 0;
            }
            return;
        }
}

size_t vk_extent_pool_max(void) { return vk_open_files_budget(); }

static void set_fd(vk_xfile *f, int fd)
{
    f->fd = fd;
    for (size_t i = 0; i < f->n_users; i++)
        f->users[i]->fd = fd;
}

static void unlink_lru(vk_xfile *f)
{
    if (f->newer)
        f->newer->older = f->older;
    else
        newest = f->older;
    if (f->older)
        f->older->newer = f->newer;
    else
        oldest = f->newer;
    f->newer = f->older = NULL;
}

static void push_newest(vk_xfile *f)
{
    f->older = newest;
    f->newer = NULL;
    if (newest)
        newest->newer = f;
    newest = f;
    if (!oldest)
        oldest = f;
}

/* Close F (open, unpinned, not held), fdatasync first when written. */
static void pool_close(vk_xfile *f)
{
    bool unsynced = false;
    for (size_t i = 0; i < f->n_users; i++)
        unsynced |= f->users[i]->unsynced;
    if (unsynced) {
        int r;
        while ((r = fdatasync(f->fd)) != 0 && errno == EINTR)
            ;
        if (r != 0 && errno != EINVAL && !f->sync_errno)
            f->sync_errno = errno;
        /* unsynced stays: the driver's flush (tables, directory) is
         * still to come, through the file opened again */
    }
    unlink_lru(f);
    close(f->fd);
    set_fd(f, -1);
    n_open--;
}

/* Close free files, oldest first, while more than the pool allows are open. */
static void pool_trim(void)
{
    vk_xfile *f = oldest;
    while (n_open > pool_max && f) {
        vk_xfile *next = f->newer;
        if (!f->refs)
            pool_close(f);
        f = next;
    }
}

static int add_user(vk_xfile *f, vk_extent *x, vk_err *e)
{
    vk_extent **u = realloc(f->users, (f->n_users + 1) * sizeof *u);
    if (!u)
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    f->users = u;
    u[f->n_users++] = x;
    x->file = f;
    return 0;
}

int vk_extent_adopt(vk_extent *x, bool pinned, vk_xfile_reopen_fn reopen, void *opaque, vk_err *e)
{
    struct stat st;
    if (fstat(x->fd, &st) != 0)
        return vk_fail_errno(e, errno, "%s: stat", vk_extent_file(x));
    vk_xfile *f = vk_calloc(1, sizeof *f, e);
    if (!f)
        return VMDKIT_ENOMEM;
    f->fd = x->fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->pinned = pinned;
    f->refs = 1;
    f->reopen = reopen;
    f->opaque = opaque;
    int r = add_user(f, x, e);
    if (r) {
        free(f);
        return r;
    }
    size_t max = vk_open_files_budget();
    pthread_mutex_lock(&pool_lock);
    pool_max = max;
    by_id_add(f);
    if (!pinned) {
        push_newest(f);
        n_open++;
        pool_trim();
    }
    pthread_mutex_unlock(&pool_lock);
    return 0;
}

vk_extent *vk_extent_find_file(vk_extent *first, vk_extent *x, dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&pool_lock);
    bool indexed = by_id_ok;
    vk_extent *found = NULL;
    /* the lowest user in [FIRST, X) of any file with this identity (there
     * are two when extents open one file in both modes) */
    uintptr_t lo = (uintptr_t)first, hi = (uintptr_t)x;
    for (vk_xfile *f = indexed && n_buckets ? buckets[bucket_of(dev, ino, n_buckets)] : NULL; f;
         f = f->next_same) {
        if (f->dev != dev || f->ino != ino)
            continue;
        for (size_t i = 0; i < f->n_users; i++) {
            uintptr_t u = (uintptr_t)f->users[i];
            if (u >= lo && u < hi && (!found || u < (uintptr_t)found))
                found = f->users[i];
        }
    }
    pthread_mutex_unlock(&pool_lock);
    if (!indexed)
        for (vk_extent *p = first; p < x && !found; p++)
            if (p->file && p->file->dev == dev && p->file->ino == ino)
                found = p;
    return found;
}

bool vk_extent_is_file(const vk_extent *x, dev_t dev, ino_t ino)
{
    return x->file && x->file->dev == dev && x->file->ino == ino;
}

void vk_extent_share(vk_extent *x, vk_extent *prev)
{
    vk_xfile *f = prev->file;
    int fd = x->fd;
    pthread_mutex_lock(&pool_lock);
    if (add_user(f, x, NULL) != 0) {
        /* no memory for the list: X keeps its own descriptor, unpooled */
        pthread_mutex_unlock(&pool_lock);
        return;
    }
    f->refs++;
    if (f->fd < 0) { /* closed by the pool: X's descriptor (same policy, same file) serves */
        set_fd(f, fd);
        push_newest(f);
        n_open++;
        pool_trim();
    } else {
        close(fd);
        x->fd = f->fd;
    }
    pthread_mutex_unlock(&pool_lock);
}

int vk_extent_hold(vk_extent *x, vk_err *e)
{
    vk_xfile *f = x->file;
    /* a pinned file stays open until the link closes: no count, no lock
     * (monolithic disks pay nothing for the pool) */
    if (!f || f->pinned)
        return 0;
    int r = 0;
    pthread_mutex_lock(&pool_lock);
    if (f->fd >= 0) {
        if (!f->pinned && newest != f) {
            unlink_lru(f);
            push_newest(f);
        }
        f->refs++;
    } else {
        int fd = -1;
        r = f->reopen(f->opaque, f->users[0], &fd, e);
        if (!r) {
            set_fd(f, fd);
            f->refs++;
            push_newest(f);
            n_open++;
            pool_trim();
        }
    }
    pthread_mutex_unlock(&pool_lock);
    return r;
}

void vk_extent_release(vk_extent *x)
{
    vk_xfile *f = x->file;
    if (!f || f->pinned)
        return;
    pthread_mutex_lock(&pool_lock);
    f->refs--;
    pthread_mutex_unlock(&pool_lock);
}

int vk_extent_hold_if_open(vk_extent *x)
{
    vk_xfile *f = x->file;
    if (!f || f->pinned)
        return x->fd;
    pthread_mutex_lock(&pool_lock);
    int fd = f->fd;
    if (fd >= 0)
        f->refs++;
    pthread_mutex_unlock(&pool_lock);
    return fd;
}

void vk_extent_written(vk_extent *x) { x->unsynced = true; }

int vk_extent_flushed(vk_extent *x, int flush_result, vk_err *e)
{
    vk_xfile *f = x->file;
    int err = 0;
    if (f) {
        pthread_mutex_lock(&pool_lock);
        err = f->sync_errno;
        f->sync_errno = 0;
        pthread_mutex_unlock(&pool_lock);
    }
    if (flush_result)
        return flush_result;
    if (err)
        return vk_fail_errno(e, err, "%s: fdatasync (when its descriptor was closed to make room)",
                             vk_extent_file(x));
    x->unsynced = false;
    return 0;
}

void vk_extent_forget(vk_extent *x)
{
    vk_xfile *f = x->file;
    if (!f) {
        if (x->fd >= 0)
            close(x->fd);
        x->fd = -1;
        return;
    }
    pthread_mutex_lock(&pool_lock);
    size_t i = 0;
    while (i < f->n_users && f->users[i] != x)
        i++;
    memmove(f->users + i, f->users + i + 1, (f->n_users - i - 1) * sizeof *f->users);
    f->n_users--;
    x->file = NULL;
    x->fd = -1;
    if (f->n_users == 0) {
        by_id_remove(f);
        if (f->fd >= 0) {
            if (!f->pinned) {
                unlink_lru(f);
                n_open--;
            }
            close(f->fd);
        }
        free(f->users);
        free(f);
    }
    pthread_mutex_unlock(&pool_lock);
}
