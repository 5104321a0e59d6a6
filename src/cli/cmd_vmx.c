/* cmd_vmx.c - vmdkit vmx: read and edit one key of a .vmx file. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const struct cli_opt vmx_opts[] = {
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_vmx_help = {
    .description = "Read or change one setting of a virtual machine's configuration file (.vmx).\n"
                   "\n"
                   "get    prints the value of KEY, decoded, on one line.\n"
                   "set    gives KEY the value VALUE.  An existing line keeps its key spelling, its\n"
                   "       spacing, its quoting and any comment after it; only the value changes.\n"
                   "       An absent key is added at the end as KEY = \"VALUE\".\n"
                   "unset  removes the line of KEY (every line, when it appears twice).\n"
                   "\n"
                   "Keys are compared without regard to case, as VMware does; when a key appears\n"
                   "twice the last line counts.  Every other byte of the file is kept: comments,\n"
                   "blank lines, order, LF or CRLF line endings.  Values are VMware-escaped on\n"
                   "writing and decoded on reading: a '\"' is stored as |22, a '|' as |7C.\n"
                   "\n"
                   "set and unset replace the file atomically (a temporary file in the same folder,\n"
                   "fsync, rename): an interrupted edit leaves the old file.  Do not edit the .vmx\n"
                   "of a running virtual machine: VMware rewrites it.",
    .opts = vmx_opts,
    .options_note = "Options come before get, set or unset: what follows is taken as FILE, KEY\n"
                    "and VALUE as written, so a VALUE may begin with '-'.",
    .options_first = true,
    .exit_status = "6 also means that get or unset found no such key.",
    .examples = "vmdkit vmx get Win8.vmx memsize\n"
                "vmdkit vmx set Win8.vmx ethernet0.virtualDev e1000e\n"
                "vmdkit vmx set Win8.vmx annotation 'Built for \"tests\"'\n"
                "vmdkit vmx unset Win8.vmx sata0:1.fileName",
};

enum vmx_op { OP_GET, OP_SET, OP_UNSET };

static int open_vmx(const char *path, vmdkit_vmx **vmx)
{
    vmdkit_error err = {0};
    int rc = vmdkit_vmx_open(path, vmx, &err);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}

static int run_op(enum vmx_op op, const char *path, const char *key, const char *value)
{
    vmdkit_vmx *vmx;
    int rc = open_vmx(path, &vmx);
    if (rc)
        return rc;
    vmdkit_error err = {0};
    if (op == OP_GET) {
        const char *v = vmdkit_vmx_get(vmx, key);
        if (v) {
            printf("%s\n", v);
        } else {
            cli_errorf("%s: %s: no such key", path, key);
            rc = CLI_EXIT_NOT_FOUND;
        }
    } else {
        int e = op == OP_SET ? vmdkit_vmx_set(vmx, key, value, &err) : vmdkit_vmx_unset(vmx, key, &err);
        if (e == 0)
            e = vmdkit_vmx_save(vmx, &err);
        if (e < 0)
            rc = cli_fail(e, err.msg);
    }
    vmdkit_vmx_close(vmx);
    return rc;
}

int cmd_vmx(int argc, char **argv)
{
    struct cli_getopt g;
    int c;
    /* options_first: stop at the first operand, so a VALUE may begin with '-' */
    cli_getopt_init(&g, "vmx");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case 'h':
            return cli_show_help("vmx");
        default:
            return cli_bad_option("vmx", argc, argv, c);
        }
    }
    if (optind == argc)
        return cli_usage_error("vmx", "missing get, set or unset");
    const char *name = argv[optind];
    enum vmx_op op;
    int want; /* operands after the operation */
    if (strcmp(name, "get") == 0)
        op = OP_GET, want = 2;
    else if (strcmp(name, "set") == 0)
        op = OP_SET, want = 3;
    else if (strcmp(name, "unset") == 0)
        op = OP_UNSET, want = 2;
    else
        return cli_usage_error("vmx", "unknown operation '%s' (get, set or unset)", name);
    int have = argc - optind - 1;
    if (have < want)
        return cli_usage_error("vmx", "%s: missing %s", name,
                               have == 0   ? (want == 3 ? "FILE, KEY and VALUE" : "FILE and KEY")
                               : have == 1 ? (want == 3 ? "KEY and VALUE" : "KEY")
                                           : "VALUE");
    if (have > want)
        return cli_usage_error("vmx", "%s: unexpected argument '%s'", name, argv[optind + 1 + want]);
    char **ops = argv + optind + 1;
    return run_op(op, ops[0], ops[1], op == OP_SET ? ops[2] : NULL);
}
