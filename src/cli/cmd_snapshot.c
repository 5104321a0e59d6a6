/* cmd_snapshot.c - vmdkit snapshot: a new delta next to a disk. */
#include <getopt.h>
#include <limits.h>

#include "cli.h"

const struct cli_help cmd_snapshot_help = {
    .description =
        "Create a snapshot of DISK: a new delta disk next to it whose parent is DISK's\n"
        "current top link, named with the next free number (Base.vmdk ->\n"
        "Base-000001.vmdk, Base-000001.vmdk -> Base-000002.vmdk; numbers of deleted\n"
        "snapshots are reused).  The delta has DISK's capacity, adapter type, geometry\n"
        "and hardware version, a fresh ddb.uuid and no data; a split DISK gets a split\n"
        "delta.  From then on, write to the delta: DISK itself must stay unchanged, or\n"
        "the delta's parentCID no longer matches.  The new path is printed.",
    .options =
        "--absolute\n"
        "    Store the parent as an absolute path (default: relative to the delta).\n"
        "-h, --help\n"
        "    Show this manual.",
    .exit_status = "",
    .examples =
        "vmdkit snapshot Base.vmdk            # prints Base-000001.vmdk\n"
        "vmdkit snapshot ~/VMs/Win10.vmwarevm",
};

static const struct option longopts[] = {
    {"absolute", no_argument, NULL, 'A'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_snapshot(int argc, char **argv)
{
    int c;
    bool absolute = false;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'A':
            absolute = true;
            break;
        case 'h':
            cli_print_command_help(cli_find_command("snapshot"));
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("snapshot", argc, argv, c);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("snapshot", argc - optind == 0 ? "missing DISK" : "unexpected argument '%s'",
                               argv[optind + 1 < argc ? optind + 1 : optind]);
    const char *disk = argv[optind];
    vmdkit_error err = {0};
    char path[PATH_MAX];
    int rc = vmdkit_snapshot(disk, absolute, path, sizeof path, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    printf("%s\n", path);
    return CLI_EXIT_OK;
}
