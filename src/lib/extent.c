/* extent.c - what the extent drivers share: range checks, names for
 * messages, and the run walk of grain-by-grain read-only drivers. */
#include <string.h>

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

/* The run at SECTOR (at most N sectors) of one kind; with CONTIGUOUS, data
 * only as far as its grains lie back to back in the file, so that one pread
 * reads it. */
static int grain_run(vk_extent *x, vk_grain_fn at, uint64_t sector, uint64_t n, bool contiguous,
                     int *alloc, uint64_t *phys, uint64_t *run, vk_err *e)
{
    uint64_t done = 0;
    while (done < n) {
        int a = VMDKIT_ALLOC_UNALLOC;
        uint64_t ph = 0, len = 0;
        int r = at(x, sector + done, n - done, &a, &ph, &len, e);
        if (r)
            return r;
        if (done == 0) {
            *alloc = a;
            *phys = ph;
        } else if (a != *alloc || (contiguous && a == VMDKIT_ALLOC_DATA && ph != *phys + done)) {
            break;
        }
        done += len;
    }
    *run = done;
    return 0;
}

int vk_grain_status(vk_extent *x, vk_grain_fn at, uint64_t sector, uint64_t n, int *alloc, uint64_t *run,
                    vk_err *e)
{
    uint64_t phys = 0;
    int r = vk_extent_check_range(x, sector, n, e);
    return r ? r : grain_run(x, at, sector, n, false, alloc, &phys, run, e);
}

int vk_grain_read(vk_extent *x, vk_grain_fn at, uint64_t sector, uint64_t n, void *buf, vk_err *e)
{
    int r = vk_extent_check_range(x, sector, n, e);
    uint8_t *p = buf;
    while (!r && n > 0) {
        int alloc = VMDKIT_ALLOC_UNALLOC;
        uint64_t phys = 0, run = 0;
        if ((r = grain_run(x, at, sector, n, true, &alloc, &phys, &run, e)))
            break;
        size_t bytes = (size_t)(run * VK_SECTOR);
        if (alloc == VMDKIT_ALLOC_DATA)
            r = vk_pread_full(x->fd, p, bytes, phys * VK_SECTOR, vk_extent_file(x), e);
        else
            memset(p, 0, bytes);
        p += bytes;
        sector += run;
        n -= run;
    }
    return r;
}
