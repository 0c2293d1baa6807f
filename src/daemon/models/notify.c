/*
 * notify.c — notifications (Mach's notify port): one SOCK_SEQPACKET socket
 * per client on which the daemon pushes EVENT messages; watched names.
 *
 * A client asks NOTIFY_OPEN once and gets one end of a socketpair; the
 * daemon keeps the other, non-blocking: it never waits for a client. An event
 * that does not fit (the client does not read) is counted, and the next one
 * that fits carries EVENT_LOST = that count — never silent.
 *
 * EVENTS
 *   NAME_UP / NAME_DOWN  for each watched name, on the transition (each watch
 *                        remembers what it last reported, so several
 *                        registrations of one name give one NAME_UP); WATCH
 *                        of a name that is up reports NAME_UP at once. A
 *                        name is watched only by whom the policy lets
 *                        allocate or register it (else EACCES), and the
 *                        server's pid is shown as LIST would show it: to
 *                        its own uid and the privileged (else 0).
 *   FLOW_ENDED           to the holder of the other side of a flow whose side
 *                        ended (code and reason as written in the region)
 *   PEER_DIED            the same, when the side ended by its process' death
 *
 * Whether a name is up is the resolvers' answer (flows/resolve.h): a
 * registration, a mailbox or group — whatever serves names now or later.
 *
 * BOUNDS: one socket per client, NOTIFY_WATCH_MAX watches per client.
 * Who may call: the dispatcher (NOTIFY_OPEN, WATCH, UNWATCH); the rest is
 * observers (observe.h): names changing, flows ending, clients going.
 * STATE: the subscriptions of every client, in this file (one daemon per
 * process).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/flows/clientend.h"
#include "daemon/flows/flow.h"
#include "daemon/flows/resolve.h"
#include "daemon/models/models.h"

typedef struct notify_watch {
        char name[IPCF_NAME_MAX + 1];
        bool up;                     /* last reported state */
} notify_watch;

typedef struct notify_sub {
        struct idmap_node node;      /* node.id: the client's id */
        struct dlist link;           /* subs_list */
        struct dlist owner_link;     /* the client's held list (idle or not: admit.h) */
        struct client *c;
        int sock;                    /* our end, non-blocking; -1 if it broke */
        uint32_t lost;               /* events that did not fit since the last sent */
        unsigned n_watch;
        notify_watch watch[NOTIFY_WATCH_MAX];
} notify_sub;

static idmap subs;                                /* notify_sub by client id */
static int subs_kind = -1;                        /* client.held index of subscriptions */
static struct dlist subs_list = DLIST_INIT(subs_list); /* notify_sub.link */

static notify_sub *sub_find(uint64_t client_id) {
        struct idmap_node *n = idmap_find(&subs, client_id);
        return n ? container_of(n, notify_sub, node) : NULL;
}

/* Send one event; count it lost if it does not fit. */
static void sub_send(notify_sub *s, uint32_t kind, const char *name, uint64_t flow_id, pid_t pid,
                     uint32_t code, const char *reason) {
        static ctl_builder b; /* one thread: one event at a time */
        if (s->sock < 0)
                return;
        ctl_begin(&b, CTL_EVENT, 0);
        ctl_put_u32(&b, CTL_A_EVENT_KIND, kind);
        if (s->lost)
                ctl_put_u32(&b, CTL_A_EVENT_LOST, s->lost);
        if (name)
                ctl_put_str(&b, CTL_A_NAME, name);
        if (flow_id)
                ctl_put_u64(&b, CTL_A_FLOW_ID, flow_id);
        if (pid > 0)
                ctl_put_u32(&b, CTL_A_PID, (uint32_t)pid);
        if (code)
                ctl_put_u32(&b, CTL_A_END_CODE, code);
        if (reason)
                ctl_put_str(&b, CTL_A_REASON, reason);
        int r = ctl_end(&b);
        if (r >= 0)
                r = ctl_send(s->sock, &b, NULL, 0);
        if (r == -EAGAIN || r == -ENOBUFS) {
                s->lost++;
        } else if (r < 0) {
                /* The client closed its end: no more events for it. */
                s->sock = safe_close(s->sock);
        } else {
                s->lost = 0;
        }
}

/* The pid of a name's server as watcher c may see it: as LIST shows it,
 * only to its own uid and to the privileged (0 otherwise). */
static pid_t visible_pid(const client *c, pid_t pid, uid_t uid) {
        return client_is_privileged(c) || c->cred.uid == uid ? pid : 0;
}

/* NOTIFY_OPEN: one end of a fresh socketpair; ours never blocks and is
 * never read. */
static int notify_on_open(request *rq) {
        client *c = rq->c;
        notify_sub *s = sub_find(c->id);
        if (s && s->sock >= 0)
                return -EALREADY;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
        int fl = fcntl(sv[0], F_GETFL);
        if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
                close(sv[0]);
                close(sv[1]);
                return -EMFILE;
        }
        shutdown(sv[0], SHUT_RD); /* the client never writes to us */
        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s || (s->node.id = c->id, idmap_add(&subs, &s->node) < 0)) {
                        free(s);
                        close(sv[0]);
                        close(sv[1]);
                        return -ENOMEM;
                }
                s->c = c;
                dlist_add_tail(&subs_list, &s->link);
                dlist_add_tail(&c->held[subs_kind], &s->owner_link);
        }
        s->sock = sv[0];
        request_reply_fd(rq, sv[1], true);
        request_reply_now(rq);
        /* Watches made before the socket (none in practice): report now. */
        for (unsigned i = 0; i < s->n_watch; i++)
                if (s->watch[i].up)
                        sub_send(s, IPCF_EVENT_NAME_UP, s->watch[i].name, 0, 0, 0, NULL);
        return 0;
}

/* WATCH / UNWATCH NAME. */
static int notify_set_watch(request *rq, bool on) {
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        notify_sub *s = sub_find(rq->c->id);
        if (!s || s->sock < 0)
                /* Open the notification socket first (the library does). */
                return -ENOTCONN;
        unsigned i;
        for (i = 0; i < s->n_watch; i++)
                if (strcmp(s->watch[i].name, name) == 0)
                        break;
        if (!on) {
                if (i == s->n_watch)
                        return -ENOENT;
                s->watch[i] = s->watch[--s->n_watch];
                return 0;
        }
        if (i < s->n_watch)
                return 0; /* already watched */
        /* Only a name the policy lets the watcher reach or claim: a watch
         * must not tell of names it hides. */
        if (policy_check(rq->d, name, POLICY_ALLOCATE, &rq->c->cred) < 0 &&
            policy_check(rq->d, name, POLICY_REGISTER, &rq->c->cred) < 0)
                return -EACCES;
        if (s->n_watch >= NOTIFY_WATCH_MAX)
                return -EDQUOT;
        notify_watch *w = &s->watch[s->n_watch++];
        str_copy(w->name, name, sizeof(w->name));
        pid_t pid = 0;
        uid_t uid = 0;
        w->up = resolve_name_up(rq->d, name, &pid, &uid);
        pid = visible_pid(rq->c, pid, uid);
        /* Reply first, so the event follows the OK in the client's view. */
        request_reply_now(rq);
        if (w->up)
                sub_send(s, IPCF_EVENT_NAME_UP, name, 0, pid, 0, NULL);
        return 0;
}

static int notify_on_watch(request *rq) { return notify_set_watch(rq, true); }
static int notify_on_unwatch(request *rq) { return notify_set_watch(rq, false); }

/* A name may have come up or gone down: tell its watchers of a transition. */
static void notify_on_name(ipcfd *d, const observe_ev *ev) {
        if (d->shutdown || dlist_empty(&subs_list))
                return;
        pid_t pid = 0;
        uid_t uid = 0;
        bool up = resolve_name_up(d, ev->name, &pid, &uid);
        dlist_for_each(pos, &subs_list) {
                notify_sub *s = dlist_entry(pos, notify_sub, link);
                for (unsigned i = 0; i < s->n_watch; i++) {
                        notify_watch *w = &s->watch[i];
                        if (w->up == up || strcmp(w->name, ev->name) != 0)
                                continue;
                        w->up = up;
                        sub_send(s, up ? IPCF_EVENT_NAME_UP : IPCF_EVENT_NAME_DOWN, ev->name, 0,
                                 up ? visible_pid(s->c, pid, uid) : 0, 0, NULL);
                }
        }
}

/* A side of a flow ended: tell the client holding the other side. */
static void notify_on_flow_ended(ipcfd *d, const observe_ev *ev) {
        flow *f = ev->flow;
        int idx = ev->side;
        if (d->shutdown || dlist_empty(&subs_list))
                return;
        client *other = flow_side_client(&f->side[1 - idx]);
        if (!other)
                return;
        notify_sub *s = sub_find(other->id);
        if (!s)
                return;
        char reason[IPCF_REASON_MAX + 1];
        uint32_t code = flow_end_record(f, idx, reason);
        pid_t pid = f->side[idx].cred.pid;
        sub_send(s, code == IPCF_END_PEER_DIED ? IPCF_EVENT_PEER_DIED : IPCF_EVENT_FLOW_ENDED,
                 f->name, f->node.id, pid, code, reason);
}

static void sub_free(notify_sub *s) {
        idmap_del(&subs, &s->node);
        dlist_del(&s->link);
        dlist_del(&s->owner_link);
        safe_close(s->sock);
        free(s);
}

static void notify_on_client_gone(ipcfd *d, const observe_ev *ev) {
        notify_sub *s = sub_find(ev->client->id);
        if (s)
                sub_free(s);
}

void notify_shutdown(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &subs_list)
                sub_free(dlist_entry(pos, notify_sub, link));
        idmap_deinit(&subs);
}

int notify_init(ipcfd *d) {
        static const method methods[] = {
                { CTL_NOTIFY_OPEN, notify_on_open },
                { CTL_WATCH, notify_on_watch },
                { CTL_UNWATCH, notify_on_unwatch },
        };
        int r = subs_kind = client_hold_kind(d, "notification sockets");
        if (r >= 0)
                r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        if (r == 0)
                r = observe(d, OBSERVE_NAME_CHANGED, notify_on_name);
        if (r == 0)
                r = observe(d, OBSERVE_FLOW_ENDED, notify_on_flow_ended);
        if (r == 0)
                r = observe(d, OBSERVE_CLIENT_GONE, notify_on_client_gone);
        return r;
}
