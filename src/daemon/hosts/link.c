/*
 * link.c — the host associations in the daemon's loop (link.h).
 *
 * ONE ROUND (hlink_run), after a batch of datagrams, a timer, or a kick:
 *   1. host events: a new association (PEER_UP: control flow, HELLO), an old
 *      one handed back (ASSOC_RETIRED: the peer restarted, or a dead one was
 *      replaced);
 *   2. each live association's events: the peer opened a flow, the
 *      association died;
 *   3. each live association's ready list: control messages in (and the
 *      queue out), data flows to the owner;
 *   4. output: every datagram due, in batches, through the impairment hook
 *      when there is one; a full socket stops output until it is writable;
 *   5. the timer at the engine's next deadline.
 * Owner callbacks may queue more (control, data): they kick, and the kick
 * timer (due at once) runs another round after this loop iteration's I/O.
 */
#include "daemon/hosts/link.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sodium.h>
#include <time.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/hosts/impair.h"
#include "daemon/hosts/udp.h"
#include "efcp/keyfile.h"

/* Receive batches per readable event before others get a turn. */
#define HLINK_RX_ROUNDS 8

struct ctlq {
        struct ctlq *next;
        uint16_t len;
        uint8_t data[];
};

struct hlink {
        loop *l;
        const hlink_ops *ops;
        void *ctx;
        udp_sock *u;
        loop_io io;
        bool blocked;             /* the socket is full: waiting for EPOLLOUT */
        efcp_host *h;
        hpeer *peers;
        unsigned n, cap;          /* peers[0..n) enrolled, room for cap (hlink_peer_add) */
        loop_timer timer;         /* the engine's next deadline */
        loop_timer kick;          /* another round, this loop iteration */
        impair *imp;
        uint64_t boot;
        char self[CONF_HOST_NAME_MAX + 1];
        uint64_t would_block;
        bool in_run;
        uint64_t poll_ns;         /* after traffic, look without sleeping this long */
};

static void hlink_run(hlink *k);

static hpeer *peer_of(hlink *k, const efcp_peer *ep) {
        for (unsigned i = 0; i < k->n; i++)
                if (k->peers[i].ep == ep)
                        return &k->peers[i];
        return NULL;
}

/* ---- output ------------------------------------------------------------------ */

/* One datagram into the send batch (the impairment hook's way out, and held
 * datagrams released by its timer). */
static void link_emit(void *ctx, const void *buf, size_t len, const efcp_addr *dst) {
        hlink *k = ctx;
        uint8_t *slot = udp_tx_slot(k->u);
        if (!slot && udp_flush(k->u) == 0)
                slot = udp_tx_slot(k->u);
        if (!slot) {
                k->would_block++; /* lost like on a congested link: the protocol recovers */
                return;
        }
        memcpy(slot, buf, len);
        udp_tx_commit(k->u, len, dst);
}

static void link_block(hlink *k, bool blocked) {
        if (k->blocked == blocked)
                return;
        k->blocked = blocked;
        loop_io_mod(k->l, &k->io, EPOLLIN | (blocked ? EPOLLOUT : 0));
}

/* Every datagram due now. */
static void link_output(hlink *k) {
        uint64_t now = now_ns();
        if (k->blocked)
                return;
        for (;;) {
                uint8_t *slot = udp_tx_slot(k->u);
                if (!slot) {
                        if (udp_flush(k->u) < 0) {
                                link_block(k, true);
                                return;
                        }
                        continue;
                }
                efcp_addr dst;
                int n;
                if (k->imp) {
                        uint8_t buf[UDP_DGRAM_MAX];
                        n = efcp_host_output(k->h, buf, sizeof(buf), now, &dst);
                        if (n > 0 && dst.len)
                                impair_send(k->imp, buf, (size_t)n, &dst, now);
                } else {
                        n = efcp_host_output(k->h, slot, UDP_DGRAM_MAX, now, &dst);
                        if (n > 0 && dst.len)
                                udp_tx_commit(k->u, (size_t)n, &dst);
                }
                if (n <= 0)
                        break;
        }
        if (udp_flush(k->u) < 0)
                link_block(k, true);
}

/* ---- control flow -------------------------------------------------------------- */

static void ctlq_clear(hpeer *p) {
        while (p->q_head) {
                struct ctlq *q = p->q_head;
                p->q_head = q->next;
                free(q);
        }
        p->q_tail = NULL;
        p->q_len = 0;
}

/* Move queued messages into the control flow while its credit lasts. */
static void ctlq_drain(hpeer *p) {
        while (p->q_head && p->ctl) {
                struct ctlq *q = p->q_head;
                if (efcp_flow_send(p->ctl, q->data, q->len) < 0)
                        return; /* -EAGAIN: the ready list tells us when to go on */
                p->q_head = q->next;
                if (!p->q_head)
                        p->q_tail = NULL;
                p->q_len--;
                free(q);
        }
}

int hlink_send(hpeer *p, const hw_msg *m) {
        uint8_t buf[HW_MSG_MAX];
        int n = hw_build(m, buf, sizeof(buf));
        if (n < 0)
                return n;
        if (p->state != HPEER_UP || !p->ctl)
                return -ENOTCONN;
        if (!p->q_head && efcp_flow_send(p->ctl, buf, (size_t)n) == 0) {
                hlink_kick(p->k);
                return 0;
        }
        if (p->q_len >= HLINK_CTL_QUEUE_MAX)
                return -ENOBUFS;
        struct ctlq *q = malloc(sizeof(*q) + (size_t)n);
        if (!q)
                return -ENOMEM;
        q->next = NULL;
        q->len = (uint16_t)n;
        memcpy(q->data, buf, (size_t)n);
        if (p->q_tail)
                p->q_tail->next = q;
        else
                p->q_head = q;
        p->q_tail = q;
        p->q_len++;
        return 0;
}

/* Messages from the peer's daemon, each checked before the owner sees it. */
static void ctl_input(hpeer *p) {
        uint8_t buf[HW_MSG_MAX];
        for (;;) {
                int len = efcp_flow_next_len(p->ctl);
                if (len < 0)
                        break;
                if (len > (int)sizeof(buf)) {
                        /* too long to be a message: take it and drop it (no
                         * memory for it: leave it for the next input, not a
                         * loop that spins on it for ever) */
                        uint8_t *big = malloc((size_t)len);
                        if (!big)
                                break;
                        efcp_flow_recv(p->ctl, big, (size_t)len);
                        free(big);
                        p->ctl_bad++;
                        continue;
                }
                len = efcp_flow_recv(p->ctl, buf, sizeof(buf));
                if (len < 0)
                        break;
                hw_msg m;
                if (hw_parse(buf, (size_t)len, &m) < 0) {
                        p->ctl_bad++;
                        log_debug("host %s: a malformed control message (%d bytes) dropped", p->name, len);
                        continue;
                }
                if (m.type == HW_HELLO) {
                        if (strcmp(m.name, p->name) != 0)
                                log_debug("host %s calls itself %s", p->name, m.name);
                        if (!p->hello_in) {
                                p->hello_in = true;
                                log_debug("host %s: up", p->name);
                                p->k->ops->up(p->k->ctx, p);
                        }
                        continue;
                }
                if (!p->hello_in)
                        continue; /* nothing before HELLO */
                p->k->ops->control(p->k->ctx, p, &m);
                if (p->state != HPEER_UP || !p->ctl)
                        return; /* the owner's callback took the association down */
        }
}

/* ---- peer life ------------------------------------------------------------------ */

/* The association of p is over (reason); every data flow with it too.
 * reconnect: start a handshake to get a new one (not when the peer has just
 * made a new one: a restart). */
static void peer_down(hpeer *p, uint32_t reason, bool reconnect) {
        if (p->state != HPEER_UP)
                return;
        hlink *k = p->k;
        log_debug("host %s: down (reason %u)", p->name, reason);
        bool told = p->hello_in;
        p->state = HPEER_DOWN;
        p->a = NULL;
        p->ctl = NULL;
        p->hello_in = false;
        p->flows = 0;
        p->downs++;
        ctlq_clear(p);
        if (told)
                k->ops->down(k->ctx, p, reason);
        /* reach it again (a host that only calls us calls again itself) */
        p->since = now_ns();
        if (reconnect && efcp_peer_addr(p->ep)->len) {
                efcp_peer_connect(p->ep, p->since);
                p->state = HPEER_CONNECTING;
        }
}

static void peer_up(hpeer *p, efcp_assoc *a) {
        if (p->state == HPEER_UP)
                peer_down(p, EFCP_REASON_PEER_RESTARTED, false);
        p->a = a;
        p->state = HPEER_UP;
        p->since = now_ns();
        p->ups++;
        p->hello_in = false;
        efcp_flow_policy pol = { .flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn_random = true };
        int r = efcp_flow_open(a, HW_CONTROL_PORT, HW_CONTROL_PORT, &pol, &p->ctl);
        if (r == -EADDRINUSE)
                p->ctl = efcp_flow_get(a, HW_CONTROL_PORT); /* the peer opened it first */
        if (!p->ctl) {
                /* an association that died as it came up is not an error:
                 * its down follows in the same round of events */
                if (efcp_assoc_dead(a))
                        log_debug("host %s: association ended as it came up", p->name);
                else
                        log_error("host %s: cannot open the control flow: %s", p->name, strerror(-r));
                return;
        }
        hw_msg m = { .type = HW_HELLO, .boot = p->k->boot };
        str_copy(m.name, p->k->self, sizeof(m.name));
        uint8_t buf[HW_MSG_MAX];
        int n = hw_build(&m, buf, sizeof(buf));
        if (n > 0)
                efcp_flow_send(p->ctl, buf, (size_t)n);
        log_debug("host %s: association up", p->name);
}

static void host_events(hlink *k) {
        efcp_host_event ev;
        while (efcp_host_event_next(k->h, &ev)) {
                hpeer *p = peer_of(k, ev.peer);
                if (!p)
                        continue;
                if (ev.type == EFCP_HOST_EV_PEER_UP) {
                        peer_up(p, ev.assoc);
                } else if (ev.type == EFCP_HOST_EV_ASSOC_RETIRED) {
                        /* our live one replaced: the peer restarted (a dead
                         * one we already let go of) */
                        if (p->a == ev.assoc)
                                peer_down(p, ev.reason, false);
                        efcp_assoc_free(ev.assoc);
                }
        }
}

static void assoc_events(hpeer *p) {
        efcp_event ev;
        while (p->a && efcp_event_next(p->a, &ev)) {
                switch (ev.type) {
                case EFCP_EV_FLOW_ALLOCATED:
                        if (ev.local_port == HW_CONTROL_PORT)
                                break;
                        efcp_flow *f = efcp_flow_get(p->a, ev.local_port);
                        if (f && p->hello_in)
                                p->k->ops->flow_alloc(p->k->ctx, p, f);
                        if (f && p->a && !efcp_flow_user(f))
                                efcp_flow_close(f, EFCP_REASON_REFUSED); /* nobody took it */
                        break;
                case EFCP_EV_FLOW_DEALLOCATED:
                        if (ev.local_port == HW_CONTROL_PORT && !efcp_assoc_dead(p->a)) {
                                /* the peer ended the control flow alone (a
                                 * dying association says so by its own event,
                                 * next): it carries nothing more */
                                efcp_assoc_close(p->a, EFCP_REASON_PROTOCOL_ERROR);
                                peer_down(p, EFCP_REASON_PROTOCOL_ERROR, true);
                        }
                        break; /* data flows: the owner hears it from the ready list */
                case EFCP_EV_PEER_TIMEOUT:
                case EFCP_EV_PEER_CLOSED:
                case EFCP_EV_PROTOCOL_ERROR: {
                        uint32_t reason = ev.type == EFCP_EV_PEER_TIMEOUT ? EFCP_REASON_PEER_TIMEOUT
                                          : ev.type == EFCP_EV_PEER_CLOSED ? EFCP_REASON_PEER_CLOSED
                                                                            : EFCP_REASON_PROTOCOL_ERROR;
                        if (ev.type == EFCP_EV_PEER_CLOSED && ev.reason == EFCP_REASON_PEER_RESTARTED)
                                reason = EFCP_REASON_PEER_RESTARTED;
                        peer_down(p, reason, true);
                        break;
                }
                }
        }
}

static void assoc_ready(hpeer *p) {
        efcp_flow *f;
        while (p->a && (f = efcp_assoc_next_ready(p->a)) != NULL) {
                if (f == p->ctl) {
                        ctl_input(p);
                        if (p->ctl)
                                ctlq_drain(p);
                        continue;
                }
                if (efcp_flow_user(f))
                        p->k->ops->flow_ready(p->k->ctx, p, f);
        }
}

/* ---- the round --------------------------------------------------------------------- */

static void hlink_run(hlink *k) {
        if (k->in_run) {
                hlink_kick(k);
                return;
        }
        k->in_run = true;
        efcp_host_timeout(k->h, now_ns());
        host_events(k);
        for (unsigned i = 0; i < k->n; i++) {
                assoc_events(&k->peers[i]);
                assoc_ready(&k->peers[i]);
        }
        link_output(k);
        /* output may have run timers that produced events */
        host_events(k);
        for (unsigned i = 0; i < k->n; i++)
                assoc_events(&k->peers[i]);
        uint64_t d = efcp_host_next_deadline(k->h);
        if (d != UINT64_MAX)
                loop_timer_arm(k->l, &k->timer, d);
        else
                loop_timer_cancel(k->l, &k->timer);
        k->in_run = false;
}

static void link_on_timer(loop_timer *t) { hlink_run(container_of(t, hlink, timer)); }
static void link_on_kick(loop_timer *t) { hlink_run(container_of(t, hlink, kick)); }

void hlink_busy(hlink *k) {
        if (k->poll_ns)
                loop_poll_until(k->l, now_ns() + k->poll_ns);
}

void hlink_kick(hlink *k) {
        if (!loop_timer_armed(&k->kick))
                loop_timer_arm(k->l, &k->kick, 0);
}

static void link_on_io(loop_io *io, uint32_t events) {
        hlink *k = container_of(io, hlink, io);
        hlink_busy(k);
        if (events & EPOLLOUT) {
                if (udp_flush(k->u) == 0)
                        link_block(k, false);
        }
        if (!(events & (EPOLLIN | EPOLLERR)))
                goto run;
        for (int round = 0; round < HLINK_RX_ROUNDS; round++) {
                int n = udp_recv(k->u);
                if (n <= 0)
                        break;
                uint64_t now = now_ns();
                udp_dgram d;
                while (udp_rx_next(k->u, &d))
                        efcp_host_input(k->h, d.data, d.len, d.src, d.srclen, now);
                hlink_run(k);
                if (!udp_rx_full(k->u))
                        return;
        }
run:
        hlink_run(k);
}

/* ---- life ---------------------------------------------------------------------------- */

/* Enrol one host (not connected yet). 0, -EAFNOSUPPORT (the socket cannot
 * send to its address: udp_unreachable), or efcp_host_add_peer's -EEXIST,
 * -EINVAL, -ENOSPC (also: no room left in peers). */
static int peer_enrol(hlink *k, const char *name, const uint8_t pub[32], const conf_addr *ca) {
        if (k->n >= k->cap)
                return -ENOSPC;
        hpeer *p = &k->peers[k->n];
        efcp_addr addr = { .len = 0 };
        if (udp_unreachable(&k->u->bound, ca))
                return -EAFNOSUPPORT;
        if (ca->family)
                udp_addr_from_conf(k->u, ca, &addr);
        int r = efcp_host_add_peer(k->h, pub, addr.bytes, addr.len, &p->ep);
        if (r < 0)
                return r;
        p->k = k;
        p->idx = k->n;
        str_copy(p->name, name, sizeof(p->name));
        p->next_port = HW_CONTROL_PORT + 1;
        k->n++;
        return 0;
}

/* Start connecting to p if it has an address. */
static void peer_start(hpeer *p, uint64_t now) {
        p->since = now;
        if (efcp_peer_addr(p->ep)->len) {
                efcp_peer_connect(p->ep, now);
                p->state = HPEER_CONNECTING;
        }
}

int hlink_peer_add(hlink *k, const char *name, const uint8_t pub[32], const conf_addr *addr, hpeer **ret) {
        if (hlink_peer_by_name(k, name))
                return -EEXIST;
        int r = peer_enrol(k, name, pub, addr);
        if (r < 0)
                return r;
        hpeer *p = &k->peers[k->n - 1];
        peer_start(p, now_ns());
        hlink_kick(k);
        *ret = p;
        return 0;
}

int hlink_new(loop *l, const hlink_cfg *cfg, const hlink_ops *ops, void *ctx, hlink **ret, unsigned *ret_line) {
        const conf *c = cfg->c;
        int r;
        hlink *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->l = l;
        k->ops = ops;
        k->ctx = ctx;
        k->io.fd = -1;
        k->poll_ns = (uint64_t)c->hosts_sec.poll_us * 1000u;
        loop_timer_init(&k->timer, link_on_timer);
        loop_timer_init(&k->kick, link_on_kick);
        str_copy(k->self, cfg->self, sizeof(k->self));
        randombytes_buf(&k->boot, sizeof(k->boot));
        k->u = malloc(sizeof(*k->u));
        if (!k->u) {
                r = -ENOMEM;
                goto fail;
        }
        r = udp_open(k->u, &cfg->listen);
        if (r < 0) {
                free(k->u);
                k->u = NULL;
                goto fail;
        }
        uint32_t dead_ms = c->hosts_sec.dead_interval_ms ? c->hosts_sec.dead_interval_ms : CONF_DEAD_INTERVAL_DEFAULT;
        efcp_host_config hc;
        efcp_host_config_default(&hc);
        memcpy(hc.private_key, cfg->private_key, 32);
        hc.max_peers = CONF_HOSTS_MAX;
        hc.assoc.max_flows = HLINK_FLOWS_MAX;
        hc.assoc.max_inflight = 8192;
        hc.assoc.peer_timeout_ns = (uint64_t)dead_ms * 1000000u;
        hc.assoc.keepalive_ns = hc.assoc.peer_timeout_ns / 5;
        if (hc.assoc.max_pto_ns > hc.assoc.peer_timeout_ns / 4)
                hc.assoc.max_pto_ns = hc.assoc.peer_timeout_ns / 4;
        if (c->impair.set && c->impair.linger_set) /* tests only (impair.h) */
                hc.assoc.close_linger_ns = (uint64_t)c->impair.linger_ms * 1000000u;
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        uint64_t real = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec, mono = now_ns();
        hc.clock_offset_ns = real > mono ? real - mono : 0;
        r = efcp_host_new(&hc, mono, &k->h);
        sodium_memzero(hc.private_key, sizeof(hc.private_key));
        if (r < 0)
                goto fail;
        k->cap = (unsigned)MIN(c->n_hosts + cfg->spare, (size_t)CONF_HOSTS_MAX);
        k->peers = calloc(k->cap ? k->cap : 1, sizeof(*k->peers));
        if (!k->peers) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < c->n_hosts; i++) {
                const conf_host *ch = &c->hosts[i];
                uint8_t pub[32];
                r = efcp_key_parse(ch->key, pub) < 0 ? -EINVAL : peer_enrol(k, ch->name, pub, &ch->addr);
                if (r < 0) {
                        /* not a key; our own key, or the same key twice; an
                         * address the socket cannot reach */
                        *ret_line = ch->line;
                        r = r == -EAFNOSUPPORT ? r : -EINVAL;
                        goto fail;
                }
        }
        r = impair_new(l, &c->impair, link_emit, k, &k->imp);
        if (r < 0)
                goto fail;
        r = loop_io_add(l, &k->io, k->u->fd, EPOLLIN, link_on_io);
        if (r < 0)
                goto fail;
        uint64_t now = now_ns();
        for (unsigned i = 0; i < k->n; i++)
                peer_start(&k->peers[i], now);
        hlink_kick(k);
        *ret = k;
        return 0;
fail:
        hlink_free(k);
        return r;
}

/* Is a close of one of k's associations still under way (its CLOSE not
 * confirmed nor given up)? */
static bool closes_pending(const hlink *k, efcp_assoc *const *closing) {
        for (unsigned i = 0; i < k->n; i++)
                if (closing[i] && efcp_next_deadline(closing[i]) != UINT64_MAX)
                        return true;
        return false;
}

void hlink_close_all(hlink *k, uint64_t budget_ns) {
        efcp_assoc **closing = calloc(k->n ? k->n : 1, sizeof(*closing));
        if (!closing)
                return;
        bool any = false;
        for (unsigned i = 0; i < k->n; i++) {
                hpeer *p = &k->peers[i];
                if (p->state != HPEER_UP || !p->a || efcp_assoc_dead(p->a))
                        continue;
                efcp_assoc_close(p->a, EFCP_REASON_PEER_CLOSED);
                closing[i] = p->a;
                any = true;
        }
        /* The confirmed close: our REQUEST out, the peer's ACK in, our
         * CONFIRM out. Nothing is handed to the owner (it is gone): only the
         * engine is fed, without the loop. */
        uint64_t end = now_ns() + budget_ns;
        while (any) {
                uint64_t now = now_ns();
                efcp_host_timeout(k->h, now);
                if (k->blocked && udp_flush(k->u) == 0)
                        k->blocked = false; /* (the loop's EPOLLOUT is not waited for here) */
                link_output(k);
                if (!closes_pending(k, closing) || now >= end)
                        break;
                uint64_t until = MIN(end, efcp_host_next_deadline(k->h));
                struct pollfd pfd = { .fd = k->u->fd, .events = POLLIN };
                if (poll(&pfd, 1, until > now ? (int)((until - now) / 1000000u) + 1 : 0) <= 0 || udp_recv(k->u) <= 0)
                        continue;
                udp_dgram d;
                for (now = now_ns(); udp_rx_next(k->u, &d);)
                        efcp_host_input(k->h, d.data, d.len, d.src, d.srclen, now);
        }
        free(closing);
}

hlink *hlink_free(hlink *k) {
        if (!k)
                return NULL;
        if (k->io.fd >= 0)
                loop_io_del(k->l, &k->io);
        loop_timer_cancel(k->l, &k->timer);
        loop_timer_cancel(k->l, &k->kick);
        for (unsigned i = 0; i < k->n; i++)
                ctlq_clear(&k->peers[i]);
        impair_free(k->imp);
        efcp_host_free(k->h);
        free(k->peers);
        if (k->u)
                udp_close(k->u);
        free(k->u);
        free(k);
        return NULL;
}

/* ---- queries and flows -------------------------------------------------------------- */

unsigned hlink_peers(const hlink *k) { return k->n; }
hpeer *hlink_peer(hlink *k, unsigned i) { return i < k->n ? &k->peers[i] : NULL; }

hpeer *hlink_peer_by_name(hlink *k, const char *name) {
        for (unsigned i = 0; i < k->n; i++)
                if (strcmp(k->peers[i].name, name) == 0)
                        return &k->peers[i];
        return NULL;
}

void hlink_peer_info(const hpeer *p, hpeer_info *ret) {
        memset(ret, 0, sizeof(*ret));
        ret->name = p->name;
        ret->state = p->state;
        ret->addr = *efcp_peer_addr(p->ep);
        if (p->a) {
                efcp_assoc_path(p->a, &ret->path);
                ret->st = *efcp_assoc_stats(p->a);
        }
        ret->flows = p->flows;
        ret->ups = p->ups;
        ret->downs = p->downs;
        ret->ctl_bad = p->ctl_bad;
}

void hlink_public_key(const hlink *k, uint8_t ret[32]) { efcp_host_public_key(k->h, ret); }

int hlink_local_addr(const hlink *k, efcp_addr *ret) { return udp_local(k->u, ret); }

uint32_t hlink_port_new(hpeer *p) {
        for (;;) {
                uint32_t port = p->next_port++;
                if (p->next_port == 0)
                        p->next_port = HW_CONTROL_PORT + 1;
                if (port <= HW_CONTROL_PORT)
                        continue;
                if (!p->a || !efcp_flow_get(p->a, port))
                        return port;
        }
}

int hlink_flow_open(hpeer *p, uint32_t local_port, uint32_t remote_port, uint32_t policy, void *user,
                    efcp_flow **ret) {
        if (p->state != HPEER_UP || !p->a)
                return -ENOTCONN;
        efcp_flow_policy pol = { .flags = policy, .isn_random = true };
        efcp_flow *f = efcp_flow_get(p->a, local_port);
        if (f) {
                /* the peer opened it first (its ALLOC reached us before our
                 * open): the same flow, if it is the same pair */
                if (efcp_flow_remote_port(f) != remote_port)
                        return -EADDRINUSE;
        } else {
                int r = efcp_flow_open(p->a, local_port, remote_port, &pol, &f);
                if (r < 0)
                        return r;
        }
        if (!efcp_flow_user(f))
                p->flows++;
        efcp_flow_set_user(f, user);
        hlink_kick(p->k);
        *ret = f;
        return 0;
}

void hlink_flow_adopt(hpeer *p, efcp_flow *f, void *user) {
        if (!efcp_flow_user(f))
                p->flows++;
        efcp_flow_set_user(f, user);
}

void hlink_flow_close(hpeer *p, efcp_flow *f, uint32_t reason) {
        efcp_flow_set_user(f, NULL);
        efcp_flow_close(f, reason);
        if (p->flows)
                p->flows--;
        hlink_kick(p->k);
}

void hlink_stats_get(const hlink *k, hlink_stats *ret) {
        memset(ret, 0, sizeof(*ret));
        ret->dgrams_in = k->u->st.dgrams_in;
        ret->dgrams_out = k->u->st.dgrams_out;
        ret->bytes_in = k->u->st.bytes_in;
        ret->bytes_out = k->u->st.bytes_out;
        ret->send_errors = k->u->st.send_errors;
        ret->would_block = k->would_block;
        ret->host = *efcp_host_stats_get(k->h);
}
