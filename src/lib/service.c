/*
 * service.c — the service's side of calls: one input queue over every
 * caller's channel (Denning's protected service process).
 *
 * The input queue is the set of call channels (flows) the service accepted:
 * each request is stamped with its channel's peer, which the daemon took from
 * the kernel when the channel was allocated, so a caller cannot pose as
 * another. Taking the next request scans the channels round robin from where
 * the last take stopped (fairness), accepting new callers first. When all are
 * empty the taker spins (only while some caller runs on another CPU), then
 * announces it will sleep on every channel and sleeps in epoll_wait() on the
 * registration socket and every channel's eventfd.
 *
 * Locking: svc->lock makes one taker at a time scan and sleep; replies need
 * only the channel's own write lock, so workers reply in parallel.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/callwire.h"
#include "lib/lib.h"

#define REG_MARK UINT64_MAX

int ipcf_service(const char *name, const ipcf_reg_opts *opts) {
        int reg_h = ipcf_register(name, opts);
        if (reg_h < 0)
                return reg_h;
        int h, r;
        service *s = handle_alloc(HANDLE_SERVICE, &h);
        if (!s) {
                ipcf_unregister(reg_h);
                return -EMFILE;
        }
        s->reg_h = reg_h;
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = REG_MARK };
        if (s->epfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, ipcf_fd(reg_h), &ev) < 0) {
                r = -errno;
                safe_close(s->epfd);
                handle_abort(s);
                ipcf_unregister(reg_h);
                return r;
        }
        pthread_mutex_init(&s->lock, NULL);
        handle_publish(s);
        return h;
}

/* Add an accepted channel (under s->lock). Keeps a reference to its port. */
static int chan_add(service *s, int ph) {
        port *p = handle_get_port(ph);
        if (!p)
                return -EBADF;
        if (s->n == s->cap) {
                unsigned cap = s->cap ? s->cap * 2 : 16;
                struct svc_chan *a = realloc(s->chans, cap * sizeof(*a));
                if (!a) {
                        handle_put(p);
                        return -ENOMEM;
                }
                s->chans = a;
                s->cap = cap;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)ph };
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, p->efd_rx, &ev) < 0) {
                handle_put(p);
                return -errno;
        }
        s->chans[s->n++] = (struct svc_chan){ .ph = ph, .p = p };
        if (s->poll_mode)
                (void)ipcf_fd(ph); /* the channel keeps its eventfd exact too */
        return 0;
}

static void chan_remove(service *s, unsigned i, const char *why) {
        struct svc_chan c = s->chans[i];
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c.p->efd_rx, NULL);
        s->chans[i] = s->chans[--s->n];
        handle_put(c.p);
        ipcf_dealloc(c.ph, why);
}

/* Accept every caller waiting on the registration (never blocks). */
static void accept_pending(service *s) {
        for (;;) {
                int ph = ipcf_accept(s->reg_h, NULL, 0);
                if (ph < 0)
                        return;
                if (chan_add(s, ph) < 0)
                        ipcf_dealloc(ph, "service cannot take more callers");
        }
}

struct take_ctx {
        void *buf;
        size_t cap;
        ipcf_call_req *ret;
};

/* One request frame -> the caller's buffer (under the channel's read lock). */
static ssize_t take_frame(void *arg, const void *data, size_t len) {
        struct take_ctx *t = arg;
        struct call_hdr h;
        if (len < sizeof(h))
                return -EPROTO;
        memcpy(&h, data, sizeof(h));
        if (h.kind != CALL_REQ || h.id == 0)
                return -EPROTO;
        size_t body = len - sizeof(h);
        t->ret->id = h.id;
        t->ret->len = body;
        if (body > t->cap)
                return -EMSGSIZE; /* kept: the caller retries with a bigger buffer */
        memcpy(t->buf, (const uint8_t *)data + sizeof(h), body);
        return (ssize_t)body;
}

/* Take one request from any channel without waiting (under s->lock). */
static ssize_t take(service *s, struct take_ctx *t) {
        for (unsigned k = 0; k < s->n;) {
                unsigned i = (s->next + k) % s->n;
                struct svc_chan *c = &s->chans[i];
                ssize_t r = port_read_with(c->p, 0, take_frame, t);
                if (r >= 0 || r == -EMSGSIZE) {
                        t->ret->from = c->p->peer;
                        t->ret->channel = c->ph;
                        s->next = i + 1;
                        return r;
                }
                if (r == -EAGAIN) {
                        k++;
                        continue;
                }
                /* The caller left (or broke its channel): forget it. */
                chan_remove(s, i, r == -EPROTO ? "protocol error" : "caller gone");
        }
        return -EAGAIN;
}

static bool any_ready(service *s) {
        for (unsigned i = 0; i < s->n; i++)
                if (ring_ready(&s->chans[i].p->cons) || port_end_error(s->chans[i].p))
                        return true;
        return false;
}

/* Spin while some caller is running on another CPU, up to the spin budget. */
static bool spin_for_request(service *s, uint64_t deadline) {
        int c = sched_getcpu();
        uint64_t limit = MIN(now_ns() + (uint64_t)QOS_DEFAULT_SPIN_US * 1000u, deadline);
        for (unsigned i = 1;; i++) {
                if (any_ready(s))
                        return true;
                cpu_relax();
                if ((i & 63) == 0) {
                        if (now_ns() >= limit)
                                return false;
                        bool someone = false;
                        for (unsigned j = 0; j < s->n && !someone; j++) {
                                struct flow_run *r = s->chans[j].p->peer_run;
                                someone = !atomic_load_explicit(&r->blocked, memory_order_relaxed) &&
                                          (int)atomic_load_explicit(&r->cpu, memory_order_relaxed) != c;
                        }
                        if (!someone)
                                return false;
                }
        }
}

/* Sleep until a channel or the registration has something, or the deadline. */
static int sleep_for_request(service *s, uint64_t deadline) {
        for (unsigned i = 0; i < s->n; i++) {
                atomic_store_explicit(&s->chans[i].p->my_run->blocked, 1, memory_order_relaxed);
                atomic_store(&s->chans[i].p->cons.ctl->rx_sleep, 1);
        }
        atomic_thread_fence(memory_order_seq_cst);
        int r = 0;
        if (!any_ready(s)) {
                struct epoll_event ev[64];
                int n = epoll_wait(s->epfd, ev, 64, deadline_poll_ms(deadline));
                if (n == 0)
                        r = -ETIMEDOUT;
                for (int k = 0; k < n; k++)
                        if (ev[k].data.u64 != REG_MARK && !s->poll_mode)
                                for (unsigned i = 0; i < s->n; i++)
                                        if ((uint64_t)s->chans[i].ph == ev[k].data.u64)
                                                efd_drain(s->chans[i].p->efd_rx);
        }
        for (unsigned i = 0; i < s->n; i++) {
                atomic_store_explicit(&s->chans[i].p->cons.ctl->rx_sleep, 0, memory_order_relaxed);
                atomic_store_explicit(&s->chans[i].p->my_run->blocked, 0, memory_order_relaxed);
        }
        return r;
}

ssize_t ipcf_service_next(int h, void *buf, size_t cap, ipcf_call_req *ret, int timeout_ms) {
        if (!ret || (!buf && cap) || timeout_ms < -1)
                return -EINVAL;
        service *s = handle_get_service(h);
        if (!s)
                return -EBADF;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        struct take_ctx t = { buf, cap, ret };
        ssize_t r;
        pthread_mutex_lock(&s->lock);
        for (;;) {
                accept_pending(s);
                r = take(s, &t);
                if (r != -EAGAIN)
                        break;
                if (timeout_ms == 0)
                        break;
                if (spin_for_request(s, deadline))
                        continue;
                if (sleep_for_request(s, deadline) == -ETIMEDOUT || now_ns() >= deadline) {
                        accept_pending(s);
                        r = take(s, &t);
                        if (r == -EAGAIN)
                                r = -ETIMEDOUT;
                        break;
                }
        }
        pthread_mutex_unlock(&s->lock);
        handle_put(s);
        return r;
}

int ipcf_service_cancelled(int h, const ipcf_call_req *req) {
        if (!req)
                return -EINVAL;
        port *p = handle_get_port(req->channel);
        if (!p)
                return 1; /* the channel is gone: nobody waits for this call */
        int r = 0;
        for (unsigned i = 0; i < FLOW_CANCEL_SLOTS && !r; i++)
                r = atomic_load(&p->hdr->cancel.ids[i]) == req->id;
        r = r || port_end_error(p) != 0;
        handle_put(p);
        return r;
}

static int answer(int h, const ipcf_call_req *req, uint32_t kind, int code, const void *data,
                  size_t len, int timeout_ms) {
        if (!req || (!data && len) || timeout_ms < -1)
                return -EINVAL;
        if (len > IPCF_CALL_MAX)
                return -EMSGSIZE;
        service *s = handle_get_service(h);
        if (!s)
                return -EBADF;
        handle_put(s);
        if (ipcf_service_cancelled(h, req) == 1) {
                port *p = handle_get_port(req->channel);
                int e = p ? port_end_error(p) : -EPIPE;
                if (p)
                        handle_put(p);
                return e ? e : -ECANCELED;
        }
        port *p = handle_get_port(req->channel);
        if (!p)
                return -EPIPE;
        struct call_hdr hdr = { .id = req->id, .kind = kind, .code = code };
        ssize_t r = port_write2(p, &hdr, sizeof(hdr), data, len, timeout_ms);
        handle_put(p);
        return r < 0 ? (int)r : 0;
}

int ipcf_service_reply(int h, const ipcf_call_req *req, const void *reply, size_t len,
                       int timeout_ms) {
        return answer(h, req, CALL_REPLY, 0, reply, len, timeout_ms);
}

int ipcf_service_fail(int h, const ipcf_call_req *req, int code, int timeout_ms) {
        return answer(h, req, CALL_FAIL, code, NULL, 0, timeout_ms);
}

int service_fd(int h) {
        service *s = handle_get_service(h);
        if (!s)
                return -EBADF;
        pthread_mutex_lock(&s->lock);
        if (!s->poll_mode) {
                s->poll_mode = true;
                for (unsigned i = 0; i < s->n; i++)
                        (void)ipcf_fd(s->chans[i].ph);
        }
        pthread_mutex_unlock(&s->lock);
        int fd = s->epfd;
        handle_put(s);
        return fd;
}

int ipcf_service_close(int h) {
        service *s = handle_close(h, HANDLE_SERVICE);
        if (!s)
                return -EBADF;
        pthread_mutex_lock(&s->lock);
        while (s->n)
                chan_remove(s, s->n - 1, "service closed");
        pthread_mutex_unlock(&s->lock);
        ipcf_unregister(s->reg_h);
        handle_put(s);
        return 0;
}

void service_destroy(service *s) {
        safe_close(s->epfd);
        free(s->chans);
        pthread_mutex_destroy(&s->lock);
}
