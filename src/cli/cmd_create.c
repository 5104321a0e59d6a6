/* cmd_create.c - vmdkit create: a new empty disk. */
#include <getopt.h>
#include <limits.h>

#include "cli.h"

enum { OPT_HW = CLI_OPT_LONG, OPT_ZEROED, OPT_ABSOLUTE, OPT_SPLIT_SIZE };

static const struct cli_opt create_opts[] = {
    {'t', "type", "TYPE",
     "createType of the new disk, case-insensitive: monolithicSparse (default),\n"
     "monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized,\n"
     "vmfs."},
    {'a', "adapter", "ide|buslogic|lsilogic|legacyESX",
     "Virtual controller written as ddb.adapterType (default ide)."},
    {0, "hw", "N", "Virtual hardware version written as ddb.virtualHWVersion (default 4).", OPT_HW},
    {0, "zeroed-grain", NULL,
     "Sparse types only: write a version 2 header that uses zeroed-grain entries.", OPT_ZEROED},
    CLI_SPLIT_SIZE_OPT(OPT_SPLIT_SIZE),
    {'b', "backing", "PARENT",
     "Make the new disk a child of the disk PARENT (sparse types only).  A\n"
     "relative PARENT is a path from the current folder, like every path of the\n"
     "command line, not from FILE's folder as in qemu-img create; the hint written\n"
     "into FILE is relative to FILE's folder (unless --absolute)."},
    {0, "absolute", NULL,
     "With -b: store PARENT as an absolute path instead of a path relative to\n"
     "FILE's folder.",
     OPT_ABSOLUTE, CLI_OPT_NEST},
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_create_help = {
    .description = "Create a new empty disk of SIZE bytes at FILE (the descriptor; extent files\n"
                   "are named after it).  Nothing is printed on success.  The command refuses to\n"
                   "overwrite: if FILE or any extent file it would write exists, it fails and\n"
                   "leaves every file as it was.\n"
                   "\n"
                   "With -b the new disk is a child of PARENT: it stores only what is written to\n"
                   "it and reads everything else through PARENT.  SIZE must equal PARENT's size.\n"
                   "\n"
                   "SIZE is a byte count with an optional suffix k, m, g or t (powers of 1024;\n"
                   "KiB, MiB, GiB, TiB are accepted too); it is rounded up to a 512-byte sector.",
    .opts = create_opts,
    .exit_status = "",
    .examples = "vmdkit create disk.vmdk 20G\n"
                "vmdkit create -t monolithicFlat -a lsilogic --hw 7 flat.vmdk 1G\n"
                "vmdkit create -b base.vmdk child.vmdk 20G\n"
                "vmdkit create -t twoGbMaxExtentSparse --split-size 2g old-style.vmdk 40G",
};

int cmd_create(int argc, char **argv)
{
    vmdkit_create_opts opts = {.struct_size = sizeof opts, .type = VMDKIT_MONOLITHIC_SPARSE};
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "create");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case 't': {
            int t = vmdkit_create_type_parse(optarg);
            if (t < 0)
                return cli_usage_error("create", "unknown disk type '%s'", optarg);
            opts.type = (vmdkit_create_type)t;
            break;
        }
        case 'a':
            opts.adapter = vmdkit_adapter_name(optarg);
            if (!opts.adapter)
                return cli_usage_error("create", "unknown adapter type '%s'", optarg);
            break;
        case OPT_HW: {
            long hw;
            if (!cli_parse_int(optarg, 1, INT_MAX, &hw))
                return cli_usage_error("create", "invalid hardware version '%s'", optarg);
            opts.hw_version = (int)hw;
            break;
        }
        case OPT_ZEROED:
            opts.zeroed_grain = true;
            break;
        case 'b':
            opts.parent = optarg;
            break;
        case OPT_ABSOLUTE:
            opts.parent_absolute = true;
            break;
        case OPT_SPLIT_SIZE:
            if (!cli_parse_split_size(optarg, &opts.split_sectors))
                return cli_usage_error("create", "invalid split size '%s' (2g or 4g)", optarg);
            break;
        case 'h':
            return cli_show_help("create");
        default:
            return cli_bad_option("create", argc, argv, c);
        }
    }
    if (opts.parent_absolute && !opts.parent)
        return cli_usage_error("create", "--absolute needs -b PARENT");
    if (opts.split_sectors && opts.type != VMDKIT_TWOGB_SPARSE && opts.type != VMDKIT_TWOGB_FLAT)
        return cli_usage_error("create",
                               "--split-size needs -t twoGbMaxExtentSparse or twoGbMaxExtentFlat");
    int npos = argc - optind;
    if (npos < 2)
        return cli_usage_error("create", npos == 0 ? "missing FILE and SIZE" : "missing SIZE");
    if (npos > 2)
        return cli_usage_error("create", "unexpected argument '%s'", argv[optind + 2]);
    const char *file = argv[optind];
    const char *size = argv[optind + 1];
    if (!cli_parse_size(size, false, &opts.size_bytes))
        return cli_usage_error("create", "invalid size '%s'", size);

    vmdkit_error err = {0};
    int rc = vmdkit_create(file, &opts, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    return CLI_EXIT_OK;
}
