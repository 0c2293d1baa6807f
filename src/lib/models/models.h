/*
 * models.h — internals shared by the library's mailbox and multicast code
 * (mbox.c, mcast.c): opening a broker flow, writing and reading its frames
 * (common/modelwire.h), and the few numbers kept per handle.
 *
 * PER-HANDLE STATE (the next sequence number, undelivered and lost counts)
 * lives in a table indexed by port-id and tagged with the flow id, so a
 * reused port-id never inherits another flow's counts. Guarded by a mutex.
 */
#pragma once

#include <stdint.h>

#include "ipcf.h"

/* alloc_role() to name with role (enum ctl_role) and the caller's qos. */
int model_open(const char *name, unsigned role, const ipcf_qos *qos, int timeout_ms);
/* Send one DATA frame (flags MW_F_*). Returns len, or the write's error. On
 * success *ret_seq (may be NULL) is the message's number on this handle. */
ssize_t model_send(int h, const void *buf, size_t len, uint32_t flags, uint64_t *ret_seq,
                   int timeout_ms);
/* Receive the next DATA frame, counting LOST frames on the way. If want_seq
 * is not 0, wait instead for the RECEIPT of that message (other frames are
 * taken in: receipts of older messages dropped, UNDELIVERED counted) and put
 * the receiver's pid in *ret_pid. */
ssize_t model_recv(int h, void *buf, size_t cap, ipcf_peer_info *ret_sender, int timeout_ms);
/* Wait for the receipt of message seq (0: of any message, the oldest first);
 * receipts that come meanwhile for other messages are kept for later. */
int model_wait_receipt(int h, uint64_t seq, uint64_t *ret_seq, pid_t *ret_pid, int timeout_ms);
/* Take in what the daemon sent without waiting (UNDELIVERED, receipts). */
void model_drain(int h);
/* The counters of h (-EBADF if h is not a live port). Each call here is
 * -EBADF on a handle model_open did not make with a role it serves: send
 * (a mailbox sender, a group member), recv (a receiver, a member), receipts
 * (a sender), undelivered (a mailbox handle), lost (a member). */
int64_t model_undelivered(int h);
int64_t model_lost(int h);
