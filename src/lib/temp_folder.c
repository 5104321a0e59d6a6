/* temp_folder.c - the hidden build folder beside an output, its
 * publication under the final names, and leftovers of interrupted runs
 * (see temp_folder.h for the rules and the crash safety). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"
#include "temp_folder.h"

#define TEMP_MARK ".vmdkit-tmp-"
#define TEMP_RANDOM 6 /* mkdtemp's XXXXXX */
#define MAX_DEPTH 32  /* a build folder is one or two levels deep */
#define MAKE_ATTEMPTS 8

/* ---- making and letting go ---- */

static char *temp_template(const char *parent, const char *name, vk_err *e)
{
    size_t n = strlen(name) + sizeof TEMP_MARK + TEMP_RANDOM + 2;
    char *leaf = vk_malloc(n, e);
    if (!leaf)
        return NULL;
    snprintf(leaf, n, ".%s" TEMP_MARK "XXXXXX", name);
    char *path = vk_path_join(parent, leaf, e);
    free(leaf);
    return path;
}

int vk_temp_folder_make(const char *parent, const char *name, vk_temp_folder *t, vk_err *e)
{
    t->path = NULL;
    t->lock_fd = -1;
    for (int attempt = 0; attempt < MAKE_ATTEMPTS; attempt++) {
        char *path = temp_template(parent, name, e);
        if (!path)
            return VMDKIT_ENOMEM;
        if (!mkdtemp(path)) {
            int r = vk_fail_errno(e, errno, "%s: create temporary folder", path);
            free(path);
            return r;
        }
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err != ENOENT) { /* ENOENT: taken for a leftover and removed at once */
                int r = vk_fail_errno(e, err, "%s: open temporary folder", path);
                rmdir(path);
                free(path);
                return r;
            }
            free(path);
            continue;
        }
        bool ours = true;
        if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK) {
                ours = false; /* taken for a leftover in the instant before: it goes */
            } else {
                close(fd); /* no locks on this file system: unlocked, never removed as stale */
                fd = -1;
            }
        } else {
            /* removed as a leftover before the lock was taken? */
            struct stat held, named;
            ours = fstat(fd, &held) == 0 && lstat(path, &named) == 0 && held.st_dev == named.st_dev &&
                   held.st_ino == named.st_ino;
        }
        if (ours) {
            t->path = path;
            t->lock_fd = fd;
            return 0;
        }
        close(fd);
        free(path);
    }
    return vk_fail(e, VMDKIT_EIO, "%s/.%s" TEMP_MARK "*: temporary folders vanish as they are made",
                   parent, name);
}

void vk_temp_folder_release(vk_temp_folder *t)
{
    if (t->lock_fd >= 0)
        close(t->lock_fd);
    t->lock_fd = -1;
    free(t->path);
    t->path = NULL;
}

/* Remove NAME in the folder DFD and, if it is a folder, everything below
 * it (symlinks are removed, never followed).  Best effort. */
static void remove_tree_at(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return;
    if (depth > MAX_DEPTH)
        return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && fchmodat(dfd, name, 0700, 0) == 0)
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    /* a folder given a read-only mode at the end of a copy: entries can go once it is writable */
    if (fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
        (void)fchmod(fd, (st.st_mode & 07777) | 0700);
    int list_fd = dup(fd);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d && list_fd >= 0)
        close(list_fd);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            remove_tree_at(fd, de->d_name, depth + 1);
    }
    if (d)
        closedir(d);
    close(fd);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

void vk_temp_folder_discard(vk_temp_folder *t)
{
    if (t->path)
        remove_tree_at(AT_FDCWD, t->path, 0);
    vk_temp_folder_release(t);
}

/* ---- renaming into place ---- */

int vk_rename_noreplace(const char *from, const char *to, vk_err *e)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", to);
    if (errno != EINVAL && errno != ENOSYS)
        return vk_fail_errno(e, errno, "%s: rename %s", to, from);
    /* no RENAME_NOREPLACE here: link(2) never replaces; folders and file
     * systems without hard links get a check, then rename(2) */
    struct stat st;
    if (lstat(from, &st) == 0 && S_ISREG(st.st_mode)) {
        if (link(from, to) == 0)
            return unlink(from) == 0 ? 0 : vk_fail_errno(e, errno, "%s: remove", from);
        if (errno == EEXIST)
            return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", to);
    }
    if (lstat(to, &st) == 0)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", to);
    if (rename(from, to) != 0)
        return vk_fail_errno(e, errno, "%s: rename %s", to, from);
    return 0;
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Does the file system refuse hard links (FAT, exFAT, some FUSE)? */
static bool no_hard_links(int err)
{
    return err == EPERM || err == EOPNOTSUPP || err == EMLINK || err == ENOSYS;
}

enum given { GIVEN_NONE, GIVEN_LINK, GIVEN_MOVED };

/* Take back what step 1 of publish gave out: only names that still are
 * the files of the folder. */
static void take_back(const vk_temp_folder *t, const char *parent, const char *const *names,
                      const enum given *given, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (given[i] == GIVEN_NONE)
            continue;
        char *from = vk_path_join(t->path, names[i], NULL);
        char *to = vk_path_join(parent, names[i], NULL);
        struct stat a, b;
        if (from && to && given[i] == GIVEN_LINK) {
            if (lstat(from, &a) == 0 && lstat(to, &b) == 0 && same_inode(&a, &b))
                unlink(to);
        } else if (from && to) {
            (void)renameat2(AT_FDCWD, to, AT_FDCWD, from, RENAME_NOREPLACE);
        }
        free(from);
        free(to);
    }
}

int vk_temp_folder_publish(vk_temp_folder *t, const char *parent, const char *const *names, size_t n,
                           const char *last, vk_err *e)
{
    enum given *given = vk_calloc(n + 1, sizeof *given, e);
    if (!given)
        return VMDKIT_ENOMEM;
    /* what was built is on the disk: make the folder's entries durable too */
    int r = vk_fsync_dir(t->path, e);
    /* 1. the extent files, as second names */
    for (size_t i = 0; !r && i < n; i++) {
        char *from = vk_path_join(t->path, names[i], e);
        char *to = from ? vk_path_join(parent, names[i], e) : NULL;
        if (!to)
            r = VMDKIT_ENOMEM;
        else if (link(from, to) == 0)
            given[i] = GIVEN_LINK;
        else if (errno == EEXIST)
            r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists", to);
        else if (!no_hard_links(errno))
            r = vk_fail_errno(e, errno, "%s: link %s", to, from);
        else if (!(r = vk_rename_noreplace(from, to, e)))
            given[i] = GIVEN_MOVED;
        free(from);
        free(to);
    }
    if (!r && n)
        r = vk_fsync_dir(parent, e);
    /* 2. the name that makes the output exist */
    if (!r) {
        char *from = vk_path_join(t->path, last, e);
        char *to = from ? vk_path_join(parent, last, e) : NULL;
        r = to ? vk_rename_noreplace(from, to, e) : VMDKIT_ENOMEM;
        free(from);
        free(to);
    }
    if (r) {
        take_back(t, parent, names, given, n);
        free(given);
        return r;
    }
    free(given);
    r = vk_fsync_dir(parent, e);
    /* 3. the build folder, holding only second names now */
    vk_temp_folder_discard(t);
    if (!r)
        r = vk_fsync_dir(parent, e);
    return r;
}

void vk_temp_folder_unhide_message(const vk_temp_folder *t, const char *as, vk_err *e)
{
    if (!e || !t->path || !e->msg[0])
        return;
    char from[4096], to[4096];
    int nf = snprintf(from, sizeof from, "%s/", t->path);
    int nt = strcmp(as, ".") == 0 ? (to[0] = 0, 0) : snprintf(to, sizeof to, "%s/", as);
    if (nf <= 0 || (size_t)nf >= sizeof from || nt < 0 || (size_t)nt >= sizeof to)
        return;
    char out[VMDKIT_ERRMSG_MAX];
    size_t o = 0;
    const char *p = e->msg;
    while (*p && o + 1 < sizeof out) {
        if (strncmp(p, from, (size_t)nf) == 0 && o + (size_t)nt + 1 < sizeof out) {
            memcpy(out + o, to, (size_t)nt);
            o += (size_t)nt;
            p += nf;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    memcpy(e->msg, out, o + 1);
}

/* ---- leftovers ---- */

/* If ENTRY is a leftover folder ".NAME.vmdkit-tmp-XXXXXX", NAME's length
 * (NAME starts at ENTRY + 1); else 0. */
static size_t leftover_name_len(const char *entry)
{
    size_t len = strlen(entry), mark = strlen(TEMP_MARK);
    if (entry[0] != '.' || len < 2 + mark + TEMP_RANDOM)
        return 0;
    const char *tail = entry + len - TEMP_RANDOM;
    for (size_t i = 0; i < TEMP_RANDOM; i++) {
        char c = tail[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    if (strncmp(tail - mark, TEMP_MARK, mark) != 0)
        return 0;
    return len - 1 - mark - TEMP_RANDOM;
}

/* Open ENTRY of the folder PFD when it is a leftover nobody holds: a real
 * folder of this user, locked exclusively here.  -1 otherwise. */
static int take_leftover(int pfd, const char *entry)
{
    int fd = openat(pfd, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd); /* in use, another user's, or a file system without locks */
        return -1;
    }
    return fd;
}

/* The extent names publish step 1 gave out of the leftover LFD for NAME
 * whose descriptor never followed: hard links, in PFD, of its files. */
static void remove_given_names(int pfd, int lfd, const char *name)
{
    struct stat inside, outside;
    if (fstatat(lfd, name, &inside, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(inside.st_mode))
        return; /* no descriptor inside: not built yet, or already given its name */
    if (fstatat(pfd, name, &outside, AT_SYMLINK_NOFOLLOW) == 0 && same_inode(&inside, &outside))
        return; /* it was given its name (a crash between link and unlink) */
    int list_fd = dup(lfd);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        if (list_fd >= 0)
            close(list_fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (fstatat(lfd, de->d_name, &inside, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(inside.st_mode) ||
            inside.st_nlink < 2)
            continue;
        if (fstatat(pfd, de->d_name, &outside, AT_SYMLINK_NOFOLLOW) == 0 &&
            same_inode(&inside, &outside))
            unlinkat(pfd, de->d_name, 0);
    }
    closedir(d);
}

static int open_folder(const char *dir, vk_err *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return vk_fail_errno(e, errno, "%s: open folder", dir);
    return fd;
}

int vk_remove_stale_temps(const char *parent, const char *name, size_t *removed, vk_err *e)
{
    if (removed)
        *removed = 0;
    int pfd = open_folder(parent, e);
    if (pfd < 0)
        return pfd;
    int list_fd = dup(pfd);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        int r = vk_fail_errno(e, errno, "%s: read folder", parent);
        if (list_fd >= 0)
            close(list_fd);
        close(pfd);
        return r;
    }
    size_t name_len = strlen(name), count = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (leftover_name_len(de->d_name) != name_len || strncmp(de->d_name + 1, name, name_len) != 0)
            continue;
        int lfd = take_leftover(pfd, de->d_name);
        if (lfd < 0)
            continue;
        remove_given_names(pfd, lfd, name);
        remove_tree_at(pfd, de->d_name, 0);
        close(lfd);
        struct stat st;
        if (fstatat(pfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            count++;
    }
    closedir(d);
    int r = 0;
    if (count && fsync(pfd) != 0 && errno != EINVAL)
        r = vk_fail_errno(e, errno, "%s: fsync folder", parent);
    close(pfd);
    if (removed)
        *removed = count;
    return r;
}

/* Space taken by NAME in DFD and everything below it. */
static uint64_t tree_bytes(int dfd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    uint64_t bytes = (uint64_t)st.st_blocks * 512;
    if (!S_ISDIR(st.st_mode) || depth > MAX_DEPTH)
        return bytes;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return bytes;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            bytes += tree_bytes(dirfd(d), de->d_name, depth + 1);
    closedir(d);
    return bytes;
}

uint64_t vk_tree_bytes(const char *path) { return tree_bytes(AT_FDCWD, path, 0); }

bool vk_temp_folder_in_use(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* a lock taken here goes with the descriptor */
    return held;
}

void vk_stale_temps_free(vk_stale_temp *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].path);
        free(v[i].name);
    }
    free(v);
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const vk_stale_temp *)a)->path, ((const vk_stale_temp *)b)->path);
}

int vk_list_stale_temps(const char *dir, vk_stale_temp **out, size_t *n, vk_err *e)
{
    *out = NULL;
    *n = 0;
    int pfd = open_folder(dir, e);
    if (pfd < 0)
        return pfd;
    int list_fd = dup(pfd);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        int r = vk_fail_errno(e, errno, "%s: read folder", dir);
        if (list_fd >= 0)
            close(list_fd);
        close(pfd);
        return r;
    }
    vk_stale_temp *v = NULL;
    size_t count = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while (!r && (de = readdir(d))) {
        size_t name_len = leftover_name_len(de->d_name);
        if (!name_len)
            continue;
        int lfd = take_leftover(pfd, de->d_name);
        if (lfd < 0)
            continue;
        close(lfd); /* only looked at: whoever removes it takes it again */
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            vk_stale_temp *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                r = vk_fail(e, VMDKIT_ENOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        vk_stale_temp *s = &v[count];
        s->path = vk_path_join(dir, de->d_name, e);
        s->name = vk_malloc(name_len + 1, e);
        if (s->name) {
            memcpy(s->name, de->d_name + 1, name_len);
            s->name[name_len] = 0;
        }
        s->bytes = tree_bytes(pfd, de->d_name, 0);
        count++;
        if (!s->path || !s->name)
            r = VMDKIT_ENOMEM;
    }
    closedir(d);
    close(pfd);
    if (r) {
        vk_stale_temps_free(v, count);
        return r;
    }
    if (count)
        qsort(v, count, sizeof *v, by_path);
    *out = v;
    *n = count;
    return 0;
}
