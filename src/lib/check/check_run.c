/* check_run.c - vmdkit_check: the course of a check and of a repair.
 * One pass checks the whole chain (planning fixes when repairing); a
 * repair then backs up and applies the planned fixes, checks again until
 * nothing more can be fixed, and clears the unclean-shutdown flag last,
 * only from a disk without damage. */
#include <stdio.h>
#include <string.h>

#include "check.h"

/* Rounds of repair: fixing one thing can reveal the next (a table
 * repaired from its twin can leave the old table's space leaked). */
#define MAX_REPAIR_ROUNDS 3

/* One pass over the whole chain. */
static int pass(vk_check *c, bool emit, bool plan, bool after_repair)
{
    vk_check_plan_clear(c);
    c->emit = emit;
    c->plan = plan;
    c->after_repair = after_repair;
    uint64_t dropped = c->n.dropped;
    memset(&c->n, 0, sizeof c->n);
    c->n.dropped = dropped;
    return vk_check_chain(c);
}

static bool has_fixes(const vk_check *c, unsigned mask)
{
    for (size_t i = 0; i < c->n_fixes; i++)
        if (mask & (1u << c->fixes[i].phase))
            return true;
    return false;
}

static uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* Repair rounds after the first pass; leaves C->n with the final state. */
static int repair(vk_check *c, uint64_t *applied_total)
{
    const unsigned header = 1u << VK_FIX_HEADER;
    const unsigned all_but_header = ((1u << VK_FIX_PHASES) - 1) & ~header;
    int r = 0;
    bool changed = false;
    for (int round = 0; round < MAX_REPAIR_ROUNDS && has_fixes(c, all_but_header); round++) {
        uint64_t applied;
        if ((r = vk_check_apply(c, all_but_header, &applied)))
            return r;
        *applied_total += applied;
        changed = true;
        if ((r = pass(c, false, true, false)))
            return r;
    }
    if (changed && (r = pass(c, true, true, true)))
        return r;
    /* the unclean-shutdown flag goes last, and only from a disk without damage */
    if (c->n.corruptions == 0 && c->n.stale == 0 && has_fixes(c, header)) {
        uint64_t applied;
        c->after_repair = false;
        if ((r = vk_check_apply(c, header, &applied)))
            return r;
        *applied_total += applied;
        c->unclean_cleared = applied > 0;
    }
    return 0;
}

int vmdkit_check(const char *path, const vmdkit_check_opts *opts, vmdkit_check_result *res,
                 vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_check_opts o;
    int r0 =
        vk_entry_opts(&e, err, &local, res, sizeof *res, res ? NULL : "check: no result structure given",
                      &o, sizeof o, opts, "vmdkit_check_opts");
    if (r0)
        return r0;
    unsigned flags = o.flags;
    vmdkit_check_fn fn = o.on_finding;
    void *opaque = o.finding_opaque;
    vmdkit_progress_fn progress = o.progress;
    void *progress_opaque = o.progress_opaque;
    if (!path || !*path)
        return vk_fail(e, VMDKIT_EINVAL, "check: no disk given");
    if (flags & ~(unsigned)(VMDKIT_CHECK_REPAIR | VMDKIT_CHECK_ALLOW_EXTERNAL |
                            VMDKIT_CHECK_ALLOW_ABSOLUTE_PARENTS))
        return vk_fail(e, VMDKIT_EINVAL, "%s: check: unknown flags 0x%x", path, flags);
    vk_check c = {
        .flags = flags,
        .top_path = path,
        .fn = fn,
        .opaque = opaque,
        .e = e,
        .backup_fd = -1,
    };
    bool fix = (flags & VMDKIT_CHECK_REPAIR) != 0;
    if (progress) {
        uint64_t cap;
        unsigned links;
        vk_check_chain_shape(path, &cap, &links);
        c.progress = progress;
        c.progress_opaque = progress_opaque;
        c.prog_link_bytes = cap;
        c.prog_total = cap * links;
        (void)progress(progress_opaque, 0, c.prog_total);
    }
    int r = pass(&c, true, fix, false);
    if (progress && !r)
        (void)progress(progress_opaque, c.prog_total, c.prog_total);
    c.progress = NULL; /* the repair's passes are not reported */
    vk_check_counts first = c.n;
    uint64_t applied = 0;
    if (!r && fix)
        r = repair(&c, &applied);
    vk_check_counts last = c.n;
    res->corruptions = last.corruptions;
    res->leaks = last.leaks;
    res->leaked_bytes = last.leaked_bytes;
    res->stale = last.stale;
    if (fix) {
        res->corruptions_fixed = minus(first.corruptions, last.corruptions);
        res->leaks_fixed = minus(first.leaks, last.leaks);
        res->stale_fixed = minus(first.stale, last.stale);
        res->repaired = applied;
        res->unrepaired = last.corruptions + last.stale + last.leak_findings;
    }
    res->findings_dropped = last.dropped;
    res->unclean_shutdown = first.unclean;
    res->unclean_shutdown_cleared = c.unclean_cleared;
    res->unclean_shutdown_left = first.unclean && (first.unclean_kept || !c.unclean_cleared);
    res->incomplete = last.incomplete || first.incomplete;
    bool backup_made = c.backup_fd >= 0;
    vk_check_backup_close(&c);
    if (backup_made)
        snprintf(res->backup_path, sizeof res->backup_path, "%s", c.backup_path);
    vk_check_plan_clear(&c);
    vk_check_close_all(&c);
    return r;
}
