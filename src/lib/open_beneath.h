/* open_beneath.h - open a file named in a disk beneath a folder descriptor,
 * so that no symbolic link and no ".." swapped in between a check and the
 * open can lead outside that folder: what is checked is what is opened. */
#ifndef VK_OPEN_BENEATH_H
#define VK_OPEN_BENEATH_H

/*
 * Open the relative name REL beneath the folder DIRFD with the open(2)
 * flags MODE (O_CLOEXEC and O_NOCTTY are added; the open does not block
 * on a FIFO, the descriptor is blocking unless MODE says O_NONBLOCK).  REL must be
 * normalised (vk_path_normalise_relative): no "." or ".." component, no
 * leading "/".  No component, the last one included, may be a symbolic
 * link.  Returns the descriptor, or -1 with errno: ELOOP for a symbolic
 * link, EXDEV for a way out of DIRFD, the open errors otherwise.
 *
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has it
 * (Linux 5.6), else a walk of the components with O_NOFOLLOW.
 */
int vk_open_beneath(int dirfd, const char *rel, int mode);

/* The walk vk_open_beneath falls back to (for tests of that fallback). */
int vk_open_beneath_walk(int dirfd, const char *rel, int mode);

/* A new descriptor of the folder LEVELS above the folder DIRFD (".."
 * opened on the folder itself, so a renamed or symlinked path cannot
 * change it), or -1 with errno.  LEVELS 0 duplicates DIRFD. */
int vk_open_dir_up(int dirfd, unsigned levels);

#endif
