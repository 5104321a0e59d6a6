/* link.h - one link of a chain: a descriptor and its extents, and the
 * chain of links that makes a vmdkit_disk. */
#ifndef VK_LINK_H
#define VK_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include "descriptor.h"
#include "extent.h"
#include "vk.h"

typedef struct vk_link vk_link;

/* The folder every file of a chain must lie beneath (vmdkit_open_beneath):
 * a descriptor of it and its absolute real path. */
typedef struct vk_root {
    int fd;
    char *path;
} vk_root;

/* Internal open flag: content writes keep the link's CID (for operations
 * that rewrite storage without changing what the disk reads, such as
 * commit into a parent or a safe rebase). */
#define VK_OPEN_KEEP_CID (1u << 30)

struct vk_link {
    char *path; /* descriptor (or monolithic sparse file) */
    vk_descriptor desc;
    vk_extent *ext;
    size_t n_ext;
    uint64_t capacity_sectors;
    bool writable;
    bool raw;           /* a raw image opened as one FLAT extent */
    uint64_t raw_bytes; /* exact size of a raw image */
    bool embedded;      /* descriptor lives inside extent 0 */
    bool bare;          /* a sparse file without a descriptor of its own: one
                           piece of a split disk (or a delta) read on its own;
                           never opened for writing, never a parent */
    uint64_t embedded_off_sectors, embedded_size_sectors;
    bool cid_updated;      /* the new CID of this open session is written */
    vk_link *parent;       /* NULL at the base */
    char *parent_path;     /* resolved parent hint */
    char *desc_text;       /* the descriptor text last read or written */
    size_t desc_len;       /* (its layout is kept by rewrites), or NULL */
    int desc_fd;           /* separate descriptor file, or -1 */
    int dir_fd;            /* the folder extent names are relative to */
    bool desc_locked;      /* desc_fd holds an advisory lock */
    char *member_path;     /* a disk inside an OVA: "FILE.ova/NAME.vmdk", and */
    uint64_t member_base;  /* where its bytes lie in desc_fd, the archive */
    uint64_t member_bytes; /* (0: not a member) */
    unsigned open_flags;   /* the flags and root it was opened with, for */
    const vk_root *root;   /* opening extents again (NULL: not confined) */
};

struct vmdkit_disk {
    vk_link *top;
    int n_links;
    unsigned flags;
    vk_root root; /* fd -1: not confined */
    vk_err err;
};

/*
 * Open one link (no parent).  WRITABLE opens its extents read-write.  FD
 * is PATH already opened and DIR_FD its folder (both owned from here on),
 * or both -1 to open PATH by name (beneath ROOT when not NULL).  Extent
 * files are opened beneath DIR_FD unless VMDKIT_OPEN_ALLOW_EXTERNAL.
 * ROOT must outlive the link (extents are opened again beneath it).
 */
int vk_link_open(const char *path, int dir_fd, int fd, bool writable, unsigned flags,
                 const vk_root *root, vk_link **out, vk_err *e);
void vk_link_close(vk_link *l, vk_err *e);

/* The disk member of the OVA (a tar archive) open at FD, OVA for messages:
 * MEMBER, or the first .vmdk member in tar order when NULL.  *NAME (to
 * free) receives its name, *BASE and *SIZE where its bytes lie.  A member
 * that is not a sparse VMDK is refused: VMDKIT_EUNSUPPORTED for a gzip one
 * (it can only be read from the start), VMDKIT_EFORMAT otherwise. */
/* Is FD a regular file that is a tar archive (an OVA, whatever its name)? */
bool vk_ova_probe(int fd);
int vk_ova_find_disk(int fd, const char *ova, const char *member, char **name, uint64_t *base,
                     uint64_t *size, vk_err *e);

/* The extent of L that holds SECTOR (below L's size); *REL is SECTOR's
 * place in it, *K how many of the N sectors from there it holds. */
vk_extent *vk_link_extent_at(vk_link *l, uint64_t sector, uint64_t n, uint64_t *rel, uint64_t *k);

/* Per-link I/O in sectors, without falling through to the parent:
 * unallocated sectors read as zeros. */
int vk_link_status(vk_link *l, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e);
int vk_link_read(vk_link *l, uint64_t sector, uint64_t n, void *buf, vk_err *e);

/* Chain reads (fall through) used by the disk layer and the copy engine. */
int vk_chain_read(vk_link *l, uint64_t sector, uint64_t n, void *buf, vk_err *e);
/* Prefetch what a chain read of the range would read (tables, grains,
 * page cache), in the link that holds each run. */
int vk_chain_prefetch(vk_link *l, uint64_t sector, uint64_t n, vk_err *e);

/* Rewrite the link's descriptor (embedded area or separate file, atomically). */
int vk_link_write_descriptor(vk_link *l, vk_err *e);

/* Record the new CID of L (already in L->desc; OLD_CID is the one on disk).
 * An embedded descriptor is patched in place, keeping its layout, so that a
 * write torn between sectors cannot leave a text that does not parse; a
 * separate descriptor file is rewritten atomically. */
int vk_link_write_cid(vk_link *l, uint32_t old_cid, vk_err *e);

#endif
