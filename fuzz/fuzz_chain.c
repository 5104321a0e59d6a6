/* fuzz_chain.c - a whole chain from a stranger.
 *
 * The input is split in two files: its first two bytes give the length of
 * child.vmdk, the rest is parent.vmdk.  The folder also holds a 32 KiB
 * flat.img that descriptors may name.  The child is opened (its chain
 * followed), walked and read within bounds, once with the CID check and
 * once without. */
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool have_flat;
    if (!have_flat) {
        static uint8_t flat[32768];
        for (size_t i = 0; i < sizeof flat; i++)
            flat[i] = (uint8_t)(i * 13);
        free(fuzz_write_file("flat.img", flat, sizeof flat));
        have_flat = true;
    }
    if (size < 2)
        return 0;
    size_t child_len = (size_t)data[0] | (size_t)data[1] << 8;
    if (child_len > size - 2)
        child_len = size - 2;
    char *child = fuzz_write_file("child.vmdk", data + 2, child_len);
    free(fuzz_write_file("parent.vmdk", data + 2 + child_len, size - 2 - child_len));
    uint64_t seed = fuzz_hash(data, size);
    static const unsigned flags[] = {
        VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK,
        VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK | VMDKIT_OPEN_IGNORE_CID,
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        vmdkit_disk *d;
        if (vmdkit_open(child, flags[i], &d, NULL) == 0) {
            fuzz_walk(d, seed);
            vmdkit_close(d, NULL);
        }
    }
    free(child);
    return 0;
}
