/*
 * handles.c — the table that turns small integers (port-ids, registration
 * handles) into objects, without a lock on the lookup path.
 *
 * Each handle is a slot that holds its object inline. Slots live in chunks
 * that are allocated on demand and never freed, so the memory of a slot is
 * type-stable: a lookup may always touch a slot's header, even one being
 * closed or reused. That makes the fast path two atomic operations:
 *
 *   get:  refs += 1; if (state != LIVE || kind != wanted) { put; fail }
 *   put:  if (--refs == 0 && CAS(state, DYING -> DESTROYING)) destroy, free
 *
 * Life cycle of a slot: FREE -> (handle_alloc) BUILDING -> (handle_publish)
 * LIVE -> (handle_close) DYING -> (last put) DESTROYING -> FREE. The table
 * holds one reference while LIVE. A lookup racing with a close either gets the
 * object (and keeps it alive until its put) or fails; one racing with a reuse
 * of the same number gets the new object, like a reused file descriptor.
 * Allocation (rare) is under a mutex; numbers are reused lowest first.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/lib.h"

#define CHUNK_SHIFT 8
#define CHUNK_SIZE (1 << CHUNK_SHIFT)
#define CHUNKS_MAX 4096 /* 1 Mi handles */

enum slot_state { SLOT_FREE = 0, SLOT_BUILDING, SLOT_LIVE, SLOT_DYING, SLOT_DESTROYING };

struct slot {
        _Atomic int refs;
        _Atomic int state;
        _Atomic int kind;
        int index;
        union {
                port port;
                reg reg;
                group group;
                service service;
                dgram_ep dgram;
        } u;
};

static _Atomic(struct slot *) chunks[CHUNKS_MAX];
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static int low_free; /* no free slot below this index (under alloc_lock) */

/* The child of fork() is single-threaded: reset a lock another thread held. */
static void atfork_child(void) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        alloc_lock = fresh;
}

__attribute__((constructor)) static void handles_init(void) {
        pthread_atfork(NULL, NULL, atfork_child);
}

static struct slot *slot_at(int h) {
        if (h < 0 || h >= CHUNKS_MAX * CHUNK_SIZE)
                return NULL;
        struct slot *c = atomic_load_explicit(&chunks[h >> CHUNK_SHIFT], memory_order_acquire);
        return c ? &c[h & (CHUNK_SIZE - 1)] : NULL;
}

static struct slot *slot_of(void *obj) {
        /* port and reg sit at the same offset (the union) */
        return (struct slot *)((char *)obj - offsetof(struct slot, u));
}

void *handle_alloc(enum handle_kind kind, int *ret_h) {
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
                atomic_store(&s->kind, (int)kind);
                low_free = h + 1;
                pthread_mutex_unlock(&alloc_lock);
                /* Stale lookups never touch u (they fail the state check). */
                memset(&s->u, 0, sizeof(s->u));
                *ret_h = h;
                return &s->u;
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

static void *handle_get(int h, enum handle_kind kind) {
        struct slot *s = slot_at(h);
        if (!s)
                return NULL;
        atomic_fetch_add(&s->refs, 1);
        if (atomic_load(&s->state) == SLOT_LIVE && atomic_load(&s->kind) == (int)kind)
                return &s->u;
        handle_put(&s->u);
        return NULL;
}

port *handle_get_port(int h) { return handle_get(h, HANDLE_PORT); }
reg *handle_get_reg(int h) { return handle_get(h, HANDLE_REG); }
group *handle_get_group(int h) { return handle_get(h, HANDLE_GROUP); }
service *handle_get_service(int h) { return handle_get(h, HANDLE_SERVICE); }
dgram_ep *handle_get_dgram(int h) { return handle_get(h, HANDLE_DGRAM); }

void handle_ref(void *obj) {
        atomic_fetch_add(&slot_of(obj)->refs, 1);
}

void handle_put(void *obj) {
        struct slot *s = slot_of(obj);
        if (atomic_fetch_sub(&s->refs, 1) != 1)
                return;
        int expect = SLOT_DYING;
        if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_DESTROYING))
                return; /* a stale lookup's transient reference */
        if (atomic_load(&s->kind) == HANDLE_PORT)
                port_destroy(&s->u.port);
        else if (atomic_load(&s->kind) == HANDLE_GROUP)
                group_destroy(&s->u.group);
        else if (atomic_load(&s->kind) == HANDLE_SERVICE)
                service_destroy(&s->u.service);
        else if (atomic_load(&s->kind) == HANDLE_DGRAM)
                dgram_destroy(&s->u.dgram);
        else
                reg_destroy(&s->u.reg);
        slot_release(s);
}

void *handle_close(int h, enum handle_kind kind) {
        struct slot *s = slot_at(h);
        if (!s)
                return NULL;
        /* Take a reference first so the object outlives the caller's use. */
        atomic_fetch_add(&s->refs, 1);
        int expect = SLOT_LIVE;
        if (atomic_load(&s->kind) != (int)kind ||
            !atomic_compare_exchange_strong(&s->state, &expect, SLOT_DYING)) {
                handle_put(&s->u);
                return NULL;
        }
        /* Drop the table's reference; the caller's put may destroy it. */
        atomic_fetch_sub(&s->refs, 1);
        return &s->u;
}
