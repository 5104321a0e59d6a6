/* library.h - the one model of a VM library.
 *
 * A library is the folders that hold virtual machines and their disks.
 * The model is read once from them and answers, for any file, the three
 * questions every command that changes something must ask before it does:
 *   - who depends on it: the disks whose parent it is, the machines that
 *     run on it, the VMware snapshots that froze it, the linked clones made
 *     from it;
 *   - which references name it, each with the file and key holding it, so
 *     that a command can refuse with the list or rewrite every one;
 *   - who holds it (holders.h, probed live: VMware, QEMU, vmdkit).
 * No command walks folders or guesses a root on its own: they load the
 * library around their targets (vk_lib_load_around) and ask it.
 *
 * References come from: disks (parentFileNameHint), .vmx files (hard-disk
 * fileNames, nvram, extendedConfigFile, CD-ROM/floppy/serial/parallel file
 * backings, checkpoint.vmState/suspend.vmState, cloneOfN) and .vmsd files
 * (snapshotN.diskM.fileName, snapshotN.filename, snapshotN.cloneM,
 * cloneOfN, sentinelN).  A reference's target is compared by device and
 * inode, so relative paths, "..", symbolic links to folders and hard links
 * all give one answer.
 */
#ifndef VK_LIBRARY_H
#define VK_LIBRARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vk.h"

#define VK_LIB_NONE ((size_t)-1)

enum vk_ref_kind {
    VK_REF_PARENT,         /* a disk's parentFileNameHint */
    VK_REF_VM_DISK,        /* a .vmx hard-disk slot: the disk the machine runs on */
    VK_REF_SNAPSHOT_DISK,  /* .vmsd snapshotN.diskM.fileName: a disk a snapshot froze */
    VK_REF_SNAPSHOT_STATE, /* .vmsd snapshotN.filename: the snapshot's .vmsn */
    VK_REF_SNAPSHOT_CLONE, /* .vmsd snapshotN.cloneM: a clone made from the snapshot */
    VK_REF_CLONE_OF,       /* cloneOfN (.vmx or .vmsd): the .vmx a clone came from */
    VK_REF_SENTINEL,       /* .vmsd sentinelN: a linked clone's own delta */
    VK_REF_NVRAM,          /* .vmx nvram */
    VK_REF_VMXF,           /* .vmx extendedConfigFile */
    VK_REF_BACKING,        /* .vmx CD-ROM image, floppy, serial or parallel file */
    VK_REF_STATE,          /* .vmx checkpoint.vmState / suspend.vmState */
    VK_REF_KINDS
};

/* Sets of kinds, for queries. */
#define VK_REFS(k) (1u << (k))
#define VK_REFS_ALL ((1u << VK_REF_KINDS) - 1)
/* What reads through a disk: changing its content changes theirs. */
#define VK_REFS_DEPENDENT \
    (VK_REFS(VK_REF_PARENT) | VK_REFS(VK_REF_VM_DISK) | VK_REFS(VK_REF_SNAPSHOT_DISK))

typedef struct vk_lib_ref {
    enum vk_ref_kind kind;
    char *file;   /* the file holding it (absolute, normalised) */
    char *key;    /* its key; NULL for a parent hint */
    char *value;  /* the value as written (decoded) */
    char *target; /* where the value leads: absolute, normalised, symlinks kept */
    bool exists;  /* TARGET exists; then DEV and INO identify it */
    dev_t dev;
    ino_t ino;
    size_t holder_disk; /* PARENT: the disk holding the hint, else VK_LIB_NONE */
    size_t vm;          /* the machine whose .vmx or .vmsd holds it, else VK_LIB_NONE */
    char *snapshot;     /* SNAPSHOT_*: the snapshot's displayName (or "uid N") */
} vk_lib_ref;

/* A file of a disk: its descriptor, then its extent files. */
typedef struct vk_lib_file {
    char *path; /* absolute */
    bool exists;
    dev_t dev;
    ino_t ino;
} vk_lib_file;

typedef struct vk_lib_disk {
    char *path; /* absolute path of the descriptor (or monolithic sparse file) */
    dev_t dev;
    ino_t ino;
    uint32_t cid, parent_cid;
    char *hint; /* parentFileNameHint as written, or NULL */
    char *create_type;
    uint64_t capacity_sectors;
    vk_lib_file *files; /* [0] is the descriptor itself */
    size_t n_files;
    size_t parent;   /* the disk its hint names, or VK_LIB_NONE */
    size_t hint_ref; /* its PARENT reference, or VK_LIB_NONE */
    bool outside;    /* found only by following a reference out of the roots */
} vk_lib_disk;

typedef struct vk_lib_vm {
    char *vmx;  /* absolute */
    char *vmsd; /* its .vmsd (absolute) when there is one, else NULL */
    char *name; /* displayName, else the .vmx's file name */
} vk_lib_vm;

/* Something in the library that is wrong or left over, for tree. */
typedef struct vk_lib_problem {
    char *path;
    char *message;
} vk_lib_problem;

/* A hidden ".NAME.vmdkit-tmp-XXXXXX" folder (or file) an interrupted
 * command left behind. */
typedef struct vk_lib_leftover {
    char *path;
    uint64_t bytes; /* space its files take (st_blocks) */
    bool in_use;    /* a running vmdkit command holds it (temp_folder.h) */
} vk_lib_leftover;

typedef struct vk_lib {
    char **roots; /* the folders scanned (real paths) */
    size_t n_roots;
    vk_lib_disk *disks;
    size_t n_disks;
    vk_lib_vm *vms;
    size_t n_vms;
    vk_lib_ref *refs;
    size_t n_refs;
    vk_lib_file *others; /* .vmdk files that are no disk (extent files, junk) */
    size_t n_others;
    vk_lib_problem *problems;
    size_t n_problems;
    vk_lib_leftover *leftovers;
    size_t n_leftovers;
    /* capacities of the arrays above */
    size_t cap_roots, cap_disks, cap_vms, cap_refs, cap_others, cap_problems, cap_leftovers;
} vk_lib;

struct vmdkit_vmx;
/* Is the .vmx entry KEY = VALUE of V the file backing of a removable or
 * port device: a CD-ROM image (deviceType cdrom-image), a floppy image, a
 * serial or parallel port's output file (fileType file)? */
bool vk_vmx_is_backing(const struct vmdkit_vmx *v, const char *key, const char *value);

/*
 * The default root of the library around PATH (a disk, a .vmx or a
 * folder), from real paths: the folder that holds PATH's folder (where
 * the sibling VM folders of linked clones live), widened while the folder
 * above it directly holds another virtual machine or disk folder (a base
 * kept in lib/Templates/ with its clones in lib/), never to "/", the home
 * folder or across a mount point.  Caller frees *ROOT.
 */
int vk_lib_default_root(const char *path, char **root, vk_err *e);

/* Read the library under ROOTS (each walked once, 16 levels deep, symbolic
 * links not followed); disks and machines named from inside it but lying
 * outside are read too.  Unreadable files are problems, not errors. */
int vk_lib_load(const char *const *roots, size_t n_roots, vk_lib **out, vk_err *e);

/* Read the library a command on TARGETS must see: ROOT when given, else
 * the default root of each target; plus the folder of each target. */
int vk_lib_load_around(const char *root, const char *const *targets, size_t n_targets, vk_lib **out,
                       vk_err *e);

void vk_lib_free(vk_lib *lib);

/* The disk whose descriptor is the file at PATH, or VK_LIB_NONE. */
size_t vk_lib_disk_at(const vk_lib *lib, const char *path);
/* The disk one of whose files (descriptor or extent) is at PATH. */
size_t vk_lib_disk_with_file(const vk_lib *lib, const char *path);
/* The machine whose .vmx is at PATH, or VK_LIB_NONE. */
size_t vk_lib_vm_at(const vk_lib *lib, const char *path);

/*
 * Every reference of a kind in KINDS (VK_REFS(...) bits) whose target is
 * the file at PATH (by identity).  *IDX receives a malloc'd array of
 * indices into LIB->refs (may be NULL when *N is 0).
 */
int vk_lib_refs_to(const vk_lib *lib, const char *path, unsigned kinds, size_t **idx, size_t *n,
                   vk_err *e);

/* The same, for every file of the disk D (descriptor and extents). */
int vk_lib_refs_to_disk(const vk_lib *lib, size_t d, unsigned kinds, size_t **idx, size_t *n, vk_err *e);

/* One line naming a reference for messages, relative to the current
 * folder where shorter: "B/B.vmdk (parent hint)", "VM.vmsd: snapshot "S1"
 * (snapshot0.disk0.fileName)", "VM.vmx (scsi0:0.fileName)".  Caller frees. */
char *vk_lib_describe_ref(const vk_lib *lib, const vk_lib_ref *ref, vk_err *e);

/* A "; "-separated list of the references IDX[0..N) (at most a few, then
 * "and K more"), for messages.  Caller frees. */
char *vk_lib_describe_refs(const vk_lib *lib, const size_t *idx, size_t n, vk_err *e);

/* The scanned roots as one string ("/a/lib, /b"), for notes.  Caller frees. */
char *vk_lib_describe_roots(const vk_lib *lib, vk_err *e);

/* The disks under ROOTS whose parent hint names TARGET (by identity). */
int vk_find_dependents_multi(const char *const *roots, size_t n_roots, const char *target, char ***paths,
                             size_t *n, vk_err *e);

/*
 * VMDKIT_ELOCKED unless every file of disk D allows NEED (holders.h), and
 * every machine running on it (VM_DISK references) is shut down.
 */
int vk_lib_check_disk_holders(const vk_lib *lib, size_t d, int need, vk_err *e);

#endif
