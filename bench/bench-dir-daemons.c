/*
 * bench-dir-daemons.c — "registered on host A, allocatable from host B"
 * through the real daemons and the directory on etcd: a three-member etcd
 * cluster on loopback (tests/support/etcdcluster.c), two ipcfd ("alpha",
 * "beta", 127.0.0.1, distinct UDP ports) with [directory] backend = etcd.
 *
 *   bench-dir-daemons [--quick] [--names N]
 *
 * For each of N fresh names: beta's application watches it; alpha's takes
 * t0 and registers it (alpha's daemon publishes it: a put under its lease);
 * beta's daemon hears it on its watch of etcd, which wakes the watch
 * (NAME_UP: t_up); beta's application then allocates it by name alone and
 * alpha's accepts (the flow is there: t_alloc). Reported: t_up - t0 (watch
 * propagation, the target: p99 <= 100 ms) and t_alloc - t0
 * (allocatable, with the allocation's own cost), p50, p99, max. CLOCK_MONOTONIC
 * is one clock for the processes of one machine. The peer figure, in the
 * same run: the same steps with the name registered on beta itself (no
 * etcd, no other host: what the watch and the allocation cost alone). A
 * benchmark: nothing is asserted.
 *
 * Processes: the two applications are children forked before anything uses
 * the library (it keeps the runtime directory of its first use); the
 * daemons and etcd run meanwhile, on the same 2 CPUs.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/etcdcluster.h"
#include "support/hostset.h"

static hostset S;
static etcd_cluster C;
static int n_names = 300;

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void full_io(int fd, void *buf, size_t n, bool out) {
        uint8_t *p = buf;
        while (n) {
                ssize_t k = out ? write(fd, p, n) : read(fd, p, n);
                if (k <= 0) {
                        if (k < 0 && errno == EINTR)
                                continue;
                        _exit(3);
                }
                p += k;
                n -= (size_t)k;
        }
}

/* The registrar on host `host`: for each name, wait for beta's go, send
 * t0, register, accept one flow, unregister. */
static void registrar(int host, const char *prefix, int go_rd, int t0_wr) {
        hostset_enter(&S, host);
        for (int i = 0; i < n_names; i++) {
                char name[64], go;
                snprintf(name, sizeof(name), "%s-%d", prefix, i);
                full_io(go_rd, &go, 1, false);
                uint64_t t0 = mono_ns();
                full_io(t0_wr, &t0, sizeof(t0), true);
                int reg = ipcf_register(name, NULL);
                if (reg < 0)
                        _exit(4);
                int port = ipcf_accept(reg, 20000, NULL);
                if (port >= 0)
                        ipcf_dealloc(port, NULL);
                ipcf_dealloc(reg, NULL);
        }
        _exit(0);
}

/* Beta: watch, go, NAME_UP, allocate; the delays go to out_wr. */
static void beta_side(const char *prefix, int go_wr, int t0_rd, int out_wr) {
        hostset_enter(&S, 1);
        for (int i = 0; i < n_names; i++) {
                char name[64];
                snprintf(name, sizeof(name), "%s-%d", prefix, i);
                if (ipcf_watch(name) < 0)
                        _exit(5);
                full_io(go_wr, "g", 1, true);
                uint64_t t0, t_up = 0, t_alloc = 0;
                full_io(t0_rd, &t0, sizeof(t0), false);
                uint64_t until = mono_ns() + 10000000000ull;
                while (!t_up && mono_ns() < until) {
                        ipcf_event ev;
                        int r = ipcf_notify_next(1000, &ev);
                        if (r == 0 && ev.kind == IPCF_EVENT_NAME_UP && !strcmp(ev.name, name))
                                t_up = mono_ns();
                }
                int port = ipcf_alloc(name, NULL, 10000, NULL);
                if (port >= 0) {
                        t_alloc = mono_ns();
                        ipcf_dealloc(port, NULL);
                }
                ipcf_unwatch(name);
                uint64_t d[2] = { t_up ? t_up - t0 : 0, t_alloc ? t_alloc - t0 : 0 };
                full_io(out_wr, d, sizeof(d), true);
        }
        _exit(0);
}

/* One phase: names registered on host reg_host, watched and allocated on
 * beta; the delays into up[], al[]. Returns how many names went through. */
static int phase(int reg_host, const char *prefix, uint64_t *up, uint64_t *al) {
        int go[2], t0[2], out[2];
        if (pipe(go) < 0 || pipe(t0) < 0 || pipe(out) < 0)
                return 0;
        pid_t a = fork();
        if (a == 0)
                registrar(reg_host, prefix, go[0], t0[1]);
        pid_t b = fork();
        if (b == 0)
                beta_side(prefix, go[1], t0[0], out[1]);
        close(out[1]);
        int got = 0;
        for (; got < n_names; got++) {
                uint64_t d[2];
                size_t have = 0;
                while (have < sizeof(d)) {
                        ssize_t k = read(out[0], (uint8_t *)d + have, sizeof(d) - have);
                        if (k <= 0)
                                break;
                        have += (size_t)k;
                }
                if (have < sizeof(d))
                        break;
                up[got] = d[0];
                al[got] = d[1];
        }
        kill(a, SIGKILL);
        kill(b, SIGKILL);
        waitpid(a, NULL, 0);
        waitpid(b, NULL, 0);
        close(out[0]);
        close(go[0]);
        close(go[1]);
        close(t0[0]);
        close(t0[1]);
        return got;
}

static int cmp_ns(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Sorts v[0..n) (zeros: failures, left out) and prints its quantiles. */
static void report(const char *what, uint64_t *v, int n) {
        int k = 0;
        for (int i = 0; i < n; i++)
                if (v[i])
                        v[k++] = v[i];
        qsort(v, (size_t)k, sizeof(*v), cmp_ns);
        if (k == 0) {
                printf("%-48s no sample (%d failed)\n", what, n);
                return;
        }
        printf("%-48s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (%d, %d failed)\n", what, v[k / 2] / 1e6,
               v[(size_t)k * 99 / 100] / 1e6, v[k - 1] / 1e6, k, n - k);
}

int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        n_names = 30;
                else if (!strncmp(argv[i], "--names=", 8))
                        n_names = atoi(argv[i] + 8);
                else {
                        fprintf(stderr, "usage: bench-dir-daemons [--quick] [--names=N]\n");
                        return 2;
                }
        }
        if (n_names < 1 || n_names > 100000)
                return 2;
        etcd_cluster_start(&C, 3);
        if (!hostset_init(&S, 2, HOSTSET_LOOPBACK))
                return 1;
        char conf[2048];
        snprintf(conf, sizeof(conf),
                 "[directory]\nbackend = etcd\nendpoints = %s %s %s\nttl_s = 5\n[name *]\nremote_allocate = *@*\n",
                 C.client_url[0], C.client_url[1], C.client_url[2]);
        hostset_start(&S, 0, conf);
        hostset_start(&S, 1, conf);
        if (!hostset_wait_up(&S, 0, 15000) || !hostset_wait_up(&S, 1, 15000)) {
                fprintf(stderr, "bench-dir-daemons: the hosts did not come up\n");
                hostset_stop(&S);
                etcd_cluster_stop(&C);
                return 1;
        }
        uint64_t *up = calloc((size_t)n_names, sizeof(*up)), *al = calloc((size_t)n_names, sizeof(*al));
        uint64_t *lup = calloc((size_t)n_names, sizeof(*up)), *lal = calloc((size_t)n_names, sizeof(*al));
        int got = phase(0, "prop", up, al), lgot = phase(1, "local", lup, lal);
        printf("bench-dir-daemons: 3-member etcd, 2 daemons on 127.0.0.1, %d names\n", got);
        report("registered on alpha -> NAME_UP on beta", up, got);
        report("registered on alpha -> allocated from beta", al, got);
        report("peer: registered on beta -> NAME_UP on beta", lup, lgot);
        report("peer: registered on beta -> allocated on beta", lal, lgot);
        free(up);
        free(al);
        free(lup);
        free(lal);
        hostset_stop(&S);
        etcd_cluster_stop(&C);
        return got == n_names && lgot == n_names ? 0 : 1;
}
