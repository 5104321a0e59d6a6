/* scan.c - walk a folder tree and read the descriptors of the disks in it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extent.h"
#include "path.h"
#include "scan.h"
#include "sparse_header.h"

#define SCAN_MAX_DEPTH 16

int vk_read_descriptor(const char *path, vk_descriptor *d, bool *is_disk, vk_err *e)
{
    memset(d, 0, sizeof *d);
    *is_disk = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return vk_fail_errno(e, errno, "%s: open", path);
    struct stat st;
    int r = 0;
    char *text = NULL;
    size_t len = 0;
    uint8_t magic[4] = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    if ((r = vk_pread_zfill(fd, magic, sizeof magic, 0, path, e)))
        goto out;
    if (vk_le32(magic) == VK_KDMV_MAGIC) {
        uint64_t off, size;
        if (vk_sparse_read_embedded_descriptor(fd, path, &text, &len, &off, &size, NULL) || !text)
            goto out; /* an extent of a split disk, or damaged: not a disk here */
    } else {
        if (st.st_size > (off_t)VK_DESC_MAX_BYTES || st.st_size == 0)
            goto out;
        len = (size_t)st.st_size;
        if (!(text = vk_malloc(len + 1, e))) {
            r = VMDKIT_ENOMEM;
            goto out;
        }
        if ((r = vk_pread_full(fd, text, len, 0, path, e)))
            goto out;
        text[len] = 0;
    }
    if (!vk_descriptor_sniff(text, len))
        goto out;
    if ((r = vk_descriptor_parse(text, len, path, d, e)))
        goto out;
    *is_disk = true;
out:
    free(text);
    close(fd);
    return r;
}

static int walk(const char *dir, int depth, vk_scan_fn fn, void *opaque, vk_err *e)
{
    if (depth > SCAN_MAX_DEPTH)
        return 0;
    DIR *dh = opendir(dir);
    if (!dh)
        return depth == 0 ? vk_fail_errno(e, errno, "%s: open folder", dir) : 0;
    int r = 0;
    struct dirent *de;
    while (!r && (de = readdir(dh))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        char *p = vk_path_join(dir, de->d_name, e);
        if (!p) {
            r = VMDKIT_ENOMEM;
            break;
        }
        struct stat st;
        if (lstat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                /* VMware lock folders hold no disks */
                size_t n = strlen(de->d_name);
                if (!(n > 4 && strcasecmp(de->d_name + n - 4, ".lck") == 0))
                    r = walk(p, depth + 1, fn, opaque, e);
            } else if (S_ISREG(st.st_mode) && vk_path_has_suffix(de->d_name, ".vmdk")) {
                vk_descriptor d;
                bool is_disk;
                vk_err ignore;
                /* unreadable or damaged files are not disks for this purpose */
                if (vk_read_descriptor(p, &d, &is_disk, &ignore) == 0 && is_disk)
                    r = fn(opaque, p, &d);
                vk_descriptor_free(&d);
            }
        }
        free(p);
    }
    closedir(dh);
    return r;
}

int vk_scan_disks(const char *root, vk_scan_fn fn, void *opaque, vk_err *e)
{
    return walk(root, 0, fn, opaque, e);
}

typedef struct dep_ctx {
    const char *target;
    char **paths;
    size_t n, cap;
    vk_err *e;
} dep_ctx;

static int collect_dependent(void *opaque, const char *path, const vk_descriptor *d)
{
    dep_ctx *c = opaque;
    if (!d->parent_hint)
        return 0;
    char *pp = vk_path_resolve_parent(path, d->parent_hint, c->e);
    if (!pp)
        return VMDKIT_ENOMEM;
    bool match = vk_same_file(pp, c->target);
    free(pp);
    if (!match)
        return 0;
    for (size_t i = 0; i < c->n; i++)
        if (vk_same_file(c->paths[i], path))
            return 0; /* found twice through overlapping roots */
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 8;
        char **np = realloc(c->paths, ncap * sizeof *np);
        if (!np)
            return vk_fail(c->e, VMDKIT_ENOMEM, "out of memory");
        c->paths = np;
        c->cap = ncap;
    }
    if (!(c->paths[c->n] = vk_strdup(path, c->e)))
        return VMDKIT_ENOMEM;
    c->n++;
    return 0;
}

int vk_find_dependents_multi(const char *const *roots, size_t n_roots, const char *target,
                             char ***paths, size_t *n, vk_err *e)
{
    dep_ctx c = { .target = target, .e = e };
    int r = 0;
    for (size_t i = 0; !r && i < n_roots; i++) {
        /* skip a root inside an earlier one: it was walked already */
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || vk_same_file(roots[i], roots[j]);
        if (!seen)
            r = vk_scan_disks(roots[i], collect_dependent, &c, e);
    }
    if (r) {
        vmdkit_paths_free(c.paths, c.n);
        return r;
    }
    *paths = c.paths;
    *n = c.n;
    return 0;
}

int vmdkit_find_dependents(const char *root, const char *target, char ***paths, size_t *n,
                           vmdkit_error *err)
{
    const char *roots[1] = { root };
    return vk_find_dependents_multi(roots, 1, target, paths, n, err);
}

void vmdkit_paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
}
