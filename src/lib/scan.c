/* scan.c - reading just the descriptor of a file, for the walk of a
 * library (libwalk.c) and for following hints without opening disks. */
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

void vmdkit_paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
}

char *vk_hint_parent_of(const char *path)
{
    vk_descriptor d;
    bool is_disk;
    char *next = NULL;
    if (vk_read_descriptor(path, &d, &is_disk, NULL) == 0 && is_disk && d.parent_hint)
        next = vk_path_resolve_parent(path, d.parent_hint, NULL);
    vk_descriptor_free(&d);
    return next;
}
