/* tree.c - the families of disks in a VM library: every disk found under a
 * folder, linked to its parent through its hint, with the machines that
 * use each link and what is wrong with each link. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "libwalk.h"
#include "path.h"
#include "scan.h"
#include "vm.h"

/* Parents outside the folder are followed, up to this many disks in all. */
#define TREE_MAX_NODES 100000

struct tnode {
    char *path;         /* as found or as a hint resolved */
    dev_t dev;
    ino_t ino;
    uint32_t cid, pcid;
    uint64_t cap_sectors;
    char *create_type;
    char *hint;
    ptrdiff_t parent;   /* index, or -1 */
    ptrdiff_t vm;       /* index into vms, or -1 */
    ptrdiff_t candidate;
    unsigned flags;
    size_t n_children;
    char *rel;
};

struct tvm {
    char *path;
    char *name;
};

struct fileid {
    dev_t dev;
    ino_t ino;
    char *path;         /* for files that are no disk */
};

struct tstate {
    struct tnode *nodes;
    size_t n, cap;
    struct tvm *vms;
    size_t n_vms, cap_vms;
    char **vmx_paths;
    size_t n_vmx, cap_vmx;
    struct fileid *extents;  /* files that some disk uses as an extent */
    size_t n_ext, cap_ext;
    struct fileid *others;   /* .vmdk files that are no disk */
    size_t n_oth, cap_oth;
    vmdkit_tree_problem *problems;
    size_t n_prob, cap_prob;
    vk_err *e;
};

/* Grow the array *A of *CAP elements of SIZE bytes to hold N + 1. */
static int grow(void **a, size_t *cap, size_t n, size_t size, vk_err *e)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *na = realloc(*a, ncap * size);
    if (!na)
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory");
    *a = na;
    *cap = ncap;
    return 0;
}

static int add_problem(struct tstate *s, const char *path, const char *fmt, ...) VK_PRINTF(3, 4);
static int add_problem(struct tstate *s, const char *path, const char *fmt, ...)
{
    int r = grow((void **)&s->problems, &s->cap_prob, s->n_prob, sizeof *s->problems, s->e);
    if (r)
        return r;
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

static int add_fileid(struct fileid **a, size_t *n, size_t *cap, const char *path, bool keep_path,
                      vk_err *e)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    int r = grow((void **)a, cap, *n, sizeof **a, e);
    if (r)
        return r;
    struct fileid *f = &(*a)[*n];
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->path = NULL;
    if (keep_path && !(f->path = vk_strdup(path, e)))
        return VMDKIT_ENOMEM;
    (*n)++;
    return 0;
}

static ptrdiff_t find_node(const struct tstate *s, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->nodes[i].dev == dev && s->nodes[i].ino == ino)
            return (ptrdiff_t)i;
    return -1;
}

/* Add the disk at PATH described by D; *IDX receives its index. */
static int add_node(struct tstate *s, const char *path, const vk_descriptor *d, ptrdiff_t *idx)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return vk_fail(s->e, VMDKIT_EIO, "%s: vanished while scanning", path);
    if ((*idx = find_node(s, st.st_dev, st.st_ino)) >= 0)
        return 0;
    if (s->n >= TREE_MAX_NODES)
        return vk_fail(s->e, VMDKIT_ELIMIT, "%s: more than %d disks", path, TREE_MAX_NODES);
    int r = grow((void **)&s->nodes, &s->cap, s->n, sizeof *s->nodes, s->e);
    if (r)
        return r;
    struct tnode *t = &s->nodes[s->n];
    memset(t, 0, sizeof *t);
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->cid = d->cid;
    t->pcid = d->parent_hint ? d->parent_cid : VK_CID_NONE;
    t->parent = t->vm = t->candidate = -1;
    uint64_t cap = 0;
    vk_err ignore;
    if (vk_descriptor_capacity(d, &cap, &ignore) == 0)
        t->cap_sectors = cap;
    if (!(t->path = vk_strdup(path, s->e)) ||
        (d->create_type && !(t->create_type = vk_strdup(d->create_type, s->e))) ||
        (d->parent_hint && !(t->hint = vk_strdup(d->parent_hint, s->e)))) {
        free(t->path);
        free(t->create_type);
        return VMDKIT_ENOMEM;
    }
    *idx = (ptrdiff_t)s->n++;
    /* its extent files are accounted for */
    char *dir = vk_path_dirname(path, s->e);
    if (!dir)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < d->n_extents; i++) {
        if (!d->extents[i].filename)
            continue;
        char *x = vk_path_join(dir, d->extents[i].filename, s->e);
        r = x ? add_fileid(&s->extents, &s->n_ext, &s->cap_ext, x, false, s->e) : VMDKIT_ENOMEM;
        free(x);
    }
    free(dir);
    return r;
}

static int collect(void *opaque, const char *path, enum vk_lib_kind kind, const vk_descriptor *d,
                   const char *problem)
{
    struct tstate *s = opaque;
    ptrdiff_t idx;
    switch (kind) {
    case VK_LIB_DISK:
        return add_node(s, path, d, &idx);
    case VK_LIB_BAD_DISK:
        return add_problem(s, path, "not a valid disk: %s", problem);
    case VK_LIB_OTHER_VMDK:
        return add_fileid(&s->others, &s->n_oth, &s->cap_oth, path, true, s->e);
    case VK_LIB_VMX: {
        int r = grow((void **)&s->vmx_paths, &s->cap_vmx, s->n_vmx, sizeof *s->vmx_paths, s->e);
        if (r)
            return r;
        if (!(s->vmx_paths[s->n_vmx] = vk_strdup(path, s->e)))
            return VMDKIT_ENOMEM;
        s->n_vmx++;
        return 0;
    }
    }
    return 0;
}

/* The node of the disk at PATH, read and added when not seen yet (a disk
 * outside the folder).  *IDX is -1 when PATH is no disk; *WHY says why. */
static int node_for(struct tstate *s, const char *path, ptrdiff_t *idx, vk_err *why)
{
    struct stat st;
    *idx = -1;
    if (stat(path, &st) != 0) {
        vk_fail(why, VMDKIT_ENOENT, "not found");
        return 0;
    }
    if ((*idx = find_node(s, st.st_dev, st.st_ino)) >= 0)
        return 0;
    vk_descriptor d;
    bool is_disk;
    int r = vk_read_descriptor(path, &d, &is_disk, why);
    if (r == VMDKIT_ENOMEM)
        return r;
    if (!r && is_disk)
        r = add_node(s, path, &d, idx);
    else if (!r)
        vk_fail(why, VMDKIT_EFORMAT, "not a disk");
    vk_descriptor_free(&d);
    return r == VMDKIT_ENOMEM || r == VMDKIT_ELIMIT ? r : 0;
}

static int read_vms(struct tstate *s)
{
    for (size_t i = 0; i < s->n_vmx; i++) {
        const char *path = s->vmx_paths[i];
        vk_vmx *v;
        vk_vm_disk *disks;
        size_t n;
        vk_err why = {0};
        if (vk_vm_load(path, &v, &disks, &n, &why) != 0) {
            int r = add_problem(s, path, "not a readable .vmx: %s", why.msg);
            if (r)
                return r;
            continue;
        }
        int r = grow((void **)&s->vms, &s->cap_vms, s->n_vms, sizeof *s->vms, s->e);
        const char *name = vk_vmx_get(v, "displayName");
        struct tvm *m = &s->vms[s->n_vms];
        if (!r) {
            m->path = vk_strdup(path, s->e);
            m->name = vk_strdup(name && *name ? name : vk_path_basename(path), s->e);
            if (!m->path || !m->name) {
                free(m->path);
                free(m->name);
                r = VMDKIT_ENOMEM;
            } else {
                s->n_vms++;
            }
        }
        for (size_t k = 0; !r && k < n; k++) {
            ptrdiff_t idx;
            if ((r = node_for(s, disks[k].path, &idx, &why)))
                break;
            if (idx < 0) {
                r = add_problem(s, path, "%s.fileName: \"%s\": %s", disks[k].slot, disks[k].file, why.msg);
            } else if (s->nodes[idx].vm >= 0) {
                r = add_problem(s, s->nodes[idx].path, "the current disk of two machines: %s (%s) and %s (%s)",
                                s->vms[s->nodes[idx].vm].name, s->vms[s->nodes[idx].vm].path, m->name,
                                path);
            } else {
                s->nodes[idx].vm = (ptrdiff_t)(s->n_vms - 1);
            }
        }
        vk_vm_disks_free(disks, n);
        vk_vmx_free(v);
        if (r)
            return r;
    }
    return 0;
}

static int link_parents(struct tstate *s)
{
    /* S->n grows while parents outside the folder are added */
    for (size_t i = 0; i < s->n; i++) {
        if (!s->nodes[i].hint)
            continue;
        char *pp = vk_path_resolve_parent(s->nodes[i].path, s->nodes[i].hint, s->e);
        if (!pp)
            return VMDKIT_ENOMEM;
        ptrdiff_t idx;
        vk_err why = {0};
        int r = node_for(s, pp, &idx, &why);
        free(pp);
        if (r)
            return r;
        if (idx < 0)
            s->nodes[i].flags |= why.code == VMDKIT_ENOENT ? VMDKIT_TREE_BROKEN_HINT : VMDKIT_TREE_NOT_A_DISK;
        else if ((size_t)idx == i)
            s->nodes[i].flags |= VMDKIT_TREE_LOOP;
        else
            s->nodes[i].parent = idx;
    }
    return 0;
}

/* Cut every loop of parents at one of its nodes. */
static void cut_loops(struct tstate *s)
{
    for (size_t i = 0; i < s->n; i++) {
        ptrdiff_t c = (ptrdiff_t)i;
        size_t steps = 0;
        while (c >= 0 && steps <= s->n) {
            c = s->nodes[c].parent;
            steps++;
        }
        if (c >= 0) { /* still walking after n steps: C is inside a loop */
            s->nodes[c].parent = -1;
            s->nodes[c].flags |= VMDKIT_TREE_LOOP;
        }
    }
}

static void set_flags(struct tstate *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->nodes[i].parent >= 0)
            s->nodes[s->nodes[i].parent].n_children++;
    for (size_t i = 0; i < s->n; i++) {
        struct tnode *t = &s->nodes[i];
        if (t->parent >= 0) {
            const struct tnode *p = &s->nodes[t->parent];
            if (t->pcid != p->cid)
                t->flags |= VMDKIT_TREE_CID_MISMATCH;
            if (t->cap_sectors != p->cap_sectors)
                t->flags |= VMDKIT_TREE_CAPACITY_MISMATCH;
        }
        if (t->n_children > 0 && t->vm >= 0)
            t->flags |= VMDKIT_TREE_DANGER;
        if (t->flags & (VMDKIT_TREE_BROKEN_HINT | VMDKIT_TREE_NOT_A_DISK)) {
            /* the likely parent: a disk whose CID is this one's parentCID */
            for (size_t j = 0; j < s->n; j++)
                if (j != i && s->nodes[j].cid == t->pcid &&
                    (t->candidate < 0 || strcmp(s->nodes[j].rel, s->nodes[t->candidate].rel) < 0))
                    t->candidate = (ptrdiff_t)j;
        }
    }
}

static int find_strays(struct tstate *s)
{
    for (size_t i = 0; i < s->n_oth; i++) {
        bool used = false;
        for (size_t k = 0; k < s->n_ext && !used; k++)
            used = s->extents[k].dev == s->others[i].dev && s->extents[k].ino == s->others[i].ino;
        int r = used ? 0
                     : add_problem(s, s->others[i].path,
                                   "not a disk, and no disk found here uses it as an extent file");
        if (r)
            return r;
    }
    return 0;
}

static int cmp_rel(const void *a, const void *b, void *state)
{
    const struct tstate *s = state;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    return strcmp(s->nodes[i].rel, s->nodes[j].rel);
}

static int cmp_problem(const void *a, const void *b)
{
    const vmdkit_tree_problem *p = a, *q = b;
    int c = strcmp(p->path, q->path);
    return c ? c : strcmp(p->message, q->message);
}

/* PATH relative to DIR, in place of the string *P. */
static int make_relative(const char *dir, char **p, vk_err *e)
{
    char *rel = vk_path_relative(dir, *p, e);
    if (!rel)
        return VMDKIT_ENOMEM;
    free(*p);
    *p = rel;
    return 0;
}

/* Build the public tree from S (whose strings it takes over). */
static int build(struct tstate *s, const char *dir, vmdkit_tree *t)
{
    vk_err *e = s->e;
    size_t *order = vk_calloc(s->n + 1, sizeof *order, e);
    size_t *pos = vk_calloc(s->n + 1, sizeof *pos, e);
    t->nodes = vk_calloc(s->n + 1, sizeof *t->nodes, e);
    t->families = vk_calloc(s->n + 1, sizeof *t->families, e);
    int r = order && pos && t->nodes && t->families ? 0 : VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < s->n; i++)
        order[i] = i;
    if (!r && s->n)
        qsort_r(order, s->n, sizeof *order, cmp_rel, s);
    for (size_t k = 0; !r && k < s->n; k++)
        pos[order[k]] = k;
    for (size_t k = 0; !r && k < s->n; k++) {
        struct tnode *n = &s->nodes[order[k]];
        vmdkit_tree_node *o = &t->nodes[k];
        t->n_nodes++;
        o->path = n->rel;
        o->create_type = n->create_type;
        o->parent_hint = n->hint;
        n->rel = n->create_type = n->hint = NULL;
        o->cid = n->cid;
        o->parent_cid = n->pcid;
        o->capacity_bytes = n->cap_sectors * VK_SECTOR;
        o->flags = n->flags;
        if (n->vm >= 0) {
            o->vm = vk_strdup(s->vms[n->vm].name, e);
            o->vmx = vk_path_relative(dir, s->vms[n->vm].path, e);
            if (!o->vm || !o->vmx)
                r = VMDKIT_ENOMEM;
        }
        if (n->candidate >= 0 && !(o->candidate = vk_strdup(s->nodes[n->candidate].rel
                                                                 ? s->nodes[n->candidate].rel
                                                                 : t->nodes[pos[n->candidate]].path,
                                                             e)))
            r = VMDKIT_ENOMEM;
        if (n->parent >= 0) {
            o->parent = &t->nodes[pos[n->parent]];
            o->parent_actual_cid = s->nodes[n->parent].cid;
            o->parent_capacity_bytes = s->nodes[n->parent].cap_sectors * VK_SECTOR;
        } else {
            t->families[t->n_families++] = o;
        }
        if (n->n_children && !(o->children = vk_calloc(n->n_children, sizeof *o->children, e)))
            r = VMDKIT_ENOMEM;
    }
    /* children in path order: walk the nodes in that order */
    for (size_t k = 0; !r && k < s->n; k++) {
        vmdkit_tree_node *o = &t->nodes[k];
        if (o->parent)
            o->parent->children[o->parent->n_children++] = o;
    }
    free(order);
    free(pos);
    if (r)
        return r;
    for (size_t i = 0; i < s->n_prob; i++)
        if ((r = make_relative(dir, &s->problems[i].path, e)))
            return r;
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
    for (size_t i = 0; i < s->n; i++) {
        free(s->nodes[i].path);
        free(s->nodes[i].create_type);
        free(s->nodes[i].hint);
        free(s->nodes[i].rel);
    }
    free(s->nodes);
    for (size_t i = 0; i < s->n_vms; i++) {
        free(s->vms[i].path);
        free(s->vms[i].name);
    }
    free(s->vms);
    for (size_t i = 0; i < s->n_vmx; i++)
        free(s->vmx_paths[i]);
    free(s->vmx_paths);
    free(s->extents);
    for (size_t i = 0; i < s->n_oth; i++)
        free(s->others[i].path);
    free(s->others);
    for (size_t i = 0; i < s->n_prob; i++) {
        free(s->problems[i].path);
        free(s->problems[i].message);
    }
    free(s->problems);
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

int vmdkit_tree_scan(const char *dir, vmdkit_tree **out, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    e->code = 0;
    e->msg[0] = 0;
    if (!dir || !out)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_tree_scan: dir and out are required");
    *out = NULL;
    struct tstate s = { .e = e };
    vmdkit_tree *t = vk_calloc(1, sizeof *t, e);
    char *abs = vk_path_absolute(dir, e);
    int r = t && abs ? 0 : VMDKIT_ENOMEM;
    if (!r)
        r = vk_lib_walk(dir, collect, &s, e);
    if (!r)
        r = read_vms(&s);
    if (!r)
        r = link_parents(&s);
    for (size_t i = 0; !r && i < s.n; i++)
        if (!(s.nodes[i].rel = vk_path_relative(abs, s.nodes[i].path, e)))
            r = VMDKIT_ENOMEM;
    if (!r) {
        cut_loops(&s);
        set_flags(&s);
        r = find_strays(&s);
    }
    if (!r)
        r = build(&s, abs, t);
    state_free(&s);
    free(abs);
    if (r) {
        vmdkit_tree_free(t);
        return r;
    }
    *out = t;
    return 0;
}
