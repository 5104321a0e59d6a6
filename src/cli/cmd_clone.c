/* cmd_clone.c - vmdkit clone: linked or full copy of a disk. */
#include <getopt.h>
#include <strings.h>

#include "cli.h"

const struct cli_help cmd_clone_help = {
    .description =
        "Copy the disk SRC to NEW.\n"
        "\n"
        "With --linked, NEW is a delta whose parent is SRC's current top link: it holds\n"
        "no data, takes milliseconds whatever the disk size, and reads everything it\n"
        "does not store from SRC.  Its parentFileNameHint is the normalised path of SRC\n"
        "relative to NEW's folder (e.g. ../Base.vmwarevm/Base.vmdk).  SRC must not be\n"
        "written afterwards (take a snapshot of it first if it is in use: see\n"
        "vmdkit snapshot).\n"
        "\n"
        "Without --linked, NEW is a full, independent copy: the chain is flattened\n"
        "into a disk of TYPE (default: the createType of SRC's base when it is one\n"
        "vmdkit writes, else monolithicSparse) keeping SRC's adapter type and hardware\n"
        "version.",
    .options =
        "--linked\n"
        "    Make a linked clone (a delta) instead of a full copy.\n"
        "--absolute\n"
        "    With --linked: store SRC as an absolute path.\n"
        "-t, --type TYPE\n"
        "    createType of a full clone.\n"
        "-p\n"
        "    Show progress on a terminal (full clones).\n"
        "-h, --help\n"
        "    Show this manual.",
    .exit_status = "",
    .examples =
        "vmdkit clone --linked Base.vmwarevm/Base.vmdk Clone.vmwarevm/Clone.vmdk\n"
        "vmdkit clone -t twoGbMaxExtentSparse Base.vmdk Copy.vmdk",
};

enum { OPT_LINKED = 256, OPT_ABSOLUTE };

static const struct option longopts[] = {
    {"linked", no_argument, NULL, OPT_LINKED},
    {"absolute", no_argument, NULL, OPT_ABSOLUTE},
    {"type", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Full clone: flatten SRC into DST keeping adapter and hw version. */
static int full_clone(const char *src, const char *dst, int type, bool progress)
{
    vmdkit_disk *d;
    int rc = cli_open(src, VMDKIT_OPEN_RDONLY, CLI_FMT_VMDK, &d);
    if (rc)
        return rc;
    vmdkit_convert_opts o = {0};
    o.vmdk.type = VMDKIT_MONOLITHIC_SPARSE;
    /* adapter, hw version and default type come from the base link */
    vmdkit_link_info base;
    char adapter[32] = "", hw[16] = "";
    if (vmdkit_link_info_get(d, vmdkit_chain_length(d) - 1, &base) == 0) {
        if (base.adapter_type && cli_adapter_name(base.adapter_type))
            snprintf(adapter, sizeof adapter, "%s", cli_adapter_name(base.adapter_type));
        if (base.hw_version)
            snprintf(hw, sizeof hw, "%s", base.hw_version);
        int t = base.create_type ? vmdkit_create_type_parse(base.create_type) : -1;
        if (t >= 0)
            o.vmdk.type = (vmdkit_create_type)t;
        vmdkit_link_info_free(&base);
    }
    if (type >= 0)
        o.vmdk.type = (vmdkit_create_type)type;
    o.vmdk.adapter = *adapter ? adapter : NULL;
    long hwv;
    if (*hw && cli_parse_int(hw, 1, 1000, &hwv))
        o.vmdk.hw_version = (int)hwv;
    struct cli_progress pg;
    cli_progress_init(&pg, progress);
    o.progress = cli_progress_cb;
    o.progress_opaque = &pg;
    vmdkit_error err = {0};
    rc = vmdkit_convert(d, dst, &o, &err);
    cli_progress_done(&pg, rc == 0);
    vmdkit_close(d, NULL);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}

int cmd_clone(int argc, char **argv)
{
    bool linked = false, absolute = false, progress = false;
    int type = -1;
    int c;
    while ((c = getopt_long(argc, argv, ":t:ph", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_LINKED: linked = true; break;
        case OPT_ABSOLUTE: absolute = true; break;
        case 'p': progress = true; break;
        case 't':
            type = vmdkit_create_type_parse(optarg);
            if (type < 0)
                return cli_usage_error("clone", "unknown disk type '%s'", optarg);
            break;
        case 'h':
            cli_print_command_help(cli_find_command("clone"));
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("clone", argc, argv, c);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("clone", argc - optind < 2 ? "missing SRC or NEW" : "too many arguments");
    const char *src = argv[optind], *dst = argv[optind + 1];
    if (linked && type >= 0)
        return cli_usage_error("clone", "-t applies to full clones only");
    if (absolute && !linked)
        return cli_usage_error("clone", "--absolute applies to linked clones only");
    if (!linked)
        return full_clone(src, dst, type, progress);
    vmdkit_error err = {0};
    int rc = vmdkit_create_delta(src, dst, absolute, &err);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}
