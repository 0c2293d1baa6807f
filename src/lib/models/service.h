/*
 * service.h — what the library's own layers above services (RPC:
 * src/lib/rpc/) learn of a request beyond ipcf_call_req, from the channel it
 * came on. Everything here is the facility's stamp (the daemon's FLOW
 * message), never the caller's word.
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
