/* manifest.c - digests (OpenSSL's libcrypto: SHA-1, SHA-256, SHA-512 with
 * the CPU's SHA instructions where it has them) and the lines of an OVF
 * manifest.  Written: exactly "SHA256(name)= hex\n", the form ovftool,
 * open-vmdk and osbuild write and vCenter accepts.  Read: every line, with
 * what is off about its form (the blank before '(' of `sha256sum --tag`,
 * OpenSSL 3's "SHA2-256" label, unknown algorithms) kept for lint. */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "ovf.h"

struct vk_digest {
    EVP_MD_CTX *ctx;
};

static const struct {
    const char *name;
    size_t len;
} algos[VK_ALGO_COUNT] = {
    [VK_ALGO_SHA1] = {"SHA1", 20},
    [VK_ALGO_SHA256] = {"SHA256", 32},
    [VK_ALGO_SHA512] = {"SHA512", 64},
};

const char *vk_ovf_algo_name(enum vk_ovf_algo a) { return algos[a].name; }
size_t vk_ovf_algo_len(enum vk_ovf_algo a) { return algos[a].len; }

static const EVP_MD *md_of(enum vk_ovf_algo a)
{
    return a == VK_ALGO_SHA1 ? EVP_sha1() : a == VK_ALGO_SHA512 ? EVP_sha512() : EVP_sha256();
}

int vk_digest_new(enum vk_ovf_algo a, vk_digest **out, vk_err *e)
{
    vk_digest *d = vk_calloc(1, sizeof *d, e);
    if (!d)
        return VMDKIT_ENOMEM;
    d->ctx = EVP_MD_CTX_new();
    if (!d->ctx || EVP_DigestInit_ex(d->ctx, md_of(a), NULL) != 1) {
        EVP_MD_CTX_free(d->ctx);
        free(d);
        return vk_fail(e, VMDKIT_ENOMEM, "%s: cannot set up the digest", algos[a].name);
    }
    *out = d;
    return 0;
}

void vk_digest_update(vk_digest *d, const void *buf, size_t len)
{
    if (d && len)
        EVP_DigestUpdate(d->ctx, buf, len);
}

void vk_digest_finish(vk_digest *d, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(d->ctx, md, &n);
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = 0;
    vk_digest_free(d);
}

void vk_digest_free(vk_digest *d)
{
    if (!d)
        return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}

size_t vk_ovf_mf_line_len(enum vk_ovf_algo a, const char *name)
{
    /* NAME(name)= hex\n */
    return strlen(algos[a].name) + 1 + strlen(name) + 3 + 2 * algos[a].len + 1;
}

void vk_ovf_mf_line(char *buf, size_t *pos, enum vk_ovf_algo a, const char *name, const char *hex)
{
    size_t n = vk_ovf_mf_line_len(a, name);
    snprintf(buf + *pos, n + 1, "%s(%s)= %s\n", algos[a].name, name, hex);
    *pos += n;
}

/* ---- reading ---- */

void vk_mf_free(vk_mf *mf)
{
    for (size_t i = 0; i < mf->n; i++) {
        free(mf->v[i].algo);
        free(mf->v[i].name);
        free(mf->v[i].hex);
    }
    free(mf->v);
    free(mf->bad_lines);
    memset(mf, 0, sizeof *mf);
}

/* Parse one line L (LEN bytes, without its LF) into ENT; false when it is
 * no digest line.  Accepted: ALGO <blanks> ( NAME ) <blanks> = <blanks> HEX. */
static bool parse_line(const char *l, size_t len, vk_mf_entry *ent, vk_err *e, int *r)
{
    if (len && l[len - 1] == '\r') {
        ent->crlf = true;
        len--;
    }
    size_t p = 0;
    while (p < len && (isalnum((unsigned char)l[p]) || l[p] == '-'))
        p++;
    size_t algo_end = p;
    if (algo_end == 0)
        return false;
    while (p < len && l[p] == ' ')
        p++;
    ent->blank_before_paren = p > algo_end;
    if (p == len || l[p] != '(')
        return false;
    size_t name_start = ++p;
    /* the name ends at the last ")" before the "=": names may hold parens */
    const char *eq = NULL;
    for (size_t i = len; i-- > name_start;)
        if (l[i] == '=') {
            eq = l + i;
            break;
        }
    if (!eq)
        return false;
    size_t q = (size_t)(eq - l);
    while (q > name_start && l[q - 1] == ' ')
        q--;
    if (q <= name_start || l[q - 1] != ')')
        return false;
    size_t name_end = q - 1;
    size_t h = (size_t)(eq - l) + 1, blanks = 0;
    while (h < len && l[h] == ' ')
        h++, blanks++;
    ent->bad_blank = blanks != 1 || (size_t)(eq - l) != q;
    size_t hex_start = h;
    while (h < len && isxdigit((unsigned char)l[h]))
        h++;
    if (h == hex_start || h != len)
        return false;
    ent->algo = vk_strndup(l, algo_end, e);
    ent->name = vk_strndup(l + name_start, name_end - name_start, e);
    ent->hex = vk_strndup(l + hex_start, len - hex_start, e);
    if (!ent->algo || !ent->name || !ent->hex) {
        *r = VMDKIT_ENOMEM;
        return false;
    }
    for (char *c = ent->hex; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    ent->known = -1;
    for (int a = 0; a < VK_ALGO_COUNT; a++)
        if (strcmp(ent->algo, algos[a].name) == 0 && strlen(ent->hex) == 2 * algos[a].len)
            ent->known = a;
    return true;
}

int vk_mf_parse(const char *text, size_t len, vk_mf *mf, vk_err *e)
{
    memset(mf, 0, sizeof *mf);
    if (len > (1u << 20))
        return vk_fail(e, VMDKIT_ELIMIT, "manifest: %zu bytes: more than 1 MiB", len);
    size_t lineno = 0;
    for (size_t p = 0; p < len;) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - text) : len;
        lineno++;
        vk_mf_entry ent = {.line = lineno};
        int r = 0;
        bool blank = true;
        for (size_t i = p; i < end; i++)
            blank &= text[i] == ' ' || text[i] == '\r' || text[i] == '\t';
        if (!blank && parse_line(text + p, end - p, &ent, e, &r)) {
            vk_mf_entry *slot = vk_ovf_grow((void **)&mf->v, &mf->n, sizeof *slot, e);
            if (!slot) {
                r = VMDKIT_ENOMEM;
            } else {
                *slot = ent;
                ent.algo = ent.name = ent.hex = NULL;
            }
        } else if (!r && !blank) {
            size_t *slot = vk_ovf_grow((void **)&mf->bad_lines, &mf->n_bad, sizeof *slot, e);
            if (!slot)
                r = VMDKIT_ENOMEM;
            else
                *slot = lineno;
        }
        free(ent.algo);
        free(ent.name);
        free(ent.hex);
        if (r) {
            vk_mf_free(mf);
            return r;
        }
        p = nl ? end + 1 : len;
    }
    return 0;
}
