/* vmsd_findings.h - where a machine's .vmsd and its disks disagree, as
 * tree.c finds them: one rule for tree, check and info. */
#ifndef VK_VMSD_FINDINGS_H
#define VK_VMSD_FINDINGS_H

#include "library.h"

/*
 * The findings of machine VM of LIB (enum vmdkit_vmsd_kind): snapshots
 * naming missing disks, a .vmsd that does not parse or whose
 * snapshot.current is no entry, slots running on deltas no snapshot
 * accounts for, linked clones of a disk no snapshot of the source records.
 * Paths inside messages are relative to DIR.  Free *OUT with
 * vmdkit_vmsd_findings_free.
 */
int vk_tree_vmsd_findings(const vk_lib *lib, size_t vm, const char *dir, vmdkit_vmsd_finding **out,
                          size_t *n, vk_err *e);

#endif
