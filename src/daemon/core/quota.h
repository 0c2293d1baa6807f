/*
 * quota.h — per-uid accounting of what clients make the daemon hold.
 *
 * A `user` exists while anything is charged to its uid (it is reference
 * counted: each client, registration, pending allocation and flow side
 * holding a charge holds a reference). Limits come from the [limits] section
 * of the config. quota_charge() refuses with -EDQUOT past a limit and
 * changes nothing then; quota_release() undoes exactly one charge.
 * Unbounded flows charge bytes (2 * max_bytes) to the allocator's uid.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "daemon/core/ipcfd.h"

enum quota_kind {
        QUOTA_CLIENTS,
        QUOTA_REGS,
        QUOTA_PENDING,
        QUOTA_FLOWS,
        QUOTA_BYTES,      /* UNBOUNDED flows: 2 x their queue's capacity */
        QUOTA_RING_BYTES, /* other flows: 2 x their ring size */
        QUOTA_KINDS_,
};

typedef struct user {
        ipcfd *d;
        uid_t uid;
        unsigned refs;
        uint64_t used[QUOTA_KINDS_];
        struct dlist link; /* in ipcfd.users */
} user;

/* The user of uid with one more reference (created if needed), or NULL on
 * -ENOMEM. */
user *user_ref_uid(ipcfd *d, uid_t uid);
user *user_ref(user *u);
/* Drop a reference; frees the user at zero. Returns NULL. */
user *user_unref(user *u);

/* Charge amount of kind to u: 0, or -EDQUOT (nothing charged). */
int quota_charge(user *u, enum quota_kind kind, uint64_t amount);
void quota_release(user *u, enum quota_kind kind, uint64_t amount);
/* Would a charge of amount succeed? (no change) */
int quota_check(const user *u, enum quota_kind kind, uint64_t amount);
