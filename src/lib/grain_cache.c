/* grain_cache.c - a bounded, thread-safe cache of decoded grains and a
 * pool of decompressors (see grain_cache.h).
 *
 * Locking: one mutex guards the slot states, user counts and the idle
 * decompressors; one condition variable is broadcast whenever a slot
 * finishes loading, loses its last user, or a decompressor comes back.
 * A slot being loaded belongs to its loader alone (others wait for it),
 * and a ready slot is never reused while a reader copies out of it, so
 * the grain bytes themselves are read and written outside the lock.  A
 * thread holds at most one slot and one decompressor at a time and waits
 * for neither while holding the other's wait: no cycle, no deadlock.
 */
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>

#include "grain_cache.h"

/* At most this many decompressors (each with its record buffer) exist at
 * once, and together their buffers stay under CTX_BYTES_MAX: more threads
 * than that wait for one to come back. */
#define MAX_CTX 16u
#define CTX_BYTES_MAX (32u << 20)

enum slot_state { SLOT_EMPTY, SLOT_LOADING, SLOT_READY };

typedef struct slot {
    uint64_t grain;
    enum slot_state state;
    unsigned users; /* readers copying out of data */
    uint8_t *data;  /* grain_bytes, allocated on first load */
} slot;

struct vk_grain_cache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t grain_bytes;
    size_t cbuf_size;
    slot *slots;
    size_t n_slots;
    vk_inflate_ctx **idle; /* max_ctx entries */
    size_t n_idle;
    size_t n_ctx; /* decompressors that exist, idle or in use */
    size_t max_ctx;
    unsigned waiting; /* threads in wait() */
    vk_grain_load_fn load;
    void *opaque;
};

int vk_grain_cache_open(size_t grain_bytes, uint64_t n_grains, size_t max_bytes, size_t cbuf_size,
                        vk_grain_load_fn load, void *opaque, vk_grain_cache **out, vk_err *e)
{
    vk_grain_cache *c = vk_calloc(1, sizeof *c, e);
    if (!c)
        return VMDKIT_ENOMEM;
    c->grain_bytes = grain_bytes;
    c->cbuf_size = cbuf_size;
    c->n_slots = (size_t)vk_max(1, vk_min(n_grains, grain_bytes ? max_bytes / grain_bytes : 1));
    c->max_ctx = (size_t)vk_max(1, vk_min(MAX_CTX, CTX_BYTES_MAX / vk_max(cbuf_size, 1)));
    c->load = load;
    c->opaque = opaque;
    c->slots = vk_calloc(c->n_slots, sizeof *c->slots, e);
    c->idle = vk_calloc(c->max_ctx, sizeof *c->idle, e);
    if (!c->slots || !c->idle) {
        free(c->slots);
        free(c->idle);
        free(c);
        return VMDKIT_ENOMEM;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->slots);
        free(c->idle);
        free(c);
        return vk_fail(e, VMDKIT_ENOMEM, "grain cache: cannot create a lock");
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c->slots);
        free(c->idle);
        free(c);
        return vk_fail(e, VMDKIT_ENOMEM, "grain cache: cannot create a condition variable");
    }
    *out = c;
    return 0;
}

static void ctx_free(vk_inflate_ctx *x)
{
    if (!x)
        return;
    if (x->dec)
        libdeflate_free_decompressor(x->dec);
    free(x->cbuf);
    free(x);
}

void vk_grain_cache_close(vk_grain_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_slots; i++)
        free(c->slots[i].data);
    for (size_t i = 0; i < c->n_idle; i++)
        ctx_free(c->idle[i]);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c->idle);
    free(c);
}

size_t vk_grain_cache_slots(const vk_grain_cache *c) { return c->n_slots; }

/* With the lock held: wait for a change (see the top of the file). */
static void cache_wait(vk_grain_cache *c)
{
    c->waiting++;
    pthread_cond_wait(&c->cv, &c->mu);
    c->waiting--;
}

/* With the lock held: wake the waiters, if there are any (a broadcast
 * nobody waits for still costs a system call on some systems). */
static void cache_wake(vk_grain_cache *c)
{
    if (c->waiting)
        pthread_cond_broadcast(&c->cv);
}

/* With the lock held: an idle decompressor, or a new one while fewer than
 * max_ctx exist; else wait for one (WAIT) or return 1 (not WAIT). */
static int take_ctx(vk_grain_cache *c, bool wait, vk_inflate_ctx **out, vk_err *e)
{
    for (;;) {
        if (c->n_idle) {
            *out = c->idle[--c->n_idle];
            return 0;
        }
        if (c->n_ctx < c->max_ctx)
            break;
        if (!wait)
            return 1;
        cache_wait(c);
    }
    c->n_ctx++; /* reserved: allocate without the lock */
    pthread_mutex_unlock(&c->mu);
    vk_inflate_ctx *x = calloc(1, sizeof *x);
    if (x) {
        x->dec = libdeflate_alloc_decompressor();
        x->cbuf = malloc(c->cbuf_size);
        x->cbuf_size = c->cbuf_size;
    }
    pthread_mutex_lock(&c->mu);
    if (!x || !x->dec || !x->cbuf) {
        ctx_free(x);
        c->n_ctx--;
        cache_wake(c);
        return vk_fail(e, VMDKIT_ENOMEM, "out of memory for a decompressor and a %zu-byte record buffer",
                       c->cbuf_size);
    }
    *out = x;
    return 0;
}

/* With the lock held, slot S claimed (SLOT_LOADING for GRAIN) and a
 * decompressor CTX taken: decode, give CTX back, publish the result. */
static int fill(vk_grain_cache *c, slot *s, uint64_t grain, uint64_t where, vk_inflate_ctx *ctx,
                vk_err *e)
{
    int r = 0;
    pthread_mutex_unlock(&c->mu);
    if (!s->data && !(s->data = malloc(c->grain_bytes)))
        r = vk_fail(e, VMDKIT_ENOMEM, "out of memory for a grain of %zu bytes", c->grain_bytes);
    if (!r)
        r = c->load(c->opaque, grain, where, s->data, ctx, e);
    pthread_mutex_lock(&c->mu);
    c->idle[c->n_idle++] = ctx;
    s->state = r ? SLOT_EMPTY : SLOT_READY;
    cache_wake(c);
    return r;
}

/* Can slot S be claimed to load GRAIN: not being loaded, nobody copying
 * out of it, and not holding GRAIN already? */
static bool claimable(const slot *s, uint64_t grain)
{
    return s->state != SLOT_LOADING && !s->users && !(s->state == SLOT_READY && s->grain == grain);
}

/* With the lock held and slot S holding GRAIN: copy LEN bytes at OFF
 * out of it, outside the lock; returns with the lock released. */
static void copy_out(vk_grain_cache *c, slot *s, size_t off, size_t len, void *buf)
{
    s->users++;
    pthread_mutex_unlock(&c->mu);
    memcpy(buf, s->data + off, len);
    pthread_mutex_lock(&c->mu);
    if (--s->users == 0)
        cache_wake(c);
    pthread_mutex_unlock(&c->mu);
}

int vk_grain_cache_read(vk_grain_cache *c, uint64_t grain, uint64_t where, size_t off, size_t len,
                        void *buf, vk_err *e)
{
    slot *s = &c->slots[grain % c->n_slots];
    int r = 0;
    pthread_mutex_lock(&c->mu);
    if (off == 0 && len == c->grain_bytes && !(s->state == SLOT_READY && s->grain == grain)) {
        /* a whole grain not in the cache: decode it straight into BUF (a
         * reader of whole grains, such as a copy, reads each one once) */
        vk_inflate_ctx *ctx;
        if ((r = take_ctx(c, true, &ctx, e)) == 0) {
            pthread_mutex_unlock(&c->mu);
            r = c->load(c->opaque, grain, where, buf, ctx, e);
            pthread_mutex_lock(&c->mu);
            c->idle[c->n_idle++] = ctx;
            cache_wake(c);
        }
        pthread_mutex_unlock(&c->mu);
        return r;
    }
    for (;;) {
        if (s->state == SLOT_READY && s->grain == grain)
            break;
        if (s->state == SLOT_LOADING || s->users) {
            cache_wait(c);
            continue;
        }
        vk_inflate_ctx *ctx;
        if ((r = take_ctx(c, true, &ctx, e)))
            break;
        /* the slot may have changed while take_ctx waited */
        if (!claimable(s, grain)) {
            c->idle[c->n_idle++] = ctx;
            cache_wake(c);
            continue;
        }
        s->state = SLOT_LOADING;
        s->grain = grain;
        if ((r = fill(c, s, grain, where, ctx, e)))
            break;
    }
    if (r) {
        pthread_mutex_unlock(&c->mu);
        return r;
    }
    copy_out(c, s, off, len, buf);
    return 0;
}

int vk_grain_cache_prefetch(vk_grain_cache *c, uint64_t grain, uint64_t where, vk_err *e)
{
    slot *s = &c->slots[grain % c->n_slots];
    int r = 0;
    vk_inflate_ctx *ctx = NULL;
    pthread_mutex_lock(&c->mu);
    /* a hint: never wait, and leave a slot that is busy or already holds the grain */
    if (claimable(s, grain) && (r = take_ctx(c, false, &ctx, e)) == 0) {
        if (claimable(s, grain)) { /* take_ctx may have let go of the lock */
            s->state = SLOT_LOADING;
            s->grain = grain;
            r = fill(c, s, grain, where, ctx, e);
        } else {
            c->idle[c->n_idle++] = ctx;
            cache_wake(c);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return r < 0 ? r : 0;
}
