/* fuzz_vmsd.c - the .vmsd snapshot database: its typed view and the edits
 * of take, revert and delete.
 *
 * Any input may be refused; an accepted one must serialize back to the
 * very same bytes, and after the edits (a new entry, current moved, the
 * first entry removed) the text must parse again into the view the edits
 * left in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vmsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two views with the same entries (uids, parents, disks). */
static void same_view(const vk_vmsd *a, const vk_vmsd *b)
{
    if (a->n_snaps != b->n_snaps || a->last_uid != b->last_uid || a->has_current != b->has_current ||
        (a->has_current && a->current != b->current))
        abort();
    for (size_t i = 0; i < a->n_snaps; i++) {
        const vk_vmsd_snap *x = &a->snaps[i], *y = &b->snaps[i];
        if (x->uid != y->uid || x->index != y->index || x->has_parent != y->has_parent ||
            (x->has_parent && x->parent != y->parent) || x->n_disks != y->n_disks)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vk_vmsd *s;
    vk_err e;
    if (vk_vmsd_parse("fuzz.vmsd", (const char *)data, size, &s, &e) != 0)
        return 0;
    char *out = NULL;
    size_t n = 0;
    if (vk_vmx_serialize(s->file, &out, &n, &e) != 0 || n != size || memcmp(out, data, size) != 0)
        abort(); /* an unchanged file is written back byte for byte */
    free(out);
    uint32_t first = s->n_snaps ? s->snaps[0].uid : 0;
    const char *files[] = {"a.vmdk"}, *nodes[] = {"scsi0:0"};
    vk_vmsd_new nw = {.display_name = "fuzz",
                      .description = "x\"y|z",
                      .create_time_us = -12345,
                      .files = files,
                      .nodes = nodes,
                      .n_disks = 1};
    uint32_t uid = 0;
    int r = vk_vmsd_add(s, &nw, &uid, &e);
    if (r == 0 && !vk_vmsd_find(s, uid))
        abort(); /* the entry made is in the view */
    if (r == 0 && first && vk_vmsd_set_current(s, first, &e) == 0 && vk_vmsd_remove(s, first, &e) == 0 &&
        vk_vmsd_find(s, first))
        abort(); /* the entry removed is gone */
    if (vk_vmx_serialize(s->file, &out, &n, &e) == 0) {
        vk_vmsd *t;
        if (vk_vmsd_parse("fuzz.vmsd", out, n, &t, &e) != 0)
            abort(); /* our own edits parse */
        same_view(s, t);
        vk_vmsd_free(t);
        free(out);
    }
    vk_vmsd_free(s);
    return 0;
}
