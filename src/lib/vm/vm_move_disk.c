/* vm_move_disk.c - rename a disk as vmware-vdiskmanager -n does (its extent
 * files and extent lines follow the new name) and rewrite the parent hints
 * and .vmx fileNames that named it.
 *
 * Crash safety: (1) plan; (2) the new names are made as hard links
 * of the old extent files, then the new descriptor is written (a
 * monolithicSparse file is linked and its embedded descriptor rewritten:
 * both names are the same file, and its own extent is found whatever name
 * the descriptor gives).  The old disk is untouched and complete, the new
 * one complete too; (3) references are rewritten while both names work;
 * (4) the old descriptor is removed, then the old extent names.  An
 * interruption leaves at worst extra names of the same data (no space is
 * used twice) to delete by hand.  Where hard links cannot be made (another
 * file system, exFAT) step (2) copies the files instead, each made
 * durable, so an interruption may leave a complete second copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy_tree.h"
#include "create.h"
#include "holders.h"
#include "link.h"
#include "move.h"
#include "path.h"
#include "scan.h"
#include "vm.h"

/* New name of an extent file: the disk's old stem replaced by the new one
 * (Base-s001.vmdk -> New-s001.vmdk); other names are kept. */
static char *extent_new_name(const char *name, const char *old_stem, size_t old_len,
                             const char *new_stem, size_t new_len, vk_err *e)
{
    if (strncmp(name, old_stem, old_len) != 0 || (name[old_len] != '-' && name[old_len] != '.'))
        return vk_strdup(name, e);
    size_t n = new_len + strlen(name + old_len) + 1;
    char *s = vk_malloc(n, e);
    if (s)
        snprintf(s, n, "%.*s%s", (int)new_len, new_stem, name + old_len);
    return s;
}

/* Write TEXT as the new file PATH, never replacing one: a temporary file,
 * made durable, then linked to PATH. */
static int write_new_file(const char *path, const char *text, size_t len, vk_err *e)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.vmdkit-tmp-XXXXXX", path) >= sizeof tmp)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return vk_fail_errno(e, errno, "%s: create temporary file", path);
    (void)fchmod(fd, 0644);
    int r = vk_pwrite_full(fd, text, len, 0, path, e);
    if (!r && fsync(fd) != 0)
        r = vk_fail_errno(e, errno, "%s: fsync", tmp);
    if (close(fd) != 0 && !r)
        r = vk_fail_errno(e, errno, "%s: close", tmp);
    if (!r && link(tmp, path) != 0)
        r = errno == EEXIST ? vk_fail(e, VMDKIT_EEXIST, "%s: already exists", path)
                            : vk_fail_errno(e, errno, "%s: create", path);
    unlink(tmp);
    return r;
}

/* The new name TO of the file FROM: a hard link, so that both names are
 * the same data; where the file system cannot (another file system, or
 * one without hard links such as exFAT) a copy of it, made durable. */
static int make_new_name(const char *from, const char *to, vk_copy_progress *pg, vk_err *e)
{
    if (link(from, to) == 0)
        return 0;
    if (errno == EXDEV || errno == EPERM || errno == ENOTSUP || errno == EMLINK)
        return vk_copy_file(from, to, pg, e);
    if (errno == EEXIST)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", to);
    return vk_fail_errno(e, errno, "%s: link to %s", from, to);
}

struct disk_plan {
    size_t n;
    char **old_paths; /* extent files to rename */
    char **new_paths;
    size_t n_linked; /* how many new names exist */
};

static void disk_plan_free(struct disk_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->old_paths[i]);
        free(p->new_paths[i]);
    }
    free(p->old_paths);
    free(p->new_paths);
}

/* Remove the new names (or copies) made so far (undo of step 2). */
static void unlink_new(struct disk_plan *p)
{
    for (size_t i = 0; i < p->n_linked; i++)
        unlink(p->new_paths[i]);
    p->n_linked = 0;
}

/* One disk move, step by step (see the top of the file). */
struct disk_move {
    const vmdkit_move_opts *opts;
    vmdkit_move_result *res;
    char *src_real, *src_dir, *dst_dir;
    const char *src; /* as the caller named it, for messages */
    vk_lib *lib;
    vk_rewrites rw;
    struct disk_plan names;
    bool embedded;
    char *text; /* a separate descriptor: its text under the new name */
    size_t len;
    char *new_hint; /* an embedded descriptor: its hint seen from the new folder */
};

/* The move can be made: SRC is a disk of its own that nobody holds, DST a
 * free name ending in .vmdk in an existing folder. */
static int check_move(struct disk_move *m, const char *dst_arg, vk_err *e)
{
    vk_descriptor probe;
    bool is_disk;
    int r = vk_read_descriptor(m->src_real, &probe, &is_disk, e);
    vk_descriptor_free(&probe);
    if (r)
        return r;
    if (!is_disk)
        return vk_fail(e, VMDKIT_EINVAL,
                       "%s: not a disk's descriptor (an extent file?): move the disk it belongs to",
                       m->src);
    if (!(m->res->dst = vk_move_destination(m->src_real, dst_arg, e)))
        return e->code ? e->code : VMDKIT_ENOMEM;
    if (!vk_path_has_suffix(m->res->dst, ".vmdk"))
        return vk_fail(e, VMDKIT_EINVAL, "%s: a disk's name must end in .vmdk", m->res->dst);
    struct stat st;
    if (lstat(m->res->dst, &st) == 0)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", m->res->dst);
    if (!(m->src_dir = vk_path_dirname(m->src_real, e)) ||
        !(m->dst_dir = vk_path_dirname(m->res->dst, e)))
        return VMDKIT_ENOMEM;
    /* the library around the disk and around where it goes: who names it */
    const char *targets[2] = {m->src_real, m->dst_dir};
    if ((r = vk_lib_load_around(m->opts->root, targets, 2, &m->lib, e)))
        return r;
    size_t me = vk_lib_disk_at(m->lib, m->src_real);
    if (me == VK_LIB_NONE)
        return vk_fail(e, VMDKIT_EINVAL, "%s: not a disk of its own: move the disk it belongs to",
                       m->src);
    /* nobody may have it open: VMware, QEMU, a vmdkit reader or writer */
    return vk_lib_check_disk_holders(m->lib, me, VK_NEED_EXCLUSIVE, e);
}

/* The new name of extent I of link L (DESC's extent lines follow it). */
static int plan_extent(struct disk_move *m, vk_link *l, size_t i, const char *ob, size_t ol,
                       const char *nb, size_t nl, vk_err *e)
{
    char **name = &l->desc.extents[i].filename;
    if (!*name || !l->ext[i].path)
        return 0; /* ZERO extents have no file */
    if (m->embedded && i == 0) {
        char *self = vk_strdup(nb, e); /* the file itself */
        if (!self)
            return VMDKIT_ENOMEM;
        free(*name);
        *name = self;
        return 0;
    }
    if (strchr(*name, '/'))
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: extent \"%s\" is in another folder: move it by hand",
                       m->src, *name);
    char *nn = extent_new_name(*name, ob, ol, nb, nl, e);
    char *np = nn ? vk_path_join(m->dst_dir, nn, e) : NULL;
    if (!np) {
        free(nn);
        return VMDKIT_ENOMEM;
    }
    free(*name);
    *name = nn;
    struct stat st;
    if (vk_same_file(np, l->ext[i].path)) {
        free(np); /* same name, same folder: nothing to do */
        return 0;
    }
    if (lstat(np, &st) == 0) {
        int r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists (it would be the new name of extent %s)",
                        np, l->ext[i].path);
        free(np);
        return r;
    }
    m->names.new_paths[m->names.n] = np;
    return (m->names.old_paths[m->names.n++] = vk_strdup(l->ext[i].path, e)) ? 0 : VMDKIT_ENOMEM;
}

/* Step 1: the new extent names and the descriptor under the new name (its
 * extent lines, and its relative hint as seen from the new folder). */
static int plan_names(struct disk_move *m, vk_err *e)
{
    vmdkit_disk *d;
    int r = vmdkit_open(m->src_real, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT, &d, e);
    if (r)
        return r;
    vk_link *l = d->top;
    m->embedded = l->embedded;
    const char *ob = vk_path_basename(m->src_real), *nb = vk_path_basename(m->res->dst);
    size_t ol = strlen(ob) - 5, nl = strlen(nb) - 5;
    m->names.old_paths = vk_calloc(l->desc.n_extents + 1, sizeof *m->names.old_paths, e);
    m->names.new_paths = vk_calloc(l->desc.n_extents + 1, sizeof *m->names.new_paths, e);
    if (!m->names.old_paths || !m->names.new_paths)
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < l->desc.n_extents && i < l->n_ext; i++)
        r = plan_extent(m, l, i, ob, ol, nb, nl, e);
    if (!r && l->desc.parent_hint && l->desc.parent_hint[0] != '/' &&
        strcmp(m->src_dir, m->dst_dir) != 0) {
        char *named = vk_path_resolve_parent(m->src_real, l->desc.parent_hint, e);
        char *parent = named ? realpath(named, NULL) : NULL;
        char *hint = NULL;
        if (parent && !(r = vk_parent_hint_for(m->res->dst, parent, false, &hint, e))) {
            free(l->desc.parent_hint);
            l->desc.parent_hint = hint;
        }
        free(named);
        free(parent);
    }
    if (!r && !m->embedded)
        r = vk_descriptor_format_like(&l->desc, l->desc_text, l->desc_len, &m->text, &m->len, e);
    if (!r && m->embedded && l->desc.parent_hint && !(m->new_hint = vk_strdup(l->desc.parent_hint, e)))
        r = VMDKIT_ENOMEM;
    vmdkit_close(d, NULL);
    return r;
}

/* The references to rewrite, planned from the library model; they name
 * the disk by its new path, which exists only after step 2. */
static int plan_references(struct disk_move *m, vk_err *e)
{
    vk_move_map map = {.src = m->src_real, .dst = m->res->dst, .is_folder = false};
    size_t outside;
    int r = vk_move_plan(m->lib, &map, &m->rw, &outside, e);
    if (!r)
        r = vk_rewrites_check_unlocked(&m->rw, e);
    if (!r && !(m->res->scanned = vk_lib_describe_roots(m->lib, e)))
        r = VMDKIT_ENOMEM;
    m->res->n_outside_refs = outside;
    return r;
}

/* A monolithic sparse file under its new name (a hard link or a copy)
 * gets its embedded descriptor's extent line and hint rewritten in place. */
static int rename_embedded(struct disk_move *m, vk_copy_progress *pg, vk_err *e)
{
    int r = make_new_name(m->src_real, m->res->dst, pg, e);
    if (r)
        return r;
    vmdkit_disk *d;
    if (!(r = vmdkit_open(m->res->dst, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_PARENT | VK_OPEN_KEEP_CID, &d,
                          e))) {
        char *self = vk_strdup(vk_path_basename(m->res->dst), e);
        if (!self) {
            r = VMDKIT_ENOMEM;
        } else {
            free(d->top->desc.extents[0].filename);
            d->top->desc.extents[0].filename = self;
        }
        if (!r && m->new_hint) {
            free(d->top->desc.parent_hint);
            d->top->desc.parent_hint = m->new_hint;
            m->new_hint = NULL;
        }
        if (!r)
            r = vk_link_write_descriptor(d->top, e);
        int rc = vmdkit_close(d, r ? NULL : e);
        r = r ? r : rc;
    }
    if (r)
        unlink(m->res->dst);
    return r;
}

/* Step 2: the new names - extents, then the descriptor - made durable
 * before anything names them.  Copies across file systems report their
 * bytes and may be cancelled.  On failure what was made is removed. */
static int make_new_names(struct disk_move *m, vk_err *e)
{
    vk_copy_progress pg = {.fn = m->opts->progress, .opaque = m->opts->progress_opaque};
    int r = 0;
    for (size_t i = 0; !r && i < m->names.n; i++)
        if (!(r = make_new_name(m->names.old_paths[i], m->names.new_paths[i], &pg, e)))
            m->names.n_linked++;
    if (!r)
        r = m->embedded ? rename_embedded(m, &pg, e) : write_new_file(m->res->dst, m->text, m->len, e);
    if (!r && (r = vk_fsync_parent(m->res->dst, e)))
        unlink(m->res->dst);
    if (r)
        unlink_new(&m->names);
    return r;
}

/* Step 4: the old names, the descriptor first so no half disk is left. */
static int remove_old_names(struct disk_move *m, vk_err *e)
{
    int r = 0;
    if (unlink(m->src_real) != 0 && errno != ENOENT)
        r = vk_fail_errno(e, errno, "%s: remove the old name", m->src_real);
    for (size_t i = 0; i < m->names.n; i++)
        if (unlink(m->names.old_paths[i]) != 0 && errno != ENOENT && !r)
            r = vk_fail_errno(e, errno, "%s: remove the old name", m->names.old_paths[i]);
    int sync_r = vk_fsync_parent(m->src_real, r ? NULL : e);
    return r ? r : sync_r;
}

int vk_move_disk(const char *src, const char *dst_arg, const vmdkit_move_opts *opts,
                 vmdkit_move_result *res, vk_err *e)
{
    struct disk_move m = {.opts = opts, .res = res, .src = src, .src_real = realpath(src, NULL)};
    if (!m.src_real)
        return vk_fail_errno(e, errno, "%s", src);
    int r = check_move(&m, dst_arg, e);
    if (!r)
        r = plan_names(&m, e); /* 1 */
    if (!r)
        r = plan_references(&m, e);
    if (!r)
        r = make_new_names(&m, e); /* 2 */
    /* 3. references, while both names work; one that cannot be rewritten
     * still names the old name: keep both (the same files, or complete
     * copies) */
    if (!r && (r = vk_rewrites_apply(&m.rw, res->dst, e)))
        vk_err_prefix(e, "%s: the old names are kept", m.src_real);
    if (!r)
        r = remove_old_names(&m, e); /* 4 */
    res->fixes = m.rw.v;
    res->n_fixes = m.rw.n;
    vk_lib_free(m.lib);
    disk_plan_free(&m.names);
    free(m.text);
    free(m.new_hint);
    free(m.src_real);
    free(m.src_dir);
    free(m.dst_dir);
    return r;
}
