/* rewrite.h - the references a command rewrites: planned first, checked
 * against running machines, then applied one atomic file write each, every
 * one reported (vmdkit_rewrite) whether it succeeded or not. */
#ifndef VK_REWRITE_H
#define VK_REWRITE_H

#include "vk.h"

typedef struct vk_rewrites {
    vmdkit_rewrite *v;
    size_t n, cap;
} vk_rewrites;

/* Plan a rewrite of FILE: KEY = VALUE in a .vmx or .vmsd, or with KEY
 * NULL the parentFileNameHint of the disk FILE (its parentCID is kept).
 * TARGET is the file the new value names.  The strings are copied. */
int vk_rewrites_add(vk_rewrites *l, const char *file, const char *key, const char *value,
                    const char *target, vk_err *e);

/* VMDKIT_ELOCKED when a file to rewrite belongs to a running machine or
 * is held by another process. */
int vk_rewrites_check_unlocked(const vk_rewrites *l, vk_err *e);

/* Apply every planned rewrite in order; a failure is recorded in its entry
 * (code, message) and the others still go ahead.  VMDKIT_ECHAIN, naming
 * WHAT, when one failed. */
int vk_rewrites_apply(vk_rewrites *l, const char *what, vk_err *e);

void vk_rewrites_free(vk_rewrites *l);
/* Free an array of rewrites as handed out in a result. */
void vk_rewrite_array_free(vmdkit_rewrite *v, size_t n);

#endif
