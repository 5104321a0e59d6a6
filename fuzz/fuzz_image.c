/* fuzz_image.c - a disk image from a stranger: open it read-only, walk and
 * read it within bounds, then open a copy read-write and write to it, and
 * compact it (it must read the same after).
 *
 * Built twice: fuzz_sparse (the input is the whole file) and fuzz_stream
 * (FUZZ_STREAM defined: an input that does not start with a sparse magic
 * gets a valid streamOptimized header in front, gdOffset "at the end", so
 * mutations land in markers, compressed grains and the footer). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

#define SECTOR 512u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_STREAM
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* Header sector of a stream whose grain size and capacity come from the
 * first input byte; the rest of the input follows it. */
static uint8_t *with_stream_header(const uint8_t *data, size_t size, size_t *out_len)
{
    uint8_t *f = calloc(1, SECTOR + size);
    if (!f)
        abort();
    uint64_t grain = 8u << (size ? data[0] % 5 : 0);
    memcpy(f, "KDMV", 4);
    put32(f + 4, 3);                                            /* version */
    put32(f + 8, 0x30001);                                      /* newline check, compressed, markers */
    put64(f + 12, grain * (1 + (size > 1 ? data[1] % 64 : 0))); /* capacity */
    put64(f + 20, grain);
    put32(f + 44, 512);        /* GTEs per GT */
    put64(f + 56, UINT64_MAX); /* gdOffset: in the footer */
    put64(f + 64, 1);          /* overhead */
    memcpy(f + 73, "\n \r\n", 4);
    f[77] = 1; /* deflate */
    memcpy(f + SECTOR, data, size);
    *out_len = SECTOR + size;
    return f;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *file = data;
    size_t len = size;
    uint8_t *owned = NULL;
#ifdef FUZZ_STREAM
    if (size < 4 || (memcmp(data, "KDMV", 4) != 0 && memcmp(data, "COWD", 4) != 0))
        file = owned = with_stream_header(data, size, &len);
#endif
    uint64_t seed = fuzz_hash(data, size);
    char *path = fuzz_write_file("image.vmdk", file, len);
    vmdkit_disk *d;
    if (vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK, &d, NULL) == 0) {
        fuzz_walk(d, seed);
        vmdkit_close(d, NULL);
        fuzz_write_some(path, seed);
        fuzz_compact_keeps(path);
    }
    free(path);
    free(owned);
    return 0;
}
