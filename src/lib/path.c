/* path.c - the one place where untrusted names become file paths. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"

char *vk_path_dirname(const char *path, vk_err *e)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return vk_strdup(".", e);
    if (slash == path)
        return vk_strdup("/", e);
    return vk_strndup(path, (size_t)(slash - path), e);
}

const char *vk_path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

bool vk_path_has_suffix(const char *path, const char *suffix)
{
    const char *name = vk_path_basename(path);
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcasecmp(name + n - k, suffix) == 0;
}

char *vk_path_join(const char *dir, const char *name, vk_err *e)
{
    if (name[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0)
        return vk_strdup(name, e);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = vk_malloc(n, e);
    if (p)
        snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

/* Collapse "//", "/./" and "x/../" in an absolute path, in place. */
static void normalise(char *p)
{
    char *out = p;
    const char *in = p;
    while (*in) {
        while (*in == '/')
            in++;
        if (!*in)
            break;
        const char *end = strchr(in, '/');
        size_t len = end ? (size_t)(end - in) : strlen(in);
        if (len == 1 && in[0] == '.') {
            /* skip */
        } else if (len == 2 && in[0] == '.' && in[1] == '.') {
            while (out > p && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, in, len);
            out += len;
        }
        in += len;
    }
    if (out == p)
        *out++ = '/';
    *out = 0;
}

char *vk_path_absolute(const char *path, vk_err *e)
{
    char *abs;
    if (path[0] == '/') {
        abs = vk_strdup(path, e);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            vk_fail_errno(e, errno, "current folder");
            return NULL;
        }
        abs = vk_path_join(cwd, path, e);
    }
    if (abs)
        normalise(abs);
    return abs;
}

static bool has_dotdot(const char *name)
{
    const char *p = name;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += len;
        while (*p == '/')
            p++;
    }
    return false;
}

char *vk_path_normalise_relative(const char *name, unsigned *ups, vk_err *e)
{
    char *out = vk_malloc(strlen(name) + 1, e);
    if (!out)
        return NULL;
    size_t n = 0;
    *ups = 0;
    const char *p = name;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (n == 0) {
                (*ups)++;
            } else {
                while (n > 0 && out[n - 1] != '/')
                    n--;
                if (n > 0)
                    n--; /* the slash before the dropped component */
            }
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
        while (*p == '/')
            p++;
    }
    out[n] = 0;
    return out;
}

char *vk_path_resolve_extent(const char *desc_path, const char *name, bool allow_external, vk_err *e)
{
    if (!allow_external) {
        if (name[0] == '/' || has_dotdot(name)) {
            vk_fail(
                e, VMDKIT_EPATH,
                "%s: extent file \"%s\": outside the descriptor's folder (use --allow-external-extents to permit)",
                desc_path, name);
            return NULL;
        }
    }
    char *dir = vk_path_dirname(desc_path, e);
    if (!dir)
        return NULL;
    char *p = vk_path_join(dir, name, e);
    if (p && !allow_external) {
        /* a symlink may still lead outside: compare real paths when it exists */
        char *rdir = realpath(dir, NULL);
        char *rp = realpath(p, NULL);
        if (rdir && rp) {
            size_t n = strlen(rdir);
            bool ok = strncmp(rp, rdir, n) == 0 && (rp[n] == '/' || (n == 1 && rdir[0] == '/'));
            if (!ok) {
                vk_fail(e, VMDKIT_EPATH,
                        "%s: extent file \"%s\": resolves to %s, outside the descriptor's folder",
                        desc_path, name, rp);
                free(p);
                p = NULL;
            }
        }
        free(rdir);
        free(rp);
    }
    free(dir);
    return p;
}

bool vk_hint_is_windows_absolute(const char *hint)
{
    bool drive = ((hint[0] >= 'A' && hint[0] <= 'Z') || (hint[0] >= 'a' && hint[0] <= 'z')) &&
                 hint[1] == ':' && (hint[2] == '\\' || hint[2] == '/');
    return drive || hint[0] == '\\';
}

char *vk_hint_posix(const char *hint, vk_err *e)
{
    char *h = vk_strdup(hint, e);
    if (h && !vk_hint_is_windows_absolute(h))
        for (char *c = h; *c; c++)
            if (*c == '\\')
                *c = '/';
    return h;
}

char *vk_path_resolve_parent(const char *child_path, const char *hint, vk_err *e)
{
    char *dir = vk_path_dirname(child_path, e);
    char *h = dir ? vk_hint_posix(hint, e) : NULL;
    if (!h) {
        free(dir);
        return NULL;
    }
    char *p = vk_path_join(dir, h, e);
    free(h);
    free(dir);
    return p;
}

int vk_fail_parent_not_found(vk_err *e, const char *child, const char *hint, const char *resolved)
{
    if (vk_hint_is_windows_absolute(hint))
        return vk_fail(
            e, VMDKIT_ENOENT,
            "%s: parentFileNameHint: parent \"%s\" is an absolute Windows path, which names no file here; point the disk at its parent with: vmdkit rebase -u -b PARENT %s",
            child, hint, child);
    return vk_fail(e, VMDKIT_ENOENT, "%s: parentFileNameHint: parent \"%s\" not found (%s)", child, hint,
                   resolved);
}

int vk_check_parent_arg(const char *parent, vk_err *e)
{
    struct stat st;
    if (stat(parent, &st) == 0)
        return 0;
    if (errno == ENOENT)
        return vk_fail(e, VMDKIT_ENOENT, "%s: not found%s", parent,
                       parent[0] == '/' ? "" : " (relative to the current folder)");
    return vk_fail_errno(e, errno, "%s: parent", parent);
}

char *vk_path_relative(const char *from_dir, const char *to, vk_err *e)
{
    char *a = vk_path_absolute(from_dir, e);
    char *b = a ? vk_path_absolute(to, e) : NULL;
    if (!b) {
        free(a);
        return NULL;
    }
    /* common prefix on component boundaries */
    size_t i = 0, last = 0;
    size_t la = strlen(a);
    while (a[i] && b[i] && a[i] == b[i]) {
        if (a[i] == '/')
            last = i;
        i++;
    }
    if (a[i] == 0 && (b[i] == '/' || b[i] == 0))
        last = i;
    else if (la == 1) /* from "/" */
        last = 0;
    /* count remaining components of a after 'last' */
    size_t ups = 0;
    for (const char *p = a + last; *p; p++)
        if (*p == '/' && p[1])
            ups++;
    const char *rest = b + last;
    while (*rest == '/')
        rest++;
    size_t n = ups * 3 + strlen(rest) + 2;
    char *r = vk_malloc(n, e);
    if (r) {
        r[0] = 0;
        for (size_t k = 0; k < ups; k++)
            strcat(r, "../");
        strcat(r, rest);
        if (!r[0]) /* TO is FROM_DIR itself: a name, not an empty one */
            strcat(r, ".");
    }
    free(a);
    free(b);
    return r;
}

bool vk_path_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/' && path[1] != 0;
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

char *vk_path_with_suffix(const char *path, const char *suffix, vk_err *e)
{
    const char *base = vk_path_basename(path);
    const char *dot = strrchr(base, '.');
    size_t stem = dot ? (size_t)(dot - path) : strlen(path);
    const char *ext = dot ? dot : "";
    size_t n = stem + strlen(suffix) + strlen(ext) + 1;
    char *r = vk_malloc(n, e);
    if (r)
        snprintf(r, n, "%.*s%s%s", (int)stem, path, suffix, ext);
    return r;
}
