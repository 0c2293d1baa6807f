/*
 * dgtap.h — a tap on the daemon's UDP socket, a seam between hosts/ (which
 * calls it) and monitor/ (which sets it) so that neither names the other:
 * hosts/udp.c calls dgtap() once where a datagram is queued to be sent and
 * once where a received one is handed on; the monitor module sets dgtap_hook
 * while a monitor wants datagrams (IPCF_MONITOR_DATAGRAMS) and clears it
 * when none does. Unset, a call is one load and a branch.
 * One thread (the daemon's loop): the hook is a plain pointer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Handed a datagram: received or sent, its bytes, and the peer's address
 * (a sockaddr_in or sockaddr_in6 of salen bytes). Borrowed for the call. */
typedef void (*dgtap_fn)(bool received, const void *data, size_t len, const void *sa, size_t salen);

/* The tap, or NULL (dgtap.c). */
extern dgtap_fn dgtap_hook;

static inline void dgtap(bool received, const void *data, size_t len, const void *sa, size_t salen) {
        if (dgtap_hook)
                dgtap_hook(received, data, len, sa, salen);
}
