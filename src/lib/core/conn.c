/*
 * conn.c — the process's control connection to ipcfd.
 *
 * One SOCK_SEQPACKET connection per process, opened lazily and reopened after
 * fork() (the child must not share its parent's request/reply stream) or after
 * the daemon died. Requests are strictly request/reply, serialised by a mutex;
 * every wait that can be long (an allocation, an incoming request) happens on
 * a socket of its own, so holding the mutex is always brief.
 *
 * If no daemon answers and IPCF_NO_AUTOSTART is not 1, one is started for the
 * user (autostart.c: each reason it cannot be is an error of its own, found
 * before any wait; stdio to <dir>/ipcfd.log).
 *
 * A DEAD CONNECTION: a request whose connection turns out closed (the send
 * fails, or the stream ends without its reply) on a connection made before
 * this call is sent once more on a new one — the daemon it went to has died
 * with whatever it held, or closed the connection without reading it — so
 * the first call after a daemon's death starts a new daemon and succeeds
 * rather than failing -EHOSTDOWN. A daemon that closes a connection may say
 * why first (a CTL_ERROR with seq 0: the error is the call's, and
 * ECONNABORTED means "not read: ask again").
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

/* THE REQUEST BOUND: the daemon answers every request at once (an
 * allocation's outcome comes later, on a socket of its own), so a reply that
 * has not come in request_bound_ms means a stopped (SIGSTOP) or wedged
 * daemon. Every request, with a caller's timeout or without, waits for the
 * connection and for its reply at most that long (IPCF_REQUEST_TIMEOUT_MS,
 * ipcf.h), then fails -ETIMEDOUT and keeps the connection: closing it would
 * end every registration and flow of the process for a reply that is only
 * late. A daemon that died is seen at once (end of stream), not by time. */
#define CONN_REQUEST_BOUND_DEFAULT_MS 30000
#define CONN_REQUEST_BOUND_MAX_MS 86400000

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static int conn_fd = -1;
static pid_t conn_pid;
static _Atomic uint32_t conn_seq;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;
static char runtime_dir[PATH_MAX];
static int request_bound_ms = CONN_REQUEST_BOUND_DEFAULT_MS;

uint32_t conn_next_seq(void) {
        /* Never 0: seq 0 is the daemon's connection notices (ctl.h). */
        uint32_t s;
        while ((s = atomic_fetch_add(&conn_seq, 1) + 1) == 0)
                ;
        return s;
}

/* In the child of fork(): it is single-threaded, so a lock another thread of
 * the parent held is simply reset. The inherited socket belongs to the
 * parent's conversation: the child forgets it (closing our copy does not
 * disturb the parent) and opens its own on its next request. */
static void atfork_child(void) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        conn_lock = fresh;
        conn_fd = safe_close(conn_fd);
}

/* IPCF_REQUEST_TIMEOUT_MS as a count of ms in 1..CONN_REQUEST_BOUND_MAX_MS,
 * else (unset, empty, anything else) the default. */
static int conn_bound_from_env(void) {
        const char *v = getenv("IPCF_REQUEST_TIMEOUT_MS");
        char *end;
        if (!v || *v < '0' || *v > '9')
                return CONN_REQUEST_BOUND_DEFAULT_MS;
        errno = 0;
        unsigned long ms = strtoul(v, &end, 10);
        if (errno || *end || ms < 1 || ms > CONN_REQUEST_BOUND_MAX_MS)
                return CONN_REQUEST_BOUND_DEFAULT_MS;
        return (int)ms;
}

static void conn_init_once(void) {
        const char *d = getenv("IPCF_RUNTIME_DIR");
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (d && *d)
                str_copy(runtime_dir, d, sizeof(runtime_dir));
        else if (xdg && *xdg)
                snprintf(runtime_dir, sizeof(runtime_dir), "%s/ipcf", xdg);
        else
                snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/ipcf-%u", (unsigned)getuid());
        request_bound_ms = conn_bound_from_env();
        pthread_atfork(NULL, NULL, atfork_child);
}

uint64_t conn_bound_deadline(void) {
        pthread_once(&conn_once, conn_init_once);
        return deadline_from_timeout(request_bound_ms);
}

const char *ipcf_runtime_dir(void) {
        pthread_once(&conn_once, conn_init_once);
        return runtime_dir;
}

/* How long a connect waits between tries while the daemon's queue of
 * connections is full. */
#define CONNECT_RETRY_NS 1000000u

/* Connect to the daemon's socket. A daemon whose queue of connections not
 * yet accepted is full (it is stopped or wedged, or thousands connect at
 * once) makes a blocking connect(2) wait with no bound, so the socket is
 * non-blocking while it connects: -EAGAIN is tried again every
 * CONNECT_RETRY_NS until deadline, then -ETIMEDOUT (a deadline of 0: at
 * once -EAGAIN). The connection is blocking again once made. */
static int conn_try_connect(int *ret_fd, uint64_t deadline) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", runtime_dir,
                             CTL_SOCKET_NAME) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                if (e == EINTR)
                        continue;
                if (e == EAGAIN && deadline && now_ns() < deadline) {
                        nanosleep(&(struct timespec){ .tv_nsec = CONNECT_RETRY_NS }, NULL);
                        continue;
                }
                close(fd);
                return e == EAGAIN && deadline ? -ETIMEDOUT : -e;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        *ret_fd = fd;
        return 0;
}

/* Under conn_lock: connect conn_fd (autostart_wait's probe, which tries
 * again itself). */
static int conn_connect_again(void) {
        return conn_try_connect(&conn_fd, 0);
}

/* Under conn_lock: make sure conn_fd is a live connection of this process,
 * connecting by deadline. */
static int conn_ensure_locked(uint64_t deadline) {
        if (conn_fd >= 0 && conn_pid == getpid())
                return 0;
        conn_fd = safe_close(conn_fd);
        int r = conn_try_connect(&conn_fd, deadline);
        if (r == -ETIMEDOUT)
                return r; /* a daemon listens, but takes no connection: stopped */
        if (r == -EACCES || r == -EPERM)
                return -EACCES;
        if (r < 0) {
                /* No daemon: start one (autostart.c), each cause its error. */
                const char *no = getenv("IPCF_NO_AUTOSTART");
                if (no && strcmp(no, "1") == 0)
                        return -EHOSTDOWN;
                r = autostart_run(runtime_dir, deadline_from_timeout(AUTOSTART_TIMEOUT_MS),
                                  conn_connect_again);
                if (r < 0)
                        return r == -ENOPKG || r == -EACCES ? r : -EHOSTDOWN;
        }
        conn_pid = getpid();
        return 0;
}

int ipcf_connect(void) {
        /* A HELLO: being connected is not being admitted (the daemon may
         * refuse a connection, and says why: EDQUOT, EUSERS). */
        uint32_t v = htole32(CTL_VERSION);
        return conn_tell(CTL_HELLO, NULL, CTL_A_VERSION, &v, sizeof(v));
}

int conn_error_of(const ctl_msg *m, ipcf_reason *ret_reason) {
        uint32_t e = 0, code = 0;
        const char *text = NULL;
        if (ctl_get_u32(m, CTL_A_ERRNO, &e) < 0 || e == 0 || e > 4095)
                e = EPROTO;
        if (ret_reason) {
                memset(ret_reason, 0, sizeof(*ret_reason));
                if (ctl_get_u32(m, CTL_A_END_CODE, &code) == 0 && code <= IPCF_END_PROTOCOL)
                        ret_reason->code = (int)code;
                if (ctl_get_str(m, CTL_A_REASON, IPCF_REASON_MAX, &text) == 0)
                        str_copy(ret_reason->text, text, sizeof(ret_reason->text));
        }
        return -(int)e;
}

static int conn_wait_readable(int fd, uint64_t deadline) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        for (;;) {
                int r = poll(&pfd, 1, deadline_poll_ms(deadline));
                if (r > 0)
                        return 0;
                if (r == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return -errno;
        }
}

/* The daemon's word on why it is closing this connection, if it left one:
 * a CTL_ERROR with seq 0 (no request has seq 0), read without waiting.
 * Returns its -errno, or 0 if none is there. Under conn_lock. */
static int conn_notice(conn_reply *rep) {
        rep->n_fds = 0;
        ssize_t n = ctl_recv(conn_fd, rep->buf, sizeof(rep->buf), rep->fds, &rep->n_fds, MSG_DONTWAIT);
        conn_reply_done(rep);
        if (n <= 0 || ctl_msg_parse(rep->buf, (size_t)n, &rep->msg) < 0 ||
            rep->msg.type != CTL_ERROR || rep->msg.seq != 0)
                return 0;
        return conn_error_of(&rep->msg, &rep->reason);
}

/* One try of conn_request, under conn_lock, on the connection there is (made
 * if none). Returns as conn_request. *ret_dead says the connection is no
 * good any more; *ret_retry that the request surely never took effect on a
 * daemon that can still answer, or that it went to a daemon that has since
 * died (with everything it held): it may be sent again, once, on a new
 * connection — the connection was reclaimed as idle, or a dead daemon is
 * restarted as on a first call. A deadline (the caller's, or the request
 * bound) that passes before the reply ends the wait with -ETIMEDOUT and keeps
 * the connection (THE REQUEST BOUND above): the reply, if it comes, is an
 * older request's for the next try, which skips it, closing the descriptors
 * it carries (the daemon ends a registration whose socket closes). */
static int conn_try(ctl_builder *req, uint32_t seq, const int *fds, unsigned n_fds, conn_reply *rep,
                    uint64_t deadline, bool *ret_dead, bool *ret_retry) {
        *ret_dead = *ret_retry = false;
        bool reused = conn_fd >= 0 && conn_pid == getpid();
        int r = conn_ensure_locked(deadline);
        if (r < 0)
                return r;
        *ret_dead = true;
        r = ctl_send(conn_fd, req, fds, n_fds);
        if (r < 0) {
                /* Not sent: the daemon closed the connection (it may have
                 * said why: a refusal at connect, or an idle connection
                 * reclaimed) or died. */
                r = conn_notice(rep);
                *ret_retry = r == 0 ? reused : r == -ECONNABORTED;
                return r ? r : -EHOSTDOWN;
        }
        ssize_t n;
        for (;;) {
                if ((r = conn_wait_readable(conn_fd, deadline)) == -ETIMEDOUT) {
                        *ret_dead = false; /* late only: the connection stays */
                        return r;
                }
                if (r < 0)
                        return -EHOSTDOWN;
                n = ctl_recv(conn_fd, rep->buf, sizeof(rep->buf), rep->fds, &rep->n_fds, 0);
                if (n <= 0 || ctl_msg_parse(rep->buf, (size_t)n, &rep->msg) < 0 || rep->msg.seq == 0 ||
                    rep->msg.seq == seq)
                        break;
                conn_reply_done(rep); /* the late reply of a request whose caller gave up */
        }
        if (n < 0 && (r = conn_notice(rep)) < 0) {
                /* A reset ahead of a notice (a daemon that closed without
                 * reading what we sent): the notice says why. */
                *ret_retry = r == -ECONNABORTED;
                return r;
        }
        if (n <= 0) {
                /* End of stream: it died (or dropped us) without a word. */
                *ret_retry = reused;
                return -EHOSTDOWN;
        }
        if (ctl_msg_parse(rep->buf, (size_t)n, &rep->msg) < 0)
                return -EPROTO; /* the daemon speaks nonsense */
        if (rep->msg.seq == 0 && rep->msg.type == CTL_ERROR) {
                /* A notice instead of the reply: the request was not read. */
                r = conn_error_of(&rep->msg, &rep->reason);
                *ret_retry = r == -ECONNABORTED;
                return r;
        }
        if (rep->msg.seq != seq)
                return -EPROTO;
        switch (rep->msg.type) {
        case CTL_OK:
        case CTL_FLOW:
                *ret_dead = false;
                return 0;
        case CTL_ERROR:
                *ret_dead = false;
                return conn_error_of(&rep->msg, &rep->reason);
        default:
                return -EPROTO;
        }
}

/* How long one pthread_mutex_timedlock of conn_lock_until waits at most. */
#define CONN_LOCK_SLICE_NS (100u * 1000000u)

/* Take conn_lock by a deadline of now_ns()'s clock (CLOCK_MONOTONIC);
 * pthread_mutex_timedlock's is CLOCK_REALTIME, so the time left is carried
 * over, in slices: a forward step of the wall clock ends a slice early and
 * the deadline is looked at again (no request fails early for it); a
 * backward step lengthens one slice, which still ends as soon as the lock is
 * free. 0, or ETIMEDOUT. */
static int conn_lock_until(uint64_t deadline) {
        for (;;) {
                uint64_t now = now_ns(), left = deadline > now ? MIN(deadline - now, CONN_LOCK_SLICE_NS) : 0;
                struct timespec at;
                clock_gettime(CLOCK_REALTIME, &at);
                uint64_t ns = (uint64_t)at.tv_nsec + left;
                at.tv_sec += (time_t)(ns / 1000000000u);
                at.tv_nsec = (long)(ns % 1000000000u);
                int r = pthread_mutex_timedlock(&conn_lock, &at);
                if (r != ETIMEDOUT || now_ns() >= deadline)
                        return r;
        }
}

int conn_request_until(ctl_builder *req, const int *fds, unsigned n_fds, conn_reply *rep, uint64_t deadline) {
        int r;
        uint32_t seq;

        memset(&rep->msg, 0, sizeof(rep->msg));
        rep->n_fds = 0;
        memset(&rep->reason, 0, sizeof(rep->reason));
        pthread_once(&conn_once, conn_init_once);

        if ((r = ctl_end(req)) < 0)
                return r;
        seq = (uint32_t)(req->buf[8] | req->buf[9] << 8 | req->buf[10] << 16 |
                         (uint32_t)req->buf[11] << 24);

        deadline = MIN(deadline, conn_bound_deadline());
        if (conn_lock_until(deadline) != 0)
                return -ETIMEDOUT; /* another thread's request holds the connection that long */
        for (int attempt = 0;; attempt++) {
                bool dead, retry;
                r = conn_try(req, seq, fds, n_fds, rep, deadline, &dead, &retry);
                if (!dead)
                        break;
                conn_reply_done(rep);
                conn_fd = safe_close(conn_fd);
                if (!retry || attempt > 0)
                        break;
                memset(&rep->reason, 0, sizeof(rep->reason));
        }
        pthread_mutex_unlock(&conn_lock);
        return r;
}

int conn_request(ctl_builder *req, const int *fds, unsigned n_fds, conn_reply *rep) {
        return conn_request_until(req, fds, n_fds, rep, UINT64_MAX);
}

int conn_recv_own(int sock, conn_reply *rep) {
        ssize_t n = ctl_recv(sock, rep->buf, sizeof(rep->buf), rep->fds, &rep->n_fds, MSG_DONTWAIT);
        if (n == 0)
                return -EHOSTDOWN;
        if (n < 0)
                return (int)n;
        return ctl_msg_parse(rep->buf, (size_t)n, &rep->msg) < 0 ? -EPROTO : 0;
}

int conn_recv_own_wait(int sock, conn_reply *rep, int timeout_ms) {
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        for (;;) {
                rep->n_fds = 0;
                int r = conn_recv_own(sock, rep);
                conn_reply_done(rep);
                if (r != -EAGAIN)
                        return r;
                if (timeout_ms == 0)
                        return -EAGAIN;
                struct pollfd pfd = { .fd = sock, .events = POLLIN };
                int pr = poll(&pfd, 1, deadline_poll_ms(deadline));
                if (pr == 0 || (pr < 0 && errno == EINTR && now_ns() >= deadline))
                        return -ETIMEDOUT;
                if (pr < 0 && errno != EINTR)
                        return -errno;
        }
}

void conn_reply_done(conn_reply *rep) {
        for (unsigned i = 0; i < rep->n_fds; i++)
                rep->fds[i] = safe_close(rep->fds[i]);
        rep->n_fds = 0;
}

conn_call *conn_call_new(uint16_t type) {
        conn_call *c = malloc(sizeof(*c));
        if (!c)
                return NULL;
        c->rep.n_fds = 0;
        ctl_begin(&c->req, type, conn_next_seq());
        return c;
}

int conn_call_run(conn_call *c, const int *fds, unsigned n_fds) {
        return conn_request(&c->req, fds, n_fds, &c->rep);
}

int conn_call_run_until(conn_call *c, const int *fds, unsigned n_fds, uint64_t deadline) {
        return conn_request_until(&c->req, fds, n_fds, &c->rep, deadline);
}

int conn_tell(uint16_t type, const char *name, uint16_t attr, const void *val, size_t len) {
        if (name && !ctl_name_valid(name))
                return -EINVAL;
        conn_call *c = conn_call_new(type);
        int r = -ENOMEM;
        if (c) {
                if (name)
                        ctl_put_str(&c->req, CTL_A_NAME, name);
                if (val)
                        ctl_put(&c->req, attr, val, len);
                r = conn_call_run(c, NULL, 0);
        }
        conn_call_free(c);
        return r;
}

int conn_tell_u64(uint16_t type, uint16_t attr, uint64_t value) {
        uint64_t le = htole64(value);
        return conn_tell(type, NULL, attr, &le, sizeof(le));
}

void conn_call_free(conn_call *c) {
        if (!c)
                return;
        conn_reply_done(&c->rep);
        free(c);
}

int conn_pages(uint16_t type, int (*page)(void *ctx, const ctl_msg *reply, uint32_t *ret_entries), void *ctx) {
        uint32_t skip = 0, more = 1;
        int r = 0;
        uint64_t deadline = conn_bound_deadline(); /* one bound for the whole listing */
        while (r == 0 && more) {
                conn_call *c = conn_call_new(type);
                if (!c)
                        return -ENOMEM;
                ctl_put_u32(&c->req, CTL_A_LIST_SKIP, skip);
                r = conn_call_run_until(c, NULL, 0, deadline);
                if (r == 0) {
                        uint32_t got = 0;
                        more = 0;
                        (void)ctl_get_u32(&c->rep.msg, CTL_A_LIST_MORE, &more);
                        r = page(ctx, &c->rep.msg, &got);
                        if (got == 0 || r == 1)
                                more = 0; /* no progress, or enough: stop rather than loop */
                        skip += got;
                }
                conn_call_free(c);
        }
        return r < 0 ? r : 0;
}
