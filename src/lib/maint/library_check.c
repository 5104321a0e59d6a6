/* library_check.c - may a disk be changed in place?  Asked of the library
 * model (vm/library.h), which knows its dependents and holders. */
#include <stdlib.h>

#include "../holders.h"
#include "../vm/library.h"
#include "maint.h"

static int check_alone(const vk_lib *lib, size_t d, const char *path, vk_err *e)
{
    if (lib->disks[d].hint)
        return vk_fail(
            e, VMDKIT_ECHAIN,
            "%s: parentFileNameHint: the disk is a delta of \"%s\": growing it alone would make it larger "
            "than its parent (VMware refuses too); commit it first, or grow the whole chain (resize --chain)",
            path, lib->disks[d].hint);
    size_t *idx = NULL, n = 0;
    int r =
        vk_lib_refs_to_disk(lib, d, VK_REFS(VK_REF_PARENT) | VK_REFS(VK_REF_SNAPSHOT_DISK), &idx, &n, e);
    if (!r && n) {
        char *list = vk_lib_describe_refs(lib, idx, n, e);
        r = list ? vk_fail(
                       e, VMDKIT_ECHAIN,
                       "%s: %zu dependent(s): %s; growing it would leave them smaller than their parent "
                       "(resize --chain grows them with it)",
                       path, n, list)
                 : VMDKIT_ENOMEM;
        free(list);
    }
    free(idx);
    return r;
}

int vk_maint_check_library(const char *path, const char *root, bool whole_chain_alone, vk_err *e)
{
    vk_lib *lib = NULL;
    int r = vk_lib_load_around(root, &path, 1, &lib, e);
    if (r)
        return r;
    size_t d = vk_lib_disk_at(lib, path);
    if (d == VK_LIB_NONE)
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: not a disk of its own (an extent of another disk?)", path);
    else if (whole_chain_alone)
        r = check_alone(lib, d, path, e);
    if (!r)
        r = vk_lib_check_disk_holders(lib, d, VK_NEED_EXCLUSIVE, e);
    vk_lib_free(lib);
    return r;
}

/* Disk indices: the base of D's chain, then every disk whose parent is
 * one already listed, breadth first (parents before their children). */
static int chain_order(const vk_lib *lib, size_t d, size_t **order, size_t *n, vk_err *e)
{
    size_t b = d, steps = 0;
    while (lib->disks[b].hint) {
        if (lib->disks[b].parent == VK_LIB_NONE || ++steps > lib->n_disks) {
            char *roots = vk_lib_describe_roots(lib, e);
            int r = roots ? vk_fail(e, VMDKIT_ECHAIN,
                                    "%s: parentFileNameHint: \"%s\" is not a disk of the library (%s)",
                                    lib->disks[b].path, lib->disks[b].hint, roots)
                          : VMDKIT_ENOMEM;
            free(roots);
            return r;
        }
        b = lib->disks[b].parent;
    }
    size_t *o = vk_calloc(lib->n_disks, sizeof *o, e);
    bool *in = vk_calloc(lib->n_disks ? lib->n_disks : 1, sizeof *in, e);
    if (!o || !in) {
        free(o);
        free(in);
        return VMDKIT_ENOMEM;
    }
    size_t k = 0;
    o[k++] = b;
    in[b] = true;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < lib->n_disks; j++)
            if (!in[j] && lib->disks[j].parent == o[i]) {
                in[j] = true;
                o[k++] = j;
            }
    free(in);
    *order = o;
    *n = k;
    return 0;
}

int vk_maint_chain_members(const char *path, const char *root, char ***paths, size_t *n, vk_err *e)
{
    *paths = NULL;
    *n = 0;
    vk_lib *lib = NULL;
    int r = vk_lib_load_around(root, &path, 1, &lib, e);
    if (r)
        return r;
    size_t d = vk_lib_disk_at(lib, path), *order = NULL, k = 0;
    if (d == VK_LIB_NONE)
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: not a disk of its own (an extent of another disk?)", path);
    else
        r = chain_order(lib, d, &order, &k, e);
    for (size_t i = 0; !r && i < k; i++)
        r = vk_lib_check_disk_holders(lib, order[i], VK_NEED_EXCLUSIVE, e);
    char **p = r ? NULL : vk_calloc(k, sizeof *p, e);
    if (!r && !p)
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < k; i++)
        if (!(p[i] = vk_strdup(lib->disks[order[i]].path, e)))
            r = VMDKIT_ENOMEM;
    if (r && p) {
        for (size_t i = 0; i < k; i++)
            free(p[i]);
        free(p);
    } else if (!r) {
        *paths = p;
        *n = k;
    }
    free(order);
    vk_lib_free(lib);
    return r;
}
