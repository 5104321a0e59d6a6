/* snapshot_revert.c - go back to a snapshot, as VMware does: fresh deltas
 * on the disks the snapshot froze, the .vmx re-pointed, snapshot.current
 * set, and the abandoned running state removed where nothing needs it.
 *
 * Crash safety.  (1) A new delta on each of the snapshot's disks (nothing
 * names them yet).  (2) The .vmx names the new deltas, saved atomically:
 * from here the machine runs on the snapshot's state.  (3) The .vmsd gets
 * snapshot.current = the snapshot, saved atomically.  (4) The abandoned
 * deltas are removed, each only when nothing depends on it any more,
 * descriptor first.  The .vmsd names only snapshot disks, which are never
 * removed here, so no step can leave it naming a missing disk.  An
 * interruption before (2) leaves unused deltas beside the disks; between
 * (2) and (3) a .vmsd whose current snapshot is the one before the revert
 * (`snapshot list` shows "You are here" there); after (3) abandoned deltas
 * that nothing names.  None of these loses data that the revert was to
 * keep.  A failure (not a crash) in (2) or (3) puts the old .vmx back and
 * removes the new deltas.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "history.h"
#include "path.h"

static int keep(vmdkit_snapshot_result *res, const char *path, const char *why, vk_err *e)
{
    if (!res)
        return 0;
    size_t n = strlen(path) + strlen(why) + 3;
    char *s = vk_malloc(n, e);
    if (!s)
        return VMDKIT_ENOMEM;
    snprintf(s, n, "%s: %s", path, why);
    int r = vk_strv_push(&res->kept, &res->n_kept, s, e);
    free(s);
    return r;
}

/*
 * Remove the abandoned running state of one slot: the links from OLD (the
 * disk it ran on) down to the first link of the snapshot tree (TREE), each
 * when nothing depends on it and it lies in the machine's folder.  A chain
 * that meets no link of the tree is not part of it and is kept whole.
 */
static int abandon(const vk_history *h, char *const *tree, size_t n_tree, const char *old,
                   vmdkit_snapshot_result *res, vk_err *e)
{
    char **chain;
    size_t n;
    int r = vk_chain_paths(old, &chain, &n, e);
    if (r)
        return r;
    size_t stop = n;
    for (size_t j = 0; j < n && stop == n; j++)
        if (vk_path_in(chain[j], tree, n_tree))
            stop = j;
    if (stop == n && n > 0)
        r = keep(res, chain[0], "leads to no snapshot's disk: not part of the snapshot tree", e);
    for (size_t k = 0; !r && k < stop && k < n; k++) {
        char *abs = vk_path_absolute(chain[k], e);
        if (!abs) {
            r = VMDKIT_ENOMEM;
            break;
        }
        bool inside = vk_path_inside(abs, h->folder_abs);
        free(abs);
        if (!inside) {
            r = keep(res, chain[k], "outside the machine's folder", e);
            break;
        }
        vk_deps deps;
        if ((r = vk_history_dependents_of(h, chain[k], &deps, e)))
            break;
        if (deps.n) {
            char what[512], why[600];
            vk_deps_describe(&deps, what, sizeof what);
            snprintf(why, sizeof why, "used by %s", what);
            vk_deps_free(&deps);
            r = keep(res, chain[k], why, e);
            break;
        }
        if ((r = vk_vm_remove_disk(chain[k], e)))
            break;
        if (res)
            r = vk_strv_push(&res->removed, &res->n_removed, chain[k], e);
    }
    vmdkit_paths_free(chain, n);
    return r;
}

int vmdkit_vm_snapshot_revert(const char *vm, const char *which, const vmdkit_snapshot_opts *opts,
                              vmdkit_snapshot_result *res, vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_snapshot_opts o;
    vk_history *h;
    int r = vk_snapshot_begin("vmdkit_vm_snapshot_revert", vm, true, which, opts, res, err, &local, &e,
                              &o, &h);
    if (r)
        return r;
    const vk_vmsd_snap *x;
    size_t *map = NULL, n = 0, made = 0;
    char **targets = NULL, **deltas = NULL, **old_files = NULL, **old_paths = NULL;
    bool vmx_saved = false;
    uint32_t uid = 0;
    if ((r = vk_history_find(h, which, &x, e)))
        goto out;
    uid = x->uid;
    n = x->n_disks;
    map = vk_calloc(n + 1, sizeof *map, e);
    targets = vk_calloc(n + 1, sizeof *targets, e);
    deltas = vk_calloc(n + 1, sizeof *deltas, e);
    old_files = vk_calloc(n + 1, sizeof *old_files, e);
    old_paths = vk_calloc(n + 1, sizeof *old_paths, e);
    if (!map || !targets || !deltas || !old_files || !old_paths) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    if ((r = vk_history_match_slots(h, x, map, e)))
        goto out;
    /* every disk the snapshot froze is there, with its chain intact */
    for (size_t k = 0; k < n; k++) {
        const vk_vm_disk *slot = &h->disks[map[k]];
        if (!(targets[k] = vk_history_path(h, x->disks[k].file, e)) ||
            !(old_files[k] = vk_strdup(slot->file, e)) || !(old_paths[k] = vk_strdup(slot->path, e))) {
            r = VMDKIT_ENOMEM;
            goto out;
        }
        vmdkit_disk *d;
        if ((r = vmdkit_open(targets[k],
                             VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK, &d, e))) {
            vk_err_prefix(e, "snapshot %u: %s", uid, x->disks[k].node);
            goto out;
        }
        vmdkit_close(d, NULL);
    }

    /* 1. the new deltas */
    for (; made < n; made++) {
        char p[PATH_MAX];
        if ((r = vk_vm_new_delta(h->vmx_path, targets[made], o.absolute_hint, p, sizeof p, e)))
            goto out;
        if (!(deltas[made] = vk_strdup(p, e))) {
            vk_vm_remove_disk(p, NULL);
            r = VMDKIT_ENOMEM;
            goto out;
        }
    }
    /* 2. the .vmx names them */
    for (size_t k = 0; !r && k < n; k++) {
        char *name = vk_history_file_name(h, deltas[k], old_files[k][0] == '/', e);
        r = name ? vk_vm_set_file_name(h->vmx, h->disks[map[k]].slot, name, e) : VMDKIT_ENOMEM;
        free(name);
    }
    if (r || (r = vk_vmx_save(h->vmx, e)))
        goto out;
    vmx_saved = true;
    /* 3. the .vmsd says where the machine is */
    if ((r = vk_vmsd_set_current(h->vmsd, uid, e)) || (r = vk_vmsd_save(h->vmsd, e)))
        goto out;
    vmx_saved = false; /* done: no undo from here */
    made = 0;          /* the new deltas stay */
    if (res) {
        res->uid = uid;
        for (size_t k = 0; !r && k < n; k++)
            r = vk_strv_push(&res->new_disks, &res->n_new_disks, deltas[k], e);
    }
    /* 4. what the machine ran on until now */
    char **tree = NULL;
    size_t n_tree = 0;
    if (!r && !(r = vk_history_reload(h, e)))
        r = vk_history_links(h, false, &tree, &n_tree, e);
    for (size_t k = 0; !r && k < n; k++)
        r = abandon(h, tree, n_tree, old_paths[k], res, e);
    vmdkit_paths_free(tree, n_tree);
    if (r)
        vk_err_prefix(e, "reverted to snapshot %u, but not all abandoned disks were removed", uid);
out:
    if (vmx_saved) {
        /* the old disks again, then the new deltas can go */
        vk_err ignore;
        for (size_t k = 0; k < n; k++)
            vk_vm_set_file_name(h->vmx, h->disks[map[k]].slot, old_files[k], &ignore);
        if (vk_vmx_save(h->vmx, &ignore) != 0)
            made = 0; /* the .vmx may name them still: keep them */
    }
    for (size_t k = 0; k < made; k++)
        vk_vm_remove_disk(deltas[k], NULL);
    vmdkit_paths_free(targets, n);
    vmdkit_paths_free(deltas, n);
    vmdkit_paths_free(old_files, n);
    vmdkit_paths_free(old_paths, n);
    free(map);
    vk_history_free(h);
    return r;
}
