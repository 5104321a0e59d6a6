/* compact.c - compact the sparse extents of a disk (without their
 * all-zero grains), or rewrite them with every grain in virtual order
 * (defrag).
 *
 * Compact packs an extent where it lies when its layout allows
 * (compact_in_place.c).  Otherwise, and for defrag, each sparse extent
 * file is rewritten whole into a hidden folder beside
 * the disk (temp_folder.h) under its own name: header fields, grain size,
 * table size and embedded descriptor text as they were, a fresh layout
 * (redundant directory and tables, directory and tables, then the grains
 * that are kept, packed in virtual order).  A grain that reads all zeros
 * is dropped when what shows through it reads zeros too (always in a disk
 * without a parent); in a delta, over parent data that is not zero, it is
 * kept, as a zeroed-grain entry when the header has them (version 2),
 * else as stored zeros.  So every link above reads what it read before and
 * the CID stays.  Defrag keeps every grain and entry as it was, only their
 * places change.
 *
 * Crash safety: a copy is complete and durable (data, tables, directories,
 * header, fdatasync) before it is renamed over its original, one file at a
 * time, each rename made durable before the next: every extent is the old
 * file or the new one, and both read the same.  The disk stays open
 * read-write throughout, so its locks keep every other writer and reader
 * out.  A folder a killed run left is removed at the next start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../link.h"
#include "../path.h"
#include "../sparse_header.h"
#include "../temp_folder.h"
#include "compact.h"
#include "maint.h"

#define MAX_COMPACT_GRAIN_BYTES (UINT64_C(1) << 20)
/* Kept grains are appended in runs of up to this many bytes, one pwrite
 * each (at least one grain) */
#define APPEND_RUN_BYTES (UINT64_C(1) << 20)

/* What a rewrite drops: nothing (defrag), zero grains (compact), grains
 * equal to the parent's too (compact with VMDKIT_COMPACT_DEDUPE_PARENT). */
enum { MODE_DROP_ZERO = 1u << 0, MODE_DEDUPE = 1u << 1 };

int vk_compact_progress_add(vk_compact_progress *p, uint64_t done, vk_err *e)
{
    p->done += done;
    if (p->fn && p->fn(p->opaque, vk_min(p->done, p->total), p->total))
        return vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    return 0;
}

typedef struct compactor {
    vk_compact_rule rule;
    vk_extent *x;
    int in_fd;  /* the original extent file */
    int out_fd; /* its copy */
    const char *out_path;
    vk_sparse_header h; /* the copy's header */
    uint64_t gdes, gt_secs, gd_secs;
    uint8_t *grain; /* the grain being copied: the next slot of run */
    uint8_t *run;   /* kept grains not written yet, ending at next */
    size_t run_len, run_cap;
    uint64_t unkicked; /* bytes written since the last writeback start */
    uint8_t *gt;       /* one grain table */
    uint8_t *gd, *rgd;
    uint64_t next;  /* append position, sectors */
    bool drop_zero; /* compact: drop zero grains; defrag: keep every grain */
    vk_compact_progress *prog;
} compactor;

/*
 * The one rule of compact: a grain is dropped where the disk reads the
 * same without it, that is where it equals what shows through it (the
 * parent chain at the same link sectors, zeros in a disk without a
 * parent).  Plain compact asks it only of all-zero grains; with
 * VMDKIT_COMPACT_DEDUPE_PARENT of every stored grain of a delta.  A zero
 * grain over parent data stays, as a zeroed-grain entry where the header
 * has them.
 */
int vk_compact_grain_fate(const vk_compact_rule *r, uint64_t s, uint64_t n, const uint8_t *data,
                          bool stored, enum vk_grain_fate *fate, vk_err *e)
{
    size_t bytes = (size_t)(n * VK_SECTOR);
    bool zero = vk_is_zero(data, bytes);
    *fate = VK_GRAIN_KEEP;
    if (!zero && !r->dedupe)
        return 0;
    bool same = zero;
    if (r->l->parent) {
        int rc = vk_chain_read(r->l->parent, s, n, r->below, e);
        if (rc)
            return rc;
        same = zero ? vk_is_zero(r->below, bytes) : memcmp(data, r->below, bytes) == 0;
    }
    if (same) {
        if (stored)
            (*(zero ? &r->res->grains_dropped : &r->res->grains_deduped))++;
        *fate = VK_GRAIN_DROP;
    } else if (zero && r->zeroed_flag) {
        *fate = VK_GRAIN_ZEROED;
    }
    return 0;
}

/* Write the run of kept grains, and have the disk start on every
 * VK_WRITEBACK_BYTES of them, so that the final fdatasync finds little
 * left to do. */
static int write_run(compactor *c, vk_err *e)
{
    if (!c->run_len)
        return 0;
    int r =
        vk_pwrite_full(c->out_fd, c->run, c->run_len, c->next * VK_SECTOR - c->run_len, c->out_path, e);
    c->unkicked += c->run_len;
    c->run_len = 0;
    if (!r && c->unkicked >= VK_WRITEBACK_BYTES) {
        vk_start_writeback(c->out_fd);
        c->unkicked = 0;
    }
    return r;
}

/* The entry of the copy for grain G (extent sectors [S, S+K)). */
static int copy_grain(compactor *c, uint64_t s, uint64_t k, uint32_t *gte, vk_err *e)
{
    vk_extent *x = c->x;
    uint64_t gs = c->h.grain_sectors;
    size_t gb = (size_t)(gs * VK_SECTOR);
    int alloc;
    uint64_t run;
    int r = x->ops->status(x, s, k, &alloc, &run, e);
    if (r)
        return r;
    *gte = 0;
    if (alloc == VMDKIT_ALLOC_UNALLOC && run >= k)
        return 0;
    if (c->run_len + gb > c->run_cap && (r = write_run(c, e)))
        return r;
    c->grain = c->run + c->run_len;
    memset(c->grain, 0, gb);
    if ((r = x->ops->read(x, s, k, c->grain, e)))
        return r;
    if (!c->drop_zero && alloc == VMDKIT_ALLOC_ZERO && (c->h.flags & VK_FLAG_ZEROED_GRAIN)) {
        *gte = VK_GTE_ZEROED;
        return 0;
    }
    if (c->drop_zero) {
        enum vk_grain_fate fate;
        if ((r = vk_compact_grain_fate(&c->rule, x->start_sector + s, k, c->grain,
                                       alloc == VMDKIT_ALLOC_DATA, &fate, e)))
            return r;
        if (fate == VK_GRAIN_ZEROED)
            *gte = VK_GTE_ZEROED;
        if (fate != VK_GRAIN_KEEP)
            return 0;
    }
    if (c->next + gs > VK_MAX_EXTENT_FILE_SECTORS)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: the copy grows past what its tables address", c->out_path);
    c->run_len += gb;
    *gte = (uint32_t)c->next;
    c->next += gs;
    return 0;
}

/* Grain table I of the copy: its grains appended, the table written in
 * both places. */
static int copy_table(compactor *c, uint64_t i, vk_err *e)
{
    uint64_t gs = c->h.grain_sectors, per = c->h.gtes_per_gt, covered = 0;
    memset(c->gt, 0, (size_t)(c->gt_secs * VK_SECTOR));
    for (uint64_t j = 0; j < per; j++) {
        uint64_t s = (i * per + j) * gs;
        if (s >= c->x->size_sectors)
            break;
        uint32_t gte;
        uint64_t k = vk_min(gs, c->x->size_sectors - s);
        int r = copy_grain(c, s, k, &gte, e);
        if (r)
            return r;
        vk_put32(c->gt + 4 * j, gte);
        covered += k;
    }
    int pr = vk_compact_progress_add(c->prog, covered * VK_SECTOR, e);
    if (pr)
        return pr;
    uint32_t at = vk_le32(c->gd + 4 * i), rat = vk_le32(c->rgd + 4 * i);
    int r = vk_pwrite_full(c->out_fd, c->gt, (size_t)(c->gt_secs * VK_SECTOR), (uint64_t)at * VK_SECTOR,
                           c->out_path, e);
    if (!r)
        r = vk_pwrite_full(c->out_fd, c->gt, (size_t)(c->gt_secs * VK_SECTOR), (uint64_t)rat * VK_SECTOR,
                           c->out_path, e);
    return r;
}

static int read_header(int fd, const char *path, vk_sparse_header *h, vk_err *e)
{
    uint8_t b[512];
    int r = vk_pread_full(fd, b, sizeof b, 0, path, e);
    if (!r)
        vk_sparse_header_decode(b, h);
    return r;
}

/* Write the compacted copy of extent X at OUT_PATH. */
static int build_copy(const vk_compact_rule *rule, vk_extent *x, const char *out_path, unsigned mode,
                      vk_compact_progress *prog, vk_err *e)
{
    compactor c = {.rule = *rule,
                   .x = x,
                   .in_fd = x->fd,
                   .out_fd = -1,
                   .out_path = out_path,
                   .drop_zero = mode & MODE_DROP_ZERO,
                   .prog = prog};
    vk_sparse_header old;
    char *desc = NULL;
    size_t desc_len = 0;
    uint64_t doff = 0, dsize = 0;
    int r = read_header(x->fd, x->path, &old, e);
    if (!r && old.desc_offset_sectors)
        r = vk_sparse_read_embedded_descriptor(x->fd, x->path, &desc, &desc_len, &doff, &dsize, e);
    if (r)
        return r;
    if (old.grain_sectors * VK_SECTOR > MAX_COMPACT_GRAIN_BYTES) {
        free(desc);
        return vk_fail(e, VMDKIT_EUNSUPPORTED,
                       "%s: grainSize: %llu sectors is larger than compact handles", x->path,
                       (unsigned long long)old.grain_sectors);
    }
    c.h = old;
    c.rule.zeroed_flag = (old.flags & VK_FLAG_ZEROED_GRAIN) != 0;
    c.h.flags |= VK_FLAG_REDUNDANT_GD;
    c.h.unclean_shutdown = 0;
    vk_sparse_layout(&c.h, desc ? dsize : 0, true);
    c.gdes = vk_num_gdes(&c.h);
    c.gt_secs = vk_gt_sectors(c.h.gtes_per_gt);
    c.gd_secs = vk_gd_sectors(c.gdes);
    c.next = c.h.overhead_sectors;
    size_t gb = (size_t)(c.h.grain_sectors * VK_SECTOR);
    c.run_cap = (size_t)vk_max(APPEND_RUN_BYTES / gb, 1) * gb;
    c.run = vk_malloc(c.run_cap, e);
    c.rule.below = vk_malloc(gb, e);
    c.gt = vk_malloc((size_t)(c.gt_secs * VK_SECTOR), e);
    c.gd = vk_calloc(1, (size_t)(c.gd_secs * VK_SECTOR), e);
    c.rgd = vk_calloc(1, (size_t)(c.gd_secs * VK_SECTOR), e);
    if (!c.run || !c.rule.below || !c.gt || !c.gd || !c.rgd)
        r = VMDKIT_ENOMEM;
    for (uint64_t i = 0; !r && i < c.gdes; i++) {
        vk_put32(c.gd + 4 * i, (uint32_t)(c.h.gd_offset_sectors + c.gd_secs + i * c.gt_secs));
        vk_put32(c.rgd + 4 * i, (uint32_t)(c.h.rgd_offset_sectors + c.gd_secs + i * c.gt_secs));
    }
    if (!r) {
        c.out_fd = open(out_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (c.out_fd < 0)
            r = vk_fail_errno(e, errno, "%s: create", out_path);
    }
    /* the copy is not visible until it is renamed: its order inside does
     * not matter, only that all of it is durable first */
    if (!r && ftruncate(c.out_fd, (off_t)(c.h.overhead_sectors * VK_SECTOR)) != 0)
        r = vk_fail_errno(e, errno, "%s: set size", out_path);
    for (uint64_t i = 0; !r && i < c.gdes; i++)
        r = copy_table(&c, i, e);
    if (!r)
        r = write_run(&c, e);
    if (!r && desc)
        r = vk_pwrite_full(c.out_fd, desc, desc_len, c.h.desc_offset_sectors * VK_SECTOR, out_path, e);
    if (!r)
        r = vk_pwrite_full(c.out_fd, c.rgd, (size_t)(c.gd_secs * VK_SECTOR),
                           c.h.rgd_offset_sectors * VK_SECTOR, out_path, e);
    if (!r)
        r = vk_pwrite_full(c.out_fd, c.gd, (size_t)(c.gd_secs * VK_SECTOR),
                           c.h.gd_offset_sectors * VK_SECTOR, out_path, e);
    if (!r) {
        uint8_t hb[512];
        vk_sparse_header_encode(&c.h, hb);
        r = vk_pwrite_full(c.out_fd, hb, sizeof hb, 0, out_path, e);
    }
    if (!r)
        r = vk_fdatasync(c.out_fd, out_path, e);
    if (c.out_fd >= 0 && close(c.out_fd) != 0 && !r)
        r = vk_fail_errno(e, errno, "%s: close", out_path);
    free(desc);
    free(c.run);
    free(c.rule.below);
    free(c.gt);
    free(c.gd);
    free(c.rgd);
    return r;
}

static uint64_t used_bytes(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    *size += (uint64_t)st.st_size;
    return (uint64_t)st.st_blocks * 512;
}

static int by_file(const void *a, const void *b)
{
    const vk_extent *x = *(const vk_extent *const *)a, *y = *(const vk_extent *const *)b;
    return x->file < y->file ? -1 : x->file > y->file;
}

/* Each extent of L in a file of its own: two extents naming one file (a
 * crafted descriptor) show each grain at two places, and the rule that
 * drops a grain knows only one of them. */
static int one_file_each(const vk_link *l, vk_err *e)
{
    if (l->n_ext < 2)
        return 0;
    const vk_extent **x = vk_calloc(l->n_ext, sizeof *x, e);
    if (!x)
        return VMDKIT_ENOMEM;
    for (size_t i = 0; i < l->n_ext; i++)
        x[i] = &l->ext[i];
    qsort(x, l->n_ext, sizeof *x, by_file);
    int r = 0;
    for (size_t i = 1; !r && i < l->n_ext; i++)
        if (x[i]->file == x[i - 1]->file)
            r = vk_fail(e, VMDKIT_EUNSUPPORTED,
                        "%s: extents: \"%s\" and \"%s\" are one file; compact needs a file for each",
                        l->path, x[i - 1]->name, x[i]->name);
    free(x);
    return r;
}

static int check_link(const vk_link *l, vk_err *e)
{
    const char *t = l->desc.create_type ? l->desc.create_type : "";
    if (l->raw)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: a raw image, not a VMDK", l->path);
    if (strcasecmp(t, "streamOptimized") == 0)
        return vk_fail(
            e, VMDKIT_EUNSUPPORTED,
            "%s: createType: a streamOptimized disk is compact already; convert it to change it",
            l->path);
    if (strcasecmp(t, "monolithicSparse") != 0 && strcasecmp(t, "twoGbMaxExtentSparse") != 0)
        return vk_fail(e, VMDKIT_EUNSUPPORTED,
                       "%s: createType: \"%s\" has no grains to rewrite (compact and defrag take "
                       "monolithicSparse and twoGbMaxExtentSparse disks)",
                       l->path, t);
    for (size_t i = 0; i < l->n_ext; i++)
        if (l->ext[i].type != VK_EXT_SPARSE || !l->ext[i].file)
            return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: extent %zu: a %s extent in a sparse disk",
                           l->path, i + 1, vk_extent_type_name(l->ext[i].type));
    return one_file_each(l, e);
}

/* Compact each extent in place where its layout allows (compact only),
 * else build its copy in T; then rename each copy over its original. */
static int compact_link(vk_link *l, const char *dir, vk_temp_folder *t, unsigned mode,
                        vmdkit_compact_result *res, vk_compact_progress *prog, vk_err *e)
{
    vk_compact_rule rule = {.l = l, .dedupe = (mode & MODE_DEDUPE) != 0, .res = res};
    bool *copied = vk_calloc(l->n_ext ? l->n_ext : 1, sizeof *copied, e);
    int r = copied ? 0 : VMDKIT_ENOMEM;
    size_t n_copied = 0;
    for (size_t i = 0; !r && i < l->n_ext; i++) {
        bool done = false;
        if ((r = vk_extent_hold(&l->ext[i], e)))
            break;
        if (mode & MODE_DROP_ZERO)
            r = vk_compact_in_place(&rule, &l->ext[i], prog, &done, e);
        if (!r && !done) {
            char *out = vk_path_join(t->path, vk_path_basename(l->ext[i].path), e);
            r = out ? build_copy(&rule, &l->ext[i], out, mode, prog, e) : VMDKIT_ENOMEM;
            copied[i] = true;
            n_copied++;
            free(out);
        }
        vk_extent_release(&l->ext[i]);
    }
    if (!r && n_copied)
        r = vk_fsync_dir(t->path, e);
    /* a compact whose copies would not make the files shorter leaves them
     * alone (sizes, not the blocks the file system reports: those vary
     * with its allocation and would make the choice depend on timing) */
    if (!r && n_copied && (mode & MODE_DROP_ZERO)) {
        uint64_t was = 0, now = 0;
        for (size_t i = 0; !r && i < l->n_ext; i++) {
            if (!copied[i])
                continue;
            char *out = vk_path_join(t->path, vk_path_basename(l->ext[i].path), e);
            if (!out) {
                r = VMDKIT_ENOMEM;
                break;
            }
            (void)used_bytes(l->ext[i].path, &was);
            (void)used_bytes(out, &now);
            free(out);
        }
        if (!r && now >= was)
            n_copied = 0;
    }
    /* each rename is the commit of one extent: the old and the new file
     * read the same, so any prefix of them is a whole disk */
    for (size_t i = 0; !r && n_copied && i < l->n_ext; i++) {
        if (!copied[i])
            continue;
        char *from = vk_path_join(t->path, vk_path_basename(l->ext[i].path), e);
        if (!from)
            r = VMDKIT_ENOMEM;
        else if (rename(from, l->ext[i].path) != 0)
            r = vk_fail_errno(e, errno, "%s: rename %s", l->ext[i].path, from);
        if (!r)
            r = vk_fsync_dir(dir, e);
        free(from);
    }
    free(copied);
    return r;
}

/* The refusals of the disk at PATH that need no lock: its type, a dedupe
 * of a base, then what the library around it (ROOT) knows of its holders.
 * *CAPACITY receives its size in sectors. */
static int precheck(const char *path, const char *root, unsigned mode, uint64_t *capacity, vk_err *e)
{
    vmdkit_disk *d = NULL;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_PARENT | VMDKIT_OPEN_NO_LOCK, &d, e);
    if (r)
        return r;
    r = check_link(d->top, e);
    if (!r && (mode & MODE_DEDUPE) && !d->top->desc.parent_hint)
        r = vk_fail(e, VMDKIT_EINVAL,
                    "%s: parentFileNameHint: none: the disk is a base, with no parent to compare its "
                    "grains with (dedupe-parent is for deltas)",
                    path);
    *capacity = d->top->capacity_sectors;
    vmdkit_close(d, NULL);
    return r ? r : vk_maint_check_library(path, root, false, e);
}

/* Rewrite every sparse extent of the disk at PATH (see the top), adding
 * its sizes to RES. */
static int rewrite_disk(const char *path, unsigned mode, vmdkit_compact_result *res,
                        vk_compact_progress *prog, vk_err *e)
{
    /* read-write: its locks keep everyone else out until the renames are done */
    vmdkit_disk *d = NULL;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDWR | VK_OPEN_KEEP_CID, &d, e);
    if (r)
        return r;
    vk_link *l = d->top;
    char *dir = NULL;
    vk_temp_folder t = {0};
    if ((r = check_link(l, e)))
        goto out;
    for (size_t i = 0; i < l->n_ext; i++)
        res->bytes_before += used_bytes(l->ext[i].path, &res->file_bytes_before);
    if (!(dir = vk_path_dirname(l->path, e))) {
        r = VMDKIT_ENOMEM;
        goto out;
    }
    const char *name = vk_path_basename(l->path);
    if (!(r = vk_remove_stale_temps(dir, name, NULL, e)) && !(r = vk_temp_folder_make(dir, name, &t, e)))
        r = compact_link(l, dir, &t, mode, res, prog, e);
    if (r && t.path)
        vk_temp_folder_unhide_message(&t, dir, e);
    vk_temp_folder_discard(&t);
    for (size_t i = 0; !r && i < l->n_ext; i++)
        res->bytes_after += used_bytes(l->ext[i].path, &res->file_bytes_after);
out:;
    int rc = vmdkit_close(d, r ? NULL : e);
    free(dir);
    return r ? r : rc;
}

/* The links of PATH's chain, its base first: *PATHS (malloc'd, with each
 * string) and *N. */
static int chain_links(const char *path, char ***paths, size_t *n, vk_err *e)
{
    *paths = NULL;
    *n = 0;
    vmdkit_disk *d = NULL;
    int r = vmdkit_open(path, VMDKIT_OPEN_RDONLY | VMDKIT_OPEN_NO_LOCK, &d, e);
    if (r)
        return r;
    size_t k = 0;
    for (vk_link *l = d->top; l; l = l->parent)
        k++;
    char **p = vk_calloc(k, sizeof *p, e);
    size_t i = k;
    for (vk_link *l = d->top; p && l; l = l->parent)
        if (!(p[--i] = vk_strdup(l->path, e)))
            break;
    vmdkit_close(d, NULL);
    if (!p || i) {
        for (size_t j = 0; p && j < k; j++)
            free(p[j]);
        free(p);
        return VMDKIT_ENOMEM;
    }
    *paths = p;
    *n = k;
    return 0;
}

/* Rewrite the disk at PATH, or with CHAIN every link of its chain, base
 * first (see vmdkit_compact): every link is checked before the first one
 * changes. */
static int rewrite(const char *path, const char *root, unsigned mode, bool chain,
                   vk_compact_progress *prog, vmdkit_compact_result *res, vk_err *e)
{
    char **links = NULL;
    size_t n = 0;
    int r = chain ? chain_links(path, &links, &n, e) : 0;
    if (r)
        return r;
    const char *const *names = chain ? (const char *const *)links : &path;
    if (!chain)
        n = 1;
    unsigned *modes = vk_calloc(n, sizeof *modes, e);
    if (!modes)
        r = VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < n; i++) {
        uint64_t cap = 0;
        /* a chain's base has no parent to dedupe against: compacted only */
        modes[i] = chain && i == 0 ? mode & ~(unsigned)MODE_DEDUPE : mode;
        if (!(r = precheck(names[i], root, modes[i], &cap, e)))
            prog->total += cap * VK_SECTOR;
    }
    if (!r && prog->fn && prog->fn(prog->opaque, 0, prog->total))
        r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    for (size_t i = 0; !r && i < n; i++)
        r = rewrite_disk(names[i], modes[i], res, prog, e);
    for (size_t i = 0; links && i < n; i++)
        free(links[i]);
    free(links);
    free(modes);
    return r;
}

static int run(const char *path, const vmdkit_compact_opts *opts, bool drop_zero,
               vmdkit_compact_result *res, vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_compact_opts o;
    int r0 = vk_entry_opts(&e, err, &local, NULL, 0, NULL, &o, sizeof o, opts, "vmdkit_compact_opts");
    if (r0)
        return r0;
    if (o.flags & ~(unsigned)(drop_zero ? VMDKIT_COMPACT_DEDUPE_PARENT | VMDKIT_COMPACT_CHAIN : 0))
        return vk_fail(e, VMDKIT_EINVAL, "%s: unknown flags 0x%x",
                       drop_zero ? "vmdkit_compact" : "vmdkit_defrag", o.flags);
    unsigned mode = drop_zero ? MODE_DROP_ZERO : 0;
    if (o.flags & VMDKIT_COMPACT_DEDUPE_PARENT)
        mode |= MODE_DEDUPE;
    vmdkit_compact_result local_res;
    if (!res)
        res = &local_res;
    memset(res, 0, sizeof *res);
    vk_compact_progress prog = {.fn = o.progress, .opaque = o.progress_opaque};
    return rewrite(path, o.root, mode, o.flags & VMDKIT_COMPACT_CHAIN, &prog, res, e);
}

int vmdkit_compact(const char *path, const vmdkit_compact_opts *opts, vmdkit_compact_result *res,
                   vmdkit_error *err)
{
    return run(path, opts, true, res, err);
}

int vmdkit_defrag(const char *path, const vmdkit_compact_opts *opts, vmdkit_compact_result *res,
                  vmdkit_error *err)
{
    return run(path, opts, false, res, err);
}
