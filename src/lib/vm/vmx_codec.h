/* vmx_codec.h - the text encoding a .vmx or .vmsd declares in ".encoding"
 * (UTF-8, windows-1252, Shift_JIS, windows-949-2000 ...), converted to and
 * from UTF-8 with iconv.
 *
 * VMware writes these files in the host's code page and names it with ICU's
 * spelling; the names are mapped to iconv's here.  Shift_JIS is read as
 * Microsoft's code page 932, as VMware on a Japanese Windows host means it:
 * glibc's strict SHIFT_JIS turns byte 0x5C into a yen sign, which would
 * break every "C:\..." path.  Every encoding handled is a superset of ASCII,
 * so the line structure ('=', '"', '#', "|XX") can be read on the raw bytes;
 * in the double-byte code pages no trail byte is '"' or '#', but one can be
 * '|' (0x7C), which is why values are converted before |XX is undone.
 */
#ifndef VK_VMX_CODEC_H
#define VK_VMX_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "vk.h"

typedef struct vk_codec vk_codec;

/*
 * The codec for the encoding named NAME (NULL or "" for none: UTF-8).  An
 * encoding iconv does not know still opens: it passes ASCII text through
 * and refuses every other byte (VMDKIT_EUNSUPPORTED).  Only out of memory
 * fails.
 */
int vk_codec_open(const char *name, vk_codec **out, vk_err *e);
void vk_codec_free(vk_codec *c);

/* The name as given ("UTF-8" when none was), for messages. */
const char *vk_codec_name(const vk_codec *c);

/* UTF-8 itself: bytes pass unchanged (and unchecked) both ways. */
bool vk_codec_is_utf8(const vk_codec *c);

/*
 * Convert the N bytes at IN to UTF-8 (*OUT, NUL-terminated, *OUT_LEN bytes;
 * caller frees).  VMDKIT_EFORMAT when IN is not valid text in the encoding,
 * VMDKIT_EUNSUPPORTED when the encoding is unknown and IN is not ASCII.
 * The message says what is wrong; callers prefix where.
 */
int vk_codec_decode(vk_codec *c, const char *in, size_t n, char **out, size_t *out_len, vk_err *e);

/*
 * Convert the UTF-8 string IN to the encoding.  VMDKIT_EINVAL when a
 * character cannot be written in it (or IN is not valid UTF-8),
 * VMDKIT_EUNSUPPORTED when the encoding is unknown and IN is not ASCII.
 */
int vk_codec_encode(vk_codec *c, const char *in, char **out, size_t *out_len, vk_err *e);

/* Are the N bytes at S all ASCII? */
bool vk_is_ascii(const char *s, size_t n);

#endif
