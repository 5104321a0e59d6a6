/* extent_flat.c - FLAT/VMFS extents (raw data in a file or device at an
 * offset) and ZERO extents (no file, read as zeros).
 *
 * Zeroing asks the file system first: a hole punched with
 * FALLOC_FL_PUNCH_HOLE reads as zeros (a flat extent has no parent to show
 * through) and costs no data writes; FALLOC_FL_ZERO_RANGE zeros the range
 * and keeps it allocated; only where the file system refuses both are
 * zeros written.  Either way the change is durable at the next flush
 * (fdatasync), like any write.
 *
 * Threads: status and read only pread and lseek (SEEK_DATA/SEEK_HOLE
 * take their position as an argument; the file offset they move is never
 * used), so they are safe beside each other.  The fallocate flags below
 * change only in zero, which runs alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extent.h"

typedef struct flat_priv {
    bool can_seek_hole; /* regular file: holes report as zero */
    bool no_punch;      /* the file system refused FALLOC_FL_PUNCH_HOLE */
    bool no_zero_range; /* the file system refused FALLOC_FL_ZERO_RANGE */
} flat_priv;

static uint64_t flat_file_off(const vk_extent *x, uint64_t sector)
{
    return (x->offset_sectors + sector) * VK_SECTOR;
}

static int flat_status(vk_extent *x, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e)
{
    flat_priv *p = x->priv;
    (void)e;
    *alloc = VMDKIT_ALLOC_DATA;
    *run = n;
    if (!p->can_seek_hole)
        return 0;
    /* Holes of a sparse host file read as zeros: report them so copies skip them. */
    off_t start = (off_t)flat_file_off(x, sector);
    off_t end = (off_t)flat_file_off(x, sector + n);
    off_t data = lseek(x->fd, start, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) { /* no data after start: hole to the end */
            *alloc = VMDKIT_ALLOC_ZERO;
            return 0;
        }
        return 0; /* SEEK_DATA unsupported: report data */
    }
    if (data > start) {
        uint64_t hole_sectors = (uint64_t)(data - start) / VK_SECTOR;
        if (hole_sectors == 0)
            return 0;
        *alloc = VMDKIT_ALLOC_ZERO;
        *run = vk_min(n, hole_sectors);
        return 0;
    }
    off_t hole = lseek(x->fd, start, SEEK_HOLE);
    if (hole > start && hole < end) {
        /* round the data run up to a sector so runs stay sector-granular */
        uint64_t s = vk_div_round_up((uint64_t)(hole - start), VK_SECTOR);
        *run = vk_min(n, vk_max(s, 1));
    }
    return 0;
}

static int flat_read(vk_extent *x, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    /* Zero-fill past the file end: a flat file created by truncation may be
     * shorter on some file systems only if it was shrunk; size was checked at open. */
    return vk_pread_zfill(x->fd, buf, n * VK_SECTOR, flat_file_off(x, sector), x->path, e);
}

static int flat_write(vk_extent *x, uint64_t sector, uint64_t n, const void *buf, const vk_backing *bk,
                      vk_err *e)
{
    (void)bk;
    return vk_pwrite_full(x->fd, buf, n * VK_SECTOR, flat_file_off(x, sector), x->path, e);
}

/* fallocate MODE over the range: 1 done, 0 refused by the file system
 * (it does not support MODE here), or an error. */
static int try_fallocate(vk_extent *x, int mode, uint64_t sector, uint64_t n, vk_err *e)
{
    off_t off = (off_t)flat_file_off(x, sector), len = (off_t)(n * VK_SECTOR);
    int r;
    do
        r = fallocate(x->fd, mode, off, len);
    while (r != 0 && errno == EINTR);
    if (r == 0)
        return 1;
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL || errno == ENODEV || errno == EPERM)
        return 0; /* not for this file, file system or device */
    return vk_fail_errno(e, errno, "%s: fallocate at offset %llu", x->path, (unsigned long long)off);
}

static int flat_zero(vk_extent *x, uint64_t sector, uint64_t n, unsigned how, const vk_backing *bk,
                     vk_err *e)
{
    flat_priv *p = x->priv;
    (void)bk;
    bool punch = !(how & VK_ZERO_KEEP_SPACE) && !p->no_punch;
    bool zero_range = !p->no_zero_range;
    if (how & VK_ZERO_CHECK) /* only what is known to fail: the file system is asked below */
        return punch || zero_range
                   ? 0
                   : vk_fail(e, VMDKIT_EUNSUPPORTED,
                             "%s: the file system can only zero by writing zeros", x->path);
    int r;
    if (punch) {
        if ((r = try_fallocate(x, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, sector, n, e)))
            return r < 0 ? r : 0;
        p->no_punch = true;
    }
    if (zero_range) {
        if ((r = try_fallocate(x, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, sector, n, e)))
            return r < 0 ? r : 0;
        p->no_zero_range = true;
    }
    if (how & VK_ZERO_FAST)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: the file system can only zero by writing zeros",
                       x->path);
    /* Write zeros in bounded chunks. */
    size_t chunk = 1u << 20;
    void *z = vk_calloc(1, chunk, e);
    if (!z)
        return VMDKIT_ENOMEM;
    r = 0;
    uint64_t done = 0;
    while (!r && done < n) {
        uint64_t k = vk_min(n - done, chunk / VK_SECTOR);
        r = vk_pwrite_full(x->fd, z, k * VK_SECTOR, flat_file_off(x, sector + done), x->path, e);
        done += k;
    }
    free(z);
    return r;
}

/* A readahead hint to the kernel. */
static int flat_prefetch(vk_extent *x, uint64_t sector, uint64_t n, vk_err *e)
{
    (void)e;
    (void)posix_fadvise(x->fd, (off_t)flat_file_off(x, sector), (off_t)(n * VK_SECTOR),
                        POSIX_FADV_WILLNEED);
    return 0;
}

static int flat_flush(vk_extent *x, vk_err *e)
{
    return x->writable ? vk_fdatasync(x->fd, x->path, e) : 0;
}

static int flat_close(vk_extent *x, vk_err *e)
{
    int r = flat_flush(x, e);
    free(x->priv);
    x->priv = NULL;
    return r;
}

static void flat_describe(vk_extent *x, vmdkit_sparse_facts *f, uint64_t *allocated)
{
    (void)f;
    struct stat st;
    /* a flat extent stores every sector; report what the host file holds */
    if (fstat(x->fd, &st) == 0 && S_ISREG(st.st_mode))
        *allocated = vk_min((uint64_t)st.st_blocks * 512, x->size_sectors * VK_SECTOR);
    else
        *allocated = x->size_sectors * VK_SECTOR;
}

static const vk_extent_ops flat_ops = {
    .name = "flat",
    .status = flat_status,
    .read = flat_read,
    .write = flat_write,
    .zero = flat_zero,
    .prefetch = flat_prefetch,
    .flush = flat_flush,
    .close = flat_close,
    .describe = flat_describe,
};

int vk_flat_open(vk_extent *x, vk_err *e)
{
    uint64_t size;
    int r = vk_file_size(x->fd, &size, x->path, e);
    if (r)
        return r;
    uint64_t end_sectors;
    if (!vk_add_ok(x->offset_sectors, x->size_sectors, &end_sectors) ||
        end_sectors > UINT64_MAX / VK_SECTOR)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: extent offset+size overflow", x->path);
    if (end_sectors * VK_SECTOR > size)
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: extent size: descriptor claims %llu sectors from offset %llu, the file holds %llu",
            x->path, (unsigned long long)x->size_sectors, (unsigned long long)x->offset_sectors,
            (unsigned long long)(size / VK_SECTOR));
    flat_priv *p = vk_calloc(1, sizeof *p, e);
    if (!p)
        return VMDKIT_ENOMEM;
    struct stat st;
    p->can_seek_hole = fstat(x->fd, &st) == 0 && S_ISREG(st.st_mode);
    x->priv = p;
    x->ops = &flat_ops;
    return 0;
}

/* ---- ZERO ---- */

static int zero_status(vk_extent *x, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e)
{
    (void)x;
    (void)sector;
    (void)e;
    *alloc = VMDKIT_ALLOC_ZERO;
    *run = n;
    return 0;
}

static int zero_read(vk_extent *x, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    (void)x;
    (void)sector;
    (void)e;
    memset(buf, 0, n * VK_SECTOR);
    return 0;
}

static int zero_close(vk_extent *x, vk_err *e)
{
    (void)x;
    (void)e;
    return 0;
}

static const vk_extent_ops zero_ops = {
    .name = "zero",
    .status = zero_status,
    .read = zero_read,
    .close = zero_close,
};

int vk_zero_open(vk_extent *x, vk_err *e)
{
    (void)e;
    x->ops = &zero_ops;
    return 0;
}
