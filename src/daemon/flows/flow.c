/*
 * flow.c — flow objects: creation (common/flowmem.c makes the memory and the
 * wake-up channels), hand-out (the FLOW message), ends (peer death, give-up,
 * dealloc) and reclamation.
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
 * shared socket (common/wake.h); it never holds a client's ear.
 *
 * END RECORDS: when the daemon ends a side (death, give-up), it writes the
 * reason first and then stores the code with release order, only if that
 * side has not written its own record; the peer loads the code with acquire
 * and then reads the reason. Then it rings the peer's rx and tx bells so
 * a peer blocked in either direction (or polling) wakes at once.
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
#include "daemon/core/client.h"
#include "daemon/core/log.h"
#include "daemon/models/models.h"
#include "daemon/core/quota.h"
#include "daemon/names/registry.h"

flow *flow_find(ipcfd *d, uint64_t id) {
        struct idmap_node *n = idmap_find(&d->flow_ids, id);
        return n ? container_of(n, flow, node) : NULL;
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
                dlist_init(&f->side[i].owner_link);
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
        r = idmap_add(&d->flow_ids, &f->node);
        if (r < 0)
                goto fail;
        dlist_add_tail(&d->flows, &f->link);
        d->n_flows++;
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

void flow_side_attach(flow *f, int idx, client *owner, const cred *cr, const char *prog, user *u) {
        flow_side *s = &f->side[idx];
        s->open = true;
        s->owner = owner;
        if (owner)
                dlist_add_tail(&owner->sides, &s->owner_link);
        s->cred = *cr;
        str_copy(s->prog, prog, sizeof(s->prog));
        s->user = user_ref(u);
        /* Checked by the caller before the flow was made; never refused here. */
        if (u)
                u->used[QUOTA_FLOWS]++;
}

int flow_send(flow *f, int idx, int sock, uint32_t seq, client *as_client) {
        const flow_side *peer = &f->side[1 - idx];
        struct ctl_qos_wire qw;
        struct ctl_peer_wire pw = { htole32((uint32_t)peer->cred.pid), htole32(peer->cred.uid),
                                    htole32(peer->cred.gid), 0 };
        int fds[FLOW_SIDE_FDS];
        flow_mem_side_fds(&f->mem, idx, fds);
        ctl_builder *b = malloc(sizeof(*b));
        if (!b)
                return -ENOMEM;
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
        int r;
        if (as_client) {
                r = client_send(as_client, b, fds, FLOW_SIDE_FDS);
        } else {
                r = ctl_end(b);
                if (r >= 0)
                        r = ctl_send(sock, b, fds, FLOW_SIDE_FDS);
        }
        free(b);
        return r < 0 ? r : 0;
}

void flow_handed_out(flow *f) { flow_mem_drop_handout(&f->mem); }

void flow_free(flow *f) {
        ipcfd *d = f->d;
        for (int i = 0; i < 2; i++) {
                flow_side *s = &f->side[i];
                if (s->open && s->user)
                        quota_release(s->user, QUOTA_FLOWS, 1);
                s->open = false;
                dlist_del(&s->owner_link);
                s->user = user_unref(s->user);
        }
        reg *g = reg_find(d, f->reg_id);
        if (g && g->flows)
                g->flows--;
        if (f->bytes_user) {
                quota_release(f->bytes_user, f->bytes_kind, f->bytes);
                f->bytes_user = user_unref(f->bytes_user);
        }
        idmap_del(&d->flow_ids, &f->node);
        dlist_del(&f->link);
        d->n_flows--;
        munmap(f->hdr, FLOW_DATA_OFF);
        flow_mem_close(&f->mem);
        log_debug("flow %llu: reclaimed", (unsigned long long)f->node.id);
        loop_defer_free(d->loop, f);
}

void flow_side_close(flow *f, int idx) {
        flow_side *s = &f->side[idx];
        if (!s->open)
                return;
        s->open = false;
        dlist_del(&s->owner_link);
        s->owner = NULL;
        if (s->user)
                quota_release(s->user, QUOTA_FLOWS, 1);
        s->user = user_unref(s->user);
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
        models_flow_side_ended(f, idx); /* notifications */
        if (wrote || ring_always) {
                wake_ring(f->mem.bell[flow_wake_rx(other)]);
                wake_ring(f->mem.bell[flow_wake_tx(other)]);
        }
        log_debug("flow %llu: side %d ended (%s)", (unsigned long long)f->node.id, idx, reason);
        flow_side_close(f, idx);
}

int flow_handle_dealloc(client *c, const ctl_msg *m) {
        uint64_t id;
        uint32_t want_side = 2;
        const char *reason = NULL;
        char cut[IPCF_REASON_MAX + 1];
        int r = ctl_get_u64(m, CTL_A_FLOW_ID, &id);
        if (r == -EBADMSG)
                return r;
        int rs = ctl_get_u32(m, CTL_A_SIDE, &want_side);
        if (rs == -EBADMSG)
                return rs;
        int rr = ctl_get_str(m, CTL_A_REASON, CTL_MSG_MAX, &reason);
        if (rr == -EBADMSG)
                return rr;
        flow *f = r == 0 ? flow_find(c->d, id) : NULL;
        if (!f)
                return client_reply_error(c, m->seq, -ENOENT), 0;

        /* Which side is c's? A process can hold both sides of a flow (it
         * allocated to its own name): then the SIDE attribute decides, else
         * the side whose end record the library has already written. */
        int idx = -1;
        for (int i = 0; i < 2; i++) {
                flow_side *s = &f->side[i];
                if (!s->open || s->owner != c)
                        continue;
                if (rs == 0 && want_side != (uint32_t)i)
                        continue;
                if (idx < 0)
                        idx = i;
                else if (atomic_load(&flow_hdr_of(f->hdr)->end[i].code) != 0 &&
                         atomic_load(&flow_hdr_of(f->hdr)->end[idx].code) == 0)
                        idx = i;
        }
        if (idx < 0)
                return client_reply_error(c, m->seq, -ENOENT), 0;
        str_copy(cut, rr == 0 ? reason : "", sizeof(cut));
        /* The library wrote its end record and rang the peer already; if it
         * did not (an older or broken one), the daemon does it for it, so
         * the peer is never left waiting. */
        flow_side_end(f, idx, IPCF_END_DEALLOC, cut, false);
        client_reply_ok(c, m->seq);
        return 0;
}

void flow_client_gone(client *c) {
        dlist_for_each_safe(pos, tmp, &c->sides) {
                flow_side *s = dlist_entry(pos, flow_side, owner_link);
                /* At daemon shutdown the flows stay alive in their processes:
                 * only forget them. */
                if (c->d->shutdown)
                        flow_side_close(s->flow, s->idx);
                else
                        flow_side_end(s->flow, s->idx, IPCF_END_PEER_DIED, "peer died", true);
        }
}

void flow_free_all(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &d->flows)
                flow_free(dlist_entry(pos, flow, link));
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
