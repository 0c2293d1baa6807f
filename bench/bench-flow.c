/*
 * bench-flow.c — ipcf flows side by side with the kernel's local IPC, in ONE
 * run on this machine (figures from different runs do not compare: see
 * /work/shared/ANCHORS.md).
 *
 * For each mechanism, two forked processes (the parent on CPU 0, the child
 * on CPU 1; --same-core puts both on CPU 0, --unpinned lets the kernel
 * choose) measure:
 *   - the 64-byte ping-pong round trip (median and p99; warm-up, then timed);
 *   - one-way 64-byte messages per second;
 *   - one-way 64 KiB messages, in GB/s.
 * For the 64-byte stream the sender also times each window of WINDOW_MSGS
 * messages and reports the median and the 90th percentile of those rates:
 * on a machine others load, the whole run's rate says mostly how much CPU
 * the two processes got, and the fast windows what the mechanism does when
 * both run (a window is far shorter than a scheduler's slice; its median is
 * sustained, since the ring holds only ~13k messages of 64 B).
 * Mechanisms: an ipcf flow with the default qos (waiting sides spin briefly),
 * an ipcf flow with spin_us = 0 (sleep only), a pipe, Unix stream and
 * seqpacket sockets, and the physical floor: two processes bouncing a value
 * through one cache line of a shared mapping (round trip only); and the
 * floor of sleeping (sleepfloor): the same value, each side sleeping on it
 * with FUTEX_WAIT until the other's FUTEX_WAKE — the system calls a
 * sleep-only ipcf flow makes per turn and nothing else (round trip only;
 * what the spin_us = 0 row is compared with besides a Unix socket).
 *
 * The ipcf rows need a daemon: the bench makes a private runtime directory,
 * points IPCF_RUNTIME_DIR at it, starts ipcfd of this build there
 * (<build>/bin/ipcfd, from /proc/self/exe; IPCF_DAEMON overrides) as its own
 * child, and stops it and removes the directory at the end.
 *
 * RULES: at most two busy processes at any time (the machine has 2 CPUs);
 * every wait is bounded (ipcf calls by BENCH_IO_TIMEOUT_MS; fd reads end when
 * the peer exits, and a stuck child by its alarm); the only spin loop of this
 * file (the floor) checks the clock, backs off to sched_yield and gives up.
 * Output: a Markdown table on stdout; progress on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"

#define BENCH_MSG_SMALL 64
#define BENCH_MSG_BULK (64u << 10)
#define BENCH_IO_TIMEOUT_MS 10000     /* ipcf: any single wait longer than this is a failure */
#define BENCH_CHILD_ALARM_S 120       /* a child still running after this is killed */
#define FLOOR_SPIN_NS 20000ull        /* floor: pure spinning this long, then yield */
#define FLOOR_NAP_NS 2000000ull       /* ... then short sleeps */
#define FLOOR_GIVE_UP_NS 10000000000ull
#define BENCH_MAX_REPEAT 15

/* ---- configuration ------------------------------------------------------ */

enum placement { PLACE_SPLIT, PLACE_SAME_CORE, PLACE_UNPINNED };

typedef struct bench_cfg {
        enum placement place;
        uint64_t rtt_warmup, rtt_iters;      /* round trips */
        double oneway_warmup_s, oneway_s;    /* one-way phases */
        const char *only;                    /* comma list of mechanism keys, or NULL */
        unsigned repeat;                     /* rounds; each figure is their median */
} bench_cfg;

enum mech_kind { MECH_IPCF, MECH_PIPE, MECH_STREAM, MECH_SEQPACKET, MECH_FLOOR, MECH_SLEEP_FLOOR };

typedef struct mech {
        const char *key;      /* for --only */
        const char *label;    /* row label */
        enum mech_kind kind;
        uint32_t spin_us;     /* ipcf: the qos spin budget */
} mech;

static const mech mechs[] = {
        { "ipcf", "ipcf flow (default qos, spin 10 µs)", MECH_IPCF, 10 },
        { "ipcf-nospin", "ipcf flow (spin_us = 0, sleep only)", MECH_IPCF, 0 },
        { "pipe", "pipe", MECH_PIPE, 0 },
        { "stream", "Unix socket, stream", MECH_STREAM, 0 },
        { "seqpacket", "Unix socket, seqpacket", MECH_SEQPACKET, 0 },
        { "floor", "cache-line ping-pong (floor)", MECH_FLOOR, 0 },
        { "sleepfloor", "futex ping-pong (the floor of sleeping)", MECH_SLEEP_FLOOR, 0 },
};

/* The floors move a value only: round trips, no one-way messages. */
static bool mech_is_floor(enum mech_kind k) { return k == MECH_FLOOR || k == MECH_SLEEP_FLOOR; }
#define N_MECHS (sizeof(mechs) / sizeof(mechs[0]))

/* What one mechanism measured; NaN-free: ok flags say what is valid. */
typedef struct mech_result {
        bool rtt_ok, msgs_ok, bulk_ok;
        double rtt_median_us, rtt_p99_us;
        double msgs_per_s;
        double bulk_gb_per_s;
        bool win_ok;
        double win_median, win_p90; /* 64 B one-way, the sender's windows (msgs/s) */
        char error[160];
} mech_result;

/* ---- small helpers ------------------------------------------------------ */

/* Monotonic nanoseconds (~26 ns a call here: cheap next to any round trip
 * but the floor's, whose figure includes it like every other row's). */
static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The spin-wait hint: lets the sibling hyperthread run and saves power. */
static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
}

/* Pin the calling process to one CPU (no-op when unpinned). */
static void pin_to(const bench_cfg *cfg, int cpu) {
        if (cfg->place == PLACE_UNPINNED)
                return;
        if (cfg->place == PLACE_SAME_CORE)
                cpu = 0;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                fprintf(stderr, "bench-flow: sched_setaffinity(%d): %s\n", cpu, strerror(errno));
}

/* Read or write exactly len bytes of a blocking fd. Waits are not bounded
 * here (a poll per read would tax the fd mechanisms unfairly): a peer that
 * dies closes its ends, which ends the wait, and a stuck child is ended by
 * its alarm (BENCH_CHILD_ALARM_S). */
static int fd_io_all(int fd, void *buf, size_t len, bool writing) {
        char *p = buf;
        while (len > 0) {
                ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EPIPE; /* the other side went away */
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* ---- endpoints: one side of a mechanism, after connection --------------- */

typedef struct endpoint {
        enum mech_kind kind;
        int rfd, wfd;              /* fd mechanisms (may be equal) */
        int port;                  /* ipcf */
        volatile uint64_t *ball;   /* floor: the shared cache line */
        uint64_t bounce;           /* floor: the last value seen */
} endpoint;

/* Everything a mechanism creates before fork, to be split between the sides. */
typedef struct mech_setup {
        int fds[4];                /* pipe: ab[0], ab[1], ba[0], ba[1]; socket: sv[0], sv[1] */
        uint64_t *shared_line;     /* floor */
        char name[IPCF_NAME_MAX + 1];
} mech_setup;

/* Send one message of len bytes: an ipcf message, one seqpacket, or len
 * bytes of a byte stream. 0 or a negative errno. */
static int ep_send(endpoint *e, const void *buf, size_t len) {
        switch (e->kind) {
        case MECH_IPCF: {
                ssize_t n = ipcf_write(e->port, buf, len, BENCH_IO_TIMEOUT_MS);
                return n < 0 ? (int)n : 0;
        }
        case MECH_SEQPACKET: {
                ssize_t n = send(e->wfd, buf, len, MSG_NOSIGNAL);
                return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EMSGSIZE;
        }
        default:
                return fd_io_all(e->wfd, (void *)buf, len, true);
        }
}

/* Receive one message of exactly len bytes (the counterpart of ep_send). */
static int ep_recv(endpoint *e, void *buf, size_t len) {
        switch (e->kind) {
        case MECH_IPCF: {
                ssize_t n = ipcf_read(e->port, buf, len, BENCH_IO_TIMEOUT_MS);
                return n < 0 ? (int)n : n == (ssize_t)len ? 0 : -EBADMSG;
        }
        case MECH_SEQPACKET: {
                ssize_t n = recv(e->rfd, buf, len, 0);
                return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EPIPE;
        }
        default:
                return fd_io_all(e->rfd, buf, len, false);
        }
}

/* On one core the peer cannot move while we spin: yield at once there. */
static uint64_t floor_spin_ns = FLOOR_SPIN_NS;

/* Floor: wait (bounded, backing off) until the line holds want. The clock is
 * read every 256 turns while spinning pays, every turn when it does not. */
static int floor_wait(volatile uint64_t *ball, uint64_t want) {
        uint64_t start = 0;
        unsigned check_every = floor_spin_ns ? 256 : 1;
        for (unsigned n = 1; __atomic_load_n(ball, __ATOMIC_ACQUIRE) != want; n++) {
                cpu_relax();
                if (n % check_every)
                        continue;
                uint64_t now = now_ns();
                if (!start) {
                        start = now;
                        continue;
                }
                uint64_t spun = now - start;
                if (spun > FLOOR_GIVE_UP_NS)
                        return -ETIMEDOUT;
                if (spun > FLOOR_NAP_NS)
                        nanosleep(&(struct timespec){ .tv_nsec = 50000 }, NULL);
                else if (spun > floor_spin_ns)
                        sched_yield();
        }
        return 0;
}

/* The floor of sleeping: the low 32 bits of the line's value (a round trip
 * stores at most 2 (warm-up + timed) + 2, below 2^32), slept on with
 * FUTEX_WAIT until it holds want, for at most FLOOR_GIVE_UP_NS in 1 s
 * waits; sleep_floor_set stores and wakes, as a writer wakes a sleeping
 * reader. */
static uint32_t *sleep_word(volatile uint64_t *ball) {
        _Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the low half is at the line's start");
        return (uint32_t *)(uintptr_t)ball;
}

static int sleep_floor_wait(volatile uint64_t *ball, uint64_t want) {
        uint32_t *w = sleep_word(ball);
        uint64_t start = now_ns();
        for (uint32_t v; (v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != (uint32_t)want;) {
                if (now_ns() - start > FLOOR_GIVE_UP_NS)
                        return -ETIMEDOUT;
                struct timespec one_s = { .tv_sec = 1 };
                syscall(SYS_futex, w, FUTEX_WAIT, v, &one_s, NULL, 0);
        }
        return 0;
}

static void sleep_floor_set(volatile uint64_t *ball, uint64_t v) {
        uint32_t *w = sleep_word(ball);
        __atomic_store_n(w, (uint32_t)v, __ATOMIC_RELEASE);
        syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* ---- the control channel between parent and child ----------------------- */

/* Two pipes: the parent writes ctl[1] (child reads ctl[0]) and the child
 * writes ctl[3] (parent reads ctl[2]). A barrier is one byte each way; results
 * travel as whole structs. Every wait is bounded. */
typedef struct control {
        int rfd, wfd;
} control;

/* Both sides reach this point before either goes on. */
static int ctl_barrier(const control *c) {
        char b = 'b';
        int r = fd_io_all(c->wfd, &b, 1, true);
        return r < 0 ? r : fd_io_all(c->rfd, &b, 1, false);
}

/* ---- setup and connection ----------------------------------------------- */

/* Create what both processes share before fork: the pipes, the socket pair,
 * the shared line, or the ipcf name (unique per run and mechanism). */
static int mech_prepare(const mech *m, unsigned index, mech_setup *s) {
        memset(s, 0, sizeof(*s));
        for (int i = 0; i < 4; i++)
                s->fds[i] = -1;
        switch (m->kind) {
        case MECH_PIPE:
                if (pipe2(s->fds, O_CLOEXEC) < 0 || pipe2(s->fds + 2, O_CLOEXEC) < 0)
                        return -errno;
                return 0;
        case MECH_STREAM:
        case MECH_SEQPACKET: {
                int type = m->kind == MECH_STREAM ? SOCK_STREAM : SOCK_SEQPACKET;
                return socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, s->fds) < 0 ? -errno : 0;
        }
        case MECH_FLOOR:
        case MECH_SLEEP_FLOOR:
                s->shared_line = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                return s->shared_line == MAP_FAILED ? (s->shared_line = NULL, -errno) : 0;
        case MECH_IPCF:
                snprintf(s->name, sizeof(s->name), "bench.flow.%d.%u", (int)getpid(), index);
                return 0;
        }
        return -EINVAL;
}

/* Release what mech_prepare made and this side still holds. */
static void mech_setup_free(mech_setup *s) {
        for (int i = 0; i < 4; i++)
                if (s->fds[i] >= 0)
                        close(s->fds[i]);
        if (s->shared_line)
                munmap(s->shared_line, 4096);
}

/* Make side 0 (parent, the client) or 1 (child, the server) an endpoint.
 * For ipcf, the child registers, the parent allocates after the barrier, the
 * child accepts. */
static int ep_connect(const mech *m, mech_setup *s, int side, const control *c, endpoint *e) {
        memset(e, 0, sizeof(*e));
        e->kind = m->kind;
        e->rfd = e->wfd = e->port = -1;
        /* Each side closes the other's ends, so that one side's exit ends
         * the other's reads (EOF) instead of leaving them blocked. */
        switch (m->kind) {
        case MECH_PIPE:
                e->wfd = side == 0 ? s->fds[1] : s->fds[3];
                e->rfd = side == 0 ? s->fds[2] : s->fds[0];
                for (int i = 0; i < 4; i++)
                        if (s->fds[i] != e->rfd && s->fds[i] != e->wfd) {
                                close(s->fds[i]);
                                s->fds[i] = -1;
                        }
                return ctl_barrier(c);
        case MECH_STREAM:
        case MECH_SEQPACKET:
                e->rfd = e->wfd = s->fds[side];
                close(s->fds[1 - side]);
                s->fds[1 - side] = -1;
                return ctl_barrier(c);
        case MECH_FLOOR:
        case MECH_SLEEP_FLOOR:
                e->ball = s->shared_line;
                return ctl_barrier(c);
        case MECH_IPCF:
                break;
        }
        if (side == 1) {
                int reg = ipcf_register(s->name, NULL);
                int r = ctl_barrier(c); /* tell the parent the name is there */
                if (reg < 0 || r < 0)
                        return reg < 0 ? reg : r;
                e->port = ipcf_accept(reg, BENCH_IO_TIMEOUT_MS, NULL);
                ipcf_dealloc(reg, NULL);
                return e->port < 0 ? e->port : ctl_barrier(c);
        }
        int r = ctl_barrier(c);
        if (r < 0)
                return r;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.spin_us = m->spin_us;
        e->port = ipcf_alloc(s->name, &q, BENCH_IO_TIMEOUT_MS, NULL);
        return e->port < 0 ? e->port : ctl_barrier(c);
}

/* End this side; fds are closed by mech_setup_free, the ipcf port here. */
static void ep_close(endpoint *e) {
        if (e->kind == MECH_IPCF && e->port >= 0)
                ipcf_dealloc(e->port, "bench done");
        e->port = -1;
}

/* ---- the measurements --------------------------------------------------- */

/* One round trip: the client sends, the server echoes. Floor: the client sets
 * an odd value, the server answers with the next even one. */
static int rtt_client_once(endpoint *e, char *buf, uint64_t i) {
        if (e->kind == MECH_SLEEP_FLOOR) {
                sleep_floor_set(e->ball, 2 * i + 1);
                return sleep_floor_wait(e->ball, 2 * i + 2);
        }
        if (e->kind == MECH_FLOOR) {
                __atomic_store_n(e->ball, 2 * i + 1, __ATOMIC_RELEASE);
                return floor_wait(e->ball, 2 * i + 2);
        }
        int r = ep_send(e, buf, BENCH_MSG_SMALL);
        return r < 0 ? r : ep_recv(e, buf, BENCH_MSG_SMALL);
}

static int rtt_server_once(endpoint *e, char *buf, uint64_t i) {
        if (e->kind == MECH_SLEEP_FLOOR) {
                int r = sleep_floor_wait(e->ball, 2 * i + 1);
                if (r == 0)
                        sleep_floor_set(e->ball, 2 * i + 2);
                return r;
        }
        if (e->kind == MECH_FLOOR) {
                int r = floor_wait(e->ball, 2 * i + 1);
                if (r == 0)
                        __atomic_store_n(e->ball, 2 * i + 2, __ATOMIC_RELEASE);
                return r;
        }
        int r = ep_recv(e, buf, BENCH_MSG_SMALL);
        return r < 0 ? r : ep_send(e, buf, BENCH_MSG_SMALL);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Client side of the round-trip test: fills median and p99. */
static int rtt_client(endpoint *e, const bench_cfg *cfg, mech_result *res) {
        char buf[BENCH_MSG_SMALL] = { 0 };
        uint64_t *t = malloc(cfg->rtt_iters * sizeof(uint64_t));
        if (!t)
                return -ENOMEM;
        int r = 0;
        uint64_t total = cfg->rtt_warmup + cfg->rtt_iters;
        for (uint64_t i = 0; i < total && r == 0; i++) {
                uint64_t t0 = now_ns();
                r = rtt_client_once(e, buf, i);
                if (i >= cfg->rtt_warmup)
                        t[i - cfg->rtt_warmup] = now_ns() - t0;
        }
        if (r == 0) {
                qsort(t, cfg->rtt_iters, sizeof(uint64_t), cmp_u64);
                res->rtt_median_us = (double)t[cfg->rtt_iters / 2] / 1000.0;
                res->rtt_p99_us = (double)t[(cfg->rtt_iters * 99) / 100] / 1000.0;
                res->rtt_ok = true;
        }
        free(t);
        return r;
}

/* Server side of the round-trip test: answer exactly as many as the client
 * sends (warm-up included), then return. */
static int rtt_server(endpoint *e, const bench_cfg *cfg) {
        char buf[BENCH_MSG_SMALL];
        int r = 0;
        uint64_t total = cfg->rtt_warmup + cfg->rtt_iters;
        for (uint64_t i = 0; i < total && r == 0; i++)
                r = rtt_server_once(e, buf, i);
        return r;
}

/* One-way: the first byte of each message says its phase. */
enum { PHASE_WARMUP = 1, PHASE_TIMED = 2, PHASE_STOP = 3 };

typedef struct oneway_result {
        int err;
        uint64_t msgs;
        uint64_t ns;
} oneway_result;

/* The rates of a one-way run's timed windows of WINDOW_MSGS messages. */
#define WINDOW_MSGS 8192u
#define WINDOWS_MAX 8192u
typedef struct windows {
        unsigned n;
        double rate[WINDOWS_MAX];
} windows;

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Sender of a one-way test: warm-up phase, timed phase, then one STOP
 * message. The clock is read every check_every messages (64 B: every 64,
 * about 4 KiB; large messages: every one). win (or NULL): the rates of the
 * timed windows. */
static int oneway_send(endpoint *e, const bench_cfg *cfg, size_t size, windows *win) {
        char *buf = calloc(1, size);
        if (!buf)
                return -ENOMEM;
        uint64_t check_every = size >= 4096 ? 1 : 64;
        uint64_t t0 = now_ns();
        uint64_t warm_end = t0 + (uint64_t)(cfg->oneway_warmup_s * 1e9);
        uint64_t end = warm_end + (uint64_t)(cfg->oneway_s * 1e9);
        buf[0] = PHASE_WARMUP;
        int r = 0;
        uint64_t win_start = 0;
        if (win)
                win->n = 0;
        for (uint64_t n = 1; r == 0; n++) {
                r = ep_send(e, buf, size);
                if (n % check_every)
                        continue;
                uint64_t now = now_ns();
                if (now >= end)
                        break;
                if (now >= warm_end)
                        buf[0] = PHASE_TIMED;
                if (win && n % WINDOW_MSGS == 0) {
                        if (win_start && buf[0] == PHASE_TIMED && win->n < WINDOWS_MAX &&
                            now > win_start)
                                win->rate[win->n++] = WINDOW_MSGS / ((double)(now - win_start) / 1e9);
                        win_start = now;
                }
        }
        buf[0] = PHASE_STOP;
        if (r == 0)
                r = ep_send(e, buf, size);
        free(buf);
        return r;
}

/* Receiver: counts timed messages from the first timed one to the stop. */
static oneway_result oneway_recv(endpoint *e, size_t size) {
        oneway_result res = { 0, 0, 0 };
        char *buf = malloc(size);
        if (!buf) {
                res.err = -ENOMEM;
                return res;
        }
        uint64_t t0 = 0;
        for (;;) {
                res.err = ep_recv(e, buf, size);
                if (res.err < 0)
                        break;
                if (buf[0] == PHASE_TIMED && res.msgs++ == 0)
                        t0 = now_ns();
                if (buf[0] == PHASE_STOP) {
                        res.ns = res.msgs ? now_ns() - t0 : 0;
                        break;
                }
        }
        free(buf);
        return res;
}

/* ---- one mechanism, two processes --------------------------------------- */

/* The child: the server of the round trips and the receiver of one-way
 * traffic; it sends its one-way results over the control channel. */
static _Noreturn void child_main(const mech *m, mech_setup *s, const control *c,
                                 const bench_cfg *cfg) {
        alarm(BENCH_CHILD_ALARM_S);
        pin_to(cfg, 1);
        endpoint e;
        int r = ep_connect(m, s, 1, c, &e);
        if (r == 0)
                r = rtt_server(&e, cfg);
        if (r == 0)
                r = ctl_barrier(c);
        if (r == 0 && !mech_is_floor(m->kind)) {
                static const size_t sizes[2] = { BENCH_MSG_SMALL, BENCH_MSG_BULK };
                for (int i = 0; i < 2 && r == 0; i++) {
                        oneway_result res = oneway_recv(&e, sizes[i]);
                        r = fd_io_all(c->wfd, &res, sizeof(res), true);
                        if (r == 0)
                                r = res.err;
                        if (r == 0)
                                r = ctl_barrier(c);
                }
        }
        ep_close(&e);
        _exit(r == 0 ? 0 : 1);
}

/* The parent: the client of the round trips and the sender of one-way
 * traffic. Fills res; on failure, res->error says what failed. */
static void parent_side(const mech *m, mech_setup *s, const control *c, const bench_cfg *cfg,
                        mech_result *res) {
        endpoint e;
        const char *step = "connect";
        int r = ep_connect(m, s, 0, c, &e);
        if (r == 0) {
                step = "round trip";
                r = rtt_client(&e, cfg, res);
        }
        if (r == 0)
                r = ctl_barrier(c);
        if (r == 0 && !mech_is_floor(m->kind)) {
                static const size_t sizes[2] = { BENCH_MSG_SMALL, BENCH_MSG_BULK };
                for (int i = 0; i < 2 && r == 0; i++) {
                        step = i == 0 ? "64 B one-way" : "64 KiB one-way";
                        oneway_result got;
                        static windows win;
                        r = oneway_send(&e, cfg, sizes[i], i == 0 ? &win : NULL);
                        if (r == 0)
                                r = fd_io_all(c->rfd, &got, sizeof(got), false);
                        if (r == 0 && got.err)
                                r = got.err;
                        if (r == 0 && (got.ns == 0 || got.msgs == 0))
                                r = -ENODATA;
                        if (r == 0) {
                                double secs = (double)got.ns / 1e9;
                                if (i == 0) {
                                        res->msgs_per_s = (double)got.msgs / secs;
                                        res->msgs_ok = true;
                                        if (win.n >= 10) {
                                                qsort(win.rate, win.n, sizeof(win.rate[0]),
                                                      cmp_double);
                                                res->win_median = win.rate[win.n / 2];
                                                res->win_p90 = win.rate[win.n * 9 / 10];
                                                res->win_ok = true;
                                        }
                                } else {
                                        res->bulk_gb_per_s =
                                                (double)got.msgs * BENCH_MSG_BULK / secs / 1e9;
                                        res->bulk_ok = true;
                                }
                                r = ctl_barrier(c);
                        }
                }
        }
        if (r < 0)
                snprintf(res->error, sizeof(res->error), "%s: %s", step,
                         m->kind == MECH_IPCF ? ipcf_strerror(r) : strerror(-r));
        ep_close(&e);
}

/* Measure one mechanism: prepare, fork the child (server/receiver), run the
 * parent's side, reap the child (bounded). Never two mechanisms at once. */
static void run_mech(const mech *m, unsigned index, const bench_cfg *cfg, mech_result *res) {
        memset(res, 0, sizeof(*res));
        mech_setup s;
        int ctl[4] = { -1, -1, -1, -1 };
        int r = mech_prepare(m, index, &s);
        if (r == 0 && (pipe2(ctl, O_CLOEXEC) < 0 || pipe2(ctl + 2, O_CLOEXEC) < 0))
                r = -errno;
        if (r < 0) {
                snprintf(res->error, sizeof(res->error), "setup: %s", strerror(-r));
                mech_setup_free(&s);
                for (int i = 0; i < 4; i++)
                        if (ctl[i] >= 0)
                                close(ctl[i]);
                return;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                control cc = { .rfd = ctl[0], .wfd = ctl[3] };
                close(ctl[1]);
                close(ctl[2]);
                child_main(m, &s, &cc, cfg);
        }
        control pc = { .rfd = ctl[2], .wfd = ctl[1] };
        close(ctl[0]);
        close(ctl[3]);
        if (pid < 0)
                snprintf(res->error, sizeof(res->error), "fork: %s", strerror(errno));
        else
                parent_side(m, &s, &pc, cfg, res);
        close(pc.rfd);
        close(pc.wfd);
        mech_setup_free(&s);
        if (pid > 0) {
                /* The child ends once its side is done; a stuck one is killed. */
                int st = 0;
                for (int i = 0; i < 200 && waitpid(pid, &st, WNOHANG) == 0; i++)
                        usleep(10000);
                if (waitpid(pid, &st, WNOHANG) == 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                }
        }
}

/* ---- the private daemon ------------------------------------------------- */

static char runtime_dir[PATH_MAX];
static pid_t daemon_pid;

/* Start ipcfd of this build (<build>/bin/ipcfd, found from /proc/self/exe,
 * or $IPCF_DAEMON) on a private runtime directory and wait (at most 5 s)
 * until the library can connect to it. The daemon is our child: we know its
 * pid and stop it ourselves. */
static int daemon_start(void) {
        char exe[PATH_MAX], daemon[PATH_MAX + 32], log[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
                return -errno;
        exe[n] = 0;
        /* <build>/bench/bench-flow -> <build>/bin/ipcfd */
        for (int i = 0; i < 2; i++) {
                char *slash = strrchr(exe, '/');
                if (slash)
                        *slash = 0;
        }
        snprintf(daemon, sizeof(daemon), "%s/bin/ipcfd", exe);
        if (getenv("IPCF_DAEMON"))
                snprintf(daemon, sizeof(daemon), "%s", getenv("IPCF_DAEMON"));
        snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/ipcf-bench.XXXXXX");
        if (!mkdtemp(runtime_dir))
                return -errno;
        setenv("IPCF_RUNTIME_DIR", runtime_dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        snprintf(log, sizeof(log), "%s/ipcfd.log", runtime_dir);

        fflush(NULL);
        daemon_pid = fork();
        if (daemon_pid < 0)
                return -errno;
        if (daemon_pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execl(daemon, daemon, "--runtime-dir", runtime_dir, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                if (ipcf_connect() == 0)
                        return 0;
                if (waitpid(daemon_pid, NULL, WNOHANG) == daemon_pid) {
                        daemon_pid = 0;
                        fprintf(stderr, "bench-flow: %s exited at start (log: %s)\n", daemon,
                                log);
                        return -EHOSTDOWN;
                }
                usleep(10000);
        }
        return -EHOSTDOWN;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        remove(path);
        return 0;
}

/* Stop our daemon (SIGTERM, then SIGKILL after 2 s) and remove the runtime
 * directory. */
static void daemon_stop(void) {
        if (daemon_pid > 0) {
                kill(daemon_pid, SIGTERM);
                int i = 0;
                while (waitpid(daemon_pid, NULL, WNOHANG) == 0 && i++ < 200)
                        usleep(10000);
                if (i > 200) {
                        kill(daemon_pid, SIGKILL);
                        waitpid(daemon_pid, NULL, 0);
                }
                daemon_pid = 0;
        }
        if (runtime_dir[0])
                nftw(runtime_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        runtime_dir[0] = 0;
}

/* ---- combining repeated runs -------------------------------------------- */

/* Median of the n values of one metric that were measured (ok); false if
 * none was. */
static bool median_of(const double *v, const bool *ok, unsigned n, double *ret) {
        double got[BENCH_MAX_REPEAT];
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++)
                if (ok[i])
                        got[k++] = v[i];
        if (!k)
                return false;
        qsort(got, k, sizeof(double), cmp_double);
        *ret = k % 2 ? got[k / 2] : (got[k / 2 - 1] + got[k / 2]) / 2;
        return true;
}

/* The row of mechanism i: per metric, the median over the rounds that
 * measured it. The row names an error only if no round measured anything. */
static void combine_runs(mech_result runs[][N_MECHS], unsigned n, unsigned i, mech_result *out) {
        double v[BENCH_MAX_REPEAT];
        bool ok[BENCH_MAX_REPEAT];
        memset(out, 0, sizeof(*out));
#define COMBINE(flag, field)                                                   \
        do {                                                                   \
                for (unsigned r = 0; r < n; r++) {                             \
                        v[r] = runs[r][i].field;                               \
                        ok[r] = runs[r][i].flag;                               \
                }                                                              \
                out->flag = median_of(v, ok, n, &out->field);                  \
        } while (0)
        COMBINE(rtt_ok, rtt_median_us);
        COMBINE(rtt_ok, rtt_p99_us);
        COMBINE(msgs_ok, msgs_per_s);
        COMBINE(bulk_ok, bulk_gb_per_s);
        COMBINE(win_ok, win_median);
        COMBINE(win_ok, win_p90);
#undef COMBINE
        if (!out->rtt_ok && !out->msgs_ok && !out->bulk_ok)
                for (unsigned r = 0; r < n; r++)
                        if (runs[r][i].error[0])
                                memcpy(out->error, runs[r][i].error, sizeof(out->error));
}

/* ---- output ------------------------------------------------------------- */

/* "1.23×" (value ÷ the ipcf default row), or a dash when either is missing. */
static void fmt_ratio(char *buf, size_t cap, bool ok, double v, bool base_ok, double base) {
        if (!ok || !base_ok || base <= 0)
                snprintf(buf, cap, "—");
        else
                snprintf(buf, cap, "%.2f×", v / base);
}

/* Microseconds, two decimals below 10 µs, whole above. */
static void fmt_us(char *buf, size_t cap, bool ok, double us) {
        if (!ok)
                snprintf(buf, cap, "—");
        else
                snprintf(buf, cap, us < 10 ? "%.2f µs" : "%.0f µs", us);
}

/* The Markdown table: one row per mechanism that ran, failures named in
 * their row so that a broken mechanism never hides the others. */
static void print_table(const mech_result *res, const bool *ran) {
        const mech_result *base = &res[0]; /* ipcf, default qos */
        bool have_base = ran[0];
        printf("| mechanism | RTT median | RTT p99 | 64 B msgs/s | 64 KiB GB/s "
               "| RTT ÷ ipcf | msgs/s ÷ ipcf | GB/s ÷ ipcf |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (unsigned i = 0; i < N_MECHS; i++) {
                if (!ran[i])
                        continue;
                const mech_result *r = &res[i];
                char med[32], p99[32], mps[32], gbs[32], q1[32], q2[32], q3[32];
                fmt_us(med, sizeof(med), r->rtt_ok, r->rtt_median_us);
                fmt_us(p99, sizeof(p99), r->rtt_ok, r->rtt_p99_us);
                if (r->msgs_ok)
                        snprintf(mps, sizeof(mps), "%.2f M", r->msgs_per_s / 1e6);
                else
                        snprintf(mps, sizeof(mps), "—");
                if (r->bulk_ok)
                        snprintf(gbs, sizeof(gbs), "%.2f", r->bulk_gb_per_s);
                else
                        snprintf(gbs, sizeof(gbs), "—");
                fmt_ratio(q1, sizeof(q1), r->rtt_ok, r->rtt_median_us, have_base && base->rtt_ok,
                          base->rtt_median_us);
                fmt_ratio(q2, sizeof(q2), r->msgs_ok, r->msgs_per_s, have_base && base->msgs_ok,
                          base->msgs_per_s);
                fmt_ratio(q3, sizeof(q3), r->bulk_ok, r->bulk_gb_per_s,
                          have_base && base->bulk_ok, base->bulk_gb_per_s);
                printf("| %s%s%s | %s | %s | %s | %s | %s | %s | %s |\n", mechs[i].label,
                       r->error[0] ? " (failed: " : "", r->error[0] ? r->error : "", med, p99,
                       mps, gbs, q1, q2, q3);
        }
        printf("\nRatios are mechanism ÷ ipcf (default qos): an RTT ratio above 1 is slower "
               "than ipcf, a rate ratio below 1 is slower.\n");
        printf("\n64 B one-way, the sender's windows of %u messages (what a mechanism does "
               "while both processes run):\n\n| mechanism | window median | window p90 |\n"
               "|---|---:|---:|\n", WINDOW_MSGS);
        for (unsigned i = 0; i < N_MECHS; i++)
                if (ran[i] && res[i].win_ok)
                        printf("| %s | %.2f M | %.2f M |\n", mechs[i].label,
                               res[i].win_median / 1e6, res[i].win_p90 / 1e6);
}

/* ---- main --------------------------------------------------------------- */

static const char usage[] =
        "usage: bench-flow [--quick] [--same-core | --unpinned] [--only=KEYS]\n"
        "                  [--rtt=N] [--warmup=N] [--seconds=S]\n"
        "  --quick       a smoke run of ~3 s (few round trips, short one-way phases)\n"
        "  --same-core   both processes on CPU 0 (default: CPUs 0 and 1)\n"
        "  --unpinned    let the kernel place them\n"
        "  --only=KEYS   comma list of: ipcf,ipcf-nospin,pipe,stream,seqpacket,floor,sleepfloor\n"
        "  --rtt=N       timed round trips (default 100000), --warmup=N (default 10000)\n"
        "  --seconds=S   each one-way measurement (default 1.5, after 0.3 s warm-up)\n"
        "  --repeat=N    N rounds over all mechanisms, each figure their median (1..15)\n";

/* Is the mechanism with this key in --only's comma list (or no --only)? */
static bool selected(const bench_cfg *cfg, const char *key) {
        if (!cfg->only)
                return true;
        size_t k = strlen(key);
        for (const char *p = cfg->only; *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                if (len == k && !strncmp(p, key, k))
                        return true;
                p += len + (comma ? 1 : 0);
        }
        return false;
}

/* Parse options, start the daemon (if an ipcf row runs), pin, measure each
 * selected mechanism in turn, stop the daemon, print the table. Exit 1 if a
 * mechanism failed, 2 on bad usage. */
int main(int argc, char **argv) {
        bench_cfg cfg = { .place = PLACE_SPLIT, .rtt_warmup = 10000, .rtt_iters = 100000,
                          .oneway_warmup_s = 0.3, .oneway_s = 1.5, .repeat = 1 };
        static const struct option longopts[] = {
                { "quick", no_argument, NULL, 'q' },
                { "same-core", no_argument, NULL, 's' },
                { "unpinned", no_argument, NULL, 'u' },
                { "only", required_argument, NULL, 'o' },
                { "rtt", required_argument, NULL, 'r' },
                { "warmup", required_argument, NULL, 'w' },
                { "seconds", required_argument, NULL, 't' },
                { "repeat", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int opt;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'q':
                        cfg.rtt_warmup = 500;
                        cfg.rtt_iters = 3000;
                        cfg.oneway_warmup_s = 0.03;
                        cfg.oneway_s = 0.12;
                        break;
                case 's': cfg.place = PLACE_SAME_CORE; break;
                case 'u': cfg.place = PLACE_UNPINNED; break;
                case 'o': cfg.only = optarg; break;
                case 'r': cfg.rtt_iters = strtoull(optarg, NULL, 10); break;
                case 'w': cfg.rtt_warmup = strtoull(optarg, NULL, 10); break;
                case 't': cfg.oneway_s = strtod(optarg, NULL); break;
                case 'n': cfg.repeat = (unsigned)strtoul(optarg, NULL, 10); break;
                case 'h': fputs(usage, stdout); return 0;
                default: fputs(usage, stderr); return 2;
                }
        }
        if (cfg.rtt_iters < 100 || cfg.oneway_s <= 0 || optind < argc || cfg.repeat < 1 ||
            cfg.repeat > BENCH_MAX_REPEAT) {
                fputs(usage, stderr);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);

        bool need_daemon = false;
        for (unsigned i = 0; i < N_MECHS; i++)
                need_daemon |= mechs[i].kind == MECH_IPCF && selected(&cfg, mechs[i].key);
        /* Start the daemon before pinning: it must not inherit CPU 0 only. */
        if (need_daemon) {
                int r = daemon_start();
                if (r < 0) {
                        fprintf(stderr, "bench-flow: starting ipcfd: %s\n", ipcf_strerror(r));
                        daemon_stop();
                        return 1;
                }
        }
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (cfg.place == PLACE_SPLIT && ncpu < 2) {
                fprintf(stderr, "bench-flow: one CPU only: running --same-core\n");
                cfg.place = PLACE_SAME_CORE;
        }
        pin_to(&cfg, 0);
        if (cfg.place == PLACE_SAME_CORE)
                floor_spin_ns = 0;

        /* Rounds over all mechanisms (not all rounds of one, then the next),
         * so that a noisy moment of the machine spreads over every row. */
        static mech_result runs[BENCH_MAX_REPEAT][N_MECHS];
        mech_result res[N_MECHS];
        bool ran[N_MECHS] = { false };
        memset(res, 0, sizeof(res));
        for (unsigned round = 0; round < cfg.repeat; round++) {
                for (unsigned i = 0; i < N_MECHS; i++) {
                        if (!selected(&cfg, mechs[i].key))
                                continue;
                        fprintf(stderr, "bench-flow: [%u/%u] %s ...\n", round + 1, cfg.repeat,
                                mechs[i].label);
                        run_mech(&mechs[i], round * N_MECHS + i, &cfg, &runs[round][i]);
                        ran[i] = true;
                        if (runs[round][i].error[0])
                                fprintf(stderr, "bench-flow: %s failed: %s\n", mechs[i].label,
                                        runs[round][i].error);
                }
        }
        daemon_stop();
        for (unsigned i = 0; i < N_MECHS; i++)
                if (ran[i])
                        combine_runs(runs, cfg.repeat, i, &res[i]);

        struct utsname u;
        uname(&u);
        static const char *const place_name[] = { "pinned to CPUs 0 and 1 (split)",
                                                  "both on CPU 0 (same core)",
                                                  "unpinned" };
        printf("\n### bench-flow: two processes %s\n\n", place_name[cfg.place]);
        printf("%ld CPUs, Linux %s; round trips: %" PRIu64 " warm-up + %" PRIu64
               " timed (64 B); one-way: %.2f s warm-up + %.2f s per size; "
               "median of %u round%s\n\n",
               ncpu, u.release, cfg.rtt_warmup, cfg.rtt_iters, cfg.oneway_warmup_s,
               cfg.oneway_s, cfg.repeat, cfg.repeat > 1 ? "s" : "");
        print_table(res, ran);
        bool failed = false;
        for (unsigned i = 0; i < N_MECHS; i++)
                failed |= ran[i] && res[i].error[0];
        return failed ? 1 : 0;
}
