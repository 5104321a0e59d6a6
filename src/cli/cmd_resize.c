/* cmd_resize.c - vmdkit resize: grow a disk in place. */
#include <getopt.h>

#include "cli.h"

enum { OPT_KEEP_GEOMETRY = CLI_OPT_LONG, OPT_ROOT, OPT_CHAIN };

static const struct cli_opt resize_opts[] = {
    {0, "chain", NULL,
     "Grow the whole chain DISK belongs to (DISK may be any link): its base,\n"
     "then every disk the library finds depending on it (deltas, snapshots,\n"
     "linked clones of any link), each after its parent, all to SIZE.  A crash\n"
     "in between leaves children smaller than their parents, which read as\n"
     "before (check notes them); run the command again with the same SIZE (not\n"
     "+DELTA) to finish.",
     OPT_CHAIN},
    {0, "keep-geometry", NULL, "Keep ddb.geometry.* as they are instead of recomputing them for SIZE.",
     OPT_KEEP_GEOMETRY},
    {0, "root", "DIR",
     "The library searched for disks and snapshots that depend on DISK (default:\n"
     "the folders around DISK, as for commit).",
     OPT_ROOT},
    CLI_OPTS_PROGRESS,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_resize_help = {
    .description =
        "Grow DISK to SIZE bytes, or by DELTA bytes with +DELTA, in place.  SIZE is a\n"
        "byte count with an optional suffix k, m, g or t (powers of 1024), rounded up\n"
        "to a 512-byte sector.  The new range reads as zeros; the content, the CID\n"
        "and every descriptor line stay, except the extent sizes and ddb.geometry.*\n"
        "(recomputed unless --keep-geometry).\n"
        "\n"
        "monolithicSparse disks get grain tables for the new range (the grain\n"
        "directory and its redundant copy grow, or move to the end of the file);\n"
        "twoGbMaxExtentFlat disks get their last piece topped up to the size of the\n"
        "first and new pieces after it (-f003.vmdk ...); twoGbMaxExtentSparse disks\n"
        "new pieces the size of the first (-s003.vmdk ...), the last piece keeping its\n"
        "size (its header and the descriptor cannot change in one step);\n"
        "monolithicFlat disks a longer flat file.  A monolithicSparse disk holds less\n"
        "than 2 TiB.\n"
        "\n"
        "Refused: a smaller SIZE (shrinking is not supported); streamOptimized disks\n"
        "(convert them first); without --chain, a delta (VMware refuses to grow disks\n"
        "with parents too: commit it first) and a disk that other disks or VMware\n"
        "snapshots depend on (their size would no longer match; the message names\n"
        "them); a disk VMware, QEMU or another vmdkit holds, or that a running\n"
        "machine uses (with --chain: any member).\n"
        "\n"
        "Crash-safe: new pieces and tables are written first, the descriptor last, so\n"
        "after a crash the disk has its old size or its new one, and running the\n"
        "command again finishes the job.\n"
        "\n"
        "VM, a machine (a .vmwarevm or VM folder, or its .vmx), stands for each disk\n"
        "its .vmx names, in that order, each grown to SIZE or by DELTA (with --chain,\n"
        "each one's chain); every disk is checked before the first grows, so a\n"
        "machine that runs or is suspended, or one disk that would be refused, ends\n"
        "the run with that disk's exit status and no disk changed, and \"DISK: SIZE\n"
        "bytes\" is printed for each disk grown.  With -p, one progress report per disk (bytes added,\n"
        "over the chain with --chain).",
    .opts = resize_opts,
    .exit_status = "4  SIZE is more than the disk's type holds\n"
                   "5  the type cannot grow in place (streamOptimized, raw)\n"
                   "6  VM names no hard disk\n"
                   "7  DISK has a parent, or disks or snapshots depend on it (without --chain);\n"
                   "   with --chain, a parent hint of the chain leads to no disk\n"
                   "8  DISK is in use, or VM runs or is suspended\n"
                   "9  SIZE is smaller than the disk (shrinking is refused)",
    .examples = "vmdkit resize disk.vmdk 40g\n"
                "vmdkit resize disk.vmdk +512m\n"
                "vmdkit resize --chain disk-000002.vmdk 60g\n"
                "vmdkit resize -p ~/VMs/Dev.vmwarevm +10g",
};

/* SIZE or +DELTA, against the current size of DISK. */
static int target_size(const char *disk, const char *arg, uint64_t *out)
{
    bool relative = arg[0] == '+';
    uint64_t v;
    if (!cli_parse_size(relative ? arg + 1 : arg, false, &v))
        return cli_usage_error("resize", "invalid size '%s'", arg);
    if (!relative) {
        *out = v;
        return 0;
    }
    vmdkit_disk *d;
    vmdkit_error err = {0};
    int rc =
        vmdkit_open(disk, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT | VMDKIT_OPEN_NO_LOCK, &d, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    uint64_t cur = vmdkit_size(d);
    vmdkit_close(d, NULL);
    if (v > UINT64_MAX - cur)
        return cli_usage_error("resize", "invalid size '%s'", arg);
    *out = cur + v;
    return 0;
}

/* Grow DISK to ARG (SIZE or +DELTA against DISK's size), its progress
 * shown as asked; with REPORT, a line saying so.  0 or an exit status. */
static int resize_one(const char *disk, const char *arg, const vmdkit_resize_opts *opts,
                      enum cli_progress_mode progress, bool report)
{
    uint64_t size = 0;
    int rc = target_size(disk, arg, &size);
    if (rc)
        return rc;
    vmdkit_resize_opts o = *opts;
    struct cli_progress prog;
    cli_progress_start(&prog, progress);
    /* also when nothing is shown: the callback is how a signal cancels */
    o.progress = cli_progress_cb;
    o.progress_opaque = &prog;
    vmdkit_error err = {0};
    cli_cancel_on_signals();
    rc = vmdkit_resize(disk, size, &o, &err);
    cli_progress_done(&prog, rc == 0);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    if (report) {
        printf("%s%s: %llu bytes\n", disk, (o.flags & VMDKIT_RESIZE_CHAIN) ? " and its chain" : "",
               (unsigned long long)((size + 511) / 512 * 512));
        fflush(stdout);
    }
    return CLI_EXIT_OK;
}

int cmd_resize(int argc, char **argv)
{
    vmdkit_resize_opts o = {.struct_size = sizeof o};
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "resize");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_KEEP_GEOMETRY:
            o.flags |= VMDKIT_RESIZE_KEEP_GEOMETRY;
            break;
        case OPT_ROOT:
            o.root = optarg;
            break;
        case OPT_CHAIN:
            o.flags |= VMDKIT_RESIZE_CHAIN;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress))
                return cli_usage_error("resize", "unknown progress format '%s'", optarg);
            break;
        case 'h':
            return cli_show_help("resize");
        default:
            return cli_bad_option("resize", argc, argv, c);
        }
    }
    int rc = cli_operands("resize", argc, argv, 2, argc - optind == 1 ? "SIZE" : "DISK|VM SIZE");
    if (rc)
        return rc;
    const char *target = argv[optind], *arg = argv[optind + 1];
    if (!vmdkit_is_vm_path(target))
        return resize_one(target, arg, &o, progress, false);
    /* each disk of the machine in turn, stopping at the first failure */
    char *vmx = NULL, **disks = NULL;
    size_t n = 0;
    if ((rc = cli_vm_disks(target, &vmx, &disks, &n)))
        return rc;
    /* every disk checked before the first grows: a machine is never left
     * with some disks grown and a refused one (its size +DELTA is taken
     * from each disk, so the checks are made per disk too) */
    vmdkit_resize_opts check = o;
    check.flags |= VMDKIT_RESIZE_CHECK_ONLY;
    for (size_t i = 0; !rc && i < n; i++)
        rc = resize_one(disks[i], arg, &check, CLI_PROGRESS_NONE, false);
    for (size_t i = 0; !rc && i < n; i++)
        rc = resize_one(disks[i], arg, &o, progress, true);
    vmdkit_paths_free(disks, n);
    free(vmx);
    return rc;
}
