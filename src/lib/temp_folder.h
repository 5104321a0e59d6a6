/* temp_folder.h - the hidden folder in which an output is built before it
 * gets its name, and the leftovers that interrupted runs leave.
 *
 * The output PARENT/NAME is built in PARENT/.NAME.vmdkit-tmp-XXXXXX (same
 * file system, so the last step is a rename) and appears only when it is
 * complete.  The maker holds a shared flock(2) on the folder itself from
 * the moment it can be seen until the maker releases it or dies: a folder
 * that nobody holds is a leftover of a process that was killed or crashed
 * ("stale"), one that is held is in use.  The lock is on the folder rather
 * than on a file inside it so that it follows the folder when the folder
 * itself becomes the output (a machine's clone) and leaves nothing behind
 * there.  Whoever removes a leftover first takes the lock exclusively; a
 * maker that comes a moment later then fails to take its shared lock and
 * makes another folder, so a folder in use is never removed.
 *
 * On a file system without flock(2) on folders the folder is made
 * unlocked, and no folder there is ever taken for a leftover: nothing
 * tells a dead owner from a live one.  Only folders of the effective user
 * are considered.
 */
#ifndef VK_TEMP_FOLDER_H
#define VK_TEMP_FOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vk.h"

typedef struct vk_temp_folder {
    char *path;  /* PARENT/.NAME.vmdkit-tmp-XXXXXX (.NAME... when PARENT is ".") */
    int lock_fd; /* the folder, under a shared flock; -1 where there are no locks */
} vk_temp_folder;

/* Make the folder (owner-only mode) beside PARENT/NAME and hold it. */
int vk_temp_folder_make(const char *parent, const char *name, vk_temp_folder *t, vk_err *e);

/* Remove the folder and everything below it (folders made read-only on
 * the way are made writable first), then release it.  T may be unmade. */
void vk_temp_folder_discard(vk_temp_folder *t);

/* Let go of the folder after it was renamed into place or removed: the
 * lock is dropped and PATH freed.  T may be unmade. */
void vk_temp_folder_release(vk_temp_folder *t);

/*
 * Give the files built in T their names beside it, in PARENT (the folder
 * T was made in): first the N files of NAMES (a disk's extent files), then
 * LAST (its descriptor, or the only file of the output), and remove T.
 * Every step is durable before the next; no existing file is replaced
 * (VMDKIT_EEXIST, nothing left under the final names).  Crash safety:
 *  1. each of NAMES is hard-linked into PARENT (where the file system has
 *     no hard links it is renamed), PARENT fsynced;
 *  2. LAST is renamed into PARENT (RENAME_NOREPLACE), PARENT fsynced: from
 *     here on the output exists, complete;
 *  3. T is removed (its names of the files in 1 go), PARENT fsynced.
 * A crash in 1 leaves the extent names of an output that has no
 * descriptor, each a hard link of a file still inside T: the next
 * vk_remove_stale_temps for NAME removes them with T (without hard links,
 * they stay and block the name with VMDKIT_EEXIST until removed by hand).
 * A crash in 3 leaves the complete output and a leftover T that holds only
 * second names of its files.
 */
int vk_temp_folder_publish(vk_temp_folder *t, const char *parent, const char *const *names, size_t n,
                           const char *last, vk_err *e);

/* A message about files in T names them as they will be called: every
 * "T/" in E's message becomes "AS/" ("" when AS is "."): AS is PARENT when
 * T's files are given names beside it, the destination when T itself is
 * renamed to it. */
void vk_temp_folder_unhide_message(const vk_temp_folder *t, const char *as, vk_err *e);

/*
 * Remove the leftovers for NAME in PARENT: every PARENT/.NAME.vmdkit-tmp-*
 * folder that nobody holds, with what it holds, and the extent names step
 * 1 of vk_temp_folder_publish had given out of it when its output never
 * got its descriptor (only names that are hard links of files inside the
 * folder).  Folders in use, of other users, or that cannot be locked are
 * left.  *REMOVED (may be NULL) receives how many were removed.  Errors:
 * PARENT cannot be read (a folder that cannot be removed is skipped).
 */
int vk_remove_stale_temps(const char *parent, const char *name, size_t *removed, vk_err *e);

/* One leftover found by vk_list_stale_temps. */
typedef struct vk_stale_temp {
    char *path;     /* DIR/.NAME.vmdkit-tmp-XXXXXX */
    char *name;     /* NAME: the output it was building */
    uint64_t bytes; /* space its files take on the host (st_blocks) */
} vk_stale_temp;

/* Every leftover folder directly in DIR (any NAME) that nobody holds,
 * sorted by path, with the space it takes.  *OUT is freed with
 * vk_stale_temps_free. */
int vk_list_stale_temps(const char *dir, vk_stale_temp **out, size_t *n, vk_err *e);
void vk_stale_temps_free(vk_stale_temp *v, size_t n);

/* Space taken (st_blocks) by the file or folder tree at PATH, symbolic
 * links not followed. */
uint64_t vk_tree_bytes(const char *path);

/* Is the temporary folder at PATH held by the process building in it (a
 * running command)?  False for a leftover nobody holds, for a file, and
 * where folders cannot be locked. */
bool vk_temp_folder_in_use(const char *path);

/* Rename FROM to TO unless TO exists (VMDKIT_EEXIST): RENAME_NOREPLACE, or
 * where the file system lacks it a hard link then the removal of FROM, or
 * last a check then rename(2). */
int vk_rename_noreplace(const char *from, const char *to, vk_err *e);

#endif
