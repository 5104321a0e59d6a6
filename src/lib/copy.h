/* copy.h - the copy engine (copy.c) for callers inside the library. */
#ifndef VK_COPY_H
#define VK_COPY_H

#include "stream_writer.h"
#include "vk.h"

/*
 * Copy the whole content of SRC (a chain is flattened) into the open
 * stream writer SW, as vmdkit_convert does for streamOptimized output:
 * all-zero grains are skipped, O's progress and threads apply (O's vmdk
 * fields are ignored).  SW is neither finished nor aborted: the caller
 * does one or the other.
 */
int vk_copy_into_stream(vmdkit_disk *src, vk_stream_writer *sw, const vmdkit_convert_opts *o, vk_err *e);

/*
 * Walk the allocation runs of the link L from its first sector to its end:
 * ON(CTX, first sector, sectors, VMDKIT_ALLOC_* of the run, E) for each, then
 * PROGRESS (when given) with the bytes walked so far, whose nonzero answer
 * stops the walk with VMDKIT_ECANCELED.  Stops at the first error, which it
 * returns.
 */
struct vk_link;
typedef int (*vk_run_fn)(void *ctx, uint64_t sector, uint64_t sectors, int alloc, vk_err *e);
int vk_walk_runs(struct vk_link *l, vk_run_fn on, void *ctx, vmdkit_progress_fn progress, void *opaque,
                 vk_err *e);

#endif
