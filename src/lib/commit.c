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
 *   3. With --delete, DELTA's descriptor is removed, then its extents.
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
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "create.h"
#include "link.h"
#include "path.h"
#include "scan.h"

#define COPY_BYTES (4u << 20)

static int copy_delta_into(vmdkit_disk *delta, vmdkit_disk *parent, vmdkit_progress_fn progress,
                           void *opaque, vk_err *e)
{
    vk_link *l = delta->top;
    uint64_t total = l->capacity_sectors;
    uint8_t *buf = vk_aligned_alloc(COPY_BYTES, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    int r = 0;
    uint64_t s = 0;
    while (!r && s < total) {
        int alloc;
        uint64_t run;
        if ((r = vk_link_status(l, s, total - s, &alloc, &run, e)))
            break;
        if (alloc == VMDKIT_ALLOC_ZERO) {
            /* zeroed grains hide the parent: the parent must read zeros there */
            if ((r = vmdkit_pzero(parent, (size_t)(run * VK_SECTOR), s * VK_SECTOR)))
                *e = *vmdkit_last_error(parent);
        } else if (alloc == VMDKIT_ALLOC_DATA) {
            for (uint64_t done = 0; !r && done < run;) {
                uint64_t n = vk_min(run - done, COPY_BYTES / VK_SECTOR);
                if ((r = vk_link_read(l, s + done, n, buf, e)))
                    break;
                if ((r = vmdkit_pwrite(parent, buf, (size_t)(n * VK_SECTOR), (s + done) * VK_SECTOR)))
                    *e = *vmdkit_last_error(parent);
                done += n;
            }
        }
        s += run;
        if (!r && progress && progress(opaque, s * VK_SECTOR, total * VK_SECTOR))
            r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    }
    free(buf);
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
    if (!(r = vk_parent_hint_for(child, parent_path, c->top->desc.parent_hint &&
                                                         c->top->desc.parent_hint[0] == '/',
                                 &hint, e))) {
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

int vmdkit_commit(const char *path, unsigned flags, const char *scan_root, vmdkit_progress_fn progress,
                  void *opaque, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    e->code = 0;
    e->msg[0] = 0;
    char *ppath = NULL, *pdir = NULL, *ddir = NULL, *lib = NULL;
    char **others = NULL, **children = NULL, **files = NULL;
    size_t n_others = 0, n_children = 0, n_files = 0;
    vmdkit_disk *chain = NULL, *delta = NULL, *parent = NULL;

    /* validate the whole chain (CIDs, capacities) before touching anything */
    int r = vmdkit_open(path, VMDKIT_OPEN_RDONLY, &chain, e);
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

    pdir = vk_path_dirname(ppath, e);
    ddir = vk_path_dirname(path, e);
    if (!pdir || !ddir) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    /* by default the library around the parent: its VM folder's parent
     * folder, where linked clones in sibling VM folders live */
    if (!scan_root && !(lib = vk_path_dirname(pdir, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    const char *roots[2] = { scan_root ? scan_root : lib, ddir };
    size_t n_roots = 2;
    if ((r = vk_find_dependents_multi(roots, n_roots, ppath, &others, &n_others, e)))
        goto out;
    size_t foreign = 0;
    for (size_t i = 0; i < n_others; i++)
        if (!vk_same_file(others[i], path))
            foreign++;
    if (foreign && !(flags & VMDKIT_COMMIT_FORCE)) {
        char list[512] = "";
        for (size_t i = 0; i < n_others; i++)
            if (!vk_same_file(others[i], path) && strlen(list) + strlen(others[i]) + 3 < sizeof list)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "",
                         others[i]);
        r = vk_fail(e, VMDKIT_ECHAIN,
                    "%s: parent %s has %zu other dependent(s) (%s); committing would change their content (use --force)",
                    path, ppath, foreign, list);
        goto out;
    }
    if ((r = vk_find_dependents_multi(roots, n_roots, path, &children, &n_children, e)))
        goto out;

    /* 1. data into the parent, parent's CID kept */
    if ((r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT, &delta, e)))
        goto out;
    if ((r = vmdkit_open(ppath, VMDKIT_OPEN_RDWR | VK_OPEN_KEEP_CID, &parent, e)))
        goto out;
    if ((r = copy_delta_into(delta, parent, progress, opaque, e)))
        goto out;
    if ((r = vmdkit_flush(parent))) {
        *e = *vmdkit_last_error(parent);
        goto out;
    }
    uint32_t cid = parent->top->desc.cid;
    if (foreign)
        cid = vk_random_cid();

    /* 2. children of the delta now point at the parent */
    for (size_t i = 0; i < n_children; i++)
        if ((r = repoint_child(children[i], ppath, cid, e)))
            goto out;
    if (foreign) {
        if ((r = vk_descriptor_set_cid(&parent->top->desc, cid, e)) ||
            (r = vk_link_write_descriptor(parent->top, e)))
            goto out;
    }
    r = vmdkit_close(parent, e);
    parent = NULL;
    if (r)
        goto out;

    /* 3. optionally drop the delta: descriptor first, so no half disk remains */
    if (flags & VMDKIT_COMMIT_DELETE) {
        vmdkit_close(delta, NULL);
        delta = NULL;
        if ((r = link_files(path, &files, &n_files, e)))
            goto out;
        for (size_t i = 0; i < n_files; i++)
            if (unlink(files[i]) != 0) {
                r = vk_fail(e, VMDKIT_EIO, "%s: could not remove %s after the commit", path, files[i]);
                goto out;
            }
    }
out:
    if (parent)
        vmdkit_close(parent, NULL);
    vmdkit_close(delta, NULL);
    vmdkit_close(chain, NULL);
    vmdkit_paths_free(others, n_others);
    vmdkit_paths_free(children, n_children);
    vmdkit_paths_free(files, n_files);
    free(ppath);
    free(pdir);
    free(ddir);
    free(lib);
    return r;
}
