/* libwalk.h - walking a VM library: every .vmdk and .vmx under a folder. */
#ifndef VK_LIBWALK_H
#define VK_LIBWALK_H

#include "descriptor.h"
#include "vk.h"

enum vk_lib_kind {
    VK_LIB_DISK,       /* a .vmdk that is a disk: D is its descriptor */
    VK_LIB_BAD_DISK,   /* a .vmdk descriptor that does not parse: PROBLEM says why */
    VK_LIB_OTHER_VMDK, /* a .vmdk that is no disk (an extent file, or junk) */
    VK_LIB_VMX,        /* a .vmx file */
};

/* Called for each file found; D is set for VK_LIB_DISK, PROBLEM for
 * VK_LIB_BAD_DISK.  Return non-zero to stop the walk with that value. */
typedef int (*vk_lib_fn)(void *opaque, const char *path, enum vk_lib_kind kind,
                         const vk_descriptor *d, const char *problem);

/* Walk ROOT (16 levels at most, symlinks not followed, VMware lock folders
 * and vmdkit's temporary folders skipped) in name order. */
int vk_lib_walk(const char *root, vk_lib_fn fn, void *opaque, vk_err *e);

#endif
