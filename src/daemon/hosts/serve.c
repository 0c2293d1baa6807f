/*
 * serve.c — another host asking this one for a name (hosts.h).
 *
 * An ALLOC from a host's daemon is checked (its bounds, the remote policy:
 * policy.c) and becomes an allocation of origin "host" (flows/alloc.h
 * ORIGINS), walked through the local resolvers — registrations, the
 * daemon's objects, activation (a program started on demand here) — exactly
 * as a local ALLOC, never through the hosts resolvers (no forwarding). The
 * requester it names is the remote process, as its daemon asserts it:
 * pid, uid, gid and "program@host", which the acceptor sees in its request.
 *
 * THE ORIGIN'S OPS: side 0 of the flow is a relay end (relay.h); when the
 * flow is made the relay opens the EFCP flow and ACCEPT goes back (with the
 * acceptor's identity and the granted qos); a failure goes back as REFUSE
 * with its errno, end code and reason; the requester's CANCEL (or its host
 * going down) withdraws the allocation. A registration serves a remote
 * allocation only if the remote_register rule of the name allows its owner.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/resolve.h"
#include "daemon/hosts/hosts.h"
#include "daemon/hosts/relay.h"

/* The longest wait another host may ask for (its timeout_ms). */
#define SERVE_TIMEOUT_MAX_MS (3600u * 1000u)

typedef struct sreq {
        struct idmap_node node;        /* id: the requester's request id */
        hostrec *h;
        struct dlist link;             /* h->serving */
        alloc *a;
        uint32_t rport;                /* the requester's port-id for the data flow */
        relay *r;                      /* side 0, until the flow is made */
        bool reliable;
} sreq;

static void serve_refuse(hostrec *h, uint64_t req, int err, uint32_t code, const char *reason) {
        hw_msg m = { .type = HW_REFUSE, .req = req, .err = (uint32_t)-err, .code = reason ? code : 0 };
        if (reason)
                str_copy(m.reason, reason, sizeof(m.reason));
        hlink_send(h->p, &m);
}

/* ---- the origin ---------------------------------------------------------------- */

static void host_end(alloc *a, flow_end_spec *ret) {
        sreq *s = a->origin_obj;
        relay_spec(s->r, ret, &a->cred, a->prog);
}

static int host_handover(alloc *a, flow *f) {
        sreq *s = a->origin_obj;
        hostrec *h = s->h;
        if (!h || h->p->state != HPEER_UP)
                return -ENOTCONN;
        uint32_t lport = hlink_port_new(h->p);
        relay *r = s->r;
        int rc = relay_start(r, f, NULL, lport, s->rport);
        if (rc < 0)
                return rc;
        s->r = NULL; /* it lives with the flow now */
        const flow_side *acc = &f->side[1];
        hw_msg m = { .type = HW_ACCEPT, .req = s->node.id, .port = lport, .qos = f->qos };
        m.who = (hw_ident){ .pid = (uint32_t)acc->cred.pid, .uid = acc->cred.uid, .gid = acc->cred.gid };
        str_copy(m.who.prog, acc->prog[0] ? acc->prog : "unknown", sizeof(m.who.prog));
        hlink_send(h->p, &m);
        return 0;
}

static void host_fail(alloc *a, int err, const char *reason, uint32_t end_code) {
        sreq *s = a->origin_obj;
        if (s->h)
                serve_refuse(s->h, s->node.id, err, end_code, reason);
}

static void host_gone(alloc *a) {
        sreq *s = a->origin_obj;
        if (s->h) {
                idmap_del(&s->h->serving_ids, &s->node);
                dlist_del(&s->link);
                s->h->n_serving--;
        }
        if (s->r)
                relay_discard(s->r);
        free(s);
}

static bool host_may_serve(const alloc *a, const cred *who) {
        return hosts_policy_register(the_hosts.d, a->name, who);
}

static const alloc_origin_ops host_origin = {
        .kind = "host",
        .end = host_end,
        .handover = host_handover,
        .fail = host_fail,
        .gone = host_gone,
        .may_serve = host_may_serve,
};

/* ---- what the requesting host says -------------------------------------------- */

static void serve_on_alloc(hostrec *h, const hw_msg *m) {
        ipcfd *d = the_hosts.d;
        if (idmap_find(&h->serving_ids, m->req))
                return; /* a repeat: the first one is being decided */
        if (h->n_serving >= HOSTS_PENDING_MAX) {
                serve_refuse(h, m->req, -EBUSY, 0, NULL);
                return;
        }
        if (hosts_policy_allocate(d, h->p->name, m->name, m) < 0) {
                the_hosts.remote_refused++;
                char why[IPCF_REASON_MAX + 1];
                snprintf(why, sizeof(why), "not allowed from host %s", h->p->name);
                log_debug("host %s: pid %u uid %u may not allocate %s here", h->p->name, m->who.pid, m->who.uid,
                          m->name);
                serve_refuse(h, m->req, -EACCES, IPCF_END_REFUSED, why);
                return;
        }
        ipcf_qos qos = m->qos;
        relay_qos(&qos);
        bool reliable = m->role != CTL_ROLE_DGRAM;
        cred who = { .pid = (pid_t)m->who.pid, .uid = m->who.uid, .gid = m->who.gid };
        char prog[IPCF_NAME_MAX + 1];
        snprintf(prog, sizeof(prog), "%.63s@%s", m->who.prog, h->p->name);
        sreq *s = calloc(1, sizeof(*s));
        if (!s) {
                serve_refuse(h, m->req, -ENOMEM, 0, NULL);
                return;
        }
        s->h = h;
        s->node.id = m->req;
        s->rport = m->port;
        s->reliable = reliable;
        s->r = relay_new(h, &who, prog, reliable);
        if (s->r && m->role == CTL_ROLE_MBOX_RECV)
                relay_set_receiver(s->r, true); /* the mailbox is here */
        else if (s->r && m->role == CTL_ROLE_MBOX_SEND)
                relay_set_sender(s->r, true); /* the mailbox is here */
        if (!s->r || idmap_add(&h->serving_ids, &s->node) < 0) {
                if (s->r)
                        relay_discard(s->r);
                free(s);
                serve_refuse(h, m->req, -ENOMEM, 0, NULL);
                return;
        }
        dlist_add_tail(&h->serving, &s->link);
        h->n_serving++;
        int timeout = m->timeout_ms == 0 ? -1 : (int)MIN(m->timeout_ms, SERVE_TIMEOUT_MAX_MS);
        alloc_params p = { .name = m->name, .qos = &qos, .role = m->role, .timeout_ms = timeout,
                           .cred = &who, .prog = prog, .user = the_hosts.user };
        int r = alloc_new_from(d, &host_origin, s, &p, &s->a);
        if (r < 0) {
                serve_refuse(h, m->req, r, 0, NULL);
                idmap_del(&h->serving_ids, &s->node);
                dlist_del(&s->link);
                h->n_serving--;
                relay_discard(s->r);
                free(s);
                return;
        }
        r = alloc_start(s->a);
        if (r != 0)
                alloc_fail(s->a, r == RESOLVE_NEXT ? -ENOENT : r, NULL, 0);
}

static void serve_on_cancel(hostrec *h, const hw_msg *m) {
        struct idmap_node *n = idmap_find(&h->serving_ids, m->req);
        if (n)
                alloc_withdraw(container_of(n, sreq, node)->a);
}

void serve_on_control(hostrec *h, const hw_msg *m) {
        if (m->type == HW_ALLOC)
                serve_on_alloc(h, m);
        else if (m->type == HW_CANCEL)
                serve_on_cancel(h, m);
}

/* The requesting host is gone: its allocations are withdrawn. */
void serve_host_down(hostrec *h) {
        dlist_for_each_safe(pos, tmp, &h->serving)
                alloc_withdraw(dlist_entry(pos, sreq, link)->a);
}

void serve_shutdown(void) {
        for (unsigned i = 0; i < the_hosts.n; i++)
                serve_host_down(&the_hosts.recs[i]);
}
