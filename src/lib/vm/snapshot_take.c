/* snapshot_take.c - take a snapshot of a machine as VMware records it, and
 * list a machine's snapshots.
 *
 * Crash safety of a take: (1) the new deltas are made (nothing names them
 * yet); (2) the .vmx names them, saved atomically: from here the machine
 * writes to them and its old disks are frozen; (3) the .vmsd gets the
 * entry naming the frozen disks, saved atomically.  An interruption before
 * (2) leaves unused deltas beside the disks; between (2) and (3) a machine
 * on new deltas with no entry for them (what VMware's own "consolidate"
 * state looks like: nothing lost, nothing named that is missing).  The
 * .vmsd is written last because it names the frozen disks: written first,
 * it would name disks the machine still writes to.  A failure (not a
 * crash) in (2) or (3) puts the old .vmx back and removes the deltas.
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "history.h"
#include "library.h"
#include "path.h"

void vmdkit_snapshot_result_free(vmdkit_snapshot_result *res)
{
    if (!res)
        return;
    vmdkit_paths_free(res->new_disks, res->n_new_disks);
    vmdkit_paths_free(res->removed, res->n_removed);
    vmdkit_paths_free(res->kept, res->n_kept);
    vmdkit_paths_free(res->merged_from, res->n_merged);
    vmdkit_paths_free(res->merged_into, res->n_merged);
    memset(res, 0, sizeof *res);
}

int64_t vk_snapshot_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int vk_snapshot_record(vk_history *h, const vk_frozen *f, const char *name, const char *description,
                       int64_t time_us, uint32_t *uid, vk_err *e)
{
    const char **files = vk_calloc(f->n + 1, sizeof *files, e);
    char **made = vk_calloc(f->n + 1, sizeof *made, e);
    int r = files && made ? 0 : VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < f->n; i++) {
        if (!f->reused[i]) {
            files[i] = f->old_files[i]; /* the disk the slot ran on, as the .vmx named it */
            continue;
        }
        /* the slot kept its empty delta: its parent is what is frozen */
        if (!(made[i] = vk_vm_file_name_for(h->vmx_path, f->old_paths[i], f->old_files[i][0] == '/', e)))
            r = VMDKIT_ENOMEM;
        files[i] = made[i];
    }
    vk_vmsd_new n = {
        .display_name = name,
        .description = description,
        .create_time_us = time_us,
        .files = files,
        .nodes = (const char *const *)f->slots,
        .n_disks = f->n,
    };
    if (!r)
        r = vk_vmsd_add(h->vmsd, &n, uid, e);
    if (made)
        vmdkit_paths_free(made, f->n);
    free(files);
    return r;
}

int vmdkit_vm_snapshot_take(const char *vm, const vmdkit_snapshot_opts *opts,
                            vmdkit_snapshot_result *res, vmdkit_error *err)
{
    vk_err local, *e;
    vk_history *h;
    vmdkit_snapshot_opts o;
    int r = vk_snapshot_begin("vmdkit_vm_snapshot_take", vm, false, NULL, opts, res, err, &local, &e, &o,
                              &h);
    if (r)
        return r;
    vk_frozen f = {0};
    bool frozen = false;
    uint32_t uid = 0;
    if (h->n_disks == 0) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: names no virtual hard disk", h->vmx_path);
        goto out;
    }
    /* what the .vmsd cannot hold is refused before anything is written */
    if ((o.name && (r = vk_vmx_encodable(h->vmsd->file, "displayName", o.name, e))) ||
        (o.description && (r = vk_vmx_encodable(h->vmsd->file, "description", o.description, e))))
        goto out;
    int64_t t = vk_snapshot_now_us();
    if ((r = vk_vm_freeze(h->vmx_path, o.absolute_hint, false, &f, e)))
        goto out;
    frozen = true;
    if ((r = vk_snapshot_record(h, &f, o.name, o.description, t, &uid, e)) ||
        (r = vk_vmsd_save(h->vmsd, e)))
        goto out;
    frozen = false; /* recorded: the deltas stay */
    if (res) {
        res->uid = uid;
        res->new_disks = f.new_paths;
        res->n_new_disks = f.n;
        f.new_paths = NULL;
        for (size_t i = 0; i < f.n; i++) {
            free(f.slots[i]);
            free(f.old_files[i]);
            free(f.old_paths[i]);
        }
        f.n = 0;
    }
out:
    if (r && frozen) {
        vk_err ignore;
        vk_vm_unfreeze(h->vmx_path, &f, &ignore);
    }
    vk_vm_freeze_free(&f);
    vk_history_free(h);
    return r;
}

/* ---- the list ---- */

void vmdkit_snapshot_list_free(vmdkit_snapshot_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        vmdkit_snapshot_info *s = &list->snapshots[i];
        free(s->name);
        free(s->description);
        free(s->vmsn);
        for (size_t k = 0; k < s->n_disks; k++) {
            free(s->disks[k].node);
            free(s->disks[k].file);
        }
        free(s->disks);
        vmdkit_paths_free(s->clones, s->n_clones);
    }
    free(list->snapshots);
    free(list->vmsd);
    free(list);
}

/* A copy of S, or NULL for NULL; *R gets VMDKIT_ENOMEM on failure. */
static char *dup_or_null(const char *s, int *r, vk_err *e)
{
    if (!s)
        return NULL;
    char *c = vk_strdup(s, e);
    if (!c)
        *r = VMDKIT_ENOMEM;
    return c;
}

static int fill_list(const vk_vmsd *s, const char *path, vmdkit_snapshot_list *l, vk_err *e)
{
    l->exists = s->existed;
    l->last_uid = s->last_uid;
    l->has_current = s->has_current;
    l->current = s->current;
    if (!(l->vmsd = vk_strdup(path, e)) ||
        !(l->snapshots = vk_calloc(s->n_snaps + 1, sizeof *l->snapshots, e)))
        return VMDKIT_ENOMEM;
    int r = 0;
    for (size_t i = 0; !r && i < s->n_snaps; i++, l->n++) {
        const vk_vmsd_snap *sn = &s->snaps[i];
        vmdkit_snapshot_info *o = &l->snapshots[i];
        o->uid = sn->uid;
        o->has_parent = sn->has_parent;
        o->parent = sn->parent;
        o->has_time = sn->has_time;
        o->create_time_us = sn->create_time_us;
        o->current = s->has_current && s->current == sn->uid;
        o->name = dup_or_null(sn->display_name, &r, e);
        o->description = dup_or_null(sn->description, &r, e);
        o->vmsn = dup_or_null(sn->filename, &r, e);
        if (!r && !(o->disks = vk_calloc(sn->n_disks + 1, sizeof *o->disks, e)))
            r = VMDKIT_ENOMEM;
        for (size_t k = 0; !r && k < sn->n_disks; k++, o->n_disks++) {
            o->disks[k].node = dup_or_null(sn->disks[k].node, &r, e);
            o->disks[k].file = dup_or_null(sn->disks[k].file, &r, e);
        }
        for (size_t k = 0; !r && k < sn->n_clones; k++)
            r = vk_strv_push(&o->clones, &o->n_clones, sn->clones[k], e);
    }
    return r;
}

/* Add to C the clone at CLONE unless it is there (by file identity for
 * paths that exist, else by name). */
static int add_clone(vmdkit_snapshot_info *o, const char *clone, vk_err *e)
{
    for (size_t i = 0; i < o->n_clones; i++)
        if (strcmp(o->clones[i], clone) == 0 || vk_same_file(o->clones[i], clone))
            return 0;
    return vk_strv_push(&o->clones, &o->n_clones, clone, e);
}

/*
 * The linked clones the library around the machine at VMX holds of each
 * snapshot's disks: disks outside the machine's folder whose parent hint
 * names one, each shown by the .vmx of the machine running on it, else by
 * its own path.  What cannot be read is left out: the list is of the
 * .vmsd; these are what the library adds to it.
 */
static int found_clones(const char *vmx, vmdkit_snapshot_list *l, vk_err *e)
{
    struct stat st;
    if (stat(vmx, &st) != 0)
        return 0;
    vk_lib *lib;
    vk_err why = {0};
    const char *targets[1] = {vmx};
    if (vk_lib_load_around(NULL, targets, 1, &lib, &why) != 0)
        return why.code == VMDKIT_ENOMEM ? vk_fail(e, VMDKIT_ENOMEM, "out of memory") : 0;
    char *abs = vk_path_absolute(vmx, e);
    char *folder = abs ? vk_path_dirname(abs, e) : NULL;
    int r = folder ? 0 : VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < l->n; i++) {
        vmdkit_snapshot_info *o = &l->snapshots[i];
        for (size_t k = 0; !r && k < o->n_disks; k++) {
            char *disk = o->disks[k].file ? vk_path_join(folder, o->disks[k].file, e) : NULL;
            size_t *idx = NULL, n = 0;
            if (o->disks[k].file && !disk)
                r = VMDKIT_ENOMEM;
            else if (disk)
                r = vk_lib_refs_to(lib, disk, VK_REFS(VK_REF_PARENT), &idx, &n, e);
            for (size_t j = 0; !r && j < n; j++) {
                size_t hd = lib->refs[idx[j]].holder_disk;
                if (hd == VK_LIB_NONE || vk_path_inside(lib->disks[hd].path, folder))
                    continue; /* the machine's own history */
                size_t *on = NULL, m = 0;
                r = vk_lib_refs_to(lib, lib->disks[hd].path, VK_REFS(VK_REF_VM_DISK), &on, &m, e);
                const char *shown = m ? lib->refs[on[0]].file : lib->disks[hd].path;
                if (!r)
                    r = add_clone(o, shown, e);
                free(on);
            }
            free(idx);
            free(disk);
        }
    }
    free(folder);
    free(abs);
    vk_lib_free(lib);
    return r;
}

static bool is_vmsd_file(const char *path)
{
    struct stat st;
    return vk_path_has_suffix(path, ".vmsd") && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int vmdkit_vm_snapshot_list(const char *vm, vmdkit_snapshot_list **out, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    if (!vm || !out)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_vm_snapshot_list: vm and out are required");
    *out = NULL;
    char *path = NULL, *vmx_of = NULL;
    int r = 0;
    if (is_vmsd_file(vm)) {
        /* the machine beside it: NAME.vmx for NAME.vmsd */
        size_t n = strlen(vm);
        if (!(path = vk_strdup(vm, e)) || !(vmx_of = vk_strdup(vm, e)))
            r = VMDKIT_ENOMEM;
        else
            memcpy(vmx_of + n - 5, ".vmx", 5);
    } else if (!(r = vk_vm_resolve(vm, &vmx_of, e)) && !(path = vk_vmsd_path_for(vmx_of, e))) {
        r = VMDKIT_ENOMEM;
    }
    vk_vmsd *s = NULL;
    vmdkit_snapshot_list *l = NULL;
    if (!r)
        r = vk_vmsd_load(path, &s, e);
    if (!r && !(l = vk_calloc(1, sizeof *l, e)))
        r = VMDKIT_ENOMEM;
    if (!r)
        r = fill_list(s, path, l, e);
    if (!r)
        r = found_clones(vmx_of, l, e);
    if (r) {
        vmdkit_snapshot_list_free(l);
    } else {
        *out = l;
    }
    vk_vmsd_free(s);
    free(path);
    free(vmx_of);
    return r;
}
