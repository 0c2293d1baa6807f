/*
 * idmap.h — an intrusive hash map from u64 ids to objects.
 *
 * The daemon names its objects (registrations, allocation requests, flows) by
 * 64-bit ids that clients quote back in requests; an idmap finds the object
 * in O(1) on average. Objects embed a `struct idmap_node`. The bucket array
 * grows (doubling) when the load passes 1, so lookups stay short whatever the
 * number of objects; the number of objects itself is bounded by the quotas.
 * INVARIANT: an id is in a map at most once (ids are never reused).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct idmap_node {
        uint64_t id;
        struct idmap_node *next;
};

typedef struct idmap {
        struct idmap_node **buckets;
        size_t n_buckets; /* a power of two, or 0 before the first add */
        size_t n;
} idmap;

/* Add node (node->id set by the caller). Returns 0 or -ENOMEM. */
int idmap_add(idmap *m, struct idmap_node *node);
/* Remove node if present (safe if it is not). */
void idmap_del(idmap *m, struct idmap_node *node);
/* The node with id, or NULL. */
struct idmap_node *idmap_find(const idmap *m, uint64_t id);
/* Free the bucket array (the nodes belong to their objects). */
void idmap_deinit(idmap *m);
