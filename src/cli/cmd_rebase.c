/* cmd_rebase.c - vmdkit rebase: give a delta another parent. */
#include <getopt.h>

#include "cli.h"

const struct cli_help cmd_rebase_help = {
    .description =
        "Change the parent of the delta DISK to NEWPARENT.\n"
        "\n"
        "By default the rebase is safe: wherever the content under the old parent\n"
        "differs from the content under NEWPARENT, the old content is copied into\n"
        "DISK, so DISK reads exactly as before.  With -b \"\" DISK becomes independent\n"
        "of any parent.\n"
        "\n"
        "With -u only the parentFileNameHint and parentCID are rewritten: use it after\n"
        "moving files by hand, when NEWPARENT is the same content at a new place.  It\n"
        "checks that NEWPARENT is a VMDK of the same capacity.",
    .options =
        "-b NEWPARENT\n"
        "    The new parent (required; \"\" for none).\n"
        "-u\n"
        "    Unsafe: rewrite only the hint and parentCID.\n"
        "--absolute\n"
        "    Store NEWPARENT as an absolute path.\n"
        "-p, --progress[=bar|json]\n"
        "    Show progress on standard error: a bar on a terminal, or with\n"
        "    --progress=json one JSON object per line (see docs/json.md).\n"
        "-h, --help\n"
        "    Show this manual.",
    .exit_status = "",
    .examples =
        "vmdkit rebase -b ../Base.vmwarevm/Base.vmdk Clone.vmdk\n"
        "vmdkit rebase -u -b /new/place/Base.vmdk Clone.vmdk",
};

enum { OPT_ABSOLUTE = 256 };

static const struct option longopts[] = {
    {"absolute", no_argument, NULL, OPT_ABSOLUTE},
    CLI_PROGRESS_LONGOPT,
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_rebase(int argc, char **argv)
{
    const char *parent = NULL;
    bool unsafe = false, absolute = false;
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    int c;
    while ((c = getopt_long(argc, argv, ":b:uph", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': parent = optarg; break;
        case 'u': unsafe = true; break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress))
                return cli_usage_error("rebase", "unknown progress format '%s'", optarg);
            break;
        case OPT_ABSOLUTE: absolute = true; break;
        case 'h':
            cli_print_command_help(cli_find_command("rebase"));
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("rebase", argc, argv, c);
        }
    }
    if (!parent)
        return cli_usage_error("rebase", "missing -b NEWPARENT");
    int rc = cli_operands("rebase", argc, argv, 1, "DISK");
    if (rc)
        return rc;
    if (unsafe && !*parent)
        return cli_usage_error("rebase", "-u needs a NEWPARENT");
    struct cli_progress pg;
    cli_progress_start(&pg, progress);
    vmdkit_error err = {0};
    vmdkit_rebase_opts o = {.struct_size = sizeof o,
                            .flags = (unsafe ? VMDKIT_REBASE_UNSAFE : 0) | (absolute ? VMDKIT_REBASE_ABSOLUTE : 0),
                            .progress = cli_progress_cb, .progress_opaque = &pg};
    rc = vmdkit_rebase(argv[optind], parent, &o, &err);
    cli_progress_done(&pg, rc == 0);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    return CLI_EXIT_OK;
}
