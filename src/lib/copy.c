/* copy.c - the block-copy engine under convert and compare.
 *
 * The source is walked run by run with its allocation status, so holes,
 * zeroed grains and unallocated ranges are never read; data runs are read in
 * large chunks and cut into grain-sized pieces, and all-zero pieces are
 * never stored.  Reading and storing run in two threads (see the copy
 * loop).  Output goes to one of three sinks: a raw file (holes for
 * zeros), a VMDK opened for writing (sparse or flat), or the sequential
 * streamOptimized writer (parallel compression).
 *
 * Crash safety of a convert.  The output is built in a hidden folder beside
 * DST, PARENT/.NAME.vmdkit-tmp-XXXXXX (temp_folder.h), under its final file
 * names, and nothing is written under DST's own name until it is complete:
 *  1. data: grains, flat bytes, compressed stream grains (fdatasync);
 *  2. tables: grain tables, primary then redundant (fdatasync);
 *  3. directories: grain directories, primary then redundant (fdatasync);
 *  4. header and descriptor: the sparse headers with the unclean-shutdown
 *     flag cleared, the stream's footer and end marker (fdatasync); the
 *     descriptor was written when the disk was created, inside the folder;
 *  5. names: the extent files are linked out of the folder beside DST,
 *     then the descriptor (or the only file) is renamed to DST, then the
 *     folder is removed (vk_temp_folder_publish: each step durable).
 * Killed anywhere before 5, DST does not exist and the folder is a
 * leftover that the next convert to DST removes; killed in 5, the extent
 * names without their descriptor are removed with it too; once DST exists
 * it is complete.  DST is never replaced.  On an error (no space, I/O) or
 * when cancelled, the folder goes at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "create.h"
#include "link.h"
#include "path.h"
#include "stream_writer.h"
#include "temp_folder.h"

#define CHUNK_BYTES (4u << 20)
#define PIECE_BYTES (64u << 10) /* zero detection granularity = default grain */

typedef struct sink sink;
struct sink {
    /* store LEN bytes (non-zero data) at byte OFF; called in ascending order */
    int (*put)(sink *s, const uint8_t *buf, size_t len, uint64_t off, vk_err *e);
    int (*finish)(sink *s, vk_err *e);
    void (*abort)(sink *s);
    /* start writing back what was stored in [lo, hi) of the disk (may be
     * NULL); called from the reading thread, so it only touches fds */
    void (*kick)(const sink *s, uint64_t lo, uint64_t hi);
    /* raw */
    int fd;
    const char *path;
    uint64_t size;
    /* vmdk */
    vmdkit_disk *disk;
    char **paths; /* every file of the new disk: descriptor, then extents */
    size_t n_paths;
    /* stream */
    vk_stream_writer *sw;
    uint64_t grain_bytes;
};

/* ---- raw sink ---- */

static int raw_put(sink *s, const uint8_t *buf, size_t len, uint64_t off, vk_err *e)
{
    return vk_pwrite_full(s->fd, buf, len, off, s->path, e);
}

static void raw_kick(const sink *s, uint64_t lo, uint64_t hi)
{
    (void)lo;
    (void)hi;
    vk_start_writeback(s->fd);
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
    s->fd = -1;
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
        unlink(path);
        return r;
    }
    s->put = raw_put;
    s->kick = raw_kick;
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

/* Grain data is written in place at once, tables only at flush: what is
 * dirty in an extent file is data, safe to send to the disk early.  The
 * extents' places do not change while the disk is open and their fds are
 * held while used, so this may run beside the thread writing through the
 * handle. */
static void vmdk_kick(const sink *s, uint64_t lo, uint64_t hi)
{
    const vk_link *l = s->disk->top;
    for (size_t i = 0; i < l->n_ext; i++) {
        vk_extent *x = &l->ext[i];
        uint64_t start = x->start_sector * VK_SECTOR, end = start + x->size_sectors * VK_SECTOR;
        if (!x->writable || start >= hi || end <= lo)
            continue;
        /* a file the pool has closed was fdatasync'ed as it closed */
        int fd = vk_extent_hold_if_open(x);
        if (fd >= 0) {
            vk_start_writeback(fd);
            vk_extent_release(x);
        }
    }
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

/* Close the half-written disk; its files go with the build folder. */
static void vmdk_abort(sink *s)
{
    if (s->disk)
        vmdkit_close(s->disk, NULL);
    s->disk = NULL;
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
    vmdkit_create_opts co = *o->vmdk;
    co.size_bytes = size;
    co.parent = NULL;
    int r = vmdkit_create(path, &co, e);
    if (r)
        return r;
    r = vmdkit_open(path, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDWR, &s->disk, e);
    if (r)
        return r;
    s->put = vmdk_put;
    s->kick = vmdk_kick;
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
    vmdkit_create_opts co = *o->vmdk;
    co.size_bytes = size;
    co.parent = NULL;
    uint64_t cap;
    int r = vk_create_check_opts(path, &co, &cap, e);
    if (r)
        return r;
    char *text;
    if ((r = vk_create_stream_descriptor(path, cap, vmdkit_adapter_name(co.adapter ? co.adapter : "ide"),
                                         co.hw_version, &text, e)))
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

/* ---- the copy loop ----
 *
 * The calling thread walks the source and reads its data runs, chunk by
 * chunk, into a small ring, marking which pieces are all zeros; one writer
 * thread takes the chunks in order and stores their non-zero pieces.  The
 * two copies every byte goes through (out of the source's page cache, into
 * the destination's) thus run on two cores at once.  Memory: RING_CHUNKS
 * chunk buffers. */

#define RING_CHUNKS 4
_Static_assert(CHUNK_BYTES / PIECE_BYTES <= 64, "a chunk's pieces fit one 64-bit mask");

typedef struct chunk {
    uint8_t *buf;
    size_t len;
    uint64_t off;
    uint64_t data_pieces; /* bit i: piece i of the chunk is not all zeros */
} chunk;

typedef struct copier {
    sink *s;
    bool per_piece; /* the sink takes one piece at a time (stream) */
    chunk ring[RING_CHUNKS];
    uint64_t filled;       /* chunks handed to the writer */
    uint64_t stored;       /* chunks the writer is done with */
    uint64_t stored_end;   /* disk offset after the last chunk stored */
    uint64_t stored_bytes; /* bytes the writer gave the sink */
    uint64_t kicked_end;   /* the reader's last writeback kick: up to here, */
    uint64_t kicked_bytes; /* after this many bytes stored */
    bool threaded;
    bool no_more; /* the reader has finished: drain the ring, then stop */
    bool cancel;  /* the reader failed: stop at once */
    int w_r;      /* the writer's failure, with its message in w_err */
    vk_err w_err;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} copier;

/* Which pieces of BUF (LEN bytes at disk offset OFF; pieces follow the
 * virtual grain grid) hold a non-zero byte. */
static uint64_t data_pieces(const uint8_t *buf, size_t len, uint64_t off)
{
    uint64_t mask = 0;
    size_t i = 0;
    for (unsigned k = 0; i < len; k++) {
        size_t plen = (size_t)vk_min(len - i, PIECE_BYTES - (off + i) % PIECE_BYTES);
        if (!vk_is_zero(buf + i, plen))
            mask |= UINT64_C(1) << k;
        i += plen;
    }
    return mask;
}

/* Store the non-zero pieces of chunk C: runs of them in one call, or one
 * piece per call for the stream sink.  Adds the bytes stored to *BYTES. */
static int store_chunk(sink *s, const chunk *c, bool per_piece, uint64_t *bytes, vk_err *e)
{
    size_t i = 0, start = 0;
    bool in_run = false;
    for (unsigned k = 0; i < c->len; k++) {
        size_t plen = (size_t)vk_min(c->len - i, PIECE_BYTES - (c->off + i) % PIECE_BYTES);
        bool data = (c->data_pieces >> k) & 1;
        if (in_run && (!data || per_piece)) {
            int r = s->put(s, c->buf + start, i - start, c->off + start, e);
            if (r)
                return r;
            *bytes += i - start;
            in_run = false;
        }
        if (data && !in_run) {
            start = i;
            in_run = true;
        }
        i += plen;
    }
    if (!in_run)
        return 0;
    *bytes += i - start;
    return s->put(s, c->buf + start, i - start, c->off + start, e);
}

static void *writer_main(void *arg)
{
    copier *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->stored == c->filled && !c->no_more && !c->cancel)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->cancel || c->stored == c->filled)
            break;
        const chunk *ch = &c->ring[c->stored % RING_CHUNKS];
        pthread_mutex_unlock(&c->mu);
        uint64_t bytes = 0;
        int r = store_chunk(c->s, ch, c->per_piece, &bytes, &c->w_err);
        pthread_mutex_lock(&c->mu);
        c->stored++;
        c->stored_end = ch->off + ch->len;
        c->stored_bytes += bytes;
        c->w_r = r;
        pthread_cond_signal(&c->cv);
        if (r)
            break;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void copier_free(copier *c)
{
    for (size_t i = 0; i < RING_CHUNKS; i++)
        free(c->ring[i].buf);
}

static int copier_start(copier *c, sink *s, bool per_piece, vk_err *e)
{
    c->s = s;
    c->per_piece = per_piece;
    for (size_t i = 0; i < RING_CHUNKS; i++) {
        if (!(c->ring[i].buf = vk_aligned_alloc(CHUNK_BYTES, e))) {
            copier_free(c);
            return VMDKIT_ENOMEM;
        }
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        copier_free(c);
        return vk_fail(e, VMDKIT_ENOMEM, "copy: cannot create a mutex");
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        copier_free(c);
        return vk_fail(e, VMDKIT_ENOMEM, "copy: cannot create a condition variable");
    }
    /* without a thread the reader stores each chunk itself */
    c->threaded = pthread_create(&c->tid, NULL, writer_main, c) == 0;
    return 0;
}

/* The next free chunk of the ring, once the writer has stored it; fails
 * with the writer's error when the writer has failed. */
static int copier_next(copier *c, chunk **out, vk_err *e)
{
    pthread_mutex_lock(&c->mu);
    while (!c->w_r && c->filled - c->stored == RING_CHUNKS)
        pthread_cond_wait(&c->cv, &c->mu);
    int r = c->w_r;
    pthread_mutex_unlock(&c->mu);
    if (r) {
        *e = c->w_err;
        return r;
    }
    *out = &c->ring[c->filled % RING_CHUNKS];
    return 0;
}

/* Once VK_WRITEBACK_BYTES more have been stored, start their writeback: here,
 * in the reading thread, it costs the writer nothing. */
static void copier_kick(copier *c, uint64_t stored_end, uint64_t stored_bytes)
{
    if (c->s->kick && stored_bytes - c->kicked_bytes >= VK_WRITEBACK_BYTES) {
        c->s->kick(c->s, c->kicked_end, stored_end);
        c->kicked_end = stored_end;
        c->kicked_bytes = stored_bytes;
    }
}

/* Hand the chunk from copier_next to the writer. */
static int copier_put(copier *c, vk_err *e)
{
    if (!c->threaded) {
        const chunk *ch = &c->ring[c->filled % RING_CHUNKS];
        int r = store_chunk(c->s, ch, c->per_piece, &c->stored_bytes, e);
        c->filled++;
        c->stored++;
        c->stored_end = ch->off + ch->len;
        if (!r)
            copier_kick(c, c->stored_end, c->stored_bytes);
        return r;
    }
    pthread_mutex_lock(&c->mu);
    c->filled++;
    uint64_t end = c->stored_end, bytes = c->stored_bytes;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    copier_kick(c, end, bytes);
    return 0;
}

/* Let the writer store what is left (or stop at once when CANCEL), wait for
 * it and release the ring.  Returns the writer's failure, if any. */
static int copier_finish(copier *c, bool cancel, vk_err *e)
{
    int r = 0;
    if (c->threaded) {
        pthread_mutex_lock(&c->mu);
        c->no_more = true;
        c->cancel = cancel;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->tid, NULL);
        r = c->w_r;
        if (r && !cancel)
            *e = c->w_err;
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    copier_free(c);
    return cancel ? 0 : r;
}

static bool cancelled(const vmdkit_convert_opts *o, uint64_t done, uint64_t size)
{
    return o && o->progress && o->progress(o->progress_opaque, done, size);
}

static int copy_all(vmdkit_disk *src, sink *s, bool per_piece, const vmdkit_convert_opts *o, vk_err *e)
{
    copier c = {0};
    int r = copier_start(&c, s, per_piece, e);
    if (r)
        return r;
    uint64_t size = vmdkit_size(src);
    uint64_t off = 0;
    /* the size is known before the first byte moves */
    if (cancelled(o, 0, size))
        r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    while (!r && off < size) {
        vmdkit_block_status st;
        if ((r = vmdkit_block_status_at(src, size - off, off, &st))) {
            *e = *vmdkit_last_error(src);
            break;
        }
        uint64_t end = off + st.length;
        if (st.alloc == VMDKIT_ALLOC_DATA && per_piece) {
            /* the stream sink takes whole grains: widen the run to the grain
             * grid (the part before OFF read as zeros and was not stored) */
            off -= off % PIECE_BYTES;
            end = vk_min(size, vk_div_round_up(end, PIECE_BYTES) * PIECE_BYTES);
        }
        while (st.alloc == VMDKIT_ALLOC_DATA && off < end) {
            chunk *ch;
            if ((r = copier_next(&c, &ch, e)))
                break;
            /* chunks end on the grain grid so pieces stay whole */
            size_t n = (size_t)vk_min(end - off, CHUNK_BYTES - off % PIECE_BYTES);
            if ((r = vmdkit_pread(src, ch->buf, n, off))) {
                *e = *vmdkit_last_error(src);
                break;
            }
            ch->len = n;
            ch->off = off;
            ch->data_pieces = data_pieces(ch->buf, n, off);
            if ((r = copier_put(&c, e)))
                break;
            off += n;
            if (cancelled(o, off, size))
                r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
        }
        if (r)
            break;
        off = vk_max(off, end);
        if (cancelled(o, off, size))
            r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    }
    int w = copier_finish(&c, r != 0, e);
    return r ? r : w;
}

/* The files of the output besides the one named DST (a disk's extent
 * files), by name: *NAMES points into the sink's paths. */
static int extent_names(const sink *s, const char *name, const char ***names, size_t *n, vk_err *e)
{
    *n = 0;
    *names = vk_calloc(s->n_paths + 1, sizeof **names, e);
    if (!*names)
        return VMDKIT_ENOMEM;
    for (size_t i = 1; i < s->n_paths; i++) {
        if (!s->paths[i])
            continue; /* a ZERO extent has no file */
        const char *b = vk_path_basename(s->paths[i]);
        bool seen = strcmp(b, name) == 0; /* a monolithic sparse file is its own descriptor */
        for (size_t k = 0; !seen && k < *n; k++)
            seen = strcmp((*names)[k], b) == 0;
        if (!seen)
            (*names)[(*n)++] = b;
    }
    return 0;
}

/* Every name the output will take in PARENT must be free: refused before
 * a byte is copied rather than at the end. */
static int names_free(const char *parent, const char *const *names, size_t n, vk_err *e)
{
    for (size_t i = 0; i < n; i++) {
        char *p = vk_path_join(parent, names[i], e);
        if (!p)
            return VMDKIT_ENOMEM;
        struct stat st;
        int r = lstat(p, &st) == 0 ? vk_fail(e, VMDKIT_EEXIST, "%s: already exists", p) : 0;
        free(p);
        if (r)
            return r;
    }
    return 0;
}

/* DST's folder, which must exist; "." when DST has no slash. */
static char *dst_folder(const char *dst, vk_err *e)
{
    const char *name = vk_path_basename(dst);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        vk_fail(e, VMDKIT_EINVAL, "%s: not a file name", dst);
        return NULL;
    }
    struct stat st;
    if (lstat(dst, &st) == 0) {
        vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dst);
        return NULL;
    }
    char *parent = vk_path_dirname(dst, e);
    if (!parent)
        return NULL;
    int found = stat(parent, &st) == 0 ? 0 : errno;
    if (found && found != ENOENT && found != ENOTDIR)
        vk_fail_errno(e, found, "%s: folder %s", dst, parent);
    else if (found || !S_ISDIR(st.st_mode))
        vk_fail(e, VMDKIT_ENOENT, "%s: the folder to hold it does not exist", dst);
    else
        return parent;
    free(parent);
    return NULL;
}

int vmdkit_convert(vmdkit_disk *src, const char *dst, const vmdkit_convert_opts *opts, vmdkit_error *err)
{
    vk_err local;
    vk_err *e = vk_entry(err, &local, NULL, 0);
    if (!src || !dst)
        return vk_fail(e, VMDKIT_EINVAL, "vmdkit_convert: src and dst are required");
    vmdkit_convert_opts known;
    vmdkit_create_opts vmdk;
    int r0 = vk_opts_read(&known, sizeof known, opts, "vmdkit_convert_opts", e);
    if (!r0)
        r0 = vk_opts_read(&vmdk, sizeof vmdk, known.vmdk, "vmdkit_create_opts", e);
    if (r0)
        return r0;
    known.vmdk = &vmdk;
    const vmdkit_convert_opts *o = &known;
    char *parent = dst_folder(dst, e);
    if (!parent)
        return e->code;
    const char *name = vk_path_basename(dst);
    /* what a killed convert to DST left is nobody's now */
    (void)vk_remove_stale_temps(parent, name, NULL, NULL);
    vk_temp_folder tf;
    int r = vk_temp_folder_make(parent, name, &tf, e);
    if (r) {
        free(parent);
        return r;
    }
    char *build = vk_path_join(tf.path, name, e);
    sink s = {.fd = -1};
    const char **names = NULL;
    size_t n_names = 0;
    bool opened = false;
    uint64_t size = vmdkit_size(src);
    bool stream = !o->to_raw && o->vmdk->type == VMDKIT_STREAM_OPTIMIZED;
    if (!build)
        r = VMDKIT_ENOMEM;
    else if (o->to_raw)
        r = raw_sink_open(&s, build, size, e);
    else if (stream)
        r = stream_sink_open(&s, build, size, o, e);
    else
        r = vmdk_sink_open(&s, build, size, o, e);
    opened = !r;
    if (!r)
        r = extent_names(&s, name, &names, &n_names, e);
    if (!r)
        r = names_free(parent, names, n_names, e);
    if (!r)
        r = copy_all(src, &s, stream, o, e);
    if (!r) {
        opened = false;
        r = s.finish(&s, e);
    }
    if (!r)
        r = vk_temp_folder_publish(&tf, parent, names, n_names, name, e);
    if (r) {
        if (opened)
            s.abort(&s);
        vk_temp_folder_unhide_message(&tf, parent, e);
        vk_temp_folder_discard(&tf);
        if (r == VMDKIT_ECANCELED)
            vk_fail(e, r, "%s: cancelled; the partial output was removed", dst);
    }
    vk_temp_folder_release(&tf);
    free(names);
    free_paths(&s);
    free(build);
    free(parent);
    return r;
}

int vk_copy_into_stream(vmdkit_disk *src, vk_stream_writer *sw, const vmdkit_convert_opts *o, vk_err *e)
{
    sink s = {.fd = -1, .sw = sw, .put = stream_put};
    s.grain_bytes = vk_stream_writer_grain_sectors(sw) * VK_SECTOR;
    return copy_all(src, &s, true, o, e);
}

/* ---- compare ---- */

static bool zero_status(const vmdkit_block_status *st) { return st->alloc != VMDKIT_ALLOC_DATA; }

/* Offset of the first non-zero byte of D in [off, end), or END. */
static int first_nonzero(vmdkit_disk *d, uint8_t *buf, uint64_t off, uint64_t end, uint64_t *at,
                         vk_err *e)
{
    while (off < end) {
        vmdkit_block_status st;
        if (vmdkit_block_status_at(d, end - off, off, &st)) {
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

int vmdkit_compare(vmdkit_disk *a, vmdkit_disk *b, uint64_t *first_diff, const vmdkit_compare_opts *opts,
                   vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_compare_opts o;
    int r0 = vk_entry_opts(&e, err, &local, NULL, 0, NULL, &o, sizeof o, opts, "vmdkit_compare_opts");
    if (r0)
        return r0;
    vmdkit_progress_fn progress = o.progress;
    void *opaque = o.progress_opaque;
    uint64_t sa = vmdkit_size(a), sb = vmdkit_size(b), common = vk_min(sa, sb);
    /* progress covers the larger disk: its tail is compared with zeros */
    uint64_t total = vk_max(sa, sb);
    uint8_t *ba = vk_aligned_alloc(CHUNK_BYTES, e);
    uint8_t *bb = ba ? vk_aligned_alloc(CHUNK_BYTES, e) : NULL;
    int r = 0;
    if (!bb) {
        free(ba);
        return VMDKIT_ENOMEM;
    }
    uint64_t off = 0;
    if (progress && progress(opaque, 0, total))
        r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    while (!r && off < common) {
        vmdkit_block_status x, y;
        if (vmdkit_block_status_at(a, common - off, off, &x)) {
            *e = *vmdkit_last_error(a);
            r = e->code;
            break;
        }
        if (vmdkit_block_status_at(b, vk_min(x.length, common - off), off, &y)) {
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
        if (progress && progress(opaque, off, total)) {
            r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
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
    if (r == 0 && progress)
        (void)progress(opaque, total, total);
    free(ba);
    free(bb);
    return r;
}

int vk_walk_runs(struct vk_link *l, vk_run_fn on, void *ctx, vmdkit_progress_fn progress, void *opaque,
                 vk_err *e)
{
    uint64_t total = l->capacity_sectors;
    int r = 0;
    for (uint64_t s = 0; !r && s < total;) {
        int alloc;
        uint64_t run;
        if ((r = vk_link_status(l, s, total - s, &alloc, &run, e)) || (r = on(ctx, s, run, alloc, e)))
            break;
        s += run;
        if (progress && progress(opaque, s * VK_SECTOR, total * VK_SECTOR))
            r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    }
    return r;
}
