/* stream_read.c - one file of a package read front to back, and a
 * streamOptimized VMDK decoded from it in that one pass.
 *
 * A disk inside an OVA is a member of the tar: a range of the .ova file,
 * possibly gzip-compressed (ovf:compression="gzip").  It is never copied
 * out.  vk_member_* read the range sequentially (digesting the raw bytes
 * for the manifest as they pass, inflating with zlib when compressed), and
 * vk_stream_decode walks the stream's records in file order: every grain
 * record carries its LBA, so the grain tables and directory (at the end of
 * a stream) are not needed; they are skipped like every other metadata
 * record.  One read of the member therefore verifies its digest and
 * delivers its data.  Memory: one read buffer, one inflate window, one
 * record and one grain. */
#include <libdeflate.h>
#include <stdlib.h>
#include <zlib.h>

#include "ovf.h"
#include "sparse_header.h"

#define RAW_BUF_BYTES ((size_t)1 << 20)
#define MAX_DESC_BYTES ((size_t)10 << 20)
/* The largest table a stream can need: the GD of a 1 PiB disk is 2^18
 * sectors.  Bounds what a (gzip-compressed) hostile member makes us skip. */
#define MAX_META_SECTORS (UINT64_C(1) << 20)

struct vk_member_src {
    int fd;
    const char *name;
    uint64_t off, len, pos; /* raw bytes: the range and how much was read */
    vk_digest *digest;
    bool gzip, z_ready, z_end;
    z_stream z;
    uint8_t *raw; /* gzip: compressed bytes waiting for inflate */
};

int vk_member_open(int fd, const char *name, uint64_t off, uint64_t len, bool gzip, vk_digest *digest,
                   vk_member_src **out, vk_err *e)
{
    vk_member_src *s = vk_calloc(1, sizeof *s, e);
    if (!s)
        return VMDKIT_ENOMEM;
    s->fd = fd;
    s->name = name;
    s->off = off;
    s->len = len;
    s->digest = digest;
    s->gzip = gzip;
    if (gzip) {
        if (!(s->raw = vk_malloc(RAW_BUF_BYTES, e))) {
            free(s);
            return VMDKIT_ENOMEM;
        }
        /* 15 + 16: a gzip wrapper, the largest window */
        if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
            free(s->raw);
            free(s);
            return vk_fail(e, VMDKIT_ENOMEM, "%s: cannot set up gzip decompression", name);
        }
        s->z_ready = true;
    }
    *out = s;
    return 0;
}

/* Raw bytes from the range into BUF (at most N); *GOT 0 at its end. */
static int raw_read(vk_member_src *s, uint8_t *buf, size_t n, size_t *got, vk_err *e)
{
    size_t k = (size_t)vk_min(n, s->len - s->pos);
    *got = 0;
    if (!k)
        return 0;
    int r = vk_pread_full(s->fd, buf, k, s->off + s->pos, s->name, e);
    if (r)
        return r;
    vk_digest_update(s->digest, buf, k);
    s->pos += k;
    *got = k;
    return 0;
}

int vk_member_read(vk_member_src *s, void *buf, size_t n, size_t *got, vk_err *e)
{
    if (!s->gzip)
        return raw_read(s, buf, n, got, e);
    *got = 0;
    s->z.next_out = buf;
    s->z.avail_out = (uInt)vk_min(n, UINT32_MAX);
    while (s->z.avail_out && !s->z_end) {
        if (!s->z.avail_in) {
            size_t k;
            int r = raw_read(s, s->raw, RAW_BUF_BYTES, &k, e);
            if (r)
                return r;
            if (!k)
                return vk_fail(e, VMDKIT_EFORMAT, "%s: gzip data ends early", s->name);
            s->z.next_in = s->raw;
            s->z.avail_in = (uInt)k;
        }
        int zr = inflate(&s->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            s->z_end = true;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return vk_fail(e, VMDKIT_EFORMAT, "%s: gzip data is corrupt (%s)", s->name,
                           s->z.msg ? s->z.msg : "inflate failed");
    }
    *got = (size_t)((uint8_t *)s->z.next_out - (uint8_t *)buf);
    return 0;
}

int vk_member_drain(vk_member_src *s, vk_err *e)
{
    uint8_t *buf = vk_malloc(RAW_BUF_BYTES, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    size_t got;
    int r;
    do
        r = raw_read(s, buf, RAW_BUF_BYTES, &got, e);
    while (!r && got);
    free(buf);
    return r;
}

uint64_t vk_member_raw_pos(const vk_member_src *s) { return s->pos; }

void vk_member_close(vk_member_src *s)
{
    if (!s)
        return;
    if (s->z_ready)
        inflateEnd(&s->z);
    free(s->raw);
    free(s);
}

/* ---- the stream ---- */

/* A window over the decoded bytes: [start, end) of BUF is read, not yet used. */
struct win {
    vk_member_src *src;
    uint8_t *buf;
    size_t cap, start, end;
    uint64_t consumed; /* stream offset of buf[start] */
    bool eof;
};

/* Make N bytes available at w->buf + w->start (fewer only at the end). */
static int need(struct win *w, size_t n, vk_err *e)
{
    if (w->end - w->start >= n || w->eof)
        return 0;
    if (w->start) {
        memmove(w->buf, w->buf + w->start, w->end - w->start);
        w->end -= w->start;
        w->start = 0;
    }
    while (w->end < n && !w->eof) {
        size_t got;
        int r = vk_member_read(w->src, w->buf + w->end, w->cap - w->end, &got, e);
        if (r)
            return r;
        if (!got)
            w->eof = true;
        w->end += got;
    }
    return 0;
}

static void use(struct win *w, size_t n)
{
    w->start += n;
    w->consumed += n;
}

/* Skip N bytes (metadata records) without keeping them. */
static int skip(struct win *w, uint64_t n, vk_err *e)
{
    while (n) {
        if (w->start == w->end) {
            int r = need(w, (size_t)vk_min(n, w->cap), e);
            if (r)
                return r;
            if (w->start == w->end)
                return 1; /* the end came first */
        }
        size_t k = (size_t)vk_min(n, w->end - w->start);
        use(w, k);
        n -= k;
    }
    return 0;
}

void vk_stream_info_free(vk_stream_info *info)
{
    free(info->descriptor);
    info->descriptor = NULL;
}

int vk_stream_read_header(vk_member_src *s, const char *name, vk_stream_info *info, vk_err *e)
{
    memset(info, 0, sizeof *info);
    uint8_t hb[VK_SECTOR];
    size_t got = 0, k;
    int r = 0;
    while (!r && got < sizeof hb && !(r = vk_member_read(s, hb + got, sizeof hb - got, &k, e)) && k)
        got += k;
    if (r)
        return r;
    if (got < sizeof hb)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: shorter than a VMDK header", name);
    vk_sparse_header h;
    vk_sparse_header_decode(hb, &h);
    if (h.magic != VK_KDMV_MAGIC)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: not a sparse VMDK (no KDMV header)", name);
    if ((h.flags & (VK_FLAG_COMPRESSED | VK_FLAG_MARKERS)) != (VK_FLAG_COMPRESSED | VK_FLAG_MARKERS))
        return vk_fail(e, VMDKIT_EUNSUPPORTED,
                       "%s: not a streamOptimized VMDK (a sparse disk without compressed grains "
                       "and markers cannot be read in one pass; extract the package first)",
                       name);
    if (h.compress_algorithm != 1)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: compressAlgorithm %u is not deflate", name,
                       h.compress_algorithm);
    if (!vk_grain_sectors_ok(h.grain_sectors) || h.grain_sectors < 8)
        return vk_fail(e, VMDKIT_EUNSUPPORTED, "%s: grainSize %llu sectors is not supported", name,
                       (unsigned long long)h.grain_sectors);
    if (h.capacity_sectors == 0 || h.capacity_sectors > (UINT64_C(1) << 41))
        return vk_fail(e, VMDKIT_ELIMIT, "%s: capacity of %llu sectors is out of range", name,
                       (unsigned long long)h.capacity_sectors);
    if (h.overhead_sectors < 1 || h.overhead_sectors > (UINT64_C(1) << 24) ||
        (h.desc_size_sectors && (h.desc_offset_sectors < 1 ||
                                 h.desc_offset_sectors + h.desc_size_sectors > h.overhead_sectors)) ||
        h.desc_size_sectors * VK_SECTOR > MAX_DESC_BYTES)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: header: descriptor or overhead out of range", name);
    info->capacity_bytes = h.capacity_sectors * VK_SECTOR;
    info->data_offset = h.overhead_sectors * VK_SECTOR;
    info->gd_at_end = h.gd_offset_sectors == VK_GD_AT_END;
    info->grain_bytes = h.grain_sectors * VK_SECTOR;
    /* the rest of the overhead: padding, the embedded descriptor, padding;
     * only the descriptor (at most MAX_DESC_BYTES) is kept in memory, the
     * rest passes through a small buffer, so a crafted overHead costs
     * reading, not memory */
    uint64_t over = (h.overhead_sectors - 1) * VK_SECTOR;
    uint64_t at = h.desc_size_sectors ? (h.desc_offset_sectors - 1) * VK_SECTOR : over;
    size_t n = h.desc_size_sectors ? (size_t)(h.desc_size_sectors * VK_SECTOR) : 0;
    uint8_t scratch[4096];
    uint8_t *db = n ? vk_malloc(n, e) : NULL;
    if (n && !db)
        return VMDKIT_ENOMEM;
    uint64_t pos = 0;
    while (!r && pos < over) {
        bool in_desc = pos >= at && pos < at + n;
        uint8_t *dst = in_desc ? db + (pos - at) : scratch;
        uint64_t limit = in_desc ? at + n : pos < at ? at : over;
        size_t want = (size_t)vk_min(limit - pos, in_desc ? limit - pos : sizeof scratch);
        if ((r = vk_member_read(s, dst, want, &k, e)))
            break;
        if (!k)
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: ends inside the header's overhead", name);
        pos += k;
    }
    if (!r && n) {
        if (!(info->descriptor = vk_strndup((const char *)db, strnlen((const char *)db, n), e)))
            r = VMDKIT_ENOMEM;
    }
    free(db);
    return r;
}

int vk_stream_decode(vk_member_src *s, const char *name, vk_stream_info *info, vk_grain_sink sink,
                     void *opaque, int (*progress)(void *opaque, uint64_t raw_done),
                     void *progress_opaque, vk_err *e)
{
    size_t gb = (size_t)info->grain_bytes;
    size_t max_rec =
        (size_t)vk_div_round_up(12 + libdeflate_deflate_compress_bound(NULL, gb) + 64, VK_SECTOR) *
        VK_SECTOR;
    struct win w = {.src = s, .cap = RAW_BUF_BYTES + max_rec, .consumed = info->data_offset};
    uint8_t *grain = vk_malloc(gb, e);
    struct libdeflate_decompressor *dec = libdeflate_alloc_decompressor();
    w.buf = grain ? vk_malloc(w.cap, e) : NULL;
    int r = 0;
    if (!w.buf || !dec) {
        r = vk_fail(e, VMDKIT_ENOMEM, "%s: out of memory for decoding", name);
        goto out;
    }
    info->ascending = true;
    uint64_t last_lba = 0, next_progress = 0;
    bool any = false;
    uint64_t grain_sectors = gb / VK_SECTOR, cap_sectors = info->capacity_bytes / VK_SECTOR;
    for (;;) {
        if ((r = need(&w, VK_SECTOR, e)))
            break;
        size_t have = w.end - w.start;
        if (have == 0)
            break; /* ended without an end-of-stream marker */
        if (have < VK_SECTOR) {
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: stream ends inside a record at byte %llu", name,
                        (unsigned long long)w.consumed);
            break;
        }
        vk_marker m;
        vk_marker_decode(w.buf + w.start, &m);
        uint64_t at = w.consumed;
        if (m.size == 0) {
            if (m.type == VK_MARKER_EOS && m.val == 0) {
                info->eos = true;
                use(&w, VK_SECTOR);
                break;
            }
            if (m.type == VK_MARKER_FOOTER)
                info->footer = true;
            /* GT, GD, footer, VMware's progress markers and any other
             * metadata record: nothing a one-pass reader needs */
            if (m.val > MAX_META_SECTORS) {
                r = vk_fail(e, VMDKIT_EFORMAT,
                            "%s: byte %llu: stream marker (type %u) of %llu sectors is out of range",
                            name, (unsigned long long)at, m.type, (unsigned long long)m.val);
                break;
            }
            use(&w, VK_SECTOR);
            if ((r = skip(&w, m.val * VK_SECTOR, e)) > 0)
                r = vk_fail(e, VMDKIT_EFORMAT, "%s: stream ends inside a table at byte %llu", name,
                            (unsigned long long)at);
            if (r)
                break;
            continue;
        }
        /* a grain: LBA, compressed size, deflate data, padding to a sector */
        size_t rec = (size_t)vk_div_round_up(12 + (uint64_t)m.size, VK_SECTOR) * VK_SECTOR;
        if (m.size > max_rec - 12 || m.val % grain_sectors || m.val >= cap_sectors) {
            r = vk_fail(e, VMDKIT_EFORMAT,
                        "%s: byte %llu: grain record (LBA %llu, %u bytes) is out of range", name,
                        (unsigned long long)at, (unsigned long long)m.val, m.size);
            break;
        }
        if ((r = need(&w, rec, e)))
            break;
        if (w.end - w.start < 12 + (size_t)m.size) {
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: stream ends inside the grain at byte %llu", name,
                        (unsigned long long)at);
            break;
        }
        if (any && m.val <= last_lba)
            info->ascending = false;
        any = true;
        last_lba = m.val;
        size_t in_disk = (size_t)vk_min(gb, (cap_sectors - m.val) * VK_SECTOR), out_n = 0;
        const uint8_t *cdata = w.buf + w.start + 12;
        enum libdeflate_result res = libdeflate_zlib_decompress(dec, cdata, m.size, grain, gb, &out_n);
        if (res != LIBDEFLATE_SUCCESS && res != LIBDEFLATE_SHORT_OUTPUT)
            res = libdeflate_deflate_decompress(dec, cdata, m.size, grain, gb, &out_n);
        if ((res != LIBDEFLATE_SUCCESS && res != LIBDEFLATE_SHORT_OUTPUT) || out_n < in_disk) {
            r = vk_fail(e, VMDKIT_EFORMAT,
                        "%s: grain at LBA %llu (byte %llu): compressed data is corrupt", name,
                        (unsigned long long)m.val, (unsigned long long)at);
            break;
        }
        info->grains++;
        if (sink && !vk_is_zero(grain, in_disk) &&
            (r = sink(opaque, m.val * VK_SECTOR, grain, in_disk, e)))
            break;
        use(&w, (size_t)vk_min(rec, w.end - w.start));
        uint64_t raw = vk_member_raw_pos(s);
        if (progress && raw >= next_progress) {
            next_progress = raw + (8u << 20);
            if (progress(progress_opaque, raw)) {
                r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
                break;
            }
        }
    }
out:
    libdeflate_free_decompressor(dec);
    free(grain);
    free(w.buf);
    return r;
}
