/*
 * bench-rpc.c — remote procedure calls through ipcf-idl's stubs, side by
 * side in one run with what they are built on and with the peers:
 *
 *   ipcf-call   raw ipcf_call to a service answering with ipcf_service_next/reply
 *   ipcf-rpc    the generated stub (sessions, slots, reply cache: exactly once)
 *   oncrpc-tcp, oncrpc-udp   rpcgen + libtirpc (bench/chan.c)
 *   dbus        a method call through a private dbus-daemon (bench/chan.c)
 *
 * For each: the null call and a 1 KiB argument (echoed): median and p99
 * latency and calls/s of one client, and calls/s of 8 client processes at
 * once, all against one server (ipcf's: 2 worker threads; ONC RPC's and
 * D-Bus's: one process answering every client). Then the same across two
 * hosts (tests/support/hostset.c: two daemons, each in a network namespace,
 * joined by a veth pair when root, else on 127.0.0.1 with two ports): the
 * clients on alpha, the servers on beta — ipcf by name@beta through both
 * daemons (EFCP over UDP, encrypted), ONC RPC to beta's address over the
 * same link (D-Bus is a local bus: not there). Then a 64 MiB argument through
 * the stub against the same bytes through a flow (256 KiB messages to a
 * reader), as throughput. Every client is a forked process. Prints a table,
 * the ratios the issue asks for and the machine's load average (other work
 * shares the CPUs).
 *
 * Options: --quick (tiny counts: a smoke run), --local (this host only),
 * --only=M,M,... (only these mechanisms, by the labels above), --seconds=S
 * (per measurement, default 1), --no-big (skip the 64 MiB part). The
 * one-client rows give the mean round trip too (1 / calls/s, from the same
 * samples): a median says nothing of a slow path taken one call in ten.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchlib.h"
#include "measure.h"
#include "rpcbench.h"
#include "support/hostset.h"

static double secs = 1.0;
static hostset S;

/* ---- servers --------------------------------------------------------------- */

static int h_echo(ipcf_rpc_ctx *ctx, const blob *in, blob *out, void *user) {
        out->blob_len = in->blob_len;
        out->blob_val = in->blob_len ? malloc(in->blob_len) : NULL;
        if (in->blob_len)
                memcpy(out->blob_val, in->blob_val, in->blob_len);
        return 0;
}

static int h_sink(ipcf_rpc_ctx *ctx, const blob *in, uint64_t *out, void *user) {
        *out = in->blob_len;
        return 0;
}

static void rpc_server(const char *name) {
        static const benchvers_handlers h = { .echo = h_echo, .sink = h_sink };
        ipcf_rpc_server *s;
        if (ipcf_rpc_server_new(name, NULL, &s) < 0 || benchvers_serve(s, &h, NULL) < 0)
                _exit(1);
        ipcf_rpc_server_run(s, 2, -1);
        _exit(0);
}

static void *call_worker(void *arg) {
        int svc = *(int *)arg;
        char *buf = malloc(IPCF_CALL_MAX);
        for (;;) {
                ipcf_call_req req;
                ssize_t n = ipcf_service_next(svc, buf, IPCF_CALL_MAX, -1, &req);
                if (n >= 0)
                        ipcf_service_reply(svc, &req, buf, (size_t)n, 1000);
        }
        return NULL;
}

static void call_server(const char *name) {
        int svc = ipcf_service(name, NULL);
        if (svc < 0)
                _exit(1);
        pthread_t t;
        pthread_create(&t, NULL, call_worker, &svc);
        call_worker(&svc);
        _exit(0);
}

/* A reader of a flow: counts bytes, answers one byte at the end. */
static void flow_sink(const char *name, size_t total) {
        int reg = ipcf_register(name, NULL);
        if (reg < 0)
                _exit(1);
        char *buf = malloc(1u << 20);
        for (;;) {
                int p = ipcf_accept(reg, -1, NULL);
                if (p < 0)
                        _exit(1);
                size_t got = 0;
                while (got < total) {
                        ssize_t n = ipcf_read(p, buf, 1u << 20, -1);
                        if (n <= 0)
                                break;
                        got += (size_t)n;
                }
                ipcf_write(p, "k", 1, -1);
                ipcf_dealloc(p, "done");
        }
}

/* A server fn(name) in a child on host (-1: here, and wait for its name;
 * else in that host of the hostset: its clients retry until it is there). */
static pid_t spawn(void (*fn)(const char *), const char *name, int host) {
        pid_t p = fork();
        if (p == 0) {
                if (host >= 0)
                        hostset_enter(&S, host);
                fn(name);
        }
        for (int i = 0; host < 0 && i < 500; i++) { /* wait for the name */
                ipcf_listing *l;
                bool up = false;
                if (ipcf_list(&l) == 0) {
                        for (size_t k = 0; k < l->n_names; k++)
                                up |= !strcmp(l->names[k].name, name);
                        ipcf_free(l);
                }
                if (up)
                        break;
                usleep(10000);
        }
        return p;
}

/* ---- clients ------------------------------------------------------------------ */

typedef struct result {
        double p50_us, p99_us, mean_us, rate;
        bool ok;
} result;

enum mech { M_CALL, M_RPC, M_CHAN };

/* What clients call: a raw ipcf_call or a stub to an ipcf name, or a peer's
 * server (chan.h: ONC RPC, D-Bus) by its setup; from this host or from a
 * host of the hostset (its namespace and daemon). */
typedef struct target {
        enum mech mech;
        char name[160];
        chan_setup s;  /* M_CHAN: the server's, as a client opens it (no fds) */
        int host;      /* -1: here */
} target;

typedef struct client {
        const target *t;
        chan_setup s;  /* M_CHAN: this client's copy (the channel points into it) */
        ipcf_rpc_client *c;
        chan ch;
        char *rep;
} client;

static const ipcf_rpc_proc nullproc = { .number = 0, .name = "NULL" };

static int client_open(client *k, const target *t, size_t size) {
        memset(k, 0, sizeof(*k));
        k->t = t;
        k->rep = malloc(IPCF_CALL_MAX);
        if (t->mech == M_RPC)
                return ipcf_rpc_client_new(t->name, NULL, &k->c);
        if (t->mech == M_CHAN && !t->s.k)
                return -ENOTCONN; /* its server did not start */
        if (t->mech == M_CHAN) {
                k->s = t->s;
                return chan_open(&k->s, 0, NULL, &k->ch);
        }
        return 0;
}

/* One call of size bytes (req holds them; chan calls echo into it). */
static int client_call(client *k, char *req, size_t size) {
        switch (k->t->mech) {
        case M_RPC:
                if (size == 0)
                        return ipcf_rpc_invoke(k->c, &benchvers_desc, &nullproc, NULL, NULL, NULL);
                blob in = { (uint32_t)size, req }, out;
                int e = rpcbench_echo(k->c, &in, &out, NULL);
                if (e == 0)
                        blob_free(&out);
                return e;
        case M_CHAN:
                return chan_call(&k->ch, req, size);
        default: {
                ssize_t m = ipcf_call(k->t->name, req, size, k->rep, IPCF_CALL_MAX, 5000, NULL);
                return m < 0 ? (int)m : 0;
        }
        }
}

static void client_close(client *k) {
        if (k->t->mech == M_CHAN)
                chan_close(&k->ch);
        ipcf_rpc_client_free(k->c);
        free(k->rep);
}

/* One client: calls for seconds (after 200 to warm up, the first retried
 * for up to 10 s while the server comes up); each call's time. */
static result measure_one(const target *t, size_t size, double seconds, size_t max) {
        result r = { 0 };
        client k;
        char *req = calloc(1, size + 1);
        uint64_t *s = malloc(max * sizeof(*s));
        int e = client_open(&k, t, size);
        for (int i = 0; i < 1000 && (e < 0 || (e = client_call(&k, req, size)) < 0); i++) {
                client_close(&k); /* its server is not there yet: again */
                usleep(10000);
                e = client_open(&k, t, size);
        }
        size_t n = 0;
        uint64_t t0 = 0, end = 0;
        for (size_t i = 0; e == 0 && i < max + 200; i++) {
                if (i == 200) {
                        t0 = bench_now_ns();
                        end = t0 + (uint64_t)(seconds * 1e9);
                }
                uint64_t a = bench_now_ns();
                if ((e = client_call(&k, req, size)) < 0)
                        break;
                uint64_t b = bench_now_ns();
                if (i >= 200) {
                        s[n++] = b - a;
                        if (b >= end)
                                break;
                }
        }
        if (e < 0)
                fprintf(stderr, "bench-rpc: %s call: %s\n", t->name, ipcf_strerror(e));
        else if (n > 0) {
                double el = (double)(bench_now_ns() - t0) / 1e9;
                uint64_t sum = 0;
                for (size_t i = 0; i < n; i++)
                        sum += s[i];
                bench_sort_u64(s, n);
                r = (result){ bench_quantile(s, n, 0.5) / 1e3, bench_quantile(s, n, 0.99) / 1e3,
                              (double)sum / (double)n / 1e3, (double)n / el, true };
        }
        client_close(&k);
        free(s);
        free(req);
        return r;
}

/* k client processes at once (on t's host) for seconds: the first one's
 * latencies, and the calls/s of all together. */
static result measure(const target *t, size_t size, unsigned k, double seconds) {
        result *rs = mmap(NULL, 16 * sizeof(*rs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        memset(rs, 0, 16 * sizeof(*rs));
        pid_t pids[16];
        for (unsigned i = 0; i < k && i < 16; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        if (t->host >= 0)
                                hostset_enter(&S, t->host);
                        rs[i] = measure_one(t, size, seconds, k == 1 ? 5000000 : 10000000);
                        _exit(0);
                }
        }
        for (unsigned i = 0; i < k && i < 16; i++)
                bench_reap(pids[i], NULL, (int)(seconds * 1000) + 60000);
        result r = rs[0];
        r.rate = 0;
        for (unsigned i = 0; i < k && i < 16; i++) {
                r.ok &= rs[i].ok;
                r.rate += rs[i].rate;
        }
        munmap(rs, 16 * sizeof(*rs));
        return r;
}

/* A peer's server (chan.h kind key) answering any number of clients, in a
 * child on host (-1: here; else in that host's namespace, bound to its
 * address); *t is what the clients open. */
static pid_t chan_server(const char *key, size_t max_msg, int host, target *t) {
        chan_setup *sh = mmap(NULL, sizeof(*sh) + 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        _Atomic int *ready = (_Atomic int *)(sh + 1);
        *ready = 0;
        pid_t p = fork();
        if (p == 0) {
                if (host >= 0)
                        hostset_enter(&S, host);
                char addr[32] = "127.0.0.1";
                if (host >= 0)
                        hostset_addr(&S, 0, host, addr, sizeof(addr)); /* as the clients on 0 reach it */
                uint32_t ip = ntohl(inet_addr(addr));
                chan_setup s;
                chan ch;
                if (chan_prepare_at(chan_find(key), max_msg, ip, &s) < 0 || chan_open(&s, 1, NULL, &ch) < 0) {
                        *ready = -1;
                        _exit(1);
                }
                *sh = s;
                for (int i = 0; i < 4; i++)
                        sh->fds[i] = -1;
                *ready = 1;
                /* until killed: ONC RPC's own loop serves every connection
                 * (chan_serve, made for one, would not); D-Bus one message
                 * after the other, from any client */
                if (s.k->type == CH_RPC_TCP || s.k->type == CH_RPC_UDP)
                        svc_run();
                char *buf = calloc(1, s.max_msg);
                for (;;)
                        chan_serve(&ch, buf, 0);
        }
        for (int i = 0; i < 1000 && !*ready; i++)
                usleep(10000);
        memset(t, 0, sizeof(*t));
        t->mech = M_CHAN;
        t->host = -1;
        if (*ready == 1)
                t->s = *sh;
        snprintf(t->name, sizeof(t->name), "%s", key);
        munmap(sh, sizeof(*sh) + 64);
        return p;
}

/* Seconds to move total bytes through a flow in 256 KiB messages. */
static double flow_seconds(const char *name, size_t total, const char *data) {
        int p = ipcf_alloc(name, NULL, 5000, NULL);
        if (p < 0)
                return -1;
        uint64_t t0 = bench_now_ns();
        for (size_t off = 0; off < total; off += 256u << 10)
                if (ipcf_write(p, data + off, MIN(256u << 10, total - off), -1) < 0)
                        return -1;
        char k;
        ipcf_read(p, &k, 1, -1);
        double s = (double)(bench_now_ns() - t0) / 1e9;
        ipcf_dealloc(p, "done");
        return s;
}

static double rpc_seconds(const char *name, size_t total, char *data) {
        ipcf_rpc_client *c;
        if (ipcf_rpc_client_new(name, NULL, &c) < 0)
                return -1;
        blob in = { (uint32_t)total, data };
        uint64_t len = 0;
        ipcf_rpc_opts o = { .timeout_ms = 60000 };
        uint64_t t0 = bench_now_ns();
        int r = rpcbench_sink(c, &in, &len, &o);
        double s = (double)(bench_now_ns() - t0) / 1e9;
        ipcf_rpc_client_free(c);
        return r < 0 || len != total ? -1 : s;
}

static void row(const char *mech, size_t size, result r) {
        if (r.ok)
                printf("%-12s %6zu B  median %8.2f us  p99 %8.2f us  mean %8.2f us  %10.0f calls/s\n", mech, size,
                       r.p50_us, r.p99_us, r.mean_us, r.rate);
        else
                printf("%-12s %6zu B  failed\n", mech, size);
}

static void rate_row(const char *mech, size_t size, result r) {
        if (r.ok)
                printf("%-12s %6zu B  %10.0f calls/s\n", mech, size, r.rate);
        else
                printf("%-12s %6zu B  failed\n", mech, size);
}

static double load_avg(void) {
        double l = -1;
        FILE *f = fopen("/proc/loadavg", "r");
        if (f) {
                if (fscanf(f, "%lf", &l) != 1)
                        l = -1;
                fclose(f);
        }
        return l;
}

enum { T_CALL, T_RPC, T_TCP, T_UDP, T_DBUS, T_N };
static const char *const labels[T_N] = { "ipcf-call", "ipcf-rpc", "oncrpc-tcp", "oncrpc-udp", "dbus" };
static const size_t sizes[] = { 0, 1024 };

static bool wanted[T_N] = { true, true, true, true, true }; /* --only */

typedef struct run {
        result one[2][T_N], many[2][T_N];
        int n; /* mechanisms measured: T_N here, T_DBUS across hosts (the bus is local) */
} run;

/* The servers of every mechanism on host (-1: here; else the clients run
 * on host 0 and call host 1's servers by name@beta and beta's address), then
 * 1 and 8 clients of each. */
static void measure_all(int host, run *ret) {
        target t[T_N];
        pid_t srv[T_N];
        ret->n = host < 0 ? T_N : T_DBUS;
        const char *at = host < 0 ? "" : "@beta";
        for (int m = 0; m < T_N; m++)
                srv[m] = 0;
        for (int m = T_CALL; m <= T_RPC; m++) {
                if (!wanted[m])
                        continue;
                t[m] = (target){ .mech = m == T_CALL ? M_CALL : M_RPC, .host = host < 0 ? -1 : 0 };
                snprintf(t[m].name, sizeof(t[m].name), "bench.%s%s", m == T_CALL ? "call" : "rpc", at);
                srv[m] = spawn(m == T_CALL ? call_server : rpc_server, m == T_CALL ? "bench.call" : "bench.rpc",
                               host < 0 ? -1 : 1);
        }
        for (int m = T_TCP; m < ret->n; m++) {
                if (!wanted[m])
                        continue;
                srv[m] = chan_server(labels[m], 1024, host < 0 ? -1 : 1, &t[m]);
                t[m].host = host < 0 ? -1 : 0;
        }
        for (int z = 0; z < 2; z++)
                for (int m = 0; m < ret->n; m++) {
                        if (!wanted[m])
                                continue;
                        bench_progress("bench-rpc", "%s %s %zu B", host < 0 ? "local" : "hosts", labels[m], sizes[z]);
                        ret->one[z][m] = measure(&t[m], sizes[z], 1, secs);
                        ret->many[z][m] = measure(&t[m], sizes[z], 8, secs);
                }
        bench_progress_done();
        for (int m = 0; m < ret->n; m++) {
                if (srv[m] <= 0)
                        continue;
                kill(srv[m], SIGKILL);
                waitpid(srv[m], NULL, 0);
        }
}

static void print_run(const char *title, const run *r) {
        printf("# %s: one client (round trips)\n", title);
        for (int z = 0; z < 2; z++)
                for (int m = 0; m < r->n; m++)
                        if (wanted[m])
                                row(labels[m], sizes[z], r->one[z][m]);
        printf("# %s: calls/s with 8 client processes\n", title);
        for (int z = 0; z < 2; z++)
                for (int m = 0; m < r->n; m++)
                        if (wanted[m])
                                rate_row(labels[m], sizes[z], r->many[z][m]);
}

/* Two hosts: namespaces joined by veth as root, else 127.0.0.1 ports. */
static bool hosts_start(void) {
        bool ns = geteuid() == 0;
        if (!hostset_init(&S, 2, ns ? HOSTSET_NETNS : HOSTSET_LOOPBACK))
                return false;
        static const char rules[] = "[name bench.*]\nremote_allocate = *@alpha\n";
        hostset_start(&S, 0, rules);
        hostset_start(&S, 1, rules);
        if (!hostset_wait_up(&S, 0, 15000) || !hostset_wait_up(&S, 1, 15000))
                return false;
        printf("# across hosts: %s\n", ns ? "two network namespaces joined by a veth pair" : "127.0.0.1, two ports");
        return true;
}

/* --only=LIST: keep the mechanisms named; false for an unknown name. */
static bool parse_only(const char *list) {
        for (int m = 0; m < T_N; m++)
                wanted[m] = false;
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", list);
        char *save = NULL;
        for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                int m = 0;
                while (m < T_N && strcmp(labels[m], w) != 0)
                        m++;
                if (m == T_N)
                        return false;
                wanted[m] = true;
        }
        return true;
}

static void usage(FILE *f) {
        fprintf(f, "usage: bench-rpc [--quick] [--local] [--no-big] [--seconds=S] [--only=M,...]\n"
                   "  M: ipcf-call ipcf-rpc oncrpc-tcp oncrpc-udp dbus\n");
}

/* 64 MiB: the stub against the flow (best of 3). */
static void big_run(bool quick) {
        pid_t rs = spawn(rpc_server, "bench.rpc", -1);
        size_t total = quick ? (4u << 20) : (64u << 20);
        char *data = malloc(total);
        memset(data, 0x5a, total);
        pid_t fs = fork();
        if (fs == 0)
                flow_sink("bench.flow", total);
        usleep(200000);
        double best_flow = 1e9, best_rpc = 1e9;
        for (int i = 0; i < (quick ? 1 : 3); i++) {
                double f = flow_seconds("bench.flow", total, data), r = rpc_seconds("bench.rpc", total, data);
                if (f > 0 && f < best_flow)
                        best_flow = f;
                if (r > 0 && r < best_rpc)
                        best_rpc = r;
        }
        double flow_gbs = (double)total / best_flow / 1e9, rpc_gbs = (double)total / best_rpc / 1e9;
        printf("# %zu MiB argument (best of runs)\nflow         %.2f GB/s\nipcf-rpc     %.2f GB/s\n", total >> 20,
               flow_gbs, rpc_gbs);
        printf("64 MiB argument / flow throughput: %.2f\n", rpc_gbs / flow_gbs);
        pid_t mine[] = { rs, fs };
        for (int i = 0; i < 2; i++) {
                kill(mine[i], SIGKILL);
                waitpid(mine[i], NULL, 0);
        }
        free(data);
}

/* The ratios the targets name, of what was measured. */
static void ratios(const run *local, const run *remote, bool hosts) {
        printf("# ratios (targets: stub null <= 2x raw call; >= 20x ONC RPC calls/s; remote null <= 1.2x ONC RPC TCP; "
               "64 MiB >= 0.5x flow)\n");
        const result *o = local->one[0], *o1 = local->one[1];
        if (o[T_RPC].ok && o[T_CALL].ok)
                printf("stub null median / raw ipcf_call median: %.2f   mean: %.2f\n", o[T_RPC].p50_us / o[T_CALL].p50_us,
                       o[T_RPC].mean_us / o[T_CALL].mean_us);
        if (o[T_RPC].ok && o[T_TCP].ok)
                printf("stub null calls/s / ONC RPC TCP: %.2fx\n", o[T_RPC].rate / o[T_TCP].rate);
        if (o[T_RPC].ok && o[T_UDP].ok)
                printf("stub null calls/s / ONC RPC UDP: %.2fx\n", o[T_RPC].rate / o[T_UDP].rate);
        if (o1[T_RPC].ok && o1[T_TCP].ok && o1[T_UDP].ok)
                printf("stub 1 KiB calls/s / ONC RPC TCP: %.2fx   / UDP: %.2fx\n", o1[T_RPC].rate / o1[T_TCP].rate,
                       o1[T_RPC].rate / o1[T_UDP].rate);
        const result *m8 = local->many[0];
        if (m8[T_RPC].ok && m8[T_CALL].ok)
                printf("8 clients, stub null calls/s / raw ipcf_call: %.2fx\n", m8[T_RPC].rate / m8[T_CALL].rate);
        if (m8[T_RPC].ok && m8[T_TCP].ok && m8[T_UDP].ok && m8[T_DBUS].ok)
                printf("8 clients, stub null calls/s / ONC RPC TCP: %.2fx   / UDP: %.2fx   / D-Bus: %.2fx\n",
                       m8[T_RPC].rate / m8[T_TCP].rate, m8[T_RPC].rate / m8[T_UDP].rate, m8[T_RPC].rate / m8[T_DBUS].rate);
        if (o[T_RPC].ok && o[T_DBUS].ok)
                printf("stub null calls/s / D-Bus: %.2fx\n", o[T_RPC].rate / o[T_DBUS].rate);
        const result *h = remote->one[0], *h1 = remote->one[1];
        if (hosts && h[T_RPC].ok && h[T_TCP].ok && h[T_UDP].ok)
                printf("two hosts, stub null median / ONC RPC TCP median: %.2f   / UDP: %.2f   (raw ipcf_call / TCP: %.2f)\n",
                       h[T_RPC].p50_us / h[T_TCP].p50_us, h[T_RPC].p50_us / h[T_UDP].p50_us,
                       h[T_CALL].ok ? h[T_CALL].p50_us / h[T_TCP].p50_us : 0);
        if (hosts && h1[T_RPC].ok && h1[T_TCP].ok)
                printf("two hosts, stub 1 KiB median / ONC RPC TCP median: %.2f\n", h1[T_RPC].p50_us / h1[T_TCP].p50_us);
}

int main(int argc, char **argv) {
        bool quick = false, local_only = false, big = true;
        secs = 1.0;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick")) {
                        quick = true;
                        secs = 0.05;
                } else if (!strcmp(argv[i], "--local")) {
                        local_only = true;
                } else if (!strcmp(argv[i], "--no-big")) {
                        big = false;
                } else if (!strncmp(argv[i], "--seconds=", 10) && atof(argv[i] + 10) > 0) {
                        secs = atof(argv[i] + 10);
                } else if (!strncmp(argv[i], "--only=", 7) && parse_only(argv[i] + 7)) {
                } else {
                        usage(strcmp(argv[i], "--help") ? stderr : stdout);
                        return strcmp(argv[i], "--help") ? 2 : 0;
                }
        }
        double load0 = load_avg();
        static run local, remote;
        /* Across hosts first: the library takes its daemon's directory once
         * per process, and a forked child keeps its parent's, so this
         * process talks to no daemon until the hosts' children are done. */
        bool hosts = !local_only && hosts_start();
        if (hosts)
                measure_all(0, &remote);
        if (!local_only)
                hostset_stop(&S);
        if (bench_env_start() < 0 || !bench_dbus_address()) {
                fprintf(stderr, "bench-rpc: cannot start ipcfd or dbus-daemon\n");
                return 1;
        }
        measure_all(-1, &local);
        print_run("this host", &local);
        if (hosts)
                print_run("two hosts", &remote);
        else if (!local_only)
                printf("# two hosts: could not start them\n");
        if (big)
                big_run(quick);
        ratios(&local, &remote, hosts);
        printf("# load average (1 min, /proc/loadavg): %.2f at the start, %.2f at the end\n", load0, load_avg());
        bench_env_stop();
        return 0;
}
