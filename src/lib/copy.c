/* copy.c - the block-copy engine under convert and compare.
 *
 * The source is walked run by run with its allocation status, so holes,
 * zeroed grains and unallocated ranges are never read; data runs are read in
 * large chunks and cut into grain-sized pieces, and all-zero pieces are
 * never stored.  Output goes to one of three sinks: a raw file (holes for
 * zeros), a VMDK opened for writing (sparse or flat), or the sequential
 * streamOptimized writer (parallel compression).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "create.h"
#include "link.h"
#include "stream_writer.h"

#define CHUNK_BYTES (4u << 20)
#define PIECE_BYTES (64u << 10) /* zero detection granularity = default grain */
#define WRITEBACK_BYTES (32u << 20)

typedef struct sink sink;
struct sink {
    /* store LEN bytes (non-zero data) at byte OFF; called in ascending order */
    int (*put)(sink *s, const uint8_t *buf, size_t len, uint64_t off, vk_err *e);
    int (*finish)(sink *s, vk_err *e);
    void (*abort)(sink *s);
    uint64_t unkicked;     /* bytes stored since writeback was last started */
    /* raw */
    int fd;
    const char *path;
    uint64_t size;
    /* vmdk */
    vmdkit_disk *disk;
    char **paths;          /* every file of the new disk, removed on failure */
    size_t n_paths;
    /* stream */
    vk_stream_writer *sw;
    uint64_t grain_bytes;
};

/* Have the kernel start writing FD's dirty pages now, without waiting: the
 * disk then works while the copy goes on, and the final flush finds little
 * left.  Only a hint (the flush reports errors); it makes data durable
 * sooner, never metadata before data, so it keeps every ordering. */
static void start_writeback(int fd)
{
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* ---- raw sink ---- */

static int raw_put(sink *s, const uint8_t *buf, size_t len, uint64_t off, vk_err *e)
{
    int r = vk_pwrite_full(s->fd, buf, len, off, s->path, e);
    s->unkicked += len;
    if (!r && s->unkicked >= WRITEBACK_BYTES) {
        start_writeback(s->fd);
        s->unkicked = 0;
    }
    return r;
}

static int raw_finish(sink *s, vk_err *e)
{
    int r = vk_fdatasync(s->fd, s->path, e);
    if (close(s->fd) != 0 && !r)
        r = vk_fail_errno(e, errno, "%s: close", s->path);
    s->fd = -1;
    return r;
}

static void raw_abort(sink *s)
{
    if (s->fd >= 0)
        close(s->fd);
    unlink(s->path);
}

static int raw_sink_open(sink *s, const char *path, uint64_t size, vk_err *e)
{
    s->path = path;
    s->size = size;
    s->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        if (errno == EEXIST)
            return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", path);
        return vk_fail_errno(e, errno, "%s: create", path);
    }
    /* size first: every range not written stays a hole that reads as zeros */
    if (ftruncate(s->fd, (off_t)size) != 0) {
        int r = vk_fail_errno(e, errno, "%s: set size", path);
        raw_abort(s);
        return r;
    }
    s->put = raw_put;
    s->finish = raw_finish;
    s->abort = raw_abort;
    return 0;
}

/* ---- vmdk sink (any writable createType) ---- */

static int vmdk_put(sink *s, const uint8_t *buf, size_t len, uint64_t off, vk_err *e)
{
    int r = vmdkit_pwrite(s->disk, buf, len, off);
    if (r)
        *e = *vmdkit_last_error(s->disk);
    return r;
}

static int vmdk_finish(sink *s, vk_err *e)
{
    int r = vmdkit_close(s->disk, e);
    s->disk = NULL;
    return r;
}

static void free_paths(sink *s)
{
    for (size_t i = 0; i < s->n_paths; i++)
        free(s->paths[i]);
    free(s->paths);
    s->paths = NULL;
    s->n_paths = 0;
}

/* Remove every file of the half-written disk (also when closing it, the
 * last step of finish, failed). */
static void vmdk_abort(sink *s)
{
    if (s->disk)
        vmdkit_close(s->disk, NULL);
    s->disk = NULL;
    for (size_t i = 0; i < s->n_paths; i++)
        if (s->paths[i])
            unlink(s->paths[i]);
    free_paths(s);
}

/* Remember the names of the new disk's files while they are known. */
static int remember_paths(sink *s, vk_err *e)
{
    vk_link *l = s->disk->top;
    s->paths = vk_calloc(l->n_ext + 1, sizeof *s->paths, e);
    if (!s->paths)
        return VMDKIT_ENOMEM;
    s->n_paths = l->n_ext + 1;
    if (!(s->paths[0] = vk_strdup(l->path, e)))
        return VMDKIT_ENOMEM;
    for (size_t i = 0; i < l->n_ext; i++)
        if (l->ext[i].path && !(s->paths[i + 1] = vk_strdup(l->ext[i].path, e)))
            return VMDKIT_ENOMEM;
    return 0;
}

static int vmdk_sink_open(sink *s, const char *path, uint64_t size, const vmdkit_convert_opts *o,
                          vk_err *e)
{
    vmdkit_create_opts co = o->vmdk;
    co.size_bytes = size;
    co.parent = NULL;
    int r = vmdkit_create(path, &co, e);
    if (r)
        return r;
    r = vmdkit_open(path, VMDKIT_OPEN_RDWR, &s->disk, e);
    if (r)
        return r;
    s->put = vmdk_put;
    s->finish = vmdk_finish;
    s->abort = vmdk_abort;
    if ((r = remember_paths(s, e)))
        vmdk_abort(s);
    return r;
}

/* ---- stream sink ---- */

static int stream_put(sink *s, const uint8_t *buf, size_t len, uint64_t off, vk_err *e)
{
    /* pieces are grain aligned and at most a grain long */
    return vk_stream_writer_put(s->sw, off / s->grain_bytes, buf, len, e);
}

static int stream_finish(sink *s, vk_err *e)
{
    int r = vk_stream_writer_finish(s->sw, e);
    s->sw = NULL;
    return r;
}

static void stream_abort(sink *s)
{
    if (s->sw)
        vk_stream_writer_abort(s->sw);
    s->sw = NULL;
}

static int stream_sink_open(sink *s, const char *path, uint64_t size, const vmdkit_convert_opts *o,
                            vk_err *e)
{
    vmdkit_create_opts co = o->vmdk;
    co.size_bytes = size;
    uint64_t cap;
    int r = vk_create_check_opts(path, &co, &cap, e);
    if (r)
        return r;
    char *text;
    if ((r = vk_create_stream_descriptor(path, cap, co.adapter ? co.adapter : "ide", co.hw_version,
                                         &text, e)))
        return r;
    r = vk_stream_writer_open(path, cap, text, o->threads, 0, &s->sw, e);
    free(text);
    if (r)
        return r;
    s->grain_bytes = vk_stream_writer_grain_sectors(s->sw) * VK_SECTOR;
    s->put = stream_put;
    s->finish = stream_finish;
    s->abort = stream_abort;
    return 0;
}

/* ---- the copy loop ---- */

/* Store the non-zero pieces of BUF (LEN bytes at OFF); contiguous non-zero
 * pieces go out in one call, except for the stream sink, which takes one
 * grain at a time. */
static int put_nonzero(sink *s, const uint8_t *buf, size_t len, uint64_t off, bool per_piece,
                       vk_err *e)
{
    size_t i = 0;
    while (i < len) {
        /* pieces follow the virtual grain grid */
        size_t plen = (size_t)vk_min(len - i, PIECE_BYTES - (off + i) % PIECE_BYTES);
        if (vk_is_zero(buf + i, plen)) {
            i += plen;
            continue;
        }
        size_t start = i;
        i += plen;
        while (!per_piece && i < len) {
            size_t n = (size_t)vk_min(len - i, PIECE_BYTES);
            if (vk_is_zero(buf + i, n))
                break;
            i += n;
        }
        int r = s->put(s, buf + start, i - start, off + start, e);
        if (r)
            return r;
    }
    return 0;
}

static int copy_all(vmdkit_disk *src, sink *s, bool per_piece, const vmdkit_convert_opts *o,
                    vk_err *e)
{
    uint64_t size = vmdkit_size(src);
    uint8_t *buf = vk_aligned_alloc(CHUNK_BYTES, e);
    if (!buf)
        return VMDKIT_ENOMEM;
    int r = 0;
    uint64_t off = 0;
    while (off < size) {
        vmdkit_block_status st;
        if ((r = vmdkit_block_status_at(src, off, size - off, &st))) {
            *e = *vmdkit_last_error(src);
            break;
        }
        if (st.alloc != VMDKIT_ALLOC_DATA) {
            off += st.length;
        } else {
            uint64_t end = off + st.length;
            while (off < end) {
                /* chunks end on the grain grid so pieces stay whole */
                size_t n = (size_t)vk_min(end - off, CHUNK_BYTES - off % PIECE_BYTES);
                if ((r = vmdkit_pread(src, buf, n, off))) {
                    *e = *vmdkit_last_error(src);
                    break;
                }
                if ((r = put_nonzero(s, buf, n, off, per_piece, e)))
                    break;
                off += n;
                if (o && o->progress && o->progress(o->progress_opaque, off, size)) {
                    r = vk_fail(e, VMDKIT_EINVAL, "cancelled");
                    break;
                }
            }
            if (r)
                break;
        }
        if (o && o->progress && o->progress(o->progress_opaque, off, size)) {
            r = vk_fail(e, VMDKIT_EINVAL, "cancelled");
            break;
        }
    }
    free(buf);
    return r;
}

int vmdkit_convert(vmdkit_disk *src, const char *dst, const vmdkit_convert_opts *o, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    e->code = 0;
    e->msg[0] = 0;
    sink s = { .fd = -1 };
    uint64_t size = vmdkit_size(src);
    int r;
    bool stream = !o->to_raw && o->vmdk.type == VMDKIT_STREAM_OPTIMIZED;
    if (o->to_raw)
        r = raw_sink_open(&s, dst, size, e);
    else if (stream)
        r = stream_sink_open(&s, dst, size, o, e);
    else
        r = vmdk_sink_open(&s, dst, size, o, e);
    if (r)
        return r;
    r = copy_all(src, &s, stream, o, e);
    if (!r)
        r = s.finish(&s, e);
    if (r)
        s.abort(&s);
    free_paths(&s);
    return r;
}

/* ---- compare ---- */

static bool zero_status(const vmdkit_block_status *st) { return st->alloc != VMDKIT_ALLOC_DATA; }

/* Offset of the first non-zero byte of D in [off, end), or END. */
static int first_nonzero(vmdkit_disk *d, uint8_t *buf, uint64_t off, uint64_t end, uint64_t *at,
                         vk_err *e)
{
    while (off < end) {
        vmdkit_block_status st;
        if (vmdkit_block_status_at(d, off, end - off, &st)) {
            *e = *vmdkit_last_error(d);
            return e->code;
        }
        if (zero_status(&st)) {
            off += st.length;
            continue;
        }
        uint64_t run_end = off + st.length;
        while (off < run_end) {
            size_t n = (size_t)vk_min(run_end - off, CHUNK_BYTES);
            if (vmdkit_pread(d, buf, n, off)) {
                *e = *vmdkit_last_error(d);
                return e->code;
            }
            for (size_t i = 0; i < n; i++)
                if (buf[i]) {
                    *at = off + i;
                    return 0;
                }
            off += n;
        }
    }
    *at = end;
    return 0;
}

int vmdkit_compare(vmdkit_disk *a, vmdkit_disk *b, uint64_t *first_diff, vmdkit_progress_fn progress,
                   void *opaque, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = err ? err : &local;
    e->code = 0;
    e->msg[0] = 0;
    uint64_t sa = vmdkit_size(a), sb = vmdkit_size(b), common = vk_min(sa, sb);
    uint8_t *ba = vk_aligned_alloc(CHUNK_BYTES, e);
    uint8_t *bb = ba ? vk_aligned_alloc(CHUNK_BYTES, e) : NULL;
    int r = 0;
    if (!bb) {
        free(ba);
        return VMDKIT_ENOMEM;
    }
    uint64_t off = 0;
    while (off < common) {
        vmdkit_block_status x, y;
        if (vmdkit_block_status_at(a, off, common - off, &x)) {
            *e = *vmdkit_last_error(a);
            r = e->code;
            break;
        }
        if (vmdkit_block_status_at(b, off, vk_min(x.length, common - off), &y)) {
            *e = *vmdkit_last_error(b);
            r = e->code;
            break;
        }
        uint64_t n = vk_min(vk_min(x.length, y.length), CHUNK_BYTES);
        if (zero_status(&x) && zero_status(&y)) {
            off += vk_min(x.length, y.length);
        } else {
            if (vmdkit_pread(a, ba, (size_t)n, off)) {
                *e = *vmdkit_last_error(a);
                r = e->code;
                break;
            }
            if (vmdkit_pread(b, bb, (size_t)n, off)) {
                *e = *vmdkit_last_error(b);
                r = e->code;
                break;
            }
            if (memcmp(ba, bb, (size_t)n) != 0) {
                size_t i = 0;
                while (ba[i] == bb[i])
                    i++;
                *first_diff = off + i;
                r = 1;
                break;
            }
            off += n;
        }
        if (progress && progress(opaque, off, common)) {
            r = vk_fail(e, VMDKIT_EINVAL, "cancelled");
            break;
        }
    }
    if (r == 0 && sa != sb) {
        /* the larger disk's tail must read as zeros */
        vmdkit_disk *big = sa > sb ? a : b;
        uint64_t at = 0;
        r = first_nonzero(big, ba, common, vk_max(sa, sb), &at, e);
        if (!r && at < vk_max(sa, sb)) {
            *first_diff = at;
            r = 1;
        }
    }
    free(ba);
    free(bb);
    return r;
}
