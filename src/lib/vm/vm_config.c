/* vm_config.c - the .vmx of a clone: the source's file with its identity
 * removed (so VMware gives the clone a new BIOS UUID and new MAC
 * addresses), its state and snapshot references dropped, and its disks,
 * nvram and name replaced.  Every other line, comments included, is kept. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "path.h"
#include "vm.h"

static bool starts_with_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Does K read PREFIX, one or more digits, then REST (exactly)? */
static bool numbered_key(const char *k, const char *prefix, const char *rest)
{
    if (!starts_with_ci(k, prefix))
        return false;
    k += strlen(prefix);
    if (!isdigit((unsigned char)*k))
        return false;
    while (isdigit((unsigned char)*k))
        k++;
    return strcasecmp(k, rest) == 0;
}

/* Keys that tie a machine to its identity, its saved state or its
 * snapshots, and so must not be copied into a clone. */
static bool dropped_key(const char *k)
{
    static const char *const exact[] = {
        "uuid.bios",
        "uuid.location",
        "vc.uuid", /* identity: VMware makes new ones */
        "suspend.vmState",
        "checkpoint.vmState",     /* saved state of the source */
        "sched.swap.derivedName", /* a swap file in the source's folder */
        "numCloneOf",             /* origin: rewritten for linked clones */
        "filesearchpath",         /* the source's own origin */
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcasecmp(k, exact[i]) == 0)
            return true;
    return starts_with_ci(k, "checkpoint.vmState.") || starts_with_ci(k, "snapshot.") ||
           numbered_key(k, "ethernet", ".generatedAddress") ||
           numbered_key(k, "ethernet", ".generatedAddressOffset") || numbered_key(k, "cloneOf", "");
}

/* Remove every dropped key (each distinct key once). */
static int drop_keys(vk_vmx *v, vk_err *e)
{
    for (;;) {
        size_t pos = 0;
        const char *key, *value;
        char *victim = NULL;
        while (!victim && vk_vmx_next(v, &pos, &key, &value))
            if (dropped_key(key) && !(victim = vk_strdup(key, e)))
                return VMDKIT_ENOMEM;
        if (!victim)
            return 0;
        int r = vk_vmx_unset(v, victim, e);
        free(victim);
        if (r)
            return r;
    }
}

/* Give KEY a new value only when the source has the key. */
static int replace_if_present(vk_vmx *v, const char *key, const char *value, vk_err *e)
{
    return vk_vmx_get(v, key) ? vk_vmx_set(v, key, value, e) : 0;
}

int vk_vm_clone_config(vk_vmx *v, const vk_clone_config *c, vk_err *e)
{
    int r = drop_keys(v, e);
    if (!r)
        r = vk_vmx_set(v, "displayName", c->name, e);
    for (size_t i = 0; !r && i < c->n; i++) {
        char key[128];
        if ((size_t)snprintf(key, sizeof key, "%s.fileName", c->slots[i]) >= sizeof key)
            return vk_fail(e, VMDKIT_ELIMIT, "%s: %s: slot name too long", vk_vmx_path(v), c->slots[i]);
        r = vk_vmx_set(v, key, c->files[i], e);
    }
    size_t n = strlen(c->name) + 8;
    char *file = vk_malloc(n, e);
    if (!file)
        return VMDKIT_ENOMEM;
    /* without the key VMware looks for <vmx name>.nvram, which the copy is */
    snprintf(file, n, "%s.nvram", c->name);
    if (!r)
        r = replace_if_present(v, "nvram", file, e);
    snprintf(file, n, "%s.vmxf", c->name);
    if (!r)
        r = replace_if_present(v, "extendedConfigFile", file, e);
    free(file);
    /* a linked clone searches its source's folder for files, as
     * Workstation's own linked clones do (their origin is in the .vmsd) */
    if (!r && c->clone_of) {
        char *dir = vk_path_dirname(c->clone_of, e);
        size_t k = dir ? strlen(dir) + 3 : 0;
        char *path = dir ? vk_malloc(k, e) : NULL;
        if (!path) {
            r = VMDKIT_ENOMEM;
        } else {
            snprintf(path, k, ".;%s", dir);
            r = vk_vmx_set(v, "filesearchpath", path, e);
        }
        free(path);
        free(dir);
    }
    return r;
}
