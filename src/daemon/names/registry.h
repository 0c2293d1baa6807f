/*
 * registry.h — names and their registrations: the first resolver
 * (flows/resolve.h, rank RESOLVE_RANK_REGISTRY).
 *
 * A `reg` is one REGISTER of a name by a client: it owns the daemon's end of
 * a SOCK_SEQPACKET socketpair (the other end went to the client) on which
 * the daemon writes one REQUEST per allocation it asks this registration to
 * decide (ACCEPT or REFUSE, handled here too). Several regs may share a name
 * unless one is EXCLUSIVE. A registration made with CTL_REG_AUTO (an inbox)
 * has allocations of its role accepted by the daemon on its behalf: their
 * FLOW goes on the registration socket.
 *
 * AS A RESOLVER: an allocation of a plain, call or datagram role goes to the
 * registration of its name with room that is least loaded (flows + pending),
 * which then holds it (alloc_hold) until it decides; none with room: EBUSY;
 * none at all: the next resolver.
 *
 * TOMBSTONES: the daemon remembers the last TOMBS_MAX (65536) requests that
 * were withdrawn (requester gave up, died, timed out) while pending on a
 * registration, so a late ACCEPT/REFUSE of one answers -ECANCELED rather
 * than -ENOENT (ipcf_accept() skips those). One table for all registrations:
 * a registrant may read many requests before deciding them, so a small ring
 * per registration could forget one it still holds.
 *
 * INVARIANTS: reg->pending == the number of allocs on reg->pending_allocs;
 * a reg is on the registry's list, its name bucket, the id map and its
 * owner's list from REGISTER until reg_free().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/core/ipcfd.h"
#include "daemon/core/module.h"

#define REG_BACKLOG_DEFAULT 64u
#define REG_BACKLOG_MAX 1024u

/* Does a live registration hold name? */
bool registry_has(ipcfd *d, const char *name);
/* Does a live registration of name have a registrant for whom ok() says
 * yes (the directory's publisher: whose registrations other hosts may
 * reach)? */
bool registry_any(ipcfd *d, const char *name, bool (*ok)(const ipcfd *d, const char *name, const cred *who));

extern const daemon_module registry_module;
