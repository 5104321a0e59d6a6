/* clone_disk.c - the full clone of a disk: its chain flattened into a new
 * disk of the right createType with the base's adapter and hardware
 * version.  The one place that decides what a full clone looks like; the
 * command and the machine clone (vm_clone.c) both come here.  Crash
 * safety is vmdkit_convert's (copy.c). */
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

#include "clone_disk.h"
#include "holders.h"
#include "create.h"
#include "path.h"

/* Is the folder holding PATH a Fusion bundle ("Name.vmwarevm")? */
static bool in_bundle(const char *path, vk_err *e, bool *yes)
{
    char *abs = vk_path_absolute(path, e);
    char *dir = abs ? vk_path_dirname(abs, e) : NULL;
    if (dir) {
        const char *b = vk_path_basename(dir);
        size_t n = strlen(b), k = strlen(".vmwarevm");
        *yes = n > k && strcasecmp(b + n - k, ".vmwarevm") == 0;
    }
    free(abs);
    free(dir);
    return dir != NULL;
}

/* The createType of a full clone whose base link has BASE_TYPE (NULL when
 * unknown), of CAPACITY bytes, to be called PLACED_AS. */
static int default_type(const char *base_type, uint64_t capacity, const char *placed_as,
                        vmdkit_create_type *type, vk_err *e)
{
    int t = base_type ? vmdkit_create_type_parse(base_type) : -1;
    switch (t) {
    case VMDKIT_MONOLITHIC_SPARSE:
    case VMDKIT_MONOLITHIC_FLAT:
    case VMDKIT_TWOGB_SPARSE:
    case VMDKIT_TWOGB_FLAT:
        *type = (vmdkit_create_type)t; /* written by vmdkit and writable in place */
        return 0;
    default:
        break; /* a stream (read-only once written), vmfs, or a type vmdkit does not write */
    }
    bool bundle = false;
    if (!in_bundle(placed_as, e, &bundle))
        return VMDKIT_ENOMEM;
    *type = bundle ? VMDKIT_TWOGB_SPARSE : VMDKIT_MONOLITHIC_SPARSE;
    /* beyond what a sparse disk addresses (about 2 TiB): flat, holes on the host */
    if (!vk_create_fits(*type, vk_div_round_up(capacity, VK_SECTOR)))
        *type = bundle ? VMDKIT_TWOGB_FLAT : VMDKIT_MONOLITHIC_FLAT;
    if (!vk_create_fits(*type, vk_div_round_up(capacity, VK_SECTOR)))
        *type = VMDKIT_MONOLITHIC_FLAT;
    return 0;
}

/* OPTS as this library knows them: a shorter struct from an older caller
 * reads as zeros past its end; a longer one must hold only zeros there. */
static int read_opts(const vmdkit_clone_disk_opts *opts, vmdkit_clone_disk_opts *o, vk_err *e)
{
    int r = vk_opts_read(o, sizeof *o, opts, "vmdkit_clone_disk_opts", e);
    if (r)
        return r;
    if (!opts || opts->struct_size < offsetof(vmdkit_clone_disk_opts, type) + sizeof o->type)
        o->type = -1; /* the default createType */
    if (o->type < -1 || o->type > VMDKIT_VMFS)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_clone_disk: opts: type %d: not a createType", o->type);
    if (o->open_flags & ~(unsigned)(VMDKIT_OPEN_ALLOW_EXTERNAL | VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS))
        return vk_fail(
            e, VMDKIT_EINVAL,
            "vmdkit_clone_disk: opts: open_flags %#x: only ALLOW_EXTERNAL and ALLOW_ABSOLUTE_PARENTS apply",
            o->open_flags);
    return 0;
}

int vk_clone_disk(const char *src, const char *dst, const char *placed_as,
                  const vmdkit_clone_disk_opts *opts, vk_err *e)
{
    vmdkit_clone_disk_opts o;
    int r = read_opts(opts, &o, e);
    if (r)
        return r;
    vmdkit_disk *d;
    if ((r = vmdkit_open(src, VMDKIT_OPEN_RDONLY | o.open_flags, &d, e)))
        return r;
    /* a copy of a disk that is changing is no copy: refuse QEMU, VMware or
     * vmdkit writing any link of the chain */
    if ((r = vk_disk_check_no_writer(d, e))) {
        vmdkit_close(d, NULL);
        return r;
    }
    vmdkit_link_info base;
    if ((r = vmdkit_link_info_get(d, vmdkit_chain_length(d) - 1, &base))) {
        *e = *vmdkit_last_error(d);
        vmdkit_close(d, NULL);
        return r;
    }
    vmdkit_create_opts vmdk = {.struct_size = sizeof vmdk};
    vmdkit_convert_opts co = {.struct_size = sizeof co, .vmdk = &vmdk};
    vmdk.adapter = vmdkit_adapter_name(base.adapter_type); /* NULL: ide */
    vmdk.hw_version = vk_hw_version_of(base.hw_version);
    if (o.type >= 0)
        vmdk.type = (vmdkit_create_type)o.type;
    else
        r = default_type(base.create_type, vmdkit_size(d), placed_as, &vmdk.type, e);
    co.progress = o.progress;
    co.progress_opaque = o.progress_opaque;
    if (!r)
        r = vmdkit_convert(d, dst, &co, e);
    vmdkit_link_info_free(&base);
    vmdkit_close(d, NULL);
    return r;
}

int vmdkit_clone_disk(const char *src_path, const char *dst_path, const vmdkit_clone_disk_opts *opts,
                      vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    if (!src_path || !dst_path)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_clone_disk: src_path and dst_path are required");
    return vk_clone_disk(src_path, dst_path, dst_path, opts, e);
}
