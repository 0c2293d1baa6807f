/*
 * io.c — moving data on a port: write, read, zero-copy reserve/commit and
 * peek/release, and flush (FULL_CACHE: cached messages wait in the ring
 * beyond the queue's capacity, ring_prod_cache; the reader gets them as soon
 * as it has read what came before).
 *
 * Rules: writers hold the port's wlock, readers its rlock (each with the
 * caller's deadline). A message is either wholly queued or not at all; a read
 * that cannot take a message (buffer too small) leaves it queued. Everything
 * written before the peer ended the flow is readable before the end is
 * reported (the peer publishes its last record before its end code, and we
 * re-check the ring after seeing the end code).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "lib/core/lib.h"

/* Lock l before deadline (monotonic ns): a try for timeout 0 (-EAGAIN), else
 * a timed wait (-ETIMEDOUT). */
static int lock_by(plock *l, uint64_t deadline, bool timeout_zero) {
        if (timeout_zero)
                return plock_try(l) ? 0 : -EAGAIN;
        return plock_lock_by(l, deadline);
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
static int no_room(port *p, int r, size_t need, uint64_t deadline, bool tz) {
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
        if (!tz && now_ns() >= deadline)
                return -ETIMEDOUT;
        return port_wait_tx(p, need, deadline, tz);
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

/* One message made of two parts (b may be empty), written whole or not at all. */
static ssize_t write_message(port *p, const void *a, size_t al, const void *b, size_t bl,
                             uint64_t deadline, bool tz) {
        size_t len = al + bl;
        int r;

        if (len > p->qos.max_msg_size)
                return -EMSGSIZE;
        for (;;) {
                if ((r = port_end_error(p)) < 0)
                        return r;
                void *dst;
                r = ring_reserve(&p->prod, len, &dst);
                if (r == 0) {
                        if (al)
                                memcpy(dst, a, al);
                        if (bl)
                                memcpy((uint8_t *)dst + al, b, bl);
                        uint64_t pos = publish(p, len);
                        if (p->qos.capacity == IPCF_CAPACITY_ZERO) {
                                ssize_t z = rendezvous(p, pos, len, tz ? now_ns() : deadline);
                                return tz && z == -ETIMEDOUT ? -EAGAIN : z;
                        }
                        return (ssize_t)len;
                }
                if ((r = no_room(p, r, len, deadline, tz)) < 0)
                        return r;
        }
}

static ssize_t write_stream(port *p, const uint8_t *buf, size_t len, uint64_t deadline, bool tz) {
        size_t done = 0;
        int r = 0;

        while (done < len) {
                if ((r = port_end_error(p)) < 0)
                        break;
                size_t want = MIN(len - done, (size_t)p->qos.max_msg_size);
                void *dst;
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
                if ((r = no_room(p, r, 1, deadline, tz)) < 0)
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
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        bool tz = timeout_ms == 0;
        ssize_t r = lock_by(&p->wlock, deadline, tz);
        if (r == 0) {
                if (p->qos.mode == IPCF_MODE_STREAM)
                        r = len ? write_stream(p, buf, len, deadline, tz) : 0;
                else
                        r = write_message(p, buf, len, NULL, 0, deadline, tz);
                if (p->poll_tx)
                        port_rearm_tx(p);
                plock_unlock(&p->wlock);
        }
        handle_put(p);
        return r;
}

ssize_t port_write2(port *p, const void *a, size_t al, const void *b, size_t bl, int timeout_ms) {
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        bool tz = timeout_ms == 0;
        ssize_t r = lock_by(&p->wlock, deadline, tz);
        if (r == 0) {
                r = write_message(p, a, al, b, bl, deadline, tz);
                if (p->poll_tx)
                        port_rearm_tx(p);
                plock_unlock(&p->wlock);
        }
        return r;
}

/* Wait for the next record: returns its remaining length with *ptr, or the end
 * of the flow, -EAGAIN / -ETIMEDOUT. Every round checks the deadline: a
 * producer that keeps the ring busy without a message for us (withdrawn or
 * pad records, forever) cannot hold the reader past it. */
static ssize_t next_record(port *p, const void **ptr, uint64_t deadline, bool tz) {
        uint32_t kick = atomic_load_explicit(&p->kick, memory_order_acquire);
        for (bool first = true;; first = false) {
                if (!first && now_ns() >= deadline)
                        return tz ? -EAGAIN : -ETIMEDOUT;
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
                int r = port_wait_rx(p, deadline, tz, kick);
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

static ssize_t read_message(port *p, void *buf, size_t cap, uint64_t deadline, bool tz) {
        const void *src;
        ssize_t n = next_record(p, &src, deadline, tz);
        if (n < 0)
                return n;
        if ((size_t)n > cap)
                return -EMSGSIZE; /* stays queued: nothing lost */
        memcpy(buf, src, (size_t)n);
        consumed(p);
        return n;
}

static ssize_t read_stream(port *p, uint8_t *buf, size_t cap, uint64_t deadline, bool tz) {
        size_t total = 0;
        while (total < cap) {
                const void *src;
                ssize_t n = total ? ring_peek(&p->cons, &src) : next_record(p, &src, deadline, tz);
                if (n < 0) {
                        if (n == -EPROTO)
                                mark_broken(p, (int)n);
                        return total ? (ssize_t)total : n;
                }
                size_t take = MIN((size_t)n, cap - total);
                memcpy(buf + total, src, take);
                total += take;
                p->cons.cur_off += (uint32_t)take;
                if (p->cons.cur_off == p->cons.cur_len)
                        consumed(p);
        }
        return (ssize_t)total;
}

ssize_t ipcf_read(int h, void *buf, size_t cap, int timeout_ms) {
        if ((!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        bool tz = timeout_ms == 0;
        ssize_t r = lock_by(&p->rlock, deadline, tz);
        if (r == 0) {
                if (p->qos.mode == IPCF_MODE_STREAM)
                        r = cap ? read_stream(p, buf, cap, deadline, tz) : 0;
                else
                        r = read_message(p, buf, cap, deadline, tz);
                if (p->poll_rx)
                        port_rearm_rx(p);
                plock_unlock(&p->rlock);
        }
        handle_put(p);
        return r;
}

ssize_t port_read_with(port *p, int timeout_ms, port_msg_fn fn, void *arg) {
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        bool tz = timeout_ms == 0;
        ssize_t r = lock_by(&p->rlock, deadline, tz);
        if (r < 0)
                return r;
        const void *src;
        r = next_record(p, &src, deadline, tz);
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

ssize_t ipcf_next_size(int h, int timeout_ms) {
        if (lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        ssize_t r = lock_by(&p->rlock, deadline, timeout_ms == 0);
        if (r == 0) {
                const void *src;
                r = next_record(p, &src, deadline, timeout_ms == 0);
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
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        bool tz = timeout_ms == 0;
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
        if ((r = lock_by(&p->wlock, deadline, tz)) < 0)
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
                if ((r = no_room(p, r, len, deadline, tz)) < 0)
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
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        ssize_t r = lock_by(&p->rlock, deadline, timeout_ms == 0);
        if (r == 0) {
                r = next_record(p, ret_ptr, deadline, timeout_ms == 0);
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
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        bool tz = timeout_ms == 0;
        int r = lock_by(&p->wlock, deadline, tz);
        if (r == 0) {
                /* The cached messages are in the ring already: wait until the
                 * reader has made room for them within the queue. */
                int w = port_wait_uncached(p, deadline, tz);
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
