/* cmd_snapshot.c - vmdkit snapshot: a new delta next to a disk; for a
 * machine, VMware's snapshots: take, list, revert, delete. */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

enum { OPT_ABSOLUTE = CLI_OPT_LONG, OPT_NAME, OPT_DESCRIPTION, OPT_JSON, OPT_FORCE };

static const struct cli_opt snapshot_opts[] = {
    {0, "absolute", NULL,
     "Store the parent of each new delta as an absolute path (default: relative\n"
     "to the delta).  Taking and reverting only.",
     OPT_ABSOLUTE},
    {0, "name", "NAME", "The new snapshot's name (displayName); default \"Snapshot UID\".", OPT_NAME},
    {0, "description", "TEXT", "The new snapshot's description (default: none).", OPT_DESCRIPTION},
    {0, "json", NULL, "list: print JSON (see docs/json.md).", OPT_JSON},
    {0, "force", NULL,
     "delete: also when linked clones depend on the snapshot's disks; the disks\n"
     "they are made from are kept as they are, clones of the disk merged away\n"
     "are re-pointed at its parent.",
     OPT_FORCE},
    CLI_OPTS_PROGRESS,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_snapshot_help = {
    .description = "With a disk: create a snapshot of DISK, a new delta disk next to it whose\n"
                   "parent is DISK's current top link, named with the next free number\n"
                   "(Base.vmdk -> Base-000001.vmdk, Base-000001.vmdk -> Base-000002.vmdk; numbers\n"
                   "of deleted snapshots are reused).  The delta has DISK's capacity, adapter type,\n"
                   "geometry and hardware version, a fresh ddb.uuid and no data; a split DISK gets\n"
                   "a split delta with the same pieces.  From then on, write to the delta: DISK\n"
                   "itself must stay unchanged, or the delta's parentCID no longer matches.  The\n"
                   "new path is printed.  Nothing is recorded anywhere else.\n"
                   "\n"
                   "With a virtual machine VM (a .vmwarevm bundle, a VM folder holding one .vmx,\n"
                   "or a .vmx file), the snapshot is recorded as VMware records it, in the\n"
                   "machine's .vmsd, so Fusion's and Workstation's Snapshot Manager list it:\n"
                   "every hard disk gets such a delta in the machine's folder (also a disk that\n"
                   "lies elsewhere), the .vmx names the deltas (saved atomically once all exist),\n"
                   "then the .vmsd gets the entry: a new UID (snapshot.lastUID + 1; UIDs are never\n"
                   "reused), its parent (the current snapshot), --name, --description, the time,\n"
                   "and per slot the disk the slot ran on until now - that disk is frozen by the\n"
                   "snapshot.  The new paths are printed, one per disk.  No .vmsn checkpoint is\n"
                   "written (see docs/snapshots.md).\n"
                   "\n"
                   "snapshot list VM prints the machine's snapshot tree: UID, name, time (UTC),\n"
                   "the disks frozen per slot, the description and the linked clones made from\n"
                   "it below (those its entry records and those found in the library around\n"
                   "the machine); \"You are here\" is below the current snapshot.  VM may also\n"
                   "be the .vmsd file itself.\n"
                   "\n"
                   "snapshot revert VM NAME|UID goes back to a snapshot: each slot gets a fresh\n"
                   "delta on the disk the snapshot froze, the .vmx names them, the snapshot\n"
                   "becomes the current one.  What the machine ran on until then is abandoned, as\n"
                   "in VMware: those deltas are removed when nothing else depends on them (a\n"
                   "snapshot, a linked clone, another delta), else kept and listed.\n"
                   "\n"
                   "snapshot delete VM NAME|UID deletes a snapshot: its entry goes, its children\n"
                   "get its parent, and the disk it froze is merged with the one delta built on it\n"
                   "(that delta's data goes into it, the delta is removed), so that the other\n"
                   "snapshots and the running state read exactly as before.  A disk several\n"
                   "deltas build on is kept as it is.  When linked clones depend on the disks\n"
                   "the delete would change, it is refused (exit 7, the clones named) unless\n"
                   "--force.\n"
                   "\n"
                   "NAME|UID is a UID when a snapshot has that UID, else a displayName (a name\n"
                   "several snapshots share is refused: give the UID).  To snapshot a disk or a\n"
                   "machine named list, revert or delete, write ./list.  The machine must be shut\n"
                   "down for take, revert and delete: a running or suspended machine (VMware's\n"
                   ".lck folders, a .vmss file, checkpoint.vmState) is refused.  Each step is\n"
                   "saved atomically in an order that never leaves a .vmsd naming a missing disk.",
    .opts = snapshot_opts,
    .exit_status = "5  revert: the snapshot has other disk slots than the machine now\n"
                   "6  no snapshot has that UID or name\n"
                   "7  delete: linked clones depend on the snapshot's disks (without --force)\n"
                   "8  the machine is running or suspended",
    .examples = "vmdkit snapshot Base.vmdk            # prints Base-000001.vmdk\n"
                "vmdkit snapshot --name 'before upgrade' ~/VMs/Win10.vmwarevm\n"
                "vmdkit snapshot list ~/VMs/Win10.vmwarevm\n"
                "vmdkit snapshot revert ~/VMs/Win10.vmwarevm 'before upgrade'\n"
                "vmdkit snapshot delete ~/VMs/Win10.vmwarevm 3",
};

enum snap_op { OP_TAKE, OP_LIST, OP_REVERT, OP_DELETE };

static const char *const op_names[] = {"take", "list", "revert", "delete"};

/* ---- list ---- */

/* TIME (µs since the epoch) as ISO 8601 UTC: 2026-09-03T13:42:03Z. */
static void iso_time(int64_t us, char *buf, size_t n)
{
    int64_t s = us / 1000000 - (us % 1000000 < 0);
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "?");
}

static const vmdkit_snapshot_info *by_uid(const vmdkit_snapshot_list *l, uint32_t uid)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->snapshots[i].uid == uid)
            return &l->snapshots[i];
    return NULL;
}

/* Is S a root of the tree: no parent, or one that is not in the list? */
static bool is_root(const vmdkit_snapshot_list *l, const vmdkit_snapshot_info *s)
{
    return !s->has_parent || !by_uid(l, s->parent);
}

static void print_line(const char *prefix, const char *branch, const vmdkit_snapshot_info *s)
{
    char when[40] = "no time";
    if (s->has_time)
        iso_time(s->create_time_us, when, sizeof when);
    printf("%s%s%" PRIu32 "  \"%s\"  %s", prefix, branch, s->uid, s->name ? s->name : "", when);
    for (size_t k = 0; k < s->n_disks; k++)
        printf("  %s %s", s->disks[k].node ? s->disks[k].node : "?",
               s->disks[k].file ? s->disks[k].file : "?");
    putchar('\n');
}

/* Deeper levels are not drawn (the prefix would not fit); VMware's own
 * chains stay far below this. */
#define MAX_DRAWN_DEPTH 100

/* Print S and its subtree; PREFIX is the indentation of S's line; SHOWN
 * marks the entries printed. */
static void print_subtree(const vmdkit_snapshot_list *l, const vmdkit_snapshot_info *s,
                          const char *prefix, bool last, bool top, int depth, bool *shown)
{
    const char *branch = top ? "" : last ? "└── " : "├── ";
    print_line(prefix, branch, s);
    shown[s - l->snapshots] = true;
    /* at most MAX_DRAWN_DEPTH levels of at most 6 bytes each fit here */
    char child_prefix[1024];
    const char *step = top ? "" : last ? "    " : "│   ";
    size_t plen = strlen(prefix), slen = strlen(step);
    if (plen + slen >= sizeof child_prefix)
        plen = sizeof child_prefix - 1 - slen;
    memcpy(child_prefix, prefix, plen);
    memcpy(child_prefix + plen, step, slen + 1);
    size_t n_children = 0;
    for (size_t i = 0; i < l->n; i++)
        n_children +=
            l->snapshots[i].has_parent && l->snapshots[i].parent == s->uid && &l->snapshots[i] != s;
    bool here = s->current;
    if (s->description && *s->description)
        printf("%s%s%s\n", child_prefix, n_children || here ? "│   " : "    ", s->description);
    for (size_t k = 0; k < s->n_clones; k++)
        printf("%s%slinked clone %s\n", child_prefix, n_children || here ? "│   " : "    ",
               s->clones[k]);
    if (depth >= MAX_DRAWN_DEPTH && n_children) {
        printf("%s└── ... (deeper snapshots not drawn: see --json)\n", child_prefix);
        return;
    }
    size_t drawn = 0;
    for (size_t i = 0; i < l->n; i++) {
        const vmdkit_snapshot_info *c = &l->snapshots[i];
        if (!c->has_parent || c->parent != s->uid || c == s)
            continue;
        drawn++;
        print_subtree(l, c, child_prefix, drawn == n_children && !here, false, depth + 1, shown);
    }
    if (here)
        printf("%s└── You are here\n", child_prefix);
}

static int list_human(const vmdkit_snapshot_list *l)
{
    if (!l->n) {
        printf("%s: no snapshots", l->vmsd);
        if (l->last_uid)
            printf(" (the last UID given was %" PRIu32 ")", l->last_uid);
        printf("\nYou are here\n");
        return CLI_EXIT_OK;
    }
    bool *shown = calloc(l->n, sizeof *shown);
    if (!shown) {
        cli_errorf("out of memory");
        return CLI_EXIT_IO;
    }
    printf("%s: %zu snapshot%s\n", l->vmsd, l->n, l->n == 1 ? "" : "s");
    for (size_t i = 0; i < l->n; i++)
        if (is_root(l, &l->snapshots[i]))
            print_subtree(l, &l->snapshots[i], "", true, true, 0, shown);
    /* the levels not drawn are in the tree too; what is left has its
     * parents in a loop */
    bool *deep = calloc(l->n, sizeof *deep);
    for (bool more = deep != NULL; more;) {
        more = false;
        for (size_t i = 0; i < l->n; i++) {
            const vmdkit_snapshot_info *p =
                l->snapshots[i].has_parent ? by_uid(l, l->snapshots[i].parent) : NULL;
            if (!shown[i] && !deep[i] && p && (shown[p - l->snapshots] || deep[p - l->snapshots]))
                deep[i] = more = true;
        }
    }
    bool here_shown = false;
    for (size_t i = 0; i < l->n; i++) {
        bool in_tree = shown[i] || (deep && deep[i]);
        here_shown = here_shown || (shown[i] && l->snapshots[i].current);
        if (in_tree && !shown[i] && l->snapshots[i].current)
            printf("You are here (below snapshot %" PRIu32 ", not drawn)\n", l->snapshots[i].uid);
        here_shown = here_shown || (in_tree && l->snapshots[i].current);
        if (!in_tree)
            print_line("", "(parents in a loop) ", &l->snapshots[i]);
    }
    free(deep);
    if (!here_shown)
        printf("You are here%s\n",
               l->has_current ? " (snapshot.current names no snapshot in the tree)" : "");
    free(shown);
    return CLI_EXIT_OK;
}

static int list_json(const vmdkit_snapshot_list *l)
{
    json_object *root = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(root, "vmsd", json_object_new_string(l->vmsd));
    json_object_object_add(root, "last-uid", json_object_new_int64(l->last_uid));
    if (l->has_current)
        json_object_object_add(root, "current", json_object_new_int64(l->current));
    for (size_t i = 0; i < l->n; i++) {
        const vmdkit_snapshot_info *s = &l->snapshots[i];
        json_object *o = json_object_new_object(), *disks = json_object_new_array(),
                    *children = json_object_new_array();
        json_object_object_add(o, "uid", json_object_new_int64(s->uid));
        if (s->has_parent)
            json_object_object_add(o, "parent", json_object_new_int64(s->parent));
        cli_json_add_str(o, "name", s->name);
        cli_json_add_str(o, "description", s->description);
        if (s->has_time) {
            char when[40];
            iso_time(s->create_time_us, when, sizeof when);
            json_object_object_add(o, "time", json_object_new_string(when));
            json_object_object_add(o, "create-time-us", json_object_new_int64(s->create_time_us));
        }
        cli_json_add_str(o, "vmsn", s->vmsn);
        cli_json_add_bool(o, "current", s->current);
        for (size_t k = 0; k < s->n_disks; k++) {
            json_object *d = json_object_new_object();
            cli_json_add_str(d, "node", s->disks[k].node);
            cli_json_add_str(d, "file", s->disks[k].file);
            json_object_array_add(disks, d);
        }
        json_object_object_add(o, "disks", disks);
        for (size_t k = 0; k < l->n; k++)
            if (l->snapshots[k].has_parent && l->snapshots[k].parent == s->uid && k != i)
                json_object_array_add(children, json_object_new_int64(l->snapshots[k].uid));
        json_object_object_add(o, "children", children);
        if (s->n_clones) {
            json_object *clones = json_object_new_array();
            for (size_t k = 0; k < s->n_clones; k++)
                json_object_array_add(clones, json_object_new_string(s->clones[k]));
            json_object_object_add(o, "clones", clones);
        }
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "snapshots", arr);
    return cli_json_print(root);
}

static int run_list(const char *vm, bool json)
{
    vmdkit_error err = {0};
    vmdkit_snapshot_list *l;
    int rc = vmdkit_vm_snapshot_list(vm, &l, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    rc = json ? list_json(l) : list_human(l);
    vmdkit_snapshot_list_free(l);
    return rc;
}

/* ---- take, revert, delete ---- */

static void print_result(const vmdkit_snapshot_result *res, enum snap_op op)
{
    if (op == OP_REVERT)
        printf("reverted to snapshot %" PRIu32 "\n", res->uid);
    if (op == OP_DELETE)
        printf("deleted snapshot %" PRIu32 "\n", res->uid);
    for (size_t i = 0; i < res->n_new_disks; i++)
        printf(op == OP_TAKE ? "%s\n" : "writes to %s\n", res->new_disks[i]);
    for (size_t i = 0; i < res->n_merged; i++)
        printf("merged %s into %s\n", res->merged_from[i], res->merged_into[i]);
    for (size_t i = 0; i < res->n_removed; i++)
        printf("removed %s\n", res->removed[i]);
    for (size_t i = 0; i < res->n_kept; i++)
        printf("kept %s\n", res->kept[i]);
}

static int run_vm_op(enum snap_op op, const char *vm, const char *which, vmdkit_snapshot_opts *o,
                     enum cli_progress_mode progress)
{
    vmdkit_error err = {0};
    vmdkit_snapshot_result res;
    struct cli_progress prog;
    cli_progress_start(&prog, progress);
    if (prog.enabled) {
        o->progress = cli_progress_cb;
        o->progress_opaque = &prog;
    }
    int rc = op == OP_TAKE     ? vmdkit_vm_snapshot_take(vm, o, &res, &err)
             : op == OP_REVERT ? vmdkit_vm_snapshot_revert(vm, which, o, &res, &err)
                               : vmdkit_vm_snapshot_delete(vm, which, o, &res, &err);
    cli_progress_done(&prog, rc == 0);
    /* what was done, also when a later step failed */
    if (rc == 0 || res.n_new_disks || res.n_removed || res.n_merged || res.n_kept)
        print_result(&res, op);
    vmdkit_snapshot_result_free(&res);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}

static bool is_op_word(const char *s, enum snap_op *op)
{
    for (int i = OP_LIST; i <= OP_DELETE; i++)
        if (strcmp(s, op_names[i]) == 0) {
            *op = (enum snap_op)i;
            return true;
        }
    return false;
}

int cmd_snapshot(int argc, char **argv)
{
    struct cli_getopt g;
    int c;
    bool json = false;
    unsigned given = 0; /* options seen, by bit: which operation they belong to is checked below */
    vmdkit_snapshot_opts o = {.struct_size = sizeof o};
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    cli_getopt_init(&g, "snapshot");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_ABSOLUTE:
            o.absolute_hint = true;
            given |= 1u << 0;
            break;
        case OPT_NAME:
            o.name = optarg;
            given |= 1u << 1;
            break;
        case OPT_DESCRIPTION:
            o.description = optarg;
            given |= 1u << 2;
            break;
        case OPT_JSON:
            json = true;
            given |= 1u << 3;
            break;
        case OPT_FORCE:
            o.force = true;
            given |= 1u << 4;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress))
                return cli_usage_error("snapshot", "unknown progress format '%s'", optarg);
            given |= 1u << 5;
            break;
        case 'h':
            return cli_show_help("snapshot");
        default:
            return cli_bad_option("snapshot", argc, argv, c);
        }
    }
    int have = argc - optind;
    char **ops = argv + optind;
    enum snap_op op = OP_TAKE;
    struct stat st;
    /* "list", "revert", "delete" name an operation, unless a lone operand
     * names an existing file of that name */
    if (have >= 1 && is_op_word(ops[0], &op) && !(have == 1 && lstat(ops[0], &st) == 0)) {
        ops++;
        have--;
    } else {
        op = OP_TAKE;
    }
    int want = op == OP_REVERT || op == OP_DELETE ? 2 : 1;
    if (have < want)
        return cli_usage_error("snapshot", "%s%smissing %s", op == OP_TAKE ? "" : op_names[op],
                               op == OP_TAKE ? "" : ": ",
                               op == OP_TAKE ? "DISK or VM"
                               : have == 0   ? (want == 2 ? "VM and NAME|UID" : "VM")
                                             : "NAME|UID");
    if (have > want)
        return cli_usage_error("snapshot", "unexpected argument '%s'", ops[want]);

    /* each option belongs to some operations */
    static const struct {
        unsigned bit;
        const char *name;
        unsigned ops; /* bits of enum snap_op */
    } owners[] = {
        {1u << 0, "--absolute", 1u << OP_TAKE | 1u << OP_REVERT},
        {1u << 1, "--name", 1u << OP_TAKE},
        {1u << 2, "--description", 1u << OP_TAKE},
        {1u << 3, "--json", 1u << OP_LIST},
        {1u << 4, "--force", 1u << OP_DELETE},
        {1u << 5, "--progress", 1u << OP_DELETE},
    };
    for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++)
        if ((given & owners[i].bit) && !(owners[i].ops & (1u << op)))
            return cli_usage_error("snapshot", "%s does not apply to %s", owners[i].name,
                                   op == OP_TAKE ? "taking a snapshot" : op_names[op]);

    const char *target = ops[0];
    if (op == OP_LIST)
        return run_list(target, json);
    if (op != OP_TAKE || vmdkit_is_vm_path(target))
        return run_vm_op(op, target, want == 2 ? ops[1] : NULL, &o, progress);
    if (o.name || o.description)
        return cli_usage_error("snapshot", "--name and --description need a virtual machine: a "
                                           "disk's snapshot is recorded nowhere");
    vmdkit_error err = {0};
    char *path;
    int rc = vmdkit_snapshot(target, o.absolute_hint ? VMDKIT_DELTA_ABSOLUTE_HINT : 0, &path, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    printf("%s\n", path);
    free(path);
    return CLI_EXIT_OK;
}
