/*
 * test-flow.c — the local facility through its public API, against the real
 * daemon on a private runtime directory: names, allocation, acceptance and
 * refusal, access policy, activation, timeouts, peer and daemon death, many
 * flows, a large stream.
 */
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

static void start(const char *conf) {
        test_daemon_start(&d, conf, NULL);
}

static void raise_fd_limit(void) {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
}

/* A child that allocates a flow to name, writes msg, and exits 0 on an echo. */
struct client_args {
        const char *name;
        const char *msg;
        ipcf_qos *qos;
};

static void client_echo(void *arg) {
        struct client_args *a = arg;
        int port = CHECK_OK(ipcf_alloc(a->name, a->qos, 5000, NULL));
        size_t len = strlen(a->msg);
        CHECK_EQ(ipcf_write(port, a->msg, len, 5000), len);
        char buf[256];
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), len);
        CHECK_MEM(buf, a->msg, len);
        CHECK_OK(ipcf_dealloc(port, "client done"));
}

TEST(register_alloc_accept_roundtrip) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.echo", NULL));
        struct client_args a = { "svc.echo", "hello by name", NULL };
        pid_t c = test_fork(client_echo, &a);
        ipcf_request req;
        int port = CHECK_OK(ipcf_accept(reg, 5000, &req));
        CHECK_EQ(req.from.pid, c);
        CHECK_EQ(req.from.uid, getuid());
        CHECK(strcmp(req.name, "svc.echo") == 0);
        CHECK(req.from.name[0] != 0); /* the requester's program */
        char buf[256];
        ssize_t n = CHECK_OK(ipcf_read(port, buf, sizeof(buf), 5000));
        CHECK_EQ(ipcf_write(port, buf, (size_t)n, 5000), n);
        CHECK_ERR(ipcf_read(port, buf, sizeof(buf), 5000), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_DEALLOC);
        CHECK(strcmp(why.text, "client done") == 0);
        ipcf_peer_info peer;
        CHECK_OK(ipcf_peer(port, &peer));
        CHECK_EQ(peer.pid, c);
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_OK(ipcf_dealloc(port, NULL));
        CHECK_OK(ipcf_dealloc(reg, NULL));
        CHECK_ERR(ipcf_dealloc(reg, NULL), -EBADF);
        test_daemon_stop(&d);
}

TEST(qos_travels_through_the_facility) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.qos", NULL));
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.mode = IPCF_MODE_STREAM;
        q.capacity = IPCF_CAPACITY_BOUNDED;
        q.max_bytes = 100000; /* rounded up to a power of two */
        q.max_msg_size = 8192;
        q.full = IPCF_FULL_FAIL;
        q.spin_us = 0;
        struct client_args a = { "svc.qos", "streamed", &q };
        pid_t c = test_fork(client_echo, &a);
        ipcf_request req;
        CHECK_OK(ipcf_request_next(reg, 5000, &req));
        CHECK_EQ(req.qos.mode, IPCF_MODE_STREAM);
        CHECK_EQ(req.qos.max_msg_size, 8192);
        CHECK_EQ(req.qos.full, IPCF_FULL_FAIL);
        int port = CHECK_OK(ipcf_request_accept(reg, &req));
        ipcf_qos got;
        CHECK_OK(ipcf_qos_get(port, &got));
        CHECK_EQ(got.mode, IPCF_MODE_STREAM);
        CHECK_EQ(got.spin_us, 0);
        char buf[64];
        size_t have = 0;
        while (have < 8)
                have += (size_t)CHECK_OK(ipcf_read(port, buf + have, sizeof(buf) - have, 5000));
        CHECK_EQ(ipcf_write(port, buf, have, 5000), have);
        CHECK_EQ(test_wait(c, 5000), 0);
        /* invalid qos is refused before it reaches anyone */
        q.mode = 7;
        CHECK_ERR(ipcf_alloc("svc.qos", &q, 1000, NULL), -EINVAL);
        test_daemon_stop(&d);
}

static void client_expect_refusal(void *arg) {
        ipcf_reason why;
        CHECK_ERR(ipcf_alloc((const char *)arg, NULL, 5000, &why), -ECONNREFUSED);
        CHECK_EQ(why.code, IPCF_END_REFUSED);
        CHECK(strcmp(why.text, "printer out of paper") == 0);
}

static void client_expect_control_bytes_replaced(void *arg) {
        ipcf_reason why;
        CHECK_ERR(ipcf_alloc((const char *)arg, NULL, 5000, &why), -ECONNREFUSED);
        CHECK(strcmp(why.text, "out?[31m?of? paper?") == 0);
}

TEST(refusal_carries_the_reason) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.printer", NULL));
        pid_t c = test_fork(client_expect_refusal, "svc.printer");
        ipcf_request req;
        CHECK_OK(ipcf_request_next(reg, 5000, &req));
        CHECK_OK(ipcf_request_refuse(reg, &req, "printer out of paper"));
        CHECK_EQ(test_wait(c, 5000), 0);
        /* a reason with control bytes reaches the requester printable: no
         * escape sequence of the target's reaches a terminal that prints it */
        c = test_fork(client_expect_control_bytes_replaced, "svc.printer");
        CHECK_OK(ipcf_request_next(reg, 5000, &req));
        CHECK_OK(ipcf_request_refuse(reg, &req, "out\x1b[31m\tof\x7f paper\n"));
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

/* A peer's deallocation reason is bytes it wrote in shared memory: read
 * printable, whatever it wrote. */
static void client_dealloc_with_escapes(void *arg) {
        int port = CHECK_OK(ipcf_alloc((const char *)arg, NULL, 5000, NULL));
        CHECK_OK(ipcf_dealloc(port, "bye\x1b]0;title\x07\r"));
}

TEST(a_deallocation_reason_is_read_printable) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.bye", NULL));
        pid_t c = test_fork(client_dealloc_with_escapes, "svc.bye");
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        char buf[16];
        CHECK_ERR(ipcf_read(port, buf, sizeof(buf), 5000), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_DEALLOC);
        CHECK(strcmp(why.text, "bye?]0;title??") == 0);
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_OK(ipcf_dealloc(port, NULL));
        test_daemon_stop(&d);
}

TEST(unknown_name_and_bad_arguments) {
        start(NULL);
        CHECK_ERR(ipcf_alloc("no.such.name", NULL, 1000, NULL), -ENOENT);
        CHECK_ERR(ipcf_alloc("bad name", NULL, 1000, NULL), -EINVAL);
        CHECK_ERR(ipcf_alloc("", NULL, 1000, NULL), -EINVAL);
        CHECK_ERR(ipcf_alloc("x", NULL, 0, NULL), -EINVAL);
        CHECK_ERR(ipcf_register("has\nnewline", NULL), -EINVAL);
        char longname[200];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        CHECK_ERR(ipcf_register(longname, NULL), -EINVAL);
        CHECK(strcmp(ipcf_strerror(-ENOENT), "no such name") == 0);
        /* -ENOLINK is an RPC call's "outcome unknown" and an allocation's
         * "directory unreachable": its text names both */
        CHECK(strstr(ipcf_strerror(-IPCF_EUNKNOWN), "outcome unknown") != NULL);
        CHECK(strstr(ipcf_strerror(-ENOLINK), "directory unreachable") != NULL);
        test_daemon_stop(&d);
}

TEST(timeouts_of_each_kind) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.slow", NULL));
        ipcf_request req;
        CHECK_ERR(ipcf_request_next(reg, 0, &req), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_accept(reg, 50, &req), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 50);
        /* nobody decides: the allocation times out, and the request is withdrawn */
        t0 = test_now_ms();
        CHECK_ERR(ipcf_alloc("svc.slow", NULL, 200, NULL), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 200);
        /* Its REQUEST is still queued (the descriptor readable: ipcf_fd's
         * transient exception) until the next ipcf_request_next, which skips
         * it (test-request-withdrawn: a late decision is -ECANCELED). */
        struct pollfd p = { .fd = CHECK_OK(ipcf_fd(reg)), .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 0), 1);
        CHECK_ERR(ipcf_request_next(reg, 0, &req), -EAGAIN);
        CHECK_EQ(poll(&p, 1, 0), 0);
        test_daemon_stop(&d);
}

static void client_expect_ok(void *arg) {
        int port = CHECK_OK(ipcf_alloc((const char *)arg, NULL, 5000, NULL));
        CHECK_OK(ipcf_dealloc(port, "ok"));
}

TEST(registration_fd_readable_when_request_pending) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.poll", NULL));
        int fd = CHECK_OK(ipcf_fd(reg));
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 0), 0);
        pid_t c = test_fork(client_expect_ok, "svc.poll");
        CHECK_EQ(poll(&p, 1, 5000), 1);
        CHECK_OK(ipcf_accept(reg, 0, NULL));
        CHECK_EQ(poll(&p, 1, 0), 0);
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

TEST(flows_spread_among_registrants) {
        start(NULL);
        int r1 = CHECK_OK(ipcf_register("svc.pool", NULL));
        int r2 = CHECK_OK(ipcf_register("svc.pool", NULL));
        pid_t c[4];
        for (int i = 0; i < 4; i++)
                c[i] = test_fork(client_expect_ok, "svc.pool");
        int n1 = 0, n2 = 0;
        uint64_t t0 = test_now_ms();
        while (n1 + n2 < 4 && test_now_ms() - t0 < 5000) {
                n1 += ipcf_accept(r1, 10, NULL) >= 0;
                n2 += ipcf_accept(r2, 10, NULL) >= 0;
        }
        CHECK_EQ(n1 + n2, 4);
        CHECK(n1 >= 1 && n2 >= 1);
        for (int i = 0; i < 4; i++)
                CHECK_EQ(test_wait(c[i], 5000), 0);
        CHECK_ERR(ipcf_register("svc.pool", &(ipcf_reg_opts){ .flags = IPCF_REG_EXCLUSIVE }),
                  -EADDRINUSE);
        test_daemon_stop(&d);
}

static void as_nobody_try(void *arg) {
        (void)arg;
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        CHECK_ERR(ipcf_alloc("svc.private", NULL, 2000, NULL), -EACCES);
        CHECK_ERR(ipcf_register("svc.private", NULL), -EACCES);
        /* what the policy grants works */
        int port = CHECK_OK(ipcf_alloc("svc.public", NULL, 5000, NULL));
        ipcf_peer_info peer;
        CHECK_OK(ipcf_peer(port, &peer));
        CHECK_EQ(peer.uid, 0);
        CHECK_OK(ipcf_dealloc(port, "bye"));
}

TEST(access_denied_to_another_user) {
        if (getuid() != 0) {
                printf("     (skipped: needs root to run a child as nobody)\n");
                return;
        }
        const char *conf = "[daemon]\nshared = yes\n[name svc.public]\nallocate = *\n";
        start(conf);
        int priv = CHECK_OK(ipcf_register("svc.private", NULL));
        int pub = CHECK_OK(ipcf_register("svc.public", NULL));
        pid_t c = test_fork(as_nobody_try, NULL);
        ipcf_request req;
        int port = CHECK_OK(ipcf_accept(pub, 5000, &req));
        CHECK_EQ(req.from.uid, 65534); /* stamped by the facility */
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_OK(ipcf_dealloc(port, NULL));
        CHECK_OK(ipcf_dealloc(priv, NULL));
        test_daemon_stop(&d);
}

TEST(activation_starts_the_target_on_demand) {
        char conf[1024];
        char *echo = test_build_path("examples/echo-server");
        snprintf(conf, sizeof(conf),
                 "[name svc.lazy]\nactivate = %s svc.lazy\nactivate_timeout_ms = 5000\n"
                 "[name svc.broken]\nactivate = /nonexistent/program\n",
                 echo);
        free(echo);
        start(conf);
        int port = CHECK_OK(ipcf_alloc("svc.lazy", NULL, 5000, NULL));
        CHECK_EQ(ipcf_write(port, "wake up", 7, 5000), 7);
        char buf[16];
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 7);
        CHECK_MEM(buf, "wake up", 7);
        ipcf_peer_info peer;
        CHECK_OK(ipcf_peer(port, &peer));
        CHECK(peer.pid > 0 && peer.pid != getpid());
        CHECK_OK(ipcf_dealloc(port, "done"));
        CHECK_ERR(ipcf_alloc("svc.broken", NULL, 5000, NULL), -ENOEXEC);
        test_daemon_stop(&d);
}

/* Write numbered messages until killed. */
static void endless_writer(void *arg) {
        int port = CHECK_OK(ipcf_alloc((const char *)arg, NULL, 5000, NULL));
        char buf[1024] = { 0 };
        for (;;)
                if (ipcf_write(port, buf, sizeof(buf), -1) < 0)
                        _exit(3);
}

static unsigned daemon_flows(void) {
        ipcf_listing *l;
        CHECK_OK(ipcf_list(&l));
        unsigned n = (unsigned)l->n_flows;
        ipcf_free(l);
        return n;
}

TEST(kill_9_writer_mid_transfer) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.victim", NULL));
        pid_t c = test_fork(endless_writer, "svc.victim");
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        static char buf[4096];
        for (int i = 0; i < 1000; i++)
                CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 1024);
        CHECK_EQ(daemon_flows(), 1);
        kill(c, SIGKILL);
        uint64_t t0 = test_now_ms();
        ssize_t r;
        while ((r = ipcf_read(port, buf, sizeof(buf), 5000)) == 1024)
                ; /* what it wrote before dying is still ours */
        CHECK_ERR(r, -ECONNRESET);
        printf("     peer death seen after %llu ms\n", (unsigned long long)(test_now_ms() - t0));
        CHECK(test_now_ms() - t0 < 1000);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_PEER_DIED);
        CHECK(strcmp(why.text, "peer died") == 0);
        test_wait(c, 1000);
        CHECK_OK(ipcf_dealloc(port, NULL));
        /* both sides gone: the daemon forgets the flow, its memory is reclaimed
         * (waiting 10 s at most for it, for a loaded machine) */
        for (int i = 0; i < 1000 && daemon_flows() != 0; i++)
                usleep(10000);
        CHECK_EQ(daemon_flows(), 0);
        test_daemon_stop(&d);
}

static void endless_reader(void *arg) {
        int port = CHECK_OK(ipcf_alloc((const char *)arg, NULL, 5000, NULL));
        char buf[64];
        while (ipcf_read(port, buf, sizeof(buf), -1) >= 0)
                ;
        _exit(3);
}

TEST(kill_9_reader_mid_transfer) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.victim2", NULL));
        pid_t c = test_fork(endless_reader, "svc.victim2");
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        for (int i = 0; i < 1000; i++)
                CHECK_EQ(ipcf_write(port, "data", 4, 5000), 4);
        kill(c, SIGKILL);
        /* the writer fills the queue and then learns of the death, never hangs */
        ssize_t r;
        uint64_t t0 = test_now_ms();
        while ((r = ipcf_write(port, "data", 4, 5000)) == 4 && test_now_ms() - t0 < 10000)
                ;
        CHECK_ERR(r, -ECONNRESET);
        test_wait(c, 1000);
        test_daemon_stop(&d);
}

TEST(daemon_killed_clients_get_clear_errors) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.orphan", NULL));
        pid_t c = fork();
        if (c == 0) {
                int port = CHECK_OK(ipcf_alloc("svc.orphan", NULL, 5000, NULL));
                char buf[16];
                /* the flow outlives the daemon: data still moves */
                ssize_t n = ipcf_read(port, buf, sizeof(buf), 5000);
                CHECK_EQ(n, 5);
                CHECK_EQ(ipcf_write(port, "after", 5, 5000), 5);
                _exit(0);
        }
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        test_daemon_kill(&d);
        CHECK_EQ(ipcf_write(port, "still", 5, 5000), 5);
        char buf[16];
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 5);
        CHECK_EQ(test_wait(c, 5000), 0);
        /* the peer is gone (exited): seen without the daemon too */
        CHECK_ERR(ipcf_read(port, buf, sizeof(buf), 5000), -ECONNRESET);
        /* control requests fail at once with a clear error (no autostart in tests) */
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_alloc("svc.orphan", NULL, 5000, NULL), -EHOSTDOWN);
        CHECK_ERR(ipcf_register("svc.new", NULL), -EHOSTDOWN);
        ipcf_request req;
        CHECK_ERR(ipcf_request_next(reg, 5000, &req), -EHOSTDOWN);
        CHECK(test_now_ms() - t0 < 1000);
        CHECK_OK(ipcf_dealloc(port, NULL));
        test_daemon_stop(&d);
}

#define MANY 1000

static void many_allocs(void *arg) {
        (void)arg;
        raise_fd_limit();
        static int ports[MANY];
        for (int i = 0; i < MANY; i++)
                ports[i] = CHECK_OK(ipcf_alloc("svc.many", NULL, 10000, NULL));
        for (int i = 0; i < MANY; i++)
                CHECK_EQ(ipcf_write(ports[i], &i, sizeof(i), 5000), sizeof(i));
        for (int i = 0; i < MANY; i++) {
                int v = -1;
                CHECK_EQ(ipcf_read(ports[i], &v, sizeof(v), 5000), sizeof(v));
                CHECK_EQ(v, i * 2);
        }
}

TEST_TIMEOUT(thousand_concurrent_flows, 120) {
        raise_fd_limit();
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.many", &(ipcf_reg_opts){ .backlog = MANY }));
        pid_t c = test_fork(many_allocs, NULL);
        static int ports[MANY];
        for (int i = 0; i < MANY; i++)
                ports[i] = CHECK_OK(ipcf_accept(reg, 10000, NULL));
        CHECK_EQ(daemon_flows(), MANY);
        /* requests are served in order: flow i carries i; answer 2i */
        for (int i = 0; i < MANY; i++) {
                int v = -1;
                CHECK_EQ(ipcf_read(ports[i], &v, sizeof(v), 5000), sizeof(v));
                v *= 2;
                CHECK_EQ(ipcf_write(ports[i], &v, sizeof(v), 5000), sizeof(v));
        }
        CHECK_EQ(test_wait(c, 30000), 0);
        test_daemon_stop(&d);
}

/* 1 GiB of a reproducible pattern: the receiver knows what to expect.
 * (256 MiB under IPCF_TEST_QUICK=1, for sanitizer runs.) */
#define CHUNK (1u << 20)

static int gib_chunks(void) {
        const char *q = getenv("IPCF_TEST_QUICK");
        return q && strcmp(q, "1") == 0 ? 256 : 1024;
}

static void gib_sender(void *arg) {
        (void)arg;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.mode = IPCF_MODE_STREAM;
        int port = CHECK_OK(ipcf_alloc("svc.bulk", &q, 5000, NULL));
        static uint8_t buf[CHUNK];
        for (int i = 0; i < gib_chunks(); i++) {
                test_fill(buf, sizeof(buf), (uint64_t)i);
                CHECK_EQ(ipcf_write(port, buf, sizeof(buf), 10000), sizeof(buf));
        }
        CHECK_OK(ipcf_dealloc(port, "eof"));
}

TEST_TIMEOUT(one_gib_stream_with_checksum, 300) {
        start(NULL);
        int reg = CHECK_OK(ipcf_register("svc.bulk", NULL));
        pid_t c = test_fork(gib_sender, NULL);
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        static uint8_t buf[CHUNK], want[CHUNK];
        uint64_t h = 0, expect = 0, total = 0;
        uint64_t t0 = test_now_ns();
        for (;;) {
                ssize_t n = ipcf_read(port, buf, sizeof(buf), 10000);
                if (n == -EPIPE)
                        break;
                CHECK(n > 0);
                h = test_hash(buf, (size_t)n, h);
                total += (uint64_t)n;
        }
        double secs = (double)(test_now_ns() - t0) / 1e9;
        for (int i = 0; i < gib_chunks(); i++) {
                test_fill(want, sizeof(want), (uint64_t)i);
                expect = test_hash(want, sizeof(want), expect);
        }
        CHECK_EQ(total, (uint64_t)gib_chunks() * CHUNK);
        CHECK_EQ(h, expect);
        printf("     %d MiB in %.2f s (with the checksum work)\n", gib_chunks(), secs);
        CHECK_EQ(test_wait(c, 10000), 0);
        test_daemon_stop(&d);
}

static int prefork_reg;

static void prefork_worker(void *arg) {
        (void)arg;
        ipcf_request req;
        int port = CHECK_OK(ipcf_accept(prefork_reg, 5000, &req));
        char buf[16];
        ssize_t n = CHECK_OK(ipcf_read(port, buf, sizeof(buf), 5000));
        CHECK_EQ(ipcf_write(port, buf, (size_t)n, 5000), n);
        CHECK_ERR(ipcf_read(port, buf, sizeof(buf), 5000), -EPIPE);
}

TEST(prefork_workers_accept_on_the_parents_registration) {
        start(NULL);
        prefork_reg = CHECK_OK(ipcf_register("svc.prefork", NULL));
        pid_t w[2];
        for (int i = 0; i < 2; i++)
                w[i] = test_fork(prefork_worker, NULL);
        for (int i = 0; i < 2; i++) {
                int port = CHECK_OK(ipcf_alloc("svc.prefork", NULL, 5000, NULL));
                ipcf_peer_info peer;
                CHECK_OK(ipcf_peer(port, &peer));
                CHECK_EQ(ipcf_write(port, "hi", 2, 5000), 2);
                char buf[4];
                CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 2);
                CHECK_OK(ipcf_dealloc(port, "done"));
        }
        for (int i = 0; i < 2; i++)
                CHECK_EQ(test_wait(w[i], 5000), 0);
        test_daemon_stop(&d);
}

TEST(ring_memory_is_charged_to_the_requester) {
        /* 2 x 1 MiB per default flow against 3 MiB: one flow, not two. */
        start("[limits]\nring_bytes_per_user = 3M\n");
        int reg = CHECK_OK(ipcf_register("svc.mem", NULL));
        pid_t c = test_fork(client_expect_ok, "svc.mem");
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        CHECK_EQ(test_wait(c, 5000), 0);
        /* the first flow still holds its charge until both sides are gone */
        ipcf_qos q;
        ipcf_qos_init(&q);
        CHECK_ERR(ipcf_alloc("svc.mem", &q, 1000, NULL), -EDQUOT);
        q.max_bytes = 4096; /* a small ring fits */
        q.max_msg_size = 1024;
        pid_t c2 = fork();
        if (c2 == 0) {
                int p2 = CHECK_OK(ipcf_alloc("svc.mem", &q, 5000, NULL));
                CHECK_OK(ipcf_dealloc(p2, "ok"));
                _exit(0);
        }
        CHECK_OK(ipcf_accept(reg, 5000, NULL));
        CHECK_EQ(test_wait(c2, 5000), 0);
        CHECK_OK(ipcf_dealloc(port, NULL));
        test_daemon_stop(&d);
}
