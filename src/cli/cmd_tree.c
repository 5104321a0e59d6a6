/* cmd_tree.c - vmdkit tree: the disk families of a VM library. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_JSON = CLI_OPT_LONG };

static const struct cli_opt tree_opts[] = {
    {0, "json", NULL, "Print JSON instead of the tree.", OPT_JSON},
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_tree_help = {
    .description = "Scan DIR (default: the current folder) - VM folders, .vmwarevm bundles, loose\n"
                   "disks, up to 16 levels deep - and print every disk family as a tree: a base\n"
                   "disk, its snapshots, and the linked clones made from them in other folders.\n"
                   "Each line shows a disk's path relative to DIR, its CID and size, and the\n"
                   "virtual machine whose current disk it is (found in the .vmx files under DIR).\n"
                   "Parents outside DIR are followed and shown with their relative path.\n"
                   "\n"
                   "Problems are flagged in brackets:\n"
                   "  broken             the parent named by parentFileNameHint is not there (or\n"
                   "                     is not a disk); a disk under DIR whose CID equals the\n"
                   "                     parentCID is named as the likely parent (repair it with\n"
                   "                     vmdkit rebase -u -b PARENT DISK)\n"
                   "  CID mismatch       the parent was modified after the child was made: both\n"
                   "                     CIDs are shown; the child's content is no longer what\n"
                   "                     it was\n"
                   "  capacity mismatch  the child and its parent differ in size\n"
                   "  DANGER             the parent of other disks is also the current disk of a\n"
                   "                     machine: running it writes into a shared parent and\n"
                   "                     breaks every child (vmdkit snapshot VM moves the machine\n"
                   "                     onto a delta of its own)\n"
                   "  loop               the parent hints lead back to this disk\n"
                   "  too deep           255 or more links below its base: never opened\n"
                   "  missing extent     an extent file its descriptor names is not there\n"
                   "Each line also shows the VMware snapshots (.vmsd) that froze the disk and who\n"
                   "has it open (VMware, QEMU, a vmdkit writer).  What belongs to no family is\n"
                   "listed at the end: damaged descriptors, stray .vmdk files, unreadable .vmx and\n"
                   ".vmsd files and folders, machines and snapshots naming missing disks, other\n"
                   "references (nvram, ISO images, cloneOf0) that lead nowhere, and the hidden\n"
                   ".vmdkit-tmp- folders of interrupted commands with their size.\n"
                   "\n"
                   "With --json the same is printed as {\"disks\": [NODE...], \"families\":\n"
                   "[INDEX...], \"problems\": [{\"path\", \"message\"}...]}: every disk once, each\n"
                   "NODE {\"path\", \"cid\", \"parent-cid\", \"capacity\", \"create-type\",\n"
                   "\"parent-hint\", \"parent\", \"vm\", \"vmx\", \"snapshots\", \"held-by\",\n"
                   "\"flags\", \"children\"}, parent and children as indices into \"disks\" (see\n"
                   "docs/json.md).",
    .opts = tree_opts,
    .exit_status = "0 also when problems are found: they are part of the output.",
    .examples = "$ vmdkit tree ~/VMs\n"
                "Base.vmwarevm/Base.vmdk  CID 4f1e0a2b  8 GiB\n"
                "├── Base.vmwarevm/Base-000001.vmdk  CID 9c0d5e11  8 GiB  VM \"Base\"\n"
                "└── Clone.vmwarevm/Clone.vmdk  CID 77ab3c02  8 GiB  VM \"Clone\"\n"
                "\n"
                "1 family, 3 disks, 2 in use by a VM\n"
                "vmdkit tree --json ~/VMs | jq '.problems'",
};

static const struct {
    unsigned flag;
    const char *name;
} flag_names[] = {
    {VMDKIT_TREE_BROKEN_HINT, "broken-hint"},
    {VMDKIT_TREE_NOT_A_DISK, "not-a-disk"},
    {VMDKIT_TREE_CID_MISMATCH, "cid-mismatch"},
    {VMDKIT_TREE_CAPACITY_MISMATCH, "capacity-mismatch"},
    {VMDKIT_TREE_DANGER, "danger"},
    {VMDKIT_TREE_LOOP, "loop"},
    {VMDKIT_TREE_TOO_DEEP, "too-deep"},
    {VMDKIT_TREE_MISSING_EXTENT, "missing-extent"},
};

#define N_FLAGS (sizeof flag_names / sizeof flag_names[0])

/* The description of one flag of N. */
static void flag_text(const vmdkit_tree_node *n, unsigned flag, char *buf, size_t size)
{
    char likely[600] = "";
    if (n->candidate)
        snprintf(likely, sizeof likely, "; likely parent: %s (its CID %08" PRIx32 " is the parentCID)",
                 n->candidate, n->parent_cid);
    switch (flag) {
    case VMDKIT_TREE_BROKEN_HINT:
        snprintf(buf, size, "broken: parent \"%s\" not found%s", n->parent_hint, likely);
        break;
    case VMDKIT_TREE_NOT_A_DISK:
        snprintf(buf, size, "broken: parent \"%s\" is not a disk%s", n->parent_hint, likely);
        break;
    case VMDKIT_TREE_CID_MISMATCH:
        snprintf(buf, size,
                 "CID mismatch: parentCID %08" PRIx32 " but the parent's CID is %08" PRIx32
                 ": the parent was modified after this disk was made",
                 n->parent_cid, n->parent_actual_cid);
        break;
    case VMDKIT_TREE_CAPACITY_MISMATCH:
        snprintf(buf, size, "capacity mismatch: %" PRIu64 " bytes, the parent %" PRIu64 " bytes",
                 n->capacity_bytes, n->parent_capacity_bytes);
        break;
    case VMDKIT_TREE_DANGER:
        snprintf(buf, size,
                 "DANGER: parent of %zu disk%s and the current disk of VM \"%s\": running it "
                 "writes into a shared parent (vmdkit snapshot %s)",
                 n->n_children, n->n_children == 1 ? "" : "s", n->vm, n->vmx);
        break;
    case VMDKIT_TREE_TOO_DEEP:
        snprintf(buf, size, "too deep: 255 or more links below its base; no chain this deep is opened");
        break;
    case VMDKIT_TREE_MISSING_EXTENT:
        snprintf(buf, size, "missing extent: a file its descriptor names is not there");
        break;
    default:
        snprintf(buf, size, "loop: the parent hints lead back to this disk");
        break;
    }
}

/* ---- human output ---- */

/* One line: the node, its machine, snapshots, holder and flags. */
static void print_line(const vmdkit_tree_node *n, const char *prefix, size_t plen, const char *branch)
{
    char size[32];
    cli_human_size(n->capacity_bytes, size, sizeof size);
    printf("%.*s%s%s  CID %08" PRIx32 "  %s", (int)plen, prefix, branch, n->path, n->cid, size);
    if (n->vm)
        printf("  VM \"%s\"", n->vm);
    for (size_t i = 0; i < n->n_snapshots; i++)
        printf("  snapshot %s", n->snapshots[i]);
    if (n->held_by)
        printf("  (in use by %s)", n->held_by);
    for (size_t i = 0; i < N_FLAGS; i++) {
        if (!(n->flags & flag_names[i].flag))
            continue;
        char text[1200];
        flag_text(n, flag_names[i].flag, text, sizeof text);
        printf("  [%s]", text);
    }
    putchar('\n');
}

/* A family, depth first, without recursion: a chain may be thousands of
 * links deep.  The indentation stops growing where the line cannot show
 * more. */
static int print_family(const vmdkit_tree_node *root)
{
    struct frame {
        const vmdkit_tree_node *node;
        size_t next_child;
        size_t plen;
    };
    enum { PREFIX_MAX = 4096 };
    char prefix[PREFIX_MAX] = "";
    size_t cap = 64, n = 0;
    struct frame *st = malloc(cap * sizeof *st);
    if (!st)
        return cli_fail(VMDKIT_ENOMEM, "out of memory");
    print_line(root, prefix, 0, "");
    st[n++] = (struct frame){root, 0, 0};
    while (n > 0) {
        struct frame *f = &st[n - 1];
        if (f->next_child == f->node->n_children) {
            n--;
            continue;
        }
        const vmdkit_tree_node *c = f->node->children[f->next_child++];
        bool last = f->next_child == f->node->n_children;
        print_line(c, prefix, f->plen, last ? "└── " : "├── ");
        /* the child's children continue its column: "│   " or four spaces */
        const char *more = last ? "    " : "│   ";
        size_t add = strlen(more), plen = f->plen;
        if (plen + add < PREFIX_MAX) {
            memcpy(prefix + plen, more, add);
            plen += add;
        }
        if (n == cap) {
            struct frame *ns = realloc(st, 2 * cap * sizeof *st);
            if (!ns) {
                free(st);
                return cli_fail(VMDKIT_ENOMEM, "out of memory");
            }
            st = ns;
            cap *= 2;
        }
        st[n++] = (struct frame){c, 0, plen};
    }
    free(st);
    return CLI_EXIT_OK;
}

static int print_human(const vmdkit_tree *t)
{
    for (size_t i = 0; i < t->n_families; i++) {
        if (i > 0)
            putchar('\n');
        int rc = print_family(t->families[i]);
        if (rc)
            return rc;
    }
    size_t vms = 0;
    for (size_t i = 0; i < t->n_nodes; i++)
        vms += t->nodes[i].vm != NULL;
    printf("%s%zu famil%s, %zu disk%s, %zu in use by a VM\n", t->n_families ? "\n" : "", t->n_families,
           t->n_families == 1 ? "y" : "ies", t->n_nodes, t->n_nodes == 1 ? "" : "s", vms);
    if (t->n_problems) {
        printf("\nProblems:\n");
        for (size_t i = 0; i < t->n_problems; i++)
            printf("  %s: %s\n", t->problems[i].path, t->problems[i].message);
    }
    return CLI_EXIT_OK;
}

/* ---- JSON output ---- */

/* Index of N in T's nodes. */
static int64_t node_index(const vmdkit_tree *t, const vmdkit_tree_node *n)
{
    return (int64_t)(n - t->nodes);
}

/* Add {"path": PATH, "message": MESSAGE} to the array PROBLEMS. */
static void add_problem(json_object *problems, const char *path, const char *message)
{
    json_object *p = json_object_new_object();
    cli_json_add_str(p, "path", path);
    cli_json_add_str(p, "message", message);
    json_object_array_add(problems, p);
}

/* One disk: flat, with its parent and children as indices into "disks",
 * so that the output grows linearly with the depth of a chain. */
static json_object *node_json(const vmdkit_tree *t, const vmdkit_tree_node *n, json_object *problems)
{
    json_object *o = json_object_new_object();
    cli_json_add_str(o, "path", n->path);
    cli_json_add_hex32(o, "cid", n->cid);
    if (n->parent_hint)
        cli_json_add_hex32(o, "parent-cid", n->parent_cid);
    else
        json_object_object_add(o, "parent-cid", NULL);
    cli_json_add_u64(o, "capacity", n->capacity_bytes);
    json_object_object_add(o, "create-type",
                           n->create_type ? json_object_new_string(n->create_type) : NULL);
    json_object_object_add(o, "parent-hint",
                           n->parent_hint ? json_object_new_string(n->parent_hint) : NULL);
    json_object_object_add(o, "parent",
                           n->parent ? json_object_new_int64(node_index(t, n->parent)) : NULL);
    json_object_object_add(o, "vm", n->vm ? json_object_new_string(n->vm) : NULL);
    json_object_object_add(o, "vmx", n->vmx ? json_object_new_string(n->vmx) : NULL);
    json_object *snaps = json_object_new_array();
    for (size_t i = 0; i < n->n_snapshots; i++)
        json_object_array_add(snaps, json_object_new_string(n->snapshots[i]));
    json_object_object_add(o, "snapshots", snaps);
    json_object_object_add(o, "held-by", n->held_by ? json_object_new_string(n->held_by) : NULL);
    json_object *flags = json_object_new_array();
    for (size_t i = 0; i < N_FLAGS; i++) {
        if (!(n->flags & flag_names[i].flag))
            continue;
        json_object_array_add(flags, json_object_new_string(flag_names[i].name));
        char text[1200];
        flag_text(n, flag_names[i].flag, text, sizeof text);
        add_problem(problems, n->path, text);
    }
    json_object_object_add(o, "flags", flags);
    if (n->flags & VMDKIT_TREE_CID_MISMATCH)
        cli_json_add_hex32(o, "parent-actual-cid", n->parent_actual_cid);
    if (n->flags & VMDKIT_TREE_CAPACITY_MISMATCH)
        cli_json_add_u64(o, "parent-capacity", n->parent_capacity_bytes);
    if (n->candidate)
        cli_json_add_str(o, "candidate", n->candidate);
    json_object *children = json_object_new_array();
    for (size_t i = 0; i < n->n_children; i++)
        json_object_array_add(children, json_object_new_int64(node_index(t, n->children[i])));
    json_object_object_add(o, "children", children);
    return o;
}

static int print_json(const vmdkit_tree *t)
{
    json_object *root = json_object_new_object();
    json_object *disks = json_object_new_array();
    json_object *families = json_object_new_array();
    json_object *problems = json_object_new_array();
    for (size_t i = 0; i < t->n_nodes; i++)
        json_object_array_add(disks, node_json(t, &t->nodes[i], problems));
    for (size_t i = 0; i < t->n_families; i++)
        json_object_array_add(families, json_object_new_int64(node_index(t, t->families[i])));
    for (size_t i = 0; i < t->n_problems; i++)
        add_problem(problems, t->problems[i].path, t->problems[i].message);
    json_object_object_add(root, "disks", disks);
    json_object_object_add(root, "families", families);
    json_object_object_add(root, "problems", problems);
    return cli_json_print(root);
}

int cmd_tree(int argc, char **argv)
{
    bool json = false;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "tree");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            return cli_show_help("tree");
        default:
            return cli_bad_option("tree", argc, argv, c);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("tree", "unexpected argument '%s'", argv[optind + 1]);
    const char *dir = optind < argc ? argv[optind] : ".";
    vmdkit_tree *t;
    vmdkit_error err = {0};
    int rc = vmdkit_tree_scan(dir, &t, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    rc = json ? print_json(t) : print_human(t);
    vmdkit_tree_free(t);
    return rc;
}
