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
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy_tree.h"
#include "create.h"
#include "libwalk.h"
#include "link.h"
#include "move.h"
#include "path.h"
#include "scan.h"
#include "vm.h"

/* New name of an extent file: the disk's old stem replaced by the new one
 * (Base-s001.vmdk -> New-s001.vmdk); other names are kept. */
static char *extent_new_name(const char *name, const char *old_stem, size_t old_len, const char *new_stem,
                             size_t new_len, vk_err *e)
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
static int make_new_name(const char *from, const char *to, vk_err *e)
{
    if (link(from, to) == 0)
        return 0;
    if (errno == EXDEV || errno == EPERM || errno == ENOTSUP || errno == EMLINK)
        return vk_copy_file(from, to, e);
    if (errno == EEXIST)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", to);
    return vk_fail_errno(e, errno, "%s: link to %s", from, to);
}

struct disk_plan {
    size_t n;
    char **old_paths;   /* extent files to rename */
    char **new_paths;
    size_t n_linked;    /* how many new names exist */
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

/* Dependents of the disk and machines using it: planned rewrites naming DST. */
static int plan_disk_refs(const char *src, const char *dst, const char *root, vmdkit_move_result *res,
                          size_t *cap, vk_err *e)
{
    char *dir = vk_path_dirname(src, e);
    if (!dir)
        return VMDKIT_ENOMEM;
    const char *roots[2] = {root, dir};
    char **deps = NULL;
    size_t n = 0;
    int r = vk_find_dependents_multi(roots, 2, src, &deps, &n, e);
    for (size_t i = 0; !r && i < n; i++) {
        vk_descriptor d;
        bool is_disk;
        if (vk_read_descriptor(deps[i], &d, &is_disk, e) == 0 && is_disk && d.parent_hint) {
            char *value = NULL;
            if (d.parent_hint[0] == '/')
                value = vk_strdup(dst, e);
            else
                r = vk_parent_hint_for(deps[i], dst, false, &value, e);
            if (!r)
                r = value ? vk_move_add_fix(res, cap, deps[i], NULL, value, dst, e) : VMDKIT_ENOMEM;
            free(value);
        }
        vk_descriptor_free(&d);
    }
    vmdkit_paths_free(deps, n);
    free(dir);
    return r;
}

struct vmx_scan {
    const char *src, *dst;
    vmdkit_move_result *res;
    size_t *cap;
    vk_err *e;
};

static int plan_vmx_for_disk(void *opaque, const char *path, enum vk_lib_kind kind, const vk_descriptor *d,
                             const char *problem)
{
    (void)d;
    (void)problem;
    struct vmx_scan *s = opaque;
    if (kind != VK_LIB_VMX)
        return 0;
    vk_vm_disk *disks;
    vk_vmx *v;
    size_t n;
    if (vk_vm_load(path, &v, &disks, &n, NULL) != 0)
        return 0;
    int r = 0;
    for (size_t i = 0; !r && i < n; i++) {
        if (!vk_same_file(disks[i].path, s->src))
            continue;
        char key[128];
        char *value = vk_vm_file_name_for(path, s->dst, disks[i].file[0] == '/', s->e);
        if (!value)
            r = VMDKIT_ENOMEM;
        else if ((size_t)snprintf(key, sizeof key, "%s.fileName", disks[i].slot) < sizeof key)
            r = vk_move_add_fix(s->res, s->cap, path, key, value, s->dst, s->e);
        free(value);
    }
    vk_vm_disks_free(disks, n);
    vk_vmx_free(v);
    return r;
}

/* Remove the new names (or copies) made so far (undo of step 2). */
static void unlink_new(struct disk_plan *p)
{
    for (size_t i = 0; i < p->n_linked; i++)
        unlink(p->new_paths[i]);
    p->n_linked = 0;
}

int vk_move_disk(const char *src, const char *dst_arg, const char *root, vmdkit_move_result *res,
                     vk_err *e)
{
    char *src_real = realpath(src, NULL), *src_dir = NULL, *dst_dir = NULL, *root_real = NULL;
    char *text = NULL;
    size_t len = 0, cap = 0;
    struct disk_plan p = {0};
    vmdkit_disk *d = NULL;
    bool embedded = false;
    if (!src_real)
        return vk_fail_errno(e, errno, "%s", src);
    int r = 0;
    vk_descriptor probe;
    bool is_disk;
    if ((r = vk_read_descriptor(src_real, &probe, &is_disk, e)))
        goto out;
    vk_descriptor_free(&probe);
    if (!is_disk) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: not a disk's descriptor (an extent file?): move the disk it belongs to",
                    src);
        goto out;
    }
    if (!(res->dst = vk_move_destination(src_real, dst_arg, e))) {
        r = e->code ? e->code : VMDKIT_ENOMEM;
        goto out;
    }
    if (!vk_path_has_suffix(res->dst, ".vmdk")) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: a disk's name must end in .vmdk", res->dst);
        goto out;
    }
    struct stat st;
    if (lstat(res->dst, &st) == 0) {
        r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists", res->dst);
        goto out;
    }
    char lck[PATH_MAX];
    if ((size_t)snprintf(lck, sizeof lck, "%s.lck", src_real) < sizeof lck && lstat(lck, &st) == 0) {
        r = vk_fail(e, VMDKIT_ELOCKED, "%s: VMware's lock: the disk is in use; shut its virtual machine down first",
                    lck);
        goto out;
    }
    if (!(src_dir = vk_path_dirname(src_real, e)) || !(dst_dir = vk_path_dirname(res->dst, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    /* by default the library around the disk's folder, where linked clones
     * in sibling VM folders live (as vmdkit commit looks for dependents) */
    char *lib = root ? NULL : vk_path_dirname(src_dir, e);
    const char *scan = root ? root : lib && strcmp(lib, "/") != 0 ? lib : src_dir;
    root_real = realpath(scan, NULL);
    if (!root_real)
        r = vk_fail_errno(e, errno, "%s: --root", scan);
    free(lib);
    if (r)
        goto out;

    /* 1. plan: new extent names, the new descriptor, the references */
    if ((r = vmdkit_open(src_real, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT, &d, e)))
        goto out;
    vk_link *l = d->top;
    embedded = l->embedded;
    const char *ob = vk_path_basename(src_real), *nb = vk_path_basename(res->dst);
    size_t ol = strlen(ob) - 5, nl = strlen(nb) - 5;
    p.old_paths = vk_calloc(l->desc.n_extents + 1, sizeof *p.old_paths, e);
    p.new_paths = vk_calloc(l->desc.n_extents + 1, sizeof *p.new_paths, e);
    if (!p.old_paths || !p.new_paths) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; !r && i < l->desc.n_extents && i < l->n_ext; i++) {
        char **name = &l->desc.extents[i].filename;
        if (!*name || !l->ext[i].path)
            continue; /* ZERO extents have no file */
        if (embedded && i == 0) {
            char *self = vk_strdup(nb, e); /* the file itself */
            if (!self) {
                r = VMDKIT_ENOMEM;
                break;
            }
            free(*name);
            *name = self;
            continue;
        }
        if (strchr(*name, '/')) {
            r = vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: extent \"%s\" is in another folder: move it by hand",
                        src, *name);
            break;
        }
        char *nn = extent_new_name(*name, ob, ol, nb, nl, e);
        char *np = nn ? vk_path_join(dst_dir, nn, e) : NULL;
        if (!np) {
            free(nn);
            r = VMDKIT_ENOMEM;
            break;
        }
        free(*name);
        *name = nn;
        if (vk_same_file(np, l->ext[i].path)) {
            free(np); /* same name, same folder: nothing to do */
            continue;
        }
        if (lstat(np, &st) == 0) {
            r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists (it would be the new name of extent %s)", np,
                        l->ext[i].path);
            free(np);
            break;
        }
        p.new_paths[p.n] = np;
        if (!(p.old_paths[p.n++] = vk_strdup(l->ext[i].path, e)))
            r = VMDKIT_ENOMEM;
    }
    /* its own relative hint, seen from the new folder */
    if (!r && l->desc.parent_hint && l->desc.parent_hint[0] != '/' && strcmp(src_dir, dst_dir) != 0) {
        char *named = vk_path_resolve_parent(src_real, l->desc.parent_hint, e);
        char *parent = named ? realpath(named, NULL) : NULL;
        char *hint = NULL;
        if (parent && !(r = vk_parent_hint_for(res->dst, parent, false, &hint, e))) {
            free(l->desc.parent_hint);
            l->desc.parent_hint = hint;
        }
        free(named);
        free(parent);
    }
    if (!r && !embedded)
        r = vk_descriptor_format(&l->desc, &text, &len, e);
    char *new_hint = !r && embedded && l->desc.parent_hint ? vk_strdup(l->desc.parent_hint, e) : NULL;
    vmdkit_close(d, NULL);
    d = NULL;
    if (r)
        goto out;
    if ((r = plan_disk_refs(src_real, res->dst, root_real, res, &cap, e)))
        goto out;
    struct vmx_scan vs = {.src = src_real, .dst = res->dst, .res = res, .cap = &cap, .e = e};
    if ((r = vk_lib_walk(root_real, plan_vmx_for_disk, &vs, e)) || (r = vk_move_check_unlocked(res, e))) {
        free(new_hint);
        goto out;
    }
    /* the fixes name the disk by its new path, which does not exist yet:
     * they are applied after step 2 */

    /* 2. new names: extents, then the descriptor */
    for (size_t i = 0; !r && i < p.n; i++) {
        if (!(r = make_new_name(p.old_paths[i], p.new_paths[i], e)))
            p.n_linked++;
    }
    if (!r && !embedded) {
        r = write_new_file(res->dst, text, len, e);
    } else if (!r) {
        if ((r = make_new_name(src_real, res->dst, e))) {
            /* nothing made */
        } else if ((r = vmdkit_open(res->dst, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_PARENT | VK_OPEN_KEEP_CID, &d,
                                    e)) == 0) {
            char *self = vk_strdup(nb, e);
            if (!self) {
                r = VMDKIT_ENOMEM;
            } else {
                free(d->top->desc.extents[0].filename);
                d->top->desc.extents[0].filename = self;
            }
            if (!r && new_hint) {
                free(d->top->desc.parent_hint);
                d->top->desc.parent_hint = new_hint;
                new_hint = NULL;
            }
            if (!r)
                r = vk_link_write_descriptor(d->top, e);
            int rc = vmdkit_close(d, r ? NULL : e);
            d = NULL;
            r = r ? r : rc;
        }
        if (r)
            unlink(res->dst);
    }
    free(new_hint);
    if (r) {
        unlink_new(&p);
        goto out;
    }
    /* the new names must be durable before references name them */
    if ((r = vk_fsync_parent(res->dst, e))) {
        unlink_new(&p);
        goto out;
    }

    /* 3. references, while both names work */
    r = vk_move_apply_fixes(res, e);

    /* 4. the old names: descriptor first, so no half disk is left */
    if (unlink(src_real) != 0 && errno != ENOENT && !r)
        r = vk_fail_errno(e, errno, "%s: remove the old name", src_real);
    for (size_t i = 0; i < p.n; i++)
        if (unlink(p.old_paths[i]) != 0 && errno != ENOENT && !r)
            r = vk_fail_errno(e, errno, "%s: remove the old name", p.old_paths[i]);
    int sync_r = vk_fsync_parent(src_real, r ? NULL : e);
    if (!r)
        r = sync_r;
out:
    vmdkit_close(d, NULL);
    disk_plan_free(&p);
    free(text);
    free(src_real);
    free(src_dir);
    free(dst_dir);
    free(root_real);
    return r;
}

