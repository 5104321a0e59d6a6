/* rewrite.c - planned reference rewrites (see rewrite.h). */
#include <stdio.h>
#include <stdlib.h>

#include "holders.h"
#include "link.h"
#include "rewrite.h"
#include "vm.h"
#include "vmx.h"

int vk_rewrites_add(vk_rewrites *l, const char *file, const char *key, const char *value,
                    const char *target, vk_err *e)
{
    int r = vk_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, e);
    if (r)
        return r;
    vmdkit_rewrite *f = &l->v[l->n];
    memset(f, 0, sizeof *f);
    l->n++;
    if (!(f->file = vk_strdup(file, e)) || (key && !(f->key = vk_strdup(key, e))) ||
        !(f->value = vk_strdup(value, e)) || !(f->target = vk_strdup(target, e)))
        return VMDKIT_ENOMEM;
    return 0;
}

/* Give the disk at PATH the parent hint HINT (its parentCID is kept). */
static int rewrite_hint(const char *path, const char *hint, vk_err *e)
{
    vmdkit_disk *d;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDWR | VMDKIT_OPEN_NO_PARENT | VK_OPEN_KEEP_CID, &d, e);
    if (r)
        return r;
    char *h = vk_strdup(hint, e);
    if (!h) {
        r = VMDKIT_ENOMEM;
    } else {
        free(d->top->desc.parent_hint);
        d->top->desc.parent_hint = h;
        r = vk_link_write_descriptor(d->top, e);
    }
    int rc = vmdkit_close(d, r ? NULL : e);
    return r ? r : rc;
}

static int rewrite_key(const char *path, const char *key, const char *value, vk_err *e)
{
    vk_vmx *v;
    int r = vk_vmx_load(path, &v, e);
    if (r)
        return r;
    if (!(r = vk_vmx_set(v, key, value, e)))
        r = vk_vmx_save(v, e);
    vk_vmx_free(v);
    return r;
}

int vk_rewrites_check_unlocked(const vk_rewrites *l, vk_err *e)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *file = l->v[i].file;
        size_t n = strlen(file);
        bool vmx = n > 4 && strcasecmp(file + n - 4, ".vmx") == 0;
        if (vmx) {
            vk_vmx *v;
            /* an unreadable .vmx fails later, in its own rewrite */
            if (vk_vmx_load(file, &v, NULL) == 0) {
                int r = vk_vm_check_stopped(file, v, e);
                vk_vmx_free(v);
                if (r)
                    return r;
            }
        } else {
            int r = vk_holders_check(file, VK_NEED_NO_WRITER, e);
            if (r)
                return r;
        }
    }
    return 0;
}

int vk_rewrites_apply(vk_rewrites *l, const char *what, vk_err *e)
{
    size_t failed = 0;
    for (size_t i = 0; i < l->n; i++) {
        vmdkit_rewrite *f = &l->v[i];
        vk_err fe = {0};
        f->code =
            f->key ? rewrite_key(f->file, f->key, f->value, &fe) : rewrite_hint(f->file, f->value, &fe);
        if (f->code) {
            failed++;
            f->message = strdup(fe.msg[0] ? fe.msg : vmdkit_errcode_name(f->code));
        }
    }
    if (failed)
        return vk_fail(e, VMDKIT_ECHAIN, "%s: %zu of %zu references to it could not be rewritten", what,
                       failed, l->n);
    return 0;
}

void vk_rewrite_array_free(vmdkit_rewrite *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].file);
        free(v[i].key);
        free(v[i].value);
        free(v[i].target);
        free(v[i].message);
    }
    free(v);
}

void vk_rewrites_free(vk_rewrites *l)
{
    vk_rewrite_array_free(l->v, l->n);
    memset(l, 0, sizeof *l);
}
