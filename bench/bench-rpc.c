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
 * latency and calls/s of one client; then calls/s of 8 client processes
 * (ipcf-call, ipcf-rpc). Then a 64 MiB argument through the stub against the
 * same bytes through a flow (256 KiB messages to a reader), as throughput.
 * Servers run in forked processes with 2 worker threads. Prints a table and
 * the ratios the issue asks for. --quick: tiny counts (a smoke run).
 */
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

static double secs = 1.0;

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

static pid_t spawn(void (*fn)(const char *), const char *name) {
        pid_t p = fork();
        if (p == 0)
                fn(name);
        for (int i = 0; i < 500; i++) { /* wait for the name */
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
        double p50_us, p99_us, rate;
        bool ok;
} result;

static const ipcf_rpc_proc nullproc = { .number = 0, .name = "NULL" };

/* One client: calls for secs; samples of each call's time. */
static result measure_one(bool rpc, const char *name, size_t size, double seconds, size_t max) {
        result r = { 0 };
        uint64_t *s = malloc(max * sizeof(*s));
        char *req = calloc(1, size + 1), *rep = malloc(IPCF_CALL_MAX);
        ipcf_rpc_client *c = NULL;
        if (rpc && ipcf_rpc_client_new(name, NULL, &c) < 0)
                return r;
        blob in = { (uint32_t)size, req };
        size_t n = 0;
        uint64_t t0 = 0, end = 0;
        for (size_t i = 0; i < max + 200; i++) {
                if (i == 200) {
                        t0 = bench_now_ns();
                        end = t0 + (uint64_t)(seconds * 1e9);
                }
                uint64_t a = bench_now_ns();
                int e;
                if (rpc && size == 0) {
                        e = ipcf_rpc_invoke(c, &benchvers_desc, &nullproc, NULL, NULL, NULL);
                } else if (rpc) {
                        blob out;
                        e = rpcbench_echo(c, &in, &out, NULL);
                        if (e == 0)
                                blob_free(&out);
                } else {
                        ssize_t m = ipcf_call(name, req, size, rep, IPCF_CALL_MAX, 5000, NULL);
                        e = m < 0 ? (int)m : 0;
                }
                if (e < 0) {
                        fprintf(stderr, "bench-rpc: %s call: %s\n", rpc ? "rpc" : "ipcf", ipcf_strerror(e));
                        break;
                }
                uint64_t b = bench_now_ns();
                if (i >= 200) {
                        s[n++] = b - a;
                        if (b >= end)
                                break;
                }
        }
        if (n > 0) {
                double el = (double)(bench_now_ns() - t0) / 1e9;
                bench_sort_u64(s, n);
                r = (result){ bench_quantile(s, n, 0.5) / 1e3, bench_quantile(s, n, 0.99) / 1e3, (double)n / el, true };
        }
        ipcf_rpc_client_free(c);
        free(s);
        free(req);
        free(rep);
        return r;
}

/* k client processes for secs; total calls/s. */
static double measure_many(bool rpc, const char *name, size_t size, unsigned k, double seconds) {
        _Atomic uint64_t *calls = mmap(NULL, sizeof(*calls), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        *calls = 0;
        pid_t pids[16];
        uint64_t t0 = bench_now_ns();
        for (unsigned i = 0; i < k; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        result r = measure_one(rpc, name, size, seconds, 10000000);
                        atomic_fetch_add(calls, (uint64_t)(r.rate * seconds));
                        _exit(0);
                }
        }
        for (unsigned i = 0; i < k; i++)
                waitpid(pids[i], NULL, 0);
        (void)t0;
        double rate = (double)*calls / seconds;
        munmap(calls, sizeof(*calls));
        return rate;
}

static result measure_chan(const char *key, size_t size, double seconds) {
        result r = { 0 };
        rtt_result res;
        const chan_kind *k = chan_find(key);
        if (!k || chan_rtt_measure(k, size, false, seconds, 2000000, &res) < 0)
                return r;
        r = (result){ bench_quantile(res.samples, res.n, 0.5) / 1e3, bench_quantile(res.samples, res.n, 0.99) / 1e3,
                      res.per_s, true };
        free(res.samples);
        return r;
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
                printf("%-12s %6zu B  median %8.2f us  p99 %8.2f us  %10.0f calls/s\n", mech, size, r.p50_us, r.p99_us,
                       r.rate);
        else
                printf("%-12s %6zu B  failed\n", mech, size);
}

int main(int argc, char **argv) {
        bool quick = argc > 1 && !strcmp(argv[1], "--quick");
        secs = quick ? 0.05 : 1.0;
        if (bench_env_start() < 0) {
                fprintf(stderr, "bench-rpc: cannot start ipcfd\n");
                return 1;
        }
        pid_t rs = spawn(rpc_server, "bench.rpc"), cs = spawn(call_server, "bench.call");
        size_t sizes[] = { 0, 1024 };
        /* 8 clients first: forked children must not inherit call channels in use */
        double m_call[2], m_rpc[2];
        for (int z = 0; z < 2; z++) {
                m_call[z] = measure_many(false, "bench.call", sizes[z], 8, secs);
                m_rpc[z] = measure_many(true, "bench.rpc", sizes[z], 8, secs);
        }
        result ipcf1[2], rpc1[2], tcp1[2], udp1[2], dbus1[2];
        for (int z = 0; z < 2; z++) {
                ipcf1[z] = measure_one(false, "bench.call", sizes[z], secs, 5000000);
                rpc1[z] = measure_one(true, "bench.rpc", sizes[z], secs, 5000000);
                tcp1[z] = measure_chan("oncrpc-tcp", sizes[z], secs);
                udp1[z] = measure_chan("oncrpc-udp", sizes[z], secs);
                dbus1[z] = measure_chan("dbus", sizes[z], secs);
        }
        printf("# one client (round trips)\n");
        for (int z = 0; z < 2; z++) {
                row("ipcf-call", sizes[z], ipcf1[z]);
                row("ipcf-rpc", sizes[z], rpc1[z]);
                row("oncrpc-tcp", sizes[z], tcp1[z]);
                row("oncrpc-udp", sizes[z], udp1[z]);
                row("dbus", sizes[z], dbus1[z]);
        }
        printf("# calls/s with 8 client processes\n");
        for (int z = 0; z < 2; z++)
                printf("ipcf-call    %6zu B  %10.0f calls/s\nipcf-rpc     %6zu B  %10.0f calls/s\n", sizes[z],
                       m_call[z], sizes[z], m_rpc[z]);
        /* 64 MiB: the stub against the flow */
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
        printf("# ratios (targets: stub null <= 2x raw call; >= 20x ONC RPC calls/s; 64 MiB >= 0.5x flow)\n");
        if (rpc1[0].ok && ipcf1[0].ok)
                printf("stub null median / raw ipcf_call median: %.2f\n", rpc1[0].p50_us / ipcf1[0].p50_us);
        if (rpc1[0].ok && tcp1[0].ok)
                printf("stub null calls/s / ONC RPC TCP: %.1fx   / UDP: %.1fx\n", rpc1[0].rate / tcp1[0].rate,
                       udp1[0].ok ? rpc1[0].rate / udp1[0].rate : 0);
        if (rpc1[1].ok && tcp1[1].ok)
                printf("stub 1 KiB calls/s / ONC RPC TCP: %.1fx   / UDP: %.1fx\n", rpc1[1].rate / tcp1[1].rate,
                       udp1[1].ok ? rpc1[1].rate / udp1[1].rate : 0);
        if (rpc1[0].ok && dbus1[0].ok)
                printf("stub null calls/s / D-Bus: %.1fx\n", rpc1[0].rate / dbus1[0].rate);
        printf("64 MiB argument / flow throughput: %.2f\n", rpc_gbs / flow_gbs);
        pid_t mine[] = { rs, cs, fs };
        for (int i = 0; i < 3; i++) {
                kill(mine[i], SIGKILL);
                waitpid(mine[i], NULL, 0);
        }
        free(data);
        bench_env_stop();
        return 0;
}
