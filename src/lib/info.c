/* info.c - describing a link for `info`: descriptor facts, extents,
 * sparse header facts, space used. */
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

#include "link.h"
#include "path.h"

static vk_link *nth_link(vmdkit_disk *d, int n)
{
    vk_link *l = d->top;
    while (l && n-- > 0)
        l = l->parent;
    return l;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static uint64_t ddb_number(const vk_descriptor *desc, const char *key)
{
    const char *v = vk_descriptor_ddb_get(desc, key);
    return v ? strtoull(v, NULL, 10) : 0;
}

int vmdkit_link_info_get(vmdkit_disk *d, int n, vmdkit_link_info *info)
{
    memset(info, 0, sizeof *info);
    vk_link *l = nth_link(d, n);
    if (!l || n < 0)
        return vk_fail(&d->err, VMDKIT_EINVAL, "%s: no link %d in the chain", d->top->path, n);
    const vk_descriptor *desc = &l->desc;
    info->path = strdup(l->path);
    info->create_type = dup_or_null(l->raw ? "raw" : desc->create_type ? desc->create_type : "custom");
    info->capacity_bytes = l->raw ? l->raw_bytes : l->capacity_sectors * VK_SECTOR;
    info->cid = desc->cid;
    info->parent_cid = desc->parent_cid;
    info->parent_hint = dup_or_null(desc->parent_hint);
    info->parent_path = dup_or_null(l->parent_path);
    info->adapter_type = dup_or_null(vk_descriptor_ddb_get(desc, "ddb.adapterType"));
    info->geometry.cylinders = ddb_number(desc, "ddb.geometry.cylinders");
    info->geometry.heads = (uint32_t)ddb_number(desc, "ddb.geometry.heads");
    info->geometry.sectors = (uint32_t)ddb_number(desc, "ddb.geometry.sectors");
    info->hw_version = dup_or_null(vk_descriptor_ddb_get(desc, "ddb.virtualHWVersion"));
    info->tools_version = dup_or_null(vk_descriptor_ddb_get(desc, "ddb.toolsVersion"));
    info->uuid = dup_or_null(vk_descriptor_ddb_get(desc, "ddb.uuid"));
    info->long_content_id = dup_or_null(vk_descriptor_ddb_get(desc, "ddb.longContentID"));
    info->embedded_descriptor = l->embedded;
    info->writable = l->writable;
    info->raw = l->raw;
    info->n_extents = l->n_ext;
    info->extents = calloc(l->n_ext ? l->n_ext : 1, sizeof *info->extents);
    if (!info->path || !info->create_type || !info->extents) {
        vmdkit_link_info_free(info);
        return vk_fail(&d->err, VMDKIT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < l->n_ext; i++) {
        vk_extent *x = &l->ext[i];
        vmdkit_extent_info *xi = &info->extents[i];
        xi->file = dup_or_null(x->name);
        xi->path = dup_or_null(x->path);
        xi->kind = (vmdkit_extent_type)x->type;
        xi->mode = (vmdkit_extent_access)x->access;
        xi->type = vk_extent_type_name(x->type);
        xi->access = vk_access_name(x->access);
        xi->size_sectors = x->size_sectors;
        xi->offset_sectors = x->offset_sectors;
        /* the file is held (opened again if the pool closed it): a flat
         * extent's description and the file's size come from fstat */
        int r = vk_extent_hold(x, &d->err);
        if (r)
            return r;
        if (x->ops && x->ops->describe)
            x->ops->describe(x, &xi->sparse, &xi->allocated_bytes);
        struct stat st;
        if (x->file_bytes) /* a member of an OVA: its bytes in the archive */
            xi->file_bytes = vk_div_round_up(x->file_bytes, 512) * 512;
        else if (x->fd >= 0 && fstat(x->fd, &st) == 0)
            xi->file_bytes = (uint64_t)st.st_blocks * 512;
        vk_extent_release(x);
    }
    return 0;
}

void vmdkit_link_info_free(vmdkit_link_info *info)
{
    if (!info)
        return;
    free(info->path);
    free(info->create_type);
    free(info->parent_hint);
    free(info->parent_path);
    free(info->adapter_type);
    free(info->hw_version);
    free(info->tools_version);
    free(info->uuid);
    free(info->long_content_id);
    for (size_t i = 0; info->extents && i < info->n_extents; i++) {
        free(info->extents[i].file);
        free(info->extents[i].path);
    }
    free(info->extents);
    memset(info, 0, sizeof *info);
}
