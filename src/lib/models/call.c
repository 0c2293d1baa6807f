/*
 * call.c — ipcf_call: the caller's side of service calls (B = LPC(S, A)).
 *
 * One call channel (a flow) per service per process, allocated on the first
 * call and kept. Several calls may be in progress on one channel (from several
 * threads, or started asynchronously): each has a waiter in the channel's
 * list with its call id and reply buffer; whichever thread holds the "reader"
 * role reads replies and copies each one straight into its waiter's buffer,
 * then wakes the threads waiting for that call (only them); when the reader
 * leaves, the others are woken so that one takes the role. A reply nobody
 * waits for (a cancelled call) is dropped. A cancelled call's id goes into
 * the channel's cancel slots (shared memory) so the service can see it.
 *
 * Ownership: a waiter is heap-allocated and belongs to the channel's list
 * (under the channel's lock) from start to finish; it is named to the user
 * by (channel token, id), never by pointer, so a stale name finds nothing.
 * It is freed by whoever finishes the call while no thread waits for it: a
 * wait that takes the result, or a cancel. A request that finds its kept
 * channel broken (the service restarted or went since the last call) was
 * not written: it goes once on a new channel. Channels live as long as the
 * process; the token of one is its number and a random salt, checked before
 * use, so a forged token (-EINVAL) never reaches a channel.
 *
 * Locking: chans_lock guards the list of channels; each channel's lock guards
 * its waiters and the reader role. Data moves under the port's own locks.
 * Threads that wait for the reader sleep on the channel's event (event.h),
 * not a condition variable: glibc's broadcast could wait, with the channel's
 * lock held, for a waiter that was not running, and hold every other call
 * past its timeout meanwhile. Wakes come after the lock is let go
 * (channel_unlock), so a woken thread does not find it held.
 *
 * FORK. A channel is its process's: a child of fork() holds a copy of each
 * of its parent's, which it must not use (two processes writing one port
 * corrupt its queue, and either would read the other's replies). In the
 * child (atfork_child, with chans_lock taken in atfork_prepare so the list is
 * whole) each channel forgets its port, which its next call detaches (the
 * child's copy goes; the parent's channel is not ended) before making the
 * child's own, and drops its waiters: they are the parent's calls, of
 * threads the child does not have (a call started before the fork is the
 * parent's: in the child its wait finds nothing, -ECANCELED). The reader
 * role and the event (its count of sleepers) are made fresh. A channel's
 * lock that a parent thread held at the fork is made fresh too, not taken
 * in atfork_prepare (a thread holds it through a whole allocation, and
 * fork() would wait that long): everything it guards is replaced in the
 * child without being read, and the waiters it guarded are left unfreed
 * (the list may have been mid-change). The call path checks nothing.
 *
 * STALE NUMBERS. A channel names its port by token (handle_token), not only
 * by number: a process may close a number it did not make (a loop detaching
 * every inherited handle, a stale number), and the number then goes to a
 * port of the user's. Every use of the port (the write, the reader's read,
 * a cancel, a kick, the dealloc of a broken channel, a child's detach of its
 * copy of the parent's) looks it up by token (handle_get_token: the lookup
 * by number plus one comparison of generations): a port gone since is a
 * broken channel (the request, not written, goes once on a new one; a call
 * that was waiting on it fails -EPIPE), and whatever holds its number now
 * is never written, read, ended nor closed.
 *
 * Speed: a call reads the clock once (its deadline, passed down to the
 * port's write and read: port_write2_by, port_read_with_by), allocates
 * nothing once its channel has had a call (the channel keeps a finished
 * waiter for the next), and a thread finds the channel it called last (by
 * name or token) without chans_lock: channels are never freed, and a
 * channel's name and token never change once it is listed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/util.h"
#include "lib/models/callwire.h"
#include "lib/models/service.h"
#include "lib/core/event.h"
#include "lib/core/lib.h"

struct waiter {
        uint64_t id;
        void *buf;
        size_t cap;
        ssize_t result;   /* reply length or -errno; valid when done */
        int code;         /* CALL_FAIL's code */
        bool done;
        unsigned waiting; /* threads inside ipcf_call_wait for it */
        uint64_t pt;      /* the token of the channel's port when it was sent */
        uint64_t group;   /* call_start_on's: the calls of one RPC (0: none) */
        struct waiter *next;
};

typedef struct channel {
        char name[IPCF_NAME_MAX + 1];
        uint64_t token;              /* number << 32 | salt: ipcf_pending.token */
        int ph;                      /* -1 while none / after it broke */
        uint64_t pt;                 /* its token: the port, not whatever holds ph now */
        bool parent_copy;            /* a child of fork(): it holds a copy of the parent's
                                      * port, detached before its own is made */
        uint64_t parent_pt;          /* that port's token */
        uint64_t gen;                /* bumped for each port: which one a call went on */
        _Atomic uint64_t next_id;
        pthread_mutex_t lock;
        event changed;                 /* a waiter finished, the reader left (CHAN_*) */
        bool reading;                  /* a thread reads replies for everyone */
        struct waiter *waiters;
        struct waiter *spare;          /* a finished waiter kept for the next call */
        struct channel *next;
} channel;

/* Who a note of a channel's event wakes (event.h): the threads waiting
 * for a call whose id or group is the bit (mod 31), or all of them when the
 * reader role is free. */
#define CHAN_READER (1u << 31)
static uint32_t chan_bit(uint64_t n) {
        return 1u << (n % 31);
}

/* The sleepers a change of w concerns: its own, and its group's. */
static uint32_t waiter_bits(const struct waiter *w) {
        return chan_bit(w->id) | (w->group ? chan_bit(w->group) : 0);
}

/* Let go of c->lock, waking the sleepers of what changed meanwhile. */
static void channel_unlock(channel *c) {
        event_unlock(&c->changed, &c->lock);
}

static pthread_mutex_t chans_lock = PTHREAD_MUTEX_INITIALIZER;
static channel *chans;
/* The channel this thread called last: a call to the same service finds it
 * without chans_lock (channels live as long as the process; a name never
 * changes once the channel is listed). */
static __thread channel *last_chan;
static channel **chan_by_no;      /* chan_by_no[n - 1]: the channel numbered n */
static uint32_t n_chans, cap_chans;

/* A salt for a new channel's token. */
static uint32_t token_salt(void) {
        uint32_t v;
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
                v = (uint32_t)now_ns() ^ (uint32_t)(uintptr_t)&v;
        return v;
}

/* Number and keep a new channel (under chans_lock). */
static int channel_number(channel *c) {
        if (n_chans == cap_chans) {
                uint32_t cap = cap_chans ? cap_chans * 2 : 8;
                channel **a = realloc(chan_by_no, cap * sizeof(*a));
                if (!a)
                        return -ENOMEM;
                chan_by_no = a;
                cap_chans = cap;
        }
        chan_by_no[n_chans++] = c;
        c->token = (uint64_t)n_chans << 32 | token_salt();
        return 0;
}

/* The channel a pending call's token names, or NULL (not a token of ours). */
static channel *channel_of_token(uint64_t token) {
        channel *c = last_chan; /* (a token never changes once made) */
        if (c && c->token == token)
                return c;
        c = NULL;
        uint32_t no = (uint32_t)(token >> 32);
        pthread_mutex_lock(&chans_lock);
        if (no >= 1 && no <= n_chans && chan_by_no[no - 1]->token == token)
                c = chan_by_no[no - 1];
        pthread_mutex_unlock(&chans_lock);
        return c;
}

/* FORK: the list of channels is whole in the child (no thread of the parent
 * is inside chans_lock at the fork). */
static void atfork_prepare(void) {
        pthread_mutex_lock(&chans_lock);
}

static void atfork_parent(void) {
        pthread_mutex_unlock(&chans_lock);
}

/* In the child (its one thread is the one that forked, which is in no call
 * of ours): each channel lets go of what is its parent's (FORK). */
static void atfork_child(void) {
        for (channel *c = chans; c; c = c->next) {
                if (pthread_mutex_trylock(&c->lock) == 0) {
                        /* nobody was changing it: the parent's waiters are freed */
                        for (struct waiter *w = c->waiters, *n; w; w = n) {
                                n = w->next;
                                free(w);
                        }
                        pthread_mutex_unlock(&c->lock);
                } else {
                        /* held by a thread the child does not have */
                        pthread_mutex_init(&c->lock, NULL);
                        c->spare = NULL;
                }
                c->waiters = NULL;
                c->reading = false;
                /* parent threads may have slept on it: none sleeps here */
                memset(&c->changed, 0, sizeof(c->changed));
                if (c->ph >= 0) {
                        c->parent_copy = true;
                        c->parent_pt = c->pt;
                        c->ph = -1;
                        c->gen++; /* a call pinned to the parent's port: -ECONNRESET */
                }
        }
        pthread_mutex_unlock(&chans_lock);
}

__attribute__((constructor)) static void call_init(void) {
        pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static channel *channel_find(const char *name) {
        channel *l = last_chan;
        if (l && strcmp(l->name, name) == 0)
                return l;
        pthread_mutex_lock(&chans_lock);
        channel *c = chans;
        while (c && strcmp(c->name, name) != 0)
                c = c->next;
        if (!c && (c = calloc(1, sizeof(*c)))) {
                if (channel_number(c) < 0) {
                        free(c);
                        pthread_mutex_unlock(&chans_lock);
                        return NULL;
                }
                str_copy(c->name, name, sizeof(c->name));
                c->ph = -1;
                atomic_init(&c->next_id, 1);
                pthread_mutex_init(&c->lock, NULL);
                c->next = chans;
                chans = c;
        }
        pthread_mutex_unlock(&chans_lock);
        if (c)
                last_chan = c;
        return c;
}

/* The channel's port, allocating it within deadline if needed (under
 * c->lock). */
static int channel_port(channel *c, uint64_t deadline) {
        if (c->ph >= 0)
                return c->ph;
        if (c->parent_copy) {
                /* our copy of the parent's port goes; the parent's stays (FORK) */
                port *pp = handle_close_token(c->parent_pt, &port_kind);
                if (pp)
                        handle_put(pp);
                c->parent_copy = false;
        }
        int timeout_ms = deadline_poll_ms(deadline);
        if (timeout_ms == 0)
                return -ETIMEDOUT;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = IPCF_CALL_MAX + sizeof(struct call_hdr);
        int r = alloc_role(c->name, &q, CTL_ROLE_CALL, timeout_ms, NULL);
        if (r < 0)
                return r;
        /* Many callers of one service may share a CPU: while the service
         * shows CALL_RUN_BUSY (many callers), a caller's wait for its reply
         * lets the others run (wait.c). Nobody else knows the port yet. */
        port *p = handle_get_port(r);
        if (!p)
                return -EPIPE; /* the user closed its number already */
        p->spin_yield_mark = CALL_RUN_BUSY;
        c->pt = handle_token(p);
        handle_put(p);
        c->ph = r;
        c->gen++;
        return r;
}

/* A broken channel is dropped; the next call allocates a new one. The
 * daemon is told without waiting for its answer (the call's result is
 * known; a daemon that is not told in time sees the port's ears hang up when
 * its descriptors close and ends the side itself): a stopped daemon held a
 * call with a 1 s timeout, and every other call on the channel's lock, for
 * IPCF_REQUEST_TIMEOUT_MS (30 s). */
static void channel_drop(channel *c, uint64_t pt) {
        if (c->ph >= 0 && c->pt == pt) {
                c->ph = -1;
                port_dealloc_token_by(pt, "channel broken", 0);
        }
}

/* The port token pt names, with a reference, or NULL: gone, even if its
 * number holds another port now (STALE NUMBERS). */
static port *chan_port_get(uint64_t pt) {
        int err;
        return handle_get_token(pt, &port_kind, &err);
}

static struct waiter *waiter_find(channel *c, uint64_t id) {
        for (struct waiter *w = c->waiters; w; w = w->next)
                if (w->id == id)
                        return w;
        return NULL;
}

/* Unlink and free w (under c->lock, nobody waiting for it): kept as the
 * channel's spare if it has none (a call allocates nothing then). */
static void waiter_free(channel *c, struct waiter *w) {
        for (struct waiter **x = &c->waiters; *x; x = &(*x)->next)
                if (*x == w) {
                        *x = w->next;
                        break;
                }
        if (!c->spare)
                c->spare = w;
        else
                free(w);
}

/* A zeroed waiter: the spare, or a new one (under c->lock). */
static struct waiter *waiter_new(channel *c) {
        struct waiter *w = c->spare;
        if (w) {
                c->spare = NULL;
                memset(w, 0, sizeof(*w));
                return w;
        }
        return calloc(1, sizeof(*w));
}

/* Finish w with result r unless it is done already (under c->lock). */
static void waiter_finish(channel *c, struct waiter *w, ssize_t r) {
        if (!w->done) {
                w->result = r;
                w->done = true;
                event_note(&c->changed, waiter_bits(w));
        }
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
        struct waiter *w = waiter_find(c, h.id);
        if (w && !w->done) {
                ssize_t r;
                if (h.kind == CALL_FAIL) {
                        r = -EREMOTEIO;
                        w->code = h.code;
                } else if (body > w->cap) {
                        r = -EMSGSIZE;
                } else {
                        memcpy(w->buf, (const uint8_t *)data + sizeof(h), body);
                        r = (ssize_t)body;
                }
                waiter_finish(c, w, r);
        }
        channel_unlock(c);
        return 0; /* consumed, even if nobody waited (a late reply) */
}

static void cancel_call(uint64_t pt, uint64_t id) {
        port *p = chan_port_get(pt);
        if (!p)
                return;
        if (p->side == 0) {
                struct flow_cancel *fc = &p->hdr->cancel;
                uint64_t n = atomic_fetch_add(&fc->next, 1);
                atomic_store(&fc->ids[n % FLOW_CANCEL_SLOTS], id);
        }
        handle_put(p);
}

/* Is another call of w's group finished (under c->lock)? */
static bool group_done(const channel *c, const struct waiter *w) {
        for (const struct waiter *o = c->waiters; o && w->group; o = o->next)
                if (o != w && o->group == w->group && o->done)
                        return true;
        return false;
}

/* Wait for w until deadline (0: do not wait, but read what the channel
 * holds) (under c->lock, which it may drop and retake): as the reader, or
 * for the reader to hand us our result (c->changed: never a
 * pthread_cond_t, event.h). Returns 0 with w done, or -ETIMEDOUT with w
 * still pending; with any_of_group, -EINPROGRESS as soon as another call
 * of its group is done (its reply is there to read). */
static int await_reply(channel *c, struct waiter *w, uint64_t deadline, bool any_of_group) {
        int r = 0;
        while (!w->done) {
                if (any_of_group && group_done(c, w)) {
                        r = -EINPROGRESS;
                        break;
                }
                if (!c->reading) {
                        c->reading = true;
                        channel_unlock(c);
                        port *p = chan_port_get(w->pt);
                        ssize_t n = -EPIPE;
                        if (p) {
                                struct dispatch d = { c };
                                /* A service with many callers: no catch-up spin (wait.c). */
                                if (atomic_load_explicit(&p->peer_run->blocked,
                                                         memory_order_relaxed) == CALL_RUN_BUSY &&
                                    atomic_load_explicit(&p->catch_up, memory_order_relaxed))
                                        atomic_store_explicit(&p->catch_up, false,
                                                              memory_order_relaxed);
                                n = port_read_with_by(p, deadline, dispatch_reply, &d);
                                handle_put(p);
                        }
                        pthread_mutex_lock(&c->lock);
                        /* (the role is taken again at once, or the others
                         * are told below that it is free) */
                        c->reading = false;
                        if (n >= 0 || w->done)
                                continue;
                        if (n == -ETIMEDOUT || n == -EAGAIN) {
                                if (deadline == 0 || now_ns() >= deadline) {
                                        r = -ETIMEDOUT;
                                        break;
                                }
                                continue;
                        }
                        /* The channel failed: every call on it learns it. */
                        for (struct waiter *o = c->waiters; o; o = o->next)
                                if (o->pt == w->pt)
                                        waiter_finish(c, o, n);
                        continue;
                }
                if (deadline == 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (event_sleep_locked(&c->changed, &c->lock, deadline, waiter_bits(w) | CHAN_READER) ==
                            -ETIMEDOUT &&
                    !w->done) {
                        r = -ETIMEDOUT;
                        break;
                }
        }
        /* Leaving with the role free: a thread that sleeps may take it. */
        if (!c->reading)
                event_note(&c->changed, CHAN_READER);
        return r;
}

/* Send a request within deadline (the caller made it of its timeout, which
 * it checked: the clock is read once per call): the call is (*ret_c,
 * *ret_id). */
static int call_start(const char *name, const void *req, size_t len, void *reply, size_t cap,
                      uint64_t deadline, uint64_t *gen, uint64_t group, channel **ret_c, uint64_t *ret_id) {
        if (!name || (!req && len) || (!reply && cap))
                return -EINVAL;
        channel *l = last_chan; /* a name of a channel was valid when it was made */
        if (!(l && strcmp(l->name, name) == 0) && !ctl_name_valid(name))
                return -EINVAL;
        if (len > IPCF_CALL_MAX)
                return -EMSGSIZE;
        channel *c = channel_find(name);
        if (!c)
                return -ENOMEM;
        bool pinned = gen && *gen;
        for (int attempt = 0;; attempt++) {
                pthread_mutex_lock(&c->lock);
                if (pinned && (c->ph < 0 || c->gen != *gen)) {
                        /* the channel *gen names broke (and may have been replaced) */
                        channel_unlock(c);
                        return -ECONNRESET;
                }
                bool had = c->ph >= 0;
                int ph = channel_port(c, deadline);
                if (ph < 0) {
                        channel_unlock(c);
                        return ph;
                }
                struct waiter *w = waiter_new(c);
                if (!w) {
                        channel_unlock(c);
                        return -ENOMEM;
                }
                if (gen)
                        *gen = c->gen;
                w->id = atomic_fetch_add(&c->next_id, 1);
                w->buf = reply;
                w->cap = cap;
                uint64_t pt = c->pt;
                w->pt = pt;
                w->group = group;
                w->next = c->waiters;
                c->waiters = w;
                channel_unlock(c);

                struct call_hdr h = { .id = w->id, .kind = CALL_REQ };
                port *p = chan_port_get(pt);
                /* (a deadline already passed still writes if there is room, as
                 * timeout 0 would: a deadline of 0 is "never wait") */
                ssize_t r = p ? port_write2_by(p, &h, sizeof(h), req, len, deadline ? deadline : 1) : -EPIPE;
                if (p)
                        handle_put(p);
                if (r >= 0) {
                        *ret_c = c;
                        *ret_id = w->id;
                        return 0;
                }
                bool broken = r == -EPIPE || r == -ECONNRESET || r == -EPROTO;
                pthread_mutex_lock(&c->lock);
                waiter_free(c, w);
                if (broken)
                        channel_drop(c, pt);
                channel_unlock(c);
                /* A channel kept from earlier calls that broke since (its
                 * service restarted, or went): nothing of this request was
                 * written, so it goes once on a new channel to whoever serves
                 * the name now — not for a call pinned to its channel, nor
                 * one that must not wait (deadline 0). If the deadline passed
                 * meanwhile (letting the old channel go is a daemon round
                 * trip), making the new one fails -ETIMEDOUT: never the old
                 * service's death for a request it did not see. */
                if (!broken || !had || pinned || attempt > 0 || deadline == 0)
                        return (int)r;
                if (gen)
                        *gen = 0;
        }
}

/* Wait for call (c, id) until deadline (0: do not wait): its result, and
 * the service's code in *ret_code on -EREMOTEIO. */
static ssize_t call_wait(channel *c, uint64_t id, uint64_t deadline, int *ret_code, bool any_of_group) {
        pthread_mutex_lock(&c->lock);
        struct waiter *w = waiter_find(c, id);
        if (!w) {
                channel_unlock(c);
                return -ECANCELED;
        }
        w->waiting++;
        /* A wait of 0 reads what the channel holds (a reply already there
         * is no wait), then says -EAGAIN. */
        int r = await_reply(c, w, deadline, any_of_group);
        if (r == -ETIMEDOUT && deadline == 0)
                r = -EAGAIN;
        w->waiting--;
        if (r < 0) { /* still pending: wait again or cancel */
                channel_unlock(c);
                return r;
        }
        ssize_t result = w->result;
        if (result == -EREMOTEIO && ret_code)
                *ret_code = w->code;
        uint64_t pt = w->pt;
        if (w->waiting == 0)
                waiter_free(c, w);
        if (result == -EPIPE || result == -ECONNRESET || result == -EPROTO || result == -EBADF)
                channel_drop(c, pt);
        channel_unlock(c);
        return result == -EBADF ? -EPIPE : result;
}

/* Give up on call (c, id). 0, or -ENOENT if it is finished. */
static int call_cancel(channel *c, uint64_t id) {
        pthread_mutex_lock(&c->lock);
        struct waiter *w = waiter_find(c, id);
        if (!w) {
                channel_unlock(c);
                return -ENOENT;
        }
        uint64_t pt = w->pt;
        if (!w->done)
                cancel_call(pt, w->id); /* the service can see it */
        w->done = true;                 /* a waiting thread gets -ECANCELED */
        w->result = -ECANCELED;
        event_note(&c->changed, waiter_bits(w));
        if (w->waiting && c->reading) {
                /* The reader may be this call's thread, asleep on the port. */
                port *p = chan_port_get(pt);
                if (p) {
                        port_kick(p);
                        handle_put(p);
                }
        }
        if (w->waiting == 0)
                waiter_free(c, w);
        channel_unlock(c);
        return 0;
}

/* A timeout of a call: not 0, not below -1. */
static bool call_timeout_ok(int timeout_ms) {
        return timeout_ms != 0 && lib_check_timeout(timeout_ms) == 0;
}

int call_start_on(const char *name, const void *req, size_t len, void *reply, size_t cap, uint64_t deadline,
                  uint64_t *chan, uint64_t group, ipcf_pending *ret) {
        if (!ret || !chan || deadline == 0)
                return -EINVAL;
        channel *c;
        uint64_t id;
        int r = call_start(name, req, len, reply, cap, deadline, chan, group, &c, &id);
        if (r < 0)
                return r;
        *ret = (ipcf_pending){ .id = id, .token = c->token };
        return 0;
}

int ipcf_call_start(const char *name, const void *req, size_t len, void *reply, size_t cap,
                    int timeout_ms, ipcf_pending *ret) {
        if (!ret || !call_timeout_ok(timeout_ms))
                return -EINVAL;
        channel *c;
        uint64_t id;
        int r = call_start(name, req, len, reply, cap, deadline_from_timeout(timeout_ms), NULL, 0, &c, &id);
        if (r < 0)
                return r;
        *ret = (ipcf_pending){ .id = id, .token = c->token };
        return 0;
}

ssize_t ipcf_call_wait(ipcf_pending *call, int timeout_ms, int *ret_code) {
        if (!call || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        channel *c = channel_of_token(call->token);
        if (!c)
                return -EINVAL;
        return call_wait(c, call->id, timeout_ms == 0 ? 0 : deadline_from_timeout(timeout_ms), ret_code, false);
}

ssize_t call_wait_by(ipcf_pending *call, uint64_t deadline, int *ret_code) {
        channel *c = call ? channel_of_token(call->token) : NULL;
        if (!c)
                return -EINVAL;
        return call_wait(c, call->id, deadline, ret_code, true);
}

int ipcf_call_cancel(ipcf_pending *call) {
        if (!call)
                return -EINVAL;
        channel *c = channel_of_token(call->token);
        if (!c)
                return -EINVAL;
        return call_cancel(c, call->id);
}

ssize_t ipcf_call(const char *name, const void *req, size_t len, void *reply, size_t cap,
                  int timeout_ms, int *ret_code) {
        if (!call_timeout_ok(timeout_ms))
                return -EINVAL;
        channel *c;
        uint64_t id;
        uint64_t deadline = deadline_from_timeout(timeout_ms); /* the one clock reading of the call */
        int r = call_start(name, req, len, reply, cap, deadline, NULL, 0, &c, &id);
        if (r < 0)
                return r;
        ssize_t n = call_wait(c, id, deadline ? deadline : 1, ret_code, false);
        if (n == -ETIMEDOUT || n == -EAGAIN) {
                call_cancel(c, id);
                n = -ETIMEDOUT;
        }
        return n;
}
