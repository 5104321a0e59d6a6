/* extent.h - the extent driver interface.
 *
 * An extent is one piece of a link (FLAT file, ZERO, hosted sparse KDMV,
 * ESX COWD ...).  Drivers know nothing about chains: where a write needs
 * the content underneath (copy-on-write of a partial grain) they call the
 * vk_backing callback given by the link layer.  All positions here are in
 * sectors relative to the start of the extent.
 *
 * Threads: status, read, prefetch and describe may run in several threads
 * at once as long as no write, zero, flush or close runs on the extent;
 * drivers guard the caches those calls fill (grain tables, decoded
 * grains) themselves and read file data with pread only.
 */
#ifndef VK_EXTENT_H
#define VK_EXTENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "descriptor.h"
#include "vk.h"

typedef struct vk_extent vk_extent;

/* Reads the content "underneath" this extent (the parent link, or zeros). */
typedef struct vk_backing {
    int (*read)(void *opaque, uint64_t link_sector, uint64_t n_sectors, void *buf, vk_err *e);
    void *opaque;
} vk_backing;

/* How an extent's zero op may work. */
enum vk_zero_how {
    VK_ZERO_PARENT = 1u << 0,     /* unallocated sectors would show a parent */
    VK_ZERO_KEEP_SPACE = 1u << 1, /* keep the range allocated (no hole punched) */
    VK_ZERO_FAST = 1u << 2,       /* only where no data must be written, else
                                     VMDKIT_EUNSUPPORTED with nothing changed */
    VK_ZERO_CHECK = 1u << 3,      /* with VK_ZERO_FAST: only say whether it would
                                     succeed, change nothing */
};

typedef struct vk_extent_ops {
    const char *name;
    /* Allocation of the run at SECTOR, at most N sectors: *alloc receives a
     * vmdkit_alloc value, *run the run length (>= 1). */
    int (*status)(vk_extent *x, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e);
    /* Read N sectors; unallocated parts read as zeros. */
    int (*read)(vk_extent *x, uint64_t sector, uint64_t n, void *buf, vk_err *e);
    /* Write N sectors; BK supplies the content under partial grains. NULL = read-only driver. */
    int (*write)(vk_extent *x, uint64_t sector, uint64_t n, const void *buf, const vk_backing *bk,
                 vk_err *e);
    /* Make N sectors read as zeros even over a parent.  HOW is a set of
     * VK_ZERO_* flags.  NULL: the extent cannot be zeroed. */
    int (*zero)(vk_extent *x, uint64_t sector, uint64_t n, unsigned how, const vk_backing *bk,
                vk_err *e);
    /* Start bringing N sectors at SECTOR into memory: grain tables, decoded
     * grains, the page cache (optional; a hint, may do less). */
    int (*prefetch)(vk_extent *x, uint64_t sector, uint64_t n, vk_err *e);
    /* Make completed writes durable, in crash-safe order. */
    int (*flush)(vk_extent *x, vk_err *e);
    /* Flush if writable, release everything. */
    int (*close)(vk_extent *x, vk_err *e);
    /* Fill sparse facts and allocated data bytes (optional). */
    void (*describe)(vk_extent *x, vmdkit_sparse_facts *f, uint64_t *allocated_bytes);
} vk_extent_ops;

struct vk_extent {
    const vk_extent_ops *ops;
    char *name; /* as in the descriptor */
    char *path; /* resolved path (NULL for ZERO) */
    enum vk_access access;
    enum vk_extent_type type;
    uint64_t start_sector; /* first virtual sector of the link it covers */
    uint64_t size_sectors;
    uint64_t offset_sectors; /* FLAT offset inside the file */
    uint64_t grain_sectors;  /* allocation unit of sparse drivers, 0 otherwise */
    int fd;                  /* -1 when none; valid only while held (vk_extent_hold) */
    struct vk_xfile *file;   /* the pooled file behind fd, or NULL (ZERO, NOACCESS) */
    uint64_t file_base;      /* a member of an archive (an .ova): where its bytes */
    uint64_t file_bytes;     /* start in fd and how many; 0 and 0: the whole file */
    bool writable;
    bool unsynced; /* written since its last flush: the pool fdatasyncs its
                      file before closing it, and flush must run */
    void *priv;    /* driver state */
};

/*
 * Extent files are kept open through one process-wide pool of descriptors
 * (extent_file.c), so that a disk of thousands of pieces, parents
 * included, needs only a bounded number of them.  An extent's fd is valid
 * between vk_extent_hold and vk_extent_release; in between, the pool may
 * close it (least recently used first) and the next hold opens the file
 * again through the link's reopen callback, which applies the policy of
 * the first open and checks that it found the same file.  Extents naming
 * one file share its descriptor.  A pinned file (the one that carries a
 * link's lock: a monolithic or embedded-descriptor file, a raw image) is
 * never closed before the link is.
 *
 * Threads: all of this is safe from several threads at once; the pool's
 * list is guarded by one mutex, and a held file is never closed.
 */
typedef struct vk_xfile vk_xfile;

/* Open the file of X again (after the pool closed it) with the policy of
 * its first open: the same folder, the same lock, and the same file
 * (st_dev, st_ino, type) or an error naming it.  *FD receives it. */
typedef int (*vk_xfile_reopen_fn)(void *opaque, vk_extent *x, int *fd, vk_err *e);

/* X's file is X->fd, just opened and checked: put it in the pool, held
 * once (release it after the driver opened).  PINNED: never closed before
 * vk_extent_forget. */
int vk_extent_adopt(vk_extent *x, bool pinned, vk_xfile_reopen_fn reopen, void *opaque, vk_err *e);
/* X names the file that earlier extent PREV has (same st_dev/st_ino):
 * share it, held once; X->fd, a new descriptor of that file opened by the
 * caller, is closed or (when the pool had closed PREV's) taken over. */
void vk_extent_share(vk_extent *x, vk_extent *prev);
/* The earlier extent of X's link [FIRST, X) that has the file with this
 * device and inode, or NULL. */
vk_extent *vk_extent_find_file(vk_extent *first, vk_extent *x, dev_t dev, ino_t ino);
/* Does X's file have this device and inode (known even while closed)? */
bool vk_extent_is_file(const vk_extent *x, dev_t dev, ino_t ino);
/* Make X->fd usable until vk_extent_release, opening the file again if
 * the pool closed it.  No-op 0 for an extent without a file. */
int vk_extent_hold(vk_extent *x, vk_err *e);
void vk_extent_release(vk_extent *x);
/* Hold X only when its file is open now: its fd, or -1 (nothing held). */
int vk_extent_hold_if_open(vk_extent *x);
/* X (held) was written: when the pool closes its file before the next
 * flush, it fdatasyncs it first. */
void vk_extent_written(vk_extent *x);
/* X (held) is flushed: report (once) a failed fdatasync of an earlier
 * close by the pool, as the flush's error; then mark X clean. */
int vk_extent_flushed(vk_extent *x, int flush_result, vk_err *e);
/* X leaves the pool (at link close): its file is closed when no other
 * extent shares it.  X->fd is -1 afterwards. */
void vk_extent_forget(vk_extent *x);
/* How many unpinned extent files the pool keeps open at most
 * (vk_open_files_budget). */
size_t vk_extent_pool_max(void);

/* Open drivers.  Each fills X->ops/X->priv; X's descriptive fields and fd
 * are set by the caller (fd already open with the right mode). */
int vk_flat_open(vk_extent *x, vk_err *e);
int vk_zero_open(vk_extent *x, vk_err *e);
int vk_sparse_open(vk_extent *x, vk_err *e);   /* KDMV incl. streamOptimized */
int vk_cowd_open(vk_extent *x, vk_err *e);     /* ESX COWD redo log, read-only */
int vk_sesparse_open(vk_extent *x, vk_err *e); /* ESXi seSparse, read-only */

/* The extent's file for messages (path, else name, else its type). */
const char *vk_extent_file(const vk_extent *x);
/* VMDKIT_EINVAL unless [SECTOR, SECTOR+N) is a non-empty range inside X. */
int vk_extent_check_range(const vk_extent *x, uint64_t sector, uint64_t n, vk_err *e);

/* Status and read for read-only drivers that describe their content grain
 * by grain (COWD, seSparse).  AT describes the grain (or the table-less
 * stretch) holding SECTOR, up to MAX sectors: *alloc, *len and, for data,
 * *phys, the file sector that SECTOR is stored at. */
typedef int (*vk_grain_fn)(vk_extent *x, uint64_t sector, uint64_t max, int *alloc, uint64_t *phys,
                           uint64_t *len, vk_err *e);
int vk_grain_status(vk_extent *x, vk_grain_fn at, uint64_t sector, uint64_t n, int *alloc, uint64_t *run,
                    vk_err *e);
int vk_grain_read(vk_extent *x, vk_grain_fn at, uint64_t sector, uint64_t n, void *buf, vk_err *e);

/* Embedded descriptor of a KDMV file: reads the header at fd; *text is
 * NULL (and 0 returned) when the file has no embedded descriptor.
 * OFF_SECTORS and SIZE_SECTORS receive its place in the file. */
int vk_sparse_read_embedded_descriptor(int fd, const char *path, char **text, size_t *len,
                                       uint64_t *off_sectors, uint64_t *size_sectors, vk_err *e);
/* The same for a KDMV file that is the SIZE bytes at BASE of FD. */
int vk_sparse_read_embedded_descriptor_at(int fd, uint64_t base, uint64_t size, const char *path,
                                          char **text, size_t *len, uint64_t *off_sectors,
                                          uint64_t *size_sectors, vk_err *e);

#endif
