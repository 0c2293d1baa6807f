/*
 * bench-hosts.c — a flow between two hosts through both daemons, beside TCP
 * and raw UDP over the same link, in ONE run (ratios, not absolute figures,
 * are what compares: the machine is shared).
 *
 *   bench-hosts [--quick] [--seconds S] [--rtt N] [--allocs N] [--repeat N]
 *               [--link loopback|netns|both] [--only NAME,...]
 *
 * Each link: "loopback" (two daemons on 127.0.0.1, different ports) and,
 * as root, "netns" (two network namespaces joined by a veth pair; made and
 * removed by tests/support/hostset.c). On each:
 *   udp-goodput   raw UDP, 1400-byte datagrams, sendmmsg/recvmmsg (no control)
 *   tcp-goodput   TCP, 64 KiB writes
 *   ipcf-goodput  one reliable stream flow name@beta: application -> shared
 *                 memory -> daemon -> UDP (authenticated, encrypted) -> daemon ->
 *                 shared memory -> application, 64 KiB writes
 *   ipcf-lossy    the same with both daemons' impairment hook at 1 % loss
 *   tcp-rtt       64-byte ping-pong over TCP (p50, p99)
 *   relay-floor   the same through two relay processes that do nothing but
 *                 pass the bytes on (socketpair, UDP over the link,
 *                 socketpair): the round trip of the relaying shape itself
 *   ipcf-rtt      64-byte ping-pong over a flow across hosts (p50, p99)
 *   alloc         ipcf_alloc of a remote flow on a warm association until
 *                 the FLOW (the acceptor on beta accepting), p50, p99
 * and the ratios the issue sets targets for (the load average is printed
 * with them: the machine is shared): ipcf/udp goodput (>= 0.5),
 * ipcf/tcp RTT p50 (<= 1.5), lossy/loss-free goodput (>= 0.5), alloc p50
 * (<= 1 ms). Benchmarks, not tests: nothing is asserted.
 * --only NAME,... runs the measurements named (whole names from the list
 * above; another is a usage error, exit 2): the table has their rows only
 * ("failed" for one that gave no figure), and a ratio only where both of
 * its measurements gave one.
 *
 * Every measurement is two forked children, one per host (in its
 * namespace), the daemons running meanwhile: with two CPUs, up to four busy
 * processes share them (the two applications and the two daemons), which is
 * what a remote flow costs on this machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "ipcf.h"
#include "support/hostset.h"
#include "support/test.h"

#define BATCH 32
#define UDP_SIZE 1400
#define BULK (64u << 10)
#define RTT_SIZE 64
#define PORT_UDP 7801
#define PORT_TCP 7802
#define PORT_TCP_RTT 7803
#define PORT_FLOOR 7804
#define MAX_REPEAT 9

static double opt_seconds = 2.0;
static const char *opt_only; /* comma-separated measurement names, NULL: all */
static int opt_rtt = 5000, opt_allocs = 300, opt_repeat = 1;
static hostset S;

typedef struct res {
        double v, v2; /* goodput bit/s; or p50, p99 ns */
} res;

static uint64_t mono(void) { return now_ns(); }

static const char *addr_of_beta(void) { return S.netns ? "10.199.0.2" : "127.0.0.1"; }

static void put(int out, res r) {
        if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
                _exit(3);
}

typedef void (*role_fn)(int out);

/* a on alpha, b on beta, each a child in its host; the first result wins. */
static res run_pair(role_fn a, role_fn b) {
        int p[2];
        if (pipe(p) < 0)
                exit(2);
        pid_t pb = fork();
        if (pb == 0) {
                close(p[0]);
                hostset_enter(&S, 1);
                alarm(120);
                b(p[1]);
                _exit(0);
        }
        usleep(200000); /* b listens, registers */
        pid_t pa = fork();
        if (pa == 0) {
                close(p[0]);
                hostset_enter(&S, 0);
                alarm(120);
                a(p[1]);
                _exit(0);
        }
        close(p[1]);
        res r = { -1, -1 };
        if (read(p[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
                r.v = -1;
        close(p[0]);
        kill(pa, SIGKILL);
        kill(pb, SIGKILL);
        waitpid(pa, NULL, 0);
        waitpid(pb, NULL, 0);
        return r;
}

/* Count bytes between a 0.3 s warm-up and warm-up + seconds. */
typedef struct meter {
        uint64_t bytes, start, t0, tw;
} meter;

static bool meter_add(meter *m, uint64_t n, int out) {
        uint64_t now = mono();
        m->bytes += n;
        if (!m->tw)
                m->tw = now + 300000000ull;
        if (!m->t0 && now >= m->tw) {
                m->t0 = now;
                m->start = m->bytes;
        }
        if (m->t0 && now >= m->t0 + (uint64_t)(opt_seconds * 1e9)) {
                put(out, (res){ (double)(m->bytes - m->start) * 8e9 / (double)(now - m->t0), 0 });
                return true;
        }
        return false;
}

static struct sockaddr_in sa_beta(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        inet_pton(AF_INET, addr_of_beta(), &sa.sin_addr);
        return sa;
}

static void bufs(int fd) {
        int sz = 8 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

/* ---- baselines ------------------------------------------------------------- */

static void udp_blast(int out) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        bufs(fd);
        struct sockaddr_in sa = sa_beta(PORT_UDP);
        connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        static uint8_t buf[BATCH][UDP_SIZE];
        struct mmsghdr m[BATCH];
        struct iovec iov[BATCH];
        for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){ buf[i], UDP_SIZE };
                m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        for (;;)
                sendmmsg(fd, m, BATCH, 0);
}

static void udp_sink(int out) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        bufs(fd);
        struct sockaddr_in sa = sa_beta(PORT_UDP);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                _exit(2);
        static uint8_t buf[BATCH][2048];
        struct mmsghdr m[BATCH];
        struct iovec iov[BATCH];
        for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
                m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        meter mt = { 0 };
        for (;;) {
                int n = recvmmsg(fd, m, BATCH, 0, NULL);
                uint64_t b = 0;
                for (int i = 0; i < n; i++)
                        b += m[i].msg_len;
                if (meter_add(&mt, b, out))
                        return;
        }
}

static int tcp_connect(uint16_t port) {
        struct sockaddr_in sa = sa_beta(port);
        for (int t = 0; t < 200; t++) {
                int fd = socket(AF_INET, SOCK_STREAM, 0);
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        int one = 1;
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        return fd;
                }
                close(fd);
                usleep(10000);
        }
        _exit(2);
}

static int tcp_accept(uint16_t port) {
        int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in sa = sa_beta(port);
        if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0)
                _exit(2);
        int fd = accept(l, NULL, NULL);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        close(l);
        return fd;
}

static void tcp_blast(int out) {
        int fd = tcp_connect(PORT_TCP);
        static uint8_t buf[BULK];
        while (write(fd, buf, sizeof(buf)) > 0)
                ;
}

static void tcp_sink(int out) {
        int fd = tcp_accept(PORT_TCP);
        static uint8_t buf[BULK];
        meter mt = { 0 };
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (meter_add(&mt, (uint64_t)n, out))
                        return;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static void report(int out, uint64_t *s, int n) {
        qsort(s, (size_t)n, sizeof(*s), cmp_u64);
        put(out, (res){ (double)s[n / 2], (double)s[n * 99 / 100] });
}

static void read_all(int fd, uint8_t *buf, size_t n) {
        for (size_t got = 0; got < n;) {
                ssize_t r = read(fd, buf + got, n - got);
                if (r <= 0)
                        _exit(2);
                got += (size_t)r;
        }
}

/* 64-byte round trips over a stream descriptor (TCP, or the relay floor's
 * socketpair), the p50 and p99 reported. */
static void stream_ping(int fd, int out) {
        uint8_t buf[RTT_SIZE] = { 1 };
        int warm = opt_rtt / 10;
        uint64_t *s = calloc((size_t)opt_rtt, sizeof(*s));
        for (int i = 0; i < warm + opt_rtt; i++) {
                uint64_t t = mono();
                if (write(fd, buf, sizeof(buf)) != RTT_SIZE)
                        _exit(2);
                read_all(fd, buf, sizeof(buf));
                if (i >= warm)
                        s[i - warm] = mono() - t;
        }
        report(out, s, opt_rtt);
}

/* Its other end: each 64 bytes back, until the descriptor fails. */
static void stream_pong(int fd, int out) {
        (void)out;
        uint8_t buf[RTT_SIZE];
        for (;;) {
                read_all(fd, buf, sizeof(buf));
                if (write(fd, buf, sizeof(buf)) != RTT_SIZE)
                        _exit(2);
        }
}

static void tcp_ping(int out) { stream_ping(tcp_connect(PORT_TCP_RTT), out); }
static void tcp_pong(int out) { stream_pong(tcp_accept(PORT_TCP_RTT), out); }

/* ---- the relay's floor ---------------------------------------------------------
 * The shape of a remote flow with none of its work: on each host an
 * application and a relay process joined by a Unix socketpair, the two relays
 * joined by UDP over the link, every process blocking in read/recv. A 64-byte
 * round trip is then six hand-offs between four processes (A, relay A,
 * relay B, B, relay B, relay A) where TCP's is two between two: what any
 * relaying design pays on this machine before sealing, sequencing or a
 * shared-memory ring. ipcf-rtt ÷ relay-floor is what ipcf's relay adds. */

/* Fork the application's side of a host; the caller is its relay. */
static int floor_split(void (*app)(int fd, int out), int out) {
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
                _exit(2);
        pid_t pid = fork();
        if (pid < 0)
                _exit(2);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(sp[0]);
                app(sp[1], out);
                _exit(0);
        }
        close(sp[1]);
        return sp[0];
}

static void floor_relay_a(int out) {
        int app = floor_split(stream_ping, out);
        int udp = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = sa_beta(PORT_FLOOR);
        if (connect(udp, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                _exit(2);
        uint8_t buf[RTT_SIZE];
        for (;;) {
                read_all(app, buf, sizeof(buf));
                if (send(udp, buf, sizeof(buf), 0) != RTT_SIZE || recv(udp, buf, sizeof(buf), 0) != RTT_SIZE ||
                    write(app, buf, sizeof(buf)) != RTT_SIZE)
                        _exit(2);
        }
}

static void floor_relay_b(int out) {
        int app = floor_split(stream_pong, out);
        int udp = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = sa_beta(PORT_FLOOR), from;
        if (bind(udp, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                _exit(2);
        uint8_t buf[RTT_SIZE];
        for (;;) {
                socklen_t fl = sizeof(from);
                if (recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) != RTT_SIZE ||
                    write(app, buf, sizeof(buf)) != RTT_SIZE)
                        _exit(2);
                read_all(app, buf, sizeof(buf));
                if (sendto(udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, fl) != RTT_SIZE)
                        _exit(2);
        }
}

/* ---- ipcf across hosts -------------------------------------------------------- */

static int alloc_retry(const char *name, const ipcf_qos *q) {
        int p = -ENOENT;
        for (int t = 0; t < 100 && p == -ENOENT; t++)
                if ((p = ipcf_alloc(name, q, 10000, NULL)) == -ENOENT)
                        usleep(20000);
        if (p < 0) {
                fprintf(stderr, "alloc %s: %s\n", name, ipcf_strerror(p));
                _exit(2);
        }
        return p;
}

static void ipcf_blast(int out) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.mode = IPCF_MODE_STREAM;
        q.max_bytes = 4 << 20;
        int port = alloc_retry("sink@beta", &q);
        static uint8_t buf[BULK];
        while (ipcf_write(port, buf, sizeof(buf), 10000) > 0)
                ;
}

static void ipcf_sink(int out) {
        int reg = ipcf_register("sink", NULL);
        int port = ipcf_accept(reg, 10000, NULL);
        if (port < 0)
                _exit(2);
        static uint8_t buf[BULK];
        meter mt = { 0 };
        ssize_t n;
        while ((n = ipcf_read(port, buf, sizeof(buf), 10000)) > 0)
                if (meter_add(&mt, (uint64_t)n, out))
                        return;
}

static void ipcf_ping(int out) {
        int port = alloc_retry("echo@beta", NULL);
        uint8_t buf[RTT_SIZE] = { 1 };
        int warm = opt_rtt / 10;
        uint64_t *s = calloc((size_t)opt_rtt, sizeof(*s));
        for (int i = 0; i < warm + opt_rtt; i++) {
                uint64_t t = mono();
                if (ipcf_write(port, buf, sizeof(buf), 10000) != RTT_SIZE ||
                    ipcf_read(port, buf, sizeof(buf), 10000) != RTT_SIZE)
                        _exit(2);
                if (i >= warm)
                        s[i - warm] = mono() - t;
        }
        report(out, s, opt_rtt);
}

static void ipcf_pong(int out) {
        int reg = ipcf_register("echo", NULL);
        int port = ipcf_accept(reg, 10000, NULL);
        uint8_t buf[RTT_SIZE];
        ssize_t n;
        while ((n = ipcf_read(port, buf, sizeof(buf), 30000)) > 0)
                if (ipcf_write(port, buf, (size_t)n, 10000) != n)
                        return;
}

static void ipcf_allocs(int out) {
        int warm = opt_allocs / 10;
        uint64_t *s = calloc((size_t)opt_allocs, sizeof(*s));
        ipcf_dealloc(alloc_retry("acc@beta", NULL), "warm");
        for (int i = 0; i < warm + opt_allocs; i++) {
                uint64_t t = mono();
                int p = ipcf_alloc("acc@beta", NULL, 10000, NULL);
                uint64_t d = mono() - t;
                if (p < 0)
                        _exit(2);
                ipcf_dealloc(p, "bye");
                if (i >= warm)
                        s[i - warm] = d;
        }
        report(out, s, opt_allocs);
}

static void ipcf_acceptor(int out) {
        int reg = ipcf_register("acc", NULL);
        for (;;) {
                int p = ipcf_accept(reg, 30000, NULL);
                if (p < 0)
                        return;
                ipcf_dealloc(p, NULL);
        }
}

/* ---- the run ------------------------------------------------------------------ */

enum { M_UDP, M_TCP, M_IPCF, M_LOSSY, M_TCP_RTT, M_FLOOR_RTT, M_IPCF_RTT, M_ALLOC, M_N };
static const char *const names[M_N] = { "udp-goodput", "tcp-goodput", "ipcf-goodput", "ipcf-lossy",
                                        "tcp-rtt",     "relay-floor", "ipcf-rtt",     "alloc" };

#define ALLOW "[name *]\nremote_allocate = *@alpha\n"

static int opt_poll_us = -1;

static void daemons(bool lossy) {
        for (int i = 0; i < 2; i++)
                hostset_stop_host(&S, i);
        char conf[512];
        static char keys[64];
        snprintf(conf, sizeof(conf), "%s%s", ALLOW, lossy ? "[impair]\nloss = 1%\nseed = 5\n" : "");
        if (opt_poll_us >= 0) {
                snprintf(keys, sizeof(keys), "poll_us = %d\n", opt_poll_us);
                S.hosts_keys = keys;
        }
        hostset_start(&S, 0, conf);
        hostset_start(&S, 1, conf);
        if (!hostset_wait_up(&S, 0, 15000))
                fprintf(stderr, "bench-hosts: hosts not up\n");
}

static int cmp_res(const void *a, const void *b) {
        double x = ((const res *)a)->v, y = ((const res *)b)->v;
        return x < y ? -1 : x > y;
}

/* --only: is m one of the names given (whole names, comma-separated)? */
static bool selected(int m) {
        if (!opt_only)
                return true;
        size_t n = strlen(names[m]);
        for (const char *p = opt_only; *p;) {
                size_t len = strcspn(p, ",");
                if (len == n && !strncmp(p, names[m], n))
                        return true;
                p += len + (p[len] == ',');
        }
        return false;
}

/* --only's names all known? Else the first unknown one, for the usage line. */
static const char *only_unknown(void) {
        static char bad[64];
        for (const char *p = opt_only; p && *p;) {
                size_t len = strcspn(p, ",");
                bool known = false;
                for (int m = 0; m < M_N && !known; m++)
                        known = strlen(names[m]) == len && !strncmp(p, names[m], len);
                if (!known) {
                        snprintf(bad, sizeof(bad), "%.*s", (int)(len < 63 ? len : 63), p);
                        return bad;
                }
                p += len + (p[len] == ',');
        }
        return NULL;
}

/* How a row reads: goodputs in Gbit/s, round trips in us, allocations in
 * ms (p50, p99); the ratios it is given (to another measurement of the same
 * run, by its name in the ratio column) and the target. */
static const struct row {
        enum { GOODPUT, MICRO, MILLI } kind;
        int to[2];           /* the measurements it is a ratio of (-1: none) */
        const char *as[2];   /* "raw UDP": what the ratio column calls them */
        const char *target;
} rows[M_N] = {
        [M_UDP] = { GOODPUT, { -1, -1 }, { 0 }, "" },
        [M_TCP] = { GOODPUT, { M_UDP, -1 }, { "raw UDP" }, "" },
        [M_IPCF] = { GOODPUT, { M_UDP, -1 }, { "raw UDP" }, ">= 0.5x" },
        [M_LOSSY] = { GOODPUT, { M_IPCF, -1 }, { "loss-free" }, ">= 0.5x" },
        [M_TCP_RTT] = { MICRO, { -1, -1 }, { 0 }, "" },
        [M_FLOOR_RTT] = { MICRO, { M_TCP_RTT, -1 }, { "TCP p50" }, "" },
        [M_IPCF_RTT] = { MICRO, { M_TCP_RTT, M_FLOOR_RTT }, { "TCP p50", "the floor" }, "<= 1.5x TCP" },
        [M_ALLOC] = { MILLI, { -1, -1 }, { 0 }, "p50 <= 1 ms" },
};

/* Measured: chosen by --only, and its median run gave a figure (a failed
 * run gives -1). */
static bool measured(int m, const res *med) { return selected(m) && med[m].v > 0; }

/* m's row of the table: none if it was not run, "failed" if it gave no
 * figure, and each ratio only when both sides were measured. */
static void print_row(int m, const res *med) {
        const struct row *w = &rows[m];
        if (!selected(m))
                return;
        if (!measured(m, med)) {
                printf("| %s | failed | | %s |\n", names[m], w->target);
                return;
        }
        char value[64], ratio[96] = "";
        if (w->kind == GOODPUT)
                snprintf(value, sizeof(value), "%.3f Gbit/s", med[m].v / 1e9);
        else if (w->kind == MICRO)
                snprintf(value, sizeof(value), "p50 %.1f us, p99 %.1f us", med[m].v / 1e3, med[m].v2 / 1e3);
        else
                snprintf(value, sizeof(value), "p50 %.3f ms, p99 %.3f ms", med[m].v / 1e6, med[m].v2 / 1e6);
        size_t len = 0;
        for (int i = 0; i < 2; i++) {
                int o = w->to[i];
                if (o < 0 || !measured(o, med) || len >= sizeof(ratio))
                        continue;
                int n = snprintf(ratio + len, sizeof(ratio) - len, "%s%.2fx %s", len ? ", " : "",
                                 med[m].v / med[o].v, w->as[i]);
                len += n > 0 ? (size_t)n : 0;
        }
        printf("| %s | %s | %s | %s |\n", names[m], value, ratio, w->target);
}

static void run_link(int mode) {
        if (!hostset_init(&S, 2, mode)) {
                printf("\n(link %s: needs root, skipped)\n", mode == HOSTSET_NETNS ? "netns" : "loopback");
                return;
        }
        static res r[M_N][MAX_REPEAT];
        static const role_fn roles[M_N][2] = {
                [M_UDP] = { udp_blast, udp_sink },        [M_TCP] = { tcp_blast, tcp_sink },
                [M_IPCF] = { ipcf_blast, ipcf_sink },     [M_LOSSY] = { ipcf_blast, ipcf_sink },
                [M_TCP_RTT] = { tcp_ping, tcp_pong },     [M_IPCF_RTT] = { ipcf_ping, ipcf_pong },
                [M_FLOOR_RTT] = { floor_relay_a, floor_relay_b },
                [M_ALLOC] = { ipcf_allocs, ipcf_acceptor },
        };
        memset(r, 0, sizeof(r));
        for (int k = 0; k < opt_repeat; k++) {
                /* the lossy run last: its daemons impair */
                for (int lossy = 0; lossy < 2; lossy++) {
                        bool started = false;
                        for (int m = 0; m < M_N; m++) {
                                if ((m == M_LOSSY) != lossy || !selected(m))
                                        continue;
                                if (!started)
                                        daemons(lossy);
                                started = true;
                                r[m][k] = run_pair(roles[m][0], roles[m][1]);
                        }
                }
        }
        res med[M_N];
        for (int m = 0; m < M_N; m++) {
                qsort(r[m], (size_t)opt_repeat, sizeof(res), cmp_res);
                med[m] = r[m][opt_repeat / 2];
        }
        const char *link = mode == HOSTSET_NETNS ? "two network namespaces over veth" : "loopback (127.0.0.1)";
        printf("\n### %s (median of %d)\n\n| measurement | value | ratio | target |\n|---|---|---|---|\n", link,
               opt_repeat);
        for (int m = 0; m < M_N; m++)
                print_row(m, med);
        fflush(stdout);
        hostset_stop(&S);
}

int main(int argc, char **argv) {
        const char *link = "both";
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick")) {
                        opt_seconds = 0.5;
                        opt_rtt = 500;
                        opt_allocs = 50;
                } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
                        opt_seconds = atof(argv[++i]);
                } else if (!strcmp(argv[i], "--rtt") && i + 1 < argc) {
                        opt_rtt = atoi(argv[++i]);
                } else if (!strcmp(argv[i], "--allocs") && i + 1 < argc) {
                        opt_allocs = atoi(argv[++i]);
                } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
                        opt_repeat = atoi(argv[++i]);
                } else if (!strcmp(argv[i], "--poll-us") && i + 1 < argc) {
                        opt_poll_us = atoi(argv[++i]);
                } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
                        opt_only = argv[++i];
                } else if (!strcmp(argv[i], "--link") && i + 1 < argc) {
                        link = argv[++i];
                } else {
                        fprintf(stderr, "usage: bench-hosts [--quick] [--seconds S] [--rtt N] [--allocs N] "
                                        "[--repeat N] [--link loopback|netns|both] [--only udp-goodput,ipcf-rtt,...]\n");
                        return 2;
                }
        }
        const char *unknown = only_unknown();
        if (unknown) {
                fprintf(stderr, "bench-hosts: --only: no measurement '%s' (", unknown);
                for (int m = 0; m < M_N; m++)
                        fprintf(stderr, "%s%s", m ? ", " : "", names[m]);
                fprintf(stderr, ")\n");
                return 2;
        }
        if (opt_repeat < 1 || opt_repeat > MAX_REPEAT)
                opt_repeat = opt_repeat < 1 ? 1 : MAX_REPEAT;
        if (opt_rtt < 10)
                opt_rtt = 10;
        if (opt_allocs < 10)
                opt_allocs = 10;
        signal(SIGPIPE, SIG_IGN);
        /* the daemons of this build: IPCF_BUILD (tests' helpers), else ours */
        if (!getenv("IPCF_BUILD")) {
                char self[4096];
                ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n > 0) {
                        self[n] = 0;
                        char *b = strstr(self, "/bench/bench-hosts");
                        if (b) {
                                *b = 0;
                                setenv("IPCF_BUILD", self, 1);
                        }
                }
        }
        char scratch[] = "/tmp/bench-hosts.XXXXXX";
        if (!mkdtemp(scratch))
                return 1;
        setenv("TEST_SCRATCH", scratch, 1);
        double load[3] = { 0 };
        getloadavg(load, 3);
        printf("## bench-hosts: a flow across hosts through both daemons, beside TCP and raw UDP "
               "(%.1f s per goodput run, %d round trips, %d allocations; load average %.2f %.2f %.2f)\n",
               opt_seconds, opt_rtt, opt_allocs, load[0], load[1], load[2]);
        if (strcmp(link, "netns") != 0)
                run_link(HOSTSET_LOOPBACK);
        if (strcmp(link, "loopback") != 0)
                run_link(HOSTSET_NETNS);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch);
        return system(cmd) == 0 ? 0 : 1;
}
