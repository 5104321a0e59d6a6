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
            "than its parent (VMware refuses too); commit it first",
            path, lib->disks[d].hint);
    size_t *idx = NULL, n = 0;
    int r =
        vk_lib_refs_to_disk(lib, d, VK_REFS(VK_REF_PARENT) | VK_REFS(VK_REF_SNAPSHOT_DISK), &idx, &n, e);
    if (!r && n) {
        char *list = vk_lib_describe_refs(lib, idx, n, e);
        r = list ? vk_fail(
                       e, VMDKIT_ECHAIN,
                       "%s: %zu dependent(s): %s; growing it would leave them smaller than their parent",
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
