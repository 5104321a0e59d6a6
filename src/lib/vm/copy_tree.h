/* copy_tree.h - copying files and folders to another file system, for
 * moves that rename(2) cannot do and for the side files of a clone. */
#ifndef VK_COPY_TREE_H
#define VK_COPY_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "vk.h"

/* Progress and cancellation of a copy.  FN (may be NULL) is called as the
 * copy goes on - for each entry and each MiB - with DONE_BYTES, the bytes
 * of file content passed so far by every copy given this struct (a hole
 * counts once skipped), and TOTAL_BYTES as the caller set it (0 when not
 * known).  When FN returns non-zero the copy stops with VMDKIT_ECANCELED. */
typedef struct vk_copy_progress {
    vmdkit_progress_fn fn;
    void *opaque;
    uint64_t done_bytes;
    uint64_t total_bytes;
} vk_copy_progress;

/* Copy the regular file SRC to the new file DST (created, never
 * overwritten): holes stay holes (SEEK_DATA/SEEK_HOLE), the mode and the
 * modification time are kept, and DST is made durable before it returns.
 * SRC is read under a shared lock, so a vmdkit writer holding it refuses
 * the copy rather than changing the file during it.  PG may be NULL.  On
 * failure (cancellation included) the DST it created is removed. */
int vk_copy_file(const char *src, const char *dst, vk_copy_progress *pg, vk_err *e);

/* vk_copy_file from the file open at IN (SRC names it in messages); IN
 * stays open. */
int vk_copy_opened(int in, const char *src, const char *dst, vk_copy_progress *pg, vk_err *e);

/* One entry copied by vk_copy_tree, as it was when copied. */
typedef struct vk_copied {
    char *rel; /* path below the folder */
    bool dir;
    struct stat st; /* lstat of the source entry before copying */
} vk_copied;

typedef struct vk_copied_list {
    vk_copied *v;
    size_t n, cap;
} vk_copied_list;

/* Copy the contents of folder SRC into the existing empty folder DST:
 * regular files (see vk_copy_file), folders and symbolic links; any other
 * kind of entry is refused.  Every folder is flushed, DST last, and gets
 * the source's mode once its contents are in (owner-only until then).
 * LIST receives what was copied, parents before what they hold.  PG (may
 * be NULL) reports progress and cancels (VMDKIT_ECANCELED).  On failure
 * what was made is left for vk_remove_copied. */
int vk_copy_tree(const char *src, const char *dst, vk_copied_list *list, vk_copy_progress *pg,
                 vk_err *e);

/* VMDKIT_ELOCKED (something else is writing) naming the first entry of
 * SRC in LIST that changed (size, modification time, inode) since it was
 * copied, or that is gone; 0 when none did. */
int vk_check_unchanged(const char *src, const vk_copied_list *list, vk_err *e);

/* Remove from ROOT the entries of LIST, deepest first: files only when
 * ONLY_UNCHANGED is false or they are as they were when copied, folders
 * only when empty.  *kept (may be NULL) receives the first entry left
 * behind, to free; the return is the number left. */
size_t vk_remove_copied(const char *root, const vk_copied_list *list, bool only_unchanged, char **kept);

void vk_copied_list_free(vk_copied_list *list);

#endif
