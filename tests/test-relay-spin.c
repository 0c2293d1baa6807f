/*
 * test-relay-spin.c — the relay's bounded spin (relay.c SPIN) and the
 * loop's spinners, from outside: a daemon with quiet relayed flows sleeps
 * (its CPU time over 2 s ~0); a client writing every 40 or 100 us on another
 * relayed flow leaves another client's round trips served.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "ipcf.h"
#include "support/hostset.h"
#include "support/test.h"

static hostset S;
#define ALLOW "[name *]\nremote_allocate = *@alpha *@beta\n"

/* utime + stime of pid, in clock ticks */
static long cpu_ticks(pid_t pid) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        long ut = 0, st = 0;
        /* after ") ": state(3) ... utime is field 14, stime 15 */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2)
                return -1;
        return ut + st;
}

static void echo(void *p) {
        const char *name = p;
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register(name, NULL));
        int port = ipcf_accept(reg, 30000, NULL);
        if (port < 0)
                _exit(1);
        static char buf[1 << 16];
        ssize_t n;
        while ((n = ipcf_read(port, buf, sizeof(buf), 60000)) >= 0)
                if (ipcf_write(port, buf, (size_t)n, 5000) != n)
                        break;
        _exit(0);
}

static void sink(void *p) {
        const char *name = p;
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register(name, NULL));
        int port = ipcf_accept(reg, 30000, NULL);
        if (port < 0)
                _exit(1);
        static char buf[1 << 16];
        while (ipcf_read(port, buf, sizeof(buf), 60000) >= 0)
                ;
        _exit(0);
}

/* alpha: a message to the sink every period_us (busy-waited), forever */
static long g_period_us;
static void writer(void *p) {
        hostset_enter(&S, 0);
        int port = CHECK_OK(hostset_alloc(p, NULL));
        char buf[64] = { 0 };
        struct timespec t;
        for (;;) {
                (void)ipcf_write(port, buf, sizeof(buf), 1000);
                clock_gettime(CLOCK_MONOTONIC, &t);
                uint64_t e = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec + (uint64_t)g_period_us * 1000u;
                do
                        clock_gettime(CLOCK_MONOTONIC, &t);
                while ((uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec < e);
        }
}

/* Round trips on port for ms, and at least min_trips of them however long
 * they take (each is bounded by its 10 s timeouts). */
static void round_trips(int port, int ms, int min_trips, int *trips, uint64_t *worst_us) {
        char out[64], in[64];
        uint64_t end = test_now_ms() + (uint64_t)ms;
        *trips = 0;
        *worst_us = 0;
        while (test_now_ms() < end || *trips < min_trips) {
                struct timespec a, b;
                test_fill(out, sizeof(out), (uint64_t)*trips);
                clock_gettime(CLOCK_MONOTONIC, &a);
                CHECK_EQ(ipcf_write(port, out, sizeof(out), 10000), (ssize_t)sizeof(out));
                CHECK_EQ(ipcf_read(port, in, sizeof(in), 10000), (ssize_t)sizeof(in));
                clock_gettime(CLOCK_MONOTONIC, &b);
                CHECK_MEM(in, out, sizeof(out));
                int64_t ns = (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
                uint64_t us = (uint64_t)ns / 1000u;
                *worst_us = MAX(*worst_us, us);
                (*trips)++;
        }
}

TEST_TIMEOUT(quiet_relayed_flows_let_both_daemons_sleep, 90) {
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, ALLOW);
        hostset_start(&S, 1, ALLOW);
        CHECK(hostset_wait_up(&S, 0, 10000));
        pid_t e1 = test_fork(echo, "echo-q1"), e2 = test_fork(echo, "echo-q2");
        hostset_enter(&S, 0);
        int p1 = CHECK_OK(hostset_alloc("echo-q1@beta", NULL)), p2 = CHECK_OK(hostset_alloc("echo-q2@beta", NULL));
        int trips;
        uint64_t worst;
        round_trips(p1, 300, 0, &trips, &worst);
        round_trips(p2, 300, 0, &trips, &worst);
        usleep(300000); /* the hosts' own traffic (keepalives) settles */
        long a0 = cpu_ticks(S.h[0].d.pid), b0 = cpu_ticks(S.h[1].d.pid);
        usleep(2000000);
        long a1 = cpu_ticks(S.h[0].d.pid), b1 = cpu_ticks(S.h[1].d.pid);
        fprintf(stderr, "quiet 2 s: alpha %ld ticks, beta %ld ticks (%ld/s)\n", a1 - a0, b1 - b0, sysconf(_SC_CLK_TCK));
        CHECK(a1 - a0 <= 10);
        CHECK(b1 - b0 <= 10);
        CHECK_OK(ipcf_dealloc(p1, "done"));
        CHECK_OK(ipcf_dealloc(p2, "done"));
        test_wait(e1, 10000);
        test_wait(e2, 10000);
        hostset_stop(&S);
}

TEST_TIMEOUT(a_fast_writer_leaves_other_clients_served, 90) {
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, ALLOW);
        hostset_start(&S, 1, ALLOW);
        CHECK(hostset_wait_up(&S, 0, 10000));
        static const char *const sinks[] = { "sink-w1", "sink-w2" }, *const targets[] = { "sink-w1@beta", "sink-w2@beta" };
        pid_t e1 = test_fork(echo, "echo-w1"), sk[2] = { test_fork(sink, (void *)sinks[0]), test_fork(sink, (void *)sinks[1]) };
        hostset_enter(&S, 0);
        int p1 = CHECK_OK(hostset_alloc("echo-w1@beta", NULL));
        int trips;
        uint64_t worst;
        round_trips(p1, 500, 0, &trips, &worst);
        fprintf(stderr, "alone: %d round trips in 0.5 s, slowest %llu us\n", trips, (unsigned long long)worst);
        static const long periods[] = { 40, 100 };
        for (int k = 0; k < 2; k++) {
                g_period_us = periods[k];
                pid_t w = test_fork(writer, (void *)targets[k]);
                usleep(500000);
                long a0 = cpu_ticks(S.h[0].d.pid), w0 = cpu_ticks(w);
                usleep(2000000);
                long a1 = cpu_ticks(S.h[0].d.pid), w1 = cpu_ticks(w);
                fprintf(stderr, "writer every %ld us: alpha %ld ticks in 2 s (writer %ld)\n", periods[k], a1 - a0, w1 - w0);
                /* served: 10 round trips at least, each bounded (how many
                 * fit in 0.5 s is the machine's load, a figure only) */
                round_trips(p1, 500, 10, &trips, &worst);
                fprintf(stderr, "  beside it: %d round trips in 0.5 s or more, slowest %llu us\n", trips,
                        (unsigned long long)worst);
                CHECK(worst < 5000000u);
                CHECK(a1 - a0 <= 200); /* a window at most per message: never the whole 2 s */
                kill(w, SIGKILL);
                test_wait(w, 5000);
        }
        CHECK_OK(ipcf_dealloc(p1, "done"));
        test_wait(e1, 10000);
        for (int k = 0; k < 2; k++) {
                kill(sk[k], SIGKILL);
                test_wait(sk[k], 5000);
        }
        hostset_stop(&S);
}
