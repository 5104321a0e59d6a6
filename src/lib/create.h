/* create.h - building blocks for new disks, shared by create, convert and
 * the snapshot/clone operations. */
#ifndef VK_CREATE_H
#define VK_CREATE_H

#include "descriptor.h"
#include "link.h"
#include "vk.h"

/* A fresh descriptor with VMware's header keys and ddb (adapter, geometry,
 * longContentID, uuid, hw version, tools version) and a new random CID; no
 * extents yet. */
int vk_create_descriptor(vk_descriptor *d, const char *create_type, uint64_t capacity_sectors,
                         const char *adapter, int hw_version, vk_err *e);

/* A new hosted sparse extent file (O_EXCL) of CAPACITY_SECTORS with all
 * grain tables pre-allocated and a redundant directory; DESC_TEXT is
 * embedded (20 sectors) when not NULL. */
int vk_create_sparse_extent(const char *path, uint64_t capacity_sectors, const char *desc_text,
                            bool zeroed_grain, vk_err *e);

/* A new FLAT extent file (O_EXCL) of SECTORS, host-sparse (its holes read
 * as zeros), made durable. */
int vk_create_flat_file(const char *path, uint64_t sectors, vk_err *e);

/* Most pieces of a split (twoGbMaxExtent*) disk. */
#define VK_MAX_SPLIT_PIECES 999u

/* The descriptor text of a streamOptimized file named PATH. */
int vk_create_stream_descriptor(const char *path, uint64_t cap, const char *adapter, int hw, char **text,
                                vk_err *e);

/* ddb.virtualHWVersion as a number: 0 (the default, 4) when TEXT is NULL,
 * not all digits or beyond VK_MAX_HW_VERSION. */
#define VK_MAX_HW_VERSION 1000000
int vk_hw_version_of(const char *text);

/* Can a disk of TYPE hold CAPACITY_SECTORS? (A sparse file addresses less
 * than 2 TiB with its 32-bit tables; a split disk has at most 999 pieces of
 * 2047 MiB; nothing beyond 512 TiB is created.) */
bool vk_create_fits(vmdkit_create_type type, uint64_t capacity_sectors);

/* Validate create options; *cap receives the capacity in sectors. */
int vk_create_check_opts(const char *path, const vmdkit_create_opts *o, uint64_t *cap, vk_err *e);

/* parentFileNameHint for a child at CHILD_PATH naming PARENT_PATH: relative
 * to the child's folder and normalised, or absolute. */
/* Refuse (VMDKIT_ELIMIT) a parent whose chain, followed by its hints
 * descriptor by descriptor, is already VK_MAX_CHAIN_LINKS deep: a child
 * would be one link too many and never open. */
int vk_check_depth_for_child(const char *parent, vk_err *e);

int vk_parent_hint_for(const char *child_path, const char *parent_path, bool absolute, char **hint,
                       vk_err *e);

/* vmdkit_snapshot into the caller's buffer NEW_PATH (NEW_PATH_SIZE bytes). */
int vk_snapshot_beside(const char *disk_path, unsigned flags, char *new_path, size_t new_path_size,
                       vk_err *e);

#endif
