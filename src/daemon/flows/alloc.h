/*
 * alloc.h — the allocation pipeline: from ALLOC to the one final message on
 * the requester's reply socket. It knows no way of finding a name: it asks
 * the resolvers (resolve.h), in their order, and one of them takes the
 * allocation and later accepts it into a flow with an end of its choosing
 * (alloc_accept) or fails it (alloc_fail).
 *
 * STATE MACHINE of an `alloc` (docs/DAEMON.md has the picture):
 *
 *   ALLOC ok ─► resolvers ─┬─► accepted at once (an inbox, the broker) ─► HANDOVER
 *                          ├─► HELD by a resolver (a registration deciding, an
 *                          │   activation running) ─► accepted ─► HANDOVER,
 *                          │                          or failed ─► ERROR
 *                          └─► ERROR (the first resolver's error, else ENOENT)
 *   NEW/HELD: timer ─► ERROR ETIMEDOUT; requester gone ─► withdrawn.
 *   HANDOVER: FLOW sent on the reply socket; CTL_OK back ─► done;
 *             hang-up without OK ─► the allocator gave up: end[0] = DEALLOC.
 *
 * Exactly one outcome message (FLOW or ERROR) is ever written to the reply
 * socket; then the daemon closes it (after the handover OK for FLOW).
 *
 * ORIGINS: an allocation comes from a client's ALLOC (this file: its side 0
 * is the client's end, its outcome goes on the reply socket), or from
 * another origin a module makes it for with alloc_new_from() — a remote
 * host's daemon asking for a local name (daemon/hosts). The origin's ops say
 * what holds side 0 of the flow, how the outcome reaches the requester, and
 * may narrow who may serve it; everything else (resolvers, timeout, holds,
 * the flow) is the same for every origin.
 * INVARIANT: an alloc holds a QUOTA_PENDING charge until its outcome, and
 * its shared-memory charge until handed to the flow or failed; an alloc is
 * held by at most one resolver (alloc_hold), which is told when it goes
 * (resolver.release).
 */
#pragma once

#include <stdint.h>

#include "common/ctl.h"
#include "common/ring.h"
#include "daemon/core/ipcfd.h"
#include "daemon/flows/flow.h"

struct alloc;
struct client;
struct resolver;
struct user;

/* Another origin of allocations (see ORIGINS). */
typedef struct alloc_origin_ops {
        const char *kind;                      /* "host": for logs */
        /* side 0's end: the requester's (its holder, identity, ops) */
        void (*end)(struct alloc *a, flow_end_spec *ret);
        /* the flow is made, side 0 attached and opened: tell the requester.
         * 0, or -errno: the requester is gone (the flow is freed) */
        int (*handover)(struct alloc *a, flow *f);
        /* the ERROR outcome: tell the requester */
        void (*fail)(struct alloc *a, int err, const char *reason, uint32_t end_code);
        /* a goes away (after its outcome, or withdrawn): forget it */
        void (*gone)(struct alloc *a);
        /* may the process who serve a (a registrant)? NULL: anyone may */
        bool (*may_serve)(const struct alloc *a, const cred *who);
} alloc_origin_ops;

enum alloc_state {
        ALLOC_NEW,        /* being resolved */
        ALLOC_HELD,       /* a resolver holds it (alloc_hold) */
        ALLOC_HANDOVER,   /* the flow is made; waiting for the requester's OK */
};

typedef struct alloc {
        struct idmap_node node;        /* node.id: ALLOC_ID == REQ_ID */
        ipcfd *d;
        enum alloc_state state;
        struct client *requester;      /* a client's ALLOC: who; NULL for other origins */
        const alloc_origin_ops *origin;/* NULL: a client's ALLOC */
        void *origin_obj;              /* the origin's object */
        struct dlist req_link;         /* the requester's held list of allocations */
        cred cred;                     /* the requester's */
        char prog[IPCF_NAME_MAX + 1];  /* the requester's program name */
        struct user *user;             /* the requester's: charged PENDING, BYTES */
        uint64_t bytes;                /* shared-memory charge held (bytes_kind) */
        int bytes_kind;                /* QUOTA_BYTES (unbounded) or QUOTA_RING_BYTES */
        bool pending_charged;
        uint32_t seq;                  /* of the ALLOC, echoed on the outcome */
        char name[IPCF_NAME_MAX + 1];
        ipcf_qos qos;                  /* normalised */
        uint32_t role;                 /* enum ctl_role (the ALLOC's ROLE) */
        flow_layout layout;
        int reply;                     /* the reply socket */
        loop_io io;
        loop_timer timer;              /* TIMEOUT_MS; handover guard */
        const struct resolver *held_by;/* HELD: the resolver holding it */
        void *holder;                  /* HELD: the resolver's object (a reg, an activation) */
        struct dlist hold_link;        /* HELD: in the holder's list */
        uint64_t flow_id;              /* HANDOVER: the flow handed over */
        bool here_only;                /* asked as name@<this host>: no other host is asked */
} alloc;

/* What an origin asks for (alloc_new_from). */
typedef struct alloc_params {
        const char *name;
        const ipcf_qos *qos;           /* normalised */
        uint32_t role;                 /* enum ctl_role */
        int timeout_ms;                /* -1: none */
        const cred *cred;              /* the requester, as the origin vouches for it */
        const char *prog;
        struct user *user;             /* charged PENDING and the shared memory */
} alloc_params;

/* An allocation for another origin (see ORIGINS): checked and charged like an
 * ALLOC (name, qos, quotas of p->user: -EINVAL, -EDQUOT), its timer armed, not
 * yet resolved. Returns 0 and *ret, or -errno (nothing made). */
int alloc_new_from(ipcfd *d, const alloc_origin_ops *ops, void *obj, const alloc_params *p, alloc **ret);
/* Walk every resolver for a (its first resolution). Returns as
 * alloc_resolve(): on anything but 0, a is the caller's to fail. */
int alloc_start(alloc *a);
/* The origin withdraws a (its requester gave up): forgotten, nothing sent;
 * the origin's gone op runs. */
void alloc_withdraw(alloc *a);
/* May who serve a (the origin's may_serve)? */
bool alloc_may_serve(const alloc *a, const cred *who);

/* The allocation with id (a REQ_ID), or NULL. */
alloc *alloc_find(ipcfd *d, uint64_t id);

/* A resolver takes a: it decides later (a REQUEST is out, a program starts).
 * holder is the resolver's object, list where a is linked (may be NULL). */
void alloc_hold(alloc *a, const struct resolver *r, void *holder, struct dlist *list);
/* a leaves its resolver without going away (decided, or to be resolved
 * again): unlinked, resolver.release(a, false) called. No-op if not held. */
void alloc_unhold(alloc *a);

/* Accept a into a flow whose side 1 is end (side 0 is the requester's client
 * end; its FLOW goes on the reply socket). qos, if not NULL, replaces the
 * requested qos (a normalised one the acceptor's terms made, e.g. the
 * broker's). Checks the flow cap and the quota of end->user (2 if it is the
 * requester's user), and the requester's own flow quota again.
 * Returns 0: the flow is made, both ends have it, a is in HANDOVER (and no
 * longer held). -ECANCELED: a is gone (the requester gave up, or went over
 * its quota: then it failed with EDQUOT) — nothing to do for a any more.
 * Other -errno (-EDQUOT for the acceptor, -EINVAL, -EMFILE, an end's open
 * error): nothing changed, a is as it was (still held if it was). */
int alloc_accept(alloc *a, const flow_end_spec *end, const ipcf_qos *qos);

/* Fail a with err (< 0), optional reason and end code (a reason without
 * one gets IPCF_END_REFUSED): the ERROR outcome. a is gone afterwards. */
void alloc_fail(alloc *a, int err, const char *reason, uint32_t end_code);

/* Ask the resolvers ranked before upto (NULL: all) for a, as at its ALLOC.
 * Returns as resolver.resolve does: RESOLVE_NEXT if none took it (a is the
 * caller's to fail), 0 if one took it, or a resolver's -errno (a is the
 * caller's to fail). */
int alloc_resolve(alloc *a, const struct resolver *upto);

/* The flows module's part for allocations (its init): ALLOC, withdrawal on
 * OBSERVE_CLIENT_GONE. */
int alloc_init(ipcfd *d);
/* Release every alloc (daemon shutdown): nothing is sent. */
void alloc_free_all(ipcfd *d);
/* Allocations in progress. */
size_t alloc_count(void);
