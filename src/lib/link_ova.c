/* link_ova.c - the disk inside an OVA that vmdkit_open reads in place: a
 * member of the tar archive, a streamOptimized VMDK whose bytes are read
 * at their offset in the archive (never copied out). */
#include <strings.h>
#include <sys/stat.h>

#include "link.h"
#include "ovf/ovf.h"
#include "sparse_header.h"

static bool is_vmdk_name(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcasecmp(name + n - 5, ".vmdk") == 0;
}

int vk_ova_find_disk(int fd, const char *ova, const char *member, char **name, uint64_t *base,
                     uint64_t *size, vk_err *e)
{
    vk_tar t;
    int r = vk_tar_list(fd, ova, &t, e);
    if (r)
        return r;
    const vk_tar_member *m = NULL;
    if (member) {
        m = vk_tar_find(&t, member);
        if (!m)
            r = vk_fail(e, VMDKIT_ENOENT, "%s: %s: not a member of the archive", ova, member);
    } else {
        /* the first disk in tar order, as OVF References list them */
        for (size_t i = 0; i < t.n && !m; i++)
            if ((t.m[i].type == '0' || t.m[i].type == '7') && is_vmdk_name(t.m[i].name))
                m = &t.m[i];
        if (!m)
            r = vk_fail(e, VMDKIT_ENOENT, "%s: no .vmdk member in the archive", ova);
    }
    uint8_t magic[4] = {0};
    if (!r)
        r = vk_pread_zfill(fd, magic, m->size < 4 ? (size_t)m->size : 4, m->offset, ova, e);
    const char *leaf = !m ? "" : strncmp(m->name, "./", 2) == 0 ? m->name + 2 : m->name;
    if (!r && magic[0] == 0x1f && magic[1] == 0x8b)
        r = vk_fail(
            e, VMDKIT_EUNSUPPORTED,
            "%s: member %s is gzip-compressed and cannot be read in place; use vmdkit ova import", ova,
            leaf);
    else if (!r && vk_le32(magic) != VK_KDMV_MAGIC)
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: member %s: magic: not a sparse VMDK (KDMV)", ova, leaf);
    if (!r && !(*name = vk_strdup(leaf, e)))
        r = VMDKIT_ENOMEM;
    if (!r) {
        *base = m->offset;
        *size = m->size;
    }
    vk_tar_free(&t);
    return r;
}

bool vk_ova_probe(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && vk_tar_probe(fd);
}
