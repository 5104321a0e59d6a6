/* move.h - moving a machine folder or a disk (vm_move.c, vm_move_disk.c,
 * move_plan.c): what moves where, and the rewrites of the references that
 * name it, planned from the library model. */
#ifndef VK_MOVE_H
#define VK_MOVE_H

#include "library.h"
#include "rewrite.h"
#include "vk.h"

/* What moves: the folder SRC (a real path) to DST with everything in it,
 * or the one file SRC (a disk's descriptor) to DST. */
typedef struct vk_move_map {
    const char *src;
    const char *dst;
    bool is_folder;
} vk_move_map;

/* Where the file at real path REAL is after the move (a copy of REAL when
 * it does not move); NULL when out of memory. */
char *vk_move_moved_path(const vk_move_map *m, const char *real);

/* Plan into RW every reference of LIB whose file or target moves, with its
 * new value; the rewrites name files at their paths after the move.
 * *OUTSIDE receives how many references from files that stay name files
 * that move (0 means nothing outside depends on what moves, as far as LIB
 * reaches).  A moving disk's own parent hint is left to the disk move. */
int vk_move_plan(const vk_lib *lib, const vk_move_map *m, vk_rewrites *rw, size_t *outside, vk_err *e);

/* DST, or DST/<name of SRC> when DST is a folder, made absolute with its
 * folder's real path. */
char *vk_move_destination(const char *src_real, const char *dst, vk_err *e);
/* Move the disk SRC (see vmdkit_move). */
int vk_move_disk(const char *src, const char *dst, const vmdkit_move_opts *opts, vmdkit_move_result *res,
                 vk_err *e);

#endif
