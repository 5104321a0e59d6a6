/* maint.h - disk maintenance in place: growing the extents of a disk,
 * compacting and rewriting its sparse extents. */
#ifndef VK_MAINT_H
#define VK_MAINT_H

#include <stdbool.h>
#include <stdint.h>

#include "vk.h"

/*
 * Prepare the hosted sparse (KDMV) extent file open as FD (read-write) to
 * hold NEW_CAPACITY sectors: grain tables for the new range are added as
 * holes at the grain-aligned end of the file, the grain directory and its
 * redundant copy get their new entries in place when their sectors have
 * room, else are written whole after the new tables; all of it made
 * durable.  HEADER receives the header that points at them, with the new
 * capacity, and *CHANGED is set: the caller writes it (sector 0) in the
 * same write as the descriptor that gives the extent its new size, since
 * vmdkit check reports a header and a descriptor line that disagree.
 * Until then the file is the old extent with unused space at its end.
 * *CHANGED stays false when the header already holds NEW_CAPACITY or more.
 * Refuses compressed extents (VMDKIT_EUNSUPPORTED) and sizes a sparse
 * file cannot address (VMDKIT_ELIMIT).
 */
int vk_sparse_grow_tables(int fd, const char *path, uint64_t new_capacity, uint8_t header[512],
                          bool *changed, vk_err *e);

/* The capacity in sectors that the header of the sparse extent FD holds,
 * and whether it has zeroed-grain entries (version 2 flag). */
int vk_sparse_capacity(int fd, const char *path, uint64_t *capacity, bool *zeroed_grain, vk_err *e);

/*
 * What the library around PATH (ROOT when given; see vk_lib_load_around)
 * says about changing the disk at PATH in place: nobody may hold it
 * (VMware, QEMU, vmdkit, a running machine: VMDKIT_ELOCKED).  With
 * WHOLE_CHAIN_ALONE also: it has no parent and no disk or VMware snapshot
 * depends on it (VMDKIT_ECHAIN naming them), for changes of its capacity.
 */
int vk_maint_check_library(const char *path, const char *root, bool whole_chain_alone, vk_err *e);

/*
 * The disks a change of capacity of the disk at PATH must carry to keep
 * its chain whole, as the library around PATH (ROOT when given) knows
 * them: the base of its chain first, then every disk depending on it
 * through parent hints (deltas, snapshots, linked clones of any link),
 * each after its parent.  *PATHS (absolute, malloc'd, with each string)
 * and *N receive them.  A parent hint the library cannot follow is
 * VMDKIT_ECHAIN; a member anyone holds or a running machine uses,
 * VMDKIT_ELOCKED.
 */
int vk_maint_chain_members(const char *path, const char *root, char ***paths, size_t *n, vk_err *e);

#endif
