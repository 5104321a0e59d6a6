/* cmd_defrag.c - vmdkit defrag: the grains of a sparse disk in virtual order. */
#include <getopt.h>

#include "cli.h"

enum { OPT_JSON = CLI_OPT_LONG, OPT_ROOT };

static const struct cli_opt defrag_opts[] = {
    {0, "json", NULL,
     "Print {\"path\", \"bytes-before\", \"bytes-after\", \"file-bytes-before\",\n"
     "\"file-bytes-after\"} instead of the summary line.",
     OPT_JSON},
    {0, "root", "DIR",
     "The library searched for running machines that use DISK (default: the\n"
     "folders around DISK, as for commit).",
     OPT_ROOT},
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_defrag_help = {
    .description = "Rewrite each sparse extent file of DISK with its grains in virtual order, so\n"
                   "that sequential reads in the guest become sequential on the host.  Every\n"
                   "grain stays (run compact to drop the zero ones); the content and the CID\n"
                   "stay.  Each file is rebuilt beside the disk and takes the old file's name\n"
                   "once complete, as compact does: it needs free space for a copy, refuses a\n"
                   "disk in use, and a killed defrag leaves each file old or new.\n"
                   "\n"
                   "Takes monolithicSparse and twoGbMaxExtentSparse disks, bases and deltas.\n"
                   "\n"
                   "Prints \"DISK: BEFORE -> AFTER bytes on the host\".",
    .opts = defrag_opts,
    .exit_status = "5  DISK is not a sparse disk (flat, streamOptimized, raw)\n"
                   "8  DISK is in use",
    .examples = "vmdkit defrag disk.vmdk",
};

int cmd_defrag(int argc, char **argv)
{
    vmdkit_compact_opts o = {.struct_size = sizeof o};
    bool json = false;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "defrag");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case OPT_ROOT:
            o.root = optarg;
            break;
        case 'h':
            return cli_show_help("defrag");
        default:
            return cli_bad_option("defrag", argc, argv, c);
        }
    }
    int rc = cli_operands("defrag", argc, argv, 1, "DISK");
    if (rc)
        return rc;
    const char *disk = argv[optind];
    vmdkit_compact_result res;
    vmdkit_error err = {0};
    rc = vmdkit_defrag(disk, &o, &res, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    if (json) {
        json_object *obj = json_object_new_object();
        cli_json_add_str(obj, "path", disk);
        cli_json_add_u64(obj, "bytes-before", res.bytes_before);
        cli_json_add_u64(obj, "bytes-after", res.bytes_after);
        cli_json_add_u64(obj, "file-bytes-before", res.file_bytes_before);
        cli_json_add_u64(obj, "file-bytes-after", res.file_bytes_after);
        return cli_json_print(obj);
    }
    printf("%s: %llu -> %llu bytes on the host\n", disk, (unsigned long long)res.bytes_before,
           (unsigned long long)res.bytes_after);
    return CLI_EXIT_OK;
}
