/* grain_cache.h - decompressed grains of one compressed extent, shared by
 * every thread that reads it.
 *
 * A compressed grain costs a pread and an inflate; readers that want a
 * part of it (a 4 KiB guest read from a 64 KiB grain) or the same grain
 * again would pay that each time.  The cache keeps a bounded number of
 * decoded grains, direct-mapped by grain index, and a bounded pool of
 * decompressors; both are safe for concurrent readers.  Grains are
 * decoded outside the lock, so readers of different grains inflate in
 * parallel; readers of one grain wait for the first to decode it.
 */
#ifndef VK_GRAIN_CACHE_H
#define VK_GRAIN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "vk.h"

struct libdeflate_decompressor;

/* What one decode needs for itself: a decompressor and a buffer for the
 * compressed record (CBUF_SIZE bytes, as given to vk_grain_cache_open). */
typedef struct vk_inflate_ctx {
    struct libdeflate_decompressor *dec;
    uint8_t *cbuf;
    size_t cbuf_size;
} vk_inflate_ctx;

/* Decode grain GRAIN, whose record the caller located at WHERE (passed
 * through from vk_grain_cache_read), into OUT (grain_bytes long). */
typedef int (*vk_grain_load_fn)(void *opaque, uint64_t grain, uint64_t where, uint8_t *out,
                                vk_inflate_ctx *ctx, vk_err *e);

typedef struct vk_grain_cache vk_grain_cache;

/* A cache of at most MAX_BYTES of grains of GRAIN_BYTES (at least one
 * grain, never more slots than N_GRAINS), decoded by LOAD.  Grain
 * buffers and decompressors are allocated on first use: a hostile
 * grainSize costs nothing until a grain is read. */
int vk_grain_cache_open(size_t grain_bytes, uint64_t n_grains, size_t max_bytes, size_t cbuf_size,
                        vk_grain_load_fn load, void *opaque, vk_grain_cache **out, vk_err *e);
void vk_grain_cache_close(vk_grain_cache *c);

/* Copy LEN bytes at OFF inside grain GRAIN into BUF, decoding it first
 * when it is not cached.  Safe to call from several threads at once. */
int vk_grain_cache_read(vk_grain_cache *c, uint64_t grain, uint64_t where, size_t off, size_t len,
                        void *buf, vk_err *e);

/* Decode GRAIN into the cache unless it is there already. */
int vk_grain_cache_prefetch(vk_grain_cache *c, uint64_t grain, uint64_t where, vk_err *e);

/* How many grains the cache holds at most (prefetching more only evicts
 * what was prefetched). */
size_t vk_grain_cache_slots(const vk_grain_cache *c);

#endif
