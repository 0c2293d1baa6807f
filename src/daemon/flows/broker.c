/*
 * broker.c — the daemon end of flows: accept, produce, consume, wake (see
 * broker.h for the protocol and its invariants), and its flow-end ops.
 *
 * Who may call: the mailbox and multicast modules, from the daemon's loop.
 * Every function returns at once; the callback (bport.fn) runs from the
 * loop on each wake-up and must not free the bport itself while in it other
 * than through bport_free() (deferred).
 */
#include "daemon/flows/broker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/modelwire.h"
#include "common/util.h"
#include "common/wake.h"
#include "common/wakeword.h"
#include "daemon/core/log.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/flow.h"

/* Broker flows alive (bounded by BROKER_FLOWS_MAX: each maps its region).
 * One daemon per process, so a file-level count is the daemon's. */
static size_t n_bports;

/* Our ears hung up: the client shut a channel down, which only a client
 * that is leaving (or hostile) does. Stop watching (the hang-up is readable
 * for good and the watches are level-triggered); the owner sees the end. */
static void bport_hang_up(bport *b) {
        b->hung_up = true;
        loop_io_del(b->d->loop, &b->rx_io);
        loop_io_del(b->d->loop, &b->tx_io);
}

/* The client wrote data (or ended): our RX ear rang. Drain it first — the
 * watch is level-triggered — then let the owner read all there is and re-arm
 * (bport_arm_rx) when it finds the ring empty. */
static void bport_on_rx(loop_io *io, uint32_t events) {
        bport *b = container_of(io, bport, rx_io);
        (void)events;
        b->rx_set = false;
        if (wake_drain(b->ear_rx) == -EPIPE)
                bport_hang_up(b);
        b->fn(b);
}

/* The client consumed (room, or a receipt is due) or ended: TX rang. */
static void bport_on_tx(loop_io *io, uint32_t events) {
        bport *b = container_of(io, bport, tx_io);
        (void)events;
        if (wake_drain(b->ear_tx) == -EPIPE)
                bport_hang_up(b);
        b->fn(b);
}

static void bport_on_kick(loop_timer *t) {
        bport *b = container_of(t, bport, kick);
        if (b->f)
                b->fn(b);
}

/* The broker's terms for a requested qos (see bport_accept). */
static int bport_terms(const ipcf_qos *want, uint32_t max_msg, ipcf_qos *ret) {
        ipcf_qos q = *want;
        flow_layout l;
        q.capacity = IPCF_CAPACITY_BOUNDED;
        q.mode = IPCF_MODE_MESSAGE;
        q.max_msg_size = max_msg + (uint32_t)sizeof(struct mw_hdr);
        if (q.max_bytes > MW_RING_MAX)
                q.max_bytes = MW_RING_MAX;
        if (q.max_bytes < 4 * ring_rec_size(q.max_msg_size))
                q.max_bytes = 4 * ring_rec_size(q.max_msg_size);
        if (ctl_qos_normalize(&q) < 0 || flow_layout_for(&q, &l) < 0)
                return -EINVAL;
        *ret = q;
        return 0;
}

/* ops->open: before the client has its FLOW (it cannot write yet), map the
 * whole region, take our ears out of the flow (ours alone from here on: the
 * flow drops the rest when handed out) and watch them. */
static int bport_open(flow *f, int idx, void *arg) {
        bport *b = arg;
        ipcfd *d = f->d;
        const flow_layout *l = &f->layout;
        b->mem = mmap(NULL, l->total, PROT_READ | PROT_WRITE, MAP_SHARED, f->mem.memfd, 0);
        if (b->mem == MAP_FAILED) {
                b->mem = NULL;
                return -errno;
        }
        b->f = f;
        b->flow_id = f->node.id;
        b->map_len = l->total;
        b->qos = f->qos;
        b->side = idx;
        /* side s writes ring s and reads ring 1 - s */
        ring_prod_init(&b->prod, flow_ctl_of(b->mem, idx), flow_data_of(b->mem, l, idx), l->ring_size,
                       &b->qos);
        ring_cons_init(&b->cons, flow_ctl_of(b->mem, 1 - idx), flow_data_of(b->mem, l, 1 - idx),
                       l->ring_size, &b->qos);
        b->ear_rx = f->mem.ear[flow_wake_rx(idx)];
        b->ear_tx = f->mem.ear[flow_wake_tx(idx)];
        f->mem.ear[flow_wake_rx(idx)] = f->mem.ear[flow_wake_tx(idx)] = -1;
        b->peer_rx = f->mem.bell[flow_wake_rx(1 - idx)];
        b->peer_tx = f->mem.bell[flow_wake_tx(1 - idx)];
        n_bports++;
        if (loop_io_add(d->loop, &b->rx_io, b->ear_rx, EPOLLIN, bport_on_rx) < 0 ||
            loop_io_add(d->loop, &b->tx_io, b->ear_tx, EPOLLIN, bport_on_tx) < 0)
                return -ENOMEM; /* the flow is freed: bport_closed() undoes the rest */
        return 0;
}

/* ops->deliver: the client has its FLOW and waits for data from its first
 * call: make sure it would be woken (our consumer side starts armed). */
static void bport_deliver(flow *f, int idx, void *arg) {
        bport *b = arg;
        bport_arm_rx(b);
        log_debug("broker: flow %llu to %s by pid %d", (unsigned long long)b->flow_id, f->name,
                  (int)b->peer.pid);
}

/* ops->closed: stop watching, close our ears and unmap before the side
 * closes — closing our side may free the flow (its bells) if the client's
 * is closed already. The bport stays allocated (its owner frees it) and
 * reads as ended. */
static void bport_closed(flow *f, int idx) {
        bport *b = f->side[idx].holder;
        if (!b->f)
                return;
        b->f = NULL;
        loop_io_del(b->d->loop, &b->rx_io);
        loop_io_del(b->d->loop, &b->tx_io);
        loop_timer_cancel(b->d->loop, &b->kick);
        b->ear_rx = safe_close(b->ear_rx);
        b->ear_tx = safe_close(b->ear_tx);
        if (b->mem)
                munmap(b->mem, b->map_len);
        b->mem = NULL;
        n_bports--;
}

static const flow_end_ops daemon_end_ops = {
        .kind = "daemon",
        .open = bport_open,
        .deliver = bport_deliver,
        .closed = bport_closed,
};

bport *bport_new(ipcfd *d, const cred *peer, const char *peer_prog, bport_fn fn, void *owner) {
        bport *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->d = d;
        b->fn = fn;
        b->owner = owner;
        b->peer = *peer;
        str_copy(b->peer_prog, peer_prog, sizeof(b->peer_prog));
        b->rx_io.fd = b->tx_io.fd = -1;
        b->ear_rx = b->ear_tx = -1;
        loop_timer_init(&b->kick, bport_on_kick);
        dlist_init(&b->link);
        return b;
}

void bport_spec(bport *b, flow_end_spec *ret, const cred *who, const char *prog, pid_t watch_pid) {
        *ret = (flow_end_spec){ .ops = &daemon_end_ops, .holder = b, .cred = who, .prog = prog, .arg = b,
                                .watch_pid = watch_pid };
}

int bport_accept(alloc *a, uint32_t max_msg, bport_fn fn, void *owner, bport **ret) {
        ipcfd *d = a->d;
        ipcf_qos q;
        if (bport_terms(&a->qos, max_msg, &q) < 0)
                return -EINVAL;
        if (n_bports >= BROKER_FLOWS_MAX)
                return -EDQUOT;
        bport *b = bport_new(d, &a->cred, a->prog, fn, owner);
        if (!b)
                return -ENOMEM;
        cred me = { .pid = d->pid, .uid = d->uid, .gid = d->gid };
        flow_end_spec e;
        bport_spec(b, &e, &me, "ipcfd", 0);
        int r = alloc_accept(a, &e, &q);
        if (r < 0) {
                free(b); /* never live: a failed open or a freed flow closed it */
                return r;
        }
        *ret = b;
        return 0;
}

/* The consumer half (ring 0): the same validated reads a library port does. */
ssize_t bport_peek(bport *b, const void **ret) {
        if (!b->f)
                return -EPIPE;
        return ring_peek(&b->cons, ret);
}

/* Consume, then the waker's half of the handshake for room: ring_consume's
 * seq_cst store of the tail comes before this load of tx_sleep. */
void bport_consume(bport *b) {
        ring_consume(&b->cons);
        if (!b->cons.hold)
                wakeword_wake(&b->cons.ctl->tx_sleep, b->peer_tx);
}

void bport_hold(bport *b) { b->cons.hold = true; }

ring_mark bport_mark(bport *b) { return ring_cons_mark(&b->cons); }

void bport_publish_at(bport *b, ring_mark m) {
        if (b->f && ring_cons_publish_at(&b->cons, m))
                wakeword_wake(&b->cons.ctl->tx_sleep, b->peer_tx);
}

const void *bport_payload_at(bport *b, uint64_t pos) {
        return b->mem ? b->cons.data + (pos & b->cons.mask) + REC_HDR : NULL;
}

/* The waiter's half for data (as port_rearm_rx): drain, want, fence,
 * re-check. The drain only if the word we set was taken (broker.h): the
 * client rang, or is about to; else nothing is queued that the watch's
 * own drain would not take. */
bool bport_arm_rx(bport *b) {
        if (!b->f)
                return false;
        if (b->rx_set && atomic_load(&b->cons.ctl->rx_sleep) == 0) {
                b->rx_set = false;
                if (wake_drain(b->ear_rx) == -EPIPE)
                        bport_hang_up(b);
        }
        b->rx_set = true;
        atomic_store(&b->cons.ctl->rx_sleep, 1);
        atomic_thread_fence(memory_order_seq_cst);
        return ring_ready(&b->cons);
}

bool bport_rx_ready(bport *b) { return b->f && ring_ready(&b->cons); }

void bport_disarm_rx(bport *b) {
        if (!b->f || !b->rx_set)
                return;
        uint32_t expect = 1;
        if (atomic_compare_exchange_strong(&b->cons.ctl->rx_sleep, &expect, 0))
                b->rx_set = false; /* nobody rang for it */
}

/* The producer half (ring 1). Never waits: -EAGAIN is the caller's to arm. */
int bport_reserve(bport *b, size_t len, void **ret) {
        if (!b->f)
                return -EPIPE;
        return ring_reserve(&b->prod, len, ret);
}

/* Publish (seq_cst store of the tag in ring_commit), then the waker's half of
 * the handshake for data: ring the client only if it said it sleeps. */
uint64_t bport_commit(bport *b, size_t n) {
        uint64_t pos = ring_commit(&b->prod, n);
        wakeword_wake(&b->prod.ctl->rx_sleep, b->peer_rx);
        return pos;
}

/* The waiter's half for room: want, fence, re-check. The client's consume
 * (port_notify_space) clears tx_sleep and rings our TX ear. */
bool bport_arm_tx(bport *b, size_t len) {
        if (!b->f)
                return false;
        atomic_store(&b->prod.ctl->tx_sleep, 1);
        atomic_thread_fence(memory_order_seq_cst);
        return ring_can_reserve(&b->prod, len) == 0;
}

bool bport_tx_room(bport *b, size_t len) { return b->f && ring_can_reserve(&b->prod, len) == 0; }

void bport_want_tx(bport *b) {
        if (!b->f)
                return;
        atomic_store(&b->prod.ctl->tx_sleep, 1);
        atomic_thread_fence(memory_order_seq_cst);
}

bool bport_passed(bport *b, uint64_t pos) {
        return b->f && ring_passed(&b->prod, pos) > 0;
}

void bport_run_note(bport *b, unsigned cpu, bool asleep) {
        if (!b->f)
                return;
        struct flow_run *run = &flow_hdr_of(b->mem)->run[b->side];
        if (atomic_load_explicit(&run->cpu, memory_order_relaxed) != cpu)
                atomic_store_explicit(&run->cpu, cpu, memory_order_relaxed);
        if (atomic_load_explicit(&run->blocked, memory_order_relaxed) != (uint32_t)asleep)
                atomic_store_explicit(&run->blocked, (uint32_t)asleep, memory_order_relaxed);
}

/* The client's end record (acquire: what it wrote before is visible), or its
 * side closed in the daemon's books (DEALLOC, death). */
bool bport_peer_ended(bport *b) {
        if (!b->f)
                return true;
        struct flow_hdr *h = flow_hdr_of(b->mem);
        int peer = 1 - b->side;
        return atomic_load_explicit(&h->end[peer].code, memory_order_acquire) != 0 ||
               !b->f->side[peer].open || b->hung_up;
}

void bport_kick(bport *b) {
        if (b->f && !loop_timer_armed(&b->kick))
                (void)loop_timer_arm(b->d->loop, &b->kick, now_ns());
}

/* At shutdown nobody is told anything (flows live on in their processes).
 * Either way the side's closing runs bport_closed() (unwatch, close our
 * ears, unmap). */
void bport_end(bport *b, uint32_t code, const char *reason) {
        if (!b || !b->f)
                return;
        flow *f = b->f;
        if (b->d->shutdown)
                flow_side_close(f, b->side);
        else
                flow_side_end(f, b->side, code, reason, false);
}

bport *bport_free(bport *b) {
        if (!b)
                return NULL;
        bport_end(b, IPCF_END_DEALLOC, "closed");
        dlist_del(&b->link);
        loop_defer_free(b->d->loop, b);
        return NULL;
}
