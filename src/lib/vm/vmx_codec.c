/* vmx_codec.c - ".encoding" of .vmx and .vmsd files: VMware's encoding
 * names mapped to iconv's, and strict conversions to and from UTF-8. */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "vmx_codec.h"

enum codec_kind { CODEC_UTF8, CODEC_ICONV, CODEC_UNKNOWN };

struct vk_codec {
    enum codec_kind kind;
    char *name;
    iconv_t dec; /* encoding -> UTF-8 */
    iconv_t enc; /* UTF-8 -> encoding */
};

/* Longest encoding name looked at; VMware's are short ("windows-949-2000"). */
#define NAME_MAX_LEN 64

bool vk_is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* A name made only of letters, digits and "-_.:" (no "//" suffix: iconv
 * would read "//IGNORE" or "//TRANSLIT" in it and drop or change text). */
static bool plain_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

/* iconv's name for VMware's NAME (BUF holds a built one). */
static const char *iconv_name(const char *name, char *buf, size_t n)
{
    static const char *const cp932[] = {"Shift_JIS", "Shift-JIS", "SJIS", "windows-31j", "MS_Kanji"};
    for (size_t i = 0; i < sizeof cp932 / sizeof cp932[0]; i++)
        if (strcasecmp(name, cp932[i]) == 0)
            return "CP932";
    /* "windows-1252", and ICU's "windows-949-2000", "windows-936-2000" ... */
    if (strncasecmp(name, "windows-", 8) == 0) {
        const char *p = name + 8;
        size_t d = strspn(p, "0123456789");
        if (d > 0 && d <= 5 && (p[d] == 0 || strcasecmp(p + d, "-2000") == 0)) {
            snprintf(buf, n, "CP%.*s", (int)d, p);
            return buf;
        }
    }
    return name;
}

static bool is_utf8_name(const char *name)
{
    return !name || !*name || strcasecmp(name, "UTF-8") == 0 || strcasecmp(name, "UTF8") == 0;
}

int vk_codec_open(const char *name, vk_codec **out, vk_err *e)
{
    *out = NULL;
    vk_codec *c = vk_calloc(1, sizeof *c, e);
    if (!c)
        return VMDKIT_ENOMEM;
    c->dec = c->enc = (iconv_t)-1;
    if (!(c->name = vk_strdup(name && *name ? name : "UTF-8", e))) {
        free(c);
        return VMDKIT_ENOMEM;
    }
    c->kind = CODEC_UNKNOWN;
    if (is_utf8_name(name)) {
        c->kind = CODEC_UTF8;
    } else if (plain_name(name)) {
        char buf[NAME_MAX_LEN + 8];
        const char *in = iconv_name(name, buf, sizeof buf);
        c->dec = iconv_open("UTF-8", in);
        c->enc = c->dec == (iconv_t)-1 ? (iconv_t)-1 : iconv_open(in, "UTF-8");
        if (c->dec != (iconv_t)-1 && c->enc != (iconv_t)-1)
            c->kind = CODEC_ICONV;
    }
    *out = c;
    return 0;
}

void vk_codec_free(vk_codec *c)
{
    if (!c)
        return;
    if (c->dec != (iconv_t)-1)
        iconv_close(c->dec);
    if (c->enc != (iconv_t)-1)
        iconv_close(c->enc);
    free(c->name);
    free(c);
}

const char *vk_codec_name(const vk_codec *c) { return c->name; }

bool vk_codec_is_utf8(const vk_codec *c) { return c->kind == CODEC_UTF8; }

static int copy_bytes(const char *in, size_t n, char **out, size_t *out_len, vk_err *e)
{
    char *s = vk_malloc(n + 1, e);
    if (!s)
        return VMDKIT_ENOMEM;
    memcpy(s, in, n);
    s[n] = 0;
    *out = s;
    *out_len = n;
    return 0;
}

/* The code point of the UTF-8 sequence at S (at most N bytes), or -1. */
static long utf8_code_point(const unsigned char *s, size_t n)
{
    if (n == 0)
        return -1;
    if (s[0] < 0x80)
        return s[0];
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || len > n)
        return -1;
    long cp = s[0] & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    return cp;
}

/* Run CD over the N bytes at IN; on a byte it refuses, *BAD_AT is its offset. */
static int run_iconv(iconv_t cd, const char *in, size_t n, char **out, size_t *out_len, size_t *bad_at,
                     bool *bad, vk_err *e)
{
    *bad = false;
    size_t cap = 4 * n + 16;
    for (;;) {
        char *buf = vk_malloc(cap, e);
        if (!buf)
            return VMDKIT_ENOMEM;
        iconv(cd, NULL, NULL, NULL, NULL);
        char *ip = (char *)in, *op = buf;
        size_t il = n, ol = cap - 1;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        if (r != (size_t)-1)
            r = iconv(cd, NULL, NULL, &op, &ol); /* the shift state, for stateful encodings */
        if (r != (size_t)-1) {
            *op = 0;
            *out = buf;
            *out_len = (size_t)(op - buf);
            return 0;
        }
        int err = errno;
        free(buf);
        if (err != E2BIG || cap > (SIZE_MAX - 16) / 2) {
            *bad = true;
            *bad_at = (size_t)(ip - in);
            return 0;
        }
        cap *= 2;
    }
}

int vk_codec_decode(vk_codec *c, const char *in, size_t n, char **out, size_t *out_len, vk_err *e)
{
    *out = NULL;
    if (c->kind == CODEC_UTF8 || (c->kind == CODEC_UNKNOWN && vk_is_ascii(in, n)))
        return copy_bytes(in, n, out, out_len, e);
    if (c->kind == CODEC_UNKNOWN)
        return vk_fail(e, VMDKIT_EUNSUPPORTED,
                       "non-ASCII text in the encoding \"%s\", which vmdkit does not know", c->name);
    size_t at;
    bool bad;
    int r = run_iconv(c->dec, in, n, out, out_len, &at, &bad, e);
    if (!r && bad)
        r = vk_fail(e, VMDKIT_EFORMAT, "not valid %s text (byte 0x%02X at offset %zu)", c->name,
                    at < n ? (unsigned char)in[at] : 0u, at);
    return r;
}

int vk_codec_encode(vk_codec *c, const char *in, char **out, size_t *out_len, vk_err *e)
{
    *out = NULL;
    size_t n = strlen(in);
    if (c->kind == CODEC_UTF8 || (c->kind == CODEC_UNKNOWN && vk_is_ascii(in, n)))
        return copy_bytes(in, n, out, out_len, e);
    if (c->kind == CODEC_UNKNOWN)
        return vk_fail(e, VMDKIT_EUNSUPPORTED,
                       "the file's encoding \"%s\" is unknown to vmdkit: only ASCII text can be "
                       "written in it",
                       c->name);
    size_t at;
    bool bad;
    int r = run_iconv(c->enc, in, n, out, out_len, &at, &bad, e);
    if (!r && bad) {
        long cp = utf8_code_point((const unsigned char *)in + at, n - at);
        if (cp < 0)
            r = vk_fail(e, VMDKIT_EINVAL, "not valid UTF-8 text (byte 0x%02X at offset %zu)",
                        at < n ? (unsigned char)in[at] : 0u, at);
        else
            r = vk_fail(e, VMDKIT_EINVAL,
                        "the character U+%04lX cannot be written in the file's encoding %s", cp,
                        c->name);
    }
    return r;
}
