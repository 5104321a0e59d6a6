/* descriptor.h - the VMDK text descriptor: tolerant parser, canonical writer.
 * Pure: no file I/O. */
#ifndef VK_DESCRIPTOR_H
#define VK_DESCRIPTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vk.h"

/* Largest descriptor text accepted (bytes). */
#define VK_DESC_MAX_BYTES (1u << 20)
/* Most extent lines accepted. */
#define VK_DESC_MAX_EXTENTS 100000u
#define VK_CID_NONE 0xffffffffu

/* The public enums, under the names the library has always used. */
enum vk_access {
    VK_ACCESS_RW = VMDKIT_ACCESS_RW,
    VK_ACCESS_RDONLY = VMDKIT_ACCESS_RDONLY,
    VK_ACCESS_NOACCESS = VMDKIT_ACCESS_NOACCESS,
};

enum vk_extent_type {
    VK_EXT_SPARSE = VMDKIT_EXTENT_SPARSE,
    VK_EXT_FLAT = VMDKIT_EXTENT_FLAT,
    VK_EXT_ZERO = VMDKIT_EXTENT_ZERO,
    VK_EXT_VMFS = VMDKIT_EXTENT_VMFS,
    VK_EXT_VMFSSPARSE = VMDKIT_EXTENT_VMFSSPARSE,
    VK_EXT_VMFSRDM = VMDKIT_EXTENT_VMFSRDM,
    VK_EXT_VMFSRAW = VMDKIT_EXTENT_VMFSRAW,
    VK_EXT_SESPARSE = VMDKIT_EXTENT_SESPARSE,
};

typedef struct vk_extent_desc {
    enum vk_access access;
    uint64_t size_sectors;
    enum vk_extent_type type;
    char *filename; /* NULL for ZERO */
    bool has_offset;
    uint64_t offset_sectors; /* FLAT/VMFS offset field */
} vk_extent_desc;

typedef struct vk_kv {
    char *key;   /* as written (case kept) */
    char *value; /* unquoted */
} vk_kv;

typedef struct vk_descriptor {
    int version;    /* "version" key; 1 when absent */
    char *encoding; /* NULL when absent */
    uint32_t cid;
    uint32_t parent_cid; /* VK_CID_NONE when none */
    char *create_type;   /* as written; NULL if absent */
    char *parent_hint;   /* NULL when absent */
    vk_extent_desc *extents;
    size_t n_extents;
    vk_kv *header_extra; /* other header keys (e.g. isNativeSnapshot), in order */
    size_t n_header_extra;
    vk_kv *ddb; /* ddb.* keys, in order */
    size_t n_ddb;
} vk_descriptor;

/* Does TEXT look like a descriptor? (first non-comment, non-blank line is
 * "version=N"; used to detect the format of a file) */
bool vk_descriptor_sniff(const char *text, size_t len);

/*
 * Parse LEN bytes of TEXT (stops at the first NUL).  Tolerant: keys are
 * case-insensitive, LF or CRLF, comments, blank lines, spaces around "=",
 * quoted or bare values.  FILE names the source in error messages.
 * Errors: VMDKIT_EFORMAT naming the line and field; VMDKIT_ELIMIT.
 */
int vk_descriptor_parse(const char *text, size_t len, const char *file, vk_descriptor *out, vk_err *e);

/* Canonical text (VMware's layout and key spelling).  Caller frees *text. */
int vk_descriptor_format(const vk_descriptor *d, char **text, size_t *len, vk_err *e);
/* D written over OLD_TEXT (OLD_LEN bytes, the text D was read from): every
 * line whose content D keeps stays byte for byte (comments, unknown and
 * blank lines, order, spacing, quoting, CRLF line ends); a changed value is
 * written in its line, with its spacing, quoting and line end; a key or
 * extent D no longer has loses its line; a new header key goes after
 * createType, a new extent after the last extent line, a new ddb key after
 * the last ddb line, each ended like the first line.  The canonical text
 * when OLD_TEXT is NULL or does not parse, or when the result would not
 * parse back to D.  Caller frees *text. */
int vk_descriptor_format_like(const vk_descriptor *d, const char *old_text, size_t old_len, char **text,
                              size_t *len, vk_err *e);

void vk_descriptor_free(vk_descriptor *d);

/* Total capacity: sum of extent sizes (VMDKIT_ELIMIT on overflow). */
int vk_descriptor_capacity(const vk_descriptor *d, uint64_t *sectors, vk_err *e);

/* ddb access: lookup is case-insensitive; set replaces or appends. */
const char *vk_descriptor_ddb_get(const vk_descriptor *d, const char *key);
int vk_descriptor_ddb_set(vk_descriptor *d, const char *key, const char *value, vk_err *e);

/* Append an extent line (copies FILENAME). */
int vk_descriptor_add_extent(vk_descriptor *d, enum vk_access access, uint64_t size_sectors,
                             enum vk_extent_type type, const char *filename, bool has_offset,
                             uint64_t offset_sectors, vk_err *e);

/* Set the CID and keep ddb.longContentID's last 8 hex digits equal to it. */
int vk_descriptor_set_cid(vk_descriptor *d, uint32_t cid, vk_err *e);

/* Is NAME one of the createTypes VMware defines (case-insensitive)? */
bool vk_create_type_known(const char *name);

/* Does the adapter type NAME (any case) use SCSI geometry?  False for ide
 * and for unknown names.  Its canonical spelling: vmdkit_adapter_name(). */
bool vk_adapter_is_scsi(const char *name);

const char *vk_access_name(enum vk_access a);
const char *vk_extent_type_name(enum vk_extent_type t);

/* Is T a type whose file carries its own grain tables (hosted sparse, ESX
 * COWD, seSparse), as opposed to bytes at an offset? */
bool vk_extent_type_is_sparse(enum vk_extent_type t);

/* Geometry as VMware computes it for ADAPTER ("ide", "buslogic",
 * "lsilogic", "legacyESX") and a capacity in sectors. */
void vk_geometry_for(const char *adapter, uint64_t capacity_sectors, uint64_t *cylinders,
                     uint32_t *heads, uint32_t *sectors);

#endif
