/*
 * handles.c — the table that turns small integers (port-ids, registration,
 * service, endpoint and group handles) into objects, without a lock on the
 * lookup path, and knowing no kind of object: a kind is its handle_kind (the
 * ops a kind's file defines, lib.h), and the table only compares and calls
 * through it.
 *
 * Each handle is a slot that holds its object inline (at most
 * HANDLE_OBJ_MAX bytes). Slots live in chunks that are allocated on demand
 * and never freed, so the memory of a slot is type-stable: a lookup may
 * always touch a slot's header, even one being closed or reused. That makes
 * the fast path two atomic operations:
 *
 *   get:  refs += 1; if (state != LIVE || kind != wanted) { put; fail }
 *   put:  if (--refs == 0 && CAS(state, DYING -> DESTROYING) && refs == 0)
 *           kind->destroy, free   (refs back above 0: DYING again, see handle_put)
 *
 * Life cycle of a slot: FREE -> (handle_alloc) BUILDING -> (handle_publish)
 * LIVE -> (handle_close) DYING -> (last put) DESTROYING -> FREE. The table
 * holds one reference while LIVE. A lookup racing with a close either gets the
 * object (and keeps it alive until its put) or fails; one racing with a reuse
 * of the same number gets the new object, like a reused file descriptor.
 * Allocation (rare) is under a mutex; numbers are reused lowest first.
 *
 * TOKENS. A number names whatever holds it now; a token names one object for
 * the life of the process: its slot and its generation (a process-wide count
 * of allocations, 44 bits, never reused), enciphered with a key drawn at
 * start (a 4-round Feistel network over 64 bits), so that a token the library
 * did not make decodes to a generation never issued: handle_get_token() tells
 * a forged token (-EINVAL) from the token of an object gone since (-ESTALE)
 * and from that of a live object of another kind (-EBADF);
 * handle_close_token() closes the object a token names, never another that
 * holds its number since.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/lib.h"

#define CHUNK_SHIFT 8
#define CHUNK_SIZE (1 << CHUNK_SHIFT)
#define CHUNKS_MAX 4096 /* 1 Mi handles */
#define INDEX_BITS 20   /* CHUNKS_MAX * CHUNK_SIZE = 1 << INDEX_BITS */

_Static_assert(CHUNKS_MAX * CHUNK_SIZE == 1 << INDEX_BITS, "a token holds every index");

enum slot_state { SLOT_FREE = 0, SLOT_BUILDING, SLOT_LIVE, SLOT_DYING, SLOT_DESTROYING };

struct slot {
        _Atomic int refs;
        _Atomic int state;
        _Atomic(const handle_kind *) kind;
        int index;
        uint64_t gen; /* set while BUILDING, constant while LIVE */
        _Alignas(16) unsigned char obj[HANDLE_OBJ_MAX];
};

static _Atomic(struct slot *) chunks[CHUNKS_MAX];
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static int low_free;        /* no free slot below this index (under alloc_lock) */
static uint64_t next_gen = 1; /* the next generation to issue (under alloc_lock) */
static _Atomic uint64_t issued_gen = 1; /* next_gen, for lock-free token checks */
static uint32_t token_key[4];
static _Atomic unsigned fork_gen; /* how many times this process was a child of fork() */

/* The child of fork() is single-threaded: reset a lock another thread held. */
static void atfork_child(void) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        alloc_lock = fresh;
        atomic_fetch_add(&fork_gen, 1);
}

unsigned handle_fork_gen(void) {
        return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

__attribute__((constructor)) static void handles_init(void) {
        pthread_atfork(NULL, NULL, atfork_child);
        if (getrandom(token_key, sizeof(token_key), GRND_NONBLOCK) != (ssize_t)sizeof(token_key)) {
                /* No entropy yet: a key that differs per process will do (tokens
                 * stop forgeries by mistake, not an attacker in our own memory). */
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                token_key[0] = (uint32_t)ts.tv_nsec;
                token_key[1] = (uint32_t)ts.tv_sec;
                token_key[2] = (uint32_t)getpid();
                token_key[3] = (uint32_t)(uintptr_t)&ts;
        }
}

static struct slot *slot_at(int h) {
        if (h < 0 || h >= CHUNKS_MAX * CHUNK_SIZE)
                return NULL;
        struct slot *c = atomic_load_explicit(&chunks[h >> CHUNK_SHIFT], memory_order_acquire);
        return c ? &c[h & (CHUNK_SIZE - 1)] : NULL;
}

static struct slot *slot_of(void *obj) {
        return (struct slot *)((char *)obj - offsetof(struct slot, obj));
}

void *handle_alloc(const handle_kind *kind, size_t size, int *ret_h) {
        if (size > HANDLE_OBJ_MAX)
                return NULL;
        pthread_mutex_lock(&alloc_lock);
        for (int h = low_free; h < CHUNKS_MAX * CHUNK_SIZE; h++) {
                struct slot *s = slot_at(h);
                if (!s) {
                        struct slot *c = calloc(CHUNK_SIZE, sizeof(*c));
                        if (!c)
                                break;
                        for (int i = 0; i < CHUNK_SIZE; i++)
                                c[i].index = (h & ~(CHUNK_SIZE - 1)) + i;
                        atomic_store_explicit(&chunks[h >> CHUNK_SHIFT], c, memory_order_release);
                        s = slot_at(h);
                }
                if (atomic_load(&s->state) != SLOT_FREE)
                        continue;
                atomic_store(&s->state, SLOT_BUILDING);
                atomic_store(&s->kind, kind);
                s->gen = next_gen++;
                atomic_store(&issued_gen, next_gen);
                low_free = h + 1;
                pthread_mutex_unlock(&alloc_lock);
                /* Stale lookups never touch obj (they fail the state check). */
                memset(s->obj, 0, size);
                *ret_h = h;
                return s->obj;
        }
        pthread_mutex_unlock(&alloc_lock);
        return NULL;
}

static void slot_release(struct slot *s) {
        pthread_mutex_lock(&alloc_lock);
        atomic_store(&s->state, SLOT_FREE);
        if (s->index < low_free)
                low_free = s->index;
        pthread_mutex_unlock(&alloc_lock);
}

void handle_publish(void *obj) {
        struct slot *s = slot_of(obj);
        /* += (not =): a stale lookup may hold a transient reference. */
        atomic_fetch_add(&s->refs, 1);
        atomic_store(&s->state, SLOT_LIVE);
}

void handle_abort(void *obj) {
        slot_release(slot_of(obj));
}

/* Take a reference on s and check it holds a live object of kind (any if
 * NULL). Returns 0, -EBADF (not live, or another kind), with no reference
 * kept on failure. */
static int slot_get(struct slot *s, const handle_kind *kind) {
        atomic_fetch_add(&s->refs, 1);
        if (atomic_load(&s->state) == SLOT_LIVE &&
            (!kind || atomic_load_explicit(&s->kind, memory_order_relaxed) == kind))
                return 0;
        handle_put(s->obj);
        return -EBADF;
}

void *handle_get(int h, const handle_kind *kind) {
        struct slot *s = slot_at(h);
        return s && slot_get(s, kind) == 0 ? s->obj : NULL;
}

const handle_kind *handle_kind_of(void *obj) {
        return atomic_load_explicit(&slot_of(obj)->kind, memory_order_relaxed);
}

void handle_ref(void *obj) {
        atomic_fetch_add(&slot_of(obj)->refs, 1);
}

void handle_put(void *obj) {
        struct slot *s = slot_of(obj);
        if (atomic_fetch_sub(&s->refs, 1) != 1)
                return;
        /* We dropped the count to zero, but that may have been a stale
         * lookup's transient reference on a slot that was BUILDING, and the
         * object born there may be LIVE and closed (DYING) by now, its
         * closer holding a reference. So winning DYING -> DESTROYING is not
         * enough: only a count still zero once we hold DESTROYING (when no
         * new reference can be had) lets us destroy; else we give DYING
         * back, and whoever holds the count destroys it at its last put —
         * unless that put came while we held DESTROYING, which the loop
         * sees as the count back at zero. */
        for (;;) {
                int expect = SLOT_DYING;
                if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_DESTROYING))
                        return; /* live, free, or another put's to destroy */
                if (atomic_load(&s->refs) == 0)
                        break;
                atomic_store(&s->state, SLOT_DYING);
                if (atomic_load(&s->refs) != 0)
                        return;
        }
        const handle_kind *k = atomic_load(&s->kind);
        if (k->destroy)
                k->destroy(s->obj);
        slot_release(s);
}

void *handle_close(int h, const handle_kind *kind) {
        struct slot *s = slot_at(h);
        if (!s)
                return NULL;
        /* Take a reference first so the object outlives the caller's use. */
        atomic_fetch_add(&s->refs, 1);
        int expect = SLOT_LIVE;
        if ((kind && atomic_load(&s->kind) != kind) ||
            !atomic_compare_exchange_strong(&s->state, &expect, SLOT_DYING)) {
                handle_put(s->obj);
                return NULL;
        }
        /* Drop the table's reference; the caller's put may destroy it. */
        atomic_fetch_sub(&s->refs, 1);
        return s->obj;
}

/* ---- tokens ------------------------------------------------------------- */

/* A round of the Feistel network: a 32-bit mix (MurmurHash3's finaliser). */
static uint32_t feistel_f(uint32_t x, uint32_t k) {
        x ^= k;
        x ^= x >> 16;
        x *= 0x85ebca6bu;
        x ^= x >> 13;
        x *= 0xc2b2ae35u;
        x ^= x >> 16;
        return x;
}

static uint64_t token_encode(uint64_t plain) {
        uint32_t l = (uint32_t)(plain >> 32), r = (uint32_t)plain;
        for (int i = 0; i < 4; i++) {
                uint32_t t = r;
                r = l ^ feistel_f(r, token_key[i]);
                l = t;
        }
        return (uint64_t)l << 32 | r;
}

static uint64_t token_decode(uint64_t token) {
        uint32_t l = (uint32_t)(token >> 32), r = (uint32_t)token;
        for (int i = 3; i >= 0; i--) {
                uint32_t t = l;
                l = r ^ feistel_f(l, token_key[i]);
                r = t;
        }
        return (uint64_t)l << 32 | r;
}

uint64_t handle_token(void *obj) {
        struct slot *s = slot_of(obj);
        return token_encode(s->gen << INDEX_BITS | (uint64_t)s->index);
}

void *handle_get_token(uint64_t token, const handle_kind *kind, int *ret_err) {
        uint64_t plain = token_decode(token);
        uint64_t gen = plain >> INDEX_BITS;
        int index = (int)(plain & ((1u << INDEX_BITS) - 1));
        struct slot *s = slot_at(index);
        int err = -EINVAL; /* never issued: not a token of this process */
        if (s && gen != 0 && gen < atomic_load(&issued_gen)) {
                err = -ESTALE; /* issued: the object it named is gone */
                if (slot_get(s, NULL) == 0) {
                        if (s->gen == gen && atomic_load(&s->kind) == kind)
                                return s->obj;
                        if (s->gen == gen)
                                err = -EBADF;
                        handle_put(s->obj);
                }
        }
        *ret_err = err;
        return NULL;
}

void *handle_close_token(uint64_t token, const handle_kind *kind) {
        int err;
        void *obj = handle_get_token(token, kind, &err);
        if (!obj)
                return NULL;
        /* Our reference keeps the slot from being reused: LIVE is still
         * the object token names. */
        struct slot *s = slot_of(obj);
        int expect = SLOT_LIVE;
        if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_DYING)) {
                handle_put(obj);
                return NULL;
        }
        atomic_fetch_sub(&s->refs, 1); /* the table's */
        return obj;
}
