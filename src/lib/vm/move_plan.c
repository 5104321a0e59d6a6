/* move_plan.c - which references a move must rewrite, from the library
 * model: every reference (parent hints, .vmx and .vmsd fileNames, nvram,
 * ISO images, cloneOf0, sentinels ...) whose file or target moves gets its
 * new value, relative references staying relative (and normalised),
 * absolute ones absolute. */
#include <stdio.h>
#include <stdlib.h>

#include "library.h"
#include "move.h"
#include "path.h"

char *vk_move_moved_path(const vk_move_map *m, const char *real)
{
    if (m->is_folder && vk_path_inside(real, m->src)) {
        size_t n = strlen(m->dst) + strlen(real) - strlen(m->src) + 1;
        char *p = vk_malloc(n, NULL);
        if (p)
            snprintf(p, n, "%s%s", m->dst, real + strlen(m->src));
        return p;
    }
    if (strcmp(real, m->src) == 0)
        return strdup(m->dst);
    return strdup(real);
}

/* Does the real path P move? */
static bool moves(const vk_move_map *m, const char *p)
{
    return strcmp(p, m->src) == 0 || (m->is_folder && vk_path_inside(p, m->src));
}

/* The new value of a reference from the file at real path FROM to the
 * file at real path TO written as OLD (relative to FROM's folder, or
 * absolute); NULL in *OUT when it does not change. */
static int new_value(const vk_move_map *m, const char *from, const char *to, const char *old, char **out,
                     char **nfrom_out, char **nto_out, vk_err *e)
{
    *out = *nfrom_out = *nto_out = NULL;
    bool from_moves = moves(m, from), to_moves = moves(m, to);
    if (!from_moves && !to_moves)
        return 0;
    if (old[0] == '/' && !to_moves)
        return 0; /* an absolute name of a file that stays */
    char *nfrom = vk_move_moved_path(m, from), *nto = vk_move_moved_path(m, to), *v = NULL;
    if (nfrom && nto) {
        if (old[0] == '/') {
            v = vk_strdup(nto, e);
        } else {
            char *dir = vk_path_dirname(nfrom, e);
            v = dir ? vk_path_relative(dir, nto, e) : NULL;
            free(dir);
        }
    }
    if (!v) {
        free(nfrom);
        free(nto);
        return VMDKIT_ENOMEM;
    }
    if (strcmp(v, old) == 0) {
        free(v);
        free(nfrom);
        free(nto);
        return 0;
    }
    *out = v;
    *nfrom_out = nfrom;
    *nto_out = nto;
    return 0;
}

int vk_move_plan(const vk_lib *lib, const vk_move_map *m, vk_rewrites *rw, size_t *outside, vk_err *e)
{
    *outside = 0;
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        if (!f->exists)
            continue; /* already broken: nothing to follow */
        char *from = realpath(f->file, NULL), *to = realpath(f->target, NULL);
        char *v = NULL, *nfrom = NULL, *nto = NULL;
        int r = 0;
        if (from && to) {
            r = new_value(m, from, to, f->value, &v, &nfrom, &nto, e);
            if (!moves(m, from) && moves(m, to))
                (*outside)++; /* a reference from outside to what moves */
        }
        /* the disk that moves rewrites its own hint itself */
        bool own_hint = !m->is_folder && f->kind == VK_REF_PARENT && from && strcmp(from, m->src) == 0;
        if (!r && v && !own_hint)
            r = vk_rewrites_add(rw, nfrom, f->key, v, nto, e);
        free(v);
        free(nfrom);
        free(nto);
        free(from);
        free(to);
        if (r)
            return r;
    }
    return 0;
}
