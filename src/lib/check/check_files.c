/* check_files.c - the files one check has open: each opened once, with the
 * lock that fits (shared to check, exclusive to repair). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "open_beneath.h"
#include "path.h"

/* Does VMware's lock folder PATH.lck exist? */
static bool vmware_lock(const char *path)
{
    char lck[4200];
    int n = snprintf(lck, sizeof lck, "%s.lck", path);
    struct stat st;
    return n > 0 && (size_t)n < sizeof lck && stat(lck, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Open without blocking: a FIFO would otherwise wait for a writer forever. */
static int open_file(const char *path, bool writable)
{
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    return fd;
}

int vk_check_peek(const char *path, uint64_t *size)
{
    int fd = open_file(path, false);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) ||
        vk_file_size(fd, size, path, NULL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Keep FD (PATH opened, owned from here on) in the check's files, or
 * find the file already there. */
static int adopt(vk_check *c, int fd, const char *path, bool writable, size_t *idx)
{
    vk_err *e = c->e;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int r = vk_fail_errno(e, errno, "%s: stat", path);
        close(fd);
        return r;
    }
    for (size_t i = 0; i < c->n_files; i++) {
        vk_cfile *f = &c->files[i];
        if (f->dev == st.st_dev && f->ino == st.st_ino) {
            if (writable && !f->writable) {
                close(fd);
                return vk_fail(e, VMDKIT_EINVAL, "%s: also used read-only by another link", path);
            }
            int r = 0;
            if (f->fd < 0 && !(r = vk_lock_fd(fd, f->writable, path, e))) {
                f->fd = fd; /* parked: this new descriptor serves */
                c->n_open++;
            } else {
                close(fd);
            }
            *idx = i;
            return r;
        }
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return vk_fail(e, VMDKIT_EFORMAT, "%s: is a directory", path);
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        close(fd);
        return vk_fail(e, VMDKIT_EFORMAT, "%s: not a regular file or block device", path);
    }
    int r = vk_lock_fd(fd, writable, path, e);
    if (r) {
        close(fd);
        return r;
    }
    if (c->n_files == c->cap_files) {
        size_t nc = c->cap_files ? c->cap_files * 2 : 8;
        vk_cfile *p = realloc(c->files, nc * sizeof *p);
        if (!p) {
            close(fd);
            return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
        }
        c->files = p;
        c->cap_files = nc;
    }
    vk_cfile *f = &c->files[c->n_files];
    memset(f, 0, sizeof *f);
    f->fd = fd;
    f->writable = writable;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    if (!(f->path = vk_strdup(path, e))) {
        close(fd);
        return VMDKIT_ENOMEM;
    }
    if ((r = vk_file_size(fd, &f->size, path, e))) {
        free(f->path);
        close(fd);
        return r;
    }
    *idx = c->n_files++;
    c->n_open++;
    return 0;
}

int vk_check_fd(vk_check *c, size_t idx, int *out)
{
    vk_cfile *f = &c->files[idx];
    if (f->fd >= 0) {
        *out = f->fd;
        return 0;
    }
    int fd = open_file(f->path, f->writable);
    if (fd < 0)
        return vk_fail_errno(c->e, errno, "%s: open again", f->path);
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) != 0)
        r = vk_fail_errno(c->e, errno, "%s: stat", f->path);
    else if (st.st_dev != f->dev || st.st_ino != f->ino || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        r = vk_fail(c->e, VMDKIT_EPATH, "%s: replaced by another file during the check: not read",
                    f->path);
    else
        r = vk_lock_fd(fd, f->writable, f->path, c->e);
    if (r) {
        close(fd);
        return r;
    }
    f->fd = *out = fd;
    c->n_open++;
    return 0;
}

int vk_check_park(vk_check *c, size_t idx)
{
    vk_cfile *f = &c->files[idx];
    if (f->fd < 0 || c->n_open <= vk_open_files_budget())
        return 0;
    if (f->writable && fsync(f->fd) != 0)
        return vk_fail_errno(c->e, errno, "%s: sync", f->path);
    close(f->fd);
    f->fd = -1;
    c->n_open--;
    return 0;
}

int vk_check_open(vk_check *c, const char *path, bool writable, size_t *idx)
{
    vk_err *e = c->e;
    if (writable && vmware_lock(path))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by VMware (%s.lck exists); not repaired", path,
                       path);
    int fd = open_file(path, writable);
    if (fd < 0) {
        if (errno == ENOENT)
            return vk_fail(e, VMDKIT_ENOENT, "%s: not found", path);
        return vk_fail_errno(e, errno, "%s: open", path);
    }
    return adopt(c, fd, path, writable, idx);
}

int vk_check_open_extent(vk_check *c, const char *desc_path, const char *name, const char *path,
                         bool writable, size_t *idx)
{
    vk_err *e = c->e;
    if (c->flags & VMDKIT_CHECK_ALLOW_EXTERNAL)
        return vk_check_open(c, path, writable, idx);
    if (writable && vmware_lock(path))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by VMware (%s.lck exists); not repaired", path,
                       path);
    char *dir = vk_path_dirname(desc_path, e);
    unsigned ups = 0;
    char *rel = dir ? vk_path_normalise_relative(name, &ups, e) : NULL;
    if (!rel) {
        free(dir);
        return VMDKIT_ENOMEM;
    }
    int dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int fd = -1;
    if (dir_fd >= 0 && !ups && *rel)
        fd = vk_open_beneath(dir_fd, rel, writable ? O_RDWR : O_RDONLY);
    else if (dir_fd >= 0)
        errno = EXDEV;
    int err = errno;
    if (dir_fd >= 0)
        close(dir_fd);
    free(rel);
    free(dir);
    if (fd < 0) {
        if (err == ENOENT)
            return vk_fail(e, VMDKIT_ENOENT, "%s: not found", path);
        if (err == ELOOP || err == EXDEV)
            return vk_fail(e, VMDKIT_EPATH, "%s: extent file \"%s\": %s", desc_path, name,
                           err == ELOOP
                               ? "a symbolic link, not followed (use --allow-external-extents to permit)"
                               : "outside the descriptor's folder");
        return vk_fail_errno(e, err, "%s: open", path);
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
        close(fd);
        return vk_fail(e, VMDKIT_EPATH,
                       "%s: extent file \"%s\": a block device (use --allow-external-extents to permit)",
                       desc_path, name);
    }
    return adopt(c, fd, path, writable, idx);
}

void vk_check_close_all(vk_check *c)
{
    for (size_t i = 0; i < c->n_files; i++) {
        if (c->files[i].fd >= 0)
            close(c->files[i].fd);
        free(c->files[i].path);
    }
    free(c->files);
    c->files = NULL;
    c->n_files = c->cap_files = c->n_open = 0;
}
