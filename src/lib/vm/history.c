/* history.c - a machine, its .vmsd and the library around it, for the
 * snapshot operations; and dependents_of, the one place where they ask
 * what depends on a disk. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

#include "history.h"
#include "library.h"
#include "path.h"
#include "scan.h"

#define CHAIN_MAX_LINKS 256

int vk_strv_push(char ***v, size_t *n, const char *s, vk_err *e)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    *v = nv;
    if (!(nv[*n] = vk_strdup(s, e)))
        return VMDKIT_ENOMEM;
    (*n)++;
    return 0;
}

int vk_snapshot_begin(const char *fn, const char *vm, bool names_snapshot, const char *which,
                      const vmdkit_snapshot_opts *opts, vmdkit_snapshot_result *res, vmdkit_error *err,
                      vk_err *local, vk_err **e, vmdkit_snapshot_opts *o, vk_history **h)
{
    *e = vk_entry(err, local, res, sizeof *res);
    if (!vm || (names_snapshot && !which))
        return vk_fail(*e, VMDKIT_EINVAL, "%s: %s required", fn,
                       names_snapshot ? "vm and which are" : "vm is");
    int r = vk_opts_read(o, sizeof *o, opts, "vmdkit_snapshot_opts", *e);
    return r ? r : vk_history_open(vm, true, h, *e);
}

bool vk_path_in(const char *path, char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (vk_same_file(path, paths[i]))
            return true;
    return false;
}

void vk_history_free(vk_history *h)
{
    if (!h)
        return;
    free(h->vmx_path);
    free(h->folder);
    free(h->folder_abs);
    free(h->library);
    free(h->vmsd_path);
    vk_vmx_free(h->vmx);
    vk_vm_disks_free(h->disks, h->n_disks);
    vk_vmsd_free(h->vmsd);
    free(h);
}

int vk_history_reload(vk_history *h, vk_err *e)
{
    vk_vmx_free(h->vmx);
    vk_vm_disks_free(h->disks, h->n_disks);
    vk_vmsd_free(h->vmsd);
    h->vmx = NULL;
    h->disks = NULL;
    h->n_disks = 0;
    h->vmsd = NULL;
    int r = vk_vm_load(h->vmx_path, &h->vmx, &h->disks, &h->n_disks, e);
    if (!r)
        r = vk_vmsd_load(h->vmsd_path, &h->vmsd, e);
    return r;
}

int vk_history_open(const char *vm, bool stopped, vk_history **out, vk_err *e)
{
    *out = NULL;
    vk_history *h = vk_calloc(1, sizeof *h, e);
    if (!h)
        return VMDKIT_ENOMEM;
    int r = vk_vm_resolve(vm, &h->vmx_path, e);
    if (!r) {
        char *abs = vk_path_absolute(h->vmx_path, e);
        h->folder = vk_path_dirname(h->vmx_path, e);
        h->folder_abs = abs ? vk_path_dirname(abs, e) : NULL;
        h->library = h->folder_abs ? vk_path_dirname(h->folder_abs, e) : NULL;
        h->vmsd_path = vk_vmsd_path_for(h->vmx_path, e);
        free(abs);
        if (!h->folder || !h->library || !h->vmsd_path)
            r = VMDKIT_ENOMEM;
    }
    if (!r)
        r = vk_history_reload(h, e);
    if (!r && stopped)
        r = vk_vm_check_stopped(h->vmx_path, h->vmx, e);
    if (r) {
        vk_history_free(h);
        return r;
    }
    *out = h;
    return 0;
}

int vk_history_find(const vk_history *h, const char *which, const vk_vmsd_snap **out, vk_err *e)
{
    *out = NULL;
    const vk_vmsd *s = h->vmsd;
    char *end;
    errno = 0;
    unsigned long uid = strtoul(which, &end, 10);
    if (*which >= '0' && *which <= '9' && !*end && !errno && uid <= UINT32_MAX &&
        (*out = vk_vmsd_find(s, (uint32_t)uid)))
        return 0;
    const vk_vmsd_snap *found = NULL;
    char uids[256] = "";
    size_t count = 0;
    for (size_t i = 0; i < s->n_snaps; i++) {
        if (!s->snaps[i].display_name || strcmp(s->snaps[i].display_name, which) != 0)
            continue;
        found = &s->snaps[i];
        count++;
        size_t len = strlen(uids);
        snprintf(uids + len, sizeof uids - len, "%s%u", len ? ", " : "", found->uid);
    }
    if (count > 1)
        return vk_fail(e, VMDKIT_EINVAL, "%s: %zu snapshots are named \"%.64s\" (uids %s): give the uid",
                       h->vmsd_path, count, which, uids);
    if (!found)
        return vk_fail(e, VMDKIT_ENOENT, "%s: no snapshot with the uid or name \"%.64s\"", h->vmsd_path,
                       which);
    *out = found;
    return 0;
}

char *vk_history_path(const vk_history *h, const char *file, vk_err *e)
{
    return vk_path_join(h->folder, file, e);
}

char *vk_history_file_name(const vk_history *h, const char *path, bool absolute, vk_err *e)
{
    return absolute ? vk_path_absolute(path, e) : vk_path_relative(h->folder_abs, path, e);
}

char *vk_history_shown(const vk_history *h, const char *path, vk_err *e)
{
    char *abs = vk_path_absolute(path, e), *out = NULL;
    if (!abs)
        return NULL;
    if (vk_path_inside(abs, h->folder_abs)) {
        char *rel = vk_path_relative(h->folder_abs, abs, e);
        out = rel ? vk_path_join(h->folder, rel, e) : NULL;
        free(rel);
    } else {
        out = vk_strdup(path, e);
    }
    free(abs);
    return out;
}

void vk_deps_free(vk_deps *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].path);
    free(d->v);
    d->v = NULL;
    d->n = 0;
}

static int deps_add(vk_deps *d, enum vk_dep_kind kind, const char *path, uint32_t uid, vk_err *e)
{
    vk_dep *nv = realloc(d->v, (d->n + 1) * sizeof *nv);
    if (!nv)
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    d->v = nv;
    nv[d->n] = (vk_dep){.kind = kind, .uid = uid};
    if (path && !(nv[d->n].path = vk_strdup(path, e)))
        return VMDKIT_ENOMEM;
    d->n++;
    return 0;
}

/* Disks whose parent DISK is, other machines running on it and other
 * machines' snapshots that froze it: the library model around DISK and
 * this machine's folder.  This machine's own slots and snapshots are taken
 * from H, which an operation may have changed in memory already. */
static int library_dependents(const vk_history *h, const char *disk, vk_deps *out, vk_err *e)
{
    const char *targets[2] = {disk, h->vmx_path};
    vk_lib *lib;
    int r = vk_lib_load_around(NULL, targets, 2, &lib, e);
    if (r)
        return r;
    size_t *idx = NULL, n = 0;
    r = vk_lib_refs_to(lib, disk, VK_REFS_DEPENDENT, &idx, &n, e);
    for (size_t i = 0; !r && i < n; i++) {
        const vk_lib_ref *f = &lib->refs[idx[i]];
        bool own = f->vm != VK_LIB_NONE && vk_same_file(lib->vms[f->vm].vmx, h->vmx_path);
        if (own)
            continue; /* this machine's slots and snapshots: from H below */
        char *shown = vk_history_shown(h, f->file, e);
        char *what = NULL;
        if (shown && f->kind != VK_REF_PARENT) {
            size_t k = strlen(shown) + strlen(f->key) + 4;
            if ((what = vk_malloc(k, e)))
                snprintf(what, k, "%s (%s)", shown, f->key);
        }
        r = !shown || (f->kind != VK_REF_PARENT && !what)
                ? VMDKIT_ENOMEM
                : deps_add(out, VK_DEP_DISK, what ? what : shown, 0, e);
        free(what);
        free(shown);
    }
    free(idx);
    vk_lib_free(lib);
    return r;
}

int vk_history_dependents_of(const vk_history *h, const char *disk, vk_deps *out, vk_err *e)
{
    out->v = NULL;
    out->n = 0;
    int r = library_dependents(h, disk, out, e);
    for (size_t i = 0; !r && i < h->n_disks; i++)
        if (vk_same_file(h->disks[i].path, disk))
            r = deps_add(out, VK_DEP_SLOT, h->disks[i].slot, 0, e);
    const vk_vmsd *s = h->vmsd;
    for (size_t i = 0; !r && i < s->n_snaps; i++) {
        bool names = false;
        for (size_t k = 0; !r && !names && k < s->snaps[i].n_disks; k++) {
            const char *f = s->snaps[i].disks[k].file;
            char *p = f ? vk_history_path(h, f, e) : NULL;
            if (f && !p)
                r = VMDKIT_ENOMEM;
            names = p && vk_same_file(p, disk);
            free(p);
        }
        if (!r && names)
            r = deps_add(out, VK_DEP_SNAPSHOT, NULL, s->snaps[i].uid, e);
    }
    if (r)
        vk_deps_free(out);
    return r;
}

void vk_deps_describe(const vk_deps *d, char *buf, size_t n)
{
    size_t len = 0, shown = 0;
    buf[0] = 0;
    for (size_t i = 0; i < d->n && len + 80 < n; i++, shown++) {
        const vk_dep *x = &d->v[i];
        if (x->kind == VK_DEP_DISK)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", x->path);
        else if (x->kind == VK_DEP_SLOT)
            len += (size_t)snprintf(buf + len, n - len, "%sslot %s", i ? ", " : "", x->path);
        else
            len += (size_t)snprintf(buf + len, n - len, "%ssnapshot %u", i ? ", " : "", x->uid);
        if (len >= n)
            len = n - 1;
    }
    if (shown < d->n && len + 24 < n)
        snprintf(buf + len, n - len, " (and %zu more)", d->n - shown);
}

int vk_chain_paths(const char *disk, char ***paths, size_t *n, vk_err *e)
{
    *paths = NULL;
    *n = 0;
    char *cur = vk_strdup(disk, e);
    int r = cur ? 0 : VMDKIT_ENOMEM;
    while (!r && cur && *n < CHAIN_MAX_LINKS) {
        struct stat st;
        if (stat(cur, &st) != 0 || vk_path_in(cur, *paths, *n))
            break; /* missing, or a loop */
        if ((r = vk_strv_push(paths, n, cur, e)))
            break;
        vk_descriptor d;
        bool is_disk;
        vk_err ignore;
        char *next = NULL;
        if (vk_read_descriptor(cur, &d, &is_disk, &ignore) == 0 && is_disk && d.parent_hint &&
            !(next = vk_path_resolve_parent(cur, d.parent_hint, e)))
            r = VMDKIT_ENOMEM;
        vk_descriptor_free(&d);
        free(cur);
        cur = next;
    }
    free(cur);
    if (r) {
        vmdkit_paths_free(*paths, *n);
        *paths = NULL;
        *n = 0;
    }
    return r;
}

/* Add the links of the chain from START to the list. */
static int add_chain(const char *start, char ***links, size_t *n, vk_err *e)
{
    char **chain = NULL;
    size_t nc = 0;
    int r = vk_chain_paths(start, &chain, &nc, e);
    for (size_t j = 0; !r && j < nc; j++)
        if (!vk_path_in(chain[j], *links, *n))
            r = vk_strv_push(links, n, chain[j], e);
    vmdkit_paths_free(chain, nc);
    return r;
}

int vk_history_links(const vk_history *h, bool slots, char ***links, size_t *n, vk_err *e)
{
    *links = NULL;
    *n = 0;
    int r = 0;
    for (size_t i = 0; slots && !r && i < h->n_disks; i++)
        r = add_chain(h->disks[i].path, links, n, e);
    const vk_vmsd *s = h->vmsd;
    for (size_t i = 0; !r && i < s->n_snaps; i++)
        for (size_t k = 0; !r && k < s->snaps[i].n_disks; k++) {
            const char *f = s->snaps[i].disks[k].file;
            char *p = f ? vk_history_path(h, f, e) : NULL;
            if (f && !p)
                r = VMDKIT_ENOMEM;
            else if (p)
                r = add_chain(p, links, n, e);
            free(p);
        }
    if (r) {
        vmdkit_paths_free(*links, *n);
        *links = NULL;
        *n = 0;
    }
    return r;
}

int vk_history_match_slots(const vk_history *h, const vk_vmsd_snap *x, size_t *map, vk_err *e)
{
    const char *name = x->display_name ? x->display_name : "";
    if (x->n_disks == 0)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: snapshot %u \"%s\": records no disk", h->vmsd_path,
                       x->uid, name);
    for (size_t k = 0; k < x->n_disks; k++) {
        const vk_vmsd_disk *d = &x->disks[k];
        if (!d->node || !d->file)
            return vk_fail(e, VMDKIT_EFORMAT, "%s: snapshot %u: disk%lu: no %s", h->vmsd_path, x->uid,
                           d->index, d->node ? "fileName" : "node");
        map[k] = SIZE_MAX;
        for (size_t i = 0; i < h->n_disks; i++)
            if (strcasecmp(h->disks[i].slot, d->node) == 0)
                map[k] = i;
        for (size_t j = 0; j < k; j++)
            if (map[j] == map[k] && map[k] != SIZE_MAX)
                return vk_fail(e, VMDKIT_EFORMAT, "%s: snapshot %u: slot %s is named twice",
                               h->vmsd_path, x->uid, d->node);
        if (map[k] == SIZE_MAX)
            return vk_fail(e, VMDKIT_EUNSUPPORTED,
                           "%s: snapshot %u \"%s\": slot %s is not a disk of the machine now (VMware "
                           "would restore the configuration from the snapshot's .vmsn; vmdkit does not)",
                           h->vmx_path, x->uid, name, d->node);
    }
    if (x->n_disks != h->n_disks) {
        for (size_t i = 0; i < h->n_disks; i++) {
            bool in = false;
            for (size_t k = 0; k < x->n_disks; k++)
                in = in || map[k] == i;
            if (!in)
                return vk_fail(e, VMDKIT_EUNSUPPORTED,
                               "%s: slot %s: added after snapshot %u \"%s\" (VMware would restore the "
                               "configuration from the snapshot's .vmsn; vmdkit does not)",
                               h->vmx_path, h->disks[i].slot, x->uid, name);
        }
    }
    return 0;
}
