/* snapshot_delete.c - delete a snapshot as VMware does: its entry goes,
 * its children take its parent, and the disk it froze is merged with the
 * one delta that builds on it, so that everything else reads as before.
 *
 * Per slot, D is the disk the snapshot froze.  The plan, made before
 * anything is written:
 *   MERGE   D has exactly one dependent, a delta C of this machine's own
 *           history (a snapshot's disk or the way to the running state),
 *           and both lie in the machine's folder: C goes into D.
 *   REMOVE  nothing depends on D, a delta in the machine's folder.
 *   KEEP    anything else (several children, a slot or another entry
 *           naming D, a base disk, a disk outside the folder, linked
 *           clones with --force): D stays as it is.
 * Disks outside the machine's history whose parent is D or C (linked
 * clones, stray deltas), or clones the entry records, refuse the delete
 * unless forced: then D is kept for clones of D, and clones of C are
 * re-pointed at D by the merge (their content stays the same).
 *
 * Crash safety.  (1) The .vmsd without the entry (children re-parented,
 * current moved), saved atomically: from here the snapshot is deleted, and
 * every entry left names a disk that exists.  (2) Each merge writes C's
 * data into D and re-points C's children at D (vmdkit_commit, crash-safe
 * on its own: D keeps its CID and C shadows every range that changes, so
 * C and everything above it read the same at every moment; nothing reads
 * D alone any more, since the entry that did is gone).  (3) The .vmx slots
 * naming C name D, saved atomically.  (4) The .vmsd entries naming C name
 * D, saved atomically.  (5) C, the REMOVE disks and the snapshot's .vmsn
 * are removed, descriptors first.  Whatever the interruption, the .vmsd
 * names only disks that exist and every disk reads what it read before;
 * what may be left is a C that D now duplicates, still named until (3) and
 * (4) are done, or files nothing names after them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "history.h"
#include "path.h"

enum plan_kind { PLAN_MERGE, PLAN_REMOVE, PLAN_KEEP };

struct plan {
    enum plan_kind kind;
    char *disk;  /* D */
    char *file;  /* D as the entry wrote it */
    char *child; /* MERGE: C */
    char *why;   /* KEEP: the reason */
    bool merged;
};

struct delete_ctx {
    vk_history *h;
    const vmdkit_snapshot_opts *o;
    char **own; /* every link of the machine's chains: slots and snapshots */
    size_t n_own;
    char refusal[1024];
};

static void plans_free(struct plan *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].disk);
        free(p[i].file);
        free(p[i].child);
        free(p[i].why);
    }
    free(p);
}

/* KEEP, because TEXT + ARG (ARG may be NULL). */
static int set_why(struct plan *p, vk_err *e, const char *text, const char *arg)
{
    size_t n = strlen(text) + (arg ? strlen(arg) : 0) + 1;
    if (!(p->why = vk_malloc(n, e)))
        return VMDKIT_ENOMEM;
    snprintf(p->why, n, "%s%s", text, arg ? arg : "");
    p->kind = PLAN_KEEP;
    return 0;
}

static bool inside_folder(const vk_history *h, const char *path)
{
    char *abs = vk_path_absolute(path, NULL);
    bool in = abs && vk_path_inside(abs, h->folder_abs);
    free(abs);
    return in;
}

/* Record why the delete is refused (the first reason only): the four
 * parts one after the other. */
static void refuse(struct delete_ctx *c, const char *a, const char *b, const char *d, const char *f)
{
    if (!c->refusal[0])
        snprintf(c->refusal, sizeof c->refusal, "%s%s%s%s", a, b, d, f);
}

/* The dependents of C that are outside the machine's history. */
static int foreign_of(struct delete_ctx *c, const char *disk, vk_deps *foreign, vk_err *e)
{
    vk_deps all;
    foreign->v = NULL;
    foreign->n = 0;
    int r = vk_history_dependents_of(c->h, disk, &all, e);
    if (r)
        return r;
    size_t k = 0;
    for (size_t i = 0; i < all.n; i++) {
        if (all.v[i].kind == VK_DEP_DISK && !vk_path_in(all.v[i].path, c->own, c->n_own))
            all.v[k++] = all.v[i];
        else
            free(all.v[i].path);
    }
    all.n = k;
    *foreign = all;
    return 0;
}

/* The plan for the disk FILE of the snapshot X. */
static int plan_disk(struct delete_ctx *c, const vk_vmsd_snap *x, const char *file, struct plan *p,
                     vk_err *e)
{
    const vk_history *h = c->h;
    if (!(p->disk = vk_history_path(h, file, e)) || !(p->file = vk_strdup(file, e)))
        return VMDKIT_ENOMEM;
    vk_deps deps;
    int r = vk_history_dependents_of(h, p->disk, &deps, e);
    if (r)
        return r;
    char what[512];
    vk_deps own_children = {0}, foreign = {0}, pins = {0};
    for (size_t i = 0; i < deps.n; i++) {
        vk_dep *d = &deps.v[i];
        vk_deps *to;
        if (d->kind == VK_DEP_SNAPSHOT && d->uid == x->uid)
            continue; /* the entry being deleted */
        if (d->kind == VK_DEP_DISK)
            to = vk_path_in(d->path, c->own, c->n_own) ? &own_children : &foreign;
        else
            to = &pins;
        vk_dep *nv = realloc(to->v, (to->n + 1) * sizeof *nv);
        if (!nv) {
            r = vk_fail(e, VMDKIT_ENOMEM, "out of memory");
            break;
        }
        to->v = nv;
        nv[to->n++] = *d;
        d->path = NULL;
    }
    if (!r && (foreign.n || x->n_clones)) {
        if (foreign.n)
            vk_deps_describe(&foreign, what, sizeof what);
        else
            snprintf(what, sizeof what, "%s (recorded in the entry)", x->clones[0]);
        if (!c->o->force)
            refuse(c, "linked clones depend on its disk ", p->file, ": ", what);
        r = set_why(p, e, "kept for the linked clones that depend on it: ", what);
    } else if (!r && pins.n) {
        vk_deps_describe(&pins, what, sizeof what);
        r = set_why(p, e, "still named by ", what);
    } else if (!r && own_children.n >= 2) {
        vk_deps_describe(&own_children, what, sizeof what);
        r = set_why(p, e, "the parent of several deltas of the machine: ", what);
    } else if (!r && !inside_folder(h, p->disk)) {
        r = set_why(p, e, "outside the machine's folder", NULL);
    } else if (!r && own_children.n == 1) {
        const char *child = own_children.v[0].path;
        if (!inside_folder(h, child)) {
            r = set_why(p, e, "its child lies outside the machine's folder: ", child);
        } else if (!(p->child = vk_strdup(child, e))) {
            r = VMDKIT_ENOMEM;
        } else {
            p->kind = PLAN_MERGE;
            /* clones of C are re-pointed at D by the merge */
            vk_deps fc;
            if (!(r = foreign_of(c, child, &fc, e)) && fc.n) {
                vk_deps_describe(&fc, what, sizeof what);
                if (!c->o->force)
                    refuse(c, "linked clones depend on ", child,
                           ", which the delete merges into its parent: ", what);
            }
            vk_deps_free(&fc);
        }
    } else if (!r) {
        /* nothing depends on D: remove it if it is a delta of the machine */
        char **chain;
        size_t n;
        if (!(r = vk_chain_paths(p->disk, &chain, &n, e))) {
            if (n >= 2)
                p->kind = PLAN_REMOVE;
            else
                r = set_why(p, e, "a base disk", NULL);
            vmdkit_paths_free(chain, n);
        }
    }
    vk_deps_free(&deps);
    vk_deps_free(&own_children);
    vk_deps_free(&foreign);
    vk_deps_free(&pins);
    return r;
}

/* Progress over every merge. */
struct merge_progress {
    vmdkit_progress_fn fn;
    void *opaque;
    uint64_t done_before, total;
};

static int merge_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
    (void)total;
    struct merge_progress *m = opaque;
    return m->fn(m->opaque, m->done_before + done, m->total);
}

/* Record that FROM was merged into INTO. */
static int push_merge(vmdkit_snapshot_result *res, const char *from, const char *into, vk_err *e)
{
    size_t n = res->n_merged;
    char **f = realloc(res->merged_from, (n + 1) * sizeof *f);
    if (f)
        res->merged_from = f;
    char **t = f ? realloc(res->merged_into, (n + 1) * sizeof *t) : NULL;
    if (t)
        res->merged_into = t;
    if (!f || !t)
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    f[n] = vk_strdup(from, e);
    t[n] = vk_strdup(into, e);
    res->n_merged++;
    return f[n] && t[n] ? 0 : VMDKIT_ENOMEM;
}

/* The snapshot's .vmsn (and .vmem beside it), when it names a plain file
 * in the machine's folder. */
static int remove_checkpoint(const vk_history *h, const char *vmsn, vmdkit_snapshot_result *res,
                             vk_err *e)
{
    if (strchr(vmsn, '/') || vmsn[0] == '.' || !vk_path_has_suffix(vmsn, ".vmsn"))
        return 0;
    int r = 0;
    for (int k = 0; !r && k < 2; k++) {
        char *p = vk_history_path(h, vmsn, e);
        if (!p)
            return VMDKIT_ENOMEM;
        if (k == 1)
            memcpy(p + strlen(p) - 5, ".vmem", 5);
        if (unlink(p) == 0 && res)
            r = vk_strv_push(&res->removed, &res->n_removed, p, e);
        free(p);
    }
    return r;
}

int vmdkit_vm_snapshot_delete(const char *vm, const char *which, const vmdkit_snapshot_opts *opts,
                              vmdkit_snapshot_result *res, vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_snapshot_opts o;
    struct delete_ctx c = {.o = &o};
    int r = vk_snapshot_begin("vmdkit_vm_snapshot_delete", vm, true, which, opts, res, err, &local, &e,
                              &o, &c.h);
    if (r)
        return r;
    vk_history *h = c.h;
    struct plan *plans = NULL;
    size_t n = 0;
    char *vmsn = NULL, *name = NULL;
    const vk_vmsd_snap *x;
    uint32_t uid = 0;
    if ((r = vk_history_find(h, which, &x, e)) || (r = vk_history_links(h, true, &c.own, &c.n_own, e)))
        goto out;
    uid = x->uid;
    if ((x->filename && !(vmsn = vk_strdup(x->filename, e))) ||
        !(name = vk_strdup(x->display_name ? x->display_name : "", e)) ||
        !(plans = vk_calloc(x->n_disks + 1, sizeof *plans, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    for (size_t k = 0; !r && k < x->n_disks; k++) {
        const char *f = x->disks[k].file;
        char *p = f ? vk_history_path(h, f, e) : NULL;
        bool usable = p && access(p, F_OK) == 0;
        for (size_t j = 0; usable && j < n; j++)
            usable = !vk_same_file(plans[j].disk, p);
        free(p);
        if (usable) /* a disk that is gone or named twice has nothing to merge */
            r = plan_disk(&c, x, f, &plans[n++], e);
    }
    if (r)
        goto out;
    if (c.refusal[0]) {
        r = vk_fail(e, VMDKIT_ECHAIN,
                    "%s: snapshot %u \"%s\": %s; deleting it would change them (--force deletes the "
                    "entry, keeps the disks linked clones are made from as they are and re-points "
                    "the others)",
                    h->vmsd_path, uid, name, c.refusal);
        goto out;
    }
    /* the chains to merge open cleanly, so the merges will not find them broken */
    struct merge_progress mp = {.fn = o.progress, .opaque = o.progress_opaque};
    for (size_t i = 0; !r && i < n; i++) {
        if (plans[i].kind != PLAN_MERGE)
            continue;
        vmdkit_disk *d;
        if ((r = vmdkit_open(plans[i].child,
                             VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK, &d, e)))
            break;
        mp.total += vmdkit_size(d);
        vmdkit_close(d, NULL);
    }
    if (r)
        goto out;

    /* 1. the entry goes */
    if ((r = vk_vmsd_remove(h->vmsd, uid, e)) || (r = vk_vmsd_save(h->vmsd, e)))
        goto out;
    if (res)
        res->uid = uid;
    /* 2. the merges */
    int merge_r = 0;
    for (size_t i = 0; !merge_r && i < n; i++) {
        if (plans[i].kind != PLAN_MERGE)
            continue;
        vmdkit_disk *d;
        uint64_t size = 0;
        if (vmdkit_open(plans[i].child, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT | VMDKIT_OPEN_NO_LOCK,
                        &d, NULL) == 0) {
            size = vmdkit_size(d);
            vmdkit_close(d, NULL);
        }
        vmdkit_commit_opts co = {.struct_size = sizeof co,
                                 .root = h->library,
                                 .progress = mp.fn ? merge_progress_cb : NULL,
                                 .progress_opaque = &mp};
        merge_r = vmdkit_commit(plans[i].child, &co, NULL, e);
        mp.done_before += size;
        plans[i].merged = !merge_r;
    }
    /* 3. and 4. the .vmx and the .vmsd name D for each merged C */
    bool vmx_changed = false, vmsd_changed = false;
    for (size_t i = 0; !r && i < n; i++) {
        if (!plans[i].merged)
            continue;
        for (size_t s = 0; !r && s < h->n_disks; s++) {
            if (!vk_same_file(h->disks[s].path, plans[i].child))
                continue;
            char *f = vk_history_file_name(h, plans[i].disk, h->disks[s].file[0] == '/', e);
            r = f ? vk_vm_set_file_name(h->vmx, h->disks[s].slot, f, e) : VMDKIT_ENOMEM;
            free(f);
            vmx_changed = true;
        }
    }
    if (!r && vmx_changed)
        r = vk_vmx_save(h->vmx, e);
    for (size_t i = 0; !r && i < n; i++) {
        if (!plans[i].merged)
            continue;
        const vk_vmsd *s = h->vmsd;
        for (size_t j = 0; !r && j < s->n_snaps; j++)
            for (size_t k = 0; !r && k < s->snaps[j].n_disks; k++) {
                const char *f = s->snaps[j].disks[k].file;
                char *p = f ? vk_history_path(h, f, e) : NULL;
                bool names = p && vk_same_file(p, plans[i].child);
                free(p);
                if (names) {
                    /* the view is rebuilt: S and the loop bounds are read again */
                    r = vk_vmsd_set_disk_file(h->vmsd, s->snaps[j].uid, s->snaps[j].disks[k].index,
                                              plans[i].file, e);
                    vmsd_changed = true;
                }
            }
    }
    if (!r && vmsd_changed)
        r = vk_vmsd_save(h->vmsd, e);
    /* 5. what nothing names any more */
    for (size_t i = 0; !r && i < n; i++) {
        const char *gone = plans[i].merged                ? plans[i].child
                           : plans[i].kind == PLAN_REMOVE ? plans[i].disk
                                                          : NULL;
        if (gone && !(r = vk_vm_remove_disk(gone, e)) && res)
            r = vk_strv_push(&res->removed, &res->n_removed, gone, e);
        if (!r && res && plans[i].merged)
            r = push_merge(res, plans[i].child, plans[i].disk, e);
        if (!r && res && plans[i].kind == PLAN_KEEP) {
            size_t len = strlen(plans[i].disk) + strlen(plans[i].why) + 3;
            char *k = vk_malloc(len, e);
            if (!k) {
                r = VMDKIT_ENOMEM;
            } else {
                snprintf(k, len, "%s: %s", plans[i].disk, plans[i].why);
                r = vk_strv_push(&res->kept, &res->n_kept, k, e);
                free(k);
            }
        }
    }
    if (!r && vmsn)
        r = remove_checkpoint(h, vmsn, res, e);
    if (!r && merge_r)
        r = merge_r; /* E holds the merge's message */
    if (r)
        vk_err_prefix(e, "%s: snapshot %u deleted from the list, but its disks were not all merged",
                      h->vmsd_path, uid);
out:
    plans_free(plans, n);
    vmdkit_paths_free(c.own, c.n_own);
    free(vmsn);
    free(name);
    vk_history_free(h);
    return r;
}
