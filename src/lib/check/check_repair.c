/* check_repair.c - the repair plan: fixes collected while checking, the
 * backup of everything they overwrite or cut, and applying them in
 * crash-safe order.
 *
 * Backup file (beside the disk, PATH.vmdkit-repair-YYYYmmddTHHMMSS.bak):
 *     vmdkit-repair-backup 1\n
 *     file SIZE LEN\n PATH \n                      size of PATH before the fixes that follow
 *     region OFFSET LENGTH LEN\n PATH \n DATA \n   LENGTH old bytes of PATH at OFFSET
 *     ...
 *     end\n                                       written when the repair is over
 * LEN is the byte length of PATH.  Undoing a repair means taking the
 * records from the last to the first: write each region back, truncate the
 * file to each SIZE.  The backup is made durable before the disk is touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "path.h"

/* ---- the plan ---- */

/* Add F to the plan with a copy of the LEN bytes of DATA (none when DATA is
 * NULL) and the description FMT. */
static int add_fix(vk_check *c, vk_fix *f, const void *data, size_t len, const char *fmt, va_list ap)
    VK_PRINTF(5, 0);

static int add_fix(vk_check *c, vk_fix *f, const void *data, size_t len, const char *fmt, va_list ap)
{
    if (data) {
        f->len = len;
        if (!(f->data = vk_malloc(len, c->e)))
            return VMDKIT_ENOMEM;
        memcpy(f->data, data, len);
    }
    char what[VMDKIT_ERRMSG_MAX];
    vsnprintf(what, sizeof what, fmt, ap);
    if (!(f->what = vk_strdup(what, c->e))) {
        free(f->data);
        return VMDKIT_ENOMEM;
    }
    if (c->n_fixes == c->cap_fixes) {
        size_t nc = c->cap_fixes ? c->cap_fixes * 2 : 16;
        vk_fix *p = realloc(c->fixes, nc * sizeof *p);
        if (!p) {
            free(f->data);
            free(f->what);
            return vk_fail(c->e, VMDKIT_ENOMEM, "out of memory");
        }
        c->fixes = p;
        c->cap_fixes = nc;
    }
    c->fixes[c->n_fixes++] = *f;
    return 0;
}

int vk_check_plan_write(vk_check *c, int phase, int kind, size_t idx, uint64_t offset, const void *data,
                        size_t len, const char *fmt, ...)
{
    vk_fix f = {.phase = phase, .op = VK_FIX_WRITE, .file = idx, .offset = offset, .kind = kind};
    va_list ap;
    va_start(ap, fmt);
    int r = add_fix(c, &f, data, len, fmt, ap);
    va_end(ap);
    return r;
}

int vk_check_plan_truncate(vk_check *c, int kind, size_t idx, uint64_t new_size, const char *fmt, ...)
{
    vk_fix f = {.phase = VK_FIX_TRUNCATE,
                .op = VK_FIX_TRUNCATE_AT,
                .file = idx,
                .offset = new_size,
                .kind = kind};
    va_list ap;
    va_start(ap, fmt);
    int r = add_fix(c, &f, NULL, 0, fmt, ap);
    va_end(ap);
    return r;
}

int vk_check_plan_replace(vk_check *c, int kind, size_t idx, const void *data, size_t len,
                          const char *fmt, ...)
{
    vk_fix f = {.phase = VK_FIX_DESCRIPTOR, .op = VK_FIX_REPLACE_FILE, .file = idx, .kind = kind};
    va_list ap;
    va_start(ap, fmt);
    int r = add_fix(c, &f, data, len, fmt, ap);
    va_end(ap);
    return r;
}

void vk_check_plan_clear(vk_check *c)
{
    for (size_t i = 0; i < c->n_fixes; i++) {
        free(c->fixes[i].data);
        free(c->fixes[i].what);
    }
    free(c->fixes);
    c->fixes = NULL;
    c->n_fixes = c->cap_fixes = 0;
    c->plan_grows_file = false;
}

/* ---- the backup ---- */

static int backup_write(vk_check *c, const void *data, size_t len)
{
    return vk_pwrite_full(c->backup_fd, data, len, (uint64_t)lseek(c->backup_fd, 0, SEEK_END),
                          c->backup_path, c->e);
}

static int backup_printf(vk_check *c, const char *fmt, ...) VK_PRINTF(2, 3);
static int backup_printf(vk_check *c, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return vk_fail(c->e, VMDKIT_EINVAL, "%s: backup record too long", c->backup_path);
    return backup_write(c, line, (size_t)n);
}

static int backup_create(vk_check *c)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    for (int n = 0; n < 100; n++) {
        int w = n ? snprintf(c->backup_path, sizeof c->backup_path, "%s.vmdkit-repair-%s-%d.bak",
                             c->top_path, stamp, n)
                  : snprintf(c->backup_path, sizeof c->backup_path, "%s.vmdkit-repair-%s.bak",
                             c->top_path, stamp);
        if (w < 0 || (size_t)w >= sizeof c->backup_path)
            return vk_fail(c->e, VMDKIT_EINVAL, "%s: path too long for a backup beside it", c->top_path);
        c->backup_fd = open(c->backup_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (c->backup_fd >= 0)
            return backup_printf(c, "vmdkit-repair-backup 1\n");
        if (errno != EEXIST)
            return vk_fail_errno(c->e, errno, "%s: create backup", c->backup_path);
    }
    return vk_fail(c->e, VMDKIT_EEXIST, "%s: too many backups with this time stamp", c->backup_path);
}

/* "region" record: the old bytes [OFF, OFF+LEN) of file F (those inside it). */
static int backup_region(vk_check *c, const vk_cfile *f, int fd, uint64_t off, uint64_t len)
{
    if (off >= f->size)
        return 0;
    len = vk_min(len, f->size - off);
    int r = backup_printf(c, "region %llu %llu %zu\n", (unsigned long long)off, (unsigned long long)len,
                          strlen(f->path));
    if (!r)
        r = backup_write(c, f->path, strlen(f->path));
    if (!r)
        r = backup_write(c, "\n", 1);
    uint8_t *buf = NULL;
    size_t chunk = (size_t)vk_min(len, 1u << 20);
    if (!r && !(buf = vk_malloc(chunk, c->e)))
        r = VMDKIT_ENOMEM;
    for (uint64_t done = 0; !r && done < len; done += chunk) {
        size_t n = (size_t)vk_min(chunk, len - done);
        r = vk_pread_full(fd, buf, n, off + done, f->path, c->e);
        if (!r)
            r = backup_write(c, buf, n);
    }
    free(buf);
    if (!r)
        r = backup_write(c, "\n", 1);
    return r;
}

/* Record, for every fix in MASK, the size of its file and the bytes it
 * replaces; make the backup durable. */
static int backup_fixes(vk_check *c, unsigned mask)
{
    int r = 0;
    if (c->backup_fd < 0) {
        if ((r = backup_create(c)) || (r = vk_fsync_parent(c->backup_path, c->e)))
            return r;
    }
    bool *sized = vk_calloc(c->n_files, sizeof *sized, c->e);
    if (!sized)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < c->n_fixes; i++) {
        const vk_fix *x = &c->fixes[i];
        if (!(mask & (1u << x->phase)))
            continue;
        vk_cfile *f = &c->files[x->file];
        int fd;
        if ((r = vk_check_fd(c, x->file, &fd)))
            break;
        if (!sized[x->file]) {
            sized[x->file] = true;
            if (!(r = vk_file_size(fd, &f->size, f->path, c->e)))
                r = backup_printf(c, "file %llu %zu\n", (unsigned long long)f->size, strlen(f->path));
            if (!r)
                r = backup_write(c, f->path, strlen(f->path));
            if (!r)
                r = backup_write(c, "\n", 1);
        }
        if (r)
            break;
        if (x->op == VK_FIX_WRITE)
            r = backup_region(c, f, fd, x->offset, x->len);
        else if (x->op == VK_FIX_TRUNCATE_AT)
            r = backup_region(c, f, fd, x->offset, f->size > x->offset ? f->size - x->offset : 0);
        else
            r = backup_region(c, f, fd, 0, f->size);
        if (!r)
            r = vk_check_park(c, x->file);
    }
    free(sized);
    if (!r && fsync(c->backup_fd) != 0)
        r = vk_fail_errno(c->e, errno, "%s: sync backup", c->backup_path);
    return r;
}

void vk_check_backup_close(vk_check *c)
{
    if (c->backup_fd < 0)
        return;
    if (backup_printf(c, "end\n") == 0)
        fsync(c->backup_fd);
    close(c->backup_fd);
    c->backup_fd = -1;
}

/* ---- applying ---- */

/* Put the new content of a separate descriptor file in place and reopen it
 * (the old inode is gone from the folder). */
static int replace_file(vk_check *c, vk_cfile *f, const vk_fix *x)
{
    int r = vk_write_file_atomic(f->path, x->data, x->len, c->e);
    if (r)
        return r;
    int fd = open(f->path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return vk_fail_errno(c->e, errno, "%s: reopen", f->path);
    if ((r = vk_lock_fd(fd, true, f->path, c->e))) {
        close(fd);
        return r;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        r = vk_fail_errno(c->e, errno, "%s: stat", f->path);
        close(fd);
        return r;
    }
    if (f->fd >= 0)
        close(f->fd);
    else
        c->n_open++;
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = x->len;
    return 0;
}

static int apply_one(vk_check *c, const vk_fix *x)
{
    vk_cfile *f = &c->files[x->file];
    int fd;
    int r = x->op == VK_FIX_REPLACE_FILE ? 0 : vk_check_fd(c, x->file, &fd);
    if (r)
        return r;
    switch (x->op) {
    case VK_FIX_WRITE:
        return vk_pwrite_full(fd, x->data, x->len, x->offset, f->path, c->e);
    case VK_FIX_TRUNCATE_AT:
        if (ftruncate(fd, (off_t)x->offset) != 0)
            return vk_fail_errno(c->e, errno, "%s: truncate to %llu bytes", f->path,
                                 (unsigned long long)x->offset);
        f->size = x->offset;
        return 0;
    default:
        return replace_file(c, f, x);
    }
}

int vk_check_apply(vk_check *c, unsigned mask, uint64_t *applied)
{
    *applied = 0;
    bool any = false;
    for (size_t i = 0; i < c->n_fixes; i++)
        any |= (mask & (1u << c->fixes[i].phase)) != 0;
    if (!any)
        return 0;
    int r = backup_fixes(c, mask);
    if (r)
        return r;
    bool *touched = vk_calloc(c->n_files, sizeof *touched, c->e);
    if (!touched)
        return VMDKIT_ENOMEM;
    for (int phase = 0; !r && phase < VK_FIX_PHASES; phase++) {
        if (!(mask & (1u << phase)))
            continue;
        memset(touched, 0, c->n_files * sizeof *touched);
        for (size_t i = 0; !r && i < c->n_fixes; i++) {
            const vk_fix *x = &c->fixes[i];
            if (x->phase != phase)
                continue;
            /* a file parked here was made durable as it was closed */
            if (!(r = apply_one(c, x)) && !(r = vk_check_park(c, x->file))) {
                touched[x->file] = true;
                (*applied)++;
                vk_check_emit(c, VMDKIT_FIND_REPAIRED, c->files[x->file].path,
                              x->op == VK_FIX_REPLACE_FILE ? VMDKIT_CHECK_NO_OFFSET : x->offset,
                              x->what);
            }
        }
        /* this phase is durable before the next one starts */
        for (size_t k = 0; !r && k < c->n_files; k++)
            if (touched[k] && c->files[k].fd >= 0 && fsync(c->files[k].fd) != 0)
                r = vk_fail_errno(c->e, errno, "%s: sync", c->files[k].path);
    }
    free(touched);
    return r;
}
