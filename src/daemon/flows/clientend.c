/*
 * clientend.c — flow sides held by clients (see clientend.h): delivery of the
 * FLOW message, DEALLOC, and peer death.
 *
 * PEER DEATH: when a client's connection ends, every open side it holds ends
 * at once with IPCF_END_PEER_DIED, "peer died", and the peer's bells are
 * rung whatever the record said (the dead process may have written its own
 * record and died before ringing). At daemon shutdown the sides are only
 * forgotten: the flows live on in their processes.
 */
#include "daemon/flows/clientend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/observe.h"

/* client.held index of the sides a client holds. */
static int sides_kind = -1;

/* After the peer has its FLOW: this side's, on the connection or a socket.
 * A failure on the connection marks the client dead: it is dropped after
 * this request, and its side then ends like any death. */
static void client_end_deliver(flow *f, int idx, void *arg) {
        client_delivery *dl = arg;
        if (!dl)
                return;
        if (!dl->rq) {
                (void)flow_send(f, idx, dl->sock, dl->seq);
                return;
        }
        int fds[FLOW_SIDE_FDS];
        ctl_builder *b = malloc(sizeof(*b));
        if (!b) {
                dl->rq->c->dead = true;
                dl->rq->replied = true;
                return;
        }
        flow_message(f, idx, dl->seq, b, fds);
        request_send(dl->rq, b, fds, FLOW_SIDE_FDS);
        free(b);
}

static const flow_end_ops client_end_ops = {
        .kind = "client",
        .deliver = client_end_deliver,
};

void client_end(flow_end_spec *e, client *c, client_delivery *dl) {
        *e = (flow_end_spec){ .ops = &client_end_ops, .holder = c, .holder_list = &c->held[sides_kind],
                         .cred = &c->cred, .prog = c->prog, .user = c->user, .arg = dl };
}

client *flow_side_client(const flow_side *s) {
        return s->open && s->ops == &client_end_ops ? s->holder : NULL;
}

/* DEALLOC: bookkeeping of a side of this client. */
static int client_end_on_dealloc(request *rq) {
        client *c = rq->c;
        uint64_t id = ctl_arg_u64(rq->args, CTL_A_FLOW_ID, 0);
        bool by_side = ctl_arg_has(rq->args, CTL_A_SIDE);
        uint32_t want_side = ctl_arg_u32(rq->args, CTL_A_SIDE, 2);
        const char *reason = ctl_arg_str(rq->args, CTL_A_REASON);
        char cut[IPCF_REASON_MAX + 1];
        flow *f = flow_find(rq->d, id);
        if (!f)
                return -ENOENT;

        /* Which side is c's? A process can hold both sides of a flow (it
         * allocated to its own name): then the SIDE attribute decides, else
         * the side whose end record the library has already written. */
        int idx = -1;
        for (int i = 0; i < 2; i++) {
                flow_side *s = &f->side[i];
                if (flow_side_client(s) != c)
                        continue;
                if (by_side && want_side != (uint32_t)i)
                        continue;
                if (idx < 0)
                        idx = i;
                else if (atomic_load(&flow_hdr_of(f->hdr)->end[i].code) != 0 &&
                         atomic_load(&flow_hdr_of(f->hdr)->end[idx].code) == 0)
                        idx = i;
        }
        if (idx < 0)
                return -ENOENT;
        str_copy(cut, reason ? reason : "", sizeof(cut));
        /* The library wrote its end record and rang the peer already; if it
         * did not (an older or broken one), the daemon does it for it, so
         * the peer is never left waiting. */
        flow_side_end(f, idx, IPCF_END_DEALLOC, cut, false);
        return 0;
}

/* Peer death (see the top). */
static void client_end_on_client_gone(ipcfd *d, const observe_ev *ev) {
        dlist_for_each_safe(pos, tmp, &ev->client->held[sides_kind]) {
                flow_side *s = dlist_entry(pos, flow_side, holder_link);
                if (d->shutdown)
                        flow_side_close(s->flow, s->idx);
                else
                        flow_side_end(s->flow, s->idx, IPCF_END_PEER_DIED, "peer died", true);
        }
}

int client_end_init(ipcfd *d) {
        static const method methods[] = { { CTL_DEALLOC, client_end_on_dealloc } };
        int r = sides_kind = client_hold_kind(d, "flow sides");
        if (r < 0)
                return r;
        r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        if (r < 0)
                return r;
        return observe(d, OBSERVE_CLIENT_GONE, client_end_on_client_gone);
}
