/* output.c - human and JSON formatting shared by the commands. */
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void cli_human_size(uint64_t bytes, char *buf, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    size_t i = 0;
    /* three significant digits: move up a unit before "%.3g" would print 1e+03 */
    while (i + 1 < sizeof units / sizeof units[0] && v >= 999.5) {
        v /= 1024.0;
        i++;
    }
    snprintf(buf, n, "%.3g %s", v, units[i]);
}

const char *cli_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

uint64_t cli_file_host_bytes(const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return 0;
    return (uint64_t)st.st_blocks * 512u;
}

void cli_print_rewrites(const vmdkit_rewrite *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].code == 0)
            printf("updated %s: %s = \"%s\"\n", v[i].file, v[i].key ? v[i].key : "parentFileNameHint",
                   v[i].value);
    for (size_t i = 0; i < n; i++) {
        if (v[i].code == 0)
            continue;
        cli_errorf("%s", v[i].message ? v[i].message : vmdkit_errcode_name(v[i].code));
        if (v[i].key)
            fprintf(stderr, "  repair with: vmdkit vmx set '%s' '%s' '%s'\n", v[i].file, v[i].key,
                    v[i].value);
        else
            fprintf(stderr, "  repair with: vmdkit rebase -u -b '%s' '%s'\n", v[i].target, v[i].file);
    }
}

int cli_json_print(json_object *obj)
{
    const char *text = json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = CLI_EXIT_OK;
    if (!text) {
        cli_errorf("out of memory while formatting JSON");
        rc = CLI_EXIT_IO;
    } else {
        puts(text);
    }
    json_object_put(obj);
    return rc;
}

void cli_json_add_str(json_object *obj, const char *key, const char *value)
{
    if (value)
        json_object_object_add(obj, key, json_object_new_string(value));
}

void cli_json_add_u64(json_object *obj, const char *key, uint64_t value)
{
    json_object_object_add(obj, key, json_object_new_uint64(value));
}

void cli_json_add_bool(json_object *obj, const char *key, bool value)
{
    json_object_object_add(obj, key, json_object_new_boolean(value));
}

void cli_json_add_hex32(json_object *obj, const char *key, uint32_t value)
{
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", value);
    json_object_object_add(obj, key, json_object_new_string(hex));
}

void cli_print_indented(FILE *f, const char *text, int indent)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        if (len > 0)
            fprintf(f, "%*s%.*s", indent, "", (int)len, text);
        fputc('\n', f);
        text += len + (nl ? 1 : 0);
    }
}
