/* fuzz_descriptor.c - the descriptor parser and writer.
 *
 * Any input may be refused; an accepted one must survive a round trip:
 * the canonical text parses again, to the same canonical text; and written
 * unchanged over itself (vk_descriptor_format_like) it stays byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "descriptor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    (void)vk_descriptor_sniff(text, size);
    vk_descriptor d = {0};
    vk_err e;
    if (vk_descriptor_parse(text, size, "fuzz.vmdk", &d, &e) != 0) {
        vk_descriptor_free(&d);
        return 0;
    }
    uint64_t cap;
    (void)vk_descriptor_capacity(&d, &cap, &e);
    (void)vk_descriptor_ddb_get(&d, "ddb.adapterType");
    char *t1 = NULL, *t2 = NULL;
    size_t n1 = 0, n2 = 0;
    if (vk_descriptor_format(&d, &t1, &n1, &e) == 0) {
        vk_descriptor d2 = {0};
        if (vk_descriptor_parse(t1, n1, "fuzz.vmdk", &d2, &e) != 0)
            abort(); /* our own output must parse */
        if (vk_descriptor_format(&d2, &t2, &n2, &e) != 0 || n1 != n2 || memcmp(t1, t2, n1) != 0)
            abort(); /* and reach a fixed point */
        vk_descriptor_free(&d2);
    }
    char *t3 = NULL;
    size_t n3 = 0;
    if (vk_descriptor_format_like(&d, text, size, &t3, &n3, &e) == 0 &&
        (n3 != strnlen(text, size) || memcmp(t3, text, n3) != 0))
        abort(); /* an unchanged descriptor keeps its text */
    free(t1);
    free(t2);
    free(t3);
    vk_descriptor_free(&d);
    return 0;
}
