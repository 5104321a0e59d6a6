/* history.h - a machine's snapshot history as the snapshot operations see
 * it (history.c): its .vmx and disks, its .vmsd, the library around it,
 * and the one question every operation asks before it changes or removes
 * a disk: who depends on it. */
#ifndef VK_HISTORY_H
#define VK_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vk.h"
#include "vm.h"
#include "vmsd.h"

typedef struct vk_history {
    char *vmx_path;
    char *folder;     /* the .vmx's folder, as the caller named it */
    char *folder_abs; /* the same, absolute */
    char *library;    /* the folder holding it (absolute): where linked clones live */
    char *vmsd_path;
    vk_vmx *vmx;
    vk_vm_disk *disks; /* the machine's slots and the disks they name */
    size_t n_disks;
    vk_vmsd *vmsd;
} vk_history;

/* Load the machine VM (a folder or a .vmx) and its .vmsd; with STOPPED, a
 * running or suspended machine is VMDKIT_ELOCKED. */
int vk_history_open(const char *vm, bool stopped, vk_history **out, vk_err *e);
void vk_history_free(vk_history *h);

/* Load the .vmx and .vmsd again (after an operation saved them). */
int vk_history_reload(vk_history *h, vk_err *e);

/*
 * The snapshot WHICH: a UID (decimal) when an entry has it, else the one
 * entry whose displayName is WHICH.  VMDKIT_ENOENT when none is,
 * VMDKIT_EINVAL naming the UIDs when several entries have that name.
 */
int vk_history_find(const vk_history *h, const char *which, const vk_vmsd_snap **out, vk_err *e);

/*
 * MAP[k] = the index in H->disks of the slot of disk k of the snapshot X:
 * the snapshot's slots must be the machine's slots now (VMware would
 * restore the configuration from the .vmsn; vmdkit does not), else
 * VMDKIT_EUNSUPPORTED naming the slot; VMDKIT_EFORMAT for a disk without
 * node or fileName, or a slot named twice.  MAP has X->n_disks entries.
 */
int vk_history_match_slots(const vk_history *h, const vk_vmsd_snap *x, size_t *map, vk_err *e);

/* A disk fileName of the .vmx or .vmsd resolved against the machine's
 * folder.  Caller frees. */
char *vk_history_path(const vk_history *h, const char *file, vk_err *e);

/* The fileName the .vmx and .vmsd use for the disk at PATH: relative to
 * the machine's folder, or absolute when ABSOLUTE.  Caller frees. */
char *vk_history_file_name(const vk_history *h, const char *path, bool absolute, vk_err *e);

/* PATH as messages and results show it: a file in the machine's folder
 * relative to the folder as the caller named it ("Dev.vmwarevm/x.vmdk"),
 * any other as it is.  Caller frees. */
char *vk_history_shown(const vk_history *h, const char *path, vk_err *e);

/* What depends on a disk. */
enum vk_dep_kind {
    VK_DEP_DISK,     /* a disk whose parent it is (a delta, a linked clone) */
    VK_DEP_SLOT,     /* a slot of this machine's .vmx names it */
    VK_DEP_SNAPSHOT, /* an entry of this machine's .vmsd names it */
};

typedef struct vk_dep {
    enum vk_dep_kind kind;
    char *path;   /* DISK: the dependent disk; SLOT: the slot; SNAPSHOT: NULL */
    uint32_t uid; /* SNAPSHOT: the entry */
} vk_dep;

typedef struct vk_deps {
    vk_dep *v;
    size_t n;
} vk_deps;

/*
 * Everything that depends on the disk at DISK: disks in the library
 * around the machine (and in its folder) whose parent hint names it, the
 * machine's slots naming it, and the machine's snapshot entries naming it.
 * Every snapshot operation asks this question here and nowhere else.
 */
int vk_history_dependents_of(const vk_history *h, const char *disk, vk_deps *out, vk_err *e);
void vk_deps_free(vk_deps *d);

/* "a, b (and N more)" of the dependents, for messages. */
void vk_deps_describe(const vk_deps *d, char *buf, size_t n);

/*
 * The links of the chain that starts at DISK, DISK first, followed by
 * parent hints (at most 256 links; a broken hint ends the chain).  Only
 * descriptors are read.
 */
int vk_chain_paths(const char *disk, char ***paths, size_t *n, vk_err *e);

/*
 * Every link of the chains of the snapshots' disks (the snapshot tree),
 * and with SLOTS of the chains of the machine's slots too (its whole
 * history), each once.
 */
int vk_history_links(const vk_history *h, bool slots, char ***links, size_t *n, vk_err *e);

/* Is PATH one of the N paths (by file identity)? */
bool vk_path_in(const char *path, char *const *paths, size_t n);

/*
 * Add the entry recording the freeze F of H's machine to H->vmsd (in
 * memory; vk_vmsd_save writes), as vmdkit_vm_snapshot_take writes it: per
 * slot the disk frozen (for a slot that kept its empty delta, that
 * delta's parent), named as the .vmx names its disks.  *UID gets the new
 * UID.  The one place where a freeze becomes a snapshot entry.
 */
int vk_snapshot_record(vk_history *h, const vk_frozen *f, const char *name, const char *description,
                       int64_t time_us, uint32_t *uid, vk_err *e);

/* Now, in microseconds since the epoch (the .vmsd's createTime). */
int64_t vk_snapshot_now_us(void);

/* The start of the public snapshot operation FN on the machine VM: *E is
 * the carrier vk_entry makes of ERR and LOCAL, with *RES zeroed; VM is
 * required, and WHICH too when the operation NAMES_SNAPSHOT; the caller's
 * options (OPTS->struct_size bytes of them; NULL: defaults) are read into
 * *O, in the struct this library knows, then the history opened (the
 * machine stopped) into *H.  Returns 0 or the error, recorded in *E. */
int vk_snapshot_begin(const char *fn, const char *vm, bool names_snapshot, const char *which,
                      const vmdkit_snapshot_opts *opts, vmdkit_snapshot_result *res, vmdkit_error *err,
                      vk_err *local, vk_err **e, vmdkit_snapshot_opts *o, vk_history **h);

/* Append a copy of S to the list *V of *N strings. */
int vk_strv_push(char ***v, size_t *n, const char *s, vk_err *e);

#endif
