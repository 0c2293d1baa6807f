/*
 * flowmem.h — the one maker of a flow's memory and wake-up channels, for
 * every place a flow is made: the daemon (flows between processes, and the
 * broker's own flows), the library (pipes) and the tests.
 *
 * A flow is one memfd (sized from the qos by flow_layout_for(), sealed
 * against shrinking and growing before anyone else sees it, the region
 * header written) and four wake-up channels (wake.h), one per direction and
 * purpose: side s waits for data on RX<s> and for room on TX<s>.
 *
 * WHO HOLDS WHAT. Side s receives, in this order (the FLOW message's fds):
 *   FLOW_FD_MEM           the memfd
 *   FLOW_FD_RX_EAR        the ear of RX<s>  (its ipcf_fd: data, or the end)
 *   FLOW_FD_TX_EAR        the ear of TX<s>  (its ipcf_fd_send: room, or the end)
 *   FLOW_FD_PEER_RX_BELL  the bell of RX<1-s> (to wake the peer for data)
 *   FLOW_FD_PEER_TX_BELL  the bell of TX<1-s> (to wake the peer for room)
 *   FLOW_FD_RX_BELL       the bell of RX<s>  (to wake its own waiters: poll
 *   FLOW_FD_TX_BELL       the bell of TX<s>   mode, kicks, its own end)
 * An ear goes to its side only; the maker (the daemon) keeps the four bells,
 * to ring a side whose peer died, and closes the memfd and the ears once the
 * sides have them.
 */
#pragma once

#include "common/ring.h"

enum { FLOW_WAKE_RX0, FLOW_WAKE_TX0, FLOW_WAKE_RX1, FLOW_WAKE_TX1, FLOW_WAKES };

enum {
        FLOW_FD_MEM,
        FLOW_FD_RX_EAR,
        FLOW_FD_TX_EAR,
        FLOW_FD_PEER_RX_BELL,
        FLOW_FD_PEER_TX_BELL,
        FLOW_FD_RX_BELL,
        FLOW_FD_TX_BELL,
        FLOW_SIDE_FDS
};

/* The wake channel side s waits on for data (rx) or room (tx). */
static inline int flow_wake_rx(int side) { return side ? FLOW_WAKE_RX1 : FLOW_WAKE_RX0; }
static inline int flow_wake_tx(int side) { return side ? FLOW_WAKE_TX1 : FLOW_WAKE_TX0; }

typedef struct flow_mem {
        flow_layout layout;
        int memfd;                 /* -1 once dropped */
        int ear[FLOW_WAKES];       /* -1 once handed out and dropped */
        int bell[FLOW_WAKES];
} flow_mem;

/* Make a flow for a normalised qos: every descriptor close-on-exec, the
 * memfd named label (shown in /proc/<pid>/fd). Returns 0 and *ret, or
 * -EINVAL (no layout for qos), -EMFILE (out of descriptors), -ENOMEM. */
int flow_mem_make(const ipcf_qos *qos, const char *label, flow_mem *ret);

/* The descriptors of side s in FLOW_FD order, borrowed from m (not
 * duplicated; -1 where m dropped one). */
void flow_mem_side_fds(const flow_mem *m, int side, int ret_fds[FLOW_SIDE_FDS]);

/* Close the memfd and the ears (the sides have their copies); keep the bells. */
void flow_mem_drop_handout(flow_mem *m);

/* Close everything m still holds. Idempotent. */
void flow_mem_close(flow_mem *m);
