/* cmd_compare.c - vmdkit compare: are two disks' contents equal? */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>

#include "cli.h"

enum { OPT_JSON = CLI_OPT_LONG };

static const struct cli_opt compare_opts[] = {
    {'s', "strict", NULL,
     "Disks of different sizes are different ('Strict mode: Image size mismatch!')."},
    {0, "json", NULL,
     "Print a JSON object instead: identical (true or false), first-difference\n"
     "(the first differing byte offset, or null), size-a and size-b.",
     OPT_JSON},
    CLI_OPTS_PROGRESS,
    {'f', NULL, "vmdk|raw", "Format of A (default: detected)."},
    {'F', NULL, "vmdk|raw", "Format of B (default: detected)."},
    CLI_OPTS_IGNORE_CID,
    CLI_OPTS_DISK,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_compare_help = {
    .description = "Compare what disks A and B read, byte by byte (chains are read through).\n"
                   "Prints 'Images are identical.' or 'Content mismatch at offset N!' with N the\n"
                   "first differing byte, like 'qemu-img compare'.\n"
                   "\n"
                   "Disks of different sizes are equal when the common part is equal and the\n"
                   "larger disk's extra tail reads as zeros, unless -s is given.\n"
                   "\n"
                   "A or B may be FILE.ova or FILE.ova/NAME.vmdk, a disk inside an OVA read in\n"
                   "place (see vmdkit info).",
    .opts = compare_opts,
    .exit_status = "0 means the contents are identical, 1 that they differ.",
    .examples = "vmdkit compare disk.vmdk disk.raw\n"
                "vmdkit compare -s -F raw copy.vmdk original.img\n"
                "vmdkit compare --json a.vmdk b.vmdk | jq '.\"first-difference\"'",
};

#define SCAN_CHUNK (1024u * 1024u)

/*
 * Find the first non-zero byte of DISK at or after FROM.  *FOUND is false
 * when everything up to the end reads as zeros.  Returns 0 or an exit status.
 */
static int first_nonzero(vmdkit_disk *disk, uint64_t from, bool *found, uint64_t *at)
{
    uint64_t size = vmdkit_size(disk), off = from;
    unsigned char *buf = NULL;
    int rc = CLI_EXIT_OK;
    *found = false;
    while (off < size && !*found && !rc) {
        vmdkit_block_status st;
        int e = vmdkit_block_status_at(disk, size - off, off, &st);
        if (e < 0) {
            rc = cli_fail(e, vmdkit_last_error(disk)->msg);
            break;
        }
        uint64_t run = st.length == 0 || st.length > size - off ? size - off : st.length;
        if (st.alloc != VMDKIT_ALLOC_DATA) {
            off += run; /* reads as zeros */
            continue;
        }
        if (!buf && !(buf = malloc(SCAN_CHUNK))) {
            cli_errorf("out of memory");
            rc = CLI_EXIT_IO;
            break;
        }
        for (uint64_t end = off + run; off < end && !*found;) {
            size_t n = end - off < SCAN_CHUNK ? (size_t)(end - off) : SCAN_CHUNK;
            e = vmdkit_pread(disk, buf, n, off);
            if (e < 0) {
                rc = cli_fail(e, vmdkit_last_error(disk)->msg);
                break;
            }
            for (size_t i = 0; i < n; i++) {
                if (buf[i]) {
                    *found = true;
                    *at = off + i;
                    break;
                }
            }
            off += n;
        }
    }
    free(buf);
    return rc;
}

struct compare_opts {
    bool strict, json;
    enum cli_progress_mode progress;
};

/* The verdict as JSON: FIRST_DIFF is NULL when there is no offset to give. */
static int print_json(bool identical, const uint64_t *first_diff, uint64_t size_a, uint64_t size_b)
{
    json_object *o = json_object_new_object();
    cli_json_add_bool(o, "identical", identical);
    json_object_object_add(o, "first-difference",
                           first_diff ? json_object_new_uint64(*first_diff) : NULL);
    cli_json_add_u64(o, "size-a", size_a);
    cli_json_add_u64(o, "size-b", size_b);
    int rc = cli_json_print(o);
    return rc ? rc : identical ? CLI_EXIT_OK : CLI_EXIT_DIFFERENT;
}

static int compare_disks(vmdkit_disk *a, vmdkit_disk *b, const struct compare_opts *o)
{
    uint64_t size_a = vmdkit_size(a), size_b = vmdkit_size(b);
    if (o->strict && size_a != size_b) {
        if (o->json)
            return print_json(false, NULL, size_a, size_b);
        printf("Strict mode: Image size mismatch!\n");
        return CLI_EXIT_DIFFERENT;
    }
    uint64_t diff = 0;
    vmdkit_error err = {0};
    struct cli_progress prog;
    cli_progress_start(&prog, o->progress);
    vmdkit_compare_opts co = {.struct_size = sizeof co,
                              .progress = prog.enabled ? cli_progress_cb : NULL,
                              .progress_opaque = &prog};
    int e = vmdkit_compare(a, b, &diff, &co, &err);
    cli_progress_done(&prog, e >= 0);
    if (e < 0)
        return cli_fail(e, err.msg);
    uint64_t common = size_a < size_b ? size_a : size_b;
    if (e == 1 && size_a != size_b && diff >= common) {
        /* the common part is equal: the larger disk's tail must read as zeros */
        bool found;
        int rc = first_nonzero(size_a > size_b ? a : b, common, &found, &diff);
        if (rc)
            return rc;
        e = found ? 1 : 0;
    }
    if (o->json)
        return print_json(e == 0, e == 0 ? NULL : &diff, size_a, size_b);
    if (e == 0) {
        printf("Images are identical.\n");
        return CLI_EXIT_OK;
    }
    printf("Content mismatch at offset %" PRIu64 "!\n", diff);
    return CLI_EXIT_DIFFERENT;
}

int cmd_compare(int argc, char **argv)
{
    enum cli_format fmt_a = CLI_FMT_AUTO, fmt_b = CLI_FMT_AUTO;
    unsigned flags = VMDKIT_OPEN_RDONLY;
    struct compare_opts opts = {.progress = CLI_PROGRESS_NONE};
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "compare");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        if (cli_open_option(c, &flags))
            continue;
        switch (c) {
        case 's':
            opts.strict = true;
            break;
        case OPT_JSON:
            opts.json = true;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &opts.progress))
                return cli_usage_error("compare", "unknown progress format '%s'", optarg);
            break;
        case 'f':
        case 'F':
            if (!cli_parse_format(optarg, c == 'f' ? &fmt_a : &fmt_b))
                return cli_usage_error("compare", "unknown format '%s' for -%c", optarg, c);
            break;
        case 'h':
            return cli_show_help("compare");
        default:
            return cli_bad_option("compare", argc, argv, c);
        }
    }
    if (argc - optind < 2)
        return cli_usage_error("compare", argc == optind ? "missing A and B" : "missing B");
    if (argc - optind > 2)
        return cli_usage_error("compare", "unexpected argument '%s'", argv[optind + 2]);

    vmdkit_disk *a, *b;
    int rc = cli_open(argv[optind], flags, fmt_a, &a);
    if (rc)
        return rc;
    rc = cli_open(argv[optind + 1], flags, fmt_b, &b);
    if (rc) {
        vmdkit_close(a, NULL);
        return rc;
    }
    rc = compare_disks(a, b, &opts);
    int crc_b = cli_close(b);
    int crc_a = cli_close(a);
    return rc ? rc : crc_b ? crc_b : crc_a;
}
