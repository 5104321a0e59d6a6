/* copy_tree.c - copying files and folders to another file system (see
 * copy_tree.h).  A copy is durable before anyone relies on it: each file
 * is fsynced when written, each folder after its entries. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy_tree.h"
#include "path.h"

#define COPY_CHUNK (1u << 20)

/* Report that BYTES more bytes were passed; VMDKIT_ECANCELED when the
 * caller's callback asks to stop. */
static int advance(vk_copy_progress *pg, uint64_t bytes, const char *what, vk_err *e)
{
    if (!pg)
        return 0;
    pg->done_bytes += bytes;
    if (pg->fn && pg->fn(pg->opaque, pg->done_bytes, pg->total_bytes))
        return vk_fail(e, VMDKIT_ECANCELED, "%s: copy cancelled", what);
    return 0;
}

/* Copy [from, to) of IN to the same place of OUT. */
static int copy_range(int in, int out, uint64_t from, uint64_t to, char *buf, const char *src,
                      const char *dst, vk_copy_progress *pg, vk_err *e)
{
    while (from < to) {
        size_t k = (size_t)vk_min(COPY_CHUNK, to - from);
        int r = vk_pread_full(in, buf, k, from, src, e);
        if (!r)
            r = vk_pwrite_full(out, buf, k, from, dst, e);
        if (!r)
            r = advance(pg, k, dst, e);
        if (r)
            return r;
        from += k;
    }
    return 0;
}

/* Copy the data of IN (SIZE bytes) to OUT, leaving its holes as holes. */
static int copy_data(int in, int out, uint64_t size, const char *src, const char *dst,
                     vk_copy_progress *pg, vk_err *e)
{
    char *buf = vk_malloc(COPY_CHUNK, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    int r = 0;
    uint64_t pos = 0;
    while (!r && pos < size) {
        off_t data = lseek(in, (off_t)pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO) {
            r = advance(pg, size - pos, dst, e);
            break; /* only a hole up to the end */
        }
        off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
        if (data < 0 || hole < 0) {
            if (errno != EINVAL && errno != EOPNOTSUPP) {
                r = vk_fail_errno(e, errno, "%s: seek", src);
                break;
            }
            data = (off_t)pos; /* no SEEK_DATA here: copy the rest whole */
            hole = (off_t)size;
        }
        uint64_t end = vk_min((uint64_t)hole, size);
        /* the hole before the data is passed without a byte moved */
        r = advance(pg, vk_min((uint64_t)data, end) - pos, dst, e);
        if (!r)
            r = copy_range(in, out, (uint64_t)data, end, buf, src, dst, pg, e);
        pos = end;
    }
    free(buf);
    return r;
}

int vk_copy_file(const char *src, const char *dst, vk_copy_progress *pg, vk_err *e)
{
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (in < 0)
        return vk_fail_errno(e, errno, "%s: open", src);
    int r = vk_copy_opened(in, src, dst, pg, e);
    close(in);
    return r;
}

int vk_copy_opened(int in, const char *src, const char *dst, vk_copy_progress *pg, vk_err *e)
{
    struct stat st;
    int r = fstat(in, &st) == 0 ? 0 : vk_fail_errno(e, errno, "%s: stat", src);
    if (!r && !S_ISREG(st.st_mode))
        r = vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: not a regular file", src);
    if (!r)
        r = vk_lock_fd(in, false, src, e);
    int out = -1;
    if (!r && (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777)) < 0)
        r = errno == EEXIST ? vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dst)
                            : vk_fail_errno(e, errno, "%s: create", dst);
    if (!r && ftruncate(out, st.st_size) != 0)
        r = vk_fail_errno(e, errno, "%s: set size", dst);
    if (!r)
        r = copy_data(in, out, (uint64_t)st.st_size, src, dst, pg, e);
    if (!r && fchmod(out, st.st_mode & 07777) != 0)
        r = vk_fail_errno(e, errno, "%s: set mode", dst);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (!r && futimens(out, times) != 0)
        r = vk_fail_errno(e, errno, "%s: set times", dst);
    /* the data and the size on the disk before the caller relies on the copy */
    if (!r && fsync(out) != 0)
        r = vk_fail_errno(e, errno, "%s: fsync", dst);
    if (out >= 0 && close(out) != 0 && !r)
        r = vk_fail_errno(e, errno, "%s: close", dst);
    if (r && out >= 0)
        unlink(dst); /* made here (O_EXCL): a partial copy is nobody's */
    return r;
}

static int add_entry(vk_copied_list *l, const char *rel, bool dir, const struct stat *st, vk_err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        vk_copied *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    char *copy = vk_strdup(rel, e);
    if (!copy)
        return VMDKIT_ENOMEM;
    l->v[l->n++] = (vk_copied){.rel = copy, .dir = dir, .st = *st};
    return 0;
}

/* Copy the entries of SRC_ROOT/REL into DST_ROOT/REL (which exists). */
static int copy_folder(const char *src_root, const char *dst_root, const char *rel, vk_copied_list *l,
                       vk_copy_progress *pg, vk_err *e)
{
    char *src_dir = *rel ? vk_path_join(src_root, rel, e) : vk_strdup(src_root, e);
    char *dst_dir = *rel ? vk_path_join(dst_root, rel, e) : vk_strdup(dst_root, e);
    DIR *dh = src_dir ? opendir(src_dir) : NULL;
    int r = 0;
    if (!src_dir || !dst_dir)
        r = VMDKIT_ENOMEM;
    else if (!dh)
        r = vk_fail_errno(e, errno, "%s: open folder", src_dir);
    struct dirent *de;
    while (!r && (errno = 0, de = readdir(dh))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *sub = *rel ? vk_path_join(rel, de->d_name, e) : vk_strdup(de->d_name, e);
        char *from = sub ? vk_path_join(src_root, sub, e) : NULL;
        char *to = sub ? vk_path_join(dst_root, sub, e) : NULL;
        struct stat st;
        if (!from || !to) {
            r = VMDKIT_ENOMEM;
        } else if ((r = advance(pg, 0, to, e))) {
            /* cancelled between entries */
        } else if (lstat(from, &st) != 0) {
            r = vk_fail_errno(e, errno, "%s: stat", from);
        } else if (S_ISDIR(st.st_mode)) {
            /* owner-only until its contents are in, then the source's mode */
            if (mkdir(to, 0700) != 0)
                r = vk_fail_errno(e, errno, "%s: create folder", to);
            if (!r)
                r = add_entry(l, sub, true, &st, e);
            if (!r)
                r = copy_folder(src_root, dst_root, sub, l, pg, e);
            if (!r && chmod(to, st.st_mode & 07777) != 0)
                r = vk_fail_errno(e, errno, "%s: set mode", to);
        } else if (S_ISREG(st.st_mode)) {
            /* listed first: a partial file is removed with the rest on failure */
            if (!(r = add_entry(l, sub, false, &st, e)))
                r = vk_copy_file(from, to, pg, e);
            if (r == VMDKIT_EEXIST)
                l->n--; /* not ours */
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t k = readlink(from, target, sizeof target - 1);
            if (k < 0 || (size_t)k >= sizeof target - 1)
                r = k < 0 ? vk_fail_errno(e, errno, "%s: read link", from)
                          : vk_fail(e, VMDKIT_ELIMIT, "%s: link target too long", from);
            else if ((target[k] = 0, symlink(target, to) != 0))
                r = vk_fail_errno(e, errno, "%s: create link", to);
            else
                r = add_entry(l, sub, false, &st, e);
        } else {
            r = vk_fail(
                e, VMDKIT_EUNSUPPORTED,
                "%s: neither a file, a folder nor a link: a machine folder holds none such, nothing was moved",
                from);
        }
        free(sub);
        free(from);
        free(to);
    }
    if (!r && dh && errno != 0)
        r = vk_fail_errno(e, errno, "%s: read folder", src_dir);
    if (dh)
        closedir(dh);
    /* this folder's entries exist on the disk before its parent is flushed */
    if (!r)
        r = vk_fsync_dir(dst_dir, e);
    free(src_dir);
    free(dst_dir);
    return r;
}

int vk_copy_tree(const char *src, const char *dst, vk_copied_list *list, vk_copy_progress *pg, vk_err *e)
{
    struct stat st;
    if (stat(src, &st) != 0)
        return vk_fail_errno(e, errno, "%s: stat", src);
    int r = copy_folder(src, dst, "", list, pg, e);
    if (!r && chmod(dst, st.st_mode & 07777) != 0)
        r = vk_fail_errno(e, errno, "%s: set mode", dst);
    return r;
}

static bool same_entry(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
           (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT) &&
           (S_ISDIR(a->st_mode) || (a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
                                    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec));
}

int vk_check_unchanged(const char *src, const vk_copied_list *list, vk_err *e)
{
    for (size_t i = 0; i < list->n; i++) {
        char *p = vk_path_join(src, list->v[i].rel, e);
        if (!p)
            return VMDKIT_ENOMEM;
        struct stat st;
        bool same = lstat(p, &st) == 0 && same_entry(&st, &list->v[i].st);
        int r =
            same
                ? 0
                : vk_fail(
                      e, VMDKIT_ELOCKED,
                      "%s: changed while it was being copied (another program is using the folder): nothing was moved",
                      p);
        free(p);
        if (r)
            return r;
    }
    return 0;
}

size_t vk_remove_copied(const char *root, const vk_copied_list *list, bool only_unchanged, char **kept)
{
    size_t left = 0;
    if (kept)
        *kept = NULL;
    /* parents come before what they hold: backwards, the contents go first */
    for (size_t i = list->n; i-- > 0;) {
        const vk_copied *c = &list->v[i];
        char *p = vk_path_join(root, c->rel, NULL);
        struct stat st;
        bool gone = false;
        if (p && lstat(p, &st) != 0)
            gone = errno == ENOENT;
        else if (p && (!only_unchanged || same_entry(&st, &c->st)))
            gone = (c->dir ? rmdir(p) : unlink(p)) == 0;
        if (!gone) {
            left++;
            if (kept && !*kept)
                *kept = p, p = NULL;
        }
        free(p);
    }
    return left;
}

void vk_copied_list_free(vk_copied_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i].rel);
    free(list->v);
    memset(list, 0, sizeof *list);
}
