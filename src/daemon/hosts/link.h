/*
 * link.h — the host associations of this daemon, driven by its loop: the
 * UDP socket (udp.h), the authenticated host layer of the engine
 * (efcp/host.h) with one peer per enrolled host, the loop timer of the
 * engine's deadlines, the impairment hook for tests (impair.h), and on each
 * association the CONTROL FLOW that carries the daemons' messages
 * (common/hostwire.h). What the messages mean is the owner's (hosts.c):
 * this layer moves them, and data flows, and says when a host comes and goes.
 *
 * PEER LIFE:
 *   DOWN ── handshake (we connect at start to every host with an address,
 *           and again whenever its association died) ──► UP: control flow
 *           open, HELLO sent; ops->up when the peer's HELLO arrives
 *   UP ── nothing heard for the dead interval (keepalives every fifth of
 *         it), the peer closed, or broke the protocol ──► DOWN: ops->down(
 *         EFCP_REASON_PEER_TIMEOUT / _PEER_CLOSED / _PROTOCOL_ERROR)
 *   UP ── the peer started a new association (its daemon restarted) ──►
 *         ops->down(EFCP_REASON_PEER_RESTARTED), then UP again at once
 * After ops->down every data flow of the old association is gone (the owner
 * must forget its efcp_flow pointers in the callback).
 *
 * DATA FLOWS: the owner opens them (hlink_flow_open, with a pointer of its
 * own kept in the flow), the peer opens them (ops->flow_alloc), and learns
 * that one moved (a message, room after a refused send, its end) through
 * ops->flow_ready — only the flows that moved, from the engine's ready list.
 * After the owner sent on flows it calls hlink_kick(): the datagrams go out
 * once per loop round.
 *
 * CONTROL MESSAGES: hlink_send() queues one for a peer (a bounded queue in
 * front of the control flow's credit); every message received is checked by
 * hw_parse() before ops->control sees it (a malformed one is counted and
 * dropped: the peer is authenticated, not trusted).
 *
 * TRUST: everything from the network goes through efcp_host_input(), which
 * authenticates it before any state is kept.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/hostwire.h"
#include "daemon/core/dlist.h"
#include "daemon/core/loop.h"
#include "efcp/host.h"

typedef struct hlink hlink;
typedef struct hpeer hpeer;

/* Control messages queued for one peer beyond the control flow's credit. */
#define HLINK_CTL_QUEUE_MAX 65536
/* Flows per association (data flows and the control flow). */
#define HLINK_FLOWS_MAX 16384

enum hpeer_state { HPEER_DOWN, HPEER_CONNECTING, HPEER_UP };

typedef struct hlink_ops {
        /* the peer's daemon said HELLO on a new association */
        void (*up)(void *ctx, hpeer *p);
        /* the association is over (reason EFCP_REASON_*): every data flow with it too */
        void (*down)(void *ctx, hpeer *p, uint32_t reason);
        /* a checked control message (borrowed for the call) */
        void (*control)(void *ctx, hpeer *p, const hw_msg *m);
        /* the peer opened a data flow to our port efcp_flow_local_port(f) */
        void (*flow_alloc)(void *ctx, hpeer *p, efcp_flow *f);
        /* a data flow with the owner's pointer moved (efcp_assoc_next_ready) */
        void (*flow_ready)(void *ctx, hpeer *p, efcp_flow *f);
} hlink_ops;

typedef struct hpeer_info {
        const char *name;
        enum hpeer_state state;
        efcp_addr addr;
        efcp_path_info path;
        efcp_stats st;           /* the current association's (zero when none) */
        uint32_t flows;          /* data flows open on it */
        uint64_t ups, downs;     /* associations made and lost */
        uint64_t ctl_bad;        /* control messages refused by hw_parse */
} hpeer_info;

struct hpeer {
        hlink *k;
        unsigned idx;             /* in the config's host order */
        char name[CONF_HOST_NAME_MAX + 1];
        efcp_peer *ep;
        efcp_assoc *a;            /* the live association, NULL when down */
        efcp_flow *ctl;
        enum hpeer_state state;
        uint64_t since;           /* when it entered its state (CLOCK_MONOTONIC ns) */
        bool hello_in;            /* the peer's HELLO arrived on this association */
        uint32_t next_port;       /* local port-ids for data flows */
        uint32_t flows;           /* data flows the owner holds on it */
        uint64_t ups, downs, ctl_bad;
        /* control messages waiting for credit: encoded, FIFO */
        struct ctlq *q_head, *q_tail;
        uint32_t q_len;
        void *owner;              /* the owner's per-host state */
};

typedef struct hlink_cfg {
        const conf *c;            /* [hosts], [host ...], [impair] */
        uint8_t private_key[32];
        const char *self;         /* this host's name (for HELLO) */
        conf_addr listen;         /* resolved by the caller (the default applied) */
        unsigned spare;           /* room for hosts enrolled later (hlink_peer_add) */
} hlink_cfg;

/* Open the socket, enrol every [host] (a bad key is -EINVAL, an address the
 * socket cannot reach -EAFNOSUPPORT, each with *ret_line set), start
 * connecting. ops/ctx: the owner. */
int hlink_new(loop *l, const hlink_cfg *cfg, const hlink_ops *ops, void *ctx, hlink **ret,
              unsigned *ret_line);
/* Close every association without telling anyone (daemon exit). */
hlink *hlink_free(hlink *k);
/* Daemon exit (SIGTERM), before hlink_free: close every live association
 * (EFCP_REASON_PEER_CLOSED), and carry the confirmed close (PROTOCOL.md §5)
 * for at most budget_ns, so that the other hosts end their flows with us
 * "host closed the association" at once, not after the dead interval.
 * Blocks (its own poll on the socket); the owner hears nothing more. */
void hlink_close_all(hlink *k, uint64_t budget_ns);

/* Enrol one more host while running (its key from the directory: hosts.c
 * hosts_enrol) and start connecting to it. Peers never move: *ret stays
 * valid as long as the link. 0, -EEXIST (that name, or that key, is
 * enrolled already), -EINVAL (our own key, or not a usable key),
 * -EAFNOSUPPORT (an address the socket cannot reach), -ENOSPC
 * (no room left: hlink_cfg.spare, CONF_HOSTS_MAX). */
int hlink_peer_add(hlink *k, const char *name, const uint8_t pub[32], const conf_addr *addr, hpeer **ret);

unsigned hlink_peers(const hlink *k);
hpeer *hlink_peer(hlink *k, unsigned i);
hpeer *hlink_peer_by_name(hlink *k, const char *name);
void hlink_peer_info(const hpeer *p, hpeer_info *ret);
void hlink_public_key(const hlink *k, uint8_t ret[32]);
/* The UDP socket's bound address. */
int hlink_local_addr(const hlink *k, efcp_addr *ret);

/* Queue a control message for p. 0, -ENOTCONN (p is down), -ENOBUFS (its
 * queue is full), -EINVAL (m would not parse). */
int hlink_send(hpeer *p, const hw_msg *m);

/* A fresh local port-id for a data flow with p (not in use, not the control
 * flow's, not 0). */
uint32_t hlink_port_new(hpeer *p);
/* Open a data flow with p (local, remote ports; EFCP_POLICY_*), keeping user
 * in it. 0, -ENOTCONN, -EADDRINUSE, -ENOSPC. */
int hlink_flow_open(hpeer *p, uint32_t local_port, uint32_t remote_port, uint32_t policy, void *user,
                    efcp_flow **ret);
/* Take a flow the peer opened (ops->flow_alloc), keeping user in it; a flow
 * not adopted during the callback is refused. */
void hlink_flow_adopt(hpeer *p, efcp_flow *f, void *user);
/* The owner is done with f (reason EFCP_REASON_*): closed in the engine. */
void hlink_flow_close(hpeer *p, efcp_flow *f, uint32_t reason);

/* Traffic moved (a datagram came, a relay moved a message): look at the
 * descriptors without sleeping for [hosts] poll_us, so that the answer
 * that follows within microseconds costs no wake-up. */
void hlink_busy(hlink *k);

/* Datagrams are due (the owner queued data or control): send them this
 * loop round. */
void hlink_kick(hlink *k);

typedef struct hlink_stats {
        uint64_t dgrams_in, dgrams_out, bytes_in, bytes_out, send_errors, would_block;
        efcp_host_stats host;
} hlink_stats;
void hlink_stats_get(const hlink *k, hlink_stats *ret);
