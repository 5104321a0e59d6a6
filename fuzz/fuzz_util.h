/* fuzz_util.h - shared pieces of the libFuzzer harnesses: a private folder
 * for the files an input becomes, and a bounded walk over an open disk. */
#ifndef VMDKIT_FUZZ_UTIL_H
#define VMDKIT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "vmdkit.h"

/* The harness's private folder (made on first use, removed at exit). */
const char *fuzz_dir(void);

/* Write LEN bytes to NAME in that folder, replacing it; returns its path,
 * which the caller frees. */
char *fuzz_write_file(const char *name, const uint8_t *data, size_t len);

/*
 * Exercise an open disk within fixed bounds: a walk over its block status
 * (at most MAX_RUNS runs), a read of every data run met (at most 1 MiB
 * each), reads at offsets derived from SEED, and the description of every
 * link.  Errors are fine; only crashes and sanitizer reports count.
 */
void fuzz_walk(vmdkit_disk *d, uint64_t seed);

/* Open DISK read-write and write a few sectors if its grains are small
 * (a huge grain would make a partial write copy gigabytes).  When every
 * write, the flush and the close succeeded on a disk vmdkit_check found no
 * corruption in, it must open again read-only, and when the check had
 * nothing at all to report, the written ranges must read back as written
 * (else abort: a write that destroyed what it wrote to is a finding). */
void fuzz_write_some(const char *path, uint64_t seed);

/* When vmdkit_check finds no corruption in DISK and it holds at most a
 * few MiB, compact it (in place where it can): whether that succeeds or
 * fails, DISK must read the same bytes afterwards (else abort: a compact
 * that changed what a disk reads is a finding). */
void fuzz_compact_keeps(const char *path);

/* A hash of the input, to derive offsets. */
uint64_t fuzz_hash(const uint8_t *data, size_t len);

#endif
