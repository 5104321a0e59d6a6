/* cmd_snapshot.c - vmdkit snapshot: a new delta next to a disk. */
#include <getopt.h>
#include <limits.h>

#include "cli.h"

enum { OPT_ABSOLUTE = CLI_OPT_LONG };

static const struct cli_opt snapshot_opts[] = {
    {0, "absolute", NULL, "Store the parent as an absolute path (default: relative to the delta).",
     OPT_ABSOLUTE},
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_snapshot_help = {
    .description =
        "Create a snapshot of DISK: a new delta disk next to it whose parent is DISK's\n"
        "current top link, named with the next free number (Base.vmdk ->\n"
        "Base-000001.vmdk, Base-000001.vmdk -> Base-000002.vmdk; numbers of deleted\n"
        "snapshots are reused).  The delta has DISK's capacity, adapter type, geometry\n"
        "and hardware version, a fresh ddb.uuid and no data; a split DISK gets a split\n"
        "delta.  From then on, write to the delta: DISK itself must stay unchanged, or\n"
        "the delta's parentCID no longer matches.  The new path is printed.\n"
        "\n"
        "Given a virtual machine VM (a .vmwarevm bundle, a VM folder holding one .vmx,\n"
        "or a .vmx file), every hard disk of the machine gets such a delta - in the\n"
        "machine's folder, as VMware places them, also for a disk that lies elsewhere -\n"
        "and the .vmx is changed to name the deltas (saved atomically, after all of\n"
        "them exist), so the machine writes to them from then on and its old disks\n"
        "stay unchanged.  The machine must be shut down: a running or suspended\n"
        "machine (VMware's .lck folders, a .vmss file, checkpoint.vmState) is refused.\n"
        "The new paths are printed, one per disk.  Unlike VMware's own snapshots,\n"
        "nothing is recorded in the .vmsd file: the machine's snapshot list does not\n"
        "show these.",
    .opts = snapshot_opts,
    .exit_status = "8  the machine is running or suspended",
    .examples =
        "vmdkit snapshot Base.vmdk            # prints Base-000001.vmdk\n"
        "vmdkit snapshot ~/VMs/Win10.vmwarevm",
};

int cmd_snapshot(int argc, char **argv)
{
    struct cli_getopt g;
    int c;
    bool absolute = false;
    cli_getopt_init(&g, "snapshot");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_ABSOLUTE:
            absolute = true;
            break;
        case 'h':
            return cli_show_help("snapshot");
        default:
            return cli_bad_option("snapshot", argc, argv, c);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("snapshot", argc - optind == 0 ? "missing DISK or VM" : "unexpected argument '%s'",
                               argv[optind + 1 < argc ? optind + 1 : optind]);
    const char *disk = argv[optind];
    vmdkit_error err = {0};
    if (vmdkit_is_vm_path(disk)) {
        char **paths;
        size_t n;
        int rc = vmdkit_vm_snapshot(disk, absolute, &paths, &n, &err);
        if (rc < 0)
            return cli_fail(rc, err.msg);
        for (size_t i = 0; i < n; i++)
            printf("%s\n", paths[i]);
        vmdkit_paths_free(paths, n);
        return CLI_EXIT_OK;
    }
    char path[PATH_MAX];
    int rc = vmdkit_snapshot(disk, absolute, path, sizeof path, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    printf("%s\n", path);
    return CLI_EXIT_OK;
}
