/* check_space.c - who uses which sectors of a sparse extent file: grain
 * bitmaps for leaks and clashes, intervals for everything not aligned to
 * a grain. */
#include <stdio.h>
#include <stdlib.h>

#include "check_sparse.h"

/* Largest bitmap kept per map (bits): 2^28 units, 32 MiB.  A 2 TiB file
 * with 64 KiB grains needs 2^25. */
#define MAX_UNITS (UINT64_C(1) << 28)

/* The most leaked space the repair cuts from the end of a file (the limit
 * vmdkit.h promises; the cut bytes go into the backup): more than that looks
 * like a wrong table rather than a leak, and is left for a person to judge. */
#define MAX_TAIL_CUT_BYTES (UINT64_C(1) << 30)

static bool bit(const uint8_t *m, uint64_t i) { return (m[i >> 3] >> (i & 7)) & 1; }
static void set_bit(uint8_t *m, uint64_t i) { m[i >> 3] |= (uint8_t)(1u << (i & 7)); }

int vk_space_init(vk_space *s, uint64_t file_sectors, uint64_t unit, vk_err *e)
{
    memset(s, 0, sizeof *s);
    s->unit = unit;
    s->file_sectors = file_sectors;
    s->n_units = vk_div_round_up(file_sectors, unit);
    if (s->n_units > MAX_UNITS)
        return 0; /* not tracked: the caller reports the check as incomplete */
    size_t bytes = (size_t)(s->n_units / 8 + 1);
    s->used = vk_calloc(1, bytes, e);
    s->owned = vk_calloc(1, bytes, e);
    s->refd = vk_calloc(1, bytes, e);
    if (!s->used || !s->owned || !s->refd) {
        vk_space_free(s);
        return VMDKIT_ENOMEM;
    }
    s->enabled = true;
    return 0;
}

void vk_space_free(vk_space *s)
{
    free(s->used);
    free(s->owned);
    free(s->refd);
    free(s->meta);
    free(s->meta_maxend);
    free(s->meta_maxend_all);
    free(s->loose);
    memset(s, 0, sizeof *s);
}

static int push(vk_ival **arr, size_t *n, size_t *cap, vk_ival v, vk_err *e)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        vk_ival *p = realloc(*arr, nc * sizeof *p);
        if (!p)
            return vk_fail(e, VMDKIT_ENOMEM, "out of memory (space accounting)");
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return 0;
}

static void note_end(vk_space *s, uint64_t start, uint64_t len)
{
    uint64_t end;
    if (vk_add_ok(start, len, &end) && end > s->max_end)
        s->max_end = end;
}

/* Set in MAP the bit of every unit [START, START+LEN) touches inside the file. */
static void mark_map(vk_space *s, uint8_t *map, uint64_t start, uint64_t len)
{
    if (!s->enabled || len == 0 || start >= s->file_sectors)
        return;
    uint64_t end = start + vk_min(len, s->file_sectors - start);
    for (uint64_t u = start / s->unit; u <= (end - 1) / s->unit; u++)
        set_bit(map, u);
}

static void mark_units(vk_space *s, uint64_t start, uint64_t len) { mark_map(s, s->used, start, len); }

int vk_space_add_meta(vk_space *s, uint64_t start, uint64_t len, uint32_t owner, uint64_t index,
                      bool anchored, vk_err *e)
{
    vk_ival v = {.start = start, .len = len, .owner = owner, .anchored = anchored, .index = index};
    return push(&s->meta, &s->n_meta, &s->cap_meta, v, e);
}

static int cmp_ival(const void *a, const void *b)
{
    const vk_ival *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

void vk_space_sort(vk_space *s)
{
    if (s->n_meta)
        qsort(s->meta, s->n_meta, sizeof *s->meta, cmp_ival);
}

int vk_space_commit(vk_space *s, vk_err *e)
{
    free(s->meta_maxend);
    free(s->meta_maxend_all);
    s->meta_maxend = vk_calloc(s->n_meta ? s->n_meta : 1, sizeof *s->meta_maxend, e);
    s->meta_maxend_all = vk_calloc(s->n_meta ? s->n_meta : 1, sizeof *s->meta_maxend_all, e);
    if (!s->meta_maxend || !s->meta_maxend_all)
        return VMDKIT_ENOMEM;
    uint64_t reach = 0, reach_all = 0;
    for (size_t i = 0; i < s->n_meta; i++) {
        const vk_ival *m = &s->meta[i];
        note_end(s, m->start, m->len);
        if (!m->dead) {
            reach = vk_max(reach, m->start + m->len);
            mark_units(s, m->start, m->len);
        } else {
            /* a table judged wrong is still pointed at: not leaked space,
             * and the repair may write its place again */
            mark_map(s, s->refd, m->start, m->len);
        }
        s->meta_maxend[i] = reach;
        reach_all = vk_max(reach_all, m->start + m->len);
        s->meta_maxend_all[i] = reach_all;
    }
    return 0;
}

/* How many intervals of S->meta (sorted by start) start before the end of
 * START+LEN (an end past 2^64 counts as 2^64 - 1): meta[0..n) do. */
static size_t meta_before_end(const vk_space *s, uint64_t start, uint64_t len)
{
    uint64_t end;
    if (!vk_add_ok(start, len, &end))
        end = UINT64_MAX;
    size_t lo = 0, hi = s->n_meta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->meta[mid].start < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const vk_ival *vk_space_meta_hit(const vk_space *s, uint64_t start, uint64_t len)
{
    /* walk back while some earlier live interval still reaches past START */
    for (size_t i = meta_before_end(s, start, len); i-- > 0 && s->meta_maxend[i] > start;) {
        const vk_ival *m = &s->meta[i];
        if (!m->dead && m->start + m->len > start)
            return m;
    }
    return NULL;
}

const vk_ival *vk_space_any_hit(const vk_space *s, uint64_t start, uint64_t len, uint32_t owner,
                                uint64_t index)
{
    for (size_t i = meta_before_end(s, start, len); i-- > 0 && s->meta_maxend_all[i] > start;) {
        const vk_ival *m = &s->meta[i];
        if (m->start + m->len > start && !(m->owner == owner && m->index == index))
            return m;
    }
    return NULL;
}

bool vk_space_grain_clash(const vk_space *s, uint64_t start, uint64_t len)
{
    if (!s->enabled || len == 0 || start >= s->file_sectors)
        return false;
    uint64_t end = vk_min(start + len, s->file_sectors);
    bool aligned = start % s->unit == 0 && len == s->unit;
    for (uint64_t u = start / s->unit; u <= (end - 1) / s->unit; u++) {
        if (bit(s->owned, u))
            return true;
        if (aligned && bit(s->used, u) && !vk_space_meta_hit(s, start, len))
            return true; /* an unaligned grain touched this unit */
    }
    return false;
}

int vk_space_mark_grain(vk_space *s, uint64_t start, uint64_t len, uint64_t index, vk_err *e)
{
    note_end(s, start, len);
    if (!s->enabled || start >= s->file_sectors)
        return 0;
    mark_units(s, start, len);
    if (start % s->unit == 0 && len == s->unit) {
        set_bit(s->owned, start / s->unit);
        return 0;
    }
    vk_ival v = {.start = start, .len = len, .owner = VK_OWN_GRAIN, .index = index};
    return push(&s->loose, &s->n_loose, &s->cap_loose, v, e);
}

void vk_space_mark_used(vk_space *s, uint64_t start, uint64_t len)
{
    note_end(s, start, len);
    mark_units(s, start, len);
}

void vk_space_mark_ref(vk_space *s, uint64_t start, uint64_t len)
{
    note_end(s, start, len);
    mark_map(s, s->refd, start, len);
}

bool vk_space_unit_free(const vk_space *s, uint64_t u) { return !bit(s->used, u) && !bit(s->refd, u); }

const char *vk_owner_name(uint32_t owner, uint64_t index, char *buf, size_t n)
{
    switch (owner) {
    case VK_OWN_HEADER:
        snprintf(buf, n, "the header");
        break;
    case VK_OWN_DESCRIPTOR:
        snprintf(buf, n, "the embedded descriptor");
        break;
    case VK_OWN_GD:
        snprintf(buf, n, "the grain directory");
        break;
    case VK_OWN_RGD:
        snprintf(buf, n, "the redundant grain directory");
        break;
    case VK_OWN_GT:
        snprintf(buf, n, "grain table %llu", (unsigned long long)index);
        break;
    case VK_OWN_RGT:
        snprintf(buf, n, "redundant grain table %llu", (unsigned long long)index);
        break;
    default:
        snprintf(buf, n, "grain %llu", (unsigned long long)index);
        break;
    }
    return buf;
}

void vk_space_overlaps(const vk_ival *v, size_t n, vk_overlap_fn fn, void *opaque)
{
    const vk_ival *reach = NULL;
    for (size_t i = 0; i < n; i++) {
        const vk_ival *x = &v[i];
        if (x->dead)
            continue;
        if (reach && x->start < reach->start + reach->len)
            fn(opaque, reach, x);
        if (!reach || x->start + x->len > reach->start + reach->len)
            reach = x;
    }
}

int vk_space_sweep_loose(vk_space *s, vk_overlap_fn fn, void *opaque, vk_err *e)
{
    if (!s->n_loose)
        return 0;
    size_t n = s->n_loose + s->n_meta;
    vk_ival *all = vk_malloc(n * sizeof *all, e);
    if (!all)
        return VMDKIT_ENOMEM;
    memcpy(all, s->loose, s->n_loose * sizeof *all);
    memcpy(all + s->n_loose, s->meta, s->n_meta * sizeof *all);
    qsort(all, n, sizeof *all, cmp_ival);
    /* overlaps among metadata were judged before: report only those of grains */
    const vk_ival *reach = NULL;
    for (size_t i = 0; i < n; i++) {
        const vk_ival *x = &all[i];
        if (x->dead)
            continue;
        if (reach && x->start < reach->start + reach->len &&
            (x->owner == VK_OWN_GRAIN || reach->owner == VK_OWN_GRAIN))
            fn(opaque, reach, x);
        if (!reach || x->start + x->len > reach->start + reach->len)
            reach = x;
    }
    free(all);
    return 0;
}

int vk_space_cut_tail(vk_sparse_check *s, uint64_t keep)
{
    if (keep >= s->file_bytes)
        return 0;
    if (s->file_bytes - keep > MAX_TAIL_CUT_BYTES) {
        vk_check_note(
            s->c, VMDKIT_FIND_UNREPAIRED, s->file, keep,
            "%s: leaked space at the end of the file is larger than the %llu GiB the repair cuts; "
            "left alone",
            s->file, (unsigned long long)(MAX_TAIL_CUT_BYTES >> 30));
        return 0;
    }
    return vk_check_plan_truncate(
        s->c, VMDKIT_FIND_LEAK, s->x->file, keep,
        "%s: cut %llu leaked bytes from the end of the file (new size %llu bytes)", s->file,
        (unsigned long long)(s->file_bytes - keep), (unsigned long long)keep);
}
