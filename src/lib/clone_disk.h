/* clone_disk.h - the full clone of one disk (vmdkit_clone_disk), for the
 * clone of a whole machine that builds its disks in a temporary folder. */
#ifndef VK_CLONE_DISK_H
#define VK_CLONE_DISK_H

#include "vk.h"

/* vmdkit_clone_disk into DST, for a disk that will be called PLACED_AS once
 * its folder is renamed into place: the default createType follows
 * PLACED_AS's folder (a .vmwarevm bundle), not DST's. */
int vk_clone_disk(const char *src, const char *dst, const char *placed_as,
                  const vmdkit_clone_disk_opts *opts, vk_err *e);

#endif
