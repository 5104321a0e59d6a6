/* vm.h - virtual machine folders: finding the .vmx, refusing running or
 * suspended machines, the disks a .vmx names, freezing a machine's disks
 * under new deltas, and the walk of a VM library shared by clone, mv and
 * tree. */
#ifndef VK_VM_H
#define VK_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "descriptor.h"
#include "vk.h"
#include "vmx.h"

/* The .vmx named by VM: VM itself when it names a file, else the single
 * "*.vmx" file directly inside the folder VM.  Caller frees *vmx_path. */
int vk_vm_resolve(const char *vm, char **vmx_path, vk_err *e);

/* VMDKIT_ELOCKED, naming the file, when the machine of the .vmx at
 * VMX_PATH (parsed in V) is running or suspended; see vmdkit_vm_check_stopped. */
int vk_vm_check_stopped(const char *vmx_path, const vk_vmx *v, vk_err *e);

/* VMDKIT_ELOCKED when FOLDER holds a "*.lck" entry (VMware's lock folders). */
int vk_vm_check_no_lock(const char *folder, vk_err *e);

/* One hard disk of a machine. */
typedef struct vk_vm_disk {
    char *slot;   /* "scsi0:0" as spelled in the .vmx */
    char *file;   /* its fileName value */
    char *path;   /* FILE resolved against the .vmx's folder */
} vk_vm_disk;

/* Parse the .vmx at VMX_PATH and list its hard disks. */
int vk_vm_load(const char *vmx_path, vk_vmx **v, vk_vm_disk **disks, size_t *n, vk_err *e);
void vk_vm_disks_free(vk_vm_disk *disks, size_t n);

/* The fileName a .vmx at VMX_PATH uses for the disk at DISK_PATH: the bare
 * file name when both share a folder, else the relative path, or the
 * absolute path when ABSOLUTE.  Caller frees. */
char *vk_vm_file_name_for(const char *vmx_path, const char *disk_path, bool absolute, vk_err *e);

/* Remove the disk at PATH: its descriptor first (so no half disk is ever
 * visible), then its extent files. */
int vk_vm_remove_disk(const char *path, vk_err *e);

/* The disks of a machine put under new deltas (see vk_vm_freeze). */
typedef struct vk_frozen {
    size_t n;
    char **slots;      /* the slots changed */
    char **old_files;  /* their fileName values before */
    char **old_paths;  /* the links they named: now read-only parents */
    char **new_paths;  /* the new deltas the machine writes to */
} vk_frozen;

/*
 * Snapshot every disk of the machine at VMX_PATH (stopped, chains intact):
 * a new delta on each current disk, in the machine's folder, then the .vmx
 * names the deltas, saved atomically last.  An interruption before the save
 * leaves the machine on its old disks with unused deltas beside them; on
 * failure the deltas made so far are removed.
 */
int vk_vm_freeze(const char *vmx_path, bool absolute_hint, vk_frozen *f, vk_err *e);

/* Undo a freeze: the .vmx names the old disks again (saved first), then the
 * deltas are removed. */
int vk_vm_unfreeze(const char *vmx_path, const vk_frozen *f, vk_err *e);
void vk_vm_freeze_free(vk_frozen *f);

/* Is PATH inside the folder DIR? (both absolute and normalised) */
bool vk_path_inside(const char *path, const char *dir);

/* How a clone's .vmx differs from its source's (vm_config.c). */
typedef struct vk_clone_config {
    const char *name;             /* displayName; NAME.nvram, NAME.vmxf */
    const char *const *slots;     /* disk slots and the clone's fileNames for them */
    const char *const *files;
    size_t n;
    const char *clone_of;         /* linked clones: the source .vmx (absolute), else NULL */
} vk_clone_config;

/* Turn V (the source's .vmx, in memory) into the clone's: see
 * vmdkit_vm_clone for the keys changed and removed. */
int vk_vm_clone_config(vk_vmx *v, const vk_clone_config *c, vk_err *e);

/* ---- moving (vm_move.c, vm_move_disk.c) ---- */

/* Record a planned rewrite in RES (*CAP: its capacity); KEY NULL means a
 * disk's parentFileNameHint. */
int vk_move_add_fix(vmdkit_move_result *res, size_t *cap, const char *file, const char *key,
                    const char *value, const char *target, vk_err *e);
/* Apply the planned rewrites; each failure is recorded in its fix and the
 * others still go ahead.  VMDKIT_ECHAIN when one failed. */
int vk_move_apply_fixes(vmdkit_move_result *res, vk_err *e);
/* VMDKIT_ELOCKED when a file to rewrite belongs to a running machine. */
int vk_move_check_unlocked(const vmdkit_move_result *res, vk_err *e);
/* DST, or DST/<name of SRC> when DST is a folder, made absolute with its
 * folder's real path. */
char *vk_move_destination(const char *src_real, const char *dst, vk_err *e);
/* fsync the folder holding PATH (best effort). */
void vk_sync_folder_of(const char *path);
/* Move the disk SRC (see vmdkit_move). */
int vk_move_disk(const char *src, const char *dst, const char *root, vmdkit_move_result *res, vk_err *e);

/* ---- walking a library (libwalk.c) ---- */

enum vk_lib_kind {
    VK_LIB_DISK,       /* a .vmdk that is a disk: D is its descriptor */
    VK_LIB_BAD_DISK,   /* a .vmdk descriptor that does not parse: PROBLEM says why */
    VK_LIB_OTHER_VMDK, /* a .vmdk that is no disk (an extent file, or junk) */
    VK_LIB_VMX,        /* a .vmx file */
};

/* Called for each file found; D is set for VK_LIB_DISK, PROBLEM for
 * VK_LIB_BAD_DISK.  Return non-zero to stop the walk with that value. */
typedef int (*vk_lib_fn)(void *opaque, const char *path, enum vk_lib_kind kind,
                         const vk_descriptor *d, const char *problem);

/* Walk ROOT (16 levels at most, symlinks not followed, VMware lock folders
 * and vmdkit's temporary folders skipped) in name order. */
int vk_lib_walk(const char *root, vk_lib_fn fn, void *opaque, vk_err *e);

#endif
