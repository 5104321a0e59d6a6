/*
 * options.c - a command's options, from its one table to everything that
 * names them: the getopt string and struct option array of the parser, the
 * OPTIONS section of the manual and the options part of the synopsis.
 *
 * A table is an array of struct cli_opt ended by CLI_OPTS_END; a row with
 * .group stands for the rows of a shared table (CLI_OPTS_DISK ...), so a
 * shared option is written once.  Every walk below goes through flatten().
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const struct cli_opt cli_opts_disk[] = {
    {0, "allow-external-extents", NULL, "Follow extent files outside the descriptor's folder.",
     CLI_OPT_ALLOW_EXTERNAL},
    {0, "allow-absolute-parents", NULL,
     "Follow absolute parent hints (VMware writes them for linked clones);\n"
     "relative ones are followed beneath the folder they climb to.",
     CLI_OPT_ALLOW_ABSOLUTE_PARENTS},
    CLI_OPTS_END,
};

const struct cli_opt cli_opts_ignore_cid[] = {
    {0, "ignore-cid", NULL,
     "Open the chain even when a parent's CID does not match the child's\n"
     "parentCID (read-only: to inspect or rescue the data of a broken chain).",
     CLI_OPT_IGNORE_CID},
    CLI_OPTS_END,
};

const struct cli_opt cli_opts_progress[] = {
    {'p', "progress", "bar|json",
     "Show progress on standard error: a bar with percent, throughput and time\n"
     "left when standard error is a terminal (nothing otherwise), or with\n"
     "--progress=json one JSON object per line (see docs/json.md).",
     'p', CLI_OPT_OPTIONAL, "-p | --progress=json"},
    CLI_OPTS_END,
};

const struct cli_opt cli_opts_help[] = {
    {'h', "help", NULL, "Show this manual.", 'h', CLI_OPT_NO_SYNOPSIS},
    CLI_OPTS_END,
};

static bool is_end(const struct cli_opt *o) { return !o->short_name && !o->long_name && !o->group; }

/* The rows of TABLE with groups replaced by their rows, into OUT[MAX].
 * A table that does not fit is a mistake in the program, found by the first
 * run of the command (every command's --help is tested). */
static size_t flatten(const struct cli_opt *table, const struct cli_opt **out, size_t n, size_t max)
{
    for (const struct cli_opt *o = table; o && !is_end(o); o++) {
        if (o->group) {
            n = flatten(o->group, out, n, max);
            continue;
        }
        if (n == max) {
            fprintf(stderr, "vmdkit: internal error: more than %zu options\n", max);
            exit(CLI_EXIT_IO);
        }
        out[n++] = o;
    }
    return n;
}

static size_t rows_of(const struct cli_command *cmd, const struct cli_opt **rows)
{
    return flatten(cmd->help->opts, rows, 0, CLI_MAX_OPTS);
}

static int id_of(const struct cli_opt *o) { return o->id ? o->id : o->short_name; }

void cli_getopt_init(struct cli_getopt *g, const char *name)
{
    const struct cli_command *cmd = cli_find_command(name);
    const struct cli_opt *rows[CLI_MAX_OPTS];
    size_t n = cmd ? rows_of(cmd, rows) : 0, k = 0, nl = 0;
    memset(g, 0, sizeof *g);
    if (cmd && cmd->help->options_first)
        g->shortopts[k++] = '+'; /* stop at the first operand */
    g->shortopts[k++] = ':';     /* report a missing value as ':' */
    for (size_t i = 0; i < n; i++) {
        const struct cli_opt *o = rows[i];
        int has_arg = !o->arg                         ? no_argument
                      : (o->flags & CLI_OPT_OPTIONAL) ? optional_argument
                                                      : required_argument;
        if (o->short_name) {
            g->shortopts[k++] = o->short_name;
            if (has_arg != no_argument)
                g->shortopts[k++] = ':';
            if (has_arg == optional_argument)
                g->shortopts[k++] = ':';
        }
        if (o->long_name)
            g->longopts[nl++] = (struct option){o->long_name, has_arg, NULL, id_of(o)};
    }
}

int cli_getopt(struct cli_getopt *g, int argc, char **argv)
{
    return getopt_long(argc, argv, g->shortopts, g->longopts, NULL);
}

/* "-t, --type TYPE", "--progress[=bar|json]", "-f vmdk|raw": the OPTIONS line. */
static void spelling(const struct cli_opt *o, char *buf, size_t n)
{
    char s[8] = "", l[64] = "";
    if (o->short_name)
        snprintf(s, sizeof s, "-%c", o->short_name);
    if (o->long_name)
        snprintf(l, sizeof l, "--%s", o->long_name);
    const char *arg = o->arg ? o->arg : "";
    const char *sep = !o->arg ? "" : (o->flags & CLI_OPT_OPTIONAL) ? "[=" : " ";
    const char *close = o->arg && (o->flags & CLI_OPT_OPTIONAL) ? "]" : "";
    if (*s && *l)
        snprintf(buf, n, "%s, %s%s%s%s", s, l, sep, arg, close);
    else
        snprintf(buf, n, "%s%s%s%s", *s ? s : l, sep, arg, close);
}

/* The synopsis's spelling: the short name where there is one. */
static void synopsis_spelling(const struct cli_opt *o, char *buf, size_t n)
{
    if (o->synopsis) {
        snprintf(buf, n, "%s", o->synopsis);
        return;
    }
    char name[64];
    if (o->short_name)
        snprintf(name, sizeof name, "-%c", o->short_name);
    else
        snprintf(name, sizeof name, "--%s", o->long_name);
    if (!o->arg)
        snprintf(buf, n, "%s", name);
    else if (o->flags & CLI_OPT_REPEAT)
        snprintf(buf, n, "%s %s [%s %s ...]", name, o->arg, name, o->arg);
    else
        snprintf(buf, n, "%s %s", name, o->arg);
}

/* Append to BUF[N] (kept NUL-terminated; a synopsis that does not fit is cut). */
static void append(char *buf, size_t n, const char *text)
{
    size_t len = strlen(buf);
    if (len + 1 < n)
        snprintf(buf + len, n - len, "%s", text);
}

static void close_brackets(char *buf, size_t n, int *open, int keep)
{
    for (; *open > keep; (*open)--)
        append(buf, n, "]");
}

void cli_synopsis(const struct cli_command *cmd, char *buf, size_t n)
{
    const struct cli_opt *rows[CLI_MAX_OPTS];
    size_t count = rows_of(cmd, rows);
    int open = 0; /* brackets not yet closed */
    snprintf(buf, n, "%s", cmd->name);
    for (size_t i = 0; i < count; i++) {
        const struct cli_opt *o = rows[i];
        if (o->flags & CLI_OPT_NO_SYNOPSIS)
            continue;
        char s[160];
        synopsis_spelling(o, s, sizeof s);
        if ((o->flags & CLI_OPT_NEST) && open > 0) {
            append(buf, n, " [");
            open++;
        } else if ((o->flags & CLI_OPT_BESIDE) && open > 1) {
            close_brackets(buf, n, &open, open - 1);
            append(buf, n, " [");
            open++;
        } else if ((o->flags & CLI_OPT_OR) && open > 0) {
            close_brackets(buf, n, &open, 1);
            append(buf, n, " | ");
        } else {
            close_brackets(buf, n, &open, 0);
            bool required = (o->flags & CLI_OPT_REQUIRED) != 0;
            append(buf, n, required ? " " : " [");
            open = required ? 0 : 1;
        }
        append(buf, n, s);
    }
    close_brackets(buf, n, &open, 0);
    if (cmd->operands && *cmd->operands) {
        append(buf, n, " ");
        append(buf, n, cmd->operands);
    }
}

void cli_print_options(FILE *f, const struct cli_command *cmd, int indent)
{
    const struct cli_opt *rows[CLI_MAX_OPTS];
    size_t count = rows_of(cmd, rows);
    for (size_t i = 0; i < count; i++) {
        char s[160];
        spelling(rows[i], s, sizeof s);
        fprintf(f, "%*s%s\n", indent, "", s);
        cli_print_indented(f, rows[i]->help, indent + 4);
    }
    if (cmd->help->options_note)
        cli_print_indented(f, cmd->help->options_note, indent);
}

bool cli_has_option(const struct cli_command *cmd, int id)
{
    const struct cli_opt *rows[CLI_MAX_OPTS];
    size_t count = rows_of(cmd, rows);
    for (size_t i = 0; i < count; i++)
        if (id_of(rows[i]) == id)
            return true;
    return false;
}

void cli_print_group(FILE *f, const struct cli_opt *group)
{
    const struct cli_opt *rows[CLI_MAX_OPTS];
    size_t count = flatten(group, rows, 0, CLI_MAX_OPTS);
    for (size_t i = 0; i < count; i++) {
        char s[160];
        spelling(rows[i], s, sizeof s);
        fprintf(f, "  %s  ", s);
        /* one line: the help's lines joined */
        for (const char *h = rows[i]->help; *h; h++)
            fputc(*h == '\n' ? ' ' : *h, f);
        fputc('\n', f);
    }
}

bool cli_open_option(int c, unsigned *flags)
{
    switch (c) {
    case CLI_OPT_ALLOW_EXTERNAL:
        *flags |= VMDKIT_OPEN_ALLOW_EXTERNAL;
        return true;
    case CLI_OPT_ALLOW_ABSOLUTE_PARENTS:
        *flags |= VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS;
        return true;
    case CLI_OPT_IGNORE_CID:
        *flags |= VMDKIT_OPEN_IGNORE_CID;
        return true;
    default:
        return false;
    }
}
