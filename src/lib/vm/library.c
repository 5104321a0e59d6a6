/* library.c - reading the library model (see library.h): the walk of the
 * roots, the disks and machines found, and every reference they hold. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "holders.h"
#include "libwalk.h"
#include "library.h"
#include "path.h"
#include "scan.h"
#include "temp_folder.h"
#include "vm.h"
#include "vmx.h"

/* Disks and machines followed out of the roots, at most (a crafted chain
 * of hints cannot make the model grow without bound). */
#define LIB_MAX_DISKS 100000
#define LIB_MAX_VMS 10000

/* ---- identity ---- */

static bool ident(const char *path, dev_t *dev, ino_t *ino)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return true;
}

static size_t disk_by_id(const vk_lib *lib, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < lib->n_disks; i++)
        if (lib->disks[i].dev == dev && lib->disks[i].ino == ino)
            return i;
    return VK_LIB_NONE;
}

size_t vk_lib_disk_at(const vk_lib *lib, const char *path)
{
    dev_t dev;
    ino_t ino;
    return ident(path, &dev, &ino) ? disk_by_id(lib, dev, ino) : VK_LIB_NONE;
}

size_t vk_lib_disk_with_file(const vk_lib *lib, const char *path)
{
    dev_t dev;
    ino_t ino;
    if (!ident(path, &dev, &ino))
        return VK_LIB_NONE;
    for (size_t i = 0; i < lib->n_disks; i++)
        for (size_t k = 0; k < lib->disks[i].n_files; k++) {
            const vk_lib_file *f = &lib->disks[i].files[k];
            if (f->exists && f->dev == dev && f->ino == ino)
                return i;
        }
    return VK_LIB_NONE;
}

size_t vk_lib_vm_at(const vk_lib *lib, const char *path)
{
    for (size_t i = 0; i < lib->n_vms; i++)
        if (vk_same_file(path, lib->vms[i].vmx))
            return i;
    return VK_LIB_NONE;
}

/* ---- building ---- */

struct loader {
    vk_lib *lib;
    vk_err *e;
    char **vmsd_paths; /* .vmsd files found by the walk */
    size_t n_vmsd, cap_vmsd;
};

static int add_problem(vk_lib *lib, const char *path, vk_err *e, const char *fmt, ...) VK_PRINTF(4, 5);
static int add_problem(vk_lib *lib, const char *path, vk_err *e, const char *fmt, ...)
{
    int r =
        vk_grow((void **)&lib->problems, &lib->cap_problems, lib->n_problems, sizeof *lib->problems, e);
    if (r)
        return r;
    char msg[VMDKIT_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vk_lib_problem *p = &lib->problems[lib->n_problems];
    p->path = vk_strdup(path, e);
    p->message = vk_strdup(msg, e);
    if (!p->path || !p->message) {
        free(p->path);
        free(p->message);
        return VMDKIT_ENOMEM;
    }
    lib->n_problems++;
    return 0;
}

/* Add a reference held by FILE (absolute) of KIND; VALUE is resolved
 * against FILE's folder (a parent hint through the hint rules). */
static int add_ref(vk_lib *lib, enum vk_ref_kind kind, const char *file, const char *key,
                   const char *value, size_t holder_disk, size_t vm, const char *snapshot, vk_err *e)
{
    if (!value || !*value)
        return 0;
    int r = vk_grow((void **)&lib->refs, &lib->cap_refs, lib->n_refs, sizeof *lib->refs, e);
    if (r)
        return r;
    vk_lib_ref *f = &lib->refs[lib->n_refs];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->holder_disk = holder_disk;
    f->vm = vm;
    char *named = NULL;
    if (kind == VK_REF_PARENT) {
        named = vk_path_resolve_parent(file, value, e);
    } else {
        char *dir = vk_path_dirname(file, e);
        named = dir ? vk_path_join(dir, value, e) : NULL;
        free(dir);
    }
    f->target = named ? vk_path_absolute(named, e) : NULL;
    free(named);
    if (!(f->file = vk_strdup(file, e)) || (key && !(f->key = vk_strdup(key, e))) ||
        !(f->value = vk_strdup(value, e)) || !f->target ||
        (snapshot && !(f->snapshot = vk_strdup(snapshot, e)))) {
        free(f->file);
        free(f->key);
        free(f->value);
        free(f->target);
        free(f->snapshot);
        return VMDKIT_ENOMEM;
    }
    f->exists = ident(f->target, &f->dev, &f->ino);
    lib->n_refs++;
    return 0;
}

/* Add the disk at PATH described by D (unless known); *IDX its index. */
static int add_disk(vk_lib *lib, const char *path, const vk_descriptor *d, bool outside, size_t *idx,
                    vk_err *e)
{
    dev_t dev;
    ino_t ino;
    *idx = VK_LIB_NONE;
    if (!ident(path, &dev, &ino))
        return 0; /* vanished meanwhile */
    if ((*idx = disk_by_id(lib, dev, ino)) != VK_LIB_NONE)
        return 0;
    if (lib->n_disks >= LIB_MAX_DISKS)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: more than %d disks in the library", path, LIB_MAX_DISKS);
    int r = vk_grow((void **)&lib->disks, &lib->cap_disks, lib->n_disks, sizeof *lib->disks, e);
    if (r)
        return r;
    vk_lib_disk *k = &lib->disks[lib->n_disks];
    memset(k, 0, sizeof *k);
    k->dev = dev;
    k->ino = ino;
    k->cid = d->cid;
    k->parent_cid = d->parent_hint ? d->parent_cid : VK_CID_NONE;
    k->parent = k->hint_ref = VK_LIB_NONE;
    k->outside = outside;
    vk_err ignore;
    if (vk_descriptor_capacity(d, &k->capacity_sectors, &ignore) != 0)
        k->capacity_sectors = 0;
    char *dir = vk_path_dirname(path, e);
    k->files = vk_calloc(d->n_extents + 1, sizeof *k->files, e);
    if (!(k->path = vk_path_absolute(path, e)) || !dir || !k->files ||
        (d->create_type && !(k->create_type = vk_strdup(d->create_type, e))) ||
        (d->parent_hint && !(k->hint = vk_strdup(d->parent_hint, e))))
        r = VMDKIT_ENOMEM;
    if (!r) {
        k->files[0].path = vk_strdup(k->path, e);
        k->files[0].exists = true;
        k->files[0].dev = dev;
        k->files[0].ino = ino;
        k->n_files = 1;
        r = k->files[0].path ? 0 : VMDKIT_ENOMEM;
    }
    for (size_t i = 0; !r && i < d->n_extents; i++) {
        const char *name = d->extents[i].filename;
        if (!name || !*name)
            continue; /* ZERO extents, or the embedding file itself */
        char *x = vk_path_join(dir, name, e);
        char *ax = x ? vk_path_absolute(x, e) : NULL;
        free(x);
        if (!ax) {
            r = VMDKIT_ENOMEM;
            break;
        }
        vk_lib_file *f = &k->files[k->n_files];
        f->path = ax;
        f->exists = ident(ax, &f->dev, &f->ino);
        if (f->exists && f->dev == dev && f->ino == ino)
            free(f->path); /* the embedded descriptor names its own file */
        else
            k->n_files++;
    }
    free(dir);
    if (r) {
        for (size_t i = 0; i < k->n_files; i++)
            free(k->files[i].path);
        free(k->files);
        free(k->path);
        free(k->create_type);
        free(k->hint);
        return r;
    }
    *idx = lib->n_disks++;
    if (d->parent_hint) {
        lib->disks[*idx].hint_ref = lib->n_refs;
        r = add_ref(lib, VK_REF_PARENT, lib->disks[*idx].path, NULL, d->parent_hint, *idx, VK_LIB_NONE,
                    NULL, e);
        if (r)
            lib->disks[*idx].hint_ref = VK_LIB_NONE;
    }
    return r;
}

static int add_other(vk_lib *lib, const char *path, vk_err *e)
{
    int r = vk_grow((void **)&lib->others, &lib->cap_others, lib->n_others, sizeof *lib->others, e);
    if (r)
        return r;
    vk_lib_file *f = &lib->others[lib->n_others];
    if (!(f->path = vk_path_absolute(path, e)))
        return VMDKIT_ENOMEM;
    f->exists = ident(path, &f->dev, &f->ino);
    lib->n_others++;
    return 0;
}

/* Does KEY read PREFIX, digits, then REST? *NUM receives the digits' value. */
static bool numbered(const char *key, const char *prefix, const char *rest, unsigned long *num)
{
    size_t n = strlen(prefix);
    if (strncasecmp(key, prefix, n) != 0 || !isdigit((unsigned char)key[n]))
        return false;
    char *end;
    *num = strtoul(key + n, &end, 10);
    return strcasecmp(end, rest) == 0;
}

/* Is KEY "<bus>N:M.fileName" (bus scsi, sata, ide, nvme)?  SLOT receives
 * the "<bus>N:M" part. */
static bool slot_file_key(const char *key, char *slot, size_t size)
{
    size_t n = vk_vmx_slot_key(key);
    if (!n || strcasecmp(key + n, ".fileName") != 0 || n >= size)
        return false;
    memcpy(slot, key, n);
    slot[n] = 0;
    return true;
}

/* The value of PREFIX + SUFFIX in V (e.g. "sata0:1" ".deviceType"). */
static const char *get2(const vk_vmx *v, const char *prefix, const char *suffix)
{
    char key[160];
    if ((size_t)snprintf(key, sizeof key, "%s%s", prefix, suffix) >= sizeof key)
        return NULL;
    return vk_vmx_get(v, key);
}

/* Is the .vmx entry KEY = VALUE a file backing of a removable or port
 * device (CD-ROM image, floppy image, serial or parallel output file)? */
bool vk_vmx_is_backing(const vk_vmx *v, const char *key, const char *value)
{
    char slot[128];
    unsigned long n;
    if (slot_file_key(key, slot, sizeof slot)) {
        const char *type = get2(v, slot, ".deviceType");
        return type && strcasecmp(type, "cdrom-image") == 0;
    }
    const char *dot = strchr(key, '.');
    if (!dot || strcasecmp(dot, ".fileName") != 0 || (size_t)(dot - key) >= sizeof slot)
        return false;
    memcpy(slot, key, (size_t)(dot - key));
    slot[dot - key] = 0;
    if (!numbered(key, "floppy", ".fileName", &n) && !numbered(key, "serial", ".fileName", &n) &&
        !numbered(key, "parallel", ".fileName", &n))
        return false;
    const char *ft = get2(v, slot, ".fileType");
    if (ft)
        return strcasecmp(ft, "file") == 0;
    /* a floppy without fileType is an image file when it names one */
    return strncasecmp(key, "floppy", 6) == 0 && value[0] && strchr(value, '.') != NULL;
}

/* Read PATH, a file in the .vmx syntax (WHAT: ".vmx" or ".vmsd"), into *V.
 * One that cannot be read is a problem of the library, not an error: *V is
 * NULL and 0 is returned; only running out of memory fails the load. */
static int load_vmx_file(struct loader *ld, const char *path, const char *what, vk_vmx **v)
{
    vk_err why = {0};
    if (vk_vmx_load(path, v, &why) == 0)
        return 0;
    *v = NULL;
    if (why.code == VMDKIT_ENOMEM)
        return vk_fail(ld->e, VMDKIT_ENOMEM, "out of memory");
    return add_problem(ld->lib, path, ld->e, "not a readable %s: %s", what, why.msg);
}

static int read_vmx(struct loader *ld, const char *path, size_t *out_vm)
{
    vk_lib *lib = ld->lib;
    *out_vm = VK_LIB_NONE;
    if ((*out_vm = vk_lib_vm_at(lib, path)) != VK_LIB_NONE)
        return 0;
    vk_vmx *v;
    int r = load_vmx_file(ld, path, ".vmx", &v);
    if (r || !v)
        return r;
    if (lib->n_vms >= LIB_MAX_VMS) {
        vk_vmx_free(v);
        return vk_fail(ld->e, VMDKIT_ELIMIT, "%s: more than %d machines in the library", path,
                       LIB_MAX_VMS);
    }
    r = vk_grow((void **)&lib->vms, &lib->cap_vms, lib->n_vms, sizeof *lib->vms, ld->e);
    vk_lib_vm *m = r ? NULL : &lib->vms[lib->n_vms];
    const char *name = vk_vmx_get(v, "displayName");
    if (m) {
        memset(m, 0, sizeof *m);
        m->vmx = vk_path_absolute(path, ld->e);
        m->name = vk_strdup(name && *name ? name : vk_path_basename(path), ld->e);
        if (!m->vmx || !m->name) {
            free(m->vmx);
            free(m->name);
            r = VMDKIT_ENOMEM;
        }
    }
    if (r) {
        vk_vmx_free(v);
        return r;
    }
    size_t vm = lib->n_vms++;
    *out_vm = vm;
    const char *file = lib->vms[vm].vmx;
    vk_vmx_disk *disks = NULL;
    size_t n = 0;
    if (!(r = vk_vmx_disks(v, &disks, &n, ld->e))) {
        for (size_t i = 0; !r && i < n; i++) {
            char key[160];
            snprintf(key, sizeof key, "%s.fileName", disks[i].slot);
            r = add_ref(lib, VK_REF_VM_DISK, file, key, disks[i].file, VK_LIB_NONE, vm, NULL, ld->e);
        }
        vk_vmx_disks_free(disks, n);
    }
    size_t pos = 0;
    const char *key, *value;
    unsigned long num;
    while (!r && vk_vmx_next(v, &pos, &key, &value)) {
        enum vk_ref_kind kind;
        if (strcasecmp(key, "nvram") == 0)
            kind = VK_REF_NVRAM;
        else if (strcasecmp(key, "extendedConfigFile") == 0)
            kind = VK_REF_VMXF;
        else if (strcasecmp(key, "checkpoint.vmState") == 0 || strcasecmp(key, "suspend.vmState") == 0)
            kind = VK_REF_STATE;
        else if (numbered(key, "cloneOf", "", &num))
            kind = VK_REF_CLONE_OF;
        else if (vk_vmx_is_backing(v, key, value))
            kind = VK_REF_BACKING;
        else
            continue;
        r = add_ref(lib, kind, file, key, value, VK_LIB_NONE, vm, NULL, ld->e);
    }
    vk_vmx_free(v);
    return r;
}

/* The .vmsd of the machine VM: "<vmx name>.vmsd" beside its .vmx. */
static char *vmsd_of(const char *vmx, vk_err *e)
{
    size_t n = strlen(vmx);
    char *p = vk_malloc(n + 2, e);
    if (p) {
        memcpy(p, vmx, n - 4);
        memcpy(p + n - 4, ".vmsd", 6);
    }
    return p;
}

static int read_vmsd(struct loader *ld, const char *path, size_t vm)
{
    vk_lib *lib = ld->lib;
    vk_vmx *v;
    int r = load_vmx_file(ld, path, ".vmsd", &v);
    if (r || !v)
        return r;
    char *file = vk_path_absolute(path, ld->e);
    r = file ? 0 : VMDKIT_ENOMEM;
    if (!r && vm != VK_LIB_NONE && !lib->vms[vm].vmsd && !(lib->vms[vm].vmsd = vk_strdup(file, ld->e)))
        r = VMDKIT_ENOMEM;
    size_t pos = 0;
    const char *key, *value;
    while (!r && vk_vmx_next(v, &pos, &key, &value)) {
        unsigned long num;
        enum vk_ref_kind kind;
        char name[64] = "";
        if (numbered(key, "cloneOf", "", &num)) {
            kind = VK_REF_CLONE_OF;
        } else if (numbered(key, "sentinel", "", &num)) {
            kind = VK_REF_SENTINEL;
        } else if (strncasecmp(key, "snapshot", 8) == 0 && isdigit((unsigned char)key[8])) {
            char *end;
            num = strtoul(key + 8, &end, 10);
            unsigned long m;
            if (strcasecmp(end, ".filename") == 0)
                kind = VK_REF_SNAPSHOT_STATE;
            else if (strncasecmp(end, ".disk", 5) == 0 && isdigit((unsigned char)end[5]) &&
                     numbered(end + 1, "disk", ".fileName", &m))
                kind = VK_REF_SNAPSHOT_DISK;
            else if (numbered(end + 1, "clone", "", &m) && end[0] == '.')
                kind = VK_REF_SNAPSHOT_CLONE;
            else
                continue;
            char dn[64];
            snprintf(dn, sizeof dn, "snapshot%lu.displayName", num);
            const char *label = vk_vmx_get(v, dn);
            if (label && *label)
                snprintf(name, sizeof name, "%s", label);
            else
                snprintf(name, sizeof name, "snapshot%lu", num);
        } else {
            continue;
        }
        r = add_ref(lib, kind, file, key, value, VK_LIB_NONE, vm, *name ? name : NULL, ld->e);
    }
    free(file);
    vk_vmx_free(v);
    return r;
}

static int add_leftover(vk_lib *lib, const char *path, vk_err *e)
{
    int r = vk_grow((void **)&lib->leftovers, &lib->cap_leftovers, lib->n_leftovers,
                    sizeof *lib->leftovers, e);
    if (r)
        return r;
    vk_lib_leftover *l = &lib->leftovers[lib->n_leftovers];
    if (!(l->path = vk_path_absolute(path, e)))
        return VMDKIT_ENOMEM;
    l->bytes = vk_tree_bytes(path);
    l->in_use = vk_temp_folder_in_use(path);
    lib->n_leftovers++;
    return 0;
}

static int collect(void *opaque, const char *path, enum vk_lib_kind kind, const vk_descriptor *d,
                   const char *problem)
{
    struct loader *ld = opaque;
    vk_lib *lib = ld->lib;
    size_t idx;
    switch (kind) {
    case VK_LIB_DISK:
        return add_disk(lib, path, d, false, &idx, ld->e);
    case VK_LIB_BAD_DISK:
        return add_problem(lib, path, ld->e, "not a valid disk: %s", problem);
    case VK_LIB_OTHER_VMDK:
        return add_other(lib, path, ld->e);
    case VK_LIB_VMX:
        return read_vmx(ld, path, &idx);
    case VK_LIB_VMSD: {
        int r =
            vk_grow((void **)&ld->vmsd_paths, &ld->cap_vmsd, ld->n_vmsd, sizeof *ld->vmsd_paths, ld->e);
        if (r)
            return r;
        if (!(ld->vmsd_paths[ld->n_vmsd] = vk_path_absolute(path, ld->e)))
            return VMDKIT_ENOMEM;
        ld->n_vmsd++;
        return 0;
    }
    case VK_LIB_LEFTOVER:
        return add_leftover(lib, path, ld->e);
    case VK_LIB_UNREADABLE:
        return add_problem(lib, path, ld->e,
                           "folder %s: disks or machines in it are not seen (dependents may be missed)",
                           problem);
    }
    return 0;
}

/* Attach every .vmsd to its machine (same folder and name) and read it; a
 * .vmsd without a .vmx is read on its own (its references still count). */
static int read_all_vmsd(struct loader *ld)
{
    vk_lib *lib = ld->lib;
    int r = 0;
    for (size_t i = 0; !r && i < ld->n_vmsd; i++) {
        size_t vm = VK_LIB_NONE;
        for (size_t k = 0; k < lib->n_vms && vm == VK_LIB_NONE; k++) {
            char *s = vmsd_of(lib->vms[k].vmx, ld->e);
            if (!s)
                return VMDKIT_ENOMEM;
            if (vk_same_file(s, ld->vmsd_paths[i]))
                vm = k;
            free(s);
        }
        r = read_vmsd(ld, ld->vmsd_paths[i], vm);
    }
    return r;
}

/* Follow references out of the roots: disks named by hints, machines and
 * snapshots, and the .vmx a clone came from, until nothing new is found. */
static int follow_outside(struct loader *ld)
{
    vk_lib *lib = ld->lib;
    int r = 0;
    for (size_t i = 0; !r && i < lib->n_refs; i++) { /* n_refs grows meanwhile */
        vk_lib_ref *f = &lib->refs[i];
        if (!f->exists)
            continue;
        bool disk_ref = f->kind == VK_REF_PARENT || f->kind == VK_REF_VM_DISK ||
                        f->kind == VK_REF_SNAPSHOT_DISK || f->kind == VK_REF_SENTINEL;
        if (disk_ref && disk_by_id(lib, f->dev, f->ino) == VK_LIB_NONE) {
            vk_descriptor d;
            bool is_disk;
            char *target = vk_strdup(f->target, ld->e); /* F moves when refs grow */
            if (!target)
                return VMDKIT_ENOMEM;
            int rr = vk_read_descriptor(target, &d, &is_disk, NULL);
            size_t idx;
            if (rr == VMDKIT_ENOMEM)
                r = vk_fail(ld->e, rr, "out of memory");
            else if (!rr && is_disk)
                r = add_disk(lib, target, &d, true, &idx, ld->e);
            vk_descriptor_free(&d);
            free(target);
        } else if (f->kind == VK_REF_CLONE_OF && vk_lib_vm_at(lib, f->target) == VK_LIB_NONE) {
            char *target = vk_strdup(f->target, ld->e);
            char *sd = target ? vmsd_of(target, ld->e) : NULL;
            size_t vm;
            struct stat st;
            if (!sd)
                r = VMDKIT_ENOMEM;
            else if (!(r = read_vmx(ld, target, &vm)) && vm != VK_LIB_NONE && stat(sd, &st) == 0 &&
                     S_ISREG(st.st_mode))
                r = read_vmsd(ld, sd, vm);
            free(sd);
            free(target);
        }
    }
    return r;
}

/* Each disk's parent: the disk its hint names. */
static void link_parents(vk_lib *lib)
{
    for (size_t i = 0; i < lib->n_disks; i++) {
        vk_lib_disk *k = &lib->disks[i];
        if (k->hint_ref == VK_LIB_NONE)
            continue;
        const vk_lib_ref *f = &lib->refs[k->hint_ref];
        k->parent = f->exists ? disk_by_id(lib, f->dev, f->ino) : VK_LIB_NONE;
    }
}

void vk_lib_free(vk_lib *lib)
{
    if (!lib)
        return;
    for (size_t i = 0; i < lib->n_roots; i++)
        free(lib->roots[i]);
    free(lib->roots);
    for (size_t i = 0; i < lib->n_disks; i++) {
        vk_lib_disk *k = &lib->disks[i];
        for (size_t f = 0; f < k->n_files; f++)
            free(k->files[f].path);
        free(k->files);
        free(k->path);
        free(k->create_type);
        free(k->hint);
    }
    free(lib->disks);
    for (size_t i = 0; i < lib->n_vms; i++) {
        free(lib->vms[i].vmx);
        free(lib->vms[i].vmsd);
        free(lib->vms[i].name);
    }
    free(lib->vms);
    for (size_t i = 0; i < lib->n_refs; i++) {
        vk_lib_ref *f = &lib->refs[i];
        free(f->file);
        free(f->key);
        free(f->value);
        free(f->target);
        free(f->snapshot);
    }
    free(lib->refs);
    for (size_t i = 0; i < lib->n_others; i++)
        free(lib->others[i].path);
    free(lib->others);
    for (size_t i = 0; i < lib->n_problems; i++) {
        free(lib->problems[i].path);
        free(lib->problems[i].message);
    }
    free(lib->problems);
    for (size_t i = 0; i < lib->n_leftovers; i++)
        free(lib->leftovers[i].path);
    free(lib->leftovers);
    free(lib);
}

/* Is the real path P inside (or equal to) the real path DIR? */
static bool within(const char *p, const char *dir)
{
    return strcmp(p, dir) == 0 || vk_path_inside(p, dir);
}

int vk_lib_load(const char *const *roots, size_t n_roots, vk_lib **out, vk_err *e)
{
    *out = NULL;
    vk_lib *lib = vk_calloc(1, sizeof *lib, e);
    if (!lib)
        return VMDKIT_ENOMEM;
    struct loader ld = {.lib = lib, .e = e};
    int r = 0;
    /* real paths, and a root inside another one is walked with it */
    for (size_t i = 0; !r && i < n_roots; i++) {
        char *real = realpath(roots[i], NULL);
        if (!real) {
            r = vk_fail_errno(e, errno, "%s: library folder", roots[i]);
            break;
        }
        bool covered = false;
        for (size_t k = 0; k < lib->n_roots && !covered; k++)
            covered = within(real, lib->roots[k]);
        for (size_t k = 0; !covered && k < lib->n_roots;) {
            if (within(lib->roots[k], real)) { /* the new root covers an earlier one */
                free(lib->roots[k]);
                lib->roots[k] = lib->roots[--lib->n_roots];
            } else {
                k++;
            }
        }
        if (covered) {
            free(real);
            continue;
        }
        if ((r = vk_grow((void **)&lib->roots, &lib->cap_roots, lib->n_roots, sizeof *lib->roots, e))) {
            free(real);
            break;
        }
        lib->roots[lib->n_roots++] = real;
    }
    for (size_t i = 0; !r && i < lib->n_roots; i++)
        r = vk_lib_walk(lib->roots[i], collect, &ld, e);
    if (!r)
        r = read_all_vmsd(&ld);
    if (!r)
        r = follow_outside(&ld);
    if (!r)
        link_parents(lib);
    for (size_t i = 0; i < ld.n_vmsd; i++)
        free(ld.vmsd_paths[i]);
    free(ld.vmsd_paths);
    if (r) {
        vk_lib_free(lib);
        return r;
    }
    *out = lib;
    return 0;
}

/* ---- the default root ---- */

/* Does the folder DIR directly hold a virtual machine (a .vmx) or a disk? */
static bool holds_machine_or_disk(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(dh))) {
        size_t n = strlen(de->d_name);
        found = (n > 4 && strcasecmp(de->d_name + n - 4, ".vmx") == 0) ||
                (n > 5 && strcasecmp(de->d_name + n - 5, ".vmdk") == 0);
    }
    closedir(dh);
    return found;
}

/* Does the folder UP hold, beside CHILD, a folder with a machine or disk? */
static bool has_sibling_library(const char *up, const char *child)
{
    DIR *dh = opendir(up);
    if (!dh)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(dh))) {
        if (de->d_name[0] == '.' || strstr(de->d_name, ".vmdkit-tmp-"))
            continue;
        char *p = vk_path_join(up, de->d_name, NULL);
        struct stat st;
        if (p && strcmp(p, child) != 0 && lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            found = holds_machine_or_disk(p);
        free(p);
    }
    closedir(dh);
    return found;
}

int vk_lib_default_root(const char *path, char **root, vk_err *e)
{
    *root = NULL;
    char *real = realpath(path, NULL);
    if (!real)
        return vk_fail_errno(e, errno, "%s", path);
    struct stat st;
    char *dir = NULL;
    if (stat(real, &st) == 0 && S_ISDIR(st.st_mode))
        dir = real, real = NULL;
    else if (!(dir = vk_path_dirname(real, e))) {
        free(real);
        return VMDKIT_ENOMEM;
    }
    free(real);
    /* the folder holding the disk's (or machine's) folder */
    char *lib = vk_path_dirname(dir, e);
    if (!lib) {
        free(dir);
        return VMDKIT_ENOMEM;
    }
    const char *home = getenv("HOME");
    char *rhome = home && *home ? realpath(home, NULL) : NULL;
    struct stat ls;
    /* never "/" or the home folder itself as the library above a folder */
    if (strcmp(lib, "/") == 0 || (rhome && strcmp(lib, rhome) == 0)) {
        free(lib);
        lib = dir;
        dir = NULL;
    }
    while (stat(lib, &ls) == 0) {
        char *up = vk_path_dirname(lib, e);
        struct stat us;
        if (!up)
            break;
        bool stop = strcmp(up, lib) == 0 || strcmp(up, "/") == 0 || (rhome && strcmp(up, rhome) == 0) ||
                    stat(up, &us) != 0 || us.st_dev != ls.st_dev || !has_sibling_library(up, lib);
        if (stop) {
            free(up);
            break;
        }
        free(lib);
        lib = up;
    }
    free(rhome);
    free(dir);
    *root = lib;
    return 0;
}

int vk_lib_load_around(const char *root, const char *const *targets, size_t n_targets, vk_lib **out,
                       vk_err *e)
{
    char **roots = vk_calloc(2 * n_targets + 1, sizeof *roots, e);
    if (!roots)
        return VMDKIT_ENOMEM;
    size_t n = 0;
    int r = 0;
    if (root && !(roots[n++] = vk_strdup(root, e)))
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < n_targets; i++) {
        if (!root && (r = vk_lib_default_root(targets[i], &roots[n], e)))
            break;
        if (!root)
            n++;
        /* the target's own folder, in case it lies outside ROOT */
        char *real = realpath(targets[i], NULL);
        struct stat st;
        if (!real) {
            r = vk_fail_errno(e, errno, "%s", targets[i]);
            break;
        }
        if (stat(real, &st) == 0 && S_ISDIR(st.st_mode))
            roots[n++] = real;
        else {
            roots[n++] = vk_path_dirname(real, e);
            free(real);
            if (!roots[n - 1])
                r = VMDKIT_ENOMEM;
        }
    }
    if (!r)
        r = vk_lib_load((const char *const *)roots, n, out, e);
    for (size_t i = 0; i < n; i++)
        free(roots[i]);
    free(roots);
    return r;
}

/* ---- queries ---- */

static int push_idx(size_t **a, size_t *n, size_t *cap, size_t v, vk_err *e)
{
    int r = vk_grow((void **)a, cap, *n, sizeof **a, e);
    if (!r)
        (*a)[(*n)++] = v;
    return r;
}

static int refs_to_id(const vk_lib *lib, dev_t dev, ino_t ino, unsigned kinds, size_t **idx, size_t *n,
                      size_t *cap, vk_err *e)
{
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        if (!(kinds & VK_REFS(f->kind)) || !f->exists || f->dev != dev || f->ino != ino)
            continue;
        bool dup = false;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = (*idx)[k] == i;
        int r = dup ? 0 : push_idx(idx, n, cap, i, e);
        if (r)
            return r;
    }
    return 0;
}

int vk_lib_refs_to(const vk_lib *lib, const char *path, unsigned kinds, size_t **idx, size_t *n,
                   vk_err *e)
{
    *idx = NULL;
    *n = 0;
    dev_t dev;
    ino_t ino;
    size_t cap = 0;
    if (!ident(path, &dev, &ino))
        return 0;
    int r = refs_to_id(lib, dev, ino, kinds, idx, n, &cap, e);
    if (r) {
        free(*idx);
        *idx = NULL;
        *n = 0;
    }
    return r;
}

int vk_lib_refs_to_disk(const vk_lib *lib, size_t d, unsigned kinds, size_t **idx, size_t *n, vk_err *e)
{
    *idx = NULL;
    *n = 0;
    size_t cap = 0;
    int r = 0;
    const vk_lib_disk *k = &lib->disks[d];
    for (size_t i = 0; !r && i < k->n_files; i++)
        if (k->files[i].exists)
            r = refs_to_id(lib, k->files[i].dev, k->files[i].ino, kinds, idx, n, &cap, e);
    if (r) {
        free(*idx);
        *idx = NULL;
        *n = 0;
    }
    return r;
}

/* PATH relative to the current folder when that is shorter. */
static char *short_path(const char *path, vk_err *e)
{
    char cwd[PATH_MAX];
    char *rel = getcwd(cwd, sizeof cwd) ? vk_path_relative(cwd, path, NULL) : NULL;
    if (rel && strlen(rel) < strlen(path))
        return rel;
    free(rel);
    return vk_strdup(path, e);
}

char *vk_lib_describe_ref(const vk_lib *lib, const vk_lib_ref *f, vk_err *e)
{
    (void)lib;
    char *file = short_path(f->file, e);
    if (!file)
        return NULL;
    char buf[VMDKIT_ERRMSG_MAX];
    switch (f->kind) {
    case VK_REF_PARENT:
        snprintf(buf, sizeof buf, "%s (parent hint)", file);
        break;
    case VK_REF_SNAPSHOT_DISK:
    case VK_REF_SNAPSHOT_STATE:
    case VK_REF_SNAPSHOT_CLONE:
        snprintf(buf, sizeof buf, "%s: VMware snapshot \"%s\" (%s)", file,
                 f->snapshot ? f->snapshot : "?", f->key);
        break;
    default:
        snprintf(buf, sizeof buf, "%s (%s)", file, f->key ? f->key : "?");
        break;
    }
    free(file);
    return vk_strdup(buf, e);
}

char *vk_lib_describe_refs(const vk_lib *lib, const size_t *idx, size_t n, vk_err *e)
{
    enum { SHOWN = 4 };
    char buf[VMDKIT_ERRMSG_MAX] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && i < SHOWN; i++) {
        char *one = vk_lib_describe_ref(lib, &lib->refs[idx[i]], e);
        if (!one)
            return NULL;
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", i ? "; " : "", one);
        free(one);
        if (w < 0 || (size_t)w >= sizeof buf - len)
            break;
        len += (size_t)w;
    }
    if (n > SHOWN && len < sizeof buf)
        snprintf(buf + len, sizeof buf - len, "; and %zu more", n - SHOWN);
    return vk_strdup(buf, e);
}

char *vk_lib_describe_roots(const vk_lib *lib, vk_err *e)
{
    char buf[VMDKIT_ERRMSG_MAX] = "";
    size_t len = 0;
    for (size_t i = 0; i < lib->n_roots; i++) {
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", i ? ", " : "", lib->roots[i]);
        if (w < 0 || (size_t)w >= sizeof buf - len)
            break;
        len += (size_t)w;
    }
    return vk_strdup(buf, e);
}

int vk_lib_check_disk_holders(const vk_lib *lib, size_t d, int need, vk_err *e)
{
    const vk_lib_disk *k = &lib->disks[d];
    vk_lock_snapshot *locks = vk_lock_snapshot_take();
    for (size_t i = 0; i < k->n_files; i++) {
        int r = vk_holders_check_in(locks, k->files[i].path, (enum vk_hold_need)need, e);
        if (r) {
            vk_lock_snapshot_free(locks);
            return r;
        }
    }
    vk_lock_snapshot_free(locks);
    size_t *idx, n;
    int r = vk_lib_refs_to_disk(lib, d, VK_REFS(VK_REF_VM_DISK), &idx, &n, e);
    for (size_t i = 0; !r && i < n; i++) {
        const vk_lib_ref *f = &lib->refs[idx[i]];
        vk_vmx *v;
        if (vk_vmx_load(f->file, &v, NULL) != 0)
            continue; /* a .vmx that cannot be read runs nothing vmdkit can see */
        r = vk_vm_check_stopped(f->file, v, e);
        vk_vmx_free(v);
    }
    free(idx);
    return r;
}

/* ---- dependents, as the library model sees them ---- */

int vk_find_dependents_multi(const char *const *roots, size_t n_roots, const char *target, char ***paths,
                             size_t *n, vk_err *e)
{
    *paths = NULL;
    *n = 0;
    vk_lib *lib;
    int r = vk_lib_load(roots, n_roots, &lib, e);
    if (r)
        return r;
    size_t *idx = NULL, k = 0;
    r = vk_lib_refs_to(lib, target, VK_REFS(VK_REF_PARENT), &idx, &k, e);
    char **out = r ? NULL : vk_calloc(k + 1, sizeof *out, e);
    if (!r && !out)
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < k; i++, (*n)++)
        if (!(out[i] = vk_strdup(lib->refs[idx[i]].file, e)))
            r = VMDKIT_ENOMEM;
    free(idx);
    vk_lib_free(lib);
    if (r) {
        vmdkit_paths_free(out, *n);
        *n = 0;
        return r;
    }
    *paths = out;
    return 0;
}

int vmdkit_find_dependents(const char *root, const char *target, char ***paths, size_t *n,
                           vmdkit_error *err)
{
    const char *roots[1] = {root};
    return vk_find_dependents_multi(roots, 1, target, paths, n, err);
}
