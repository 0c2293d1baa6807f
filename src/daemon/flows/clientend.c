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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Is process pid exiting or gone? Its descriptors close while it exits,
 * before the daemon may have seen its connection close (the kernel gives
 * no order), so the death is told as one whichever comes first. From
 * /proc/PID/stat: a zombie, or PF_EXITING in its flags (set before any of its
 * descriptors is closed). */
static bool proc_exiting(pid_t pid) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return true; /* gone (reaped) */
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return true;
        buf[n] = 0;
        /* "pid (comm) S ppid pgrp session tty tpgid flags ...": comm may hold
         * anything, so start after its last ')'. */
        const char *p = strrchr(buf, ')');
        char state = 0;
        unsigned long flags = 0;
        if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
                return false;
        return state == 'Z' || state == 'X' || (flags & 0x4 /* PF_EXITING */);
}

/* The side's ears are all closed: its process died, or let go of it. */
static void client_end_let_go(flow *f, int idx) {
        bool died = proc_exiting(f->side[idx].cred.pid);
        flow_side_end(f, idx, IPCF_END_PEER_DIED, died ? "peer died" : "peer let go of the flow", true);
}

static const flow_end_ops client_end_ops = {
        .kind = "client",
        .deliver = client_end_deliver,
        .let_go = client_end_let_go,
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
