/* check_sparse.h - state shared by the checks of one hosted sparse (KDMV)
 * extent: the header, both grain directories, which copy of each grain
 * table is trusted, and the accounting of the file's space. */
#ifndef VK_CHECK_SPARSE_H
#define VK_CHECK_SPARSE_H

#include <stdbool.h>
#include <stdint.h>
#include "check.h"
#include "sparse_header.h"

/* Who uses a run of sectors in the file. */
enum vk_owner {
    VK_OWN_HEADER,
    VK_OWN_DESCRIPTOR,
    VK_OWN_GD,
    VK_OWN_RGD,
    VK_OWN_GT, /* index = grain directory entry */
    VK_OWN_RGT,
    VK_OWN_GRAIN, /* index = grain number */
};

typedef struct vk_ival {
    uint64_t start, len; /* sectors */
    uint32_t owner;      /* enum vk_owner */
    bool anchored;       /* at the place the header dictates */
    bool dead;           /* found untrustworthy: ignored once committed */
    uint64_t index;
} vk_ival;

/*
 * Space of one extent file, in units of one grain: USED has a bit for every
 * unit some referenced structure touches, OWNED for every unit exactly
 * filled by one grain-aligned grain.  Structures that are not grain-aligned
 * (tables, grains stored at odd places) are also kept as intervals so that
 * overlaps among them are found exactly.
 */
typedef struct vk_space {
    uint64_t unit;         /* sectors per unit (the grain size) */
    uint64_t file_sectors; /* sectors of the file, a partial last one included */
    uint64_t n_units;
    bool enabled; /* false: the bitmaps would be too large; not tracked */
    uint8_t *used, *owned;
    uint8_t *refd; /* referenced only by a copy that is not trusted */
    vk_ival *meta; /* metadata; sorted by vk_space_sort */
    size_t n_meta, cap_meta;
    uint64_t *meta_maxend;     /* furthest end among meta[0..i], live ones (commit) */
    uint64_t *meta_maxend_all; /* the same, dead ones included */
    vk_ival *loose;            /* grains not aligned to a unit */
    size_t n_loose, cap_loose;
    uint64_t max_end; /* end (sectors) of the furthest referenced structure */
} vk_space;

int vk_space_init(vk_space *s, uint64_t file_sectors, uint64_t unit, vk_err *e);
void vk_space_free(vk_space *s);
int vk_space_add_meta(vk_space *s, uint64_t start, uint64_t len, uint32_t owner, uint64_t index,
                      bool anchored, vk_err *e);
/* Sort the metadata intervals (by start). */
void vk_space_sort(vk_space *s);
/* After the sorted intervals were judged (dead ones marked): mark the units
 * of the live ones used and prepare vk_space_meta_hit. */
int vk_space_commit(vk_space *s, vk_err *e);
/* A live metadata interval overlapping [START, START+LEN), or NULL
 * (only after vk_space_commit). */
const vk_ival *vk_space_meta_hit(const vk_space *s, uint64_t start, uint64_t len);
/* Any metadata interval, live or dead, overlapping [START, START+LEN) other
 * than the one of OWNER/INDEX, or NULL (only after vk_space_commit). */
const vk_ival *vk_space_any_hit(const vk_space *s, uint64_t start, uint64_t len, uint32_t owner,
                                uint64_t index);
/* Would a grain at [START, START+LEN) clash with a grain already marked?
 * (Clashes between two unaligned grains are found by vk_space_sweep.) */
bool vk_space_grain_clash(const vk_space *s, uint64_t start, uint64_t len);
/* Mark a referenced grain (LOOSE tracking when it is not unit-aligned). */
int vk_space_mark_grain(vk_space *s, uint64_t start, uint64_t len, uint64_t index, vk_err *e);
/* Mark sectors referenced without overlap tracking. */
void vk_space_mark_used(vk_space *s, uint64_t start, uint64_t len);
/* Mark sectors an untrusted copy references: they are not leaked, but
 * nothing clashes with them. */
void vk_space_mark_ref(vk_space *s, uint64_t start, uint64_t len);
/* Is unit U referenced by nothing? */
bool vk_space_unit_free(const vk_space *s, uint64_t u);
/* Call FN for overlapping pairs of the sorted intervals V[0..N) (each
 * interval against the furthest-reaching one before it; dead ones skipped). */
typedef void (*vk_overlap_fn)(void *opaque, const vk_ival *a, const vk_ival *b);
void vk_space_overlaps(const vk_ival *v, size_t n, vk_overlap_fn fn, void *opaque);
/* The same over grains not aligned to a unit and the live metadata:
 * pairs in which at least one is a grain. */
int vk_space_sweep_loose(vk_space *s, vk_overlap_fn fn, void *opaque, vk_err *e);
/* Describe an owner ("grain table 3", "the header" ...) into BUF. */
const char *vk_owner_name(uint32_t owner, uint64_t index, char *buf, size_t n);

/* Which copy of a grain table the checks trust. */
enum vk_auth { VK_AUTH_NONE, VK_AUTH_PRIMARY, VK_AUTH_REDUNDANT };

/* What is known about one copy (primary or redundant) of one grain table. */
enum vk_tstate {
    VK_T_ZERO,        /* directory entry 0: no table */
    VK_T_SOUND,       /* inside the file, clear of other structures, entries plausible */
    VK_T_PAST_EOF,    /* the table reaches past the end of the file */
    VK_T_OVERLAP,     /* the table overlaps another structure (OWNER/OTHER) */
    VK_T_BAD_ENTRIES, /* an entry (OTHER = its index, VALUE) points somewhere impossible */
    VK_T_OFF_LAYOUT,  /* the table is not where the file's layout puts it, while the
                         other copy is, and the two differ */
};

/* Why a grain-table entry cannot be right. */
enum vk_ewhy { VK_E_OK, VK_E_PAST_EOF, VK_E_IN_METADATA, VK_E_DUPLICATE };

/* Largest grain directory checked (entries): 256 TiB of capacity at the
 * usual grain and table sizes; keeps the per-entry state below ~150 MiB. */
#define VK_CHECK_MAX_GDES (UINT64_C(1) << 22)

typedef struct vk_copy_state {
    uint8_t state;  /* enum vk_tstate */
    uint8_t why;    /* BAD_ENTRIES: enum vk_ewhy */
    uint8_t owner;  /* OVERLAP: enum vk_owner of the other structure */
    uint32_t other; /* OVERLAP: its index; BAD_ENTRIES: the entry */
    uint32_t value; /* BAD_ENTRIES: the entry's value */
} vk_copy_state;

typedef struct vk_sparse_check {
    vk_check *c;
    vk_check_extent *x;
    int fd;
    const char *file;
    uint64_t file_bytes, file_sectors;
    vk_sparse_header h;      /* effective header (the footer for a stream) */
    uint8_t raw_header[512]; /* sector 0 as found */
    bool stream_footer;      /* gdOffset in the header is GD_AT_END */
    bool compressed, markers, zeroed_flag;
    bool has_rgd;
    bool layout; /* tables lie where the layout puts them (see check_tables.c) */
    uint64_t num_gdes, gd_sectors, gt_sectors, gt_bytes;
    uint64_t grain_bytes;
    uint64_t grains; /* grains the capacity needs */
    uint32_t *gd, *rgd;
    uint32_t *gd_extra; /* entries in the last directory sector past num_gdes */
    size_t n_gd_extra;
    vk_copy_state *pst, *rst; /* per directory entry: primary and redundant table */
    uint8_t *auth;            /* per directory entry: enum vk_auth */
    uint8_t *tbl, *rtbl;      /* one table of each copy (gt_sectors) */
    vk_space space;
    bool space_uncertain; /* a table could not be trusted: leaks are not reported */
    uint64_t data_gtes;   /* trusted entries pointing at sound stored grains */
    uint64_t tail_grains; /* grains whose end lies past the end of the file */
    uint64_t append_next; /* repair: where a new table would go (sectors) */

    /* compressed grains */
    void *dec; /* struct libdeflate_decompressor */
    uint8_t *cbuf, *gbuf;
    size_t cbuf_size, gbuf_size;
    uint64_t *bad_records; /* compressed records already reported (sectors) */
    size_t n_bad_records, cap_bad_records;
    /* the table the marker walk looks grains up in */
    uint32_t *walk_gt;
    uint64_t walk_gt_index;
    bool walk_gt_valid;
} vk_sparse_check;

/* check_space.c */
/* Plan cutting the leaked end of the file of S down to KEEP bytes, when
 * that removes at most the repair's limit (1 GiB); a larger leak is noted
 * as not repaired.  Nothing when KEEP is not below the file's size. */
int vk_space_cut_tail(vk_sparse_check *s, uint64_t keep);

/* check_tables.c */
/* Judge both copies of every grain table (locations, overlaps, entries)
 * and commit the space of the trusted metadata. */
int vk_check_tables_judge(vk_sparse_check *s);
/* Report what the judgement found, plan the repairs, and check and mark
 * the grains of the trusted copy of every table. */
int vk_check_tables_grains(vk_sparse_check *s);
/* The decoded entry G of the trusted table (0 when none). */
int vk_check_trusted_gte(vk_sparse_check *s, uint64_t g, uint32_t *gte);

/* check_stream.c */
/* Is the compressed grain record for grain G at sector SEC sound?  On
 * failure *WHY receives a description. */
int vk_check_compressed_grain(vk_sparse_check *s, uint64_t g, uint64_t sec, bool *ok,
                              uint64_t *rec_sectors, char *why, size_t why_n);
/* Remember / look up a compressed record already reported. */
int vk_check_bad_record_add(vk_sparse_check *s, uint64_t sec);
bool vk_check_bad_record(const vk_sparse_check *s, uint64_t sec);
void vk_check_stream_free(vk_sparse_check *s);
/* For GD_AT_END streams: the footer, its marker and the end-of-stream
 * marker; fills s->h from the footer.  *ok false when unusable. */
int vk_check_stream_footer(vk_sparse_check *s, bool *ok);
/* Walk the marker sequence from overHead to the end of the file. */
int vk_check_stream_walk(vk_sparse_check *s);

#endif
