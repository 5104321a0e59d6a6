/* vm.h - virtual machine folders (vm.c, vm_config.c): finding the .vmx,
 * refusing running or suspended machines, the disks a .vmx names, freezing
 * a machine's disks under new deltas, and the .vmx of a clone. */
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
    char *slot; /* "scsi0:0" as spelled in the .vmx */
    char *file; /* its fileName value */
    char *path; /* FILE resolved against the .vmx's folder */
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

/* The length of the disk file NAME's stem: without ".vmdk" and without a
 * "-NNNNNN" snapshot number (Base-000002.vmdk -> Base), the part VMware
 * names snapshot deltas and linked clones' disks after. */
size_t vk_vm_disk_stem(const char *name);

/*
 * A new delta on DISK in the machine's folder, as VMware places snapshot
 * deltas: next to DISK when it lies there (vmdkit_snapshot), else
 * <folder>/<disk name>-NNNNNN.vmdk with the next free number, so that a
 * disk shared from elsewhere gets nothing written beside it.  Its path is
 * copied to OUT (OUT_SIZE bytes).
 */
int vk_vm_new_delta(const char *vmx_path, const char *disk, bool absolute_hint, char *out,
                    size_t out_size, vk_err *e);

/* Set SLOT.fileName of V to VALUE. */
int vk_vm_set_file_name(vk_vmx *v, const char *slot, const char *value, vk_err *e);

/* The disks of a machine put under new deltas (see vk_vm_freeze). */
typedef struct vk_frozen {
    size_t n;
    char **slots;     /* the slots changed */
    char **old_files; /* their fileName values before */
    char **old_paths; /* the links they named: now read-only parents */
    char **new_paths; /* the new deltas the machine writes to */
    bool *reused;     /* the slot kept its current disk (see REUSE_EMPTY) */
} vk_frozen;

/*
 * Snapshot every disk of the machine at VMX_PATH (stopped, chains intact):
 * a new delta on each current disk, in the machine's folder, then the .vmx
 * names the deltas, saved atomically last.  An interruption before the save
 * leaves the machine on its old disks with unused deltas beside them; on
 * failure the deltas made so far are removed.  With REUSE_EMPTY a slot
 * whose current disk is a delta holding no data (an earlier freeze nothing
 * wrote since) keeps it: its parent is already frozen and reads the same,
 * so old_paths names that parent, new_paths the kept delta, and reused is
 * set.  Every file of every chain must be free of writers (VMware, QEMU,
 * vmdkit).
 */
int vk_vm_freeze(const char *vmx_path, bool absolute_hint, bool reuse_empty, vk_frozen *f, vk_err *e);

/* Undo a freeze: the .vmx names the old disks again (saved first), then the
 * deltas are removed. */
int vk_vm_unfreeze(const char *vmx_path, const vk_frozen *f, vk_err *e);
void vk_vm_freeze_free(vk_frozen *f);

/* How a clone's .vmx differs from its source's (vm_config.c). */
typedef struct vk_clone_config {
    const char *name;         /* displayName; NAME.nvram, NAME.vmxf */
    const char *const *slots; /* disk slots and the clone's fileNames for them */
    const char *const *files;
    size_t n;
    const char *clone_of; /* linked clones: the source .vmx (absolute), else NULL */
} vk_clone_config;

/* Turn V (the source's .vmx, in memory) into the clone's: see
 * vmdkit_vm_clone for the keys changed and removed. */
int vk_vm_clone_config(vk_vmx *v, const vk_clone_config *c, vk_err *e);

#endif
