/* check_tables.c - grain tables of a hosted sparse extent and their
 * redundant copies.
 *
 * First every copy of every table is judged on its own (inside the file,
 * clear of other structures, entries that can be right); then each pair is
 * compared.  A copy that is wrong while its twin is sound is repaired from
 * the twin.  Two sound copies that differ are left alone (nothing says
 * which is right) unless the unclean-shutdown flag explains them: an update
 * interrupted between the primary and the redundant write leaves exactly
 * that, and the primary, written first, is then the newer one.
 * The grains of the trusted copy are then checked and their space marked.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check_sparse.h"

static bool is_data(const vk_sparse_check *s, uint32_t v)
{
    return v != 0 && !(v == VK_GTE_ZEROED && s->zeroed_flag);
}

/* Where the file's own layout (every table allocated behind its directory)
 * puts table I of a directory. */
static uint64_t layout_place(const vk_sparse_check *s, bool redundant, uint64_t i)
{
    uint64_t base = redundant ? s->h.rgd_offset_sectors : s->h.gd_offset_sectors;
    return base + s->gd_sectors + i * s->gt_sectors;
}

static const char *dir_name(bool redundant)
{
    return redundant ? "redundant grain directory" : "grain directory";
}

static const char *table_name(bool redundant)
{
    return redundant ? "redundant grain table" : "grain table";
}

static vk_copy_state *state_of(vk_sparse_check *s, uint32_t owner, uint64_t i)
{
    return owner == VK_OWN_RGT ? &s->rst[i] : &s->pst[i];
}

/* ---- judging each copy ---- */

static void blame(vk_sparse_check *s, const vk_ival *x, const vk_ival *other)
{
    if (x->owner != VK_OWN_GT && x->owner != VK_OWN_RGT)
        return;
    vk_copy_state *st = state_of(s, x->owner, x->index);
    if (st->state != VK_T_SOUND)
        return;
    st->state = VK_T_OVERLAP;
    st->owner = (uint8_t)other->owner;
    st->other = (uint32_t)other->index;
}

/* Two structures overlap: the header, descriptor and directories sit where
 * the header says; a table where the layout puts it beats one elsewhere. */
static void on_meta_overlap(void *opaque, const vk_ival *a, const vk_ival *b)
{
    vk_sparse_check *s = opaque;
    bool at = a->owner == VK_OWN_GT || a->owner == VK_OWN_RGT;
    bool bt = b->owner == VK_OWN_GT || b->owner == VK_OWN_RGT;
    if (at && bt && a->anchored != b->anchored) {
        blame(s, a->anchored ? b : a, a->anchored ? a : b);
    } else {
        blame(s, a, b);
        blame(s, b, a);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void set_bad(vk_copy_state *st, uint8_t why, uint64_t j, uint32_t v)
{
    st->state = VK_T_BAD_ENTRIES;
    st->why = why;
    st->other = (uint32_t)j;
    st->value = v;
}

/* Entries of table T that cannot be right on their own: past the end of
 * the file, inside the metadata before overHead, or sharing a grain with
 * another entry of the same table.  Fills ST on the first one found.
 * SORTED is scratch room for gtes_per_gt entries. */
static void entries_plausible(vk_sparse_check *s, const uint8_t *t, vk_copy_state *st, uint32_t *sorted)
{
    uint32_t n = s->h.gtes_per_gt, k = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t v = vk_le32(t + 4 * j);
        if (!is_data(s, v))
            continue;
        if (v >= s->file_sectors || v < s->h.overhead_sectors) {
            set_bad(st, v >= s->file_sectors ? VK_E_PAST_EOF : VK_E_IN_METADATA, j, v);
            return;
        }
        sorted[k++] = v;
    }
    if (k < 2)
        return;
    qsort(sorted, k, sizeof *sorted, cmp_u32);
    uint64_t len = s->compressed ? 1 : s->h.grain_sectors;
    for (uint32_t m = 1; m < k; m++) {
        if ((uint64_t)sorted[m - 1] + len <= sorted[m])
            continue;
        /* name the later entry of the two */
        uint32_t v = sorted[m], seen = 0;
        for (uint32_t j = 0; j < n; j++) {
            uint32_t w = vk_le32(t + 4 * j);
            if (is_data(s, w) && (w == sorted[m - 1] || w == v) && seen++) {
                set_bad(st, VK_E_DUPLICATE, j, w);
                return;
            }
        }
        set_bad(st, VK_E_DUPLICATE, 0, v);
        return;
    }
}

static int read_table(vk_sparse_check *s, uint32_t at, uint8_t *buf)
{
    return vk_pread_full(s->fd, buf, (size_t)(s->gt_sectors * VK_SECTOR), (uint64_t)at * VK_SECTOR,
                         s->file, s->c->e);
}

/* A copy whose table can be read (even if judged wrong). */
static bool readable(const vk_copy_state *st)
{
    return st->state == VK_T_SOUND || st->state == VK_T_BAD_ENTRIES || st->state == VK_T_OVERLAP ||
           st->state == VK_T_OFF_LAYOUT;
}

/* Does the file keep its tables where its layout puts them?  True when the
 * entries found there are at least as many as those elsewhere. */
static bool follows_layout(const vk_sparse_check *s)
{
    if (!s->has_rgd)
        return false;
    uint64_t at = 0, off = 0;
    for (uint64_t i = 0; i < s->num_gdes; i++) {
        if (s->gd[i])
            s->gd[i] == layout_place(s, false, i) ? at++ : off++;
        if (s->rgd[i])
            s->rgd[i] == layout_place(s, true, i) ? at++ : off++;
    }
    return at > 0 && at >= off;
}

int vk_check_tables_judge(vk_sparse_check *s)
{
    vk_err *e = s->c->e;
    size_t tsize = (size_t)(s->gt_sectors * VK_SECTOR);
    s->pst = vk_calloc((size_t)s->num_gdes, sizeof *s->pst, e);
    s->rst = vk_calloc((size_t)s->num_gdes, sizeof *s->rst, e);
    s->auth = vk_calloc((size_t)s->num_gdes, 1, e);
    s->tbl = vk_malloc(tsize, e);
    s->rtbl = vk_malloc(tsize, e);
    if (!s->pst || !s->rst || !s->auth || !s->tbl || !s->rtbl)
        return VMDKIT_ENOMEM;
    s->append_next =
        vk_div_round_up(vk_max(s->file_sectors, s->h.overhead_sectors), s->h.grain_sectors) *
        s->h.grain_sectors;
    /* where each copy lies */
    for (int copy = 0; copy < (s->has_rgd ? 2 : 1); copy++) {
        bool red = copy == 1;
        uint32_t *dir = red ? s->rgd : s->gd;
        vk_copy_state *st = red ? s->rst : s->pst;
        for (uint64_t i = 0; i < s->num_gdes; i++) {
            uint32_t v = dir[i];
            if (v == 0) {
                st[i].state = VK_T_ZERO;
                continue;
            }
            if ((uint64_t)v + s->gt_sectors > s->file_sectors) {
                st[i].state = VK_T_PAST_EOF;
                continue;
            }
            st[i].state = VK_T_SOUND;
            int r = vk_space_add_meta(&s->space, v, s->gt_sectors, red ? VK_OWN_RGT : VK_OWN_GT, i,
                                      v == layout_place(s, red, i) && !s->stream_footer, e);
            if (r)
                return r;
        }
    }
    vk_space_sort(&s->space);
    vk_space_overlaps(s->space.meta, s->space.n_meta, on_meta_overlap, s);

    /* the entries of each copy, and the layout when both copies look sound */
    bool layout = s->layout = follows_layout(s);
    uint8_t *scratch = vk_malloc(tsize, e);
    uint32_t *sorted = vk_malloc((size_t)s->h.gtes_per_gt * sizeof *sorted, e);
    if (!scratch || !sorted) {
        free(scratch);
        free(sorted);
        return VMDKIT_ENOMEM;
    }
    int r = 0;
    for (uint64_t i = 0; !r && i < s->num_gdes; i++) {
        /* progress: the first half of a hosted extent's check, the first
         * 5% of a stream's (whose records are walked afterwards) */
        vk_check_progress_step(s->c, 0, s->compressed ? 50 : 500, i, s->num_gdes);
        vk_copy_state *p = &s->pst[i], *q = &s->rst[i];
        bool pr = p->state == VK_T_SOUND, qr = s->has_rgd && q->state == VK_T_SOUND;
        if (pr && !(r = read_table(s, s->gd[i], s->tbl)))
            entries_plausible(s, s->tbl, p, sorted);
        if (!r && qr && !(r = read_table(s, s->rgd[i], scratch)))
            entries_plausible(s, scratch, q, sorted);
        /* two different tables, one where the layout keeps it and one elsewhere:
         * the one elsewhere is suspect, whatever the other looks like */
        bool pread = pr && (p->state == VK_T_SOUND || p->state == VK_T_BAD_ENTRIES);
        bool qread = qr && (q->state == VK_T_SOUND || q->state == VK_T_BAD_ENTRIES);
        if (r || !layout || !pread || !qread || memcmp(s->tbl, scratch, (size_t)s->gt_bytes) == 0)
            continue;
        bool pa = s->gd[i] == layout_place(s, false, i), qa = s->rgd[i] == layout_place(s, true, i);
        if (pa != qa) {
            vk_copy_state *off = pa ? q : p;
            off->state = VK_T_OFF_LAYOUT;
        }
    }
    free(scratch);
    free(sorted);
    if (r)
        return r;
    /* only sound tables count as metadata from here on */
    for (size_t k = 0; k < s->space.n_meta; k++) {
        vk_ival *m = &s->space.meta[k];
        if ((m->owner == VK_OWN_GT || m->owner == VK_OWN_RGT) &&
            state_of(s, m->owner, m->index)->state != VK_T_SOUND)
            m->dead = true;
    }
    return vk_space_commit(&s->space, e);
}

/* ---- describing problems ---- */

static const char *entry_why(uint8_t why)
{
    switch (why) {
    case VK_E_PAST_EOF:
        return "past the end of the file";
    case VK_E_IN_METADATA:
        return "inside the metadata before overHead";
    case VK_E_DUPLICATE:
        return "on a grain another entry of the table also uses";
    default:
        return "";
    }
}

/* One line describing why copy RED of table I is wrong; the byte offset of
 * the culprit goes to *OFF. */
static void describe(vk_sparse_check *s, bool red, uint64_t i, char *buf, size_t n, uint64_t *off)
{
    const vk_copy_state *st = red ? &s->rst[i] : &s->pst[i];
    uint32_t at = red ? s->rgd[i] : s->gd[i];
    uint64_t dir = red ? s->h.rgd_offset_sectors : s->h.gd_offset_sectors;
    char other[64];
    *off = dir * VK_SECTOR + 4 * i;
    switch (st->state) {
    case VK_T_ZERO:
        snprintf(buf, n, "%s entry %llu: 0 (no table)", dir_name(red), (unsigned long long)i);
        break;
    case VK_T_PAST_EOF:
        snprintf(buf, n,
                 "%s entry %llu: table at sector %u reaches past the end of the file (%llu sectors)",
                 dir_name(red), (unsigned long long)i, at, (unsigned long long)s->file_sectors);
        break;
    case VK_T_OVERLAP:
        snprintf(buf, n, "%s entry %llu: table at sector %u overlaps %s", dir_name(red),
                 (unsigned long long)i, at, vk_owner_name(st->owner, st->other, other, sizeof other));
        break;
    case VK_T_OFF_LAYOUT:
        snprintf(
            buf, n,
            "%s entry %llu: table at sector %u is not where this file keeps it (sector %llu), unlike its differing twin",
            dir_name(red), (unsigned long long)i, at, (unsigned long long)layout_place(s, red, i));
        break;
    case VK_T_BAD_ENTRIES:
        *off = (uint64_t)at * VK_SECTOR + 4 * st->other;
        snprintf(buf, n, "%s %llu (sector %u): entry %llu points at sector %u, %s", table_name(red),
                 (unsigned long long)i, at, (unsigned long long)st->other, st->value,
                 entry_why(st->why));
        break;
    default:
        snprintf(buf, n, "%s %llu (sector %u)", table_name(red), (unsigned long long)i, at);
        break;
    }
}

/* ---- planning repairs ---- */

/* Is entry value V of table T implausible on its own or shared with
 * another entry of T?  (SORTED: T's data entries, sorted; N of them.) */
static bool entry_wrong(const vk_sparse_check *s, uint32_t v, const uint32_t *sorted, size_t n)
{
    if (!is_data(s, v))
        return false;
    if (v >= s->file_sectors || v < s->h.overhead_sectors)
        return true;
    uint64_t len = s->compressed ? 1 : s->h.grain_sectors;
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first element >= v */
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* another entry equal to v, or one overlapping v's grain */
    if (lo + 1 < n && sorted[lo] == v && (uint64_t)v + len > sorted[lo + 1])
        return true;
    return lo > 0 && (uint64_t)sorted[lo - 1] + len > v;
}

/* Does table GOOD differ from table BAD only in entries BAD gets wrong?
 * Then the damage is local and GOOD is clearly the right copy. */
static int differs_only_where_wrong(vk_sparse_check *s, const uint8_t *good, const uint8_t *bad,
                                    bool *yes)
{
    uint32_t n = s->h.gtes_per_gt;
    uint32_t *sorted = vk_malloc((size_t)n * sizeof *sorted, s->c->e);
    if (!sorted)
        return VMDKIT_ENOMEM;
    size_t k = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t v = vk_le32(bad + 4 * j);
        if (is_data(s, v))
            sorted[k++] = v;
    }
    qsort(sorted, k, sizeof *sorted, cmp_u32);
    *yes = true;
    for (uint32_t j = 0; j < n && *yes; j++) {
        uint32_t v = vk_le32(bad + 4 * j);
        if (vk_le32(good + 4 * j) != v && !entry_wrong(s, v, sorted, k))
            *yes = false;
    }
    free(sorted);
    return 0;
}

/* Put a copy of table SRC (gt_sectors long) into copy RED of entry I: over
 * the old table when its place is right, else at the layout's place (when
 * free) or at the end of the file, and point the directory entry at it. */
static int plan_copy(vk_sparse_check *s, bool red, uint64_t i, const uint8_t *src, int kind,
                     const char *from)
{
    vk_check *c = s->c;
    uint32_t *dir = red ? s->rgd : s->gd;
    const vk_copy_state *st = red ? &s->rst[i] : &s->pst[i];
    size_t tsize = (size_t)(s->gt_sectors * VK_SECTOR);
    uint64_t dir_off = (red ? s->h.rgd_offset_sectors : s->h.gd_offset_sectors) * VK_SECTOR + 4 * i;
    if (dir[i] && (st->state == VK_T_SOUND || st->state == VK_T_BAD_ENTRIES))
        return vk_check_plan_write(c, VK_FIX_TABLES, kind, s->x->file, (uint64_t)dir[i] * VK_SECTOR, src,
                                   tsize, "%s: %s %llu (sector %u): rewritten from %s", s->file,
                                   table_name(red), (unsigned long long)i, dir[i], from);
    uint64_t at = layout_place(s, red, i);
    bool layout_free = s->layout && at + s->gt_sectors <= s->h.overhead_sectors &&
                       at + s->gt_sectors <= s->file_sectors &&
                       !vk_space_any_hit(&s->space, at, s->gt_sectors, red ? VK_OWN_RGT : VK_OWN_GT, i);
    if (layout_free) {
        /* the old table usually still lies there: overwrite it only when it
         * already says the same, never destroy a table that says otherwise */
        uint8_t *old = vk_malloc(tsize, c->e);
        if (!old)
            return VMDKIT_ENOMEM;
        int r = read_table(s, (uint32_t)at, old);
        size_t n = (size_t)s->gt_bytes;
        layout_free = !r && (vk_is_zero(old, n) || memcmp(old, src, n) == 0);
        free(old);
        if (r)
            return r;
    }
    if (!layout_free) {
        at = s->append_next;
        uint64_t next = at + vk_div_round_up(s->gt_sectors, s->h.grain_sectors) * s->h.grain_sectors;
        if (next > VK_MAX_EXTENT_FILE_SECTORS) {
            vk_check_note(c, VMDKIT_FIND_UNREPAIRED, s->file, dir_off,
                          "%s: no room for a new grain table below 2 TiB; left alone", s->file);
            return 0;
        }
        s->append_next = next;
        c->plan_grows_file = true;
    }
    uint8_t le[4];
    vk_put32(le, (uint32_t)at);
    int r = vk_check_plan_write(c, VK_FIX_TABLES, kind, s->x->file, at * VK_SECTOR, src, tsize,
                                "%s: %s %llu: written at sector %llu from %s", s->file, table_name(red),
                                (unsigned long long)i, (unsigned long long)at, from);
    if (!r)
        r = vk_check_plan_write(c, VK_FIX_DIRECTORY, kind, s->x->file, dir_off, le, 4,
                                "%s: %s entry %llu: set to %llu (was %u)", s->file, dir_name(red),
                                (unsigned long long)i, (unsigned long long)at, dir[i]);
    return r;
}

/* ---- grains ---- */

/* Check the grains entry by entry of table T (at sector AT, copy RED of
 * entry I), report what is wrong and mark the space of the sound ones. */
static int check_grains(vk_sparse_check *s, uint64_t i, const uint8_t *t, uint32_t at, bool red)
{
    vk_check *c = s->c;
    char other[64], why[160];
    uint64_t g0 = i * s->h.gtes_per_gt;
    uint64_t gs = s->h.grain_sectors;
    for (uint32_t j = 0; j < s->h.gtes_per_gt; j++) {
        uint32_t v = vk_le32(t + 4 * j);
        if (!is_data(s, v))
            continue;
        uint64_t g = g0 + j;
        uint64_t off = (uint64_t)at * VK_SECTOR + 4 * j;
        const char *tn = table_name(red);
        if (v >= s->file_sectors) {
            vk_check_report(
                c, VMDKIT_FIND_CORRUPT, s->file, off,
                "%s: %s %llu entry %u (grain %llu): sector %u lies past the end of the file (%llu sectors)",
                s->file, tn, (unsigned long long)i, j, (unsigned long long)g, v,
                (unsigned long long)s->file_sectors);
            continue;
        }
        if (v < s->h.overhead_sectors) {
            vk_check_report(
                c, VMDKIT_FIND_CORRUPT, s->file, off,
                "%s: %s %llu entry %u (grain %llu): sector %u lies inside the metadata before overHead (%llu)",
                s->file, tn, (unsigned long long)i, j, (unsigned long long)g, v,
                (unsigned long long)s->h.overhead_sectors);
            continue;
        }
        const vk_ival *hit = vk_space_meta_hit(&s->space, v, s->compressed ? 1 : gs);
        if (hit) {
            vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, off,
                            "%s: %s %llu entry %u (grain %llu): sector %u lies inside %s", s->file, tn,
                            (unsigned long long)i, j, (unsigned long long)g, v,
                            vk_owner_name(hit->owner, hit->index, other, sizeof other));
            continue;
        }
        if (s->compressed) {
            bool ok;
            uint64_t rec = 0;
            int r = vk_check_compressed_grain(s, g, v, &ok, &rec, why, sizeof why);
            if (r)
                return r;
            if (!ok) {
                vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, (uint64_t)v * VK_SECTOR,
                                "%s: grain %llu (%s %llu entry %u): %s", s->file, (unsigned long long)g,
                                tn, (unsigned long long)i, j, why);
                if ((r = vk_check_bad_record_add(s, v)))
                    return r;
                continue;
            }
            vk_space_mark_used(&s->space, v, rec);
            s->data_gtes++;
            continue;
        }
        if (vk_space_grain_clash(&s->space, v, gs)) {
            vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, off,
                            "%s: %s %llu entry %u (grain %llu): sector %u is also used by another grain",
                            s->file, tn, (unsigned long long)i, j, (unsigned long long)g, v);
            continue;
        }
        int r = vk_space_mark_grain(&s->space, v, gs, g, c->e);
        if (r)
            return r;
        s->data_gtes++;
        if ((uint64_t)v + gs > s->file_sectors)
            s->tail_grains++;
    }
    return 0;
}

/* Count the space a table's entries may reference (no judgement). */
static void mark_referenced(vk_sparse_check *s, const uint8_t *t)
{
    for (uint32_t j = 0; j < s->h.gtes_per_gt; j++) {
        uint32_t v = vk_le32(t + 4 * j);
        if (is_data(s, v) && v < s->file_sectors && v >= s->h.overhead_sectors)
            vk_space_mark_ref(&s->space, v, s->compressed ? 1 : s->h.grain_sectors);
    }
}

static void report_bad(vk_sparse_check *s, bool red, uint64_t i, const char *tail)
{
    char what[320];
    uint64_t off;
    describe(s, red, i, what, sizeof what, &off);
    vk_check_report(s->c, VMDKIT_FIND_CORRUPT, s->file, off, "%s: %s%s", s->file, what, tail);
}

/* The grain table has no redundant copy, or both copies are the same bytes
 * at sound places: judge its entries one by one. */
static int single(vk_sparse_check *s, uint64_t i)
{
    vk_copy_state *p = &s->pst[i];
    if (p->state == VK_T_ZERO)
        return 0;
    if (p->state == VK_T_SOUND || p->state == VK_T_BAD_ENTRIES) {
        s->auth[i] = VK_AUTH_PRIMARY;
        return check_grains(s, i, s->tbl, s->gd[i], false);
    }
    report_bad(s, false, i, "");
    if (readable(p))
        mark_referenced(s, s->tbl);
    else
        s->space_uncertain = true;
    return 0;
}

static int pair(vk_sparse_check *s, uint64_t i, bool unclean)
{
    vk_check *c = s->c;
    vk_copy_state *p = &s->pst[i], *q = &s->rst[i];
    bool pz = p->state == VK_T_ZERO, qz = q->state == VK_T_ZERO;
    bool pg = p->state == VK_T_SOUND, qg = q->state == VK_T_SOUND;
    bool plan = c->plan && s->x->repairable;
    int r = 0;
    char from[96];
    if (pz && qz)
        return 0;
    if (readable(p) && readable(q) && memcmp(s->tbl, s->rtbl, (size_t)s->gt_bytes) == 0 &&
        (p->state == VK_T_SOUND || p->state == VK_T_BAD_ENTRIES) &&
        (q->state == VK_T_SOUND || q->state == VK_T_BAD_ENTRIES))
        return single(s, i); /* the same table twice: its entries are what matters */

    if ((pg || pz) && (qg || qz)) {
        /* both copies plausible, yet different */
        if (pz != qz && s->layout) {
            /* every table of this file was allocated with it: a 0 is damage */
            bool red_bad = qz;
            char what[320];
            uint64_t off;
            describe(s, red_bad, i, what, sizeof what, &off);
            vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, off,
                            "%s: %s while its twin points at a sound table", s->file, what);
            s->auth[i] = red_bad ? VK_AUTH_PRIMARY : VK_AUTH_REDUNDANT;
            snprintf(from, sizeof from, "%s %llu", table_name(!red_bad), (unsigned long long)i);
            if (plan)
                r = plan_copy(s, red_bad, i, red_bad ? s->tbl : s->rtbl, VMDKIT_FIND_CORRUPT, from);
        } else if (unclean) {
            vk_check_report(
                c, VMDKIT_FIND_STALE, s->file, s->h.rgd_offset_sectors * VK_SECTOR + 4 * i,
                "%s: redundant grain table %llu differs from grain table %llu, as an interrupted update leaves it (the unclean-shutdown flag is set)",
                s->file, (unsigned long long)i, (unsigned long long)i);
            s->auth[i] = VK_AUTH_PRIMARY;
            if (plan && pz) {
                uint8_t zero[4] = {0};
                r = vk_check_plan_write(
                    c, VK_FIX_DIRECTORY, VMDKIT_FIND_STALE, s->x->file,
                    s->h.rgd_offset_sectors * VK_SECTOR + 4 * i, zero, 4,
                    "%s: redundant grain directory entry %llu: set to 0 like the grain directory (was %u)",
                    s->file, (unsigned long long)i, s->rgd[i]);
            } else if (plan) {
                snprintf(from, sizeof from, "grain table %llu", (unsigned long long)i);
                r = plan_copy(s, true, i, s->tbl, VMDKIT_FIND_STALE, from);
            }
        } else {
            vk_check_report(
                c, VMDKIT_FIND_CORRUPT, s->file, (uint64_t)(s->gd[i] ? s->gd[i] : s->rgd[i]) * VK_SECTOR,
                "%s: grain table %llu (sector %u) and its redundant copy (sector %u) differ; both look sound, so which is right cannot be told",
                s->file, (unsigned long long)i, s->gd[i], s->rgd[i]);
            s->auth[i] = VK_AUTH_PRIMARY;
            if (plan)
                vk_check_note(c, VMDKIT_FIND_UNREPAIRED, s->file, (uint64_t)s->gd[i] * VK_SECTOR,
                              "%s: grain table %llu: the copies differ and both look sound: left alone",
                              s->file, (unsigned long long)i);
        }
    } else if (pg || qg) {
        /* one copy sound and in use, the other wrong: repair from the sound one */
        bool red_bad = pg;
        const vk_copy_state *b = red_bad ? q : p;
        bool clear = true;
        if (b->state == VK_T_BAD_ENTRIES &&
            (r = differs_only_where_wrong(s, red_bad ? s->tbl : s->rtbl, red_bad ? s->rtbl : s->tbl,
                                          &clear)))
            return r;
        report_bad(
            s, red_bad, i,
            !clear
                ? "; the copies also differ in entries that look right, so which is right cannot be told"
            : red_bad ? "; the primary table is sound"
                      : "; the redundant copy is sound");
        s->auth[i] = red_bad ? VK_AUTH_PRIMARY : VK_AUTH_REDUNDANT;
        snprintf(from, sizeof from, "%s %llu (sector %u)", table_name(!red_bad), (unsigned long long)i,
                 red_bad ? s->gd[i] : s->rgd[i]);
        if (plan && clear)
            r = plan_copy(s, red_bad, i, red_bad ? s->tbl : s->rtbl, VMDKIT_FIND_CORRUPT, from);
        else if (plan)
            vk_check_note(c, VMDKIT_FIND_UNREPAIRED, s->file,
                          (uint64_t)(red_bad ? s->rgd[i] : s->gd[i]) * VK_SECTOR,
                          "%s: %s %llu: left alone", s->file, table_name(red_bad),
                          (unsigned long long)i);
    } else {
        /* neither copy can be trusted */
        if (!pz)
            report_bad(s, false, i, "");
        if (!qz)
            report_bad(s, true, i, "");
        if (plan)
            vk_check_note(c, VMDKIT_FIND_UNREPAIRED, s->file, s->h.gd_offset_sectors * VK_SECTOR + 4 * i,
                          "%s: grain table %llu: neither copy is sound: left alone", s->file,
                          (unsigned long long)i);
        if (readable(p))
            mark_referenced(s, s->tbl);
        if (readable(q))
            mark_referenced(s, s->rtbl);
        s->space_uncertain = true;
        return 0;
    }
    if (r)
        return r;
    /* the trusted copy's grains first; the other copy's stay referenced */
    bool red = s->auth[i] == VK_AUTH_REDUNDANT;
    if (!(red ? qz : pz) &&
        (r = check_grains(s, i, red ? s->rtbl : s->tbl, red ? s->rgd[i] : s->gd[i], red)))
        return r;
    if (readable(red ? p : q))
        mark_referenced(s, red ? s->tbl : s->rtbl);
    return 0;
}

int vk_check_tables_grains(vk_sparse_check *s)
{
    bool unclean = s->h.unclean_shutdown != 0;
    for (uint64_t i = 0; i < s->num_gdes; i++) {
        /* progress: the second half of a hosted extent's check, the next 5%
         * of a stream's */
        vk_check_progress_step(s->c, s->compressed ? 50 : 500, s->compressed ? 100 : 1000, i,
                               s->num_gdes);
        vk_copy_state *p = &s->pst[i], *q = &s->rst[i];
        int r = 0;
        if (readable(p))
            r = read_table(s, s->gd[i], s->tbl);
        if (!r && s->has_rgd && readable(q))
            r = read_table(s, s->rgd[i], s->rtbl);
        if (!r)
            r = s->has_rgd ? pair(s, i, unclean) : single(s, i);
        if (r)
            return r;
    }
    return 0;
}

int vk_check_trusted_gte(vk_sparse_check *s, uint64_t g, uint32_t *gte)
{
    uint64_t i = g / s->h.gtes_per_gt;
    *gte = 0;
    if (i >= s->num_gdes || s->auth[i] == VK_AUTH_NONE)
        return 0;
    uint32_t at = s->auth[i] == VK_AUTH_REDUNDANT ? s->rgd[i] : s->gd[i];
    if (!at)
        return 0;
    if (!s->walk_gt_valid || s->walk_gt_index != i) {
        if (!s->walk_gt && !(s->walk_gt = vk_malloc((size_t)s->gt_bytes, s->c->e)))
            return VMDKIT_ENOMEM;
        int r = read_table(s, at, s->tbl);
        if (r)
            return r;
        for (uint32_t j = 0; j < s->h.gtes_per_gt; j++)
            s->walk_gt[j] = vk_le32(s->tbl + 4 * j);
        s->walk_gt_index = i;
        s->walk_gt_valid = true;
    }
    *gte = s->walk_gt[g % s->h.gtes_per_gt];
    return 0;
}
