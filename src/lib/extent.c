/* extent.c - checks shared by the extent drivers. */
#include "extent.h"

const char *vk_extent_file(const vk_extent *x)
{
    return x->path ? x->path : x->name ? x->name : vk_extent_type_name(x->type);
}

int vk_extent_check_range(const vk_extent *x, uint64_t sector, uint64_t n, vk_err *e)
{
    uint64_t end;
    if (n == 0 || !vk_add_ok(sector, n, &end) || end > x->size_sectors)
        return vk_fail(e, VMDKIT_EINVAL, "%s: sectors %llu+%llu outside the extent (%llu sectors)",
                       vk_extent_file(x), (unsigned long long)sector, (unsigned long long)n,
                       (unsigned long long)x->size_sectors);
    return 0;
}
