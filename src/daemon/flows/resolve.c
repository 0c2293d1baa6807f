/*
 * resolve.c — the ordered list of resolvers (see resolve.h). A small sorted
 * array: resolvers are few and registered once, at start.
 */
#include "daemon/flows/resolve.h"

#include <errno.h>

static const resolver *list[RESOLVERS_MAX];
static unsigned n_list;

int resolver_add(const resolver *r) {
        if (!r->resolve)
                return -EINVAL;
        if (n_list == RESOLVERS_MAX)
                return -ENOSPC;
        /* Sorted by rank; among equal ranks, in registration order. */
        unsigned i = n_list;
        while (i > 0 && list[i - 1]->rank > r->rank) {
                list[i] = list[i - 1];
                i--;
        }
        list[i] = r;
        n_list++;
        return 0;
}

/* Walk list[from..) up to (not including) upto. */
static int walk_from(ipcfd *d, struct alloc *a, uint32_t role, unsigned from, const resolver *upto) {
        for (unsigned i = from; i < n_list && list[i] != upto; i++) {
                const resolver *r = list[i];
                if (role >= 32 || !(r->roles & RESOLVE_ROLE(role)))
                        continue;
                int k = r->resolve(d, a);
                if (k != RESOLVE_NEXT)
                        return k;
        }
        return RESOLVE_NEXT;
}

int resolve_walk(ipcfd *d, struct alloc *a, uint32_t role, const resolver *upto) {
        return walk_from(d, a, role, 0, upto);
}

int resolve_walk_after(ipcfd *d, struct alloc *a, uint32_t role, const resolver *after) {
        unsigned i = 0;
        while (i < n_list && list[i] != after)
                i++;
        return walk_from(d, a, role, i + 1, NULL);
}

bool resolve_name_up(ipcfd *d, const char *name, pid_t *ret_pid, uid_t *ret_uid) {
        pid_t pid = 0;
        uid_t uid = 0;
        for (unsigned i = 0; i < n_list; i++)
                if (list[i]->has && list[i]->has(d, name, &pid, &uid)) {
                        if (ret_pid)
                                *ret_pid = pid;
                        if (ret_uid)
                                *ret_uid = uid;
                        return true;
                }
        return false;
}

void resolve_list(ipcfd *d, struct list_page *page, bool all, uid_t uid) {
        for (unsigned i = 0; i < n_list; i++)
                if (list[i]->list)
                        list[i]->list(d, page, all, uid);
}

void resolve_reset(void) { n_list = 0; }
