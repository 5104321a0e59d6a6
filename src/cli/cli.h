/*
 * cli.h - declarations shared by the vmdkit command-line program.
 *
 * The command layer speaks to the library only through vmdkit.h.
 */
#ifndef VMDKIT_CLI_H
#define VMDKIT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "vmdkit.h"

/* Exit status of the program.  Stable: listed in `vmdkit --help`. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_DIFFERENT = 1,   /* compare: contents differ; io: a read -P verify failed */
    CLI_EXIT_USAGE = 2,       /* bad command line */
    CLI_EXIT_IO = 3,          /* I/O error, no space, out of memory */
    CLI_EXIT_FORMAT = 4,      /* invalid or corrupt image, or a size beyond limits */
    CLI_EXIT_UNSUPPORTED = 5, /* valid image using a feature vmdkit does not handle */
    CLI_EXIT_NOT_FOUND = 6,   /* a file does not exist */
    CLI_EXIT_CHAIN = 7,       /* broken parent chain */
    CLI_EXIT_LOCKED = 8,      /* in use by another writer */
    CLI_EXIT_REFUSED = 9,     /* read-only, exists, path policy, invalid argument */
};

/* ---- command table (main.c) ---- */

/* Man-page sections of one command; NAME and SYNOPSIS come from the table. */
struct cli_help {
    const char *description;
    const char *options;
    const char *exit_status;   /* command-specific lines; the common table follows */
    const char *examples;
    bool own_exit_status;      /* exit_status replaces the common table (check) */
};

struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *synopsis;      /* without the leading "vmdkit " */
    const struct cli_help *help;
};

const struct cli_command *cli_find_command(const char *name);
/* Print the manual of one command on stdout. */
void cli_print_command_help(const struct cli_command *cmd);

int cmd_create(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_io(int argc, char **argv);
int cmd_vmx(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_clone(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_rebase(int argc, char **argv);
int cmd_mv(int argc, char **argv);
int cmd_tree(int argc, char **argv);
int cmd_bench(int argc, char **argv);

extern const struct cli_help cmd_create_help;
extern const struct cli_help cmd_check_help;
extern const struct cli_help cmd_info_help;
extern const struct cli_help cmd_map_help;
extern const struct cli_help cmd_convert_help;
extern const struct cli_help cmd_compare_help;
extern const struct cli_help cmd_io_help;
extern const struct cli_help cmd_vmx_help;
extern const struct cli_help cmd_snapshot_help;
extern const struct cli_help cmd_clone_help;
extern const struct cli_help cmd_commit_help;
extern const struct cli_help cmd_rebase_help;
extern const struct cli_help cmd_mv_help;
extern const struct cli_help cmd_tree_help;
extern const struct cli_help cmd_bench_help;

/* ---- errors and argument parsing (util.c) ---- */

/* Exit status for a negative VMDKIT_E* code. */
int cli_exit_for(int code);

/* Print "vmdkit: MSG" on stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a library error and return the exit status it maps to. */
int cli_fail(int code, const char *msg);

/*
 * Print "vmdkit: CMD: MSG", the command's synopsis and a pointer to its
 * help on stderr; return CLI_EXIT_USAGE.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* After option parsing: 0 when exactly WANT operands follow (argv[optind]
 * on), else a usage error ("missing MISSING" or the first extra operand
 * named) and CLI_EXIT_USAGE. */
int cli_operands(const char *cmd, int argc, char **argv, int want, const char *missing);

/*
 * Report the option getopt_long rejected (called with opterr = 0 after it
 * returned '?' or ':'); returns CLI_EXIT_USAGE.
 */
int cli_bad_option(const char *cmd, int argc, char **argv, int optopt_char);

/*
 * Parse a byte count: decimal digits with an optional k/m/g/t suffix
 * (also "KiB", "MiB", ...; powers of 1024), or with ALLOW_HEX "0x" hex.
 * Returns false on empty, negative, garbage or overflowing input.
 */
bool cli_parse_size(const char *s, bool allow_hex, uint64_t *out);

/* Parse a byte pattern: 0x.. hex or decimal in 0..255. */
bool cli_parse_pattern(const char *s, uint8_t *out);

/* Parse a decimal integer in [MIN, MAX]. */
bool cli_parse_int(const char *s, long min, long max, long *out);

/* "--split-size 2g|4g": pieces of 4192256 (2047 MiB) or 8323072 sectors
 * (4064 MiB); false if neither. */
bool cli_parse_split_size(const char *s, uint64_t *sectors);

/* Manual text of --split-size, shared by create and convert. */
#define CLI_SPLIT_SIZE_HELP                                                                 \
    "--split-size 4g|2g\n"                                                                  \
    "    twoGbMaxExtent types: the size of each piece file.  4g (the default) is\n"         \
    "    8323072 sectors (4064 MiB), as current VMware products write them; 2g is\n"       \
    "    4192256 sectors (2047 MiB), as older products and VMware's format\n"              \
    "    documentation have it.\n"

/* Canonical spelling of an adapter type (case-insensitive match); NULL if unknown. */
const char *cli_adapter_name(const char *s);

/* Image format named by -f/-F/-O. */
enum cli_format { CLI_FMT_AUTO, CLI_FMT_VMDK, CLI_FMT_RAW };

/* "vmdk" or "raw"; false if unknown. */
bool cli_parse_format(const char *s, enum cli_format *fmt);

/*
 * Open a disk, printing the error on failure.  CLI_FMT_AUTO detects the
 * format (VMDKIT_OPEN_PROBE), CLI_FMT_VMDK refuses a file that is not a
 * VMDK, CLI_FMT_RAW reads the file as raw bytes.  Returns 0 or an exit status.
 */
int cli_open(const char *path, unsigned flags, enum cli_format fmt, vmdkit_disk **out);

/* Close a disk; prints the error and returns its exit status on failure. */
int cli_close(vmdkit_disk *disk);

/* ---- output (output.c) ---- */

/* Human size like "1 GiB", "1.2 MiB", "512 B" (three significant digits). */
void cli_human_size(uint64_t bytes, char *buf, size_t n);

/* Last component of a path (no copy). */
const char *cli_basename(const char *path);

/* Space a file takes on the host (st_blocks); 0 if it cannot be read. */
uint64_t cli_file_host_bytes(const char *path);

/* Print a json-c object on stdout, pretty, with a final newline; frees it. */
int cli_json_print(json_object *obj);

/* Add KEY to OBJ only when VALUE is not NULL. */
void cli_json_add_str(json_object *obj, const char *key, const char *value);
void cli_json_add_u64(json_object *obj, const char *key, uint64_t value);
void cli_json_add_bool(json_object *obj, const char *key, bool value);
void cli_json_add_hex32(json_object *obj, const char *key, uint32_t value);

/* ---- progress (progress.c) ---- */

/*
 * How long work reports progress: not at all, as a bar on a terminal
 * (percent, throughput, ETA; nothing when standard error is not a
 * terminal), or as one JSON object per line on standard error.
 */
enum cli_progress_mode { CLI_PROGRESS_NONE, CLI_PROGRESS_BAR, CLI_PROGRESS_JSON };

/* Long option for "-p, --progress[=bar|json]"; handle it as case 'p'. */
#define CLI_PROGRESS_LONGOPT {"progress", optional_argument, NULL, 'p'}

/* Parse the argument of -p/--progress (NULL: bar); false when unknown. */
bool cli_parse_progress(const char *arg, enum cli_progress_mode *mode);

struct cli_progress {
    bool enabled;              /* something is shown: callers pass cli_progress_cb */
    enum cli_progress_mode mode;
    bool on_terminal;
    double start_s, last_shown_s;  /* monotonic clock */
    uint64_t done_bytes, total_bytes;
    bool shown_once;
    int bar_width;             /* characters drawn by the last bar, to blank leftovers */
};

/* Start reporting in MODE; a bar shows its 0% state at once. */
void cli_progress_start(struct cli_progress *p, enum cli_progress_mode mode);
/* The same as cli_progress_start(P, WANTED ? CLI_PROGRESS_BAR : CLI_PROGRESS_NONE). */
void cli_progress_init(struct cli_progress *p, bool wanted);
/* vmdkit_progress_fn: OPAQUE is a struct cli_progress (or NULL); never cancels. */
int cli_progress_cb(void *opaque, uint64_t done_bytes, uint64_t total_bytes);
/* Final report: the bar ends at 100% on success, JSON gets a last line. */
void cli_progress_done(struct cli_progress *p, bool success);

#endif /* VMDKIT_CLI_H */
