/* check.h - the consistency checker and its repair: shared state of one
 * vmdkit_check call (findings, counters, open files, planned fixes) and the
 * per-extent checks it runs.
 *
 * The checker reads every on-disk structure itself, with its own decoding
 * of tables and markers, so that a mistake in the reader (extent_sparse.c)
 * cannot hide damage from it.  Only pure functions (header decoding and
 * validation, the descriptor parser, path resolution) are shared.
 */
#ifndef VK_CHECK_H
#define VK_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include "descriptor.h"
#include "vk.h"

/* Findings passed to the callback per pass; the rest are only counted. */
#define VK_CHECK_MAX_FINDINGS 10000u

/* One file the checker opened (each file once, whatever path named it). */
typedef struct vk_cfile {
    char *path;
    int fd;
    uint64_t size; /* bytes when opened; updated by the repair */
    bool writable; /* opened read-write (the top link under repair) */
    dev_t dev;
    ino_t ino;
} vk_cfile;

/* Order in which planned fixes reach the disk: each phase is durable
 * before the next begins. */
enum vk_fix_phase {
    VK_FIX_TABLES,     /* grain-table contents (existing or new tables) */
    VK_FIX_DIRECTORY,  /* grain-directory entries */
    VK_FIX_DESCRIPTOR, /* extent lines */
    VK_FIX_TRUNCATE,   /* leaked space cut from the end of a file */
    VK_FIX_HEADER,     /* the unclean-shutdown flag */
    VK_FIX_PHASES
};

enum vk_fix_op { VK_FIX_WRITE, VK_FIX_TRUNCATE_AT, VK_FIX_REPLACE_FILE };

typedef struct vk_fix {
    int phase;       /* enum vk_fix_phase */
    int op;          /* enum vk_fix_op */
    size_t file;     /* index into the file table */
    uint64_t offset; /* WRITE: where; TRUNCATE_AT: the new size */
    uint8_t *data;   /* WRITE / REPLACE_FILE: the new bytes */
    size_t len;
    char *what; /* reported once done */
    int kind;   /* the finding kind it removes (for the counts) */
} vk_fix;

/* Counters of one pass over the disk. */
typedef struct vk_check_counts {
    uint64_t corruptions, leaks, leaked_bytes, stale, findings, dropped;
    uint64_t leak_findings;
    bool unclean, incomplete;
    bool unclean_kept; /* the flag is set in an extent this call does not write
                          (a parent, a COWD redo log, or any without a repair) */
} vk_check_counts;

typedef struct vk_check {
    unsigned flags;
    const char *top_path;
    vmdkit_check_fn fn;
    void *opaque;
    bool emit; /* pass findings to FN in this pass */
    bool plan; /* collect fixes in this pass (repair) */
    bool after_repair;
    vk_check_counts n;
    vk_err *e;

    vk_cfile *files;
    size_t n_files, cap_files;
    size_t n_open; /* files whose fd is open (others were parked) */
    vk_fix *fixes;
    size_t n_fixes, cap_fixes;
    bool plan_grows_file; /* a planned fix appends to a file: no truncation this round */

    bool unclean_cleared; /* the repair cleared the flag in the top link */
    int backup_fd;        /* -1 until the first repair round */
    char backup_path[4096];

    /* Progress of the first pass, in bytes of virtual disk: every link
     * counts as the top's capacity, each extent as its share of it. */
    vmdkit_progress_fn progress; /* NULL: not reported (and in repair passes) */
    void *progress_opaque;
    uint64_t prog_total, prog_link_bytes, prog_link_base, prog_ext_start, prog_ext_bytes, prog_last;
} vk_check;

/* ---- progress (check.c) ---- */

/* Report the current extent as examined up to WITHIN of its PER_EXTENT
 * parts (both 0: its start). */
void vk_check_progress(vk_check *c, uint64_t within, uint64_t per_extent);
/* The same for step I of N of a stage that is the per-mille span [LO, HI)
 * of the extent's check. */
static inline void vk_check_progress_step(vk_check *c, unsigned lo, unsigned hi, uint64_t i, uint64_t n)
{
    if (n)
        vk_check_progress(c, (uint64_t)lo * n + (uint64_t)(hi - lo) * i, 1000 * n);
}

/* ---- findings (check.c) ---- */

/* Report a finding of KIND (CORRUPT, STALE or INFO) about FILE at byte
 * OFFSET (VMDKIT_CHECK_NO_OFFSET for the whole file). */
void vk_check_report(vk_check *c, int kind, const char *file, uint64_t offset, const char *fmt, ...)
    VK_PRINTF(5, 6);
/* Report GRAINS leaked grains occupying BYTES bytes of FILE. */
void vk_check_leak(vk_check *c, const char *file, uint64_t offset, uint64_t grains, uint64_t bytes,
                   const char *fmt, ...) VK_PRINTF(6, 7);
/* Pass a formatted finding of KIND to the callback without counting it. */
void vk_check_note(vk_check *c, int kind, const char *file, uint64_t offset, const char *fmt, ...)
    VK_PRINTF(5, 6);
/* Pass a finding of KIND to the callback without counting it. */
void vk_check_emit(vk_check *c, int kind, const char *file, uint64_t offset, const char *msg);

/* ---- files (check_files.c) ---- */

/* Open PATH (read-only and share-locked, or for the repair read-write,
 * exclusively locked and refused when VMware's PATH.lck folder exists).
 * A file already open (same device and inode) is reused.  Errors are
 * returned as codes with the message in C->e: VMDKIT_ENOENT when missing. */
int vk_check_open(vk_check *c, const char *path, bool writable, size_t *idx);
/* The same for extent file NAME of the descriptor DESC_PATH (PATH is both
 * joined): opened beneath the descriptor's folder without following any
 * symbolic link, and never a block device, unless
 * VMDKIT_CHECK_ALLOW_EXTERNAL (the rule vmdkit_open applies). */
int vk_check_open_extent(vk_check *c, const char *desc_path, const char *name, const char *path,
                         bool writable, size_t *idx);
void vk_check_close_all(vk_check *c);
/* The descriptor of file IDX in *FD, opened again if it was parked: only
 * if it is still the same file (device, inode), locked as before. */
int vk_check_fd(vk_check *c, size_t idx, int *fd);
/* File IDX is done with for now: close it when more files are open than
 * the pool of extent descriptors allows (vk_open_files_budget), so that a
 * disk of thousands of pieces is checked and repaired under a small limit
 * of open files.  A file opened for the repair is made durable first
 * (fsync); its lock goes with the descriptor, while the link's descriptor
 * file, never parked, keeps other writers of the disk out, and
 * vk_check_fd takes the lock again (as the library's pool does,
 * extent_file.c). */
int vk_check_park(vk_check *c, size_t idx);
/* Open PATH read-only, without a lock and outside any check (to size its
 * progress): the descriptor, or -1 when it cannot be opened or is not a
 * regular file or block device; *SIZE receives its size in bytes. */
int vk_check_peek(const char *path, uint64_t *size);

/* ---- repair plan (check_repair.c) ---- */

/* Plan writing LEN bytes of DATA (copied) at OFFSET of file IDX. */
int vk_check_plan_write(vk_check *c, int phase, int kind, size_t idx, uint64_t offset, const void *data,
                        size_t len, const char *fmt, ...) VK_PRINTF(8, 9);
/* Plan cutting file IDX to NEW_SIZE bytes. */
int vk_check_plan_truncate(vk_check *c, int kind, size_t idx, uint64_t new_size, const char *fmt, ...)
    VK_PRINTF(5, 6);
/* Plan replacing the whole of file IDX with DATA (atomically). */
int vk_check_plan_replace(vk_check *c, int kind, size_t idx, const void *data, size_t len,
                          const char *fmt, ...) VK_PRINTF(6, 7);
/* Drop every planned fix. */
void vk_check_plan_clear(vk_check *c);
/* Save what the planned fixes of the phases in MASK (bit 1 << phase)
 * overwrite to the backup file (created on the first call, beside
 * C->top_path), make it durable, then apply those fixes phase by phase,
 * each phase durable before the next.  *APPLIED receives the number made. */
int vk_check_apply(vk_check *c, unsigned mask, uint64_t *applied);
void vk_check_backup_close(vk_check *c);

/* ---- the chain (check_link.c) ---- */

/* Check C->top_path and its parents; findings go through C. */
int vk_check_chain(vk_check *c);
/* Best effort, for progress: the top's capacity in bytes and the number of
 * links its parent hints reach (0 and 0 when the top cannot be read). */
void vk_check_chain_shape(const char *top, uint64_t *capacity_bytes, unsigned *links);

/* ---- extents ---- */

/* What the link layer knows about an extent it hands to a checker. */
typedef struct vk_check_extent {
    size_t file;           /* index into the file table */
    const char *name;      /* the file as the user should see it */
    uint64_t size_sectors; /* size given by the extent line */
    bool repairable;       /* part of the top link under repair */
    /* results */
    bool header_ok;            /* a sound header was found */
    uint64_t capacity_sectors; /* capacity in that header */
    uint64_t grain_sectors;
    bool compressed; /* a streamOptimized (compressed) extent */
    bool unclean;    /* the unclean-shutdown flag is set */
} vk_check_extent;

/* Hosted sparse (KDMV) extents, including streamOptimized. */
int vk_check_kdmv(vk_check *c, vk_check_extent *x);
/* ESX COWD extents (basic checks). */
int vk_check_cowd(vk_check *c, vk_check_extent *x);

#endif
