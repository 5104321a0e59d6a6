/* libwalk.h - walking a VM library: the one walk of folders shared by the
 * library model (library.c).  Every .vmdk, .vmx and .vmsd under a folder,
 * the leftovers of interrupted commands, and the folders that could not
 * be read. */
#ifndef VK_LIBWALK_H
#define VK_LIBWALK_H

#include "descriptor.h"
#include "vk.h"

enum vk_lib_kind {
    VK_LIB_DISK,       /* a .vmdk that is a disk: D is its descriptor */
    VK_LIB_BAD_DISK,   /* a .vmdk descriptor that does not parse: PROBLEM says why */
    VK_LIB_OTHER_VMDK, /* a .vmdk that is no disk (an extent file, or junk) */
    VK_LIB_VMX,        /* a .vmx file */
    VK_LIB_VMSD,       /* a .vmsd file (a machine's snapshot list) */
    VK_LIB_LEFTOVER,   /* a ".vmdkit-tmp-" folder or file: not walked into */
    VK_LIB_UNREADABLE, /* a folder that could not be read: PROBLEM says why */
};

/* Called for each entry found; D is set for VK_LIB_DISK, PROBLEM for
 * VK_LIB_BAD_DISK and VK_LIB_UNREADABLE.  Return non-zero to stop the walk
 * with that value. */
typedef int (*vk_lib_fn)(void *opaque, const char *path, enum vk_lib_kind kind, const vk_descriptor *d,
                         const char *problem);

/* Walk ROOT (16 levels at most, symbolic links not followed, VMware lock
 * folders skipped) in name order.  ROOT itself must be readable. */
int vk_lib_walk(const char *root, vk_lib_fn fn, void *opaque, vk_err *e);

#endif
