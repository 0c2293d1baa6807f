/*
 * broker.c — daemon-owned flow sides: accept, produce, consume, wake (see
 * broker.h for the protocol and its invariants).
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
#include "daemon/core/client.h"
#include "daemon/flows/flow.h"
#include "daemon/core/log.h"
#include "daemon/core/quota.h"

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

/* Send OK to the ALLOC on the control connection (the library waits for it
 * before it reads the reply socket). */
static int bport_ok(client *c, uint32_t seq, uint64_t id) {
        ctl_builder *bd = malloc(sizeof(*bd));
        if (!bd)
                return -ENOMEM;
        ctl_begin(bd, CTL_OK, seq);
        ctl_put_u64(bd, CTL_A_ALLOC_ID, id);
        int r = client_send(c, bd, NULL, 0);
        free(bd);
        return r;
}

/* The library's ipcf_alloc() waits for OK on its connection, then for the
 * outcome on the reply socket: a refusal is both, like alloc_fail(). */
void bport_refuse(client *c, uint32_t seq, int *reply_fd, int err, const char *reason) {
        int fd = *reply_fd;
        *reply_fd = -1;
        if (bport_ok(c, seq, ipcfd_new_id(c->d)) == 0) {
                ctl_builder *bd = malloc(sizeof(*bd));
                if (bd) {
                        ctl_begin(bd, CTL_ERROR, seq);
                        ctl_put_u32(bd, CTL_A_ERRNO, (uint32_t)-err);
                        if (reason) {
                                ctl_put_str(bd, CTL_A_REASON, reason);
                                ctl_put_u32(bd, CTL_A_END_CODE, IPCF_END_REFUSED);
                        }
                        if (ctl_end(bd) >= 0)
                                (void)ctl_send(fd, bd, NULL, 0);
                        free(bd);
                }
        }
        safe_close(fd);
}

/* Make the flow, keep side 1, hand side 0 out (see broker.h). Order matters:
 * the whole region is mapped and both watches are in place before the client
 * can write (it has no fds until flow_send), and the memfd is dropped only
 * after our mapping exists. */
int bport_accept(ipcfd *d, client *c, const char *name, const ipcf_qos *want, uint32_t max_msg,
                 int *reply_fd, uint32_t seq, bport_fn fn, void *owner, bport **ret) {
        ipcf_qos q = *want;
        flow_layout l;
        flow *f = NULL;
        int r;

        /* The broker's terms: bounded message queues it can map. The full
         * policy stays the client's (it acts in the client's library). */
        q.capacity = IPCF_CAPACITY_BOUNDED;
        q.mode = IPCF_MODE_MESSAGE;
        q.max_msg_size = max_msg + (uint32_t)sizeof(struct mw_hdr);
        if (q.max_bytes > MW_RING_MAX)
                q.max_bytes = MW_RING_MAX;
        if (q.max_bytes < 4 * ring_rec_size(q.max_msg_size))
                q.max_bytes = 4 * ring_rec_size(q.max_msg_size);
        if (ctl_qos_normalize(&q) < 0 || flow_layout_for(&q, &l) < 0) {
                bport_refuse(c, seq, reply_fd, -EINVAL, NULL);
                return -EINVAL;
        }
        if (n_bports >= BROKER_FLOWS_MAX || d->n_flows >= d->caps.flows ||
            quota_check(c->user, QUOTA_FLOWS, 1) < 0) {
                bport_refuse(c, seq, reply_fd, -EDQUOT, NULL);
                return -EDQUOT;
        }
        bport *b = calloc(1, sizeof(*b));
        if (!b) {
                bport_refuse(c, seq, reply_fd, -ENOMEM, NULL);
                return -ENOMEM;
        }
        r = flow_new(d, name, &q, &l, &f);
        if (r < 0)
                goto fail;
        b->mem = mmap(NULL, l.total, PROT_READ | PROT_WRITE, MAP_SHARED, f->mem.memfd, 0);
        if (b->mem == MAP_FAILED) {
                r = -errno;
                b->mem = NULL;
                goto fail;
        }
        b->d = d;
        b->f = f;
        b->flow_id = f->node.id;
        b->map_len = l.total;
        b->qos = q;
        b->fn = fn;
        b->owner = owner;
        b->peer = c->cred;
        str_copy(b->peer_prog, c->prog, sizeof(b->peer_prog));
        dlist_init(&b->link);
        ring_prod_init(&b->prod, flow_ctl_of(b->mem, 1), flow_data_of(b->mem, &l, 1), l.ring_size, &q);
        ring_cons_init(&b->cons, flow_ctl_of(b->mem, 0), flow_data_of(b->mem, &l, 0), l.ring_size, &q);
        /* Our ears are ours alone from here on (the flow drops the rest). */
        b->ear_rx = f->mem.ear[FLOW_WAKE_RX1];
        b->ear_tx = f->mem.ear[FLOW_WAKE_TX1];
        f->mem.ear[FLOW_WAKE_RX1] = f->mem.ear[FLOW_WAKE_TX1] = -1;
        b->peer_rx = f->mem.bell[FLOW_WAKE_RX0];
        b->peer_tx = f->mem.bell[FLOW_WAKE_TX0];
        b->rx_io.fd = b->tx_io.fd = -1;
        loop_timer_init(&b->kick, bport_on_kick);
        if (loop_io_add(d->loop, &b->rx_io, b->ear_rx, EPOLLIN, bport_on_rx) < 0 ||
            loop_io_add(d->loop, &b->tx_io, b->ear_tx, EPOLLIN, bport_on_tx) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        cred me = { .pid = d->pid, .uid = d->uid, .gid = d->gid };
        flow_side_attach(f, 0, c, &c->cred, c->prog, c->user);
        flow_side_attach(f, 1, NULL, &me, "ipcfd", NULL);

        r = bport_ok(c, seq, f->node.id);
        if (r == 0)
                r = flow_send(f, 0, *reply_fd, seq, NULL);
        *reply_fd = safe_close(*reply_fd);
        flow_handed_out(f);
        n_bports++;
        if (r < 0) {
                /* The client gave up or is being dropped: its side ends like
                 * any death; ours with it. */
                flow_side_end(f, 0, IPCF_END_DEALLOC, "requester gave up", true);
                bport_free(b);
                return r;
        }
        /* The client waits for data from its first call: make sure it would
         * be woken (our consumer side starts armed). */
        bport_arm_rx(b);
        log_debug("broker: flow %llu to %s by pid %d", (unsigned long long)b->flow_id, name,
                  (int)c->cred.pid);
        *ret = b;
        return 0;

fail:
        if (b->rx_io.fd >= 0)
                loop_io_del(d->loop, &b->rx_io);
        if (b->tx_io.fd >= 0)
                loop_io_del(d->loop, &b->tx_io);
        if (b->mem) {
                safe_close(b->ear_rx);
                safe_close(b->ear_tx);
                munmap(b->mem, l.total);
        }
        if (f)
                flow_free(f);
        free(b);
        bport_refuse(c, seq, reply_fd, r, NULL);
        return r;
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
        _Atomic uint32_t *want = &b->cons.ctl->tx_sleep;
        if (atomic_load(want) && atomic_exchange(want, 0))
                wake_ring(b->peer_tx);
}

/* The waiter's half for data (as port_rearm_rx): drain, want, fence, re-check. */
bool bport_arm_rx(bport *b) {
        if (!b->f)
                return false;
        if (wake_drain(b->ear_rx) == -EPIPE)
                bport_hang_up(b);
        atomic_store(&b->cons.ctl->rx_sleep, 1);
        atomic_thread_fence(memory_order_seq_cst);
        return ring_ready(&b->cons);
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
        _Atomic uint32_t *want = &b->prod.ctl->rx_sleep;
        if (atomic_load(want) && atomic_exchange(want, 0))
                wake_ring(b->peer_rx);
        return pos;
}

/* The waiter's half for room: want, fence, re-check. The client's consume
 * (port_notify_space) clears tx_sleep and rings our TX eventfd. */
bool bport_arm_tx(bport *b, size_t len) {
        if (!b->f)
                return false;
        atomic_store(&b->prod.ctl->tx_sleep, 1);
        atomic_thread_fence(memory_order_seq_cst);
        return ring_can_reserve(&b->prod, len) == 0;
}

void bport_want_tx(bport *b) {
        if (!b->f)
                return;
        atomic_store(&b->prod.ctl->tx_sleep, 1);
        atomic_thread_fence(memory_order_seq_cst);
}

bool bport_passed(bport *b, uint64_t pos) {
        return b->f && ring_passed(&b->prod, pos);
}

/* The client's end record (acquire: what it wrote before is visible), or its
 * side closed in the daemon's books (DEALLOC, death). */
bool bport_peer_ended(bport *b) {
        if (!b->f)
                return true;
        struct flow_hdr *h = flow_hdr_of(b->mem);
        return atomic_load_explicit(&h->end[0].code, memory_order_acquire) != 0 ||
               !b->f->side[0].open || b->hung_up;
}

void bport_kick(bport *b) {
        if (b->f && !loop_timer_armed(&b->kick))
                (void)loop_timer_arm(b->d->loop, &b->kick, now_ns());
}

/* Stop watching, close our ears and unmap before the side closes: closing
 * our side may free the flow (its bells) if the client's is closed already. At shutdown
 * nobody is told anything (flows live on in their processes). */
void bport_end(bport *b, uint32_t code, const char *reason) {
        if (!b || !b->f)
                return;
        flow *f = b->f;
        b->f = NULL;
        loop_io_del(b->d->loop, &b->rx_io);
        loop_io_del(b->d->loop, &b->tx_io);
        loop_timer_cancel(b->d->loop, &b->kick);
        b->ear_rx = safe_close(b->ear_rx);
        b->ear_tx = safe_close(b->ear_tx);
        munmap(b->mem, b->map_len);
        b->mem = NULL;
        n_bports--;
        if (b->d->shutdown)
                flow_side_close(f, 1);
        else
                flow_side_end(f, 1, code, reason, false);
}

bport *bport_free(bport *b) {
        if (!b)
                return NULL;
        bport_end(b, IPCF_END_DEALLOC, "closed");
        dlist_del(&b->link);
        loop_defer_free(b->d->loop, b);
        return NULL;
}
