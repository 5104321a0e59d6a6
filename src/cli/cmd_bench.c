/* cmd_bench.c - vmdkit bench: time many small reads or writes, in the
 * spirit of `qemu-img bench`. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

enum { OPT_PATTERN = CLI_OPT_LONG, OPT_FLUSH, OPT_RANDOM, OPT_SEED };

static const struct cli_opt bench_opts[] = {
    {'c', "count", "COUNT", "Number of requests (default 75000)."},
    {'s', "size", "SIZE", "Bytes per request (default 4k)."},
    {'S', "step", "STEP", "Distance between the offsets of consecutive requests (default SIZE)."},
    {'o', "offset", "OFFSET", "Offset of the first request (default 0)."},
    {'w', "write", NULL, "Write instead of read."},
    {0, "pattern", "BYTE", "Byte written by -w (default 0xa5).", OPT_PATTERN},
    {0, "flush-interval", "N", "With -w: flush after every N requests (default 0: once at the end).",
     OPT_FLUSH},
    {0, "random", NULL, "Random offsets (aligned to SIZE) instead of stepping.", OPT_RANDOM},
    {0, "seed", "N", "Seed of --random (default 1).", OPT_SEED},
    {'f', NULL, "vmdk|raw", "Format of DISK (default: detect)."},
    CLI_OPTS_DISK,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_bench_help = {
    .description = "Send COUNT requests of SIZE bytes to DISK and report the time taken, the\n"
                   "requests per second and the throughput.  Requests go one after another (the\n"
                   "library is synchronous).  Offsets start at OFFSET and advance by STEP modulo\n"
                   "the disk size, like qemu-img bench, so the same -o and -S send the same\n"
                   "requests in both (a large odd multiple of SIZE as STEP spreads them over the\n"
                   "disk like random ones).  With --random they are drawn from a seeded\n"
                   "generator instead, aligned to SIZE.  Writes change the disk: use a scratch\n"
                   "copy.",
    .opts = bench_opts,
    .exit_status = "",
    .examples = "vmdkit bench -c 100000 -s 4k -w --random scratch.vmdk\n"
                "vmdkit bench -c 20000 -s 64k disk.vmdk",
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: reproducible offsets for --random */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

int cmd_bench(int argc, char **argv)
{
    uint64_t count = 75000, size = 4096, step = 0, offset = 0, flush_every = 0, seed = 1;
    bool write = false, random = false;
    uint8_t pattern = 0xa5;
    enum cli_format fmt = CLI_FMT_AUTO;
    unsigned flags = 0;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "bench");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        if (cli_open_option(c, &flags))
            continue;
        switch (c) {
        case 'c':
            if (!cli_parse_size(optarg, false, &count) || count == 0)
                return cli_usage_error("bench", "invalid count '%s'", optarg);
            break;
        case 's':
            if (!cli_parse_size(optarg, false, &size) || size == 0 || size > (64u << 20))
                return cli_usage_error("bench", "invalid request size '%s'", optarg);
            break;
        case 'S':
            if (!cli_parse_size(optarg, false, &step))
                return cli_usage_error("bench", "invalid step '%s'", optarg);
            break;
        case 'o':
            if (!cli_parse_size(optarg, true, &offset))
                return cli_usage_error("bench", "invalid offset '%s'", optarg);
            break;
        case 'w':
            write = true;
            break;
        case OPT_PATTERN:
            if (!cli_parse_pattern(optarg, &pattern))
                return cli_usage_error("bench", "invalid pattern '%s'", optarg);
            break;
        case OPT_FLUSH:
            if (!cli_parse_size(optarg, false, &flush_every))
                return cli_usage_error("bench", "invalid flush interval '%s'", optarg);
            break;
        case OPT_RANDOM:
            random = true;
            break;
        case OPT_SEED:
            if (!cli_parse_size(optarg, false, &seed) || seed == 0)
                return cli_usage_error("bench", "invalid seed '%s'", optarg);
            break;
        case 'f':
            if (!cli_parse_format(optarg, &fmt))
                return cli_usage_error("bench", "unknown format '%s'", optarg);
            break;
        case 'h':
            return cli_show_help("bench");
        default:
            return cli_bad_option("bench", argc, argv, c);
        }
    }
    int rc = cli_operands("bench", argc, argv, 1, "DISK");
    if (rc)
        return rc;
    if (!step)
        step = size;
    vmdkit_disk *d;
    rc = cli_open(argv[optind], flags | (write ? VMDKIT_OPEN_RDWR : VMDKIT_OPEN_RDONLY), fmt, &d);
    if (rc)
        return rc;
    uint64_t disk = vmdkit_size(d);
    if (size > disk || offset > disk - size) {
        cli_close(d);
        return cli_usage_error(
            "bench", "requests of %" PRIu64 " bytes at %" PRIu64 " do not fit the disk", size, offset);
    }
    uint8_t *buf = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
    if (!buf) {
        cli_close(d);
        return cli_fail(VMDKIT_ENOMEM, "out of memory");
    }
    memset(buf, pattern, size);
    printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %s offsets from %" PRIu64 "\n",
           count, write ? "write" : "read", size, random ? "random" : "stepped", offset);
    uint64_t slots = (disk - offset) / size; /* --random: aligned slots */
    uint64_t off = offset, rnd = seed;
    double t0 = now_seconds();
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        if (random)
            off = offset + next_random(&rnd) % slots * size;
        int r = write ? vmdkit_pwrite(d, buf, size, off) : vmdkit_pread(d, buf, size, off);
        if (!r && write && flush_every && (i + 1) % flush_every == 0)
            r = vmdkit_flush(d);
        if (r)
            rc = cli_fail(r, vmdkit_last_error(d)->msg);
        if (!random) {
            /* modulo the disk size, as qemu-img bench does, so that the same
             * -o/-S make the same requests in both; a request that would
             * pass the end starts over at offset 0 */
            off = (off + step % disk) % disk;
            if (off > disk - size)
                off = 0;
        }
    }
    if (rc == 0 && write && vmdkit_flush(d))
        rc = cli_fail(vmdkit_last_error(d)->code, vmdkit_last_error(d)->msg);
    double t = now_seconds() - t0;
    free(buf);
    int rc2 = cli_close(d);
    if (rc)
        return rc;
    if (rc2)
        return rc2;
    printf("Run completed in %.3f seconds.\n", t);
    printf("%.0f requests/s, %.1f MiB/s\n", (double)count / t,
           (double)count * (double)size / t / 1048576.0);
    return CLI_EXIT_OK;
}
