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
#include "holders.h"
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
    vk_rewrite_array_free(res->fixes, res->n_fixes);
    free(res->dst);
    free(res->scanned);
    memset(res, 0, sizeof *res);
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
static int copy_folder_over(const char *src, const char *dst, vk_copied_list *copied,
                            vk_copy_progress *pg, vk_err *e)
{
    char *parent = vk_path_dirname(dst, e);
    vk_temp_folder tf;
    /* what a killed move to this name left is nobody's now */
    if (parent)
        (void)vk_remove_stale_temps(parent, vk_path_basename(dst), NULL, NULL);
    if (!parent || vk_temp_folder_make(parent, vk_path_basename(dst), &tf, e)) {
        free(parent);
        return e->code ? e->code : VMDKIT_ENOMEM;
    }
    const char *tmp = tf.path;
    if (pg && pg->fn)
        pg->total_bytes = vk_tree_bytes(src);
    int r = vk_copy_tree(src, tmp, copied, pg, e);
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
        vk_temp_folder_discard(&tf);
        vk_copied_list_free(copied);
        if (r == VMDKIT_ECANCELED)
            vk_fail(e, r, "%s: cancelled; nothing was moved, the partial copy was removed", src);
    }
    vk_temp_folder_release(&tf);
    free(parent);
    return r;
}

/* Last step across file systems: remove what was copied from SRC. */
/* Is the copied entry C, still as it was copied, a file that makes a
 * machine or a disk exist: a .vmx, a .vmsd or a disk's descriptor? */
static bool is_identity_file(const char *path, const vk_copied *c)
{
    struct stat st;
    if (c->dir || lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != c->st.st_ino ||
        st.st_size != c->st.st_size || st.st_mtim.tv_sec != c->st.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != c->st.st_mtim.tv_nsec)
        return false;
    if (vk_path_has_suffix(path, ".vmx") || vk_path_has_suffix(path, ".vmsd"))
        return true;
    if (!vk_path_has_suffix(path, ".vmdk"))
        return false;
    vk_descriptor d;
    bool is_disk = false;
    vk_read_descriptor(path, &d, &is_disk, NULL);
    vk_descriptor_free(&d);
    return is_disk;
}

static int remove_source(const char *src, const char *dst, const vk_copied_list *copied, vk_err *e)
{
    /* the machine's .vmx and every disk's descriptor go first: an
     * interruption then leaves extent files nothing names (tree lists them)
     * rather than a machine or a disk that looks whole and is not */
    for (size_t i = 0; i < copied->n; i++) {
        char *p = vk_path_join(src, copied->v[i].rel, NULL);
        if (p && is_identity_file(p, &copied->v[i]))
            (void)unlink(p);
        free(p);
    }
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

/* Is DIR the folder of a virtual machine (a bundle, or it holds a .vmx)? */
static bool is_machine_folder(const char *dir)
{
    if (vk_path_has_suffix(dir, ".vmwarevm"))
        return true;
    char *vmx = NULL;
    vk_err ignore;
    bool is = vk_vm_resolve(dir, &vmx, &ignore) == 0 || ignore.code == VMDKIT_EINVAL;
    free(vmx);
    return is;
}

/* Refuse when any disk inside the folder SRC is in use: VMware, QEMU, a
 * vmdkit reader or writer (a same-file-system rename would move it under
 * their feet; a copy would lose what they write after it). */
static int check_disks_unheld(const vk_lib *lib, const char *src, vk_err *e)
{
    for (size_t i = 0; i < lib->n_disks; i++) {
        char *real = realpath(lib->disks[i].path, NULL);
        bool inside = real && vk_path_inside(real, src);
        free(real);
        int r = inside ? vk_lib_check_disk_holders(lib, i, VK_NEED_EXCLUSIVE, e) : 0;
        if (r)
            return r;
    }
    return 0;
}

static int move_folder(const char *src, const char *dst_arg, const vmdkit_move_opts *o,
                       vmdkit_move_result *res, vk_err *e)
{
    const char *root = o->root;
    char *src_real = realpath(src, NULL), *dst_parent = NULL;
    if (!src_real)
        return vk_fail_errno(e, errno, "%s", src);
    vk_copied_list copied = {0};
    vk_rewrites rw = {0};
    vk_lib *lib = NULL;
    int r = 0;
    if (!(res->dst = vk_move_destination(src_real, dst_arg, e))) {
        r = e->code ? e->code : VMDKIT_ENOMEM;
        goto out;
    }
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
    if (!(dst_parent = vk_path_dirname(res->dst, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    /* mv(1) would put one machine inside another: never what is meant */
    if (is_machine_folder(src_real) && is_machine_folder(dst_parent)) {
        r = vk_fail(e, VMDKIT_EINVAL,
                    "%s: is a virtual machine's folder: moving %s into it would put one machine inside "
                    "another (name the new folder itself, e.g. %s/../%s)",
                    dst_parent, src, dst_parent, vk_path_basename(res->dst));
        goto out;
    }
    if (vk_path_has_suffix(res->dst, ".vmdk")) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: a folder cannot take a disk's name", res->dst);
        goto out;
    }
    if ((r = check_folder_stopped(src_real, e)))
        goto out;
    /* the library around the folder, the folder itself, and the library it
     * moves into: moving a machine back from another drive must reach the
     * clones that stayed */
    const char *targets[2] = {src_real, dst_parent};
    if ((r = vk_lib_load_around(root, targets, 2, &lib, e)))
        goto out;
    if ((r = check_disks_unheld(lib, src_real, e)))
        goto out;
    vk_move_map map = {.src = src_real, .dst = res->dst, .is_folder = true};
    size_t outside;
    if ((r = vk_move_plan(lib, &map, &rw, &outside, e)))
        goto out;
    if (!(res->scanned = vk_lib_describe_roots(lib, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    res->n_outside_refs = outside;
    /* the rewrites name files at their new place: those outside the folder
     * are checked now, the folder's own machine was checked above */
    if ((r = vk_rewrites_check_unlocked(&rw, e)))
        goto out;
    bool cross_fs;
    if ((r = do_rename(src_real, res->dst, &cross_fs, e)))
        goto out;
    vk_copy_progress pg = {.fn = o->progress, .opaque = o->progress_opaque};
    if (cross_fs && (r = copy_folder_over(src_real, res->dst, &copied, &pg, e)))
        goto out;
    /* the folder moved: a failed folder sync is reported at the end, after
     * the references are rewritten (skipping those would break them) */
    vk_err sync_err = {0};
    int sync_r = cross_fs ? 0 : vk_fsync_parent(src_real, &sync_err);
    if (!sync_r)
        sync_r = vk_fsync_parent(res->dst, &sync_err);
    r = vk_rewrites_apply(&rw, res->dst, e);
    /* the old folder goes last, once everything names the new one; a
     * reference left unrewritten still reaches it */
    if (cross_fs && !r)
        r = remove_source(src_real, res->dst, &copied, e);
    if (!r && sync_r) {
        *e = sync_err;
        r = sync_r;
    }
out:
    res->fixes = rw.v;
    res->n_fixes = rw.n;
    vk_copied_list_free(&copied);
    vk_lib_free(lib);
    free(dst_parent);
    free(src_real);
    return r;
}

int vmdkit_move(const char *src, const char *dst, const vmdkit_move_opts *opts, vmdkit_move_result *res,
                vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, res, sizeof *res);
    if (!res)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_move: res is required");
    if (!src || !dst)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_move: src and dst are required");
    struct stat st;
    if (stat(src, &st) != 0)
        return vk_fail_errno(e, errno, "%s", src);
    vmdkit_move_opts o;
    int r0 = vk_opts_read(&o, sizeof o, opts, "vmdkit_move_opts", e);
    if (r0)
        return r0;
    if (S_ISDIR(st.st_mode))
        return move_folder(src, dst, &o, res, e);
    if (!S_ISREG(st.st_mode))
        return vk_fail(e, VMDKIT_EINVAL, "%s: neither a folder nor a disk", src);
    return vk_move_disk(src, dst, &o, res, e);
}
