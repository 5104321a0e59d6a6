/* link.c - open one link of a chain: find and parse its descriptor
 * (separate text file or embedded in a sparse extent), open its extents
 * with the right driver, lock them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "holders.h"
#include "link.h"
#include "open_beneath.h"
#include "path.h"
#include "sparse_header.h"

/* Largest disk accepted, in sectors (128 PiB): its size in bytes, and any
 * sum of such sizes, stays far from overflowing 64 bits. */
#define MAX_CAPACITY_SECTORS (UINT64_C(1) << 48)

/* Open without blocking (a FIFO named as a disk or extent would wait for a
 * writer forever), then restore blocking mode for the I/O. */
static int open_nonblocking_at(int dir_fd, const char *path, int mode)
{
    int fd = openat(dir_fd, path, mode | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    return fd;
}

static int open_nonblocking(const char *path, int mode)
{
    return open_nonblocking_at(AT_FDCWD, path, mode);
}

/* What the first bytes of a file say it is. */
enum file_kind {
    KIND_TEXT = VK_MAGIC_OTHER,
    KIND_KDMV = VK_MAGIC_KDMV,
    KIND_COWD = VK_MAGIC_COWD,
    KIND_SESPARSE = VK_MAGIC_SESPARSE
};

static int probe_fd(int fd, const char *path, enum file_kind *kind, vk_err *e)
{
    uint8_t b[8] = {0};
    uint64_t size;
    int r = vk_file_size(fd, &size, path, e);
    if (r)
        return r;
    if ((r = vk_pread_zfill(fd, b, sizeof b, 0, path, e)))
        return r;
    *kind = (enum file_kind)vk_file_magic(b, size);
    return 0;
}

/* A descriptor for a binary extent opened directly (no text descriptor). */
static int synth_descriptor(vk_link *l, enum file_kind kind, int fd, vk_err *e)
{
    uint8_t b[32];
    int r = vk_pread_full(fd, b, sizeof b, 0, l->path, e);
    if (r)
        return r;
    uint64_t cap;
    enum vk_extent_type t;
    const char *ct;
    if (kind == KIND_COWD) {
        cap = vk_le32(b + 12);
        t = VK_EXT_VMFSSPARSE;
        ct = "vmfsSparse";
    } else if (kind == KIND_SESPARSE) {
        cap = vk_le64(b + 16);
        t = VK_EXT_SESPARSE;
        ct = "seSparse";
    } else {
        cap = vk_le64(b + 12);
        t = VK_EXT_SPARSE;
        ct = "monolithicSparse";
    }
    l->desc.version = 1;
    l->desc.cid = VK_CID_NONE;
    l->desc.parent_cid = VK_CID_NONE;
    l->bare = true;
    if (!(l->desc.create_type = vk_strdup(ct, e)))
        return VMDKIT_ENOMEM;
    return vk_descriptor_add_extent(&l->desc, VK_ACCESS_RW, cap, t, vk_path_basename(l->path), false, 0,
                                    e);
}

static int open_raw(vk_link *l, int fd, vk_err *e);

/* A file of a virtual machine that is not a disk, by its name or by its
 * first line (a .vmx typed where a disk is expected): what it is, or NULL. */
static const char *vm_file_kind(int fd, const char *path)
{
    static const struct {
        const char *suffix, *what;
    } names[] = {
        {".vmx", "a virtual machine's configuration (.vmx)"},
        {".vmxf", "a virtual machine's team configuration (.vmxf)"},
        {".vmsd", "a virtual machine's snapshot list (.vmsd)"},
        {".vmsn", "a virtual machine's snapshot state (.vmsn)"},
        {".nvram", "a virtual machine's firmware settings (.nvram)"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (vk_path_has_suffix(path, names[i].suffix))
            return names[i].what;
    char head[32] = {0};
    if (vk_pread_zfill(fd, head, sizeof head - 1, 0, path, NULL))
        return NULL;
    const char *p = head;
    if ((uint8_t)p[0] == 0xef && (uint8_t)p[1] == 0xbb && (uint8_t)p[2] == 0xbf)
        p += 3; /* UTF-8 byte order mark */
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (strncasecmp(p, ".encoding", 9) == 0 || strncasecmp(p, "config.version", 14) == 0)
        return "a virtual machine's configuration (.vmx text)";
    return NULL;
}

/* A file that is neither a sparse extent nor a descriptor, under
 * VMDKIT_OPEN_PROBE: a raw image, read-only.  Writing a file only guessed
 * to be raw (a configuration file typed by mistake) needs it named raw. */
static int open_probed_raw(vk_link *l, int fd, unsigned flags, vk_err *e)
{
    const char *what = vm_file_kind(fd, l->path);
    if (what)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: %s, not a disk: name one of its .vmdk files", l->path,
                       what);
    if (l->writable)
        return vk_fail(e, VMDKIT_ERDONLY,
                       "%s: not a VMDK; it is written as a raw image only when named one (-f raw)",
                       l->path);
    int r;
    if (!(flags & VMDKIT_OPEN_NO_LOCK) && (r = vk_lock_fd(fd, false, l->path, e)))
        return r;
    return open_raw(l, fd, e);
}

/*
 * Open extent X's file into *FD.  Unless the user allowed external
 * extents, the name (relative, no "..", checked by vk_path_resolve_extent)
 * is opened beneath the descriptor's folder descriptor without following
 * any symbolic link, so that nothing swapped in after a check can lead
 * out.  Under a root (vmdkit_open_beneath) even an external name must lie
 * beneath the root.  The pool's reopen goes through here too.
 */
static int open_extent_file(vk_link *l, const vk_extent *x, int *fd, vk_err *e)
{
    int mode = x->writable ? O_RDWR : O_RDONLY;
    bool external = (l->open_flags & VMDKIT_OPEN_ALLOW_EXTERNAL) != 0;
    const vk_root *root = l->root;
    if (external && !root) {
        *fd = open_nonblocking(x->path, mode);
        return *fd < 0; /* 1: errno says why */
    }
    char *rel;
    int base = l->dir_fd;
    unsigned ups = 0;
    if (external) {
        char *abs = vk_path_absolute(x->path, e);
        if (!abs)
            return e ? e->code : VMDKIT_ENOMEM;
        if (!vk_path_inside(abs, root->path)) {
            int r = vk_fail(e, VMDKIT_EPATH,
                            "%s: extent file \"%s\": %s is outside the confinement folder %s", l->path,
                            x->name, abs, root->path);
            free(abs);
            return r;
        }
        rel = vk_strdup(abs + strlen(root->path) + (strcmp(root->path, "/") != 0), e);
        free(abs);
        base = root->fd;
    } else {
        rel = vk_path_normalise_relative(x->name, &ups, e);
    }
    if (!rel)
        return VMDKIT_ENOMEM;
    *fd = ups || !*rel ? (errno = EXDEV, -1) : vk_open_beneath(base, rel, mode);
    int err = errno;
    free(rel);
    errno = err;
    return *fd < 0;
}

/* Why X's file did not open (errno). */
static int open_extent_error(const vk_link *l, const vk_extent *x, vk_err *e)
{
    if (errno == ENOENT)
        return vk_fail(e, VMDKIT_ENOENT, "%s: extent file \"%s\": not found (%s)", l->path, x->name,
                       x->path);
    if (errno == EISDIR) /* opened for writing */
        return vk_fail(e, VMDKIT_EFORMAT, "%s: extent file \"%s\": is a directory", l->path, x->name);
    if (errno == ELOOP)
        return vk_fail(
            e, VMDKIT_EPATH,
            "%s: extent file \"%s\": a symbolic link, not followed (use --allow-external-extents to permit)",
            l->path, x->name);
    if (errno == EXDEV)
        return vk_fail(e, VMDKIT_EPATH, "%s: extent file \"%s\": outside the descriptor's folder",
                       l->path, x->name);
    return vk_fail_errno(e, errno, "%s: extent file \"%s\": open", l->path, x->name);
}

/* The pool closed X's file: open it again as it was first opened (same
 * folder descriptor, same policy, same lock), and only if it is the very
 * file it was (device, inode, type): a file swapped in meanwhile is never
 * read or written. */
static int reopen_extent(void *opaque, vk_extent *x, int *out, vk_err *e)
{
    vk_link *l = opaque;
    int fd = -1;
    int r = open_extent_file(l, x, &fd, e);
    if (r > 0)
        return open_extent_error(l, x, e);
    if (r)
        return r;
    struct stat st;
    if (fstat(fd, &st) != 0)
        r = vk_fail_errno(e, errno, "%s: stat", x->path);
    else if (!vk_extent_is_file(x, st.st_dev, st.st_ino) ||
             !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        r = vk_fail(e, VMDKIT_EPATH,
                    "%s: extent file \"%s\": replaced by another file since the disk was opened: "
                    "not read or written",
                    l->path, x->name);
    else if (!(l->open_flags & VMDKIT_OPEN_NO_LOCK))
        r = vk_lock_fd(fd, x->writable, x->path, e);
    if (r) {
        close(fd);
        return r;
    }
    *out = fd;
    return 0;
}

/* Open extent X's file, check what was opened, lock it and put it in the
 * descriptor pool, held (released once its driver has opened). */
static int open_extent_fd(vk_link *l, vk_extent *x, vk_err *e)
{
    unsigned flags = l->open_flags;
    int r = open_extent_file(l, x, &x->fd, e);
    if (r < 0)
        return r;
    if (r > 0)
        return open_extent_error(l, x, e);
    struct stat st;
    if (fstat(x->fd, &st) != 0)
        return vk_fail_errno(e, errno, "%s: stat", x->path);
    if (S_ISDIR(st.st_mode))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: extent file \"%s\": is a directory", l->path, x->name);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: extent file \"%s\": not a regular file or block device",
                       l->path, x->name);
    /* a device node may come out of an archive or an image layer into the
     * folder: it is a disk's storage only when the user allowed it */
    if (S_ISBLK(st.st_mode) && !(flags & VMDKIT_OPEN_ALLOW_EXTERNAL))
        return vk_fail(e, VMDKIT_EPATH,
                       "%s: extent file \"%s\": a block device (use --allow-external-extents to permit)",
                       l->path, x->name);
    struct stat other;
    if (l->desc_fd >= 0 && fstat(l->desc_fd, &other) == 0 && other.st_dev == st.st_dev &&
        other.st_ino == st.st_ino)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: extent file \"%s\": is the descriptor itself", l->path,
                       x->name);
    if (x->writable && vk_vmware_lock_present(x->path))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by VMware (%s.lck exists)", x->path, x->path);
    /* several FLAT extents may share one file (partitionedDevice): they
     * share its descriptor, and its first extent holds the lock for all of
     * them.  One opened in another mode keeps a descriptor of its own,
     * unlocked (a second OFD lock would conflict with the first) and
     * pinned, so that it never needs a lock again. */
    vk_extent *prev = vk_extent_find_file(l->ext, x, st.st_dev, st.st_ino);
    if (prev && prev->writable == x->writable) {
        vk_extent_share(x, prev);
        return 0;
    }
    int r2 = 0;
    if (!prev && !(flags & VMDKIT_OPEN_NO_LOCK))
        r2 = vk_lock_fd(x->fd, x->writable, x->path, e);
    return r2 ? r2 : vk_extent_adopt(x, prev != NULL, reopen_extent, l, e);
}

static int open_extent_driver(vk_link *l, vk_extent *x, vk_err *e)
{
    enum file_kind kind;
    int r;
    switch (x->type) {
    case VK_EXT_ZERO:
        return vk_zero_open(x, e);
    case VK_EXT_FLAT:
    case VK_EXT_VMFS:
    case VK_EXT_VMFSRDM:
    case VK_EXT_VMFSRAW:
        return vk_flat_open(x, e);
    case VK_EXT_SPARSE:
        if (x->file_bytes) /* a member of an OVA, found by its KDMV magic */
            return vk_sparse_open(x, e);
        if ((r = probe_fd(x->fd, x->path, &kind, e)))
            return r;
        if (kind == KIND_KDMV)
            return vk_sparse_open(x, e);
        if (kind == KIND_COWD)
            return vk_cowd_open(x, e);
        return vk_fail(e, VMDKIT_EFORMAT, "%s: extent file \"%s\": magic: not a sparse extent (KDMV)",
                       l->path, x->name);
    case VK_EXT_VMFSSPARSE:
        return vk_cowd_open(x, e);
    case VK_EXT_SESPARSE:
        return vk_sesparse_open(x, e);
    }
    return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: extent type not supported", l->path);
}

static int open_extents(vk_link *l, unsigned flags, int self_fd, vk_err *e)
{
    if (l->writable && vk_vmware_lock_present(l->path))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by VMware (%s.lck exists)", l->path, l->path);
    l->ext = vk_calloc(l->desc.n_extents, sizeof *l->ext, e);
    if (!l->ext)
        return VMDKIT_ENOMEM;
    uint64_t start = 0;
    for (size_t i = 0; i < l->desc.n_extents; i++) {
        const vk_extent_desc *d = &l->desc.extents[i];
        vk_extent *x = &l->ext[i];
        l->n_ext = i + 1;
        x->fd = -1;
        x->access = d->access;
        x->type = d->type;
        x->start_sector = start;
        x->size_sectors = d->size_sectors;
        x->offset_sectors = d->has_offset ? d->offset_sectors : 0;
        x->writable = l->writable && d->access == VK_ACCESS_RW;
        if (!vk_add_ok(start, d->size_sectors, &start))
            return vk_fail(e, VMDKIT_ELIMIT, "%s: extent %zu: sizes overflow", l->path, i);
        if (d->filename && !(x->name = vk_strdup(d->filename, e)))
            return VMDKIT_ENOMEM;
        if (d->type == VK_EXT_ZERO) {
            int r = vk_zero_open(x, e);
            if (r)
                return r;
            continue;
        }
        if (d->access == VK_ACCESS_NOACCESS)
            continue; /* never opened: any access to it is refused */
        if (self_fd >= 0 && i == 0) {
            /* the descriptor is embedded in this very file: its extent is the file
             * itself, whatever name the descriptor gives (mkimg writes "").  That
             * file starts with a header: read as FLAT its header would be data,
             * and a write would overwrite it, so only a sparse type fits. */
            if (!vk_extent_type_is_sparse(d->type))
                return vk_fail(e, VMDKIT_EFORMAT,
                               "%s: extent 0: type %s, but its file is this sparse file, headers "
                               "and all (an embedded descriptor's extent is SPARSE)",
                               l->path, vk_extent_type_name(d->type));
            if (!(x->path = vk_strdup(l->member_path ? l->member_path : l->path, e)))
                return VMDKIT_ENOMEM;
            x->file_base = l->member_base;
            x->file_bytes = l->member_bytes;
            x->fd = dup(self_fd);
            if (x->fd < 0)
                return vk_fail_errno(e, errno, "%s: dup", l->path);
            /* pinned: this file carries the link's lock, which closing any
             * descriptor of it would drop */
            int r = flags & VMDKIT_OPEN_NO_LOCK ? 0 : vk_lock_fd(x->fd, x->writable, x->path, e);
            if (r || (r = vk_extent_adopt(x, true, reopen_extent, l, e)))
                return r;
        } else {
            if (!d->filename || !*d->filename)
                return vk_fail(e, VMDKIT_EFORMAT, "%s: extent %zu: file name is empty", l->path, i);
            x->path = vk_path_resolve_extent(l->path, d->filename,
                                             (flags & VMDKIT_OPEN_ALLOW_EXTERNAL) != 0, e);
            if (!x->path)
                return e ? e->code : VMDKIT_EPATH;
            int r = open_extent_fd(l, x, e);
            if (r)
                return r;
        }
        int r = open_extent_driver(l, x, e);
        vk_extent_release(x);
        if (r)
            return r;
        /* refuse a writable open up front rather than at the first write */
        if (x->writable && !x->ops->write)
            return vk_fail(
                e, VMDKIT_ERDONLY,
                "%s: extent \"%s\" (%s) can only be read; open the disk read-only or convert it",
                l->path, x->name ? x->name : "", vk_extent_type_name(x->type));
    }
    l->capacity_sectors = start;
    if (start == 0)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: extents: the disk has no sectors", l->path);
    if (start > MAX_CAPACITY_SECTORS)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: extents: %llu sectors in all is beyond any supported size",
                       l->path, (unsigned long long)start);
    return 0;
}

static int open_raw(vk_link *l, int fd, vk_err *e)
{
    uint64_t size;
    int r = vk_file_size(fd, &size, l->path, e);
    if (r)
        return r;
    l->raw = true;
    l->raw_bytes = size;
    l->desc.cid = VK_CID_NONE;
    l->desc.parent_cid = VK_CID_NONE;
    l->desc.version = 1;
    if ((r = vk_descriptor_add_extent(&l->desc, VK_ACCESS_RW, vk_div_round_up(size, VK_SECTOR),
                                      VK_EXT_FLAT, vk_path_basename(l->path), true, 0, e)))
        return r;
    l->ext = vk_calloc(1, sizeof *l->ext, e);
    if (!l->ext)
        return VMDKIT_ENOMEM;
    l->n_ext = 1;
    vk_extent *x = l->ext;
    x->access = VK_ACCESS_RW;
    x->type = VK_EXT_FLAT;
    x->size_sectors = size / VK_SECTOR; /* whole sectors; a partial tail is read by the disk layer */
    x->writable = l->writable;
    if (!(x->name = vk_strdup(vk_path_basename(l->path), e)) || !(x->path = vk_strdup(l->path, e)))
        return VMDKIT_ENOMEM;
    x->fd = dup(fd);
    if (x->fd < 0)
        return vk_fail_errno(e, errno, "%s: dup", l->path);
    /* pinned: the raw file carries the link's lock */
    if ((r = vk_extent_adopt(x, true, reopen_extent, l, e)))
        return r;
    l->capacity_sectors = vk_div_round_up(size, VK_SECTOR);
    /* the flat driver checks size against the file: give it the whole sectors */
    r = vk_flat_open(x, e);
    vk_extent_release(x);
    if (r)
        return r;
    x->size_sectors = l->capacity_sectors;
    return 0;
}

/* Report why the disk PATH named by the user did not open (errno). */
static int top_open_error(const char *path, vk_err *e)
{
    if (errno == ENOENT)
        return vk_fail(e, VMDKIT_ENOENT, "%s: not found", path);
    if (errno == EISDIR)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: is a directory, not a disk", path);
    if (errno == ELOOP || errno == EXDEV)
        return vk_fail(e, VMDKIT_EPATH, "%s: %s the confinement folder", path,
                       errno == ELOOP ? "a symbolic link inside" : "outside");
    return vk_fail_errno(e, errno, "%s: open", path);
}

/*
 * Open the disk PATH the user named: its folder, then the file in it (a
 * symbolic link the user named is followed).  Under ROOT both are opened
 * beneath it, without symbolic links.  Returns 0, 1 with errno, or an
 * error code.
 */
static int open_top(const char *path, bool writable, const vk_root *root, int *dir_fd, int *fd,
                    vk_err *e)
{
    int mode = writable ? O_RDWR : O_RDONLY;
    char *dir = vk_path_dirname(path, e);
    if (!dir)
        return VMDKIT_ENOMEM;
    const char *leaf = vk_path_basename(path);
    char *rel = NULL;
    if (root) {
        char *abs = vk_path_absolute(dir, e);
        if (!abs) {
            free(dir);
            return VMDKIT_ENOMEM;
        }
        if (strcmp(abs, root->path) == 0)
            rel = vk_strdup("", e);
        else if (vk_path_inside(abs, root->path))
            rel = vk_strdup(abs + strlen(root->path) + (strcmp(root->path, "/") != 0), e);
        else
            errno = EXDEV;
        free(abs);
        *dir_fd = !rel   ? -1
                  : *rel ? vk_open_beneath(root->fd, rel, O_PATH | O_DIRECTORY)
                         : fcntl(root->fd, F_DUPFD_CLOEXEC, 0);
    } else {
        *dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    int err = errno;
    free(rel);
    free(dir);
    errno = err;
    if (*dir_fd < 0)
        return 1;
    bool plain = !*leaf || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0;
    if (root)
        *fd = plain ? (errno = EXDEV, -1) : vk_open_beneath(*dir_fd, leaf, mode);
    else
        *fd = plain ? open_nonblocking(path, mode) : open_nonblocking_at(*dir_fd, leaf, mode);
    return *fd < 0;
}

/* PATH is FILE.ova/NAME: open FILE.ova (read-only) as open_top does and
 * give *MEMBER the NAME.  Returns 0, 1 with errno (ENOTDIR when FILE is no
 * tar archive: PATH is then what it seemed, a missing folder), or an error
 * code. */
static int open_top_member(const char *path, const vk_root *root, int *dir_fd, int *fd, char **member,
                           vk_err *e)
{
    char *ova = vk_path_dirname(path, e);
    if (!ova)
        return VMDKIT_ENOMEM;
    int r = open_top(ova, false, root, dir_fd, fd, e);
    free(ova);
    if (!r && !vk_ova_probe(*fd))
        r = (errno = ENOTDIR, 1);
    if (!r && !(*member = vk_strdup(vk_path_basename(path), e)))
        r = VMDKIT_ENOMEM;
    if (r && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    if (r && *dir_fd >= 0) {
        close(*dir_fd);
        *dir_fd = -1;
    }
    if (r)
        errno = ENOTDIR;
    return r;
}

/* The disk inside the OVA open at FD: MEMBER, or its first disk when NULL.
 * It is read in place and only read; its embedded descriptor is the
 * link's. */
static int open_ova_member(vk_link *l, int fd, const char *member, char **text, size_t *len, vk_err *e)
{
    if (l->writable)
        return vk_fail(e, VMDKIT_ERDONLY,
                       "%s: a disk inside an OVA is read-only; import it (vmdkit ova import)", l->path);
    char *ova = member ? vk_path_dirname(l->path, e) : vk_strdup(l->path, e);
    char *name = NULL;
    int r = ova ? vk_ova_find_disk(fd, ova, member, &name, &l->member_base, &l->member_bytes, e)
                : VMDKIT_ENOMEM;
    if (!r && !(l->member_path = vk_path_join(ova, name, e)))
        r = VMDKIT_ENOMEM;
    uint64_t off, size;
    const char *what = l->member_path;
    if (!r)
        r = vk_sparse_read_embedded_descriptor_at(fd, l->member_base, l->member_bytes, what, text, len,
                                                  &off, &size, e);
    if (!r && (!*text || !vk_descriptor_sniff(*text, *len)))
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: embedded descriptor: missing or not a descriptor", what);
    if (!r) {
        l->embedded = true;
        l->embedded_off_sectors = off;
        l->embedded_size_sectors = size;
        r = vk_descriptor_parse(*text, *len, what, &l->desc, e);
    }
    if (!r && (l->desc.n_extents != 1 || l->desc.extents[0].type != VK_EXT_SPARSE))
        r = vk_fail(e, VMDKIT_EUNSUPPORTED,
                    "%s: descriptor: not one sparse extent, as a disk in an OVA is", what);
    if (!r && l->desc.parent_hint)
        r = vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: parentFileNameHint: a disk in an OVA has no parent",
                    what);
    free(ova);
    free(name);
    return r;
}

/*
 * Opening a link takes these steps, one function each:
 *   1. link_new: the link, owning the caller's descriptors;
 *   2. link_open_file: the file PATH names, when the caller has not opened it;
 *   3. link_stat: that file, which a folder is not;
 *   4. read_descriptor: the descriptor, as the file's first bytes say
 *      (an OVA member, an embedded one, one made up for a bare sparse or
 *      COWD/seSparse file, a text file) or a raw image;
 *   5. check_descriptor: what the descriptor says allows this open;
 *   6. open_link_extents: its extents, with their drivers.
 */

/* Step 1: a new link for PATH that owns FD and DIR_FD (closed on failure). */
static vk_link *link_new(const char *path, int dir_fd, int fd, bool writable, unsigned flags,
                         const vk_root *root, vk_err *e)
{
    vk_link *l = vk_calloc(1, sizeof *l, e);
    if (!l) {
        if (fd >= 0)
            close(fd);
        if (dir_fd >= 0)
            close(dir_fd);
        return NULL;
    }
    l->desc_fd = fd;
    l->dir_fd = dir_fd;
    l->writable = writable;
    l->open_flags = flags;
    l->root = root;
    if (!(l->path = vk_strdup(path, e))) {
        vk_link_close(l, NULL);
        return NULL;
    }
    return l;
}

/* Step 2: open the file PATH names (or FILE.ova/MEMBER, *MEMBER set) unless
 * the caller gave it. */
static int link_open_file(vk_link *l, char **member, vk_err *e)
{
    if (l->desc_fd >= 0)
        return 0;
    int fd = -1;
    int r = open_top(l->path, l->writable, l->root, &l->dir_fd, &fd, e);
    if (r > 0 && errno == ENOTDIR)
        r = open_top_member(l->path, l->root, &l->dir_fd, &fd, member, e);
    l->desc_fd = fd;
    if (r > 0)
        r = top_open_error(l->path, e);
    return r;
}

/* Step 3: the file opened, which must not be a folder. */
static int link_stat(const vk_link *l, struct stat *st, vk_err *e)
{
    if (fstat(l->desc_fd, st) != 0)
        return vk_fail_errno(e, errno, "%s: stat", l->path);
    if (S_ISDIR(st->st_mode))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: is a directory, not a disk", l->path);
    return 0;
}

/* Step 4 for a KDMV file: its embedded descriptor, or one made up for a
 * bare piece without one. */
static int read_embedded(vk_link *l, char **text, size_t *len, vk_err *e)
{
    uint64_t off, size;
    int r = vk_sparse_read_embedded_descriptor(l->desc_fd, l->path, text, len, &off, &size, e);
    if (r)
        return r;
    if (!*text)
        return synth_descriptor(l, KIND_KDMV, l->desc_fd, e);
    l->embedded = true;
    l->embedded_off_sectors = off;
    l->embedded_size_sectors = size;
    if (!vk_descriptor_sniff(*text, *len))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: embedded descriptor: empty or not a descriptor", l->path);
    return vk_descriptor_parse(*text, *len, l->path, &l->desc, e);
}

/* Step 4 for any other file: a text descriptor, which is locked like an
 * extent; or, under VMDKIT_OPEN_PROBE, a raw image (*DONE). */
static int read_text_file(vk_link *l, const struct stat *st, unsigned flags, char **text, size_t *len,
                          bool *done, vk_err *e)
{
    int fd = l->desc_fd;
    bool probe_raw = (flags & VMDKIT_OPEN_PROBE) && !vk_path_has_suffix(l->path, ".vmdk");
    if (st->st_size > (off_t)VK_DESC_MAX_BYTES || !S_ISREG(st->st_mode)) {
        /* too large (or a device) for a descriptor: a raw image */
        if (probe_raw) {
            *done = true;
            return open_probed_raw(l, fd, flags, e);
        }
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: not a VMDK: no sparse magic and too large for a descriptor", l->path);
    }
    *len = (size_t)st->st_size;
    if (!(*text = vk_malloc(*len + 1, e)))
        return VMDKIT_ENOMEM;
    int r = vk_pread_full(fd, *text, *len, 0, l->path, e);
    if (r)
        return r;
    (*text)[*len] = 0;
    if (!vk_descriptor_sniff(*text, *len)) {
        if (probe_raw) {
            *done = true;
            return open_probed_raw(l, fd, flags, e);
        }
        return vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: not a VMDK: neither a sparse extent (KDMV/COWD magic) nor a descriptor (version=1)",
            l->path);
    }
    r = vk_descriptor_parse(*text, *len, l->path, &l->desc, e);
    /* the descriptor itself is locked like an extent */
    if (!r && !(flags & VMDKIT_OPEN_NO_LOCK)) {
        r = vk_lock_fd(fd, l->writable, l->path, e);
        l->desc_locked = !r;
    }
    return r;
}

/* Step 4: the link's descriptor, as the file's first bytes say.  *SELF_FD
 * receives the file when its extent 0 is the file itself; *DONE is set
 * when the link is complete already (a raw image). */
static int read_descriptor(vk_link *l, const char *member, const struct stat *st, unsigned flags,
                           int *self_fd, char **text, size_t *len, bool *done, vk_err *e)
{
    int fd = l->desc_fd;
    int r;
    if (flags & VMDKIT_OPEN_RAW) {
        *done = true;
        if (!(flags & VMDKIT_OPEN_NO_LOCK) && (r = vk_lock_fd(fd, l->writable, l->path, e)))
            return r;
        return open_raw(l, fd, e);
    }
    enum file_kind kind;
    if ((r = probe_fd(fd, l->path, &kind, e)))
        return r;
    if (member || (kind == KIND_TEXT && vk_ova_probe(fd))) {
        *self_fd = fd;
        return open_ova_member(l, fd, member, text, len, e);
    }
    if (kind == KIND_KDMV) {
        *self_fd = fd;
        return read_embedded(l, text, len, e);
    }
    if (kind == KIND_COWD || kind == KIND_SESPARSE) {
        *self_fd = fd;
        return synth_descriptor(l, kind, fd, e);
    }
    return read_text_file(l, st, flags, text, len, done, e);
}

/* Step 5: what the descriptor says must allow this open. */
static int check_descriptor(const vk_link *l, vk_err *e)
{
    const char *path = l->path;
    if (l->desc.create_type && !vk_create_type_known(l->desc.create_type))
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: createType: \"%s\" is not a known disk type", path,
                       l->desc.create_type);
    if (l->desc.n_extents == 0)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: descriptor: no extent lines", path);
    if (l->writable)
        for (size_t i = 0; i < l->desc.n_header_extra; i++)
            if (strcasecmp(l->desc.header_extra[i].key, "changeTrackPath") == 0)
                return vk_fail(
                    e, VMDKIT_EUNSUPPORTED,
                    "%s: changeTrackPath: the disk uses changed block tracking, which writes would leave stale",
                    path);
    if (l->desc.parent_cid != VK_CID_NONE && !l->desc.parent_hint)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: parentFileNameHint: missing although parentCID is %08x",
                       path, l->desc.parent_cid);
    /* ffffffff means "no parent": with a hint beside it the chain would take
     * any file as its base, the CID check being the one thing that ties a
     * child to its parent (a bare extent's synthesised CID is ffffffff too) */
    if (l->desc.parent_cid == VK_CID_NONE && l->desc.parent_hint)
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: parentCID: ffffffff (no parent) although parentFileNameHint names \"%s\"",
                       path, l->desc.parent_hint);
    return 0;
}

/* Step 6: the extents.  A bare extent is refused for writing (its
 * descriptor would be written as a file at its path, in place of its
 * data), once its own errors are known: its extent opens read-only
 * meanwhile. */
static int open_link_extents(vk_link *l, unsigned flags, int self_fd, vk_err *e)
{
    bool writable = l->writable;
    if (l->bare)
        l->writable = false;
    int r = open_extents(l, flags, self_fd, e);
    if (!r && writable && l->bare)
        r = vk_fail(e, VMDKIT_ERDONLY, "%s: " VK_PIECE_OF_DISK ": open its descriptor to write to it",
                    l->path);
    return r;
}

int vk_link_open(const char *path, int dir_fd, int fd, bool writable, unsigned flags,
                 const vk_root *root, vk_link **out, vk_err *e)
{
    vk_link *l = link_new(path, dir_fd, fd, writable, flags, root, e);
    if (!l)
        return VMDKIT_ENOMEM;
    char *member = NULL; /* PATH is FILE.ova/MEMBER */
    char *text = NULL;
    size_t len = 0;
    int self_fd = -1;
    bool done = false;
    struct stat st;
    int r = link_open_file(l, &member, e);
    if (!r)
        r = link_stat(l, &st, e);
    if (!r)
        r = read_descriptor(l, member, &st, flags, &self_fd, &text, &len, &done, e);
    if (!r && !done)
        r = check_descriptor(l, e);
    if (!r && !done)
        r = open_link_extents(l, flags, self_fd, e);
    if (!r && !done && text) { /* kept: a rewrite keeps its layout */
        l->desc_text = text;
        l->desc_len = strnlen(text, len);
        text = NULL;
    }
    free(text);
    free(member);
    if (r) {
        vk_link_close(l, NULL);
        return r;
    }
    *out = l;
    return 0;
}

void vk_link_close(vk_link *l, vk_err *e)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_ext; i++) {
        vk_extent *x = &l->ext[i];
        if (x->ops && x->ops->close) {
            /* a writable extent's close flushes and writes its header: its
             * file is opened again if the pool closed it; a read-only
             * driver's close only frees memory */
            int r = x->writable ? vk_extent_hold(x, e) : 0;
            if (!r) {
                r = x->ops->close(x, e);
                if (x->writable)
                    r = vk_extent_flushed(x, r, e);
                if (x->writable)
                    vk_extent_release(x);
            } else {
                /* the file cannot be had again (gone, or replaced by
                 * another): nothing more may be written to it, but the
                 * driver's memory is still freed, as a read-only close */
                x->writable = false;
                x->ops->close(x, NULL);
            }
            if (r)
                e = NULL; /* keep the first error */
        }
        vk_extent_forget(x);
        free(x->name);
        free(x->path);
    }
    free(l->ext);
    if (l->desc_fd >= 0)
        close(l->desc_fd);
    if (l->dir_fd >= 0)
        close(l->dir_fd);
    vk_descriptor_free(&l->desc);
    free(l->desc_text);
    free(l->path);
    free(l->parent_path);
    free(l->member_path);
    free(l);
}

vk_extent *vk_link_extent_at(vk_link *l, uint64_t sector, uint64_t n, uint64_t *rel, uint64_t *k)
{
    size_t lo = 0, hi = l->n_ext; /* binary search over start sectors */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (l->ext[mid].start_sector <= sector)
            lo = mid;
        else
            hi = mid;
    }
    vk_extent *x = &l->ext[lo];
    *rel = sector - x->start_sector;
    *k = vk_min(n, x->size_sectors - *rel);
    return x;
}

static int no_access(vk_link *l, vk_extent *x, vk_err *e)
{
    return vk_fail(e, VMDKIT_ERDONLY, "%s: extent \"%s\": access is NOACCESS", l->path,
                   x->name ? x->name : "");
}

/* The extent of L holding SECTOR, in *X, held for I/O (the caller releases
 * it), with *REL and *K as vk_link_extent_at gives them; a NOACCESS extent
 * is refused. */
static int hold_extent_at(vk_link *l, uint64_t sector, uint64_t n, vk_extent **x, uint64_t *rel,
                          uint64_t *k, vk_err *e)
{
    *x = vk_link_extent_at(l, sector, n, rel, k);
    return (*x)->ops ? vk_extent_hold(*x, e) : no_access(l, *x, e);
}

int vk_link_status(vk_link *l, uint64_t sector, uint64_t n, int *alloc, uint64_t *run, vk_err *e)
{
    vk_extent *x;
    uint64_t rel, k;
    int r = hold_extent_at(l, sector, n, &x, &rel, &k, e);
    if (r)
        return r;
    r = x->ops->status(x, rel, k, alloc, run, e);
    vk_extent_release(x);
    return r;
}

int vk_link_read(vk_link *l, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    uint8_t *p = buf;
    while (n > 0) {
        vk_extent *x;
        uint64_t rel, k;
        int r = hold_extent_at(l, sector, n, &x, &rel, &k, e);
        if (r)
            return r;
        r = x->ops->read(x, rel, k, p, e);
        vk_extent_release(x);
        if (r)
            return r;
        p += k * VK_SECTOR;
        sector += k;
        n -= k;
    }
    return 0;
}

int vk_chain_read(vk_link *l, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    /* the base link reads unallocated parts as zeros itself: asking for
     * status first (a walk of grain tables, or lseek calls on a raw file)
     * would only repeat that work */
    if (!l->parent)
        return vk_link_read(l, sector, n, buf, e);
    uint8_t *p = buf;
    while (n > 0) {
        int alloc;
        uint64_t run;
        int r = vk_link_status(l, sector, n, &alloc, &run, e);
        if (r)
            return r;
        if (alloc == VMDKIT_ALLOC_DATA)
            r = vk_link_read(l, sector, run, p, e);
        else if (alloc == VMDKIT_ALLOC_UNALLOC && l->parent)
            r = vk_chain_read(l->parent, sector, run, p, e);
        else
            memset(p, 0, run * VK_SECTOR);
        if (r)
            return r;
        p += run * VK_SECTOR;
        sector += run;
        n -= run;
    }
    return 0;
}

/* Prefetch N sectors of link L alone (no fall-through). */
static int link_prefetch(vk_link *l, uint64_t sector, uint64_t n, vk_err *e)
{
    while (n > 0) {
        uint64_t rel, k;
        vk_extent *x = vk_link_extent_at(l, sector, n, &rel, &k);
        if (x->ops && x->ops->prefetch) {
            /* a hint: a file the pool has closed is not opened for it */
            if (vk_extent_hold_if_open(x) >= 0) {
                int r = x->ops->prefetch(x, rel, k, e);
                vk_extent_release(x);
                if (r)
                    return r;
            }
        }
        sector += k;
        n -= k;
    }
    return 0;
}

int vk_chain_prefetch(vk_link *l, uint64_t sector, uint64_t n, vk_err *e)
{
    if (!l->parent)
        return link_prefetch(l, sector, n, e);
    while (n > 0) {
        int alloc;
        uint64_t run;
        int r = vk_link_status(l, sector, n, &alloc, &run, e);
        if (!r && alloc == VMDKIT_ALLOC_DATA)
            r = link_prefetch(l, sector, run, e);
        else if (!r && alloc == VMDKIT_ALLOC_UNALLOC)
            r = vk_chain_prefetch(l->parent, sector, run, e);
        if (r)
            return r;
        sector += run;
        n -= run;
    }
    return 0;
}

/* Before a separate descriptor file is replaced: the file at PATH must be
 * one (a small text that reads as a descriptor), never a file that holds
 * grain data, however the link came to name it. */
static int check_replaceable(const char *path, vk_err *e)
{
    int fd = open_nonblocking(path, O_RDONLY);
    if (fd < 0)
        return vk_fail_errno(e, errno, "%s: open before rewriting the descriptor", path);
    struct stat st;
    enum file_kind kind = KIND_TEXT;
    char *text = NULL;
    int r = fstat(fd, &st) != 0 ? vk_fail_errno(e, errno, "%s: stat", path) : 0;
    if (!r && (!S_ISREG(st.st_mode) || st.st_size > (off_t)VK_DESC_MAX_BYTES))
        r = vk_fail(e, VMDKIT_EFORMAT,
                    "%s: not a descriptor file (too large, or not a regular file): "
                    "not replaced by a descriptor",
                    path);
    if (!r)
        r = probe_fd(fd, path, &kind, e);
    if (!r && kind != KIND_TEXT)
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: " VK_PIECE_OF_DISK ": not replaced by a descriptor", path);
    size_t len = r ? 0 : (size_t)st.st_size;
    if (!r && !(text = vk_malloc(len + 1, e)))
        r = VMDKIT_ENOMEM;
    if (!r)
        r = vk_pread_full(fd, text, len, 0, path, e);
    if (!r && !vk_descriptor_sniff(text, len))
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: not a descriptor file: not replaced by a descriptor", path);
    free(text);
    close(fd);
    return r;
}

int vk_link_write_descriptor(vk_link *l, vk_err *e)
{
    char *text;
    size_t len;
    int r = vk_descriptor_format_like(&l->desc, l->desc_text, l->desc_len, &text, &len, e);
    if (r)
        return r;
    if (l->embedded) {
        size_t area = (size_t)l->embedded_size_sectors * VK_SECTOR;
        if (len > area) {
            free(text);
            return vk_fail(e, VMDKIT_ELIMIT,
                           "%s: embedded descriptor: %zu bytes do not fit in its %zu-byte area", l->path,
                           len, area);
        }
        uint8_t *buf = vk_calloc(1, area, e);
        if (!buf) {
            free(text);
            return VMDKIT_ENOMEM;
        }
        memcpy(buf, text, len);
        /* extent 0 is this very file, pinned: its fd is always open */
        r = vk_pwrite_full(l->ext[0].fd, buf, area, l->embedded_off_sectors * VK_SECTOR, l->path, e);
        if (!r)
            r = vk_fdatasync(l->ext[0].fd, l->path, e);
        free(buf);
    } else {
        r = check_replaceable(l->path, e);
        if (!r)
            r = vk_write_file_atomic(l->path, text, len, e);
        /* the rename made a new file: move the descriptor's lock onto it
         * (the extents stay locked throughout, so no other writer can
         * slip in between) */
        if (!r && l->desc_fd >= 0) {
            int fd = open(l->path, (l->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
            if (fd < 0) {
                r = vk_fail_errno(e, errno, "%s: reopen after rewrite", l->path);
            } else if (l->desc_locked && (r = vk_lock_fd(fd, l->writable, l->path, e))) {
                close(fd);
            } else {
                close(l->desc_fd);
                l->desc_fd = fd;
            }
        }
    }
    if (!r) {
        free(l->desc_text);
        l->desc_text = text;
        l->desc_len = len;
    } else {
        free(text);
    }
    return r;
}
