/*
 * remote.c — this host asking another for a name (hosts.h): the resolvers
 * "pinned" and "hosts", and an allocation held while the other host decides.
 *
 * SEARCH RULES. "pinned" (rank RESOLVE_RANK_PINNED, before every local
 * resolver) takes a name "name@host" whose host is enrolled: only that host
 * is asked, for "name"; "name@<this host>" is this host's "name" (the pin is
 * cut and the local resolvers go on, and only they: no host is asked). "hosts" (RESOLVE_RANK_HOSTS, after the
 * local ones: registrations, the daemon's objects, activation) asks the
 * hosts of the name's search list, one after the other, until one does not
 * say ENOENT: the list is the hosts key of the first [name] rule matching
 * the name, else [hosts] search, else every enrolled host in config order
 * — except with [directory] backend = etcd, where a name without a list is
 * the directory's to place (directory/search.c asks remote_ask()).
 * A host that is down is skipped; one still connecting (in its handshake, or
 * associated with its HELLO not in yet; for less than the dead interval) is
 * waited for. Allocations that came from another host are
 * never passed on (no forwarding).
 *
 * A REQUEST (rreq) is held by its resolver: ALLOC goes on the host's control
 * flow with a local port-id for the data flow; ACCEPT makes the flow with a
 * relay end (relay.h) as side 1; REFUSE fails it (or, ENOENT in a search,
 * asks the next host); the host going down fails it with EHOSTUNREACH (or
 * asks the next host); withdrawal (timeout, the requester gone) sends CANCEL.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/resolve.h"
#include "daemon/hosts/hosts.h"
#include "daemon/hosts/relay.h"

typedef struct rreq {
        alloc *a;
        hostrec *h;                    /* the host being asked (NULL: none yet) */
        struct dlist link;             /* h->asking */
        struct idmap_node pnode;       /* id: lport, in asking_by_port */
        uint32_t lport;
        efcp_flow *early;              /* the host opened our flow before its ACCEPT */
        bool sent;                     /* ALLOC went out on h's control flow */
        bool pinned;
        uint16_t n_hosts, next;        /* the search list, and where we are in it */
        uint16_t hosts[CONF_HOSTS_MAX];  /* a list, or every enrolled host */
        loop_timer wait;               /* a host still connecting: until when we wait */
        char name[IPCF_NAME_MAX + 1];  /* what the hosts are asked for */
} rreq;

static const resolver pinned_resolver, hosts_resolver;

/* Every role travels: flows, calls, datagrams, and the channels of
 * mailboxes and multicast groups (the broker is on the target host). */
#define REMOTE_ROLES                                                                               \
        (RESOLVE_ROLE(CTL_ROLE_FLOW) | RESOLVE_ROLE(CTL_ROLE_CALL) | RESOLVE_ROLE(CTL_ROLE_DGRAM) |    \
         RESOLVE_ROLE(CTL_ROLE_MBOX_SEND) | RESOLVE_ROLE(CTL_ROLE_MBOX_RECV) | RESOLVE_ROLE(CTL_ROLE_MCAST))
static idmap asking_by_port;
/* The user pointer of a data flow the other host opened before its ACCEPT:
 * data may wait in the engine, nobody reads it yet. */
static char early_mark;

static bool remote_try(rreq *q);

/* ---- the user name a requester's uid has (for user:NAME@host rules) ----------- */

#define UNAME_CACHE 64
static struct {
        uid_t uid;
        bool set;
        char name[HW_USER_MAX + 1];
} uname_cache[UNAME_CACHE];

/* The name of uid, "" if unknown. NSS (usually /etc/passwd) once per uid,
 * cached: the loop may not wait on a slow directory twice. */
static const char *uid_name(uid_t uid) {
        unsigned slot = uid % UNAME_CACHE;
        if (uname_cache[slot].set && uname_cache[slot].uid == uid)
                return uname_cache[slot].name;
        struct passwd pw, *res = NULL;
        char buf[1024];
        uname_cache[slot].uid = uid;
        uname_cache[slot].set = true;
        uname_cache[slot].name[0] = 0;
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && strlen(res->pw_name) <= HW_USER_MAX)
                str_copy(uname_cache[slot].name, res->pw_name, sizeof(uname_cache[slot].name));
        return uname_cache[slot].name;
}

/* ---- requests ------------------------------------------------------------------- */

static void rreq_leave_host(rreq *q) {
        if (!q->h)
                return;
        dlist_del(&q->link);
        if (q->early) {
                hlink_flow_close(q->h->p, q->early, EFCP_REASON_REFUSED);
                q->early = NULL;
        }
        idmap_del(&asking_by_port, &q->pnode);
        q->h = NULL;
        q->sent = false;
}

static void rreq_free(rreq *q) {
        rreq_leave_host(q);
        loop_timer_cancel(the_hosts.d->loop, &q->wait);
        free(q);
}

/* Can we wait for h (connecting: in its handshake, or associated and its
 * greeting not in yet — `ipcf hosts` says "connecting" for both; not for
 * longer than the dead interval since it went down or came up)? */
static bool host_worth_waiting(const hostrec *h, uint64_t *ret_until) {
        uint32_t dead = the_hosts.d->conf.hosts_sec.dead_interval_ms;
        uint64_t until = h->p->since + (uint64_t)(dead ? dead : CONF_DEAD_INTERVAL_DEFAULT) * 1000000u;
        *ret_until = until;
        bool coming = h->p->state == HPEER_CONNECTING || (h->p->state == HPEER_UP && !h->p->hello_in);
        return coming && now_ns() < until;
}

static bool host_ready(const hostrec *h) { return h->p->state == HPEER_UP && h->p->hello_in; }

/* Send q's ALLOC to its host. */
static int rreq_send(rreq *q) {
        alloc *a = q->a;
        hw_msg m = { .type = HW_ALLOC, .req = a->node.id, .port = q->lport, .role = (uint8_t)a->role,
                     .qos = a->qos };
        uint64_t left = loop_timer_armed(&a->timer) ? a->timer.deadline : 0;
        uint64_t now = now_ns();
        m.timeout_ms = left == 0 ? 0 : left > now ? (uint32_t)MIN((left - now) / 1000000u + 1, (uint64_t)UINT32_MAX) : 1;
        m.who = (hw_ident){ .pid = (uint32_t)a->cred.pid, .uid = a->cred.uid, .gid = a->cred.gid };
        str_copy(m.who.prog, a->prog, sizeof(m.who.prog));
        str_copy(m.name, q->name, sizeof(m.name));
        str_copy(m.user, uid_name(a->cred.uid), sizeof(m.user));
        int r = hlink_send(q->h->p, &m);
        if (r == 0)
                q->sent = true;
        return r;
}

/* Ask q's next host. false: none is left (q is the caller's to fail). */
static bool remote_try(rreq *q) {
        rreq_leave_host(q);
        while (q->next < q->n_hosts) {
                hostrec *h = &the_hosts.recs[q->hosts[q->next++]];
                uint64_t until;
                bool ready = host_ready(h), wait = !ready && host_worth_waiting(h, &until);
                if (!ready && !wait)
                        continue; /* down: the next one */
                q->h = h;
                q->lport = hlink_port_new(h->p);
                q->pnode.id = (uint64_t)(h - the_hosts.recs) << 32 | q->lport;
                dlist_add_tail(&h->asking, &q->link);
                if (idmap_add(&asking_by_port, &q->pnode) < 0) {
                        dlist_del(&q->link);
                        q->h = NULL;
                        return false;
                }
                if (ready) {
                        if (rreq_send(q) == 0)
                                return true;
                        rreq_leave_host(q);
                        continue;
                }
                loop_timer_arm(the_hosts.d->loop, &q->wait, until);
                return true;
        }
        return false;
}

/* q cannot go on: its allocation fails. */
static void remote_fail(rreq *q, int err, const char *reason, uint32_t code) {
        alloc *a = q->a;
        alloc_unhold(a); /* frees q */
        alloc_fail(a, err, reason, code);
}

/* The host q waited for did not come up in time. */
static void rreq_on_wait(loop_timer *t) {
        rreq *q = container_of(t, rreq, wait);
        if (q->sent)
                return;
        if (!remote_try(q))
                remote_fail(q, -EHOSTUNREACH, "host unreachable", IPCF_END_PEER_DIED);
}

/* Take a for hosts[0..n), asking for name. */
static int remote_take(alloc *a, const char *name, const uint16_t *list, unsigned n, bool pinned) {
        rreq *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->a = a;
        q->pinned = pinned;
        q->n_hosts = (uint16_t)n;
        memcpy(q->hosts, list, n * sizeof(*list));
        str_copy(q->name, name, sizeof(q->name));
        dlist_init(&q->link);
        loop_timer_init(&q->wait, rreq_on_wait);
        alloc_hold(a, pinned ? &pinned_resolver : &hosts_resolver, q, NULL);
        if (remote_try(q))
                return 0;
        int err = pinned ? -EHOSTUNREACH : RESOLVE_NEXT;
        alloc_unhold(a); /* frees q; a is the walk's again */
        return err;
}

/* ---- the resolvers ------------------------------------------------------------- */

static int pinned_resolve(ipcfd *d, alloc *a) {
        if (a->origin)
                return RESOLVE_NEXT; /* another host's request is never passed on */
        char *at = strrchr(a->name, '@');
        if (!at || at == a->name)
                return RESOLVE_NEXT;
        if (strcmp(at + 1, the_hosts.self) == 0) {
                *at = 0; /* this host's own name: the local resolvers go on, */
                a->here_only = true; /* and only they: it names this host */
                return RESOLVE_NEXT;
        }
        hostrec *h = the_hosts.k ? hosts_by_name(at + 1) : NULL;
        if (!h)
                return RESOLVE_NEXT; /* no such host: a name with an '@' in it */
        char name[IPCF_NAME_MAX + 1];
        size_t len = (size_t)(at - a->name);
        memcpy(name, a->name, len);
        name[len] = 0;
        uint16_t idx = (uint16_t)(h - the_hosts.recs);
        int r = remote_take(a, name, &idx, 1, true);
        if (r == -EHOSTUNREACH) {
                alloc_fail(a, r, "host unreachable", IPCF_END_PEER_DIED);
                return 0;
        }
        return r;
}

static int hosts_resolve(ipcfd *d, alloc *a) {
        if (a->origin || !the_hosts.k || a->here_only)
                return RESOLVE_NEXT;
        const conf_rule *rule = conf_match(&d->conf, a->name);
        const conf_hostlist *l = rule && rule->hosts.set ? &rule->hosts
                                 : d->conf.hosts_sec.search.set ? &d->conf.hosts_sec.search : NULL;
        uint16_t all[CONF_HOSTS_MAX];
        unsigned n = 0;
        if (l) {
                /* by name: a reloaded config may list hosts in another order
                 * (the associations are those made at start) */
                for (unsigned i = 0; i < l->n && l->idx[i] < d->conf.n_hosts; i++) {
                        hostrec *h = hosts_by_name(d->conf.hosts[l->idx[i]].name);
                        if (h)
                                all[n++] = (uint16_t)(h - the_hosts.recs);
                }
        } else if (d->conf.directory.backend == CONF_DIR_ETCD) {
                return RESOLVE_NEXT; /* the directory says where names are (directory/search.c) */
        } else {
                n = MIN(the_hosts.n, (unsigned)CONF_HOSTS_MAX);
                for (unsigned i = 0; i < n; i++)
                        all[i] = (uint16_t)i;
        }
        if (n == 0)
                return RESOLVE_NEXT;
        return remote_take(a, a->name, all, n, false);
}

int remote_ask(alloc *a, const char *const *names, unsigned n) {
        uint16_t list[CONF_HOSTLIST_MAX];
        unsigned k = 0;
        if (!the_hosts.k)
                return RESOLVE_NEXT;
        for (unsigned i = 0; i < n && k < CONF_HOSTLIST_MAX; i++) {
                hostrec *h = hosts_by_name(names[i]);
                if (h)
                        list[k++] = (uint16_t)(h - the_hosts.recs);
        }
        return k ? remote_take(a, a->name, list, k, false) : RESOLVE_NEXT;
}

/* a leaves its resolver: decided, withdrawn or failing. */
static void remote_release(alloc *a, bool withdrawn) {
        rreq *q = a->holder;
        if (withdrawn && q->h && q->sent)
                hlink_send(q->h->p, &(hw_msg){ .type = HW_CANCEL, .req = a->node.id });
        rreq_free(q);
}

static const resolver pinned_resolver = {
        .name = "pinned",
        .rank = RESOLVE_RANK_PINNED,
        .roles = REMOTE_ROLES,
        .resolve = pinned_resolve,
        .release = remote_release,
};

static const resolver hosts_resolver = {
        .name = "hosts",
        .rank = RESOLVE_RANK_HOSTS,
        .roles = REMOTE_ROLES,
        .resolve = hosts_resolve,
        .release = remote_release,
};

int remote_init(ipcfd *d) {
        int r = resolver_add(&pinned_resolver);
        return r < 0 ? r : resolver_add(&hosts_resolver);
}

/* ---- what the host says -------------------------------------------------------- */

static rreq *rreq_of(hostrec *h, uint64_t req) {
        alloc *a = alloc_find(the_hosts.d, req);
        if (!a || a->state != ALLOC_HELD || (a->held_by != &pinned_resolver && a->held_by != &hosts_resolver))
                return NULL;
        rreq *q = a->holder;
        return q->h == h && q->sent ? q : NULL;
}

/* The host accepted: the flow, with a relay as side 1. */
static void remote_on_accept(hostrec *h, const hw_msg *m) {
        rreq *q = rreq_of(h, m->req);
        if (!q) {
                /* withdrawn meanwhile: its data flow (if opened) is refused by
                 * the link, which ends it at the other host */
                return;
        }
        alloc *a = q->a;
        ipcfd *d = the_hosts.d;
        bool reliable = a->role != CTL_ROLE_DGRAM;
        relay *r = relay_new(h, &a->cred, a->prog, reliable);
        if (r && a->role == CTL_ROLE_MBOX_RECV)
                relay_set_receiver(r, false); /* the mailbox is there */
        else if (r && a->role == CTL_ROLE_MBOX_SEND)
                relay_set_sender(r, false); /* the mailbox is there */
        if (!r) {
                hlink_send(h->p, &(hw_msg){ .type = HW_DEALLOC, .port = q->lport, .code = IPCF_END_DEALLOC,
                                            .reason = "out of memory" });
                remote_fail(q, -ENOMEM, NULL, 0);
                return;
        }
        /* who the application sees at the other end: the remote acceptor,
         * and the name with its host (ipcf_peer tells where the peer is) */
        cred who = { .pid = (pid_t)m->who.pid, .uid = m->who.uid, .gid = m->who.gid };
        char prog[IPCF_NAME_MAX + 1];
        snprintf(prog, sizeof(prog), "%.63s@%s", m->who.prog, h->p->name);
        if (!q->pinned && strlen(a->name) + 1 + strlen(h->p->name) <= IPCF_NAME_MAX) {
                size_t n = strlen(a->name);
                a->name[n] = '@';
                str_copy(a->name + n + 1, h->p->name, sizeof(a->name) - n - 1);
        }
        uint32_t lport = q->lport, rport = m->port;
        efcp_flow *early = q->early;
        q->early = NULL; /* the relay takes it */
        flow_end_spec e;
        relay_spec(r, &e, &who, prog);
        /* the target's terms (a broker's, for a mailbox or group; the
         * asked qos otherwise), checked by hw_parse like a local ALLOC's */
        ipcf_qos qos = m->qos;
        flow_layout l;
        if (flow_layout_for(&qos, &l) < 0)
                qos = a->qos;
        relay_qos(&qos);
        int rc = alloc_accept(a, &e, &qos); /* unholds: q is freed */
        if (rc < 0) {
                relay_discard(r);
                if (early)
                        hlink_flow_close(h->p, early, EFCP_REASON_REFUSED);
                hlink_send(h->p, &(hw_msg){ .type = HW_DEALLOC, .port = lport, .code = IPCF_END_DEALLOC,
                                            .reason = "requester gave up" });
                if (rc != -ECANCELED) {
                        alloc_unhold(a);
                        alloc_fail(a, rc, NULL, 0);
                }
                return;
        }
        flow *f = flow_find(d, a->flow_id);
        if (!f || relay_start(r, f, early, lport, rport) < 0) {
                /* the flow is there but cannot be relayed: end it */
                relay_fail(r, IPCF_END_PEER_DIED, "host unreachable");
                return;
        }
        log_debug("alloc %llu: accepted by %s (port %u -> %u)", (unsigned long long)a->node.id, h->p->name,
                  lport, rport);
}

static bool refusal_known(uint32_t err) {
        switch (err) {
        case ENOENT: case EACCES: case ECONNREFUSED: case EBUSY: case ETIMEDOUT: case EDQUOT:
        case ENOEXEC: case EINVAL: case EHOSTUNREACH: case EMFILE: case ENOMEM: case EAGAIN:
        case EOPNOTSUPP:
                return true;
        default:
                return false;
        }
}

static void remote_on_refuse(hostrec *h, const hw_msg *m) {
        rreq *q = rreq_of(h, m->req);
        if (!q)
                return;
        uint32_t err = refusal_known(m->err) ? m->err : ECONNREFUSED;
        if (err == ENOENT && !q->pinned && remote_try(q))
                return; /* the next host of the search */
        uint32_t code = m->code <= IPCF_END_PROTOCOL ? m->code : IPCF_END_REFUSED;
        remote_fail(q, -(int)err, m->reason[0] ? m->reason : NULL, m->reason[0] ? code : 0);
}

void remote_on_control(hostrec *h, const hw_msg *m) {
        if (m->type == HW_ACCEPT)
                remote_on_accept(h, m);
        else if (m->type == HW_REFUSE)
                remote_on_refuse(h, m);
}

/* The host is up: what waited for it goes. */
void remote_host_up(hostrec *h) {
        dlist_for_each_safe(pos, tmp, &h->asking) {
                rreq *q = dlist_entry(pos, rreq, link);
                if (q->sent)
                        continue;
                loop_timer_cancel(the_hosts.d->loop, &q->wait);
                if (rreq_send(q) < 0 && !remote_try(q))
                        remote_fail(q, -EHOSTUNREACH, "host unreachable", IPCF_END_PEER_DIED);
        }
}

/* The host went down: what it was deciding goes to the next host, or fails. */
void remote_host_down(hostrec *h, uint32_t reason) {
        dlist_for_each_safe(pos, tmp, &h->asking) {
                rreq *q = dlist_entry(pos, rreq, link);
                q->early = NULL; /* gone with the association */
                if (!q->sent)
                        continue; /* waiting for it to come (back) up */
                if (q->pinned || !remote_try(q))
                        remote_fail(q, -EHOSTUNREACH, reason == EFCP_REASON_PEER_RESTARTED ? "peer host restarted"
                                                                                              : "host unreachable",
                                    IPCF_END_PEER_DIED);
        }
}

/* The host opened a data flow to our port: the one an ALLOC of ours named
 * (its ACCEPT is on the way); anything else is refused by the link. */
void remote_on_flow_alloc(hostrec *h, efcp_flow *f) {
        uint64_t key = (uint64_t)(h - the_hosts.recs) << 32 | efcp_flow_local_port(f);
        struct idmap_node *n = idmap_find(&asking_by_port, key);
        if (!n)
                return;
        rreq *q = container_of(n, rreq, pnode);
        if (!q->sent || q->early)
                return;
        q->early = f;
        hlink_flow_adopt(h->p, f, &early_mark);
}

bool remote_is_early(const void *user) { return user == &early_mark; }

void remote_shutdown(void) { idmap_deinit(&asking_by_port); }
