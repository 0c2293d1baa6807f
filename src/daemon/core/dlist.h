/*
 * dlist.h — an intrusive, circular, doubly linked list (header only).
 *
 * A `struct dlist` is either a list head or a link embedded in an object.
 * INVARIANT: a link is always either on exactly one list or self-linked
 * ("unlinked"), so dlist_del() is always safe to call twice and
 * dlist_linked() tells which. Iteration that may delete the current entry
 * uses dlist_for_each_safe().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct dlist {
        struct dlist *next, *prev;
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define DLIST_INIT(name) { &(name), &(name) }

static inline void dlist_init(struct dlist *l) { l->next = l->prev = l; }
static inline bool dlist_empty(const struct dlist *l) { return l->next == l; }
/* For a link: is it on a list? */
static inline bool dlist_linked(const struct dlist *l) { return l->next != l; }

/* Append e at the tail of list l. e must be unlinked. */
static inline void dlist_add_tail(struct dlist *l, struct dlist *e) {
        e->prev = l->prev;
        e->next = l;
        l->prev->next = e;
        l->prev = e;
}

/* Unlink e (no-op if it is not linked) and leave it self-linked. */
static inline void dlist_del(struct dlist *e) {
        e->prev->next = e->next;
        e->next->prev = e->prev;
        e->next = e->prev = e;
}

#define dlist_entry(ptr, type, member) container_of(ptr, type, member)

/* Iterate over the entries; the loop body may unlink (or free) the current one. */
#define dlist_for_each_safe(pos, tmp, head)                                   \
        for (struct dlist *pos = (head)->next, *tmp = pos->next; pos != (head); \
             pos = tmp, tmp = pos->next)

#define dlist_for_each(pos, head) for (struct dlist *pos = (head)->next; pos != (head); pos = pos->next)
