/*
 * registry.c — REGISTER / UNREGISTER, ACCEPT / REFUSE, name lookup and load
 * spreading, and the registry as a resolver (see registry.h).
 *
 * Names hash into REG_BUCKETS lists; a lookup walks one bucket comparing
 * names. The number of regs is bounded by the per-user quota and the global
 * cap, so buckets stay short.
 *
 * STATE: every registration and the tombstones, in this file (one daemon per
 * process).
 */
#include "daemon/names/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/listpage.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/core/quota.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/clientend.h"
#include "daemon/flows/resolve.h"

#define REG_BUCKETS 1024
/* Withdrawn requests remembered, whatever their registration. */
#define TOMBS_MAX 65536
/* Registrations tried per dispatch (least loaded first). */
#define DISPATCH_MAX 256
/* Registrations at once: at most the descriptor share (each holds its
 * request socket), and this. */
#define REGS_MAX 4096

/* Why a registration ends: decides what its pending requesters are told. */
enum reg_end {
        REG_END_UNREGISTER, /* refused, reason "unregistered" */
        REG_END_DIED,       /* refused, reason "target died", END_CODE PEER_DIED */
        REG_END_SHUTDOWN,   /* daemon exit: nothing is told */
};

typedef struct reg {
        struct idmap_node node;        /* node.id: REG_ID */
        ipcfd *d;
        struct client *owner;
        char name[IPCF_NAME_MAX + 1];
        uint32_t flags;                /* enum ipcf_reg_flags, CTL_REG_* */
        uint32_t backlog;
        uint32_t pending;              /* requests sent, not yet decided */
        uint32_t flows;                /* live flows accepted through it */
        int sock;                      /* daemon's end of the request socket */
        loop_io io;                    /* watches sock for the client's hang-up */
        struct user *user;             /* charged QUOTA_REGS */
        struct dlist link;             /* regs */
        struct dlist name_link;        /* buckets[hash(name)] */
        struct dlist owner_link;       /* the owner's held list of registrations */
        struct dlist pending_allocs;   /* alloc.hold_link */
} reg;

struct tomb {
        struct idmap_node node; /* node.id: the REQ_ID */
        uint64_t reg_id;        /* the registration it was pending on */
};

static struct dlist regs = DLIST_INIT(regs);  /* reg.link, every registration */
static struct dlist buckets[REG_BUCKETS];     /* reg.name_link, hashed by name */
static size_t n_regs;
static idmap reg_ids;
static struct tomb *tombs;   /* ring of TOMBS_MAX, allocated on first use */
static uint64_t n_tombs;     /* ever added; the ring slot is n % TOMBS_MAX */
static idmap tomb_ids;
/* client.held index of the registrations a client holds. */
static int regs_kind = -1;

static const resolver registry_resolver;
static void reg_free(reg *g, enum reg_end why);

static int set_nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

static size_t name_bucket(const char *name) {
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
        for (; *name; name++)
                h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
        return (size_t)(h % REG_BUCKETS);
}

static reg *reg_find(uint64_t id) {
        struct idmap_node *n = idmap_find(&reg_ids, id);
        return n ? container_of(n, reg, node) : NULL;
}

/* The first live registration of name, or NULL. */
static reg *reg_of_name(const char *name) {
        dlist_for_each(pos, &buckets[name_bucket(name)]) {
                reg *r = dlist_entry(pos, reg, name_link);
                if (strcmp(r->name, name) == 0 && !r->owner->dying)
                        return r;
        }
        return NULL;
}

bool registry_has(ipcfd *d, const char *name) { return reg_of_name(name) != NULL; }

bool registry_any(ipcfd *d, const char *name, bool (*ok)(const ipcfd *d, const char *name, const cred *who)) {
        dlist_for_each(pos, &buckets[name_bucket(name)]) {
                reg *r = dlist_entry(pos, reg, name_link);
                if (strcmp(r->name, name) == 0 && !r->owner->dying && ok(d, name, &r->owner->cred))
                        return true;
        }
        return false;
}

/* qsort order of candidates: least loaded first, where load = flows alive
 * through the registration + requests waiting for its decision. */
static int reg_cmp_load(const void *a, const void *b) {
        const reg *x = *(reg *const *)a, *y = *(reg *const *)b;
        uint64_t lx = (uint64_t)x->flows + x->pending, ly = (uint64_t)y->flows + y->pending;
        if (lx != ly)
                return lx < ly ? -1 : 1;
        /* Equal load: the older registration first, for a stable order. */
        return x->node.id < y->node.id ? -1 : x->node.id > y->node.id;
}

/* Does g serve allocations of role? An inbox (CTL_REG_AUTO) serves its own
 * role only; a plain registration, plain flows only (a call or a datagram
 * to it would wait for an ACCEPT its program never means to give). */
static bool reg_serves_role(const reg *g, uint32_t role) {
        if (g->flags & CTL_REG_AUTO)
                return (g->flags >> CTL_REG_ROLE_SHIFT) == role;
        return role == CTL_ROLE_FLOW;
}

/* Fill out[0..max) with the regs of a's name that may serve a's origin and
 * a's role and may take a request now, least loaded first. Returns how
 * many; *ret_any: whether any may serve a's origin at all (whatever its
 * role, full or not); *ret_serving: whether any of those serves a's role. */
static size_t registry_candidates(const alloc *a, reg **out, size_t max, bool *ret_any,
                                  bool *ret_serving) {
        size_t n = 0;
        *ret_any = *ret_serving = false;
        dlist_for_each(pos, &buckets[name_bucket(a->name)]) {
                reg *r = dlist_entry(pos, reg, name_link);
                if (n == max)
                        break;
                if (strcmp(r->name, a->name) != 0 || r->owner->dying || !alloc_may_serve(a, &r->owner->cred))
                        continue;
                *ret_any = true;
                if (!reg_serves_role(r, a->role))
                        continue;
                *ret_serving = true;
                if (r->pending < r->backlog)
                        out[n++] = r;
        }
        qsort(out, n, sizeof(*out), reg_cmp_load);
        return n;
}

/* A ring of the last TOMBS_MAX withdrawn requests, indexed by REQ_ID: the
 * oldest falls out when the ring is full, after which a late decision on it
 * gets ENOENT instead of ECANCELED. 1.5 MiB at most, allocated on first
 * use. A request is withdrawn at most once (then its alloc is gone), so an
 * id is never in the map twice. */
static void reg_tomb_add(reg *r, uint64_t req_id) {
        if (!tombs) {
                tombs = calloc(TOMBS_MAX, sizeof(*tombs));
                if (!tombs)
                        return; /* then late decisions get ENOENT: harmless */
        }
        struct tomb *t = &tombs[n_tombs % TOMBS_MAX];
        if (n_tombs >= TOMBS_MAX)
                idmap_del(&tomb_ids, &t->node);
        t->node.id = req_id;
        t->reg_id = r->node.id;
        n_tombs++;
        if (idmap_add(&tomb_ids, &t->node) < 0)
                t->node.id = 0; /* not findable; ids start at 1 */
}

static bool reg_tomb_has(const reg *r, uint64_t req_id) {
        struct idmap_node *n = idmap_find(&tomb_ids, req_id);
        return n && container_of(n, struct tomb, node)->reg_id == r->node.id;
}

/* ---- the registry as a resolver ------------------------------------------ */

/* A flow accepted through g was reclaimed (by its id: g may be gone). */
static void reg_flow_gone(ipcfd *d, uint64_t reg_id) {
        reg *g = reg_find(reg_id);
        if (g && g->flows)
                g->flows--;
}

/* a is pending on g: held until g's owner decides. */
static void reg_hold(reg *g, alloc *a) {
        g->pending++;
        alloc_hold(a, &registry_resolver, g, &g->pending_allocs);
}

/* Accept a (pending on g) for client c, whose FLOW goes to the reply of rq
 * (an ACCEPT) or, for an inbox, to g's socket. Returns as alloc_accept(). */
static int reg_accept(alloc *a, reg *g, client *c, request *rq) {
        client_delivery dl = { .rq = rq, .sock = g->sock, .seq = rq ? rq->seq : 0 };
        flow_end_spec e;
        client_end(&e, c, &dl);
        uint64_t reg_id = g->node.id;
        int r = alloc_accept(a, &e, NULL);
        if (r == 0) {
                /* The flow counts for g's load while it lives. */
                flow *f = flow_find(c->d, a->flow_id);
                if (f) {
                        f->on_free = reg_flow_gone;
                        f->on_free_cookie = reg_id;
                }
                g->flows++;
        }
        return r;
}

/* Try the registrations of a's name, least loaded first. Returns 0 when a
 * REQUEST went out (a is held by a reg) or an inbox took it or refused it at
 * once (a is then handed over or gone), -EBUSY if some exist but none could
 * take it, RESOLVE_NEXT if none exist. */
static int registry_try(alloc *a) {
        reg *cand[DISPATCH_MAX];
        bool any, serving;
        size_t n = registry_candidates(a, cand, DISPATCH_MAX, &any, &serving);
        if (n == 0 && serving)
                return -EBUSY;
        if (n == 0 && any) {
                /* Registered, but for another kind of channel (a datagram to
                 * a service, a call to a plain flow's name...): refused at
                 * once, as the header promises. */
                alloc_fail(a, -ECONNREFUSED, "wrong kind of channel for this name", IPCF_END_REFUSED);
                return 0;
        }
        if (n == 0)
                return RESOLVE_NEXT;

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
                reg *g = cand[i];
                if (g->flags & CTL_REG_AUTO) {
                        /* An inbox (of a's role: the candidates serve it):
                         * accepted here, its FLOW on the registration socket. */
                        free(b);
                        reg_hold(g, a);
                        r = reg_accept(a, g, g->owner, NULL);
                        if (r < 0 && r != -ECANCELED)
                                alloc_fail(a, r, NULL, 0);
                        return 0;
                }
                /* EAGAIN: that socket is full, a full backlog. Other errors
                 * (the client just closed it): try the next one as well. */
                if (ctl_send(g->sock, b, NULL, 0) < 0)
                        continue;
                reg_hold(g, a);
                free(b);
                log_debug("alloc %llu (%s): request sent to reg %llu", (unsigned long long)a->node.id,
                          a->name, (unsigned long long)g->node.id);
                return 0;
        }
        free(b);
        return -EBUSY;
}

static int registry_resolve(ipcfd *d, alloc *a) { return registry_try(a); }

/* a leaves g: decided, or withdrawn (then remembered as a tombstone). */
static void registry_release(alloc *a, bool withdrawn) {
        reg *g = a->holder;
        if (withdrawn)
                reg_tomb_add(g, a->node.id);
        g->pending--;
}

static bool registry_name_up(ipcfd *d, const char *name, pid_t *ret_pid, uid_t *ret_uid) {
        reg *g = reg_of_name(name);
        if (!g)
                return false;
        *ret_pid = g->owner->cred.pid;
        *ret_uid = g->owner->cred.uid;
        return true;
}

/* LIST: the registrations c may see, in creation order. */
static void registry_list(ipcfd *d, list_page *page, bool all, uid_t uid) {
        dlist_for_each(pos, &regs) {
                reg *g = dlist_entry(pos, reg, link);
                if (!all && g->owner->cred.uid != uid)
                        continue;
                struct ctl_name_entry_wire e;
                memset(&e, 0, sizeof(e));
                str_copy(e.name, g->name, sizeof(e.name));
                e.pid = htole32((uint32_t)g->owner->cred.pid);
                e.uid = htole32(g->owner->cred.uid);
                e.flows = htole32(g->flows);
                e.pending = htole32(g->pending);
                if (!list_page_put(page, CTL_A_NAME_ENTRY, &e, sizeof(e)))
                        break;
        }
}

static const resolver registry_resolver = {
        .name = "registry",
        .rank = RESOLVE_RANK_REGISTRY,
        .roles = RESOLVE_ROLE(CTL_ROLE_FLOW) | RESOLVE_ROLE(CTL_ROLE_CALL) | RESOLVE_ROLE(CTL_ROLE_DGRAM),
        .resolve = registry_resolve,
        .release = registry_release,
        .has = registry_name_up,
        .list = registry_list,
};

/* g went away with a pending on it: send a to another registration of its
 * name (the same REQ_ID), else fail it as why says. */
static void registry_retry(alloc *a, int err, const char *reason, uint32_t end_code) {
        if (registry_try(a) != 0)
                alloc_fail(a, err, reason, end_code);
}

/* ---- requests ---------------------------------------------------------------- */

/* The client closed its end of the request socket (or wrote to it, which it
 * must not): the registration is over, as if it had unregistered. */
static void reg_on_event(loop_io *io, uint32_t events) {
        reg *r = container_of(io, reg, io);
        char b[64];
        ssize_t n = recv(r->sock, b, sizeof(b), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & (EPOLLHUP | EPOLLERR)))
                return;
        log_debug("reg %llu (%s): request socket %s", (unsigned long long)r->node.id, r->name,
                  n > 0 ? "written to by the client" : "closed by the client");
        reg_free(r, REG_END_UNREGISTER);
}

static bool reg_room(const ipcfd *d) { return n_regs < MIN(d->fd_share, (size_t)REGS_MAX); }

/* REGISTER: a registration and its request socket, whose other end is the
 * reply's descriptor. */
static int registry_on_register(request *rq) {
        ipcfd *d = rq->d;
        client *c = rq->c;
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        uint32_t flags = ctl_arg_u32(rq->args, CTL_A_REG_FLAGS, 0);
        uint32_t backlog = ctl_arg_u32(rq->args, CTL_A_BACKLOG, 0);
        int r;

        if ((flags & ~(uint32_t)CTL_REG_FLAGS_KNOWN) ||
            (flags >> CTL_REG_ROLE_SHIFT) >= CTL_ROLE_MAX_)
                return -EINVAL;
        if (backlog == 0)
                backlog = REG_BACKLOG_DEFAULT;
        backlog = MIN(backlog, REG_BACKLOG_MAX);

        r = policy_check(d, name, POLICY_REGISTER, &c->cred);
        if (r == 0)
                r = policy_name_local(d, name); /* name@<a host>: unreachable if registered here */
        if (r < 0)
                return r;

        /* Exclusivity either way: a new exclusive reg needs the name free, a
         * new shared one needs no exclusive holder. */
        dlist_for_each(pos, &buckets[name_bucket(name)]) {
                reg *o = dlist_entry(pos, reg, name_link);
                if (strcmp(o->name, name) == 0 &&
                    ((flags & IPCF_REG_EXCLUSIVE) || (o->flags & IPCF_REG_EXCLUSIVE)))
                        return -EADDRINUSE;
        }
        /* Joining another user's registrations of the name (its requests
         * would be spread to us) needs the rule's `share` too: `register`
         * lets one claim a name, not take flows meant for another user. */
        dlist_for_each(pos, &buckets[name_bucket(name)]) {
                reg *o = dlist_entry(pos, reg, name_link);
                if (strcmp(o->name, name) == 0 && !o->owner->dying && o->owner->cred.uid != c->cred.uid) {
                        r = policy_check(d, name, POLICY_SHARE, &c->cred);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        if (!reg_room(d))
                return -EDQUOT;
        r = quota_charge(c->user, QUOTA_REGS, 1);
        if (r < 0)
                return r;

        int sv[2] = { -1, -1 };
        reg *g = calloc(1, sizeof(*g));
        if (!g || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                r = g ? -errno : -ENOMEM;
                goto fail;
        }
        /* Our end never blocks: a full socket is a full backlog. */
        r = set_nonblock(sv[0]);
        if (r < 0)
                goto fail;
        g->d = d;
        g->node.id = ipcfd_new_id(d);
        g->owner = c;
        str_copy(g->name, name, sizeof(g->name));
        g->flags = flags;
        g->backlog = backlog;
        g->sock = sv[0];
        g->user = user_ref(c->user);
        dlist_init(&g->pending_allocs);
        r = loop_io_add(d->loop, &g->io, g->sock, EPOLLIN, reg_on_event);
        if (r < 0)
                goto fail;
        r = idmap_add(&reg_ids, &g->node);
        if (r < 0) {
                loop_io_del(d->loop, &g->io);
                goto fail;
        }

        ctl_put_u64(rq->reply, CTL_A_REG_ID, g->node.id);
        request_reply_fd(rq, sv[1], true);
        sv[1] = -1;
        if (request_reply_now(rq) < 0) {
                /* The client is being dropped; nothing to undo for it. */
                idmap_del(&reg_ids, &g->node);
                loop_io_del(d->loop, &g->io);
                r = 0;
                goto fail;
        }
        dlist_add_tail(&regs, &g->link);
        dlist_add_tail(&buckets[name_bucket(name)], &g->name_link);
        dlist_add_tail(&c->held[regs_kind], &g->owner_link);
        n_regs++;
        log_debug("reg %llu: %s by pid %d%s", (unsigned long long)g->node.id, g->name,
                  (int)c->cred.pid, (flags & IPCF_REG_EXCLUSIVE) ? " (exclusive)" : "");
        /* The name may be up now: watchers (NAME_UP) and programs being
         * started for it (allocations parked on the activation go now). */
        observe_emit(d, &(observe_ev){ .kind = OBSERVE_NAME_CHANGED, .name = g->name });
        return 0;

fail:
        if (g)
                user_unref(g->user);
        quota_release(c->user, QUOTA_REGS, 1);
        safe_close(sv[0]);
        safe_close(sv[1]);
        free(g);
        return r;
}

/* UNREGISTER: only the owner's connection. */
static int registry_on_unregister(request *rq) {
        reg *g = reg_find(ctl_arg_u64(rq->args, CTL_A_REG_ID, 0));
        if (!g || g->owner != rq->c)
                return -ENOENT;
        reg_free(g, REG_END_UNREGISTER);
        return 0;
}

/* The common part of ACCEPT and REFUSE: find the request REQ_ID pending on
 * the registration REG_ID. Returns 0 and *ret, or a negative errno. */
static int registry_lookup_decision(request *rq, reg **ret_reg, alloc **ret) {
        client *c = rq->c;
        uint64_t reg_id = ctl_arg_u64(rq->args, CTL_A_REG_ID, 0);
        uint64_t req_id = ctl_arg_u64(rq->args, CTL_A_REQ_ID, 0);
        reg *g = reg_find(reg_id);
        /* The owner, or a process of the same user holding the registration's
         * socket (a worker forked after ipcf_register: the prefork pattern;
         * one user is one trust domain). The flow side goes to the decider. */
        if (!g || (g->owner != c && g->owner->cred.uid != c->cred.uid))
                return -ENOENT;
        alloc *a = alloc_find(rq->d, req_id);
        if (!a || a->held_by != &registry_resolver || a->holder != g)
                return reg_tomb_has(g, req_id) ? -ECANCELED : -ENOENT;
        *ret_reg = g;
        *ret = a;
        return 0;
}

/* ACCEPT: the flow, its FLOW as the reply (alloc_accept errors are ours). */
static int registry_on_accept(request *rq) {
        reg *g;
        alloc *a;
        int r = registry_lookup_decision(rq, &g, &a);
        if (r < 0)
                return r;
        return reg_accept(a, g, rq->c, rq);
}

/* REFUSE: the requester gets ECONNREFUSED with the reason. */
static int registry_on_refuse(request *rq) {
        reg *g;
        alloc *a;
        const char *reason = ctl_arg_str(rq->args, CTL_A_REASON);
        char cut[IPCF_REASON_MAX + 1];
        int r = registry_lookup_decision(rq, &g, &a);
        if (r < 0)
                return r;
        str_copy(cut, reason ? reason : "", sizeof(cut));
        /* the target wrote it: printable for the requester's terminal, and
         * for another host's daemon, whose wire takes nothing else */
        str_printable(cut);
        /* Decided: g lets go of it without a tombstone. */
        alloc_unhold(a);
        alloc_fail(a, -ECONNREFUSED, cut, IPCF_END_REFUSED);
        return 0;
}

/* REQ_CHECK: is the request still waiting for a decision? OK if so, else
 * the error an ACCEPT would get (ECANCELED withdrawn, ENOENT unknown or
 * decided). Nothing changes: ipcf_request_next asks it before handing a
 * REQUEST out, since a withdrawn one stays queued on the request socket. */
static int registry_on_check(request *rq) {
        reg *g;
        alloc *a;
        return registry_lookup_decision(rq, &g, &a);
}

/* Every path that ends a registration comes here: UNREGISTER, the request
 * socket closed, the owner's death, shutdown. */
static void reg_free(reg *g, enum reg_end why) {
        ipcfd *d = g->d;
        log_debug("reg %llu (%s): ended (%s)", (unsigned long long)g->node.id, g->name,
                  why == REG_END_UNREGISTER ? "unregistered" : why == REG_END_DIED ? "died" : "shutdown");
        /* Out of every index first, so a re-dispatch below cannot pick it. */
        idmap_del(&reg_ids, &g->node);
        dlist_del(&g->link);
        dlist_del(&g->name_link);
        dlist_del(&g->owner_link);
        n_regs--;
        loop_io_del(d->loop, &g->io);
        close(g->sock);
        g->sock = -1;

        dlist_for_each_safe(pos, tmp, &g->pending_allocs) {
                alloc *a = dlist_entry(pos, alloc, hold_link);
                alloc_unhold(a);
                if (why == REG_END_SHUTDOWN)
                        continue;
                if (why == REG_END_DIED)
                        registry_retry(a, -ECONNREFUSED, "target died", IPCF_END_PEER_DIED);
                else
                        registry_retry(a, -ECONNREFUSED, "unregistered", IPCF_END_REFUSED);
        }
        quota_release(g->user, QUOTA_REGS, 1);
        user_unref(g->user);
        if (why != REG_END_SHUTDOWN)
                observe_emit(d, &(observe_ev){ .kind = OBSERVE_NAME_CHANGED, .name = g->name });
        loop_defer_free(d->loop, g);
}

/* The owner is gone: its registrations end as deaths. */
static void registry_on_client_gone(ipcfd *d, const observe_ev *ev) {
        dlist_for_each_safe(pos, tmp, &ev->client->held[regs_kind])
                reg_free(dlist_entry(pos, reg, owner_link), REG_END_DIED);
}

static int registry_init(ipcfd *d) {
        static const method methods[] = {
                { CTL_REGISTER, registry_on_register },
                { CTL_UNREGISTER, registry_on_unregister },
                { CTL_ACCEPT, registry_on_accept },
                { CTL_REFUSE, registry_on_refuse },
                { CTL_REQ_CHECK, registry_on_check },
        };
        for (size_t i = 0; i < REG_BUCKETS; i++)
                dlist_init(&buckets[i]);
        int r = regs_kind = client_hold_kind(d, "registrations");
        if (r >= 0)
                r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        if (r == 0)
                r = resolver_add(&registry_resolver);
        if (r == 0)
                r = observe(d, OBSERVE_CLIENT_GONE, registry_on_client_gone);
        return r;
}

/* Nothing is told; then the tombstones go. */
static void registry_shutdown(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &regs)
                reg_free(dlist_entry(pos, reg, link), REG_END_SHUTDOWN);
        idmap_deinit(&reg_ids);
        idmap_deinit(&tomb_ids);
        free(tombs);
        tombs = NULL;
        n_tombs = 0;
}

static void registry_dump(ipcfd *d, char *buf, size_t size) {
        snprintf(buf, size, "%zu registration%s", n_regs, plural(n_regs));
}

const daemon_module registry_module = {
        .name = "registry",
        .init = registry_init,
        .shutdown = registry_shutdown,
        .dump = registry_dump,
};
