/* opts.c - the one rule for the size-tagged options structs of the API. */
#include "vk.h"

int vk_opts_read(void *out, size_t known, const void *given, const char *what, vk_err *e)
{
    memset(out, 0, known);
    *(size_t *)out = known;
    if (!given)
        return 0;
    size_t size;
    memcpy(&size, given, sizeof size);
    if (size < sizeof size)
        return vk_fail(e, VMDKIT_EINVAL, "%s: struct_size %zu: set it to sizeof the struct", what, size);
    for (size_t i = known; i < size; i++)
        if (((const unsigned char *)given)[i])
            return vk_fail(e, VMDKIT_EINVAL,
                           "%s: struct_size %zu: fields past %zu bytes are unknown to this library",
                           what, size, known);
    memcpy(out, given, size < known ? size : known);
    *(size_t *)out = known;
    return 0;
}

int vk_entry_opts(vk_err **e, vmdkit_error *err, vk_err *local, void *res, size_t res_size,
                  const char *missing, void *out, size_t known, const void *given, const char *what)
{
    *e = vk_entry(err, local, res, res_size);
    if (missing)
        return vk_fail(*e, VMDKIT_EINVAL, "%s", missing);
    return vk_opts_read(out, known, given, what, *e);
}
