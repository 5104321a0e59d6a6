/* open_beneath.c - open names from a disk without following symbolic links
 * and without leaving a folder descriptor (see open_beneath.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/openat2.h>
#include <sys/syscall.h>
#endif

#include "open_beneath.h"

/* Added to every open: a FIFO must not block, a terminal must not become
 * ours.  O_PATH takes no other flag (openat2 refuses them). */
static int extra_flags(int mode)
{
    return mode & O_PATH ? O_CLOEXEC : O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
}

int vk_open_beneath_walk(int dirfd, const char *rel, int mode)
{
    if (!*rel || rel[0] == '/') {
        errno = EXDEV;
        return -1;
    }
    int cur = dirfd;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char comp[256];
        if (len == 0 || len >= sizeof comp || (len <= 2 && strncmp(p, "..", len) == 0)) {
            /* an empty, ".", ".." or overlong component: not a normalised name */
            if (cur != dirfd)
                close(cur);
            errno = len >= sizeof comp ? ENAMETOOLONG : EXDEV;
            return -1;
        }
        memcpy(comp, p, len);
        comp[len] = 0;
        int next = slash ? openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                         : openat(cur, comp, mode | O_NOFOLLOW | extra_flags(mode));
        int err = errno;
        struct stat st;
        if (next < 0 && err == ENOTDIR && fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
            err = ELOOP; /* a symbolic link where a folder was expected */
        if (cur != dirfd)
            close(cur);
        if (next < 0) {
            errno = err;
            return -1;
        }
        if (!slash)
            return next;
        cur = next;
        p = slash + 1;
    }
}

static int open_beneath_nonblocking(int dirfd, const char *rel, int mode)
{
#if defined(__linux__) && defined(SYS_openat2)
    struct open_how how = {
        .flags = (unsigned long long)(mode | extra_flags(mode)),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS)
        return fd;
#endif
    return vk_open_beneath_walk(dirfd, rel, mode);
}

int vk_open_beneath(int dirfd, const char *rel, int mode)
{
    int fd = open_beneath_nonblocking(dirfd, rel, mode);
    if (fd >= 0 && !(mode & (O_PATH | O_NONBLOCK))) {
        int fl = fcntl(fd, F_GETFL); /* blocking I/O from here on */
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    return fd;
}

int vk_open_dir_up(int dirfd, unsigned levels)
{
    int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    for (unsigned i = 0; cur >= 0 && i < levels; i++) {
        int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int err = errno;
        close(cur);
        cur = up;
        errno = err;
    }
    return cur;
}
