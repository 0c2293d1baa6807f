/*
 * dgram.c — datagram endpoints: SEND_DG(m, name) without a flow of one's own.
 *
 * An endpoint is an inbox (inbox.c) of role DGRAM: the datagrams sent to its
 * name arrive on channels the daemon accepted on its behalf, and the answers
 * to its own datagrams arrive on its outgoing channels, which it adds to the
 * same inbox. Outgoing channels are made on the first send to a name and
 * kept; a channel whose peer is gone is replaced at the next send. A datagram
 * that finds a full queue waits the sender's timeout, then is dropped and
 * counted — in the endpoint and in the channel's shared memory, where the
 * daemon reads it for `ipcf ls`; so are the datagrams a receiver that went
 * away never took (counted when the sender next sends or asks for its
 * drops). Datagrams are raw messages: no header.
 *
 * Locking: out_lock guards the list of outgoing channels (never held while
 * waiting); the inbox has its own lock; data moves under the ports' locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lib/core/lib.h"
#include "lib/models/inbox.h"

/* The first send to a name makes its channel: a round trip to the daemon
 * (the receiver's side is accepted there), allowed this long even when the
 * send itself must not wait for room. */
#define DGRAM_CHANNEL_TIMEOUT_MS 5000

struct dgram_out {
        char name[IPCF_NAME_MAX + 1];  /* the destination */
        int ph;                        /* our channel to it (also in the inbox) */
        port *p;                       /* with a reference held */
};

typedef struct dgram_ep {
        inbox box;                     /* channels to us, and ours (for answers) */
        pthread_mutex_t out_lock;      /* guards outs */
        struct dgram_out *outs;
        unsigned n_outs, cap_outs;
        _Atomic uint64_t drops;
} dgram_ep;

/* Let go of the outgoing list's references (the inbox holds the channels). */
static void outs_drop(dgram_ep *e) {
        pthread_mutex_lock(&e->out_lock);
        for (unsigned i = 0; i < e->n_outs; i++)
                handle_put(e->outs[i].p);
        e->n_outs = 0;
        pthread_mutex_unlock(&e->out_lock);
}

/* ipcf_dealloc of an endpoint: end its channels, unregister its name. */
static void dgram_end(void *obj, const char *reason) {
        dgram_ep *e = obj;
        inbox_close_all(&e->box, reason ? reason : "endpoint closed");
        outs_drop(e);
}

static int dgram_fd(void *obj) {
        return inbox_fd(&((dgram_ep *)obj)->box);
}

static void dgram_destroy(void *obj) {
        dgram_ep *e = obj;
        outs_drop(e);
        inbox_deinit(&e->box);
        free(e->outs);
        pthread_mutex_destroy(&e->out_lock);
}

static int dgram_detach(void *obj) {
        return inbox_detach(&((dgram_ep *)obj)->box);
}

static const handle_kind dgram_kind = {
        .name = "datagram endpoint",
        .end = dgram_end,
        .fd = dgram_fd,
        .destroy = dgram_destroy,
        .detach = dgram_detach,
};

int ipcf_dgram_open(const char *name, const ipcf_reg_opts *opts) {
        if (name && !ctl_name_valid(name))
                return -EINVAL;
        int h;
        dgram_ep *e = handle_alloc(&dgram_kind, sizeof(*e), &h);
        if (!e)
                return -EMFILE;
        int r = inbox_init(&e->box, name, opts, CTL_ROLE_DGRAM);
        if (r < 0) {
                handle_abort(e);
                return r;
        }
        pthread_mutex_init(&e->out_lock, NULL);
        handle_publish(e);
        return h;
}

/* A channel whose receiver has gone: the datagrams it never took are
 * dropped, and counted as such (here and in the channel's counters). Our
 * own count of what we wrote bounds the receiver's count of what it read,
 * which its side of the memory holds and we do not trust. */
static void out_count_untaken(dgram_ep *e, port *p) {
        plock_lock(&p->wlock);
        uint64_t written = p->prod.msgs;
        uint64_t read = atomic_load_explicit(&p->prod.ctl->msgs_r, memory_order_acquire);
        plock_unlock(&p->wlock);
        uint64_t untaken = written - MIN(read, written);
        if (untaken) {
                atomic_fetch_add(&p->prod.ctl->drops, untaken);
                atomic_fetch_add(&e->drops, untaken);
        }
}

/* Forget the dead outgoing channels, counting what their receivers never
 * took (the inbox ends them when it notices). With look_at_pids, also those
 * whose receiver's process exited though nobody said so (the daemon, which
 * would have, is gone too): one poll each. Also those inherited across
 * fork() that another process of the endpoint's family writes (family.c:
 * the inbox no longer marks them its own): the next send makes its own.
 * Under out_lock. */
static void outs_reap(dgram_ep *e, bool look_at_pids) {
        for (unsigned i = 0; i < e->n_outs;) {
                struct dgram_out *o = &e->outs[i];
                bool foreign = atomic_load(&o->p->owner) != &e->box;
                if (!foreign && port_end_error(o->p) == 0 && !(look_at_pids && port_peer_exited(o->p))) {
                        i++;
                        continue;
                }
                if (!foreign)
                        out_count_untaken(e, o->p);
                handle_put(o->p);
                e->outs[i] = e->outs[--e->n_outs];
        }
}

/* Our live channel to dest, with a reference for the caller, or NULL. Under
 * out_lock. */
static port *out_find(dgram_ep *e, const char *dest) {
        outs_reap(e, false);
        for (unsigned i = 0; i < e->n_outs; i++) {
                struct dgram_out *o = &e->outs[i];
                if (strcmp(o->name, dest) == 0) {
                        handle_ref(o->p);
                        return o->p;
                }
        }
        return NULL;
}

/* Make a channel to dest and remember it; returns it with a reference. */
static port *out_make(dgram_ep *e, const char *dest, int timeout_ms, int *ret_err) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        int t = timeout_ms < 0 || timeout_ms > DGRAM_CHANNEL_TIMEOUT_MS ? timeout_ms
                                                                        : DGRAM_CHANNEL_TIMEOUT_MS;
        int ph = alloc_role(dest, &q, CTL_ROLE_DGRAM, t, NULL);
        if (ph < 0) {
                *ret_err = ph;
                return NULL;
        }
        port *p = handle_get_port(ph);
        int r = p ? inbox_add(&e->box, ph) : -EBADF;
        pthread_mutex_lock(&e->out_lock);
        if (r == 0 && e->n_outs == e->cap_outs) {
                unsigned cap = e->cap_outs ? e->cap_outs * 2 : 8;
                struct dgram_out *a = realloc(e->outs, cap * sizeof(*a));
                if (a) {
                        e->outs = a;
                        e->cap_outs = cap;
                } else {
                        r = -ENOMEM;
                }
        }
        if (r == 0) {
                struct dgram_out *o = &e->outs[e->n_outs++];
                str_copy(o->name, dest, sizeof(o->name));
                o->ph = ph;
                o->p = p;
                handle_ref(p); /* one for the list, one for the caller */
        }
        pthread_mutex_unlock(&e->out_lock);
        if (r < 0) {
                if (p)
                        handle_put(p);
                ipcf_dealloc(ph, "cannot keep the channel");
                *ret_err = r;
                return NULL;
        }
        return p;
}

/* Write one datagram on p; a full queue past the timeout is a counted drop. */
static ssize_t dgram_put(dgram_ep *e, port *p, const void *buf, size_t len, int timeout_ms) {
        ssize_t r = port_write2(p, buf, len, NULL, 0, timeout_ms);
        if (r == -EAGAIN || r == -ETIMEDOUT) {
                atomic_fetch_add(&p->prod.ctl->drops, 1);
                atomic_fetch_add(&e->drops, 1);
        }
        return r;
}

ssize_t ipcf_dgram_send(int ep, const char *dest, const void *buf, size_t len, int timeout_ms) {
        if (!ctl_name_valid(dest) || (!buf && len) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        if (len > QOS_DEFAULT_MAX_MSG)
                return -EMSGSIZE;
        dgram_ep *e = handle_get(ep, &dgram_kind);
        if (!e)
                return -EBADF;
        /* In a process fork() made, the channels it inherited are not ours
         * (outs_reap). */
        ssize_t r = inbox_adopt(&e->box);
        if (r < 0) {
                handle_put(e);
                return r;
        }
        /* A second try only if the first channel turned out dead. */
        for (int attempt = 0; attempt < 2; attempt++) {
                pthread_mutex_lock(&e->out_lock);
                port *p = out_find(e, dest);
                pthread_mutex_unlock(&e->out_lock);
                int err = 0;
                if (!p && !(p = out_make(e, dest, timeout_ms, &err))) {
                        r = err;
                        break;
                }
                r = dgram_put(e, p, buf, len, timeout_ms);
                handle_put(p);
                if (r != -EPIPE && r != -ECONNRESET)
                        break;
        }
        handle_put(e);
        return r;
}

struct recv_ctx {
        void *buf;
        size_t cap;
        size_t len;
};

static ssize_t take_datagram(void *arg, const void *data, size_t len) {
        struct recv_ctx *t = arg;
        t->len = len;
        if (len > t->cap)
                return -EMSGSIZE; /* kept */
        memcpy(t->buf, data, len);
        return (ssize_t)len;
}

ssize_t ipcf_dgram_recv(int ep, void *buf, size_t cap, int timeout_ms, ipcf_dgram_src *ret_src) {
        if ((!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        dgram_ep *e = handle_get(ep, &dgram_kind);
        if (!e)
                return -EBADF;
        struct recv_ctx t = { buf, cap, 0 };
        port *p = NULL;
        ssize_t r = inbox_take(&e->box, take_datagram, &t, timeout_ms, &p);
        if (r >= 0 || r == -EMSGSIZE) {
                if (ret_src) {
                        memset(ret_src, 0, sizeof(*ret_src));
                        ret_src->from = p->peer;
                        ret_src->token = handle_token(p);
                }
                handle_put(p);
        }
        handle_put(e);
        return r;
}

ssize_t ipcf_dgram_answer(int ep, const ipcf_dgram_src *src, const void *buf, size_t len,
                          int timeout_ms) {
        if (!src || (!buf && len) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        if (len > QOS_DEFAULT_MAX_MSG)
                return -EMSGSIZE;
        dgram_ep *e = handle_get(ep, &dgram_kind);
        if (!e)
                return -EBADF;
        ssize_t r;
        int err;
        port *p = inbox_chan_of_token(&e->box, src->token, &err);
        if (p) {
                r = dgram_put(e, p, buf, len, timeout_ms);
                handle_put(p);
        } else {
                r = err;
        }
        handle_put(e);
        return r;
}

int ipcf_dgram_drops(int ep, uint64_t *ret) {
        if (!ret)
                return -EINVAL;
        dgram_ep *e = handle_get(ep, &dgram_kind);
        if (!e)
                return -EBADF;
        /* Receivers gone since the last send: what they never took counts. */
        pthread_mutex_lock(&e->out_lock);
        outs_reap(e, true);
        pthread_mutex_unlock(&e->out_lock);
        *ret = atomic_load(&e->drops);
        handle_put(e);
        return 0;
}
