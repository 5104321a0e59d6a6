/* resize.c - grow a disk in place.
 *
 * Crash safety, in this order, each step durable before the next:
 *   1. new pieces of a split disk, built in a hidden folder beside it
 *      (temp_folder.h) with the new descriptor beside them, then given
 *      their names; the grain tables of a monolithicSparse disk's new
 *      range at the end of its file (sparse_grow.c);
 *   2. a flat last piece made longer (a flat file longer than its extent
 *      line is still the old disk);
 *   3. the commit, one step: the new descriptor file renamed over the old
 *      one, or for monolithicSparse the header and the embedded descriptor
 *      in one write.
 * Until 3 every reader sees the old disk.  The last piece of a
 * twoGbMaxExtentSparse disk keeps its size: its header and the descriptor
 * live in two files, and between their two writes vmdkit check (and qemu,
 * which takes the header's capacity) would see a disk of neither size.  A
 * crash between 1 and 3 leaves the hidden folder, whose descriptor never
 * got its name: the next run (or a convert to the same name) removes it and
 * the piece names it gave out (vk_remove_stale_temps).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../create.h"
#include "../link.h"
#include "../path.h"
#include "../temp_folder.h"
#include "maint.h"

enum disk_kind { KIND_SPARSE, KIND_FLAT, KIND_SPLIT_SPARSE, KIND_SPLIT_FLAT };

/* The kind of the link L, or a refusal naming its createType. */
static int kind_of(const vk_link *l, enum disk_kind *kind, vk_err *e)
{
    const char *t = l->desc.create_type ? l->desc.create_type : "";
    if (l->raw)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: a raw image, not a VMDK: grow it with truncate",
                       l->path);
    if (strcasecmp(t, "streamOptimized") == 0)
        return vk_fail(
            e, VMDKIT_EUNSUPPORTED,
            "%s: createType: streamOptimized disks cannot grow in place; convert to monolithicSparse first",
            l->path);
    if (strcasecmp(t, "monolithicSparse") == 0)
        *kind = KIND_SPARSE;
    else if (strcasecmp(t, "monolithicFlat") == 0 || strcasecmp(t, "vmfs") == 0)
        *kind = KIND_FLAT;
    else if (strcasecmp(t, "twoGbMaxExtentSparse") == 0)
        *kind = KIND_SPLIT_SPARSE;
    else if (strcasecmp(t, "twoGbMaxExtentFlat") == 0)
        *kind = KIND_SPLIT_FLAT;
    else
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: createType: \"%s\" disks cannot be grown by vmdkit",
                       l->path, t);
    bool sparse = *kind == KIND_SPARSE || *kind == KIND_SPLIT_SPARSE;
    for (size_t i = 0; i < l->n_ext; i++) {
        const vk_extent *x = &l->ext[i];
        bool ok = sparse ? x->type == VK_EXT_SPARSE : (x->type == VK_EXT_FLAT || x->type == VK_EXT_VMFS);
        if (!ok || !x->file)
            return vk_fail(e, VMDKIT_EUNSUPPORTED,
                           "%s: extent %zu: a %s extent in a %s disk cannot be grown", l->path, i + 1,
                           vk_extent_type_name(x->type), t);
    }
    if ((*kind == KIND_SPARSE || *kind == KIND_FLAT) && l->n_ext != 1)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: %s disk with %zu extents cannot be grown", l->path,
                       t, l->n_ext);
    return 0;
}

static int grow_flat_file(vk_extent *x, uint64_t sectors, vk_err *e)
{
    uint64_t size, want = (x->offset_sectors + sectors) * VK_SECTOR;
    int r = vk_extent_hold(x, e);
    if (r)
        return r;
    if (!(r = vk_file_size(x->fd, &size, x->path, e)) && size < want) {
        if (ftruncate(x->fd, (off_t)want) != 0)
            r = vk_fail_errno(e, errno, "%s: extend to %llu bytes", x->path, (unsigned long long)want);
        else
            r = vk_fdatasync(x->fd, x->path, e);
    }
    vk_extent_release(x);
    return r;
}

/* A monolithicSparse disk: its tables, then the header and the embedded
 * descriptor in one write (sector 0 up to the end of the descriptor area),
 * so that no moment shows a header and a descriptor that disagree.  A kill
 * cannot split that write inside the first page, where the header and any
 * descriptor text shorter than 3.5 KiB lie; a power cut may tear it at a
 * sector (the descriptor then still holds its old size or its new one, and
 * a header whose capacity disagrees is what vmdkit check repairs). */
static int grow_monolithic_sparse(vk_link *l, uint64_t cap, vk_err *e)
{
    vk_extent *x = &l->ext[0]; /* the file itself: pinned, always open */
    uint8_t hdr[512];
    bool changed;
    int r = vk_sparse_grow_tables(x->fd, x->path, cap, hdr, &changed, e);
    if (r)
        return r;
    if (!l->embedded) { /* a sparse file without a descriptor: the header is all */
        if (changed && !(r = vk_pwrite_full(x->fd, hdr, sizeof hdr, 0, x->path, e)))
            r = vk_fdatasync(x->fd, x->path, e);
        return r;
    }
    char *text;
    size_t len;
    if ((r = vk_descriptor_format(&l->desc, &text, &len, e)))
        return r;
    uint64_t off = l->embedded_off_sectors * VK_SECTOR, area = l->embedded_size_sectors * VK_SECTOR;
    uint8_t *buf = len <= area ? vk_malloc((size_t)(off + area), e) : NULL;
    if (len > area)
        r = vk_fail(e, VMDKIT_ELIMIT,
                    "%s: embedded descriptor: %zu bytes do not fit in its %llu-byte area", l->path, len,
                    (unsigned long long)area);
    else if (!buf)
        r = VMDKIT_ENOMEM;
    else if (!(r = vk_pread_full(x->fd, buf, (size_t)off, 0, x->path, e))) {
        memcpy(buf, hdr, sizeof hdr);
        memset(buf + off, 0, (size_t)area);
        memcpy(buf + off, text, len);
        r = vk_pwrite_full(x->fd, buf, (size_t)(off + area), 0, x->path, e);
        if (!r)
            r = vk_fdatasync(x->fd, x->path, e);
    }
    free(buf);
    free(text);
    return r;
}

static int set_geometry(vk_descriptor *d, uint64_t cap, vk_err *e)
{
    const char *adapter = vk_descriptor_ddb_get(d, "ddb.adapterType");
    uint64_t c;
    uint32_t h, s;
    vk_geometry_for(adapter ? adapter : "ide", cap, &c, &h, &s);
    char cs[24], hs[16], ss[16];
    snprintf(cs, sizeof cs, "%llu", (unsigned long long)c);
    snprintf(hs, sizeof hs, "%u", h);
    snprintf(ss, sizeof ss, "%u", s);
    int r = vk_descriptor_ddb_set(d, "ddb.geometry.cylinders", cs, e);
    if (!r)
        r = vk_descriptor_ddb_set(d, "ddb.geometry.heads", hs, e);
    if (!r)
        r = vk_descriptor_ddb_set(d, "ddb.geometry.sectors", ss, e);
    return r;
}

/* Sectors per piece of the split link L: its first piece's size when it
 * has several, else the size current VMware products write. */
static uint64_t piece_sectors(const vk_link *l)
{
    if (l->n_ext > 1)
        return l->ext[0].size_sectors;
    return vk_max(l->ext[0].size_sectors, VMDKIT_SPLIT_4G_SECTORS);
}

/* A split disk: new pieces in T, the last piece grown, the descriptor
 * renamed into place.  L->desc already has the grown last extent; the new
 * pieces are appended to it here. */
static int grow_split(vk_link *l, uint64_t add, bool sparse, bool zeroed, vk_err *e)
{
    uint64_t piece = piece_sectors(l);
    uint64_t pieces = vk_div_round_up(add, piece);
    if (l->n_ext + pieces > VK_MAX_SPLIT_PIECES)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: the size needs %llu pieces of %llu sectors, more than %u",
                       l->path, (unsigned long long)(l->n_ext + pieces), (unsigned long long)piece,
                       VK_MAX_SPLIT_PIECES);
    char *dir = vk_path_dirname(l->path, e);
    if (!dir)
        return VMDKIT_ENOMEM;
    const char *name = vk_path_basename(l->path);
    vk_temp_folder t = {0};
    char **names = vk_calloc(pieces ? pieces : 1, sizeof *names, e);
    char *text = NULL, *tdesc = NULL, *ddesc = NULL;
    size_t len = 0;
    int r = names ? vk_remove_stale_temps(dir, name, NULL, e) : VMDKIT_ENOMEM;
    if (!r)
        r = vk_temp_folder_make(dir, name, &t, e);
    for (uint64_t i = 0; !r && i < pieces; i++) {
        char suffix[16];
        snprintf(suffix, sizeof suffix, "-%s%03u", sparse ? "s" : "f", (unsigned)(l->n_ext + i + 1));
        char *final = vk_path_with_suffix(l->path, suffix, e);
        char *inside = final ? vk_path_join(t.path, vk_path_basename(final), e) : NULL;
        uint64_t size = vk_min(piece, add - i * piece);
        if (!inside)
            r = VMDKIT_ENOMEM;
        else if (access(final, F_OK) == 0)
            r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists: it would be the new piece %llu", final,
                        (unsigned long long)(l->n_ext + i + 1));
        else
            r = sparse ? vk_create_sparse_extent(inside, size, NULL, zeroed, e)
                       : vk_create_flat_file(inside, size, e);
        if (!r)
            r = vk_descriptor_add_extent(&l->desc, VK_ACCESS_RW, size,
                                         sparse ? VK_EXT_SPARSE : VK_EXT_FLAT, vk_path_basename(final),
                                         !sparse, 0, e);
        if (!r && !(names[i] = vk_strdup(vk_path_basename(final), e)))
            r = VMDKIT_ENOMEM;
        free(final);
        free(inside);
    }
    /* the new descriptor beside the pieces: while it is there, the pieces'
     * names are a leftover's (vk_remove_stale_temps) */
    if (!r)
        r = vk_descriptor_format(&l->desc, &text, &len, e);
    if (!r && (!(tdesc = vk_path_join(t.path, name, e)) || !(ddesc = vk_path_join(dir, name, e))))
        r = VMDKIT_ENOMEM;
    if (!r)
        r = vk_write_file_atomic(tdesc, text, len, e);
    if (!r)
        r = vk_fsync_dir(t.path, e);
    for (uint64_t i = 0; !r && i < pieces; i++) {
        char *from = vk_path_join(t.path, names[i], e),
             *to = from ? vk_path_join(dir, names[i], e) : NULL;
        if (!to)
            r = VMDKIT_ENOMEM;
        else if (link(from, to) != 0)
            r = errno == EEXIST ? vk_fail(e, VMDKIT_EEXIST, "%s: already exists", to)
                                : vk_fail_errno(e, errno, "%s: link %s", to, from);
        free(from);
        free(to);
    }
    if (!r && pieces)
        r = vk_fsync_dir(dir, e);
    /* 2. the last old piece, when it is flat (a sparse one keeps its size:
     * its header would disagree with the descriptor until the rename) */
    if (!r && !sparse)
        r = grow_flat_file(&l->ext[l->n_ext - 1], l->desc.extents[l->n_ext - 1].size_sectors, e);
    /* 3. the descriptor: one rename */
    if (!r && rename(tdesc, ddesc) != 0)
        r = vk_fail_errno(e, errno, "%s: rename %s", ddesc, tdesc);
    if (!r)
        r = vk_fsync_dir(dir, e);
    if (r) {
        /* nothing names the new pieces: take their names back */
        for (uint64_t i = 0; i < pieces && names && names[i]; i++) {
            char *to = vk_path_join(dir, names[i], NULL), *from = vk_path_join(t.path, names[i], NULL);
            struct stat a, b;
            if (to && from && stat(to, &a) == 0 && stat(from, &b) == 0 && a.st_dev == b.st_dev &&
                a.st_ino == b.st_ino)
                unlink(to);
            free(to);
            free(from);
        }
        vk_temp_folder_unhide_message(&t, dir, e);
    }
    vk_temp_folder_discard(&t);
    for (uint64_t i = 0; names && i < pieces; i++)
        free(names[i]);
    free(names);
    free(text);
    free(tdesc);
    free(ddesc);
    free(dir);
    return r;
}

/* The refusals that need no library and no lock, on the disk at PATH:
 * its type, a CAP smaller than it or more than its type holds.  *OLD
 * receives its capacity. */
static int precheck(const char *path, uint64_t cap, uint64_t *old, vk_err *e)
{
    vmdkit_disk *d = NULL;
    enum disk_kind kind;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT | VMDKIT_OPEN_NO_LOCK, &d, e);
    if (r)
        return r;
    *old = d->top->capacity_sectors;
    r = kind_of(d->top, &kind, e);
    vmdkit_close(d, NULL);
    if (r)
        return r;
    if (cap < *old)
        return vk_fail(
            e, VMDKIT_EINVAL,
            "%s: size: %llu bytes is smaller than the disk's %llu: shrinking is not supported", path,
            (unsigned long long)(cap * VK_SECTOR), (unsigned long long)(*old * VK_SECTOR));
    vmdkit_create_type ct = kind == KIND_SPARSE         ? VMDKIT_MONOLITHIC_SPARSE
                            : kind == KIND_FLAT         ? VMDKIT_MONOLITHIC_FLAT
                            : kind == KIND_SPLIT_SPARSE ? VMDKIT_TWOGB_SPARSE
                                                        : VMDKIT_TWOGB_FLAT;
    if (cap > *old && !vk_create_fits(ct, cap))
        return vk_fail(e, VMDKIT_ELIMIT, "%s: size: %llu bytes is more than a %s disk holds", path,
                       (unsigned long long)(cap * VK_SECTOR), vmdkit_create_type_name(ct));
    return 0;
}

/* Grow the one disk at PATH from OLD (what precheck saw) to CAP sectors,
 * open read-write and locked; a delta only when IN_CHAIN (its parent is
 * grown first, see vmdkit_resize). */
static int grow_disk(const char *path, uint64_t cap, uint64_t old, unsigned flags, bool in_chain,
                     vk_err *e)
{
    vmdkit_disk *d = NULL;
    enum disk_kind kind;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_PARENT | VK_OPEN_KEEP_CID, &d, e);
    if (r)
        return r;
    vk_link *l = d->top;
    /* the same checks on what is open now, locked */
    if ((r = kind_of(l, &kind, e)))
        goto out;
    if (l->capacity_sectors != old || (l->desc.parent_hint && !in_chain)) {
        r = vk_fail(e, VMDKIT_ELOCKED, "%s: changed while it was being checked", path);
        goto out;
    }
    if (!(flags & VMDKIT_RESIZE_KEEP_GEOMETRY) && (r = set_geometry(&l->desc, cap, e)))
        goto out;
    vk_extent_desc *last = &l->desc.extents[l->n_ext - 1];
    if (kind == KIND_SPARSE) {
        last->size_sectors = cap;
        r = grow_monolithic_sparse(l, cap, e);
    } else if (kind == KIND_FLAT) {
        last->size_sectors = cap;
        if (!(r = grow_flat_file(&l->ext[0], cap, e)))
            r = vk_link_write_descriptor(l, e);
    } else {
        uint64_t add = cap - old;
        uint64_t piece = piece_sectors(l);
        /* a flat last piece is topped up; a sparse one stays (see grow_split) */
        uint64_t top_up = kind == KIND_SPLIT_FLAT && last->size_sectors < piece
                              ? vk_min(piece - last->size_sectors, add)
                              : 0;
        bool zeroed = false;
        last->size_sectors += top_up;
        vk_extent *tail = &l->ext[l->n_ext - 1];
        if (kind == KIND_SPLIT_SPARSE && !(r = vk_extent_hold(tail, e))) {
            r = vk_sparse_capacity(tail->fd, tail->path, &(uint64_t){0}, &zeroed, e);
            vk_extent_release(tail);
        }
        if (!r)
            r = grow_split(l, add - top_up, kind == KIND_SPLIT_SPARSE, zeroed, e);
    }
out:;
    int rc = vmdkit_close(d, r ? NULL : e);
    return r ? r : rc;
}

/* Progress: DONE of TOTAL bytes added; VMDKIT_ECANCELED when the callback
 * asks (before the next disk: each one grown is whole). */
static int report(const vmdkit_resize_opts *o, uint64_t done, uint64_t total, vk_err *e)
{
    if (o->progress && o->progress(o->progress_opaque, done, total) && done < total)
        return vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    return 0;
}

int vmdkit_resize(const char *path, uint64_t size_bytes, const vmdkit_resize_opts *opts,
                  vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_resize_opts o;
    int r = vk_entry_opts(&e, err, &local, NULL, 0, NULL, &o, sizeof o, opts, "vmdkit_resize_opts");
    if (r)
        return r;
    if (o.flags &
        ~(unsigned)(VMDKIT_RESIZE_KEEP_GEOMETRY | VMDKIT_RESIZE_CHAIN | VMDKIT_RESIZE_CHECK_ONLY))
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_resize: unknown flags 0x%x", o.flags);
    uint64_t cap = vk_div_round_up(size_bytes, VK_SECTOR);
    if (cap == 0)
        return vk_fail(e, VMDKIT_EINVAL, "%s: size: a disk cannot be empty", path);
    uint64_t old;
    if (!(o.flags & VMDKIT_RESIZE_CHAIN)) {
        /* a look first, without locks, for the refusals that need no library */
        if ((r = precheck(path, cap, &old, e)) || cap == old)
            return r;
        if ((r = vk_maint_check_library(path, o.root, true, e)) || (o.flags & VMDKIT_RESIZE_CHECK_ONLY))
            return r;
        uint64_t total = (cap - old) * VK_SECTOR;
        if ((r = report(&o, 0, total, e)) || (r = grow_disk(path, cap, old, o.flags, false, e)))
            return r;
        return report(&o, total, total, e);
    }
    /*
     * The whole chain: the base first, then each disk after its parent
     * (vk_maint_chain_members), each grown and made durable as above
     * before the next.  At every moment a parent is as large as its
     * children or larger, and a child smaller than its parent reads its
     * old range exactly as before (what lies beyond its end is not read):
     * after a crash every member opens with its old size or the new one,
     * both qemu-img and vmdkit read it, qemu-img check is clean and
     * vmdkit check notes (as information, exit 0) each child smaller than
     * its parent.  Running the same command again (the same SIZE) grows
     * what is left; members already at SIZE are skipped.  Every member is
     * checked before the first is changed, so a refusal changes nothing.
     */
    char **members = NULL;
    size_t n = 0;
    if ((r = vk_maint_chain_members(path, o.root, &members, &n, e)))
        return r;
    uint64_t *olds = vk_calloc(n, sizeof *olds, e);
    if (!olds)
        r = VMDKIT_ENOMEM;
    uint64_t total = 0, done = 0;
    for (size_t i = 0; !r && i < n; i++)
        if (!(r = precheck(members[i], cap, &olds[i], e)))
            total += (cap - olds[i]) * VK_SECTOR;
    if (!r && !(o.flags & VMDKIT_RESIZE_CHECK_ONLY))
        r = report(&o, 0, total, e);
    for (size_t i = 0; !r && !(o.flags & VMDKIT_RESIZE_CHECK_ONLY) && i < n; i++)
        if (olds[i] != cap && !(r = grow_disk(members[i], cap, olds[i], o.flags, true, e))) {
            done += (cap - olds[i]) * VK_SECTOR;
            r = report(&o, done, total, e);
        }
    for (size_t i = 0; i < n; i++)
        free(members[i]);
    free(members);
    free(olds);
    return r;
}
