/*
 * alloc.c — the allocation pipeline (state machine in alloc.h).
 *
 * TRUST: the reply socket is an fd the requester chose. The daemon checks it
 * is a SOCK_SEQPACKET socket, makes it non-blocking (a stuffed socket can
 * never stall the daemon) and only ever writes one message to it and reads
 * at most one (the handover OK).
 *
 * REQUEST IDS are the alloc ids; a request is "known" to a registration only
 * while the alloc is pending on it, and remembered as a tombstone after it
 * was withdrawn (registry.h), which tells ECANCELED from ENOENT.
 */
#include "daemon/flows/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/names/activation.h"
#include "daemon/core/client.h"
#include "daemon/flows/flow.h"
#include "daemon/core/log.h"
#include "daemon/models/models.h"
#include "daemon/core/policy.h"
#include "daemon/core/quota.h"
#include "daemon/names/registry.h"

/* How long the daemon waits for the handover OK before it assumes the
 * allocator has the flow (it is alive: a dead one hangs up at once). */
#define HANDOVER_GUARD_NS (10ull * 1000000000u)
/* Registrations tried per dispatch (least loaded first). */
#define DISPATCH_MAX 256

static void alloc_on_reply(loop_io *io, uint32_t events);
static int alloc_accept(alloc *a, reg *g, client *c, int sock, uint32_t seq);
static void alloc_on_timer(loop_timer *t);

static alloc *alloc_find(ipcfd *d, uint64_t id) {
        struct idmap_node *n = idmap_find(&d->alloc_ids, id);
        return n ? container_of(n, alloc, node) : NULL;
}

/* Release a and everything it holds; nothing is sent. A request still
 * pending on a registration leaves a tombstone there (withdrawn). */
static void alloc_free(alloc *a) {
        ipcfd *d = a->d;
        loop_timer_cancel(d->loop, &a->timer);
        loop_io_del(d->loop, &a->io);
        a->reply = safe_close(a->reply);
        if (a->target) {
                reg_tomb_add(a->target, a->node.id);
                dlist_del(&a->target_link);
                a->target->pending--;
                a->target = NULL;
        }
        if (a->act)
                activation_leave(a);
        dlist_del(&a->req_link);
        idmap_del(&d->alloc_ids, &a->node);
        d->n_allocs--;
        if (a->pending_charged)
                quota_release(a->user, QUOTA_PENDING, 1);
        if (a->bytes)
                quota_release(a->user, a->bytes_kind, a->bytes);
        user_unref(a->user);
        loop_defer_free(d->loop, a);
}

/* Send one message on the reply socket. */
static int alloc_reply_send(alloc *a, ctl_builder *b, const int *fds, unsigned n_fds) {
        int r = ctl_end(b);
        if (r >= 0)
                r = ctl_send(a->reply, b, fds, n_fds);
        return r < 0 ? r : 0;
}

void alloc_fail(alloc *a, int err, const char *reason, uint32_t end_code) {
        ctl_builder *b = malloc(sizeof(*b));
        log_debug("alloc %llu (%s): fails: %s%s%s", (unsigned long long)a->node.id, a->name,
                  strerror(-err), reason ? ": " : "", reason ? reason : "");
        if (b) {
                ctl_begin(b, CTL_ERROR, a->seq);
                ctl_put_u32(b, CTL_A_ERRNO, (uint32_t)-err);
                if (reason)
                        ctl_put_str(b, CTL_A_REASON, reason);
                if (end_code)
                        ctl_put_u32(b, CTL_A_END_CODE, end_code);
                alloc_reply_send(a, b, NULL, 0); /* a failure: the requester is gone anyway */
                free(b);
        }
        alloc_free(a);
}

/* Try the registrations of a's name, least loaded first. Returns 0 when a
 * REQUEST went out (a is PENDING), 1 when an inbox took it or refused it at
 * once (a is then handed over or gone: do not touch it), -EBUSY if some exist
 * but none could take it, -ENOENT if none exist. */
static int alloc_try_regs(alloc *a) {
        ipcfd *d = a->d;
        reg *cand[DISPATCH_MAX];
        size_t n = registry_candidates(d, a->name, cand, DISPATCH_MAX);
        if (n == 0)
                return registry_has(d, a->name) ? -EBUSY : -ENOENT;

        ctl_builder *b = malloc(sizeof(*b));
        if (!b)
                return -EBUSY;
        struct ctl_peer_wire pw = { htole32((uint32_t)a->cred.pid), htole32(a->cred.uid),
                                    htole32(a->cred.gid), 0 };
        struct ctl_qos_wire qw;
        ctl_qos_to_wire(&a->qos, &qw);
        ctl_begin(b, CTL_REQUEST, 0);
        ctl_put_u64(b, CTL_A_REQ_ID, a->node.id);
        ctl_put_str(b, CTL_A_NAME, a->name);
        ctl_put(b, CTL_A_PEER, &pw, sizeof(pw));
        ctl_put_str(b, CTL_A_PEER_NAME, a->prog);
        ctl_put(b, CTL_A_QOS, &qw, sizeof(qw));
        int r = ctl_end(b);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (cand[i]->flags & CTL_REG_AUTO) {
                        /* An inbox: accepted here, its FLOW on the registration
                         * socket; a request of the wrong role is refused. */
                        free(b);
                        if ((cand[i]->flags >> CTL_REG_ROLE_SHIFT) != a->role) {
                                alloc_fail(a, -ECONNREFUSED, "wrong kind of channel for this name",
                                           IPCF_END_REFUSED);
                                return 1;
                        }
                        a->target = cand[i];
                        a->target->pending++;
                        dlist_add_tail(&a->target->pending_allocs, &a->target_link);
                        a->state = ALLOC_PENDING;
                        r = alloc_accept(a, cand[i], cand[i]->owner, cand[i]->sock, 0);
                        if (r < 0 && r != -ECANCELED)
                                alloc_fail(a, r, NULL, 0);
                        return 1;
                }
                /* EAGAIN: that socket is full, a full backlog. Other errors
                 * (the client just closed it): try the next one as well. */
                if (ctl_send(cand[i]->sock, b, NULL, 0) < 0)
                        continue;
                a->target = cand[i];
                a->target->pending++;
                dlist_add_tail(&a->target->pending_allocs, &a->target_link);
                a->state = ALLOC_PENDING;
                free(b);
                log_debug("alloc %llu (%s): request sent to reg %llu", (unsigned long long)a->node.id,
                          a->name, (unsigned long long)a->target->node.id);
                return 0;
        }
        free(b);
        return -EBUSY;
}

/* First dispatch: registrations, else activation, else ENOENT. */
static void alloc_dispatch(alloc *a) {
        int r = alloc_try_regs(a);
        if (r >= 0)
                return;
        if (r == -ENOENT) {
                const conf_rule *rule = conf_match(&a->d->conf, a->name);
                if (rule && rule->activate) {
                        r = activation_join(a->d, rule, a);
                        if (r == 0) {
                                a->state = ALLOC_WAIT_ACT;
                                return;
                        }
                }
        }
        alloc_fail(a, r, NULL, 0);
}

void alloc_redispatch(alloc *a, int err, const char *reason, uint32_t end_code) {
        if (a->act)
                activation_leave(a);
        a->state = ALLOC_NEW;
        if (alloc_try_regs(a) < 0)
                alloc_fail(a, err, reason, end_code);
}

/* The reply socket must be a SOCK_SEQPACKET socket; make it non-blocking. */
static int alloc_check_reply(int fd) {
        int type = 0;
        socklen_t len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
                return -EINVAL;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

int alloc_handle_alloc(client *c, const ctl_msg *m, int *reply_fd) {
        ipcfd *d = c->d;
        int fd = *reply_fd;
        const char *name;
        struct ctl_qos_wire qw;
        ipcf_qos qos;
        flow_layout layout;
        uint32_t tmo = (uint32_t)-1, role = CTL_ROLE_FLOW;
        int r;

        *reply_fd = -1; /* ours from here on */
        r = ctl_get_str(m, CTL_A_NAME, CTL_MSG_MAX, &name);
        if (r == -EBADMSG)
                goto violation;
        if (r < 0 || !ctl_name_valid(name)) {
                r = -EINVAL;
                goto refuse;
        }
        memset(&qw, 0, sizeof(qw));
        r = ctl_get_fixed(m, CTL_A_QOS, &qw, sizeof(qw));
        if (r == -EBADMSG)
                goto violation;
        ctl_qos_from_wire(&qw, &qos); /* absent: all defaults */
        /* The role is the ROLE attribute's, never the qos's: a set reserved
         * byte is refused, so no qos can smuggle one in. */
        r = ctl_get_u32(m, CTL_A_ROLE, &role);
        if (r == -EBADMSG)
                goto violation;
        if (qw.reserved0 != 0 || role >= CTL_ROLE_MAX_ || ctl_qos_normalize(&qos) < 0 ||
            flow_layout_for(&qos, &layout) < 0) {
                r = -EINVAL;
                goto refuse;
        }
        r = ctl_get_u32(m, CTL_A_TIMEOUT_MS, &tmo);
        if (r == -EBADMSG)
                goto violation;
        int timeout_ms = (int32_t)tmo;
        if (timeout_ms == 0 || timeout_ms < -1) {
                r = -EINVAL;
                goto refuse;
        }
        r = alloc_check_reply(fd);
        if (r < 0)
                goto refuse;
        r = policy_check(d, name, POLICY_ALLOCATE, &c->cred);
        if (r < 0)
                goto refuse;
        /* A mailbox or group role: the daemon itself accepts (models.h). */
        if (models_role(role))
                return models_alloc(c, m, name, &qos, role, &fd);

        /* Quotas: a pending slot, a flow to come, the unbounded memory. */
        /* The shared memory a flow may come to use is charged to the requester:
         * an unbounded flow's limit, or any other flow's rings. */
        bool unbounded = qos.capacity == IPCF_CAPACITY_UNBOUNDED;
        int bytes_kind = unbounded ? QUOTA_BYTES : QUOTA_RING_BYTES;
        uint64_t bytes = unbounded ? 2 * qos.max_bytes : 2 * layout.ring_size;
        if (d->n_allocs >= d->caps.allocs || d->n_flows >= d->caps.flows ||
            quota_check(c->user, QUOTA_FLOWS, 1) < 0 || quota_check(c->user, QUOTA_PENDING, 1) < 0 ||
            quota_check(c->user, bytes_kind, bytes) < 0) {
                r = -EDQUOT;
                goto refuse;
        }
        alloc *a = calloc(1, sizeof(*a));
        if (!a) {
                r = -ENOMEM;
                goto refuse;
        }
        a->d = d;
        a->node.id = ipcfd_new_id(d);
        a->state = ALLOC_NEW;
        a->requester = c;
        a->cred = c->cred;
        str_copy(a->prog, c->prog, sizeof(a->prog));
        a->user = user_ref(c->user);
        a->seq = m->seq;
        str_copy(a->name, name, sizeof(a->name));
        a->qos = qos;
        a->role = role;
        a->layout = layout;
        a->reply = fd;
        dlist_init(&a->target_link);
        dlist_init(&a->act_link);
        loop_timer_init(&a->timer, alloc_on_timer);
        if (idmap_add(&d->alloc_ids, &a->node) < 0) {
                user_unref(a->user);
                free(a);
                r = -ENOMEM;
                goto refuse;
        }
        d->n_allocs++;
        dlist_add_tail(&c->allocs, &a->req_link);
        quota_charge(a->user, QUOTA_PENDING, 1);
        a->pending_charged = true;
        if (bytes) {
                quota_charge(a->user, bytes_kind, bytes);
                a->bytes = bytes;
                a->bytes_kind = bytes_kind;
        }
        if (loop_io_add(d->loop, &a->io, fd, EPOLLIN, alloc_on_reply) < 0 ||
            (timeout_ms > 0 &&
             loop_timer_arm(d->loop, &a->timer, now_ns() + (uint64_t)timeout_ms * 1000000u) < 0)) {
                alloc_free(a);
                client_reply_error(c, m->seq, -ENOMEM);
                return 0;
        }
        log_debug("alloc %llu: %s by pid %d, timeout %d ms", (unsigned long long)a->node.id, a->name,
                  (int)c->cred.pid, timeout_ms);

        ctl_builder *b = malloc(sizeof(*b));
        if (!b) {
                alloc_free(a);
                return -ENOMEM;
        }
        ctl_begin(b, CTL_OK, m->seq);
        ctl_put_u64(b, CTL_A_ALLOC_ID, a->node.id);
        r = client_send(c, b, NULL, 0);
        free(b);
        /* If the OK could not go out the client is being dropped, which
         * withdraws a; otherwise find it a target now. */
        if (r == 0)
                alloc_dispatch(a);
        return 0;

refuse:
        safe_close(fd);
        client_reply_error(c, m->seq, r);
        return 0;
violation:
        safe_close(fd);
        return -EBADMSG;
}

/* The common part of ACCEPT and REFUSE: find the request req_id pending on
 * the client's registration reg_id. Returns 0 and *ret, or a negative errno
 * to reply, or -EBADMSG for a protocol violation. */
static int alloc_lookup_decision(client *c, const ctl_msg *m, reg **ret_reg, alloc **ret) {
        uint64_t reg_id, req_id;
        int r = ctl_get_u64(m, CTL_A_REG_ID, &reg_id);
        if (r == -EBADMSG)
                return r;
        if (r < 0)
                return -EINVAL;
        r = ctl_get_u64(m, CTL_A_REQ_ID, &req_id);
        if (r == -EBADMSG)
                return r;
        if (r < 0)
                return -EINVAL;
        reg *g = reg_find(c->d, reg_id);
        /* The owner, or a process of the same user holding the registration's
         * socket (a worker forked after ipcf_register: the prefork pattern;
         * one user is one trust domain). The flow side goes to the decider. */
        if (!g || (g->owner != c && g->owner->cred.uid != c->cred.uid))
                return -ENOENT;
        alloc *a = alloc_find(c->d, req_id);
        if (!a || a->target != g || a->state != ALLOC_PENDING)
                return reg_tomb_has(g, req_id) ? -ECANCELED : -ENOENT;
        *ret_reg = g;
        *ret = a;
        return 0;
}

int alloc_handle_accept(client *c, const ctl_msg *m) {
        reg *g;
        alloc *a;
        int r = alloc_lookup_decision(c, m, &g, &a);
        if (r == -EBADMSG)
                return r;
        if (r < 0)
                return client_reply_error(c, m->seq, r), 0;
        r = alloc_accept(a, g, c, c->fd, m->seq);
        if (r < 0)
                client_reply_error(c, m->seq, r);
        return 0;
}

/* Accept a (pending on g) for client c, whose FLOW goes to sock (its
 * connection with the ACCEPT's seq, or an inbox's registration socket with
 * seq 0). Returns 0 when the flow is made and both FLOWs are sent (or the
 * acceptor's failed: it is then dropped like any dead client), or a negative
 * errno for the acceptor, with a untouched (still pending) except for
 * -ECANCELED (a is gone). */
static int alloc_accept(alloc *a, reg *g, client *c, int sock, uint32_t seq) {
        ipcfd *d = c->d;
        flow *f;
        int r;
        /* Each side is charged to its holder's uid. The acceptor's own quota
         * (or the global cap) refuses the ACCEPT; the request stays pending. */
        bool same = a->user == c->user;
        if (d->n_flows >= d->caps.flows || quota_check(c->user, QUOTA_FLOWS, same ? 2 : 1) < 0)
                return -EDQUOT;
        /* The requester was checked at ALLOC but may have made other flows
         * since: then it is the allocation that fails (EDQUOT), and for the
         * acceptor the request is simply gone (ECANCELED: ipcf_accept()
         * takes the next one). */
        if (!same && quota_check(a->user, QUOTA_FLOWS, 1) < 0) {
                dlist_del(&a->target_link);
                g->pending--;
                a->target = NULL;
                alloc_fail(a, -EDQUOT, NULL, 0);
                return -ECANCELED;
        }
        r = flow_new(d, a->name, &a->qos, &a->layout, &f);
        if (r < 0)
                return r;
        flow_side_attach(f, 0, a->requester, &a->cred, a->prog, a->user);
        flow_side_attach(f, 1, c, &c->cred, c->prog, c->user);
        f->reg_id = g->node.id;
        g->flows++;
        /* The unbounded-bytes charge moves from the request to the flow. */
        if (a->bytes) {
                f->bytes_user = user_ref(a->user);
                f->bytes = a->bytes;
                f->bytes_kind = a->bytes_kind;
                a->bytes = 0;
        }
        /* Decided: no longer pending on g. */
        dlist_del(&a->target_link);
        g->pending--;
        a->target = NULL;

        r = flow_send(f, 0, a->reply, a->seq, NULL);
        if (r < 0) {
                /* The requester's reply socket is gone: it gave up first. */
                log_debug("alloc %llu: requester gone at accept (%s)", (unsigned long long)a->node.id,
                          strerror(-r));
                flow_free(f);
                alloc_free(a);
                return -ECANCELED;
        }
        quota_release(a->user, QUOTA_PENDING, 1);
        a->pending_charged = false;
        a->state = ALLOC_HANDOVER;
        a->flow_id = f->node.id;
        loop_timer_arm(d->loop, &a->timer, now_ns() + HANDOVER_GUARD_NS);
        log_debug("flow %llu: %s, pid %d -> pid %d, %llu bytes", (unsigned long long)f->node.id,
                  f->name, (int)a->cred.pid, (int)c->cred.pid, (unsigned long long)f->layout.total);

        /* If this fails c is dropped after this request, and its side ends
         * with PEER_DIED like any death. */
        flow_send(f, 1, sock, seq, sock == c->fd ? c : NULL);
        flow_handed_out(f);
        return 0;
}

int alloc_handle_refuse(client *c, const ctl_msg *m) {
        reg *g;
        alloc *a;
        const char *reason = NULL;
        char cut[IPCF_REASON_MAX + 1];
        int r = alloc_lookup_decision(c, m, &g, &a);
        if (r == -EBADMSG)
                return r;
        int rr = ctl_get_str(m, CTL_A_REASON, CTL_MSG_MAX, &reason);
        if (rr == -EBADMSG)
                return rr;
        if (r < 0)
                return client_reply_error(c, m->seq, r), 0;
        str_copy(cut, rr == 0 ? reason : "", sizeof(cut));
        /* Decided: detach from g without a tombstone. */
        dlist_del(&a->target_link);
        g->pending--;
        a->target = NULL;
        alloc_fail(a, -ECONNREFUSED, cut, IPCF_END_REFUSED);
        client_reply_ok(c, m->seq);
        return 0;
}

/* The handover ended without OK: the allocator gave up on the flow. */
static void alloc_handover_gave_up(alloc *a) {
        /* Looked up by id: the flow may have ended meanwhile (a DEALLOC on the
         * main connection can overtake the OK on the reply socket). */
        flow *f = flow_find(a->d, a->flow_id);
        if (f && f->side[0].open) {
                log_debug("flow %llu: requester gave up during handover", (unsigned long long)f->node.id);
                flow_side_end(f, 0, IPCF_END_DEALLOC, "requester gave up", true);
        }
}

static void alloc_on_reply(loop_io *io, uint32_t events) {
        alloc *a = container_of(io, alloc, io);
        uint8_t buf[256];
        int fds[CTL_FDS_MAX];
        unsigned n_fds = 0;
        ssize_t n = ctl_recv(a->reply, buf, sizeof(buf), fds, &n_fds, MSG_DONTWAIT);
        for (unsigned i = 0; i < n_fds; i++)
                close(fds[i]);
        if (n == -EAGAIN && !(events & (EPOLLHUP | EPOLLERR)))
                return;

        if (a->state != ALLOC_HANDOVER) {
                /* Hang-up (or anything at all) before the outcome: the
                 * requester withdrew. */
                log_debug("alloc %llu (%s): withdrawn by the requester", (unsigned long long)a->node.id,
                          a->name);
                alloc_free(a);
                return;
        }
        ctl_msg m;
        if (n > 0 && ctl_msg_parse(buf, (size_t)n, &m) == 0 && m.type == CTL_OK) {
                alloc_free(a); /* handed over */
                return;
        }
        alloc_handover_gave_up(a);
        alloc_free(a);
}

static void alloc_on_timer(loop_timer *t) {
        alloc *a = container_of(t, alloc, timer);
        if (a->state == ALLOC_HANDOVER) {
                alloc_free(a); /* no word from a live allocator: assume it has it */
                return;
        }
        alloc_fail(a, -ETIMEDOUT, NULL, 0);
}

void alloc_client_gone(client *c) {
        dlist_for_each_safe(pos, tmp, &c->allocs)
                alloc_free(dlist_entry(pos, alloc, req_link));
}

void alloc_free_all(ipcfd *d) {
        dlist_for_each(pos, &d->clients)
                alloc_client_gone(dlist_entry(pos, client, link));
}
