/* cmd_commit.c - vmdkit commit: merge a delta into its parent. */
#include <getopt.h>

#include "cli.h"

enum { OPT_DELETE = CLI_OPT_LONG, OPT_FORCE, OPT_ROOT };

static const struct cli_opt commit_opts[] = {
    {0, "delete", NULL, "Remove DISK's files after the commit.", OPT_DELETE},
    {0, "force", NULL, "Commit even when the parent has other dependents.", OPT_FORCE},
    {0, "root", "DIR",
     "Where to look for dependents besides DISK's folder (default: the folder\n"
     "that holds the parent's folder, e.g. the library of VM folders).",
     OPT_ROOT},
    CLI_OPTS_PROGRESS,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_commit_help = {
    .description = "Merge the delta DISK into its parent: every range DISK stores is written into\n"
                   "the parent, and disks whose parent is DISK are re-pointed at the parent (hint\n"
                   "and parentCID), so every chain stays valid.  The parent is the only file\n"
                   "written besides those children's descriptors.\n"
                   "\n"
                   "The commit is refused when the parent has other dependents (other snapshots\n"
                   "or linked clones, found by scanning --root): their content would change.\n"
                   "--force commits anyway and gives the parent a new CID so those dependents\n"
                   "report the change instead of reading wrong data.\n"
                   "\n"
                   "An interruption at any point leaves either the old chain or the new one.",
    .opts = commit_opts,
    .exit_status = "7  the parent has other dependents (without --force), or the chain is broken\n",
    .examples = "vmdkit commit --delete Base-000001.vmdk\n"
                "vmdkit commit --root ~/VMs Base-000002.vmdk",
};

int cmd_commit(int argc, char **argv)
{
    unsigned flags = 0;
    const char *root = NULL;
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "commit");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_DELETE:
            flags |= VMDKIT_COMMIT_DELETE;
            break;
        case OPT_FORCE:
            flags |= VMDKIT_COMMIT_FORCE;
            break;
        case OPT_ROOT:
            root = optarg;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress))
                return cli_usage_error("commit", "unknown progress format '%s'", optarg);
            break;
        case 'h':
            return cli_show_help("commit");
        default:
            return cli_bad_option("commit", argc, argv, c);
        }
    }
    int rc = cli_operands("commit", argc, argv, 1, "DISK");
    if (rc)
        return rc;
    struct cli_progress pg;
    cli_progress_start(&pg, progress);
    vmdkit_error err = {0};
    vmdkit_commit_opts o = {.struct_size = sizeof o,
                            .flags = flags,
                            .root = root,
                            .progress = cli_progress_cb,
                            .progress_opaque = &pg};
    vmdkit_commit_result res;
    rc = vmdkit_commit(argv[optind], &o, &res, &err);
    cli_progress_done(&pg, rc == 0);
    if (rc == 0 && res.scanned)
        printf("searched for dependents under %s\n", res.scanned);
    cli_print_rewrites(res.rewrites, res.n_rewrites);
    vmdkit_commit_result_free(&res);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    return CLI_EXIT_OK;
}
