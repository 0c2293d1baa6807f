/*
 * quota.c — per-uid accounting (see quota.h).
 *
 * Users are few (one per uid that currently holds something), so a list is
 * enough. INVARIANT: used[k] is the sum of the live charges of kind k; a user
 * with refs == 0 is freed at once.
 */
#include "daemon/core/quota.h"

#include <errno.h>
#include <stdlib.h>

/* Linear search: one entry per uid currently holding something, which is a
 * handful on a real host (and bounded by the client cap in any case). */
user *user_ref_uid(ipcfd *d, uid_t uid) {
        dlist_for_each(pos, &d->users) {
                user *u = dlist_entry(pos, user, link);
                if (u->uid == uid)
                        return user_ref(u);
        }
        user *u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        u->d = d;
        u->uid = uid;
        u->refs = 1;
        dlist_add_tail(&d->users, &u->link);
        return u;
}

user *user_ref(user *u) {
        if (u)
                u->refs++;
        return u;
}

user *user_unref(user *u) {
        if (u && --u->refs == 0) {
                dlist_del(&u->link);
                free(u);
        }
        return NULL;
}

/* The configured limit for kind (read on every check: limits are plain
 * config values, so a future reload applies to the next charge). */
static uint64_t quota_limit(const user *u, enum quota_kind kind) {
        const conf_limits *l = &u->d->conf.limits;
        switch (kind) {
        case QUOTA_CLIENTS: return l->clients_per_user;
        case QUOTA_REGS: return l->registrations_per_user;
        case QUOTA_PENDING: return l->pending_per_user;
        case QUOTA_FLOWS: return l->flows_per_user;
        case QUOTA_BYTES: return l->unbounded_bytes_per_user;
        case QUOTA_RING_BYTES: return l->ring_bytes_per_user;
        default: return 0;
        }
}

int quota_check(const user *u, enum quota_kind kind, uint64_t amount) {
        uint64_t lim = quota_limit(u, kind), used = u->used[kind];
        /* Written so that no sum can overflow: amount comes from clients
         * (2 * max_bytes of an unbounded qos). */
        return used > lim || amount > lim - used ? -EDQUOT : 0;
}

int quota_charge(user *u, enum quota_kind kind, uint64_t amount) {
        int r = quota_check(u, kind, amount);
        if (r < 0)
                return r;
        u->used[kind] += amount;
        return 0;
}

/* Saturating: a release never drives a counter below zero, even if a caller
 * got its bookkeeping wrong (that would only make the quota looser). */
void quota_release(user *u, enum quota_kind kind, uint64_t amount) {
        u->used[kind] = u->used[kind] >= amount ? u->used[kind] - amount : 0;
}
