/*
 * monitor.c — the traffic monitor: what the facility does, as it happens,
 * for `ipcf monitor` (ipcf_monitor_open / ipcf_monitor_next).
 *
 * A client asks MONITOR_OPEN and gets one end of a fresh socketpair; the
 * daemon keeps the other, non-blocking and write-only: it never waits for a
 * monitor. An event that does not fit is counted and the next one that fits
 * carries the count (ctl_monitor_wire.lost) — never silent. A monitor whose
 * client closed its end is freed at the next event sent to it, or at its
 * client's next MONITOR_OPEN, or when the client goes.
 *
 * EVENTS come from the observers (core/observe.h), nothing else calls in:
 *   ALLOC_ASKED   -> ALLOC          ALLOC_FAILED -> REFUSE (ECONNREFUSED) or FAIL
 *   FLOW_MADE     -> ACCEPT         FLOW_ENDED   -> DEALLOC (the end record)
 *   NAME_CHANGED  -> NAME_UP / NAME_DOWN (the resolvers' answer now)
 * and, for monitors opened with IPCF_MONITOR_DATAGRAMS, every datagram of
 * the UDP socket (core/dgtap.h's hook, set while such a monitor exists:
 * DATAGRAM, its first CTL_MONITOR_SNAP
 * bytes, direction and peer).
 *
 * POLICY (what a monitor is shown): root and the daemon's uid see every
 * event (client_is_privileged); only they may have datagrams (-EPERM):
 * those carry every user's traffic to other hosts. Another user sees an allocation's events if
 * it asked for it or a process of its uid serves the name now, a flow's if
 * either side runs as its uid, and a name's if the policy lets it allocate
 * or register the name (the rule of WATCH). Pids (and programs) of other
 * users' processes are shown as 0 (""), as LIST shows them.
 *
 * BOUNDS: MONITORS_PER_CLIENT per client, MONITORS_MAX in all.
 * STATE: every monitor, in this file's list (one daemon per process).
 */
#include "daemon/monitor/monitor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/flow.h"
#include "daemon/flows/resolve.h"
#include "daemon/core/dgtap.h"

#define MONITORS_PER_CLIENT 4
#define MONITORS_MAX 64

typedef struct monitor {
        struct dlist link;           /* monitors */
        struct dlist owner_link;     /* the client's held list */
        struct client *c;
        int sock;                    /* our end: non-blocking, write-only */
        uint32_t lost;               /* events that did not fit since the last sent */
        bool datagrams;              /* IPCF_MONITOR_DATAGRAMS (privileged only) */
} monitor;

static struct dlist monitors = DLIST_INIT(monitors);
static unsigned n_monitors;
static unsigned monitor_datagram_watchers; /* monitors with .datagrams */

static void monitor_datagram(bool received, const void *data, size_t len, const void *sa, size_t salen);

/* One more or one fewer monitor of datagrams: the tap is set while any is. */
static void monitor_datagrams_count(int delta) {
        monitor_datagram_watchers += (unsigned)delta;
        dgtap_hook = monitor_datagram_watchers ? monitor_datagram : NULL;
}
static int monitors_kind = -1;       /* client.held index */

static void monitor_free(monitor *m) {
        if (m->datagrams)
                monitor_datagrams_count(-1);
        dlist_del(&m->link);
        dlist_del(&m->owner_link);
        safe_close(m->sock);
        n_monitors--;
        free(m);
}

/* One side of an event as monitor m may see it. */
typedef struct party {
        pid_t pid;
        uid_t uid;
        const char *prog;            /* or NULL */
        bool known;
} party;

/* Is uid the monitor's own, or may it see everyone? */
static bool sees_uid(const monitor *m, bool known, uid_t uid) {
        return client_is_privileged(m->c) || (known && m->c->cred.uid == uid);
}

/* One side as monitor m may see it: itself, or hidden (0, 0, ""). */
static party visible_party(const monitor *m, const party *p) {
        if (!p->known || !sees_uid(m, true, p->uid))
                return (party){ 0, 0, NULL, false };
        return *p;
}

/* An event about to be sent, for each monitor that may see it. */
typedef struct monitor_ev {
        uint32_t kind;               /* enum ipcf_monitor_kind */
        const char *name;
        uint64_t flow_id, alloc_id;
        party a, b;
        int err;                     /* negative errno or 0 */
        uint32_t end_code, end_side;
        const char *reason;          /* or NULL */
        const struct ctl_monitor_dgram_wire *dgram; /* DATAGRAM */
} monitor_ev;

/* Send ev to m; count it lost if it does not fit; free m if its client
 * closed its end. */
static void monitor_send(monitor *m, const monitor_ev *ev, uint64_t now) {
        static ctl_builder msg; /* one thread: one event at a time */
        struct ctl_monitor_wire w;
        memset(&w, 0, sizeof(w));
        w.kind = htole32(ev->kind);
        w.lost = htole32(m->lost);
        w.time_ns = htole64(now);
        w.flow_id = htole64(ev->flow_id);
        w.alloc_id = htole64(ev->alloc_id);
        w.err = htole32((uint32_t)-ev->err);
        w.end_code = htole32(ev->end_code);
        w.end_side = htole32(ev->end_side);
        party a = visible_party(m, &ev->a), b = visible_party(m, &ev->b);
        w.pid_a = htole32((uint32_t)a.pid);
        w.uid_a = htole32((uint32_t)a.uid);
        w.pid_b = htole32((uint32_t)b.pid);
        w.uid_b = htole32((uint32_t)b.uid);
        str_copy(w.prog_a, a.prog ? a.prog : "", sizeof(w.prog_a));
        str_copy(w.prog_b, b.prog ? b.prog : "", sizeof(w.prog_b));
        ctl_begin(&msg, CTL_MONITOR_EVENT, 0);
        ctl_put(&msg, CTL_A_MONITOR, &w, sizeof(w));
        if (ev->name)
                ctl_put_str(&msg, CTL_A_NAME, ev->name);
        if (ev->reason)
                ctl_put_str(&msg, CTL_A_REASON, ev->reason);
        if (ev->dgram)
                ctl_put(&msg, CTL_A_MONITOR_DGRAM, ev->dgram, sizeof(*ev->dgram));
        int r = ctl_end(&msg);
        if (r >= 0)
                r = ctl_send(m->sock, &msg, NULL, 0);
        if (r == -EAGAIN || r == -ENOBUFS)
                m->lost++;
        else if (r < 0)
                monitor_free(m); /* the client closed its end */
        else
                m->lost = 0;
}

/* Who may see ev: the privileged; the uid of a side; for names, whom the
 * policy lets allocate or register it. */
static bool monitor_may_see(ipcfd *d, const monitor *m, const monitor_ev *ev) {
        if (ev->kind == IPCF_MONITOR_DATAGRAM)
                return m->datagrams;
        if (client_is_privileged(m->c))
                return true;
        if (ev->kind == IPCF_MONITOR_NAME_UP || ev->kind == IPCF_MONITOR_NAME_DOWN)
                return policy_check(d, ev->name, POLICY_ALLOCATE, &m->c->cred) == 0 ||
                       policy_check(d, ev->name, POLICY_REGISTER, &m->c->cred) == 0;
        return sees_uid(m, ev->a.known, ev->a.uid) || sees_uid(m, ev->b.known, ev->b.uid);
}

/* d may be NULL (the datagram tap: no name events). */
static void monitor_emit(ipcfd *d, const monitor_ev *ev) {
        if ((d && d->shutdown) || dlist_empty(&monitors))
                return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        dlist_for_each_safe(pos, tmp, &monitors) {
                monitor *m = dlist_entry(pos, monitor, link);
                if (m->sock >= 0 && monitor_may_see(d, m, ev))
                        monitor_send(m, ev, now);
        }
}

/* The requester of an allocation, and who serves its name now (b). */
static void alloc_parties(ipcfd *d, const alloc *a, monitor_ev *ev) {
        ev->name = a->name;
        ev->alloc_id = a->node.id;
        ev->a = (party){ a->cred.pid, a->cred.uid, a->prog, true };
        pid_t pid = 0;
        uid_t uid = 0;
        if (resolve_name_up(d, a->name, &pid, &uid))
                ev->b = (party){ pid, uid, NULL, true };
}

static void monitor_on_alloc_asked(ipcfd *d, const observe_ev *oe) {
        if (dlist_empty(&monitors))
                return;
        monitor_ev ev = { .kind = IPCF_MONITOR_ALLOC };
        alloc_parties(d, oe->alloc, &ev);
        monitor_emit(d, &ev);
}

static void monitor_on_alloc_failed(ipcfd *d, const observe_ev *oe) {
        if (dlist_empty(&monitors))
                return;
        monitor_ev ev = { .kind = oe->err == -ECONNREFUSED ? IPCF_MONITOR_REFUSE : IPCF_MONITOR_FAIL,
                          .err = oe->err, .reason = oe->reason };
        alloc_parties(d, oe->alloc, &ev);
        monitor_emit(d, &ev);
}

static party side_party(const flow_side *s) {
        return (party){ s->cred.pid, s->cred.uid, s->prog[0] ? s->prog : NULL, s->ops != NULL };
}

static void monitor_on_flow_made(ipcfd *d, const observe_ev *oe) {
        if (dlist_empty(&monitors))
                return;
        const flow *f = oe->flow;
        monitor_ev ev = { .kind = IPCF_MONITOR_ACCEPT, .name = f->name, .flow_id = f->node.id,
                          .alloc_id = oe->alloc->node.id, .a = side_party(&f->side[0]),
                          .b = side_party(&f->side[1]) };
        monitor_emit(d, &ev);
}

/* A side ended: its end record (flow_end_record: never trusted). */
static void monitor_on_flow_ended(ipcfd *d, const observe_ev *oe) {
        if (dlist_empty(&monitors))
                return;
        flow *f = oe->flow;
        char reason[IPCF_REASON_MAX + 1];
        uint32_t code = flow_end_record(f, oe->side, reason);
        monitor_ev ev = { .kind = IPCF_MONITOR_DEALLOC, .name = f->name, .flow_id = f->node.id,
                          .a = side_party(&f->side[0]), .b = side_party(&f->side[1]),
                          .end_code = code, .end_side = (uint32_t)oe->side, .reason = reason };
        monitor_emit(d, &ev);
}

static void monitor_on_name(ipcfd *d, const observe_ev *oe) {
        if (dlist_empty(&monitors))
                return;
        pid_t pid = 0;
        uid_t uid = 0;
        bool up = resolve_name_up(d, oe->name, &pid, &uid);
        monitor_ev ev = { .kind = up ? IPCF_MONITOR_NAME_UP : IPCF_MONITOR_NAME_DOWN, .name = oe->name };
        if (up)
                ev.b = (party){ pid, uid, NULL, true };
        monitor_emit(d, &ev);
}

/* The tap (dgtap_hook): the datagram to every monitor of datagrams. */
static void monitor_datagram(bool received, const void *data, size_t len, const void *sa, size_t salen) {
        static struct ctl_monitor_dgram_wire w; /* one thread; 540 bytes */
        memset(&w, 0, offsetof(struct ctl_monitor_dgram_wire, data));
        w.direction = received;
        w.wire_len = htole32((uint32_t)len);
        w.captured = htole32((uint32_t)MIN(len, (size_t)CTL_MONITOR_SNAP));
        memcpy(w.data, data, MIN(len, (size_t)CTL_MONITOR_SNAP));
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, sa, MIN(salen, sizeof(ss)));
        if (salen >= sizeof(struct sockaddr_in) && ss.ss_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
                w.family = 4;
                w.port = htole16(ntohs(s4->sin_port));
                memcpy(w.addr, &s4->sin_addr, 4);
        } else if (salen >= sizeof(struct sockaddr_in6) && ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
                bool v4 = IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
                w.family = v4 ? 4 : 6;
                w.port = htole16(ntohs(s6->sin6_port));
                memcpy(w.addr, v4 ? &s6->sin6_addr.s6_addr[12] : s6->sin6_addr.s6_addr, v4 ? 4 : 16);
        }
        monitor_ev ev = { .kind = IPCF_MONITOR_DATAGRAM, .dgram = &w };
        monitor_emit(NULL, &ev);
}

/* Free the client's monitors whose other end is closed (POLLHUP). */
static unsigned monitor_prune(client *c) {
        unsigned n = 0;
        dlist_for_each_safe(pos, tmp, &c->held[monitors_kind]) {
                monitor *m = dlist_entry(pos, monitor, owner_link);
                struct pollfd p = { .fd = m->sock, .events = 0 };
                if (m->sock < 0 || (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))))
                        monitor_free(m);
                else
                        n++;
        }
        return n;
}

/* MONITOR_OPEN: one end of a fresh socketpair; ours never blocks and is
 * never read. */
static int monitor_on_open(request *rq) {
        client *c = rq->c;
        uint32_t flags = ctl_arg_u32(rq->args, CTL_A_MONITOR_FLAGS, 0);
        if (flags & ~IPCF_MONITOR_DATAGRAMS)
                return -EINVAL;
        if ((flags & IPCF_MONITOR_DATAGRAMS) && !client_is_privileged(c))
                return -EPERM;
        if (monitor_prune(c) >= MONITORS_PER_CLIENT || n_monitors >= MONITORS_MAX)
                return -EDQUOT;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
        int fl = fcntl(sv[0], F_GETFL);
        monitor *m = calloc(1, sizeof(*m));
        if (!m || fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
                free(m);
                close(sv[0]);
                close(sv[1]);
                return m ? -EMFILE : -ENOMEM;
        }
        shutdown(sv[0], SHUT_RD); /* the client never writes to us */
        m->c = c;
        m->sock = sv[0];
        m->datagrams = flags & IPCF_MONITOR_DATAGRAMS;
        if (m->datagrams)
                monitor_datagrams_count(1);
        dlist_add_tail(&monitors, &m->link);
        dlist_add_tail(&c->held[monitors_kind], &m->owner_link);
        n_monitors++;
        request_reply_fd(rq, sv[1], true);
        return 0;
}

static void monitor_on_client_gone(ipcfd *d, const observe_ev *ev) {
        dlist_for_each_safe(pos, tmp, &ev->client->held[monitors_kind])
                monitor_free(dlist_entry(pos, monitor, owner_link));
}

static void monitor_shutdown(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &monitors)
                monitor_free(dlist_entry(pos, monitor, link));
}

static void monitor_dump(ipcfd *d, char *buf, size_t size) {
        snprintf(buf, size, "%u monitor%s (%u of datagrams)", n_monitors, plural(n_monitors), monitor_datagram_watchers);
}

static int monitor_init(ipcfd *d) {
        static const method methods[] = { { CTL_MONITOR_OPEN, monitor_on_open } };
        static const struct {
                enum observe_kind kind;
                observer_fn fn;
        } observers[] = {
                { OBSERVE_ALLOC_ASKED, monitor_on_alloc_asked },
                { OBSERVE_ALLOC_FAILED, monitor_on_alloc_failed },
                { OBSERVE_FLOW_MADE, monitor_on_flow_made },
                { OBSERVE_FLOW_ENDED, monitor_on_flow_ended },
                { OBSERVE_NAME_CHANGED, monitor_on_name },
                { OBSERVE_CLIENT_GONE, monitor_on_client_gone },
        };
        int r = monitors_kind = client_hold_kind(d, "monitor sockets");
        if (r >= 0)
                r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        for (size_t i = 0; r == 0 && i < ARRAY_SIZE(observers); i++)
                r = observe(d, observers[i].kind, observers[i].fn);
        return r;
}

const daemon_module monitor_module = {
        .name = "monitor", .init = monitor_init, .shutdown = monitor_shutdown, .dump = monitor_dump,
};
