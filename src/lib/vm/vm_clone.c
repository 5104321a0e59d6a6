/* vm_clone.c - linked and full clones of a whole virtual machine.
 *
 * Crash safety.  Linked: (1) the source is frozen (new deltas, then its
 * .vmx saved: see vk_vm_freeze); (2) the clone is built in a temporary
 * folder beside the destination; (3) that folder is renamed to the
 * destination.  An interruption in (2) leaves a ".NAME.vmdkit-tmp-XXXXXX"
 * folder that nothing names, which the next clone to NAME removes (its
 * owner's lock is gone: temp_folder.h); the source, frozen, works as
 * before.  Between (1) and (2) the source's .vmsd is saved once, when
 * there is something to record: the freeze as a snapshot entry (its disks
 * exist and are frozen by then) and the clone under that entry (before the
 * clone exists: a record of a clone not there yet only makes VMware and
 * vmdkit refuse to delete the snapshot, where the other order could let
 * them delete what a finished clone reads).  A clone from an existing
 * snapshot skips (1): nothing in the source's folder is written unless the
 * clone is registered.  A failure or a cancellation (not a crash) undoes
 * (2), puts the .vmsd back as it was, then undoes (1).
 * Full: the same without (1); each disk is built by vk_clone_disk, itself
 * crash-safe, inside the folder.  The folder stays owner-writable until it
 * is filled and takes the mode of the source's folder just before (3).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clone_disk.h"
#include "copy_tree.h"
#include "history.h"
#include "library.h"
#include "path.h"
#include "temp_folder.h"
#include "vm.h"

/* ---- names ---- */

/* NAME from the options or from DST's last component ("Clone.vmwarevm"
 * gives "Clone"); it becomes file names and must be a plain one. */
static char *clone_name(const char *dst_abs, const char *given, vk_err *e)
{
    const char *base = given ? given : vk_path_basename(dst_abs);
    size_t n = strlen(base);
    if (!given && n > 9 && strcasecmp(base + n - 9, ".vmwarevm") == 0)
        n -= 9;
    if (n == 0) {
        vk_fail(e, VMDKIT_EINVAL, "%s: names no folder for the clone", dst_abs);
        return NULL;
    }
    bool ok = n <= 200 && !(n == 1 && base[0] == '.') && !(n == 2 && base[0] == '.' && base[1] == '.');
    for (size_t i = 0; ok && i < n; i++)
        ok = base[i] != '/' && base[i] != '"' && (unsigned char)base[i] >= 0x20 && base[i] != 0x7f;
    if (!ok) {
        vk_fail(e, VMDKIT_EINVAL,
                "%s: name \"%.*s\": must be 1 to 200 characters without '/', '\"' or control "
                "characters, and not \".\" or \"..\"",
                dst_abs, (int)(n > 200 ? 200 : n), base);
        return NULL;
    }
    char *name = vk_malloc(n + 1, e);
    if (name) {
        memcpy(name, base, n);
        name[n] = 0;
    }
    return name;
}

/* File name of the clone's disk number I (0-based): NAME.vmdk, NAME-2.vmdk ... */
static char *disk_name(const char *name, size_t i, vk_err *e)
{
    size_t n = strlen(name) + 32;
    char *s = vk_malloc(n, e);
    if (s) {
        if (i == 0)
            snprintf(s, n, "%s.vmdk", name);
        else
            snprintf(s, n, "%s-%zu.vmdk", name, i + 1);
    }
    return s;
}

/* VMware's name for a linked clone's disk made from the disk at PARENT:
 * its name without ".vmdk" and without a "-NNNNNN" snapshot number, then
 * "-clK.vmdk" (disk-000003.vmdk -> disk-cl1.vmdk), K the first number no
 * earlier disk of the clone (TAKEN[0..N)) has. */
static char *vmware_disk_name(const char *parent, char *const *taken, size_t n, vk_err *e)
{
    const char *base = vk_path_basename(parent);
    size_t len = vk_vm_disk_stem(base);
    size_t cap = len + 32;
    char *s = vk_malloc(cap, e);
    for (unsigned k = 1; s; k++) {
        snprintf(s, cap, "%.*s-cl%u.vmdk", (int)len, base, k);
        bool used = false;
        for (size_t i = 0; i < n && !used; i++)
            used = strcasecmp(taken[i], s) == 0;
        if (!used)
            break;
    }
    return s;
}

/* ---- full copies ---- */

/* Progress over all disks of a full clone. */
struct multi_progress {
    vmdkit_progress_fn fn;
    void *opaque;
    uint64_t done_before;
    uint64_t total;
    uint64_t disk_total; /* the size of the disk being copied */
};

static int multi_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
    struct multi_progress *m = opaque;
    m->disk_total = total;
    return m->fn(m->opaque, m->done_before + done, m->total);
}

/* For the side files: only asks whether to stop. */
static int multi_cancel_cb(void *opaque, uint64_t done, uint64_t total)
{
    (void)done;
    (void)total;
    struct multi_progress *m = opaque;
    return m->fn(m->opaque, m->done_before, m->total);
}

/* Flatten the chain of SRC into the new disk DST (in the temporary
 * folder), the full clone vmdkit_clone_disk makes for PLACED_AS. */
static int flatten(const char *src, const char *dst, const char *placed_as, int type,
                   struct multi_progress *mp, vk_err *e)
{
    vmdkit_clone_disk_opts o = {
        .struct_size = sizeof o, .type = type, .open_flags = VK_OPEN_CHAIN_OF_USER};
    if (mp->fn) {
        o.progress = multi_progress_cb;
        o.progress_opaque = mp;
    }
    mp->disk_total = 0;
    int r = vk_clone_disk(src, dst, placed_as, &o, e);
    mp->done_before += mp->disk_total;
    return r;
}

/* ---- the clone's .vmx and side files ---- */

/* A growing list of warnings for the result. */
struct warnings {
    char **v;
    size_t n, cap;
};

static int warn(struct warnings *w, vk_err *e, const char *fmt, ...) VK_PRINTF(3, 4);
static int warn(struct warnings *w, vk_err *e, const char *fmt, ...)
{
    char buf[VMDKIT_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    int r = vk_grow((void **)&w->v, &w->cap, w->n, sizeof *w->v, e);
    if (r)
        return r;
    if (!(w->v[w->n] = vk_strdup(buf, e)))
        return VMDKIT_ENOMEM;
    w->n++;
    return 0;
}

/* Is the file open at FD inside the folder whose real path is DIR?  What
 * was opened is checked, not the name: /proc/self/fd names the file the
 * descriptor refers to, whatever symbolic links the name went through. */
static bool fd_inside(int fd, const char *dir)
{
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n <= 0)
        return false;
    real[n] = 0;
    return vk_path_inside(real, dir);
}

/* Copy the side file NAME (nvram, vmxf) of the machine in SRC_DIR to DST.
 * A side file follows the extent path rule: relative, no "..", a regular
 * file inside the machine's folder, not reached through a symbolic link;
 * any other is not copied and a warning says so (a downloaded machine must
 * not make a clone copy ~/.ssh/id_rsa into a folder the user shares). */
static int copy_side_file(const char *src_dir, const char *key, const char *name, const char *dst,
                          bool named, vk_copy_progress *pg, struct warnings *w, vk_err *e)
{
    bool dotdot = strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 || strstr(name, "/../") ||
                  (strlen(name) >= 3 && strcmp(name + strlen(name) - 3, "/..") == 0);
    if (name[0] == '/' || dotdot)
        return warn(w, e, "%s = \"%s\" lies outside the machine's folder: not copied", key, name);
    char *path = vk_path_join(src_dir, name, e);
    char *rdir = realpath(src_dir, NULL);
    if (!path || !rdir) {
        free(path);
        free(rdir);
        return path ? vk_fail_errno(e, errno, "%s: folder", src_dir) : VMDKIT_ENOMEM;
    }
    int r = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 && errno == ENOENT)
        r = named ? warn(w, e, "%s = \"%s\": not found, not copied", key, name) : 0;
    else if (fd < 0 && errno == ELOOP)
        r = warn(w, e, "%s = \"%s\" is a symbolic link: not copied", key, name);
    else if (fd < 0)
        r = vk_fail_errno(e, errno, "%s: open", path);
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        r = warn(w, e, "%s = \"%s\" is not a regular file: not copied", key, name);
    else if (!fd_inside(fd, rdir))
        r = warn(w, e, "%s = \"%s\" lies outside the machine's folder: not copied", key, name);
    else
        r = vk_copy_opened(fd, path, dst, pg, e);
    if (fd >= 0)
        close(fd);
    free(path);
    free(rdir);
    return r;
}

/* CD-ROM, floppy, serial and parallel files named relative to the source's
 * folder: the clone's .vmx names the same files from its own folder, so
 * that the clone still finds its install ISO. */
static int rewrite_backings(vk_vmx *v, const char *src_dir, const char *dst, vk_err *e)
{
    char **keys = NULL, **values = NULL;
    size_t n = 0, cap_k = 0, cap_v = 0;
    size_t pos = 0;
    const char *key, *value;
    int r = 0;
    while (!r && vk_vmx_next(v, &pos, &key, &value)) {
        if (!value[0] || value[0] == '/' || !vk_vmx_is_backing(v, key, value))
            continue;
        char *abs = vk_path_join(src_dir, value, e);
        char *full = abs ? vk_path_absolute(abs, e) : NULL;
        free(abs);
        struct stat st;
        if (!full) {
            r = VMDKIT_ENOMEM;
            break;
        }
        if (stat(full, &st) != 0) {
            free(full);
            continue; /* nothing there to keep reaching */
        }
        char *rel = vk_path_relative(dst, full, e);
        free(full);
        if (!rel || (r = vk_grow((void **)&keys, &cap_k, n, sizeof *keys, e)) ||
            (r = vk_grow((void **)&values, &cap_v, n, sizeof *values, e))) {
            free(rel);
            r = r ? r : VMDKIT_ENOMEM;
            break;
        }
        if (!(keys[n] = vk_strdup(key, e))) {
            free(rel);
            r = VMDKIT_ENOMEM;
            break;
        }
        values[n++] = rel;
    }
    /* the edits after the walk: setting a value changes the lines walked */
    for (size_t i = 0; !r && i < n; i++)
        r = vk_vmx_set(v, keys[i], values[i], e);
    vmdkit_paths_free(keys, n);
    vmdkit_paths_free(values, n);
    return r;
}

/* Warn about what a clone shares with its source that VMware does not
 * renew: a static MAC address. */
static int warn_shared_identity(const vk_vmx *v, struct warnings *w, vk_err *e)
{
    size_t pos = 0;
    const char *key, *value;
    int r = 0;
    while (!r && vk_vmx_next(v, &pos, &key, &value)) {
        size_t k = strlen(key);
        if (strncasecmp(key, "ethernet", 8) != 0 || k < 12 ||
            strcasecmp(key + k - 12, ".addressType") != 0 || strcasecmp(value, "static") != 0)
            continue;
        char akey[64];
        snprintf(akey, sizeof akey, "%.*s.address", (int)(k - 12), key);
        const char *mac = vk_vmx_get(v, akey);
        r = warn(w, e,
                 "%s = \"%s\" is static: the clone has its source's MAC address; change one before both "
                 "run on one network",
                 akey, mac ? mac : "");
    }
    return r;
}

/* The linked clone's .vmsd, as Workstation writes it for its own linked
 * clones: where it came from (cloneOf0, the source's .vmx) and its own
 * deltas (sentinelN), so that VMware and tools such as vagrant tell the
 * clone's disks from its parent's. */
static int write_clone_vmsd(const char *path, const char *src_vmx, char *const *disk_names, size_t n,
                            vk_err *e)
{
    vk_vmx *v;
    int r = vk_vmx_parse(path, "", 0, &v, e);
    if (r)
        return r;
    char key[32], num[32];
    r = vk_vmx_set(v, ".encoding", "UTF-8", e);
    if (!r)
        r = vk_vmx_set(v, "cloneOf0", src_vmx, e);
    if (!r)
        r = vk_vmx_set(v, "numCloneOf", "1", e);
    for (size_t i = 0; !r && i < n; i++) {
        snprintf(key, sizeof key, "sentinel%zu", i);
        r = vk_vmx_set(v, key, disk_names[i], e);
    }
    snprintf(num, sizeof num, "%zu", n);
    if (!r)
        r = vk_vmx_set(v, "numSentinels", num, e);
    if (!r)
        r = vk_vmx_save(v, e);
    vk_vmx_free(v);
    return r;
}

/* Write the clone's .vmx at TMP/NAME.vmx from the source's, and copy its
 * nvram and vmxf beside it.  DST is where TMP will be renamed to. */
static int write_config(const char *src_vmx, const char *tmp, const char *dst, const char *name,
                        const char *const *slots, const char *const *files, size_t n, bool linked,
                        vk_copy_progress *pg, struct warnings *w, vk_err *e)
{
    vk_vmx *v;
    int r = vk_vmx_load(src_vmx, &v, e);
    if (r)
        return r;
    char *src_dir = vk_path_dirname(src_vmx, e);
    char *src_abs = vk_path_absolute(src_vmx, e);
    size_t len = strlen(tmp) + strlen(name) + 16;
    char *out = vk_malloc(len, e);
    if (!src_dir || !src_abs || !out) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    /* side files: nvram (default <vmx name>.nvram) and the vmxf, when present */
    const char *nv = vk_vmx_get(v, "nvram");
    bool nv_named = nv && *nv;
    char def_nv[4096];
    if (!nv_named) {
        const char *b = vk_path_basename(src_vmx);
        snprintf(def_nv, sizeof def_nv, "%.*s.nvram", (int)(strlen(b) - 4), b);
        nv = def_nv;
    }
    snprintf(out, len, "%s/%s.nvram", tmp, name);
    r = copy_side_file(src_dir, "nvram", nv, out, nv_named, pg, w, e);
    const char *xf = vk_vmx_get(v, "extendedConfigFile");
    snprintf(out, len, "%s/%s.vmxf", tmp, name);
    if (!r && xf && *xf)
        r = copy_side_file(src_dir, "extendedConfigFile", xf, out, true, pg, w, e);
    if (!r)
        r = warn_shared_identity(v, w, e);
    if (!r)
        r = rewrite_backings(v, src_dir, dst, e);
    vk_clone_config c = {
        .name = name,
        .slots = slots,
        .files = files,
        .n = n,
        .clone_of = linked ? src_abs : NULL,
    };
    if (!r)
        r = vk_vm_clone_config(v, &c, e);
    char *text = NULL;
    size_t tlen = 0;
    if (!r)
        r = vk_vmx_serialize(v, &text, &tlen, e);
    snprintf(out, len, "%s/%s.vmx", tmp, name);
    if (!r)
        r = vk_write_file_atomic(out, text, tlen, e);
    free(text);
    struct stat st;
    if (!r && stat(src_vmx, &st) == 0) /* Fusion keeps .vmx files executable */
        (void)chmod(out, st.st_mode & 0777);
out:
    free(out);
    free(src_abs);
    free(src_dir);
    vk_vmx_free(v);
    return r;
}

void vmdkit_vm_clone_result_free(vmdkit_vm_clone_result *res)
{
    if (!res)
        return;
    free(res->vmx);
    vmdkit_paths_free(res->disks, res->n_disks);
    vmdkit_paths_free(res->source_deltas, res->n_source_deltas);
    vmdkit_paths_free(res->warnings, res->n_warnings);
    memset(res, 0, sizeof *res);
}

/* Fill RES with the paths of the finished clone. */
static int fill_result(vmdkit_vm_clone_result *res, const char *dst, const char *name,
                       char *const *disk_names, size_t n, const vk_frozen *f, vk_err *e)
{
    size_t len = strlen(dst) + strlen(name) + 8;
    if (!(res->vmx = vk_malloc(len, e)) || !(res->disks = vk_calloc(n + 1, sizeof *res->disks, e)))
        return VMDKIT_ENOMEM;
    snprintf(res->vmx, len, "%s/%s.vmx", dst, name);
    for (size_t i = 0; i < n; i++, res->n_disks++)
        if (!(res->disks[i] = vk_path_join(dst, disk_names[i], e)))
            return VMDKIT_ENOMEM;
    if (f && f->n) {
        if (!(res->source_deltas = vk_calloc(f->n, sizeof *res->source_deltas, e)))
            return VMDKIT_ENOMEM;
        for (size_t i = 0; i < f->n; i++)
            if (!f->reused[i] &&
                !(res->source_deltas[res->n_source_deltas++] = vk_strdup(f->new_paths[i], e)))
                return VMDKIT_ENOMEM;
    }
    return 0;
}

/* One clone in the making: what each step of vmdkit_vm_clone finds and
 * leaves for the next. */
struct vm_clone {
    const vmdkit_vm_clone_opts *opts;
    char *vmx;                 /* the source's .vmx */
    char *dst, *parent, *name; /* DST_VM absolute, its folder, the clone's name */
    vk_vmx *v;
    vk_vm_disk *disks;
    size_t n;
    const char **slots, **sources; /* per disk: its slot, the disk it is made from */
    char **disk_names;
    vk_frozen f; /* linked: the source's freeze */
    bool frozen;
    vk_history *h;     /* linked, from a snapshot or recorded: the source's history */
    char **snap_disks; /* from a snapshot: per disk, the disk it froze */
    char *record_name; /* the recorded freeze's displayName */
    int64_t record_time;
    uint32_t uid;      /* the snapshot the clone is made from (from a snapshot, or
                          recorded) */
    char *vmsd_before; /* the source's .vmsd before it was saved, for undo */
    size_t vmsd_before_len;
    bool vmsd_existed, vmsd_saved;
    struct multi_progress mp;
    vk_temp_folder tf;
    struct warnings warns;
};

/* Step 1: DST_VM is new, its folder exists and lies outside the source's. */
static int check_destination(struct vm_clone *c, const char *src_vm, const char *dst_vm, vk_err *e)
{
    int r = vk_vm_resolve(src_vm, &c->vmx, e);
    if (r)
        return r;
    if (!(c->dst = vk_path_absolute(dst_vm, e)) || !(c->parent = vk_path_dirname(c->dst, e)))
        return VMDKIT_ENOMEM;
    if (!(c->name = clone_name(c->dst, c->opts->name, e)))
        return e->code;
    struct stat st;
    if (lstat(c->dst, &st) == 0)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", c->dst);
    if (stat(c->parent, &st) != 0 || !S_ISDIR(st.st_mode))
        return vk_fail(e, VMDKIT_ENOENT, "%s: the folder to hold the clone does not exist", c->parent);
    /* a clone inside its source's folder would be copied, moved and
     * deleted with the source */
    char *vmx_dir = vk_path_dirname(c->vmx, e);
    char *src_real = vmx_dir ? realpath(vmx_dir, NULL) : NULL;
    char *parent_real = realpath(c->parent, NULL);
    bool inside = src_real && parent_real &&
                  (strcmp(parent_real, src_real) == 0 || vk_path_inside(parent_real, src_real));
    free(vmx_dir);
    free(src_real);
    free(parent_real);
    if (inside)
        return vk_fail(e, VMDKIT_EINVAL, "%s: lies inside the folder of the machine it would clone (%s)",
                       c->dst, c->vmx);
    return 0;
}

/* The options that go together: a snapshot, records and registration
 * are for linked clones. */
static int check_options(const vmdkit_vm_clone_opts *o, vk_err *e)
{
    unsigned known = VMDKIT_VM_CLONE_NO_RECORD | VMDKIT_VM_CLONE_REGISTER | VMDKIT_VM_CLONE_VMWARE_NAMES;
    if (o->flags & ~known)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_vm_clone: flags: unknown bits 0x%x", o->flags & ~known);
    if (!o->linked && (o->snapshot || o->flags))
        return vk_fail(e, VMDKIT_EINVAL,
                       "vmdkit_vm_clone: a snapshot, no_record, register and vmware_names "
                       "apply to linked clones only");
    if (o->snapshot && (o->flags & VMDKIT_VM_CLONE_NO_RECORD))
        return vk_fail(e, VMDKIT_EINVAL,
                       "vmdkit_vm_clone: no_record applies without a snapshot only (a clone "
                       "from a snapshot records no freeze)");
    if ((o->flags & VMDKIT_VM_CLONE_NO_RECORD) && (o->flags & VMDKIT_VM_CLONE_REGISTER))
        return vk_fail(e, VMDKIT_EINVAL,
                       "vmdkit_vm_clone: register needs a recorded snapshot: not with no_record");
    return 0;
}

/* Step 2: the source machine, shut down unless nothing of it is written
 * (a clone from a snapshot, not registered), and a name its .vmx can hold. */
static int load_source(struct vm_clone *c, vk_err *e)
{
    const vmdkit_vm_clone_opts *o = c->opts;
    int r = vk_vm_load(c->vmx, &c->v, &c->disks, &c->n, e);
    bool writes_source = !o->linked || !o->snapshot || (o->flags & VMDKIT_VM_CLONE_REGISTER);
    if (!r && writes_source)
        r = vk_vm_check_stopped(c->vmx, c->v, e);
    /* the name goes into the clone's .vmx, in the source's .encoding: refuse
     * one it cannot hold before anything is written */
    if (!r)
        r = vk_vmx_encodable(c->v, "displayName", c->name, e);
    return r;
}

/* Step 3, from a snapshot: per slot of the source, the disk the snapshot
 * froze for it. */
static int plan_from_snapshot(struct vm_clone *c, vk_err *e)
{
    int r = vk_history_open(c->vmx, false, &c->h, e);
    const vk_vmsd_snap *x = NULL;
    if (!r)
        r = vk_history_find(c->h, c->opts->snapshot, &x, e);
    if (r)
        return r;
    size_t *map = vk_calloc(x->n_disks + 1, sizeof *map, e);
    if (!map || !(c->snap_disks = vk_calloc(c->n + 1, sizeof *c->snap_disks, e))) {
        free(map);
        return VMDKIT_ENOMEM;
    }
    /* the machine H read must be the one loaded in step 2 */
    if (c->h->n_disks != c->n)
        r = vk_fail(e, VMDKIT_EIO, "%s: changed while being cloned", c->vmx);
    if (!r)
        r = vk_history_match_slots(c->h, x, map, e);
    for (size_t k = 0; !r && k < x->n_disks; k++) {
        size_t i = SIZE_MAX;
        for (size_t j = 0; j < c->n && i == SIZE_MAX; j++)
            if (strcasecmp(c->disks[j].slot, c->h->disks[map[k]].slot) == 0)
                i = j;
        if (i == SIZE_MAX) {
            r = vk_fail(e, VMDKIT_EIO, "%s: changed while being cloned", c->vmx);
            break;
        }
        if (!(c->snap_disks[i] = vk_history_path(c->h, x->disks[k].file, e))) {
            r = VMDKIT_ENOMEM;
            break;
        }
        /* a snapshot's disk is frozen: one the machine still writes to is a
         * .vmsd that disagrees with the .vmx, and no parent for a clone */
        for (size_t j = 0; !r && j < c->n; j++)
            if (vk_same_file(c->snap_disks[i], c->disks[j].path))
                r = vk_fail(
                    e, VMDKIT_EINVAL,
                    "%s: snapshot %u: disk%lu.fileName \"%s\" is the disk %s still writes to, not a "
                    "frozen one",
                    c->h->vmsd_path, x->uid, x->disks[k].index, x->disks[k].file, c->disks[j].slot);
    }
    if (!r)
        c->uid = x->uid;
    free(map);
    return r;
}

/* Step 3, without a snapshot: freeze the source (and, unless told not
 * to, check first that the snapshot recording it can be named). */
static int plan_freeze(struct vm_clone *c, vk_err *e)
{
    int r = 0;
    if (!(c->opts->flags & VMDKIT_VM_CLONE_NO_RECORD)) {
        char when[32] = "";
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        size_t k = strlen(c->name) + strlen(when) + 16;
        if (!(c->record_name = vk_malloc(k, e)))
            return VMDKIT_ENOMEM;
        snprintf(c->record_name, k, "Linked clone %s %s", c->name, when);
        c->record_time = vk_snapshot_now_us();
        /* what the .vmsd cannot hold is refused before anything is written */
        if ((r = vk_history_open(c->vmx, true, &c->h, e)) ||
            (r = vk_vmx_encodable(c->h->vmsd->file, "displayName", c->record_name, e)))
            return r;
    }
    /* the links the source wrote to become the clone's read-only parents;
     * the source's new deltas lie next to their parents: their hints
     * stay relative whatever the clone's are */
    if ((r = vk_vm_freeze(c->vmx, false, true, &c->f, e)))
        return r;
    c->frozen = true;
    if (c->f.n != c->n)
        return vk_fail(e, VMDKIT_EIO, "%s: changed while being cloned", c->vmx);
    return 0;
}

/* Is the freeze F one that changed nothing, on the disks the current
 * snapshot of H's machine froze already (an earlier recorded freeze
 * nothing wrote since)?  Then it is that snapshot. */
static const vk_vmsd_snap *freeze_is_current(const vk_history *h, const vk_frozen *f)
{
    const vk_vmsd *s = h->vmsd;
    const vk_vmsd_snap *x = s->has_current ? vk_vmsd_find(s, s->current) : NULL;
    if (!x || x->n_disks != f->n)
        return NULL;
    for (size_t i = 0; i < f->n; i++) {
        if (!f->reused[i])
            return NULL;
        bool found = false;
        for (size_t k = 0; k < x->n_disks && !found; k++) {
            const vk_vmsd_disk *d = &x->disks[k];
            char *p = d->node && d->file && strcasecmp(d->node, f->slots[i]) == 0
                          ? vk_history_path(h, d->file, NULL)
                          : NULL;
            found = p && vk_same_file(p, f->old_paths[i]);
            free(p);
        }
        if (!found)
            return NULL;
    }
    return x;
}

/* Step 3b, linked: the source's .vmsd records the freeze as a snapshot
 * and, when asked, the clone under the snapshot it is made from; saved
 * once, before the clone is built (see the top of the file). */
static int record_in_source(struct vm_clone *c, vk_err *e)
{
    const vmdkit_vm_clone_opts *o = c->opts;
    bool record = o->linked && !o->snapshot && !(o->flags & VMDKIT_VM_CLONE_NO_RECORD);
    bool reg = o->linked && (o->flags & VMDKIT_VM_CLONE_REGISTER);
    if (!record && !reg)
        return 0;
    vk_vmsd *s = c->h->vmsd;
    int r = vk_vmx_serialize(s->file, &c->vmsd_before, &c->vmsd_before_len, e);
    if (r)
        return r;
    c->vmsd_existed = s->existed;
    bool changed = false;
    if (record) {
        const vk_vmsd_snap *x = freeze_is_current(c->h, &c->f);
        if (x) {
            c->uid = x->uid;
        } else {
            if ((r = vk_snapshot_record(c->h, &c->f, c->record_name, NULL, c->record_time, &c->uid, e)))
                return r;
            changed = true;
        }
    }
    if (reg) {
        size_t k = strlen(c->dst) + strlen(c->name) + 8;
        char *vmx = vk_malloc(k, e);
        if (!vmx)
            return VMDKIT_ENOMEM;
        snprintf(vmx, k, "%s/%s.vmx", c->dst, c->name);
        const vk_vmsd_snap *x = vk_vmsd_find(s, c->uid);
        size_t before = x ? x->n_clones : 0;
        r = vk_vmsd_add_clone(s, c->uid, vmx, e);
        x = vk_vmsd_find(s, c->uid);
        changed = changed || (x && x->n_clones != before);
        free(vmx);
        if (r)
            return r;
    }
    if (!changed)
        return 0;
    if ((r = vk_vmsd_save(s, e)))
        return r;
    c->vmsd_saved = true;
    return 0;
}

/* Put the source's .vmsd back as it was before record_in_source. */
static void restore_source_vmsd(struct vm_clone *c)
{
    vk_err ignore;
    if (c->vmsd_existed)
        (void)vk_write_file_atomic(c->h->vmsd_path, c->vmsd_before, c->vmsd_before_len, &ignore);
    else
        (void)unlink(c->h->vmsd_path);
}

/* Step 3: per disk, the slot, the disk to make the clone's from (linked:
 * the link the source wrote to, frozen now) and the clone's file name;
 * a full clone's progress total. */
static int plan_disks(struct vm_clone *c, vk_err *e)
{
    size_t n = c->n;
    c->slots = vk_calloc(n + 1, sizeof *c->slots, e);
    c->sources = vk_calloc(n + 1, sizeof *c->sources, e);
    c->disk_names = vk_calloc(n + 1, sizeof *c->disk_names, e);
    if (!c->slots || !c->sources || !c->disk_names)
        return VMDKIT_ENOMEM;
    c->mp = (struct multi_progress){.fn = c->opts->progress, .opaque = c->opts->progress_opaque};
    bool linked = c->opts->linked, snap = linked && c->opts->snapshot;
    int r = 0;
    if (snap)
        r = plan_from_snapshot(c, e);
    else if (linked)
        r = plan_freeze(c, e);
    if (r)
        return r;
    for (size_t i = 0; i < n; i++) {
        c->slots[i] = linked && !snap ? c->f.slots[i] : c->disks[i].slot;
        c->sources[i] = snap ? c->snap_disks[i] : linked ? c->f.old_paths[i] : c->disks[i].path;
        c->disk_names[i] = c->opts->flags & VMDKIT_VM_CLONE_VMWARE_NAMES
                               ? vmware_disk_name(c->sources[i], c->disk_names, i, e)
                               : disk_name(c->name, i, e);
        if (!c->disk_names[i])
            return VMDKIT_ENOMEM;
        if (!linked) {
            vmdkit_disk *d;
            r = vmdkit_open(c->sources[i], VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY, &d, e);
            if (r) {
                vk_err_prefix(e, "%s", c->slots[i]);
                return r;
            }
            c->mp.total += vmdkit_size(d);
            vmdkit_close(d, NULL);
        }
    }
    return 0;
}

/* Step 4: the clone's disks, in a hidden folder beside DST_VM. */
static int build_disks(struct vm_clone *c, vk_err *e)
{
    /* what a killed clone to this name left is nobody's now */
    (void)vk_remove_stale_temps(c->parent, c->name, NULL, NULL);
    int r = vk_temp_folder_make(c->parent, c->name, &c->tf, e);
    for (size_t i = 0; !r && i < c->n; i++) {
        char *p = vk_path_join(c->tf.path, c->disk_names[i], e);
        char *placed = p ? vk_path_join(c->dst, c->disk_names[i], e) : NULL;
        if (!placed)
            r = VMDKIT_ENOMEM;
        /* the temporary folder is a sibling of DST: a relative hint made
         * from it is the same as one made from DST */
        else if (c->opts->linked)
            r = vmdkit_create_delta(c->sources[i], p,
                                    c->opts->absolute_hint ||
                                            (c->opts->flags & VMDKIT_VM_CLONE_VMWARE_NAMES)
                                        ? VMDKIT_DELTA_ABSOLUTE_HINT
                                        : 0,
                                    e);
        else
            r = flatten(c->sources[i], p, placed, c->opts->type, &c->mp, e);
        free(p);
        free(placed);
    }
    return r;
}

/* Step 5: the clone's .vmx and side files, and a linked clone's .vmsd. */
static int write_machine_files(struct vm_clone *c, vk_err *e)
{
    vk_copy_progress side_pg = {.fn = c->mp.fn ? multi_cancel_cb : NULL, .opaque = &c->mp};
    int r =
        write_config(c->vmx, c->tf.path, c->dst, c->name, c->slots, (const char *const *)c->disk_names,
                     c->n, c->opts->linked, &side_pg, &c->warns, e);
    if (r || !c->opts->linked)
        return r;
    char *abs = vk_path_absolute(c->vmx, e);
    size_t k = strlen(c->tf.path) + strlen(c->name) + 8;
    char *sd = abs ? vk_malloc(k, e) : NULL;
    if (!sd) {
        r = VMDKIT_ENOMEM;
    } else {
        snprintf(sd, k, "%s/%s.vmsd", c->tf.path, c->name);
        r = write_clone_vmsd(sd, abs, c->disk_names, c->n, e);
    }
    free(sd);
    free(abs);
    return r;
}

/* Step 6: the filled folder becomes DST_VM (durably); from here on the
 * clone exists. */
static int publish(struct vm_clone *c, vk_err *e)
{
    /* the clone's folder gets the permissions of the source's, once it is
     * filled: a read-only template gives a read-only folder, not a failure */
    struct stat st;
    char *src_dir = vk_path_dirname(c->vmx, e);
    if (src_dir && stat(src_dir, &st) == 0)
        (void)chmod(c->tf.path, st.st_mode & 07777);
    free(src_dir);
    int r = vk_fsync_dir(c->tf.path, e);
    if (!r)
        r = vk_rename_noreplace(c->tf.path, c->dst, e);
    if (r)
        return r;
    vk_temp_folder_release(&c->tf);
    c->frozen = false;     /* the clone exists: its parents stay frozen */
    c->vmsd_saved = false; /* and recorded */
    return vk_fsync_dir(c->parent, e);
}

/* Step 7: what was made, for the caller. */
static int report(struct vm_clone *c, vmdkit_vm_clone_result *res, vk_err *e)
{
    int r = fill_result(res, c->dst, c->name, c->disk_names, c->n, c->opts->linked ? &c->f : NULL, e);
    if (r) {
        vmdkit_vm_clone_result_free(res); /* the clone exists; only the report failed */
        return r;
    }
    res->warnings = c->warns.v;
    res->n_warnings = c->warns.n;
    memset(&c->warns, 0, sizeof c->warns);
    return 0;
}

/* After a failure: no partial clone, and the source back on its disks. */
static void undo(struct vm_clone *c, int r, vk_err *e)
{
    if (c->tf.path) {
        vk_temp_folder_unhide_message(&c->tf, c->dst, e);
        vk_temp_folder_discard(&c->tf);
        if (r == VMDKIT_ECANCELED)
            vk_fail(e, r, "%s: cancelled; the partial clone was removed", c->dst);
    }
    /* the record goes before the freeze it names is undone */
    if (c->vmsd_saved)
        restore_source_vmsd(c);
    if (c->frozen) {
        vk_err ignore;
        vk_vm_unfreeze(c->vmx, &c->f, &ignore);
    }
}

static void vm_clone_free(struct vm_clone *c)
{
    vmdkit_paths_free(c->warns.v, c->warns.n);
    if (c->disk_names)
        for (size_t i = 0; i < c->n; i++)
            free(c->disk_names[i]);
    free(c->disk_names);
    free(c->slots);
    free(c->sources);
    vk_vm_freeze_free(&c->f);
    if (c->snap_disks)
        vmdkit_paths_free(c->snap_disks, c->n);
    free(c->record_name);
    free(c->vmsd_before);
    vk_history_free(c->h);
    vk_vm_disks_free(c->disks, c->n);
    vk_vmx_free(c->v);
    free(c->vmx);
    free(c->dst);
    free(c->parent);
    free(c->name);
}

int vmdkit_vm_clone(const char *src_vm, const char *dst_vm, const vmdkit_vm_clone_opts *given,
                    vmdkit_vm_clone_result *res, vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_vm_clone_opts opts;
    int r = vk_entry_opts(
        &e, err, &local, res, sizeof *res,
        src_vm && dst_vm && given ? NULL : "vmdkit_vm_clone: src_vm, dst_vm and opts are required",
        &opts, sizeof opts, given, "vmdkit_vm_clone_opts");
    if (r)
        return r;
    if ((r = check_options(&opts, e)))
        return r;
    struct vm_clone c = {.opts = &opts, .tf = {.path = NULL, .lock_fd = -1}};
    if (!(r = check_destination(&c, src_vm, dst_vm, e)) && !(r = load_source(&c, e)) &&
        !(r = plan_disks(&c, e)) && !(r = record_in_source(&c, e)) && !(r = build_disks(&c, e)) &&
        !(r = write_machine_files(&c, e)))
        r = publish(&c, e);
    if (r)
        undo(&c, r, e);
    else if (res)
        r = report(&c, res, e);
    vm_clone_free(&c);
    return r;
}
