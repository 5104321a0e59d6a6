/* scan.h - reading just the descriptor of a file: for the walk of a
 * library (vm/libwalk.c) and for following hints without opening disks. */
#ifndef VK_SCAN_H
#define VK_SCAN_H

#include "descriptor.h"
#include "vk.h"

/* Read just the descriptor of PATH (text file or embedded); *is_disk is
 * false for extent files and other files that are not a disk's descriptor. */
int vk_read_descriptor(const char *path, vk_descriptor *d, bool *is_disk, vk_err *e);

/* Where the parent hint of the disk at PATH leads (resolved, not opened),
 * or NULL when PATH is not a readable disk or has no parent.  Caller frees.
 * For walking a chain by its hints without opening it. */
char *vk_hint_parent_of(const char *path);

#endif
