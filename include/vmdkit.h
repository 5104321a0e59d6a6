/*
 * vmdkit.h - read, write and create VMware virtual disks (VMDK).
 *
 * Conventions of this API:
 *  - Every function that can fail returns 0 on success or a negative
 *    VMDKIT_E* code.  When a vmdkit_error pointer is given (it may be NULL),
 *    it receives the code and a one-line message of the form
 *    "FILE: FIELD: what is wrong".
 *  - Byte offsets and lengths are uint64_t bytes; "sectors" are 512 bytes.
 *  - A vmdkit_disk may be used by one thread at a time, except for the
 *    concurrent reads described at vmdkit_pread_r.
 *  - The library never prints and never exits.
 *  - A long operation takes one options struct whose first field is
 *    `size_t struct_size`: the caller sets it to sizeof the struct it was
 *    compiled with, so that fields appended later (they are only ever
 *    appended) read as zero for older callers.  Progress callbacks live in
 *    that struct; a callback that returns non-zero cancels the operation
 *    with VMDKIT_ECANCELED.
 */
#ifndef VMDKIT_H
#define VMDKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every function of this API is declared with VMDKIT_API: the library is
 * built with hidden visibility, so a function without it is missing from
 * libvmdkit.so (the install test checks that each one is exported).
 */
#if defined(__GNUC__)
#define VMDKIT_API __attribute__((visibility("default")))
#else
#define VMDKIT_API
#endif

#define VMDKIT_SECTOR_SIZE 512u

/* Error classes.  Stable: the command line maps each to an exit code. */
enum vmdkit_errcode {
    VMDKIT_OK = 0,
    VMDKIT_EIO = -1,          /* the operating system reported an I/O error */
    VMDKIT_EFORMAT = -2,      /* malformed or corrupt image or descriptor */
    VMDKIT_EUNSUPPORTED = -3, /* valid, but a feature vmdkit does not handle */
    VMDKIT_ENOENT = -4,       /* a file (disk, extent, parent) does not exist */
    VMDKIT_ECHAIN = -5,       /* parent chain broken: CID/capacity mismatch, loop */
    VMDKIT_EINVAL = -6,       /* bad argument from the caller */
    VMDKIT_ERDONLY = -7,      /* write to something opened or stored read-only */
    VMDKIT_ENOMEM = -8,       /* out of memory */
    VMDKIT_ELOCKED = -9,      /* in use by another writer (vmdkit or VMware) */
    VMDKIT_ELIMIT = -10,      /* a size or count beyond what vmdkit accepts */
    VMDKIT_EEXIST = -11,      /* the file to create already exists */
    VMDKIT_EPATH = -12,       /* a path refused by the path policy */
    VMDKIT_ENOSPC = -13,      /* no space left on the device */
    VMDKIT_ECANCELED = -14,   /* the caller cancelled (a progress callback, a signal) */
};

#define VMDKIT_ERRMSG_MAX 1024

typedef struct vmdkit_error {
    int code;                    /* one of enum vmdkit_errcode */
    char msg[VMDKIT_ERRMSG_MAX]; /* NUL-terminated, one line */
} vmdkit_error;

/* Short stable name of an error class ("format", "io", ...). */
VMDKIT_API const char *vmdkit_errcode_name(int code);

/* ------------------------------------------------------------------ */
/* Opening disks                                                       */

typedef struct vmdkit_disk vmdkit_disk;

enum vmdkit_open_flags {
    VMDKIT_OPEN_RDONLY = 0,
    VMDKIT_OPEN_RDWR = 1 << 0,                   /* top link writable; parents stay read-only */
    VMDKIT_OPEN_IGNORE_CID = 1 << 1,             /* read-only escape hatch: skip parentCID check */
    VMDKIT_OPEN_NO_PARENT = 1 << 2,              /* open only the named link, reads of
                                                    unallocated grains give zeros */
    VMDKIT_OPEN_ALLOW_EXTERNAL = 1 << 3,         /* allow extent files outside the
                                                    descriptor's folder */
    VMDKIT_OPEN_RAW = 1 << 4,                    /* treat the file as a raw image */
    VMDKIT_OPEN_NO_LOCK = 1 << 5,                /* do not take advisory locks */
    VMDKIT_OPEN_PROBE = 1 << 6,                  /* detect the format: a file that is neither a
                                                    sparse extent nor a descriptor opens as raw,
                                                    unless its name ends in ".vmdk" (then it is
                                                    an error: a broken VMDK is never read as raw)
                                                    or it is a virtual machine's .vmx, .vmxf,
                                                    .vmsd, .vmsn or .nvram (VMDKIT_EFORMAT); a
                                                    file probed as raw opens read-only only
                                                    (VMDKIT_ERDONLY with VMDKIT_OPEN_RDWR) */
    VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS = 1 << 7, /* follow absolute parentFileNameHints
                                                    (VMware writes them for linked clones) */
};

/*
 * Open a disk (a descriptor, a sparse extent, or with VMDKIT_OPEN_RAW a raw
 * file or block device) and its whole parent chain.  Parents are always
 * opened read-only.  The parent's CID must equal the child's parentCID and
 * capacities must match, unless VMDKIT_OPEN_IGNORE_CID is given (allowed
 * with read-only opens only).  On success *out owns the chain.
 *
 * A sparse file without a descriptor of its own (a piece of a split disk,
 * which its disk's descriptor names) opens read-only only: VMDKIT_OPEN_RDWR
 * gives VMDKIT_ERDONLY.  It is never a parent (VMDKIT_ECHAIN), nor is an
 * extent of the chain itself (a loop).
 */
VMDKIT_API int vmdkit_open(const char *path, unsigned flags, vmdkit_disk **out, vmdkit_error *err);

/*
 * Where the files of a chain may be.  Extent files are opened beneath the
 * folder of their descriptor and never through a symbolic link (unless
 * VMDKIT_OPEN_ALLOW_EXTERNAL); what was opened is checked, not its name, so
 * a file swapped in meanwhile cannot lead elsewhere.  A relative
 * parentFileNameHint is opened the same way beneath the folder it climbs to
 * ("../Base.vmwarevm/Base.vmdk" beneath the child's folder's parent); an
 * absolute one is refused (VMDKIT_EPATH) unless
 * VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS.  A parent is a regular file, an
 * extent a regular file (a block device only with
 * VMDKIT_OPEN_ALLOW_EXTERNAL).
 *
 * vmdkit_open_beneath also confines the whole chain to the folder ROOT
 * (NULL: vmdkit_open): PATH, every parent and every extent, external ones
 * included, must lie beneath ROOT and are opened beneath it without
 * following any symbolic link; an absolute hint is accepted when it lies
 * beneath ROOT.  Nothing outside ROOT is opened.
 */
VMDKIT_API int vmdkit_open_beneath(const char *path, const char *root, unsigned flags, vmdkit_disk **out,
                                   vmdkit_error *err);

/*
 * Flush and close.  Returns the first error seen while flushing or closing
 * (the handle is freed in every case).  NULL is accepted.
 */
VMDKIT_API int vmdkit_close(vmdkit_disk *disk, vmdkit_error *err);

/* Virtual size in bytes. */
VMDKIT_API uint64_t vmdkit_size(const vmdkit_disk *disk);

/* The error recorded by the last failing call on this handle. */
VMDKIT_API const vmdkit_error *vmdkit_last_error(const vmdkit_disk *disk);

/*
 * Read/write LEN bytes at byte OFFSET (any alignment); partial sectors and
 * grains are read-modified-written.  Reads fall through the chain.  The
 * whole range must lie inside the disk.
 */
VMDKIT_API int vmdkit_pread(vmdkit_disk *disk, void *buf, size_t len, uint64_t offset);
VMDKIT_API int vmdkit_pwrite(vmdkit_disk *disk, const void *buf, size_t len, uint64_t offset);

/*
 * Concurrent reads.  A disk opened read-only may be read by several threads
 * at once: its metadata does not change after the open, data is read with
 * pread, and the caches inside (grain tables, the decompressed grains of
 * streamOptimized and other compressed extents, at most 16 MiB of them per
 * extent) are shared under locks.  The calls that may run at the same time
 * are vmdkit_pread_r, vmdkit_block_status_r and vmdkit_prefetch, which
 * record a failure in the caller's ERR (may be NULL) instead of the
 * handle; vmdkit_size and vmdkit_chain_length may be called beside them.
 * vmdkit_close must wait until they have all returned.
 *
 * A disk opened read-write may be read the same way as long as no other
 * call (write, zero, flush, link info) runs meanwhile: a writer must
 * exclude the readers, for example with a read-write lock.
 *
 * vmdkit_pread_r is vmdkit_pread with its own error record; the plain
 * vmdkit_pread, vmdkit_block_status_at and every other call record into
 * the handle (vmdkit_last_error) and are for one thread at a time.
 */
VMDKIT_API int vmdkit_pread_r(vmdkit_disk *disk, void *buf, size_t len, uint64_t offset,
                              vmdkit_error *err);

/*
 * Make LEN bytes at OFFSET read as zeros.  Where the disk supports it,
 * whole grains become zeroed-grain entries (or are left unallocated when no
 * parent shows through) instead of stored zeros; a flat extent's file gets
 * a hole (FALLOC_FL_PUNCH_HOLE), or its range zeroed in place
 * (FALLOC_FL_ZERO_RANGE) where it cannot have holes, and zeros are written
 * only where the file system refuses both.
 */
VMDKIT_API int vmdkit_pzero(vmdkit_disk *disk, size_t len, uint64_t offset);

enum vmdkit_zero_flags {
    /* Keep the range allocated: a flat extent is zeroed in place
     * (FALLOC_FL_ZERO_RANGE, else written) instead of getting a hole.  A
     * sparse extent stores zeros the way vmdkit_pzero says either way. */
    VMDKIT_ZERO_KEEP_ALLOCATED = 1 << 0,
    /* Only if no data has to be written: every grain of a sparse extent
     * whole and either reading as zeros already or taking a zeroed-grain
     * entry; whole sectors of a flat extent whose file system punches
     * holes or zeroes ranges.  Otherwise fail with VMDKIT_EUNSUPPORTED
     * before anything changes (except, for a range over several flat
     * extent files, the files before the one whose file system refused). */
    VMDKIT_ZERO_FAST = 1 << 1,
};

/* vmdkit_pzero with FLAGS (enum vmdkit_zero_flags); unknown flags are
 * VMDKIT_EINVAL. */
VMDKIT_API int vmdkit_pzero_ex(vmdkit_disk *disk, size_t len, uint64_t offset, unsigned flags);

/* Make every completed write durable (fdatasync, then metadata). */
VMDKIT_API int vmdkit_flush(vmdkit_disk *disk);

/* Allocation status of a run of the virtual disk. */
enum vmdkit_alloc {
    VMDKIT_ALLOC_DATA = 0,    /* stored data (may still be zeros) */
    VMDKIT_ALLOC_ZERO = 1,    /* reads as zeros: zeroed grain, ZERO extent, hole */
    VMDKIT_ALLOC_UNALLOC = 2, /* not stored in any link: reads as zeros */
};

typedef struct vmdkit_block_status {
    enum vmdkit_alloc alloc;
    uint64_t length; /* bytes in this run, > 0 */
    int link;        /* 0 = top link, 1 = its parent, ...; -1 when UNALLOC */
} vmdkit_block_status;

/*
 * Status of the run starting at OFFSET, at most MAX_LEN bytes long.
 * A run reports where the data comes from across the chain.  (Like every
 * call on a range of the disk, the length comes before the offset, as in
 * pread(2).)
 */
VMDKIT_API int vmdkit_block_status_at(vmdkit_disk *disk, uint64_t max_len, uint64_t offset,
                                      vmdkit_block_status *st);

/* vmdkit_block_status_at with its own error record: may run beside other
 * reads (see vmdkit_pread_r). */
VMDKIT_API int vmdkit_block_status_r(vmdkit_disk *disk, uint64_t max_len, uint64_t offset,
                                     vmdkit_block_status *st, vmdkit_error *err);

/*
 * A hint that LEN bytes at OFFSET will be read soon: the grain tables of
 * the range are loaded, the grains of compressed extents decompressed into
 * the extent's grain cache (no more than it holds), and the kernel is asked
 * to read ahead the stored data of the others (posix_fadvise WILLNEED);
 * each run in the link of the chain that holds it.  Errors are those a
 * read of the range would meet.  May run beside other reads (see
 * vmdkit_pread_r).
 */
VMDKIT_API int vmdkit_prefetch(vmdkit_disk *disk, uint64_t len, uint64_t offset, vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Describing disks                                                    */

typedef struct vmdkit_geometry {
    uint64_t cylinders;
    uint32_t heads;
    uint32_t sectors;
} vmdkit_geometry;

typedef struct vmdkit_sparse_facts {
    bool present;  /* the extent is a KDMV or COWD sparse file */
    char magic[5]; /* "KDMV" or "COWD" */
    uint32_t version;
    uint32_t flags;
    uint64_t grain_sectors;
    uint32_t gtes_per_gt;
    uint64_t gd_offset_sectors;
    uint64_t rgd_offset_sectors; /* 0 when there is no redundant directory */
    uint64_t overhead_sectors;
    uint64_t descriptor_offset_sectors;
    uint64_t descriptor_size_sectors;
    bool unclean_shutdown;
    bool compressed;
    bool markers;
    bool zeroed_grain;
    bool footer; /* header taken from a stream footer */
} vmdkit_sparse_facts;

/* The type and access mode of an extent line of a descriptor. */
typedef enum vmdkit_extent_type {
    VMDKIT_EXTENT_SPARSE,
    VMDKIT_EXTENT_FLAT,
    VMDKIT_EXTENT_ZERO,
    VMDKIT_EXTENT_VMFS,
    VMDKIT_EXTENT_VMFSSPARSE,
    VMDKIT_EXTENT_VMFSRDM,
    VMDKIT_EXTENT_VMFSRAW,
    VMDKIT_EXTENT_SESPARSE,
} vmdkit_extent_type;

typedef enum vmdkit_extent_access {
    VMDKIT_ACCESS_RW,
    VMDKIT_ACCESS_RDONLY,
    VMDKIT_ACCESS_NOACCESS,
} vmdkit_extent_access;

typedef struct vmdkit_extent_info {
    char *file; /* as written in the descriptor (NULL for ZERO) */
    char *path; /* resolved path (NULL for ZERO) */
    vmdkit_extent_type kind;
    vmdkit_extent_access mode;
    const char *type;   /* KIND as the descriptor spells it: "SPARSE", "FLAT" ... */
    const char *access; /* MODE as the descriptor spells it: "RW", "RDONLY", "NOACCESS" */
    uint64_t size_sectors;
    uint64_t offset_sectors;  /* FLAT offset */
    uint64_t allocated_bytes; /* data bytes stored for this extent */
    uint64_t file_bytes; /* space the file uses on the host (st_blocks; in an OVA its member's bytes) */
    vmdkit_sparse_facts sparse;
} vmdkit_extent_info;

typedef struct vmdkit_link_info {
    char *path; /* descriptor or sparse file of this link */
    char *create_type;
    uint64_t capacity_bytes;
    uint32_t cid;
    uint32_t parent_cid;      /* 0xffffffff: no parent */
    char *parent_hint;        /* NULL when no parent */
    char *parent_path;        /* where the hint resolved, NULL if none */
    char *adapter_type;       /* NULL when absent */
    vmdkit_geometry geometry; /* zeros when absent */
    char *hw_version;         /* NULL when absent */
    char *tools_version;      /* NULL when absent */
    char *uuid;               /* ddb.uuid or NULL */
    char *long_content_id;    /* ddb.longContentID or NULL */
    bool embedded_descriptor;
    bool writable;
    bool raw; /* opened as raw image */
    size_t n_extents;
    vmdkit_extent_info *extents;
} vmdkit_link_info;

/* Number of links in the chain: 1 for a disk without a parent. */
VMDKIT_API int vmdkit_chain_length(const vmdkit_disk *disk);

/* Fill *info for link N (0 = top).  Free with vmdkit_link_info_free. */
VMDKIT_API int vmdkit_link_info_get(vmdkit_disk *disk, int link, vmdkit_link_info *info);
VMDKIT_API void vmdkit_link_info_free(vmdkit_link_info *info);

/* ------------------------------------------------------------------ */
/* Creating disks                                                      */

typedef enum vmdkit_create_type {
    VMDKIT_MONOLITHIC_SPARSE,
    VMDKIT_MONOLITHIC_FLAT,
    VMDKIT_TWOGB_SPARSE,
    VMDKIT_TWOGB_FLAT,
    VMDKIT_STREAM_OPTIMIZED,
    VMDKIT_VMFS,
} vmdkit_create_type;

/* createType name <-> enum.  Parsing is case-insensitive; -1 if unknown. */
VMDKIT_API int vmdkit_create_type_parse(const char *name);
VMDKIT_API const char *vmdkit_create_type_name(vmdkit_create_type t);

/* The canonical spelling of the adapter type NAME ("ide", "buslogic",
 * "lsilogic", "legacyESX", the values of ddb.adapterType), matched without
 * regard to case; NULL when NAME is NULL or not one of them.  The result is
 * a static string. */
VMDKIT_API const char *vmdkit_adapter_name(const char *name);

/*
 * Sectors per piece of a twoGbMaxExtent* disk.  Current VMware products
 * (Workstation 17, Fusion) write 8323072 (4064 MiB, so that a piece and
 * its tables stay under FAT32's 4 GiB file limit); older ones and the
 * format's documentation 4192256 (2047 MiB).
 */
#define VMDKIT_SPLIT_4G_SECTORS UINT64_C(8323072)
#define VMDKIT_SPLIT_2G_SECTORS UINT64_C(4192256)

typedef struct vmdkit_create_opts {
    size_t struct_size; /* sizeof (vmdkit_create_opts) */
    vmdkit_create_type type;
    uint64_t size_bytes;    /* rounded up to a sector */
    const char *adapter;    /* "ide" (default), "buslogic", "lsilogic", "legacyESX";
                               any case (see vmdkit_adapter_name) */
    int hw_version;         /* 0 = default (4) */
    bool zeroed_grain;      /* sparse only: header v2 with zeroed-grain entries */
    const char *parent;     /* path of parent descriptor, NULL for none (sparse only) */
    bool parent_absolute;   /* write the parent hint as an absolute path */
    uint64_t split_sectors; /* twoGbMaxExtent* only: sectors per piece, a multiple
                               of 128 up to VMDKIT_SPLIT_4G_SECTORS; 0 = that */
} vmdkit_create_opts;

/*
 * Create a new empty disk at PATH (the descriptor; extent files are named
 * after it).  Fails with VMDKIT_EEXIST if any file it would write exists.
 * For a streamOptimized type the result holds no data.  A split type
 * (twoGbMaxExtent*) has pieces of SPLIT_SECTORS, the last one smaller.
 */
VMDKIT_API int vmdkit_create(const char *path, const vmdkit_create_opts *opts, vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Copying                                                             */

/* Called now and then during long work, first with DONE 0 and the TOTAL
 * (the virtual size; for a compare, the larger disk's); return non-zero to
 * cancel. */
typedef int (*vmdkit_progress_fn)(void *opaque, uint64_t done_bytes, uint64_t total_bytes);

typedef struct vmdkit_convert_opts {
    size_t struct_size;             /* sizeof (vmdkit_convert_opts) */
    bool to_raw;                    /* write a raw image instead of a VMDK */
    const vmdkit_create_opts *vmdk; /* VMDK output: type, adapter, hw ... (size and parent
                                       ignored); NULL: monolithicSparse with the defaults */
    int threads;                    /* compression threads; 0 = number of CPUs */
    vmdkit_progress_fn progress;
    void *progress_opaque;
} vmdkit_convert_opts;

/*
 * Copy the whole content of SRC (a chain is flattened) into a new image at
 * DST.  All-zero grains are never stored; raw output keeps them as holes.
 * DST must not exist (VMDKIT_EEXIST), nor any extent file it would have
 * (DST-s001.vmdk, DST-flat.vmdk ...): nothing is ever replaced.
 *
 * The image is built in a hidden folder beside DST,
 * ".DSTNAME.vmdkit-tmp-XXXXXX", under its final file names, and appears
 * only when complete: extent files first, then DST itself (the descriptor,
 * or the only file), each step durable before the next.  So DST either
 * does not exist or is complete, whenever the process dies.  A folder
 * left by a killed convert to the same DST is removed at the start (one
 * whose process still runs is left alone).  On failure, and when the
 * progress callback cancels (VMDKIT_ECANCELED), everything made is removed.
 */
VMDKIT_API int vmdkit_convert(vmdkit_disk *src, const char *dst, const vmdkit_convert_opts *opts,
                              vmdkit_error *err);

typedef struct vmdkit_clone_disk_opts {
    size_t struct_size;          /* sizeof (vmdkit_clone_disk_opts) */
    int type;                    /* a vmdkit_create_type, or -1 for the default below */
    vmdkit_progress_fn progress; /* bytes of SRC's virtual size; non-zero cancels */
    void *progress_opaque;
    unsigned open_flags; /* for opening SRC: VMDKIT_OPEN_ALLOW_EXTERNAL,
                            VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS; other flags
                            are refused (VMDKIT_EINVAL) */
} vmdkit_clone_disk_opts;

/*
 * A full, independent copy of the disk SRC_PATH (its chain flattened, as
 * by vmdkit_convert, which also gives its crash safety) at the new path
 * DST_PATH, without a parent.  The copy keeps the adapter type and the
 * hardware version of SRC's base link (the last of its chain).  Its
 * createType is OPTS->type, or by default the base link's createType when
 * it is one vmdkit writes and can write in place (monolithicSparse,
 * monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat); otherwise
 * (streamOptimized, as from an OVA; vmfs; a type vmdkit does not create)
 * monolithicSparse, or twoGbMaxExtentSparse when DST_PATH's folder is a
 * ".vmwarevm" bundle, as VMware Fusion makes its disks; a disk too large
 * for those (about 2 TiB) gets their flat kind (monolithicFlat,
 * twoGbMaxExtentFlat; holes stay holes on the host).
 *
 * OPTS may be NULL (the default type, no progress).  SRC is only read.
 * Errors: those of vmdkit_open and vmdkit_convert (VMDKIT_EEXIST when
 * DST_PATH or one of its extent files exists); VMDKIT_EINVAL for an
 * unknown type or a struct_size this library does not know;
 * VMDKIT_ECANCELED when the progress callback cancels (nothing is left).
 */
VMDKIT_API int vmdkit_clone_disk(const char *src_path, const char *dst_path,
                                 const vmdkit_clone_disk_opts *opts, vmdkit_error *err);

typedef struct vmdkit_compare_opts {
    size_t struct_size;          /* sizeof (vmdkit_compare_opts) */
    vmdkit_progress_fn progress; /* bytes of the larger disk; non-zero cancels */
    void *progress_opaque;
} vmdkit_compare_opts;

/*
 * Compare the content of two disks.  Returns 0 when equal, 1 when different
 * (*first_diff receives the first differing byte offset, or the size of the
 * smaller disk when only sizes differ), or a negative error
 * (VMDKIT_ECANCELED when the progress callback cancels).  OPTS may be NULL.
 */
VMDKIT_API int vmdkit_compare(vmdkit_disk *a, vmdkit_disk *b, uint64_t *first_diff,
                              const vmdkit_compare_opts *opts, vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Snapshots, linked clones, commit, rebase                            */

/*
 * Create a delta disk at NEW_PATH whose parent is the disk at PARENT_PATH
 * (its top link): sparse, with the parent's capacity, adapter type,
 * geometry and hw version, a fresh ddb.uuid, parentCID = the parent's CID
 * and parentFileNameHint relative to NEW_PATH's folder (normalised), or
 * absolute when ABSOLUTE_HINT.  A split parent (twoGbMaxExtent*) gets a
 * split delta whose pieces have the sizes of the parent's extents (so a
 * delta of a 2047 MiB-split disk is split at 2047 MiB too); a parent too
 * large for one sparse file gets pieces of VMDKIT_SPLIT_4G_SECTORS.  The
 * new delta holds no grain data.  The parent is opened
 * read-only and never written.  Fails with VMDKIT_EEXIST if a file the
 * delta would consist of exists.  FLAGS: enum vmdkit_delta_flags (the
 * hint is absolute with VMDKIT_DELTA_ABSOLUTE_HINT).
 */
VMDKIT_API int vmdkit_create_delta(const char *parent_path, const char *new_path, unsigned flags,
                                   vmdkit_error *err);

/* Flags of vmdkit_create_delta and vmdkit_snapshot; others are VMDKIT_EINVAL. */
enum vmdkit_delta_flags {
    VMDKIT_DELTA_ABSOLUTE_HINT = 1 << 0, /* the parent hint is an absolute path */
};

/*
 * Snapshot: a new delta next to DISK named after it with the next free
 * number (Base.vmdk -> Base-000001.vmdk; Base-000001.vmdk -> Base-000002.vmdk),
 * made as by vmdkit_create_delta with FLAGS.  *NEW_PATH receives the chosen
 * path (malloc'd; free it).
 */
VMDKIT_API int vmdkit_snapshot(const char *disk_path, unsigned flags, char **new_path,
                               vmdkit_error *err);

/* Paths of every disk under ROOT whose parent hint resolves to TARGET
 * (compared by file identity).  *paths is a malloc'd array of malloc'd
 * strings; free with vmdkit_paths_free. */
VMDKIT_API int vmdkit_find_dependents(const char *root, const char *target, char ***paths, size_t *n,
                                      vmdkit_error *err);
VMDKIT_API void vmdkit_paths_free(char **paths, size_t n);

/* One reference to a file that a command rewrote (or could not). */
typedef struct vmdkit_rewrite {
    char *file;    /* the disk, .vmx or .vmsd holding the reference */
    char *key;     /* its key ("scsi0:0.fileName", "snapshot0.disk0.fileName");
                      NULL for a disk's parentFileNameHint */
    char *value;   /* the value written, or to write */
    char *target;  /* the file it names now */
    int code;      /* 0 when written, else the VMDKIT_E* of the failure */
    char *message; /* the failure; NULL when written */
} vmdkit_rewrite;

enum vmdkit_commit_flags {
    VMDKIT_COMMIT_DELETE = 1 << 0, /* remove the delta's files afterwards */
    VMDKIT_COMMIT_FORCE = 1 << 1,  /* even when the parent has other dependents */
};

typedef struct vmdkit_commit_opts {
    size_t struct_size; /* sizeof(vmdkit_commit_opts) */
    unsigned flags;     /* enum vmdkit_commit_flags */
    const char *root;   /* the library to search for dependents; NULL: the
                           default library around the disks (see below) */
    vmdkit_progress_fn progress;
    void *progress_opaque;
} vmdkit_commit_opts;

typedef struct vmdkit_commit_result {
    vmdkit_rewrite *rewrites; /* children re-pointed at the parent; with DELETE, the
                                 .vmx and .vmsd fileNames that named the delta */
    size_t n_rewrites;
    char *scanned; /* the folders searched for dependents, ", "-separated */
} vmdkit_commit_result;

/*
 * Merge the delta at PATH into its parent.
 *
 * Who depends on what is asked of the library around the two disks: ROOT
 * when given, else the library that holds the parent's folder (from real
 * paths, so a relative PATH, ".", ".." or a symbolic link give the same
 * answer), widened to the folder above while that holds other machine or
 * disk folders.  The commit is refused (VMDKIT_ECHAIN, naming each) when
 * anything but PATH depends on the parent: another child, a machine
 * running on it, a VMware snapshot that froze it (.vmsd) - unless
 * VMDKIT_COMMIT_FORCE, which then gives the parent a new CID so its other
 * children report the change.  Refused (VMDKIT_ELOCKED) while VMware, QEMU
 * or another vmdkit holds either disk, or a machine using either is
 * running or suspended.  Children of the delta are re-pointed at the
 * parent (hint and parentCID).  With VMDKIT_COMMIT_DELETE the delta's
 * files are removed afterwards: every .vmx slot (and clone sentinel) that
 * named it is re-pointed at the parent first; a delta that a VMware
 * snapshot froze is never deleted (VMDKIT_ECHAIN).  Crash-safe: see
 * commit.c.  OPTS may be NULL (defaults).  RES (may be NULL) receives the
 * rewrites; free it with vmdkit_commit_result_free.
 */
VMDKIT_API int vmdkit_commit(const char *path, const vmdkit_commit_opts *opts, vmdkit_commit_result *res,
                             vmdkit_error *err);
VMDKIT_API void vmdkit_commit_result_free(vmdkit_commit_result *res);

enum vmdkit_rebase_flags {
    VMDKIT_REBASE_UNSAFE = 1 << 0,   /* only rewrite the hint and parentCID */
    VMDKIT_REBASE_ABSOLUTE = 1 << 1, /* write the new hint as an absolute path */
};

typedef struct vmdkit_rebase_opts {
    size_t struct_size; /* sizeof(vmdkit_rebase_opts) */
    unsigned flags;     /* enum vmdkit_rebase_flags */
    vmdkit_progress_fn progress;
    void *progress_opaque;
} vmdkit_rebase_opts;

/*
 * Change the parent of the delta at PATH to NEW_PARENT (NULL or "" for no
 * parent).  Safe mode copies into PATH every range where the content
 * under the old parent differs from the content under the new one, so
 * PATH's content stays the same; VMDKIT_REBASE_UNSAFE only rewrites the
 * hint and parentCID (for files moved by hand), after checking that
 * NEW_PARENT is a VMDK of the same capacity.  Either way NEW_PARENT may
 * not be PATH itself nor lead back to it through its own parent hints
 * (VMDKIT_ECHAIN: a loop).  A relative NEW_PARENT is relative to the
 * current folder.  OPTS may be NULL (safe mode, relative hint).
 */
VMDKIT_API int vmdkit_rebase(const char *path, const char *new_parent, const vmdkit_rebase_opts *opts,
                             vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* .vmx files                                                          */

/*
 * A virtual machine's configuration file (.vmx), held as its lines: every
 * byte is kept (comments, blank lines, order, spacing, quoting, LF or CRLF
 * endings, a missing final line ending, a UTF-8 byte order mark), so saving
 * an unchanged file rewrites the same bytes and an edit changes one line.
 * Keys are compared without regard to ASCII case, as VMware does; when a
 * key appears twice the last line counts.  Values are given and returned
 * decoded, in UTF-8: VMware's |XX escapes ("|22" for '"', "|7C" for '|',
 * "|0A" for a line feed) are undone on reading and applied on writing, and
 * a file whose ".encoding" names another encoding (windows-1252,
 * Shift_JIS - read as Windows code page 932 -, windows-949-2000 ...) has
 * its values converted from and to it; the bytes of every line not edited
 * stay as they are.  A vmdkit_vmx may be used by one thread at a time.
 */
typedef struct vmdkit_vmx vmdkit_vmx;

/*
 * Read and parse the file at PATH.  Errors: VMDKIT_ENOENT (no such file),
 * VMDKIT_ELIMIT (larger than 4 MiB), VMDKIT_EFORMAT naming the line that is
 * neither `key = value`, a comment nor blank (or holds an unterminated
 * quote, a NUL byte, or text that is not valid in the file's encoding),
 * VMDKIT_EUNSUPPORTED when the file names an encoding vmdkit does not know
 * and holds non-ASCII text.  On success *out owns the handle.
 */
VMDKIT_API int vmdkit_vmx_open(const char *path, vmdkit_vmx **out, vmdkit_error *err);

/*
 * The decoded value of KEY, or NULL when the key is absent.  The string
 * belongs to the handle and stays valid until the next set, unset or close.
 */
VMDKIT_API const char *vmdkit_vmx_get(const vmdkit_vmx *vmx, const char *key);

/*
 * Give KEY the value VALUE in memory (vmdkit_vmx_save writes it).  An
 * existing line keeps its key spelling, spacing, quoting and trailing
 * comment; only its value changes.  An absent key is appended as
 * `KEY = "VALUE"`.  VMDKIT_EINVAL when KEY is empty or holds whitespace,
 * '=', '#', '"' or control characters, or when VALUE holds a character the
 * file's encoding cannot represent ("FILE: KEY: the character U+XXXX cannot
 * be written in the file's encoding E"); nothing is changed then.
 */
VMDKIT_API int vmdkit_vmx_set(vmdkit_vmx *vmx, const char *key, const char *value, vmdkit_error *err);

/*
 * Remove KEY (every line holding it) in memory.  VMDKIT_ENOENT, with the
 * message "FILE: KEY: no such key", when the key is absent.
 */
VMDKIT_API int vmdkit_vmx_unset(vmdkit_vmx *vmx, const char *key, vmdkit_error *err);

/*
 * Write the file back to the path it was opened from, atomically: a
 * temporary file in the same folder, fsync, rename over the file, fsync of
 * the folder.  Readers see the old file or the new one, never a mix.  The
 * file's permission bits are kept.  vmdkit takes no lock: do not edit the
 * .vmx of a running virtual machine (VMware rewrites it).
 */
VMDKIT_API int vmdkit_vmx_save(const vmdkit_vmx *vmx, vmdkit_error *err);

/* Free the handle without saving.  NULL is accepted. */
VMDKIT_API void vmdkit_vmx_close(vmdkit_vmx *vmx);

/* ------------------------------------------------------------------ */
/* Checking and repair                                                 */

/* Flags of vmdkit_check. */
enum vmdkit_check_flags {
    VMDKIT_CHECK_REPAIR = 1 << 0,                 /* fix what can be fixed without guessing */
    VMDKIT_CHECK_ALLOW_EXTERNAL = 1 << 1,         /* allow extent files outside the
                                                     descriptor's folder */
    VMDKIT_CHECK_ALLOW_ABSOLUTE_PARENTS = 1 << 2, /* follow absolute parent hints
                                                     (refused like vmdkit_open does) */
};

/* What a finding reports. */
enum vmdkit_finding_kind {
    VMDKIT_FIND_CORRUPT = 0,    /* data is wrong or unreadable, or metadata contradicts itself */
    VMDKIT_FIND_LEAK = 1,       /* space in a file that nothing references */
    VMDKIT_FIND_STALE = 2,      /* a redundant copy an interrupted update left behind (the
                                   unclean-shutdown flag is set and the primary copy is
                                   sound); the data is intact */
    VMDKIT_FIND_INFO = 3,       /* worth knowing, not a problem (e.g. the unclean-shutdown flag) */
    VMDKIT_FIND_REPAIRED = 4,   /* a change made by the repair */
    VMDKIT_FIND_UNREPAIRED = 5, /* a change the repair would need but declined to make */
};

/* Offset of a finding that is about a whole file. */
#define VMDKIT_CHECK_NO_OFFSET UINT64_MAX

typedef struct vmdkit_check_finding {
    enum vmdkit_finding_kind kind;
    const char *file;    /* the file concerned */
    const char *message; /* one line, "FILE: FIELD: what is wrong" */
    uint64_t offset;     /* byte offset in FILE, or VMDKIT_CHECK_NO_OFFSET */
    bool after_repair;   /* reported by the re-check that follows a repair */
} vmdkit_check_finding;

/* Receives each finding; the strings are valid during the call only. */
typedef void (*vmdkit_check_fn)(void *opaque, const vmdkit_check_finding *f);

typedef struct vmdkit_check_result {
    /* Problems present when the call returns (after a repair: those left). */
    uint64_t corruptions;  /* VMDKIT_FIND_CORRUPT findings */
    uint64_t leaks;        /* leaked grains (a partial one at a file's end counts) */
    uint64_t leaked_bytes; /* bytes those leaks occupy */
    uint64_t stale;        /* VMDKIT_FIND_STALE findings */
    /* Repair: what the first check found and the repair removed. */
    uint64_t corruptions_fixed;
    uint64_t leaks_fixed;
    uint64_t stale_fixed;
    uint64_t repaired;             /* changes made (VMDKIT_FIND_REPAIRED findings) */
    uint64_t unrepaired;           /* problems left after a repair */
    uint64_t findings_dropped;     /* findings counted but not passed to FN (a damaged
                                      image can have millions; 10000 per check are passed) */
    bool unclean_shutdown;         /* some sparse extent had the flag set when the check began */
    bool incomplete;               /* some part could not be examined (an unsupported
                                      extent kind, or damage that hides what lies behind it) */
    char backup_path[4096];        /* the backup the repair wrote, or "" */
    bool unclean_shutdown_cleared; /* the repair cleared the flag in the top link (the
                                      only one it writes) */
    bool unclean_shutdown_left;    /* the flag is still set somewhere when the call returns:
                                      without a repair, in a parent, or while damage remains */
} vmdkit_check_result;

typedef struct vmdkit_check_opts {
    size_t struct_size;         /* sizeof (vmdkit_check_opts) */
    unsigned flags;             /* enum vmdkit_check_flags */
    vmdkit_check_fn on_finding; /* may be NULL */
    void *finding_opaque;
    /* PROGRESS (may be NULL) is called with DONE 0 and the TOTAL first,
     * then now and then while the chain is examined, and with DONE = TOTAL
     * when the check (before any repair) is complete.  The unit is bytes of
     * virtual disk: every link counts as the top's capacity, TOTAL =
     * capacity x the links its parent hints reach, each extent its share of
     * its link.  A repair's own passes are not reported.  Its return value
     * is ignored: a check is not cancelled half way. */
    vmdkit_progress_fn progress;
    void *progress_opaque;
} vmdkit_check_opts;

/*
 * Check the disk at PATH (a descriptor or a sparse extent) and its whole
 * parent chain.  Every on-disk structure is read and verified by the checker
 * itself, independently of the reader used by vmdkit_open, so that a damaged
 * image is examined even when it cannot be opened:
 *  - sparse headers (fields, flags, the unclean-shutdown flag), the
 *    descriptor against its extents (files present, extent sizes against the
 *    files and the sparse headers, createType against the extent types);
 *  - the grain directory against its redundant copy entry by entry (both
 *    zero or both set), each grain table against its redundant copy (byte
 *    for byte), grain and table offsets inside the file and clear of the
 *    metadata, grains and tables referenced twice, leaked space (grains of
 *    the file after overHead that no table references);
 *  - for streamOptimized files, the marker sequence (grain LBAs ascending
 *    and matching the grain tables, compressed sizes in range and inflating
 *    to whole grains, GT/GD marker sizes, the footer equal to the header
 *    except for gdOffset, end-of-stream last);
 *  - ESX COWD extents (header, tables inside the file);
 *  - for a chain, every link's parentCID against its parent's CID, and the
 *    capacities.
 * Files are opened read-only with shared locks: a disk that a vmdkit writer
 * holds is refused with VMDKIT_ELOCKED.  Without VMDKIT_CHECK_REPAIR nothing
 * is written.
 *
 * With VMDKIT_CHECK_REPAIR, the top link (never a parent) is opened for
 * writing under exclusive locks (refused with VMDKIT_ELOCKED when VMware's
 * .lck folder exists) and what can be fixed without guessing is fixed:
 *  - a damaged grain table or directory entry from its sound redundant copy,
 *    or the reverse; when both copies look sound but differ, only a stale
 *    copy (VMDKIT_FIND_STALE) is brought up to date from the primary;
 *    otherwise nothing is changed;
 *  - leaked space at the end of a file: the file is cut after the last
 *    referenced grain or table, when that removes at most 1 GiB (the cut
 *    bytes go into the backup); leaks elsewhere are only reported;
 *  - an extent line whose size disagrees with the capacity in the sparse
 *    header of its file, when the other extents agree with theirs and the
 *    parent's capacity (if any) confirms the corrected total;
 *  - the unclean-shutdown flag, cleared once no corruption remains.
 * Before the first change, every region to be overwritten or cut off is
 * saved, with each file's old size, to a backup file beside the disk named
 * PATH.vmdkit-repair-YYYYmmddTHHMMSS.bak (made durable before the disk is
 * touched; its path is in RES->backup_path).  Format: the line
 * "vmdkit-repair-backup 1", then records, each a text line and raw bytes:
 *     "file SIZE LEN\n" PATH "\n"                 a file's size before the repair
 *     "region OFFSET LENGTH LEN\n" PATH "\n" DATA "\n"   old bytes of a region
 * (LEN is the byte length of PATH, DATA is LENGTH bytes), and "end\n".
 * Writing those regions back and truncating each file to SIZE undoes the
 * repair.  Changes are written in crash-safe order: grain tables, then
 * directories, then the descriptor, then truncation, then the header; each
 * step is made durable before the next.  Each change is reported as a
 * VMDKIT_FIND_REPAIRED finding; the image is then checked again and what
 * remains is reported with after_repair set and counted in RES.
 *
 * OPTS->on_finding (may be NULL) receives the findings in order.  RES (required) receives
 * the counts.  Returns 0 when the check was completed, whatever it found;
 * a negative code when it could not be: VMDKIT_ENOENT (PATH does not
 * exist), VMDKIT_EIO, VMDKIT_ENOMEM, VMDKIT_ELOCKED, VMDKIT_EPATH (an
 * extent outside the folder without VMDKIT_CHECK_ALLOW_EXTERNAL),
 * VMDKIT_EINVAL.  A file that exists but is not a valid disk is reported
 * as corruption, not as an error.  RES holds what was found up to an error.
 */
VMDKIT_API int vmdkit_check(const char *path, const vmdkit_check_opts *opts, vmdkit_check_result *res,
                            vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Virtual machines                                                    */

/*
 * A virtual machine is named by its folder (a Fusion ".vmwarevm" bundle or
 * a Workstation VM folder, holding exactly one .vmx file) or by its .vmx
 * file.  Its hard disks are the scsiN:M, sataN:M, ideN:M and nvmeN:M slots
 * whose fileName is a .vmdk (see vmdkit_vmx); each fileName, relative to
 * the .vmx's folder or absolute, names the link the machine writes to.
 * These functions refuse (VMDKIT_ELOCKED, naming the file) a machine that
 * runs or is suspended: see vmdkit_vm_check_stopped.
 */

/* Does PATH name a machine rather than a disk: an existing folder, or a
 * name ending in ".vmx" or ".vmwarevm"? */
VMDKIT_API bool vmdkit_is_vm_path(const char *path);

/*
 * The .vmx of the machine VM (a folder or a .vmx file); *VMX_PATH is
 * malloc'd.  VMDKIT_ENOENT when VM does not exist or a folder holds no
 * .vmx, VMDKIT_EINVAL when it holds several or VM is another kind of file.
 */
VMDKIT_API int vmdkit_vm_find_vmx(const char *vm, char **vmx_path, vmdkit_error *err);

/*
 * 0 when the machine of VMX_PATH is shut down.  VMDKIT_ELOCKED, naming the
 * file, when it runs or is suspended: a "*.lck" entry (VMware's lock
 * folders) in its folder or beside one of its disks, a ".vmss" file in its
 * folder, or a checkpoint.vmState / suspend.vmState key naming an existing
 * file.
 */
VMDKIT_API int vmdkit_vm_check_stopped(const char *vmx_path, vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Snapshots of a machine, recorded in VMware's snapshot database      */

/*
 * A machine's snapshots live in its .vmsd file (NAME.vmsd beside
 * NAME.vmx), the list VMware's Snapshot Manager shows.  vmdkit reads and
 * writes it as VMware does, keeping every line it does not change.  Each
 * snapshot has a UID (never reused), a parent (absent on a root), a name,
 * a description, a creation time and, per disk slot, the disk the slot ran
 * on when the snapshot was taken: that link is frozen by the snapshot and
 * read-only from then on.  snapshot.current names the snapshot the running
 * state derives from ("You are here" is below it).  See docs/snapshots.md.
 */

typedef struct vmdkit_snapshot_disk {
    char *node; /* the slot: "scsi0:0", "nvme0:0" ... (NULL when absent) */
    char *file; /* the frozen disk, as written (relative to the .vmx's
                   folder, or absolute); NULL when absent */
} vmdkit_snapshot_disk;

typedef struct vmdkit_snapshot_info {
    uint32_t uid;
    bool has_parent;
    uint32_t parent;   /* the parent's UID when HAS_PARENT */
    char *name;        /* displayName; NULL when absent */
    char *description; /* NULL when absent */
    bool has_time;
    int64_t create_time_us; /* microseconds since the Unix epoch (UTC) */
    char *vmsn;             /* the .vmsn checkpoint file; NULL when absent */
    bool current;           /* snapshot.current names it */
    vmdkit_snapshot_disk *disks;
    size_t n_disks;
    char **clones; /* linked clones made from it: those its entry records
                      (snapshotN.cloneM), then those the library around the
                      machine holds (disks outside its folder whose parent
                      is one of its disks), each by its machine's .vmx,
                      else by the disk */
    size_t n_clones;
} vmdkit_snapshot_info;

typedef struct vmdkit_snapshot_list {
    char *vmsd;        /* the file read */
    bool exists;       /* false: there is no .vmsd (no snapshots) */
    uint32_t last_uid; /* snapshot.lastUID (0 when absent) */
    bool has_current;
    uint32_t current;                /* snapshot.current */
    vmdkit_snapshot_info *snapshots; /* in the file's order */
    size_t n;
} vmdkit_snapshot_list;

/*
 * The snapshots of VM (a machine folder, a .vmx, or a .vmsd file itself);
 * the machine may be running.  *OUT is freed with vmdkit_snapshot_list_free.
 * Errors: those of vmdkit_vm_find_vmx, and VMDKIT_EFORMAT naming the key
 * of a .vmsd that does not parse.
 */
VMDKIT_API int vmdkit_vm_snapshot_list(const char *vm, vmdkit_snapshot_list **out, vmdkit_error *err);
VMDKIT_API void vmdkit_snapshot_list_free(vmdkit_snapshot_list *list);

typedef struct vmdkit_snapshot_opts {
    size_t struct_size;          /* sizeof (vmdkit_snapshot_opts) */
    const char *name;            /* take: the displayName; NULL: "Snapshot UID" */
    const char *description;     /* take: NULL for none */
    bool absolute_hint;          /* take, revert: absolute parent hints in new deltas */
    bool force;                  /* delete: see vmdkit_vm_snapshot_delete */
    vmdkit_progress_fn progress; /* delete: bytes of the disks merged */
    void *progress_opaque;
} vmdkit_snapshot_opts;

typedef struct vmdkit_snapshot_result {
    uint32_t uid;     /* the snapshot taken, reverted to or deleted */
    char **new_disks; /* take, revert: the deltas the machine writes to now */
    size_t n_new_disks;
    char **removed; /* disks removed (their descriptor and extent files) */
    size_t n_removed;
    char **kept; /* disks left as they are where the operation would
                    have removed (revert) or merged or removed
                    (delete) them, and why: "PATH: REASON" */
    size_t n_kept;
    char **merged_from; /* delete: each disk merged into its parent ... */
    char **merged_into; /* ... and that parent */
    size_t n_merged;
} vmdkit_snapshot_result;

/*
 * Take a snapshot of the machine VM (shut down, every chain intact), as
 * VMware records it: every disk gets a new delta in the machine's folder
 * (as by vmdkit_snapshot next to a disk there: Base.vmdk -> Base-000001.vmdk;
 * a disk elsewhere gets FOLDER/NAME-000001.vmdk) and its slot's fileName is
 * changed to it; then the .vmsd gets the entry: UID = lastUID + 1, parent =
 * snapshot.current, OPTS->name and description, the creation time, and per
 * slot the disk it ran on until now (fileName as the .vmx had it) and the
 * slot; snapshot.current = UID, numSnapshots and the mru list follow.  No
 * .vmsn is written (docs/snapshots.md says why), so the entry has no
 * .filename.  Order: deltas, the .vmx (atomically), the .vmsd
 * (atomically): an interruption leaves the machine on its old disks or on
 * the new ones, and the .vmsd never names a disk that does not exist; a
 * failure undoes what was done.  A name or description the .vmsd's
 * encoding cannot hold is VMDKIT_EINVAL before anything is written.  RES
 * (may be NULL): the UID and the new deltas; free with
 * vmdkit_snapshot_result_free.  OPTS may be NULL (the defaults).
 */
VMDKIT_API int vmdkit_vm_snapshot_take(const char *vm, const vmdkit_snapshot_opts *opts,
                                       vmdkit_snapshot_result *res, vmdkit_error *err);

/*
 * Go back to the snapshot WHICH (a UID, or a displayName; a number names a
 * UID first) of the machine VM (shut down): each slot of the snapshot gets
 * a fresh delta on the disk the snapshot froze for it, the .vmx names the
 * new deltas, snapshot.current = its UID (first in the mru list).  The
 * state the machine had is abandoned, as in VMware: the deltas between its
 * disks and the snapshot tree (the "You are here" part) are removed, each
 * only when nothing depends on it (another delta, a snapshot, a linked
 * clone, a slot of the .vmx), and only when they lead to a disk of a
 * snapshot; others are kept and listed in RES->kept.  The snapshot's slots
 * must be the machine's slots (VMware would restore the configuration from
 * the .vmsn; vmdkit does not): else VMDKIT_EUNSUPPORTED.  Order: new
 * deltas, .vmx, .vmsd, then the removals, so an interruption leaves the
 * machine on its old disks or the new ones and never a .vmsd naming a
 * missing disk.  VMDKIT_ENOENT when no snapshot is WHICH, VMDKIT_EINVAL
 * when a name fits several.
 */
VMDKIT_API int vmdkit_vm_snapshot_revert(const char *vm, const char *which,
                                         const vmdkit_snapshot_opts *opts, vmdkit_snapshot_result *res,
                                         vmdkit_error *err);

/*
 * Delete the snapshot WHICH of the machine VM (shut down): its entry goes,
 * its children take its parent, snapshot.current moves to its parent when
 * it was current, and its state is merged so that everything else reads
 * exactly as before.  Per slot, the disk D the snapshot froze:
 *  - D has one child delta C in the machine's history (a snapshot's disk
 *    or the way to the running state): C is merged into D (as
 *    vmdkit_commit), C's children and every reference to C (.vmx slot,
 *    .vmsd entries) are moved to D, and C is removed;
 *  - nothing depends on D and it is a delta in the machine's folder: D is
 *    removed;
 *  - otherwise (several children, a slot or another entry naming D): D
 *    stays as it is, shared by what needs it.
 * Linked clones (disks outside the machine's history whose parent is D or
 * C, or clones recorded in the entry) would see D or C change: the delete
 * is refused with VMDKIT_ECHAIN naming them, unless OPTS->force, which
 * deletes the entry but keeps D unchanged for clones of D and re-points
 * clones of C at D (their content stays the same).  The snapshot's .vmsn
 * (and .vmem) in the machine's folder are removed.  Order: the .vmsd
 * without the entry, the merges (each leaves C reading as before), the
 * .vmx and .vmsd re-pointed, then removals; an interruption never leaves a
 * .vmsd naming a missing disk.  Progress: bytes of the merged disks.
 */
VMDKIT_API int vmdkit_vm_snapshot_delete(const char *vm, const char *which,
                                         const vmdkit_snapshot_opts *opts, vmdkit_snapshot_result *res,
                                         vmdkit_error *err);

VMDKIT_API void vmdkit_snapshot_result_free(vmdkit_snapshot_result *res);

typedef struct vmdkit_vm_clone_opts {
    size_t struct_size;          /* sizeof (vmdkit_vm_clone_opts) */
    bool linked;                 /* deltas on the source's frozen links, else full copies */
    bool absolute_hint;          /* linked: absolute parent hints (default relative) */
    const char *name;            /* displayName and file names; NULL: DST's last
                                    component without a ".vmwarevm" ending */
    int type;                    /* full clone: a vmdkit_create_type, or -1 for each
                                    disk's default (see vmdkit_clone_disk; DST_VM is
                                    the folder that decides) */
    vmdkit_progress_fn progress; /* full clone: bytes over all disks; non-zero cancels */
    void *progress_opaque;
    const char *snapshot; /* linked: clone the source's snapshot with this UID or
                             displayName (see vmdkit_vm_snapshot_revert); NULL:
                             freeze the source now */
    unsigned flags;       /* enum vmdkit_vm_clone_flags */
} vmdkit_vm_clone_opts;

/* vmdkit_vm_clone_opts.flags (linked clones only). */
enum vmdkit_vm_clone_flags {
    VMDKIT_VM_CLONE_NO_RECORD = 1 << 0,    /* without snapshot: the freeze is not recorded as a
                                              snapshot in the source's .vmsd */
    VMDKIT_VM_CLONE_REGISTER = 1 << 1,     /* record the clone in the source's .vmsd under the
                                              snapshot it is made from (snapshotN.cloneM) */
    VMDKIT_VM_CLONE_VMWARE_NAMES = 1 << 2, /* VMware's names: each disk <parent's name
                                              without -NNNNNN>-cl1.vmdk (-cl2 ... when two
                                              would be alike) and an absolute parent hint,
                                              as vmrun clone ... linked makes them */
};

typedef struct vmdkit_vm_clone_result {
    char *vmx;    /* the clone's .vmx */
    char **disks; /* the clone's disks, in slot order */
    size_t n_disks;
    char **source_deltas; /* linked: the new deltas the source writes to now (none
                             for a disk whose current delta was empty and reused) */
    size_t n_source_deltas;
    char **warnings; /* what the clone could not take over, one line each:
                        side files not copied, a static MAC address kept */
    size_t n_warnings;
} vmdkit_vm_clone_result;

/*
 * Clone the machine SRC_VM into the new folder DST_VM (it must not exist;
 * its parent folder must).  The clone holds NAME.vmx, NAME.nvram and
 * NAME.vmxf when the source has them, and one disk per source disk named
 * NAME.vmdk, NAME-2.vmdk, NAME-3.vmdk ... in slot order (linked, with
 * VMDKIT_VM_CLONE_VMWARE_NAMES: Base-cl1.vmdk ... after the parent disks).
 *
 * The .vmx is the source's with every comment and line kept, except:
 * displayName = NAME; each disk's fileName names the clone's disk;
 * nvram and extendedConfigFile name the copies; uuid.bios, uuid.location,
 * vc.uuid, ethernetN.generatedAddress, ethernetN.generatedAddressOffset
 * (VMware assigns new identities), checkpoint.vmState*, suspend.vmState,
 * sched.swap.derivedName, every "snapshot.*" key, any cloneOfN /
 * numCloneOf and filesearchpath are removed; a linked clone's .vmx gets
 * filesearchpath = ".;<the source's folder>" and the clone a NAME.vmsd
 * recording its origin as Workstation's linked clones do: cloneOf0 = the
 * source .vmx's absolute path, numCloneOf = "1", sentinelN = its own
 * deltas, numSentinels.  The source's .vmsd (its snapshot list) is not
 * copied.  Side files (nvram, extendedConfigFile) are copied only when
 * they are regular files inside the source's folder reached without ".."
 * or a symbolic link; others are left out with a warning in RES.  CD-ROM,
 * floppy, serial and parallel files named relative to the source's folder
 * are named from the clone's.  A clone inside the source's folder is
 * refused (VMDKIT_EINVAL).
 *
 * Linked, from a snapshot (OPTS->snapshot): the clone's disks are deltas
 * of the disks that snapshot froze, slot by slot (snapshotN.diskM.fileName
 * of each diskM.node); its .vmx is the source's as it is now.  The
 * snapshot's slots must be the machine's slots (else VMDKIT_EUNSUPPORTED),
 * VMDKIT_ENOENT / VMDKIT_EINVAL for a UID or name that fits none or
 * several.  Nothing in the source's folder is written (a read-only golden
 * image stays read-only), so the source may even be running; only
 * VMDKIT_VM_CLONE_REGISTER writes its .vmsd, and then it must be shut down.
 *
 * Linked, without a snapshot: first the source is frozen (new deltas in
 * its folder as vmdkit_vm_snapshot_take makes them), so the links it wrote
 * to become read-only parents and it writes to its new deltas from then
 * on; a disk whose current delta stores nothing yet (an earlier freeze)
 * keeps it, and the clone shares that delta's parent.  The freeze is
 * recorded in the source's .vmsd as a snapshot, the entry
 * vmdkit_vm_snapshot_take writes, named "Linked clone NAME YYYY-MM-DD
 * HH:MM" (local time), so that VMware's Snapshot Manager shows what the
 * clones depend on; a freeze that changed nothing and whose disks the
 * current snapshot names already records nothing new.  With
 * VMDKIT_VM_CLONE_NO_RECORD the .vmsd is not touched (the freeze is then
 * a state VMware shows as running on deltas with no snapshot).
 *
 * VMDKIT_VM_CLONE_REGISTER records the clone's .vmx (absolute) in the
 * source's .vmsd under that snapshot, as Workstation does
 * (snapshotN.cloneM, snapshotN.numClones): VMware then refuses to delete
 * the snapshot while the clone exists; vmdkit_vm_snapshot_delete refuses
 * it with or without the record (it finds clones in the library).
 *
 * The clone's disks are deltas of the frozen links with relative,
 * normalised hints (../Base.vmwarevm/Base-000001.vmdk; absolute with
 * absolute_hint, which never applies to the source's own new deltas).
 * Nothing else is written in the source's folder.  A disk that VMware,
 * QEMU or another vmdkit writes is refused (VMDKIT_ELOCKED).  Full: each disk is copied as by
 * vmdkit_clone_disk (its chain flattened, adapter type and hardware
 * version kept); the source is only read.
 *
 * Crash safety: the clone is built in a temporary folder beside DST_VM
 * (".NAME.vmdkit-tmp-XXXXXX", writable by its owner while it is filled; it
 * gets the mode of the source's folder last) and renamed to DST_VM last;
 * the source's .vmsd (the recorded freeze, the registered clone) is saved
 * before the folder is filled, so that an interruption leaves at worst a
 * snapshot or a clone record with no clone yet, never a clone that the
 * source's .vmsd does not protect.  On failure or cancellation
 * (VMDKIT_ECANCELED) the folder is removed, the source's .vmsd is put
 * back as it was and a linked clone's freeze is undone (the .vmx first,
 * then the deltas).  An
 * interruption leaves no DST_VM, or a complete one; a folder left by a
 * killed clone to the same name is removed when the next one starts.  RES
 * (may be NULL) receives what was made; free with
 * vmdkit_vm_clone_result_free.
 */
VMDKIT_API int vmdkit_vm_clone(const char *src_vm, const char *dst_vm, const vmdkit_vm_clone_opts *opts,
                               vmdkit_vm_clone_result *res, vmdkit_error *err);
VMDKIT_API void vmdkit_vm_clone_result_free(vmdkit_vm_clone_result *res);

/* One reference to a moved file that vmdkit_move rewrote (or could not);
 * FILE is at its path after the move. */
typedef vmdkit_rewrite vmdkit_move_fix;

typedef struct vmdkit_move_result {
    char *dst; /* where SRC is now */
    vmdkit_move_fix *fixes;
    size_t n_fixes;
    char *scanned;         /* the folders searched for references, ", "-separated */
    size_t n_outside_refs; /* references from files that stay to what moved: 0 means
                              nothing found under SCANNED depends on it */
} vmdkit_move_result;

/*
 * Move a machine folder or a disk from SRC to DST and keep every chain and
 * machine working.  When DST is an existing folder, SRC moves into it.
 *
 * A folder (a bundle or VM folder; its machine must be shut down) is
 * renamed (rename(2)); to another file system it is copied (holes kept,
 * every file flushed, each source file read under a shared lock, so that a
 * vmdkit writer refuses it with VMDKIT_ELOCKED, and the move refused too
 * when a file changes during the copy).  A disk is renamed as `vmware-vdiskmanager -n` does: its
 * extent files get names derived from DST (Base-s001.vmdk ->
 * New-s001.vmdk, Base-flat.vmdk -> New-flat.vmdk), its descriptor's extent
 * lines (embedded ones in place) and, when it changes folder, its own
 * relative parent hint follow.
 *
 * Then every reference the library model (OPTS->root, else the default
 * library around SRC and around the folder it moves into) finds to a moved
 * file, or from one, is rewritten: parent hints, .vmx disk fileNames,
 * nvram, extendedConfigFile, CD-ROM and other file backings, the .vmsd's
 * snapshot disks and .vmsn, cloneOfN and sentinelN (relative references
 * stay relative and normalised, absolute ones absolute).  RES->scanned
 * names the folders searched.  Nothing is moved while a disk to move is in
 * use (VMware, QEMU, another vmdkit: VMDKIT_ELOCKED) or its machine runs,
 * nor a machine into another machine's folder (VMDKIT_EINVAL).  OPTS may
 * be NULL.
 *
 * Order (an interruption loses no data):
 *  - folder: plan, rename, then rewrite the references one by one.  Until
 *    each is rewritten it names the old place: `vmdkit tree` shows it as a
 *    broken hint with its likely parent, `vmdkit rebase -u` repairs it.
 *    Across file systems the rename is: copy into ".NAME.vmdkit-tmp-XXXXXX"
 *    beside DST, rename that to DST; the old folder is removed after the
 *    rewrites (and kept when one failed), only the entries copied and
 *    unchanged since.
 *  - disk: new names are made as hard links of the old files, then the new
 *    descriptor; the references are rewritten while both names are valid;
 *    only then the old descriptor and the old names are removed.  Where
 *    hard links cannot be made (another file system, exFAT) the files are
 *    copied instead, each made durable before the next step.
 * Returns 0 when everything was moved and rewritten, VMDKIT_ECHAIN when
 * the move was done but some references could not be rewritten (RES lists
 * them with their messages), VMDKIT_EIO when a folder was copied to
 * another file system but part of the old one stayed (the message names
 * it; DST is complete), or another error when nothing was moved.
 * RES (required) is filled in every case; free with vmdkit_move_result_free.
 */
typedef struct vmdkit_move_opts {
    size_t struct_size;          /* sizeof(vmdkit_move_opts) */
    const char *root;            /* the library to search for references; NULL: the default
                                    library around SRC and around where it goes */
    vmdkit_progress_fn progress; /* bytes copied to another file system; non-zero cancels
                                    (VMDKIT_ECANCELED: nothing was moved) */
    void *progress_opaque;
} vmdkit_move_opts;

VMDKIT_API int vmdkit_move(const char *src, const char *dst, const vmdkit_move_opts *opts,
                           vmdkit_move_result *res, vmdkit_error *err);
VMDKIT_API void vmdkit_move_result_free(vmdkit_move_result *res);

/* What vmdkit_tree_scan flags on a disk. */
enum vmdkit_tree_flags {
    VMDKIT_TREE_BROKEN_HINT = 1 << 0,  /* the parent named by the hint is not there */
    VMDKIT_TREE_CID_MISMATCH = 1 << 1, /* parentCID differs from the parent's CID: the
                                          parent was modified after the child was made */
    VMDKIT_TREE_CAPACITY_MISMATCH = 1 << 2,
    VMDKIT_TREE_DANGER = 1 << 3,         /* a parent of other disks that is also the current
                                            (written) disk of a machine */
    VMDKIT_TREE_LOOP = 1 << 4,           /* the hints go round in a loop: cut here */
    VMDKIT_TREE_NOT_A_DISK = 1 << 5,     /* the hint names a file that is not a disk (an
                                            extent file of another disk, a raw file) */
    VMDKIT_TREE_TOO_DEEP = 1 << 6,       /* 255 or more links below its family's base: a
                                            chain that deep is never opened */
    VMDKIT_TREE_MISSING_EXTENT = 1 << 7, /* an extent file its descriptor names is missing */
};

typedef struct vmdkit_tree_node vmdkit_tree_node;
struct vmdkit_tree_node {
    char *path; /* relative to the scanned folder ("../x.vmdk" outside it) */
    char *create_type;
    uint32_t cid;
    uint32_t parent_cid; /* 0xffffffff for a base */
    uint64_t capacity_bytes;
    char *parent_hint;              /* as written; NULL for a base */
    char *vm;                       /* the machine whose current disk this is (its
                                       displayName, else its .vmx name), or NULL */
    char *vmx;                      /* that machine's .vmx, relative like PATH */
    unsigned flags;                 /* enum vmdkit_tree_flags */
    uint32_t parent_actual_cid;     /* CID_MISMATCH: the parent's CID */
    uint64_t parent_capacity_bytes; /* CAPACITY_MISMATCH: the parent's capacity */
    char *candidate;                /* BROKEN_HINT: a disk under the folder whose CID is
                                       this disk's parentCID (the likely parent), or NULL */
    vmdkit_tree_node *parent;       /* NULL for the root of a family */
    vmdkit_tree_node **children;    /* sorted by path */
    size_t n_children;
    char **snapshots; /* the VMware snapshots (.vmsd) that froze this disk,
                         each "VM: \"name\"" */
    size_t n_snapshots;
    char *held_by; /* "VMware", "QEMU (writing)", "QEMU (reading)", "a vmdkit
                      writer" while one has the disk open, else NULL */
};

typedef struct vmdkit_tree_problem {
    char *path;    /* relative to the scanned folder */
    char *message; /* one line */
} vmdkit_tree_problem;

typedef struct vmdkit_tree {
    vmdkit_tree_node **families; /* roots of the families, sorted by path */
    size_t n_families;
    vmdkit_tree_node *nodes; /* every disk */
    size_t n_nodes;
    vmdkit_tree_problem *problems; /* what is wrong outside the disks' flags:
                                      unparseable disks, stray .vmdk files, unreadable
                                      .vmx/.vmsd files and folders, machines and VMware
                                      snapshots naming missing disks, other references
                                      (nvram, ISO images, cloneOf0 ...) that lead
                                      nowhere, leftovers of interrupted commands; and
                                      where a .vmsd and the disks disagree: a .vmsd that
                                      does not parse, a snapshot.current no entry has, a
                                      machine running on deltas no snapshot accounts
                                      for, a linked clone of a disk that no snapshot of
                                      its source records (a deleted snapshot) */
    size_t n_problems;
} vmdkit_tree;

/*
 * Scan DIR (VM folders, .vmwarevm bundles, loose disks; 16 levels deep,
 * symlinks not followed) and group every disk into families: base ->
 * snapshots -> linked clones in other folders.  Parents outside DIR are
 * followed and included.  Each .vmx found marks its disks with the
 * machine, each .vmsd the disks its snapshots froze.  Unreadable files are
 * problems, not errors.  Paths are relative to DIR's real path.  *OUT is
 * freed with vmdkit_tree_free.
 */
VMDKIT_API int vmdkit_tree_scan(const char *dir, vmdkit_tree **out, vmdkit_error *err);
VMDKIT_API void vmdkit_tree_free(vmdkit_tree *tree);

/* What vmdkit_vmsd_report finds wrong between a machine's .vmsd and its
 * disks (the same findings as vmdkit_tree_scan's problems). */
enum vmdkit_vmsd_kind {
    VMDKIT_VMSD_MISSING_DISK, /* a snapshot names a disk that is not there (or not a disk):
                                 that snapshot can no longer be reverted to */
    VMDKIT_VMSD_BAD_CURRENT,  /* the .vmsd does not parse, or snapshot.current is no entry */
    VMDKIT_VMSD_UNRECORDED,   /* the machine runs on deltas no snapshot accounts for */
    VMDKIT_VMSD_ORPHAN_CLONE, /* a linked clone of a disk no snapshot of its source records */
};

typedef struct vmdkit_vmsd_finding {
    int kind;      /* enum vmdkit_vmsd_kind */
    char *file;    /* the .vmx or .vmsd it is about (absolute) */
    char *message; /* one line */
} vmdkit_vmsd_finding;

/* A VMware snapshot that froze a link of a disk's chain. */
typedef struct vmdkit_vmsd_snapshot {
    char *disk;    /* the link it froze (absolute) */
    unsigned link; /* its place in the chain: 0 is the disk itself */
    char *vmsd;    /* the .vmsd recording it (absolute) */
    char *vm;      /* the machine's displayName */
    char *name;    /* the snapshot's displayName, or "snapshotN" */
    uint32_t uid;  /* snapshotN.uid; 0 when absent */
    char *key;     /* the snapshotN.diskM.fileName naming the link */
} vmdkit_vmsd_snapshot;

typedef struct vmdkit_vmsd_report {
    vmdkit_vmsd_snapshot *snapshots; /* chain order, then .vmsd order */
    size_t n_snapshots;
    char **machines; /* the .vmx of each machine of the disk (absolute) */
    size_t n_machines;
    char **disks; /* for a machine: the disks its slots name (absolute), .vmx order */
    size_t n_disks;
    vmdkit_vmsd_finding *findings;
    size_t n_findings;
} vmdkit_vmsd_report;

/*
 * The VMware bookkeeping around DISK, from the library model of the
 * folders around it (vmdkit_tree_scan's): the snapshots that froze it or a
 * link of its chain, and the .vmsd findings of its machines (those running
 * on it and those whose .vmx lies in its folder).  DISK may also name a
 * machine (vmdkit_is_vm_path): then its disks and its own findings, and no
 * snapshots.  Reads only.  *OUT is freed with vmdkit_vmsd_report_free.
 */
VMDKIT_API int vmdkit_vmsd_report_get(const char *disk, vmdkit_vmsd_report **out, vmdkit_error *err);
VMDKIT_API void vmdkit_vmsd_report_free(vmdkit_vmsd_report *report);
VMDKIT_API void vmdkit_vmsd_findings_free(vmdkit_vmsd_finding *findings, size_t n);

/* ------------------------------------------------------------------ */
/* OVF and OVA packages                                                */

/* Digest of the manifest (.mf) lines: "SHA256(name)= hex". */
enum vmdkit_ova_checksum {
    VMDKIT_OVA_SHA256 = 0, /* what ovftool 4.2+ writes and vCenter expects */
    VMDKIT_OVA_SHA1 = 1,   /* for vSphere 5.5 and older clients */
    VMDKIT_OVA_SHA512 = 2,
};

typedef struct vmdkit_ova_export_opts {
    size_t struct_size;          /* sizeof (vmdkit_ova_export_opts) */
    int hw_max;                  /* 0: the machine's virtualHW.version; else the highest
                                    version the package may ask for (a lower one is
                                    written when the machine has nothing it lacks) */
    int checksum;                /* enum vmdkit_ova_checksum */
    bool extra_config;           /* .vmx keys without an OVF element go to vmw:ExtraConfig */
    int threads;                 /* compression threads; 0 = number of CPUs */
    vmdkit_progress_fn progress; /* bytes of virtual disk, over all disks */
    void *progress_opaque;
} vmdkit_ova_export_opts;

/*
 * Export the machine VM (a folder or a .vmx; shut down) as the OVF package
 * OUT: an .ova (one USTAR archive) or an .ovf with its .mf and disks beside
 * it.  OUT, and for .ovf every file it names, must not exist.
 *
 * The descriptor is OVF 1.x as VMware's ovftool writes it: References,
 * DiskSection, NetworkSection, VirtualSystem with OperatingSystemSection
 * (guestOS mapped to vmw:osType and the CIM id) and VirtualHardwareSection
 * (System vmx-NN from virtualHW.version; Items for CPUs with
 * vmw:CoresPerSocket, memory, IDE, SCSI (lsilogic, lsilogicsas,
 * VirtualSCSI, buslogic), SATA and NVMe controllers, disks, CD-ROM drives,
 * NICs (E1000, E1000e, VmxNet3, PCNet32) with their networks, USB, video,
 * VMCI and sound, their rasd children sorted by name; vmw:Config for
 * firmware, secure boot and hot add).  Identity is left out: uuid.bios,
 * uuid.location, MAC addresses, host paths.  With hw_max below the
 * machine's version, a device or setting the lower version lacks is
 * refused (VMDKIT_EUNSUPPORTED naming it), never dropped.
 *
 * Each disk's chain is flattened into a streamOptimized VMDK by vmdkit's
 * parallel writer, straight into the archive: ovf:capacity in bytes
 * (capacityAllocationUnits "byte"), ovf:populatedSize the uncompressed bytes
 * of its stored grains, File ovf:size exact.  The .ova holds the OVF
 * first, then the manifest, then the disks in References order (owner 0/0,
 * mode 0644).  Because sizes and digests are known only once a disk is
 * written, the OVF member is reserved at its largest possible length first
 * and written last, padded with blanks after the closing tag (as ovftool's
 * own output is); no disk is ever written twice or copied.
 *
 * Built under a temporary name in OUT's folder and renamed into place when
 * complete and durable; on failure nothing is left.  Errors: VMDKIT_EEXIST,
 * VMDKIT_ELOCKED (the machine runs), VMDKIT_EUNSUPPORTED, VMDKIT_EINVAL,
 * and those of opening and reading the disks.
 */
VMDKIT_API int vmdkit_ova_export(const char *vm, const char *out, const vmdkit_ova_export_opts *opts,
                                 vmdkit_error *err);

typedef struct vmdkit_ova_import_opts {
    size_t struct_size;          /* sizeof (vmdkit_ova_import_opts) */
    int type;                    /* createType of the disks; -1: twoGbMaxExtentSparse */
    vmdkit_progress_fn progress; /* bytes of the package read */
    void *progress_opaque;
} vmdkit_ova_import_opts;

typedef struct vmdkit_ova_import_result {
    char *vmx;         /* the new machine's .vmx */
    size_t n_verified; /* manifest lines checked against the files */
    char **notes;      /* what the package held that the machine lacks */
    size_t n_notes;
} vmdkit_ova_import_result;

/*
 * Import the package IN (an .ova, or an .ovf with its files beside it;
 * OVF 1.x or 2.0 from VMware, open-vmdk, COT, osbuild or VirtualBox) as a
 * new VMware machine in the folder DIR (must not exist; end it in
 * .vmwarevm for a Fusion bundle): NAME.vmx, written as VMware writes a new
 * machine, and one disk per disk of the package, NAME-diskN.vmdk, of
 * opts->type.  Each disk is decoded straight from its place in the package
 * (read once, also when gzip-compressed), never copied out first.  Every
 * manifest line that parses is checked against its file as it is read; a
 * mismatch fails naming the file (VMDKIT_EFORMAT).  A VirtualBox hardware
 * family gets virtualHW.version 14.
 *
 * Built in a hidden folder beside DIR and renamed to DIR when complete: an
 * interrupted import leaves nothing under DIR's name.  RES (may be NULL)
 * receives the .vmx and notes; free with vmdkit_ova_import_result_free.
 */
VMDKIT_API int vmdkit_ova_import(const char *in, const char *dir, const vmdkit_ova_import_opts *opts,
                                 vmdkit_ova_import_result *res, vmdkit_error *err);
VMDKIT_API void vmdkit_ova_import_result_free(vmdkit_ova_import_result *res);

typedef struct vmdkit_ova_check_opts {
    size_t struct_size; /* sizeof (vmdkit_ova_check_opts) */
    const char *target; /* "esxi-6.5", "esxi-7.0", "esxi-8.0" (NULL: this one),
                           "workstation", "virtualbox", "virt-v2v" */
} vmdkit_ova_check_opts;

/* One finding of vmdkit_ova_check: CODE is a stable short name
 * ("member-order", "manifest-syntax" ...: see vmdkit-ova(1)), MESSAGE one
 * line "FILE: what is wrong: what the importer says". */
typedef void (*vmdkit_ova_finding_fn)(void *opaque, const char *code, const char *message);

/*
 * Lint the package IN for what importers of TARGET reject: member order
 * and tar format, manifest syntax, algorithm and digests, hardware family
 * against the target, VirtualBox's family, OVF 2.0 items on VMware,
 * VirtualBox's SATA subtype on ESXi, disk capacity against the VMDK
 * header, the stream footer and end-of-stream marker, compressed disks,
 * extra members.  Nothing is written.  *N_FINDINGS receives the count;
 * returns 0 when the check ran (whatever it found) or an error when IN
 * cannot be read.
 */
VMDKIT_API int vmdkit_ova_check(const char *in, const vmdkit_ova_check_opts *opts,
                                vmdkit_ova_finding_fn fn, void *opaque, size_t *n_findings,
                                vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Growing and compacting disks                                        */

enum vmdkit_resize_flags {
    VMDKIT_RESIZE_KEEP_GEOMETRY = 1 << 0, /* keep ddb.geometry.* as they are */
    VMDKIT_RESIZE_CHAIN = 1 << 1,         /* grow the whole chain and its dependents */
    /* make every check a real run makes before its first change (type,
     * size, parent, dependents, holders) and change nothing: 0 when the
     * same call without this flag would start growing */
    VMDKIT_RESIZE_CHECK_ONLY = 1 << 2,
};

typedef struct vmdkit_resize_opts {
    size_t struct_size;          /* sizeof (vmdkit_resize_opts) */
    unsigned flags;              /* enum vmdkit_resize_flags */
    const char *root;            /* the library searched for dependents; NULL: the
                                    default library around the disk (see vmdkit_commit) */
    vmdkit_progress_fn progress; /* bytes added, over every disk grown; non-zero
                                    cancels before the next disk */
    void *progress_opaque;
} vmdkit_resize_opts;

/*
 * Grow the disk at PATH to SIZE_BYTES (rounded up to a sector): a
 * monolithicSparse disk gets grain tables for the new range (its grain
 * directory and redundant copy are grown, or moved to the end of the file
 * when their sectors have no room), a twoGbMaxExtentFlat disk its last
 * piece topped up to the size of its first and new pieces after it
 * ("-f003.vmdk" ...), a twoGbMaxExtentSparse disk new pieces of the size
 * of its first ("-s003.vmdk" ...; its last piece keeps its size, since
 * growing it cannot be made one step with the descriptor's change), a
 * monolithicFlat (or vmfs) disk a longer flat file (host-sparse, as
 * vmdkit_create makes it).  The new range reads as zeros; the old content,
 * the CID and every other descriptor line and ddb.* key stay, except
 * ddb.geometry.*, recomputed for the new size unless
 * VMDKIT_RESIZE_KEEP_GEOMETRY.
 *
 * Refused: a smaller size (VMDKIT_EINVAL: shrinking is not supported);
 * streamOptimized and other types (VMDKIT_EUNSUPPORTED; convert first); a
 * delta (VMDKIT_ECHAIN: its parent would be smaller, and VMware refuses
 * to grow disks with parents too); a disk that other disks or VMware
 * snapshots depend on, found in the library around it (VMDKIT_ECHAIN,
 * naming them: their capacity would no longer match); a disk held by
 * VMware, QEMU or another vmdkit, or used by a machine that runs
 * (VMDKIT_ELOCKED); sizes beyond the type (VMDKIT_ELIMIT).  The same size
 * is a no-op.
 *
 * With VMDKIT_RESIZE_CHAIN, PATH may be any link of a chain: the base of
 * its chain and every disk the library around it finds depending on the
 * base (its deltas, VMware or vmdkit snapshots, linked clones of any
 * link, and theirs) are grown to SIZE_BYTES together, so that every one
 * reads the new size; the CIDs stay (no content changes).  Each member is
 * checked first (type, size, holders: a refusal changes nothing), then
 * grown as above, the base first and each disk after its parent: a crash
 * between two leaves children smaller than their parents, which read
 * their old range as before (vmdkit check notes them as information);
 * running it again with the same size grows the rest.  A parent hint the
 * library cannot follow is VMDKIT_ECHAIN.
 *
 * Crash safety: new data first (new pieces, built in a hidden folder
 * beside the disk and given their names; new grain tables at the end of a
 * monolithicSparse file; a longer flat file), then the commit in one step:
 * the new descriptor renamed over the old one, or a monolithicSparse
 * file's header and embedded descriptor in one write.  After a kill the
 * disk is the old one or the new one; a second run finishes the job
 * (leftover pieces of a killed run are removed first).
 * OPTS may be NULL.
 */
VMDKIT_API int vmdkit_resize(const char *path, uint64_t size_bytes, const vmdkit_resize_opts *opts,
                             vmdkit_error *err);

enum vmdkit_compact_flags {
    /* also drop the stored grains of a delta that equal what its parent
     * chain reads at the same place (vmdkit_compact only) */
    VMDKIT_COMPACT_DEDUPE_PARENT = 1 << 0,
    /* every link of the disk's chain, its base first (vmdkit_compact only) */
    VMDKIT_COMPACT_CHAIN = 1 << 1,
};

typedef struct vmdkit_compact_opts {
    size_t struct_size;          /* sizeof (vmdkit_compact_opts) */
    const char *root;            /* the library searched for machines using the disk;
                                    NULL: the default library around it */
    unsigned flags;              /* enum vmdkit_compact_flags */
    vmdkit_progress_fn progress; /* bytes of virtual disk rewritten, over every
                                    link; non-zero cancels (nothing changes in
                                    the link being rewritten) */
    void *progress_opaque;
} vmdkit_compact_opts;

typedef struct vmdkit_compact_result {
    uint64_t bytes_before; /* space the extent files took on the host (st_blocks) */
    uint64_t bytes_after;
    uint64_t file_bytes_before; /* their sizes */
    uint64_t file_bytes_after;
    uint64_t grains_dropped; /* stored grains that read all zeros and were dropped */
    uint64_t grains_deduped; /* stored grains equal to the parent's, dropped
                                (VMDKIT_COMPACT_DEDUPE_PARENT) */
} vmdkit_compact_result;

/*
 * Give back the space of the all-zero grains of each sparse extent of the
 * monolithicSparse or twoGbMaxExtentSparse disk at PATH (a base or a
 * delta).
 * A zero grain of a delta is dropped only where its parent reads zeros
 * too; over parent data it stays (a zeroed-grain entry on version 2
 * headers, else stored zeros), so the disk and every link above it read
 * exactly as before and the CID stays.  An extent laid out as VMware,
 * QEMU and vmdkit write them (tables before the grains, grains on a grid,
 * the two table copies equal, at most 4Mi grains) is
 * compacted where it lies, needing no free space: the last kept grains
 * move into the dropped ones' places and the file is cut after them, in
 * a crash-safe order (a killed run leaves it reading as before, with at
 * most leaked space and stale redundant entries, which vmdkit_check
 * reports as leaks and the next run finishes).  Any other extent is
 * rewritten: a copy, its grains in virtual order after fresh tables, is
 * built in a hidden folder beside the disk and renamed over its original
 * once complete and durable, one file at a time (a killed run leaves each
 * file old or new, both reading the same; its folder is removed at the
 * next run); that needs free space for the copy.  When nothing would get
 * shorter, the files are left as they were.
 *
 * With VMDKIT_COMPACT_DEDUPE_PARENT in OPTS->flags, a grain of a delta is
 * also dropped where it holds exactly what its parent chain reads there
 * (a guest that rewrote the same data): the delta then reads through to
 * the parent, the same bytes.  Grains that differ in any byte stay.  The
 * same rule as for zero grains (a grain goes where the disk reads the
 * same without it), so the same crash safety.  Refused on a disk without
 * a parent (VMDKIT_EINVAL).
 *
 * With VMDKIT_COMPACT_CHAIN, every link of PATH's chain is compacted so,
 * its base first, PATH last (with VMDKIT_COMPACT_DEDUPE_PARENT the links
 * with a parent are also deduplicated).  The rule above holds for every
 * link: what a link and each link above it read never changes, so the
 * order needs no journal; a crash leaves the links before it compacted
 * and the others as they were.  Every link is checked (type, holders)
 * before the first is changed.  RES then sums the sizes and grains of all
 * the links.
 *
 * Refused: other types (VMDKIT_EUNSUPPORTED),
 * a disk anyone holds or a running machine uses (VMDKIT_ELOCKED).  RES
 * (may be NULL) receives the sizes before and after.  With a progress
 * callback that cancels, VMDKIT_ECANCELED (the link being rewritten stays
 * as it was).
 */
VMDKIT_API int vmdkit_compact(const char *path, const vmdkit_compact_opts *opts,
                              vmdkit_compact_result *res, vmdkit_error *err);

/*
 * Defragment the monolithicSparse or twoGbMaxExtentSparse disk at PATH:
 * each sparse extent is rewritten as vmdkit_compact rewrites one, with its grains
 * in virtual order, but every grain and entry is kept as it was (stored
 * zeros stay stored), so that sequential reads in the guest become
 * sequential on the host.  The same crash safety, refusals and RES
 * (grains_dropped is 0).
 */
VMDKIT_API int vmdkit_defrag(const char *path, const vmdkit_compact_opts *opts,
                             vmdkit_compact_result *res, vmdkit_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VMDKIT_H */
