/* cmd_io.c - vmdkit io: read, write and verify bytes of a disk. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const struct cli_opt io_opts[] = {
    {'f', NULL, "vmdk|raw", "Format of DISK (default: detected)."},
    {'r', "read-only", NULL, "Open DISK read-only even when a write is requested (writes then fail)."},
    CLI_OPTS_DISK,
    {'c', "cmd", "CMD", "A command to run (repeatable).", 'c', CLI_OPT_REQUIRED | CLI_OPT_REPEAT},
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_io_help = {
    .description = "Run the -c commands on DISK in order, stopping at the first failure.  Each\n"
                   "successful read or write prints a line like qemu-io:\n"
                   "'read LEN/LEN bytes at offset OFF' or 'wrote LEN/LEN bytes at offset OFF'.\n"
                   "All commands are checked before DISK is opened.  DISK is opened read-write\n"
                   "only when a write or flush command is given (and -r is absent).\n"
                   "\n"
                   "Commands (OFFSET and LEN: bytes, decimal with an optional k/m/g/t suffix,\n"
                   "or 0x hex; PATTERN: one byte, 0x hex or decimal):\n"
                   "  read [-P PATTERN] OFFSET LEN\n"
                   "      Read; with -P check that every byte equals PATTERN.\n"
                   "  write [-P PATTERN] OFFSET LEN\n"
                   "      Write LEN bytes of PATTERN (default 0xcd).\n"
                   "  write -z OFFSET LEN\n"
                   "      Make the range read as zeros, storing no data where the disk allows it.\n"
                   "  flush\n"
                   "      Make every write so far durable.\n"
                   "  readfile OFFSET LEN FILE\n"
                   "      Copy the range into the new file FILE (which must not exist).\n"
                   "  sleep MILLISECONDS\n"
                   "      Wait, keeping DISK open (and locked).",
    .opts = io_opts,
    .exit_status = "1 means a read -P found a byte that differs from the pattern; the message is\n"
                   "'vmdkit: DISK: read -P 0xab: byte at offset N is 0xXX'.",
    .examples = "vmdkit io disk.vmdk -c 'write -P 0x5a 1M 64k' -c flush\n"
                "vmdkit io -r disk.vmdk -c 'read -P 0x5a 1M 64k' -c 'read -P 0 0 1M'\n"
                "vmdkit io disk.vmdk -c 'write -z 0 1G'",
};

enum io_op { IO_READ, IO_WRITE, IO_ZERO, IO_FLUSH, IO_READFILE, IO_SLEEP };

struct io_cmd {
    enum io_op op;
    const char *text; /* as given, for messages */
    bool verify;      /* read -P */
    bool has_pattern; /* -P given */
    uint8_t pattern;
    uint64_t offset, len;
    uint64_t sleep_ms; /* sleep */
    char *file;        /* readfile */
};

#define IO_CHUNK (1024u * 1024u)
#define MAX_TOKENS 8

/* Split S at blanks into TOK (pointing into S, which is modified). */
static int tokenize(char *s, char **tok)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == MAX_TOKENS)
            return -1;
        tok[n++] = t;
    }
    return n;
}

static int parse_range(const char *text, char **tok, struct io_cmd *c)
{
    if (!cli_parse_size(tok[0], true, &c->offset))
        return cli_usage_error("io", "-c '%s': invalid offset '%s'", text, tok[0]);
    if (!cli_parse_size(tok[1], true, &c->len))
        return cli_usage_error("io", "-c '%s': invalid length '%s'", text, tok[1]);
    return CLI_EXIT_OK;
}

/* Parse one -c command; returns 0 or CLI_EXIT_USAGE (message printed). */
static int parse_cmd(const char *text, struct io_cmd *c)
{
    char *copy = strdup(text);
    char *tok[MAX_TOKENS];
    int rc = CLI_EXIT_OK;
    if (!copy) {
        cli_errorf("out of memory");
        return CLI_EXIT_IO;
    }
    *c = (struct io_cmd){.text = text, .pattern = 0xcd};
    int n = tokenize(copy, tok);
    if (n <= 0) {
        rc = cli_usage_error("io", "-c '%s': %s", text, n == 0 ? "empty command" : "too many words");
        goto out;
    }
    int i = 1;
    if (strcmp(tok[0], "read") == 0 || strcmp(tok[0], "write") == 0) {
        bool write = tok[0][0] == 'w';
        c->op = write ? IO_WRITE : IO_READ;
        for (; i < n && tok[i][0] == '-' && tok[i][1] != '\0'; i++) {
            if (strcmp(tok[i], "-P") == 0 && i + 1 < n) {
                if (!cli_parse_pattern(tok[++i], &c->pattern)) {
                    rc = cli_usage_error("io", "-c '%s': invalid pattern '%s'", text, tok[i]);
                    goto out;
                }
                c->verify = !write;
                c->has_pattern = true;
            } else if (write && strcmp(tok[i], "-z") == 0) {
                c->op = IO_ZERO;
            } else {
                rc = cli_usage_error("io", "-c '%s': unknown option '%s'", text, tok[i]);
                goto out;
            }
        }
        if (c->op == IO_ZERO && c->has_pattern) {
            rc = cli_usage_error("io", "-c '%s': -z and -P cannot be combined", text);
            goto out;
        }
        if (n - i != 2) {
            rc = cli_usage_error("io", "-c '%s': expected %s [-P PATTERN] OFFSET LEN", text, tok[0]);
            goto out;
        }
        rc = parse_range(text, tok + i, c);
    } else if (strcmp(tok[0], "flush") == 0) {
        c->op = IO_FLUSH;
        if (n != 1)
            rc = cli_usage_error("io", "-c '%s': flush takes no arguments", text);
    } else if (strcmp(tok[0], "sleep") == 0) {
        long ms = 0;
        c->op = IO_SLEEP;
        if (n != 2 || !cli_parse_int(tok[1], 0, 86400000, &ms))
            rc = cli_usage_error("io", "-c '%s': expected sleep MILLISECONDS (at most a day)", text);
        c->sleep_ms = (uint64_t)ms;
    } else if (strcmp(tok[0], "readfile") == 0) {
        c->op = IO_READFILE;
        if (n != 4) {
            rc = cli_usage_error("io", "-c '%s': expected readfile OFFSET LEN FILE", text);
            goto out;
        }
        rc = parse_range(text, tok + 1, c);
        if (!rc && !(c->file = strdup(tok[3]))) {
            cli_errorf("out of memory");
            rc = CLI_EXIT_IO;
        }
    } else {
        rc = cli_usage_error("io", "-c '%s': unknown command '%s' (read, write, flush, readfile, sleep)",
                             text, tok[0]);
    }
out:
    free(copy);
    return rc;
}

struct io_run {
    vmdkit_disk *disk;
    const char *name;   /* DISK as given */
    unsigned char *buf; /* IO_CHUNK bytes */
};

static int lib_fail(struct io_run *r, int e) { return cli_fail(e, vmdkit_last_error(r->disk)->msg); }

/* Read the range chunk by chunk; verify it or append it to FD (>= 0). */
static int do_read(struct io_run *r, const struct io_cmd *c, int fd)
{
    for (uint64_t done = 0; done < c->len;) {
        size_t n = c->len - done < IO_CHUNK ? (size_t)(c->len - done) : IO_CHUNK;
        uint64_t off = c->offset + done;
        int e = vmdkit_pread(r->disk, r->buf, n, off);
        if (e < 0)
            return lib_fail(r, e);
        if (c->verify) {
            for (size_t i = 0; i < n; i++) {
                if (r->buf[i] != c->pattern) {
                    cli_errorf("%s: read -P 0x%02x: byte at offset %" PRIu64 " is 0x%02x", r->name,
                               c->pattern, off + i, r->buf[i]);
                    return CLI_EXIT_DIFFERENT;
                }
            }
        }
        for (size_t w = 0; fd >= 0 && w < n;) {
            ssize_t k = write(fd, r->buf + w, n - w);
            if (k < 0) {
                cli_errorf("%s: write failed: %s", c->file, strerror(errno));
                return CLI_EXIT_IO;
            }
            w += (size_t)k;
        }
        done += n;
    }
    printf("read %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", c->len, c->len, c->offset);
    return CLI_EXIT_OK;
}

static int do_write(struct io_run *r, const struct io_cmd *c)
{
    const uint64_t zero_chunk = 1ull << 30; /* a multiple of every grain size */
    bool filled = false;
    for (uint64_t done = 0; done < c->len;) {
        uint64_t left = c->len - done;
        int e;
        size_t n;
        if (c->op == IO_ZERO) {
            n = (size_t)(left < zero_chunk ? left : zero_chunk);
            e = vmdkit_pzero(r->disk, n, c->offset + done);
        } else {
            n = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
            if (!filled) {
                memset(r->buf, c->pattern, IO_CHUNK);
                filled = true;
            }
            e = vmdkit_pwrite(r->disk, r->buf, n, c->offset + done);
        }
        if (e < 0)
            return lib_fail(r, e);
        done += n;
    }
    printf("wrote %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", c->len, c->len, c->offset);
    return CLI_EXIT_OK;
}

static int do_readfile(struct io_run *r, const struct io_cmd *c)
{
    int fd = open(c->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int saved = errno;
        cli_errorf("%s: cannot create: %s", c->file, strerror(saved));
        return saved == EEXIST ? CLI_EXIT_REFUSED : errno == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_IO;
    }
    int rc = do_read(r, c, fd);
    if (close(fd) != 0 && !rc) {
        cli_errorf("%s: close failed: %s", c->file, strerror(errno));
        rc = CLI_EXIT_IO;
    }
    return rc;
}

/* Sleep the whole time even when signals interrupt it. */
static void do_sleep(uint64_t ms)
{
    struct timespec left = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

static int run_cmd(struct io_run *r, const struct io_cmd *c)
{
    if (c->op == IO_SLEEP) {
        do_sleep(c->sleep_ms);
        return CLI_EXIT_OK;
    }
    if (c->op == IO_FLUSH) {
        int e = vmdkit_flush(r->disk);
        return e < 0 ? lib_fail(r, e) : CLI_EXIT_OK;
    }
    uint64_t size = vmdkit_size(r->disk);
    if (c->len > size || c->offset > size - c->len) {
        cli_errorf("%s: %s: range ends beyond the disk size %" PRIu64, r->name, c->text, size);
        return CLI_EXIT_REFUSED;
    }
    switch (c->op) {
    case IO_READ:
        return do_read(r, c, -1);
    case IO_READFILE:
        return do_readfile(r, c);
    default:
        return do_write(r, c);
    }
}

static void free_cmds(struct io_cmd *cmds, int n)
{
    for (int i = 0; i < n; i++)
        free(cmds[i].file);
    free(cmds);
}

int cmd_io(int argc, char **argv)
{
    enum cli_format fmt = CLI_FMT_AUTO;
    unsigned flags = VMDKIT_OPEN_RDONLY;
    bool read_only = false;
    const char **texts = calloc((size_t)argc, sizeof *texts);
    int n_texts = 0;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "io");
    if (!texts) {
        cli_errorf("out of memory");
        return CLI_EXIT_IO;
    }
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        if (cli_open_option(c, &flags))
            continue;
        int rc = CLI_EXIT_OK;
        switch (c) {
        case 'c':
            texts[n_texts++] = optarg;
            break;
        case 'f':
            if (!cli_parse_format(optarg, &fmt))
                rc = cli_usage_error("io", "unknown format '%s' for -f", optarg);
            break;
        case 'r':
            read_only = true;
            break;
        case 'h':
            free(texts);
            return cli_show_help("io");
        default:
            rc = cli_bad_option("io", argc, argv, c);
            break;
        }
        if (rc) {
            free(texts);
            return rc;
        }
    }
    int rc = cli_operands("io", argc, argv, 1, "DISK");
    if (!rc && n_texts == 0)
        rc = cli_usage_error("io", "no -c command given");
    struct io_cmd *cmds = rc ? NULL : calloc((size_t)n_texts, sizeof *cmds);
    if (!rc && !cmds) {
        cli_errorf("out of memory");
        rc = CLI_EXIT_IO;
    }
    int n_cmds = 0;
    bool writes = false;
    for (; !rc && n_cmds < n_texts; n_cmds++) {
        rc = parse_cmd(texts[n_cmds], &cmds[n_cmds]);
        writes |=
            cmds[n_cmds].op == IO_WRITE || cmds[n_cmds].op == IO_ZERO || cmds[n_cmds].op == IO_FLUSH;
    }
    free(texts);
    if (rc) {
        free_cmds(cmds, n_cmds);
        return rc;
    }
    if (writes && !read_only)
        flags |= VMDKIT_OPEN_RDWR;

    struct io_run r = {.name = argv[optind]};
    r.buf = malloc(IO_CHUNK);
    if (!r.buf) {
        cli_errorf("out of memory");
        free_cmds(cmds, n_cmds);
        return CLI_EXIT_IO;
    }
    rc = cli_open(r.name, flags, fmt, &r.disk);
    for (int i = 0; !rc && i < n_cmds; i++)
        rc = run_cmd(&r, &cmds[i]);
    if (r.disk) {
        int crc = cli_close(r.disk);
        if (!rc)
            rc = crc;
    }
    free(r.buf);
    free_cmds(cmds, n_cmds);
    return rc;
}
