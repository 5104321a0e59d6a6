/* commit.c - merge a delta into its parent.
 *
 * Crash safety.  The chain is PARENT <- DELTA (<- children of DELTA).
 *   1. Every range DELTA stores (data or zeroed grains) is written into
 *      PARENT, and PARENT is flushed.  PARENT keeps its CID while this
 *      happens, so PARENT+DELTA stays a valid chain throughout and reads the
 *      same content: DELTA covers every range that changed in PARENT.
 *   2. Each child of DELTA is re-pointed at PARENT (hint and parentCID,
 *      one atomic descriptor rewrite per child).  A child read through
 *      PARENT now sees DELTA's data already in PARENT, so the content is
 *      the same whichever way the child points.
 *   3. With --delete, every .vmx slot (and clone sentinel) naming DELTA is
 *      re-pointed at PARENT (one atomic write each), then DELTA's
 *      descriptor is removed, then its extents.
 * An interruption at any point therefore leaves the old chain or the new
 * one, both valid and with the same content.
 *
 * PARENT's CID is left unchanged because, unless forced, nothing else
 * depends on it.  When the commit is forced past other dependents of
 * PARENT, PARENT gets a new CID after step 2 so those dependents see the
 * change instead of reading merged data silently; the re-pointed children
 * were stamped with that CID in step 2, and an interruption between the
 * two leaves them with a parentCID that `vmdkit rebase -u` repairs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "copy.h"
#include "create.h"
#include "holders.h"
#include "link.h"
#include "path.h"
#include "vm/library.h"
#include "vm/rewrite.h"

#define COPY_BYTES (4u << 20)

struct delta_copy {
    vk_link *l;
    vmdkit_disk *parent;
    uint8_t *buf;
};

/* One run of the delta into the parent. */
static int copy_run(void *ctx, uint64_t s, uint64_t run, int alloc, vk_err *e)
{
    struct delta_copy *c = ctx;
    int r = 0;
    if (alloc == VMDKIT_ALLOC_ZERO) {
        /* zeroed grains hide the parent: the parent must read zeros there */
        if ((r = vmdkit_pzero(c->parent, (size_t)(run * VK_SECTOR), s * VK_SECTOR)))
            *e = *vmdkit_last_error(c->parent);
    } else if (alloc == VMDKIT_ALLOC_DATA) {
        for (uint64_t done = 0; !r && done < run;) {
            uint64_t n = vk_min(run - done, COPY_BYTES / VK_SECTOR);
            if ((r = vk_link_read(c->l, s + done, n, c->buf, e)))
                break;
            if ((r = vmdkit_pwrite(c->parent, c->buf, (size_t)(n * VK_SECTOR), (s + done) * VK_SECTOR)))
                *e = *vmdkit_last_error(c->parent);
            done += n;
        }
    }
    return r;
}

static int copy_delta_into(vmdkit_disk *delta, vmdkit_disk *parent, vmdkit_progress_fn progress,
                           void *opaque, vk_err *e)
{
    struct delta_copy c = {.l = delta->top, .parent = parent};
    if (!(c.buf = vk_aligned_alloc(COPY_BYTES, e)))
        return VMDKIT_ENOMEM;
    int r = vk_walk_runs(c.l, copy_run, &c, progress, opaque, e);
    free(c.buf);
    return r;
}

/* Point CHILD at PARENT_PATH with PARENT_CID (one atomic descriptor write). */
static int repoint_child(const char *child, const char *parent_path, uint32_t parent_cid, vk_err *e)
{
    vmdkit_disk *c;
    int r = vmdkit_open(child, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_PARENT | VK_OPEN_KEEP_CID, &c, e);
    if (r)
        return r;
    char *hint;
    if (!(r = vk_parent_hint_for(child, parent_path,
                                 c->top->desc.parent_hint && c->top->desc.parent_hint[0] == '/', &hint,
                                 e))) {
        free(c->top->desc.parent_hint);
        c->top->desc.parent_hint = hint;
        c->top->desc.parent_cid = parent_cid;
        r = vk_link_write_descriptor(c->top, e);
    }
    int rc = vmdkit_close(c, r ? NULL : e);
    return r ? r : rc;
}

/* Files of the link at PATH: the descriptor first, then its extents. */
static int link_files(const char *path, char ***files, size_t *n, vk_err *e)
{
    vmdkit_disk *d;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT | VMDKIT_OPEN_NO_LOCK, &d, e);
    if (r)
        return r;
    vk_link *l = d->top;
    char **f = vk_calloc(l->n_ext + 1, sizeof *f, e);
    size_t k = 0;
    if (f) {
        f[k++] = strdup(l->path);
        for (size_t i = 0; i < l->n_ext; i++)
            if (l->ext[i].path && !vk_same_file(l->ext[i].path, l->path))
                f[k++] = strdup(l->ext[i].path);
    }
    vmdkit_close(d, NULL);
    if (!f)
        return VMDKIT_ENOMEM;
    *files = f;
    *n = k;
    return 0;
}

void vmdkit_commit_result_free(vmdkit_commit_result *res)
{
    if (!res)
        return;
    vk_rewrite_array_free(res->rewrites, res->n_rewrites);
    free(res->scanned);
    memset(res, 0, sizeof *res);
}

/* What the library says about the commit of DELTA into PARENT. */
struct plan {
    vk_lib *lib;
    size_t delta, parent; /* disk indices */
    size_t *others;       /* references that depend on PARENT, besides DELTA's hint */
    size_t n_others;
    size_t *children; /* PARENT references to DELTA: its children */
    size_t n_children;
    size_t *users; /* VM_DISK and SENTINEL references to DELTA */
    size_t n_users;
    size_t *frozen_by; /* SNAPSHOT_DISK references to DELTA */
    size_t n_frozen_by;
};

static void plan_free(struct plan *p)
{
    free(p->others);
    free(p->children);
    free(p->users);
    free(p->frozen_by);
    vk_lib_free(p->lib);
}

/* Keep the entries of IDX[0..*N) other than the hint held by disk D. */
static void drop_own_hint(const vk_lib *lib, size_t *idx, size_t *n, size_t d)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!(lib->refs[idx[i]].kind == VK_REF_PARENT && lib->refs[idx[i]].holder_disk == d))
            idx[k++] = idx[i];
    *n = k;
}

static int make_plan(const char *path, const char *ppath, const char *root, unsigned flags,
                     struct plan *p, vk_err *e)
{
    const char *targets[2] = {ppath, path};
    int r = vk_lib_load_around(root, targets, 2, &p->lib, e);
    if (r)
        return r;
    p->delta = vk_lib_disk_at(p->lib, path);
    p->parent = vk_lib_disk_at(p->lib, ppath);
    if (p->delta == VK_LIB_NONE || p->parent == VK_LIB_NONE)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: not a disk of its own (an extent of another disk?)",
                       p->delta == VK_LIB_NONE ? path : ppath);
    if ((r = vk_lib_refs_to_disk(p->lib, p->parent, VK_REFS_DEPENDENT, &p->others, &p->n_others, e)) ||
        (r = vk_lib_refs_to(p->lib, p->lib->disks[p->delta].path, VK_REFS(VK_REF_PARENT), &p->children,
                            &p->n_children, e)) ||
        (r = vk_lib_refs_to(p->lib, p->lib->disks[p->delta].path,
                            VK_REFS(VK_REF_VM_DISK) | VK_REFS(VK_REF_SENTINEL), &p->users, &p->n_users,
                            e)) ||
        (r = vk_lib_refs_to(p->lib, p->lib->disks[p->delta].path, VK_REFS(VK_REF_SNAPSHOT_DISK),
                            &p->frozen_by, &p->n_frozen_by, e)))
        return r;
    drop_own_hint(p->lib, p->others, &p->n_others, p->delta);
    if (p->n_others && !(flags & VMDKIT_COMMIT_FORCE)) {
        char *list = vk_lib_describe_refs(p->lib, p->others, p->n_others, e);
        if (!list)
            return VMDKIT_ENOMEM;
        bool snapshot = false;
        for (size_t i = 0; i < p->n_others; i++)
            snapshot = snapshot || p->lib->refs[p->others[i]].kind == VK_REF_SNAPSHOT_DISK;
        r = vk_fail(
            e, VMDKIT_ECHAIN,
            "%s: parent %s has %zu other dependent(s): %s; committing would change what they read "
            "(%s)",
            path, ppath, p->n_others, list,
            snapshot ? "to merge a VMware snapshot use vmdkit snapshot delete; or --force"
                     : "use --force");
        free(list);
        return r;
    }
    if ((flags & VMDKIT_COMMIT_DELETE) && p->n_frozen_by) {
        char *list = vk_lib_describe_refs(p->lib, p->frozen_by, p->n_frozen_by, e);
        if (!list)
            return VMDKIT_ENOMEM;
        r = vk_fail(e, VMDKIT_ECHAIN, "%s: holds the state of %s: deleting it would lose that snapshot",
                    path, list);
        free(list);
        return r;
    }
    /* nobody may write the delta (its content is what is merged) and, with
     * --delete, nobody may have it open; nobody may use the parent */
    if ((r = vk_lib_check_disk_holders(
             p->lib, p->delta, (flags & VMDKIT_COMMIT_DELETE) ? VK_NEED_EXCLUSIVE : VK_NEED_NO_WRITER,
             e)))
        return r;
    return vk_lib_check_disk_holders(p->lib, p->parent, VK_NEED_EXCLUSIVE, e);
}

/* The fileName a .vmx (or .vmsd) at FILE uses for the disk at DISK:
 * relative as the old value was, or absolute. */
static char *file_name_for(const char *file, const char *disk, const char *old, vk_err *e)
{
    if (old[0] == '/')
        return vk_path_absolute(disk, e);
    char *dir = vk_path_dirname(file, e);
    char *rel = dir ? vk_path_relative(dir, disk, e) : NULL;
    free(dir);
    return rel;
}

int vmdkit_commit(const char *path, const vmdkit_commit_opts *opts, vmdkit_commit_result *res,
                  vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_commit_opts o;
    int r0 =
        vk_entry_opts(&e, err, &local, res, sizeof *res, NULL, &o, sizeof o, opts, "vmdkit_commit_opts");
    if (r0)
        return r0;
    char *ppath = NULL;
    char **files = NULL;
    size_t n_files = 0;
    vmdkit_disk *chain = NULL, *delta = NULL, *parent = NULL;
    struct plan p = {0};
    vk_rewrites rw = {0};

    /* validate the whole chain (CIDs, capacities) before touching anything */
    int r =
        vmdkit_open(path, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK, &chain, e);
    if (r)
        goto out;
    if (!chain->top->parent) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: has no parent to commit into", path);
        goto out;
    }
    if (!(ppath = vk_strdup(chain->top->parent_path, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    vmdkit_close(chain, NULL);
    chain = NULL;
    if ((r = make_plan(path, ppath, o.root, o.flags, &p, e)))
        goto out;
    if (res && !(res->scanned = vk_lib_describe_roots(p.lib, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    /* with --delete, the machines running on the delta move to the parent:
     * planned (and their machines checked) before anything is written */
    for (size_t i = 0; (o.flags & VMDKIT_COMMIT_DELETE) && i < p.n_users; i++) {
        const vk_lib_ref *f = &p.lib->refs[p.users[i]];
        char *v = file_name_for(f->file, p.lib->disks[p.parent].path, f->value, e);
        r = v ? vk_rewrites_add(&rw, f->file, f->key, v, p.lib->disks[p.parent].path, e) : VMDKIT_ENOMEM;
        free(v);
        if (r)
            goto out;
    }
    if ((r = vk_rewrites_check_unlocked(&rw, e)))
        goto out;

    /* 1. data into the parent, parent's CID kept */
    if ((r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT, &delta, e)))
        goto out;
    if ((r = vmdkit_open(ppath, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDWR | VK_OPEN_KEEP_CID, &parent,
                         e)))
        goto out;
    if ((r = copy_delta_into(delta, parent, o.progress, o.progress_opaque, e)))
        goto out;
    if ((r = vmdkit_flush(parent))) {
        *e = *vmdkit_last_error(parent);
        goto out;
    }
    uint32_t cid = parent->top->desc.cid;
    if (p.n_others)
        cid = vk_random_cid();

    /* 2. children of the delta now point at the parent */
    vk_rewrites children = {0};
    for (size_t i = 0; i < p.n_children; i++) {
        const vk_lib_ref *f = &p.lib->refs[p.children[i]];
        if ((r = repoint_child(f->file, ppath, cid, e)))
            break;
        char *h = NULL;
        if (!vk_parent_hint_for(f->file, ppath, f->value[0] == '/', &h, NULL))
            r = vk_rewrites_add(&children, f->file, NULL, h, p.lib->disks[p.parent].path, e);
        free(h);
        if (r)
            break;
    }
    if (!r && p.n_others) {
        if (!(r = vk_descriptor_set_cid(&parent->top->desc, cid, e)))
            r = vk_link_write_descriptor(parent->top, e);
    }
    int rc = vmdkit_close(parent, r ? NULL : e);
    parent = NULL;
    if (!r)
        r = rc;
    if (res) {
        res->rewrites = children.v;
        res->n_rewrites = children.n;
    } else {
        vk_rewrites_free(&children);
    }
    if (r)
        goto out;

    /* 3. with --delete: machines re-pointed, then the delta's descriptor,
     * then its extents, so no half disk and no machine naming a missing
     * file is ever left */
    if (o.flags & VMDKIT_COMMIT_DELETE) {
        vmdkit_close(delta, NULL);
        delta = NULL;
        r = vk_rewrites_apply(&rw, path, e);
        if (res && rw.n) {
            vmdkit_rewrite *all = realloc(res->rewrites, (res->n_rewrites + rw.n) * sizeof *all);
            if (all) {
                memcpy(all + res->n_rewrites, rw.v, rw.n * sizeof *all);
                res->rewrites = all;
                res->n_rewrites += rw.n;
                free(rw.v);
                memset(&rw, 0, sizeof rw);
            }
        }
        if (r)
            goto out; /* a machine still names the delta: keep it */
        if ((r = link_files(path, &files, &n_files, e)))
            goto out;
        for (size_t i = 0; i < n_files; i++)
            if (unlink(files[i]) != 0) {
                r = vk_fail_errno(e, errno, "%s: could not remove %s after the commit", path, files[i]);
                goto out;
            }
        r = vk_fsync_parent(path, e);
    }
out:
    if (parent)
        vmdkit_close(parent, NULL);
    vmdkit_close(delta, NULL);
    vmdkit_close(chain, NULL);
    vmdkit_paths_free(files, n_files);
    vk_rewrites_free(&rw);
    plan_free(&p);
    free(ppath);
    return r;
}
