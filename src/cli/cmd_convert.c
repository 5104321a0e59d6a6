/* cmd_convert.c - vmdkit convert: copy a disk into a new image. */
#include <getopt.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"

enum { OPT_HW = CLI_OPT_LONG, OPT_THREADS, OPT_SPLIT_SIZE };

static const struct cli_opt convert_opts[] = {
    {'f', NULL, "vmdk|raw",
     "Format of SRC.  Without it the format is detected.  With vmdk a file that\n"
     "is not a VMDK is refused; with raw the file is read as raw bytes."},
    {'O', NULL, "vmdk|raw", "Format of DST (default vmdk)."},
    {'t', "type", "TYPE",
     "createType of a VMDK DST (default monolithicSparse): monolithicSparse,\n"
     "monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized,\n"
     "vmfs."},
    {'a', "adapter", "ADAPTER",
     "Adapter type of a VMDK DST: ide (default), buslogic, lsilogic or legacyESX."},
    {0, "hw", "N", "Virtual hardware version of a VMDK DST (default 4).", OPT_HW},
    CLI_SPLIT_SIZE_OPT(OPT_SPLIT_SIZE),
    CLI_OPTS_PROGRESS,
    {0, "threads", "N", "Compression threads for streamOptimized output (default 0: one per CPU).",
     OPT_THREADS},
    CLI_OPTS_IGNORE_CID,
    CLI_OPTS_DISK,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_convert_help = {
    .description = "Copy the whole content of SRC into a new image DST.  When SRC has parents the\n"
                   "chain is flattened: DST holds what SRC reads, and has no parent.  All-zero\n"
                   "grains are not stored (raw output keeps them as holes).\n"
                   "\n"
                   "SRC's format is detected; a file named *.vmdk that is not a VMDK is refused\n"
                   "unless -f raw is given.  DST must not exist, nor any extent file it would\n"
                   "have: convert never overwrites.\n"
                   "\n"
                   "DST is built in a hidden folder beside it (.NAME.vmdkit-tmp-XXXXXX) and gets\n"
                   "its name only when complete - its extent files first, DST itself last - so\n"
                   "a killed or crashed convert leaves no DST, or a complete one; the next\n"
                   "convert to DST removes the folder a killed one left.  Ctrl-C (SIGINT),\n"
                   "SIGTERM or SIGHUP stops the copy and removes the partial output; vmdkit\n"
                   "then ends by that signal (status 128+N).\n"
                   "\n"
                   "SRC may be FILE.ova, the first disk inside an OVA, or FILE.ova/NAME.vmdk for\n"
                   "another of its disks: the member is read where it lies in the archive, never\n"
                   "copied out, and only read.  A gzip-compressed member cannot be read in place\n"
                   "(vmdkit ova import converts it).",
    .opts = convert_opts,
    .exit_status = "9 is also returned, and DST left untouched, when DST already exists.",
    .examples = "vmdkit convert -O raw disk.vmdk disk.raw\n"
                "vmdkit convert -f raw -t streamOptimized -p disk.raw upload.vmdk\n"
                "vmdkit convert child.vmdk flattened.vmdk",
};

/* Does the last component of PATH end in EXT (any case) after a name? */
static bool has_extension(const char *path, const char *ext)
{
    const char *name = cli_basename(path);
    size_t n = strlen(name), k = strlen(ext);
    return n > k && strcasecmp(name + n - k, ext) == 0;
}

/* One line on stderr when DST's name says the other format: a raw image
 * named .vmdk is later refused by vmdkit itself without -f raw. */
static void warn_extension(const char *dst, bool to_raw)
{
    if (!to_raw && (has_extension(dst, ".raw") || has_extension(dst, ".img")))
        cli_errorf(
            "warning: %s: the name says raw, but the output is a VMDK (-O raw writes a raw image)", dst);
    else if (to_raw && has_extension(dst, ".vmdk"))
        cli_errorf("warning: %s: the name says VMDK, but the output is a raw image (reading it back "
                   "needs -f raw)",
                   dst);
}

int cmd_convert(int argc, char **argv)
{
    vmdkit_create_opts vmdk = {.struct_size = sizeof vmdk, .type = VMDKIT_MONOLITHIC_SPARSE};
    vmdkit_convert_opts opts = {.struct_size = sizeof opts, .vmdk = &vmdk};
    unsigned flags = VMDKIT_OPEN_RDONLY;
    enum cli_format src_fmt = CLI_FMT_AUTO, dst_fmt = CLI_FMT_VMDK;
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    bool vmdk_opts = false;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "convert");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        if (cli_open_option(c, &flags))
            continue;
        switch (c) {
        case 'f':
            if (!cli_parse_format(optarg, &src_fmt))
                return cli_usage_error("convert", "unknown format '%s' for -f", optarg);
            break;
        case 'O':
            if (!cli_parse_format(optarg, &dst_fmt))
                return cli_usage_error("convert", "unknown format '%s' for -O", optarg);
            opts.to_raw = dst_fmt == CLI_FMT_RAW;
            break;
        case 't': {
            int t = vmdkit_create_type_parse(optarg);
            if (t < 0)
                return cli_usage_error("convert", "unknown disk type '%s'", optarg);
            vmdk.type = (vmdkit_create_type)t;
            vmdk_opts = true;
            break;
        }
        case 'a':
            vmdk.adapter = vmdkit_adapter_name(optarg);
            if (!vmdk.adapter)
                return cli_usage_error("convert", "unknown adapter type '%s'", optarg);
            vmdk_opts = true;
            break;
        case OPT_HW: {
            long hw;
            if (!cli_parse_int(optarg, 1, 1000000, &hw))
                return cli_usage_error("convert", "invalid hardware version '%s'", optarg);
            vmdk.hw_version = (int)hw;
            vmdk_opts = true;
            break;
        }
        case OPT_SPLIT_SIZE:
            if (!cli_parse_split_size(optarg, &vmdk.split_sectors))
                return cli_usage_error("convert", "invalid split size '%s' (2g or 4g)", optarg);
            vmdk_opts = true;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress))
                return cli_usage_error("convert", "unknown progress format '%s'", optarg);
            break;
        case OPT_THREADS: {
            long n;
            if (!cli_parse_int(optarg, 0, 1024, &n))
                return cli_usage_error("convert", "invalid thread count '%s'", optarg);
            opts.threads = (int)n;
            break;
        }
        case 'h':
            return cli_show_help("convert");
        default:
            return cli_bad_option("convert", argc, argv, c);
        }
    }
    if (argc - optind < 2)
        return cli_usage_error("convert", argc == optind ? "missing SRC and DST" : "missing DST");
    if (argc - optind > 2)
        return cli_usage_error("convert", "unexpected argument '%s'", argv[optind + 2]);
    if (opts.to_raw && vmdk_opts)
        return cli_usage_error("convert", "-t, -a, --hw and --split-size only apply to VMDK output");
    if (vmdk.split_sectors && vmdk.type != VMDKIT_TWOGB_SPARSE && vmdk.type != VMDKIT_TWOGB_FLAT)
        return cli_usage_error("convert",
                               "--split-size needs -t twoGbMaxExtentSparse or twoGbMaxExtentFlat");
    const char *src = argv[optind], *dst = argv[optind + 1];
    if (!cli_path_usable(dst, true))
        return CLI_EXIT_REFUSED;

    /* refuse before reading anything; the library refuses again when creating */
    struct stat st;
    if (lstat(dst, &st) == 0) {
        cli_errorf("%s: already exists; convert does not overwrite", dst);
        return CLI_EXIT_REFUSED;
    }
    vmdkit_disk *disk;
    int rc = cli_open(src, flags, src_fmt, &disk);
    if (rc)
        return rc;
    warn_extension(dst, opts.to_raw);

    struct cli_progress prog;
    cli_progress_start(&prog, progress);
    /* also when nothing is shown: the callback is how a signal cancels */
    opts.progress = cli_progress_cb;
    opts.progress_opaque = &prog;
    vmdkit_error err = {0};
    cli_cancel_on_signals();
    int e = vmdkit_convert(disk, dst, &opts, &err);
    cli_progress_done(&prog, e == 0);
    if (e < 0)
        rc = cli_fail(e, err.msg);
    int crc = cli_close(disk);
    return rc ? rc : crc;
}
