/* descriptor.c - the VMDK text descriptor: a tolerant parser (real files
 * differ in case, line ends, spacing, quoting and section markers), a writer
 * of VMware's canonical layout, and the few edits the library makes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "descriptor.h"

#define LINE_MAX_BYTES 65536u
/* Header plus ddb keys; also bounds the quadratic duplicate-key search. */
#define KV_MAX 4096u

static const char *const access_names[] = {"RW", "RDONLY", "NOACCESS"};
static const char *const type_names[] = {"SPARSE",     "FLAT",    "ZERO",    "VMFS",
                                         "VMFSSPARSE", "VMFSRDM", "VMFSRAW", "SESPARSE"};
#define N_ACCESS (sizeof access_names / sizeof access_names[0])
#define N_TYPES (sizeof type_names / sizeof type_names[0])

/* VMware writes this key in its own section after the extent lines. */
static const char change_track_key[] = "changeTrackPath";

/* createTypes a descriptor may name (VMware's list; "2Gb..." is an old
 * spelling of "twoGb...").  Which of them vmdkit can open is link.c's
 * business; which it writes, create.c's. */
static const char *const known_create_types[] = {
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "2GbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "2GbMaxExtentFlat",
    "streamOptimized",
    "vmfs",
    "vmfsPreallocated",
    "vmfsEagerZeroedThick",
    "vmfsThin",
    "vmfsThick",
    "vmfsSparse",
    "seSparse",
    "vmfsSeSparse",
    "custom",
    "fullDevice",
    "partitionedDevice",
    "vmfsRaw",
    "vmfsRDM",
    "vmfsRawDeviceMap",
    "vmfsRDMP",
    "vmfsPassthroughRawDeviceMap",
};

/* The values of ddb.adapterType, as VMware spells them, and whether the
 * geometry is a SCSI one (see geometry.c). */
static const struct {
    const char *name;
    bool scsi;
} adapters[] = {
    {"ide", false},
    {"buslogic", true},
    {"lsilogic", true},
    {"legacyESX", true},
};

bool vk_create_type_known(const char *name)
{
    for (size_t i = 0; name && i < sizeof known_create_types / sizeof *known_create_types; i++)
        if (strcasecmp(name, known_create_types[i]) == 0)
            return true;
    return false;
}

const char *vmdkit_adapter_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof adapters / sizeof *adapters; i++)
        if (strcasecmp(name, adapters[i].name) == 0)
            return adapters[i].name;
    return NULL;
}

bool vk_adapter_is_scsi(const char *name)
{
    for (size_t i = 0; name && i < sizeof adapters / sizeof *adapters; i++)
        if (strcasecmp(name, adapters[i].name) == 0)
            return adapters[i].scsi;
    return false;
}

const char *vk_access_name(enum vk_access a) { return (unsigned)a < N_ACCESS ? access_names[a] : "?"; }

const char *vk_extent_type_name(enum vk_extent_type t)
{
    return (unsigned)t < N_TYPES ? type_names[t] : "?";
}

bool vk_extent_type_is_sparse(enum vk_extent_type t)
{
    return t == VK_EXT_SPARSE || t == VK_EXT_VMFSSPARSE || t == VK_EXT_SESPARSE;
}

/* ---- small text helpers ---- */

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

/* Does the token S[0..N) equal WORD, ignoring case? */
static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Printable excerpt of S[0..N) for error messages (at most 40 bytes). */
static const char *excerpt(const char *s, size_t n, char buf[48])
{
    size_t k = n > 40 ? 40 : n;
    for (size_t i = 0; i < k; i++)
        buf[i] = is_ctl((unsigned char)s[i]) ? '?' : s[i];
    if (k < n)
        memcpy(buf + k, "...", 3), k += 3;
    buf[k] = 0;
    return buf;
}

/* Decimal digits only: 0 ok, -1 not a number, -2 too large. */
static int parse_dec(const char *s, size_t n, uint64_t *v)
{
    if (n == 0)
        return -1;
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (!vk_mul_ok(r, 10, &r) || !vk_add_ok(r, (uint64_t)(s[i] - '0'), &r))
            return -2;
    }
    *v = r;
    return 0;
}

/* 1 to 8 hex digits (CID=92adc14 occurs: no leading zero). */
static bool parse_cid(const char *s, uint32_t *v)
{
    size_t n = strlen(s);
    if (n == 0 || n > 8)
        return false;
    uint32_t r = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return false;
        r = r << 4 | d;
    }
    *v = r;
    return true;
}

/* A value the writer can put between double quotes and read back. */
static bool value_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p == '"' || is_ctl(*p))
            return false;
    return true;
}

/* A key the writer can emit so that the parser reads it back as a key. */
static bool key_ok(const char *k)
{
    if (!k || !*k || *k == '#')
        return false;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        if (*p == '=' || *p == '"' || is_blank((char)*p) || is_ctl(*p))
            return false;
    return true;
}

static bool is_ddb_key(const char *k) { return strncasecmp(k, "ddb.", 4) == 0; }

static bool is_known_header_key(const char *k)
{
    static const char *const known[] = {"version",   "encoding",   "CID",
                                        "parentCID", "createType", "parentFileNameHint"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(k, known[i]) == 0)
            return true;
    return false;
}

static void free_kvs(vk_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void vk_descriptor_free(vk_descriptor *d)
{
    if (!d)
        return;
    free(d->encoding);
    free(d->create_type);
    free(d->parent_hint);
    for (size_t i = 0; i < d->n_extents; i++)
        free(d->extents[i].filename);
    free(d->extents);
    free_kvs(d->header_extra, d->n_header_extra);
    free_kvs(d->ddb, d->n_ddb);
    memset(d, 0, sizeof *d);
}

/* ---- sniffing ---- */

static size_t skip_bom(const char *s, size_t n)
{
    return n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

/* Is S[0..N) (no line end) "version = N" with optional quotes around N? */
static bool is_version_line(const char *s, size_t n)
{
    size_t i = 0;
    if (n < 7 || strncasecmp(s, "version", 7) != 0)
        return false;
    i = 7;
    while (i < n && is_blank(s[i]))
        i++;
    if (i == n || s[i++] != '=')
        return false;
    while (i < n && is_blank(s[i]))
        i++;
    bool quoted = i < n && s[i] == '"';
    i += quoted;
    size_t digits = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == digits)
        return false;
    if (quoted && (i == n || s[i++] != '"'))
        return false;
    while (i < n && is_blank(s[i]))
        i++;
    return i == n;
}

bool vk_descriptor_sniff(const char *text, size_t len)
{
    size_t n = strnlen(text, len);
    size_t pos = skip_bom(text, n);
    while (pos < n) {
        const char *s = text + pos;
        const char *eol = memchr(s, '\n', n - pos);
        size_t l = eol ? (size_t)(eol - s) : n - pos;
        pos += l + 1;
        if (l && s[l - 1] == '\r')
            l--;
        while (l && is_blank(*s))
            s++, l--;
        while (l && is_blank(s[l - 1]))
            l--;
        if (l == 0 || *s == '#')
            continue;
        return is_version_line(s, l);
    }
    return false;
}

/* ---- parsing ---- */

typedef struct parser {
    const char *file;
    size_t line;
    vk_descriptor *d;
    size_t ext_cap, extra_cap, ddb_cap; /* allocated slots (amortised growth) */
    vk_err *e;
} parser;

/* "FILE: line N: FIELD: what is wrong" */
static int perr(parser *p, int code, const char *field, const char *fmt, ...) VK_PRINTF(4, 5);
static int perr(parser *p, int code, const char *field, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return vk_fail(p->e, code, "%s: line %zu: %s: %s", p->file, p->line, field, what);
}

/* Make room for one more element in *ARR (N used, *CAP allocated). */
static int grow(void **arr, size_t n, size_t *cap, size_t elem, vk_err *e)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *q = realloc(*arr, ncap * elem);
    if (!q)
        return vk_fail(e, VMDKIT_ENOMEM, "descriptor: out of memory");
    *arr = q;
    *cap = ncap;
    return 0;
}

/* Store KEY=VALUE (taking ownership): a repeated key replaces the earlier
 * value in place (the last one wins). */
static int put_kv(parser *p, vk_kv **kv, size_t *n, size_t *cap, char *key, char *value)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcasecmp((*kv)[i].key, key) == 0) {
            free((*kv)[i].key);
            free((*kv)[i].value);
            (*kv)[i].key = key;
            (*kv)[i].value = value;
            return 0;
        }
    }
    int r = 0;
    if (p->d->n_header_extra + p->d->n_ddb >= KV_MAX)
        r = perr(p, VMDKIT_ELIMIT, key, "more than %u key=value lines", KV_MAX);
    if (!r)
        r = grow((void **)kv, *n, cap, sizeof **kv, p->e);
    if (r) {
        free(key);
        free(value);
        return r;
    }
    (*kv)[(*n)++] = (vk_kv){key, value};
    return 0;
}

/* Unquote the value text S[0..N) (line already trimmed) into *OUT. */
static int read_value(parser *p, const char *key, const char *s, size_t n, char **out)
{
    char ex[48];
    while (n && is_blank(*s))
        s++, n--;
    if (n && *s == '"') {
        const char *q = memchr(s + 1, '"', n - 1);
        if (!q)
            return perr(p, VMDKIT_EFORMAT, key, "unterminated quote in %s", excerpt(s, n, ex));
        const char *rest = q + 1, *end = s + n;
        while (rest < end && is_blank(*rest))
            rest++;
        if (rest < end)
            return perr(p, VMDKIT_EFORMAT, key, "text after the closing quote: %s",
                        excerpt(rest, (size_t)(end - rest), ex));
        n = (size_t)(q - s - 1);
        s++;
    } else if (memchr(s, '"', n)) {
        return perr(p, VMDKIT_EFORMAT, key, "stray double quote in %s", excerpt(s, n, ex));
    }
    for (size_t i = 0; i < n; i++)
        if (is_ctl((unsigned char)s[i]))
            return perr(p, VMDKIT_EFORMAT, key, "control character 0x%02x in the value",
                        (unsigned char)s[i]);
    *out = vk_strndup(s, n, p->e);
    return *out ? 0 : VMDKIT_ENOMEM;
}

static int set_str(char **field, char *value)
{
    free(*field);
    *field = value;
    return 0;
}

/* KEY=VALUE line: the key is S[0..KLEN), the value text follows. */
static int parse_kv(parser *p, const char *s, size_t klen, const char *v, size_t vlen)
{
    vk_descriptor *d = p->d;
    char *key = vk_strndup(s, klen, p->e), *value = NULL;
    if (!key)
        return VMDKIT_ENOMEM;
    int r = read_value(p, key, v, vlen, &value);
    if (r) {
        free(key);
        return r;
    }
    char ex[48];
    if (is_ddb_key(key))
        return put_kv(p, &d->ddb, &d->n_ddb, &p->ddb_cap, key, value);
    if (!is_known_header_key(key))
        return put_kv(p, &d->header_extra, &d->n_header_extra, &p->extra_cap, key, value);

    if (strcasecmp(key, "version") == 0) {
        uint64_t ver = 0;
        int pr = parse_dec(value, strlen(value), &ver);
        if (pr == -1)
            r = perr(p, VMDKIT_EFORMAT, "version", "\"%s\" is not a number",
                     excerpt(value, strlen(value), ex));
        else if (pr == -2 || ver < 1 || ver > 3)
            r = perr(p, VMDKIT_EUNSUPPORTED, "version", "%s is not supported",
                     excerpt(value, strlen(value), ex));
        else
            d->version = (int)ver;
        free(value);
    } else if (strcasecmp(key, "CID") == 0 || strcasecmp(key, "parentCID") == 0) {
        bool parent = strcasecmp(key, "parentCID") == 0;
        if (!parse_cid(value, parent ? &d->parent_cid : &d->cid))
            r = perr(p, VMDKIT_EFORMAT, parent ? "parentCID" : "CID", "\"%s\" is not 1 to 8 hex digits",
                     excerpt(value, strlen(value), ex));
        free(value);
    } else if (strcasecmp(key, "encoding") == 0) {
        set_str(&d->encoding, value);
    } else if (strcasecmp(key, "createType") == 0) {
        set_str(&d->create_type, value);
    } else {
        set_str(&d->parent_hint, value);
    }
    free(key);
    return r;
}

/* Next blank-separated token of S[0..N) from *I. */
static size_t next_token(const char *s, size_t n, size_t *i, const char **tok)
{
    while (*i < n && is_blank(s[*i]))
        (*i)++;
    size_t start = *i;
    while (*i < n && !is_blank(s[*i]))
        (*i)++;
    *tok = s + start;
    return *i - start;
}

static int sector_count(parser *p, const char *field, const char *t, size_t tl, uint64_t *v)
{
    char ex[48];
    if (tl == 0)
        return perr(p, VMDKIT_EFORMAT, field, "missing");
    int r = parse_dec(t, tl, v);
    if (r == -1)
        return perr(p, VMDKIT_EFORMAT, field, "\"%s\" is not a sector count", excerpt(t, tl, ex));
    if (r == -2)
        return perr(p, VMDKIT_EFORMAT, field, "\"%s\" is too large", excerpt(t, tl, ex));
    return 0;
}

/* ACCESS SIZE TYPE ["FILE" [OFFSET [ignored fields...]]]; ACCESS is known. */
static int parse_extent(parser *p, enum vk_access access, const char *s, size_t n, size_t i)
{
    vk_descriptor *d = p->d;
    vk_extent_desc x = {.access = access};
    const char *t;
    size_t tl;
    char ex[48];
    int r;

    tl = next_token(s, n, &i, &t);
    if ((r = sector_count(p, "extent size", t, tl, &x.size_sectors)))
        return r;

    tl = next_token(s, n, &i, &t);
    if (tl == 0)
        return perr(p, VMDKIT_EFORMAT, "extent type", "missing");
    size_t k = 0;
    while (k < N_TYPES && !token_is(t, tl, type_names[k]))
        k++;
    if (k == N_TYPES)
        return perr(p, VMDKIT_EFORMAT, "extent type", "\"%s\" is not a known extent type",
                    excerpt(t, tl, ex));
    x.type = (enum vk_extent_type)k;

    if (x.type != VK_EXT_ZERO) {
        while (i < n && is_blank(s[i]))
            i++;
        if (i == n || s[i] != '"')
            return perr(p, VMDKIT_EFORMAT, "extent file name", "missing (a double-quoted name)");
        const char *name = s + i + 1;
        const char *q = memchr(name, '"', n - i - 1);
        if (!q)
            return perr(p, VMDKIT_EFORMAT, "extent file name", "unterminated quote in %s",
                        excerpt(s + i, n - i, ex));
        size_t nl = (size_t)(q - name);
        for (size_t j = 0; j < nl; j++)
            if (is_ctl((unsigned char)name[j]))
                return perr(p, VMDKIT_EFORMAT, "extent file name",
                            "control character 0x%02x in the name", (unsigned char)name[j]);
        i = (size_t)(q + 1 - s);
        tl = next_token(s, n, &i, &t);
        if (tl) {
            if ((r = sector_count(p, "extent offset", t, tl, &x.offset_sectors)))
                return r;
            x.has_offset = true;
        }
        /* Fields after the offset (partition ids on physical-disk
         * descriptors) carry nothing vmdkit uses. */
        if (!(x.filename = vk_strndup(name, nl, p->e)))
            return VMDKIT_ENOMEM;
    }

    if (d->n_extents >= VK_DESC_MAX_EXTENTS)
        r = perr(p, VMDKIT_ELIMIT, "extent", "more than %u extent lines", VK_DESC_MAX_EXTENTS);
    if (!r)
        r = grow((void **)&d->extents, d->n_extents, &p->ext_cap, sizeof *d->extents, p->e);
    if (r) {
        free(x.filename);
        return r;
    }
    d->extents[d->n_extents++] = x;
    return 0;
}

static int parse_line(parser *p, const char *s, size_t n)
{
    char ex[48];
    while (n && is_blank(*s))
        s++, n--;
    while (n && is_blank(s[n - 1]))
        n--;
    if (n == 0 || *s == '#')
        return 0;

    /* key: up to blank, '=' or '"'; then optional blanks and '=' */
    size_t k = 0;
    while (k < n && !is_blank(s[k]) && s[k] != '=' && s[k] != '"' && !is_ctl((unsigned char)s[k]))
        k++;
    size_t j = k;
    while (j < n && is_blank(s[j]))
        j++;
    if (j < n && s[j] == '=') {
        if (k == 0)
            return perr(p, VMDKIT_EFORMAT, "key", "missing before '='");
        return parse_kv(p, s, k, s + j + 1, n - j - 1);
    }

    for (size_t a = 0; a < N_ACCESS; a++)
        if (token_is(s, k, access_names[a]))
            return parse_extent(p, (enum vk_access)a, s, n, k);

    /* "XX 123 ..." is an extent line with a bad access word */
    if (k < n && is_blank(s[k]) && j < n && s[j] >= '0' && s[j] <= '9')
        return perr(p, VMDKIT_EFORMAT, "extent access", "\"%s\" is not RW, RDONLY or NOACCESS",
                    excerpt(s, k, ex));
    return perr(p, VMDKIT_EFORMAT, "text", "\"%s\" is not a comment, key=value or extent line",
                excerpt(s, n, ex));
}

int vk_descriptor_parse(const char *text, size_t len, const char *file, vk_descriptor *out, vk_err *e)
{
    memset(out, 0, sizeof *out);
    out->version = 1;
    out->cid = VK_CID_NONE;
    out->parent_cid = VK_CID_NONE;
    parser p = {.file = file ? file : "descriptor", .d = out, .e = e};

    size_t n = strnlen(text, len); /* embedded descriptors are NUL-padded */
    if (n > VK_DESC_MAX_BYTES)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: descriptor: %zu bytes, more than the %u accepted", p.file,
                       n, VK_DESC_MAX_BYTES);
    size_t pos = skip_bom(text, n);
    int r = 0;
    while (!r && pos < n) {
        const char *s = text + pos;
        const char *eol = memchr(s, '\n', n - pos);
        size_t l = eol ? (size_t)(eol - s) : n - pos;
        pos += l + 1;
        p.line++;
        if (l && s[l - 1] == '\r')
            l--;
        if (l > LINE_MAX_BYTES)
            r = perr(&p, VMDKIT_ELIMIT, "line", "%zu bytes, more than the %u accepted", l,
                     LINE_MAX_BYTES);
        else
            r = parse_line(&p, s, l);
    }
    if (!r && out->n_extents == 0)
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: extents: no extent lines", p.file);
    if (r)
        vk_descriptor_free(out);
    return r;
}

/* ---- writing ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) VK_PRINTF(2, 3);
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap - b->len <= (size_t)w)
            ncap *= 2;
        char *q = realloc(b->p, ncap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = ncap;
    }
}

static int check_str(const char *field, const char *v, vk_err *e)
{
    if (v && !value_ok(v))
        return vk_fail(e, VMDKIT_EINVAL,
                       "descriptor: %s: value holds a double quote or control character", field);
    return 0;
}

/* Refuse what the canonical text could not carry and read back unchanged. */
static int check_writable(const vk_descriptor *d, vk_err *e)
{
    int r;
    if (d->version < 1 || d->version > 3)
        return vk_fail(e, VMDKIT_EINVAL, "descriptor: version: %d is not 1, 2 or 3", d->version);
    if (d->n_extents == 0)
        return vk_fail(e, VMDKIT_EINVAL, "descriptor: extents: no extent lines");
    if ((r = check_str("encoding", d->encoding, e)) ||
        (r = check_str("createType", d->create_type, e)) ||
        (r = check_str("parentFileNameHint", d->parent_hint, e)))
        return r;
    for (size_t i = 0; i < d->n_extents; i++) {
        const vk_extent_desc *x = &d->extents[i];
        if ((unsigned)x->access >= N_ACCESS || (unsigned)x->type >= N_TYPES)
            return vk_fail(e, VMDKIT_EINVAL, "descriptor: extent %zu: bad access or type", i + 1);
        if (x->type != VK_EXT_ZERO && !x->filename)
            return vk_fail(e, VMDKIT_EINVAL, "descriptor: extent %zu: no file name", i + 1);
        if (x->type != VK_EXT_ZERO && (r = check_str("extent file name", x->filename, e)))
            return r;
    }
    for (size_t i = 0; i < d->n_header_extra; i++) {
        const vk_kv *kv = &d->header_extra[i];
        if (!key_ok(kv->key) || is_ddb_key(kv->key) || is_known_header_key(kv->key))
            return vk_fail(e, VMDKIT_EINVAL, "descriptor: header key %zu: not a valid extra key", i + 1);
        if ((r = check_str(kv->key, kv->value, e)))
            return r;
    }
    for (size_t i = 0; i < d->n_ddb; i++) {
        const vk_kv *kv = &d->ddb[i];
        if (!key_ok(kv->key) || !is_ddb_key(kv->key))
            return vk_fail(e, VMDKIT_EINVAL, "descriptor: ddb key %zu: not a valid ddb key", i + 1);
        if ((r = check_str(kv->key, kv->value, e)))
            return r;
    }
    return 0;
}

/* The extent line of X, without its line end. */
static void write_extent(sbuf *b, const vk_extent_desc *x)
{
    sb_add(b, "%s %llu %s", access_names[x->access], (unsigned long long)x->size_sectors,
           type_names[x->type]);
    if (x->type != VK_EXT_ZERO) {
        sb_add(b, " \"%s\"", x->filename);
        /* QEMU requires the offset on FLAT lines and refuses it on VMFS lines */
        bool offset = x->type == VK_EXT_FLAT   ? true
                      : x->type == VK_EXT_VMFS ? x->has_offset && x->offset_sectors != 0
                                               : x->has_offset;
        if (offset)
            sb_add(b, " %llu", (unsigned long long)(x->has_offset ? x->offset_sectors : 0));
    }
}

int vk_descriptor_format(const vk_descriptor *d, char **text, size_t *len, vk_err *e)
{
    int r = check_writable(d, e);
    if (r)
        return r;
    sbuf b = {0};
    const vk_kv *ctk = NULL;
    sb_add(&b, "# Disk DescriptorFile\nversion=%d\n", d->version);
    if (d->encoding)
        sb_add(&b, "encoding=\"%s\"\n", d->encoding);
    /* CID before parentCID: QEMU rewrites the text between the two */
    sb_add(&b, "CID=%08x\nparentCID=%08x\n", d->cid, d->parent_cid);
    for (size_t i = 0; i < d->n_header_extra; i++) {
        if (strcasecmp(d->header_extra[i].key, change_track_key) == 0)
            ctk = &d->header_extra[i];
        else
            sb_add(&b, "%s=\"%s\"\n", d->header_extra[i].key, d->header_extra[i].value);
    }
    if (d->create_type)
        sb_add(&b, "createType=\"%s\"\n", d->create_type);
    if (d->parent_hint)
        sb_add(&b, "parentFileNameHint=\"%s\"\n", d->parent_hint);
    sb_add(&b, "\n# Extent description\n");
    for (size_t i = 0; i < d->n_extents; i++) {
        write_extent(&b, &d->extents[i]);
        sb_add(&b, "\n");
    }
    if (ctk)
        sb_add(&b, "\n# Change Tracking File\n%s=\"%s\"\n", ctk->key, ctk->value);
    sb_add(&b, "\n# The Disk Data Base\n#DDB\n\n");
    for (size_t i = 0; i < d->n_ddb; i++)
        sb_add(&b, "%s = \"%s\"\n", d->ddb[i].key, d->ddb[i].value);
    if (b.oom) {
        free(b.p);
        return vk_fail(e, VMDKIT_ENOMEM, "descriptor: out of memory");
    }
    *text = b.p;
    *len = b.len;
    return 0;
}

/* ---- writing in the layout of an earlier text ---- */

static bool str_same(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static uint64_t offset_of(const vk_extent_desc *x) { return x->has_offset ? x->offset_sectors : 0; }

static bool extent_same(const vk_extent_desc *a, const vk_extent_desc *b)
{
    return a->access == b->access && a->size_sectors == b->size_sectors && a->type == b->type &&
           str_same(a->filename, b->filename) && offset_of(a) == offset_of(b);
}

static const char *kv_get(const vk_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

static bool kvs_same(const vk_kv *a, size_t na, const vk_kv *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_same(a[i].value, kv_get(b, nb, a[i].key)))
            return false;
    return true;
}

/* Do A and B say the same (what a rewritten text must parse back to)? */
static bool descriptor_same(const vk_descriptor *a, const vk_descriptor *b)
{
    if (a->version != b->version || a->cid != b->cid || a->parent_cid != b->parent_cid ||
        !str_same(a->encoding, b->encoding) || !str_same(a->create_type, b->create_type) ||
        !str_same(a->parent_hint, b->parent_hint) || a->n_extents != b->n_extents ||
        !kvs_same(a->header_extra, a->n_header_extra, b->header_extra, b->n_header_extra) ||
        !kvs_same(a->ddb, a->n_ddb, b->ddb, b->n_ddb))
        return false;
    for (size_t i = 0; i < a->n_extents; i++)
        if (!extent_same(&a->extents[i], &b->extents[i]))
            return false;
    return true;
}

/* One line of the earlier text, as parse_line sees it. */
enum line_kind { LINE_OTHER, LINE_KV, LINE_EXTENT };
typedef struct text_line {
    const char *s; /* the line, line end included */
    size_t n;      /* bytes, line end included */
    size_t end;    /* where the content ends (trailing blanks and the line end follow) */
    enum line_kind kind;
    size_t key, key_len; /* LINE_KV: the key ... */
    size_t val;          /* ... and where its value starts */
} text_line;

static void classify(text_line *t)
{
    size_t n = t->n;
    if (n && t->s[n - 1] == '\n')
        n--;
    if (n && t->s[n - 1] == '\r')
        n--;
    while (n && is_blank(t->s[n - 1]))
        n--;
    t->end = n;
    size_t i = 0;
    while (i < n && is_blank(t->s[i]))
        i++;
    t->kind = LINE_OTHER;
    if (i == n || t->s[i] == '#')
        return;
    size_t k = i;
    while (k < n && !is_blank(t->s[k]) && t->s[k] != '=' && t->s[k] != '"' &&
           !is_ctl((unsigned char)t->s[k]))
        k++;
    size_t j = k;
    while (j < n && is_blank(t->s[j]))
        j++;
    if (j < n && t->s[j] == '=' && k > i) {
        t->kind = LINE_KV;
        t->key = i;
        t->key_len = k - i;
        j++;
        while (j < n && is_blank(t->s[j]))
            j++;
        t->val = j;
        return;
    }
    for (size_t a = 0; a < N_ACCESS; a++)
        if (token_is(t->s + i, k - i, access_names[a]))
            t->kind = LINE_EXTENT;
}

/* The value D has for KEY ("" when D lacks it: *PRESENT false) and whether
 * it differs from OLD's. */
static const char *value_for(const vk_descriptor *d, const vk_descriptor *old, const char *key,
                             char num[16], bool *present, bool *changed)
{
    *present = true;
    const char *v, *ov;
    if (strcasecmp(key, "version") == 0) {
        snprintf(num, 16, "%d", d->version);
        *changed = d->version != old->version;
        return num;
    }
    if (strcasecmp(key, "CID") == 0 || strcasecmp(key, "parentCID") == 0) {
        bool parent = strcasecmp(key, "parentCID") == 0;
        uint32_t c = parent ? d->parent_cid : d->cid;
        snprintf(num, 16, "%08x", c);
        *changed = c != (parent ? old->parent_cid : old->cid);
        return num;
    }
    if (strcasecmp(key, "encoding") == 0)
        v = d->encoding, ov = old->encoding;
    else if (strcasecmp(key, "createType") == 0)
        v = d->create_type, ov = old->create_type;
    else if (strcasecmp(key, "parentFileNameHint") == 0)
        v = d->parent_hint, ov = old->parent_hint;
    else if (is_ddb_key(key))
        v = kv_get(d->ddb, d->n_ddb, key), ov = kv_get(old->ddb, old->n_ddb, key);
    else
        v = kv_get(d->header_extra, d->n_header_extra, key),
        ov = kv_get(old->header_extra, old->n_header_extra, key);
    *present = v != NULL;
    *changed = !str_same(v, ov);
    return v ? v : "";
}

/* Start a new line of the output: end the last one (with EOL) if the text
 * ended without a line end. */
static void sb_new_line(sbuf *b, const char *eol)
{
    if (b->len && b->p[b->len - 1] != '\n')
        sb_add(b, "%s", eol);
}

static int layout_text(const vk_descriptor *d, const vk_descriptor *old, const char *text, size_t n,
                       sbuf *b, vk_err *e)
{
    /* the lines, and where new lines go: new header keys after createType
     * (or the last of parentCID, CID, version), new extents after the last
     * extent line, new ddb keys after the last ddb line (or at the end) */
    size_t n_lines = 0, cap = 0;
    text_line *lines = NULL;
    size_t pos = skip_bom(text, n);
    sb_add(b, "%.*s", (int)pos, text);
    while (pos < n) {
        const char *nl = memchr(text + pos, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - (text + pos)) + 1 : n - pos;
        if (grow((void **)&lines, n_lines, &cap, sizeof *lines, e)) {
            free(lines);
            return VMDKIT_ENOMEM;
        }
        lines[n_lines] = (text_line){.s = text + pos, .n = len};
        classify(&lines[n_lines++]);
        pos += len;
    }
    const char *eol = n_lines && lines[0].n >= 2 && lines[0].s[lines[0].n - 1] == '\n' &&
                              lines[0].s[lines[0].n - 2] == '\r'
                          ? "\r\n"
                          : "\n";
    long header_at = -1, header_rank = 0, first_extent = -1, last_extent = -1, last_ddb = -1;
    bool has_version = false, has_cid = false, has_pcid = false;
    for (size_t i = 0; i < n_lines; i++) {
        const text_line *t = &lines[i];
        if (t->kind == LINE_EXTENT) {
            if (first_extent < 0)
                first_extent = (long)i;
            last_extent = (long)i;
        } else if (t->kind == LINE_KV) {
            const char *k = t->s + t->key;
            size_t kl = t->key_len;
            int rank = token_is(k, kl, "createType")  ? 4
                       : token_is(k, kl, "parentCID") ? 3
                       : token_is(k, kl, "CID")       ? 2
                       : token_is(k, kl, "version")   ? 1
                                                      : 0;
            has_version |= rank == 1;
            has_cid |= rank == 2;
            has_pcid |= rank == 3;
            if (rank && rank >= header_rank)
                header_at = (long)i, header_rank = rank;
            if (kl >= 4 && strncasecmp(k, "ddb.", 4) == 0)
                last_ddb = (long)i;
        }
    }
    if (header_at < 0) /* before the first extent line */
        header_at = first_extent - 1;

    char num[16];
    size_t extent_i = 0;
    for (long i = -1; i < (long)n_lines; i++) {
        if (i >= 0) {
            const text_line *t = &lines[i];
            if (t->kind == LINE_EXTENT) {
                size_t k = extent_i++;
                if (k < d->n_extents && k < old->n_extents &&
                    extent_same(&d->extents[k], &old->extents[k])) {
                    sb_add(b, "%.*s", (int)t->n, t->s);
                } else if (k < d->n_extents) {
                    write_extent(b, &d->extents[k]);
                    sb_add(b, "%.*s", (int)(t->n - t->end), t->s + t->end);
                }
            } else if (t->kind == LINE_KV) {
                char key[256];
                size_t kl = t->key_len < sizeof key - 1 ? t->key_len : sizeof key - 1;
                memcpy(key, t->s + t->key, kl);
                key[kl] = 0;
                bool present, changed;
                const char *v = value_for(d, old, key, num, &present, &changed);
                if (!changed) {
                    sb_add(b, "%.*s", (int)t->n, t->s);
                } else if (present) {
                    /* the line's own spacing, quoting and line end */
                    bool quoted = t->val < t->end && t->s[t->val] == '"';
                    sb_add(b, "%.*s%s%s%s%.*s", (int)t->val, t->s, quoted ? "\"" : "", v,
                           quoted ? "\"" : "", (int)(t->n - t->end), t->s + t->end);
                }
            } else {
                sb_add(b, "%.*s", (int)t->n, t->s);
            }
        }
        if (i == header_at) {
            if (!has_version && d->version != 1)
                sb_new_line(b, eol), sb_add(b, "version=%d%s", d->version, eol);
            if (d->encoding && !old->encoding)
                sb_new_line(b, eol), sb_add(b, "encoding=\"%s\"%s", d->encoding, eol);
            if (!has_cid && d->cid != VK_CID_NONE)
                sb_new_line(b, eol), sb_add(b, "CID=%08x%s", d->cid, eol);
            if (!has_pcid && d->parent_cid != VK_CID_NONE)
                sb_new_line(b, eol), sb_add(b, "parentCID=%08x%s", d->parent_cid, eol);
            for (size_t k = 0; k < d->n_header_extra; k++)
                if (!kv_get(old->header_extra, old->n_header_extra, d->header_extra[k].key))
                    sb_new_line(b, eol),
                        sb_add(b, "%s=\"%s\"%s", d->header_extra[k].key, d->header_extra[k].value, eol);
            if (d->create_type && !old->create_type)
                sb_new_line(b, eol), sb_add(b, "createType=\"%s\"%s", d->create_type, eol);
            if (d->parent_hint && !old->parent_hint)
                sb_new_line(b, eol), sb_add(b, "parentFileNameHint=\"%s\"%s", d->parent_hint, eol);
        }
        if (i == last_extent)
            for (size_t k = old->n_extents; k < d->n_extents; k++) {
                sb_new_line(b, eol);
                write_extent(b, &d->extents[k]);
                sb_add(b, "%s", eol);
            }
        if (i == (last_ddb >= 0 ? last_ddb : (long)n_lines - 1))
            for (size_t k = 0; k < d->n_ddb; k++)
                if (!kv_get(old->ddb, old->n_ddb, d->ddb[k].key))
                    sb_new_line(b, eol), sb_add(b, "%s = \"%s\"%s", d->ddb[k].key, d->ddb[k].value, eol);
    }
    free(lines);
    return 0;
}

int vk_descriptor_format_like(const vk_descriptor *d, const char *old_text, size_t old_len, char **text,
                              size_t *len, vk_err *e)
{
    int r = check_writable(d, e);
    if (r)
        return r;
    vk_descriptor old;
    size_t n = old_text ? strnlen(old_text, old_len) : 0;
    if (!n || vk_descriptor_parse(old_text, n, NULL, &old, NULL) != 0)
        return vk_descriptor_format(d, text, len, e);
    sbuf b = {0};
    r = layout_text(d, &old, old_text, n, &b, e);
    vk_descriptor_free(&old);
    if (r || b.oom) {
        free(b.p);
        return r ? r : vk_fail(e, VMDKIT_ENOMEM, "descriptor: out of memory");
    }
    /* the text must say exactly what D says; if the layout cannot carry it
     * (a case not foreseen), the canonical text does */
    vk_descriptor back;
    bool same = vk_descriptor_parse(b.p, b.len, NULL, &back, NULL) == 0;
    if (same) {
        same = descriptor_same(&back, d);
        vk_descriptor_free(&back);
    }
    if (!same) {
        free(b.p);
        return vk_descriptor_format(d, text, len, e);
    }
    *text = b.p;
    *len = b.len;
    return 0;
}

/* ---- edits ---- */

int vk_descriptor_capacity(const vk_descriptor *d, uint64_t *sectors, vk_err *e)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < d->n_extents; i++)
        if (!vk_add_ok(sum, d->extents[i].size_sectors, &sum))
            return vk_fail(e, VMDKIT_ELIMIT,
                           "descriptor: capacity: extent sizes add up to more than 2^64 sectors");
    *sectors = sum;
    return 0;
}

const char *vk_descriptor_ddb_get(const vk_descriptor *d, const char *key)
{
    for (size_t i = 0; i < d->n_ddb; i++)
        if (strcasecmp(d->ddb[i].key, key) == 0)
            return d->ddb[i].value;
    return NULL;
}

int vk_descriptor_ddb_set(vk_descriptor *d, const char *key, const char *value, vk_err *e)
{
    if (!key_ok(key) || !is_ddb_key(key))
        return vk_fail(e, VMDKIT_EINVAL, "descriptor: ddb key \"%s\": not a ddb.* key", key ? key : "");
    if (!value || !value_ok(value))
        return vk_fail(e, VMDKIT_EINVAL,
                       "descriptor: %s: value missing or holds a double quote or control character",
                       key);
    char *k = vk_strdup(key, e), *v = vk_strdup(value, e);
    if (!k || !v) {
        free(k);
        free(v);
        return VMDKIT_ENOMEM;
    }
    for (size_t i = 0; i < d->n_ddb; i++) {
        if (strcasecmp(d->ddb[i].key, key) == 0) {
            free(d->ddb[i].key);
            free(d->ddb[i].value);
            d->ddb[i] = (vk_kv){k, v};
            return 0;
        }
    }
    vk_kv *q = realloc(d->ddb, (d->n_ddb + 1) * sizeof *q);
    if (!q) {
        free(k);
        free(v);
        return vk_fail(e, VMDKIT_ENOMEM, "descriptor: out of memory");
    }
    d->ddb = q;
    d->ddb[d->n_ddb++] = (vk_kv){k, v};
    return 0;
}

int vk_descriptor_add_extent(vk_descriptor *d, enum vk_access access, uint64_t size_sectors,
                             enum vk_extent_type type, const char *filename, bool has_offset,
                             uint64_t offset_sectors, vk_err *e)
{
    if ((unsigned)access >= N_ACCESS || (unsigned)type >= N_TYPES)
        return vk_fail(e, VMDKIT_EINVAL, "descriptor: extent: bad access or type");
    if (type != VK_EXT_ZERO && !filename)
        return vk_fail(e, VMDKIT_EINVAL, "descriptor: extent: %s extent without a file name",
                       type_names[type]);
    if (d->n_extents >= VK_DESC_MAX_EXTENTS)
        return vk_fail(e, VMDKIT_ELIMIT, "descriptor: extent: more than %u extents",
                       VK_DESC_MAX_EXTENTS);
    char *name = NULL;
    if (type != VK_EXT_ZERO && !(name = vk_strdup(filename, e)))
        return VMDKIT_ENOMEM;
    vk_extent_desc *q = realloc(d->extents, (d->n_extents + 1) * sizeof *q);
    if (!q) {
        free(name);
        return vk_fail(e, VMDKIT_ENOMEM, "descriptor: out of memory");
    }
    d->extents = q;
    d->extents[d->n_extents++] = (vk_extent_desc){
        .access = access,
        .size_sectors = size_sectors,
        .type = type,
        .filename = name,
        .has_offset = type != VK_EXT_ZERO && has_offset,
        .offset_sectors = type != VK_EXT_ZERO && has_offset ? offset_sectors : 0,
    };
    return 0;
}

int vk_descriptor_set_cid(vk_descriptor *d, uint32_t cid, vk_err *e)
{
    (void)e;
    d->cid = cid;
    for (size_t i = 0; i < d->n_ddb; i++) {
        char *v = d->ddb[i].value;
        if (strcasecmp(d->ddb[i].key, "ddb.longContentID") != 0 || strlen(v) != 32 ||
            strspn(v, "0123456789abcdefABCDEF") != 32)
            continue;
        /* its low 32 bits mirror the CID in every VMware-written file */
        snprintf(v + 24, 9, "%08x", cid);
    }
    return 0;
}
