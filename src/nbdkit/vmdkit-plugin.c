/*
 * vmdkit-plugin.c - nbdkit plugin serving a VMDK disk and its parent chain.
 *
 *   nbdkit vmdkit file=DISK [readonly=true] [confine=DIR] [ignore-cid=true]
 *                 [allow-external-extents=true]
 *
 * A thin adapter over the public API (vmdkit.h).  The disk is opened once,
 * before nbdkit starts serving, so a disk that cannot be served stops nbdkit
 * at start-up with the library's message.  Every connection shares that
 * handle and nbdkit serialises all requests (a vmdkit_disk is used by one
 * thread at a time): a write on one connection is seen by all, and a flush
 * on any connection makes every completed write durable, which is what
 * multi-conn promises.  The handle's advisory lock is an OFD lock, so it
 * stays held when nbdkit forks into the background.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "vmdkit.h"

#ifndef VMDKIT_VERSION
#error "VMDKIT_VERSION must be defined by the build"
#endif

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

/* Parameters (absolute paths: nbdkit may change directory to / later). */
static char *disk_path;
static char *confine_dir;
static bool opt_readonly;
static bool opt_ignore_cid;
static bool opt_allow_external;

static vmdkit_disk *disk;
/* Trim is offered only where it costs no data writes: grain size, or 0. */
static uint64_t trim_grain_bytes;

static int errno_for(int code)
{
    switch (code) {
    case VMDKIT_ENOSPC: return ENOSPC;
    case VMDKIT_ENOMEM: return ENOMEM;
    case VMDKIT_EINVAL: return EINVAL;
    case VMDKIT_ERDONLY: return EROFS;
    case VMDKIT_EUNSUPPORTED: return ENOTSUP;
    case VMDKIT_ELIMIT: return EOVERFLOW;
    case VMDKIT_ENOENT: return ENOENT;
    case VMDKIT_ELOCKED: return EBUSY;
    case VMDKIT_EPATH: return EACCES;
    case VMDKIT_EEXIST: return EEXIST;
    default: return EIO; /* I/O error, corrupt image, broken chain */
    }
}

/* Report the library error CODE of the served disk to nbdkit. */
static int fail(int code)
{
    const vmdkit_error *e = disk ? vmdkit_last_error(disk) : NULL;
    if (e && e->msg[0])
        nbdkit_error("%s", e->msg);
    else
        nbdkit_error("%s error", vmdkit_errcode_name(code));
    nbdkit_set_error(errno_for(code));
    return -1;
}

static int parse_flag(const char *value, bool *out)
{
    int r = nbdkit_parse_bool(value); /* reports a bad value itself */
    if (r == -1)
        return -1;
    *out = r != 0;
    return 0;
}

static int plug_config(const char *key, const char *value)
{
    if (strcmp(key, "file") == 0) {
        free(disk_path);
        disk_path = nbdkit_realpath(value);
        return disk_path ? 0 : -1;
    }
    if (strcmp(key, "confine") == 0) {
        free(confine_dir);
        confine_dir = nbdkit_realpath(value);
        if (!confine_dir)
            return -1;
        struct stat st;
        if (stat(confine_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            nbdkit_error("confine=%s: not a directory", value);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "readonly") == 0)
        return parse_flag(value, &opt_readonly);
    if (strcmp(key, "ignore-cid") == 0)
        return parse_flag(value, &opt_ignore_cid);
    if (strcmp(key, "allow-external-extents") == 0)
        return parse_flag(value, &opt_allow_external);
    nbdkit_error("unknown parameter '%s' (see nbdkit vmdkit --help)", key);
    return -1;
}

/* Is the existing file PATH (symbolic links resolved) inside confine_dir? */
static bool confined(const char *path)
{
    char *real = realpath(path, NULL);
    if (!real)
        return false;
    size_t n = strlen(confine_dir);
    bool inside = strcmp(confine_dir, "/") == 0 ||
                  (strncmp(real, confine_dir, n) == 0 && real[n] == '/');
    free(real);
    return inside;
}

static int plug_config_complete(void)
{
    if (!disk_path) {
        nbdkit_error("the file parameter is required: nbdkit vmdkit file=DISK");
        return -1;
    }
    if (opt_ignore_cid && !opt_readonly) {
        nbdkit_error("ignore-cid=true needs readonly=true: a broken chain is never written");
        return -1;
    }
    if (confine_dir && !confined(disk_path)) {
        nbdkit_error("%s: outside confine=%s", disk_path, confine_dir);
        return -1;
    }
    return 0;
}

/* Refuse (with a message) a link whose files are not all inside confine_dir. */
static int check_link_confined(const vmdkit_link_info *li)
{
    const char *what = NULL, *path = NULL;
    if (li->path && !confined(li->path)) {
        what = "disk";
        path = li->path;
    }
    for (size_t i = 0; !what && i < li->n_extents; i++) {
        if (li->extents[i].path && !confined(li->extents[i].path)) {
            what = "extent";
            path = li->extents[i].path;
        }
    }
    if (!what && li->parent_path && !confined(li->parent_path)) {
        what = "parent";
        path = li->parent_path;
    }
    if (!what)
        return 0;
    nbdkit_error("%s: %s %s is outside confine=%s", li->path ? li->path : disk_path, what, path,
                 confine_dir);
    nbdkit_set_error(EACCES);
    return -1;
}

/*
 * Can the library write the top link in place?  streamOptimized (compressed)
 * extents, ESX redo logs (COWD) and seSparse extents are read-only to it,
 * though they open for writing: refuse them at start-up rather than fail
 * every write.
 */
static bool link_writable(const vmdkit_link_info *li)
{
    if (!li->writable)
        return false;
    for (size_t i = 0; i < li->n_extents; i++) {
        const vmdkit_extent_info *x = &li->extents[i];
        if (x->access && strcmp(x->access, "RW") != 0 && x->path)
            return false;
        if (x->sparse.present && (x->sparse.compressed || strcmp(x->sparse.magic, "COWD") == 0))
            return false;
        if (x->type && strcmp(x->type, "SESPARSE") == 0)
            return false;
    }
    return true;
}

/*
 * The grain size when trim can be served by dropping whole grains of the top
 * link LI, else 0: every extent sparse, and either no parent to show through
 * (N_LINKS == 1) or zeroed-grain entries to hide it.
 */
static uint64_t trim_grain_of(const vmdkit_link_info *li, int n_links)
{
    uint64_t grain = 0;
    for (size_t j = 0; j < li->n_extents; j++) {
        const vmdkit_sparse_facts *s = &li->extents[j].sparse;
        if (!li->extents[j].path)
            continue; /* a ZERO extent reads as zeros already */
        if (!s->present || (n_links > 1 && !s->zeroed_grain))
            return 0;
        if (s->grain_sectors * VMDKIT_SECTOR_SIZE > grain)
            grain = s->grain_sectors * VMDKIT_SECTOR_SIZE;
    }
    return grain;
}

/*
 * Look at every link: enforce confine=DIR, refuse to write what cannot be
 * written, and find how trim can be served.
 */
static int inspect_chain(void)
{
    int n = vmdkit_chain_length(disk);
    for (int i = 0; i < n; i++) {
        vmdkit_link_info li;
        int r = vmdkit_link_info_get(disk, i, &li);
        if (r < 0)
            return fail(r);
        r = confine_dir ? check_link_confined(&li) : 0;
        if (r == 0 && i == 0 && !opt_readonly) {
            if (link_writable(&li)) {
                trim_grain_bytes = trim_grain_of(&li, n);
            } else {
                nbdkit_error("%s: a %s disk cannot be written in place: serve it with readonly=true",
                             disk_path, li.create_type ? li.create_type : "read-only");
                r = -1;
            }
        }
        vmdkit_link_info_free(&li);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int plug_get_ready(void)
{
    unsigned flags = opt_readonly ? VMDKIT_OPEN_RDONLY : VMDKIT_OPEN_RDWR;
    if (opt_ignore_cid)
        flags |= VMDKIT_OPEN_IGNORE_CID;
    if (opt_allow_external)
        flags |= VMDKIT_OPEN_ALLOW_EXTERNAL;
    vmdkit_error err = {0};
    int r = vmdkit_open(disk_path, flags, &disk, &err);
    if (r < 0) {
        disk = NULL;
        if (r == VMDKIT_ERDONLY && !opt_readonly)
            nbdkit_error("%s (serve it with readonly=true)", err.msg);
        else
            nbdkit_error("%s", err.msg[0] ? err.msg : vmdkit_errcode_name(r));
        return -1;
    }
    if (inspect_chain() < 0) {
        vmdkit_close(disk, NULL);
        disk = NULL;
        return -1;
    }
    nbdkit_debug("vmdkit: serving %s (%d link(s), %s)", disk_path, vmdkit_chain_length(disk),
                 opt_readonly ? "read-only" : "read-write");
    return 0;
}

static void plug_cleanup(void)
{
    vmdkit_error err = {0};
    if (disk && vmdkit_close(disk, &err) < 0)
        nbdkit_error("%s", err.msg);
    disk = NULL;
}

static void plug_unload(void)
{
    free(disk_path);
    free(confine_dir);
}

static void *plug_open_conn(int readonly)
{
    (void)readonly; /* nbdkit itself refuses writes on a read-only connection */
    if (!disk) {
        nbdkit_error("the disk is not open");
        return NULL;
    }
    return disk;
}

static int64_t plug_get_size(void *handle)
{
    uint64_t size = vmdkit_size(handle);
    if (size > INT64_MAX) {
        nbdkit_error("%s: virtual size %" PRIu64 " is too large for NBD", disk_path, size);
        return -1;
    }
    return (int64_t)size;
}

static int plug_can_write(void *handle)
{
    (void)handle;
    return !opt_readonly;
}

static int plug_can_trim(void *handle)
{
    (void)handle;
    return trim_grain_bytes > 0;
}

static int plug_yes(void *handle)
{
    (void)handle;
    return 1;
}

static int plug_no(void *handle)
{
    (void)handle;
    return 0;
}

static int plug_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    (void)flags;
    int r = vmdkit_pread(handle, buf, count, offset);
    return r < 0 ? fail(r) : 0;
}

static int plug_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset,
                         uint32_t flags)
{
    (void)flags; /* FUA is emulated by nbdkit with a flush */
    int r = vmdkit_pwrite(handle, buf, count, offset);
    return r < 0 ? fail(r) : 0;
}

/*
 * Write zeros.  The library turns whole grains into zeroed-grain entries
 * or leaves them unallocated where it can, whether or not the client
 * allows a hole: the range reads as zeros either way.
 */
static int plug_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    (void)flags;
    int r = vmdkit_pzero(handle, count, offset);
    return r < 0 ? fail(r) : 0;
}

/* Trim is a hint: only the whole grains of the range are dropped. */
static int plug_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    (void)flags;
    uint64_t g = trim_grain_bytes;
    uint64_t start = (offset + g - 1) / g * g, end = (offset + count) / g * g;
    if (start >= end)
        return 0;
    int r = vmdkit_pzero(handle, (size_t)(end - start), start);
    return r < 0 ? fail(r) : 0;
}

static int plug_flush(void *handle, uint32_t flags)
{
    (void)flags;
    int r = vmdkit_flush(handle);
    return r < 0 ? fail(r) : 0;
}

/*
 * Block status: stored data is "data"; a run that reads as zeros without
 * stored data (zeroed grain, ZERO extent, unallocated in every link) is a
 * hole that reads as zeros, which clients such as nbdcopy skip.
 */
static int plug_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
                          struct nbdkit_extents *extents)
{
    uint64_t end = offset + count;
    for (uint64_t off = offset; off < end;) {
        vmdkit_block_status st;
        int r = vmdkit_block_status_at(handle, off, end - off, &st);
        if (r < 0)
            return fail(r);
        if (st.length == 0) {
            nbdkit_error("%s: block status at offset %" PRIu64 " reported an empty run", disk_path,
                         off);
            nbdkit_set_error(EIO);
            return -1;
        }
        uint32_t type = st.alloc == VMDKIT_ALLOC_DATA ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
        if (nbdkit_add_extent(extents, off, st.length, type) == -1)
            return -1;
        off += st.length;
        if (flags & NBDKIT_FLAG_REQ_ONE)
            break;
    }
    return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "vmdkit",
    .longname = "nbdkit VMware VMDK plugin (vmdkit)",
    .version = VMDKIT_VERSION,
    .description = "Serve a VMware VMDK disk, with its parent chain, over NBD.",
    .config = plug_config,
    .config_complete = plug_config_complete,
    .config_help =
        "file=DISK                     (required) the VMDK descriptor or sparse file\n"
        "readonly=true                 open the disk read-only\n"
        "confine=DIR                   refuse a disk whose files or parents lie outside DIR\n"
        "ignore-cid=true               accept a parent whose CID does not match (readonly only)\n"
        "allow-external-extents=true   follow extent files outside the descriptor's folder",
    .magic_config_key = "file",
    .get_ready = plug_get_ready,
    .cleanup = plug_cleanup,
    .unload = plug_unload,
    .open = plug_open_conn,
    .get_size = plug_get_size,
    .can_write = plug_can_write,
    .can_flush = plug_yes,
    .can_trim = plug_can_trim,
    .can_zero = plug_can_write,
    .can_fast_zero = plug_no,
    .can_extents = plug_yes,
    .can_multi_conn = plug_yes,
    .pread = plug_pread,
    .pwrite = plug_pwrite,
    .zero = plug_zero,
    .trim = plug_trim,
    .flush = plug_flush,
    .extents = plug_extents,
};

struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)
