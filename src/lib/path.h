/* path.h - joining untrusted names from descriptors with a folder. */
#ifndef VK_PATH_H
#define VK_PATH_H

#include <stdbool.h>
#include "vk.h"

/* Folder part of PATH ("." when PATH has no slash). Caller frees. */
char *vk_path_dirname(const char *path, vk_err *e);
/* Last component of PATH (pointer into PATH). */
const char *vk_path_basename(const char *path);
/* Does the last component of PATH end in SUFFIX (".vmdk"), compared
 * without regard to case, after at least one other character?  (A file
 * named just ".vmdk" has no name.) */
bool vk_path_has_suffix(const char *path, const char *suffix);
/* DIR + "/" + NAME, or NAME itself when it is absolute. Caller frees. */
char *vk_path_join(const char *dir, const char *name, vk_err *e);

/*
 * Resolve an extent file NAME given in the descriptor at DESC_PATH.
 * Unless ALLOW_EXTERNAL, the name must be relative, contain no ".."
 * component, and (after following symlinks, when the file exists) stay
 * inside the descriptor's folder; otherwise VMDKIT_EPATH.
 */
char *vk_path_resolve_extent(const char *desc_path, const char *name, bool allow_external, vk_err *e);

/* The relative NAME with "." and "x/.." components and repeated slashes
 * removed; *UPS counts the ".." left at its start, which lead above the
 * folder NAME is relative to ("../B/B.vmdk": "B/B.vmdk", 1).  "" when NAME
 * is that folder itself.  Caller frees. */
char *vk_path_normalise_relative(const char *name, unsigned *ups, vk_err *e);

/* Resolve a parentFileNameHint: relative to the child's folder, or absolute.
 * In a hint '\' separates components like '/' (VMware on Windows writes
 * "..\Base\Base.vmdk"); an absolute Windows hint is kept as it is, and so
 * names no file. */
char *vk_path_resolve_parent(const char *child_path, const char *hint, vk_err *e);
/* HINT with '\' made '/' (unless it is an absolute Windows path). Caller frees. */
char *vk_hint_posix(const char *hint, vk_err *e);
/* Is HINT an absolute Windows path: "C:\...", "C:/...", "\\server\..." or
 * "\..."?  Such a hint cannot be followed on this system. */
bool vk_hint_is_windows_absolute(const char *hint);
/* Record in E (VMDKIT_ENOENT) that the parent HINT of CHILD, resolved to
 * RESOLVED, does not exist, saying why when HINT is an absolute Windows path. */
int vk_fail_parent_not_found(vk_err *e, const char *child, const char *hint, const char *resolved);

/* The rule for a parent named by the caller (create -b PARENT, rebase -b
 * NEWPARENT): a relative PARENT is a path from the current folder, like
 * every path of the command line, not from the child's folder as in
 * qemu-img; only the hint written into the child is relative to the child.
 * Returns 0 when PARENT exists; otherwise an error that names the rule. */
int vk_check_parent_arg(const char *parent, vk_err *e);

/* Relative path from folder FROM_DIR to file TO (both made absolute first),
 * normalised ("../Base.vmwarevm/Base.vmdk", never "a/../b"); "." when TO is
 * FROM_DIR. */
char *vk_path_relative(const char *from_dir, const char *to, vk_err *e);

/* Absolute, normalised form of PATH without resolving symlinks. */
char *vk_path_absolute(const char *path, vk_err *e);

/* Is PATH inside the folder DIR? (both absolute and normalised) */
bool vk_path_inside(const char *path, const char *dir);

/* Path with suffix: "dir/name.vmdk" + "-s001" -> "dir/name-s001.vmdk". */
char *vk_path_with_suffix(const char *path, const char *suffix, vk_err *e);

#endif
