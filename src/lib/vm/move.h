/* move.h - moving a machine folder or a disk (vm_move.c, vm_move_disk.c):
 * the planned rewrites of the references that name what moved. */
#ifndef VK_MOVE_H
#define VK_MOVE_H

#include "vk.h"

/* Record a planned rewrite in RES (*CAP: its capacity); KEY NULL means a
 * disk's parentFileNameHint. */
int vk_move_add_fix(vmdkit_move_result *res, size_t *cap, const char *file, const char *key,
                    const char *value, const char *target, vk_err *e);
/* Apply the planned rewrites; each failure is recorded in its fix and the
 * others still go ahead.  VMDKIT_ECHAIN when one failed. */
int vk_move_apply_fixes(vmdkit_move_result *res, vk_err *e);
/* VMDKIT_ELOCKED when a file to rewrite belongs to a running machine. */
int vk_move_check_unlocked(const vmdkit_move_result *res, vk_err *e);
/* DST, or DST/<name of SRC> when DST is a folder, made absolute with its
 * folder's real path. */
char *vk_move_destination(const char *src_real, const char *dst, vk_err *e);
/* Move the disk SRC (see vmdkit_move). */
int vk_move_disk(const char *src, const char *dst, const char *root, vmdkit_move_result *res, vk_err *e);

#endif
