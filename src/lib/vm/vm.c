/* vm.c - a virtual machine as a folder and a .vmx: finding the .vmx,
 * refusing machines that run or are suspended, listing their disks, and
 * snapshotting all of them at once. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "create.h"
#include "holders.h"
#include "link.h"
#include "path.h"
#include "scan.h"
#include "vm.h"

/* ---- finding the .vmx ---- */

/* The single *.vmx regular file directly inside DIR. */
static int find_vmx_in(const char *dir, char **out, vk_err *e)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return vk_fail_errno(e, errno, "%s: open folder", dir);
    char *found = NULL, *second = NULL;
    struct dirent *de;
    int r = 0;
    while (!r && (de = readdir(dh))) {
        if (!vk_path_has_suffix(de->d_name, ".vmx"))
            continue;
        char *p = vk_path_join(dir, de->d_name, e);
        struct stat st;
        if (!p) {
            r = VMDKIT_ENOMEM;
        } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (!found) {
                found = p;
                p = NULL;
            } else if (!second) {
                second = p;
                p = NULL;
            }
        }
        free(p);
    }
    closedir(dh);
    if (!r && !found)
        r = vk_fail(e, VMDKIT_ENOENT, "%s: no .vmx file in this folder: not a virtual machine", dir);
    else if (!r && second)
        r = vk_fail(e, VMDKIT_EINVAL, "%s: holds several .vmx files (%s, %s ...): name the one to use",
                    dir, vk_path_basename(found), vk_path_basename(second));
    free(second);
    if (r) {
        free(found);
        return r;
    }
    *out = found;
    return 0;
}

int vk_vm_resolve(const char *vm, char **vmx_path, vk_err *e)
{
    *vmx_path = NULL;
    struct stat st;
    if (stat(vm, &st) != 0)
        return vk_fail_errno(e, errno, "%s: virtual machine", vm);
    if (S_ISDIR(st.st_mode))
        return find_vmx_in(vm, vmx_path, e);
    if (!S_ISREG(st.st_mode) || !vk_path_has_suffix(vm, ".vmx"))
        return vk_fail(e, VMDKIT_EINVAL, "%s: not a virtual machine (a folder or a .vmx file)", vm);
    *vmx_path = vk_strdup(vm, e);
    return *vmx_path ? 0 : VMDKIT_ENOMEM;
}

int vmdkit_vm_find_vmx(const char *vm, char **vmx_path, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    if (!vm || !vmx_path)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_vm_find_vmx: vm and vmx_path are required");
    return vk_vm_resolve(vm, vmx_path, e);
}

bool vmdkit_is_vm_path(const char *path)
{
    struct stat st;
    if (!path)
        return false;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return true;
    /* a bundle that does not exist is still meant as a machine */
    char trimmed[PATH_MAX];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n >= sizeof trimmed)
        return false;
    memcpy(trimmed, path, n);
    trimmed[n] = 0;
    return vk_path_has_suffix(trimmed, ".vmx") || vk_path_has_suffix(trimmed, ".vmwarevm");
}

/* ---- running or suspended machines ---- */

/* A file of FOLDER whose name ends in SUFFIX is VMDKIT_ELOCKED "FOLDER/NAME: WHY". */
static int refuse_suffix(const char *folder, const char *suffix, const char *why, vk_err *e)
{
    DIR *dh = opendir(folder);
    if (!dh)
        return vk_fail_errno(e, errno, "%s: open folder", folder);
    int r = 0;
    struct dirent *de;
    while (!r && (de = readdir(dh)))
        if (vk_path_has_suffix(de->d_name, suffix))
            r = vk_fail(e, VMDKIT_ELOCKED, "%s/%s: %s", folder, de->d_name, why);
    closedir(dh);
    return r;
}

int vk_vm_check_no_lock(const char *folder, vk_err *e)
{
    return refuse_suffix(folder, ".lck",
                         "VMware's lock: the virtual machine is running (or was not shut down "
                         "cleanly); shut it down first",
                         e);
}

int vk_vm_check_stopped(const char *vmx_path, const vk_vmx *v, vk_err *e)
{
    char *folder = vk_path_dirname(vmx_path, e);
    if (!folder)
        return VMDKIT_ENOMEM;
    int r = vk_vm_check_no_lock(folder, e);
    if (!r)
        r = refuse_suffix(folder, ".vmss",
                          "the virtual machine is suspended; resume and shut it down first", e);
    static const char *const state_keys[] = {"checkpoint.vmState", "suspend.vmState"};
    for (size_t i = 0; !r && i < sizeof state_keys / sizeof state_keys[0]; i++) {
        const char *state = vk_vmx_get(v, state_keys[i]);
        if (!state || !*state)
            continue; /* VMware leaves the key empty after a resume */
        char *p = vk_path_join(folder, state, e);
        struct stat st;
        if (!p)
            r = VMDKIT_ENOMEM;
        else if (stat(p, &st) == 0)
            r = vk_fail(e, VMDKIT_ELOCKED,
                        "%s: %s: the virtual machine is suspended (state in %s); resume and shut "
                        "it down first",
                        vmx_path, state_keys[i], p);
        free(p);
    }
    /* a disk outside the folder has its own lock folder next to it */
    vk_vmx_disk *disks = NULL;
    size_t n = 0;
    if (!r && !(r = vk_vmx_disks(v, &disks, &n, e))) {
        for (size_t i = 0; !r && i < n; i++) {
            char *p = vk_path_join(folder, disks[i].file, e);
            size_t len = p ? strlen(p) + 5 : 0;
            char *lck = p ? vk_malloc(len, e) : NULL;
            struct stat st;
            if (!lck) {
                r = VMDKIT_ENOMEM;
            } else {
                snprintf(lck, len, "%s.lck", p);
                if (lstat(lck, &st) == 0)
                    r = vk_fail(e, VMDKIT_ELOCKED,
                                "%s: VMware's lock: the disk is in use; shut the virtual machine "
                                "down first",
                                lck);
            }
            free(lck);
            free(p);
        }
    }
    vk_vmx_disks_free(disks, n);
    free(folder);
    return r;
}

int vmdkit_vm_check_stopped(const char *vmx_path, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    vk_vmx *v;
    int r = vk_vmx_load(vmx_path, &v, e);
    if (r)
        return r;
    r = vk_vm_check_stopped(vmx_path, v, e);
    vk_vmx_free(v);
    return r;
}

/* ---- the disks of a machine ---- */

void vk_vm_disks_free(vk_vm_disk *disks, size_t n)
{
    for (size_t i = 0; disks && i < n; i++) {
        free(disks[i].slot);
        free(disks[i].file);
        free(disks[i].path);
    }
    free(disks);
}

int vk_vm_load(const char *vmx_path, vk_vmx **out, vk_vm_disk **disks, size_t *n, vk_err *e)
{
    *out = NULL;
    *disks = NULL;
    *n = 0;
    vk_vmx *v;
    int r = vk_vmx_load(vmx_path, &v, e);
    if (r)
        return r;
    vk_vmx_disk *vd;
    size_t nd;
    if ((r = vk_vmx_disks(v, &vd, &nd, e))) {
        vk_vmx_free(v);
        return r;
    }
    vk_vm_disk *d = vk_calloc(nd ? nd : 1, sizeof *d, e);
    char *folder = vk_path_dirname(vmx_path, e);
    r = d && folder ? 0 : VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < nd; i++) {
        d[i].slot = vd[i].slot;
        d[i].file = vd[i].file;
        vd[i].slot = vd[i].file = NULL;
        if (!(d[i].path = vk_path_join(folder, d[i].file, e)))
            r = VMDKIT_ENOMEM;
    }
    vk_vmx_disks_free(vd, nd);
    free(folder);
    if (r) {
        vk_vm_disks_free(d, nd);
        vk_vmx_free(v);
        return r;
    }
    *out = v;
    *disks = d;
    *n = nd;
    return 0;
}

char *vk_vm_file_name_for(const char *vmx_path, const char *disk_path, bool absolute, vk_err *e)
{
    if (absolute)
        return vk_path_absolute(disk_path, e);
    char *folder = vk_path_dirname(vmx_path, e);
    char *rel = folder ? vk_path_relative(folder, disk_path, e) : NULL;
    free(folder);
    return rel;
}

int vk_vm_remove_disk(const char *path, vk_err *e)
{
    vmdkit_disk *d;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT | VMDKIT_OPEN_NO_LOCK, &d, e);
    if (r)
        return r;
    vk_link *l = d->top;
    size_t n = 0;
    char **files = vk_calloc(l->n_ext + 1, sizeof *files, e);
    if (files) {
        files[n++] = vk_strdup(l->path, e);
        for (size_t i = 0; i < l->n_ext; i++)
            if (l->ext[i].path && !vk_same_file(l->ext[i].path, l->path))
                files[n++] = vk_strdup(l->ext[i].path, e);
    }
    vmdkit_close(d, NULL);
    if (!files)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (files[i] && unlink(files[i]) != 0 && errno != ENOENT && !r)
            r = vk_fail_errno(e, errno, "%s: remove", files[i]);
        free(files[i]);
    }
    free(files);
    return r;
}

/* ---- snapshot of a whole machine ---- */

void vk_vm_freeze_free(vk_frozen *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->slots[i]);
        free(f->old_files[i]);
        free(f->old_paths[i]);
        free(f->new_paths[i]);
    }
    free(f->slots);
    free(f->old_files);
    free(f->old_paths);
    free(f->new_paths);
    free(f->reused);
    memset(f, 0, sizeof *f);
}

/* Refuse a machine whose disks cannot be snapshotted safely: a broken
 * chain, or two slots naming one file. */
static int check_disks(const vk_vm_disk *disks, size_t n, vk_err *e)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (vk_same_file(disks[i].path, disks[j].path))
                return vk_fail(e, VMDKIT_EINVAL, "%s: %s and %s name the same disk %s", disks[i].path,
                               disks[j].slot, disks[i].slot, disks[i].file);
        vmdkit_disk *d;
        int r = vmdkit_open(disks[i].path, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY, &d, e);
        if (r) {
            vk_err_prefix(e, "%s", disks[i].slot);
            return r;
        }
        /* what becomes a frozen parent must not be changing under QEMU,
         * VMware or another vmdkit */
        r = vk_disk_check_no_writer(d, e);
        vmdkit_close(d, NULL);
        if (r)
            return r;
    }
    return 0;
}

int vk_vm_set_file_name(vk_vmx *v, const char *slot, const char *value, vk_err *e)
{
    char key[128];
    if ((size_t)snprintf(key, sizeof key, "%s.fileName", slot) >= sizeof key)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: %s: slot name too long", vk_vmx_path(v), slot);
    return vk_vmx_set(v, key, value, e);
}

size_t vk_vm_disk_stem(const char *name)
{
    size_t len = strlen(name);
    if (vk_path_has_suffix(name, ".vmdk"))
        len -= 5;
    if (len > 7 && name[len - 7] == '-' && strspn(name + len - 6, "0123456789") >= 6)
        len -= 7;
    return len;
}

int vk_vm_new_delta(const char *vmx_path, const char *disk, bool absolute_hint, char *out,
                    size_t out_size, vk_err *e)
{
    char *folder = vk_path_dirname(vmx_path, e), *disk_dir = vk_path_dirname(disk, e);
    char *rf = folder ? realpath(folder, NULL) : NULL, *rd = disk_dir ? realpath(disk_dir, NULL) : NULL;
    bool beside = !rf || !rd || strcmp(rf, rd) == 0;
    free(rf);
    free(rd);
    free(disk_dir);
    if (beside) {
        free(folder);
        return vk_snapshot_beside(disk, absolute_hint ? VMDKIT_DELTA_ABSOLUTE_HINT : 0, out, out_size,
                                  e);
    }
    const char *base = vk_path_basename(disk);
    size_t len = vk_vm_disk_stem(base);
    int r = VMDKIT_EEXIST;
    for (unsigned k = 1; k <= 999999 && r == VMDKIT_EEXIST; k++) {
        char s001[PATH_MAX];
        struct stat st;
        int n = snprintf(out, out_size, "%s/%.*s-%06u.vmdk", folder, (int)len, base, k);
        if (n < 0 || (size_t)n >= out_size || (size_t)n + 5 >= sizeof s001) {
            r = vk_fail(e, VMDKIT_ELIMIT, "%s: path too long", disk);
            break;
        }
        snprintf(s001, sizeof s001, "%.*s-s001.vmdk", n - 5, out);
        if (lstat(out, &st) == 0 || lstat(s001, &st) == 0)
            continue;
        r = vmdkit_create_delta(disk, out, absolute_hint ? VMDKIT_DELTA_ABSOLUTE_HINT : 0, e);
    }
    if (r == VMDKIT_EEXIST)
        vk_fail(e, r, "%s: no free snapshot number in %s", disk, folder);
    free(folder);
    return r;
}

/* Is the disk at PATH a delta that stores nothing (every sector reads from
 * its parent)?  *PARENT receives its parent's path when it is. */
static int empty_delta(const char *path, char **parent, vk_err *e)
{
    *parent = NULL;
    vmdkit_disk *d;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT, &d, e);
    if (r)
        return r;
    vmdkit_block_status st;
    if (d->top->desc.parent_hint && vmdkit_block_status_at(d, vmdkit_size(d), 0, &st) == 0 &&
        st.alloc == VMDKIT_ALLOC_UNALLOC && st.length == vmdkit_size(d) &&
        !(*parent = vk_path_resolve_parent(path, d->top->desc.parent_hint, e)))
        r = VMDKIT_ENOMEM;
    vmdkit_close(d, NULL);
    return r;
}

int vk_vm_freeze(const char *vmx_path, bool absolute_hint, bool reuse_empty, vk_frozen *f, vk_err *e)
{
    memset(f, 0, sizeof *f);
    vk_vmx *v;
    vk_vm_disk *disks;
    size_t n;
    int r = vk_vm_load(vmx_path, &v, &disks, &n, e);
    if (r)
        return r;
    if (!(r = vk_vm_check_stopped(vmx_path, v, e)) && !(r = check_disks(disks, n, e))) {
        f->slots = vk_calloc(n + 1, sizeof *f->slots, e);
        f->old_files = vk_calloc(n + 1, sizeof *f->old_files, e);
        f->old_paths = vk_calloc(n + 1, sizeof *f->old_paths, e);
        f->new_paths = vk_calloc(n + 1, sizeof *f->new_paths, e);
        f->reused = vk_calloc(n + 1, sizeof *f->reused, e);
        if (!f->slots || !f->old_files || !f->old_paths || !f->new_paths || !f->reused)
            r = VMDKIT_ENOMEM;
    }
    bool changed = false;
    for (size_t i = 0; !r && i < n; i++) {
        char newp[PATH_MAX];
        char *kept_parent = NULL;
        if (reuse_empty && (r = empty_delta(disks[i].path, &kept_parent, e)))
            break;
        if (kept_parent) {
            /* nothing was written since the last freeze: the parent it has
             * is frozen already and reads the same */
            f->slots[i] = disks[i].slot;
            f->old_files[i] = disks[i].file;
            f->old_paths[i] = kept_parent;
            f->new_paths[i] = disks[i].path;
            f->reused[i] = true;
            disks[i].slot = disks[i].file = disks[i].path = NULL;
            f->n++;
            continue;
        }
        if ((r = vk_vm_new_delta(vmx_path, disks[i].path, absolute_hint, newp, sizeof newp, e)))
            break;
        changed = true;
        f->slots[i] = disks[i].slot;
        f->old_files[i] = disks[i].file;
        f->old_paths[i] = disks[i].path;
        disks[i].slot = disks[i].file = disks[i].path = NULL;
        f->n++;
        if (!(f->new_paths[i] = vk_strdup(newp, e))) {
            vk_vm_remove_disk(newp, NULL);
            r = VMDKIT_ENOMEM;
            break;
        }
        char *name = vk_vm_file_name_for(vmx_path, newp, f->old_files[i][0] == '/', e);
        r = name ? vk_vm_set_file_name(v, f->slots[i], name, e) : VMDKIT_ENOMEM;
        free(name);
    }
    /* the .vmx goes last: until it is saved the machine uses its old disks */
    if (!r && changed)
        r = vk_vmx_save(v, e);
    if (r) {
        for (size_t i = 0; i < f->n; i++)
            if (f->new_paths[i] && !f->reused[i])
                vk_vm_remove_disk(f->new_paths[i], NULL);
        vk_vm_freeze_free(f);
    }
    vk_vm_disks_free(disks, n);
    vk_vmx_free(v);
    return r;
}

int vk_vm_unfreeze(const char *vmx_path, const vk_frozen *f, vk_err *e)
{
    vk_vmx *v;
    int r = vk_vmx_load(vmx_path, &v, e);
    if (r)
        return r;
    bool changed = false;
    for (size_t i = 0; !r && i < f->n; i++)
        if (!f->reused[i]) {
            r = vk_vm_set_file_name(v, f->slots[i], f->old_files[i], e);
            changed = true;
        }
    if (!r && changed)
        r = vk_vmx_save(v, e);
    vk_vmx_free(v);
    /* the deltas go only once nothing names them */
    for (size_t i = 0; !r && i < f->n; i++)
        if (!f->reused[i])
            r = vk_vm_remove_disk(f->new_paths[i], e);
    return r;
}
