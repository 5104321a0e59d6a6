/* cmd_mv.c - vmdkit mv: move a VM folder or a disk, keeping every chain
 * and machine that refers to it working. */
#include <getopt.h>

#include "cli.h"

enum { OPT_ROOT = CLI_OPT_LONG };

static const struct cli_opt mv_opts[] = {
    {0, "root", "DIR",
     "Where to look for disks and .vmx files that refer to SRC (default: the\n"
     "library around SRC: the folder holding a folder SRC and the folder it\n"
     "moves into, or the folder holding a disk's VM folder).",
     OPT_ROOT},
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_mv_help = {
    .description = "Move SRC to DST and rewrite every reference to what moved, so that snapshots,\n"
                   "linked clones and virtual machines keep working.  When DST is an existing\n"
                   "folder, SRC moves into it.\n"
                   "\n"
                   "SRC a folder (a .vmwarevm bundle or VM folder): the folder is renamed.  Its\n"
                   "machine must be shut down.  To another file system (an external drive) the\n"
                   "folder is copied instead - sparse files keep their holes, every file is\n"
                   "flushed - and the old folder is removed once every reference names the copy.\n"
                   "A disk of the folder that another vmdkit is writing refuses the move, and so\n"
                   "does any file that changes during the copy; nothing is moved then.\n"
                   "\n"
                   "SRC a disk: the disk is renamed as vmware-vdiskmanager -n does: its extent\n"
                   "files get names derived from DST (Base-s001.vmdk -> New-s001.vmdk,\n"
                   "Base-flat.vmdk -> New-flat.vmdk) and its descriptor's extent lines follow\n"
                   "(a monolithicSparse disk's embedded descriptor is rewritten in place).  DST\n"
                   "must end in .vmdk.  On another file system, or one without hard links\n"
                   "(exFAT), its files are copied and the old ones removed at the end.\n"
                   "\n"
                   "Then, under --root and inside a moved folder, every parentFileNameHint that\n"
                   "named a moved disk (or that a moved disk uses to reach a parent that stays)\n"
                   "is rewritten - relative hints stay relative and normalised, absolute ones\n"
                   "absolute - and so is every .vmx fileName (and cloneOfN) naming a moved file.\n"
                   "Each rewrite is printed.\n"
                   "\n"
                   "No data is lost if the command is interrupted.  A folder is renamed first,\n"
                   "then the references are rewritten one by one: those not yet rewritten show in\n"
                   "vmdkit tree as broken hints with the likely parent, and vmdkit rebase -u\n"
                   "repairs them.  A copy to another file system is made in a hidden\n"
                   "\".NAME.vmdkit-tmp-XXXXXX\" folder beside DST and renamed to DST when complete;\n"
                   "the old folder is removed last (kept when a reference could not be rewritten).\n"
                   "A disk gets its new names as hard links (or copies) first, the references are\n"
                   "rewritten while both names work, and the old names are removed last.\n"
                   "When a reference cannot be rewritten, the command to repair it is printed.",
    .opts = mv_opts,
    .exit_status = "7  SRC was moved, but some references could not be rewritten (listed\n"
                   "   on stderr with the command that repairs each)\n"
                   "5  SRC cannot be moved as it is (an extent in another folder; nothing\n"
                   "   was moved)\n"
                   "8  a machine that uses SRC is running or suspended (nothing was moved)",
    .examples = "vmdkit mv ~/VMs/Base.vmwarevm ~/VMs/Templates/\n"
                "vmdkit mv ~/VMs/Old.vmwarevm /Volumes/Archive/VMs/\n"
                "vmdkit mv --root ~/VMs Base.vmwarevm/Base.vmdk Base.vmwarevm/Win10.vmdk",
};

int cmd_mv(int argc, char **argv)
{
    const char *root = NULL;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "mv");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_ROOT:
            root = optarg;
            break;
        case 'h':
            return cli_show_help("mv");
        default:
            return cli_bad_option("mv", argc, argv, c);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(
            "mv", argc - optind < 2 ? "missing SRC or DST" : "unexpected argument '%s'", argv[argc - 1]);
    const char *src = argv[optind], *dst = argv[optind + 1];
    vmdkit_move_result res;
    vmdkit_error err = {0};
    struct cli_progress pg;
    cli_progress_start(&pg, CLI_PROGRESS_NONE);
    vmdkit_move_opts o = {
        .struct_size = sizeof o, .root = root, .progress = cli_progress_cb, .progress_opaque = &pg};
    cli_cancel_on_signals();
    int rc = vmdkit_move(src, dst, &o, &res, &err);
    if (rc < 0 && (rc != VMDKIT_ECHAIN || !res.dst)) {
        vmdkit_move_result_free(&res);
        return cli_fail(rc, err.msg);
    }
    printf("%s -> %s\n", src, res.dst);
    if (res.scanned)
        printf("searched for references under %s\n", res.scanned);
    cli_print_rewrites(res.fixes, res.n_fixes);
    vmdkit_move_result_free(&res);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}
