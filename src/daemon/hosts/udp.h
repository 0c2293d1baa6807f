/*
 * udp.h — the daemon's UDP socket for host associations: one non-blocking
 * socket, datagrams received and sent in batches (recvmmsg, sendmmsg), large
 * buffers (at least UDP_BUF_BYTES each way where the kernel allows: root
 * forces them past rmem_max), and don't-fragment set (EFCP sizes its
 * datagrams itself: one too big for the path must fail, not be cut by IP).
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

#define UDP_BATCH 64
#define UDP_DGRAM_MAX 2048
#define UDP_BUF_BYTES (8 << 20)

typedef struct udp_stats {
        uint64_t dgrams_in, bytes_in, dgrams_out, bytes_out;
        uint64_t send_errors;     /* datagrams the kernel refused (not EAGAIN) */
        uint64_t truncated;       /* datagrams larger than UDP_DGRAM_MAX received */
} udp_stats;

typedef struct udp_sock {
        int fd;
        int family;               /* AF_INET or AF_INET6 */
        int rcvbuf, sndbuf;       /* what the kernel granted */
        udp_stats st;
        /* the send batch: [sent, n) queued */
        unsigned n_tx, sent;
        struct mmsghdr tm[UDP_BATCH];
        struct iovec tiov[UDP_BATCH];
        efcp_addr tdst[UDP_BATCH];
        uint8_t tbuf[UDP_BATCH][UDP_DGRAM_MAX];
        /* the receive batch */
        struct mmsghdr rm[UDP_BATCH];
        struct iovec riov[UDP_BATCH];
        struct sockaddr_storage rsrc[UDP_BATCH];
        uint8_t rbuf[UDP_BATCH][UDP_DGRAM_MAX];
} udp_sock;

/* Open the socket bound to addr. 0, or -errno (-EADDRINUSE...). */
int udp_open(udp_sock *u, const conf_addr *addr);
void udp_close(udp_sock *u);

/* The bound address (its port, when 0 was asked for, tests). */
int udp_local(const udp_sock *u, efcp_addr *ret);

/* Turn a conf address into sockaddr bytes for this socket's family (an IPv4
 * address on an IPv6 socket becomes v4-mapped). */
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

/* Receive one batch (non-blocking). Returns the number received (0: none),
 * or -errno. Datagram i: u->rbuf[i], u->rm[i].msg_len bytes, from
 * u->rsrc[i] (u->rm[i].msg_hdr.msg_namelen bytes). */
int udp_recv(udp_sock *u);
