/* fuzz_vmx.c - the .vmx parser and editor.
 *
 * Any input may be refused; an accepted one must serialize back to the
 * very same bytes, and a value set must read back after a re-parse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vm/vmx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vk_vmx *v;
    vk_err e;
    if (vk_vmx_parse("fuzz.vmx", (const char *)data, size, &v, &e) != 0)
        return 0;
    char *out = NULL;
    size_t n = 0;
    if (vk_vmx_serialize(v, &out, &n, &e) != 0 || n != size || memcmp(out, data, size) != 0)
        abort(); /* an unchanged file is written back byte for byte */
    free(out);
    size_t pos = 0, count = 0;
    const char *key, *value;
    char first_key[256] = "";
    while (vk_vmx_next(v, &pos, &key, &value)) {
        if (!count++ && strlen(key) < sizeof first_key)
            snprintf(first_key, sizeof first_key, "%s", key);
        (void)vk_vmx_get(v, key);
    }
    vk_vmx_disk *disks;
    size_t n_disks;
    if (vk_vmx_disks(v, &disks, &n_disks, &e) == 0)
        vk_vmx_disks_free(disks, n_disks);
    /* edit: an existing key and a new one, with a value needing escapes */
    if (strcasecmp(first_key, "fuzz.added") == 0)
        first_key[0] = 0; /* the second edit would overwrite the first */
    const char *val = "a \"quoted\" |value|\twith\nnewline";
    if ((!first_key[0] || vk_vmx_set(v, first_key, val, &e) == 0) &&
        vk_vmx_set(v, "fuzz.added", "1", &e) == 0 && vk_vmx_serialize(v, &out, &n, &e) == 0) {
        vk_vmx *w;
        if (vk_vmx_parse("fuzz.vmx", out, n, &w, &e) != 0)
            abort(); /* our own edit must parse */
        const char *got = first_key[0] ? vk_vmx_get(w, first_key) : val;
        const char *added = vk_vmx_get(w, "fuzz.added");
        if (!got || strcmp(got, val) != 0 || !added || strcmp(added, "1") != 0)
            abort(); /* and read back */
        vk_vmx_free(w);
        free(out);
    }
    if (first_key[0])
        (void)vk_vmx_unset(v, first_key, &e);
    vk_vmx_free(v);
    return 0;
}
