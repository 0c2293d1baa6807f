/*
 * registry.h — names and their registrations.
 *
 * A `reg` is one REGISTER of a name by a client: it owns the daemon's end of
 * a SOCK_SEQPACKET socketpair (the other end went to the client) on which
 * the daemon writes one REQUEST per allocation it asks this registration to
 * decide. Several regs may share a name unless one is EXCLUSIVE.
 *
 * LOAD SPREADING: registry_candidates() lists the regs of a name whose
 * backlog is not full, least loaded (flows + pending) first.
 *
 * TOMBSTONES: the daemon remembers the last TOMBS_MAX (65536) requests that
 * were withdrawn (requester gave up, died, timed out) while pending on a
 * registration, so a late ACCEPT/REFUSE of one answers -ECANCELED rather
 * than -ENOENT (ipcf_accept() skips those). One table for all registrations:
 * a registrant may read many requests before deciding them, so a small ring
 * per registration could forget one it still holds.
 *
 * INVARIANTS: reg->pending == the number of allocs on reg->pending_allocs;
 * a reg is on ipcfd.regs, its name bucket, ipcfd.reg_ids and its owner's
 * list from registry REGISTER until reg_free().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "daemon/core/ipcfd.h"

struct client;

#define REG_BACKLOG_DEFAULT 64u
#define REG_BACKLOG_MAX 1024u

/* Why a registration ends: decides what its pending requesters are told. */
enum reg_end {
        REG_END_UNREGISTER, /* refused, reason "unregistered" */
        REG_END_DIED,       /* refused, reason "target died", END_CODE PEER_DIED */
        REG_END_SHUTDOWN,   /* daemon exit: nothing is told */
};

typedef struct reg {
        struct idmap_node node;        /* node.id: REG_ID */
        ipcfd *d;
        struct client *owner;
        char name[IPCF_NAME_MAX + 1];
        uint32_t flags;                /* enum ipcf_reg_flags */
        uint32_t backlog;
        uint32_t pending;              /* requests sent, not yet decided */
        uint32_t flows;                /* live flows accepted through it */
        int sock;                      /* daemon's end of the request socket */
        loop_io io;                    /* watches sock for the client's hang-up */
        struct user *user;             /* charged QUOTA_REGS */
        struct dlist link;             /* ipcfd.regs */
        struct dlist name_link;        /* ipcfd.reg_buckets[hash(name)] */
        struct dlist owner_link;       /* client.regs */
        struct dlist pending_allocs;   /* alloc.target_link */
} reg;

/* Request handlers (return 0, or -EBADMSG when the message breaks the protocol). */
int registry_handle_register(struct client *c, const ctl_msg *m);
int registry_handle_unregister(struct client *c, const ctl_msg *m);

reg *reg_find(ipcfd *d, uint64_t id);
/* Does anyone hold name? */
bool registry_has(ipcfd *d, const char *name);
/* Fill out[0..max) with the regs of name that may take a request now, least
 * loaded first. Returns how many. */
size_t registry_candidates(ipcfd *d, const char *name, reg **out, size_t max);

void reg_tomb_add(reg *r, uint64_t req_id);
bool reg_tomb_has(const reg *r, uint64_t req_id);
/* Release the tombstone table (daemon shutdown). */
void registry_tombs_free(ipcfd *d);

/* End a registration; its pending requests are re-dispatched to other
 * registrations of the name, else refused as `why` says. */
void reg_free(reg *r, enum reg_end why);
