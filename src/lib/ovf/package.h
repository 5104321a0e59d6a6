/* package.h - an OVF package opened for reading (package.c). */
#ifndef VK_OVF_PACKAGE_H
#define VK_OVF_PACKAGE_H

#include "ovf.h"

typedef struct vk_pkg {
    const char *path; /* as given */
    int fd;           /* the .ova, or the .ovf */
    bool is_tar;
    vk_tar tar;     /* .ova: its members */
    char *dir;      /* .ovf: its folder */
    char *ovf_name; /* the descriptor's file name */
    char *ovf;      /* its bytes (NUL-terminated) */
    size_t ovf_len;
    char *mf_name; /* NAME.mf */
    char *mf;      /* its bytes, or NULL when there is none */
    size_t mf_len;
    int *open_fds; /* .ovf: files opened by vk_pkg_find */
    size_t n_open;
} vk_pkg;

/* Open PATH: a tar archive (whatever its name) or a NAME.ovf.  Reads the
 * descriptor and NAME.mf when present. */
int vk_pkg_open(const char *path, vk_pkg *p, vk_err *e);
void vk_pkg_close(vk_pkg *p);

/* Where the package's file NAME lies: FD (owned by P), OFFSET, SIZE.
 * VMDKIT_ENOENT when it has none; VMDKIT_EPATH for a name that is not a
 * plain file name (or, in a folder, a symbolic link). */
typedef struct vk_pkg_file {
    int fd;
    uint64_t offset, size;
} vk_pkg_file;
int vk_pkg_find(vk_pkg *p, const char *name, vk_pkg_file *f, vk_err *e);

#endif
