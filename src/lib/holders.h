/* holders.h - who else is using a file: VMware (the PATH.lck folder it
 * keeps beside every file of a running machine), QEMU (its OFD locks on
 * bytes 100-299 of an image: 100 + permission bit for what it uses, 200 +
 * bit for what it does not share; block/file-posix.c) and other vmdkit
 * processes (whole-file OFD locks: shared for readers, exclusive for
 * writers; io.c vk_lock_fd).
 *
 * The probe reads /proc/locks, which lists every lock of the system with
 * its file (device and inode) and byte range, so a QEMU writer is seen
 * even behind a vmdkit reader's whole-file lock.  Where /proc/locks cannot
 * be read, a F_OFD_GETLK probe of the whole file reports that someone holds
 * a lock, without telling who.  The caller's own locks count like anyone
 * else's: probe before opening the file, or after closing it.
 */
#ifndef VK_HOLDERS_H
#define VK_HOLDERS_H

#include <stdbool.h>

#include "vk.h"

/* What was found on one file. */
typedef struct vk_holders {
    bool vmware;        /* PATH.lck exists: a VMware machine has the file open */
    bool qemu_writer;   /* QEMU holds its "write" permission byte (101) */
    bool qemu;          /* QEMU holds any of its lock bytes */
    bool vmdkit_writer; /* an exclusive whole-file lock: a vmdkit writer */
    bool vmdkit_reader; /* a shared whole-file lock: a vmdkit reader */
    bool unknown;       /* a lock held by someone /proc/locks could not name */
} vk_holders;

/* Probe the file at PATH.  A file that does not exist has no holders. */
int vk_holders_probe(const char *path, vk_holders *h, vk_err *e);

enum vk_hold_need {
    /* PATH must not change while it is read or made a parent: refuse
     * VMware, a QEMU writer and a vmdkit writer; readers are fine. */
    VK_NEED_NO_WRITER,
    /* PATH is about to be written, renamed or removed: refuse anyone. */
    VK_NEED_EXCLUSIVE,
};

/* 0 when PATH's holders allow NEED; else VMDKIT_ELOCKED with a message
 * naming PATH and who holds it. */
int vk_holders_check(const char *path, enum vk_hold_need need, vk_err *e);

/* The system's locks read once (/proc/locks), for probing many files:
 * reading them again per file costs the square of the number of files
 * on a library of thousands of pieces.  NULL when they cannot be read
 * (the probes below then ask the kernel file by file).  The snapshot is as
 * old as its taking: take it right before the probes. */
typedef struct vk_lock_snapshot vk_lock_snapshot;
vk_lock_snapshot *vk_lock_snapshot_take(void);
void vk_lock_snapshot_free(vk_lock_snapshot *s);
/* vk_holders_probe and vk_holders_check with the locks of snapshot S. */
int vk_holders_probe_in(const vk_lock_snapshot *s, const char *path, vk_holders *h, vk_err *e);
int vk_holders_check_in(const vk_lock_snapshot *s, const char *path, enum vk_hold_need need, vk_err *e);

/* vk_holders_check(NO_WRITER) of every file of every link the disk D has
 * open (descriptors and extents): a disk about to become a parent, or to
 * be copied, must not be changing. */
int vk_disk_check_no_writer(const vmdkit_disk *d, vk_err *e);

/* Is there a VMware lock folder (or file, as older VMware products made,
 * or link) PATH.lck?  The one rule for both the writers' refusal (link.c)
 * and the holders' report. */
bool vk_vmware_lock_present(const char *path);

#endif
