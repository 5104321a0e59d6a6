/* cmd_defrag.c - vmdkit defrag: the grains of a sparse disk in virtual order. */
#include <getopt.h>

#include "cli.h"

static const struct cli_opt defrag_opts[] = {
    {0, "json", NULL,
     "Print {\"path\", \"bytes-before\", \"bytes-after\", \"file-bytes-before\",\n"
     "\"file-bytes-after\"} instead of the summary line; for a VM one object\n"
     "{\"vm\", \"disks\": [those objects]}.",
     CLI_REWRITE_JSON},
    CLI_OPTS_REWRITE_ROOT,
    CLI_OPTS_PROGRESS,
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
                   "VM, a machine (a .vmwarevm or VM folder, or its .vmx), stands for each disk\n"
                   "its .vmx names, in that order; a machine that runs or is suspended is\n"
                   "refused before any disk is touched, and the first disk that fails ends the\n"
                   "run with its exit status (those before it stay done).\n"
                   "\n"
                   "Prints \"DISK: BEFORE -> AFTER bytes on the host\", one line per disk of a\n"
                   "VM.  With -p, one progress report per disk.",
    .opts = defrag_opts,
    .exit_status = "5  DISK is not a sparse disk (flat, streamOptimized, raw)\n"
                   "6  VM names no hard disk\n"
                   "8  DISK is in use, or VM runs or is suspended",
    .examples = "vmdkit defrag disk.vmdk\n"
                "vmdkit defrag -p ~/VMs/Dev.vmwarevm",
};

int cmd_defrag(int argc, char **argv)
{
    return cli_run_rewrite("defrag", argc, argv, vmdkit_defrag, false);
}
