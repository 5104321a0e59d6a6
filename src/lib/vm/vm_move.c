/* vm_move.c - move a machine folder or a disk and rewrite every parent
 * hint and .vmx fileName that names what moved: the folder move, and the
 * planning and applying of rewrites shared with vm_move_disk.c.
 *
 * Crash safety, folder: (1) every reference to rewrite is planned, nothing
 * written; (2) one rename(2) moves the folder; (3) the references are
 * rewritten one by one, each in one atomic write.  An interruption in (3)
 * leaves references to the old place: no data is lost, `vmdkit tree`
 * lists those disks as broken hints with the moved parent as the likely
 * candidate (same CID), and `vmdkit rebase -u -b PARENT DISK` repairs each.
 *
 * Across file systems (2) becomes: copy into a temporary folder beside the
 * destination, every file and folder flushed; check that no source entry
 * changed meanwhile; rename the copy into place.  Then (3), and last the
 * source is removed entry by entry, only what was copied and is unchanged.
 * An interruption before the rename leaves the source whole and a
 * ".NAME.vmdkit-tmp-XXXXXX" folder to delete; after it, two copies, the
 * references naming either one.
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
#include "temp_folder.h"
#include "vm.h"

void vmdkit_move_result_free(vmdkit_move_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_fixes; i++) {
        vmdkit_move_fix *f = &res->fixes[i];
        free(f->file);
        free(f->key);
        free(f->value);
        free(f->target);
        free(f->message);
    }
    free(res->fixes);
    free(res->dst);
    memset(res, 0, sizeof *res);
}

/* Record a planned rewrite (the strings are copied; KEY may be NULL). */
int vk_move_add_fix(vmdkit_move_result *res, size_t *cap, const char *file, const char *key,
                   const char *value, const char *target, vk_err *e)
{
    if (res->n_fixes == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        vmdkit_move_fix *nf = realloc(res->fixes, ncap * sizeof *nf);
        if (!nf)
            return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
        res->fixes = nf;
        *cap = ncap;
    }
    vmdkit_move_fix *f = &res->fixes[res->n_fixes];
    memset(f, 0, sizeof *f);
    res->n_fixes++;
    if (!(f->file = vk_strdup(file, e)) || (key && !(f->key = vk_strdup(key, e))) ||
        !(f->value = vk_strdup(value, e)) || !(f->target = vk_strdup(target, e)))
        return VMDKIT_ENOMEM;
    return 0;
}

/* ---- applying rewrites ---- */

/* Give the disk at PATH the parent hint HINT (its parentCID is kept). */
static int rewrite_hint(const char *path, const char *hint, vk_err *e)
{
    vmdkit_disk *d;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_PARENT | VK_OPEN_KEEP_CID, &d, e);
    if (r)
        return r;
    char *h = vk_strdup(hint, e);
    if (!h) {
        r = VMDKIT_ENOMEM;
    } else {
        free(d->top->desc.parent_hint);
        d->top->desc.parent_hint = h;
        r = vk_link_write_descriptor(d->top, e);
    }
    int rc = vmdkit_close(d, r ? NULL : e);
    return r ? r : rc;
}

static int rewrite_vmx_key(const char *path, const char *key, const char *value, vk_err *e)
{
    vk_vmx *v;
    int r = vk_vmx_load(path, &v, e);
    if (r)
        return r;
    if (!(r = vk_vmx_set(v, key, value, e)))
        r = vk_vmx_save(v, e);
    vk_vmx_free(v);
    return r;
}

/* Apply every planned rewrite; a failure is recorded in the fix and the
 * others still go ahead.  Returns VMDKIT_ECHAIN when one failed. */
int vk_move_apply_fixes(vmdkit_move_result *res, vk_err *e)
{
    size_t failed = 0;
    for (size_t i = 0; i < res->n_fixes; i++) {
        vmdkit_move_fix *f = &res->fixes[i];
        vk_err fe = {0};
        f->code = f->key ? rewrite_vmx_key(f->file, f->key, f->value, &fe)
                         : rewrite_hint(f->file, f->value, &fe);
        if (f->code) {
            failed++;
            f->message = strdup(fe.msg[0] ? fe.msg : vmdkit_errcode_name(f->code));
        }
    }
    if (failed)
        return vk_fail(e, VMDKIT_ECHAIN, "%s: moved, but %zu of %zu references to it could not be rewritten",
                       res->dst, failed, res->n_fixes);
    return 0;
}

/* Refuse when a file to rewrite belongs to a running machine. */
int vk_move_check_unlocked(const vmdkit_move_result *res, vk_err *e)
{
    for (size_t i = 0; i < res->n_fixes; i++) {
        const char *file = res->fixes[i].file;
        if (res->fixes[i].key) {
            vk_vmx *v;
            /* an unreadable .vmx fails later, in its own fix */
            if (vk_vmx_load(file, &v, NULL) == 0) {
                int r = vk_vm_check_stopped(file, v, e);
                vk_vmx_free(v);
                if (r)
                    return r;
            }
        } else {
            char lck[PATH_MAX];
            struct stat st;
            if ((size_t)snprintf(lck, sizeof lck, "%s.lck", file) < sizeof lck && lstat(lck, &st) == 0)
                return vk_fail(e, VMDKIT_ELOCKED, "%s: VMware's lock: the disk is in use; shut its "
                               "virtual machine down first", lck);
        }
    }
    return 0;
}

/* ---- moving a folder ---- */

struct folder_plan {
    const char *src;      /* real path of the folder */
    const char *dst;      /* absolute path it moves to */
    const char *src_cur;  /* where its files are while planning (src) */
    vmdkit_move_result *res;
    size_t cap;
    char **seen;          /* real paths of files already planned */
    size_t n_seen, cap_seen;
    vk_err *e;
};

/* Where the file at real path P is after the move (a copy). */
static char *moved_path(const struct folder_plan *pl, const char *p)
{
    if (!vk_path_inside(p, pl->src))
        return vk_strdup(p, pl->e);
    size_t n = strlen(pl->dst) + strlen(p) - strlen(pl->src) + 1;
    char *m = vk_malloc(n, pl->e);
    if (m)
        snprintf(m, n, "%s%s", pl->dst, p + strlen(pl->src));
    return m;
}

/* Has the real path P been planned already (roots may overlap)? */
static int seen_before(struct folder_plan *pl, const char *p, bool *seen)
{
    *seen = false;
    for (size_t i = 0; i < pl->n_seen && !*seen; i++)
        *seen = strcmp(pl->seen[i], p) == 0;
    if (*seen)
        return 0;
    if (pl->n_seen == pl->cap_seen) {
        size_t ncap = pl->cap_seen ? pl->cap_seen * 2 : 32;
        char **ns = realloc(pl->seen, ncap * sizeof *ns);
        if (!ns)
            return vk_fail(pl->e, VMDKIT_ENOMEM, "out of memory");
        pl->seen = ns;
        pl->cap_seen = ncap;
    }
    if (!(pl->seen[pl->n_seen] = vk_strdup(p, pl->e)))
        return VMDKIT_ENOMEM;
    pl->n_seen++;
    return 0;
}

/*
 * The new value of a reference from the file at real path FROM to the
 * file at real path TO, written as OLD (relative to FROM's folder, or
 * absolute): NULL in *OUT when it needs no change.
 */
static int new_reference(const struct folder_plan *pl, const char *from, const char *to,
                         const char *old, bool vmx_style, char **out)
{
    *out = NULL;
    bool from_in = vk_path_inside(from, pl->src), to_in = vk_path_inside(to, pl->src);
    if (!from_in && !to_in)
        return 0;
    if (old[0] == '/' && !to_in)
        return 0; /* an absolute name of a file that stays */
    char *nfrom = moved_path(pl, from), *nto = moved_path(pl, to), *v = NULL;
    if (nfrom && nto) {
        if (old[0] == '/') {
            v = vk_strdup(nto, pl->e);
        } else if (vmx_style) {
            v = vk_vm_file_name_for(nfrom, nto, false, pl->e);
        } else {
            char *dir = vk_path_dirname(nfrom, pl->e);
            v = dir ? vk_path_relative(dir, nto, pl->e) : NULL;
            free(dir);
        }
    }
    free(nfrom);
    free(nto);
    if (!v)
        return VMDKIT_ENOMEM;
    if (strcmp(v, old) == 0)
        free(v);
    else
        *out = v;
    return 0;
}

/* Plan the rewrite of a reference from FROM (real) to the file named by
 * OLD; KEY is NULL for a parent hint. */
static int plan_reference(struct folder_plan *pl, const char *from, const char *key, const char *old,
                          const char *to_named)
{
    char *to = realpath(to_named, NULL);
    if (!to)
        return 0; /* already broken: nothing to follow */
    char *value;
    int r = new_reference(pl, from, to, old, key != NULL, &value);
    if (!r && value) {
        char *nfrom = moved_path(pl, from), *nto = moved_path(pl, to);
        r = nfrom && nto ? vk_move_add_fix(pl->res, &pl->cap, nfrom, key, value, nto, pl->e) : VMDKIT_ENOMEM;
        free(nfrom);
        free(nto);
        free(value);
    }
    free(to);
    return r;
}

static int plan_vmx(struct folder_plan *pl, const char *path, const char *real)
{
    vk_vmx *v;
    if (vk_vmx_load(path, &v, NULL) != 0)
        return 0; /* not a .vmx vmdkit can edit: left alone */
    vk_vmx_disk *disks = NULL;
    size_t n = 0;
    int r = vk_vmx_disks(v, &disks, &n, pl->e);
    char *dir = r ? NULL : vk_path_dirname(path, pl->e);
    if (!r && !dir)
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < n; i++) {
        char key[128], *named = vk_path_join(dir, disks[i].file, pl->e);
        if (!named) {
            r = VMDKIT_ENOMEM;
            break;
        }
        if ((size_t)snprintf(key, sizeof key, "%s.fileName", disks[i].slot) < sizeof key)
            r = plan_reference(pl, real, key, disks[i].file, named);
        free(named);
    }
    vk_vmx_disks_free(disks, n);
    /* cloneOfN: the absolute path of the .vmx a linked clone came from */
    size_t pos = 0;
    const char *key, *value;
    while (!r && vk_vmx_next(v, &pos, &key, &value))
        if (strncasecmp(key, "cloneOf", 7) == 0 && key[7] >= '0' && key[7] <= '9' && value[0] == '/')
            r = plan_reference(pl, real, key, value, value);
    free(dir);
    vk_vmx_free(v);
    return r;
}

static int plan_one(void *opaque, const char *path, enum vk_lib_kind kind, const vk_descriptor *d,
                    const char *problem)
{
    (void)problem;
    struct folder_plan *pl = opaque;
    if (kind != VK_LIB_VMX && !(kind == VK_LIB_DISK && d->parent_hint))
        return 0;
    char *real = realpath(path, NULL);
    if (!real)
        return 0;
    bool seen;
    int r = seen_before(pl, real, &seen);
    if (!r && !seen) {
        if (kind == VK_LIB_VMX) {
            r = plan_vmx(pl, path, real);
        } else {
            char *named = vk_path_resolve_parent(path, d->parent_hint, pl->e);
            r = named ? plan_reference(pl, real, NULL, d->parent_hint, named) : VMDKIT_ENOMEM;
            free(named);
        }
    }
    free(real);
    return r;
}

/* Refuse to move a folder whose machine runs or is suspended. */
static int check_folder_stopped(const char *dir, vk_err *e)
{
    int r = vk_vm_check_no_lock(dir, e);
    char *vmx = NULL;
    vk_err ignore;
    if (!r && vk_vm_resolve(dir, &vmx, &ignore) == 0) {
        vk_vmx *v;
        if (vk_vmx_load(vmx, &v, NULL) == 0) {
            r = vk_vm_check_stopped(vmx, v, e);
            vk_vmx_free(v);
        }
    }
    free(vmx);
    return r;
}

/* rename(2) SRC to DST, never replacing DST; *cross_fs (may be NULL) is set
 * when they are on different file systems (then nothing happened). */
static int do_rename(const char *src, const char *dst, bool *cross_fs, vk_err *e)
{
    if (cross_fs)
        *cross_fs = false;
    if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOSYS) {
        struct stat st;
        if (lstat(dst, &st) == 0)
            return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dst);
        if (rename(src, dst) == 0)
            return 0;
    }
    if (errno == EXDEV && cross_fs) {
        *cross_fs = true;
        return 0;
    }
    if (errno == EEXIST || errno == ENOTEMPTY)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dst);
    return vk_fail_errno(e, errno, "%s: rename to %s", src, dst);
}

/* Step (2) across file systems: copy SRC into a temporary folder beside
 * DST and rename that to DST.  COPIED receives what was copied, for the
 * removal of the source at the end. */
static int copy_folder_over(const char *src, const char *dst, vk_copied_list *copied, vk_err *e)
{
    char *parent = vk_path_dirname(dst, e);
    vk_temp_folder tf;
    if (!parent || vk_temp_folder_make(parent, vk_path_basename(dst), &tf, e)) {
        free(parent);
        return e->code ? e->code : VMDKIT_ENOMEM;
    }
    const char *tmp = tf.path;
    int r = vk_copy_tree(src, tmp, copied, NULL, e);
    /* a change made during the copy would be lost with the source */
    if (!r)
        r = vk_check_unchanged(src, copied, e);
    if (!r)
        r = vk_fsync_dir(tmp, e);
    if (!r)
        r = do_rename(tmp, dst, NULL, e);
    if (!r)
        r = vk_fsync_dir(parent, e);
    if (r) {
        /* nothing moved: the copy goes, the source stays as it was */
        vk_remove_copied(tmp, copied, false, NULL);
        rmdir(tmp);
        vk_copied_list_free(copied);
    }
    vk_temp_folder_release(&tf);
    free(parent);
    return r;
}

/* Last step across file systems: remove what was copied from SRC. */
static int remove_source(const char *src, const char *dst, const vk_copied_list *copied, vk_err *e)
{
    char *kept = NULL;
    size_t left = vk_remove_copied(src, copied, true, &kept);
    if (left == 0 && rmdir(src) != 0 && errno != ENOENT) {
        kept = vk_strdup(src, NULL);
        left = 1;
    }
    int r = 0;
    if (left)
        r = vk_fail(e, VMDKIT_EIO,
                    "%s: moved to %s, but %zu entr%s of the old folder stayed, first %s: it changed or "
                    "was added during the move; compare it with the copy and remove it by hand",
                    src, dst, left, left == 1 ? "y" : "ies", kept ? kept : src);
    else
        r = vk_fsync_parent(src, e);
    free(kept);
    return r;
}

/* DST as given, or DST/<basename of SRC> when DST is an existing folder;
 * made absolute with its parent folder's real path. */
char *vk_move_destination(const char *src_real, const char *dst, vk_err *e)
{
    struct stat st;
    char *full = stat(dst, &st) == 0 && S_ISDIR(st.st_mode)
                     ? vk_path_join(dst, vk_path_basename(src_real), e)
                     : vk_strdup(dst, e);
    char *abs = full ? vk_path_absolute(full, e) : NULL;
    free(full);
    if (!abs)
        return NULL;
    char *dir = vk_path_dirname(abs, e);
    char *rdir = dir ? realpath(dir, NULL) : NULL;
    char *out = NULL;
    if (!rdir)
        vk_fail(e, VMDKIT_ENOENT, "%s: the folder to move into does not exist", dir ? dir : abs);
    else
        out = vk_path_join(rdir, vk_path_basename(abs), e);
    free(dir);
    free(rdir);
    free(abs);
    return out;
}

/* Plan the references in the folder that will hold DST, unless that is
 * ROOT (already walked) or lies inside SRC.  A file reached twice is
 * planned once (seen_before). */
static int walk_destination_library(struct folder_plan *pl, const char *dst, const char *root,
                                    const char *src, vk_err *e)
{
    char *lib = vk_path_dirname(dst, e);
    if (!lib)
        return VMDKIT_ENOMEM;
    int r = 0;
    if (strcmp(lib, root) != 0 && strcmp(lib, src) != 0 && !vk_path_inside(lib, src))
        r = vk_lib_walk(lib, plan_one, pl, e);
    free(lib);
    return r;
}

static int move_folder(const char *src, const char *dst_arg, const char *root,
                       vmdkit_move_result *res, vk_err *e)
{
    char *src_real = realpath(src, NULL), *root_real = NULL, *root_default = NULL;
    if (!src_real)
        return vk_fail_errno(e, errno, "%s", src);
    struct folder_plan pl = { .src = src_real, .res = res, .e = e };
    vk_copied_list copied = {0};
    int r = 0;
    if (!(res->dst = vk_move_destination(src_real, dst_arg, e))) {
        r = e->code ? e->code : VMDKIT_ENOMEM;
        goto out;
    }
    pl.dst = res->dst;
    struct stat st;
    if (lstat(res->dst, &st) == 0) {
        r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists", res->dst);
        goto out;
    }
    if (strcmp(res->dst, src_real) == 0 || vk_path_inside(res->dst, src_real) ||
        strcmp(src_real, "/") == 0) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: cannot move a folder into itself (%s)", src, res->dst);
        goto out;
    }
    if ((r = check_folder_stopped(src_real, e)))
        goto out;
    if (!root && !(root_default = vk_path_dirname(src_real, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    if (!(root_real = realpath(root ? root : root_default, NULL))) {
        r = vk_fail_errno(e, errno, "%s: --root", root ? root : root_default);
        goto out;
    }
    /* the library around it, and the folder itself (its own disks' hints
     * to parents outside it change when it moves) */
    if ((r = vk_lib_walk(root_real, plan_one, &pl, e)) || (r = vk_lib_walk(src_real, plan_one, &pl, e)))
        goto out;
    /* without --root, the library it moves into too: moving a machine back
     * from another drive must reach the clones that stayed there */
    if (!root && (r = walk_destination_library(&pl, res->dst, root_real, src_real, e)))
        goto out;
    if ((r = vk_move_check_unlocked(res, e)))
        goto out;
    /* fixes name files at their new place: check those inside the folder
     * there after the rename; the folder's own locks were checked above */
    bool cross_fs;
    if ((r = do_rename(src_real, res->dst, &cross_fs, e)))
        goto out;
    if (cross_fs && (r = copy_folder_over(src_real, res->dst, &copied, e)))
        goto out;
    /* the folder moved: a failed folder sync is reported at the end, after
     * the references are rewritten (skipping those would break them) */
    vk_err sync_err = {0};
    int sync_r = cross_fs ? 0 : vk_fsync_parent(src_real, &sync_err);
    if (!sync_r)
        sync_r = vk_fsync_parent(res->dst, &sync_err);
    r = vk_move_apply_fixes(res, e);
    /* the old folder goes last, once everything names the new one; a
     * reference left unrewritten still reaches it */
    if (cross_fs && !r)
        r = remove_source(src_real, res->dst, &copied, e);
    if (!r && sync_r) {
        *e = sync_err;
        r = sync_r;
    }
out:
    vk_copied_list_free(&copied);
    for (size_t i = 0; i < pl.n_seen; i++)
        free(pl.seen[i]);
    free(pl.seen);
    free(src_real);
    free(root_real);
    free(root_default);
    return r;
}

int vmdkit_move(const char *src, const char *dst, const char *root, vmdkit_move_result *res,
                vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    e->code = 0;
    e->msg[0] = 0;
    if (!res)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_move: res is required");
    memset(res, 0, sizeof *res);
    if (!src || !dst)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_move: src and dst are required");
    struct stat st;
    if (stat(src, &st) != 0)
        return vk_fail_errno(e, errno, "%s", src);
    if (S_ISDIR(st.st_mode))
        return move_folder(src, dst, root, res, e);
    if (!S_ISREG(st.st_mode))
        return vk_fail(e, VMDKIT_EINVAL, "%s: neither a folder nor a disk", src);
    return vk_move_disk(src, dst, root, res, e);
}
