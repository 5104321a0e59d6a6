/* cmd_compact.c - vmdkit compact: drop the all-zero grains of a sparse disk. */
#include <getopt.h>

#include "cli.h"

const struct cli_opt cli_opts_rewrite_root[] = {
    {0, "root", "DIR",
     "The library searched for running machines that use DISK (default: the\n"
     "folders around DISK, as for commit).",
     CLI_REWRITE_ROOT},
    CLI_OPTS_END,
};

static const struct cli_opt compact_opts[] = {
    {0, "chain", NULL,
     "Compact every link of DISK's chain, its base first and DISK last (with\n"
     "--dedupe-parent the links with a parent are also deduplicated).  No link\n"
     "above reads differently at any moment, so a killed run leaves a whole\n"
     "chain; every link is checked (type, holders) before the first changes.",
     CLI_REWRITE_CHAIN},
    {0, "dedupe-parent", NULL,
     "DISK is a delta: also drop its grains that hold exactly what its parent\n"
     "chain reads at the same place (a guest that wrote the same data again);\n"
     "the delta then reads through to the parent, the same bytes.  Grains that\n"
     "differ in any byte stay.  Refused on a disk without a parent (exit 9).",
     CLI_REWRITE_DEDUPE_PARENT},
    {0, "json", NULL,
     "Print {\"path\", \"bytes-before\", \"bytes-after\", \"file-bytes-before\",\n"
     "\"file-bytes-after\", \"grains-dropped\", \"grains-deduped\"} instead of the\n"
     "summary line (with --chain, sums over the links); for a VM one object\n"
     "{\"vm\", \"disks\": [those objects]}.",
     CLI_REWRITE_JSON},
    CLI_OPTS_REWRITE_ROOT,
    CLI_OPTS_PROGRESS,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_compact_help = {
    .description = "Give back the space of DISK's all-zero grains, such as those a guest zero-fill\n"
                   "or a trim left, in place: in each sparse extent file the last kept grains\n"
                   "move into the dropped ones' places and the file is cut after them.  An extent\n"
                   "laid out otherwise is rewritten without them into a copy that takes the old\n"
                   "file's name once complete (that needs free space for the copy).\n"
                   "The content stays byte for byte, and so does the CID: deltas of DISK keep\n"
                   "working.  In a delta, a zero grain over parent data that is not zero is kept\n"
                   "(as a zeroed-grain entry on version 2 headers), since it hides that data.\n"
                   "\n"
                   "Takes monolithicSparse and twoGbMaxExtentSparse disks, bases and deltas.  It\n"
                   "refuses a disk that VMware, QEMU or another vmdkit holds, or that a running\n"
                   "machine uses.  A killed compact leaves the disk reading the same, with at\n"
                   "most leaked space that check reports (exit 3); the next run finishes.  When\n"
                   "nothing would give space back, the files are left as they were.\n"
                   "\n"
                   "VM, a machine (a .vmwarevm or VM folder, or its .vmx), stands for each disk\n"
                   "its .vmx names, in that order (with --chain, each one's chain); a machine\n"
                   "that runs or is suspended is refused before any disk is touched, and the\n"
                   "first disk that fails ends the run with its exit status (those before it\n"
                   "stay done).\n"
                   "\n"
                   "Prints \"DISK: BEFORE -> AFTER bytes on the host, N zero grains dropped\"\n"
                   "(with --dedupe-parent also \", M grains equal to the parent dropped\"; with\n"
                   "--chain \"DISK and its parents: ...\", the sums over the links), one line\n"
                   "per disk of a VM.  With -p, one progress report per disk (bytes of\n"
                   "virtual disk rewritten, over every link with --chain).",
    .opts = compact_opts,
    .exit_status = "5  DISK is not a sparse disk (flat, streamOptimized, raw)\n"
                   "6  VM names no hard disk\n"
                   "8  DISK is in use, or VM runs or is suspended\n"
                   "9  --dedupe-parent on a disk without a parent (without --chain)",
    .examples = "vmdkit compact disk.vmdk\n"
                "vmdkit compact --json disk.vmdk | jq '.\"bytes-after\"'\n"
                "vmdkit compact --dedupe-parent disk-000001.vmdk\n"
                "vmdkit compact --chain disk-000002.vmdk\n"
                "vmdkit compact -p ~/VMs/Dev.vmwarevm",
};

/* How one run rewrites each disk. */
struct rewrite_run {
    const char *name;
    cli_rewrite_fn rewrite;
    bool dropped; /* compact: report the grains dropped */
    bool json;
    enum cli_progress_mode progress;
    vmdkit_compact_opts o;
};

static json_object *result_json(const struct rewrite_run *run, const char *disk,
                                const vmdkit_compact_result *res)
{
    json_object *obj = json_object_new_object();
    cli_json_add_str(obj, "path", disk);
    cli_json_add_u64(obj, "bytes-before", res->bytes_before);
    cli_json_add_u64(obj, "bytes-after", res->bytes_after);
    cli_json_add_u64(obj, "file-bytes-before", res->file_bytes_before);
    cli_json_add_u64(obj, "file-bytes-after", res->file_bytes_after);
    if (run->dropped) {
        cli_json_add_u64(obj, "grains-dropped", res->grains_dropped);
        cli_json_add_u64(obj, "grains-deduped", res->grains_deduped);
    }
    return obj;
}

static void print_result(const struct rewrite_run *run, const char *disk,
                         const vmdkit_compact_result *res)
{
    printf("%s%s: %llu -> %llu bytes on the host", disk,
           (run->o.flags & VMDKIT_COMPACT_CHAIN) ? " and its parents" : "",
           (unsigned long long)res->bytes_before, (unsigned long long)res->bytes_after);
    if (run->dropped)
        printf(", %llu zero grains dropped", (unsigned long long)res->grains_dropped);
    if (run->o.flags & VMDKIT_COMPACT_DEDUPE_PARENT)
        printf(", %llu grains equal to the parent dropped", (unsigned long long)res->grains_deduped);
    putchar('\n');
    fflush(stdout);
}

/* Rewrite DISK, its progress shown as asked; 0 or an exit status. */
static int rewrite_one(const struct rewrite_run *run, const char *disk, vmdkit_compact_result *res)
{
    vmdkit_compact_opts o = run->o;
    struct cli_progress prog;
    cli_progress_start(&prog, run->progress);
    /* also when nothing is shown: the callback is how a signal cancels */
    o.progress = cli_progress_cb;
    o.progress_opaque = &prog;
    vmdkit_error err = {0};
    cli_cancel_on_signals();
    int rc = run->rewrite(disk, &o, res, &err);
    cli_progress_done(&prog, rc == 0);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}

/* Each disk of the machine VM in turn, stopping at the first failure (its
 * exit status); with --json one object {"vm", "disks": [...]} of those done. */
static int rewrite_vm(const struct rewrite_run *run, const char *vm)
{
    char *vmx = NULL, **disks = NULL;
    size_t n = 0;
    int rc = cli_vm_disks(vm, &vmx, &disks, &n);
    if (rc)
        return rc;
    json_object *arr = run->json ? json_object_new_array() : NULL;
    for (size_t i = 0; !rc && i < n; i++) {
        vmdkit_compact_result res;
        if ((rc = rewrite_one(run, disks[i], &res)))
            break;
        if (arr)
            json_object_array_add(arr, result_json(run, disks[i], &res));
        else
            print_result(run, disks[i], &res);
    }
    if (arr) {
        json_object *obj = json_object_new_object();
        cli_json_add_str(obj, "vm", vmx);
        json_object_object_add(obj, "disks", arr);
        int jrc = cli_json_print(obj);
        rc = rc ? rc : jrc;
    }
    vmdkit_paths_free(disks, n);
    free(vmx);
    return rc;
}

int cli_run_rewrite(const char *name, int argc, char **argv, cli_rewrite_fn rewrite, bool dropped)
{
    struct rewrite_run run = {.name = name,
                              .rewrite = rewrite,
                              .dropped = dropped,
                              .progress = CLI_PROGRESS_NONE,
                              .o = {.struct_size = sizeof run.o}};
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, name);
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case CLI_REWRITE_JSON:
            run.json = true;
            break;
        case CLI_REWRITE_ROOT:
            run.o.root = optarg;
            break;
        case CLI_REWRITE_DEDUPE_PARENT:
            run.o.flags |= VMDKIT_COMPACT_DEDUPE_PARENT;
            break;
        case CLI_REWRITE_CHAIN:
            run.o.flags |= VMDKIT_COMPACT_CHAIN;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &run.progress))
                return cli_usage_error(name, "unknown progress format '%s'", optarg);
            break;
        case 'h':
            return cli_show_help(name);
        default:
            return cli_bad_option(name, argc, argv, c);
        }
    }
    int rc = cli_operands(name, argc, argv, 1, "DISK|VM");
    if (rc)
        return rc;
    const char *disk = argv[optind];
    if (vmdkit_is_vm_path(disk))
        return rewrite_vm(&run, disk);
    vmdkit_compact_result res;
    if ((rc = rewrite_one(&run, disk, &res)))
        return rc;
    if (run.json)
        return cli_json_print(result_json(&run, disk, &res));
    print_result(&run, disk, &res);
    return CLI_EXIT_OK;
}

int cmd_compact(int argc, char **argv)
{
    return cli_run_rewrite("compact", argc, argv, vmdkit_compact, true);
}
