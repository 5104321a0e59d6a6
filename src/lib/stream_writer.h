/* stream_writer.h - sequential writer of streamOptimized extents.
 *
 * Layout written (VMware's canonical stream order): header with
 * gdOffset = GD_AT_END, version 3, flags NEWLINE|COMPRESSED|MARKERS,
 * compressAlgorithm 1; the embedded descriptor; then, per grain-table range
 * in ascending order, the compressed grain records (marker + zlib data,
 * padded to a sector) of the non-zero grains followed by a GT marker and the
 * GT (all-zero GTs are omitted); then GD marker + GD, footer marker + footer
 * (the header again with the real gdOffset), and the end-of-stream marker.
 * Grains are compressed on worker threads and written in order.
 */
#ifndef VK_STREAM_WRITER_H
#define VK_STREAM_WRITER_H

#include <stdint.h>
#include "vk.h"

typedef struct vk_stream_writer vk_stream_writer;

/*
 * Create PATH (must not exist; O_EXCL) for CAPACITY_SECTORS of virtual disk
 * with DESCRIPTOR text embedded.  THREADS compression workers (0 = number
 * of online CPUs); LEVEL is the libdeflate level (1..12, 0 = default 5).
 * Grains that look incompressible (flat byte histogram, no repeats) are
 * stored in zlib stored blocks without trying to compress them.
 */
int vk_stream_writer_open(const char *path, uint64_t capacity_sectors, const char *descriptor,
                          int threads, int level, vk_stream_writer **out, vk_err *e);

/*
 * Where a stream goes when it is one member of a larger file (an OVA):
 * written at BASE onwards of FD, which the writer neither syncs, closes nor
 * removes.  TAP (may be NULL) sees every byte of the stream once, in file
 * order (for a digest).  On success finish fills BYTES (the stream's
 * length), GRAINS (grains stored) and POPULATED_BYTES (their uncompressed
 * bytes inside the disk).
 */
typedef struct vk_stream_target {
    int fd;
    uint64_t base;
    void (*tap)(void *opaque, const uint8_t *buf, size_t len);
    void *tap_opaque;
    uint64_t bytes;
    uint64_t grains;
    uint64_t populated_bytes;
} vk_stream_target;

/* vk_stream_writer_open writing into T (which must outlive the writer);
 * NAME names the stream in messages. */
int vk_stream_writer_open_target(vk_stream_target *t, const char *name, uint64_t capacity_sectors,
                                 const char *descriptor, int threads, int level, vk_stream_writer **out,
                                 vk_err *e);

/* Grain size in sectors (128). */
uint64_t vk_stream_writer_grain_sectors(const vk_stream_writer *w);

/*
 * Queue grain GRAIN_INDEX (strictly ascending between calls) with LEN bytes
 * of DATA (a whole grain, or less for the last grain of the disk; the rest
 * counts as zeros).  The writer copies DATA.  An all-zero grain should not
 * be passed (it would be stored; callers skip them).
 */
int vk_stream_writer_put(vk_stream_writer *w, uint64_t grain_index, const void *data, size_t len,
                         vk_err *e);

/* Write the remaining tables, GD, footer and EOS; fdatasync; close.
 * Frees W.  On failure (including an earlier failed put) the partial file
 * is removed.  (A target stream is only written: see vk_stream_target.) */
int vk_stream_writer_finish(vk_stream_writer *w, vk_err *e);

/* Discard: stop workers, close and unlink the partial file, free W. */
void vk_stream_writer_abort(vk_stream_writer *w);

#endif
