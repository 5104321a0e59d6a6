/* package.c - an OVF package opened for reading: an .ova (a tar archive
 * whose members are found by name and read in place) or an .ovf file whose
 * files lie in its folder.  Shared by import and lint. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "package.h"
#include "path.h"

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

void vk_pkg_close(vk_pkg *p)
{
    if (p->fd >= 0)
        close(p->fd);
    for (size_t i = 0; i < p->n_open; i++)
        if (p->open_fds[i] >= 0)
            close(p->open_fds[i]);
    free(p->open_fds);
    vk_tar_free(&p->tar);
    free(p->dir);
    free(p->ovf_name);
    free(p->ovf);
    free(p->mf_name);
    free(p->mf);
    memset(p, 0, sizeof *p);
    p->fd = -1;
}

/* Read LEN bytes at OFF of FD into a new NUL-terminated buffer. */
static int read_range(int fd, const char *what, uint64_t off, uint64_t len, uint64_t max, char **out,
                      vk_err *e)
{
    if (len > max)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: %llu bytes: more than the %llu accepted", what,
                       (unsigned long long)len, (unsigned long long)max);
    char *buf = vk_malloc((size_t)len + 1, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    int r = vk_pread_full(fd, buf, (size_t)len, off, what, e);
    if (r) {
        free(buf);
        return r;
    }
    buf[len] = 0;
    *out = buf;
    return 0;
}

static int open_tar(vk_pkg *p, const char *path, vk_err *e)
{
    int r = vk_tar_list(p->fd, path, &p->tar, e);
    if (r)
        return r;
    const vk_tar_member *ovf = NULL;
    for (size_t i = 0; i < p->tar.n; i++) {
        const vk_tar_member *m = &p->tar.m[i];
        if ((m->type == '0' || m->type == '7') && ends_with_ci(m->name, ".ovf")) {
            if (ovf)
                return vk_fail(e, VMDKIT_EUNSUPPORTED,
                               "%s: holds several descriptors (%s, %s): not one machine's package", path,
                               ovf->name, m->name);
            ovf = m;
        }
    }
    if (!ovf)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: no .ovf descriptor in the archive", path);
    const char *base = strncmp(ovf->name, "./", 2) == 0 ? ovf->name + 2 : ovf->name;
    if (!vk_ovf_safe_name(base))
        return vk_fail(e, VMDKIT_EPATH, "%s: member \"%s\": not a plain file name", path, ovf->name);
    if (!(p->ovf_name = vk_strdup(base, e)))
        return VMDKIT_ENOMEM;
    char what[4200];
    snprintf(what, sizeof what, "%s: %s", path, p->ovf_name);
    if ((r = read_range(p->fd, what, ovf->offset, ovf->size, VK_OVF_MAX_BYTES, &p->ovf, e)))
        return r;
    p->ovf_len = (size_t)ovf->size;
    /* the manifest: NAME.mf beside NAME.ovf (any other .mf is reported by lint) */
    size_t n = strlen(p->ovf_name);
    if (!(p->mf_name = vk_malloc(n, e)))
        return VMDKIT_ENOMEM;
    snprintf(p->mf_name, n, "%.*s.mf", (int)(n - 4), p->ovf_name);
    const vk_tar_member *mf = vk_tar_find(&p->tar, p->mf_name);
    if (mf) {
        snprintf(what, sizeof what, "%s: %s", path, p->mf_name);
        if ((r = read_range(p->fd, what, mf->offset, mf->size, 1u << 20, &p->mf, e)))
            return r;
        p->mf_len = (size_t)mf->size;
    }
    return 0;
}

static int open_folder(vk_pkg *p, const char *path, vk_err *e)
{
    if (!(p->dir = vk_path_dirname(path, e)) || !(p->ovf_name = vk_strdup(vk_path_basename(path), e)))
        return VMDKIT_ENOMEM;
    uint64_t size;
    int r = vk_file_size(p->fd, &size, path, e);
    if (!r)
        r = read_range(p->fd, path, 0, size, VK_OVF_MAX_BYTES, &p->ovf, e);
    if (r)
        return r;
    p->ovf_len = (size_t)size;
    size_t n = strlen(p->ovf_name);
    if (!(p->mf_name = vk_malloc(n + 1, e)))
        return VMDKIT_ENOMEM;
    snprintf(p->mf_name, n + 1, "%.*s.mf", (int)(n - 4), p->ovf_name);
    vk_pkg_file f;
    r = vk_pkg_find(p, p->mf_name, &f, e);
    if (r == VMDKIT_ENOENT)
        return 0;
    if (!r) {
        char what[4200];
        snprintf(what, sizeof what, "%s/%s", p->dir, p->mf_name);
        r = read_range(f.fd, what, 0, f.size, 1u << 20, &p->mf, e);
        p->mf_len = (size_t)f.size;
    }
    return r;
}

int vk_pkg_open(const char *path, vk_pkg *p, vk_err *e)
{
    memset(p, 0, sizeof *p);
    p->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not block */
    if (p->fd < 0)
        return vk_fail_errno(e, errno, "%s: open", path);
    struct stat st;
    if (fstat(p->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vk_pkg_close(p);
        return vk_fail(e, VMDKIT_EINVAL, "%s: not a file (an .ova or an .ovf)", path);
    }
    p->path = path;
    int r;
    if (vk_tar_probe(p->fd)) {
        p->is_tar = true;
        r = open_tar(p, path, e);
    } else if (ends_with_ci(path, ".ovf")) {
        r = open_folder(p, path, e);
    } else {
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: neither a tar archive (.ova) nor an .ovf descriptor", path);
    }
    if (r)
        vk_pkg_close(p);
    return r;
}

int vk_pkg_find(vk_pkg *p, const char *name, vk_pkg_file *f, vk_err *e)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (!vk_ovf_safe_name(name))
        return vk_fail(e, VMDKIT_EPATH, "%s: \"%s\": not a plain file name", p->path, name);
    if (p->is_tar) {
        const vk_tar_member *m = vk_tar_find(&p->tar, name);
        if (!m)
            return vk_fail(e, VMDKIT_ENOENT, "%s: %s: not in the archive", p->path, name);
        f->fd = p->fd;
        f->offset = m->offset;
        f->size = m->size;
        return 0;
    }
    char *path = vk_path_join(p->dir, name, e);
    if (!path)
        return VMDKIT_ENOMEM;
    /* a plain name in the descriptor's folder, not a link leading elsewhere */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
    int r = 0;
    struct stat st;
    if (fd < 0)
        r = errno == ELOOP ? vk_fail(e, VMDKIT_EPATH, "%s: a symbolic link: refused", path)
                           : vk_fail_errno(e, errno, "%s: open", path);
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        r = vk_fail(e, VMDKIT_EINVAL, "%s: not a regular file", path);
    if (!r) {
        int *slot = vk_ovf_grow((void **)&p->open_fds, &p->n_open, sizeof *slot, e);
        if (!slot) {
            r = VMDKIT_ENOMEM;
        } else {
            *slot = fd;
            f->fd = fd;
            f->size = (uint64_t)st.st_size;
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    free(path);
    return r;
}
