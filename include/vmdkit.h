/*
 * vmdkit.h - read, write and create VMware virtual disks (VMDK).
 *
 * Conventions of this API:
 *  - Every function that can fail returns 0 on success or a negative
 *    VMDKIT_E* code.  When a vmdkit_error pointer is given (it may be NULL),
 *    it receives the code and a one-line message of the form
 *    "FILE: FIELD: what is wrong".
 *  - Byte offsets and lengths are uint64_t bytes; "sectors" are 512 bytes.
 *  - A vmdkit_disk may be used by one thread at a time.
 *  - The library never prints and never exits.
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
};

#define VMDKIT_ERRMSG_MAX 1024

typedef struct vmdkit_error {
    int code;                     /* one of enum vmdkit_errcode */
    char msg[VMDKIT_ERRMSG_MAX];  /* NUL-terminated, one line */
} vmdkit_error;

/* Short stable name of an error class ("format", "io", ...). */
VMDKIT_API const char *vmdkit_errcode_name(int code);

/* ------------------------------------------------------------------ */
/* Opening disks                                                       */

typedef struct vmdkit_disk vmdkit_disk;

enum vmdkit_open_flags {
    VMDKIT_OPEN_RDONLY = 0,
    VMDKIT_OPEN_RDWR = 1 << 0,             /* top link writable; parents stay read-only */
    VMDKIT_OPEN_IGNORE_CID = 1 << 1,       /* read-only escape hatch: skip parentCID check */
    VMDKIT_OPEN_NO_PARENT = 1 << 2,        /* open only the named link, reads of
                                              unallocated grains give zeros */
    VMDKIT_OPEN_ALLOW_EXTERNAL = 1 << 3,   /* allow extent files outside the
                                              descriptor's folder */
    VMDKIT_OPEN_RAW = 1 << 4,              /* treat the file as a raw image */
    VMDKIT_OPEN_NO_LOCK = 1 << 5,          /* do not take advisory locks */
    VMDKIT_OPEN_PROBE = 1 << 6,            /* detect the format: a file that is neither a
                                              sparse extent nor a descriptor opens as raw,
                                              unless its name ends in ".vmdk" (then it is
                                              an error: a broken VMDK is never read as raw) */
};

/*
 * Open a disk (a descriptor, a sparse extent, or with VMDKIT_OPEN_RAW a raw
 * file or block device) and its whole parent chain.  Parents are always
 * opened read-only.  The parent's CID must equal the child's parentCID and
 * capacities must match, unless VMDKIT_OPEN_IGNORE_CID is given (allowed
 * with read-only opens only).  On success *out owns the chain.
 */
VMDKIT_API int vmdkit_open(const char *path, unsigned flags, vmdkit_disk **out, vmdkit_error *err);

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
 * Make LEN bytes at OFFSET read as zeros.  Where the disk supports it,
 * whole grains become zeroed-grain entries (or are left unallocated when no
 * parent shows through) instead of stored zeros.
 */
VMDKIT_API int vmdkit_pzero(vmdkit_disk *disk, size_t len, uint64_t offset);

/* Make every completed write durable (fdatasync, then metadata). */
VMDKIT_API int vmdkit_flush(vmdkit_disk *disk);

/* Allocation status of a run of the virtual disk. */
enum vmdkit_alloc {
    VMDKIT_ALLOC_DATA = 0,    /* stored data (may still be zeros) */
    VMDKIT_ALLOC_ZERO = 1,    /* reads as zeros: zeroed grain, ZERO extent, hole */
    VMDKIT_ALLOC_UNALLOC = 2, /* not stored in any link: reads as zeros */
};

typedef struct vmdkit_block_status {
    int alloc;           /* enum vmdkit_alloc */
    uint64_t length;     /* bytes in this run, > 0 */
    int link;            /* 0 = top link, 1 = its parent, ...; -1 when UNALLOC */
} vmdkit_block_status;

/*
 * Status of the run starting at OFFSET, at most MAX_LEN bytes long.
 * A run reports where the data comes from across the chain.
 */
VMDKIT_API int vmdkit_block_status_at(vmdkit_disk *disk, uint64_t offset, uint64_t max_len,
                           vmdkit_block_status *st);

/* ------------------------------------------------------------------ */
/* Describing disks                                                    */

typedef struct vmdkit_geometry {
    uint64_t cylinders;
    uint32_t heads;
    uint32_t sectors;
} vmdkit_geometry;

typedef struct vmdkit_sparse_facts {
    bool present;              /* the extent is a KDMV or COWD sparse file */
    char magic[5];             /* "KDMV" or "COWD" */
    uint32_t version;
    uint32_t flags;
    uint64_t grain_sectors;
    uint32_t gtes_per_gt;
    uint64_t gd_offset_sectors;
    uint64_t rgd_offset_sectors;  /* 0 when there is no redundant directory */
    uint64_t overhead_sectors;
    uint64_t descriptor_offset_sectors;
    uint64_t descriptor_size_sectors;
    bool unclean_shutdown;
    bool compressed;
    bool markers;
    bool zeroed_grain;
    bool footer;               /* header taken from a stream footer */
} vmdkit_sparse_facts;

typedef struct vmdkit_extent_info {
    char *file;               /* as written in the descriptor (NULL for ZERO) */
    char *path;               /* resolved path (NULL for ZERO) */
    const char *type;         /* "SPARSE", "FLAT", "ZERO", "VMFS", "VMFSSPARSE" ... */
    const char *access;       /* "RW", "RDONLY", "NOACCESS" */
    uint64_t size_sectors;
    uint64_t offset_sectors;  /* FLAT offset */
    uint64_t allocated_bytes; /* data bytes stored for this extent */
    uint64_t file_bytes;      /* space the file uses on the host (st_blocks) */
    vmdkit_sparse_facts sparse;
} vmdkit_extent_info;

typedef struct vmdkit_link_info {
    char *path;                 /* descriptor or sparse file of this link */
    char *create_type;
    uint64_t capacity_bytes;
    uint32_t cid;
    uint32_t parent_cid;        /* 0xffffffff: no parent */
    char *parent_hint;          /* NULL when no parent */
    char *parent_path;          /* where the hint resolved, NULL if none */
    char *adapter_type;         /* NULL when absent */
    vmdkit_geometry geometry;   /* zeros when absent */
    char *hw_version;           /* NULL when absent */
    char *tools_version;        /* NULL when absent */
    char *uuid;                 /* ddb.uuid or NULL */
    char *long_content_id;      /* ddb.longContentID or NULL */
    bool embedded_descriptor;
    bool writable;
    bool raw;                   /* opened as raw image */
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

typedef struct vmdkit_create_opts {
    vmdkit_create_type type;
    uint64_t size_bytes;        /* rounded up to a sector */
    const char *adapter;        /* "ide" (default), "buslogic", "lsilogic", "legacyESX" */
    int hw_version;             /* 0 = default (4) */
    bool zeroed_grain;          /* sparse only: header v2 with zeroed-grain entries */
    const char *parent;         /* path of parent descriptor, NULL for none (sparse only) */
    bool parent_absolute;       /* write the parent hint as an absolute path */
} vmdkit_create_opts;

/*
 * Create a new empty disk at PATH (the descriptor; extent files are named
 * after it).  Fails with VMDKIT_EEXIST if any file it would write exists.
 * For a streamOptimized type the result holds no data.
 */
VMDKIT_API int vmdkit_create(const char *path, const vmdkit_create_opts *opts, vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Copying                                                             */

/* Called now and then during long work; return non-zero to cancel. */
typedef int (*vmdkit_progress_fn)(void *opaque, uint64_t done_bytes, uint64_t total_bytes);

typedef struct vmdkit_convert_opts {
    bool to_raw;                /* write a raw image instead of a VMDK */
    vmdkit_create_opts vmdk;    /* for VMDK output: type, adapter, hw ... (size ignored) */
    int threads;                /* compression threads; 0 = number of CPUs */
    vmdkit_progress_fn progress;
    void *progress_opaque;
} vmdkit_convert_opts;

/*
 * Copy the whole content of SRC (a chain is flattened) into a new image at
 * DST.  All-zero grains are never stored; raw output keeps them as holes.
 * DST must not exist.
 */
VMDKIT_API int vmdkit_convert(vmdkit_disk *src, const char *dst, const vmdkit_convert_opts *opts,
                   vmdkit_error *err);

/*
 * Compare the content of two disks.  Returns 0 when equal, 1 when different
 * (*first_diff receives the first differing byte offset, or the size of the
 * smaller disk when only sizes differ), or a negative error.
 */
VMDKIT_API int vmdkit_compare(vmdkit_disk *a, vmdkit_disk *b, uint64_t *first_diff,
                   vmdkit_progress_fn progress, void *progress_opaque, vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* Snapshots, linked clones, commit, rebase                            */

/*
 * Create a delta disk at NEW_PATH whose parent is the disk at PARENT_PATH
 * (its top link): sparse, with the parent's capacity, adapter type,
 * geometry and hw version, a fresh ddb.uuid, parentCID = the parent's CID
 * and parentFileNameHint relative to NEW_PATH's folder (normalised), or
 * absolute when ABSOLUTE_HINT.  A split parent (twoGbMaxExtent*) gets a
 * split delta.  The new delta holds no grain data.  The parent is opened
 * read-only and never written.  Fails with VMDKIT_EEXIST if a file the
 * delta would consist of exists.
 */
VMDKIT_API int vmdkit_create_delta(const char *parent_path, const char *new_path, bool absolute_hint,
                        vmdkit_error *err);

/*
 * Snapshot: a new delta next to DISK named after it with the next free
 * number (Base.vmdk -> Base-000001.vmdk; Base-000001.vmdk -> Base-000002.vmdk).
 * The chosen path is copied to NEW_PATH (NEW_PATH_SIZE bytes); the hint is
 * relative unless ABSOLUTE_HINT.
 */
VMDKIT_API int vmdkit_snapshot(const char *disk_path, bool absolute_hint, char *new_path, size_t new_path_size,
                    vmdkit_error *err);

/* Paths of every disk under ROOT whose parent hint resolves to TARGET
 * (compared by file identity).  *paths is a malloc'd array of malloc'd
 * strings; free with vmdkit_paths_free. */
VMDKIT_API int vmdkit_find_dependents(const char *root, const char *target, char ***paths, size_t *n,
                           vmdkit_error *err);
VMDKIT_API void vmdkit_paths_free(char **paths, size_t n);

enum vmdkit_commit_flags {
    VMDKIT_COMMIT_DELETE = 1 << 0, /* remove the delta's files afterwards */
    VMDKIT_COMMIT_FORCE = 1 << 1,  /* even when the parent has other dependents */
};

/*
 * Merge the delta at PATH into its parent.  Dependents are looked for
 * under SCAN_ROOT and the delta's folder (SCAN_ROOT NULL: the folder that
 * holds the parent's folder, i.e. the VM library around it): the
 * commit is refused (VMDKIT_ECHAIN) when the parent has dependents other
 * than PATH, unless VMDKIT_COMMIT_FORCE.  Children of the delta are
 * re-pointed at the parent (hint and parentCID).  Crash-safe: see commit.c.
 */
VMDKIT_API int vmdkit_commit(const char *path, unsigned flags, const char *scan_root,
                  vmdkit_progress_fn progress, void *progress_opaque, vmdkit_error *err);

/*
 * Change the parent of the delta at PATH to NEW_PARENT (NULL or "" for no
 * parent).  Safe mode copies into PATH every range where the content
 * under the old parent differs from the content under the new one, so
 * PATH's content stays the same; UNSAFE only rewrites the hint and
 * parentCID (for files moved by hand), after checking that NEW_PARENT is a
 * VMDK of the same capacity.
 */
VMDKIT_API int vmdkit_rebase(const char *path, const char *new_parent, bool unsafe, bool absolute_hint,
                  vmdkit_progress_fn progress, void *progress_opaque, vmdkit_error *err);

/* ------------------------------------------------------------------ */
/* .vmx files                                                          */

/*
 * A virtual machine's configuration file (.vmx), held as its lines: every
 * byte is kept (comments, blank lines, order, spacing, quoting, LF or CRLF
 * endings, a missing final line ending, a UTF-8 byte order mark), so saving
 * an unchanged file rewrites the same bytes and an edit changes one line.
 * Keys are compared without regard to ASCII case, as VMware does; when a
 * key appears twice the last line counts.  Values are given and returned
 * decoded: VMware's |XX escapes ("|22" for '"', "|7C" for '|', "|0A" for a
 * line feed) are undone on reading and applied on writing.
 * A vmdkit_vmx may be used by one thread at a time.
 */
typedef struct vmdkit_vmx vmdkit_vmx;

/*
 * Read and parse the file at PATH.  Errors: VMDKIT_ENOENT (no such file),
 * VMDKIT_ELIMIT (larger than 4 MiB), VMDKIT_EFORMAT naming the line that is
 * neither `key = value`, a comment nor blank (or holds an unterminated
 * quote or a NUL byte).  On success *out owns the handle.
 */
int vmdkit_vmx_open(const char *path, vmdkit_vmx **out, vmdkit_error *err);

/*
 * The decoded value of KEY, or NULL when the key is absent.  The string
 * belongs to the handle and stays valid until the next set, unset or close.
 */
const char *vmdkit_vmx_get(const vmdkit_vmx *vmx, const char *key);

/*
 * Give KEY the value VALUE in memory (vmdkit_vmx_save writes it).  An
 * existing line keeps its key spelling, spacing, quoting and trailing
 * comment; only its value changes.  An absent key is appended as
 * `KEY = "VALUE"`.  VMDKIT_EINVAL when KEY is empty or holds whitespace,
 * '=', '#', '"' or control characters.
 */
int vmdkit_vmx_set(vmdkit_vmx *vmx, const char *key, const char *value, vmdkit_error *err);

/*
 * Remove KEY (every line holding it) in memory.  VMDKIT_ENOENT, with the
 * message "FILE: KEY: no such key", when the key is absent.
 */
int vmdkit_vmx_unset(vmdkit_vmx *vmx, const char *key, vmdkit_error *err);

/*
 * Write the file back to the path it was opened from, atomically: a
 * temporary file in the same folder, fsync, rename over the file, fsync of
 * the folder.  Readers see the old file or the new one, never a mix.  The
 * file's permission bits are kept.  vmdkit takes no lock: do not edit the
 * .vmx of a running virtual machine (VMware rewrites it).
 */
int vmdkit_vmx_save(const vmdkit_vmx *vmx, vmdkit_error *err);

/* Free the handle without saving.  NULL is accepted. */
void vmdkit_vmx_close(vmdkit_vmx *vmx);

#ifdef __cplusplus
}
#endif
#endif /* VMDKIT_H */
