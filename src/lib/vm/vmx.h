/* vmx.h - VMware virtual machine configuration (.vmx) files: a parser that
 * keeps every byte, so an edit changes only the line it touches.
 *
 * A .vmx file is a list of lines of the form (VMware's own grammar)
 *     <ws> key <ws> = <ws> "quoted value" <ws> [# comment]
 *     <ws> key <ws> = <ws> bare-value <ws> [# comment]
 *     <ws> key <ws> = <ws> [# comment]          (the empty string)
 *     <ws> [# comment]
 * where <ws> is spaces and tabs, a key holds no whitespace, '=', '#', '"'
 * or control character, a bare value holds no whitespace or '#', and a
 * quoted value holds no '"'.  Inside values VMware escapes bytes as |XX
 * (two hex digits): '"' is |22, '|' is |7C, control characters other than
 * tab are |0A and so on.  Lines end in LF or CRLF; the last line may lack
 * an ending; a UTF-8 byte order mark may start the file.  Keys are
 * compared without regard to ASCII case, as VMware does; when a key appears
 * twice, the last line wins.
 *
 * Values are read and given in UTF-8.  A file whose ".encoding" names
 * another encoding (windows-1252, Shift_JIS, windows-949-2000 ...; see
 * vmx_codec.h) has its values converted on reading and writing, while the
 * bytes of every line not changed stay as they are.
 */
#ifndef VK_VMX_H
#define VK_VMX_H

#include <stdbool.h>
#include <stddef.h>
#include "vk.h"

/* Largest .vmx accepted (bytes): real ones are a few KiB. */
#define VK_VMX_MAX_BYTES (4u << 20)

/* The parsed file.  The public vmdkit_vmx handle is the same object. */
typedef struct vmdkit_vmx vk_vmx;

/*
 * Read and parse the file at PATH (at most VK_VMX_MAX_BYTES, else
 * VMDKIT_ELIMIT).  A line that fits none of the forms above, an
 * unterminated quote, a NUL byte or a |00 escape is VMDKIT_EFORMAT naming
 * the file and the line number; so is a value that is not valid text in
 * the file's .encoding.  An encoding vmdkit does not know is accepted as
 * long as every value is ASCII (else VMDKIT_EUNSUPPORTED).  On success
 * *out owns the result.
 */
int vk_vmx_load(const char *path, vk_vmx **out, vk_err *e);

/* Parse LEN bytes of DATA as if read from PATH (PATH names the file in
 * messages and is where vk_vmx_save writes). */
int vk_vmx_parse(const char *path, const char *data, size_t len, vk_vmx **out, vk_err *e);

/* The file this object was read from. */
const char *vk_vmx_path(const vk_vmx *v);

/* The encoding its values are stored in ("UTF-8" when it names none). */
const char *vk_vmx_encoding(const vk_vmx *v);

/*
 * The decoded value of KEY (case-insensitive), or NULL when absent.  The
 * string belongs to V and stays valid until V is changed or freed.
 */
const char *vk_vmx_get(const vk_vmx *v, const char *key);

/*
 * Give KEY the value VALUE.  An existing line (the last one when the key
 * appears twice) keeps its key spelling, its spacing around '=', its quoting
 * and its trailing comment; only the value bytes change (a bare value that
 * would not stay one token gets quotes).  An absent key is appended as
 * `KEY = "VALUE"` with the file's line ending.  VALUE (UTF-8) is escaped
 * with |XX as VMware does and stored in the file's encoding.  A KEY that
 * could not be read back (empty, or holding whitespace, '=', '#', '"' or
 * control characters) is VMDKIT_EINVAL; so is a VALUE holding a character
 * the file's encoding cannot represent ("FILE: KEY: the character U+XXXX
 * cannot be written in the file's encoding E").  Setting ".encoding" to
 * another encoding is VMDKIT_EUNSUPPORTED unless every value is ASCII
 * (the other lines are not re-encoded).
 */
int vk_vmx_set(vk_vmx *v, const char *key, const char *value, vk_err *e);

/* vk_vmx_set, except that an absent KEY goes right after the (last) line
 * of AFTER instead of at the end (at the end when AFTER is NULL or absent). */
int vk_vmx_set_after(vk_vmx *v, const char *key, const char *value, const char *after, vk_err *e);

/* 0 when VALUE can be stored as the value of KEY in V (the errors of
 * vk_vmx_set for VALUE); nothing is changed. */
int vk_vmx_encodable(const vk_vmx *v, const char *key, const char *value, vk_err *e);

/* What a vk_vmx_rekey_fn does with a key. */
enum { VK_VMX_KEEP = 0, VK_VMX_DROP = 1, VK_VMX_RENAME = 2 };

/* Called with the key of each entry, as spelled in the file; returns
 * VK_VMX_KEEP, VK_VMX_DROP (the line goes), VK_VMX_RENAME with *NEW_KEY
 * set (malloc'd; freed by the caller of the callback), or a negative
 * error. */
typedef int (*vk_vmx_rekey_fn)(void *opaque, const char *key, char **new_key, vk_err *e);

/*
 * One pass over every entry but ".encoding": drop lines or give them new
 * keys, keeping each renamed line's value and spacing.  All changes apply
 * at once (renaming a to b and b to c is fine) and only when every call
 * succeeded; a key made twice is the caller's to avoid (the last line
 * wins, as ever).
 */
int vk_vmx_rekey(vk_vmx *v, vk_vmx_rekey_fn fn, void *opaque, vk_err *e);

/* Remove every line holding KEY; VMDKIT_ENOENT ("FILE: KEY: no such key")
 * when there is none.  Removing ".encoding" (the file becomes UTF-8) follows
 * the rule of setting it. */
int vk_vmx_unset(vk_vmx *v, const char *key, vk_err *e);

/*
 * Walk the entries in file order, duplicates included: start with *POS = 0;
 * each call that returns true sets *KEY (as spelled in the file) and *VALUE
 * (decoded) and advances *POS.  Returns false after the last entry.
 */
bool vk_vmx_next(const vk_vmx *v, size_t *pos, const char **key, const char **value);

/* The whole file as bytes (byte-identical to the input when unchanged).
 * Caller frees *data. */
int vk_vmx_serialize(const vk_vmx *v, char **data, size_t *len, vk_err *e);

/* Write the file back to its path atomically (temporary file, fsync,
 * rename, folder fsync). */
int vk_vmx_save(const vk_vmx *v, vk_err *e);

void vk_vmx_free(vk_vmx *v);

/* One virtual hard disk named by a .vmx. */
typedef struct vk_vmx_disk {
    char *slot; /* controller slot as spelled in the file: "scsi0:0", "nvme0:1" ... */
    char *file; /* its fileName value: a .vmdk path, relative to the .vmx's folder
                   or absolute */
} vk_vmx_disk;

/*
 * The hard disks of the machine, in the order their fileName lines appear:
 * every slot scsiN:M, sataN:M, ideN:M or nvmeN:M (any ASCII case) whose
 * fileName ends in ".vmdk" (any case), whose present is not false ("FALSE",
 * "no" or "0"; an absent present counts as true) and whose deviceType is
 * absent or a hard-disk type ("disk", "plainDisk", "rawDisk",
 * "scsi-hardDisk", "ata-hardDisk").  CD-ROM images, passthrough devices and
 * ".iso" files are left out.  Free with vk_vmx_disks_free.
 */
int vk_vmx_disks(const vk_vmx *v, vk_vmx_disk **out, size_t *n, vk_err *e);
void vk_vmx_disks_free(vk_vmx_disk *disks, size_t n);

/* When KEY reads "<bus>N:M.<field>" (bus scsi, sata, ide or nvme, any ASCII
 * case), the length of its "<bus>N:M" part; otherwise 0. */
size_t vk_vmx_slot_key(const char *key);

#endif
