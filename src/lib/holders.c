/* holders.c - who else is using a file (see holders.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "holders.h"
#include "link.h"

/* QEMU's lock bytes (block/file-posix.c): RAW_LOCK_PERM_BASE + bit for a
 * permission it holds, RAW_LOCK_SHARED_BASE + bit for one it does not
 * share; BLK_PERM_WRITE is bit 1. */
#define QEMU_LOCK_FIRST 100
#define QEMU_LOCK_LAST 299
#define QEMU_WRITE_BYTE 101

bool vk_vmware_lock_present(const char *path)
{
    size_t n = strlen(path) + 5;
    char *lck = malloc(n);
    if (!lck)
        return false;
    snprintf(lck, n, "%s.lck", path);
    struct stat st;
    bool present = lstat(lck, &st) == 0;
    free(lck);
    return present;
}

/* One line of /proc/locks:
 *   "1: OFDLCK ADVISORY  READ -1 fe:00:10953000 100 101"
 *   "2: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 EOF"
 * Lines of waiters ("1: -> ...") are skipped by the caller. */
static bool parse_lock_line(const char *line, char *mode, size_t mode_size, unsigned *maj, unsigned *min,
                            uint64_t *ino, uint64_t *start, uint64_t *end, bool *to_eof)
{
    char kind[16], adv[16], m[16], endtok[32];
    long pid;
    unsigned long long i, s;
    if (sscanf(line, "%*[^:]: %15s %15s %15s %ld %x:%x:%llu %llu %31s", kind, adv, m, &pid, maj, min, &i,
               &s, endtok) != 9)
        return false;
    snprintf(mode, mode_size, "%s", m);
    *ino = i;
    *start = s;
    *to_eof = strcmp(endtok, "EOF") == 0;
    *end = *to_eof ? UINT64_MAX : strtoull(endtok, NULL, 10);
    return true;
}

/* Classify the locks /proc/locks lists for the file ST; false when the
 * table cannot be read. */
static bool probe_proc_locks(const struct stat *st, vk_holders *h)
{
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "->"))
            continue; /* a waiter, not a holder */
        char mode[16];
        unsigned maj, min;
        uint64_t ino, start, end;
        bool to_eof;
        if (!parse_lock_line(line, mode, sizeof mode, &maj, &min, &ino, &start, &end, &to_eof))
            continue;
        if (maj != major(st->st_dev) || min != minor(st->st_dev) || ino != (uint64_t)st->st_ino)
            continue;
        bool write = strcmp(mode, "WRITE") == 0;
        if (start == 0 && to_eof) {
            if (write)
                h->vmdkit_writer = true;
            else
                h->vmdkit_reader = true;
        } else if (start >= QEMU_LOCK_FIRST && end <= QEMU_LOCK_LAST) {
            h->qemu = true;
            if (start <= QEMU_WRITE_BYTE && QEMU_WRITE_BYTE <= end)
                h->qemu_writer = true;
        } else {
            h->unknown = true;
        }
    }
    fclose(f);
    return true;
}

/* Without /proc/locks: is any lock held on the file at all? */
static void probe_getlk(const char *path, vk_holders *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
        if (fl.l_start == 0 && fl.l_len == 0)
            *(fl.l_type == F_WRLCK ? &h->vmdkit_writer : &h->vmdkit_reader) = true;
        else
            h->unknown = true;
    }
    close(fd);
}

int vk_holders_probe(const char *path, vk_holders *h, vk_err *e)
{
    (void)e;
    memset(h, 0, sizeof *h);
    h->vmware = vk_vmware_lock_present(path);
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (!probe_proc_locks(&st, h))
        probe_getlk(path, h);
    return 0;
}

int vk_holders_check(const char *path, enum vk_hold_need need, vk_err *e)
{
    vk_holders h;
    int r = vk_holders_probe(path, &h, e);
    if (r)
        return r;
    bool any = need == VK_NEED_EXCLUSIVE;
    if (h.vmware)
        return vk_fail(e, VMDKIT_ELOCKED,
                       "%s: in use by VMware (%s.lck exists): shut its virtual machine down first", path,
                       path);
    if (h.qemu_writer || (any && h.qemu))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by QEMU (%s): stop it first", path,
                       h.qemu_writer ? "open for writing" : "open");
    if (h.vmdkit_writer)
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by another process (a write lock held)", path);
    if (any && (h.vmdkit_reader || h.unknown))
        return vk_fail(e, VMDKIT_ELOCKED, "%s: in use by another process (%s)", path,
                       h.vmdkit_reader ? "a read lock held" : "a lock held");
    return 0;
}

int vk_disk_check_no_writer(const vmdkit_disk *d, vk_err *e)
{
    for (const vk_link *l = d->top; l; l = l->parent) {
        int r = vk_holders_check(l->path, VK_NEED_NO_WRITER, e);
        for (size_t i = 0; !r && i < l->n_ext; i++)
            if (l->ext[i].path && strcmp(l->ext[i].path, l->path) != 0)
                r = vk_holders_check(l->ext[i].path, VK_NEED_NO_WRITER, e);
        if (r)
            return r;
    }
    return 0;
}
