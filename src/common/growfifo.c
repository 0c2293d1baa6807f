/*
 * growfifo.c — a growable FIFO of fixed-size elements (growfifo.h). The
 * capacity is a power of two, so a position is (head + i) & (cap - 1); a
 * grow copies the elements oldest first into a buffer twice as large.
 */
#include "common/growfifo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GROWFIFO_FIRST_CAP 64u

void growfifo_init(growfifo *q, uint32_t size) { *q = (growfifo){ .size = size }; }

int growfifo_room(growfifo *q, uint32_t max) {
        if (q->n >= max)
                return -ENOSPC;
        if (q->n < q->cap)
                return 0;
        if (q->cap > UINT32_MAX / 2)
                return -ENOMEM;
        uint32_t cap = q->cap ? 2 * q->cap : GROWFIFO_FIRST_CAP;
        while (cap / 2 >= max)
                cap /= 2; /* a first capacity above max: the least power of two holding max */
        uint8_t *v = malloc((size_t)cap * q->size);
        if (!v)
                return -ENOMEM;
        if (q->n) { /* full: oldest first, in two pieces */
                uint32_t one = q->cap - q->head;
                memcpy(v, q->v + (size_t)q->head * q->size, (size_t)one * q->size);
                memcpy(v + (size_t)one * q->size, q->v, (size_t)q->head * q->size);
        }
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
        return 0;
}

void growfifo_free(growfifo *q) {
        free(q->v);
        q->first += q->n;
        q->v = NULL;
        q->cap = q->head = q->n = 0;
}
