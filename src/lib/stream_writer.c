/* stream_writer.c - sequential streamOptimized writer.
 *
 * The calling thread copies each grain into a slot of a small ring; worker
 * threads (each with its own compressor) turn slots into finished grain
 * records; the calling thread writes finished slots strictly in submission
 * order through one output buffer.  Grain tables are built as records are
 * written, so a GT is emitted right after the last grain of its range.
 * Memory is bounded by the ring, the output buffer, one GT and the GD.
 */
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "sparse_header.h"
#include "stream_writer.h"

#define GRAIN_SECTORS ((uint64_t)VK_DEFAULT_GRAIN_SECTORS)
#define GRAIN_BYTES ((size_t)(GRAIN_SECTORS * VK_SECTOR))
#define GTES_PER_GT VK_DEFAULT_GTES_PER_GT
#define GRAIN_PREFIX_BYTES 12u /* uint64 LBA + uint32 compressed size */
/* libdeflate level 5: output within 2% of zlib's default level 6 (what
 * qemu-img uses) on text and binaries, in far less time. */
#define DEFAULT_LEVEL 5
#define MAX_THREADS 64
#define SLOTS_PER_THREAD 4
#define OUT_BUF_BYTES ((size_t)2 << 20)
#define MAX_DESC_SECTORS 20480u      /* what readers accept for an embedded descriptor */
#define MAX_GDES (UINT64_C(1) << 25) /* a 128 MiB GD (1 PiB disk), QEMU's limit too */

/* One grain on its way through compression.  A slot between `written` and
 * `submitted` belongs to the workers until `done` is set (under the lock). */
struct slot {
    uint64_t grain;
    size_t in_len;  /* bytes of the grain inside the disk */
    size_t rec_len; /* bytes of the padded record in OUT; 0 = compression failed */
    bool done;
    uint8_t *in;
    uint8_t *out;
};

/* A compressor at the chosen level and one that only stores (level 0). */
struct codec {
    struct libdeflate_compressor *deflate;
    struct libdeflate_compressor *store;
};

struct worker {
    vk_stream_writer *w;
    struct codec codec;
    pthread_t tid;
    bool started;
};

struct vk_stream_writer {
    char *path;
    int fd;
    bool created; /* the file is ours to remove on failure */
    vk_sparse_header hdr;
    uint64_t num_grains;
    uint64_t next_grain; /* lowest grain index put() still accepts */

    /* compression: either inline (one compressor) or a worker pool */
    struct codec inline_codec;
    struct worker *workers;
    int num_workers;
    bool sync_ready; /* mutex and condition variables initialised */
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* caller -> workers: a slot was queued / stop */
    pthread_cond_t done_cv; /* workers -> caller: a slot is done */
    bool stop;
    struct slot *slots;
    size_t num_slots;
    size_t out_cap;     /* bytes of each slot's OUT buffer */
    uint64_t submitted; /* ring counters: submitted >= claimed >= written */
    uint64_t claimed;
    uint64_t written;

    /* output: everything is appended sequentially through BUF */
    uint8_t *buf;
    size_t buf_len;
    uint64_t buf_off; /* file offset of buf[0] */

    /* tables */
    uint32_t *gd;
    uint64_t num_gdes;
    uint32_t gt[GTES_PER_GT];
    uint64_t gt_range; /* GD index the current GT belongs to */
    bool gt_used;

    int failed; /* sticky error of an earlier put() */
    vk_err err;

    vk_stream_target *target; /* a member of a larger file, or NULL */
    uint64_t base;            /* file offset of the stream's first byte */
    uint64_t grains_stored;
    uint64_t populated_bytes;
};

/* ------------------------------------------------------------------ */
/* Output                                                              */

static uint64_t cur_sector(const vk_stream_writer *w) { return (w->buf_off + w->buf_len) / VK_SECTOR; }

static int flush_buf(vk_stream_writer *w, vk_err *e)
{
    if (!w->buf_len)
        return 0;
    int r = vk_pwrite_full(w->fd, w->buf, w->buf_len, w->base + w->buf_off, w->path, e);
    if (r)
        return r;
    if (w->target && w->target->tap)
        w->target->tap(w->target->tap_opaque, w->buf, w->buf_len);
    w->buf_off += w->buf_len;
    w->buf_len = 0;
    return 0;
}

/* Append LEN bytes of DATA, or zeros when DATA is NULL. */
static int append(vk_stream_writer *w, const void *data, size_t len, vk_err *e)
{
    const uint8_t *p = data;
    while (len) {
        if (w->buf_len == OUT_BUF_BYTES) {
            int r = flush_buf(w, e);
            if (r)
                return r;
        }
        size_t n = vk_min(len, OUT_BUF_BYTES - w->buf_len);
        if (p) {
            memcpy(w->buf + w->buf_len, p, n);
            p += n;
        } else {
            memset(w->buf + w->buf_len, 0, n);
        }
        w->buf_len += n;
        len -= n;
    }
    return 0;
}

static int append_marker(vk_stream_writer *w, uint64_t sectors, uint32_t type, vk_err *e)
{
    uint8_t m[VK_SECTOR];
    vk_marker_encode_meta(m, sectors, type);
    return append(w, m, sizeof m, e);
}

/* GTEs and GDEs are uint32 sector numbers. */
static int check_sector_fits(const vk_stream_writer *w, uint64_t sector, vk_err *e)
{
    if (sector > UINT32_MAX)
        return vk_fail(e, VMDKIT_ELIMIT,
                       "%s: compressed data: the stream outgrows the 2 TiB a sparse extent can address",
                       w->path);
    return 0;
}

/* Emit the current GT (GT marker + table) unless it is all zero. */
static int flush_gt(vk_stream_writer *w, vk_err *e)
{
    if (!w->gt_used)
        return 0;
    uint64_t gt_sectors = vk_gt_sectors(GTES_PER_GT);
    uint64_t table = cur_sector(w) + 1;
    int r = check_sector_fits(w, table, e);
    if (r)
        return r;
    uint8_t enc[GTES_PER_GT * 4];
    for (unsigned i = 0; i < GTES_PER_GT; i++)
        vk_put32(enc + 4 * i, w->gt[i]);
    r = append_marker(w, gt_sectors, VK_MARKER_GT, e);
    if (!r)
        r = append(w, enc, sizeof enc, e);
    if (r)
        return r;
    w->gd[w->gt_range] = (uint32_t)table;
    memset(w->gt, 0, sizeof w->gt);
    w->gt_used = false;
    return 0;
}

/* Write one compressed grain record, closing the previous GT first when the
 * grain starts a later GT range. */
static int emit_grain(vk_stream_writer *w, const struct slot *s, vk_err *e)
{
    if (!s->rec_len)
        return vk_fail(e, VMDKIT_EIO, "%s: grain %llu: compression failed", w->path,
                       (unsigned long long)s->grain);
    uint64_t range = s->grain / GTES_PER_GT;
    int r;
    if (w->gt_used && range != w->gt_range) {
        r = flush_gt(w, e);
        if (r)
            return r;
    }
    w->gt_range = range;
    uint64_t sector = cur_sector(w);
    r = check_sector_fits(w, sector, e);
    if (r)
        return r;
    w->gt[s->grain % GTES_PER_GT] = (uint32_t)sector;
    w->gt_used = true;
    w->grains_stored++;
    w->populated_bytes += s->in_len;
    return append(w, s->out, s->rec_len, e);
}

/* ------------------------------------------------------------------ */
/* Compression                                                         */

static int codec_init(struct codec *c, int level)
{
    c->deflate = libdeflate_alloc_compressor(level);
    c->store = libdeflate_alloc_compressor(0);
    return c->deflate && c->store ? 0 : -1;
}

static void codec_free(struct codec *c)
{
    libdeflate_free_compressor(c->deflate);
    libdeflate_free_compressor(c->store);
}

/*
 * Already-compressed or encrypted grains cost deflate as much time as text
 * but gain nothing: it ends up emitting stored blocks for them.  Spot them
 * cheaply so they can be stored directly: the byte histogram must be nearly
 * flat (Renyi entropy of at least 7.95 bits per byte, which bounds what
 * Huffman coding could save to under 1%) and a sampled search must find
 * almost no repeated 8-byte strings (which LZ77 matches would exploit).
 */
static bool looks_incompressible(const uint8_t *p, size_t n)
{
    _Static_assert(GRAIN_BYTES <= 65536, "positions must fit 16 bits");
    if (n < 4096)
        return false;
    uint32_t hist[2][256] = {{0}};
    size_t i;
    for (i = 0; i + 2 <= n; i += 2) {
        hist[0][p[i]]++;
        hist[1][p[i + 1]]++;
    }
    if (i < n)
        hist[0][p[i]]++;
    uint64_t sumsq = 0;
    for (unsigned b = 0; b < 256; b++) {
        uint64_t c = (uint64_t)hist[0][b] + hist[1][b];
        sumsq += c * c;
    }
    /* sum(p_b^2) <= 2^-7.95 ~ 1/247 */
    if (sumsq * 247 > (uint64_t)n * n)
        return false;
    /* remember where every 8-byte string was last seen, look up at 4-byte
     * steps: a repeat of 11+ bytes is found unless its slot was reused */
    enum { HASH_BITS = 15 };
    uint16_t seen[1u << HASH_BITS]; /* positions: grains are at most 64 KiB */
    memset(seen, 0, sizeof seen);
    size_t hits = 0, max_hits = n / 2048;
    for (i = 0; i + 8 <= n; i++) {
        uint64_t v, u;
        memcpy(&v, p + i, 8);
        uint32_t h = (uint32_t)((v * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - HASH_BITS));
        if (i % 4 == 0) {
            memcpy(&u, p + seen[h], 8);
            if (u == v && ++hits > max_hits)
                return false;
        }
        seen[h] = (uint16_t)i;
    }
    return true;
}

/* Turn the slot's input into a grain record: prefix, zlib stream, zero
 * padding to a whole sector. */
static void compress_slot(struct codec *c, size_t out_cap, struct slot *s)
{
    struct libdeflate_compressor *comp = looks_incompressible(s->in, s->in_len) ? c->store : c->deflate;
    size_t n = libdeflate_zlib_compress(comp, s->in, s->in_len, s->out + GRAIN_PREFIX_BYTES,
                                        out_cap - GRAIN_PREFIX_BYTES);
    if (n == 0 || n > UINT32_MAX) {
        s->rec_len = 0;
        return;
    }
    size_t rec = GRAIN_PREFIX_BYTES + n;
    size_t padded = (size_t)vk_div_round_up(rec, VK_SECTOR) * VK_SECTOR;
    vk_put64(s->out, s->grain * GRAIN_SECTORS);
    vk_put32(s->out + 8, (uint32_t)n);
    memset(s->out + rec, 0, padded - rec);
    s->rec_len = padded;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    vk_stream_writer *w = wk->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->claimed == w->submitted)
            pthread_cond_wait(&w->work_cv, &w->mu);
        if (w->stop)
            break;
        struct slot *s = &w->slots[w->claimed++ % w->num_slots];
        pthread_mutex_unlock(&w->mu);
        compress_slot(&wk->codec, w->out_cap, s);
        pthread_mutex_lock(&w->mu);
        s->done = true;
        pthread_cond_signal(&w->done_cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Write finished slots in order.  While more than MAX_PENDING slots are in
 * flight, wait for the oldest one; otherwise stop at the first unfinished. */
static int drain(vk_stream_writer *w, uint64_t max_pending, vk_err *e)
{
    while (w->written != w->submitted) {
        struct slot *s = &w->slots[w->written % w->num_slots];
        pthread_mutex_lock(&w->mu);
        while (!s->done && w->submitted - w->written > max_pending) {
            int rc = pthread_cond_wait(&w->done_cv, &w->mu);
            if (rc) {
                pthread_mutex_unlock(&w->mu);
                return vk_fail_errno(e, rc, "%s: wait for compression", w->path);
            }
        }
        bool ready = s->done;
        pthread_mutex_unlock(&w->mu);
        if (!ready)
            return 0;
        int r = emit_grain(w, s, e);
        w->written++;
        if (r)
            return r;
    }
    return 0;
}

static void stop_workers(vk_stream_writer *w)
{
    if (!w->sync_ready)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->num_workers; i++) {
        if (w->workers[i].started) {
            pthread_join(w->workers[i].tid, NULL);
            w->workers[i].started = false;
        }
    }
}

static int start_workers(vk_stream_writer *w, int threads, int level, vk_err *e)
{
    int rc = pthread_mutex_init(&w->mu, NULL);
    if (rc)
        return vk_fail_errno(e, rc, "%s: create lock", w->path);
    if ((rc = pthread_cond_init(&w->work_cv, NULL)) != 0) {
        pthread_mutex_destroy(&w->mu);
        return vk_fail_errno(e, rc, "%s: create condition variable", w->path);
    }
    if ((rc = pthread_cond_init(&w->done_cv, NULL)) != 0) {
        pthread_cond_destroy(&w->work_cv);
        pthread_mutex_destroy(&w->mu);
        return vk_fail_errno(e, rc, "%s: create condition variable", w->path);
    }
    w->sync_ready = true;
    w->workers = vk_calloc((size_t)threads, sizeof *w->workers, e);
    if (!w->workers)
        return VMDKIT_ENOMEM;
    w->num_workers = threads;
    for (int i = 0; i < threads; i++) {
        struct worker *wk = &w->workers[i];
        wk->w = w;
        if (codec_init(&wk->codec, level))
            return vk_fail(e, VMDKIT_ENOMEM, "%s: out of memory for a compressor", w->path);
        rc = pthread_create(&wk->tid, NULL, worker_main, wk);
        if (rc)
            return vk_fail_errno(e, rc, "%s: start compression thread", w->path);
        wk->started = true;
    }
    return 0;
}

static int alloc_slots(vk_stream_writer *w, size_t n, vk_err *e)
{
    w->slots = vk_calloc(n, sizeof *w->slots, e);
    if (!w->slots)
        return VMDKIT_ENOMEM;
    w->num_slots = n;
    for (size_t i = 0; i < n; i++) {
        w->slots[i].in = vk_malloc(GRAIN_BYTES, e);
        w->slots[i].out = vk_malloc(w->out_cap, e);
        if (!w->slots[i].in || !w->slots[i].out)
            return VMDKIT_ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

static void destroy(vk_stream_writer *w, bool remove_file)
{
    stop_workers(w);
    for (int i = 0; i < w->num_workers; i++)
        codec_free(&w->workers[i].codec);
    free(w->workers);
    if (w->sync_ready) {
        pthread_cond_destroy(&w->done_cv);
        pthread_cond_destroy(&w->work_cv);
        pthread_mutex_destroy(&w->mu);
    }
    codec_free(&w->inline_codec);
    if (w->fd >= 0 && !w->target)
        close(w->fd);
    if (remove_file && w->created)
        unlink(w->path);
    for (size_t i = 0; w->slots && i < w->num_slots; i++) {
        free(w->slots[i].in);
        free(w->slots[i].out);
    }
    free(w->slots);
    free(w->buf);
    free(w->gd);
    free(w->path);
    free(w);
}

static void fill_header(vk_sparse_header *h, uint64_t capacity_sectors, uint64_t desc_sectors)
{
    memset(h, 0, sizeof *h);
    h->magic = VK_KDMV_MAGIC;
    h->version = 3;
    h->flags = VK_FLAG_NEWLINE_CHECK | VK_FLAG_COMPRESSED | VK_FLAG_MARKERS;
    h->capacity_sectors = capacity_sectors;
    h->grain_sectors = GRAIN_SECTORS;
    h->desc_offset_sectors = 1;
    h->desc_size_sectors = desc_sectors;
    h->gtes_per_gt = GTES_PER_GT;
    h->rgd_offset_sectors = 0;
    h->gd_offset_sectors = VK_GD_AT_END;
    /* header + descriptor, rounded to a grain like VMware's streams */
    h->overhead_sectors = vk_div_round_up(1 + desc_sectors, GRAIN_SECTORS) * GRAIN_SECTORS;
    h->unclean_shutdown = 0;
    memcpy(h->newline_chars, "\n \r\n", 4);
    h->compress_algorithm = 1;
}

/* Header, descriptor and the padding up to overHead. */
static int write_prologue(vk_stream_writer *w, const char *desc, size_t desc_len, vk_err *e)
{
    uint8_t hb[VK_SECTOR];
    vk_sparse_header_encode(&w->hdr, hb);
    int r = append(w, hb, sizeof hb, e);
    if (!r)
        r = append(w, desc, desc_len, e);
    if (!r)
        r = append(w, NULL, w->hdr.overhead_sectors * VK_SECTOR - VK_SECTOR - desc_len, e);
    return r;
}

static int open_writer(vk_stream_target *t, const char *path, uint64_t capacity_sectors,
                       const char *descriptor, int threads, int level, vk_stream_writer **out, vk_err *e)
{
    *out = NULL;
    if (capacity_sectors == 0)
        return vk_fail(e, VMDKIT_EINVAL, "%s: capacity: a disk of 0 sectors cannot be stored", path);
    uint64_t num_gdes = vk_div_round_up(capacity_sectors, GRAIN_SECTORS * GTES_PER_GT);
    if (num_gdes > MAX_GDES)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: capacity: %llu sectors is beyond what a stream can hold",
                       path, (unsigned long long)capacity_sectors);
    if (level < 0 || level > 12)
        return vk_fail(e, VMDKIT_EINVAL, "%s: compression level: %d is not in 1..12", path, level);
    if (threads < 0)
        return vk_fail(e, VMDKIT_EINVAL, "%s: threads: %d is negative", path, threads);
    if (!descriptor)
        descriptor = "";
    size_t desc_len = strlen(descriptor);
    uint64_t desc_sectors = vk_max(1, vk_div_round_up(desc_len, VK_SECTOR));
    if (desc_sectors > MAX_DESC_SECTORS)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: descriptor: %zu bytes is too long to embed", path,
                       desc_len);
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)vk_min((uint64_t)n, MAX_THREADS) : 1;
    }
    threads = (int)vk_min((uint64_t)threads, MAX_THREADS);
    if (level == 0)
        level = DEFAULT_LEVEL;

    vk_stream_writer *w = vk_calloc(1, sizeof *w, e);
    if (!w)
        return VMDKIT_ENOMEM;
    w->fd = -1;
    fill_header(&w->hdr, capacity_sectors, desc_sectors);
    w->num_grains = vk_div_round_up(capacity_sectors, GRAIN_SECTORS);
    w->num_gdes = num_gdes;
    w->out_cap = (size_t)vk_div_round_up(
                     GRAIN_PREFIX_BYTES + libdeflate_zlib_compress_bound(NULL, GRAIN_BYTES), VK_SECTOR) *
                 VK_SECTOR;
    int r = VMDKIT_ENOMEM;
    if (!(w->path = vk_strdup(path, e)) || !(w->gd = vk_calloc(num_gdes, 4, e)) ||
        !(w->buf = vk_aligned_alloc(OUT_BUF_BYTES, e)))
        goto fail;

    if (t) {
        w->target = t;
        w->fd = t->fd;
        w->base = t->base;
    } else {
        w->fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (w->fd < 0) {
            r = vk_fail_errno(e, errno, "%s: create", path);
            goto fail;
        }
        w->created = true;
    }
    if (threads == 1) {
        if (codec_init(&w->inline_codec, level)) {
            r = vk_fail(e, VMDKIT_ENOMEM, "%s: out of memory for a compressor", path);
            goto fail;
        }
        r = alloc_slots(w, 1, e);
    } else {
        r = alloc_slots(w, (size_t)threads * SLOTS_PER_THREAD, e);
        if (!r)
            r = start_workers(w, threads, level, e);
    }
    if (!r)
        r = write_prologue(w, descriptor, desc_len, e);
    if (r)
        goto fail;
    *out = w;
    return 0;
fail:
    destroy(w, true);
    return r;
}

int vk_stream_writer_open(const char *path, uint64_t capacity_sectors, const char *descriptor,
                          int threads, int level, vk_stream_writer **out, vk_err *e)
{
    return open_writer(NULL, path, capacity_sectors, descriptor, threads, level, out, e);
}

int vk_stream_writer_open_target(vk_stream_target *t, const char *name, uint64_t capacity_sectors,
                                 const char *descriptor, int threads, int level, vk_stream_writer **out,
                                 vk_err *e)
{
    return open_writer(t, name, capacity_sectors, descriptor, threads, level, out, e);
}

uint64_t vk_stream_writer_grain_sectors(const vk_stream_writer *w)
{
    (void)w;
    return GRAIN_SECTORS;
}

static int report(vk_stream_writer *w, int r, vk_err *e)
{
    if (r && e)
        *e = w->err;
    return r;
}

/* Copy a grain into a free slot and get it compressed. */
static int queue_grain(vk_stream_writer *w, uint64_t grain, const void *data, size_t len, size_t in_len,
                       vk_err *e)
{
    struct slot *s;
    if (!w->num_workers) {
        s = &w->slots[0];
    } else {
        int r = drain(w, w->num_slots - 1, e);
        if (r)
            return r;
        s = &w->slots[w->submitted % w->num_slots];
    }
    s->grain = grain;
    s->in_len = in_len;
    memcpy(s->in, data, len);
    memset(s->in + len, 0, in_len - len);
    if (!w->num_workers) {
        compress_slot(&w->inline_codec, w->out_cap, s);
        return emit_grain(w, s, e);
    }
    pthread_mutex_lock(&w->mu);
    s->done = false;
    w->submitted++;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int vk_stream_writer_put(vk_stream_writer *w, uint64_t grain_index, const void *data, size_t len,
                         vk_err *e)
{
    if (w->failed)
        return report(w, w->failed, e);
    if (grain_index < w->next_grain || grain_index >= w->num_grains)
        return vk_fail(e, VMDKIT_EINVAL,
                       "%s: grain %llu: out of order or beyond the disk (next %llu, %llu grains)",
                       w->path, (unsigned long long)grain_index, (unsigned long long)w->next_grain,
                       (unsigned long long)w->num_grains);
    /* the final grain of a disk that is not a grain multiple is shorter */
    uint64_t left_sectors = w->hdr.capacity_sectors - grain_index * GRAIN_SECTORS;
    size_t in_len = (size_t)(vk_min(left_sectors, GRAIN_SECTORS) * VK_SECTOR);
    if (len > in_len || (len && !data))
        return vk_fail(e, VMDKIT_EINVAL, "%s: grain %llu: %zu bytes do not fit its %zu bytes", w->path,
                       (unsigned long long)grain_index, len, in_len);
    int r = queue_grain(w, grain_index, data, len, in_len, &w->err);
    if (r)
        w->failed = r;
    w->next_grain = grain_index + 1;
    return report(w, r, e);
}

/* GD marker + GD, footer marker + footer, EOS. */
static int write_epilogue(vk_stream_writer *w, vk_err *e)
{
    uint64_t gd_sectors = vk_gd_sectors(w->num_gdes);
    uint64_t gd_offset = cur_sector(w) + 1;
    int r = append_marker(w, gd_sectors, VK_MARKER_GD, e);
    uint8_t sec[VK_SECTOR];
    for (uint64_t i = 0; !r && i < w->num_gdes; i += VK_SECTOR / 4) {
        memset(sec, 0, sizeof sec);
        for (uint64_t j = 0; j < VK_SECTOR / 4 && i + j < w->num_gdes; j++)
            vk_put32(sec + 4 * j, w->gd[i + j]);
        r = append(w, sec, sizeof sec, e);
    }
    if (r)
        return r;
    vk_sparse_header footer = w->hdr;
    footer.gd_offset_sectors = gd_offset;
    vk_sparse_header_encode(&footer, sec);
    r = append_marker(w, 1, VK_MARKER_FOOTER, e);
    if (!r)
        r = append(w, sec, sizeof sec, e);
    if (!r)
        r = append(w, NULL, VK_SECTOR, e); /* EOS: an all-zero marker */
    return r;
}

int vk_stream_writer_finish(vk_stream_writer *w, vk_err *e)
{
    int r = w->failed;
    if (!r && w->num_workers)
        r = drain(w, 0, &w->err);
    if (!r)
        r = flush_gt(w, &w->err);
    if (!r)
        r = write_epilogue(w, &w->err);
    if (!r)
        r = flush_buf(w, &w->err);
    if (!r && w->target) {
        /* a member of a larger file: its owner makes the whole durable */
        w->target->bytes = w->buf_off;
        w->target->grains = w->grains_stored;
        w->target->populated_bytes = w->populated_bytes;
        destroy(w, false);
        return 0;
    }
    if (!r)
        r = vk_fdatasync(w->fd, w->path, &w->err);
    if (!r) {
        int fd = w->fd;
        w->fd = -1;
        if (close(fd) != 0)
            r = vk_fail_errno(&w->err, errno, "%s: close", w->path);
    }
    report(w, r, e);
    destroy(w, r != 0);
    return r;
}

void vk_stream_writer_abort(vk_stream_writer *w)
{
    if (w)
        destroy(w, true);
}
