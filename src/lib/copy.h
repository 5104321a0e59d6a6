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

#endif
