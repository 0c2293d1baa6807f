/*
 * service.h — what the library's own layers above services (RPC:
 * src/lib/rpc/) use beyond ipcf.h: on the server's side, what they learn of
 * a request beyond ipcf_call_req from the channel it came on (the
 * facility's stamp, the daemon's FLOW message, never the caller's word); on
 * the caller's side, a call started only on a given channel and calls by
 * deadlines (call.c).
 */
#pragma once

#include <stddef.h>

#include "ipcf.h"

/* The host the caller of req is on, as the daemon named it in the channel's
 * FLOW (this host's name for a local caller; "" if it did not say), into
 * host[cap]. Returns 1 if the caller is on another host (its requests are
 * relayed by the daemons), 0 if on this one, or the errors of
 * ipcf_service_cancelled (-EBADF, -EINVAL, -EPIPE its channel is gone). */
int service_caller_host(int h, const ipcf_call_req *req, char *host, size_t cap);

/* ipcf_call_start, but within a deadline (monotonic ns, UINT64_MAX: none;
 * not 0) and only on the channel *chan names (0: any; *chan becomes the one
 * it went on). If that channel broke since (whether or not a new one was
 * made to the name): -ECONNRESET, nothing sent. RPC pins every
 * transmission of a call to its first one's channel, so that a copy never
 * reaches a restarted server as a new call (lib/rpc/client.c). group (0:
 * none) names the calls of one RPC, its transmissions: see call_wait_by. */
int call_start_on(const char *name, const void *req, size_t len, void *reply, size_t cap, uint64_t deadline,
                  uint64_t *chan, uint64_t group, ipcf_pending *ret);
/* ipcf_call_wait until a deadline (0: do not wait, but read what the
 * channel holds), so that a caller that read the clock does not read it
 * again; -EINPROGRESS (still pending) as soon as another call of its group
 * is finished, whose reply the caller then reads: an RPC waits on its
 * newest transmission, and the server may answer an older one (its
 * handler's reply) while the newest waits behind other callers' work. */
ssize_t call_wait_by(ipcf_pending *call, uint64_t deadline, int *ret_code);
