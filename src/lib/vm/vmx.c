/* vmx.c - .vmx files: parse into lines that keep every byte, edit one line
 * at a time, write back atomically; the hard disks a .vmx names. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "path.h"
#include "vmx.h"
#include "vmx_codec.h"

/* The value is the number of bytes the ending takes. */
enum vmx_eol { EOL_NONE = 0, EOL_LF = 1, EOL_CRLF = 2 };

struct vmx_line {
    char *text; /* the line without its ending, NUL-terminated */
    size_t len;
    enum vmx_eol eol;
    bool entry;       /* a key = value line (else blank or comment) */
    char *key;        /* entries: the key as spelled in the file */
    char *value;      /* entries: the decoded value, in UTF-8 */
    size_t key_start; /* entries: the key bytes */
    size_t key_end;
    size_t val_start; /* entries: the raw value bytes, inside any quotes */
    size_t val_end;
    bool quoted;
};

struct vmdkit_vmx {
    char *path;
    bool bom; /* the file starts with a UTF-8 byte order mark */
    struct vmx_line *lines;
    size_t n_lines;
    size_t cap_lines;
    vk_codec *codec; /* the file's .encoding */
};

static const char utf8_bom[3] = {'\xef', '\xbb', '\xbf'};

/* Longest key quoted in an error message. */
#define KEY_SHOWN 64

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

/* A byte a key may hold: VMware stops a key at whitespace, '=' and '#';
 * quotes and control bytes only appear in damaged files. */
static bool key_byte_ok(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '=' && c != '#' && c != '"';
}

/* A byte VMware writes as |XX inside a value. */
static bool needs_escape(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f || c == '"' || c == '|';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void line_clear(struct vmx_line *l)
{
    free(l->text);
    free(l->key);
    free(l->value);
    memset(l, 0, sizeof *l);
}

/* Undo |XX escapes of the N bytes at RAW (already UTF-8).  A '|' not
 * followed by two hex digits stays as it is; |00 cannot live in a C string. */
static int unescape(const char *raw, size_t n, char **out, const char *path, size_t lineno, vk_err *e)
{
    char *v = vk_malloc(n + 1, e);
    if (!v)
        return VMDKIT_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (raw[i] == '|' && i + 2 < n && (hi = hex_digit(raw[i + 1])) >= 0 &&
            (lo = hex_digit(raw[i + 2])) >= 0) {
            if (hi == 0 && lo == 0) {
                free(v);
                return vk_fail(e, VMDKIT_EFORMAT, "%s: line %zu: the escape |00 stands for a NUL byte",
                               path, lineno);
            }
            v[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            v[k++] = raw[i];
        }
    }
    v[k] = 0;
    *out = v;
    return 0;
}

/* Fill the entry fields of L from L->text, all but the value (LINENO and
 * PATH for messages): the structure is read on the raw bytes, which every
 * encoding handled shares with ASCII. */
static int parse_line(struct vmx_line *l, const char *path, size_t lineno, vk_err *e)
{
    const char *t = l->text;
    size_t n = l->len, p = 0;
    if (memchr(t, 0, n))
        return vk_fail(e, VMDKIT_EFORMAT, "%s: line %zu: NUL byte in a text file", path, lineno);
    while (p < n && is_ws(t[p]))
        p++;
    if (p == n || t[p] == '#') {
        l->entry = false; /* blank or comment */
        return 0;
    }
    size_t ks = p;
    while (p < n && key_byte_ok((unsigned char)t[p]))
        p++;
    if (p == ks)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: line %zu: not 'key = value', a comment or a blank line",
                       path, lineno);
    size_t ke = p;
    int klen = ke - ks > KEY_SHOWN ? KEY_SHOWN : (int)(ke - ks);
    while (p < n && is_ws(t[p]))
        p++;
    if (p == n || t[p] != '=')
        return vk_fail(e, VMDKIT_EFORMAT, "%s: line %zu: %.*s: expected '=' after the key", path, lineno,
                       klen, t + ks);
    p++;
    while (p < n && is_ws(t[p]))
        p++;
    bool quoted = p < n && t[p] == '"';
    size_t vs, ve;
    if (quoted) {
        vs = ++p;
        const char *q = memchr(t + vs, '"', n - vs);
        if (!q)
            return vk_fail(e, VMDKIT_EFORMAT, "%s: line %zu: %.*s: unterminated quote", path, lineno,
                           klen, t + ks);
        ve = (size_t)(q - t);
        p = ve + 1;
    } else {
        vs = p;
        while (p < n && !is_ws(t[p]) && t[p] != '#')
            p++;
        ve = p;
    }
    while (p < n && is_ws(t[p]))
        p++;
    if (p < n && t[p] != '#')
        return vk_fail(e, VMDKIT_EFORMAT,
                       "%s: line %zu: %.*s: unexpected text after the value (a value with spaces "
                       "needs quotes)",
                       path, lineno, klen, t + ks);

    char *key = vk_strndup(t + ks, ke - ks, e);
    if (!key)
        return VMDKIT_ENOMEM;
    free(l->key);
    free(l->value);
    l->entry = true;
    l->key = key;
    l->value = NULL;
    l->key_start = ks;
    l->key_end = ke;
    l->val_start = vs;
    l->val_end = ve;
    l->quoted = quoted;
    return 0;
}

/* Fill L->value: the raw bytes in the file's encoding to UTF-8, then the
 * |XX escapes undone (in this order: a trail byte of a double-byte code
 * page may be '|'). */
static int decode_entry(const vk_vmx *v, struct vmx_line *l, size_t lineno, vk_err *e)
{
    char *utf8, *value = NULL;
    size_t n;
    int r = vk_codec_decode(v->codec, l->text + l->val_start, l->val_end - l->val_start, &utf8, &n, e);
    if (r) {
        vk_err_prefix(e, "%s: line %zu: %.*s", v->path, lineno, KEY_SHOWN, l->key);
        return r;
    }
    r = unescape(utf8, n, &value, v->path, lineno, e);
    free(utf8);
    if (r)
        return r;
    free(l->value);
    l->value = value;
    return 0;
}

static int grow_lines(vk_vmx *v, vk_err *e)
{
    if (v->n_lines < v->cap_lines)
        return 0;
    size_t cap = v->cap_lines ? v->cap_lines * 2 : 64;
    struct vmx_line *nl = realloc(v->lines, cap * sizeof *nl);
    if (!nl)
        return vk_fail(e, VMDKIT_ENOMEM, "%s: out of memory", v->path);
    v->lines = nl;
    v->cap_lines = cap;
    return 0;
}

/* Append a copy of the LEN bytes at TEXT as a new last line. */
static int add_line(vk_vmx *v, const char *text, size_t len, enum vmx_eol eol, vk_err *e)
{
    int r = grow_lines(v, e);
    if (r)
        return r;
    struct vmx_line *l = &v->lines[v->n_lines];
    memset(l, 0, sizeof *l);
    if (!(l->text = vk_malloc(len + 1, e)))
        return VMDKIT_ENOMEM;
    memcpy(l->text, text, len);
    l->text[len] = 0;
    l->len = len;
    l->eol = eol;
    v->n_lines++;
    return 0;
}

void vk_vmx_free(vk_vmx *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_lines; i++)
        line_clear(&v->lines[i]);
    free(v->lines);
    free(v->path);
    vk_codec_free(v->codec);
    free(v);
}

/* Index of the last line holding KEY, or -1. */
static ptrdiff_t find_key(const vk_vmx *v, const char *key)
{
    for (size_t i = v->n_lines; i-- > 0;)
        if (v->lines[i].entry && strcasecmp(v->lines[i].key, key) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static const char encoding_key[] = ".encoding";

/* Open the codec the file's .encoding line names (the last one; none:
 * UTF-8) and decode every value with it. */
static int decode_all(vk_vmx *v, vk_err *e)
{
    ptrdiff_t i = find_key(v, encoding_key);
    char *name = NULL;
    int r = 0;
    if (i >= 0) { /* read as vk_vmx_set gave it: with the |XX escapes undone */
        const struct vmx_line *l = &v->lines[i];
        r = unescape(l->text + l->val_start, l->val_end - l->val_start, &name, v->path, (size_t)i + 1,
                     e);
    }
    if (!r)
        r = vk_codec_open(name, &v->codec, e);
    free(name);
    for (size_t k = 0; !r && k < v->n_lines; k++)
        if (v->lines[k].entry)
            r = decode_entry(v, &v->lines[k], k + 1, e);
    return r;
}

int vk_vmx_parse(const char *path, const char *data, size_t len, vk_vmx **out, vk_err *e)
{
    *out = NULL;
    if (len > VK_VMX_MAX_BYTES)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: file is %zu bytes, more than the %u accepted", path, len,
                       VK_VMX_MAX_BYTES);
    vk_vmx *v = vk_calloc(1, sizeof *v, e);
    if (!v)
        return VMDKIT_ENOMEM;
    if (!(v->path = vk_strdup(path, e))) {
        free(v);
        return VMDKIT_ENOMEM;
    }
    size_t p = 0;
    if (len >= sizeof utf8_bom && memcmp(data, utf8_bom, sizeof utf8_bom) == 0) {
        v->bom = true;
        p = sizeof utf8_bom;
    }
    int r = 0;
    for (size_t lineno = 1; p < len && !r; lineno++) {
        const char *nl = memchr(data + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - data) : len;
        enum vmx_eol eol = EOL_NONE;
        size_t text_end = end;
        if (nl) {
            eol = EOL_LF;
            if (end > p && data[end - 1] == '\r') {
                eol = EOL_CRLF;
                text_end--;
            }
        }
        r = add_line(v, data + p, text_end - p, eol, e);
        if (!r)
            r = parse_line(&v->lines[v->n_lines - 1], path, lineno, e);
        p = nl ? end + 1 : len;
    }
    if (!r)
        r = decode_all(v, e);
    if (r) {
        vk_vmx_free(v);
        return r;
    }
    *out = v;
    return 0;
}

int vk_vmx_load(const char *path, vk_vmx **out, vk_err *e)
{
    char *data;
    size_t len;
    *out = NULL;
    int r = vk_read_file(path, VK_VMX_MAX_BYTES, &data, &len, e);
    if (r)
        return r;
    r = vk_vmx_parse(path, data, len, out, e);
    free(data);
    return r;
}

const char *vk_vmx_path(const vk_vmx *v) { return v->path; }

const char *vk_vmx_encoding(const vk_vmx *v) { return vk_codec_name(v->codec); }

const char *vk_vmx_get(const vk_vmx *v, const char *key)
{
    ptrdiff_t i = find_key(v, key);
    return i < 0 ? NULL : v->lines[i].value;
}

bool vk_vmx_next(const vk_vmx *v, size_t *pos, const char **key, const char **value)
{
    while (*pos < v->n_lines) {
        const struct vmx_line *l = &v->lines[(*pos)++];
        if (l->entry) {
            *key = l->key;
            *value = l->value;
            return true;
        }
    }
    return false;
}

/* VALUE with VMware's |XX escapes (for inside quotes). */
static char *encode_value(const char *value, vk_err *e)
{
    size_t n = 0;
    for (const char *s = value; *s; s++)
        n += needs_escape((unsigned char)*s) ? 3 : 1;
    char *out = vk_malloc(n + 1, e);
    if (!out)
        return NULL;
    static const char hex[] = "0123456789ABCDEF";
    char *o = out;
    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if (needs_escape(*s)) {
            *o++ = '|';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 15];
        } else {
            *o++ = (char)*s;
        }
    }
    *o = 0;
    return out;
}

/* Can VALUE be written without quotes and read back the same? */
static bool bare_ok(const char *value)
{
    if (!*value)
        return false;
    for (const unsigned char *s = (const unsigned char *)value; *s; s++)
        if (is_ws((char)*s) || *s == '#' || needs_escape(*s))
            return false;
    return true;
}

static int check_key(const vk_vmx *v, const char *key, vk_err *e)
{
    if (!key || !*key)
        return vk_fail(e, VMDKIT_EINVAL, "%s: empty key", v->path);
    for (const unsigned char *s = (const unsigned char *)key; *s; s++)
        if (!key_byte_ok(*s))
            return vk_fail(e, VMDKIT_EINVAL,
                           "%s: %.*s: a key cannot hold whitespace, '=', '#', '\"' or control "
                           "characters",
                           v->path, KEY_SHOWN, key);
    return 0;
}

/* NA bytes at A, the strings B, C and D (NULL: none), then NF bytes at F,
 * as one new NUL-terminated string of *LEN bytes. */
static char *concat(size_t *len, vk_err *e, const char *a, size_t na, const char *b, const char *c,
                    const char *d, const char *f, size_t nf)
{
    size_t nb = b ? strlen(b) : 0, nc = c ? strlen(c) : 0, nd = d ? strlen(d) : 0;
    size_t n = na + nb + nc + nd + nf;
    char *out = vk_malloc(n + 1, e);
    if (!out)
        return NULL;
    char *o = out;
    memcpy(o, a, na), o += na;
    memcpy(o, b ? b : "", nb), o += nb;
    memcpy(o, c ? c : "", nc), o += nc;
    memcpy(o, d ? d : "", nd), o += nd;
    memcpy(o, f, nf), o += nf;
    *o = 0;
    *len = n;
    return out;
}

/* The bytes VALUE (UTF-8) takes in the file: |XX escapes, then the file's
 * encoding.  KEY names the value in messages. */
static char *file_value(const vk_vmx *v, const char *key, const char *value, vk_err *e)
{
    char *escaped = encode_value(value, e), *raw = NULL;
    size_t n;
    if (!escaped)
        return NULL;
    if (vk_codec_encode(v->codec, escaped, &raw, &n, e))
        vk_err_prefix(e, "%s: %.*s", v->path, KEY_SHOWN, key);
    free(escaped);
    return raw;
}

/* Replace the value bytes of line I, keeping everything around them. */
static int replace_value(vk_vmx *v, size_t i, const char *value, vk_err *e)
{
    struct vmx_line *l = &v->lines[i];
    char *enc = file_value(v, l->key, value, e);
    if (!enc)
        return e->code ? e->code : VMDKIT_ENOMEM;
    const char *head = l->text, *tail = l->text + l->val_end;
    size_t nhead = l->val_start, ntail = l->len - l->val_end, len;
    char *text;
    /* a bare value stays bare when the new one can; an empty one gets quotes
     * (so "k =" never turns into "k =x") */
    if (l->quoted || (l->val_end > l->val_start && bare_ok(value))) {
        text = concat(&len, e, head, nhead, enc, NULL, NULL, tail, ntail);
    } else {
        /* an empty bare value sits right after '=' or right before a
         * comment: keep a space on each side of the quotes */
        bool space_before = nhead > 0 && head[nhead - 1] == '=';
        bool space_after = ntail > 0 && !is_ws(tail[0]);
        text = concat(&len, e, head, nhead, space_before ? " \"" : "\"", enc, space_after ? "\" " : "\"",
                      tail, ntail);
    }
    free(enc);
    if (!text)
        return VMDKIT_ENOMEM;
    struct vmx_line nl = *l;
    nl.text = text;
    nl.len = len;
    nl.key = NULL;
    nl.value = NULL;
    int r = parse_line(&nl, v->path, i + 1, e);
    if (!r)
        r = decode_entry(v, &nl, i + 1, e);
    if (r) {
        free(nl.key);
        free(nl.value);
        free(text);
        return r;
    }
    free(l->text);
    free(l->key);
    free(l->value);
    *l = nl;
    return 0;
}

/* The line ending new lines get: that of the last line which has one. */
static enum vmx_eol file_eol(const vk_vmx *v)
{
    for (size_t i = v->n_lines; i-- > 0;)
        if (v->lines[i].eol != EOL_NONE)
            return v->lines[i].eol;
    return EOL_LF;
}

/* Make room for one line at index AT (lines from AT on move down). */
static int open_line_at(vk_vmx *v, size_t at, vk_err *e)
{
    int r = grow_lines(v, e);
    if (r)
        return r;
    memmove(&v->lines[at + 1], &v->lines[at], (v->n_lines - at) * sizeof *v->lines);
    memset(&v->lines[at], 0, sizeof v->lines[at]);
    v->n_lines++;
    return 0;
}

/* A new line `KEY = "VALUE"` at index AT (AT == n_lines: at the end). */
static int insert_entry(vk_vmx *v, size_t at, const char *key, const char *value, vk_err *e)
{
    char *enc = file_value(v, key, value, e);
    if (!enc)
        return e->code ? e->code : VMDKIT_ENOMEM;
    size_t len;
    char *text = concat(&len, e, key, strlen(key), " = \"", enc, "\"", "", 0);
    free(enc);
    if (!text)
        return VMDKIT_ENOMEM;
    enum vmx_eol eol = file_eol(v);
    /* a file without a final line ending keeps lacking one */
    bool last = at == v->n_lines;
    bool unterminated = last && v->n_lines > 0 && v->lines[v->n_lines - 1].eol == EOL_NONE;
    int r = open_line_at(v, at, e);
    if (r) {
        free(text);
        return r;
    }
    struct vmx_line *l = &v->lines[at];
    l->text = text;
    l->len = len;
    l->eol = unterminated ? EOL_NONE : eol;
    r = parse_line(l, v->path, at + 1, e);
    if (!r)
        r = decode_entry(v, l, at + 1, e);
    if (r) {
        line_clear(l);
        memmove(&v->lines[at], &v->lines[at + 1], (v->n_lines - at - 1) * sizeof *v->lines);
        v->n_lines--;
        return r;
    }
    if (unterminated)
        v->lines[at - 1].eol = eol;
    return 0;
}

/* Do the keys and values of every entry but line SKIP (none: SIZE_MAX)
 * hold only ASCII bytes?  Then they mean the same in every encoding
 * handled.  *LINE gets the first line that does not. */
static bool values_ascii(const vk_vmx *v, size_t skip, size_t *line)
{
    for (size_t i = 0; i < v->n_lines; i++) {
        const struct vmx_line *l = &v->lines[i];
        if (l->entry && i != skip &&
            (!vk_is_ascii(l->text + l->val_start, l->val_end - l->val_start) ||
             !vk_is_ascii(l->key, strlen(l->key)))) {
            *line = i + 1;
            return false;
        }
    }
    return true;
}

/*
 * Another .encoding (NAME; NULL: none, UTF-8): allowed only when no value
 * would change meaning, since vmdkit keeps the bytes of every other line
 * (SKIP is the line that will hold the new name, or SIZE_MAX when every
 * .encoding line goes).  On success the new codec replaces the old one
 * and *OLD receives the old (to put back or free).
 */
static int switch_encoding(vk_vmx *v, const char *name, size_t skip, vk_codec **old, vk_err *e)
{
    *old = NULL;
    const char *now = vk_codec_name(v->codec);
    bool same = name ? strcasecmp(name, now) == 0 : vk_codec_is_utf8(v->codec);
    if (same)
        return 0;
    size_t line;
    bool ok = true;
    if (skip == SIZE_MAX) /* every .encoding line goes: the others need not be ASCII */
        for (size_t i = 0; ok && i < v->n_lines; i++) {
            const struct vmx_line *l = &v->lines[i];
            if (l->entry && strcasecmp(l->key, encoding_key) != 0 &&
                (!vk_is_ascii(l->text + l->val_start, l->val_end - l->val_start) ||
                 !vk_is_ascii(l->key, strlen(l->key))))
                ok = false, line = i + 1;
        }
    else
        ok = values_ascii(v, skip, &line);
    if (!ok)
        return vk_fail(e, VMDKIT_EUNSUPPORTED,
                       "%s: .encoding: changing it from \"%s\" would change the meaning of line "
                       "%zu, which holds non-ASCII text (vmdkit does not re-encode the file)",
                       v->path, now, line);
    vk_codec *c;
    int r = vk_codec_open(name, &c, e);
    if (r)
        return r;
    *old = v->codec;
    v->codec = c;
    return 0;
}

int vk_vmx_set(vk_vmx *v, const char *key, const char *value, vk_err *e)
{
    return vk_vmx_set_after(v, key, value, NULL, e);
}

int vk_vmx_set_after(vk_vmx *v, const char *key, const char *value, const char *after, vk_err *e)
{
    int r = check_key(v, key, e);
    if (r)
        return r;
    if (!value)
        return vk_fail(e, VMDKIT_EINVAL, "%s: %.*s: no value given", v->path, KEY_SHOWN, key);
    vk_codec *old = NULL;
    bool is_encoding = strcasecmp(key, encoding_key) == 0;
    ptrdiff_t i = find_key(v, key);
    if (is_encoding && (r = switch_encoding(v, value, i >= 0 ? (size_t)i : v->n_lines, &old, e)))
        return r;
    if (i >= 0) {
        r = replace_value(v, (size_t)i, value, e);
    } else {
        ptrdiff_t a = after ? find_key(v, after) : -1;
        r = insert_entry(v, a >= 0 ? (size_t)a + 1 : v->n_lines, key, value, e);
    }
    if (r && old) { /* put the old encoding back */
        vk_codec_free(v->codec);
        v->codec = old;
        old = NULL;
    }
    vk_codec_free(old);
    return r;
}

int vk_vmx_encodable(const vk_vmx *v, const char *key, const char *value, vk_err *e)
{
    char *raw = file_value(v, key, value, e);
    if (!raw)
        return e->code ? e->code : VMDKIT_ENOMEM;
    free(raw);
    return 0;
}

int vk_vmx_rekey(vk_vmx *v, vk_vmx_rekey_fn fn, void *opaque, vk_err *e)
{
    /* the new lines are built beside the old ones and swapped in at the
     * end, so a failure changes nothing */
    size_t n_old = v->n_lines;
    struct vmx_line *nl = vk_calloc(n_old ? n_old : 1, sizeof *nl, e);
    bool *drop = vk_calloc(n_old ? n_old : 1, sizeof *drop, e);
    int r = nl && drop ? 0 : VMDKIT_ENOMEM;
    bool changed = false;
    for (size_t i = 0; !r && i < v->n_lines; i++) {
        struct vmx_line *l = &v->lines[i];
        if (!l->entry || strcasecmp(l->key, encoding_key) == 0)
            continue;
        char *new_key = NULL;
        int what = fn(opaque, l->key, &new_key, e);
        if (what < 0) {
            r = what;
        } else if (what == VK_VMX_DROP) {
            drop[i] = changed = true;
        } else if (what == VK_VMX_RENAME) {
            size_t len;
            char *text = NULL;
            if (!(r = check_key(v, new_key, e)) &&
                !(text = concat(&len, e, l->text, l->key_start, new_key, NULL, NULL,
                                l->text + l->key_end, l->len - l->key_end)))
                r = VMDKIT_ENOMEM;
            if (!r) {
                nl[i] = *l;
                nl[i].text = text;
                nl[i].len = len;
                nl[i].key = nl[i].value = NULL;
                if (!(r = parse_line(&nl[i], v->path, i + 1, e)))
                    r = decode_entry(v, &nl[i], i + 1, e);
                changed = true;
            }
        }
        free(new_key);
    }
    if (!r && changed) {
        bool unterminated = v->n_lines > 0 && v->lines[v->n_lines - 1].eol == EOL_NONE;
        size_t k = 0;
        for (size_t i = 0; i < v->n_lines; i++) {
            if (drop[i]) {
                line_clear(&v->lines[i]);
                continue;
            }
            if (nl[i].text) {
                line_clear(&v->lines[i]);
                v->lines[i] = nl[i];
                memset(&nl[i], 0, sizeof nl[i]);
            }
            v->lines[k++] = v->lines[i];
        }
        v->n_lines = k;
        if (unterminated && k > 0)
            v->lines[k - 1].eol = EOL_NONE;
    }
    for (size_t i = 0; nl && i < n_old; i++)
        line_clear(&nl[i]);
    free(nl);
    free(drop);
    return r;
}

int vk_vmx_unset(vk_vmx *v, const char *key, vk_err *e)
{
    if (!key || find_key(v, key) < 0)
        return vk_fail(e, VMDKIT_ENOENT, "%s: %.*s: no such key", v->path, KEY_SHOWN, key ? key : "");
    if (strcasecmp(key, encoding_key) == 0) {
        vk_codec *old;
        int r = switch_encoding(v, NULL, SIZE_MAX, &old, e);
        if (r)
            return r;
        vk_codec_free(old);
    }
    bool unterminated = v->n_lines > 0 && v->lines[v->n_lines - 1].eol == EOL_NONE;
    size_t k = 0;
    for (size_t i = 0; i < v->n_lines; i++) {
        if (v->lines[i].entry && strcasecmp(v->lines[i].key, key) == 0)
            line_clear(&v->lines[i]);
        else
            v->lines[k++] = v->lines[i];
    }
    v->n_lines = k;
    if (unterminated && k > 0)
        v->lines[k - 1].eol = EOL_NONE;
    return 0;
}

int vk_vmx_serialize(const vk_vmx *v, char **data, size_t *len, vk_err *e)
{
    size_t n = v->bom ? sizeof utf8_bom : 0;
    for (size_t i = 0; i < v->n_lines; i++)
        n += v->lines[i].len + (size_t)v->lines[i].eol; /* EOL_LF = 1 byte, EOL_CRLF = 2 */
    char *out = vk_malloc(n + 1, e);
    if (!out)
        return VMDKIT_ENOMEM;
    char *o = out;
    if (v->bom)
        memcpy(o, utf8_bom, sizeof utf8_bom), o += sizeof utf8_bom;
    for (size_t i = 0; i < v->n_lines; i++) {
        const struct vmx_line *l = &v->lines[i];
        memcpy(o, l->text, l->len);
        o += l->len;
        if (l->eol == EOL_CRLF)
            *o++ = '\r';
        if (l->eol != EOL_NONE)
            *o++ = '\n';
    }
    *o = 0;
    *data = out;
    *len = n;
    return 0;
}

int vk_vmx_save(const vk_vmx *v, vk_err *e)
{
    char *data;
    size_t len;
    int r = vk_vmx_serialize(v, &data, &len, e);
    if (r)
        return r;
    r = vk_write_file_atomic(v->path, data, len, e);
    free(data);
    return r;
}

/* ---- the hard disks a .vmx names ---- */

enum slot_field { F_FILENAME, F_PRESENT, F_DEVICETYPE };

/* One "<slot>.<field>" entry. */
struct slot_ref {
    const char *slot; /* points into the line's key */
    size_t slot_len;
    enum slot_field field;
    size_t line;
};

size_t vk_vmx_slot_key(const char *key)
{
    static const char *const buses[] = {"scsi", "sata", "ide", "nvme"};
    const char *p = NULL;
    for (size_t i = 0; i < sizeof buses / sizeof buses[0] && !p; i++)
        if (strncasecmp(key, buses[i], strlen(buses[i])) == 0)
            p = key + strlen(buses[i]);
    if (!p || !isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p++ != ':' || !isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == '.' ? (size_t)(p - key) : 0;
}

/* Does KEY read "<bus><N>:<M>.<field>" with bus scsi, sata, ide or nvme? */
static bool parse_slot_key(const char *key, size_t *slot_len, enum slot_field *field)
{
    if (!(*slot_len = vk_vmx_slot_key(key)))
        return false;
    const char *p = key + *slot_len;
    if (strcasecmp(p + 1, "fileName") == 0)
        *field = F_FILENAME;
    else if (strcasecmp(p + 1, "present") == 0)
        *field = F_PRESENT;
    else if (strcasecmp(p + 1, "deviceType") == 0)
        *field = F_DEVICETYPE;
    else
        return false;
    return true;
}

static int slot_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c = strncasecmp(a, b, na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

/* Group by slot (any case), then file order. */
static int ref_cmp(const void *pa, const void *pb)
{
    const struct slot_ref *a = pa, *b = pb;
    int c = slot_cmp(a->slot, a->slot_len, b->slot, b->slot_len);
    return c ? c : (a->line > b->line) - (a->line < b->line);
}

static bool is_false(const char *s)
{
    return strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 || strcmp(s, "0") == 0;
}

static bool is_hard_disk_type(const char *s)
{
    static const char *const types[] = {"disk", "plainDisk", "rawDisk", "scsi-hardDisk", "ata-hardDisk"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(s, types[i]) == 0)
            return true;
    return false;
}

/* The disk of one slot group [FIRST, END) of sorted refs, if it is one;
 * *LINE receives the line of its (last) fileName. */
static const char *group_disk(const vk_vmx *v, const struct slot_ref *refs, size_t first, size_t end,
                              size_t *line)
{
    const char *file = NULL, *present = NULL, *type = NULL;
    for (size_t i = first; i < end; i++) { /* file order: the last line wins */
        const char *val = v->lines[refs[i].line].value;
        if (refs[i].field == F_FILENAME) {
            file = val;
            *line = refs[i].line;
        } else if (refs[i].field == F_PRESENT) {
            present = val;
        } else {
            type = val;
        }
    }
    if (!file || !vk_path_has_suffix(file, ".vmdk") || (present && is_false(present)) ||
        (type && !is_hard_disk_type(type)))
        return NULL;
    return file;
}

static int line_cmp(const void *pa, const void *pb)
{
    const struct slot_ref *a = pa, *b = pb;
    return (a->line > b->line) - (a->line < b->line);
}

void vk_vmx_disks_free(vk_vmx_disk *disks, size_t n)
{
    for (size_t i = 0; disks && i < n; i++) {
        free(disks[i].slot);
        free(disks[i].file);
    }
    free(disks);
}

int vk_vmx_disks(const vk_vmx *v, vk_vmx_disk **out, size_t *n, vk_err *e)
{
    *out = NULL;
    *n = 0;
    size_t n_refs = 0;
    struct slot_ref *refs = vk_calloc(v->n_lines ? v->n_lines : 1, sizeof *refs, e);
    if (!refs)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; i < v->n_lines; i++) {
        const struct vmx_line *l = &v->lines[i];
        struct slot_ref r = {.slot = l->key, .line = i};
        if (l->entry && parse_slot_key(l->key, &r.slot_len, &r.field))
            refs[n_refs++] = r;
    }
    qsort(refs, n_refs, sizeof *refs, ref_cmp);

    /* one found disk per slot group, kept at the group's start; then back
     * into the order of their fileName lines */
    size_t n_found = 0;
    for (size_t first = 0, end; first < n_refs; first = end) {
        for (end = first + 1; end < n_refs && slot_cmp(refs[first].slot, refs[first].slot_len,
                                                       refs[end].slot, refs[end].slot_len) == 0;
             end++)
            ;
        size_t line = 0;
        if (group_disk(v, refs, first, end, &line)) {
            refs[n_found] = refs[first];
            refs[n_found++].line = line;
        }
    }
    qsort(refs, n_found, sizeof *refs, line_cmp);

    vk_vmx_disk *disks = vk_calloc(n_found ? n_found : 1, sizeof *disks, e);
    int r = disks ? 0 : VMDKIT_ENOMEM;
    for (size_t i = 0; i < n_found && !r; i++) {
        if (!(disks[i].slot = vk_malloc(refs[i].slot_len + 1, e)) ||
            !(disks[i].file = vk_strdup(v->lines[refs[i].line].value, e))) {
            r = VMDKIT_ENOMEM;
            break;
        }
        memcpy(disks[i].slot, refs[i].slot, refs[i].slot_len);
        disks[i].slot[refs[i].slot_len] = 0;
    }
    free(refs);
    if (r) {
        vk_vmx_disks_free(disks, n_found);
        return r;
    }
    *out = disks;
    *n = n_found;
    return 0;
}

/* ---- public API ---- */

int vmdkit_vmx_open(const char *path, vmdkit_vmx **out, vmdkit_error *err)
{
    if (!path || !out)
        return vk_fail(err, VMDKIT_EINVAL, "vmdkit_vmx_open: path and out are required");
    return vk_vmx_load(path, out, err);
}

const char *vmdkit_vmx_get(const vmdkit_vmx *vmx, const char *key)
{
    return vmx && key ? vk_vmx_get(vmx, key) : NULL;
}

int vmdkit_vmx_set(vmdkit_vmx *vmx, const char *key, const char *value, vmdkit_error *err)
{
    if (!vmx)
        return vk_fail(err, VMDKIT_EINVAL, "vmdkit_vmx_set: no .vmx handle");
    return vk_vmx_set(vmx, key, value, err);
}

int vmdkit_vmx_unset(vmdkit_vmx *vmx, const char *key, vmdkit_error *err)
{
    if (!vmx)
        return vk_fail(err, VMDKIT_EINVAL, "vmdkit_vmx_unset: no .vmx handle");
    return vk_vmx_unset(vmx, key, err);
}

int vmdkit_vmx_save(const vmdkit_vmx *vmx, vmdkit_error *err)
{
    if (!vmx)
        return vk_fail(err, VMDKIT_EINVAL, "vmdkit_vmx_save: no .vmx handle");
    return vk_vmx_save(vmx, err);
}

void vmdkit_vmx_close(vmdkit_vmx *vmx) { vk_vmx_free(vmx); }
