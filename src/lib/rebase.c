/* rebase.c - give a delta another parent.
 *
 * Safe mode, crash safety: first, for every grain the delta does not store,
 * the content under the old parent is compared with the content under the
 * new parent and, where they differ, the old content is written into the
 * delta as a whole grain (the delta keeps its CID: what it reads does not
 * change).  Only then is the descriptor switched to the new parent in one
 * write.  Before the switch the old chain reads exactly as before; after
 * it, the new chain reads the same content.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "copy.h"
#include "create.h"
#include "link.h"
#include "path.h"
#include "scan.h"
#include "sparse_header.h"

#define PIECE_LIMIT (1u << 20)

/* Grain size of the delta's sparse extents (sectors), for whole-grain copies. */
static uint64_t delta_grain_sectors(const vk_link *l)
{
    uint64_t g = 1;
    for (size_t i = 0; i < l->n_ext; i++)
        g = vk_max(g, l->ext[i].grain_sectors);
    return g;
}

static int read_or_zero(vmdkit_disk *d, uint8_t *buf, size_t len, uint64_t off, vk_err *e)
{
    if (!d) {
        memset(buf, 0, len);
        return 0;
    }
    int r = vmdkit_pread(d, buf, len, off);
    if (r)
        *e = *vmdkit_last_error(d);
    return r;
}

struct differences {
    vmdkit_disk *delta, *old_parent, *new_parent;
    uint64_t gs, total;
    uint8_t *a, *b;
};

/* One run of the delta: where it is unallocated and the parents differ, the
 * old parent's bytes are written into the delta. */
static int copy_run_difference(void *ctx, uint64_t s, uint64_t run, int alloc, vk_err *e)
{
    struct differences *c = ctx;
    if (alloc != VMDKIT_ALLOC_UNALLOC)
        return 0;
    int r = 0;
    /* unallocated runs of a sparse extent start and end on grains */
    for (uint64_t g = s; !r && g < s + run; g += c->gs) {
        uint64_t n = vk_min(c->gs, c->total - g);
        size_t len = (size_t)(n * VK_SECTOR);
        if ((r = read_or_zero(c->old_parent, c->a, len, g * VK_SECTOR, e)) ||
            (r = read_or_zero(c->new_parent, c->b, len, g * VK_SECTOR, e)))
            break;
        if (memcmp(c->a, c->b, len) != 0 && (r = vmdkit_pwrite(c->delta, c->a, len, g * VK_SECTOR)))
            *e = *vmdkit_last_error(c->delta);
    }
    return r;
}

static int copy_differences(vmdkit_disk *delta, vmdkit_disk *old_parent, vmdkit_disk *new_parent,
                            vmdkit_progress_fn progress, void *opaque, vk_err *e)
{
    vk_link *l = delta->top;
    struct differences c = {.delta = delta,
                            .old_parent = old_parent,
                            .new_parent = new_parent,
                            .gs = delta_grain_sectors(l),
                            .total = l->capacity_sectors};
    if (c.gs * VK_SECTOR > PIECE_LIMIT)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: grain size too large for rebase", l->path);
    size_t piece = (size_t)(c.gs * VK_SECTOR);
    c.a = vk_malloc(piece, e);
    c.b = c.a ? vk_malloc(piece, e) : NULL;
    int r = c.b ? vk_walk_runs(l, copy_run_difference, &c, progress, opaque, e) : VMDKIT_ENOMEM;
    free(c.a);
    free(c.b);
    return r;
}

/* Does the chain of hints from CANDIDATE (a new parent) lead to PATH?
 * Followed descriptor by descriptor, whatever the CIDs say: a loop is a
 * loop even in a chain that no longer opens. */
static int leads_back(const char *candidate, const char *path, bool *loop, vk_err *e)
{
    *loop = false;
    char *cur = vk_strdup(candidate, e);
    if (!cur)
        return VMDKIT_ENOMEM;
    for (int depth = 0; cur && depth <= 256; depth++) {
        if (vk_same_file(cur, path)) {
            *loop = true;
            break;
        }
        char *next = vk_hint_parent_of(cur);
        free(cur);
        cur = next;
    }
    free(cur);
    return 0;
}

int vmdkit_rebase(const char *path, const char *new_parent, const vmdkit_rebase_opts *opts,
                  vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_rebase_opts o;
    int r0 = vk_entry_opts(&e, err, &local, NULL, 0, NULL, &o, sizeof o, opts, "vmdkit_rebase_opts");
    if (r0)
        return r0;
    bool unsafe = (o.flags & VMDKIT_REBASE_UNSAFE) != 0,
         absolute_hint = (o.flags & VMDKIT_REBASE_ABSOLUTE) != 0;
    vmdkit_progress_fn progress = o.progress;
    void *opaque = o.progress_opaque;
    if (new_parent && !*new_parent)
        new_parent = NULL;
    if (new_parent) {
        int rp = vk_check_parent_arg(new_parent, e);
        if (rp)
            return rp;
        if (vk_same_file(new_parent, path))
            return vk_fail(e, VMDKIT_ECHAIN, "%s: cannot be its own parent", path);
        bool loop;
        int rl = leads_back(new_parent, path, &loop, e);
        if (rl)
            return rl;
        if (loop)
            return vk_fail(e, VMDKIT_ECHAIN, "%s: new parent %s depends on it: that would be a loop",
                           path, new_parent);
    }
    vmdkit_disk *delta = NULL, *oldp = NULL, *newp = NULL;
    char *old_path = NULL, *hint = NULL;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_PARENT | VK_OPEN_KEEP_CID, &delta, e);
    if (r)
        goto out;
    vk_link *l = delta->top;
    if (l->raw) {
        r = vk_fail(e, VMDKIT_EINVAL, "%s: a raw image has no parent", path);
        goto out;
    }
    if (new_parent) {
        if ((r = vk_check_depth_for_child(new_parent, e)))
            goto out;
        if ((r = vmdkit_open(new_parent,
                             unsafe ? VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT
                                    : VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY,
                             &newp, e)))
            goto out;
        if (newp->top->raw) {
            r = vk_fail(e, VMDKIT_EINVAL, "%s: new parent %s is not a VMDK", path, new_parent);
            goto out;
        }
        if (newp->top->bare) {
            r = vk_fail(e, VMDKIT_EINVAL,
                        "%s: new parent %s " VK_PIECE_OF_DISK ", never a parent: name its descriptor",
                        path, new_parent);
            goto out;
        }
        if (newp->top->capacity_sectors != l->capacity_sectors) {
            r = vk_fail(e, VMDKIT_ECHAIN,
                        "%s: capacity %llu sectors differs from new parent %s (%llu sectors)", path,
                        (unsigned long long)l->capacity_sectors, new_parent,
                        (unsigned long long)newp->top->capacity_sectors);
            goto out;
        }
        for (vk_link *p = newp->top; p; p = p->parent)
            if (vk_same_file(p->path, path)) {
                r = vk_fail(e, VMDKIT_ECHAIN, "%s: new parent %s depends on it: that would be a loop",
                            path, new_parent);
                goto out;
            }
    }
    if (!unsafe) {
        if (l->desc.parent_hint) {
            if (!(old_path = vk_path_resolve_parent(path, l->desc.parent_hint, e))) {
                r = e->code;
                goto out;
            }
            /* the old chain must be intact: its content is what we keep */
            if ((r = vmdkit_open(old_path, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY, &oldp, e)))
                goto out;
            if (oldp->top->desc.cid != l->desc.parent_cid) {
                r = vk_fail(
                    e, VMDKIT_ECHAIN,
                    "%s: parentCID %08x does not match the CID of parent %s: the content to keep is unknown (use -u)",
                    path, l->desc.parent_cid, old_path);
                goto out;
            }
        }
        if ((r = copy_differences(delta, oldp, newp, progress, opaque, e)))
            goto out;
        if ((r = vmdkit_flush(delta))) {
            *e = *vmdkit_last_error(delta);
            goto out;
        }
    }
    /* the switch: one descriptor write */
    free(l->desc.parent_hint);
    l->desc.parent_hint = NULL;
    l->desc.parent_cid = VK_CID_NONE;
    if (newp) {
        if ((r = vk_parent_hint_for(path, new_parent, absolute_hint, &hint, e)))
            goto out;
        l->desc.parent_hint = hint;
        hint = NULL;
        l->desc.parent_cid = newp->top->desc.cid;
    }
    r = vk_link_write_descriptor(l, e);
out:
    if (delta) {
        int rc = vmdkit_close(delta, r ? NULL : e);
        if (!r)
            r = rc;
    }
    vmdkit_close(oldp, NULL);
    vmdkit_close(newp, NULL);
    free(old_path);
    free(hint);
    return r;
}
