/*
 * idmap.c — the hash map of idmap.h (chained buckets, power-of-two sized).
 */
#include "daemon/core/idmap.h"

#include <errno.h>
#include <stdlib.h>

static size_t bucket_of(const idmap *m, uint64_t id) {
        /* Ids are sequential: a multiplicative hash spreads them anyway. */
        return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (m->n_buckets - 1);
}

/* Double the bucket array and rehash every node into it. On allocation
 * failure the old table stays as it is (still correct, just longer chains). */
static int idmap_grow(idmap *m) {
        size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
        struct idmap_node **b = calloc(nb, sizeof(*b));
        if (!b)
                return -ENOMEM;
        struct idmap_node **old = m->buckets;
        size_t onb = m->n_buckets;
        m->buckets = b;
        m->n_buckets = nb;
        for (size_t i = 0; i < onb; i++) {
                for (struct idmap_node *n = old[i], *next; n; n = next) {
                        next = n->next;
                        size_t k = bucket_of(m, n->id);
                        n->next = b[k];
                        b[k] = n;
                }
        }
        free(old);
        return 0;
}

int idmap_add(idmap *m, struct idmap_node *node) {
        /* Keep the load factor at most 1: chains stay O(1) on average. */
        if (m->n >= m->n_buckets) {
                int r = idmap_grow(m);
                if (r < 0 && m->n_buckets == 0)
                        return r; /* with a table already there, a longer chain is fine */
        }
        size_t k = bucket_of(m, node->id);
        node->next = m->buckets[k];
        m->buckets[k] = node;
        m->n++;
        return 0;
}

void idmap_del(idmap *m, struct idmap_node *node) {
        /* Walk the chain through the link pointers, so unlinking the head
         * and an inner node is the same code. */
        if (!m->n_buckets)
                return;
        for (struct idmap_node **p = &m->buckets[bucket_of(m, node->id)]; *p; p = &(*p)->next) {
                if (*p == node) {
                        *p = node->next;
                        node->next = NULL;
                        m->n--;
                        return;
                }
        }
}

struct idmap_node *idmap_find(const idmap *m, uint64_t id) {
        if (!m->n_buckets)
                return NULL;
        for (struct idmap_node *n = m->buckets[bucket_of(m, id)]; n; n = n->next)
                if (n->id == id)
                        return n;
        return NULL;
}

void idmap_deinit(idmap *m) {
        free(m->buckets);
        m->buckets = NULL;
        m->n_buckets = m->n = 0;
}
