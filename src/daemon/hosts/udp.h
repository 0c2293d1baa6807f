/*
 * udp.h — the daemon's UDP socket for host associations: one non-blocking
 * socket, datagrams received and sent in batches (recvmmsg, sendmmsg), large
 * buffers (at least UDP_BUF_BYTES each way where the kernel allows: root
 * forces them past rmem_max), and don't-fragment set (EFCP sizes its
 * datagrams itself: one too big for the path must fail, not be cut by IP).
 *
 * SEGMENTATION OFFLOAD, where the kernel has it (probed once at open):
 * consecutive queued datagrams to one destination, of one size (the last of
 * a run may be shorter), leave as ONE message with a UDP_SEGMENT cmsg (GSO:
 * the kernel cuts it into those datagrams, up to UDP_GSO_SEGS of them and
 * UDP_GSO_BYTES in all); the socket takes UDP_GRO, so the kernel may hand
 * over several datagrams of one sender as one buffer with their size in a
 * cmsg, which udp_rx_next() cuts again. On the wire and to the caller nothing
 * changes: the same datagrams, in the same order. A GSO send the kernel
 * refuses as such (EINVAL, EIO, EOPNOTSUPP: a device without checksum
 * offload) turns GSO off for this socket and goes again one datagram per
 * message (counted in gso_off); sendmmsg/recvmmsg stay the way without it.
 *
 * SENDING: udp_tx_slot() gives the next free buffer of the batch; the caller
 * fills it and udp_tx_commit()s it with its destination; udp_flush() sends the
 * batch. A full socket buffer (EAGAIN) keeps what was not sent: udp_flush()
 * says -EAGAIN and the caller waits for the socket to be writable before
 * producing more (never blocks, never drops what it produced). Other send
 * errors (a host unreachable: ICMP) drop that datagram only, counted: the
 * protocol recovers.
 *
 * Addresses are efcp_addr: the sockaddr bytes (sockaddr_in or sockaddr_in6).
 * One thread (the daemon's loop).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/confhosts.h"
#include "efcp/host.h"

#define UDP_BATCH 128           /* datagrams queued for one flush */
#define UDP_DGRAM_MAX 2048
#define UDP_BUF_BYTES (8 << 20)
#define UDP_GSO_SEGS 64         /* datagrams per GSO message (the kernel's UDP_MAX_SEGMENTS) */
#define UDP_GSO_BYTES 65000     /* bytes per GSO message (an IPv4/IPv6 payload's limit, less headers) */
#define UDP_RX_MSGS 64          /* messages per recvmmsg without GRO (one datagram each) */
#define UDP_RX_GRO_MSGS 32      /* messages per recvmmsg with GRO (up to 64 KiB each) */
#define UDP_RX_GRO_BYTES 65536
#define UDP_RX_ARENA (UDP_RX_GRO_MSGS * UDP_RX_GRO_BYTES)

typedef struct udp_stats {
        uint64_t dgrams_in, bytes_in, dgrams_out, bytes_out;
        uint64_t send_errors;     /* datagrams the kernel refused (not EAGAIN) */
        uint64_t truncated;       /* datagrams larger than UDP_DGRAM_MAX received */
        uint64_t gso_msgs;        /* messages sent carrying more than one datagram */
        uint64_t gro_msgs;        /* buffers received carrying more than one datagram */
        uint64_t gso_off;         /* GSO refused by the kernel at send time: turned off */
} udp_stats;

/* One received datagram (udp_rx_next): borrowed until the next udp_recv. */
typedef struct udp_dgram {
        const uint8_t *data;
        size_t len;
        const struct sockaddr_storage *src;
        socklen_t srclen;
} udp_dgram;

typedef struct udp_sock {
        int fd;
        int family;               /* AF_INET or AF_INET6 */
        conf_addr bound;          /* what udp_open was asked to bind (udp_unreachable) */
        int rcvbuf, sndbuf;       /* what the kernel granted */
        bool gso, gro;            /* in use (udp_offload_set) */
        bool can_gso, can_gro;    /* the kernel has them */
        udp_stats st;
        /* the send batch: datagrams [sent, n_tx) queued; tm[k] the messages
         * built from them at a flush, tmsg[k] how many datagrams each carries */
        unsigned n_tx, sent;
        struct iovec tiov[UDP_BATCH];
        efcp_addr tdst[UDP_BATCH];
        struct mmsghdr tm[UDP_BATCH];
        uint8_t tmsg[UDP_BATCH];
        union {
                char buf[CMSG_SPACE(sizeof(uint16_t))];
                struct cmsghdr align;
        } tctl[UDP_BATCH];
        uint8_t tbuf[UDP_BATCH][UDP_DGRAM_MAX];
        /* the receive batch: messages [0, r_n), the walk at (r_i, r_off) */
        unsigned r_n, r_i, r_cap;
        size_t r_off;
        struct mmsghdr rm[UDP_RX_MSGS];
        struct iovec riov[UDP_RX_MSGS];
        struct sockaddr_storage rsrc[UDP_RX_MSGS];
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } rctl[UDP_RX_MSGS];
        uint16_t rseg[UDP_RX_MSGS];   /* each message's datagram size (0: one datagram) */
        uint8_t rbuf[UDP_RX_ARENA];
} udp_sock;

/* Open the socket bound to addr. 0, or -errno (-EADDRINUSE...). */
int udp_open(udp_sock *u, const conf_addr *addr);
void udp_close(udp_sock *u);
/* Use GSO / GRO only where asked and the kernel has them (both are on after
 * udp_open where it has; tests turn them off to check the way without). */
void udp_offload_set(udp_sock *u, bool gso, bool gro);

/* The bound address (its port, when 0 was asked for, tests). */
int udp_local(const udp_sock *u, efcp_addr *ret);

/* Can a socket bound to listen (family 0: the default, 0.0.0.0) send to
 * peer? An IPv4 socket reaches IPv4 addresses only; an IPv6 one bound to
 * [::] both (IPv4 as v4-mapped); one bound to another IPv6 address the
 * family of that address only. NULL when it can, else why not (a static
 * text for "line N: address: ..."). */
const char *udp_unreachable(const conf_addr *listen, const conf_addr *peer);

/* Turn a conf address into sockaddr bytes for this socket's family (an IPv4
 * address on an IPv6 socket becomes v4-mapped). The caller has checked that
 * the socket reaches it (udp_unreachable). */
void udp_addr_from_conf(const udp_sock *u, const conf_addr *c, efcp_addr *ret);

/* addr as text ("a.b.c.d:port", "[v6]:port", "" when empty) into out. */
void udp_addr_text(const efcp_addr *addr, char *out, size_t size);

/* A free buffer of UDP_DGRAM_MAX bytes, or NULL when the batch is full (flush). */
uint8_t *udp_tx_slot(udp_sock *u);
/* The slot just filled: len bytes to dst. */
void udp_tx_commit(udp_sock *u, size_t len, const efcp_addr *dst);
/* Send the batch. 0 (all sent, or dropped on errors), -EAGAIN (the socket is
 * full: the rest stays queued). */
int udp_flush(udp_sock *u);
/* Datagrams queued but not sent. */
static inline unsigned udp_tx_pending(const udp_sock *u) { return u->n_tx - u->sent; }

/* Receive one batch (non-blocking). Returns the number of messages received
 * (0: none; with GRO a message may hold several datagrams), or -errno. The
 * datagrams: udp_rx_next() until false. */
int udp_recv(udp_sock *u);
/* The next datagram of the batch udp_recv() received, in arrival order. A
 * datagram larger than UDP_DGRAM_MAX is counted (truncated) and skipped. */
bool udp_rx_next(udp_sock *u, udp_dgram *ret);
/* Did the last udp_recv() fill every message slot (more may be waiting)? */
static inline bool udp_rx_full(const udp_sock *u) { return u->r_n == u->r_cap; }
