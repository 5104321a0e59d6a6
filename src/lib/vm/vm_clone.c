/* vm_clone.c - linked and full clones of a whole virtual machine.
 *
 * Crash safety.  Linked: (1) the source is frozen (new deltas, then its
 * .vmx saved: see vk_vm_freeze); (2) the clone is built in a temporary
 * folder beside the destination; (3) that folder is renamed to the
 * destination.  An interruption in (2) leaves a ".NAME.vmdkit-tmp-XXXXXX"
 * folder that nothing names and that may be deleted; the source, frozen,
 * works as before.  A failure (not a crash) undoes (2) and (1).
 * Full: the same without (1).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy_tree.h"
#include "path.h"
#include "vm.h"

/* ---- small file helpers ---- */

/* Remove the temporary folder DIR and the files made in it. */
static void remove_tmp_folder(const char *dir)
{
    DIR *dh = opendir(dir);
    if (dh) {
        struct dirent *de;
        while ((de = readdir(dh))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *p = vk_path_join(dir, de->d_name, NULL);
            if (p)
                unlink(p);
            free(p);
        }
        closedir(dh);
    }
    rmdir(dir);
}

/* ---- names ---- */

/* NAME from the options or from DST's last component ("Clone.vmwarevm"
 * gives "Clone"); it becomes file names and must be a plain one. */
static char *clone_name(const char *dst_abs, const char *given, vk_err *e)
{
    const char *base = given ? given : vk_path_basename(dst_abs);
    size_t n = strlen(base);
    if (!given && n > 9 && strcasecmp(base + n - 9, ".vmwarevm") == 0)
        n -= 9;
    bool ok = n > 0 && n <= 200 && !(n == 1 && base[0] == '.') &&
              !(n == 2 && base[0] == '.' && base[1] == '.');
    for (size_t i = 0; ok && i < n; i++)
        ok = base[i] != '/' && base[i] != '"' && (unsigned char)base[i] >= 0x20 && base[i] != 0x7f;
    if (!ok) {
        vk_fail(e, VMDKIT_EINVAL,
                "%s: name \"%.*s\": must be 1 to 200 characters without '/', '\"' or control "
                "characters",
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

/* ---- full copies ---- */

/* Progress over all disks of a full clone. */
struct multi_progress {
    vmdkit_progress_fn fn;
    void *opaque;
    uint64_t done_before;
    uint64_t total;
};

static int multi_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
    (void)total;
    struct multi_progress *m = opaque;
    return m->fn(m->opaque, m->done_before + done, m->total);
}

/* Flatten the chain of SRC into the new disk DST, keeping the base link's
 * adapter type, hardware version and (unless TYPE >= 0) createType. */
static int flatten(const char *src, const char *dst, int type, struct multi_progress *mp, vk_err *e)
{
    vmdkit_disk *d;
    int r = vmdkit_open(src, VMDKIT_OPEN_RDONLY, &d, e);
    if (r)
        return r;
    vmdkit_convert_opts o = {0};
    o.vmdk.type = VMDKIT_MONOLITHIC_SPARSE;
    vmdkit_link_info base;
    if ((r = vmdkit_link_info_get(d, vmdkit_chain_length(d) - 1, &base))) {
        *e = *vmdkit_last_error(d);
        vmdkit_close(d, NULL);
        return r;
    }
    o.vmdk.adapter = vmdkit_adapter_name(base.adapter_type);
    o.vmdk.hw_version = base.hw_version ? atoi(base.hw_version) : 0;
    int t = base.create_type ? vmdkit_create_type_parse(base.create_type) : -1;
    if (t >= 0 && t != VMDKIT_STREAM_OPTIMIZED && t != VMDKIT_VMFS)
        o.vmdk.type = (vmdkit_create_type)t;
    vmdkit_link_info_free(&base);
    if (type >= 0)
        o.vmdk.type = (vmdkit_create_type)type;
    if (mp->fn) {
        o.progress = multi_progress_cb;
        o.progress_opaque = mp;
    }
    uint64_t size = vmdkit_size(d);
    r = vmdkit_convert(d, dst, &o, e);
    mp->done_before += size;
    vmdkit_close(d, NULL);
    return r;
}

/* ---- the clone's .vmx and side files ---- */

/* Write the clone's .vmx at DST_VMX from the source's, and copy its nvram
 * and vmxf beside it. */
static int write_config(const char *src_vmx, const char *tmp, const char *name, const char *const *slots,
                        const char *const *files, size_t n, bool linked, vk_err *e)
{
    vk_vmx *v;
    int r = vk_vmx_load(src_vmx, &v, e);
    if (r)
        return r;
    char *src_dir = vk_path_dirname(src_vmx, e);
    char *src_abs = vk_path_absolute(src_vmx, e);
    size_t len = strlen(tmp) + strlen(name) + 16;
    char *dst = vk_malloc(len, e);
    char *side = NULL;
    if (!src_dir || !src_abs || !dst) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    /* side files: nvram (default <vmx name>.nvram) and the vmxf, when present */
    const char *nv = vk_vmx_get(v, "nvram");
    char def_nv[4096];
    if (!nv || !*nv) {
        const char *b = vk_path_basename(src_vmx);
        snprintf(def_nv, sizeof def_nv, "%.*s.nvram", (int)(strlen(b) - 4), b);
        nv = def_nv;
    }
    const char *kinds[2] = {"nvram", "vmxf"};
    const char *names[2] = {nv, vk_vmx_get(v, "extendedConfigFile")};
    for (int k = 0; !r && k < 2; k++) {
        if (!names[k] || !*names[k])
            continue;
        struct stat st;
        if (!(side = vk_path_join(src_dir, names[k], e))) {
            r = VMDKIT_ENOMEM;
            break;
        }
        snprintf(dst, len, "%s/%s.%s", tmp, name, kinds[k]);
        if (stat(side, &st) == 0 && S_ISREG(st.st_mode))
            r = vk_copy_file(side, dst, e);
        free(side);
        side = NULL;
    }
    vk_clone_config c = {
        .name = name, .slots = slots, .files = files, .n = n, .clone_of = linked ? src_abs : NULL,
    };
    if (!r)
        r = vk_vm_clone_config(v, &c, e);
    char *text = NULL;
    size_t tlen = 0;
    if (!r)
        r = vk_vmx_serialize(v, &text, &tlen, e);
    snprintf(dst, len, "%s/%s.vmx", tmp, name);
    if (!r)
        r = vk_write_file_atomic(dst, text, tlen, e);
    free(text);
    struct stat st;
    if (!r && stat(src_vmx, &st) == 0) /* Fusion keeps .vmx files executable */
        (void)chmod(dst, st.st_mode & 0777);
out:
    free(dst);
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
        for (size_t i = 0; i < f->n; i++, res->n_source_deltas++)
            if (!(res->source_deltas[i] = vk_strdup(f->new_paths[i], e)))
                return VMDKIT_ENOMEM;
    }
    return 0;
}

int vmdkit_vm_clone(const char *src_vm, const char *dst_vm, const vmdkit_vm_clone_opts *opts,
                    vmdkit_vm_clone_result *res, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    e->code = 0;
    e->msg[0] = 0;
    if (res)
        memset(res, 0, sizeof *res);
    if (!src_vm || !dst_vm || !opts)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_vm_clone: src_vm, dst_vm and opts are required");
    char *vmx = NULL, *dst = NULL, *name = NULL, *parent = NULL, *tmp = NULL;
    char **disk_names = NULL;
    const char **slots = NULL, **sources = NULL;
    vk_vmx *v = NULL;
    vk_vm_disk *disks = NULL;
    size_t n = 0;
    vk_frozen f = {0};
    bool frozen = false;
    struct stat st;

    int r = vk_vm_resolve(src_vm, &vmx, e);
    if (r)
        goto out;
    if (!(dst = vk_path_absolute(dst_vm, e)) || !(parent = vk_path_dirname(dst, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    if (!(name = clone_name(dst, opts->name, e))) {
        r = e->code;
        goto out;
    }
    if (lstat(dst, &st) == 0) {
        r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dst);
        goto out;
    }
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
        r = vk_fail(e, VMDKIT_ENOENT, "%s: the folder to hold the clone does not exist", parent);
        goto out;
    }
    if ((r = vk_vm_load(vmx, &v, &disks, &n, e)) || (r = vk_vm_check_stopped(vmx, v, e)))
        goto out;
    /* the name goes into the clone's .vmx, in the source's .encoding: refuse
     * one it cannot hold before anything is written */
    if ((r = vk_vmx_encodable(v, "displayName", name, e)))
        goto out;
    slots = vk_calloc(n + 1, sizeof *slots, e);
    sources = vk_calloc(n + 1, sizeof *sources, e);
    disk_names = vk_calloc(n + 1, sizeof *disk_names, e);
    if (!slots || !sources || !disk_names) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    struct multi_progress mp = { .fn = opts->progress, .opaque = opts->progress_opaque };
    if (opts->linked) {
        /* the links the source wrote to become the clone's read-only parents */
        if ((r = vk_vm_freeze(vmx, opts->absolute_hint, &f, e)))
            goto out;
        frozen = true;
        if (f.n != n) {
            r = vk_fail(e, VMDKIT_EIO, "%s: changed while being cloned", vmx);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        slots[i] = opts->linked ? f.slots[i] : disks[i].slot;
        sources[i] = opts->linked ? f.old_paths[i] : disks[i].path;
        if (!(disk_names[i] = disk_name(name, i, e))) {
            r = VMDKIT_ENOMEM;
            goto out;
        }
        if (!opts->linked) {
            vmdkit_disk *d;
            if ((r = vmdkit_open(sources[i], VMDKIT_OPEN_RDONLY, &d, e))) {
                vk_err_prefix(e, "%s", slots[i]);
                goto out;
            }
            mp.total += vmdkit_size(d);
            vmdkit_close(d, NULL);
        }
    }

    /* build the clone beside its destination, invisible until renamed */
    if (!(tmp = vk_make_temp_folder(parent, name, e))) {
        r = e->code ? e->code : VMDKIT_ENOMEM;
        goto out;
    }
    /* the clone's folder gets the permissions of the source's */
    char *src_dir = vk_path_dirname(vmx, e);
    if (src_dir && stat(src_dir, &st) == 0)
        (void)chmod(tmp, st.st_mode & 07777);
    free(src_dir);
    for (size_t i = 0; !r && i < n; i++) {
        char *p = vk_path_join(tmp, disk_names[i], e);
        if (!p)
            r = VMDKIT_ENOMEM;
        /* the temporary folder is a sibling of DST: a relative hint made
         * from it is the same as one made from DST */
        else if (opts->linked)
            r = vmdkit_create_delta(sources[i], p, opts->absolute_hint, e);
        else
            r = flatten(sources[i], p, opts->type, &mp, e);
        free(p);
    }
    if (!r)
        r = write_config(vmx, tmp, name, slots, (const char *const *)disk_names, n, opts->linked, e);
    if (!r)
        r = vk_fsync_dir(tmp, e);
    if (!r && renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) != 0) {
        if (errno == EINVAL || errno == ENOSYS) {
            /* no RENAME_NOREPLACE here: the check above and rename(2) */
            if (lstat(dst, &st) == 0)
                r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dst);
            else if (rename(tmp, dst) != 0)
                r = vk_fail_errno(e, errno, "%s: rename %s", dst, tmp);
        } else {
            r = errno == EEXIST ? vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dst)
                                : vk_fail_errno(e, errno, "%s: rename %s", dst, tmp);
        }
    }
    if (!r) {
        free(tmp);
        tmp = NULL;
        r = vk_fsync_dir(parent, e);
    }
    if (!r && res)
        r = fill_result(res, dst, name, disk_names, n, opts->linked ? &f : NULL, e);
    if (r && res && !tmp)
        vmdkit_vm_clone_result_free(res); /* the clone exists; only the report failed */
    if (!tmp)
        frozen = false; /* the clone exists: its parents stay frozen */
out:
    if (r && tmp)
        remove_tmp_folder(tmp);
    if (r && frozen) {
        vk_err ignore;
        vk_vm_unfreeze(vmx, &f, &ignore);
    }
    free(tmp);
    if (disk_names)
        for (size_t i = 0; i < n; i++)
            free(disk_names[i]);
    free(disk_names);
    free(slots);
    free(sources);
    vk_vm_freeze_free(&f);
    vk_vm_disks_free(disks, n);
    vk_vmx_free(v);
    free(vmx);
    free(dst);
    free(parent);
    free(name);
    return r;
}
