/* check_stream.c - compressed (streamOptimized) extents: the footer of a
 * stream whose header leaves gdOffset at the end, each compressed grain
 * record, and the marker sequence from overHead to the end of the file. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_sparse.h"

/* Largest compressed record accepted: two grains and a little (what the
 * reader accepts too). */
static uint64_t max_csize(const vk_sparse_check *s) { return 2 * s->grain_bytes + 1012; }

/* The most a deflate stream expands: 1032 bytes out per byte in (plus a
 * little for the block headers). */
#define DEFLATE_MAX_RATIO 1032u

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int vk_check_bad_record_add(vk_sparse_check *s, uint64_t sec)
{
    if (s->n_bad_records == s->cap_bad_records) {
        size_t nc = s->cap_bad_records ? s->cap_bad_records * 2 : 64;
        uint64_t *p = realloc(s->bad_records, nc * sizeof *p);
        if (!p)
            return vk_fail(s->c->e, VMDKIT_ENOMEM, "out of memory");
        s->bad_records = p;
        s->cap_bad_records = nc;
    }
    s->bad_records[s->n_bad_records++] = sec;
    return 0;
}

bool vk_check_bad_record(const vk_sparse_check *s, uint64_t sec)
{
    return s->n_bad_records &&
           bsearch(&sec, s->bad_records, s->n_bad_records, sizeof sec, cmp_u64) != NULL;
}

void vk_check_stream_free(vk_sparse_check *s)
{
    if (s->dec)
        libdeflate_free_decompressor(s->dec);
    free(s->cbuf);
    free(s->gbuf);
    free(s->bad_records);
    free(s->walk_gt);
}

/* ---- the footer ---- */

static const struct {
    const char *name;
    unsigned off, len;
} header_fields[] = {
    {"magic", 0, 4},
    {"version", 4, 4},
    {"flags", 8, 4},
    {"capacity", 12, 8},
    {"grainSize", 20, 8},
    {"descriptorOffset", 28, 8},
    {"descriptorSize", 36, 8},
    {"numGTEsPerGT", 44, 4},
    {"rgdOffset", 48, 8},
    {"overHead", 64, 8},
    {"uncleanShutdown", 72, 1},
    {"newline check bytes", 73, 4},
    {"compressAlgorithm", 77, 2},
    {"padding", 79, 433},
};

int vk_check_stream_footer(vk_sparse_check *s, bool *ok)
{
    vk_check *c = s->c;
    *ok = false;
    uint64_t whole = s->file_bytes / VK_SECTOR;
    if (whole < 3 || whole < s->h.overhead_sectors + 3) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, s->file, VMDKIT_CHECK_NO_OFFSET,
            "%s: footer: gdOffset says the grain directory is in a footer, but the file is too short for one",
            s->file);
        return 0;
    }
    uint8_t buf[3 * VK_SECTOR];
    uint64_t at = (whole - 3) * VK_SECTOR;
    int r = vk_pread_full(s->fd, buf, sizeof buf, at, s->file, c->e);
    if (r)
        return r;
    vk_marker fm, eos;
    vk_marker_decode(buf, &fm);
    vk_marker_decode(buf + 2 * VK_SECTOR, &eos);
    vk_sparse_header f;
    vk_sparse_header_decode(buf + VK_SECTOR, &f);
    if (eos.val != 0 || eos.size != 0 || eos.type != VK_MARKER_EOS) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, at + 2 * VK_SECTOR,
                        "%s: end-of-stream marker: missing from the last sector of the file", s->file);
        return 0;
    }
    if (f.magic != VK_KDMV_MAGIC || fm.size != 0 || fm.type != VK_MARKER_FOOTER) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, s->file, at,
            "%s: footer: gdOffset says the grain directory is in a footer, but no footer precedes the end-of-stream marker",
            s->file);
        return 0;
    }
    if (fm.val != 1)
        vk_check_report(c, VMDKIT_FIND_INFO, s->file, at,
                        "%s: footer marker: says %llu sectors follow, expected 1", s->file,
                        (unsigned long long)fm.val);
    /* the footer repeats the header; only gdOffset may differ */
    char diff[256] = "";
    size_t dl = 0;
    for (size_t k = 0; k < sizeof header_fields / sizeof *header_fields; k++) {
        if (memcmp(s->raw_header + header_fields[k].off, buf + VK_SECTOR + header_fields[k].off,
                   header_fields[k].len) == 0)
            continue;
        int w = snprintf(diff + dl, sizeof diff - dl, "%s%s", dl ? ", " : "", header_fields[k].name);
        if (w > 0 && (size_t)w < sizeof diff - dl)
            dl += (size_t)w;
    }
    if (dl) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, at + VK_SECTOR,
                        "%s: footer: differs from the header in %s (only gdOffset may differ)", s->file,
                        diff);
        if (f.capacity_sectors != s->h.capacity_sectors || f.grain_sectors != s->h.grain_sectors ||
            f.gtes_per_gt != s->h.gtes_per_gt || f.flags != s->h.flags) {
            c->n.incomplete = true;
            return 0; /* the footer's tables cannot be read with confidence */
        }
    }
    if (f.gd_offset_sectors == VK_GD_AT_END) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, at + VK_SECTOR + 56,
                        "%s: footer: gdOffset is still \"at the end\"", s->file);
        return 0;
    }
    vk_err why = {0};
    if (vk_sparse_header_validate(&f, s->file_sectors, s->file, &why)) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, at + VK_SECTOR, "%s (in the footer)", why.msg);
        return 0;
    }
    uint8_t unclean = s->h.unclean_shutdown;
    s->h = f;
    s->h.unclean_shutdown = unclean;
    *ok = true;
    return 0;
}

/* ---- compressed grains ---- */

int vk_check_compressed_grain(vk_sparse_check *s, uint64_t g, uint64_t sec, bool *ok,
                              uint64_t *rec_sectors, char *why, size_t why_n)
{
    vk_err *e = s->c->e;
    *ok = false;
    uint64_t off = sec * VK_SECTOR;
    size_t hdr = s->markers ? 12 : 0;
    uint64_t csize;
    int r;
    if (off + hdr > s->file_bytes) {
        snprintf(why, why_n, "record at sector %llu lies past the end of the file",
                 (unsigned long long)sec);
        return 0;
    }
    if (s->markers) {
        uint8_t m[12];
        if ((r = vk_pread_full(s->fd, m, sizeof m, off, s->file, e)))
            return r;
        uint64_t lba = vk_le64(m);
        csize = vk_le32(m + 8);
        if (lba != g * s->h.grain_sectors) {
            snprintf(why, why_n, "grain marker at sector %llu holds LBA %llu, expected %llu",
                     (unsigned long long)sec, (unsigned long long)lba,
                     (unsigned long long)(g * s->h.grain_sectors));
            return 0;
        }
        if (csize == 0 || csize > max_csize(s) || off + hdr + csize > s->file_bytes) {
            snprintf(why, why_n, "grain marker at sector %llu: compressed size %llu is out of range",
                     (unsigned long long)sec, (unsigned long long)csize);
            return 0;
        }
    } else {
        csize = vk_min(max_csize(s), s->file_bytes - off);
    }
    uint64_t in_disk =
        vk_min(s->grain_bytes, (s->h.capacity_sectors - g * s->h.grain_sectors) * VK_SECTOR);
    if (csize * DEFLATE_MAX_RATIO + 1024 < in_disk) {
        snprintf(why, why_n, "record at sector %llu: %llu compressed bytes cannot inflate to %llu",
                 (unsigned long long)sec, (unsigned long long)csize, (unsigned long long)in_disk);
        return 0;
    }
    /* buffers grow to what the file can actually hold */
    if (!s->dec && !(s->dec = libdeflate_alloc_decompressor()))
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory (decompressor)");
    if (s->cbuf_size < csize) {
        free(s->cbuf);
        if (!(s->cbuf = vk_malloc((size_t)csize, e)))
            return VMDKIT_ENOMEM;
        s->cbuf_size = (size_t)csize;
    }
    if (!s->gbuf) {
        if (!(s->gbuf = vk_malloc((size_t)s->grain_bytes, e)))
            return VMDKIT_ENOMEM;
        s->gbuf_size = (size_t)s->grain_bytes;
    }
    if ((r = vk_pread_full(s->fd, s->cbuf, (size_t)csize, off + hdr, s->file, e)))
        return r;
    size_t in_used = 0, out = 0;
    struct libdeflate_decompressor *dec = s->dec;
    enum libdeflate_result res = libdeflate_zlib_decompress_ex(dec, s->cbuf, (size_t)csize, s->gbuf,
                                                               s->gbuf_size, &in_used, &out);
    if (res == LIBDEFLATE_BAD_DATA) /* some writers store raw deflate */
        res = libdeflate_deflate_decompress_ex(dec, s->cbuf, (size_t)csize, s->gbuf, s->gbuf_size,
                                               &in_used, &out);
    if (res == LIBDEFLATE_INSUFFICIENT_SPACE) {
        snprintf(why, why_n, "record at sector %llu inflates to more than a grain",
                 (unsigned long long)sec);
        return 0;
    }
    if (res != LIBDEFLATE_SUCCESS || out < in_disk) {
        snprintf(why, why_n, "record at sector %llu: compressed data %s (%zu bytes out, expected %llu)",
                 (unsigned long long)sec, res == LIBDEFLATE_SUCCESS ? "is short" : "is corrupt", out,
                 (unsigned long long)in_disk);
        return 0;
    }
    *rec_sectors = vk_div_round_up(hdr + (s->markers ? csize : in_used), VK_SECTOR);
    *ok = true;
    return 0;
}

/* ---- the marker sequence ---- */

/* Sequential reader of marker sectors through a window. */
typedef struct walker {
    vk_sparse_check *s;
    uint8_t *buf;
    uint64_t buf_sector, buf_sectors;
} walker;

#define WINDOW_SECTORS 2048u

static int marker_at(walker *w, uint64_t sec, uint8_t out[16])
{
    if (sec < w->buf_sector || sec >= w->buf_sector + w->buf_sectors) {
        uint64_t whole = w->s->file_bytes / VK_SECTOR;
        uint64_t n = vk_min(WINDOW_SECTORS, whole - sec);
        int r = vk_pread_full(w->s->fd, w->buf, (size_t)(n * VK_SECTOR), sec * VK_SECTOR, w->s->file,
                              w->s->c->e);
        if (r)
            return r;
        w->buf_sector = sec;
        w->buf_sectors = n;
    }
    memcpy(out, w->buf + (sec - w->buf_sector) * VK_SECTOR, 16);
    return 0;
}

/* Is everything from byte FROM to the end of the file zero? */
static int zero_tail(vk_sparse_check *s, uint64_t from, bool *zero)
{
    uint8_t buf[65536];
    *zero = true;
    while (from < s->file_bytes) {
        size_t n = (size_t)vk_min(sizeof buf, s->file_bytes - from);
        int r = vk_pread_full(s->fd, buf, n, from, s->file, s->c->e);
        if (r)
            return r;
        if (!vk_is_zero(buf, n)) {
            *zero = false;
            return 0;
        }
        from += n;
    }
    return 0;
}

/* Does the directory reference a table at sector AT? */
static bool table_at(const vk_sparse_check *s, uint64_t at)
{
    const vk_ival *m = vk_space_meta_hit(&s->space, at, 1);
    if (m && m->start == at && (m->owner == VK_OWN_GT || m->owner == VK_OWN_RGT))
        return true;
    for (size_t k = 0; k < s->n_gd_extra; k++)
        if (s->gd_extra[k] == at)
            return true;
    return false;
}

static uint64_t grains_of(const vk_sparse_check *s, uint64_t bytes)
{
    return vk_div_round_up(bytes, s->grain_bytes);
}

/* One walk over the marker sequence, from overHead to the end of the file. */
typedef struct stream_walk {
    vk_sparse_check *s;
    walker w;
    uint64_t whole;      /* whole sectors of the file */
    uint64_t pos;        /* the sector of the next marker */
    uint64_t needed_end; /* end of the last structure in use */
    uint64_t leak_from;  /* start of leaked records reaching the end; UINT64_MAX: none */
    uint64_t matched;    /* grain records the trusted tables point at */
    uint64_t prev_lba;
    bool have_prev, order_reported;
    bool broken;                  /* the markers after POS cannot be followed */
    bool eos;                     /* the end-of-stream marker was reached */
    bool report_leaks;            /* false when a table could not be trusted */
    uint64_t unknown, unknown_at; /* markers of unknown types: how many, the first */
    uint32_t unknown_type;
} stream_walk;

/* A step returns WALK_ON to read the marker at the new POS, WALK_END when
 * the walk is over, or a negative error code. */
enum { WALK_ON = 0, WALK_END = 1 };

/* Something in use ends at END: what came before is not a leaked tail. */
static void in_use(stream_walk *sw, uint64_t end)
{
    sw->needed_end = end;
    sw->leak_from = UINT64_MAX;
}

/* Leaked space starts at sector AT (the tail is leaked from the first such). */
static void leaked_at(stream_walk *sw, uint64_t at)
{
    if (sw->leak_from == UINT64_MAX)
        sw->leak_from = at;
}

/* A compressed grain record: inside the file, at the start of a grain of
 * the disk, pointed at by the trusted table (else leaked), LBAs ascending. */
static int walk_grain(stream_walk *sw, const vk_marker *m)
{
    vk_sparse_check *s = sw->s;
    vk_check *c = s->c;
    uint64_t pos = sw->pos, at = pos * VK_SECTOR;
    uint64_t rec = vk_div_round_up(12 + (uint64_t)m->size, VK_SECTOR);
    bool known = vk_check_bad_record(s, pos);
    if (m->size > max_csize(s) || pos + rec > vk_div_round_up(s->file_bytes, VK_SECTOR)) {
        if (!known)
            vk_check_report(
                c, VMDKIT_FIND_CORRUPT, s->file, at,
                "%s: grain marker at sector %llu: compressed size %u runs past the end of the file or beyond two grains; the markers after it cannot be followed",
                s->file, (unsigned long long)pos, m->size);
        sw->broken = true;
        return WALK_END;
    }
    sw->pos = pos + rec;
    if (known) { /* reported with its grain */
        in_use(sw, pos + rec);
        return WALK_ON;
    }
    uint64_t lba = m->val;
    if (lba % s->h.grain_sectors || lba / s->h.grain_sectors >= s->grains) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, s->file, at,
            "%s: grain marker at sector %llu: LBA %llu is not the start of a grain of the disk", s->file,
            (unsigned long long)pos, (unsigned long long)lba);
        in_use(sw, pos + rec);
        return WALK_ON;
    }
    uint32_t gte;
    int r = vk_check_trusted_gte(s, lba / s->h.grain_sectors, &gte);
    if (r)
        return r;
    if (gte == pos) {
        sw->matched++;
        in_use(sw, pos + rec);
        if (sw->have_prev && lba <= sw->prev_lba && !sw->order_reported) {
            vk_check_report(
                c, VMDKIT_FIND_INFO, s->file, at,
                "%s: grain marker at sector %llu: LBA %llu after %llu; grains are not in ascending order (readers that follow the stream need them in order)",
                s->file, (unsigned long long)pos, (unsigned long long)lba,
                (unsigned long long)sw->prev_lba);
            sw->order_reported = true;
        }
        sw->prev_lba = lba;
        sw->have_prev = true;
    } else if (sw->report_leaks) {
        vk_check_leak(c, s->file, at, 1, rec * VK_SECTOR,
                      "%s: grain record at sector %llu (LBA %llu): not referenced by the grain table",
                      s->file, (unsigned long long)pos, (unsigned long long)lba);
        leaked_at(sw, pos);
    }
    return WALK_ON;
}

/* The end-of-stream marker: last in a stream with a footer; after it only
 * zeros (anything else is leaked). */
static int walk_eos(stream_walk *sw)
{
    vk_sparse_check *s = sw->s;
    vk_check *c = s->c;
    uint64_t pos = sw->pos, at = pos * VK_SECTOR;
    sw->eos = true;
    in_use(sw, pos + 1);
    if (s->stream_footer && pos != sw->whole - 1) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, at,
                        "%s: end-of-stream marker at sector %llu, before the footer", s->file,
                        (unsigned long long)pos);
        sw->broken = true;
        return WALK_END;
    }
    bool zero;
    int r = zero_tail(s, at + VK_SECTOR, &zero);
    if (r)
        return r;
    if (!zero && sw->report_leaks) {
        uint64_t bytes = s->file_bytes - (at + VK_SECTOR);
        vk_check_leak(c, s->file, at + VK_SECTOR, grains_of(s, bytes), bytes,
                      "%s: %llu bytes of data after the end-of-stream marker", s->file,
                      (unsigned long long)bytes);
        sw->leak_from = pos + 1;
    }
    return WALK_END;
}

/* A grain table or grain directory marker: the sectors it announces, inside
 * the file, and a table the directory uses (else leaked). */
static int walk_table(stream_walk *sw, const vk_marker *m)
{
    vk_sparse_check *s = sw->s;
    vk_check *c = s->c;
    uint64_t pos = sw->pos, at = pos * VK_SECTOR;
    bool gt = m->type == VK_MARKER_GT;
    const char *what = gt ? "grain table" : "grain directory";
    uint64_t follow = m->val;
    uint64_t want = gt ? s->gt_sectors : s->gd_sectors;
    if (follow != want)
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, at,
                        "%s: %s marker at sector %llu: says %llu sectors follow, expected %llu", s->file,
                        what, (unsigned long long)pos, (unsigned long long)follow,
                        (unsigned long long)want);
    if (follow > sw->whole - pos - 1) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, s->file, at,
            "%s: %s marker at sector %llu: the table runs past the end of the file; the markers after it cannot be followed",
            s->file, what, (unsigned long long)pos);
        sw->broken = true;
        return WALK_END;
    }
    bool used = gt ? table_at(s, pos + 1) : pos + 1 == s->h.gd_offset_sectors;
    if (used) {
        in_use(sw, pos + 1 + follow);
    } else if (sw->report_leaks) {
        uint64_t bytes = (1 + follow) * VK_SECTOR;
        vk_check_leak(c, s->file, at, grains_of(s, bytes), bytes,
                      "%s: %s at sector %llu: not referenced by the grain directory", s->file, what,
                      (unsigned long long)(pos + 1));
        leaked_at(sw, pos);
    }
    sw->pos = pos + 1 + follow;
    return WALK_ON;
}

/* The footer marker: in a stream with a footer, three sectors before the end. */
static int walk_footer(stream_walk *sw)
{
    vk_sparse_check *s = sw->s;
    uint64_t pos = sw->pos;
    if (s->stream_footer && pos != sw->whole - 3)
        vk_check_report(
            s->c, VMDKIT_FIND_CORRUPT, s->file, pos * VK_SECTOR,
            "%s: footer marker at sector %llu, not in the last sectors before the end-of-stream marker",
            s->file, (unsigned long long)pos);
    in_use(sw, pos + 2);
    sw->pos = pos + 2;
    return WALK_ON;
}

/* Other metadata marker types may exist: step over the marker (counted,
 * reported once after the walk). */
static int walk_unknown(stream_walk *sw, const vk_marker *m)
{
    if (!sw->unknown++) {
        sw->unknown_type = m->type;
        sw->unknown_at = sw->pos;
    }
    sw->needed_end = sw->pos + 1;
    sw->pos++;
    return WALK_ON;
}

/* Read the marker at POS and take the step its kind asks for. */
static int walk_step(stream_walk *sw)
{
    /* progress: the walk is the last 90% of a stream's check */
    vk_check_progress_step(sw->s->c, 100, 1000, sw->pos, sw->whole);
    uint8_t mb[16];
    int r = marker_at(&sw->w, sw->pos, mb);
    if (r)
        return r;
    vk_marker m;
    vk_marker_decode(mb, &m);
    if (m.size > 0)
        return walk_grain(sw, &m);
    if (m.type == VK_MARKER_EOS && m.val == 0)
        return walk_eos(sw);
    if (m.type == VK_MARKER_GT || m.type == VK_MARKER_GD)
        return walk_table(sw, &m);
    if (m.type == VK_MARKER_FOOTER)
        return walk_footer(sw);
    return walk_unknown(sw, &m);
}

/* After the walk: unknown markers, table entries the sequence does not
 * hold, a walk cut short, a partial sector at the end. */
static void walk_summary(stream_walk *sw)
{
    vk_sparse_check *s = sw->s;
    vk_check *c = s->c;
    if (sw->unknown)
        vk_check_report(
            c, VMDKIT_FIND_INFO, s->file, sw->unknown_at * VK_SECTOR,
            "%s: %llu marker(s) of a type vmdkit does not know (the first, type %u, at sector %llu) were stepped over",
            s->file, (unsigned long long)sw->unknown, sw->unknown_type,
            (unsigned long long)sw->unknown_at);
    if (!sw->broken && !sw->eos && sw->pos < sw->whole)
        sw->broken = true;
    if (!sw->broken && sw->matched < s->data_gtes)
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, VMDKIT_CHECK_NO_OFFSET,
                        "%s: %llu grain table entries point at records outside the marker sequence",
                        s->file, (unsigned long long)(s->data_gtes - sw->matched));
    if (sw->broken)
        c->n.incomplete = true;
    /* a partial sector at the end holds nothing */
    if (!sw->broken && !sw->eos && s->file_bytes % VK_SECTOR && sw->report_leaks) {
        uint64_t bytes = s->file_bytes % VK_SECTOR;
        vk_check_leak(c, s->file, s->file_bytes - bytes, 1, bytes,
                      "%s: %llu bytes of a partial sector at the end of the file", s->file,
                      (unsigned long long)bytes);
        leaked_at(sw, sw->whole);
    }
}

/* Under repair: plan cutting leaked records that reach the end of the file. */
static int walk_plan_cut(const stream_walk *sw)
{
    vk_sparse_check *s = sw->s;
    vk_check *c = s->c;
    if (sw->broken || sw->leak_from == UINT64_MAX || !c->plan || !s->x->repairable || c->plan_grows_file)
        return 0;
    uint64_t keep = vk_max(sw->needed_end, s->h.overhead_sectors) * VK_SECTOR;
    keep = vk_max(keep, s->space.max_end * VK_SECTOR);
    return vk_space_cut_tail(s, keep);
}

int vk_check_stream_walk(vk_sparse_check *s)
{
    stream_walk sw = {
        .s = s,
        .w = {.s = s},
        .whole = s->file_bytes / VK_SECTOR,
        .pos = s->h.overhead_sectors,
        .needed_end = s->h.overhead_sectors,
        .leak_from = UINT64_MAX,
        .report_leaks = !s->space_uncertain,
    };
    if (s->n_bad_records)
        qsort(s->bad_records, s->n_bad_records, sizeof *s->bad_records, cmp_u64);
    if (!(sw.w.buf = vk_malloc(WINDOW_SECTORS * VK_SECTOR, s->c->e)))
        return VMDKIT_ENOMEM;
    if (!sw.report_leaks) {
        vk_check_report(s->c, VMDKIT_FIND_INFO, s->file, VMDKIT_CHECK_NO_OFFSET,
                        "%s: leaked space not checked: a grain table could not be trusted", s->file);
        s->c->n.incomplete = true;
    }
    int r = WALK_ON;
    while (r == WALK_ON && sw.pos < sw.whole)
        r = walk_step(&sw);
    free(sw.w.buf);
    if (r < 0)
        return r;
    walk_summary(&sw);
    return walk_plan_cut(&sw);
}
