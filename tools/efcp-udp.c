/*
 * efcp-udp — runs the EFCP engine between two processes over real UDP on
 * loopback, and measures it beside raw UDP and TCP in the same run.
 *
 *   efcp-udp [--seconds S] [--loss P] [--rtt-count N] [--no-pin]
 *            [--cc newreno|cubic] [--spin-us N] [--repeat N] [--netns] [--only WHAT]
 *
 * Goodput runs may busy-poll up to --spin-us (0) before sleeping, as a daemon
 * carrying bulk traffic would; RTT runs always block (like the raw UDP
 * baseline they are compared with: the EFCP ends wait inside recvmmsg, with
 * a 200 µs socket timeout to run the engine's timers).
 *
 * The two processes of each measurement are pinned to CPUs 0 and 1 unless
 * --no-pin is given. *
 * Measurements (each between two forked processes):
 *   udp-goodput   raw UDP, 1400-byte datagrams, sendmmsg/recvmmsg, no control
 *   tcp-goodput   TCP, 64 KiB writes
 *   efcp-goodput  one reliable ordered EFCP flow, one-PDU messages
 *   efcp-secure   the same flow over an authenticated, encrypted host association
 *                 (host.h: Noise IK handshake first, then ChaCha20-Poly1305)
 *   efcp-lossy    the same with P loss (default 1 %) injected by the impairment
 *                 hook inside this tool (both directions; the kernel has no netem)
 *   udp-rtt       64-byte ping-pong over raw UDP (median, p99)
 *   efcp-rtt      64-byte ping-pong over an EFCP flow
 *   secure-rtt    the same over an authenticated, encrypted host association
 *   handshake     Noise IK handshakes between two hosts in one thread: CPU per
 *                 handshake (both sides' work)
 *   engine        the engine alone, both ends in one thread, memory to memory:
 *                 PDUs per CPU-second (sender + receiver work on one core)
 * and prints a table with ratios: the median of --repeat runs (measurements
 * interleaved), with the range. Benchmarks, not tests: nothing is asserted.
 *
 * Everything goes to 127.0.0.1 only, or with --netns (root) between two
 * network namespaces this tool creates and removes, over a veth pair on the
 * private 10.77.0.0/24. The engine's time is CLOCK_MONOTONIC.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "efcp/efcp.h"
#include "efcp/host.h"
#include "efcp/noise.h"

#define BATCH 32
#define UDP_SIZE 1400
#define RTT_SIZE 64

static double opt_seconds = 2.0;
static double opt_loss = 0.01;
static int opt_rtt_count = 20000;
static const char *opt_only;
static bool opt_pin = true;
static uint32_t opt_cc = EFCP_CC_NEWRENO;
static uint64_t opt_spin_ns = 0;
static uint32_t opt_ack_every = 2;
static bool opt_ack_flush;

/* Pins the calling process to one CPU (the two ends on different vCPUs, as
 * the baselines in ANCHORS.md were measured). */
static void pin_cpu(int cpu) {
        if (!opt_pin)
                return;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
        sched_setaffinity(0, sizeof(set), &set);
}

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
        perror(what);
        _exit(2);
}

/* ---- sockets ------------------------------------------------------------ */

/* UDP socket options: don't-fragment and large buffers. */
static void sock_bufs(int fd) {
        /* don't fragment: a datagram too big for the path must fail, not be
         * split by IP (EFCP sizes its datagrams itself) */
        int pmtu = IP_PMTUDISC_DO;
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
        int sz = 8 << 20;
        /* FORCE variants exceed rmem_max when we may; else take what we get */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

static bool opt_netns;

/* Two UDP sockets on 127.0.0.1, each connected to the other (with --netns:
 * placeholders; each child makes its socket in its namespace). */
static void udp_pair(int fd[2]) {
        if (opt_netns) {
                fd[0] = fd[1] = -1;
                return;
        }
        struct sockaddr_in sa[2];
        for (int i = 0; i < 2; i++) {
                fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd[i] < 0)
                        die("socket");
                sock_bufs(fd[i]);
                sa[i] = (struct sockaddr_in){.sin_family = AF_INET,
                                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                socklen_t l = sizeof(sa[i]);
                if (bind(fd[i], (struct sockaddr *)&sa[i], sizeof(sa[i])) < 0 ||
                    getsockname(fd[i], (struct sockaddr *)&sa[i], &l) < 0)
                        die("bind");
        }
        for (int i = 0; i < 2; i++)
                if (connect(fd[i], (struct sockaddr *)&sa[!i], sizeof(sa[!i])) < 0)
                        die("connect");
}

/* A connected TCP pair over loopback (--netns: placeholders, as above). */
static void tcp_pair(int fd[2]) {
        if (opt_netns) {
                fd[0] = fd[1] = -2;
                return;
        }
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
            getsockname(l, (struct sockaddr *)&sa, &len) < 0)
                die("tcp listen");
        fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("tcp connect");
        fd[1] = accept(l, NULL, NULL);
        if (fd[1] < 0)
                die("accept");
        close(l);
        int one = 1;
        setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- network namespaces (--netns) -----------------------------------------
 *
 * Two namespaces made for this run, joined by a veth pair: A = 10.77.0.1,
 * B = 10.77.0.2 on a private /24 that exists only inside them. Each child
 * enters its namespace and opens its own socket there (a socket belongs to
 * the namespace it was created in). Removed at exit. */

static char ns_name[2][64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
        char cmd[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        return system(cmd);
}

static void netns_down(void) {
        for (int i = 0; i < 2; i++)
                if (ns_name[i][0])
                        sh("ip netns del %s 2>/dev/null", ns_name[i]);
}

static pid_t g_child[2]; /* the two ends of the running measurement */

static void netns_on_signal(int sig) {
        for (int i = 0; i < 2; i++)
                if (g_child[i] > 0)
                        kill(g_child[i], SIGKILL);
        netns_down(); /* system() in a handler: acceptable in a tool about to die */
        signal(sig, SIG_DFL);
        raise(sig);
}

static void netns_up(void) {
        int pid = (int)getpid();
        signal(SIGINT, netns_on_signal);
        signal(SIGTERM, netns_on_signal);
        signal(SIGHUP, netns_on_signal);
        for (int i = 0; i < 2; i++)
                snprintf(ns_name[i], sizeof(ns_name[i]), "efcp%c%d", 'A' + i, pid);
        atexit(netns_down);
        if (sh("ip netns add %s && ip netns add %s", ns_name[0], ns_name[1]) ||
            sh("ip link add eva%d type veth peer name evb%d", pid, pid) ||
            sh("ip link set eva%d netns %s && ip link set evb%d netns %s", pid, ns_name[0], pid,
               ns_name[1]) ||
            sh("ip -n %s addr add 10.77.0.1/24 dev eva%d && ip -n %s link set eva%d up && "
               "ip -n %s link set lo up",
               ns_name[0], pid, ns_name[0], pid, ns_name[0]) ||
            sh("ip -n %s addr add 10.77.0.2/24 dev evb%d && ip -n %s link set evb%d up && "
               "ip -n %s link set lo up",
               ns_name[1], pid, ns_name[1], pid, ns_name[1])) {
                fprintf(stderr, "efcp-udp: could not set up network namespaces (root and ip(8) needed)\n");
                exit(2);
        }
}

enum { SOCK_KIND_UDP, SOCK_KIND_TCP };

/* In a child: enter namespace side and open the socket of this measurement.
 * UDP: bound to our address, connected to the peer's (fixed ports: the
 * namespaces are private). TCP: B listens, A connects (retrying while B
 * starts). */
static int netns_socket(int side, int kind) {
        char path[128];
        snprintf(path, sizeof(path), "/run/netns/%s", ns_name[side]);
        int nfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0)
                die("setns");
        close(nfd);
        struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(7700)};
        struct sockaddr_in peer = me;
        me.sin_addr.s_addr = htonl(0x0a4d0001u + (uint32_t)side);
        peer.sin_addr.s_addr = htonl(0x0a4d0001u + (uint32_t)!side);
        if (kind == SOCK_KIND_UDP) {
                int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        die("socket");
                sock_bufs(fd);
                if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0 ||
                    connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
                        die("netns udp");
                return fd;
        }
        int one = 1;
        if (side == 1) {
                int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (l < 0 || bind(l, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(l, 1) < 0)
                        die("netns listen");
                int fd = accept(l, NULL, NULL);
                if (fd < 0)
                        die("accept");
                close(l);
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                return fd;
        }
        for (int tries = 0; tries < 200; tries++) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&peer, sizeof(peer)) == 0) {
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        return fd;
                }
                if (fd >= 0)
                        close(fd);
                usleep(10000);
        }
        die("netns connect");
        return -1;
}

/* ---- running two children and collecting one number ------------------- */

typedef struct result {
        double value, value2; /* goodput bit/s; or RTT median, p99 in ns */
        uint64_t extra[4];
} result;

typedef void (*role_fn)(int fd, int out, void *arg);

/* Runs a(fd[0]) and b(fd[1]) in two children; the one that measures writes a
 * result to its pipe. Returns the first result read. */
static result run_pair(int fd[2], role_fn a, role_fn b, void *arg) {
        int pp[2];
        int kind = fd[0] == -2 ? SOCK_KIND_TCP : SOCK_KIND_UDP; /* netns: made in the child */
        if (pipe(pp) < 0)
                die("pipe");
        pid_t pa = fork();
        if (pa == 0) {
                close(pp[0]);
                if (fd[1] >= 0)
                        close(fd[1]);
                pin_cpu(0);
                a(fd[0] >= 0 ? fd[0] : netns_socket(0, kind), pp[1], arg);
                _exit(0);
        }
        g_child[0] = pa;
        pid_t pb = fork();
        if (pb == 0) {
                close(pp[0]);
                if (fd[0] >= 0)
                        close(fd[0]);
                pin_cpu(1);
                b(fd[1] >= 0 ? fd[1] : netns_socket(1, kind), pp[1], arg);
                _exit(0);
        }
        g_child[1] = pb;
        close(pp[1]);
        if (fd[0] >= 0)
                close(fd[0]);
        if (fd[1] >= 0)
                close(fd[1]);
        /* wait for the result, but notice a child that died without one
         * (the other would otherwise keep the pipe open for ever) */
        result r = {.value = -1};
        for (;;) {
                struct pollfd p = {.fd = pp[0], .events = POLLIN};
                if (poll(&p, 1, 1000) > 0) {
                        if (read(pp[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
                                r.value = -1;
                        break;
                }
                if (waitpid(pa, NULL, WNOHANG) == pa || waitpid(pb, NULL, WNOHANG) == pb) {
                        /* one is gone: a result may still be in the pipe */
                        if (poll(&p, 1, 0) > 0 && read(pp[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
                                r.value = -1;
                        break;
                }
        }
        kill(pa, SIGKILL);
        kill(pb, SIGKILL);
        waitpid(pa, NULL, 0);
        waitpid(pb, NULL, 0);
        g_child[0] = g_child[1] = 0;
        close(pp[0]);
        return r;
}

static void put_result(int out, const result *r) {
        if (write(out, r, sizeof(*r)) != (ssize_t)sizeof(*r))
                _exit(3);
}

/* ---- raw UDP and TCP goodput --------------------------------------------- */

static void udp_blast(int fd, int out, void *arg) {
        static uint8_t buf[BATCH][UDP_SIZE];
        struct mmsghdr m[BATCH];
        struct iovec iov[BATCH];
        for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){buf[i], UDP_SIZE};
                m[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
        }
        for (;;)
                sendmmsg(fd, m, BATCH, 0);
}

/* Counts received bytes between warm-up end and warm-up + seconds. */
static void count_goodput(int out, uint64_t bytes_at_start, uint64_t t0, uint64_t bytes, uint64_t t) {
        result r = {.value = (double)(bytes - bytes_at_start) * 8e9 / (double)(t - t0)};
        put_result(out, &r);
}

static void udp_sink(int fd, int out, void *arg) {
        static uint8_t buf[BATCH][2048];
        struct mmsghdr m[BATCH];
        struct iovec iov[BATCH];
        for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){buf[i], sizeof(buf[i])};
                m[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
        }
        uint64_t bytes = 0, start = 0, t0 = 0, tw = 0;
        for (;;) {
                int n = recvmmsg(fd, m, BATCH, 0, NULL);
                uint64_t now = mono_ns();
                for (int i = 0; i < n; i++)
                        bytes += m[i].msg_len;
                if (!tw)
                        tw = now + 300000000ull;
                if (!t0 && now >= tw) {
                        t0 = now;
                        start = bytes;
                }
                if (t0 && now >= t0 + (uint64_t)(opt_seconds * 1e9)) {
                        count_goodput(out, start, t0, bytes, now);
                        return;
                }
        }
}

static void tcp_blast(int fd, int out, void *arg) {
        static uint8_t buf[65536];
        for (;;)
                if (write(fd, buf, sizeof(buf)) < 0)
                        return;
}

static void tcp_sink(int fd, int out, void *arg) {
        static uint8_t buf[65536];
        uint64_t bytes = 0, start = 0, t0 = 0, tw = 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        return;
                bytes += (uint64_t)n;
                uint64_t now = mono_ns();
                if (!tw)
                        tw = now + 300000000ull;
                if (!t0 && now >= tw) {
                        t0 = now;
                        start = bytes;
                }
                if (t0 && now >= t0 + (uint64_t)(opt_seconds * 1e9)) {
                        count_goodput(out, start, t0, bytes, now);
                        return;
                }
        }
}

/* ---- raw UDP ping-pong ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static void rtt_report(int out, uint64_t *s, int n) {
        qsort(s, (size_t)n, sizeof(*s), cmp_u64);
        result r = {.value = (double)s[n / 2], .value2 = (double)s[n * 99 / 100]};
        put_result(out, &r);
}

static void udp_ping(int fd, int out, void *arg) {
        uint8_t buf[RTT_SIZE] = {1};
        int warm = opt_rtt_count / 10, n = opt_rtt_count;
        uint64_t *s = calloc((size_t)n, sizeof(uint64_t));
        for (int i = 0; i < warm + n; i++) {
                uint64_t t = mono_ns();
                /* an ICMP error left over from an earlier run on a recycled
                 * port shows up once as ECONNREFUSED: that round is retried */
                if (send(fd, buf, sizeof(buf), 0) < 0 || recv(fd, buf, sizeof(buf), 0) < 0) {
                        if (errno != ECONNREFUSED)
                                die("udp ping");
                        i--;
                        continue;
                }
                if (i >= warm)
                        s[i - warm] = mono_ns() - t;
        }
        rtt_report(out, s, n);
}

static void udp_pong(int fd, int out, void *arg) {
        uint8_t buf[RTT_SIZE];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0 && errno == ECONNREFUSED)
                        continue; /* a stale ICMP error, as in udp_ping */
                if (n < 0 || (send(fd, buf, (size_t)n, 0) < 0 && errno != ECONNREFUSED))
                        return;
        }
}

/* ---- the EFCP endpoint: an event loop around one association --------------- */

typedef struct ep {
        int fd;
        efcp_assoc *a;
        efcp_flow *f;
        uint64_t rng;
        double loss;
        uint8_t rx[BATCH][2048];
        uint8_t tx[BATCH][2048];
        struct mmsghdr rm[BATCH], tm[BATCH];
        struct iovec riov[BATCH], tiov[BATCH];
        int ntx;
        uint64_t dropped;
        uint64_t spin_ns; /* busy-poll this long before sleeping (bulk runs) */
        uint64_t idle_since;
        efcp_host *h;     /* authenticated mode: the host layer around the association */
        efcp_peer *p;
} ep;

/* The two sides' key pairs, made before the children fork (each knows the
 * other's public key, as enrolment would give it). */
static uint8_t g_priv[2][32], g_pub[2][32];

static void ep_output_any(ep *e, uint64_t now, int *ret_len, uint8_t *buf, size_t cap) {
        efcp_addr dst;
        *ret_len = e->h ? efcp_host_output(e->h, buf, cap, now, &dst) : efcp_output(e->a, buf, cap, now);
}

static void ep_input_one(ep *e, const uint8_t *d, size_t len, uint64_t now) {
        if (e->h)
                efcp_host_input(e->h, d, len, NULL, 0, now);
        else
                efcp_input(e->a, d, len, now);
}

static uint64_t ep_deadline(const ep *e) {
        return e->h ? efcp_host_next_deadline(e->h) : efcp_next_deadline(e->a);
}

static void ep_init(ep *e, int fd, int side, double loss) {
        efcp_config c;
        efcp_config_default(&c);
        c.local_index = (uint32_t)side;
        c.remote_index = (uint32_t)!side;
        c.flow_window = 2048;
        c.flow_send_buf = 2048;
        c.max_inflight = 8192;
        c.seed = (uint64_t)side + 1;
        c.cc = opt_cc;
        c.ack_every = opt_ack_every;
        if (e->h) {
                /* authenticated: a host with this side's key, the other enrolled */
                efcp_host_config hc;
                efcp_host_config_default(&hc);
                hc.assoc = c;
                memcpy(hc.private_key, g_priv[side], 32);
                struct timespec rt;
                clock_gettime(CLOCK_REALTIME, &rt);
                hc.clock_offset_ns = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
                if (efcp_host_new(&hc, mono_ns(), &e->h) < 0 ||
                    efcp_host_add_peer(e->h, g_pub[!side], NULL, 0, &e->p) < 0)
                        die("efcp_host_new");
                if (side == 0)
                        efcp_peer_connect(e->p, mono_ns());
        } else if (efcp_assoc_new(&c, mono_ns(), &e->a) < 0) {
                die("efcp_assoc_new");
        }
        e->fd = fd;
        e->loss = loss;
        e->rng = 0x12345678u + (uint64_t)side;
        for (int i = 0; i < BATCH; i++) {
                e->riov[i] = (struct iovec){e->rx[i], sizeof(e->rx[i])};
                e->rm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &e->riov[i], .msg_iovlen = 1}};
                e->tiov[i] = (struct iovec){e->tx[i], 0};
                e->tm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &e->tiov[i], .msg_iovlen = 1}};
        }
}

static double ep_uniform(ep *e) {
        e->rng ^= e->rng << 13;
        e->rng ^= e->rng >> 7;
        e->rng ^= e->rng << 17;
        return (double)(e->rng >> 11) * 0x1.0p-53;
}

static void ep_flush(ep *e) {
        int off = 0;
        while (off < e->ntx) {
                int n = sendmmsg(e->fd, e->tm + off, (unsigned)(e->ntx - off), 0);
                if (n < 0) {
                        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
                                continue;
                        break; /* ECONNREFUSED while the peer starts: the engine resends */
                }
                off += n;
        }
        e->ntx = 0;
}

/* Sends what the engine has to send now; returns datagrams sent. */
static int ep_output(ep *e) {
        int total = 0, len;
        uint64_t now = mono_ns();
        for (;;) {
                ep_output_any(e, now, &len, e->tx[e->ntx], sizeof(e->tx[0]));
                if (len <= 0)
                        break;
                e->tiov[e->ntx].iov_len = (size_t)len;
                total++;
                if (++e->ntx == BATCH)
                        ep_flush(e);
        }
        ep_flush(e);
        return total;
}

/* Reads what the socket holds (no wait); returns datagrams fed. The
 * impairment hook drops each with probability loss. */
static int ep_input(ep *e) {
        int n = recvmmsg(e->fd, e->rm, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
                return 0;
        e->idle_since = 0;
        uint64_t now = mono_ns();
        for (int i = 0; i < n; i++) {
                if (e->loss > 0 && ep_uniform(e) < e->loss) {
                        e->dropped++;
                        continue;
                }
                ep_input_one(e, e->rx[i], e->rm[i].msg_len, now);
                /* --ack-flush: answer at once when an ack is due, rather than
                 * after the whole batch (shorter RTT for small windows) */
                if (opt_ack_flush && i + 1 < n && ep_deadline(e) <= now)
                        ep_output(e);
        }
        return n;
}

/* Waits for input or the engine's deadline; spins when it is very near.
 * With spin_ns set it first busy-polls the socket that long: a bulk sender
 * waiting for acks would otherwise pay a cross-CPU wake-up (~25 µs here) per
 * window, which at loopback RTTs costs more than the window itself. */
static void ep_wait(ep *e) {
        uint64_t d = ep_deadline(e), now = mono_ns();
        if (d <= now + 20000)
                return;
        if (e->spin_ns) {
                /* busy: the caller's loop polls the socket without sleeping */
                if (e->idle_since == 0)
                        e->idle_since = now;
                if (now < e->idle_since + e->spin_ns)
                        return;
        }
        e->idle_since = 0;
        uint64_t wait = d - now;
        if (wait > 100000000ull)
                wait = 100000000ull;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull),
                              .tv_nsec = (long)(wait % 1000000000ull)};
        struct pollfd p = {.fd = e->fd, .events = POLLIN};
        ppoll(&p, 1, &ts, NULL);
}

/* For the ping-pong roles: wait for input in the read itself, like the raw
 * UDP baseline's blocking recv (one syscall, not ppoll + read). The socket
 * has a 200 µs receive timeout, so engine timers are at most that late. */
static int ep_input_blocking(ep *e) {
        uint64_t d = ep_deadline(e), now = mono_ns();
        if (d <= now + 20000)
                return ep_input(e);
        int n = recvmmsg(e->fd, e->rm, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
                return 0;
        now = mono_ns();
        for (int i = 0; i < n; i++)
                ep_input_one(e, e->rx[i], e->rm[i].msg_len, now);
        return n;
}

/* Authenticated mode: runs the handshake until this side has its
 * association (at most 10 s). */
static void ep_handshake(ep *e) {
        if (!e->h)
                return;
        uint64_t end = mono_ns() + 10000000000ull;
        while (!efcp_peer_assoc(e->p)) {
                if (mono_ns() > end)
                        die("handshake timed out");
                ep_output(e);
                struct pollfd pf = {.fd = e->fd, .events = POLLIN};
                poll(&pf, 1, 10);
                ep_input(e);
        }
        e->a = efcp_peer_assoc(e->p);
        efcp_host_event ev;
        while (efcp_host_event_next(e->h, &ev))
                ;
}

static void ep_rcvtimeo(ep *e) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = 200};
        setsockopt(e->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static efcp_flow *ep_accept(ep *e) {
        efcp_event ev;
        while (efcp_event_next(e->a, &ev))
                if (ev.type == EFCP_EV_FLOW_ALLOCATED)
                        return efcp_flow_get(e->a, ev.local_port);
        return NULL;
}

typedef struct efcp_args {
        double loss;
        uint64_t spin_ns;
        bool secure;
} efcp_args;

/* A non-NULL marker: ep_init makes the real host when it sees it. */
#define EP_WANT_HOST ((efcp_host *)1)

static void efcp_source(int fd, int out, void *arg) {
        efcp_args *ea = arg;
        static ep e;
        e.h = ea->secure ? EP_WANT_HOST : NULL;
        ep_init(&e, fd, 0, ea->loss);
        ep_handshake(&e);
        e.spin_ns = ea->spin_ns;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn_random = true};
        if (efcp_flow_open(e.a, 1, 2, &pol, &e.f) < 0)
                die("efcp_flow_open");
        static uint8_t msg[1424];
        bool debug = getenv("EFCP_UDP_DEBUG") != NULL;
        uint64_t next_dbg = mono_ns();
        for (;;) {
                if (debug && mono_ns() >= next_dbg) {
                        /* EFCP_UDP_DEBUG=1: the sender's path state twice a second */
                        efcp_path_info pi;
                        efcp_assoc_path(e.a, &pi);
                        const efcp_stats *st = efcp_assoc_stats(e.a);
                        fprintf(stderr,
                                "cwnd %llu inflight %llu srtt %.0f us min %.0f us lost %llu "
                                "spurious %llu ptos %llu retx %llu cong %llu\n",
                                (unsigned long long)pi.cwnd, (unsigned long long)pi.bytes_in_flight,
                                pi.srtt_ns / 1e3, pi.min_rtt_ns / 1e3,
                                (unsigned long long)st->pkts_lost,
                                (unsigned long long)st->pkts_spurious, (unsigned long long)st->ptos,
                                (unsigned long long)st->pdus_retx,
                                (unsigned long long)st->congestion_events);
                        next_dbg = mono_ns() + 500000000ull;
                }
                ep_input(&e);
                /* a bounded batch per turn, so acks are read and sent
                 * between batches (a loop that copies the whole window in
                 * one go starves the I/O for a millisecond) */
                for (int k = 0; k < 64 && efcp_flow_send(e.f, msg, sizeof(msg)) == 0; k++)
                        ;
                if (ep_output(&e) == 0)
                        ep_wait(&e);
        }
}

static void efcp_sink(int fd, int out, void *arg) {
        efcp_args *ea = arg;
        static ep e;
        e.h = ea->secure ? EP_WANT_HOST : NULL;
        ep_init(&e, fd, 1, ea->loss);
        ep_handshake(&e);
        e.spin_ns = ea->spin_ns;
        static uint8_t msg[70000];
        uint64_t bytes = 0, start = 0, t0 = 0, tw = 0;
        for (;;) {
                int got = ep_input(&e);
                if (!e.f)
                        e.f = ep_accept(&e);
                int r, k = 0;
                /* bounded per turn, for the same reason as on the sender */
                while (e.f && k++ < 64 && (r = efcp_flow_recv(e.f, msg, sizeof(msg))) >= 0)
                        bytes += (uint64_t)r;
                bool more = e.f && efcp_flow_readable(e.f);
                uint64_t now = mono_ns();
                if (bytes && !tw)
                        tw = now + 300000000ull;
                if (tw && !t0 && now >= tw) {
                        t0 = now;
                        start = bytes;
                }
                if (t0 && now >= t0 + (uint64_t)(opt_seconds * 1e9)) {
                        result res = {.value = (double)(bytes - start) * 8e9 / (double)(now - t0)};
                        efcp_path_info pi;
                        efcp_assoc_path(e.a, &pi);
                        const efcp_stats *st = efcp_assoc_stats(e.a);
                        res.extra[0] = st->dgrams_in;
                        res.extra[1] = e.dropped;
                        res.extra[2] = st->pdus_dup;
                        put_result(out, &res);
                        return;
                }
                if (ep_output(&e) == 0 && got == 0 && !more)
                        ep_wait(&e);
        }
}

static void efcp_ping(int fd, int out, void *arg) {
        static ep e;
        efcp_args *ea = arg;
        e.h = ea && ea->secure ? EP_WANT_HOST : NULL;
        ep_init(&e, fd, 0, 0);
        ep_handshake(&e);
        ep_rcvtimeo(&e);
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn_random = true};
        if (efcp_flow_open(e.a, 1, 2, &pol, &e.f) < 0)
                die("efcp_flow_open");
        int warm = opt_rtt_count / 10, n = opt_rtt_count;
        uint64_t *s = calloc((size_t)n, sizeof(uint64_t));
        uint8_t buf[RTT_SIZE] = {1};
        for (int i = 0; i < warm + n; i++) {
                uint64_t t = mono_ns();
                if (efcp_flow_send(e.f, buf, sizeof(buf)) < 0)
                        die("efcp send");
                /* send, then sleep until the socket (or a timer) wakes us: the
                 * reply cannot be there yet, so no read is tried first; a read
                 * that finds nothing costs a syscall a raw UDP ping does not */
                ep_output(&e);
                for (;;) {
                        ep_input_blocking(&e);
                        if (efcp_flow_recv(e.f, buf, sizeof(buf)) == RTT_SIZE)
                                break;
                        ep_output(&e);
                }
                if (i >= warm)
                        s[i - warm] = mono_ns() - t;
        }
        rtt_report(out, s, n);
}

static void efcp_pong(int fd, int out, void *arg) {
        static ep e;
        efcp_args *ea = arg;
        e.h = ea && ea->secure ? EP_WANT_HOST : NULL;
        ep_init(&e, fd, 1, 0);
        ep_handshake(&e);
        ep_rcvtimeo(&e);
        uint8_t buf[RTT_SIZE];
        for (;;) {
                ep_input_blocking(&e);
                if (!e.f)
                        e.f = ep_accept(&e);
                int r;
                while (e.f && (r = efcp_flow_recv(e.f, buf, sizeof(buf))) > 0)
                        efcp_flow_send(e.f, buf, (size_t)r);
                ep_output(&e);
        }
}

/* ---- the engine alone ---------------------------------------------------- */

/* Both ends in this thread, datagrams handed over in memory. Returns PDUs
 * delivered per CPU-second for messages of msg bytes. */
static double engine_rate(size_t msg, uint64_t *ret_pdus) {
        efcp_config c;
        efcp_config_default(&c);
        c.pacing = false;
        c.flow_window = 2048;
        c.flow_send_buf = 2048;
        c.max_inflight = 8192;
        efcp_assoc *a[2];
        for (int i = 0; i < 2; i++) {
                c.local_index = (uint32_t)i;
                c.remote_index = (uint32_t)!i;
                if (efcp_assoc_new(&c, mono_ns(), &a[i]) < 0)
                        die("efcp_assoc_new");
        }
        efcp_flow *tx, *rx = NULL;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 1};
        efcp_flow_open(a[0], 1, 2, &pol, &tx);
        static uint8_t buf[2048], m[2048];
        uint64_t c0 = cpu_ns(), end = mono_ns() + (uint64_t)(opt_seconds * 1e9);
        uint64_t msgs = 0;
        while (mono_ns() < end) {
                for (int k = 0; k < 64; k++) {
                        uint64_t now = mono_ns();
                        while (efcp_flow_send(tx, m, msg) == 0)
                                ;
                        int len;
                        while ((len = efcp_output(a[0], buf, sizeof(buf), now)) > 0)
                                efcp_input(a[1], buf, (size_t)len, now);
                        if (!rx) {
                                efcp_event ev;
                                if (efcp_event_next(a[1], &ev))
                                        rx = efcp_flow_get(a[1], ev.local_port);
                        }
                        while (rx && efcp_flow_recv(rx, buf, sizeof(buf)) >= 0)
                                msgs++;
                        while ((len = efcp_output(a[1], buf, sizeof(buf), now)) > 0)
                                efcp_input(a[0], buf, (size_t)len, now);
                }
        }
        double secs = (double)(cpu_ns() - c0) / 1e9;
        *ret_pdus = efcp_assoc_stats(a[1])->pdus_in;
        double rate = (double)*ret_pdus / secs;
        (void)msgs;
        efcp_assoc_free(a[0]);
        efcp_assoc_free(a[1]);
        return rate;
}

/* Noise IK handshakes between two hosts in this thread, datagrams handed
 * over in memory: CPU nanoseconds per complete handshake (both sides). */
static double handshake_cost(int n) {
        efcp_host *h[2];
        efcp_peer *p[2];
        for (int i = 0; i < 2; i++) {
                efcp_host_config hc;
                efcp_host_config_default(&hc);
                hc.handshakes_per_sec = 1000000;
                memcpy(hc.private_key, g_priv[i], 32);
                if (efcp_host_new(&hc, mono_ns(), &h[i]) < 0 || efcp_host_add_peer(h[i], g_pub[!i], NULL, 0, &p[i]) < 0)
                        die("efcp_host_new");
        }
        static uint8_t buf[2048];
        uint64_t c0 = cpu_ns();
        for (int k = 0; k < n; k++) {
                efcp_peer_connect(p[0], mono_ns() + (uint64_t)k);
                for (int round = 0; round < 4; round++)
                        for (int i = 0; i < 2; i++) {
                                int len;
                                efcp_addr dst;
                                while ((len = efcp_host_output(h[i], buf, sizeof(buf), mono_ns(), &dst)) > 0)
                                        efcp_host_input(h[!i], buf, (size_t)len, NULL, 0, mono_ns());
                        }
                efcp_host_event ev;
                for (int i = 0; i < 2; i++)
                        while (efcp_host_event_next(h[i], &ev))
                                if (ev.type == EFCP_HOST_EV_ASSOC_RETIRED)
                                        efcp_assoc_free(ev.assoc);
        }
        double per = (double)(cpu_ns() - c0) / n;
        if (efcp_host_stats_get(h[0])->handshakes_done != (uint64_t)n)
                die("handshakes did not complete");
        efcp_host_free(h[0]);
        efcp_host_free(h[1]);
        return per;
}

/* ---- main ------------------------------------------------------------------- */

#define MAX_REPEAT 15
enum { M_UDP, M_TCP, M_EFCP, M_EFCP_SEC, M_EFCP_LOSSY, M_UDP_RTT, M_EFCP_RTT, M_SEC_RTT, M_COUNT };
static const char *const m_names[M_COUNT] = {"udp-goodput", "tcp-goodput", "efcp-goodput", "efcp-secure",
                                             "efcp-lossy",  "udp-rtt",     "efcp-rtt",     "secure-rtt"};
static const char *const m_notes[M_COUNT] = {
        "raw UDP, 1400-byte datagrams, sendmmsg/recvmmsg",
        "TCP, 64 KiB writes",
        "one reliable ordered EFCP flow, 1424-byte messages",
        "the same, authenticated and encrypted (host.h)",
        "the same with loss injected both ways",
        "64 bytes, raw UDP, blocking",
        "64 bytes over a reliable EFCP flow, blocking",
        "the same, authenticated and encrypted",
};
static int opt_repeat = 1;

static result measure(int m) {
        int fd[2];
        efcp_args plain = {.loss = 0, .spin_ns = opt_spin_ns};
        efcp_args lossy = {.loss = opt_loss, .spin_ns = opt_spin_ns};
        efcp_args secure = {.loss = 0, .spin_ns = opt_spin_ns, .secure = true};
        switch (m) {
        case M_UDP:
                udp_pair(fd);
                return run_pair(fd, udp_blast, udp_sink, NULL);
        case M_TCP:
                tcp_pair(fd);
                return run_pair(fd, tcp_blast, tcp_sink, NULL);
        case M_EFCP:
                udp_pair(fd);
                return run_pair(fd, efcp_source, efcp_sink, &plain);
        case M_EFCP_SEC:
                udp_pair(fd);
                return run_pair(fd, efcp_source, efcp_sink, &secure);
        case M_SEC_RTT:
                udp_pair(fd);
                return run_pair(fd, efcp_ping, efcp_pong, &secure);
        case M_EFCP_LOSSY:
                udp_pair(fd);
                return run_pair(fd, efcp_source, efcp_sink, &lossy);
        case M_UDP_RTT:
                udp_pair(fd);
                return run_pair(fd, udp_ping, udp_pong, NULL);
        default:
                udp_pair(fd);
                return run_pair(fd, efcp_ping, efcp_pong, NULL);
        }
}

static int cmp_result(const void *a, const void *b) {
        double x = ((const result *)a)->value, y = ((const result *)b)->value;
        return x < y ? -1 : x > y;
}

/* The run with the median value (its p99 goes with it), and the range. */
static result median(const result *r, int n, double *ret_lo, double *ret_hi) {
        result tmp[MAX_REPEAT];
        memcpy(tmp, r, (size_t)n * sizeof(*r));
        qsort(tmp, (size_t)n, sizeof(*tmp), cmp_result);
        *ret_lo = tmp[0].value;
        *ret_hi = tmp[n - 1].value;
        return tmp[n / 2];
}

static bool want(const char *what) { return !opt_only || strstr(opt_only, what); }

int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
                        opt_seconds = atof(argv[++i]);
                else if (!strcmp(argv[i], "--loss") && i + 1 < argc)
                        opt_loss = atof(argv[++i]);
                else if (!strcmp(argv[i], "--rtt-count") && i + 1 < argc)
                        opt_rtt_count = atoi(argv[++i]);
                else if (!strcmp(argv[i], "--cc") && i + 1 < argc)
                        opt_cc = !strcmp(argv[++i], "cubic") ? EFCP_CC_CUBIC : EFCP_CC_NEWRENO;
                else if (!strcmp(argv[i], "--spin-us") && i + 1 < argc)
                        opt_spin_ns = (uint64_t)atoi(argv[++i]) * 1000;
                else if (!strcmp(argv[i], "--ack-every") && i + 1 < argc)
                        opt_ack_every = (uint32_t)atoi(argv[++i]);
                else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
                        opt_repeat = atoi(argv[++i]);
                else if (!strcmp(argv[i], "--netns"))
                        opt_netns = true;
                else if (!strcmp(argv[i], "--ack-flush"))
                        opt_ack_flush = true;
                else if (!strcmp(argv[i], "--no-pin"))
                        opt_pin = false;
                else if (!strcmp(argv[i], "--only") && i + 1 < argc)
                        opt_only = argv[++i];
                else {
                        fprintf(stderr,
                                "usage: efcp-udp [--seconds S] [--loss P] [--rtt-count N] [--no-pin] [--cc newreno|cubic] [--spin-us N] [--repeat N] [--netns] "
                                "[--only udp-goodput,tcp-goodput,efcp-goodput,efcp-lossy,"
                                "udp-rtt,efcp-rtt,efcp-secure,secure-rtt,handshake,engine]\n");
                        return 2;
                }
        }
        if (opt_repeat < 1 || opt_repeat > MAX_REPEAT)
                opt_repeat = opt_repeat < 1 ? 1 : MAX_REPEAT;
        signal(SIGPIPE, SIG_IGN);
        for (int i = 0; i < 2; i++)
                noise_keypair(g_priv[i], g_pub[i]);
        if (opt_netns)
                netns_up();
        printf("efcp-udp: %s, %.1f s per goodput run, %d round trips per RTT run, "
               "median of %d run%s (min-max)\n",
               opt_netns ? "two network namespaces over veth" : "loopback", opt_seconds,
               opt_rtt_count, opt_repeat, opt_repeat > 1 ? "s" : "");
        printf("%-14s %14s %12s  %s\n", "measurement", "value", "vs raw UDP", "notes");
        /* the measurements interleave across repeats, so a noisy moment on a
         * shared machine hurts one run of each rather than all runs of one */
        static result runs[M_COUNT][MAX_REPEAT];
        for (int r = 0; r < opt_repeat; r++)
                for (int m = 0; m < M_COUNT; m++)
                        if (want(m_names[m]))
                                runs[m][r] = measure(m);
        result med[M_COUNT] = {{0}};
        double lo[M_COUNT] = {0}, hi[M_COUNT] = {0};
        for (int m = 0; m < M_COUNT; m++)
                if (want(m_names[m]))
                        med[m] = median(runs[m], opt_repeat, &lo[m], &hi[m]);
        double udp = med[M_UDP].value, ef = med[M_EFCP].value, urtt = med[M_UDP_RTT].value;
        for (int m = 0; m < M_COUNT; m++) {
                if (!want(m_names[m]))
                        continue;
                const result *x = &med[m];
                bool rtt = m == M_UDP_RTT || m == M_EFCP_RTT || m == M_SEC_RTT;
                double base = rtt ? urtt : udp;
                char ratio[32] = "-";
                if (base > 0)
                        snprintf(ratio, sizeof(ratio), "%.2fx", x->value / base);
                if (rtt)
                        printf("%-14s %9.1f us %12s  (%.1f-%.1f) p99 %.1f us; %s\n", m_names[m],
                               x->value / 1e3, ratio, lo[m] / 1e3, hi[m] / 1e3, x->value2 / 1e3,
                               m_notes[m]);
                else
                        printf("%-14s %7.3f Gbit/s %12s  (%.2f-%.2f) %s\n", m_names[m], x->value / 1e9,
                               ratio, lo[m] / 1e9, hi[m] / 1e9, m_notes[m]);
                if (m == M_EFCP_LOSSY && ef > 0)
                        printf("%-14s %9.0f %%  %12s  %.1f %% loss both ways vs loss-free (median "
                               "runs)\n",
                               "lossy/lossless", 100 * x->value / ef, "", opt_loss * 100);
        }
        if (want("handshake"))
                printf("%-14s %9.1f us %14s  CPU per Noise IK handshake, both sides, one core\n", "handshake",
                       handshake_cost(2000) / 1e3, "-");
        if (want("engine")) {
                uint64_t n1, n2;
                double big = engine_rate(1424, &n1), small = engine_rate(64, &n2);
                printf("%-14s %8.2f M PDU/s %14s  1424-byte PDUs, both ends on one core\n", "engine",
                       big / 1e6, "-");
                printf("%-14s %8.2f M PDU/s %14s  64-byte PDUs, both ends on one core\n", "engine",
                       small / 1e6, "-");
        }
        return 0;
}
