/* check_link.c - the links of a chain: each link's descriptor (its own file
 * or embedded in a sparse extent) against its extent files (present, sizes,
 * sparse header capacities, createType), each extent's own checks, then the
 * parent: CID and capacity.  Under repair, extent sizes in the top link's
 * descriptor are corrected when the sparse headers clearly hold the truth. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "check.h"
#include "path.h"
#include "sparse_header.h"

/* Deepest chain followed (the same limit as opening a disk). */
#define MAX_LINKS VK_MAX_CHAIN_LINKS
/* Largest embedded descriptor area read (sectors), as the header check allows. */
#define MAX_EMBEDDED_SECTORS 20480u

enum file_kind {
    FK_NONE = 0,
    FK_OTHER = VK_MAGIC_OTHER,
    FK_KDMV = VK_MAGIC_KDMV,
    FK_COWD = VK_MAGIC_COWD,
    FK_SESPARSE = VK_MAGIC_SESPARSE
};

typedef struct link_facts {
    bool known;   /* the link was read: capacity is meaningful */
    bool has_cid; /* it has a real descriptor with a CID */
    uint32_t cid;
    uint64_t capacity; /* sectors */
} link_facts;

typedef struct link_ctx {
    const struct link_ctx *child; /* the link whose parent this is, or NULL at the top */
    vk_check *c;
    const char *path;
    size_t file; /* the link's own file */
    int depth;
    bool writable; /* top link under repair */
    vk_descriptor d;
    bool synthesized; /* no descriptor: made up from a sparse header */
    bool embedded;
    uint64_t emb_off, emb_size; /* sectors */
    char *text;                 /* descriptor text as found (NULL when synthesized) */
    size_t text_len;
    vk_check_extent *x; /* per extent line */
    int *kind;          /* per extent line: enum file_kind (FK_NONE: not examined) */
} link_ctx;

static bool type_is(const char *ct, const char *a, const char *b)
{
    return strcasecmp(ct, a) == 0 || (b && strcasecmp(ct, b) == 0);
}

/* What the first bytes of the file FD (SIZE bytes) say it is. */
static int probe_fd(int fd, uint64_t size, const char *path, int *kind, vk_err *e)
{
    uint8_t b[8] = {0};
    int r = vk_pread_zfill(fd, b, sizeof b, 0, path, e);
    if (r)
        return r;
    *kind = (int)vk_file_magic(b, size);
    return 0;
}

static int probe(vk_check *c, size_t idx, int *kind)
{
    vk_cfile *f = &c->files[idx];
    int fd;
    int r = vk_check_fd(c, idx, &fd);
    return r ? r : probe_fd(fd, f->size, f->path, kind, c->e);
}

/* Where a link's descriptor text is. */
enum text_where {
    TEXT_NONE,      /* a sparse file that carries none (or whose header is bad,
                       which the extent check reports) */
    TEXT_FILE,      /* the file is the descriptor */
    TEXT_EMBEDDED,  /* the area a sparse header points at (LEN 0: it holds nothing) */
    TEXT_TOO_LARGE, /* no sparse magic, and too large for a descriptor */
};

typedef struct link_text {
    int where;          /* enum text_where */
    char *text;         /* NUL-terminated; NULL for TEXT_NONE and TEXT_TOO_LARGE */
    size_t len;         /* up to the first NUL */
    uint64_t off, size; /* TEXT_EMBEDDED: the area, in sectors */
} link_text;

/*
 * The checker's own reading of the descriptor text of a link: the file FD
 * itself, or the embedded area its sparse header names (decoded with the
 * pure sparse_header.c, not with the reader's extent code).
 */
static int read_text(int fd, uint64_t size, int kind, const char *path, link_text *t, vk_err *e)
{
    memset(t, 0, sizeof *t);
    if (kind == FK_COWD || kind == FK_SESPARSE)
        return 0;
    if (kind == FK_KDMV) {
        uint8_t hb[512];
        if (size < sizeof hb)
            return 0; /* the extent check reports the short header */
        int r = vk_pread_full(fd, hb, sizeof hb, 0, path, e);
        if (r)
            return r;
        vk_sparse_header h;
        vk_sparse_header_decode(hb, &h);
        vk_err ignored;
        if (vk_sparse_header_validate(&h, vk_div_round_up(size, VK_SECTOR), path, &ignored) ||
            !h.desc_offset_sectors || !h.desc_size_sectors || h.desc_size_sectors > MAX_EMBEDDED_SECTORS)
            return 0;
        size_t bytes = (size_t)h.desc_size_sectors * VK_SECTOR;
        if (!(t->text = vk_malloc(bytes + 1, e)))
            return VMDKIT_ENOMEM;
        if ((r = vk_pread_full(fd, t->text, bytes, h.desc_offset_sectors * VK_SECTOR, path, e))) {
            free(t->text);
            t->text = NULL;
            return r;
        }
        t->text[bytes] = 0;
        t->len = strnlen(t->text, bytes);
        t->off = h.desc_offset_sectors;
        t->size = h.desc_size_sectors;
        t->where = TEXT_EMBEDDED;
        return 0;
    }
    if (size > VK_DESC_MAX_BYTES) {
        t->where = TEXT_TOO_LARGE;
        return 0;
    }
    if (!(t->text = vk_malloc((size_t)size + 1, e)))
        return VMDKIT_ENOMEM;
    int r = vk_pread_full(fd, t->text, (size_t)size, 0, path, e);
    if (r) {
        free(t->text);
        t->text = NULL;
        return r;
    }
    t->text[size] = 0;
    t->len = (size_t)size;
    t->where = TEXT_FILE;
    return 0;
}

/* A descriptor for a sparse file that carries none. */
static int synthesize(link_ctx *L, int kind)
{
    vk_check *c = L->c;
    vk_cfile *f = &c->files[L->file];
    uint8_t b[32] = {0};
    int fd;
    int r = vk_check_fd(c, L->file, &fd);
    if (!r)
        r = vk_pread_zfill(fd, b, sizeof b, 0, f->path, c->e);
    if (r)
        return r;
    uint64_t cap = kind == FK_COWD       ? vk_le32(b + 12)
                   : kind == FK_SESPARSE ? vk_le64(b + 16)
                                         : vk_le64(b + 12);
    enum vk_extent_type t = kind == FK_COWD       ? VK_EXT_VMFSSPARSE
                            : kind == FK_SESPARSE ? VK_EXT_SESPARSE
                                                  : VK_EXT_SPARSE;
    const char *ct = kind == FK_COWD       ? "vmfsSparse"
                     : kind == FK_SESPARSE ? "seSparse"
                                           : "monolithicSparse";
    vk_descriptor_free(&L->d);
    memset(&L->d, 0, sizeof L->d);
    L->d.version = 1;
    L->d.cid = VK_CID_NONE;
    L->d.parent_cid = VK_CID_NONE;
    L->synthesized = true;
    if (!(L->d.create_type = vk_strdup(ct, c->e)))
        return VMDKIT_ENOMEM;
    return vk_descriptor_add_extent(&L->d, VK_ACCESS_RW, cap, t, vk_path_basename(L->path), false, 0,
                                    c->e);
}

static int parse_text(link_ctx *L, const char *what)
{
    vk_check *c = L->c;
    if (!vk_descriptor_sniff(L->text, L->text_len)) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: %s: not a descriptor (no \"version=\" line first)", L->path, what);
        return 1;
    }
    vk_err why = {0};
    int r = vk_descriptor_parse(L->text, L->text_len, L->path, &L->d, &why);
    if (r == VMDKIT_ENOMEM)
        return vk_fail(c->e, r, "%s", why.msg);
    if (r) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET, "%s", why.msg);
        return 1;
    }
    return 0;
}

/* Find the link's descriptor.  Returns 1 when the link cannot be examined
 * further (already reported), 0 when L->d is usable, or an error. */
static int read_descriptor(link_ctx *L, int kind)
{
    vk_check *c = L->c;
    vk_cfile *f = &c->files[L->file];
    link_text t;
    int fd;
    int r = vk_check_fd(c, L->file, &fd);
    if (!r)
        r = read_text(fd, f->size, kind, L->path, &t, c->e);
    if (r)
        return r;
    L->text = t.text;
    L->text_len = t.len;
    switch (t.where) {
    case TEXT_NONE:
        return synthesize(L, kind);
    case TEXT_TOO_LARGE:
        vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, 0,
                        "%s: not a VMDK: no sparse magic (KDMV/COWD) and too large for a descriptor",
                        L->path);
        return 1;
    case TEXT_FILE:
        return parse_text(L, "descriptor");
    }
    /* TEXT_EMBEDDED: a header that names a descriptor area promises a
     * descriptor there.  An empty area (qemu writes one into the pieces of
     * a split disk) makes no disk of its own: opening the file fails, and
     * so the check must not pass it. */
    L->emb_off = t.off;
    L->emb_size = t.size;
    L->embedded = true;
    if (t.len == 0) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, L->path, t.off * VK_SECTOR,
            "%s: embedded descriptor: the area the header names (sectors %llu-%llu) is empty "
            "(a piece of a split disk is checked through the disk's descriptor)",
            L->path, (unsigned long long)t.off, (unsigned long long)(t.off + t.size - 1));
        r = 1;
    } else {
        r = parse_text(L, "embedded descriptor");
    }
    if (r != 1)
        return r;
    free(L->text);
    L->text = NULL;
    L->embedded = false;
    return synthesize(L, kind); /* still check the extent itself */
}

/* ---- extents ---- */

static const char *kind_name(int kind, bool compressed)
{
    switch (kind) {
    case FK_KDMV:
        return compressed ? "a compressed (stream) sparse file" : "a hosted sparse file";
    case FK_COWD:
        return "an ESX COWD file";
    case FK_SESPARSE:
        return "a seSparse file";
    default:
        return "not a sparse file";
    }
}

static int check_extent(link_ctx *L, size_t i)
{
    vk_check *c = L->c;
    const vk_extent_desc *d = &L->d.extents[i];
    vk_check_extent *x = &L->x[i];
    x->size_sectors = d->size_sectors;
    if (d->type == VK_EXT_ZERO || d->access == VK_ACCESS_NOACCESS)
        return 0;
    bool writable = L->writable && d->access == VK_ACCESS_RW;
    char *path = NULL;
    int r;
    if (L->embedded && i == 0) {
        /* the descriptor lives in this very extent, which starts with its
         * header: only a sparse type reads it (open refuses the others) */
        if (!vk_extent_type_is_sparse(d->type)) {
            vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: extent 0: type %s, but its file is this sparse file, headers and all",
                            L->path, vk_extent_type_name(d->type));
            return 0;
        }
        x->file = L->file;
    } else {
        if (!d->filename || !*d->filename) {
            vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: extent %zu: file name is empty", L->path, i);
            return 0;
        }
        bool self = L->synthesized && i == 0;
        if (self)
            path = vk_strdup(L->path, c->e);
        else
            path = vk_path_resolve_extent(L->path, d->filename,
                                          (c->flags & VMDKIT_CHECK_ALLOW_EXTERNAL) != 0, c->e);
        if (!path)
            return c->e->code ? c->e->code : VMDKIT_ENOMEM;
        r = self ? vk_check_open(c, path, writable, &x->file)
                 : vk_check_open_extent(c, L->path, d->filename, path, writable, &x->file);
        if (r == VMDKIT_ENOENT || r == VMDKIT_EFORMAT) {
            vk_check_report(c, VMDKIT_FIND_CORRUPT, path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: extent %zu \"%s\": %s", L->path, i, d->filename,
                            r == VMDKIT_ENOENT ? "file not found"
                                               : "not a regular file or block device");
            free(path);
            return 0;
        }
        free(path);
        if (r)
            return r;
    }
    vk_cfile *f = &c->files[x->file];
    x->name = f->path;
    x->repairable = writable && f->writable;
    switch (d->type) {
    case VK_EXT_FLAT:
    case VK_EXT_VMFS:
    case VK_EXT_VMFSRDM:
    case VK_EXT_VMFSRAW: {
        uint64_t need;
        L->kind[i] = FK_OTHER;
        int fd;
        if ((r = vk_check_fd(c, x->file, &fd)) || (r = vk_file_size(fd, &f->size, f->path, c->e)))
            return r;
        if (!vk_add_ok(d->offset_sectors, d->size_sectors, &need) ||
            !vk_mul_ok(need, VK_SECTOR, &need) || f->size < need)
            vk_check_report(
                c, VMDKIT_FIND_CORRUPT, f->path, f->size,
                "%s: extent %zu \"%s\": the file holds %llu bytes, the extent needs %llu (%llu sectors from sector %llu)",
                L->path, i, d->filename, (unsigned long long)f->size,
                (unsigned long long)((d->offset_sectors + d->size_sectors) * VK_SECTOR),
                (unsigned long long)d->size_sectors, (unsigned long long)d->offset_sectors);
        return 0;
    }
    case VK_EXT_SPARSE:
    case VK_EXT_VMFSSPARSE:
        if ((r = probe(c, x->file, &L->kind[i])))
            return r;
        if (L->kind[i] == FK_KDMV && d->type == VK_EXT_SPARSE)
            return vk_check_kdmv(c, x);
        if (L->kind[i] == FK_COWD)
            return vk_check_cowd(c, x);
        vk_check_report(c, VMDKIT_FIND_CORRUPT, f->path, 0,
                        "%s: extent %zu \"%s\": magic: %s, not the %s extent the descriptor names",
                        L->path, i, d->filename, kind_name(L->kind[i], false),
                        d->type == VK_EXT_SPARSE ? "hosted sparse (KDMV)" : "ESX COWD");
        return 0;
    case VK_EXT_SESPARSE:
        L->kind[i] = FK_SESPARSE;
        vk_check_report(c, VMDKIT_FIND_INFO, f->path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: seSparse extents are not checked", f->path);
        c->n.incomplete = true;
        return 0;
    default:
        return 0;
    }
}

/* Does the header capacity CAP fit an extent line of LINE sectors?  Some
 * writers round the header up to a grain or to 64 KiB. */
static bool capacity_fits(uint64_t cap, uint64_t line, uint64_t grain)
{
    if (cap == line)
        return true;
    if (cap < line)
        return false;
    uint64_t g = grain ? grain : 1;
    return cap == vk_div_round_up(line, g) * g || cap == vk_div_round_up(line, 128) * 128;
}

static bool line_mismatch(const link_ctx *L, size_t i)
{
    const vk_check_extent *x = &L->x[i];
    return (L->kind[i] == FK_KDMV || L->kind[i] == FK_COWD) && x->header_ok &&
           !capacity_fits(x->capacity_sectors, x->size_sectors, x->grain_sectors);
}

static void check_sizes(link_ctx *L)
{
    for (size_t i = 0; i < L->d.n_extents; i++) {
        if (!line_mismatch(L, i))
            continue;
        const vk_check_extent *x = &L->x[i];
        /* A header larger than its line is what a grow leaves when it stops
         * between the header and the descriptor (a power cut tearing the
         * one write of a monolithicSparse disk's first sectors): every
         * grain reads the same at either size, the range past the line as
         * zeros, so it is a stale line, not lost data.  A header smaller
         * than its line leaves part of the disk with no tables, and in a
         * disk of several extents a line shorter than its piece shifts
         * every piece after it. */
        bool grown = x->capacity_sectors > x->size_sectors && L->embedded && L->d.n_extents == 1;
        vk_check_report(
            L->c, grown ? VMDKIT_FIND_STALE : VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
            "%s: extent %zu \"%s\": the descriptor gives %llu sectors, the header of the file %llu%s",
            L->path, i, L->d.extents[i].filename ? L->d.extents[i].filename : "",
            (unsigned long long)x->size_sectors, (unsigned long long)x->capacity_sectors,
            grown ? " (a grow that did not reach the descriptor; --repair completes it)" : "");
    }
}

/* createType against the kinds of the extents; the first misfit is reported. */
static void check_create_type(link_ctx *L)
{
    const char *ct = L->d.create_type;
    if (!ct || L->synthesized)
        return;
    if (!vk_create_type_known(ct)) {
        vk_check_report(L->c, VMDKIT_FIND_INFO, L->path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: createType: \"%s\" is not a known disk type", L->path, ct);
        return;
    }
    bool single = type_is(ct, "monolithicSparse", NULL) || type_is(ct, "streamOptimized", NULL);
    if (single && L->d.n_extents != 1) {
        vk_check_report(L->c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: createType: \"%s\" has one extent, the descriptor lists %zu", L->path, ct,
                        L->d.n_extents);
        return;
    }
    for (size_t i = 0; i < L->d.n_extents; i++) {
        enum vk_extent_type t = L->d.extents[i].type;
        int kind = L->kind[i];
        bool comp = L->x[i].compressed;
        bool ok;
        if (type_is(ct, "monolithicSparse", "twoGbMaxExtentSparse") ||
            type_is(ct, "2GbMaxExtentSparse", NULL))
            ok = t == VK_EXT_SPARSE && (kind == FK_NONE || (kind == FK_KDMV && !comp));
        else if (type_is(ct, "streamOptimized", NULL))
            ok = t == VK_EXT_SPARSE && (kind == FK_NONE || (kind == FK_KDMV && comp));
        else if (type_is(ct, "monolithicFlat", "twoGbMaxExtentFlat") ||
                 type_is(ct, "2GbMaxExtentFlat", "fullDevice"))
            ok = t == VK_EXT_FLAT;
        else if (type_is(ct, "partitionedDevice", NULL))
            ok = t == VK_EXT_FLAT || t == VK_EXT_ZERO;
        else if (type_is(ct, "vmfs", "vmfsPreallocated") ||
                 type_is(ct, "vmfsEagerZeroedThick", "vmfsThin") || type_is(ct, "vmfsThick", NULL))
            ok = t == VK_EXT_VMFS || t == VK_EXT_FLAT;
        else if (type_is(ct, "vmfsSparse", NULL))
            ok = t == VK_EXT_VMFSSPARSE || (t == VK_EXT_SPARSE && kind == FK_COWD);
        else if (type_is(ct, "seSparse", "vmfsSeSparse"))
            ok = t == VK_EXT_SESPARSE;
        else if (type_is(ct, "vmfsRaw", "vmfsRDM") || type_is(ct, "vmfsRawDeviceMap", "vmfsRDMP") ||
                 type_is(ct, "vmfsPassthroughRawDeviceMap", NULL))
            ok = t == VK_EXT_VMFSRDM || t == VK_EXT_VMFSRAW;
        else
            ok = true; /* custom */
        if (!ok) {
            vk_check_report(L->c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: createType: \"%s\" does not fit extent %zu (%s%s%s)", L->path, ct, i,
                            vk_extent_type_name(t), kind != FK_NONE && kind != FK_OTHER ? ", " : "",
                            kind != FK_NONE && kind != FK_OTHER ? kind_name(kind, comp) : "");
            return;
        }
    }
}

/* ---- correcting extent sizes ---- */

static bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }

/* TEXT with the size of extent line k replaced by SIZES[k] where that is
 * not UINT64_MAX; every other byte is kept.  Extent lines are found as the
 * parser finds them: a first word RW, RDONLY or NOACCESS not followed by '='. */
static char *edit_sizes(const char *text, size_t len, const uint64_t *sizes, size_t n, size_t *out_len,
                        vk_err *e)
{
    size_t cap = len + n * 24 + 1, o = 0, k = 0;
    char *out = vk_malloc(cap, e);
    if (!out)
        return NULL;
    size_t pos = 0;
    while (pos < len) {
        const char *s = text + pos;
        const char *eol = memchr(s, '\n', len - pos);
        size_t l = eol ? (size_t)(eol - s) + 1 : len - pos;
        size_t a = 0;
        while (a < l && is_blank(s[a]))
            a++;
        size_t w = a;
        while (w < l && !is_blank(s[w]) && s[w] != '=' && s[w] != '"' && s[w] != '\r' && s[w] != '\n')
            w++;
        size_t q = w;
        while (q < l && is_blank(s[q]))
            q++;
        bool extent = w > a && (q >= l || s[q] != '=') &&
                      ((w - a == 2 && strncasecmp(s + a, "RW", 2) == 0) ||
                       (w - a == 6 && strncasecmp(s + a, "RDONLY", 6) == 0) ||
                       (w - a == 8 && strncasecmp(s + a, "NOACCESS", 8) == 0));
        if (extent && k < n && sizes[k] != UINT64_MAX) {
            size_t dig = q;
            while (dig < l && s[dig] >= '0' && s[dig] <= '9')
                dig++;
            memcpy(out + o, s, q);
            o += q;
            o += (size_t)snprintf(out + o, cap - o, "%llu", (unsigned long long)sizes[k]);
            memcpy(out + o, s + dig, l - dig);
            o += l - dig;
        } else {
            memcpy(out + o, s, l);
            o += l;
        }
        if (extent)
            k++;
        pos += l;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* Plan the descriptor fix when the sparse headers clearly hold the truth:
 * every mismatching line belongs to a sound hosted sparse header, some
 * other extent agrees with its header (or there is only one), and the
 * parent's capacity, if any, equals the corrected total. */
static int plan_sizes(link_ctx *L, const link_facts *parent)
{
    vk_check *c = L->c;
    size_t n = L->d.n_extents, bad = 0, agree = 0, first = 0;
    bool fixable = L->writable && L->text && !L->synthesized;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const vk_check_extent *x = &L->x[i];
        if (line_mismatch(L, i)) {
            if (!bad++)
                first = i;
            fixable &= L->kind[i] == FK_KDMV && x->repairable;
            total += x->capacity_sectors;
        } else {
            agree += L->kind[i] == FK_KDMV && x->header_ok;
            total += x->size_sectors;
        }
    }
    if (!bad || !c->plan || L->depth)
        return 0;
    fixable &= agree > 0 || n == 1;
    if (parent && parent->known)
        fixable &= total == parent->capacity;
    if (!fixable) {
        vk_check_note(
            c, VMDKIT_FIND_UNREPAIRED, L->path, VMDKIT_CHECK_NO_OFFSET,
            "%s: extent sizes in the descriptor disagree with the files, and nothing confirms which is right: left alone",
            L->path);
        return 0;
    }
    uint64_t *sizes = vk_malloc(n * sizeof *sizes, c->e);
    if (!sizes)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; i < n; i++)
        sizes[i] = line_mismatch(L, i) ? L->x[i].capacity_sectors : UINT64_MAX;
    size_t len;
    char *text = edit_sizes(L->text, L->text_len, sizes, n, &len, c->e);
    free(sizes);
    if (!text)
        return VMDKIT_ENOMEM;
    char what[VMDKIT_ERRMSG_MAX];
    snprintf(
        what, sizeof what,
        "%s: extent %zu: size set to %llu sectors, the capacity in the header of its file (was %llu)%s",
        L->path, first, (unsigned long long)L->x[first].capacity_sectors,
        (unsigned long long)L->x[first].size_sectors, bad > 1 ? ", and likewise the others" : "");
    int r = 0;
    if (!L->embedded) {
        r = vk_check_plan_replace(c, VMDKIT_FIND_CORRUPT, L->file, text, len, "%s", what);
    } else if (len > L->emb_size * VK_SECTOR) {
        vk_check_note(c, VMDKIT_FIND_UNREPAIRED, L->path, L->emb_off * VK_SECTOR,
                      "%s: the corrected descriptor does not fit its embedded area: left alone",
                      L->path);
    } else {
        size_t area = (size_t)(L->emb_size * VK_SECTOR);
        uint8_t *buf = vk_calloc(1, area, c->e);
        if (!buf)
            r = VMDKIT_ENOMEM;
        else {
            memcpy(buf, text, len);
            r = vk_check_plan_write(c, VK_FIX_DESCRIPTOR, VMDKIT_FIND_CORRUPT, L->file,
                                    L->emb_off * VK_SECTOR, buf, area, "%s", what);
            free(buf);
        }
    }
    free(text);
    return r;
}

/* ---- a link and its parent ---- */

static int check_link(vk_check *c, const link_ctx *child, const char *path, int depth, size_t *visited,
                      link_facts *out);

static int check_parent(link_ctx *L, size_t *visited, uint64_t capacity, link_facts *pf)
{
    vk_check *c = L->c;
    const vk_descriptor *d = &L->d;
    if (!d->parent_hint) {
        if (d->parent_cid != VK_CID_NONE)
            vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: parentFileNameHint: missing although parentCID is %08x", L->path,
                            d->parent_cid);
        return 0;
    }
    if (d->parent_cid == VK_CID_NONE) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: parentCID: ffffffff (no parent) although parentFileNameHint names \"%s\"",
                        L->path, d->parent_hint);
        return 0;
    }
    if (L->depth + 1 >= MAX_LINKS) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: parent chain is deeper than %d links", L->path, MAX_LINKS);
        return 0;
    }
    if (d->parent_hint[0] == '/' && !(c->flags & VMDKIT_CHECK_ALLOW_ABSOLUTE_PARENTS))
        return vk_fail(
            c->e, VMDKIT_EPATH,
            "%s: parentFileNameHint: \"%s\" is an absolute path (use --allow-absolute-parents to permit)",
            L->path, d->parent_hint);
    char *ppath = vk_path_resolve_parent(L->path, d->parent_hint, c->e);
    if (!ppath)
        return VMDKIT_ENOMEM;
    int r = check_link(c, L, ppath, L->depth + 1, visited, pf);
    if (r == VMDKIT_ENOENT) {
        vk_err why = {0};
        vk_fail_parent_not_found(&why, L->path, d->parent_hint, ppath);
        vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET, "%s", why.msg);
        r = 0;
    }
    if (!r && pf->known) {
        if (pf->has_cid && d->parent_cid != pf->cid)
            vk_check_report(
                c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                "%s: parentCID %08x does not match the CID of parent %s: the parent was modified after the child was created",
                L->path, d->parent_cid, ppath);
        if (capacity < pf->capacity)
            vk_check_report(c, VMDKIT_FIND_INFO, L->path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: capacity %llu sectors is smaller than parent %s (%llu sectors): "
                            "the disk reads the parent's first part (an interrupted resize --chain "
                            "leaves this: run it again)",
                            L->path, (unsigned long long)capacity, ppath,
                            (unsigned long long)pf->capacity);
        else if (capacity != pf->capacity)
            vk_check_report(c, VMDKIT_FIND_CORRUPT, L->path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: capacity %llu sectors differs from parent %s (%llu sectors)", L->path,
                            (unsigned long long)capacity, ppath, (unsigned long long)pf->capacity);
    }
    free(ppath);
    return r;
}

/* Is the file FILE an extent of a link below (a parent hint naming a piece
 * of a disk of the chain)?  Reported as a loop. */
static bool extent_of_child(vk_check *c, const link_ctx *child, size_t file)
{
    for (const link_ctx *k = child; k; k = k->child)
        for (size_t i = 0; i < k->d.n_extents; i++)
            if (k->kind[i] != FK_NONE && k->x[i].file == file) {
                vk_check_report(
                    c, VMDKIT_FIND_CORRUPT, child->path, VMDKIT_CHECK_NO_OFFSET,
                    "%s: parentFileNameHint: \"%s\" is extent \"%s\" of %s: the chain is a loop",
                    child->path, child->d.parent_hint,
                    k->d.extents[i].filename ? k->d.extents[i].filename : "", k->path);
                return true;
            }
    return false;
}

static int check_link(vk_check *c, const link_ctx *child, const char *path, int depth, size_t *visited,
                      link_facts *out)
{
    memset(out, 0, sizeof *out);
    link_ctx L = {.child = child, .c = c, .path = path, .depth = depth};
    L.writable = depth == 0 && (c->flags & VMDKIT_CHECK_REPAIR);
    int r = vk_check_open(c, path, L.writable, &L.file);
    if (r == VMDKIT_EFORMAT) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, path, VMDKIT_CHECK_NO_OFFSET, "%s", c->e->msg);
        return 0;
    }
    if (r)
        return r;
    for (int k = 0; k < depth; k++) {
        if (visited[k] == L.file) {
            vk_check_report(c, VMDKIT_FIND_CORRUPT, path, VMDKIT_CHECK_NO_OFFSET,
                            "%s: the parent chain leads back to this file: it is a loop", path);
            return 0;
        }
    }
    if (extent_of_child(c, child, L.file))
        return 0;
    visited[depth] = L.file;
    int kind;
    if ((r = probe(c, L.file, &kind)))
        return r;
    if ((r = read_descriptor(&L, kind)))
        goto out;
    if (L.synthesized && child) {
        /* no CID to match, and the disk it belongs to knows nothing of the child */
        vk_check_report(c, VMDKIT_FIND_CORRUPT, child->path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: parentFileNameHint: \"%s\" " VK_PIECE_OF_DISK ", never a parent",
                        child->path, child->d.parent_hint);
        r = 1;
        goto out;
    }
    if (L.synthesized && L.writable) {
        r = vk_fail(c->e, VMDKIT_ERDONLY,
                    "%s: " VK_PIECE_OF_DISK ": repair the disk it belongs to, through its descriptor",
                    path);
        goto out;
    }
    size_t n = L.d.n_extents;
    L.x = vk_calloc(n, sizeof *L.x, c->e);
    L.kind = vk_calloc(n, sizeof *L.kind, c->e);
    if (!L.x || !L.kind) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    c->prog_link_base = (uint64_t)depth * c->prog_link_bytes;
    uint64_t start = 0;
    for (size_t i = 0; i < n && !r; i++) {
        /* progress: this extent is its sectors' share of the link */
        c->prog_ext_start = start * VK_SECTOR;
        c->prog_ext_bytes = L.d.extents[i].size_sectors * VK_SECTOR;
        vk_check_progress(c, 0, 0);
        r = check_extent(&L, i);
        if (!r && L.x[i].name && L.x[i].file != L.file)
            r = vk_check_park(c, L.x[i].file);
        vk_check_progress(c, 1, 1);
        start += L.d.extents[i].size_sectors;
    }
    if (r)
        goto out;
    check_sizes(&L);
    check_create_type(&L);
    uint64_t capacity = 0;
    for (size_t i = 0; i < n; i++)
        capacity += L.d.extents[i].size_sectors;
    /* a disk of no sectors cannot be opened (a sparse header of capacity 0
     * is reported by the extent's own check) */
    if (capacity == 0 && !L.synthesized)
        vk_check_report(c, VMDKIT_FIND_CORRUPT, path, VMDKIT_CHECK_NO_OFFSET,
                        "%s: extents: the disk has no sectors", path);
    link_facts pf = {0};
    if ((r = check_parent(&L, visited, capacity, &pf)))
        goto out;
    if ((r = plan_sizes(&L, L.d.parent_hint ? &pf : NULL)))
        goto out;
    out->known = true;
    out->has_cid = !L.synthesized;
    out->cid = L.d.cid;
    out->capacity = capacity;
out:
    if (r == 1)
        r = 0; /* reported: nothing more to examine in this link */
    vk_descriptor_free(&L.d);
    free(L.text);
    free(L.x);
    free(L.kind);
    return r;
}

/* The descriptor of the link at PATH as the check will read it, for
 * vk_check_chain_shape; false when there is none to follow.  A link
 * without a text descriptor has a sparse header, whose capacity counts. */
static bool peek_link(const char *path, vk_descriptor *d, uint64_t *capacity)
{
    uint64_t size;
    int fd = vk_check_peek(path, &size);
    if (fd < 0)
        return false;
    int kind;
    link_text t = {0};
    bool ok =
        probe_fd(fd, size, path, &kind, NULL) == 0 && read_text(fd, size, kind, path, &t, NULL) == 0;
    memset(d, 0, sizeof *d);
    *capacity = 0;
    if (ok && t.text && t.len && vk_descriptor_sniff(t.text, t.len)) {
        ok = vk_descriptor_parse(t.text, t.len, path, d, NULL) == 0;
        if (ok && vk_descriptor_capacity(d, capacity, NULL) != 0)
            *capacity = 0;
    } else if (ok && kind != FK_OTHER) {
        uint8_t b[32] = {0};
        ok = vk_pread_zfill(fd, b, sizeof b, 0, path, NULL) == 0;
        uint64_t sectors = kind == FK_COWD       ? vk_le32(b + 12)
                           : kind == FK_SESPARSE ? vk_le64(b + 16)
                                                 : vk_le64(b + 12);
        *capacity = sectors <= (UINT64_C(1) << 48) ? sectors : 0;
    } else {
        ok = false;
    }
    free(t.text);
    close(fd);
    return ok;
}

void vk_check_chain_shape(const char *top, uint64_t *capacity_bytes, unsigned *links)
{
    *capacity_bytes = 0;
    *links = 0;
    char *path = vk_strdup(top, NULL);
    while (path && *links < MAX_LINKS) {
        vk_descriptor d;
        uint64_t sectors;
        if (!peek_link(path, &d, &sectors))
            break;
        if (*links == 0)
            *capacity_bytes = sectors * VK_SECTOR;
        (*links)++;
        char *next = d.parent_hint ? vk_path_resolve_parent(path, d.parent_hint, NULL) : NULL;
        vk_descriptor_free(&d);
        free(path);
        path = next;
    }
    free(path);
}

int vk_check_chain(vk_check *c)
{
    size_t visited[MAX_LINKS];
    link_facts top;
    return check_link(c, NULL, c->top_path, 0, visited, &top);
}
