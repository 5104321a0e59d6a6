/* tree.c - the families of disks in a VM library, as the library model
 * (library.h) sees them: every disk linked to its parent, the machine that
 * runs on it, the VMware snapshots that froze it, who holds it, and what
 * is wrong: broken or looping hints, CID and capacity mismatches, a shared
 * parent a machine still writes, references that lead nowhere, files that
 * belong to no disk, what interrupted commands left behind, and where a
 * machine's .vmsd and its disks disagree (vmsd_findings). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "holders.h"
#include "library.h"
#include "path.h"
#include "vmsd.h"
#include "vmsd_findings.h"

/* Chains deeper than this are never opened (disk.c); deeper disks are
 * flagged so that nobody builds on them. */
#define TREE_MAX_DEPTH 255

struct tstate {
    const vk_lib *lib;
    vk_err *e;
    size_t *parent;    /* per disk: its parent in the tree (loops cut) */
    size_t *vm;        /* per disk: the machine running on it */
    size_t *candidate; /* per disk: the likely parent of a broken hint */
    size_t *n_children;
    unsigned *flags;
    char **rel; /* per disk: path relative to the scanned folder */
    vmdkit_tree_problem *problems;
    size_t n_prob, cap_prob;
    int kind;   /* enum vmdkit_vmsd_kind of the problems added now, or -1 */
    int *kinds; /* per problem, until build() sorts them */
    size_t cap_kinds;
};

static int add_problem(struct tstate *s, const char *path, const char *fmt, ...) VK_PRINTF(3, 4);
static int add_problem(struct tstate *s, const char *path, const char *fmt, ...)
{
    int r = vk_grow((void **)&s->problems, &s->cap_prob, s->n_prob, sizeof *s->problems, s->e);
    if (!r)
        r = vk_grow((void **)&s->kinds, &s->cap_kinds, s->n_prob, sizeof *s->kinds, s->e);
    if (r)
        return r;
    s->kinds[s->n_prob] = s->kind;
    char msg[VMDKIT_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vmdkit_tree_problem *p = &s->problems[s->n_prob];
    p->path = vk_strdup(path, s->e);
    p->message = vk_strdup(msg, s->e);
    if (!p->path || !p->message) {
        free(p->path);
        free(p->message);
        return VMDKIT_ENOMEM;
    }
    s->n_prob++;
    return 0;
}

static size_t disk_by_id(const vk_lib *lib, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < lib->n_disks; i++)
        if (lib->disks[i].dev == dev && lib->disks[i].ino == ino)
            return i;
    return VK_LIB_NONE;
}

/* Hints: parent links, broken and not-a-disk flags. */
static void link_hints(struct tstate *s)
{
    const vk_lib *lib = s->lib;
    for (size_t i = 0; i < lib->n_disks; i++) {
        const vk_lib_disk *k = &lib->disks[i];
        s->parent[i] = k->parent;
        if (k->hint_ref == VK_LIB_NONE)
            continue;
        const vk_lib_ref *f = &lib->refs[k->hint_ref];
        if (!f->exists)
            s->flags[i] |= VMDKIT_TREE_BROKEN_HINT;
        else if (k->parent == VK_LIB_NONE)
            s->flags[i] |= VMDKIT_TREE_NOT_A_DISK; /* an extent file, a raw file ... */
        else if (k->parent == i)
            s->flags[i] |= VMDKIT_TREE_LOOP, s->parent[i] = VK_LIB_NONE;
    }
}

/* Cut every loop of parents at one of its disks. */
static void cut_loops(struct tstate *s)
{
    size_t n = s->lib->n_disks;
    for (size_t i = 0; i < n; i++) {
        size_t c = i, steps = 0;
        while (c != VK_LIB_NONE && steps <= n) {
            c = s->parent[c];
            steps++;
        }
        if (c != VK_LIB_NONE) { /* still walking after n steps: C is inside a loop */
            s->parent[c] = VK_LIB_NONE;
            s->flags[c] |= VMDKIT_TREE_LOOP;
        }
    }
}

/* Depth below the family's root, iteratively (chains may be deep). */
static void flag_depth(struct tstate *s)
{
    size_t n = s->lib->n_disks;
    for (size_t i = 0; i < n; i++) {
        size_t depth = 0;
        for (size_t c = s->parent[i]; c != VK_LIB_NONE && depth <= TREE_MAX_DEPTH; c = s->parent[c])
            depth++;
        if (depth >= TREE_MAX_DEPTH)
            s->flags[i] |= VMDKIT_TREE_TOO_DEEP;
    }
}

static int read_machines(struct tstate *s)
{
    const vk_lib *lib = s->lib;
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        if (f->kind != VK_REF_VM_DISK)
            continue;
        size_t d = f->exists ? disk_by_id(lib, f->dev, f->ino) : VK_LIB_NONE;
        int r = 0;
        if (d == VK_LIB_NONE)
            r = add_problem(s, f->file, "%s: \"%s\": %s", f->key, f->value,
                            f->exists ? "not a disk" : "not found");
        else if (s->vm[d] != VK_LIB_NONE && s->vm[d] != f->vm)
            r = add_problem(s, lib->disks[d].path,
                            "the current disk of two machines: %s (%s) and %s (%s)",
                            lib->vms[s->vm[d]].name, lib->vms[s->vm[d]].vmx, lib->vms[f->vm].name,
                            lib->vms[f->vm].vmx);
        else
            s->vm[d] = f->vm;
        if (r)
            return r;
    }
    return 0;
}

/* A .vmsd naming, for one of its snapshots, a disk that is not there. */
static int missing_snapshot_disk(struct tstate *s, const vk_lib_ref *f)
{
    if (f->exists && disk_by_id(s->lib, f->dev, f->ino) != VK_LIB_NONE)
        return 0;
    s->kind = VMDKIT_VMSD_MISSING_DISK;
    return add_problem(s, f->file, "%s: VMware snapshot \"%s\" names \"%s\": %s", f->key,
                       f->snapshot ? f->snapshot : "?", f->value,
                       f->exists ? "not a disk" : "not found");
}

/* References other than hints and machine disks that lead nowhere. */
static int dangling_refs(struct tstate *s)
{
    const vk_lib *lib = s->lib;
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        if (f->kind == VK_REF_PARENT || f->kind == VK_REF_VM_DISK)
            continue; /* flagged on the disk, or above */
        int r = 0;
        if (f->kind == VK_REF_SNAPSHOT_DISK)
            r = missing_snapshot_disk(s, f);
        else if (!f->exists && f->kind == VK_REF_CLONE_OF)
            r = add_problem(s, f->file, "%s: the machine this clone was made from (\"%s\") is not there",
                            f->key, f->value);
        else if (!f->exists && f->kind != VK_REF_STATE)
            r = add_problem(s, f->file, "%s: \"%s\": not found", f->key, f->value);
        if (r)
            return r;
    }
    return 0;
}

/* ---- a machine's .vmsd against its disks ---- */

/* Is disk D frozen by a snapshot of machine VM (a .vmsd diskM.fileName)? */
static bool named_by_snapshot(const vk_lib *lib, size_t d, size_t vm)
{
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        if (f->kind == VK_REF_SNAPSHOT_DISK && f->vm == vm && f->exists && f->dev == lib->disks[d].dev &&
            f->ino == lib->disks[d].ino)
            return true;
    }
    return false;
}

/* The machine whose .vmx lies in the folder holding PATH, or VK_LIB_NONE. */
static size_t machine_of_folder(const vk_lib *lib, const char *path, vk_err *e)
{
    char *dir = vk_path_dirname(path, e);
    size_t found = VK_LIB_NONE;
    for (size_t k = 0; dir && k < lib->n_vms && found == VK_LIB_NONE; k++) {
        char *d = vk_path_dirname(lib->vms[k].vmx, e);
        if (d && strcmp(d, dir) == 0)
            found = k;
        free(d);
    }
    free(dir);
    return found;
}

/* The .vmsd's own state: it parses, and snapshot.current is an entry. */
static int vmsd_state(struct tstate *s, size_t vm)
{
    const char *path = s->lib->vms[vm].vmsd;
    vk_vmsd *sd;
    vk_err why = {0};
    s->kind = VMDKIT_VMSD_BAD_CURRENT;
    if (vk_vmsd_load(path, &sd, &why) != 0)
        return why.code == VMDKIT_ENOMEM ? vk_fail(s->e, VMDKIT_ENOMEM, "out of memory")
                                         : add_problem(s, path, "not a valid .vmsd: %s", why.msg);
    int r = 0;
    if (sd->has_current && !vk_vmsd_find(sd, sd->current))
        r = add_problem(s, path,
                        "snapshot.current = \"%u\": no snapshot has that uid (VMware reports an "
                        "invalid snapshot configuration)",
                        sd->current);
    vk_vmsd_free(sd);
    return r;
}

/*
 * One slot of machine VM, running on disk D: the links below D in the
 * machine's folder down to the snapshot tree (IN_TREE: the links of its
 * snapshots' chains) are frozen by nothing the .vmsd records (a freeze
 * not recorded, VMware's "running on deltas with no snapshot"); and the
 * first link outside the folder, when another machine's folder holds it,
 * must be a disk one of that machine's snapshots froze (else the clone is
 * made from a snapshot deleted since, or a freeze never recorded).
 */
static int slot_findings(struct tstate *s, const vk_lib_ref *f, size_t d, const bool *in_tree,
                         const char *folder)
{
    const vk_lib *lib = s->lib;
    char frozen[1024] = "";
    size_t n_frozen = 0, outside = VK_LIB_NONE, steps = 0;
    for (size_t c = s->parent[d]; c != VK_LIB_NONE && steps <= lib->n_disks; c = s->parent[c], steps++) {
        if (!vk_path_inside(lib->disks[c].path, folder)) {
            outside = c;
            break;
        }
        if (in_tree[c])
            break;
        size_t len = strlen(frozen);
        if (n_frozen++ < 4)
            snprintf(frozen + len, sizeof frozen - len, "%s%s", len ? ", " : "",
                     vk_path_basename(lib->disks[c].path));
    }
    int r = 0;
    const vk_lib_vm *m = &lib->vms[f->vm];
    s->kind = VMDKIT_VMSD_UNRECORDED;
    if (n_frozen)
        r = add_problem(
            s, f->file,
            "%s: runs on deltas no snapshot accounts for: %s%s frozen below \"%s\" and named by "
            "no entry of %s",
            f->key, frozen, n_frozen > 4 ? " ..." : "", f->value,
            m->vmsd ? vk_path_basename(m->vmsd) : "its .vmsd (there is none)");
    if (r || outside == VK_LIB_NONE)
        return r;
    size_t src = machine_of_folder(lib, lib->disks[outside].path, s->e);
    if (src == VK_LIB_NONE || src == f->vm || s->vm[outside] == src ||
        named_by_snapshot(lib, outside, src))
        return 0; /* no machine there, or its running disk (flagged DANGER), or a snapshot's */
    s->kind = VMDKIT_VMSD_ORPHAN_CLONE;
    return add_problem(
        s, f->file,
        "%s: a linked clone of %s, which no snapshot of \"%s\" records (deleted, or a freeze never "
        "recorded): VMware may merge or remove it",
        f->key, s->rel[outside], lib->vms[src].name);
}

/* The links of machine VM's snapshot chains (IN_TREE, n_disks + 1 long). */
static void snapshot_links(struct tstate *s, size_t vm, bool *in_tree)
{
    const vk_lib *lib = s->lib;
    memset(in_tree, 0, lib->n_disks * sizeof *in_tree);
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        size_t d = f->kind == VK_REF_SNAPSHOT_DISK && f->vm == vm && f->exists
                       ? disk_by_id(lib, f->dev, f->ino)
                       : VK_LIB_NONE;
        for (size_t steps = 0; d != VK_LIB_NONE && !in_tree[d] && steps <= lib->n_disks; steps++) {
            in_tree[d] = true;
            d = s->parent[d];
        }
    }
}

/* Every slot of machine VM against its snapshot tree (slot_findings). */
static int slots_of(struct tstate *s, size_t vm, bool *in_tree)
{
    const vk_lib *lib = s->lib;
    snapshot_links(s, vm, in_tree);
    char *folder = vk_path_dirname(lib->vms[vm].vmx, s->e);
    if (!folder)
        return VMDKIT_ENOMEM;
    int r = 0;
    for (size_t i = 0; !r && i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        size_t d = f->kind == VK_REF_VM_DISK && f->vm == vm && f->exists
                       ? disk_by_id(lib, f->dev, f->ino)
                       : VK_LIB_NONE;
        if (d != VK_LIB_NONE)
            r = slot_findings(s, f, d, in_tree, folder);
    }
    free(folder);
    return r;
}

/* Where each machine's .vmsd and its disks disagree; a .vmsd naming a
 * missing disk is found with the other references (dangling_refs). */
static int vmsd_findings(struct tstate *s)
{
    const vk_lib *lib = s->lib;
    bool *in_tree = vk_calloc(lib->n_disks + 1, sizeof *in_tree, s->e);
    if (!in_tree)
        return VMDKIT_ENOMEM;
    int r = 0;
    for (size_t vm = 0; !r && vm < lib->n_vms; vm++) {
        if (lib->vms[vm].vmsd && (r = vmsd_state(s, vm)))
            break;
        r = slots_of(s, vm, in_tree);
    }
    free(in_tree);
    return r;
}

static void set_flags(struct tstate *s)
{
    const vk_lib *lib = s->lib;
    size_t n = lib->n_disks;
    for (size_t i = 0; i < n; i++)
        if (s->parent[i] != VK_LIB_NONE)
            s->n_children[s->parent[i]]++;
    for (size_t i = 0; i < n; i++) {
        const vk_lib_disk *k = &lib->disks[i];
        if (s->parent[i] != VK_LIB_NONE) {
            const vk_lib_disk *p = &lib->disks[s->parent[i]];
            if (k->parent_cid != p->cid)
                s->flags[i] |= VMDKIT_TREE_CID_MISMATCH;
            if (k->capacity_sectors != p->capacity_sectors)
                s->flags[i] |= VMDKIT_TREE_CAPACITY_MISMATCH;
        }
        if (s->n_children[i] > 0 && s->vm[i] != VK_LIB_NONE)
            s->flags[i] |= VMDKIT_TREE_DANGER;
        for (size_t f = 1; f < k->n_files; f++)
            if (!k->files[f].exists)
                s->flags[i] |= VMDKIT_TREE_MISSING_EXTENT;
        if (s->flags[i] & (VMDKIT_TREE_BROKEN_HINT | VMDKIT_TREE_NOT_A_DISK)) {
            /* the likely parent: a disk whose CID is this one's parentCID */
            for (size_t j = 0; j < n; j++)
                if (j != i && lib->disks[j].cid == k->parent_cid &&
                    (s->candidate[i] == VK_LIB_NONE || strcmp(s->rel[j], s->rel[s->candidate[i]]) < 0))
                    s->candidate[i] = j;
        }
    }
}

/* .vmdk files that are no disk and no disk uses as an extent. */
static int find_strays(struct tstate *s)
{
    const vk_lib *lib = s->lib;
    for (size_t i = 0; i < lib->n_others; i++) {
        const vk_lib_file *o = &lib->others[i];
        bool used = false;
        for (size_t d = 0; d < lib->n_disks && !used; d++)
            for (size_t f = 1; f < lib->disks[d].n_files && !used; f++)
                used = lib->disks[d].files[f].exists && lib->disks[d].files[f].dev == o->dev &&
                       lib->disks[d].files[f].ino == o->ino;
        int r = used ? 0
                     : add_problem(s, o->path,
                                   "not a disk, and no disk found here uses it as an extent file");
        if (r)
            return r;
    }
    return 0;
}

static int copy_problems(struct tstate *s)
{
    const vk_lib *lib = s->lib;
    int r = 0;
    for (size_t i = 0; !r && i < lib->n_problems; i++)
        r = add_problem(s, lib->problems[i].path, "%s", lib->problems[i].message);
    for (size_t i = 0; !r && i < lib->n_leftovers; i++) {
        double mib = (double)lib->leftovers[i].bytes / (1024.0 * 1024.0);
        r = lib->leftovers[i].in_use
                ? add_problem(s, lib->leftovers[i].path,
                              "being built by a running vmdkit command (%.1f MiB so far)", mib)
                : add_problem(
                      s, lib->leftovers[i].path,
                      "left by an interrupted vmdkit command (%.1f MiB): nothing uses it; the next "
                      "command making the same output removes it, or delete it",
                      mib);
    }
    return r;
}

/* Who holds the disk D, in words, or NULL. */
static int held_by(const vk_lock_snapshot *locks, const vk_lib_disk *k, char **out, vk_err *e)
{
    *out = NULL;
    for (size_t f = 0; f < k->n_files; f++) {
        vk_holders h;
        if (vk_holders_probe_in(locks, k->files[f].path, &h, e) != 0)
            continue;
        const char *who = h.vmware          ? "VMware"
                          : h.qemu_writer   ? "QEMU (writing)"
                          : h.qemu          ? "QEMU (reading)"
                          : h.vmdkit_writer ? "a vmdkit writer"
                                            : NULL;
        if (who) {
            *out = vk_strdup(who, e);
            return *out ? 0 : VMDKIT_ENOMEM;
        }
    }
    return 0;
}

/* The VMware snapshots that froze disk D: "VM: \"name\"" each. */
static int snapshots_of(const vk_lib *lib, size_t d, char ***out, size_t *n, vk_err *e)
{
    *out = NULL;
    *n = 0;
    size_t *idx, k;
    int r = vk_lib_refs_to(lib, lib->disks[d].path, VK_REFS(VK_REF_SNAPSHOT_DISK), &idx, &k, e);
    if (r || !k) {
        free(idx);
        return r;
    }
    char **names = vk_calloc(k, sizeof *names, e);
    for (size_t i = 0; names && i < k; i++) {
        const vk_lib_ref *f = &lib->refs[idx[i]];
        char buf[512];
        snprintf(buf, sizeof buf, "%s: \"%s\"",
                 f->vm != VK_LIB_NONE ? lib->vms[f->vm].name : vk_path_basename(f->file),
                 f->snapshot ? f->snapshot : "?");
        if (!(names[i] = vk_strdup(buf, e))) {
            vmdkit_paths_free(names, i);
            names = NULL;
        }
    }
    free(idx);
    if (!names)
        return VMDKIT_ENOMEM;
    *out = names;
    *n = k;
    return 0;
}

static int cmp_rel(const void *a, const void *b, void *state)
{
    const struct tstate *s = state;
    return strcmp(s->rel[*(const size_t *)a], s->rel[*(const size_t *)b]);
}

static int cmp_problem(const void *a, const void *b)
{
    const vmdkit_tree_problem *p = a, *q = b;
    int c = strcmp(p->path, q->path);
    return c ? c : strcmp(p->message, q->message);
}

/* Build the public tree from S. */
static int build(struct tstate *s, const char *dir, vmdkit_tree *t)
{
    const vk_lib *lib = s->lib;
    vk_err *e = s->e;
    size_t n = lib->n_disks;
    size_t *order = vk_calloc(n + 1, sizeof *order, e);
    size_t *pos = vk_calloc(n + 1, sizeof *pos, e);
    t->nodes = vk_calloc(n + 1, sizeof *t->nodes, e);
    t->families = vk_calloc(n + 1, sizeof *t->families, e);
    int r = order && pos && t->nodes && t->families ? 0 : VMDKIT_ENOMEM;
    vk_lock_snapshot *locks = vk_lock_snapshot_take(); /* once for every file */
    for (size_t i = 0; !r && i < n; i++)
        order[i] = i;
    if (!r && n)
        qsort_r(order, n, sizeof *order, cmp_rel, s);
    for (size_t k = 0; !r && k < n; k++)
        pos[order[k]] = k;
    for (size_t k = 0; !r && k < n; k++) {
        size_t i = order[k];
        const vk_lib_disk *d = &lib->disks[i];
        vmdkit_tree_node *o = &t->nodes[k];
        t->n_nodes++;
        o->path = s->rel[i];
        s->rel[i] = NULL;
        if ((d->create_type && !(o->create_type = vk_strdup(d->create_type, e))) ||
            (d->hint && !(o->parent_hint = vk_strdup(d->hint, e)))) {
            r = VMDKIT_ENOMEM;
            break;
        }
        o->cid = d->cid;
        o->parent_cid = d->parent_cid;
        o->capacity_bytes = d->capacity_sectors * VK_SECTOR;
        o->flags = s->flags[i];
        if (s->vm[i] != VK_LIB_NONE) {
            o->vm = vk_strdup(lib->vms[s->vm[i]].name, e);
            o->vmx = vk_path_relative(dir, lib->vms[s->vm[i]].vmx, e);
            if (!o->vm || !o->vmx)
                r = VMDKIT_ENOMEM;
        }
        if (!r && s->candidate[i] != VK_LIB_NONE &&
            !(o->candidate = vk_path_relative(dir, lib->disks[s->candidate[i]].path, e)))
            r = VMDKIT_ENOMEM;
        if (!r)
            r = snapshots_of(lib, i, &o->snapshots, &o->n_snapshots, e);
        if (!r)
            r = held_by(locks, d, &o->held_by, e);
        if (!r && s->parent[i] != VK_LIB_NONE) {
            o->parent = &t->nodes[pos[s->parent[i]]];
            o->parent_actual_cid = lib->disks[s->parent[i]].cid;
            o->parent_capacity_bytes = lib->disks[s->parent[i]].capacity_sectors * VK_SECTOR;
        } else if (!r) {
            t->families[t->n_families++] = o;
        }
        if (!r && s->n_children[i] &&
            !(o->children = vk_calloc(s->n_children[i], sizeof *o->children, e)))
            r = VMDKIT_ENOMEM;
    }
    /* children in path order: walk the nodes in that order */
    for (size_t k = 0; !r && k < n; k++) {
        vmdkit_tree_node *o = &t->nodes[k];
        if (o->parent)
            o->parent->children[o->parent->n_children++] = o;
    }
    vk_lock_snapshot_free(locks);
    free(order);
    free(pos);
    if (r)
        return r;
    for (size_t i = 0; i < s->n_prob; i++) {
        char *rel = vk_path_relative(dir, s->problems[i].path, e);
        if (!rel)
            return VMDKIT_ENOMEM;
        free(s->problems[i].path);
        s->problems[i].path = rel;
    }
    if (s->n_prob)
        qsort(s->problems, s->n_prob, sizeof *s->problems, cmp_problem);
    t->problems = s->problems;
    t->n_problems = s->n_prob;
    s->problems = NULL;
    s->n_prob = 0;
    return 0;
}

static void state_free(struct tstate *s)
{
    size_t n = s->lib ? s->lib->n_disks : 0;
    for (size_t i = 0; s->rel && i < n; i++)
        free(s->rel[i]);
    free(s->rel);
    free(s->parent);
    free(s->vm);
    free(s->candidate);
    free(s->n_children);
    free(s->flags);
    for (size_t i = 0; i < s->n_prob; i++) {
        free(s->problems[i].path);
        free(s->problems[i].message);
    }
    free(s->problems);
    free(s->kinds);
}

void vmdkit_tree_free(vmdkit_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_nodes; i++) {
        vmdkit_tree_node *n = &t->nodes[i];
        free(n->path);
        free(n->create_type);
        free(n->parent_hint);
        free(n->vm);
        free(n->vmx);
        free(n->candidate);
        free(n->children);
        free(n->held_by);
        vmdkit_paths_free(n->snapshots, n->n_snapshots);
    }
    free(t->nodes);
    free(t->families);
    for (size_t i = 0; i < t->n_problems; i++) {
        free(t->problems[i].path);
        free(t->problems[i].message);
    }
    free(t->problems);
    free(t);
}

/* The model's links, machines and relative paths (to ABS) in S. */
static int prepare_state(struct tstate *s, const char *abs)
{
    size_t n = s->lib->n_disks + 1;
    vk_err *e = s->e;
    s->parent = vk_calloc(n, sizeof *s->parent, e);
    s->vm = vk_calloc(n, sizeof *s->vm, e);
    s->candidate = vk_calloc(n, sizeof *s->candidate, e);
    s->n_children = vk_calloc(n, sizeof *s->n_children, e);
    s->flags = vk_calloc(n, sizeof *s->flags, e);
    s->rel = vk_calloc(n, sizeof *s->rel, e);
    if (!s->parent || !s->vm || !s->candidate || !s->n_children || !s->flags || !s->rel)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; i + 1 < n; i++) {
        s->vm[i] = s->candidate[i] = VK_LIB_NONE;
        if (!(s->rel[i] = vk_path_relative(abs, s->lib->disks[i].path, e)))
            return VMDKIT_ENOMEM;
    }
    link_hints(s);
    cut_loops(s);
    flag_depth(s);
    return read_machines(s);
}

static int fill_state(struct tstate *s, const char *abs)
{
    int r = prepare_state(s, abs);
    if (!r) {
        set_flags(s);
        r = find_strays(s);
    }
    if (!r)
        r = dangling_refs(s);
    if (!r)
        r = vmsd_findings(s);
    if (!r)
        r = copy_problems(s);
    return r;
}

/* The .vmsd findings S made, moved into OUT (N so far, CAP allocated). */
static int take_findings(struct tstate *s, vmdkit_vmsd_finding **out, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < s->n_prob; i++) {
        if (s->kinds[i] < 0)
            continue;
        int r = vk_grow((void **)out, cap, *n, sizeof **out, s->e);
        if (r)
            return r;
        vmdkit_vmsd_finding *f = &(*out)[(*n)++];
        f->kind = s->kinds[i];
        f->file = s->problems[i].path;
        f->message = s->problems[i].message;
        s->problems[i].path = s->problems[i].message = NULL;
    }
    return 0;
}

int vk_tree_vmsd_findings(const vk_lib *lib, size_t vm, const char *dir, vmdkit_vmsd_finding **out,
                          size_t *n, vk_err *e)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    struct tstate s = {.lib = lib, .e = e, .kind = -1};
    bool *in_tree = vk_calloc(lib->n_disks + 1, sizeof *in_tree, e);
    int r = in_tree ? prepare_state(&s, dir) : VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < lib->n_refs; i++)
        if (lib->refs[i].kind == VK_REF_SNAPSHOT_DISK && lib->refs[i].vm == vm)
            r = missing_snapshot_disk(&s, &lib->refs[i]);
    if (!r && lib->vms[vm].vmsd)
        r = vmsd_state(&s, vm);
    if (!r)
        r = slots_of(&s, vm, in_tree);
    if (!r)
        r = take_findings(&s, out, n, &cap);
    free(in_tree);
    state_free(&s);
    if (r) {
        vmdkit_vmsd_findings_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}

int vmdkit_tree_scan(const char *dir, vmdkit_tree **out, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    if (!dir || !out)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_tree_scan: dir and out are required");
    *out = NULL;
    vk_lib *lib = NULL;
    struct tstate s = {.e = e, .kind = -1};
    vmdkit_tree *t = vk_calloc(1, sizeof *t, e);
    char *abs = realpath(dir, NULL); /* the model's paths are real paths */
    if (!abs && t) {
        vk_fail_errno(e, errno, "%s: open folder", dir);
        free(t);
        return e->code;
    }
    int r = t && abs ? 0 : VMDKIT_ENOMEM;
    const char *roots[1] = {dir};
    if (!r)
        r = vk_lib_load(roots, 1, &lib, e);
    s.lib = lib;
    if (!r)
        r = fill_state(&s, abs);
    if (!r)
        r = build(&s, abs, t);
    state_free(&s);
    vk_lib_free(lib);
    free(abs);
    if (r) {
        vmdkit_tree_free(t);
        return r;
    }
    *out = t;
    return 0;
}
