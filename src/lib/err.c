/* err.c - error recording. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"

/* ---- long messages: the middle of long words goes, not the end ---- */

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, 3 bytes */
#define ELLIPSIS_LEN 3
/* A word is never elided below this: enough for a folder and a file name. */
#define MIN_WORD 48

static bool utf8_cont(char c) { return ((unsigned char)c & 0xc0) == 0x80; }

size_t vk_elide_middle(char *out, size_t out_size, const char *s, size_t n, size_t max)
{
    if (out_size == 0)
        return 0;
    if (max > out_size - 1)
        max = out_size - 1;
    if (n <= max) {
        memcpy(out, s, n);
        out[n] = 0;
        return n;
    }
    if (max < ELLIPSIS_LEN + 2) { /* no room for both ends */
        size_t k = max;
        while (k > 0 && utf8_cont(s[k]))
            k--;
        memcpy(out, s, k);
        out[k] = 0;
        return k;
    }
    /* a third for the start, the rest for the end (the file name) */
    size_t room = max - ELLIPSIS_LEN;
    size_t head = room / 3, tail = room - head;
    /* end the start after a separator, begin the end at one, when one is
     * in the outer half of the window */
    for (size_t i = head; i > head / 2; i--)
        if (s[i - 1] == '/') {
            head = i;
            break;
        }
    while (head > 0 && utf8_cont(s[head]))
        head--;
    size_t from = n - tail;
    for (size_t i = from; i < n - tail / 2; i++)
        if (s[i] == '/') {
            from = i;
            break;
        }
    while (from < n && utf8_cont(s[from]))
        from++;
    memcpy(out, s, head);
    memcpy(out + head, ELLIPSIS, ELLIPSIS_LEN);
    memcpy(out + head + ELLIPSIS_LEN, s + from, n - from);
    size_t len = head + ELLIPSIS_LEN + (n - from);
    out[len] = 0;
    return len;
}

static bool word_byte(char c) { return c != ' ' && c != '"' && c != '\''; }

/* Total length of MSG when every word longer than LIMIT is cut to LIMIT. */
static size_t fitted_len(const char *msg, size_t n, size_t limit)
{
    size_t total = n;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && word_byte(msg[j]))
            j++;
        if (j - i > limit)
            total -= j - i - limit;
        i = j > i ? j : i + 1;
    }
    return total;
}

size_t vk_fit_message(char *dst, size_t dst_size, const char *msg, size_t n)
{
    if (dst_size == 0)
        return 0;
    size_t cap = dst_size - 1;
    if (n <= cap) {
        memcpy(dst, msg, n);
        dst[n] = 0;
        return n;
    }
    /* too many long words: the middle of the whole message */
    if (fitted_len(msg, n, MIN_WORD) > cap)
        return vk_elide_middle(dst, dst_size, msg, n, cap);
    /* the largest word length that makes the message fit, found by halving */
    size_t lo = MIN_WORD, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (fitted_len(msg, n, mid) <= cap)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap;) {
        size_t j = i;
        while (j < n && word_byte(msg[j]))
            j++;
        if (j == i) {
            dst[o++] = msg[i++];
            continue;
        }
        size_t left = cap - o;
        size_t limit = j - i > lo ? lo : j - i;
        o += vk_elide_middle(dst + o, left + 1, msg + i, j - i, limit < left ? limit : left);
        i = j;
    }
    dst[o] = 0;
    return o;
}

void vk_vformat_fitted(char *dst, size_t dst_size, const char *suffix, const char *fmt, va_list ap)
{
    char small[VMDKIT_ERRMSG_MAX];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    size_t slen = suffix ? strlen(suffix) : 0;
    if (n < 0) {
        snprintf(small, sizeof small, "(unprintable message)");
        n = (int)strlen(small);
        slen = 0;
    }
    char *big = NULL;
    char *text = small;
    size_t len = (size_t)n + slen;
    if (len >= sizeof small) {
        big = malloc(len + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            text = big;
        } else { /* keep what fitted */
            len = (size_t)n < sizeof small ? (size_t)n : sizeof small - 1;
            slen = 0;
        }
    }
    va_end(again);
    if (slen)
        memcpy(text + n, suffix, slen + 1);
    vk_fit_message(dst, dst_size, text, len);
    free(big);
    /* messages are one line */
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static void vk_vset(vk_err *e, const char *suffix, const char *fmt, va_list ap) VK_PRINTF(3, 0);

static void vk_vset(vk_err *e, const char *suffix, const char *fmt, va_list ap)
{
    vk_vformat_fitted(e->msg, sizeof e->msg, suffix, fmt, ap);
}

int vk_fail(vk_err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vk_vset(e, NULL, fmt, ap);
    va_end(ap);
    return code;
}

int vk_fail_errno(vk_err *e, int errnum, const char *fmt, ...)
{
    int code;
    switch (errnum) {
    case ENOENT:
        code = VMDKIT_ENOENT;
        break;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        code = VMDKIT_ENOSPC;
        break;
    case ENOMEM:
        code = VMDKIT_ENOMEM;
        break;
    case EEXIST:
        code = VMDKIT_EEXIST;
        break;
    case EROFS:
    case EACCES:
    case EPERM:
        code = VMDKIT_ERDONLY;
        break;
    case EWOULDBLOCK:
        code = VMDKIT_ELOCKED;
        break;
    default:
        code = VMDKIT_EIO;
        break;
    }
    if (!e)
        return code;
    e->code = code;
    char suffix[256];
    snprintf(suffix, sizeof suffix, ": %s", strerror(errnum));
    va_list ap;
    va_start(ap, fmt);
    vk_vset(e, suffix, fmt, ap);
    va_end(ap);
    return code;
}

vk_err *vk_entry(vmdkit_error *err, vk_err *local, void *res, size_t res_size)
{
    if (res)
        memset(res, 0, res_size);
    vk_err *e = err ? err : local;
    e->code = 0;
    e->msg[0] = 0;
    return e;
}

void vk_err_prefix(vk_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char old[VMDKIT_ERRMSG_MAX + 2];
    size_t oldlen = strnlen(e->msg, sizeof e->msg - 1);
    memcpy(old, ": ", 2);
    memcpy(old + 2, e->msg, oldlen);
    old[oldlen + 2] = 0;
    va_list ap;
    va_start(ap, fmt);
    vk_vset(e, old, fmt, ap);
    va_end(ap);
}

const char *vmdkit_errcode_name(int code)
{
    switch (code) {
    case VMDKIT_OK:
        return "ok";
    case VMDKIT_EIO:
        return "io";
    case VMDKIT_EFORMAT:
        return "format";
    case VMDKIT_EUNSUPPORTED:
        return "unsupported";
    case VMDKIT_ENOENT:
        return "not-found";
    case VMDKIT_ECHAIN:
        return "chain";
    case VMDKIT_EINVAL:
        return "invalid-argument";
    case VMDKIT_ERDONLY:
        return "read-only";
    case VMDKIT_ENOMEM:
        return "no-memory";
    case VMDKIT_ELOCKED:
        return "locked";
    case VMDKIT_ELIMIT:
        return "limit";
    case VMDKIT_EEXIST:
        return "exists";
    case VMDKIT_EPATH:
        return "path-policy";
    case VMDKIT_ENOSPC:
        return "no-space";
    case VMDKIT_ECANCELED:
        return "cancelled";
    default:
        return "unknown";
    }
}
