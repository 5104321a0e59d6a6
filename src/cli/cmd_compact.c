/* cmd_compact.c - vmdkit compact: drop the all-zero grains of a sparse disk. */
#include <getopt.h>

#include "cli.h"

enum { OPT_JSON = CLI_OPT_LONG, OPT_ROOT, OPT_DEDUPE_PARENT };

static const struct cli_opt compact_opts[] = {
    {0, "dedupe-parent", NULL,
     "DISK is a delta: also drop its grains that hold exactly what its parent\n"
     "chain reads at the same place (a guest that wrote the same data again);\n"
     "the delta then reads through to the parent, the same bytes.  Grains that\n"
     "differ in any byte stay.  Refused on a disk without a parent (exit 9).",
     OPT_DEDUPE_PARENT},
    {0, "json", NULL,
     "Print {\"path\", \"bytes-before\", \"bytes-after\", \"file-bytes-before\",\n"
     "\"file-bytes-after\", \"grains-dropped\", \"grains-deduped\"} instead of the\n"
     "summary line.",
     OPT_JSON},
    {0, "root", "DIR",
     "The library searched for running machines that use DISK (default: the\n"
     "folders around DISK, as for commit).",
     OPT_ROOT},
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_compact_help = {
    .description = "Give back the space of DISK's all-zero grains, such as those a guest zero-fill\n"
                   "or a trim left: each sparse extent file is rewritten without them, its other\n"
                   "grains packed in virtual order, and takes the old file's name once complete.\n"
                   "The content stays byte for byte, and so does the CID: deltas of DISK keep\n"
                   "working.  In a delta, a zero grain over parent data that is not zero is kept\n"
                   "(as a zeroed-grain entry on version 2 headers), since it hides that data.\n"
                   "\n"
                   "Takes monolithicSparse and twoGbMaxExtentSparse disks, bases and deltas.  It\n"
                   "needs free space for a copy of the extent files, and refuses a disk that\n"
                   "VMware, QEMU or another vmdkit holds, or that a running machine uses.  A\n"
                   "killed compact leaves each file old or new, both reading the same; the next\n"
                   "run removes what it left.  When the rewrite would give no space back, the\n"
                   "files are left as they were.\n"
                   "\n"
                   "Prints \"DISK: BEFORE -> AFTER bytes on the host, N zero grains dropped\"\n"
                   "(with --dedupe-parent also \", M grains equal to the parent dropped\").",
    .opts = compact_opts,
    .exit_status = "5  DISK is not a sparse disk (flat, streamOptimized, raw)\n"
                   "8  DISK is in use\n"
                   "9  --dedupe-parent on a disk without a parent",
    .examples = "vmdkit compact disk.vmdk\n"
                "vmdkit compact --json disk.vmdk | jq '.\"bytes-after\"'\n"
                "vmdkit compact --dedupe-parent disk-000001.vmdk",
};

int cli_run_rewrite(const char *name, int argc, char **argv, cli_rewrite_fn rewrite, bool dropped)
{
    vmdkit_compact_opts o = {.struct_size = sizeof o};
    bool json = false;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, name);
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case OPT_ROOT:
            o.root = optarg;
            break;
        case OPT_DEDUPE_PARENT:
            o.flags |= VMDKIT_COMPACT_DEDUPE_PARENT;
            break;
        case 'h':
            return cli_show_help(name);
        default:
            return cli_bad_option(name, argc, argv, c);
        }
    }
    int rc = cli_operands(name, argc, argv, 1, "DISK");
    if (rc)
        return rc;
    const char *disk = argv[optind];
    vmdkit_compact_result res;
    vmdkit_error err = {0};
    rc = rewrite(disk, &o, &res, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    if (json) {
        json_object *obj = json_object_new_object();
        cli_json_add_str(obj, "path", disk);
        cli_json_add_u64(obj, "bytes-before", res.bytes_before);
        cli_json_add_u64(obj, "bytes-after", res.bytes_after);
        cli_json_add_u64(obj, "file-bytes-before", res.file_bytes_before);
        cli_json_add_u64(obj, "file-bytes-after", res.file_bytes_after);
        if (dropped) {
            cli_json_add_u64(obj, "grains-dropped", res.grains_dropped);
            cli_json_add_u64(obj, "grains-deduped", res.grains_deduped);
        }
        return cli_json_print(obj);
    }
    printf("%s: %llu -> %llu bytes on the host", disk, (unsigned long long)res.bytes_before,
           (unsigned long long)res.bytes_after);
    if (dropped)
        printf(", %llu zero grains dropped", (unsigned long long)res.grains_dropped);
    if (o.flags & VMDKIT_COMPACT_DEDUPE_PARENT)
        printf(", %llu grains equal to the parent dropped", (unsigned long long)res.grains_deduped);
    putchar('\n');
    return CLI_EXIT_OK;
}

int cmd_compact(int argc, char **argv)
{
    return cli_run_rewrite("compact", argc, argv, vmdkit_compact, true);
}
