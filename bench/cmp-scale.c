/*
 * cmp-scale.c — how latency and throughput hold up as load grows, side by
 * side:
 *
 *   flows    one client with N concurrent flows (N = 1, 10, 100, 1000) to one
 *            server process that waits on all of them and echoes. Each round
 *            the client writes 64 B on every flow, then reads the N answers.
 *            ipcf flows with an epoll server (ipcf_fd of each port), ipcf
 *            flows with a readiness set (ipcf_set_wait), Unix stream sockets
 *            with an epoll server. Reported: round time (median, p99) and
 *            messages per second.
 *   clients  C client processes (C = 1, 2, 4, 8, 16, 32, 64) calling one
 *            server in a closed loop: an ipcf service (ipcf_call) vs a Unix
 *            stream socket server with epoll (64 B request, 64 B answer).
 *            Reported: calls per second of all clients together, the median
 *            of the clients' median round trips and the largest p99.
 *   mbox     one sender, R competing receivers (R = 1, 4) of 64 B messages:
 *            an ipcf mailbox vs a POSIX message queue (the kernel's own
 *            queue with competing receivers). Reported: messages per second.
 *
 * Pinned: servers (and receivers) on CPU 1, clients (and the sender) on CPU
 * 0; unpinned: anywhere. With C > 1 more than two processes compete for the
 * two CPUs — that is what this part measures. Every phase lasts 0.3 s after
 * a 0.05 s warm-up, --runs rounds, medians with min and max. CSV on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "ipcf.h"

#define MSG 64
#define MAX_FLOWS 1000
#define MAX_CLIENTS 64

/* Phase lengths (--quick shortens them). */
static double warm_s = 0.05, dur_s = 0.3;
static bool quick;

/* A result of one measurement. */
typedef struct scale_res {
        bool ok;
        double rate, p50, p99;
} scale_res;

/* Does ctl's peer want us to stop (readable: a byte, or EOF)? */
static bool ctl_says_stop(const bench_ctl *c) {
        struct pollfd p = { .fd = c->rfd, .events = POLLIN };
        return poll(&p, 1, 0) == 1;
}

/* ---- flows ---------------------------------------------------------------- */

/* The flows part's mechanisms (the order of part_mech). */
enum { FLOWS_IPCF, FLOWS_UNIX, FLOWS_SET };

/* What the flows server needs. */
typedef struct flows_arg {
        bool ipcf;
        bool set;          /* ipcf: a readiness set, not epoll */
        unsigned n;
        bool pinned;
        char name[64];
        int *fds;          /* Unix: n socket pairs, fds[2i] client, fds[2i+1] server */
} flows_arg;

/* The small ring every scale flow uses: 1,000 of them fit easily. */
static void small_qos(ipcf_qos *q) {
        ipcf_qos_init(q);
        q->max_msg_size = 1024;
        q->max_bytes = 8192;
}

/* Echo what port h has queued — all of it, or (once) one message: a
 * readiness set reports a port again while more is queued, and a read that
 * finds nothing costs a look at the line the writer fills next. 0 when
 * done, 1 on a failure; a flow that ends is fine once the client said stop
 * (it closes its flows right after): then 2. */
static int echo_ipcf(int h, char *buf, size_t cap, bool once, const bench_ctl *c) {
        ssize_t n;
        while ((n = ipcf_read(h, buf, cap, 0)) > 0) {
                if (ipcf_write(h, buf, (size_t)n, BENCH_IO_TIMEOUT_MS) < 0)
                        return ctl_says_stop(c) ? 2 : 1;
                if (once)
                        return 0;
        }
        if (n != -EAGAIN)
                return ctl_says_stop(c) ? 2 : 1;
        return 0;
}

/* The readiness-set server: every port in one set, echo what it reports,
 * until a flow ends after the stop byte (or a timeout finds it). */
static int flows_set_loop(const flows_arg *a, const int *h, const bench_ctl *c) {
        int set = ipcf_set_new(NULL);
        for (unsigned i = 0; i < a->n && set >= 0; i++)
                if (ipcf_set_add(set, h[i], i) < 0)
                        return 1;
        if (set < 0 || bench_barrier(c) < 0)
                return 1;
        ipcf_set_event evs[256];
        char buf[1024];
        for (;;) {
                int k = ipcf_set_wait(set, evs, 256, 100);
                if (k == -ETIMEDOUT) {
                        if (ctl_says_stop(c))
                                return 0;
                        continue;
                }
                if (k < 0)
                        return 1;
                for (int j = 0; j < k; j++) {
                        int e = echo_ipcf(h[evs[j].data], buf, sizeof(buf), true, c);
                        if (e)
                                return e == 2 ? 0 : 1;
                }
        }
}

/* Server: accept n flows (ipcf) or take n sockets, then epoll (or the set)
 * and echo until the parent's stop byte. */
static int flows_server(void *p, const bench_ctl *c) {
        flows_arg *a = p;
        bench_pin(bench_cpu_of(a->pinned, 1));
        int *h = calloc(a->n, sizeof(int));
        int ep = epoll_create1(EPOLL_CLOEXEC), r = 0;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
        epoll_ctl(ep, EPOLL_CTL_ADD, c->rfd, &ev);
        /* The control channel is in the epoll set too: the client's stop
         * byte (or its exit) ends the loop. */
        if (a->ipcf) {
                /* a backlog for all 1,000 requests: the client allocates
                 * them one after the other while we accept */
                ipcf_reg_opts o = { .size = sizeof(o), .backlog = 1024 };
                int reg = ipcf_register(a->name, &o);
                if (reg < 0 || bench_barrier(c) < 0)
                        return 1;
                for (unsigned i = 0; i < a->n; i++) {
                        h[i] = ipcf_accept(reg, BENCH_IO_TIMEOUT_MS, NULL);
                        if (h[i] < 0)
                                return 1;
                }
                ipcf_dealloc(reg, NULL);
        } else {
                for (unsigned i = 0; i < a->n; i++) {
                        h[i] = a->fds[2 * i + 1];
                        close(a->fds[2 * i]);
                }
                if (bench_barrier(c) < 0)
                        return 1;
        }
        if (a->set)
                return flows_set_loop(a, h, c);
        /* ipcf_fd puts each port in poll mode: its descriptor is readable
         * exactly when a read would not block (level-triggered) */
        for (unsigned i = 0; i < a->n; i++) {
                ev.data.u32 = i;
                int fd = a->ipcf ? ipcf_fd(h[i]) : h[i];
                if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                        return 1;
        }
        if (bench_barrier(c) < 0)
                return 1;
        struct epoll_event evs[256];
        char buf[1024];
        for (;;) {
                int k = epoll_wait(ep, evs, 256, 1000);
                if (k < 0 && errno != EINTR)
                        return 1;
                for (int j = 0; j < k; j++) {
                        uint32_t i = evs[j].data.u32;
                        if (i == UINT32_MAX)
                                return 0; /* stop */
                        /* A flow that ends is fine once the client said
                         * stop (it closes its flows right after). */
                        if (a->ipcf) {
                                int e = echo_ipcf(h[i], buf, sizeof(buf), false, c);
                                if (e)
                                        return e == 2 ? 0 : 1;
                        } else {
                                ssize_t n = read(h[i], buf, sizeof(buf));
                                if (n <= 0 || bench_io_all(h[i], buf, (size_t)n, true) < 0)
                                        return ctl_says_stop(c) ? 0 : 1;
                        }
                }
        }
        return r;
}

/* Client: the flows, then rounds for warm_s + dur_s. A round writes 64 B on
 * every flow and then reads every answer, so up to N messages are in
 * flight at once and the server sees many ready flows per epoll_wait. */
static int flows_measure(int mech, unsigned n, bool pinned, scale_res *res) {
        static unsigned seq;
        bool ipcf = mech != FLOWS_UNIX;
        flows_arg a = { .ipcf = ipcf, .set = mech == FLOWS_SET, .n = n, .pinned = pinned };
        snprintf(a.name, sizeof(a.name), "cmp.scale.%d.%u", (int)getpid(), ++seq);
        int *h = calloc(n, sizeof(int)), r = 0;
        if (!ipcf) {
                a.fds = calloc(2 * n, sizeof(int));
                for (unsigned i = 0; i < n; i++)
                        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a.fds + 2 * i) < 0) {
                                for (unsigned j = 0; j < 2 * i; j++)
                                        close(a.fds[j]);
                                free(a.fds);
                                free(h);
                                return -errno;
                        }
        }
        bench_ctl c;
        pid_t pid = bench_fork(flows_server, &a, &c);
        if (pid < 0)
                return pid;
        bench_pin(bench_cpu_of(pinned, 0));
        r = bench_barrier(&c);
        for (unsigned i = 0; i < n && r == 0; i++) {
                if (ipcf) {
                        ipcf_qos q;
                        small_qos(&q);
                        h[i] = ipcf_alloc(a.name, &q, BENCH_IO_TIMEOUT_MS, NULL);
                        r = h[i] < 0 ? h[i] : 0;
                } else {
                        h[i] = a.fds[2 * i];
                        close(a.fds[2 * i + 1]);
                }
        }
        if (r == 0)
                r = bench_barrier(&c);
        char buf[MSG] = { 0 };
        size_t cap = 1 << 16, k = 0;
        uint64_t *t = malloc(cap * sizeof(uint64_t));
        uint64_t start = bench_now_ns(), warm_end = start + (uint64_t)(warm_s * 1e9),
                 end = warm_end + (uint64_t)(dur_s * 1e9), t0 = 0, rounds = 0;
        while (r == 0) {
                uint64_t r0 = bench_now_ns();
                if (t0 && r0 >= end)
                        break;
                if (!t0 && r0 >= warm_end) {
                        t0 = r0; /* dur_s from here, however late */
                        end = t0 + (uint64_t)(dur_s * 1e9);
                }
                for (unsigned i = 0; i < n && r == 0; i++) {
                        ssize_t w = ipcf ? ipcf_write(h[i], buf, MSG, BENCH_IO_TIMEOUT_MS)
                                         : write(h[i], buf, MSG);
                        r = w == MSG ? 0 : w < 0 ? (ipcf ? (int)w : -errno) : -EIO;
                }
                for (unsigned i = 0; i < n && r == 0; i++) {
                        if (ipcf) {
                                ssize_t g = ipcf_read(h[i], buf, sizeof(buf), BENCH_IO_TIMEOUT_MS);
                                r = g == MSG ? 0 : g < 0 ? (int)g : -EIO;
                        } else {
                                r = bench_io_all(h[i], buf, MSG, false);
                        }
                }
                if (t0 && r == 0) {
                        rounds++;
                        if (k < cap)
                                t[k++] = bench_now_ns() - r0;
                }
        }
        uint64_t wall = bench_now_ns() - t0;
        char stop = 's';
        bench_ctl_send(&c, &stop, 1);
        for (unsigned i = 0; i < n; i++) {
                if (ipcf && h[i] > 0)
                        ipcf_dealloc(h[i], "bench done");
                else if (!ipcf)
                        close(h[i]);
        }
        bench_pin(-1);
        int st = bench_reap(pid, &c, 10000);
        if (r == 0 && st != 0)
                r = -ECHILD;
        if (r == 0 && !rounds)
                r = -ENODATA;
        if (r == 0) {
                bench_sort_u64(t, k);
                res->ok = true;
                res->rate = (double)(rounds * n) / ((double)wall / 1e9);
                res->p50 = (double)bench_quantile(t, k, 0.5) / 1e3;
                res->p99 = (double)bench_quantile(t, k, 0.99) / 1e3;
        }
        free(t);
        free(h);
        free(a.fds);
        return r;
}

/* ---- clients of one service ----------------------------------------------- */

/* What the clients share with the parent (an anonymous shared mapping):
 * the common start time, how many are connected, and each one's figures. */
typedef struct clients_shm {
        _Atomic uint64_t start_ns;            /* 0 until the parent says go */
        _Atomic unsigned ready;
        struct {
                uint64_t count;
                double p50, p99;
                int err;
        } c[MAX_CLIENTS];
} clients_shm;

typedef struct clients_arg {
        bool ipcf, pinned;
        char name[64];                        /* ipcf service */
        char path[108];                       /* Unix socket */
        clients_shm *shm;
        unsigned index;
} clients_arg;

/* The Unix server: accept, epoll, echo; stop on the parent's byte. */
static int unix_server_loop(int lfd, const bench_ctl *c) {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->rfd };
        epoll_ctl(ep, EPOLL_CTL_ADD, c->rfd, &ev);
        ev.data.fd = lfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
        struct epoll_event evs[64];
        char buf[1024];
        for (;;) {
                int k = epoll_wait(ep, evs, 64, 1000);
                if (k < 0 && errno != EINTR)
                        return 1;
                for (int j = 0; j < k; j++) {
                        int fd = evs[j].data.fd;
                        if (fd == c->rfd)
                                return 0;
                        if (fd == lfd) {
                                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                                if (cfd >= 0) {
                                        ev.data.fd = cfd;
                                        epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
                                }
                                continue;
                        }
                        ssize_t n = read(fd, buf, sizeof(buf));
                        if (n <= 0 || bench_io_all(fd, buf, (size_t)n, true) < 0) {
                                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                                close(fd);
                        }
                }
        }
}

/* The server of the clients part: a Unix socket server with epoll, or an
 * ipcf service taking requests in a loop (a 100 ms wait between checks of
 * the stop byte). */
static int clients_server(void *p, const bench_ctl *c) {
        clients_arg *a = p;
        bench_pin(bench_cpu_of(a->pinned, 1));
        if (!a->ipcf) {
                int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->path);
                if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
                    listen(lfd, 128) < 0 || bench_barrier(c) < 0)
                        return 1;
                return unix_server_loop(lfd, c);
        }
        int svc = ipcf_service(a->name, NULL);
        if (svc < 0 || bench_barrier(c) < 0)
                return 1;
        char buf[1024];
        for (;;) {
                ipcf_call_req req;
                ssize_t n = ipcf_service_next(svc, buf, sizeof(buf), 100, &req);
                if (n == -ETIMEDOUT || n == -EAGAIN) {
                        if (ctl_says_stop(c))
                                break;
                        continue;
                }
                if (n < 0)
                        return 1;
                /* a caller that went away is no failure of the server */
                ipcf_service_reply(svc, &req, buf, (size_t)n, BENCH_IO_TIMEOUT_MS);
        }
        ipcf_dealloc(svc, NULL);
        return 0;
}

/* One client: connect, a few calls, ready; from start, calls for dur_s. */
static int clients_client(void *p, const bench_ctl *c) {
        clients_arg *a = p;
        clients_shm *s = a->shm;
        bench_pin(bench_cpu_of(a->pinned, 0));
        int fd = -1;
        char buf[MSG] = { 0 };
        int r = 0;
        if (!a->ipcf) {
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->path);
                if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        r = -errno;
        }
        size_t cap = 1 << 17, k = 0;
        uint64_t *t = malloc(cap * sizeof(uint64_t));
        /* one call before "ready": the ipcf channel is made on the first */
        for (int phase = 0; phase < 2 && r == 0; phase++) {
                uint64_t end = 0;
                if (phase == 1) {
                        atomic_fetch_add(&s->ready, 1);
                        uint64_t give_up = bench_now_ns() + 30000000000ull;
                        while (!atomic_load(&s->start_ns) && bench_now_ns() < give_up)
                                usleep(200);
                        uint64_t st = atomic_load(&s->start_ns);
                        if (!st)
                                return 1;
                        while (bench_now_ns() < st)
                                usleep(100);
                        end = st + (uint64_t)((warm_s + dur_s) * 1e9);
                }
                uint64_t timed_from = end - (uint64_t)(dur_s * 1e9);
                for (;;) {
                        uint64_t t0 = bench_now_ns();
                        if (phase == 1 && t0 >= end)
                                break;
                        if (a->ipcf) {
                                ssize_t n = ipcf_call(a->name, buf, MSG, buf, sizeof(buf),
                                                      BENCH_IO_TIMEOUT_MS, NULL);
                                r = n == MSG ? 0 : n < 0 ? (int)n : -EIO;
                        } else {
                                r = bench_io_all(fd, buf, MSG, true);
                                if (r == 0)
                                        r = bench_io_all(fd, buf, MSG, false);
                        }
                        if (r < 0 || phase == 0)
                                break;
                        if (t0 >= timed_from) {
                                s->c[a->index].count++;
                                if (k < cap)
                                        t[k++] = bench_now_ns() - t0;
                        }
                }
        }
        if (r == 0 && k) {
                bench_sort_u64(t, k);
                s->c[a->index].p50 = (double)bench_quantile(t, k, 0.5) / 1e3;
                s->c[a->index].p99 = (double)bench_quantile(t, k, 0.99) / 1e3;
        }
        s->c[a->index].err = r;
        if (fd >= 0)
                close(fd);
        free(t);
        return r < 0 ? 1 : 0;
}

/* Server, then nc clients; once all are connected, a common start 20 ms
 * ahead; each runs warm_s + dur_s and counts the dur_s part. */
static int clients_measure(bool ipcf, unsigned nc, bool pinned, scale_res *res) {
        static unsigned seq;
        clients_shm *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                              -1, 0);
        if (s == MAP_FAILED)
                return -errno;
        memset(s, 0, sizeof(*s));
        clients_arg a = { .ipcf = ipcf, .pinned = pinned, .shm = s };
        seq++;
        snprintf(a.name, sizeof(a.name), "cmp.svc.%d.%u", (int)getpid(), seq);
        snprintf(a.path, sizeof(a.path), "%s/svc-%u.sock", bench_dir(), seq);
        bench_ctl sc, cc[MAX_CLIENTS];
        pid_t spid = bench_fork(clients_server, &a, &sc), cpid[MAX_CLIENTS];
        int r = spid < 0 ? spid : bench_barrier(&sc);
        unsigned forked = 0;
        for (unsigned i = 0; i < nc && r == 0; i++) {
                a.index = i;
                cpid[i] = bench_fork(clients_client, &a, &cc[i]);
                if (cpid[i] < 0)
                        r = cpid[i];
                else
                        forked++;
        }
        /* all connected (bounded), then a common start 20 ms ahead */
        uint64_t give_up = bench_now_ns() + 20000000000ull;
        while (r == 0 && atomic_load(&s->ready) < nc && bench_now_ns() < give_up)
                usleep(1000);
        if (r == 0 && atomic_load(&s->ready) < nc)
                r = -ETIMEDOUT;
        atomic_store(&s->start_ns, bench_now_ns() + 20000000ull);
        int bad = 0;
        for (unsigned i = 0; i < forked; i++)
                bad |= bench_reap(cpid[i], &cc[i], (int)((warm_s + dur_s) * 1000) + 30000) != 0;
        char stop = 's';
        if (spid > 0) {
                bench_ctl_send(&sc, &stop, 1);
                bench_reap(spid, &sc, 5000);
        }
        if (r == 0 && bad)
                r = -ECHILD;
        if (r == 0) {
                double p50[MAX_CLIENTS], total = 0, p99 = 0;
                for (unsigned i = 0; i < nc; i++) {
                        total += (double)s->c[i].count;
                        p50[i] = s->c[i].p50;
                        if (s->c[i].p99 > p99)
                                p99 = s->c[i].p99;
                }
                if (total == 0) {
                        munmap(s, sizeof(*s));
                        return -ENODATA; /* no call completed in the timed phase */
                }
                res->ok = true;
                res->rate = total / dur_s;
                res->p50 = bench_stat_of(p50, nc).median;
                res->p99 = p99;
        }
        munmap(s, sizeof(*s));
        return r;
}

/* ---- mailbox with competing receivers ------------------------------------- */

/* What the receivers share with the sender: the phase it is in, how many
 * receivers are open, and how many timed messages arrived. */
typedef struct mbox_shm {
        _Atomic int phase;                  /* 0 warm, 1 timed, 2 stop */
        _Atomic unsigned ready;
        _Atomic uint64_t received;          /* during the timed phase */
} mbox_shm;

typedef struct mbox_arg {
        bool ipcf, pinned;
        char name[64];
        mbox_shm *shm;
} mbox_arg;

/* A competing receiver: takes messages (50 ms waits between checks of the
 * phase) and counts those of the timed phase. */
static int mbox_receiver(void *p, const bench_ctl *c) {
        mbox_arg *a = p;
        bench_pin(bench_cpu_of(a->pinned, 1));
        int h = -1;
        mqd_t q = (mqd_t)-1;
        if (a->ipcf)
                h = ipcf_mbox_open(a->name, IPCF_MBOX_RECV, NULL, BENCH_IO_TIMEOUT_MS);
        else
                q = mq_open(a->name, O_RDONLY | O_CLOEXEC);
        if (a->ipcf ? h < 0 : q == (mqd_t)-1)
                return 1;
        atomic_fetch_add(&a->shm->ready, 1);
        char buf[MSG];
        while (atomic_load(&a->shm->phase) < 2) {
                ssize_t n;
                if (a->ipcf) {
                        n = ipcf_mbox_recv(h, buf, sizeof(buf), 50, NULL);
                } else {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_nsec += 50000000;
                        if (ts.tv_nsec >= 1000000000)
                                ts.tv_sec++, ts.tv_nsec -= 1000000000;
                        n = mq_timedreceive(q, buf, sizeof(buf), NULL, &ts);
                        if (n < 0)
                                n = -errno;
                }
                if (n == -ETIMEDOUT || n == -EAGAIN)
                        continue;
                if (n != MSG)
                        return 1;
                if (atomic_load_explicit(&a->shm->phase, memory_order_relaxed) == 1)
                        atomic_fetch_add_explicit(&a->shm->received, 1, memory_order_relaxed);
        }
        if (a->ipcf)
                ipcf_dealloc(h, "bench done");
        else
                mq_close(q);
        return 0;
}

/* The sender (this process): the mailbox or the queue, nr receivers,
 * then 64 B messages as fast as they are taken; the rate is what the
 * receivers counted over the timed phase. */
static int mbox_measure(bool ipcf, unsigned nr, bool pinned, scale_res *res) {
        static unsigned seq;
        mbox_shm *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                           -1, 0);
        if (s == MAP_FAILED)
                return -errno;
        memset(s, 0, sizeof(*s));
        mbox_arg a = { .ipcf = ipcf, .pinned = pinned, .shm = s };
        seq++;
        int r = 0, h = -1;
        mqd_t q = (mqd_t)-1;
        if (ipcf) {
                snprintf(a.name, sizeof(a.name), "cmp.mbox.%d.%u", (int)getpid(), seq);
                r = ipcf_mbox_create(a.name, NULL);
        } else {
                snprintf(a.name, sizeof(a.name), "/ipcf-cmp-mbox-%d-%u", (int)getpid(), seq);
                struct mq_attr attr = { .mq_maxmsg = 10, .mq_msgsize = MSG };
                q = mq_open(a.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
                r = q == (mqd_t)-1 ? -errno : 0;
        }
        bench_ctl cc[8];
        pid_t pid[8];
        unsigned forked = 0;
        for (unsigned i = 0; i < nr && r == 0; i++) {
                pid[i] = bench_fork(mbox_receiver, &a, &cc[i]);
                if (pid[i] < 0)
                        r = pid[i];
                else
                        forked++;
        }
        uint64_t give_up = bench_now_ns() + 10000000000ull;
        while (r == 0 && atomic_load(&s->ready) < nr && bench_now_ns() < give_up)
                usleep(1000);
        if (r == 0 && ipcf)
                h = ipcf_mbox_open(a.name, IPCF_MBOX_SEND, NULL, BENCH_IO_TIMEOUT_MS);
        if (r == 0 && ipcf && h < 0)
                r = h;
        bench_pin(bench_cpu_of(pinned, 0));
        char buf[MSG] = { 0 };
        uint64_t start = bench_now_ns(), warm_end = start + (uint64_t)(warm_s * 1e9),
                 end = warm_end + (uint64_t)(dur_s * 1e9), t0 = 0, t1 = 0;
        while (r == 0) {
                if (ipcf) {
                        ssize_t n = ipcf_mbox_send(h, buf, MSG, BENCH_IO_TIMEOUT_MS, NULL);
                        r = n < 0 ? (int)n : 0;
                } else {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_sec += BENCH_IO_TIMEOUT_MS / 1000;
                        r = mq_timedsend(q, buf, MSG, 0, &ts) < 0 ? -errno : 0;
                }
                uint64_t now = bench_now_ns();
                if (!t0 && now >= warm_end) {
                        /* the timed phase runs dur_s from here, however
                         * late a blocked send made it start */
                        t0 = now;
                        end = t0 + (uint64_t)(dur_s * 1e9);
                        atomic_store(&s->phase, 1);
                } else if (t0 && now >= end) {
                        t1 = now;
                        atomic_store(&s->phase, 2);
                        break;
                }
        }
        atomic_store(&s->phase, 2);
        uint64_t got = atomic_load(&s->received);
        int bad = 0;
        for (unsigned i = 0; i < forked; i++)
                bad |= bench_reap(pid[i], &cc[i], 5000) != 0;
        bench_pin(-1);
        if (ipcf) {
                if (h >= 0)
                        ipcf_dealloc(h, "bench done");
                ipcf_mbox_destroy(a.name);
        } else if (q != (mqd_t)-1) {
                mq_close(q);
                mq_unlink(a.name);
        }
        if (r == 0 && bad)
                r = -ECHILD;
        if (r == 0 && t1 > t0 && got) {
                res->ok = true;
                res->rate = (double)got / ((double)(t1 - t0) / 1e9);
        } else if (r == 0) {
                r = -ENODATA; /* nothing arrived in the timed phase */
        }
        munmap(s, sizeof(*s));
        return r;
}

/* ---- main ----------------------------------------------------------------- */

/* The three parts, the mechanisms of each (ipcf first: the baseline of the
 * ratios; NULL ends a list; the flows' order is FLOWS_*) and their load
 * levels (0 ends a list). */
enum { PART_FLOWS, PART_CLIENTS, PART_MBOX, N_PARTS };
#define MECHS 3
static const char *const part_name[N_PARTS] = { "flows", "clients", "mbox" };
static const char *const part_mech[N_PARTS][MECHS] = {
        { "ipcf", "unix-stream", "ipcf-set" }, { "ipcf-call", "unix-stream-epoll" },
        { "ipcf-mbox", "posix-mq" } };
static const unsigned levels_full[N_PARTS][8] = {
        { 1, 10, 100, 1000 }, { 1, 2, 4, 8, 16, 32, 64 }, { 1, 4 } };
static const unsigned levels_quick[N_PARTS][8] = { { 1, 10 }, { 1, 4 }, { 4 } };

/* --levels=N,N,...: keep only these load levels of each part (taken out of
 * argv before the common options are parsed). */
static void levels_filter(int *argc, char **argv, const unsigned (*from)[8], unsigned (*to)[8]) {
        const char *keep = NULL;
        int j = 1;
        for (int i = 1; i < *argc; i++) {
                if (strncmp(argv[i], "--levels=", 9) == 0)
                        keep = argv[i] + 9;
                else
                        argv[j++] = argv[i];
        }
        *argc = j;
        argv[j] = NULL;
        for (int part = 0; part < N_PARTS; part++) {
                unsigned n = 0;
                for (unsigned l = 0; l < 8 && from[part][l]; l++) {
                        bool in = !keep;
                        for (const char *q = keep; q && *q && !in;) {
                                char *e;
                                in = strtoul(q, &e, 10) == from[part][l];
                                q = *e == ',' ? e + 1 : "";
                        }
                        if (in)
                                to[part][n++] = from[part][l];
                }
                for (; n < 8; n++)
                        to[part][n] = 0;
        }
}

/* Rounds over everything, then one CSV block: rate, median and p99 per
 * (part, mechanism, placement, level); exit 1 if any point never worked. */
int main(int argc, char **argv) {
        bench_opts o;
        static unsigned chosen[N_PARTS][8];
        bool quick_arg = false;
        for (int i = 1; i < argc; i++)
                quick_arg |= strcmp(argv[i], "--quick") == 0;
        levels_filter(&argc, argv, quick_arg ? levels_quick : levels_full, chosen);
        bench_opts_parse(&o, argc, argv,
                         "  keys (--only): flows, clients, mbox\n"
                         "  --levels=N,...: only these load levels (flows, clients, receivers)\n");
        quick = o.quick;
        if (quick) /* long enough that a loaded machine still runs every process in it */
                warm_s = 0.02, dur_s = 0.15;
        int r = bench_env_start();
        if (r < 0) {
                fprintf(stderr, "cmp-scale: starting ipcfd: %s\n", strerror(-r));
                return 1;
        }
        const unsigned (*levels)[8] = (const unsigned (*)[8])chosen;
        bool places[2] = { o.do_pinned, o.do_unpinned };
        static scale_res res[N_PARTS][MECHS][2][8][BENCH_MAX_RUNS]; /* part, mech, place, level, run */
        static char errors[N_PARTS][MECHS][2][8][160];
        unsigned total = 0, step = 0;
        for (int part = 0; part < N_PARTS; part++)
                for (unsigned l = 0; l < 8 && levels[part][l]; l++)
                        for (int m = 0; m < MECHS && part_mech[part][m]; m++)
                                total += bench_selected(&o, part_name[part]) * (places[0] + places[1]);
        total *= o.runs;

        for (unsigned run = 0; run < o.runs; run++)
                for (int p = 0; p < 2; p++)
                        for (int part = 0; part < N_PARTS; part++) {
                                if (!places[p] || !bench_selected(&o, part_name[part]))
                                        continue;
                                for (unsigned l = 0; l < 8 && levels[part][l]; l++)
                                        for (int m = 0; m < MECHS && part_mech[part][m]; m++) {
                                                unsigned n = levels[part][l];
                                                bench_progress("cmp-scale",
                                                               "[%u/%u] run %u/%u, %s: %s %s x %u",
                                                               ++step, total, run + 1, o.runs,
                                                               p == 0 ? "pinned" : "unpinned",
                                                               part_name[part], part_mech[part][m],
                                                               n);
                                                scale_res *sr = &res[part][m][p][l][run];
                                                bool ipcf = m == 0;
                                                r = part == PART_FLOWS ? flows_measure(m, n, p == 0, sr)
                                                    : part == PART_CLIENTS
                                                            ? clients_measure(ipcf, n, p == 0, sr)
                                                            : mbox_measure(ipcf, n, p == 0, sr);
                                                if (r < 0)
                                                        snprintf(errors[part][m][p][l], 160, "%s",
                                                                 ipcf_strerror(r));
                                        }
                        }
        bench_progress_done();

        bench_csv_header();
        int failed = 0;
        for (int p = 0; p < 2; p++)
                for (int part = 0; part < N_PARTS; part++) {
                        if (!places[p] || !bench_selected(&o, part_name[part]))
                                continue;
                        for (int m = 0; m < MECHS && part_mech[part][m]; m++)
                                for (unsigned l = 0; l < 8 && levels[part][l]; l++) {
                                        double v[3][BENCH_MAX_RUNS];
                                        unsigned n = 0;
                                        for (unsigned i = 0; i < o.runs; i++) {
                                                scale_res *sr = &res[part][m][p][l][i];
                                                if (!sr->ok)
                                                        continue;
                                                v[0][n] = sr->rate, v[1][n] = sr->p50,
                                                v[2][n] = sr->p99;
                                                n++;
                                        }
                                        const char *mech = part_mech[part][m];
                                        unsigned conc = levels[part][l];
                                        if (n == 0) {
                                                bench_csv_note("FAILED %s %s x %u: %s",
                                                               part_name[part], mech, conc,
                                                               errors[part][m][p][l]);
                                                failed = 1;
                                                continue;
                                        }
                                        char metric[32];
                                        snprintf(metric, sizeof(metric), "%s_rate", part_name[part]);
                                        bench_csv(mech, metric, MSG, conc, p == 0,
                                                  bench_stat_of(v[0], n), "1/s");
                                        if (part == PART_MBOX)
                                                continue;
                                        snprintf(metric, sizeof(metric), "%s_p50", part_name[part]);
                                        bench_csv(mech, metric, MSG, conc, p == 0,
                                                  bench_stat_of(v[1], n), "us");
                                        snprintf(metric, sizeof(metric), "%s_p99", part_name[part]);
                                        bench_csv(mech, metric, MSG, conc, p == 0,
                                                  bench_stat_of(v[2], n), "us");
                                }
                }
        return failed;
}
