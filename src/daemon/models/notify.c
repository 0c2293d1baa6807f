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
 *                        of a name that is up reports NAME_UP at once.
 *   FLOW_ENDED           to the holder of the other side of a flow whose side
 *                        ended (code and reason as written in the region)
 *   PEER_DIED            the same, when the side ended by its process' death
 *
 * BOUNDS: one socket per client, NOTIFY_WATCH_MAX watches per client.
 * Who may call: client.c (dispatch, death) and the hooks in models.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/flows/flow.h"
#include "daemon/core/log.h"
#include "daemon/models/models.h"
#include "daemon/names/registry.h"

typedef struct notify_watch {
        char name[IPCF_NAME_MAX + 1];
        bool up;                     /* last reported state */
} notify_watch;

typedef struct notify_sub {
        struct idmap_node node;      /* node.id: the client's id */
        struct dlist link;           /* models.sub_list */
        struct client *c;
        int sock;                    /* our end, non-blocking; -1 if it broke */
        uint32_t lost;               /* events that did not fit since the last sent */
        unsigned n_watch;
        notify_watch watch[NOTIFY_WATCH_MAX];
} notify_sub;

static notify_sub *sub_find(ipcfd *d, uint64_t client_id) {
        models *ms = models_of(d);
        struct idmap_node *n = ms ? idmap_find(&ms->subs, client_id) : NULL;
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

int notify_handle_open(client *c, const ctl_msg *m) {
        ipcfd *d = c->d;
        models *ms = models_of(d);
        if (!ms)
                return client_reply_error(c, m->seq, -ENOMEM), 0;
        notify_sub *s = sub_find(d, c->id);
        if (s && s->sock >= 0)
                return client_reply_error(c, m->seq, -EALREADY), 0;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return client_reply_error(c, m->seq, errno == EMFILE || errno == ENFILE ? -EMFILE : -errno), 0;
        int fl = fcntl(sv[0], F_GETFL);
        if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
                close(sv[0]);
                close(sv[1]);
                return client_reply_error(c, m->seq, -EMFILE), 0;
        }
        shutdown(sv[0], SHUT_RD); /* the client never writes to us */
        bool fresh = !s;
        if (fresh) {
                s = calloc(1, sizeof(*s));
                if (!s || (s->node.id = c->id, idmap_add(&ms->subs, &s->node) < 0)) {
                        free(s);
                        close(sv[0]);
                        close(sv[1]);
                        return client_reply_error(c, m->seq, -ENOMEM), 0;
                }
                s->c = c;
                dlist_add_tail(&ms->sub_list, &s->link);
        }
        s->sock = sv[0];
        ctl_builder *b = malloc(sizeof(*b));
        int r = -ENOMEM;
        if (b) {
                ctl_begin(b, CTL_OK, m->seq);
                r = client_send(c, b, &sv[1], 1);
                free(b);
        }
        close(sv[1]);
        if (r < 0 && !b)
                client_reply_error(c, m->seq, r);
        /* Watches made before the socket (none in practice): report now. */
        for (unsigned i = 0; i < s->n_watch; i++)
                if (s->watch[i].up)
                        sub_send(s, IPCF_EVENT_NAME_UP, s->watch[i].name, 0, 0, 0, NULL);
        return 0;
}

bool notify_name_is_up(ipcfd *d, const char *name, pid_t *ret_pid) {
        dlist_for_each(pos, &d->regs) {
                reg *g = dlist_entry(pos, reg, link);
                if (strcmp(g->name, name) == 0 && !g->owner->dying) {
                        if (ret_pid)
                                *ret_pid = g->owner->cred.pid;
                        return true;
                }
        }
        if (ret_pid)
                *ret_pid = d->pid;
        return mbox_exists(d, name) || mcast_exists(d, name);
}

int notify_handle_watch(client *c, const ctl_msg *m, bool on) {
        ipcfd *d = c->d;
        const char *name;
        int r = ctl_get_str(m, CTL_A_NAME, CTL_MSG_MAX, &name);
        if (r == -EBADMSG)
                return r;
        if (r < 0 || !ctl_name_valid(name))
                return client_reply_error(c, m->seq, -EINVAL), 0;
        notify_sub *s = sub_find(d, c->id);
        if (!s || s->sock < 0)
                /* Open the notification socket first (the library does). */
                return client_reply_error(c, m->seq, -ENOTCONN), 0;
        unsigned i;
        for (i = 0; i < s->n_watch; i++)
                if (strcmp(s->watch[i].name, name) == 0)
                        break;
        if (!on) {
                if (i == s->n_watch)
                        return client_reply_error(c, m->seq, -ENOENT), 0;
                s->watch[i] = s->watch[--s->n_watch];
                client_reply_ok(c, m->seq);
                return 0;
        }
        if (i < s->n_watch) {
                client_reply_ok(c, m->seq); /* already watched */
                return 0;
        }
        if (s->n_watch >= NOTIFY_WATCH_MAX)
                return client_reply_error(c, m->seq, -EDQUOT), 0;
        notify_watch *w = &s->watch[s->n_watch++];
        str_copy(w->name, name, sizeof(w->name));
        pid_t pid = 0;
        w->up = notify_name_is_up(d, name, &pid);
        /* Reply first, so the event follows the OK in the client's view. */
        client_reply_ok(c, m->seq);
        if (w->up)
                sub_send(s, IPCF_EVENT_NAME_UP, name, 0, pid, 0, NULL);
        return 0;
}

void notify_name(ipcfd *d, const char *name, bool up, pid_t pid) {
        models *ms = d->models;
        if (!ms || d->shutdown)
                return;
        dlist_for_each(pos, &ms->sub_list) {
                notify_sub *s = dlist_entry(pos, notify_sub, link);
                for (unsigned i = 0; i < s->n_watch; i++) {
                        notify_watch *w = &s->watch[i];
                        if (w->up == up || strcmp(w->name, name) != 0)
                                continue;
                        w->up = up;
                        sub_send(s, up ? IPCF_EVENT_NAME_UP : IPCF_EVENT_NAME_DOWN, name, 0,
                                 up ? pid : 0, 0, NULL);
                }
        }
}

void models_name_changed(ipcfd *d, const char *name) {
        if (!d->models || d->shutdown)
                return;
        pid_t pid = 0;
        bool up = notify_name_is_up(d, name, &pid);
        notify_name(d, name, up, pid);
}

void models_flow_side_ended(flow *f, int idx) {
        ipcfd *d = f->d;
        if (!d->models || d->shutdown)
                return;
        flow_side *other = &f->side[1 - idx];
        if (!other->open || !other->owner)
                return;
        notify_sub *s = sub_find(d, other->owner->id);
        if (!s)
                return;
        /* The end record as written (by the side, or by the daemon for it):
         * copied out of shared memory and cut to a clean string. */
        struct flow_end *e = &flow_hdr_of(f->hdr)->end[idx];
        uint32_t code = atomic_load_explicit(&e->code, memory_order_acquire);
        char reason[IPCF_REASON_MAX + 1];
        memcpy(reason, e->reason, sizeof(reason));
        reason[IPCF_REASON_MAX] = 0;
        for (char *p = reason; *p; p++)
                if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
                        *p = '?';
        if (code < IPCF_END_DEALLOC || code > IPCF_END_PROTOCOL)
                code = IPCF_END_DEALLOC;
        pid_t pid = f->side[idx].cred.pid;
        sub_send(s, code == IPCF_END_PEER_DIED ? IPCF_EVENT_PEER_DIED : IPCF_EVENT_FLOW_ENDED,
                 f->name, f->node.id, pid, code, reason);
}

static void sub_free(models *ms, notify_sub *s) {
        idmap_del(&ms->subs, &s->node);
        dlist_del(&s->link);
        safe_close(s->sock);
        free(s);
}

void notify_client_gone(client *c) {
        models *ms = c->d->models;
        notify_sub *s = ms ? sub_find(c->d, c->id) : NULL;
        if (s)
                sub_free(ms, s);
}

void notify_free_all(ipcfd *d) {
        models *ms = d->models;
        if (!ms)
                return;
        dlist_for_each_safe(pos, tmp, &ms->sub_list)
                sub_free(ms, dlist_entry(pos, notify_sub, link));
}
