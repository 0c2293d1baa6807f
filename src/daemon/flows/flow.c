/*
 * flow.c — flow objects: creation (common/flowmem.c makes the memory and the
 * wake-up channels), the FLOW message, ends of sides (peer death, give-up,
 * dealloc) and reclamation. Knows no kind of end: what holds a side is its
 * ops (flow.h).
 *
 * MEMORY: the daemon maps only the first FLOW_DATA_OFF bytes of a region
 * (header + ring controls): that is all it reads or writes, and a flow's
 * data area can be gigabytes (unbounded capacity), which the daemon must not
 * spend address space on. The memfd is sealed (no shrink, no grow, no more
 * seals) before anyone else sees it, so no side can ever make the other's
 * mapping fault (SIGBUS) by truncating it.
 *
 * WAKE-UPS: the daemon keeps only the bells of the four channels and rings
 * them with wake_ring(), which never blocks whatever a client did to the
 * shared socket (common/wake.h); it never holds a client's ear (a daemon end
 * holds its own side's ears).
 *
 * END RECORDS: when the daemon ends a side (death, give-up), it writes the
 * reason first and then stores the code with release order, only if that
 * side has not written its own record; the peer loads the code with acquire
 * and then reads the reason. Then it rings the peer's rx and tx bells so
 * a peer blocked in either direction (or polling) wakes at once.
 *
 * STATE: every flow of the daemon is on this file's list and id map (one
 * daemon per process).
 */
#include "daemon/flows/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wake.h"
#include "common/wakeword.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/core/quota.h"

static struct dlist flows = DLIST_INIT(flows); /* flow.link, in creation order */
static idmap flow_ids;
static size_t n_flows;

flow *flow_find(ipcfd *d, uint64_t id) {
        struct idmap_node *n = idmap_find(&flow_ids, id);
        return n ? container_of(n, flow, node) : NULL;
}

size_t flow_count(void) { return n_flows; }

bool flow_room(const ipcfd *d) { return n_flows < MIN(d->fd_share, (size_t)FLOWS_MAX); }

flow *flow_first(void) { return dlist_empty(&flows) ? NULL : dlist_entry(flows.next, flow, link); }

flow *flow_next(const flow *f) {
        return f->link.next == &flows ? NULL : dlist_entry(f->link.next, flow, link);
}

int flow_new(ipcfd *d, const char *name, const ipcf_qos *qos, const flow_layout *l, flow **ret) {
        int r;
        flow *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->d = d;
        f->hdr = MAP_FAILED;
        str_copy(f->name, name, sizeof(f->name));
        f->qos = *qos;
        f->layout = *l;
        for (int i = 0; i < 2; i++) {
                f->side[i].flow = f;
                f->side[i].idx = i;
                f->side[i].hangup.fd = -1;
                dlist_init(&f->side[i].holder_link);
        }

        r = flow_mem_make(qos, "ipcf-flow", &f->mem);
        if (r < 0) {
                free(f);
                goto fail_log;
        }
        if (f->mem.layout.total != l->total) {
                r = -EINVAL;
                goto fail;
        }
        f->hdr = mmap(NULL, FLOW_DATA_OFF, PROT_READ | PROT_WRITE, MAP_SHARED, f->mem.memfd, 0);
        if (f->hdr == MAP_FAILED) {
                r = -errno;
                goto fail;
        }
        f->node.id = ipcfd_new_id(d);
        r = idmap_add(&flow_ids, &f->node);
        if (r < 0)
                goto fail;
        dlist_add_tail(&flows, &f->link);
        n_flows++;
        *ret = f;
        return 0;

fail:
        if (f->hdr != MAP_FAILED)
                munmap(f->hdr, FLOW_DATA_OFF);
        flow_mem_close(&f->mem);
        free(f);
fail_log:
        log_error("flow: create (%llu bytes): %s", (unsigned long long)l->total, strerror(-r));
        return r;
}

void flow_side_attach(flow *f, int idx, const flow_end_spec *e) {
        flow_side *s = &f->side[idx];
        s->open = true;
        s->ops = e->ops;
        s->holder = e->holder;
        if (e->holder_list)
                dlist_add_tail(e->holder_list, &s->holder_link);
        s->cred = *e->cred;
        s->watch_pid = e->watch_pid;
        if (e->host)
                f->host = e->host; /* before either side hears of the flow */
        str_copy(s->prog, e->prog, sizeof(s->prog));
        s->user = user_ref(e->user);
        /* Checked by the caller before the flow was made; never refused here. */
        if (e->user)
                e->user->used[QUOTA_FLOWS]++;
}

void flow_message(flow *f, int idx, uint32_t seq, ctl_builder *b, int fds[FLOW_SIDE_FDS]) {
        const flow_side *peer = &f->side[1 - idx];
        struct ctl_qos_wire qw;
        struct ctl_peer_wire pw = { htole32((uint32_t)peer->cred.pid), htole32(peer->cred.uid),
                                    htole32(peer->cred.gid), htole32((uint32_t)peer->watch_pid) };
        flow_mem_side_fds(&f->mem, idx, fds);
        ctl_qos_to_wire(&f->qos, &qw);
        ctl_begin(b, CTL_FLOW, seq);
        ctl_put_u64(b, CTL_A_FLOW_ID, f->node.id);
        ctl_put_u32(b, CTL_A_SIDE, (uint32_t)idx);
        ctl_put(b, CTL_A_QOS, &qw, sizeof(qw));
        ctl_put_u64(b, CTL_A_SHM_SIZE, f->layout.total);
        ctl_put(b, CTL_A_PEER, &pw, sizeof(pw));
        /* The allocator learns the name it asked for; the acceptor learns
         * the requester's program. */
        ctl_put_str(b, CTL_A_PEER_NAME, idx == 0 ? f->name : peer->prog);
        /* Where the peer is: the other host of a relayed flow, else here. */
        const char *host = peer->watch_pid && f->host ? f->host : f->d->host_name;
        if (host)
                ctl_put_str(b, CTL_A_PEER_HOST, host);
}

int flow_send(flow *f, int idx, int sock, uint32_t seq) {
        int fds[FLOW_SIDE_FDS];
        ctl_builder *b = malloc(sizeof(*b));
        if (!b)
                return -ENOMEM;
        flow_message(f, idx, seq, b, fds);
        int r = ctl_end(b);
        if (r >= 0)
                r = ctl_send(sock, b, fds, FLOW_SIDE_FDS);
        free(b);
        return r < 0 ? r : 0;
}

void flow_handed_out(flow *f) { flow_mem_drop_handout(&f->mem); }

/* The rx bell of a side hung up: nobody holds the side's ear any more. */
static void side_on_hangup(loop_io *io, uint32_t events) {
        flow_side *s = container_of(io, flow_side, hangup);
        (void)events;
        loop_io_del(s->flow->d->loop, &s->hangup);
        if (!s->open)
                return;
        log_debug("flow %llu: side %d let go (its ears are closed)",
                  (unsigned long long)s->flow->node.id, s->idx);
        if (s->ops && s->ops->let_go)
                s->ops->let_go(s->flow, s->idx);
        else
                flow_side_end(s->flow, s->idx, IPCF_END_PEER_DIED, "peer let go of the flow", true);
}

void flow_side_watch(flow *f, int idx) {
        flow_side *s = &f->side[idx];
        if (!s->open || s->hangup.added)
                return;
        /* No events asked: epoll reports a hang-up (and an error) always; a
         * bell is never read, so whatever a holder queues on it is no event. */
        if (loop_io_add(f->d->loop, &s->hangup, f->mem.bell[flow_wake_rx(idx)], 0, side_on_hangup) < 0)
                log_debug("flow %llu: cannot watch side %d", (unsigned long long)f->node.id, idx);
}

/* Close one side in the books: the end lets go first (ops->closed, while
 * the flow and its bells are still there), then its charge goes. */
static void side_close(flow_side *s) {
        s->open = false;
        loop_io_del(s->flow->d->loop, &s->hangup);
        if (s->ops && s->ops->closed)
                s->ops->closed(s->flow, s->idx);
        dlist_del(&s->holder_link);
        s->holder = NULL;
        if (s->user)
                quota_release(s->user, QUOTA_FLOWS, 1);
        s->user = user_unref(s->user);
}

void flow_free(flow *f) {
        ipcfd *d = f->d;
        for (int i = 0; i < 2; i++) {
                flow_side *s = &f->side[i];
                if (s->open)
                        side_close(s);
                dlist_del(&s->holder_link);
                s->user = user_unref(s->user);
        }
        if (f->on_free)
                f->on_free(d, f->on_free_cookie);
        if (f->bytes_user) {
                quota_release(f->bytes_user, f->bytes_kind, f->bytes);
                f->bytes_user = user_unref(f->bytes_user);
        }
        idmap_del(&flow_ids, &f->node);
        dlist_del(&f->link);
        n_flows--;
        munmap(f->hdr, FLOW_DATA_OFF);
        flow_mem_close(&f->mem);
        log_debug("flow %llu: reclaimed", (unsigned long long)f->node.id);
        loop_defer_free(d->loop, f);
}

void flow_side_close(flow *f, int idx) {
        flow_side *s = &f->side[idx];
        if (!s->open)
                return;
        side_close(s);
        if (!f->side[1 - idx].open)
                flow_free(f);
}

void flow_side_end(flow *f, int idx, uint32_t code, const char *reason, bool ring_always) {
        if (!f->side[idx].open)
                return;
        struct flow_end *e = &flow_hdr_of(f->hdr)->end[idx];
        bool wrote = false;
        if (atomic_load_explicit(&e->code, memory_order_acquire) == 0) {
                /* Reason first, code last (release): a reader that sees the
                 * code sees the whole reason. */
                memset(e->reason, 0, sizeof(e->reason));
                str_copy(e->reason, reason, sizeof(e->reason));
                atomic_store_explicit(&e->code, code, memory_order_release);
                wrote = true;
        }
        /* A side that wrote its own record also rang its peer, unless it died
         * in between: after a death the daemon rings regardless. */
        int other = 1 - idx;
        observe_emit(f->d, &(observe_ev){ .kind = OBSERVE_FLOW_ENDED, .flow = f, .side = idx });
        flow_side *o = &f->side[other];
        if (o->open && o->ops && o->ops->peer_ended)
                o->ops->peer_ended(f, other);
        if (wrote || ring_always) {
                wake_ring(f->mem.bell[flow_wake_rx(other)]);
                wake_ring(f->mem.bell[flow_wake_tx(other)]);
                /* A side asleep on a futex (common/wakeword.h): its data
                 * comes on ring idx, its room on ring other. */
                wakeword_end(&flow_ctl_of(f->hdr, idx)->rx_sleep);
                wakeword_end(&flow_ctl_of(f->hdr, other)->tx_sleep);
        }
        log_debug("flow %llu: side %d ended (%s)", (unsigned long long)f->node.id, idx, reason);
        flow_side_close(f, idx);
}

void flow_free_all(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &flows)
                flow_free(dlist_entry(pos, flow, link));
        idmap_deinit(&flow_ids);
}

void flow_ring_stats(const flow *f, int r, uint64_t *msgs, uint64_t *bytes, uint64_t *queued) {
        struct ring_ctl *ctl = flow_ctl_of(f->hdr, r);
        *msgs = atomic_load_explicit(&ctl->msgs_w, memory_order_relaxed);
        *bytes = atomic_load_explicit(&ctl->bytes_w, memory_order_relaxed);
        *queued = ring_queued(ctl, f->layout.ring_size);
}

uint32_t flow_state(const flow *f) {
        struct flow_hdr *h = f->hdr;
        for (int i = 0; i < 2; i++)
                if (!f->side[i].open || atomic_load_explicit(&h->end[i].code, memory_order_acquire))
                        return 1;
        return 0;
}

uint64_t flow_drops(const flow *f) {
        return atomic_load(&flow_ctl_of(f->hdr, 0)->drops) + atomic_load(&flow_ctl_of(f->hdr, 1)->drops);
}

uint32_t flow_end_record(const flow *f, int idx, char reason[IPCF_REASON_MAX + 1]) {
        struct flow_end *e = &flow_hdr_of(f->hdr)->end[idx];
        uint32_t code = atomic_load_explicit(&e->code, memory_order_acquire);
        memcpy(reason, e->reason, IPCF_REASON_MAX + 1);
        reason[IPCF_REASON_MAX] = 0;
        for (char *p = reason; *p; p++)
                if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
                        *p = '?';
        return code < IPCF_END_DEALLOC || code > IPCF_END_PROTOCOL ? IPCF_END_DEALLOC : code;
}
