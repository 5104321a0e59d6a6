/* util.c - error reporting and argument parsing for the command line. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"

int cli_exit_for(int code)
{
    switch (code) {
    case VMDKIT_OK:
        return CLI_EXIT_OK;
    case VMDKIT_EIO:
    case VMDKIT_ENOSPC:
    case VMDKIT_ENOMEM:
    case VMDKIT_ECANCELED:
        return CLI_EXIT_IO; /* the work did not complete */
    case VMDKIT_EFORMAT:
    case VMDKIT_ELIMIT:
        return CLI_EXIT_FORMAT;
    case VMDKIT_EUNSUPPORTED:
        return CLI_EXIT_UNSUPPORTED;
    case VMDKIT_ENOENT:
        return CLI_EXIT_NOT_FOUND;
    case VMDKIT_ECHAIN:
        return CLI_EXIT_CHAIN;
    case VMDKIT_ELOCKED:
        return CLI_EXIT_LOCKED;
    case VMDKIT_ERDONLY:
    case VMDKIT_EEXIST:
    case VMDKIT_EPATH:
    case VMDKIT_EINVAL:
        return CLI_EXIT_REFUSED;
    default:
        return CLI_EXIT_IO; /* an unknown class is still a failure */
    }
}

void cli_errorf(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout); /* keep order when both streams go to one place */
    fputs("vmdkit: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_fail(int code, const char *msg)
{
    if (msg && *msg)
        cli_errorf("%s", msg);
    else
        cli_errorf("%s error", vmdkit_errcode_name(code));
    return cli_exit_for(code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "vmdkit: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    const struct cli_command *c = cli_find_command(cmd);
    if (c) {
        char synopsis[1024];
        cli_synopsis(c, synopsis, sizeof synopsis);
        fprintf(stderr, "Usage: vmdkit %s\n", synopsis);
    }
    fprintf(stderr, "Try 'vmdkit %s --help' for more information.\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_operands(const char *cmd, int argc, char **argv, int want, const char *missing)
{
    int have = argc - optind;
    if (have < want)
        return cli_usage_error(cmd, "missing %s", missing);
    if (have > want)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + want]);
    return 0;
}

int cli_bad_option(const char *cmd, int argc, char **argv, int ret)
{
    const char *elem = (optind > 0 && optind <= argc) ? argv[optind - 1] : "?";
    if (ret == ':')
        return cli_usage_error(cmd, "option '%s' needs an argument", elem);
    if (ret != '?') /* a row of the command's table that its switch does not handle */
        return cli_usage_error(cmd, "option '%s' is not implemented", elem);
    if (optopt == 0) /* an unknown long option */
        return cli_usage_error(cmd, "unknown option '%s'", elem);
    if (isdigit((unsigned char)optopt)) {
        /* no option is a digit: this is a negative number */
        for (int i = 1; i < argc; i++)
            if (argv[i][0] == '-' && isdigit((unsigned char)argv[i][1]))
                return cli_usage_error(cmd, "invalid argument '%s': negative values are not accepted",
                                       argv[i]);
    }
    return cli_usage_error(cmd, "unknown option '-%c'", optopt);
}

/* Digits of base 10 or 16 from *P; false when none or on overflow. */
static bool parse_digits(const char **p, unsigned base, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;
    const char *start = s;
    for (;; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && isxdigit((unsigned char)*s))
            d = (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
        else
            break;
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    if (s == start)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* Shift for a size suffix: "", "B", "k", "KiB", ...; -1 when unknown. */
static int suffix_shift(const char *s)
{
    static const char units[] = "kmgt";
    if (*s == '\0' || strcmp(s, "B") == 0)
        return 0;
    const char *u = strchr(units, tolower((unsigned char)s[0])); /* s[0] is not NUL */
    if (!u)
        return -1;
    int shift = 10 * (int)(u - units + 1);
    if (s[1] == '\0' || strcasecmp(s + 1, "iB") == 0)
        return shift;
    return -1;
}

bool cli_parse_size(const char *s, bool allow_hex, uint64_t *out)
{
    uint64_t v;
    if (!s)
        return false;
    if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        const char *p = s + 2;
        if (!parse_digits(&p, 16, &v) || *p != '\0')
            return false;
        *out = v;
        return true;
    }
    const char *p = s;
    if (!parse_digits(&p, 10, &v))
        return false; /* empty, sign, space or garbage first */
    int shift = suffix_shift(p);
    if (shift < 0)
        return false;
    if (shift > 0 && v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

bool cli_parse_pattern(const char *s, uint8_t *out)
{
    uint64_t v;
    const char *p = s;
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        p += 2;
        base = 16;
    }
    if (!parse_digits(&p, base, &v) || *p != '\0' || v > 0xff)
        return false;
    *out = (uint8_t)v;
    return true;
}

bool cli_parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return false; /* no sign, no leading space */
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_format(const char *s, enum cli_format *fmt)
{
    if (strcmp(s, "vmdk") == 0)
        *fmt = CLI_FMT_VMDK;
    else if (strcmp(s, "raw") == 0)
        *fmt = CLI_FMT_RAW;
    else
        return false;
    return true;
}

bool cli_path_usable(const char *path, bool output)
{
    if (strcmp(path, "-") == 0) {
        cli_errorf("-: %s is not supported; name a file",
                   output ? "writing to standard output" : "reading standard input");
        return false;
    }
    struct stat st;
    if (!output && stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) &&
        !S_ISDIR(st.st_mode)) {
        cli_errorf("%s: is a %s; vmdkit reads disks from regular files and block devices only "
                   "(copy it into a file first)",
                   path,
                   S_ISFIFO(st.st_mode)   ? "pipe"
                   : S_ISSOCK(st.st_mode) ? "socket"
                                          : "character device");
        return false;
    }
    return true;
}

int cli_open(const char *path, unsigned flags, enum cli_format fmt, vmdkit_disk **out)
{
    vmdkit_error err = {0};
    *out = NULL;
    if (!cli_path_usable(path, false))
        return CLI_EXIT_REFUSED;
    if (fmt == CLI_FMT_RAW)
        flags |= VMDKIT_OPEN_RAW;
    else if (fmt == CLI_FMT_AUTO)
        flags |= VMDKIT_OPEN_PROBE;
    *out = NULL;
    int rc = vmdkit_open(path, flags, out, &err);
    if (rc < 0) {
        *out = NULL;
        return cli_fail(rc, err.msg);
    }
    return CLI_EXIT_OK;
}

int cli_close(vmdkit_disk *disk)
{
    vmdkit_error err = {0};
    int rc = vmdkit_close(disk, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    return CLI_EXIT_OK;
}

bool cli_parse_split_size(const char *s, uint64_t *sectors)
{
    if (strcasecmp(s, "4g") == 0)
        *sectors = VMDKIT_SPLIT_4G_SECTORS;
    else if (strcasecmp(s, "2g") == 0)
        *sectors = VMDKIT_SPLIT_2G_SECTORS;
    else
        return false;
    return true;
}

int cli_vm_disks(const char *vm, char **vmx, char ***disks, size_t *n)
{
    *vmx = NULL;
    *disks = NULL;
    *n = 0;
    vmdkit_error err = {0};
    vmdkit_vmsd_report *v = NULL;
    char *x = NULL;
    int e = vmdkit_vm_find_vmx(vm, &x, &err);
    if (e >= 0)
        e = vmdkit_vm_check_stopped(x, &err);
    if (e >= 0)
        e = vmdkit_vmsd_report_get(x, &v, &err);
    if (e < 0) {
        free(x);
        return cli_fail(e, err.msg);
    }
    if (v->n_disks == 0) {
        cli_errorf("%s: no hard disk: no scsiN:M, sataN:M, ideN:M or nvmeN:M fileName names a .vmdk", x);
        vmdkit_vmsd_report_free(v);
        free(x);
        return CLI_EXIT_NOT_FOUND;
    }
    if (v->n_machines) { /* absolute, as check and info print it */
        free(x);
        x = v->machines[0];
        v->machines[0] = NULL;
    }
    *disks = v->disks;
    *n = v->n_disks;
    v->disks = NULL;
    v->n_disks = 0;
    vmdkit_vmsd_report_free(v);
    *vmx = x;
    return CLI_EXIT_OK;
}
