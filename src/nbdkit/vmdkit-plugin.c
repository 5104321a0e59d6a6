/*
 * vmdkit-plugin.c - nbdkit plugin serving VMDK disks and their parent chains.
 *
 *   nbdkit vmdkit file=DISK | dir=DIR [readonly=true] [confine=DIR]
 *                 [ignore-cid=true] [allow-external-extents=true]
 *                 [allow-absolute-parents=true]
 *
 * A thin adapter over the public API (vmdkit.h).  With file=DISK the disk
 * is opened once, before nbdkit starts serving, so a disk that cannot be
 * served stops nbdkit at start-up with the library's message.  With
 * dir=DIR every disk under DIR is an export named by its path relative to
 * DIR; an export is opened when its first connection arrives and closed
 * when its last one leaves.  All connections to one export share one open
 * disk: a write on one is seen by all, and a flush on any makes every
 * completed write durable, which is what multi-conn promises.  The
 * handle's advisory lock is an OFD lock, so it stays held when nbdkit
 * forks into the background.
 *
 * Threads.  The plugin is NBDKIT_THREAD_MODEL_PARALLEL.  The library lets
 * several threads read one disk at once while nothing writes it
 * (vmdkit_pread_r in vmdkit.h): a read-only export takes no lock at all.
 * A writable export has a read-write lock: reads, block status and cache
 * share it, and writes, zeros, trims and flushes take it alone, because
 * they change the grain tables and caches that reads walk.  The lock
 * prefers writers, so a stream of reads cannot starve them.  The handle's
 * error record (vmdkit_last_error) is only read by the thread that holds
 * the lock alone; readers get their errors in their own vmdkit_error.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "vmdkit.h"

#ifndef VMDKIT_VERSION
#error "VMDKIT_VERSION must be defined by the build"
#endif

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* NBD limits export names to 4096 bytes. */
#define MAX_EXPORT_NAME 4096

/* Parameters (absolute paths: nbdkit may change directory to / later). */
static char *disk_path;
static char *dir_path;
static char *confine_dir;
static bool opt_readonly;
static bool opt_ignore_cid;
static bool opt_allow_external;
static bool opt_allow_absolute_parents;

/* One open disk and everything the callbacks need to serve it. */
typedef struct served {
    char *name; /* export name ("" for file=DISK) */
    char *path; /* absolute path of the disk */
    vmdkit_disk *disk;
    bool writable;         /* the handle is open read-write */
    uint64_t trim_unit;    /* bytes trim works in (grain or sector), 0: no trim */
    pthread_rwlock_t lock; /* writable exports only (see the top of the file) */
    unsigned refs;         /* connections using it (dir=DIR) */
    struct served *next;
} served;

static served *file_disk;  /* file=DISK, open from get_ready to cleanup */
static served *open_disks; /* dir=DIR: exports with connections */
static pthread_mutex_t open_disks_lock = PTHREAD_MUTEX_INITIALIZER;

static int errno_for(int code)
{
    switch (code) {
    case VMDKIT_ENOSPC:
        return ENOSPC;
    case VMDKIT_ENOMEM:
        return ENOMEM;
    case VMDKIT_EINVAL:
        return EINVAL;
    case VMDKIT_ERDONLY:
        return EROFS;
    case VMDKIT_EUNSUPPORTED:
        return ENOTSUP;
    case VMDKIT_ELIMIT:
        return EOVERFLOW;
    case VMDKIT_ENOENT:
        return ENOENT;
    case VMDKIT_ELOCKED:
        return EBUSY;
    case VMDKIT_EPATH:
        return EACCES;
    case VMDKIT_EEXIST:
        return EEXIST;
    default:
        return EIO; /* I/O error, corrupt image, broken chain */
    }
}

/* Report the library error CODE (its message in E, if any) to nbdkit. */
static int fail_with(const vmdkit_error *e, int code)
{
    if (e && e->msg[0])
        nbdkit_error("%s", e->msg);
    else
        nbdkit_error("%s error", vmdkit_errcode_name(code));
    nbdkit_set_error(errno_for(code));
    return -1;
}

/* Report an error of a call that recorded it in the handle (the caller
 * holds the export alone). */
static int fail(const served *s, int code) { return fail_with(vmdkit_last_error(s->disk), code); }

static void lock_shared(served *s)
{
    if (s->writable)
        pthread_rwlock_rdlock(&s->lock);
}

static void lock_alone(served *s)
{
    if (s->writable)
        pthread_rwlock_wrlock(&s->lock);
}

static void unlock(served *s)
{
    if (s->writable)
        pthread_rwlock_unlock(&s->lock);
}

/* ---- parameters ---- */

static int parse_flag(const char *value, bool *out)
{
    int r = nbdkit_parse_bool(value); /* reports a bad value itself */
    if (r == -1)
        return -1;
    *out = r != 0;
    return 0;
}

/* The real path of the folder VALUE of parameter KEY into *OUT. */
static int config_dir(const char *key, const char *value, char **out)
{
    free(*out);
    *out = nbdkit_realpath(value);
    if (!*out)
        return -1;
    struct stat st;
    if (stat(*out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        nbdkit_error("%s=%s: not a directory", key, value);
        return -1;
    }
    return 0;
}

/* The real path of the disk PATH, or NULL (errno): for FILE.ova/NAME.vmdk,
 * a disk inside an OVA, the real path of FILE.ova followed by /NAME.vmdk. */
static char *disk_realpath(const char *path)
{
    char *real = realpath(path, NULL);
    const char *slash = strrchr(path, '/');
    if (real || errno != ENOTDIR || !slash || !slash[1])
        return real;
    char *ova = strndup(path, (size_t)(slash - path));
    char *ova_real = ova ? realpath(ova, NULL) : NULL;
    struct stat st;
    if (ova_real && stat(ova_real, &st) == 0 && S_ISREG(st.st_mode) &&
        asprintf(&real, "%s%s", ova_real, slash) < 0)
        real = NULL;
    free(ova);
    free(ova_real);
    if (!real)
        errno = ENOTDIR;
    return real;
}

static int plug_config(const char *key, const char *value)
{
    if (strcmp(key, "file") == 0) {
        free(disk_path);
        disk_path = disk_realpath(value);
        if (!disk_path)
            disk_path = nbdkit_realpath(value); /* reports why */
        return disk_path ? 0 : -1;
    }
    if (strcmp(key, "dir") == 0)
        return config_dir(key, value, &dir_path);
    if (strcmp(key, "confine") == 0)
        return config_dir(key, value, &confine_dir);
    if (strcmp(key, "readonly") == 0)
        return parse_flag(value, &opt_readonly);
    if (strcmp(key, "ignore-cid") == 0)
        return parse_flag(value, &opt_ignore_cid);
    if (strcmp(key, "allow-external-extents") == 0)
        return parse_flag(value, &opt_allow_external);
    if (strcmp(key, "allow-absolute-parents") == 0)
        return parse_flag(value, &opt_allow_absolute_parents);
    nbdkit_error("unknown parameter '%s' (see nbdkit vmdkit --help)", key);
    return -1;
}

/* Is the existing file PATH (symbolic links resolved) inside the folder
 * ROOT (a real path)? */
static bool inside(const char *path, const char *root)
{
    char *real = disk_realpath(path);
    if (!real)
        return false;
    size_t n = strlen(root);
    bool in = strcmp(root, "/") == 0 || (strncmp(real, root, n) == 0 && real[n] == '/');
    free(real);
    return in;
}

/* Inside both confine=DIR and dir=DIR, where given? */
static bool confined(const char *path)
{
    return (!confine_dir || inside(path, confine_dir)) && (!dir_path || inside(path, dir_path));
}

/* The folder a refused path should have been in, for messages. */
static const char *confinement(void) { return confine_dir ? confine_dir : dir_path; }

static int plug_config_complete(void)
{
    if (disk_path && dir_path) {
        nbdkit_error("file= and dir= are exclusive: serve one disk or the disks of a folder");
        return -1;
    }
    if (!disk_path && !dir_path) {
        nbdkit_error(
            "a disk is required: nbdkit vmdkit file=DISK (or dir=DIR for every disk under DIR)");
        return -1;
    }
    if (opt_ignore_cid && !opt_readonly) {
        nbdkit_error("ignore-cid=true needs readonly=true: a broken chain is never written");
        return -1;
    }
    if (disk_path && confine_dir && !confined(disk_path)) {
        nbdkit_error("%s: outside confine=%s", disk_path, confine_dir);
        return -1;
    }
    return 0;
}

/* ---- opening a disk ---- */

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
        if (x->mode != VMDKIT_ACCESS_RW && x->path)
            return false;
        if (x->sparse.present && (x->sparse.compressed || strcmp(x->sparse.magic, "COWD") == 0))
            return false;
        if (x->kind == VMDKIT_EXTENT_SESPARSE)
            return false;
    }
    return true;
}

/*
 * The unit trim works in on the top link LI, or 0 when trim is not
 * offered.  Trim never writes data (it is a hint): a flat extent punches
 * holes in whole sectors; a sparse extent with zeroed-grain entries gives
 * whole grains such an entry.  A sparse extent without them could only
 * drop a grain by writing zeros over it (or over the parent showing
 * through), so a link holding one gets no trim.
 */
static uint64_t trim_unit_of(const vmdkit_link_info *li)
{
    uint64_t unit = 0;
    for (size_t j = 0; j < li->n_extents; j++) {
        const vmdkit_extent_info *x = &li->extents[j];
        if (!x->path)
            continue; /* a ZERO extent reads as zeros already */
        const vmdkit_sparse_facts *s = &x->sparse;
        uint64_t u;
        if (!s->present && (x->kind == VMDKIT_EXTENT_FLAT || x->kind == VMDKIT_EXTENT_VMFS))
            u = VMDKIT_SECTOR_SIZE;
        else if (s->present && s->zeroed_grain && strcmp(s->magic, "KDMV") == 0)
            u = s->grain_sectors * VMDKIT_SECTOR_SIZE;
        else
            return 0;
        if (u > unit)
            unit = u;
    }
    return unit;
}

/*
 * Look at every link of S's chain: refuse to write what cannot be written,
 * and find how trim can be served.  (The confinement folder was enforced
 * while the chain was opened, beneath it.)
 */
static int inspect_chain(served *s)
{
    int n = vmdkit_chain_length(s->disk);
    for (int i = 0; i < n; i++) {
        vmdkit_link_info li;
        int r = vmdkit_link_info_get(s->disk, i, &li);
        if (r < 0)
            return fail(s, r);
        if (i == 0 && s->writable) {
            if (link_writable(&li)) {
                s->trim_unit = trim_unit_of(&li);
            } else {
                nbdkit_error("%s: a %s disk cannot be written in place: serve it with readonly=true",
                             s->path, li.create_type ? li.create_type : "read-only");
                nbdkit_set_error(EROFS);
                r = -1;
            }
        }
        vmdkit_link_info_free(&li);
        if (r < 0)
            return -1;
    }
    return 0;
}

static void served_free(served *s)
{
    if (!s)
        return;
    vmdkit_error err = {0};
    if (s->disk && vmdkit_close(s->disk, &err) < 0)
        nbdkit_error("%s", err.msg);
    if (s->writable)
        pthread_rwlock_destroy(&s->lock);
    free(s->name);
    free(s->path);
    free(s);
}

/*
 * Open the disk at PATH as export NAME, writable if WRITABLE, or (with
 * FALL_BACK) read-only when the disk can only be read.  NULL after an
 * error reported to nbdkit.
 */
static served *served_open(const char *name, const char *path, bool writable, bool fall_back)
{
    served *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name)) || !(s->path = strdup(path))) {
        nbdkit_error("out of memory");
        served_free(s);
        return NULL;
    }
    if (confinement() && !confined(path)) {
        nbdkit_error("%s: outside %s=%s", path, confine_dir ? "confine" : "dir", confinement());
        nbdkit_set_error(EACCES);
        served_free(s);
        return NULL;
    }
    unsigned flags = opt_ignore_cid ? VMDKIT_OPEN_IGNORE_CID : 0;
    if (opt_allow_external)
        flags |= VMDKIT_OPEN_ALLOW_EXTERNAL;
    if (opt_allow_absolute_parents)
        flags |= VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS;
    /* every file of the chain is opened beneath the confinement folder:
     * nothing outside it is ever opened, whatever is swapped in meanwhile */
    /* the deeper of confine=DIR and dir=DIR when both are given */
    const char *root =
        confine_dir && dir_path && inside(dir_path, confine_dir) ? dir_path : confinement();
    vmdkit_error err = {0};
    int r = vmdkit_open_beneath(path, root, flags | (writable ? VMDKIT_OPEN_RDWR : VMDKIT_OPEN_RDONLY),
                                &s->disk, &err);
    if (r == VMDKIT_ERDONLY && writable && fall_back) {
        nbdkit_debug("vmdkit: %s: %s: served read-only", name, err.msg);
        writable = false;
        r = vmdkit_open_beneath(path, root, flags, &s->disk, &err);
    }
    if (r < 0) {
        s->disk = NULL;
        if (r == VMDKIT_ERDONLY && writable)
            nbdkit_error("%s (serve it with readonly=true)", err.msg);
        else
            nbdkit_error("%s", err.msg[0] ? err.msg : vmdkit_errcode_name(r));
        nbdkit_set_error(errno_for(r));
        served_free(s);
        return NULL;
    }
    if (writable) {
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        r = pthread_rwlock_init(&s->lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        if (r != 0) {
            nbdkit_error("%s: cannot create a lock: %s", path, strerror(r));
            served_free(s);
            return NULL;
        }
    }
    s->writable = writable; /* from here on served_free destroys the lock */
    if (inspect_chain(s) < 0) {
        served_free(s);
        return NULL;
    }
    nbdkit_debug("vmdkit: serving %s (%d link(s), %s)", path, vmdkit_chain_length(s->disk),
                 writable ? "read-write" : "read-only");
    return s;
}

/* ---- the exports of dir=DIR ---- */

/* Does the tree node N lie under DIR with all its parents (its path and
 * theirs do not lead out with ".."), so that it can be served? */
static bool servable(const vmdkit_tree_node *n)
{
    for (; n; n = n->parent)
        if (strncmp(n->path, "../", 3) == 0 || strlen(n->path) > MAX_EXPORT_NAME)
            return false;
    return true;
}

/* Scan DIR; *OUT owns the tree.  -1 after an error reported to nbdkit. */
static int scan_dir(vmdkit_tree **out)
{
    vmdkit_error err = {0};
    int r = vmdkit_tree_scan(dir_path, out, &err);
    if (r < 0) {
        nbdkit_error("%s", err.msg[0] ? err.msg : vmdkit_errcode_name(r));
        nbdkit_set_error(errno_for(r));
        return -1;
    }
    return 0;
}

static int plug_list_exports(int readonly, int is_tls, struct nbdkit_exports *exports)
{
    (void)is_tls; /* names are listed as nbdkit lists them: use --tls=require to hide them */
    if (!dir_path)
        return nbdkit_use_default_export(exports);
    vmdkit_tree *t;
    if (scan_dir(&t) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; r == 0 && i < t->n_nodes; i++) {
        const vmdkit_tree_node *n = &t->nodes[i];
        if (!servable(n))
            continue;
        char *desc = NULL;
        if (asprintf(
                &desc, "%s, %" PRIu64 " bytes%s%s%s", n->create_type ? n->create_type : "disk",
                n->capacity_bytes, n->parent ? ", a delta of " : "", n->parent ? n->parent->path : "",
                n->n_children && !readonly && !opt_readonly ? ", read-only: the parent of other disks"
                                                            : "") < 0) {
            nbdkit_error("out of memory");
            r = -1;
            break;
        }
        r = nbdkit_add_export(exports, n->path, desc);
        free(desc);
    }
    vmdkit_tree_free(t);
    return r;
}

static const char *plug_default_export(int readonly, int is_tls)
{
    (void)readonly;
    (void)is_tls;
    return dir_path ? NULL : ""; /* dir=DIR has no default: name a disk */
}

/* Is NAME shaped like a relative path inside DIR: no empty, "." or ".."
 * component, no leading "/", no control characters?  (The scan decides
 * whether it is a disk; this keeps hostile names away from the file
 * system altogether.) */
static bool name_plausible(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAX_EXPORT_NAME || name[0] == '/')
        return false;
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    for (const char *c = name; *c;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n + (end != NULL);
        if (end && !*c)
            return false; /* a trailing "/" */
    }
    return true;
}

/* The export NAME of dir=DIR, opened for this connection (shared with the
 * others using it).  NULL after an error reported to nbdkit. */
static served *dir_export_get(const char *name, bool readonly)
{
    if (!name_plausible(name)) {
        nbdkit_error("export \"%s\": not a disk under %s (nbdinfo --list shows them)", name, dir_path);
        nbdkit_set_error(ENOENT);
        return NULL;
    }
    pthread_mutex_lock(&open_disks_lock);
    served *s;
    for (s = open_disks; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            break;
    if (s) {
        s->refs++;
        pthread_mutex_unlock(&open_disks_lock);
        return s;
    }
    /* the first connection: the name must be a disk a scan of DIR finds now */
    vmdkit_tree *t;
    if (scan_dir(&t) < 0) {
        pthread_mutex_unlock(&open_disks_lock);
        return NULL;
    }
    const vmdkit_tree_node *n = NULL;
    for (size_t i = 0; !n && i < t->n_nodes; i++)
        if (strcmp(t->nodes[i].path, name) == 0 && servable(&t->nodes[i]))
            n = &t->nodes[i];
    if (!n) {
        nbdkit_error("export \"%s\": not a disk under %s (nbdinfo --list shows them)", name, dir_path);
        nbdkit_set_error(ENOENT);
    } else {
        char *path = malloc(strlen(dir_path) + strlen(name) + 2);
        if (!path) {
            nbdkit_error("out of memory");
        } else {
            sprintf(path, "%s/%s", dir_path, name);
            /* a parent of other disks is never written: that would change them all */
            bool writable = !opt_readonly && !readonly && n->n_children == 0;
            if (!opt_readonly && !readonly && n->n_children)
                nbdkit_debug("vmdkit: %s is the parent of %zu disk(s): served read-only", name,
                             n->n_children);
            s = served_open(name, path, writable, true);
            free(path);
        }
    }
    vmdkit_tree_free(t);
    if (s) {
        s->refs = 1;
        s->next = open_disks;
        open_disks = s;
    }
    pthread_mutex_unlock(&open_disks_lock);
    return s;
}

static void dir_export_put(served *s)
{
    pthread_mutex_lock(&open_disks_lock);
    if (--s->refs == 0) {
        for (served **p = &open_disks; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
        served_free(s); /* flushes and unlocks the disk for other programs */
    }
    pthread_mutex_unlock(&open_disks_lock);
}

/* ---- life cycle ---- */

static int plug_get_ready(void)
{
    if (dir_path) {
        vmdkit_tree *t;
        if (scan_dir(&t) < 0)
            return -1;
        nbdkit_debug("vmdkit: serving the disks under %s (%zu found now)", dir_path, t->n_nodes);
        vmdkit_tree_free(t);
        return 0;
    }
    file_disk = served_open("", disk_path, !opt_readonly, false);
    return file_disk ? 0 : -1;
}

static void plug_cleanup(void)
{
    served_free(file_disk);
    file_disk = NULL;
    while (open_disks) {
        served *s = open_disks;
        open_disks = s->next;
        served_free(s);
    }
}

static void plug_unload(void)
{
    free(disk_path);
    free(dir_path);
    free(confine_dir);
    disk_path = dir_path = confine_dir = NULL;
    opt_readonly = opt_ignore_cid = opt_allow_external = opt_allow_absolute_parents = false;
}

static void *plug_open_conn(int readonly)
{
    if (dir_path)
        return dir_export_get(nbdkit_export_name(), readonly != 0);
    /* file=DISK serves the disk under any export name; nbdkit itself
     * refuses writes on a read-only connection */
    if (!file_disk) {
        nbdkit_error("the disk is not open");
        return NULL;
    }
    return file_disk;
}

static void plug_close_conn(void *handle)
{
    if (dir_path)
        dir_export_put(handle);
}

/* ---- what the export offers ---- */

static int64_t plug_get_size(void *handle)
{
    served *s = handle;
    uint64_t size = vmdkit_size(s->disk);
    if (size > INT64_MAX) {
        nbdkit_error("%s: virtual size %" PRIu64 " is too large for NBD", s->path, size);
        return -1;
    }
    return (int64_t)size;
}

static int plug_can_write(void *handle) { return ((served *)handle)->writable; }

static int plug_can_trim(void *handle)
{
    served *s = handle;
    return s->writable && s->trim_unit > 0;
}

static int plug_can_cache(void *handle)
{
    (void)handle;
    return NBDKIT_CACHE_NATIVE;
}

static int plug_yes(void *handle)
{
    (void)handle;
    return 1;
}

static int plug_thread_model(void) { return NBDKIT_THREAD_MODEL_PARALLEL; }

/* ---- requests ---- */

static int plug_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    served *s = handle;
    vmdkit_error err = {0};
    (void)flags;
    lock_shared(s);
    int r = vmdkit_pread_r(s->disk, buf, count, offset, &err);
    unlock(s);
    return r < 0 ? fail_with(&err, r) : 0;
}

static int plug_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    served *s = handle;
    (void)flags; /* FUA is emulated by nbdkit with a flush */
    lock_alone(s);
    int r = vmdkit_pwrite(s->disk, buf, count, offset);
    if (r < 0)
        fail(s, r);
    unlock(s);
    return r < 0 ? -1 : 0;
}

/*
 * Write zeros.  Whole grains of a sparse disk become zeroed-grain entries
 * or stay unallocated where no parent shows through; a flat extent gets a
 * hole, or (NBD_CMD_FLAG_NO_HOLE) its range zeroed in place.  A FAST_ZERO
 * request is refused with ENOTSUP, before anything changes, unless no data
 * has to be written: the client then writes the zeros itself if it wants.
 */
static int plug_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    served *s = handle;
    unsigned zflags = (flags & NBDKIT_FLAG_MAY_TRIM ? 0 : VMDKIT_ZERO_KEEP_ALLOCATED) |
                      (flags & NBDKIT_FLAG_FAST_ZERO ? VMDKIT_ZERO_FAST : 0);
    lock_alone(s);
    int r = vmdkit_pzero_ex(s->disk, count, offset, zflags);
    if (r == VMDKIT_EUNSUPPORTED && (zflags & VMDKIT_ZERO_FAST)) {
        nbdkit_debug("vmdkit: fast zero refused: %s", vmdkit_last_error(s->disk)->msg);
        nbdkit_set_error(ENOTSUP);
    } else if (r < 0) {
        fail(s, r);
    }
    unlock(s);
    return r < 0 ? -1 : 0;
}

/* Trim is a hint: the whole units of the range (see trim_unit_of) are
 * dropped where that needs no data writes; the rest is left as it is. */
static int plug_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    served *s = handle;
    (void)flags;
    uint64_t u = s->trim_unit;
    if (offset + count > vmdkit_size(s->disk)) { /* nbdkit never asks, but: not even a part */
        nbdkit_error("%s: trim at %" PRIu64 "+%" PRIu32 " lies outside the disk", s->path, offset,
                     count);
        nbdkit_set_error(EINVAL);
        return -1;
    }
    uint64_t start = (offset + u - 1) / u * u, end = (offset + count) / u * u;
    if (start >= end)
        return 0;
    lock_alone(s);
    int r = vmdkit_pzero_ex(s->disk, (size_t)(end - start), start, VMDKIT_ZERO_FAST);
    if (r == VMDKIT_EUNSUPPORTED) {
        nbdkit_debug("vmdkit: trim left as it is: %s", vmdkit_last_error(s->disk)->msg);
        r = 0;
    } else if (r < 0) {
        fail(s, r);
    }
    unlock(s);
    return r < 0 ? -1 : 0;
}

static int plug_flush(void *handle, uint32_t flags)
{
    served *s = handle;
    (void)flags;
    if (!s->writable)
        return 0; /* nothing was written */
    lock_alone(s);
    int r = vmdkit_flush(s->disk);
    if (r < 0)
        fail(s, r);
    unlock(s);
    return r < 0 ? -1 : 0;
}

/*
 * Block status: stored data is "data"; a run that reads as zeros without
 * stored data (zeroed grain, ZERO extent, unallocated in every link) is a
 * hole that reads as zeros, which clients such as nbdcopy skip.
 */
static int plug_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
                        struct nbdkit_extents *extents)
{
    served *s = handle;
    vmdkit_error err = {0};
    uint64_t end = offset + count;
    int r = 0;
    lock_shared(s);
    for (uint64_t off = offset; off < end;) {
        vmdkit_block_status st;
        if ((r = vmdkit_block_status_r(s->disk, end - off, off, &st, &err)) < 0)
            break;
        if (st.length == 0) {
            snprintf(err.msg, sizeof err.msg,
                     "%s: block status at offset %" PRIu64 " reported an empty run", s->path, off);
            r = VMDKIT_EIO;
            break;
        }
        uint32_t type = st.alloc == VMDKIT_ALLOC_DATA ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
        if (nbdkit_add_extent(extents, off, st.length, type) == -1) {
            unlock(s);
            return -1; /* nbdkit reported it */
        }
        off += st.length;
        if (flags & NBDKIT_FLAG_REQ_ONE)
            break;
    }
    unlock(s);
    return r < 0 ? fail_with(&err, r) : 0;
}

/* Cache (prefetch): grain tables and grains of the range, so that
 * nbdkit's readahead filter works (it needs PARALLEL and a native cache). */
static int plug_cache(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    served *s = handle;
    vmdkit_error err = {0};
    (void)flags;
    lock_shared(s);
    int r = vmdkit_prefetch(s->disk, count, offset, &err);
    unlock(s);
    return r < 0 ? fail_with(&err, r) : 0;
}

static struct nbdkit_plugin plugin = {
    .name = "vmdkit",
    .longname = "nbdkit VMware VMDK plugin (vmdkit)",
    .version = VMDKIT_VERSION,
    .description = "Serve VMware VMDK disks, with their parent chains, over NBD.",
    .config = plug_config,
    .config_complete = plug_config_complete,
    .config_help =
        "file=DISK                     the VMDK descriptor or sparse file to serve\n"
        "dir=DIR                       serve every disk under DIR by its relative path\n"
        "readonly=true                 open the disks read-only\n"
        "confine=DIR                   refuse a disk whose files or parents lie outside DIR\n"
        "ignore-cid=true               accept a parent whose CID does not match (readonly only)\n"
        "allow-external-extents=true   follow extent files outside the descriptor's folder\n"
        "allow-absolute-parents=true   follow absolute parent hints (VMware's linked clones)",
    .magic_config_key = "file",
    .thread_model = plug_thread_model,
    .get_ready = plug_get_ready,
    .cleanup = plug_cleanup,
    .unload = plug_unload,
    .list_exports = plug_list_exports,
    .default_export = plug_default_export,
    .open = plug_open_conn,
    .close = plug_close_conn,
    .get_size = plug_get_size,
    .can_write = plug_can_write,
    .can_flush = plug_yes,
    .can_trim = plug_can_trim,
    .can_zero = plug_can_write,
    .can_fast_zero = plug_yes,
    .can_extents = plug_yes,
    .can_cache = plug_can_cache,
    .can_multi_conn = plug_yes,
    .pread = plug_pread,
    .pwrite = plug_pwrite,
    .zero = plug_zero,
    .trim = plug_trim,
    .flush = plug_flush,
    .extents = plug_extents,
    .cache = plug_cache,
};

struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)
