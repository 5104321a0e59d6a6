/* vk.h - internal helpers shared by the whole library: errors, byte order,
 * checked arithmetic, I/O loops and allocation. */
#ifndef VK_H
#define VK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "vmdkit.h"

#define VK_SECTOR 512u
/* Deepest chain accepted (VMware allows far fewer snapshots): opening
 * refuses a deeper one, and creating a child refuses a parent already
 * this deep, so that no command makes a disk that never opens. */
#define VK_MAX_CHAIN_LINKS 255
/* How the library's own operations (commit, rebase, snapshots, clones,
 * OVF) open the chains of the disks and machines the user names: they
 * follow absolute parent hints, which VMware writes for linked clones.
 * The parent policy's default is for the disks a user opens directly
 * (vmdkit_open, the CLI's --allow-absolute-parents, the nbdkit plugin). */
#define VK_OPEN_CHAIN_OF_USER VMDKIT_OPEN_ALLOW_ABSOLUTE_PARENTS
#define VK_PRINTF(a, b) __attribute__((format(printf, a, b)))

typedef vmdkit_error vk_err;

/* Record CODE and a formatted message in E (E may be NULL); returns CODE. */
int vk_fail(vk_err *e, int code, const char *fmt, ...) VK_PRINTF(3, 4);
/* Like vk_fail, with the text of errno value ERRNUM appended; the code is
 * derived from ERRNUM (ENOENT -> VMDKIT_ENOENT, ENOSPC -> VMDKIT_ENOSPC,
 * ENOMEM -> VMDKIT_ENOMEM, otherwise VMDKIT_EIO). */
int vk_fail_errno(vk_err *e, int errnum, const char *fmt, ...) VK_PRINTF(3, 4);
/* The start of a public entry point: returns ERR, or LOCAL when the caller
 * passed none, with its code and message cleared; the RES_SIZE bytes at RES
 * (when RES is not NULL) are zeroed first, so that the caller may free what
 * the result holds whatever the outcome. */
vk_err *vk_entry(vmdkit_error *err, vk_err *local, void *res, size_t res_size);
/* Prefix the message already in E with "PREFIX: ". */
void vk_err_prefix(vk_err *e, const char *fmt, ...) VK_PRINTF(2, 3);
/* Messages longer than the buffer lose the middle of their longest words
 * (paths), never the file name or the reason at the end:
 * vk_elide_middle copies the N bytes of S to OUT (NUL-terminated), cut to
 * MAX bytes by replacing the middle with U+2026 at '/' boundaries when it
 * can ("a/b/…/y/z.vmdk"); vk_fit_message copies the N bytes of MSG to DST
 * so that they fit DST_SIZE, cutting every long word to the same length.
 * Both return the length written; the buffers must not overlap. */
size_t vk_elide_middle(char *out, size_t out_size, const char *s, size_t n, size_t max);
size_t vk_fit_message(char *dst, size_t dst_size, const char *msg, size_t n);
/* Format FMT (then SUFFIX, when not NULL) into DST as vk_fail does: whole,
 * then fitted by vk_fit_message, on one line. */
void vk_vformat_fitted(char *dst, size_t dst_size, const char *suffix, const char *fmt, va_list ap)
    VK_PRINTF(4, 0);

/* Little-endian field access on byte buffers. */
static inline uint16_t vk_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t vk_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t vk_le64(const uint8_t *p)
{
    return vk_le32(p) | ((uint64_t)vk_le32(p + 4) << 32);
}
static inline void vk_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void vk_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void vk_put64(uint8_t *p, uint64_t v)
{
    vk_put32(p, (uint32_t)v);
    vk_put32(p + 4, (uint32_t)(v >> 32));
}

/* Checked arithmetic: return false on overflow. */
static inline bool vk_add_ok(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}
static inline bool vk_mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}
static inline uint64_t vk_div_round_up(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }
static inline bool vk_is_pow2(uint64_t v) { return v && !(v & (v - 1)); }
static inline uint64_t vk_min(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t vk_max(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Make room in the array *A (*CAP elements of SIZE bytes) for N + 1
 * elements, doubling it as often as that takes; VMDKIT_ENOMEM on failure. */
int vk_grow(void **a, size_t *cap, size_t n, size_t size, vk_err *e);

/* Allocation that records VMDKIT_ENOMEM in E on failure. */
void *vk_malloc(size_t n, vk_err *e);
void *vk_calloc(size_t n, size_t sz, vk_err *e);
char *vk_strdup(const char *s, vk_err *e);
/* The N bytes at S (which holds at least N) as a new NUL-terminated string. */
char *vk_strndup(const char *s, size_t n, vk_err *e);
/* Page-aligned buffer (for large I/O); free with free(). */
void *vk_aligned_alloc(size_t n, vk_err *e);

/* Full-length pread/pwrite (loop over short transfers and EINTR).
 * A read past end of file is an error (VMDKIT_EFORMAT, "file too short")
 * unless the _zfill variant is used, which zero-fills beyond EOF. */
int vk_pread_full(int fd, void *buf, size_t len, uint64_t off, const char *what, vk_err *e);
int vk_pread_zfill(int fd, void *buf, size_t len, uint64_t off, const char *what, vk_err *e);
int vk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off, const char *what, vk_err *e);
int vk_fdatasync(int fd, const char *what, vk_err *e);
/* Have the kernel start writing FD's dirty pages now, without waiting: the
 * disk then works while a copy goes on, and the final flush finds little
 * left.  Only a hint (the flush reports errors); it makes data durable
 * sooner, never metadata before data, so it keeps every ordering.  Writers
 * of long outputs call it every VK_WRITEBACK_BYTES. */
void vk_start_writeback(int fd);
#define VK_WRITEBACK_BYTES (32u << 20)
/* Size of an open file or block device in bytes. */
int vk_file_size(int fd, uint64_t *size, const char *what, vk_err *e);
/* Is the buffer all zero bytes? (fast for large aligned buffers) */
bool vk_is_zero(const void *buf, size_t len);
/* Fill BUF with random bytes (getrandom). */
void vk_random(void *buf, size_t len);
uint32_t vk_random_cid(void); /* never 0xffffffff or 0xfffffffe */

/* fsync the folder DIR (after creating, renaming or removing entries in it).
 * Every failure is reported, except EINVAL: file systems that cannot sync a
 * folder (some FUSE ones) say so, and there is nothing more to do there. */
int vk_fsync_dir(const char *dir, vk_err *e);
/* vk_fsync_dir of the folder holding PATH. */
int vk_fsync_parent(const char *path, vk_err *e);
/* Do two paths name the same existing file (device and inode)? */
bool vk_same_file(const char *a, const char *b);

/* Advisory lock (OFD lock, released by the kernel when the process dies).
 * A writer's is EXCLUSIVE over the whole file.  A reader's is shared and
 * speaks QEMU's protocol (block/file-posix.c: byte 100 + permission bit
 * for a permission held, 200 + bit for one not shared), so that QEMU
 * readers start beside it and QEMU writers do not: it covers
 * [0, VK_QEMU_READ_BYTE] (it reads), VK_QEMU_NO_WRITE_BYTE and
 * VK_QEMU_NO_RESIZE_BYTE (it shares neither writes nor resizes) and
 * [VK_READER_MARK_START, EOF), which no QEMU lock touches and which tells
 * a vmdkit reader apart (holders.c).  The bytes a QEMU reader tests
 * (101-199: someone holds a permission; 200: someone refuses to share
 * reads; 202, 204-299) stay free. */
int vk_lock_fd(int fd, bool exclusive, const char *what, vk_err *e);
#define VK_QEMU_READ_BYTE 100
#define VK_QEMU_NO_WRITE_BYTE 201
#define VK_QEMU_NO_RESIZE_BYTE 203
#define VK_READER_MARK_START 300

/* How many extent files a process keeps open at most (the pool of
 * extent_file.c, and the checker's): the VMDKIT_MAX_OPEN_EXTENTS
 * environment variable, else a quarter of the soft RLIMIT_NOFILE (at
 * least 8, at most 65536), fixed at the first call. */
size_t vk_open_files_budget(void);

/* Write a whole file atomically: temp file in the same folder, fsync,
 * rename over PATH, fsync the folder.  A symbolic link stays a link: the
 * file it leads to is replaced (the temp file made in that file's folder). */
int vk_write_file_atomic(const char *path, const void *data, size_t len, vk_err *e);
/* Read a whole (small) regular file, at most MAX bytes; the buffer is
 * NUL-terminated.  Anything else (a FIFO, a device) is VMDKIT_EFORMAT, at
 * once: the open does not wait for a FIFO's writer. */
int vk_read_file(const char *path, size_t max, char **data, size_t *len, vk_err *e);

/* The caller's options struct GIVEN (NULL: every field zero) as this
 * library knows it, in OUT (KNOWN bytes, a struct whose first field is
 * size_t struct_size): a shorter struct from an older caller reads as
 * zeros past its end, a longer one must hold only zeros there; OUT's
 * struct_size becomes KNOWN.  WHAT names the struct in errors. */
int vk_opts_read(void *out, size_t known, const void *given, const char *what, vk_err *e);
/* The start of a public entry point that takes an options struct: *E is
 * the carrier vk_entry makes of ERR and LOCAL (with RES_SIZE bytes at RES
 * zeroed); MISSING, when the call lacks an argument it requires, is the
 * message of its VMDKIT_EINVAL (else NULL); then GIVEN is read into OUT as
 * vk_opts_read does.  Returns 0 or the error, recorded in *E. */
int vk_entry_opts(vk_err **e, vmdkit_error *err, vk_err *local, void *res, size_t res_size,
                  const char *missing, void *out, size_t known, const void *given, const char *what);

#endif
