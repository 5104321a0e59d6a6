/* disk.c - the public disk handle: a chain of links opened from the top,
 * byte-granular reads and writes, allocation status.
 *
 * Threads: the _r reads, block status and prefetch record errors in the
 * caller's vmdkit_error, never in the handle, and reach the extents only
 * through their status/read/prefetch ops, which are safe beside each
 * other (see extent.h); so several threads may use them at once on a disk
 * that nothing writes meanwhile. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "link.h"
#include "open_beneath.h"
#include "path.h"
#include "sparse_header.h"

/* Open the folder and file of the relative name REL beneath BASE (both
 * without following symbolic links).  Returns 0, or 1 with errno. */
static int open_beneath_split(int base, const char *rel, int *dir_fd, int *fd)
{
    const char *slash = strrchr(rel, '/');
    if (slash) {
        char dir[PATH_MAX];
        size_t n = (size_t)(slash - rel);
        if (n >= sizeof dir) {
            errno = ENAMETOOLONG;
            return 1;
        }
        memcpy(dir, rel, n);
        dir[n] = 0;
        *dir_fd = vk_open_beneath(base, dir, O_PATH | O_DIRECTORY);
    } else {
        *dir_fd = fcntl(base, F_DUPFD_CLOEXEC, 0);
    }
    if (*dir_fd < 0)
        return 1;
    *fd = vk_open_beneath(*dir_fd, slash ? slash + 1 : rel, O_RDONLY);
    return *fd < 0;
}

/*
 * Open the parent PPATH that CHILD's hint names, by the parent rule: under
 * a root, the parent lies beneath the root; otherwise a relative hint is
 * opened beneath the folder it climbs to from the child's folder ("../B/
 * B.vmdk": beneath the child's folder's parent) and an absolute one only
 * with VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS.  No symbolic link is followed
 * but in an absolute hint the user allowed.  Returns 0, 1 with errno, or
 * an error code.
 */
static int open_parent_files(vmdkit_disk *d, vk_link *child, const char *ppath, unsigned flags,
                             int *dir_fd, int *fd, vk_err *e)
{
    const char *hint = child->desc.parent_hint;
    *dir_fd = *fd = -1;
    if (d->root.fd >= 0) {
        char *abs = vk_path_absolute(ppath, e);
        if (!abs)
            return VMDKIT_ENOMEM;
        int r;
        if (!vk_path_inside(abs, d->root.path))
            r = vk_fail(e, VMDKIT_EPATH,
                        "%s: parentFileNameHint: \"%s\": %s is outside the confinement folder %s",
                        child->path, hint, abs, d->root.path);
        else
            r = open_beneath_split(
                d->root.fd, abs + strlen(d->root.path) + (strcmp(d->root.path, "/") != 0), dir_fd, fd);
        int err = errno;
        free(abs);
        errno = err;
        return r;
    }
    if (hint[0] == '/') {
        if (!(flags & VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS))
            return vk_fail(
                e, VMDKIT_EPATH,
                "%s: parentFileNameHint: \"%s\" is an absolute path (use --allow-absolute-parents to permit)",
                child->path, hint);
        char *dir = vk_path_dirname(ppath, e);
        if (!dir)
            return VMDKIT_ENOMEM;
        *dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (*dir_fd < 0)
            return 1;
        *fd = openat(*dir_fd, vk_path_basename(ppath), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        return *fd < 0;
    }
    unsigned ups;
    char *posix = vk_hint_posix(hint, e);
    char *rel = posix ? vk_path_normalise_relative(posix, &ups, e) : NULL;
    free(posix);
    if (!rel)
        return VMDKIT_ENOMEM;
    int r;
    if (!*rel) {
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: parentFileNameHint: \"%s\" names a folder", child->path,
                    hint);
    } else {
        int base = vk_open_dir_up(child->dir_fd, ups);
        r = base < 0 ? 1 : open_beneath_split(base, rel, dir_fd, fd);
        int err = errno;
        if (base >= 0)
            close(base);
        errno = err;
    }
    int err = errno;
    free(rel);
    errno = err;
    return r;
}

/* Report why the parent PPATH of CHILD did not open (errno). */
static int parent_open_error(vk_link *child, const char *ppath, vk_err *e)
{
    const char *hint = child->desc.parent_hint;
    if (errno == ENOENT)
        return vk_fail_parent_not_found(e, child->path, hint, ppath);
    if (errno == ELOOP)
        return vk_fail(e, VMDKIT_EPATH, "%s: parentFileNameHint: \"%s\": a symbolic link, not followed",
                       child->path, hint);
    if (errno == EXDEV)
        return vk_fail(e, VMDKIT_EPATH, "%s: parentFileNameHint: \"%s\": leads out of its folder",
                       child->path, hint);
    if (errno == ENOTDIR)
        return vk_fail(e, VMDKIT_ENOENT, "%s: parentFileNameHint: \"%s\": a component is not a folder",
                       child->path, hint);
    return vk_fail_errno(e, errno, "%s: parentFileNameHint: \"%s\": open", child->path, hint);
}

/* The extent of a link of the chain that the file at PPATH is, or NULL: a
 * parent hint naming a piece of a disk of the chain makes a loop too. */
static const vk_extent *extent_in_chain(const vk_link *top, const struct stat *p, const vk_link **owner)
{
    for (const vk_link *l = top; l; l = l->parent)
        for (size_t i = 0; i < l->n_ext; i++)
            if (vk_extent_is_file(&l->ext[i], p->st_dev, p->st_ino)) {
                *owner = l;
                return &l->ext[i];
            }
    return NULL;
}

static int open_parents(vmdkit_disk *d, unsigned flags, vk_err *e)
{
    vk_link *child = d->top;
    while (child->desc.parent_hint && !(flags & VMDKIT_OPEN_NO_PARENT)) {
        if (d->n_links >= VK_MAX_CHAIN_LINKS)
            return vk_fail(e, VMDKIT_ELIMIT, "%s: parent chain is deeper than %d links", d->top->path,
                           VK_MAX_CHAIN_LINKS);
        char *ppath = vk_path_resolve_parent(child->path, child->desc.parent_hint, e);
        if (!ppath)
            return e->code;
        child->parent_path = ppath;
        int dir_fd, fd;
        int r = open_parent_files(d, child, ppath, flags, &dir_fd, &fd, e);
        if (r > 0)
            r = parent_open_error(child, ppath, e);
        struct stat st;
        if (!r && fstat(fd, &st) != 0)
            r = vk_fail_errno(e, errno, "%s: stat", ppath);
        /* a parent is never a device (or FIFO...): only a disk the user names is */
        if (!r && !S_ISREG(st.st_mode))
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: parentFileNameHint: \"%s\": not a regular file",
                        child->path, child->desc.parent_hint);
        for (vk_link *l = d->top; !r && l; l = l->parent) {
            struct stat ls; /* a loop, by device and inode of what was opened */
            if (fstat(l->desc_fd, &ls) == 0 && ls.st_dev == st.st_dev && ls.st_ino == st.st_ino)
                r = vk_fail(e, VMDKIT_ECHAIN,
                            "%s: parentFileNameHint: \"%s\" leads back to %s: the chain is a loop",
                            child->path, child->desc.parent_hint, l->path);
        }
        const vk_link *owner;
        const vk_extent *x = r ? NULL : extent_in_chain(d->top, &st, &owner);
        if (x)
            r = vk_fail(e, VMDKIT_ECHAIN,
                        "%s: parentFileNameHint: \"%s\" is extent \"%s\" of %s: the chain is a loop",
                        child->path, child->desc.parent_hint, x->name ? x->name : "", owner->path);
        if (r) {
            if (fd >= 0)
                close(fd);
            if (dir_fd >= 0)
                close(dir_fd);
            return r;
        }
        vk_link *parent;
        /* parents are always read-only: writing one would break every child */
        r = vk_link_open(ppath, dir_fd, fd, false, flags & ~(unsigned)VMDKIT_OPEN_RDWR,
                         d->root.fd >= 0 ? &d->root : NULL, &parent, e);
        if (r) {
            if (r == VMDKIT_ENOENT && !strstr(e->msg, "extent"))
                vk_fail_parent_not_found(e, child->path, child->desc.parent_hint, ppath);
            else
                vk_err_prefix(e, "%s: parent", child->path);
            return r;
        }
        child->parent = parent;
        d->n_links++;
        if (parent->raw)
            return vk_fail(e, VMDKIT_EFORMAT, "%s: parent %s is not a VMDK", child->path, ppath);
        /* it has no CID to match, and it belongs to a disk whose descriptor
         * knows nothing of this child */
        if (parent->bare)
            return vk_fail(e, VMDKIT_ECHAIN,
                           "%s: parentFileNameHint: \"%s\" " VK_PIECE_OF_DISK
                           ", never a parent: name the disk's descriptor",
                           child->path, child->desc.parent_hint);
        /* the parent's CID is not printed: an error echoed back to whoever
         * uploaded the child would tell them the CID to write (L4) */
        if (child->desc.parent_cid != parent->desc.cid && !(flags & VMDKIT_OPEN_IGNORE_CID))
            return vk_fail(
                e, VMDKIT_ECHAIN,
                "%s: parentCID %08x does not match the CID of parent %s: the parent was modified after the child was created",
                child->path, child->desc.parent_cid, parent->path);
        /* a child smaller than its parent reads only the parent's first
         * part: what an interrupted resize --chain leaves (the parents are
         * grown first); a larger one would read past its parent's end */
        if (child->capacity_sectors > parent->capacity_sectors)
            return vk_fail(e, VMDKIT_ECHAIN,
                           "%s: capacity %llu sectors differs from parent %s (%llu sectors)",
                           child->path, (unsigned long long)child->capacity_sectors, parent->path,
                           (unsigned long long)parent->capacity_sectors);
        child = parent;
    }
    return 0;
}

static void close_chain(vk_link *l, vk_err *e)
{
    while (l) {
        vk_link *p = l->parent;
        vk_link_close(l, e);
        l = p;
    }
}

static void disk_free(vmdkit_disk *d, vk_err *e)
{
    close_chain(d->top, e);
    if (d->root.fd >= 0)
        close(d->root.fd);
    free(d->root.path);
    free(d);
}

int vmdkit_open_beneath(const char *path, const char *root, unsigned flags, vmdkit_disk **out,
                        vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    bool rw = (flags & VMDKIT_OPEN_RDWR) != 0;
    if (rw && (flags & VMDKIT_OPEN_IGNORE_CID))
        return vk_fail(e, VMDKIT_EINVAL, "%s: ignoring a CID mismatch is only allowed read-only", path);
    vmdkit_disk *d = vk_calloc(1, sizeof *d, e);
    if (!d)
        return VMDKIT_ENOMEM;
    d->flags = flags;
    d->root.fd = -1;
    int r = 0;
    if (root) {
        /* the root is the caller's own setting: its real path, opened once */
        d->root.fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (d->root.fd < 0 || !(d->root.path = realpath(root, NULL)))
            r = vk_fail_errno(e, errno, "%s: confinement folder", root);
    }
    if (!r)
        r = vk_link_open(path, -1, -1, rw, flags, root ? &d->root : NULL, &d->top, e);
    if (!r) {
        d->n_links = 1;
        d->top->cid_updated = (flags & VK_OPEN_KEEP_CID) != 0;
        r = open_parents(d, flags, e);
    }
    if (r) {
        disk_free(d, NULL);
        return r;
    }
    *out = d;
    return 0;
}

int vmdkit_open(const char *path, unsigned flags, vmdkit_disk **out, vmdkit_error *err)
{
    return vmdkit_open_beneath(path, NULL, flags, out, err);
}

int vmdkit_flush(vmdkit_disk *d)
{
    vk_link *l = d->top;
    for (size_t i = 0; i < l->n_ext; i++) {
        vk_extent *x = &l->ext[i];
        /* an extent not written since its last flush has nothing to make
         * durable (its file may be closed by the pool: it is not opened
         * for nothing); a written one is held, opened again if needed, and
         * its driver's flush runs in its order (data, tables, directory) */
        if (x->writable && x->ops && x->ops->flush && (x->unsynced || !x->file)) {
            int r = vk_extent_hold(x, &d->err);
            if (!r) {
                r = vk_extent_flushed(x, x->ops->flush(x, &d->err), &d->err);
                vk_extent_release(x);
            }
            if (r)
                return r;
        }
    }
    return 0;
}

int vmdkit_close(vmdkit_disk *d, vmdkit_error *err)
{
    if (!d)
        return 0;
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    disk_free(d, e);
    return e->code;
}

uint64_t vmdkit_size(const vmdkit_disk *d)
{
    if (d->top->raw)
        return d->top->raw_bytes; /* a raw file keeps its exact byte size */
    return d->top->capacity_sectors * VK_SECTOR;
}

const vmdkit_error *vmdkit_last_error(const vmdkit_disk *d) { return &d->err; }

int vmdkit_chain_length(const vmdkit_disk *d) { return d->n_links; }

static int check_range(vmdkit_disk *d, size_t len, uint64_t off, vk_err *e)
{
    uint64_t end;
    if (!vk_add_ok(off, len, &end) || end > vmdkit_size(d))
        return vk_fail(e, VMDKIT_EINVAL, "%s: range %llu+%zu lies outside the disk (%llu bytes)",
                       d->top->path, (unsigned long long)off, len, (unsigned long long)vmdkit_size(d));
    return 0;
}

/* Sector-granular chain read; the last partial sector of a raw file reads
 * zeros past the file end (the flat driver zero-fills). */
static int read_sectors(vmdkit_disk *d, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    return vk_chain_read(d->top, sector, n, buf, e);
}

int vmdkit_pread(vmdkit_disk *d, void *buf, size_t len, uint64_t off)
{
    return vmdkit_pread_r(d, buf, len, off, &d->err);
}

int vmdkit_pread_r(vmdkit_disk *d, void *buf, size_t len, uint64_t off, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    int r = check_range(d, len, off, e);
    if (r || len == 0)
        return r;
    uint8_t *out = buf;
    uint64_t head = off % VK_SECTOR;
    if (head == 0 && len % VK_SECTOR == 0)
        return read_sectors(d, off / VK_SECTOR, len / VK_SECTOR, buf, e);
    /* unaligned: whole sectors in the middle directly, edges through a bounce sector */
    uint8_t sec[VK_SECTOR];
    while (len > 0) {
        uint64_t s = off / VK_SECTOR, in = off % VK_SECTOR;
        if (in == 0 && len >= VK_SECTOR) {
            uint64_t k = len / VK_SECTOR;
            if ((r = read_sectors(d, s, k, out, e)))
                return r;
            out += k * VK_SECTOR;
            off += k * VK_SECTOR;
            len -= k * VK_SECTOR;
            continue;
        }
        size_t k = (size_t)vk_min(len, VK_SECTOR - in);
        if ((r = read_sectors(d, s, 1, sec, e)))
            return r;
        memcpy(out, sec + in, k);
        out += k;
        off += k;
        len -= k;
    }
    return 0;
}

static int backing_read(void *opaque, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    vk_link *parent = opaque;
    return vk_chain_read(parent, sector, n, buf, e);
}

/* A new CID, once per open, before the first content change reaches any
 * extent: a child made from this link earlier then sees the change even if
 * the writer crashes mid-way. */
static int touch_cid(vmdkit_disk *d)
{
    vk_link *l = d->top;
    if (l->cid_updated || l->raw)
        return 0;
    uint32_t old = l->desc.cid;
    int r = vk_descriptor_set_cid(&l->desc, vk_random_cid(), &d->err);
    if (!r)
        r = vk_link_write_cid(l, old, &d->err);
    if (r) {
        vk_descriptor_set_cid(&l->desc, old, NULL);
        return r;
    }
    l->cid_updated = true;
    return 0;
}

/* Write N sectors of BUF, or with ZERO make them read as zeros in the way
 * the VK_ZERO_* flags of HOW allow (with VK_ZERO_CHECK nothing changes). */
static int write_sectors(vmdkit_disk *d, uint64_t sector, uint64_t n, const void *buf, bool zero,
                         unsigned how)
{
    vk_link *l = d->top;
    if (!l->writable)
        return vk_fail(&d->err, VMDKIT_ERDONLY, "%s: opened read-only", l->path);
    int r = (how & VK_ZERO_CHECK) ? 0 : touch_cid(d);
    if (r)
        return r;
    if (l->parent)
        how |= VK_ZERO_PARENT;
    vk_backing bk = {.read = backing_read, .opaque = l->parent};
    const uint8_t *p = buf;
    while (n > 0) {
        uint64_t rel, k;
        vk_extent *x = vk_link_extent_at(l, sector, n, &rel, &k);
        if (zero && x->type == VK_EXT_ZERO) {
            /* reads as zeros already (it never falls through to a parent) */
            sector += k;
            n -= k;
            continue;
        }
        if (!x->writable || !x->ops || !x->ops->write)
            return vk_fail(&d->err, VMDKIT_ERDONLY, "%s: extent \"%s\" (%s, %s) is not writable",
                           l->path, x->name ? x->name : "", vk_access_name(x->access),
                           vk_extent_type_name(x->type));
        if (zero && !x->ops->zero)
            return vk_fail(&d->err, VMDKIT_EUNSUPPORTED, "%s: extent \"%s\" cannot be zeroed", l->path,
                           x->name ? x->name : "");
        if ((r = vk_extent_hold(x, &d->err)))
            return r;
        vk_extent_written(x); /* before: a failed write may have written part */
        if (zero)
            r = x->ops->zero(x, rel, k, how, l->parent ? &bk : NULL, &d->err);
        else
            r = x->ops->write(x, rel, k, p, l->parent ? &bk : NULL, &d->err);
        vk_extent_release(x);
        if (r)
            return r;
        if (p)
            p += k * VK_SECTOR;
        sector += k;
        n -= k;
    }
    return 0;
}

int vmdkit_pwrite(vmdkit_disk *d, const void *buf, size_t len, uint64_t off)
{
    int r = check_range(d, len, off, &d->err);
    if (r || len == 0)
        return r;
    const uint8_t *in = buf;
    uint8_t sec[VK_SECTOR];
    while (len > 0) {
        uint64_t s = off / VK_SECTOR, at = off % VK_SECTOR;
        if (at == 0 && len >= VK_SECTOR) {
            uint64_t k = len / VK_SECTOR;
            if ((r = write_sectors(d, s, k, in, false, 0)))
                return r;
            in += k * VK_SECTOR;
            off += k * VK_SECTOR;
            len -= k * VK_SECTOR;
            continue;
        }
        /* partial sector: read-modify-write */
        size_t k = (size_t)vk_min(len, VK_SECTOR - at);
        if ((r = read_sectors(d, s, 1, sec, &d->err)))
            return r;
        memcpy(sec + at, in, k);
        if ((r = write_sectors(d, s, 1, sec, false, 0)))
            return r;
        in += k;
        off += k;
        len -= k;
    }
    return 0;
}

int vmdkit_pzero(vmdkit_disk *d, size_t len, uint64_t off) { return vmdkit_pzero_ex(d, len, off, 0); }

int vmdkit_pzero_ex(vmdkit_disk *d, size_t len, uint64_t off, unsigned flags)
{
    if (flags & ~(unsigned)(VMDKIT_ZERO_KEEP_ALLOCATED | VMDKIT_ZERO_FAST))
        return vk_fail(&d->err, VMDKIT_EINVAL, "%s: zero: unknown flags 0x%x", d->top->path, flags);
    int r = check_range(d, len, off, &d->err);
    if (r || len == 0)
        return r;
    unsigned how = (flags & VMDKIT_ZERO_KEEP_ALLOCATED ? VK_ZERO_KEEP_SPACE : 0) |
                   (flags & VMDKIT_ZERO_FAST ? VK_ZERO_FAST : 0);
    uint64_t head = (VK_SECTOR - off % VK_SECTOR) % VK_SECTOR;
    if (how & VK_ZERO_FAST) {
        /* partial sectors are written; and no extent may change unless all can */
        if (head || len % VK_SECTOR)
            return vk_fail(&d->err, VMDKIT_EUNSUPPORTED,
                           "%s: zero at %llu+%zu: partial sectors mean writing data", d->top->path,
                           (unsigned long long)off, len);
        if ((r = write_sectors(d, off / VK_SECTOR, len / VK_SECTOR, NULL, true, how | VK_ZERO_CHECK)))
            return r;
    }
    uint8_t zeros[VK_SECTOR] = {0};
    if (head) {
        size_t k = (size_t)vk_min(head, len);
        if ((r = vmdkit_pwrite(d, zeros, k, off)))
            return r;
        off += k;
        len -= k;
    }
    uint64_t whole = len / VK_SECTOR;
    if (whole && (r = write_sectors(d, off / VK_SECTOR, whole, NULL, true, how)))
        return r;
    off += whole * VK_SECTOR;
    len -= (size_t)(whole * VK_SECTOR);
    if (len)
        r = vmdkit_pwrite(d, zeros, len, off);
    return r;
}

int vmdkit_block_status_at(vmdkit_disk *d, uint64_t max_len, uint64_t off, vmdkit_block_status *st)
{
    return vmdkit_block_status_r(d, max_len, off, st, &d->err);
}

int vmdkit_block_status_r(vmdkit_disk *d, uint64_t max_len, uint64_t off, vmdkit_block_status *st,
                          vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    uint64_t size = vmdkit_size(d);
    if (off >= size || max_len == 0)
        return vk_fail(e, VMDKIT_EINVAL, "%s: offset %llu lies outside the disk", d->top->path,
                       (unsigned long long)off);
    max_len = vk_min(max_len, size - off);
    uint64_t sector = off / VK_SECTOR;
    uint64_t end_sector = vk_div_round_up(off + max_len, VK_SECTOR);
    uint64_t n = end_sector - sector;
    int depth = 0;
    for (vk_link *l = d->top; l; l = l->parent, depth++) {
        int alloc;
        uint64_t run;
        int r = vk_link_status(l, sector, n, &alloc, &run, e);
        if (r)
            return r;
        if (alloc != VMDKIT_ALLOC_UNALLOC || !l->parent) {
            st->alloc = alloc;
            st->link = alloc == VMDKIT_ALLOC_UNALLOC ? -1 : depth;
            uint64_t end = vk_min((sector + run) * VK_SECTOR, off + max_len);
            st->length = end - off;
            return 0;
        }
        n = run; /* the parent answers only for the run this link leaves open */
    }
    return vk_fail(e, VMDKIT_EIO, "%s: block status failed", d->top->path);
}

int vmdkit_prefetch(vmdkit_disk *d, uint64_t len, uint64_t off, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    uint64_t end;
    if (!vk_add_ok(off, len, &end) || end > vmdkit_size(d))
        return vk_fail(e, VMDKIT_EINVAL, "%s: range %llu+%llu lies outside the disk (%llu bytes)",
                       d->top->path, (unsigned long long)off, (unsigned long long)len,
                       (unsigned long long)vmdkit_size(d));
    if (len == 0)
        return 0;
    uint64_t sector = off / VK_SECTOR;
    return vk_chain_prefetch(d->top, sector, vk_div_round_up(end, VK_SECTOR) - sector, e);
}
