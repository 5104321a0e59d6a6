/* scan.h - finding disks under a folder tree (for dependents, trees and
 * moves). */
#ifndef VK_SCAN_H
#define VK_SCAN_H

#include "descriptor.h"
#include "vk.h"

/* Called for each disk (descriptor file or sparse file with an embedded
 * descriptor) found; return non-zero to stop with that value. */
typedef int (*vk_scan_fn)(void *opaque, const char *path, const vk_descriptor *d);

/* Walk ROOT (at most 16 levels deep, symlinks not followed) and call FN for
 * every "*.vmdk" that is a disk rather than an extent file. */
int vk_scan_disks(const char *root, vk_scan_fn fn, void *opaque, vk_err *e);

/* Read just the descriptor of PATH (text file or embedded); *is_disk is
 * false for extent files and other files that are not a disk's descriptor. */
int vk_read_descriptor(const char *path, vk_descriptor *d, bool *is_disk, vk_err *e);

/* Dependents of TARGET under several roots (each walked once). */
int vk_find_dependents_multi(const char *const *roots, size_t n_roots, const char *target,
                             char ***paths, size_t *n, vk_err *e);

#endif
