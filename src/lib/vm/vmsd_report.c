/* vmsd_report.c - the VMware bookkeeping around one disk, for info and
 * check: the snapshots that froze its links and the .vmsd findings of its
 * machines, both from the library model (library.h) and tree.c's rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "library.h"
#include "path.h"
#include "vmsd.h"
#include "vmsd_findings.h"

void vmdkit_vmsd_findings_free(vmdkit_vmsd_finding *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].file);
        free(f[i].message);
    }
    free(f);
}

void vmdkit_vmsd_report_free(vmdkit_vmsd_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_snapshots; i++) {
        vmdkit_vmsd_snapshot *s = &r->snapshots[i];
        free(s->disk);
        free(s->vmsd);
        free(s->vm);
        free(s->name);
        free(s->key);
    }
    free(r->snapshots);
    vmdkit_paths_free(r->machines, r->n_machines);
    vmdkit_paths_free(r->disks, r->n_disks);
    vmdkit_vmsd_findings_free(r->findings, r->n_findings);
    free(r);
}

/* snapshotN.uid of the entry whose key F names, 0 when unknown. */
static uint32_t uid_of(const vk_lib_ref *f)
{
    if (!f->key || strncmp(f->key, "snapshot", 8) != 0)
        return 0;
    char *end;
    unsigned long idx = strtoul(f->key + 8, &end, 10);
    if (end == f->key + 8 || *end != '.')
        return 0;
    vk_vmsd *sd;
    vk_err why = {0};
    if (vk_vmsd_load(f->file, &sd, &why) != 0)
        return 0;
    uint32_t uid = 0;
    for (size_t i = 0; i < sd->n_snaps; i++)
        if (sd->snaps[i].index == idx)
            uid = sd->snaps[i].uid;
    vk_vmsd_free(sd);
    return uid;
}

static int add_snapshot(vmdkit_vmsd_report *r, size_t *cap, const vk_lib *lib, size_t c, unsigned link,
                        const vk_lib_ref *f, vk_err *e)
{
    int rc = vk_grow((void **)&r->snapshots, cap, r->n_snapshots, sizeof *r->snapshots, e);
    if (rc)
        return rc;
    vmdkit_vmsd_snapshot *s = &r->snapshots[r->n_snapshots++];
    memset(s, 0, sizeof *s);
    s->link = link;
    s->uid = uid_of(f);
    const char *vm = f->vm != VK_LIB_NONE ? lib->vms[f->vm].name : vk_path_basename(f->file);
    if (!(s->disk = vk_strdup(lib->disks[c].path, e)) || !(s->vmsd = vk_strdup(f->file, e)) ||
        !(s->vm = vk_strdup(vm, e)) || !(s->name = vk_strdup(f->snapshot ? f->snapshot : "?", e)) ||
        !(s->key = vk_strdup(f->key ? f->key : "", e)))
        return VMDKIT_ENOMEM;
    return 0;
}

/* The snapshots that froze disk D or a link below it. */
static int chain_snapshots(vmdkit_vmsd_report *r, const vk_lib *lib, size_t d, vk_err *e)
{
    size_t cap = 0;
    unsigned link = 0;
    int rc = 0;
    for (size_t c = d; !rc && c != VK_LIB_NONE && link <= lib->n_disks;
         c = lib->disks[c].parent, link++) {
        size_t *idx = NULL, n = 0;
        rc = vk_lib_refs_to_disk(lib, c, VK_REFS(VK_REF_SNAPSHOT_DISK), &idx, &n, e);
        for (size_t i = 0; !rc && i < n; i++)
            rc = add_snapshot(r, &cap, lib, c, link, &lib->refs[idx[i]], e);
        free(idx);
    }
    return rc;
}

/* Does machine VM run on disk D, or lie in the folder DIR holding it? */
static bool machine_of(const vk_lib *lib, size_t vm, size_t d, const char *dir, vk_err *e)
{
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        if (f->kind == VK_REF_VM_DISK && f->vm == vm && f->exists && f->dev == lib->disks[d].dev &&
            f->ino == lib->disks[d].ino)
            return true;
    }
    char *folder = vk_path_dirname(lib->vms[vm].vmx, e);
    bool same = folder && strcmp(folder, dir) == 0;
    free(folder);
    return same;
}

/* Machine VM's findings, appended to R (CAP allocated). */
static int add_findings(vmdkit_vmsd_report *r, size_t *cap, const vk_lib *lib, size_t vm, vk_err *e)
{
    char *cwd = getcwd(NULL, 0);
    vmdkit_vmsd_finding *f = NULL;
    size_t n = 0;
    int rc = vk_tree_vmsd_findings(lib, vm, cwd ? cwd : "/", &f, &n, e);
    for (size_t i = 0; !rc && i < n; i++) {
        if ((rc = vk_grow((void **)&r->findings, cap, r->n_findings, sizeof *r->findings, e)))
            break;
        r->findings[r->n_findings++] = f[i];
        f[i].file = f[i].message = NULL;
    }
    vmdkit_vmsd_findings_free(f, n);
    free(cwd);
    return rc;
}

/* Append a copy of S to the list *V (N long, CAP allocated). */
static int add_path(char ***v, size_t *n, size_t *cap, const char *s, vk_err *e)
{
    int rc = vk_grow((void **)v, cap, *n, sizeof **v, e);
    if (rc)
        return rc;
    if (!((*v)[*n] = vk_strdup(s, e)))
        return VMDKIT_ENOMEM;
    (*n)++;
    return 0;
}

/* The machine whose .vmx is VMX: its disks and findings. */
static int machine_report(vmdkit_vmsd_report *r, const char *vmx, vk_err *e)
{
    vk_lib *lib = NULL;
    const char *targets[1] = {vmx};
    int rc = vk_lib_load_around(NULL, targets, 1, &lib, e);
    size_t vm = rc ? VK_LIB_NONE : vk_lib_vm_at(lib, vmx);
    if (!rc && vm == VK_LIB_NONE)
        rc = vk_fail(e, VMDKIT_EFORMAT, "%s: not a machine the library model could read", vmx);
    size_t cap_m = 0, cap_d = 0, cap_f = 0;
    if (!rc)
        rc = add_path(&r->machines, &r->n_machines, &cap_m, lib->vms[vm].vmx, e);
    for (size_t i = 0; !rc && i < lib->n_refs; i++)
        if (lib->refs[i].kind == VK_REF_VM_DISK && lib->refs[i].vm == vm)
            rc = add_path(&r->disks, &r->n_disks, &cap_d, lib->refs[i].target, e);
    if (!rc)
        rc = add_findings(r, &cap_f, lib, vm, e);
    vk_lib_free(lib);
    return rc;
}

static int machine_findings(vmdkit_vmsd_report *r, const vk_lib *lib, size_t d, vk_err *e)
{
    char *dir = vk_path_dirname(lib->disks[d].path, e);
    size_t cap_m = 0, cap_f = 0;
    int rc = dir ? 0 : VMDKIT_ENOMEM;
    for (size_t vm = 0; !rc && vm < lib->n_vms; vm++)
        if (machine_of(lib, vm, d, dir, e) &&
            !(rc = add_path(&r->machines, &r->n_machines, &cap_m, lib->vms[vm].vmx, e)))
            rc = add_findings(r, &cap_f, lib, vm, e);
    free(dir);
    return rc;
}

int vmdkit_vmsd_report_get(const char *disk, vmdkit_vmsd_report **out, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    if (!disk || !out)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_vmsd_report_get: disk and out are required");
    *out = NULL;
    if (vmdkit_is_vm_path(disk)) {
        char *vmx = NULL, *real = NULL;
        int rc = vmdkit_vm_find_vmx(disk, &vmx, e);
        vmdkit_vmsd_report *r = rc ? NULL : vk_calloc(1, sizeof *r, e);
        if (!rc && !r)
            rc = VMDKIT_ENOMEM;
        if (!rc && !(real = realpath(vmx, NULL)))
            rc = vk_fail_errno(e, errno, "%s: open", vmx);
        if (!rc)
            rc = machine_report(r, real, e);
        free(vmx);
        free(real);
        if (rc) {
            vmdkit_vmsd_report_free(r);
            return rc;
        }
        *out = r;
        return 0;
    }
    char *abs = realpath(disk, NULL); /* the model's paths are real paths */
    if (!abs)
        return vk_fail_errno(e, errno, "%s: open", disk);
    vmdkit_vmsd_report *r = vk_calloc(1, sizeof *r, e);
    vk_lib *lib = NULL;
    const char *targets[1] = {abs};
    int rc = r ? vk_lib_load_around(NULL, targets, 1, &lib, e) : VMDKIT_ENOMEM;
    size_t d = rc ? VK_LIB_NONE : vk_lib_disk_at(lib, abs);
    if (!rc && d != VK_LIB_NONE) /* not a disk of its own: nothing to report */
        rc = chain_snapshots(r, lib, d, e);
    if (!rc && d != VK_LIB_NONE)
        rc = machine_findings(r, lib, d, e);
    vk_lib_free(lib);
    free(abs);
    if (rc) {
        vmdkit_vmsd_report_free(r);
        return rc;
    }
    *out = r;
    return 0;
}
