/* compact.h - what the two ways of compacting a sparse extent share: the
 * rule that says which grains go (compact.c) and the progress over a run.
 * The rewrite into a copy is in compact.c, the packing in place in
 * compact_in_place.c. */
#ifndef VK_COMPACT_H
#define VK_COMPACT_H

#include <stdbool.h>
#include <stdint.h>

#include "../link.h"

/* Progress over the whole run: bytes of virtual disk handled so far of
 * TOTAL, over every link of a chain. */
typedef struct vk_compact_progress {
    vmdkit_progress_fn fn;
    void *opaque;
    uint64_t done, total;
} vk_compact_progress;

/* Report DONE bytes more; VMDKIT_ECANCELED when the callback asks. */
int vk_compact_progress_add(vk_compact_progress *p, uint64_t done, vk_err *e);

/* What compacting one link L asks of each grain. */
typedef struct vk_compact_rule {
    vk_link *l;
    bool dedupe;      /* drop grains equal to what shows through them too */
    bool zeroed_flag; /* the extent's header has zeroed-grain entries */
    uint8_t *below;   /* scratch of one grain: what shows through it */
    vmdkit_compact_result *res;
} vk_compact_rule;

enum vk_grain_fate {
    VK_GRAIN_KEEP,   /* stays stored */
    VK_GRAIN_DROP,   /* its entry becomes 0: the disk reads the same without it */
    VK_GRAIN_ZEROED, /* its entry becomes a zeroed-grain entry */
};

/*
 * The fate of the grain whose data DATA covers link sectors [S, S+N) in a
 * compact (see compact.c); STORED says whether it held data in the file
 * (a zeroed-grain entry passes zeros and false), for the counts in
 * R->res.
 */
int vk_compact_grain_fate(const vk_compact_rule *r, uint64_t s, uint64_t n, const uint8_t *data,
                          bool stored, enum vk_grain_fate *fate, vk_err *e);

/*
 * Compact the hosted sparse extent X of link R->l where it lies, without
 * a copy: dropped grains' places are filled with the last kept grains and
 * the file is cut after the last one (see compact_in_place.c for the
 * order that keeps it crash-safe).  *DONE is false, with nothing
 * written, when the extent's layout is not one this handles (compressed,
 * tables among the grains, grains off the grid, table copies that differ,
 * more grains than the memory bound); the
 * caller rewrites it then.  X must be held.
 */
int vk_compact_in_place(const vk_compact_rule *r, vk_extent *x, vk_compact_progress *prog, bool *done,
                        vk_err *e);

#endif
