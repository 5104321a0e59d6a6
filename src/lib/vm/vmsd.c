/* vmsd.c - the .vmsd snapshot database: a typed view over a lossless
 * vk_vmx, and the edits VMware makes when it takes, reverts to and deletes
 * snapshots.  Each edit changes the lines it must and rebuilds the view. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "path.h"
#include "vmsd.h"

/* More entries than this are refused (VMware allows a few hundred). */
#define MAX_SNAPSHOTS 10000u
/* Length of the mru list vmdkit keeps (Workstation's own limit is not
 * known; files with three entries are seen). */
#define MRU_KEEP 16u

static const char k_last_uid[] = "snapshot.lastUID";
static const char k_current[] = "snapshot.current";
static const char k_num[] = "snapshot.numSnapshots";

/* ---- numbers ---- */

/* Leading decimal digits of S as a number no larger than MAX; *END is
 * the first byte after them.  False when there are none or too many. */
static bool lead_number(const char *s, unsigned long max, unsigned long *out, const char **end)
{
    unsigned long v = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
        p++;
    }
    if (p == s)
        return false;
    *out = v;
    *end = p;
    return true;
}

/* A whole value: decimal, optionally signed, in [MIN, MAX]. */
static bool whole_number(const char *s, long long min, long long max, long long *out)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max || (*s == '+'))
        return false;
    *out = v;
    return true;
}

static int bad_number(const vk_vmsd *s, const char *key, const char *value, vk_err *e)
{
    return vk_fail(e, VMDKIT_EFORMAT, "%s: %s: \"%.40s\" is not a valid number here",
                   vk_vmx_path(s->file), key, value);
}

static int parse_uid(const vk_vmsd *s, const char *key, const char *value, uint32_t *out, vk_err *e)
{
    long long v;
    if (!whole_number(value, 0, UINT32_MAX, &v))
        return bad_number(s, key, value, e);
    *out = (uint32_t)v;
    return 0;
}

int64_t vk_vmsd_time_join(int64_t high, int64_t low)
{
    return (int64_t)((uint64_t)high << 32 | (uint32_t)low);
}

void vk_vmsd_time_split(int64_t us, int32_t *high, int32_t *low)
{
    *high = (int32_t)(us >> 32);
    *low = (int32_t)(uint32_t)((uint64_t)us & 0xffffffffu);
}

/* ---- keys ---- */

enum field {
    F_UID,
    F_PARENT,
    F_FILENAME,
    F_DISPLAY_NAME,
    F_DESCRIPTION,
    F_TYPE,
    F_TIME_HIGH,
    F_TIME_LOW,
    F_DISK_FILE,
    F_DISK_NODE,
    F_CLONE,
    F_IGNORED,
};

/* Does KEY start with WORD (any case) followed by an index?  *INDEX and
 * *REST (what follows the digits) are set. */
static bool indexed(const char *key, const char *word, unsigned long *index, const char **rest)
{
    size_t n = strlen(word);
    return strncasecmp(key, word, n) == 0 && lead_number(key + n, VK_VMSD_MAX_INDEX, index, rest);
}

/* Does KEY look indexed by WORD but with an index out of range? */
static bool index_too_large(const char *key, const char *word)
{
    size_t n = strlen(word);
    return strncasecmp(key, word, n) == 0 && isdigit((unsigned char)key[n]);
}

/* The field of "snapshotN.REST"; *SUB gets M of diskM / cloneM. */
static enum field field_of(const char *rest, unsigned long *sub, bool *bad_index)
{
    static const struct {
        const char *name;
        enum field f;
    } plain[] = {
        {"uid", F_UID},
        {"parent", F_PARENT},
        {"filename", F_FILENAME},
        {"displayName", F_DISPLAY_NAME},
        {"description", F_DESCRIPTION},
        {"type", F_TYPE},
        {"createTimeHigh", F_TIME_HIGH},
        {"createTimeLow", F_TIME_LOW},
    };
    *bad_index = false;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strcasecmp(rest, plain[i].name) == 0)
            return plain[i].f;
    const char *after;
    if (indexed(rest, "disk", sub, &after)) {
        if (strcasecmp(after, ".fileName") == 0)
            return F_DISK_FILE;
        if (strcasecmp(after, ".node") == 0)
            return F_DISK_NODE;
    } else if (indexed(rest, "clone", sub, &after) && !*after) {
        return F_CLONE;
    } else if (index_too_large(rest, "disk") || index_too_large(rest, "clone")) {
        *bad_index = true;
    }
    return F_IGNORED; /* numDisks, numClones (recomputed on writing) and keys not known */
}

/* One "snapshotN.*" line of the file, or an mruN, cloneOfN, sentinelN one. */
struct item {
    unsigned long index; /* N */
    int group;           /* 0 scalar, 1 disk, 2 clone: sorts disks and clones after */
    unsigned long sub;   /* M */
    size_t pos;          /* file order: the last line wins */
    enum field f;
    const char *key;
    const char *value;
};

static int item_cmp(const void *pa, const void *pb)
{
    const struct item *a = pa, *b = pb;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    if (a->sub != b->sub)
        return a->sub < b->sub ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

struct items {
    struct item *v;
    size_t n;
};

/* ---- the view ---- */

static void snap_clear(vk_vmsd_snap *sn)
{
    free(sn->display_name);
    free(sn->description);
    free(sn->filename);
    free(sn->type);
    for (size_t i = 0; i < sn->n_disks; i++) {
        free(sn->disks[i].file);
        free(sn->disks[i].node);
    }
    free(sn->disks);
    vmdkit_paths_free(sn->clones, sn->n_clones);
    memset(sn, 0, sizeof *sn);
}

static void view_clear(vk_vmsd *s)
{
    for (size_t i = 0; i < s->n_snaps; i++)
        snap_clear(&s->snaps[i]);
    free(s->snaps);
    free(s->mru);
    vmdkit_paths_free(s->clone_of, s->n_clone_of);
    vmdkit_paths_free(s->sentinels, s->n_sentinels);
    s->snaps = NULL;
    s->mru = NULL;
    s->clone_of = s->sentinels = NULL;
    s->n_snaps = s->n_mru = s->n_clone_of = s->n_sentinels = 0;
    s->last_uid = s->current = 0;
    s->has_current = s->has_num_snapshots = false;
    s->num_snapshots = 0;
}

/* Replace *SLOT by a copy of VALUE. */
static int set_str(char **slot, const char *value, vk_err *e)
{
    char *c = vk_strdup(value, e);
    if (!c)
        return VMDKIT_ENOMEM;
    free(*slot);
    *slot = c;
    return 0;
}

/* The values of a sorted run of indexed items (mruN, cloneOfN, sentinelN),
 * one per index, the last line winning. */
static int indexed_strings(const struct items *it, char ***out, size_t *n, vk_err *e)
{
    *out = vk_calloc(it->n + 1, sizeof **out, e);
    if (!*out)
        return VMDKIT_ENOMEM;
    *n = 0;
    for (size_t i = 0; i < it->n; i++) {
        bool same = *n > 0 && i > 0 && it->v[i - 1].index == it->v[i].index;
        if (!same)
            (*n)++;
        if (set_str(&(*out)[*n - 1], it->v[i].value, e))
            return VMDKIT_ENOMEM;
    }
    return 0;
}

/* Build one entry from its sorted items [FIRST, END). */
static int build_snap(vk_vmsd *s, const struct item *v, size_t first, size_t end, vk_vmsd_snap *sn,
                      vk_err *e)
{
    sn->index = v[first].index;
    bool has_uid = false, has_high = false, has_low = false;
    long long high = 0, low = 0;
    int r = 0;
    for (size_t i = first; !r && i < end; i++) {
        const struct item *it = &v[i];
        switch (it->f) {
        case F_UID:
            r = parse_uid(s, it->key, it->value, &sn->uid, e);
            has_uid = true;
            break;
        case F_PARENT:
            r = parse_uid(s, it->key, it->value, &sn->parent, e);
            sn->has_parent = true;
            break;
        case F_FILENAME:
            r = set_str(&sn->filename, it->value, e);
            break;
        case F_DISPLAY_NAME:
            r = set_str(&sn->display_name, it->value, e);
            break;
        case F_DESCRIPTION:
            r = set_str(&sn->description, it->value, e);
            break;
        case F_TYPE:
            r = set_str(&sn->type, it->value, e);
            break;
        case F_TIME_HIGH:
            if (!whole_number(it->value, INT32_MIN, INT32_MAX, &high))
                r = bad_number(s, it->key, it->value, e);
            has_high = true;
            break;
        case F_TIME_LOW:
            if (!whole_number(it->value, INT32_MIN, UINT32_MAX, &low))
                r = bad_number(s, it->key, it->value, e);
            has_low = true;
            break;
        case F_DISK_FILE:
        case F_DISK_NODE: {
            if (!sn->n_disks || sn->disks[sn->n_disks - 1].index != it->sub) {
                vk_vmsd_disk *nd = realloc(sn->disks, (sn->n_disks + 1) * sizeof *nd);
                if (!nd)
                    return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
                sn->disks = nd;
                memset(&nd[sn->n_disks], 0, sizeof *nd);
                nd[sn->n_disks++].index = it->sub;
            }
            vk_vmsd_disk *d = &sn->disks[sn->n_disks - 1];
            r = set_str(it->f == F_DISK_FILE ? &d->file : &d->node, it->value, e);
            break;
        }
        case F_CLONE: {
            /* items of one M are adjacent: the last line wins */
            bool same = i > first && v[i - 1].f == F_CLONE && v[i - 1].sub == it->sub;
            if (!same) {
                char **nc = realloc(sn->clones, (sn->n_clones + 1) * sizeof *nc);
                if (!nc)
                    return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
                sn->clones = nc;
                nc[sn->n_clones++] = NULL;
            }
            r = set_str(&sn->clones[sn->n_clones - 1], it->value, e);
            break;
        }
        case F_IGNORED:
            break;
        }
    }
    if (r)
        return r;
    if (!has_uid)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: snapshot%lu: an entry without snapshot%lu.uid",
                       vk_vmx_path(s->file), sn->index, sn->index);
    if (has_high && has_low) {
        sn->has_time = true;
        sn->create_time_us = vk_vmsd_time_join(high, low);
    }
    return 0;
}

static int uid_cmp(const void *pa, const void *pb)
{
    const vk_vmsd_snap *const *a = pa, *const *b = pb;
    return ((*a)->uid > (*b)->uid) - ((*a)->uid < (*b)->uid);
}

/* Two entries with one UID make the tree ambiguous. */
static int check_unique_uids(const vk_vmsd *s, vk_err *e)
{
    if (s->n_snaps < 2)
        return 0;
    const vk_vmsd_snap **by_uid = vk_calloc(s->n_snaps, sizeof *by_uid, e);
    if (!by_uid)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; i < s->n_snaps; i++)
        by_uid[i] = &s->snaps[i];
    qsort(by_uid, s->n_snaps, sizeof *by_uid, uid_cmp);
    int r = 0;
    for (size_t i = 1; !r && i < s->n_snaps; i++)
        if (by_uid[i]->uid == by_uid[i - 1]->uid)
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: snapshot%lu.uid: %u is also the uid of snapshot%lu",
                        vk_vmx_path(s->file), by_uid[i]->index, by_uid[i]->uid, by_uid[i - 1]->index);
    free(by_uid);
    return r;
}

/* Read the typed view out of s->file. */
static int build_view(vk_vmsd *s, vk_err *e)
{
    view_clear(s);
    size_t n_entries = 0, pos = 0;
    const char *key, *value;
    while (vk_vmx_next(s->file, &pos, &key, &value))
        n_entries++;
    struct items snaps = {0}, mru = {0}, clone_of = {0}, sentinels = {0};
    snaps.v = vk_calloc(n_entries + 1, sizeof *snaps.v, e);
    mru.v = vk_calloc(n_entries + 1, sizeof *mru.v, e);
    clone_of.v = vk_calloc(n_entries + 1, sizeof *clone_of.v, e);
    sentinels.v = vk_calloc(n_entries + 1, sizeof *sentinels.v, e);
    int r = snaps.v && mru.v && clone_of.v && sentinels.v ? 0 : VMDKIT_ENOMEM;
    const char *path = vk_vmx_path(s->file);

    pos = 0;
    for (size_t k = 0; !r && vk_vmx_next(s->file, &pos, &key, &value); k++) {
        unsigned long index, sub = 0;
        const char *rest;
        struct item it = {.pos = k, .key = key, .value = value};
        bool bad_sub = false;
        if (indexed(key, "snapshot.mru", &index, &rest) && strcasecmp(rest, ".uid") == 0) {
            it.index = index;
            mru.v[mru.n++] = it;
        } else if (indexed(key, "snapshot", &index, &rest) && *rest == '.') {
            it.index = index;
            it.f = field_of(rest + 1, &sub, &bad_sub);
            it.sub = sub;
            it.group = it.f == F_DISK_FILE || it.f == F_DISK_NODE ? 1 : it.f == F_CLONE ? 2 : 0;
            snaps.v[snaps.n++] = it;
        } else if (indexed(key, "cloneOf", &index, &rest) && !*rest) {
            it.index = index;
            clone_of.v[clone_of.n++] = it;
        } else if (indexed(key, "sentinel", &index, &rest) && !*rest) {
            it.index = index;
            sentinels.v[sentinels.n++] = it;
        } else if (index_too_large(key, "snapshot") || index_too_large(key, "snapshot.mru") ||
                   index_too_large(key, "cloneOf") || index_too_large(key, "sentinel")) {
            bad_sub = true;
        }
        if (bad_sub)
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: %.64s: index larger than %lu", path, key,
                        VK_VMSD_MAX_INDEX);
    }
    if (!r) {
        qsort(snaps.v, snaps.n, sizeof *snaps.v, item_cmp);
        qsort(mru.v, mru.n, sizeof *mru.v, item_cmp);
        qsort(clone_of.v, clone_of.n, sizeof *clone_of.v, item_cmp);
        qsort(sentinels.v, sentinels.n, sizeof *sentinels.v, item_cmp);
    }
    /* entries: one run of items per index */
    size_t n_snaps = 0;
    for (size_t i = 0; i < snaps.n; i++)
        n_snaps += i == 0 || snaps.v[i].index != snaps.v[i - 1].index;
    if (!r && n_snaps > MAX_SNAPSHOTS)
        r = vk_fail(e, VMDKIT_ELIMIT, "%s: %zu snapshots, more than the %u accepted", path, n_snaps,
                    MAX_SNAPSHOTS);
    if (!r && !(s->snaps = vk_calloc(n_snaps + 1, sizeof *s->snaps, e)))
        r = VMDKIT_ENOMEM;
    for (size_t first = 0, end; !r && first < snaps.n; first = end) {
        for (end = first + 1; end < snaps.n && snaps.v[end].index == snaps.v[first].index; end++)
            ;
        r = build_snap(s, snaps.v, first, end, &s->snaps[s->n_snaps], e);
        s->n_snaps++;
    }
    char **mru_s = NULL;
    size_t n_mru = 0;
    if (!r)
        r = indexed_strings(&mru, &mru_s, &n_mru, e);
    if (!r && !(s->mru = vk_calloc(n_mru + 1, sizeof *s->mru, e)))
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < n_mru; i++, s->n_mru++)
        r = parse_uid(s, "snapshot.mruN.uid", mru_s[i], &s->mru[i], e);
    vmdkit_paths_free(mru_s, n_mru);
    if (!r)
        r = indexed_strings(&clone_of, &s->clone_of, &s->n_clone_of, e);
    if (!r)
        r = indexed_strings(&sentinels, &s->sentinels, &s->n_sentinels, e);

    const char *v;
    if (!r && (v = vk_vmx_get(s->file, k_last_uid)))
        r = parse_uid(s, k_last_uid, v, &s->last_uid, e);
    if (!r && (v = vk_vmx_get(s->file, k_current))) {
        r = parse_uid(s, k_current, v, &s->current, e);
        s->has_current = true;
    }
    long long num = 0;
    if (!r && (v = vk_vmx_get(s->file, k_num))) {
        if (!whole_number(v, 0, UINT32_MAX, &num))
            r = bad_number(s, k_num, v, e);
        s->num_snapshots = (unsigned long)num;
        s->has_num_snapshots = true;
    }
    if (!r)
        r = check_unique_uids(s, e);
    free(snaps.v);
    free(mru.v);
    free(clone_of.v);
    free(sentinels.v);
    return r;
}

void vk_vmsd_free(vk_vmsd *s)
{
    if (!s)
        return;
    view_clear(s);
    vk_vmx_free(s->file);
    free(s);
}

int vk_vmsd_parse(const char *path, const char *data, size_t len, vk_vmsd **out, vk_err *e)
{
    *out = NULL;
    vk_vmsd *s = vk_calloc(1, sizeof *s, e);
    if (!s)
        return VMDKIT_ENOMEM;
    int r = vk_vmx_parse(path, data, len, &s->file, e);
    if (!r)
        r = build_view(s, e);
    if (r) {
        vk_vmsd_free(s);
        return r;
    }
    s->existed = true;
    *out = s;
    return 0;
}

int vk_vmsd_load(const char *path, vk_vmsd **out, vk_err *e)
{
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int r = vk_read_file(path, VK_VMX_MAX_BYTES, &data, &len, e);
    bool missing = r == VMDKIT_ENOENT;
    if (r && !missing)
        return r;
    r = vk_vmsd_parse(path, missing ? "" : data, missing ? 0 : len, out, e);
    free(data);
    if (!r)
        (*out)->existed = !missing;
    return r;
}

char *vk_vmsd_path_for(const char *vmx_path, vk_err *e)
{
    size_t n = strlen(vmx_path);
    if (vk_path_has_suffix(vmx_path, ".vmx"))
        n -= 4;
    char *p = vk_malloc(n + 6, e);
    if (p) {
        memcpy(p, vmx_path, n);
        memcpy(p + n, ".vmsd", 6);
    }
    return p;
}

const vk_vmsd_snap *vk_vmsd_find(const vk_vmsd *s, uint32_t uid)
{
    for (size_t i = 0; i < s->n_snaps; i++)
        if (s->snaps[i].uid == uid)
            return &s->snaps[i];
    return NULL;
}

int vk_vmsd_save(const vk_vmsd *s, vk_err *e) { return vk_vmx_save(s->file, e); }

/* ---- edits ---- */

/* "snapshotN.FIELD" in BUF. */
static const char *snap_key(char *buf, size_t n, unsigned long index, const char *field)
{
    snprintf(buf, n, "snapshot%lu.%s", index, field);
    return buf;
}

static int set_u32(vk_vmsd *s, const char *key, uint32_t value, const char *after, vk_err *e)
{
    char v[16];
    snprintf(v, sizeof v, "%u", value);
    return vk_vmx_set_after(s->file, key, v, after, e);
}

/* The key (as spelled) of the last line of any entry, or NULL. */
static char *last_entry_key(const vk_vmsd *s, vk_err *e)
{
    size_t pos = 0;
    const char *key, *value, *last = NULL, *rest;
    unsigned long index;
    while (vk_vmx_next(s->file, &pos, &key, &value))
        if (indexed(key, "snapshot", &index, &rest) && *rest == '.')
            last = key;
    return last ? vk_strdup(last, e) : NULL;
}

/* The key (as spelled) of the last mru line, or NULL. */
static char *last_mru_key(const vk_vmsd *s, vk_err *e)
{
    size_t pos = 0;
    const char *key, *value, *last = NULL, *rest;
    unsigned long index;
    while (vk_vmx_next(s->file, &pos, &key, &value))
        if (indexed(key, "snapshot.mru", &index, &rest) && strcasecmp(rest, ".uid") == 0)
            last = key;
    return last ? vk_strdup(last, e) : NULL;
}

struct mru_trim {
    size_t keep; /* mru indices below this stay */
};

static int drop_mru_from(void *opaque, const char *key, char **new_key, vk_err *e)
{
    (void)new_key;
    (void)e;
    const struct mru_trim *t = opaque;
    unsigned long index;
    const char *rest;
    if (indexed(key, "snapshot.mru", &index, &rest) && strcasecmp(rest, ".uid") == 0 && index >= t->keep)
        return VK_VMX_DROP;
    return VK_VMX_KEEP;
}

/* UID first in the mru list, the others after it in their order. */
static int mru_push(vk_vmsd *s, uint32_t uid, vk_err *e)
{
    size_t cap = s->n_mru + 1;
    uint32_t *list = vk_calloc(cap, sizeof *list, e);
    if (!list)
        return VMDKIT_ENOMEM;
    size_t n = 0;
    list[n++] = uid;
    for (size_t i = 0; i < s->n_mru; i++)
        if (s->mru[i] != uid)
            list[n++] = s->mru[i];
    size_t keep = s->n_mru > MRU_KEEP ? s->n_mru : MRU_KEEP;
    if (n > keep)
        n = keep;
    /* a new list goes after the count, where VMware has it (or at the end) */
    char *after = last_mru_key(s, e);
    int r = 0;
    if (!after && vk_vmx_get(s->file, k_num) && !(after = vk_strdup(k_num, e)))
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < n; i++) {
        char key[48];
        snprintf(key, sizeof key, "snapshot.mru%zu.uid", i);
        r = set_u32(s, key, list[i], after, e);
        if (!r) {
            free(after);
            if (!(after = vk_strdup(key, e)))
                r = VMDKIT_ENOMEM;
        }
    }
    struct mru_trim t = {.keep = n};
    if (!r)
        r = vk_vmx_rekey(s->file, drop_mru_from, &t, e);
    free(after);
    free(list);
    return r;
}

/* An edit writes several keys, and any step may fail (a value the file's
 * encoding cannot hold, no memory): the text before it is kept, and put
 * back when a step fails, so that the file in memory and its view always
 * agree and a refused edit leaves nothing half done. */
typedef struct edit_undo {
    char *text;
    size_t len;
} edit_undo;

static int edit_begin(const vk_vmsd *s, edit_undo *u, vk_err *e)
{
    return vk_vmx_serialize(s->file, &u->text, &u->len, e);
}

/* End an edit whose result is R: undone unless R is 0. */
static int edit_end(vk_vmsd *s, edit_undo *u, int r)
{
    vk_vmx *back;
    if (r && vk_vmx_parse(vk_vmx_path(s->file), u->text, u->len, &back, NULL) == 0) {
        vk_vmx_free(s->file);
        s->file = back;
        (void)build_view(s, NULL);
    }
    free(u->text);
    return r;
}

static int add_entry(vk_vmsd *s, const vk_vmsd_new *n, uint32_t *uid_out, vk_err *e)
{
    const char *path = vk_vmx_path(s->file);
    uint32_t max_uid = s->last_uid;
    unsigned long index = 0;
    for (size_t i = 0; i < s->n_snaps; i++) {
        if (s->snaps[i].uid > max_uid)
            max_uid = s->snaps[i].uid;
        if (s->snaps[i].index + 1 > index)
            index = s->snaps[i].index + 1;
    }
    if (max_uid == UINT32_MAX)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: %s: no snapshot uid left", path, k_last_uid);
    if (index > VK_VMSD_MAX_INDEX || s->n_snaps >= MAX_SNAPSHOTS)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: no room for another snapshot entry", path);
    uint32_t uid = max_uid + 1;
    bool has_parent = s->has_current && vk_vmsd_find(s, s->current);
    uint32_t parent = s->current;

    size_t pos = 0;
    const char *key, *value;
    int r = 0;
    if (!vk_vmx_next(s->file, &pos, &key, &value))
        r = vk_vmx_set(s->file, ".encoding", "UTF-8", e); /* a new or empty file */
    if (!r)
        r = set_u32(s, k_last_uid, uid, ".encoding", e);
    if (!r)
        r = set_u32(s, k_current, uid, k_last_uid, e);
    char *after = r ? NULL : last_entry_key(s, e);
    if (!r && !after && !(after = vk_strdup(k_current, e)))
        r = VMDKIT_ENOMEM;

    /* the entry, in the order VMware writes its keys */
    char name_buf[32], num[24], k[80];
    int32_t high, low;
    vk_vmsd_time_split(n->create_time_us, &high, &low);
    snprintf(name_buf, sizeof name_buf, "Snapshot %u", uid);
    struct {
        const char *field;
        char value[24];
        const char *text;
    } kv[] = {
        {"uid", "", NULL},
        {"parent", "", NULL},
        {"displayName", "", n->display_name ? n->display_name : name_buf},
        {"description", "", n->description},
        {"createTimeHigh", "", NULL},
        {"createTimeLow", "", NULL},
        {"numDisks", "", NULL},
    };
    snprintf(kv[0].value, sizeof kv[0].value, "%u", uid);
    snprintf(kv[1].value, sizeof kv[1].value, "%u", parent);
    snprintf(kv[4].value, sizeof kv[4].value, "%d", high);
    snprintf(kv[5].value, sizeof kv[5].value, "%d", low);
    snprintf(kv[6].value, sizeof kv[6].value, "%zu", n->n_disks);
    for (size_t i = 0; !r && i < sizeof kv / sizeof kv[0]; i++) {
        if ((i == 1 && !has_parent) || (i == 3 && !n->description))
            continue;
        snap_key(k, sizeof k, index, kv[i].field);
        r = vk_vmx_set_after(s->file, k, kv[i].text ? kv[i].text : kv[i].value, after, e);
        free(after);
        after = r ? NULL : vk_strdup(k, e);
        if (!r && !after)
            r = VMDKIT_ENOMEM;
    }
    for (size_t d = 0; !r && d < n->n_disks; d++) {
        for (int f = 0; !r && f < 2; f++) {
            char field[40];
            snprintf(field, sizeof field, "disk%zu.%s", d, f ? "node" : "fileName");
            snap_key(k, sizeof k, index, field);
            r = vk_vmx_set_after(s->file, k, f ? n->nodes[d] : n->files[d], after, e);
            free(after);
            after = r ? NULL : vk_strdup(k, e);
            if (!r && !after)
                r = VMDKIT_ENOMEM;
        }
    }
    snprintf(num, sizeof num, "%zu", s->n_snaps + 1);
    if (!r)
        r = vk_vmx_set_after(s->file, k_num, num, after, e);
    free(after);
    if (!r)
        r = build_view(s, e);
    if (!r)
        r = mru_push(s, uid, e);
    if (!r)
        r = build_view(s, e);
    if (!r && uid_out)
        *uid_out = uid;
    return r;
}

static int set_current(vk_vmsd *s, uint32_t uid, vk_err *e)
{
    int r = set_u32(s, k_current, uid, k_last_uid, e);
    if (!r)
        r = build_view(s, e);
    if (!r)
        r = mru_push(s, uid, e);
    return r ? r : build_view(s, e);
}

struct removal {
    unsigned long index; /* the entry that goes */
};

/* Drop snapshotK.*, move snapshotJ.* (J > K) to snapshot(J-1).*. */
static int remove_and_shift(void *opaque, const char *key, char **new_key, vk_err *e)
{
    const struct removal *rm = opaque;
    unsigned long index;
    const char *rest;
    if (!indexed(key, "snapshot", &index, &rest) || *rest != '.')
        return VK_VMX_KEEP;
    if (index == rm->index)
        return VK_VMX_DROP;
    if (index < rm->index)
        return VK_VMX_KEEP;
    size_t n = strlen(key) + 24;
    char *k = vk_malloc(n, e);
    if (!k)
        return VMDKIT_ENOMEM;
    /* the word as spelled, the new index, the rest as spelled */
    snprintf(k, n, "%.8s%lu%s", key, index - 1, rest);
    *new_key = k;
    return VK_VMX_RENAME;
}

static int remove_entry(vk_vmsd *s, uint32_t uid, vk_err *e)
{
    const vk_vmsd_snap *x = vk_vmsd_find(s, uid);
    if (!x)
        return vk_fail(e, VMDKIT_ENOENT, "%s: no snapshot with uid %u", vk_vmx_path(s->file), uid);
    bool has_parent = x->has_parent;
    uint32_t parent = x->parent;
    struct removal rm = {.index = x->index};
    char k[80];
    int r = 0;
    /* children: the parent of the entry that goes */
    for (size_t i = 0; !r && i < s->n_snaps; i++) {
        const vk_vmsd_snap *c = &s->snaps[i];
        if (!c->has_parent || c->parent != uid || c->uid == uid)
            continue;
        snap_key(k, sizeof k, c->index, "parent");
        r = has_parent ? set_u32(s, k, parent, NULL, e) : vk_vmx_unset(s->file, k, e);
    }
    if (!r && s->has_current && s->current == uid)
        r = has_parent ? set_u32(s, k_current, parent, NULL, e) : vk_vmx_unset(s->file, k_current, e);
    if (!r)
        r = vk_vmx_rekey(s->file, remove_and_shift, &rm, e);
    size_t left = s->n_snaps - 1;
    if (!r && left > 0) {
        char num[24];
        snprintf(num, sizeof num, "%zu", left);
        r = vk_vmx_set(s->file, k_num, num, e);
    } else if (!r) {
        /* as VMware leaves a machine without snapshots: lastUID and the mru list */
        if (vk_vmx_get(s->file, k_num))
            r = vk_vmx_unset(s->file, k_num, e);
        if (!r && vk_vmx_get(s->file, k_current))
            r = vk_vmx_unset(s->file, k_current, e);
    }
    return r ? r : build_view(s, e);
}

static int set_disk_file(vk_vmsd *s, uint32_t uid, unsigned long disk_index, const char *file, vk_err *e)
{
    const vk_vmsd_snap *x = vk_vmsd_find(s, uid);
    if (!x)
        return vk_fail(e, VMDKIT_ENOENT, "%s: no snapshot with uid %u", vk_vmx_path(s->file), uid);
    char field[40], k[80];
    snprintf(field, sizeof field, "disk%lu.fileName", disk_index);
    int r = vk_vmx_set(s->file, snap_key(k, sizeof k, x->index, field), file, e);
    return r ? r : build_view(s, e);
}

static int add_clone(vk_vmsd *s, uint32_t uid, const char *vmx, vk_err *e)
{
    const vk_vmsd_snap *x = vk_vmsd_find(s, uid);
    if (!x)
        return vk_fail(e, VMDKIT_ENOENT, "%s: no snapshot with uid %u", vk_vmx_path(s->file), uid);
    for (size_t i = 0; i < x->n_clones; i++)
        if (x->clones[i] && strcmp(x->clones[i], vmx) == 0)
            return 0; /* recorded already */
    /* the next free M, and the entry's last line: the new keys go after it */
    size_t pos = 0;
    const char *key, *value, *rest, *last = NULL;
    unsigned long index, m, next = 0;
    while (vk_vmx_next(s->file, &pos, &key, &value)) {
        if (!indexed(key, "snapshot", &index, &rest) || index != x->index || *rest != '.')
            continue;
        last = key;
        const char *tail;
        if (indexed(rest + 1, "clone", &m, &tail) && !*tail && m + 1 > next)
            next = m + 1;
    }
    if (next > VK_VMSD_MAX_INDEX)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: snapshot %u: no room for another clone",
                       vk_vmx_path(s->file), uid);
    char *after = last ? vk_strdup(last, e) : NULL;
    if (last && !after)
        return VMDKIT_ENOMEM;
    char field[40], k[80], num[24];
    snprintf(field, sizeof field, "clone%lu", next);
    snap_key(k, sizeof k, x->index, field);
    int r = vk_vmx_set_after(s->file, k, vmx, after, e);
    free(after);
    char kn[80];
    snap_key(kn, sizeof kn, x->index, "numClones");
    snprintf(num, sizeof num, "%zu", x->n_clones + 1);
    if (!r)
        r = vk_vmx_set_after(s->file, kn, num, k, e);
    return r ? r : build_view(s, e);
}

int vk_vmsd_add(vk_vmsd *s, const vk_vmsd_new *n, uint32_t *uid_out, vk_err *e)
{
    edit_undo u;
    int r = edit_begin(s, &u, e);
    return r ? r : edit_end(s, &u, add_entry(s, n, uid_out, e));
}

int vk_vmsd_set_current(vk_vmsd *s, uint32_t uid, vk_err *e)
{
    edit_undo u;
    int r = edit_begin(s, &u, e);
    return r ? r : edit_end(s, &u, set_current(s, uid, e));
}

int vk_vmsd_remove(vk_vmsd *s, uint32_t uid, vk_err *e)
{
    edit_undo u;
    int r = edit_begin(s, &u, e);
    return r ? r : edit_end(s, &u, remove_entry(s, uid, e));
}

int vk_vmsd_set_disk_file(vk_vmsd *s, uint32_t uid, unsigned long disk_index, const char *file,
                          vk_err *e)
{
    edit_undo u;
    int r = edit_begin(s, &u, e);
    return r ? r : edit_end(s, &u, set_disk_file(s, uid, disk_index, file, e));
}

int vk_vmsd_add_clone(vk_vmsd *s, uint32_t uid, const char *vmx, vk_err *e)
{
    edit_undo u;
    int r = edit_begin(s, &u, e);
    return r ? r : edit_end(s, &u, add_clone(s, uid, vmx, e));
}
