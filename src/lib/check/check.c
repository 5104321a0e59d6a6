/* check.c - the services every check calls back into: findings (reported
 * to the caller's callback, counted, bounded) and progress.  The course of
 * a check is check_run.c's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

void vk_check_emit(vk_check *c, int kind, const char *file, uint64_t offset, const char *msg)
{
    if (kind != VMDKIT_FIND_REPAIRED && !c->emit)
        return;
    if (c->after_repair && (kind == VMDKIT_FIND_UNREPAIRED || kind == VMDKIT_FIND_INFO))
        return; /* the re-check names the problems left, nothing else */
    if (c->n.findings >= VK_CHECK_MAX_FINDINGS) {
        c->n.dropped++;
        return;
    }
    c->n.findings++;
    if (!c->fn)
        return;
    vmdkit_check_finding f = {
        .kind = kind,
        .file = file,
        .message = msg,
        .offset = offset,
        .after_repair = c->after_repair,
    };
    c->fn(c->opaque, &f);
}

static void emit_v(vk_check *c, int kind, const char *file, uint64_t offset, const char *fmt, va_list ap)
    VK_PRINTF(5, 0);

static void emit_v(vk_check *c, int kind, const char *file, uint64_t offset, const char *fmt, va_list ap)
{
    char msg[VMDKIT_ERRMSG_MAX];
    vk_vformat_fitted(msg, sizeof msg, NULL, fmt, ap);
    vk_check_emit(c, kind, file, offset, msg);
}

void vk_check_report(vk_check *c, int kind, const char *file, uint64_t offset, const char *fmt, ...)
{
    if (kind == VMDKIT_FIND_CORRUPT)
        c->n.corruptions++;
    else if (kind == VMDKIT_FIND_STALE)
        c->n.stale++;
    va_list ap;
    va_start(ap, fmt);
    emit_v(c, kind, file, offset, fmt, ap);
    va_end(ap);
}

void vk_check_note(vk_check *c, int kind, const char *file, uint64_t offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_v(c, kind, file, offset, fmt, ap);
    va_end(ap);
}

void vk_check_leak(vk_check *c, const char *file, uint64_t offset, uint64_t grains, uint64_t bytes,
                   const char *fmt, ...)
{
    c->n.leaks += grains;
    c->n.leaked_bytes += bytes;
    c->n.leak_findings++;
    va_list ap;
    va_start(ap, fmt);
    emit_v(c, VMDKIT_FIND_LEAK, file, offset, fmt, ap);
    va_end(ap);
}

void vk_check_progress(vk_check *c, uint64_t within, uint64_t per_extent)
{
    if (!c->progress)
        return;
    uint64_t in = per_extent ? (uint64_t)((double)c->prog_ext_bytes * within / per_extent) : 0;
    uint64_t done = c->prog_link_base + c->prog_ext_start + vk_min(in, c->prog_ext_bytes);
    done = vk_min(done, c->prog_total);
    if (done < c->prog_last)
        return; /* never backwards (a chain longer than its hints said) */
    c->prog_last = done;
    /* a check is not cancelled half way: the return value is not used */
    (void)c->progress(c->progress_opaque, done, c->prog_total);
}
