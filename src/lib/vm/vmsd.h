/* vmsd.h - VMware's snapshot database (.vmsd): the snapshot tree of a
 * virtual machine, in the .vmx dialect, read and edited losslessly.
 *
 * The file is a vk_vmx (vmx.h): every byte of a line not changed is kept
 * (order, comments, key case, CRLF, .encoding, unknown keys).  On top of it
 * sits a typed view, rebuilt after each edit:
 *
 *   snapshot.lastUID        last UID issued; only grows (UIDs are never reused)
 *   snapshot.current        UID the running state derives from ("You are here"
 *                           is below it)
 *   snapshot.numSnapshots   number of entries
 *   snapshot.mruN.uid       recently used snapshots, newest first (Workstation)
 *   snapshotN.uid           entry N (an index, not the UID; may be sparse)
 *   snapshotN.parent        the parent's UID (absent on a root)
 *   snapshotN.filename      the .vmsn checkpoint file (may be absent)
 *   snapshotN.displayName, .description, .type
 *   snapshotN.createTimeHigh/.createTimeLow
 *                           microseconds since the Unix epoch, high and low
 *                           32 bits; the low half is written signed
 *   snapshotN.numDisks, .diskM.fileName, .diskM.node
 *                           the disk each slot ran on when the snapshot was
 *                           taken (frozen by it) and the slot ("scsi0:0")
 *   snapshotN.cloneM, .numClones
 *                           linked clones made from the snapshot (a parent)
 *   cloneOfN, numCloneOf, sentinelN, numSentinels
 *                           a linked clone's own record of its origin
 */
#ifndef VK_VMSD_H
#define VK_VMSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vk.h"
#include "vmx.h"

/* Largest snapshot or disk index read (snapshotN, diskM, cloneM, mruN). */
#define VK_VMSD_MAX_INDEX 999999ul

typedef struct vk_vmsd_disk {
    unsigned long index; /* M of diskM */
    char *file;          /* diskM.fileName; NULL when absent */
    char *node;          /* diskM.node; NULL when absent */
} vk_vmsd_disk;

typedef struct vk_vmsd_snap {
    unsigned long index; /* N of snapshotN */
    uint32_t uid;
    bool has_parent;
    uint32_t parent;
    char *display_name; /* NULL when absent, like the three below */
    char *description;
    char *filename; /* the .vmsn */
    char *type;
    bool has_time; /* both halves present */
    int64_t create_time_us;
    vk_vmsd_disk *disks; /* by index */
    size_t n_disks;
    char **clones; /* cloneM values, by index */
    size_t n_clones;
} vk_vmsd_snap;

typedef struct vk_vmsd {
    vk_vmx *file;
    bool existed;      /* the file was there when loaded */
    uint32_t last_uid; /* 0 when absent */
    bool has_current;
    uint32_t current;
    bool has_num_snapshots;
    unsigned long num_snapshots;
    uint32_t *mru; /* by index */
    size_t n_mru;
    vk_vmsd_snap *snaps; /* by index */
    size_t n_snaps;
    char **clone_of; /* cloneOfN values, by index */
    size_t n_clone_of;
    char **sentinels; /* sentinelN values, by index */
    size_t n_sentinels;
} vk_vmsd;

/* The .vmsd of the machine whose .vmx is at VMX_PATH: the same name with
 * ".vmsd" for ".vmx", in the same folder.  Caller frees. */
char *vk_vmsd_path_for(const char *vmx_path, vk_err *e);

/*
 * Read the .vmsd at PATH.  A missing file reads as an empty one (EXISTED
 * false; saving creates it).  Errors: those of vk_vmx_load, and
 * VMDKIT_EFORMAT naming the key for a number that is not one (uid, parent,
 * times, lastUID, current, mru), an entry without a uid, two entries with
 * one uid, or an index above VK_VMSD_MAX_INDEX.
 */
int vk_vmsd_load(const char *path, vk_vmsd **out, vk_err *e);

/* Parse LEN bytes of DATA as the .vmsd at PATH. */
int vk_vmsd_parse(const char *path, const char *data, size_t len, vk_vmsd **out, vk_err *e);

void vk_vmsd_free(vk_vmsd *s);

/* The entry with UID, or NULL. */
const vk_vmsd_snap *vk_vmsd_find(const vk_vmsd *s, uint32_t uid);

/* Every edit below is all or nothing: one that fails (a value the file's
 * encoding cannot hold, no memory) leaves the text and the view as they
 * were. */

/* A new entry (see vk_vmsd_add). */
typedef struct vk_vmsd_new {
    const char *display_name; /* NULL: "Snapshot UID" */
    const char *description;  /* NULL: no description key */
    int64_t create_time_us;
    const char *const *files; /* diskM.fileName */
    const char *const *nodes; /* diskM.node */
    size_t n_disks;
} vk_vmsd_new;

/*
 * Record a snapshot taken now, as VMware does: UID = lastUID + 1 (above
 * every UID present), parent = snapshot.current when that entry exists,
 * the entry written at the next free index after the last entry's lines
 * (no .filename: vmdkit writes no .vmsn), then snapshot.lastUID,
 * snapshot.current = UID, snapshot.numSnapshots and the mru list (UID
 * first, the others shifted).  An empty file first gets `.encoding =
 * "UTF-8"`.  *UID receives the new UID.  In memory; vk_vmsd_save writes.
 */
int vk_vmsd_add(vk_vmsd *s, const vk_vmsd_new *n, uint32_t *uid, vk_err *e);

/* snapshot.current = UID, and UID first in the mru list. */
int vk_vmsd_set_current(vk_vmsd *s, uint32_t uid, vk_err *e);

/*
 * Remove the entry UID: its children get its parent (or become roots),
 * snapshot.current moves to its parent when it was current (and goes when
 * it had none), every snapshotN.* key of it goes and the entries above it
 * move down one index (so a dense file stays dense), numSnapshots drops
 * (and goes with current when no entry is left, as VMware leaves it).
 * The mru list is kept, as Workstation keeps it.  VMDKIT_ENOENT when no
 * entry has UID.
 */
int vk_vmsd_remove(vk_vmsd *s, uint32_t uid, vk_err *e);

/* snapshotN.diskM.fileName of entry UID (disk by its index M) = FILE. */
int vk_vmsd_set_disk_file(vk_vmsd *s, uint32_t uid, unsigned long disk_index, const char *file,
                          vk_err *e);

/*
 * Record the linked clone whose .vmx is VMX (an absolute path) in entry
 * UID, as Workstation does: snapshotN.cloneM = VMX with the next free M
 * and snapshotN.numClones, after the entry's last line.  Nothing changes
 * when the entry records VMX already.  VMDKIT_ENOENT when no entry has UID.
 */
int vk_vmsd_add_clone(vk_vmsd *s, uint32_t uid, const char *vmx, vk_err *e);

/* Write the file atomically (vk_vmx_save). */
int vk_vmsd_save(const vk_vmsd *s, vk_err *e);

/* Microseconds since the epoch from createTimeHigh/createTimeLow (the low
 * half as written: signed, or unsigned), and back (the low half signed,
 * as VMware writes it). */
int64_t vk_vmsd_time_join(int64_t high, int64_t low);
void vk_vmsd_time_split(int64_t us, int32_t *high, int32_t *low);

#endif
