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

#include <getopt.h>

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

/* ---- options (options.c) ---- */

/*
 * One option of a command, declared once.  From a command's table come the
 * getopt string and the struct option array its parser uses, the OPTIONS
 * section of its manual (which the man pages and the bash completion read)
 * and the options part of its synopsis.  Options several commands share
 * are a group (a table of their own) that a row includes by reference.
 */
struct cli_opt {
    char short_name;             /* 'f' for -f; 0: a long name only */
    const char *long_name;       /* "type" for --type; NULL: a short name only */
    const char *arg;             /* name of the value ("TYPE", "vmdk|raw"); NULL: none */
    const char *help;            /* the OPTIONS text, lines separated by '\n' */
    int id;                      /* what cli_getopt returns; 0: short_name */
    unsigned flags;              /* enum cli_opt_flags */
    const char *synopsis;        /* the synopsis's spelling when not "-x ARG" or "--long ARG" */
    const struct cli_opt *group; /* this row stands for the rows of GROUP */
};

enum cli_opt_flags {
    CLI_OPT_OPTIONAL = 1 << 0,    /* the value is optional: --long[=ARG] */
    CLI_OPT_NO_SYNOPSIS = 1 << 1, /* not shown in the synopsis (-h) */
    CLI_OPT_REQUIRED = 1 << 2,    /* synopsis without brackets: -b NEWPARENT */
    CLI_OPT_REPEAT = 1 << 3,      /* synopsis: -c CMD [-c CMD ...] */
    CLI_OPT_NEST = 1 << 4,        /* synopsis: inside the previous row's brackets */
    CLI_OPT_OR = 1 << 5,          /* synopsis: an alternative to the previous row: [A | B] */
    CLI_OPT_BESIDE = 1 << 6,      /* synopsis: beside the previous nested row: [A [B] [C]] */
};

/* Ids of the long-only options of one command start here; shared ones above. */
#define CLI_OPT_LONG 256
enum { CLI_OPT_ALLOW_EXTERNAL = 0x1000, CLI_OPT_IGNORE_CID, CLI_OPT_ALLOW_ABSOLUTE_PARENTS };

/* Shared groups: the options of commands that open disks themselves
 * (--allow-external-extents, --allow-absolute-parents), progress (-p, --progress[=bar|json]), help. */
extern const struct cli_opt cli_opts_disk[];
/* --ignore-cid, for the commands that only read a disk */
extern const struct cli_opt cli_opts_ignore_cid[];
#define CLI_OPTS_IGNORE_CID          \
    {                                \
        .group = cli_opts_ignore_cid \
    }
extern const struct cli_opt cli_opts_progress[];
extern const struct cli_opt cli_opts_help[];
#define CLI_OPTS_DISK          \
    {                          \
        .group = cli_opts_disk \
    }
#define CLI_OPTS_PROGRESS          \
    {                              \
        .group = cli_opts_progress \
    }
#define CLI_OPTS_HELP          \
    {                          \
        .group = cli_opts_help \
    }
#define CLI_OPTS_END \
    {                \
        0            \
    }

/* ---- command table (main.c) ---- */

/* Man-page sections of one command; NAME and SYNOPSIS come from the table. */
struct cli_help {
    const char *description;
    const struct cli_opt *opts; /* the options: the OPTIONS section and the parser */
    const char *options_note;   /* a paragraph after the options, or NULL */
    const char *exit_status;    /* command-specific lines; the common table follows */
    const char *examples;
    bool own_exit_status; /* exit_status replaces the common table (check) */
    bool options_first;   /* options end at the first operand (vmx) */
};

struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *operands; /* the synopsis after the options: "FILE SIZE" */
    const struct cli_help *help;
};

const struct cli_command *cli_find_command(const char *name);
/* Print the manual of one command on stdout. */
void cli_print_command_help(const struct cli_command *cmd);
/* Print the manual of the command NAME on stdout; returns CLI_EXIT_OK. */
int cli_show_help(const char *name);
/* Every command, in the order of the table; *N receives their number. */
const struct cli_command *cli_commands(size_t *n);

/* The parser of one command, built from its option table. */
#define CLI_MAX_OPTS 40
struct cli_getopt {
    char shortopts[3 + 3 * CLI_MAX_OPTS];
    struct option longopts[CLI_MAX_OPTS + 1];
};

/* Build the parser of the command NAME (a command of the table). */
void cli_getopt_init(struct cli_getopt *g, const char *name);
/* The id of the next option (cli_opt.id), -1 after the last, '?' or ':' on
 * a bad option (see cli_bad_option); optarg holds the value. */
int cli_getopt(struct cli_getopt *g, int argc, char **argv);

/* The synopsis of CMD without "vmdkit ": its name, options and operands. */
void cli_synopsis(const struct cli_command *cmd, char *buf, size_t n);
/* The OPTIONS section of CMD's manual, each line indented by INDENT. */
void cli_print_options(FILE *f, const struct cli_command *cmd, int indent);
/* True when CMD's table holds the option with id ID. */
bool cli_has_option(const struct cli_command *cmd, int id);
/* The shared options that set vmdkit_open flags (--allow-external-extents,
 * --allow-absolute-parents, --ignore-cid): true when C is one of them and
 * its flag was added to *FLAGS. */
bool cli_open_option(int c, unsigned *flags);
/* Print "SPELLING  HELP" lines of GROUP, one per option, indented by 2. */
void cli_print_group(FILE *f, const struct cli_opt *group);

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
int cmd_resize(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_defrag(int argc, char **argv);
int cmd_mv(int argc, char **argv);
int cmd_tree(int argc, char **argv);
int cmd_ova(int argc, char **argv);
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
extern const struct cli_help cmd_resize_help;
extern const struct cli_help cmd_compact_help;
extern const struct cli_help cmd_defrag_help;
extern const struct cli_help cmd_mv_help;
extern const struct cli_help cmd_tree_help;
extern const struct cli_help cmd_ova_help;
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
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* After option parsing: 0 when exactly WANT operands follow (argv[optind]
 * on), else a usage error ("missing MISSING" or the first extra operand
 * named) and CLI_EXIT_USAGE. */
int cli_operands(const char *cmd, int argc, char **argv, int want, const char *missing);

/*
 * Report the option cli_getopt rejected (called with opterr = 0 after it
 * returned '?' or ':'), or one whose id the command's switch does not
 * handle ("not implemented": a table row nobody wired); returns
 * CLI_EXIT_USAGE.
 */
int cli_bad_option(const char *cmd, int argc, char **argv, int ret);

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

/* The option row of --split-size, shared by create and convert (ID is the
 * command's id for it). */
#define CLI_SPLIT_SIZE_OPT(ID)                                                           \
    {                                                                                    \
        0, "split-size", "4g|2g",                                                        \
            "twoGbMaxExtent types: the size of each piece file.  4g (the default) is\n"  \
            "8323072 sectors (4064 MiB), as current VMware products write them; 2g is\n" \
            "4192256 sectors (2047 MiB), as older products and VMware's format\n"        \
            "documentation have it.",                                                    \
            (ID)                                                                         \
    }

/* Image format named by -f/-F/-O. */
enum cli_format { CLI_FMT_AUTO, CLI_FMT_VMDK, CLI_FMT_RAW };

/* "vmdk" or "raw"; false if unknown. */
bool cli_parse_format(const char *s, enum cli_format *fmt);

/*
 * Open a disk, printing the error on failure.  CLI_FMT_AUTO detects the
 * format (VMDKIT_OPEN_PROBE), CLI_FMT_VMDK refuses a file that is not a
 * VMDK, CLI_FMT_RAW reads the file as raw bytes.  A path cli_path_usable()
 * refuses gives CLI_EXIT_REFUSED.  Returns 0 or an exit status.
 */
int cli_open(const char *path, unsigned flags, enum cli_format fmt, vmdkit_disk **out);

/*
 * Can PATH be read (OUTPUT false) or written (OUTPUT true) as a disk?  "-"
 * (standard input or output) cannot, nor, to read, a pipe, socket or
 * character device: the disk code seeks, and a pipe would fail late as an
 * "invalid image".  Prints why not ("vmdkit: PATH: ...") and returns false.
 */
bool cli_path_usable(const char *path, bool output);

/* Close a disk; prints the error and returns its exit status on failure. */
int cli_close(vmdkit_disk *disk);

/* ---- output (output.c) ---- */

/* Human size like "1 GiB", "1.2 MiB", "512 B" (three significant digits). */
void cli_human_size(uint64_t bytes, char *buf, size_t n);

/* Print TEXT with every non-empty line indented by INDENT spaces. */
void cli_print_indented(FILE *f, const char *text, int indent);

/* Last component of a path (no copy). */
const char *cli_basename(const char *path);

/* Space a file takes on the host (st_blocks); 0 if it cannot be read. */
uint64_t cli_file_host_bytes(const char *path);

/* Print the rewrites a command made ("updated FILE: KEY = "VALUE"" on
 * stdout) and, on stderr, each one that failed with the command that
 * repairs it. */
void cli_print_rewrites(const vmdkit_rewrite *v, size_t n);

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

/* Parse the argument of -p/--progress (NULL: bar); false when unknown. */
bool cli_parse_progress(const char *arg, enum cli_progress_mode *mode);

struct cli_progress {
    bool enabled; /* something is shown: callers pass cli_progress_cb */
    enum cli_progress_mode mode;
    bool on_terminal;
    double start_s, last_shown_s; /* monotonic clock */
    uint64_t done_bytes, total_bytes;
    bool shown_once;
    bool finished; /* the work succeeded: the last report is 100% */
    int bar_width; /* characters drawn by the last bar, to blank leftovers */
};

/* Start reporting in MODE; a bar shows its 0% state at once. */
void cli_progress_start(struct cli_progress *p, enum cli_progress_mode mode);
/* The same as cli_progress_start(P, WANTED ? CLI_PROGRESS_BAR : CLI_PROGRESS_NONE). */
void cli_progress_init(struct cli_progress *p, bool wanted);
/* vmdkit_progress_fn: OPAQUE is a struct cli_progress (or NULL; nothing is
 * shown).  Returns non-zero - cancel - once a signal asked for it (see
 * cli_cancel_on_signals): pass it to cancellable work even when nothing
 * is displayed. */
int cli_progress_cb(void *opaque, uint64_t done_bytes, uint64_t total_bytes);
/* Final report: the bar ends at 100% on success, JSON gets a last line. */
void cli_progress_done(struct cli_progress *p, bool success);

/* ---- interruption (cancel.c) ---- */

/* From now on the first SIGINT, SIGTERM or SIGHUP cancels the running work
 * (cli_progress_cb returns non-zero) instead of killing the process; call
 * it just before library work that polls its progress callback. */
void cli_cancel_on_signals(void);
/* Has a signal asked to cancel? */
bool cli_cancel_requested(void);
/* After the command: when a signal was caught, end the process by it (the
 * shell sees 128 + its number); otherwise return. */
void cli_exit_if_interrupted(void);

/*
 * The hard disks of the machine VM (a folder or a .vmx: vmdkit_is_vm_path),
 * in .vmx order, for a command that changes each of them: a machine that
 * runs or is suspended is refused (vmdkit_vm_check_stopped) before any is
 * touched.  *VMX (free) and *DISKS (vmdkit_paths_free) receive the .vmx
 * and the absolute disk paths, from the library model (vmdkit_vmsd_report_get).
 * Returns 0 or an exit status, the message printed.
 */
int cli_vm_disks(const char *vm, char **vmx, char ***disks, size_t *n);

/* info and map: the options both take (--json, --ignore-cid, the disk
 * options; --chain where the command's table has it) and one DISK operand,
 * parsed into A (cmd_info.c).  Returns 0, or the exit status of --help or of
 * a usage error, its message printed. */
enum { CLI_INSPECT_JSON = CLI_OPT_LONG, CLI_INSPECT_CHAIN };
struct cli_inspect_args {
    bool json, chain;
    unsigned open_flags; /* VMDKIT_OPEN_RDONLY and what the disk options add */
    const char *disk;
};
int cli_parse_inspect(const char *name, const char *operand, int argc, char **argv,
                      struct cli_inspect_args *a);

/* The option ids cli_run_rewrite parses, and the --root row compact and
 * defrag share (cmd_compact.c). */
enum { CLI_REWRITE_JSON = CLI_OPT_LONG, CLI_REWRITE_ROOT, CLI_REWRITE_DEDUPE_PARENT, CLI_REWRITE_CHAIN };
extern const struct cli_opt cli_opts_rewrite_root[];
#define CLI_OPTS_REWRITE_ROOT          \
    {                                  \
        .group = cli_opts_rewrite_root \
    }

/* compact and defrag: parse [--chain] [--dedupe-parent] [-p] [--json]
 * [--root DIR] DISK|VM, run REWRITE on DISK or each disk of VM, print the
 * sizes before and after (and, with DROPPED, the zero grains dropped). */
typedef int (*cli_rewrite_fn)(const char *path, const vmdkit_compact_opts *opts,
                              vmdkit_compact_result *res, vmdkit_error *err);
int cli_run_rewrite(const char *name, int argc, char **argv, cli_rewrite_fn rewrite, bool dropped);

#endif /* VMDKIT_CLI_H */
