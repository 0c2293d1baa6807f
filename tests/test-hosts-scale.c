/*
 * test-hosts-scale.c — 10,000 flows at once between two real daemons over
 * real UDP on 127.0.0.1, one association: every flow works (a message there
 * and back on each, all flows open), the daemons' memory stays bounded (each
 * one's resident size per flow is printed and bounded), and everything is
 * reclaimed when the flows end (no flow left in either daemon's listing).
 * IPCF_TEST_QUICK=1: 2000 flows. The descriptor limit is raised for the
 * test's processes where it may be (CAP_SYS_RESOURCE); where it cannot, the
 * number of flows is what the daemons' cap allows (a tenth of their
 * descriptor limit: a flow holds 4 to 6 descriptors in a daemon, 7 in an
 * application), said on stderr.
 */
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "ipcf.h"
#include "support/hostset.h"
#include "support/test.h"

static hostset S;
static int N;

static uint64_t rss_kib(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        uint64_t kib = 0;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %lu kB", (unsigned long *)&kib) == 1)
                        break;
        if (f)
                fclose(f);
        return kib;
}

static void acceptor(void *p) {
        hostset_enter(&S, 1);
        ipcf_reg_opts o = { .size = sizeof(o), .backlog = 1024 };
        int reg = CHECK_OK(ipcf_register("many", &o));
        int *ports = calloc((size_t)N, sizeof(int));
        for (int i = 0; i < N; i++)
                ports[i] = CHECK_OK(ipcf_accept(reg, 60000, NULL));
        /* every flow: one message back, in whatever order they come */
        for (int i = 0; i < N; i++) {
                uint32_t v;
                CHECK_EQ(ipcf_read(ports[i], &v, sizeof(v), 60000), 4);
                v ^= 0xa5a5a5a5u;
                CHECK_EQ(ipcf_write(ports[i], &v, sizeof(v), 60000), 4);
        }
        for (int i = 0; i < N; i++) {
                uint32_t v;
                CHECK_EQ(ipcf_read(ports[i], &v, sizeof(v), 120000), -EPIPE);
                ipcf_dealloc(ports[i], NULL);
        }
}

static size_t flows_in(int host) {
        pid_t p = fork();
        if (p == 0) {
                hostset_enter(&S, host);
                ipcf_listing *l;
                CHECK_OK(ipcf_list(&l));
                size_t n = l->n_flows;
                ipcf_free(l);
                _exit(n > 250 ? 250 : (int)n);
        }
        return (size_t)test_wait(p, 60000);
}

TEST_TIMEOUT(ten_thousand_flows_or_as_many_as_descriptors_allow, 900) {
        N = getenv("IPCF_TEST_QUICK") ? 2000 : 10000;
        /* The daemons' flow cap is a tenth of their descriptor limit (each
         * flow holds 4 to 6 descriptors there): raise it where we may. */
        struct rlimit rl = { 200000, 200000 };
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                getrlimit(RLIMIT_NOFILE, &rl);
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        int fit = (int)MIN((rl.rlim_cur - 64) / 10 - 50, (rl.rlim_cur - 200) / 8);
        if (fit < N) {
                fprintf(stderr,
                        "descriptor limit %lu (no CAP_SYS_RESOURCE to raise it): %d flows, the daemons' cap\n",
                        (unsigned long)rl.rlim_cur, fit);
                N = fit;
        }
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        const char *conf = "[limits]\nflows_per_user = 100000\npending_per_user = 4096\n"
                           "ring_bytes_per_user = 64G\n[name *]\nremote_allocate = *@alpha\n";
        hostset_start(&S, 0, conf);
        hostset_start(&S, 1, conf);
        CHECK(hostset_wait_up(&S, 0, 10000));
        uint64_t rss0[2] = { rss_kib(S.h[0].d.pid), rss_kib(S.h[1].d.pid) };
        pid_t acc = test_fork(acceptor, NULL);
        hostset_enter(&S, 0);
        usleep(300000);
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = 4096;
        q.max_msg_size = 64;
        q.spin_us = 0;
        int *ports = calloc((size_t)N, sizeof(int));
        uint64_t t0 = test_now_ms();
        for (int i = 0; i < N; i++) {
                int p = -ENOENT;
                for (int t = 0; t < 100 && p == -ENOENT; t++)
                        if ((p = ipcf_alloc("many@beta", &q, 60000, NULL)) == -ENOENT)
                                usleep(20000);
                if (p < 0)
                        test_fail(__FILE__, __LINE__, "flow %d: %s", i, ipcf_strerror(p));
                ports[i] = p;
        }
        uint64_t t_alloc = test_now_ms() - t0;
        uint64_t rss1[2] = { rss_kib(S.h[0].d.pid), rss_kib(S.h[1].d.pid) };
        ipcf_host_listing *hl;
        CHECK_OK(ipcf_hosts(&hl));
        CHECK_EQ(hl->hosts[0].flows, (uint32_t)N);
        ipcf_free(hl);
        /* every flow works, all open at once */
        for (int i = 0; i < N; i++) {
                uint32_t v = (uint32_t)i;
                CHECK_EQ(ipcf_write(ports[i], &v, sizeof(v), 60000), 4);
        }
        for (int i = 0; i < N; i++) {
                uint32_t v;
                CHECK_EQ(ipcf_read(ports[i], &v, sizeof(v), 60000), 4);
                CHECK_EQ(v, (uint32_t)i ^ 0xa5a5a5a5u);
        }
        fprintf(stderr,
                "%d flows: allocated in %llu ms (%.2f ms each); resident per flow: alpha %.1f KiB, beta %.1f KiB\n",
                N, (unsigned long long)t_alloc, (double)t_alloc / N, (double)(rss1[0] - rss0[0]) / N,
                (double)(rss1[1] - rss0[1]) / N);
        /* bounded: a flow costs the daemon its engine state, a relay and the
         * pages it touched, far below 256 KiB */
        CHECK((rss1[0] - rss0[0]) / (uint64_t)N < 256);
        CHECK((rss1[1] - rss0[1]) / (uint64_t)N < 256);
        for (int i = 0; i < N; i++)
                CHECK_OK(ipcf_dealloc(ports[i], "done"));
        CHECK_EQ(test_wait(acc, 300000), 0);
        /* reclaimed on both hosts */
        size_t left[2] = { 1, 1 };
        for (int t = 0; t < 200 && (left[0] || left[1]); t++) {
                left[0] = flows_in(0);
                left[1] = flows_in(1);
                if (left[0] || left[1])
                        usleep(100000);
        }
        CHECK_EQ(left[0], 0);
        CHECK_EQ(left[1], 0);
        hostset_stop(&S);
}
