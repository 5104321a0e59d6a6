/* err.c - error recording. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vk.h"

static void vk_vset(vk_err *e, int code, const char *fmt, va_list ap) VK_PRINTF(3, 0);

static void vk_vset(vk_err *e, int code, const char *fmt, va_list ap)
{
    if (!e)
        return;
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    /* messages are one line */
    for (char *p = e->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int vk_fail(vk_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vk_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int vk_fail_errno(vk_err *e, int errnum, const char *fmt, ...)
{
    int code;
    switch (errnum) {
    case ENOENT: code = VMDKIT_ENOENT; break;
    case ENOSPC: case EDQUOT: case EFBIG: code = VMDKIT_ENOSPC; break;
    case ENOMEM: code = VMDKIT_ENOMEM; break;
    case EEXIST: code = VMDKIT_EEXIST; break;
    case EROFS: case EACCES: case EPERM: code = VMDKIT_ERDONLY; break;
    case EWOULDBLOCK: code = VMDKIT_ELOCKED; break;
    default: code = VMDKIT_EIO; break;
    }
    if (!e)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vk_vset(e, code, fmt, ap);
    va_end(ap);
    size_t n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errnum));
    return code;
}

void vk_err_prefix(vk_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char old[VMDKIT_ERRMSG_MAX];
    memcpy(old, e->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof e->msg)
        return;
    size_t used = (size_t)n;
    size_t left = sizeof e->msg - used;
    size_t oldlen = strnlen(old, sizeof old - 1);
    if (left > 2) {
        memcpy(e->msg + used, ": ", 2);
        used += 2;
        left -= 2;
        size_t k = oldlen < left - 1 ? oldlen : left - 1;
        memcpy(e->msg + used, old, k);
        e->msg[used + k] = 0;
    }
}

const char *vmdkit_errcode_name(int code)
{
    switch (code) {
    case VMDKIT_OK: return "ok";
    case VMDKIT_EIO: return "io";
    case VMDKIT_EFORMAT: return "format";
    case VMDKIT_EUNSUPPORTED: return "unsupported";
    case VMDKIT_ENOENT: return "not-found";
    case VMDKIT_ECHAIN: return "chain";
    case VMDKIT_EINVAL: return "invalid-argument";
    case VMDKIT_ERDONLY: return "read-only";
    case VMDKIT_ENOMEM: return "no-memory";
    case VMDKIT_ELOCKED: return "locked";
    case VMDKIT_ELIMIT: return "limit";
    case VMDKIT_EEXIST: return "exists";
    case VMDKIT_EPATH: return "path-policy";
    case VMDKIT_ENOSPC: return "no-space";
    case VMDKIT_ECANCELED: return "cancelled";
    default: return "unknown";
    }
}
