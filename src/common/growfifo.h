/*
 * growfifo.h — a growable FIFO of fixed-size elements: a ring buffer that
 * doubles when full, for queues the daemon keeps per flow (a mailbox
 * receiver's messages in flight and a sender's held records, models/mbox.c;
 * a relay's records unread at the other host, hosts/relay.c).
 *
 * RULES
 *   - Elements are `size` bytes each (growfifo_init), copied in place:
 *     growfifo_room may move them, so a pointer into the FIFO is good only
 *     until the next growfifo_room.
 *   - Room first, then push: growfifo_room(q, max) makes room for one more
 *     (0), or says why not (-ENOSPC: max elements are in; -ENOMEM), and
 *     changes nothing then; growfifo_push only after it said 0, and cannot
 *     fail. The capacity starts at 64 elements (at most max) and doubles
 *     (at most max); memory is given back by growfifo_free only.
 *   - Numbered: the element pushed k-th (from 0) keeps the number k for its
 *     life (whatever grows or pops); the oldest one's is `first`, so
 *     growfifo_by_no finds an element by its number, or says it left.
 *   - Oldest first: growfifo_at(q, 0) is the oldest, growfifo_pop removes
 *     it. growfifo_at, growfifo_pop: only for i < n, n > 0.
 *   - Not thread-safe (one owner: the daemon's loop).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct growfifo {
        uint8_t *v;
        uint32_t size;           /* bytes per element */
        uint32_t cap, head, n;   /* cap: 0 or a power of two */
        uint64_t first;          /* the number of the oldest element */
} growfifo;

/* An empty FIFO of elements of size bytes (no memory yet). */
void growfifo_init(growfifo *q, uint32_t size);
/* Room for one more element, at most max in all: 0, -ENOSPC, -ENOMEM. */
int growfifo_room(growfifo *q, uint32_t max);
/* Free the memory; q is empty after (its numbering goes on). */
void growfifo_free(growfifo *q);

/* The rest run per message on the daemon's mailbox paths: inline. */
static inline void *growfifo_slot_(const growfifo *q, uint32_t i) {
        return q->v + (size_t)((q->head + i) & (q->cap - 1)) * q->size;
}

/* The new newest element (uninitialised); only after growfifo_room said 0. */
static inline void *growfifo_push(growfifo *q) { return growfifo_slot_(q, q->n++); }

/* The i-th oldest element (i < n). */
static inline void *growfifo_at(const growfifo *q, uint32_t i) { return growfifo_slot_(q, i); }

/* The element numbered no, or NULL if it left or was never pushed. */
static inline void *growfifo_by_no(const growfifo *q, uint64_t no) {
        if (no < q->first || no - q->first >= q->n)
                return NULL;
        return growfifo_slot_(q, (uint32_t)(no - q->first));
}

/* Remove the oldest element (n > 0). */
static inline void growfifo_pop(growfifo *q) {
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
        q->first++;
}
