/*
 * io.c — moving data on a port: write, read, zero-copy reserve/commit and
 * peek/release, batches of messages (ipcf_write_many, ipcf_read_many: one
 * lock, one publication and one wake-up check per batch), and flush (FULL_CACHE: cached messages wait in the ring
 * beyond the queue's capacity, ring_prod_cache; the reader gets them as soon
 * as it has read what came before).
 *
 * Rules: writers hold the port's wlock, readers its rlock (each with the
 * caller's deadline). A message is either wholly queued or not at all; a read
 * that cannot take a message (buffer too small) leaves it queued. Everything
 * written before the peer ended the flow is readable before the end is
 * reported (the peer publishes its last record before its end code, and we
 * re-check the ring after seeing the end code).
 *
 * Time limits: a call's deadline is computed the first time it has to wait
 * (call_time), so the fast path — the lock free, room in the ring or a
 * message ready — reads no clock; the timeout counts from that moment.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "lib/core/lib.h"

/* The time limit of one call: its timeout, and the deadline it makes once
 * something has to wait (0 until then). */
typedef struct call_time {
        int timeout_ms;
        bool tz;                /* timeout 0: never wait */
        uint64_t deadline;      /* monotonic ns, UINT64_MAX: never; 0: not yet read */
} call_time;

static call_time call_time_of(int timeout_ms) {
        return (call_time){ .timeout_ms = timeout_ms, .tz = timeout_ms == 0 };
}

/* The time limit of a call whose deadline its caller made: deadline 0
 * never waits (as timeout 0), UINT64_MAX never ends. */
static call_time call_time_by(uint64_t deadline) {
        return (call_time){ .timeout_ms = deadline ? -1 : 0, .tz = deadline == 0, .deadline = deadline };
}

static uint64_t ct_deadline(call_time *t) {
        if (!t->deadline)
                t->deadline = deadline_from_timeout(t->timeout_ms);
        return t->deadline;
}

/* Has the deadline passed? (Reads the clock: for the rounds of a wait. The
 * first look makes the deadline: only timeout 0 is over then.) */
static bool ct_over(call_time *t) {
        if (!t->deadline) {
                ct_deadline(t);
                return t->tz;
        }
        return now_ns() >= t->deadline;
}

/* Lock l within t: a try for timeout 0 (-EAGAIN), else a timed wait
 * (-ETIMEDOUT). */
static int lock_by(plock *l, call_time *t) {
        if (plock_try(l))
                return 0;
        if (t->tz)
                return -EAGAIN;
        return plock_lock_by(l, ct_deadline(t));
}

static void mark_broken(port *p, int r) {
        if (r == -EPROTO)
                atomic_store(&p->broken, true);
}

/* Publish a reserved record of n bytes and ring the reader if it asked. */
static uint64_t publish(port *p, size_t n) {
        uint64_t pos = ring_commit(&p->prod, n);
        port_notify_data(p);
        ring_prod_trim(&p->prod);
        return pos;
}

/* A reservation failed with r: the flow is broken, or the queue has no room
 * and the qos says what then. Returns 0 after waiting for room for need bytes
 * (try again), or the final error. FULL_CACHE is the caller's to handle. */
static int no_room(port *p, int r, size_t need, call_time *t) {
        if (r != -EAGAIN) {
                mark_broken(p, r);
                return r;
        }
        if (p->qos.capacity == IPCF_CAPACITY_UNBOUNDED)
                return -ENOBUFS;
        if (p->qos.full == IPCF_FULL_FAIL)
                return -EAGAIN;
        /* Each round of the writers' loops comes here: the deadline holds
         * whatever the reader does to the indexes. */
        if (!t->tz && ct_over(t))
                return -ETIMEDOUT;
        return port_wait_tx(p, need, ct_deadline(t), t->tz);
}

/* Rendezvous: wait until the reader took the record at pos, else withdraw it. */
static ssize_t rendezvous(port *p, uint64_t pos, size_t len, uint64_t deadline) {
        int r = port_wait_passed(p, pos, deadline);
        int passed = ring_passed(&p->prod, pos);
        if (passed < 0) {
                mark_broken(p, passed);
                return passed;
        }
        if (passed)
                return (ssize_t)len;
        if (ring_withdraw(&p->prod, pos, len) < 0)
                return (ssize_t)len; /* taken just now: the reader has it */
        if (r == 0)
                r = port_end_error(p);
        return r < 0 ? r : -ETIMEDOUT;
}

/* A batch's records committed quietly (ring_commit_quiet) are published
 * here: the fence is the store half of the wake-up handshake their commits
 * left out, then the reader is rung if it asked. */
static void publish_batch(port *p, bool *quiet) {
        if (!*quiet)
                return;
        *quiet = false;
        atomic_thread_fence(memory_order_seq_cst);
        port_notify_data(p);
        ring_prod_trim(&p->prod);
}

/* One message made of two parts (b may be empty), written whole or not at all.
 * quiet: NULL for a message on its own; else the message is one of a batch
 * (ipcf_write_many, never ZERO capacity): committed quietly and *quiet set,
 * and what the batch committed is published before any wait. */
static ssize_t write_message(port *p, const void *a, size_t al, const void *b, size_t bl,
                             call_time *t, bool *quiet) {
        size_t len = al + bl;
        int r;

        if (len > p->qos.max_msg_size)
                return -EMSGSIZE;
        for (;;) {
                if ((r = port_end_error(p)) < 0)
                        return r;
                void *dst;
                if (!t->tz && ring_looks_full(&p->prod, len)) {
                        if (quiet)
                                publish_batch(p, quiet);
                        port_wait_batch(p, len, ct_deadline(t));
                }
                r = ring_reserve(&p->prod, len, &dst);
                if (r == 0) {
                        if (al)
                                memcpy(dst, a, al);
                        if (bl)
                                memcpy((uint8_t *)dst + al, b, bl);
                        if (quiet) {
                                ring_commit_quiet(&p->prod, len);
                                *quiet = true;
                                return (ssize_t)len;
                        }
                        uint64_t pos = publish(p, len);
                        if (p->qos.capacity == IPCF_CAPACITY_ZERO) {
                                ssize_t z = rendezvous(p, pos, len, ct_deadline(t));
                                return t->tz && z == -ETIMEDOUT ? -EAGAIN : z;
                        }
                        return (ssize_t)len;
                }
                if (quiet)
                        publish_batch(p, quiet);
                if ((r = no_room(p, r, len, t)) < 0)
                        return r;
        }
}

static ssize_t write_stream(port *p, const uint8_t *buf, size_t len, call_time *t) {
        size_t done = 0;
        int r = 0;

        while (done < len) {
                if ((r = port_end_error(p)) < 0)
                        break;
                size_t want = MIN(len - done, (size_t)p->qos.max_msg_size);
                void *dst;
                if (!t->tz && ring_looks_full(&p->prod, want))
                        port_wait_batch(p, want, ct_deadline(t));
                r = ring_reserve(&p->prod, want, &dst);
                if (r == -EAGAIN) {
                        uint64_t w = ring_writable(&p->prod);
                        if (w > 0) {
                                want = MIN(want, (size_t)w);
                                r = ring_reserve(&p->prod, want, &dst);
                        }
                }
                if (r == 0) {
                        memcpy(dst, buf + done, want);
                        publish(p, want);
                        done += want;
                        continue;
                }
                if ((r = no_room(p, r, 1, t)) < 0)
                        break;
        }
        return done > 0 ? (ssize_t)done : r;
}

ssize_t ipcf_write(int h, const void *buf, size_t len, int timeout_ms) {
        if ((!buf && len) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        call_time t = call_time_of(timeout_ms);
        ssize_t r = lock_by(&p->wlock, &t);
        if (r == 0) {
                if (p->qos.mode == IPCF_MODE_STREAM)
                        r = len ? write_stream(p, buf, len, &t) : 0;
                else
                        r = write_message(p, buf, len, NULL, 0, &t, NULL);
                if (p->poll_tx)
                        port_rearm_tx(p);
                plock_unlock(&p->wlock);
        }
        handle_put(p);
        return r;
}

/* The messages of a batch: none NULL with a length, at most SSIZE_MAX of them. */
static bool msgs_valid(const struct iovec *msgs, size_t n) {
        if ((!msgs && n) || n > SSIZE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!msgs[i].iov_base && msgs[i].iov_len)
                        return false;
        return true;
}

/* Write msgs[0..n) in order, each as ipcf_write would, under one lock;
 * returns how many were queued, or the first one's error. */
static ssize_t write_many(port *p, const struct iovec *msgs, size_t n, call_time t) {
        ssize_t r = lock_by(&p->wlock, &t);
        if (r < 0)
                return r;
        /* ZERO capacity: each message is a rendezvous of its own. */
        bool quiet = false, *batch = p->qos.capacity == IPCF_CAPACITY_ZERO ? NULL : &quiet;
        size_t done = 0;
        for (; done < n; done++)
                if ((r = write_message(p, msgs[done].iov_base, msgs[done].iov_len, NULL, 0, &t,
                                       batch)) < 0)
                        break;
        publish_batch(p, &quiet);
        if (p->poll_tx)
                port_rearm_tx(p);
        plock_unlock(&p->wlock);
        return done ? (ssize_t)done : r; /* an error after the first: the next call's */
}

static ssize_t write2(port *p, const void *a, size_t al, const void *b, size_t bl, call_time t) {
        ssize_t r = lock_by(&p->wlock, &t);
        if (r == 0) {
                r = write_message(p, a, al, b, bl, &t, NULL);
                if (p->poll_tx)
                        port_rearm_tx(p);
                plock_unlock(&p->wlock);
        }
        return r;
}

ssize_t port_write2(port *p, const void *a, size_t al, const void *b, size_t bl, int timeout_ms) {
        return write2(p, a, al, b, bl, call_time_of(timeout_ms));
}

ssize_t port_write2_by(port *p, const void *a, size_t al, const void *b, size_t bl, uint64_t deadline) {
        return write2(p, a, al, b, bl, call_time_by(deadline));
}

/* Wait for the next record: returns its remaining length with *ptr, or the end
 * of the flow, -EAGAIN / -ETIMEDOUT. Every round checks the deadline: a
 * producer that keeps the ring busy without a message for us (withdrawn or
 * pad records, forever) cannot hold the reader past it. A broken flow reads
 * nothing more: what its peer wrote after (or instead of) its forgery,
 * say the header put back, is not a message. */
static ssize_t next_record(port *p, const void **ptr, call_time *t) {
        if (atomic_load_explicit(&p->broken, memory_order_relaxed))
                return -EPROTO;
        uint32_t kick = atomic_load_explicit(&p->kick, memory_order_acquire);
        for (bool first = true;; first = false) {
                ssize_t n = ring_peek(&p->cons, ptr);
                if (n >= 0)
                        return n;
                if (n != -EAGAIN) {
                        mark_broken(p, (int)n);
                        return n;
                }
                int e = port_end_error(p);
                if (e < 0) {
                        /* Seen the end: anything published before it is visible now. */
                        n = ring_peek(&p->cons, ptr);
                        return n == -EAGAIN ? e : n;
                }
                /* (after the end's check: a wait that ended on the peer's
                 * death, seen only now, returns the end, not a timeout) */
                if (!first && ct_over(t))
                        return t->tz ? -EAGAIN : -ETIMEDOUT;
                int r = port_wait_rx(p, ct_deadline(t), t->tz, kick);
                if (r < 0)
                        return r;
                if (atomic_load_explicit(&p->kick, memory_order_acquire) != kick)
                        return -EAGAIN; /* kicked: the caller has something to look at */
        }
}

static void consumed(port *p) {
        ring_consume(&p->cons);
        port_notify_space(p);
}

static ssize_t read_message(port *p, void *buf, size_t cap, call_time *t) {
        const void *src;
        ssize_t n = next_record(p, &src, t);
        if (n < 0)
                return n;
        if ((size_t)n > cap)
                return -EMSGSIZE; /* stays queued: nothing lost */
        if (n) /* (buf may be NULL: cap 0, an empty message) */
                memcpy(buf, src, (size_t)n);
        consumed(p);
        return n;
}

/* STREAM: one call takes as many records as fit, and publishes its progress
 * once, before it returns (ring_consume_local). */
static ssize_t read_stream(port *p, uint8_t *buf, size_t cap, call_time *t) {
        size_t total = 0;
        bool took = false;
        ssize_t r = 0;
        while (total < cap) {
                const void *src;
                ssize_t n = total ? ring_peek(&p->cons, &src) : next_record(p, &src, t);
                if (n < 0) {
                        if (n == -EPROTO)
                                mark_broken(p, (int)n);
                        r = n;
                        break;
                }
                size_t take = MIN((size_t)n, cap - total);
                memcpy(buf + total, src, take);
                total += take;
                p->cons.cur_off += (uint32_t)take;
                if (p->cons.cur_off == p->cons.cur_len) {
                        ring_consume_local(&p->cons);
                        took = true;
                }
        }
        if (took) {
                ring_cons_publish(&p->cons);
                port_notify_space(p);
        }
        return total ? (ssize_t)total : r;
}

ssize_t ipcf_read(int h, void *buf, size_t cap, int timeout_ms) {
        if ((!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        call_time t = call_time_of(timeout_ms);
        ssize_t r = lock_by(&p->rlock, &t);
        if (r == 0) {
                if (p->qos.mode == IPCF_MODE_STREAM)
                        r = cap ? read_stream(p, buf, cap, &t) : 0;
                else
                        r = read_message(p, buf, cap, &t);
                if (p->poll_rx)
                        port_rearm_rx(p);
                plock_unlock(&p->rlock);
        }
        handle_put(p);
        return r;
}

/* Read up to n messages under one lock: the first as ipcf_read would (it may
 * wait), then those already queued that fit their buffers, publishing the
 * reader's position once. Returns how many, or the first one's error. */
static ssize_t read_many(port *p, struct iovec *msgs, size_t n, call_time t) {
        ssize_t r = lock_by(&p->rlock, &t);
        if (r < 0)
                return r;
        const void *src;
        size_t done = 0;
        for (r = next_record(p, &src, &t); r >= 0; r = ring_peek(&p->cons, &src)) {
                if ((size_t)r > msgs[done].iov_len) {
                        if (!done)
                                r = -EMSGSIZE; /* stays queued: nothing lost */
                        break;
                }
                if (r) /* (a slot of length 0 may be NULL) */
                        memcpy(msgs[done].iov_base, src, (size_t)r);
                msgs[done].iov_len = (size_t)r;
                ring_consume_local(&p->cons);
                if (++done == n)
                        break;
        }
        if (r == -EPROTO)
                mark_broken(p, (int)r);
        ring_cons_publish(&p->cons);
        if (done)
                port_notify_space(p);
        if (p->poll_rx)
                port_rearm_rx(p);
        plock_unlock(&p->rlock);
        return done ? (ssize_t)done : r; /* an error after the first: the next call's */
}

/* A batch call on h (MESSAGE mode only): rmsgs NULL writes msgs, else reads
 * into rmsgs (the same array). */
static ssize_t batch_call(int h, const struct iovec *msgs, size_t n, int timeout_ms,
                          struct iovec *rmsgs) {
        if (!msgs_valid(msgs, n) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        ssize_t r = 0;
        call_time t = call_time_of(timeout_ms);
        if (p->qos.mode == IPCF_MODE_STREAM)
                r = -EOPNOTSUPP;
        else if (n)
                r = rmsgs ? read_many(p, rmsgs, n, t) : write_many(p, msgs, n, t);
        handle_put(p);
        return r;
}

ssize_t ipcf_write_many(int h, const struct iovec *msgs, size_t n, int timeout_ms) {
        return batch_call(h, msgs, n, timeout_ms, NULL);
}

ssize_t ipcf_read_many(int h, struct iovec *msgs, size_t n, int timeout_ms) {
        return batch_call(h, msgs, n, timeout_ms, msgs);
}

static ssize_t read_with(port *p, call_time t, port_msg_fn fn, void *arg) {
        ssize_t r = lock_by(&p->rlock, &t);
        if (r < 0)
                return r;
        const void *src;
        r = next_record(p, &src, &t);
        if (r >= 0) {
                r = fn(arg, src, (size_t)r);
                if (r >= 0)
                        consumed(p);
        }
        if (p->poll_rx)
                port_rearm_rx(p);
        plock_unlock(&p->rlock);
        return r;
}

ssize_t port_read_with(port *p, int timeout_ms, port_msg_fn fn, void *arg) {
        return read_with(p, call_time_of(timeout_ms), fn, arg);
}

ssize_t port_read_with_by(port *p, uint64_t deadline, port_msg_fn fn, void *arg) {
        return read_with(p, call_time_by(deadline), fn, arg);
}

ssize_t ipcf_next_size(int h, int timeout_ms) {
        if (lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        call_time t = call_time_of(timeout_ms);
        ssize_t r = lock_by(&p->rlock, &t);
        if (r == 0) {
                const void *src;
                r = next_record(p, &src, &t);
                plock_unlock(&p->rlock);
        }
        handle_put(p);
        return r;
}

int ipcf_reserve(int h, size_t len, int timeout_ms, void **ret_ptr) {
        if (!ret_ptr || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        call_time t = call_time_of(timeout_ms);
        int r;
        if (p->qos.capacity == IPCF_CAPACITY_ZERO) {
                r = -EOPNOTSUPP;
                goto out;
        }
        if (p->reserving && pthread_equal(p->reserver, pthread_self())) {
                r = -EBUSY;
                goto out;
        }
        if (len > p->qos.max_msg_size) {
                r = -EMSGSIZE;
                goto out;
        }
        if ((r = lock_by(&p->wlock, &t)) < 0)
                goto out;
        for (;;) {
                if ((r = port_end_error(p)) < 0)
                        break;
                r = ring_reserve(&p->prod, len, ret_ptr);
                if (r == 0) {
                        p->reserving = true;
                        p->reserver = pthread_self();
                        goto out; /* wlock and our reference stay until ipcf_commit */
                }
                if ((r = no_room(p, r, len, &t)) < 0)
                        break;
        }
        plock_unlock(&p->wlock);
out:
        if (r < 0)
                handle_put(p);
        return r;
}

int ipcf_commit(int h, size_t n) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        int r = -EINVAL;
        if (p->reserving && pthread_equal(p->reserver, pthread_self()) && n <= p->prod.res_len) {
                publish(p, n);
                p->reserving = false;
                if (p->poll_tx)
                        port_rearm_tx(p);
                plock_unlock(&p->wlock);
                handle_put(p); /* the reference ipcf_reserve kept */
                r = 0;
        }
        handle_put(p);
        return r;
}

ssize_t ipcf_peek(int h, int timeout_ms, const void **ret_ptr) {
        if (!ret_ptr || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        if (p->peeking && pthread_equal(p->peeker, pthread_self())) {
                handle_put(p);
                return -EBUSY;
        }
        call_time t = call_time_of(timeout_ms);
        ssize_t r = lock_by(&p->rlock, &t);
        if (r == 0) {
                r = next_record(p, ret_ptr, &t);
                if (r >= 0) {
                        p->peeking = true;
                        p->peeker = pthread_self();
                        return r; /* rlock and our reference stay until ipcf_release */
                }
                plock_unlock(&p->rlock);
        }
        handle_put(p);
        return r;
}

int ipcf_release(int h) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        int r = -EINVAL;
        if (p->peeking && pthread_equal(p->peeker, pthread_self())) {
                consumed(p);
                p->peeking = false;
                if (p->poll_rx)
                        port_rearm_rx(p);
                plock_unlock(&p->rlock);
                handle_put(p); /* the reference ipcf_peek kept */
                r = 0;
        }
        handle_put(p);
        return r;
}

int ipcf_flush(int h, int timeout_ms) {
        if (lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        call_time t = call_time_of(timeout_ms);
        int r = lock_by(&p->wlock, &t);
        if (r == 0) {
                /* The cached messages are in the ring already: wait until the
                 * reader has made room for them within the queue. */
                int w = port_wait_uncached(p, ct_deadline(&t), t.tz);
                r = (int)ring_cached(&p->prod);
                if (w != 0 && w != -EAGAIN && w != -ETIMEDOUT)
                        r = w;
                else if (r > 0 && (w = port_end_error(p)) < 0)
                        r = w;
                plock_unlock(&p->wlock);
        }
        handle_put(p);
        return r;
}
