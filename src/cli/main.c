/*
 * main.c - the vmdkit command table and dispatch.
 *
 * Adding a command takes one row below and one cmd_<name>.c file holding
 * cmd_<name>() and its manual (struct cli_help).
 */
#include <getopt.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"

#ifndef VMDKIT_VERSION
#error "VMDKIT_VERSION must be defined by the build"
#endif

static const struct cli_command commands[] = {
    {"create", cmd_create, "create a new empty disk", "FILE SIZE", &cmd_create_help},
    {"info", cmd_info, "describe a disk, its extents and its parent chain", "DISK", &cmd_info_help},
    {"map", cmd_map, "show which link stores each range of a disk", "DISK", &cmd_map_help},
    {"convert", cmd_convert, "copy a disk (flattening its chain) into a new image", "SRC DST",
     &cmd_convert_help},
    {"check", cmd_check, "verify a disk's metadata; repair what is safe to repair", "DISK",
     &cmd_check_help},
    {"compare", cmd_compare, "compare the contents of two disks", "A B", &cmd_compare_help},
    {"io", cmd_io, "read, write and verify bytes of a disk", "DISK", &cmd_io_help},
    {"vmx", cmd_vmx, "read or change one setting of a .vmx file", "get|set|unset FILE.vmx KEY [VALUE]",
     &cmd_vmx_help},
    {"snapshot", cmd_snapshot, "snapshot a disk; take, list, revert or delete the snapshots of a VM",
     "[list|revert|delete] DISK|VM [NAME|UID]", &cmd_snapshot_help},
    {"clone", cmd_clone, "make a linked or full copy of a disk or a virtual machine", "SRC NEW",
     &cmd_clone_help},
    {"commit", cmd_commit, "merge a delta into its parent", "DISK", &cmd_commit_help},
    {"rebase", cmd_rebase, "give a delta another parent", "DISK", &cmd_rebase_help},
    {"compact", cmd_compact, "drop the all-zero grains of a sparse disk", "DISK|VM", &cmd_compact_help},
    {"defrag", cmd_defrag, "put the grains of a sparse disk in virtual order", "DISK|VM",
     &cmd_defrag_help},
    {"resize", cmd_resize, "grow a disk in place", "DISK|VM SIZE|+DELTA", &cmd_resize_help},
    {"mv", cmd_mv, "move a VM folder or a disk, keeping chains and VMs working", "SRC DST",
     &cmd_mv_help},
    {"tree", cmd_tree, "show the disk families of a VM library and what is wrong with them", "[DIR]",
     &cmd_tree_help},
    {"ova", cmd_ova, "export a machine as an OVF package, import one, check one for importers",
     "export VM OUT.ova|OUT.ovf | import IN.ova|IN.ovf DIR | check IN.ova|IN.ovf", &cmd_ova_help},
    {"bench", cmd_bench, "time many small reads or writes", "DISK", &cmd_bench_help},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char exit_table[] =
    "0  success\n"
    "1  compare: the contents differ; io: a read -P verification failed\n"
    "2  usage error: bad command line\n"
    "3  I/O error, no space left on the device, or out of memory\n"
    "4  invalid or corrupt image, or a size beyond vmdkit's limits\n"
    "5  valid image that uses a feature vmdkit does not handle\n"
    "6  file not found (disk, extent or parent)\n"
    "7  broken parent chain: CID or capacity mismatch, parent loop\n"
    "8  locked by another writer\n"
    "9  refused: read-only, file exists, path policy, invalid argument\n"
    "128+N  interrupted by signal N (SIGINT 130, SIGTERM 143, SIGHUP 129)\n";

static const char meta_synopsis[] = "--help | help [COMMAND] | COMMAND --help | --version";

const struct cli_command *cli_commands(size_t *n)
{
    *n = N_COMMANDS;
    return commands;
}

const struct cli_command *cli_find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_section(const char *title, const char *text)
{
    if (!text || !*text)
        return;
    printf("\n%s\n", title);
    cli_print_indented(stdout, text, 4);
}

void cli_print_command_help(const struct cli_command *cmd)
{
    const struct cli_help *h = cmd->help;
    printf("NAME\n    vmdkit %s - %s\n", cmd->name, cmd->summary);
    char synopsis[1024];
    cli_synopsis(cmd, synopsis, sizeof synopsis);
    printf("\nSYNOPSIS\n    vmdkit %s\n", synopsis);
    print_section("DESCRIPTION", h->description);
    printf("\nOPTIONS\n");
    cli_print_options(stdout, cmd, 4);
    printf("\nEXIT STATUS\n");
    if (h->exit_status && *h->exit_status) {
        cli_print_indented(stdout, h->exit_status, 4);
        if (!h->own_exit_status)
            putchar('\n');
    }
    if (!h->own_exit_status)
        cli_print_indented(stdout, exit_table, 4);
    print_section("EXAMPLES", h->examples);
}

int cli_show_help(const char *name)
{
    cli_print_command_help(cli_find_command(name));
    return CLI_EXIT_OK;
}

static void print_short_usage(FILE *f)
{
    fprintf(f, "Usage:\n");
    char synopsis[1024];
    for (size_t i = 0; i < N_COMMANDS; i++) {
        cli_synopsis(&commands[i], synopsis, sizeof synopsis);
        fprintf(f, "  vmdkit %s\n", synopsis);
    }
    fprintf(f, "  vmdkit %s\n", meta_synopsis);
}

static void print_main_help(void)
{
    printf("vmdkit - read, write and create VMware virtual disks (VMDK)\n\n");
    print_short_usage(stdout);
    printf("\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        printf("  %-9s %s\n", commands[i].name, commands[i].summary);
    /* the commands that take the shared disk options, from their tables */
    size_t n = 0, shown = 0;
    for (size_t i = 0; i < N_COMMANDS; i++)
        n += cli_has_option(&commands[i], CLI_OPT_ALLOW_EXTERNAL);
    printf("\nOption accepted by ");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!cli_has_option(&commands[i], CLI_OPT_ALLOW_EXTERNAL))
            continue;
        shown++;
        printf("%s%s", commands[i].name, shown == n ? ":\n" : shown + 1 == n ? " and " : ", ");
    }
    cli_print_group(stdout, cli_opts_disk);
    printf("\nSizes, offsets and lengths are bytes with an optional suffix k, m, g, t\n"
           "(powers of 1024; KiB, MiB ... also accepted).\n");
    printf("\nExit status:\n");
    cli_print_indented(stdout, exit_table, 2);
    printf("  ('vmdkit check' uses the codes of 'qemu-img check' instead: see its --help.)\n");
    printf("\nRun 'vmdkit help COMMAND' or 'vmdkit COMMAND --help' for the manual of a command.\n");
}

static int unknown_command(const char *name)
{
    cli_errorf("'%s' is not a vmdkit command", name);
    fprintf(stderr, "Try 'vmdkit --help' for the list of commands.\n");
    return CLI_EXIT_USAGE;
}

static int cmd_help(int argc, char **argv)
{
    if (argc == 1) {
        print_main_help();
        return CLI_EXIT_OK;
    }
    if (argc > 2) {
        cli_errorf("help: too many arguments");
        fprintf(stderr, "Usage: vmdkit help [COMMAND]\n");
        return CLI_EXIT_USAGE;
    }
    const struct cli_command *cmd = cli_find_command(argv[1]);
    if (!cmd)
        return unknown_command(argv[1]);
    cli_print_command_help(cmd);
    return CLI_EXIT_OK;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        print_short_usage(stderr);
        fprintf(stderr, "Try 'vmdkit --help' for more information.\n");
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return cmd_help(1, argv + 1);
    if (strcmp(name, "help") == 0)
        return cmd_help(argc - 1, argv + 1);
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("vmdkit %s\n", VMDKIT_VERSION);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = cli_find_command(name);
    if (!cmd) {
        if (name[0] == '-') {
            cli_errorf("unknown option '%s'", name);
            fprintf(stderr, "Try 'vmdkit --help' for more information.\n");
            return CLI_EXIT_USAGE;
        }
        return unknown_command(name);
    }
    opterr = 0; /* commands report bad options themselves, naming the command */
    return cmd->fn(argc - 1, argv + 1);
}

/* A disk holds a descriptor per extent file, parents included, while it is
 * open: a split disk of many pieces with snapshots needs more than the
 * usual soft limit (1024 on Linux, 256 on macOS).  Take what the hard
 * limit allows; where it cannot be raised, opening reports the limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    raise_fd_limit();
    int rc = dispatch(argc, argv);
    /* output cut short (a full disk, a closed pipe) must not look like success */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_errorf("error writing to standard output");
        if (rc == CLI_EXIT_OK)
            rc = CLI_EXIT_IO;
    }
    /* cancelled work was cleaned up: now end as the signal would have */
    cli_exit_if_interrupted();
    return rc;
}
