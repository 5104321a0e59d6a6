/* ovf_model.c - the machine model of ovf.h: growing its arrays, notes,
 * freeing. */
#include <stdio.h>
#include <stdlib.h>

#include "ovf.h"

void *vk_ovf_grow(void **array, size_t *n, size_t elem, vk_err *e)
{
    /* capacities are 4, 8, 16 ...: grow when N reaches one */
    if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
        size_t cap = *n ? *n * 2 : 4;
        void *p = realloc(*array, cap * elem);
        if (!p) {
            vk_fail(e, VMDKIT_ENOMEM, "out of memory");
            return NULL;
        }
        *array = p;
    }
    char *slot = (char *)*array + (*n)++ * elem;
    memset(slot, 0, elem);
    return slot;
}

int vk_ovf_note(vk_ovf_vm *vm, vk_err *e, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (vm->n_notes >= 64)
        return 0; /* enough said */
    char *s = vk_strdup(buf, e);
    char **slot = s ? vk_ovf_grow((void **)&vm->notes, &vm->n_notes, sizeof *vm->notes, e) : NULL;
    if (!slot) {
        free(s);
        return VMDKIT_ENOMEM;
    }
    *slot = s;
    return 0;
}

int vk_ovf_add_extra(vk_ovf_vm *vm, const char *key, const char *value, vk_err *e)
{
    char *k = vk_strdup(key, e), *v = k ? vk_strdup(value, e) : NULL;
    vk_ovf_kv *kv = v ? vk_ovf_grow((void **)&vm->extra, &vm->n_extra, sizeof *vm->extra, e) : NULL;
    if (!kv) {
        free(k);
        free(v);
        return VMDKIT_ENOMEM;
    }
    kv->key = k;
    kv->value = v;
    return 0;
}

vk_ovf_ctrl *vk_ovf_find_ctrl(vk_ovf_vm *vm, enum vk_ovf_bus bus, unsigned num)
{
    for (size_t i = 0; i < vm->n_ctrls; i++)
        if (vm->ctrls[i].bus == bus && vm->ctrls[i].num == num)
            return &vm->ctrls[i];
    return NULL;
}

void vk_ovf_vm_free(vk_ovf_vm *vm)
{
    if (!vm)
        return;
    free(vm->name);
    free(vm->guest_os_own);
    free(vm->annotation);
    free(vm->ctrls);
    for (size_t i = 0; i < vm->n_disks; i++) {
        free(vm->disks[i].source);
        free(vm->disks[i].href);
        free(vm->disks[i].file_id);
        free(vm->disks[i].disk_id);
        free(vm->disks[i].format);
    }
    free(vm->disks);
    for (size_t i = 0; i < vm->n_cdroms; i++)
        free(vm->cdroms[i].iso_href);
    free(vm->cdroms);
    for (size_t i = 0; i < vm->n_nics; i++)
        free(vm->nics[i].network);
    free(vm->nics);
    for (size_t i = 0; i < vm->n_extra; i++) {
        free(vm->extra[i].key);
        free(vm->extra[i].value);
    }
    free(vm->extra);
    for (size_t i = 0; i < vm->n_notes; i++)
        free(vm->notes[i]);
    free(vm->notes);
    memset(vm, 0, sizeof *vm);
}
