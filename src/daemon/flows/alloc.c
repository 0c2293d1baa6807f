/*
 * alloc.c — the allocation pipeline (state machine in alloc.h): ALLOC, the
 * walk over the resolvers, the flow made when one accepts, the handover, the
 * timeout, withdrawal.
 *
 * TRUST: the reply socket is an fd the requester chose. The daemon checks it
 * is a SOCK_SEQPACKET socket, makes it non-blocking (a stuffed socket can
 * never stall the daemon) and only ever writes one message to it and reads
 * at most one (the handover OK).
 *
 * REQUEST IDS are the alloc ids: a resolver that asks a registrant to decide
 * quotes them (REQ_ID) and finds the alloc again with alloc_find().
 *
 * STATE: every alloc of the daemon is in this file's id map (one daemon per
 * process), and on its requester's list of allocations.
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
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/core/quota.h"
#include "daemon/flows/clientend.h"
#include "daemon/flows/resolve.h"

/* How long the daemon waits for the handover OK before it assumes the
 * allocator has the flow (it is alive: a dead one hangs up at once). */
#define HANDOVER_GUARD_NS (10ull * 1000000000u)
/* Allocations in progress at once: at most the descriptor share (each holds
 * its reply socket), and this. */
#define ALLOCS_MAX 4096

static idmap alloc_ids;
static size_t n_allocs;
/* client.held index of the allocations a client asked for. */
static int allocs_kind = -1;

static void alloc_on_reply(loop_io *io, uint32_t events);
static void alloc_on_timer(loop_timer *t);

alloc *alloc_find(ipcfd *d, uint64_t id) {
        struct idmap_node *n = idmap_find(&alloc_ids, id);
        return n ? container_of(n, alloc, node) : NULL;
}

size_t alloc_count(void) { return n_allocs; }

void alloc_hold(alloc *a, const resolver *r, void *holder, struct dlist *list) {
        a->state = ALLOC_HELD;
        a->held_by = r;
        a->holder = holder;
        if (list)
                dlist_add_tail(list, &a->hold_link);
}

/* a leaves its resolver; withdrawn: undecided and going away. */
static void alloc_leave(alloc *a, bool withdrawn) {
        const resolver *r = a->held_by;
        if (!r)
                return;
        if (r->release)
                r->release(a, withdrawn);
        dlist_del(&a->hold_link);
        a->held_by = NULL;
        a->holder = NULL;
        if (a->state == ALLOC_HELD)
                a->state = ALLOC_NEW;
}

void alloc_unhold(alloc *a) { alloc_leave(a, false); }

/* Release a and everything it holds; nothing is sent. A resolver still
 * holding it is told it was withdrawn. */
static void alloc_free(alloc *a) {
        ipcfd *d = a->d;
        loop_timer_cancel(d->loop, &a->timer);
        loop_io_del(d->loop, &a->io);
        a->reply = safe_close(a->reply);
        alloc_leave(a, true);
        dlist_del(&a->req_link);
        idmap_del(&alloc_ids, &a->node);
        n_allocs--;
        if (a->pending_charged)
                quota_release(a->user, QUOTA_PENDING, 1);
        if (a->bytes)
                quota_release(a->user, a->bytes_kind, a->bytes);
        user_unref(a->user);
        if (a->origin && a->origin->gone)
                a->origin->gone(a);
        loop_defer_free(d->loop, a);
}

void alloc_withdraw(alloc *a) {
        log_debug("alloc %llu (%s): withdrawn by its %s", (unsigned long long)a->node.id, a->name,
                  a->origin ? a->origin->kind : "client");
        if (a->state != ALLOC_HANDOVER) /* decided already: the flow tells its end */
                observe_emit(a->d, &(observe_ev){ .kind = OBSERVE_ALLOC_FAILED, .alloc = a,
                                                  .err = -ECANCELED, .reason = "withdrawn" });
        alloc_free(a);
}

bool alloc_may_serve(const alloc *a, const cred *who) {
        return !a->origin || !a->origin->may_serve || a->origin->may_serve(a, who);
}

/* Send one message on the reply socket. */
static int alloc_reply_send(alloc *a, ctl_builder *b, const int *fds, unsigned n_fds) {
        int r = ctl_end(b);
        if (r >= 0)
                r = ctl_send(a->reply, b, fds, n_fds);
        return r < 0 ? r : 0;
}

void alloc_fail(alloc *a, int err, const char *reason, uint32_t end_code) {
        /* A reason always comes with a code (ipcf.h, enum ipcf_end): the
         * allocation was refused, by the target or for it (an activation
         * that failed, the directory unreachable). */
        if (reason && reason[0] && end_code == IPCF_END_NONE)
                end_code = IPCF_END_REFUSED;
        ctl_builder *b = malloc(sizeof(*b));
        log_debug("alloc %llu (%s): fails: %s%s%s", (unsigned long long)a->node.id, a->name,
                  strerror(-err), reason ? ": " : "", reason ? reason : "");
        observe_emit(a->d, &(observe_ev){ .kind = OBSERVE_ALLOC_FAILED, .alloc = a, .err = err,
                                          .reason = reason });
        if (a->origin) {
                free(b);
                a->origin->fail(a, err, reason, end_code);
                alloc_free(a);
                return;
        }
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

int alloc_resolve(alloc *a, const resolver *upto) { return resolve_walk(a->d, a, a->role, upto); }

/* The walk at ALLOC: the first resolver that takes a decides; nobody: ENOENT. */
static void alloc_dispatch(alloc *a) {
        int r = resolve_walk(a->d, a, a->role, NULL);
        if (r == 0)
                return;
        alloc_fail(a, r == RESOLVE_NEXT ? -ENOENT : r, NULL, 0);
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

static bool alloc_room(const ipcfd *d) { return n_allocs < MIN(d->fd_share, (size_t)ALLOCS_MAX); }

/* What every origin's allocation goes through: the qos's layout, the room
 * and the quotas of p->user (a pending slot, a flow to come, the shared
 * memory it may come to use: an unbounded flow's limit, or any other flow's
 * rings), then the object, charged, in the id map, its timer armed.
 * Returns 0 and *ret, or -EINVAL, -EDQUOT, -ENOMEM (nothing made). */
static int alloc_make(ipcfd *d, const alloc_params *p, alloc **ret) {
        flow_layout layout;
        if (p->role >= CTL_ROLE_MAX_ || flow_layout_for(p->qos, &layout) < 0 || p->timeout_ms == 0 ||
            p->timeout_ms < -1)
                return -EINVAL;
        bool unbounded = p->qos->capacity == IPCF_CAPACITY_UNBOUNDED;
        int bytes_kind = unbounded ? QUOTA_BYTES : QUOTA_RING_BYTES;
        /* An unbounded queue holds up to its layout's capacity, which is
         * max_bytes raised to two records of max_msg_size: charge that. */
        uint64_t bytes = unbounded ? 2 * layout.cap : 2 * layout.ring_size;
        if (!alloc_room(d) || !flow_room(d) || quota_check(p->user, QUOTA_FLOWS, 1) < 0 ||
            quota_check(p->user, QUOTA_PENDING, 1) < 0 || quota_check(p->user, bytes_kind, bytes) < 0)
                return -EDQUOT;
        alloc *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->d = d;
        a->node.id = ipcfd_new_id(d);
        a->state = ALLOC_NEW;
        a->cred = *p->cred;
        str_copy(a->prog, p->prog, sizeof(a->prog));
        a->user = user_ref(p->user);
        str_copy(a->name, p->name, sizeof(a->name));
        a->qos = *p->qos;
        a->role = p->role;
        a->layout = layout;
        a->reply = -1;
        a->io.fd = -1;
        dlist_init(&a->hold_link);
        dlist_init(&a->req_link);
        loop_timer_init(&a->timer, alloc_on_timer);
        if (idmap_add(&alloc_ids, &a->node) < 0) {
                user_unref(a->user);
                free(a);
                return -ENOMEM;
        }
        n_allocs++;
        quota_charge(a->user, QUOTA_PENDING, 1);
        a->pending_charged = true;
        if (bytes) {
                quota_charge(a->user, bytes_kind, bytes);
                a->bytes = bytes;
                a->bytes_kind = bytes_kind;
        }
        if (p->timeout_ms > 0 &&
            loop_timer_arm(d->loop, &a->timer, now_ns() + (uint64_t)p->timeout_ms * 1000000u) < 0) {
                alloc_free(a);
                return -ENOMEM;
        }
        *ret = a;
        return 0;
}

int alloc_new_from(ipcfd *d, const alloc_origin_ops *ops, void *obj, const alloc_params *p, alloc **ret) {
        alloc *a;
        int r = alloc_make(d, p, &a);
        if (r < 0)
                return r;
        a->origin = ops;
        a->origin_obj = obj;
        log_debug("alloc %llu: %s for %s pid %d (%s), role %u, timeout %d ms", (unsigned long long)a->node.id,
                  a->name, ops->kind, (int)a->cred.pid, a->prog, a->role, p->timeout_ms);
        observe_emit(d, &(observe_ev){ .kind = OBSERVE_ALLOC_ASKED, .alloc = a });
        *ret = a;
        return 0;
}

int alloc_start(alloc *a) { return resolve_walk(a->d, a, a->role, NULL); }

/* ALLOC: check, charge, answer OK with the id, then walk the resolvers. */
static int alloc_on_alloc(request *rq) {
        ipcfd *d = rq->d;
        client *c = rq->c;
        const ctl_args *args = rq->args;
        const char *name = ctl_arg_str(args, CTL_A_NAME);
        struct ctl_qos_wire qw;
        ipcf_qos qos;

        memset(&qw, 0, sizeof(qw));
        ctl_arg_fixed(args, CTL_A_QOS, &qw, sizeof(qw));
        ctl_qos_from_wire(&qw, &qos); /* absent: all defaults */
        /* The role is the ROLE attribute's, never the qos's: a set reserved
         * byte is refused, so no qos can smuggle one in. */
        uint32_t role = ctl_arg_u32(args, CTL_A_ROLE, CTL_ROLE_FLOW);
        if (qw.reserved0 != 0 || role >= CTL_ROLE_MAX_ || ctl_qos_normalize(&qos) < 0)
                return -EINVAL;
        int timeout_ms = (int32_t)ctl_arg_u32(args, CTL_A_TIMEOUT_MS, (uint32_t)-1);
        if (timeout_ms == 0 || timeout_ms < -1)
                return -EINVAL;
        int r = alloc_check_reply(rq->fds[0]);
        if (r < 0)
                return r;
        r = policy_check(d, name, POLICY_ALLOCATE, &c->cred);
        if (r < 0)
                return r;
        alloc *a;
        alloc_params p = { .name = name, .qos = &qos, .role = role, .timeout_ms = timeout_ms,
                           .cred = &c->cred, .prog = c->prog, .user = c->user };
        r = alloc_make(d, &p, &a);
        if (r < 0)
                return r;
        a->requester = c;
        a->seq = rq->seq;
        a->reply = rq->fds[0];
        rq->fds[0] = -1; /* ours from here on */
        dlist_add_tail(&c->held[allocs_kind], &a->req_link);
        if (loop_io_add(d->loop, &a->io, a->reply, EPOLLIN, alloc_on_reply) < 0) {
                alloc_free(a);
                return -ENOMEM;
        }
        log_debug("alloc %llu: %s by pid %d, role %u, timeout %d ms", (unsigned long long)a->node.id,
                  a->name, (int)c->cred.pid, role, timeout_ms);

        ctl_put_u64(rq->reply, CTL_A_ALLOC_ID, a->node.id);
        /* If the OK could not go out the client is being dropped, which
         * withdraws a; otherwise find it a target now. */
        if (request_reply_now(rq) == 0) {
                observe_emit(d, &(observe_ev){ .kind = OBSERVE_ALLOC_ASKED, .alloc = a });
                alloc_dispatch(a);
        }
        return 0;
}

int alloc_accept(alloc *a, const flow_end_spec *end, const ipcf_qos *qos) {
        ipcfd *d = a->d;
        flow_layout layout = a->layout;
        flow *f;
        int r;
        if (qos && flow_layout_for(qos, &layout) < 0)
                return -EINVAL;
        /* Each side is charged to its holder's uid. The acceptor's own quota
         * (or the global cap) refuses the acceptance; a stays as it was. */
        bool same = a->user == end->user;
        if (!flow_room(d) || (end->user && quota_check(end->user, QUOTA_FLOWS, same ? 2 : 1) < 0))
                return -EDQUOT;
        /* The requester was checked at ALLOC but may have made other flows
         * since: then it is the allocation that fails (EDQUOT), and for the
         * acceptor the request is simply gone (ECANCELED: ipcf_accept()
         * takes the next one). */
        if (!same && quota_check(a->user, QUOTA_FLOWS, 1) < 0) {
                alloc_unhold(a);
                alloc_fail(a, -EDQUOT, NULL, 0);
                return -ECANCELED;
        }
        r = flow_new(d, a->name, qos ? qos : &a->qos, &layout, &f);
        if (r < 0)
                return r;
        flow_end_spec req;
        if (a->origin)
                a->origin->end(a, &req);
        else
                client_end(&req, a->requester, NULL);
        flow_side_attach(f, 0, &req);
        flow_side_attach(f, 1, end);
        if ((end->ops->open && (r = end->ops->open(f, 1, end->arg)) < 0) ||
            (req.ops->open && (r = req.ops->open(f, 0, req.arg)) < 0)) {
                flow_free(f);
                return r;
        }
        /* The shared-memory charge moves from the request to the flow. */
        if (a->bytes) {
                f->bytes_user = user_ref(a->user);
                f->bytes = a->bytes;
                f->bytes_kind = a->bytes_kind;
                a->bytes = 0;
        }
        /* Decided: no longer the resolver's. */
        alloc_unhold(a);

        r = a->origin ? a->origin->handover(a, f) : flow_send(f, 0, a->reply, a->seq);
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
        log_debug("flow %llu: %s, %s pid %d -> %s end pid %d, %llu bytes", (unsigned long long)f->node.id,
                  f->name, req.ops->kind, (int)a->cred.pid, end->ops->kind, (int)end->cred->pid,
                  (unsigned long long)f->layout.total);

        /* If this fails, the acceptor's end deals with it (a client that
         * cannot be written to is dropped, and its side ends as a death). */
        if (end->ops->deliver)
                end->ops->deliver(f, 1, end->arg);
        flow_handed_out(f);
        observe_emit(d, &(observe_ev){ .kind = OBSERVE_FLOW_MADE, .alloc = a, .flow = f });
        /* Side 1 is in its holder's hands (or queued for it); side 0 is
         * watched once the handover is over (a requester that drops its
         * reply socket meanwhile gave up: alloc_on_reply says so). */
        flow_side_watch(f, 1);
        if (a->origin) {
                flow_side_watch(f, 0);
                alloc_free(a); /* the origin has the flow: nothing to wait for */
        } else {
                loop_timer_arm(d->loop, &a->timer, now_ns() + HANDOVER_GUARD_NS);
        }
        return 0;
}

/* The handover is over and the requester has (or must be taken to have)
 * the flow: from now on, its letting go of side 0 ends it. */
static void alloc_handed_over(alloc *a) {
        flow *f = flow_find(a->d, a->flow_id);
        if (f)
                flow_side_watch(f, 0);
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
                alloc_handed_over(a);
                alloc_free(a);
                return;
        }
        alloc_handover_gave_up(a);
        alloc_free(a);
}

static void alloc_on_timer(loop_timer *t) {
        alloc *a = container_of(t, alloc, timer);
        if (a->state == ALLOC_HANDOVER) {
                /* No word from a live allocator: assume it has it. */
                alloc_handed_over(a);
                alloc_free(a);
                return;
        }
        alloc_fail(a, -ETIMEDOUT, NULL, 0);
}

/* The requester is gone: withdraw every alloc it asked for. */
static void alloc_on_client_gone(ipcfd *d, const observe_ev *ev) {
        dlist_for_each_safe(pos, tmp, &ev->client->held[allocs_kind])
                alloc_free(dlist_entry(pos, alloc, req_link));
}

void alloc_free_all(ipcfd *d) {
        dlist_for_each(pos, &d->clients) {
                client *c = dlist_entry(pos, client, link);
                dlist_for_each_safe(p2, t2, &c->held[allocs_kind])
                        alloc_free(dlist_entry(p2, alloc, req_link));
        }
        idmap_deinit(&alloc_ids);
}

int alloc_init(ipcfd *d) {
        static const method methods[] = { { CTL_ALLOC, alloc_on_alloc } };
        int r = allocs_kind = client_hold_kind(d, "allocations");
        if (r < 0)
                return r;
        r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        if (r < 0)
                return r;
        return observe(d, OBSERVE_CLIENT_GONE, alloc_on_client_gone);
}
