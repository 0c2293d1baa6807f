/*
 * call.c — ipcf_call: the caller's side of service calls (B = LPC(S, A)).
 *
 * One call channel (a flow) per service per process, allocated on the first
 * call and kept. Several threads may call at once on one channel: each
 * registers a waiter (on its own stack) with its call id and reply buffer;
 * whichever thread holds the "reader" role reads replies and copies each one
 * straight into its waiter's buffer, then wakes it. A reply nobody waits for
 * (a call that timed out) is dropped. A call that gives up writes its id into
 * the channel's cancel slots (shared memory) so the service can see it.
 *
 * Locking: chans_lock guards the list of channels; each channel's lock guards
 * its waiters and the reader role. Data moves under the port's own locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "lib/callwire.h"
#include "lib/lib.h"

struct waiter {
        uint64_t id;
        void *buf;
        size_t cap;
        ssize_t result;   /* reply length or -errno; valid when done */
        int code;         /* CALL_FAIL's code */
        bool done;
        struct waiter *next;
};

typedef struct channel {
        char name[IPCF_NAME_MAX + 1];
        int ph;                      /* -1 while none / after it broke */
        _Atomic uint64_t next_id;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool reading;                  /* a thread reads replies for everyone */
        struct waiter *waiters;
        struct channel *next;
} channel;

static pthread_mutex_t chans_lock = PTHREAD_MUTEX_INITIALIZER;
static channel *chans;
static _Thread_local int last_call_error;

int ipcf_call_error(void) {
        return last_call_error;
}

static channel *channel_find(const char *name) {
        pthread_mutex_lock(&chans_lock);
        channel *c = chans;
        while (c && strcmp(c->name, name) != 0)
                c = c->next;
        if (!c && (c = calloc(1, sizeof(*c)))) {
                str_copy(c->name, name, sizeof(c->name));
                c->ph = -1;
                atomic_init(&c->next_id, 1);
                pthread_mutex_init(&c->lock, NULL);
                pthread_condattr_t ca;
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&c->cond, &ca);
                pthread_condattr_destroy(&ca);
                c->next = chans;
                chans = c;
        }
        pthread_mutex_unlock(&chans_lock);
        return c;
}

/* The channel's port, allocating it if needed (under c->lock). */
static int channel_port(channel *c, int timeout_ms) {
        if (c->ph >= 0)
                return c->ph;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = IPCF_CALL_MAX + sizeof(struct call_hdr);
        q.reserved0 = CTL_ROLE_CALL;
        int r = ipcf_alloc(c->name, &q, timeout_ms, NULL);
        if (r >= 0)
                c->ph = r;
        return r;
}

/* A broken channel is dropped; the next call allocates a new one. */
static void channel_drop(channel *c, int ph) {
        if (c->ph == ph) {
                c->ph = -1;
                ipcf_dealloc(ph, "channel broken");
        }
}

static struct waiter *waiter_take(channel *c, uint64_t id) {
        for (struct waiter **w = &c->waiters; *w; w = &(*w)->next)
                if ((*w)->id == id) {
                        struct waiter *found = *w;
                        *w = found->next;
                        return found;
                }
        return NULL;
}

struct dispatch {
        channel *c;
};

/* Reader: one reply frame -> its waiter. Runs under the port's read lock. */
static ssize_t dispatch_reply(void *arg, const void *data, size_t len) {
        channel *c = ((struct dispatch *)arg)->c;
        struct call_hdr h;
        if (len < sizeof(h))
                return -EPROTO;
        memcpy(&h, data, sizeof(h));
        if (h.kind != CALL_REPLY && h.kind != CALL_FAIL)
                return -EPROTO;
        size_t body = len - sizeof(h);
        pthread_mutex_lock(&c->lock);
        struct waiter *w = waiter_take(c, h.id);
        if (w) {
                if (h.kind == CALL_FAIL) {
                        w->result = -EREMOTEIO;
                        w->code = h.code;
                } else if (body > w->cap) {
                        w->result = -EMSGSIZE;
                } else {
                        memcpy(w->buf, (const uint8_t *)data + sizeof(h), body);
                        w->result = (ssize_t)body;
                }
                w->done = true;
                pthread_cond_broadcast(&c->cond);
        }
        pthread_mutex_unlock(&c->lock);
        return 0; /* consumed, even if nobody waited (a late reply) */
}

static void cancel_call(int ph, uint64_t id) {
        port *p = handle_get_port(ph);
        if (!p)
                return;
        if (p->side == 0) {
                struct flow_cancel *fc = &p->hdr->cancel;
                uint64_t n = atomic_fetch_add(&fc->next, 1);
                atomic_store(&fc->ids[n % FLOW_CANCEL_SLOTS], id);
        }
        handle_put(p);
}

static void abs_time(struct timespec *ts, uint64_t deadline) {
        ts->tv_sec = (time_t)(deadline / 1000000000u);
        ts->tv_nsec = (long)(deadline % 1000000000u);
}

/* Wait for w: as the reader, or for the reader to hand us our reply. */
static ssize_t await_reply(channel *c, int ph, struct waiter *w, uint64_t deadline) {
        pthread_mutex_lock(&c->lock);
        for (;;) {
                if (w->done)
                        break;
                if (!c->reading) {
                        c->reading = true;
                        pthread_mutex_unlock(&c->lock);
                        port *p = handle_get_port(ph);
                        ssize_t r = -EPIPE;
                        if (p) {
                                struct dispatch d = { c };
                                r = port_read_with(p, deadline_poll_ms(deadline), dispatch_reply, &d);
                                handle_put(p);
                        }
                        pthread_mutex_lock(&c->lock);
                        c->reading = false;
                        pthread_cond_broadcast(&c->cond);
                        if (r < 0 && !w->done) {
                                /* The channel failed (or our time is up): every
                                 * waiter learns it; a timeout only ours. */
                                if (r == -ETIMEDOUT || r == -EAGAIN) {
                                        if (now_ns() < deadline)
                                                continue;
                                        waiter_take(c, w->id);
                                        w->result = -ETIMEDOUT;
                                        w->done = true;
                                } else {
                                        for (struct waiter *o; (o = c->waiters);) {
                                                c->waiters = o->next;
                                                o->result = r;
                                                o->done = true;
                                        }
                                        pthread_cond_broadcast(&c->cond);
                                }
                        }
                        continue;
                }
                struct timespec ts;
                abs_time(&ts, deadline);
                if (deadline == UINT64_MAX)
                        pthread_cond_wait(&c->cond, &c->lock);
                else if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT &&
                         !w->done) {
                        waiter_take(c, w->id);
                        w->result = -ETIMEDOUT;
                        w->done = true;
                }
        }
        pthread_mutex_unlock(&c->lock);
        return w->result;
}

ssize_t ipcf_call(const char *name, const void *req, size_t len, void *reply, size_t cap,
                  int timeout_ms) {
        if (!ctl_name_valid(name) || (!req && len) || (!reply && cap) || timeout_ms == 0 ||
            timeout_ms < -1)
                return -EINVAL;
        if (len > IPCF_CALL_MAX)
                return -EMSGSIZE;
        channel *c = channel_find(name);
        if (!c)
                return -ENOMEM;
        uint64_t deadline = deadline_from_timeout(timeout_ms);

        pthread_mutex_lock(&c->lock);
        int ph = channel_port(c, timeout_ms);
        pthread_mutex_unlock(&c->lock);
        if (ph < 0)
                return ph;

        struct waiter w = { .id = atomic_fetch_add(&c->next_id, 1), .buf = reply, .cap = cap };
        pthread_mutex_lock(&c->lock);
        w.next = c->waiters;
        c->waiters = &w;
        pthread_mutex_unlock(&c->lock);

        struct call_hdr h = { .id = w.id, .kind = CALL_REQ };
        port *p = handle_get_port(ph);
        ssize_t r = p ? port_write2(p, &h, sizeof(h), req, len, deadline_poll_ms(deadline)) : -EPIPE;
        if (p)
                handle_put(p);
        if (r >= 0)
                r = await_reply(c, ph, &w, deadline);
        else {
                pthread_mutex_lock(&c->lock);
                waiter_take(c, w.id);
                pthread_mutex_unlock(&c->lock);
        }
        if (r == -ETIMEDOUT)
                cancel_call(ph, w.id);
        if (r == -EREMOTEIO)
                last_call_error = w.code;
        if (r == -EPIPE || r == -ECONNRESET || r == -EPROTO || r == -EBADF) {
                pthread_mutex_lock(&c->lock);
                channel_drop(c, ph);
                pthread_mutex_unlock(&c->lock);
                if (r == -EBADF)
                        r = -EPIPE;
        }
        return r;
}
