/*
 * test-hosts-netns.c — hosts as network namespaces joined by veth pairs
 * (root; named from the test's pid, removed at the end whatever happens:
 * tests/support/hostset.c), each with its own daemon:
 *  - two hosts: 256 MiB through ipcf listen / ipcf cat over veth (sha256),
 *    and a flow's round trips;
 *  - three hosts: search rules (a name only on gamma, asked of beta then
 *    gamma), a pin to gamma, and beta's daemon killed: alpha's flow with
 *    beta ends "host unreachable" while its flow with gamma goes on.
 * Without root there is nothing to run here (the loopback tests of
 * test-hosts.c cover the rest): each case says so and passes.
 */
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "ipcf.h"
#include "support/hostset.h"
#include "support/test.h"

static hostset S;

/* The policy of every host: only enrolled hosts may be named (a principal
 * of a host the file does not enrol is a config error). */
#define ALLOW2 "[name *]\nremote_allocate = *@alpha *@beta\n"
#define ALLOW3 "[name *]\nremote_allocate = *@alpha *@beta *@gamma\n"

static bool need_root(void) {
        if (geteuid() == 0)
                return true;
        fprintf(stderr, "not root: no network namespaces, nothing to test here\n");
        return false;
}

static uint64_t pump(int in, int out, uint64_t total, bool gen, uint8_t ret_hash[32]) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        static uint8_t buf[1 << 20];
        uint64_t done = 0;
        for (uint64_t i = 0;; i++) {
                ssize_t n;
                if (gen) {
                        if (done == total)
                                break;
                        n = (ssize_t)MIN((uint64_t)sizeof(buf), total - done);
                        test_fill(buf, (size_t)n, i);
                        for (ssize_t w = 0; w < n;) {
                                ssize_t k = write(out, buf + w, (size_t)(n - w));
                                CHECK(k > 0);
                                w += k;
                        }
                } else {
                        n = read(in, buf, sizeof(buf));
                        if (n == 0)
                                break;
                        CHECK(n > 0);
                }
                crypto_hash_sha256_update(&st, buf, (size_t)n);
                done += (uint64_t)n;
        }
        crypto_hash_sha256_final(&st, ret_hash);
        return done;
}

TEST_TIMEOUT(two_namespaces_listen_cat_over_veth, 600) {
        if (!need_root())
                return;
        uint64_t total = getenv("IPCF_TEST_QUICK") ? 32ull << 20 : 256ull << 20;
        CHECK(hostset_init(&S, 2, HOSTSET_NETNS));
        hostset_start(&S, 0, ALLOW2);
        hostset_start(&S, 1, ALLOW2);
        CHECK(hostset_wait_up(&S, 0, 15000));
        int out[2], in[2];
        CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(in, O_CLOEXEC) == 0);
        const char *lis_argv[] = { "bin/ipcf", "listen", "bulk", NULL };
        pid_t lis = hostset_spawn(&S, 1, lis_argv, -1, out[1]);
        close(out[1]);
        usleep(300000);
        const char *cat_argv[] = { "bin/ipcf", "cat", "bulk@beta", "--stream", "--timeout-ms=20000", NULL };
        pid_t cat = hostset_spawn(&S, 0, cat_argv, in[0], -1);
        close(in[0]);
        /* the generator's hash of what it wrote, for the receiving end's */
        uint8_t *want = mmap(NULL, 32, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(want != MAP_FAILED);
        pid_t gen = fork();
        if (gen == 0) {
                close(out[0]);
                pump(-1, in[1], total, true, want);
                _exit(0);
        }
        close(in[1]);
        uint64_t t0 = test_now_ms();
        uint8_t got[32];
        CHECK_EQ(pump(out[0], -1, 0, false, got), total);
        uint64_t ms = test_now_ms() - t0;
        CHECK_EQ(test_wait(gen, 60000), 0);
        CHECK_EQ(test_wait(cat, 60000), 0);
        CHECK_EQ(test_wait(lis, 60000), 0);
        CHECK_MEM(got, want, 32);
        fprintf(stderr, "%llu MiB over veth in %llu ms\n", (unsigned long long)(total >> 20),
                (unsigned long long)ms);
        hostset_stop(&S);
}

/* Host i registers name and echoes one flow until it ends. */
typedef struct echo_at {
        int host;
        const char *name;
} echo_at;

static void echo_child(void *p) {
        echo_at *e = p;
        hostset_enter(&S, e->host);
        int reg = CHECK_OK(ipcf_register(e->name, NULL));
        int port = CHECK_OK(ipcf_accept(reg, 30000, NULL));
        char buf[4096];
        ssize_t n;
        while ((n = ipcf_read(port, buf, sizeof(buf), 60000)) >= 0)
                if (ipcf_write(port, buf, (size_t)n, 5000) != n)
                        break;
}

static void echo_once(int port, const char *what) {
        char buf[64];
        size_t n = strlen(what);
        CHECK_EQ(ipcf_write(port, what, n, 5000), (ssize_t)n);
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 10000), (ssize_t)n);
        CHECK(!memcmp(buf, what, n));
}

TEST_TIMEOUT(three_namespaces_search_pin_and_a_host_lost, 300) {
        if (!need_root())
                return;
        CHECK(hostset_init(&S, 3, HOSTSET_NETNS));
        hostset_start(&S, 0, ALLOW3);
        hostset_start(&S, 1, ALLOW3);
        hostset_start(&S, 2, ALLOW3);
        CHECK(hostset_wait_up(&S, 0, 15000));
        CHECK(hostset_wait_up(&S, 1, 15000));
        CHECK(hostset_wait_up(&S, 2, 15000));
        echo_at on_gamma = { 2, "only-on-gamma" }, on_beta = { 1, "on-beta" }, pinned = { 2, "pinned" };
        pid_t g = test_fork(echo_child, &on_gamma), b = test_fork(echo_child, &on_beta),
              p = test_fork(echo_child, &pinned);
        hostset_enter(&S, 0);
        usleep(300000);
        /* by the search rules: beta (ENOENT), then gamma */
        int pg = CHECK_OK(hostset_alloc("only-on-gamma", NULL));
        ipcf_peer_info pi;
        CHECK_OK(ipcf_peer(pg, &pi));
        CHECK(!strcmp(pi.name, "only-on-gamma@gamma"));
        echo_once(pg, "via the search rules");
        int pp = CHECK_OK(hostset_alloc("pinned@gamma", NULL));
        echo_once(pp, "pinned");
        int pb = CHECK_OK(hostset_alloc("on-beta", NULL));
        echo_once(pb, "beta");
        /* beta's daemon dies: its flow ends, gamma's go on */
        hostset_kill_host(&S, 1);
        char buf[64];
        CHECK_EQ(ipcf_read(pb, buf, sizeof(buf), 20000), -ECONNRESET);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(pb, &why));
        CHECK(!strcmp(why.text, "host unreachable"));
        echo_once(pg, "still here");
        echo_once(pp, "still here");
        CHECK_OK(ipcf_dealloc(pg, "done"));
        CHECK_OK(ipcf_dealloc(pp, "done"));
        CHECK_EQ(test_wait(g, 20000), 0);
        CHECK_EQ(test_wait(p, 20000), 0);
        kill(b, SIGKILL);
        test_wait(b, 5000);
        hostset_stop(&S);
}
