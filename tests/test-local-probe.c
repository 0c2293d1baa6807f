/*
 * test-local-probe.c — an outside tester's probes of the local facility's
 * promises (issue 2): qos limits, error codes of the flow calls, reasons.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

struct acc { int reg; int port; int timeout_ms; };
static void *acceptor(void *arg) {
        struct acc *a = arg;
        a->port = ipcf_accept(a->reg, a->timeout_ms ? a->timeout_ms : 5000, NULL);
        return NULL;
}

/* Both ends of a flow to name in this process. */
static void pair(const char *name, const ipcf_qos *q, int *ra, int *rb) {
        struct acc a = { CHECK_OK(ipcf_register(name, NULL)), -1, 0 };
        pthread_t t;
        pthread_create(&t, NULL, acceptor, &a);
        *ra = CHECK_OK(ipcf_alloc(name, q, 5000, NULL));
        pthread_join(t, NULL);
        *rb = CHECK_OK(a.port);
        CHECK_OK(ipcf_dealloc(a.reg, NULL));
}

/* A daemon, then both ends of a flow to name whose qos is the default
 * changed by set (NULL: the default). */
static void start_pair(const char *name, void (*set)(ipcf_qos *), int *ra, int *rb) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_qos q;
        ipcf_qos_init(&q);
        if (set)
                set(&q);
        pair(name, &q, ra, rb);
}

static void msgs_of_1000(ipcf_qos *q) { q->max_msg_size = 1000; }
static void three_msgs(ipcf_qos *q) { q->max_msgs = 3; }
static void zero_capacity(ipcf_qos *q) { q->capacity = IPCF_CAPACITY_ZERO; }
static void stream_of_100(ipcf_qos *q) { q->mode = IPCF_MODE_STREAM; q->max_msg_size = 100; }
static void unbounded_1m(ipcf_qos *q) { q->capacity = IPCF_CAPACITY_UNBOUNDED; q->max_bytes = 1 << 20; }

TEST(probe_qos_limits) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.q", NULL));
        ipcf_qos q;
#define BAD(stmt) do { ipcf_qos_init(&q); stmt; CHECK_ERR(ipcf_alloc("p.q", &q, 1000, NULL), -EINVAL); } while (0)
        BAD(q.size = 0);
        BAD(q.size = sizeof q + 1);
        BAD(q.capacity = 3);
        BAD(q.mode = 2);
        BAD(q.full = 3);
        BAD(q.reserved = 1);
        BAD(q.reserved2 = 1);
        BAD(q.max_bytes = (1ull << 30) + 1);
        BAD(q.max_msg_size = (64u << 20) + 1);
        BAD(q.spin_us = 100001);
        BAD(q.cache_msgs = 65537);
        BAD((q.full = IPCF_FULL_CACHE, q.cache_msgs = 4096));
        BAD((q.capacity = IPCF_CAPACITY_UNBOUNDED, q.max_bytes = (16ull << 30) + 1));
        CHECK_ERR(ipcf_alloc("p.q", NULL, 0, NULL), -EINVAL);
        CHECK_ERR(ipcf_alloc("p.q", NULL, -2, NULL), -EINVAL);
        CHECK_ERR(ipcf_alloc("p.nobody", NULL, 1000, NULL), -ENOENT);
        CHECK_ERR(ipcf_alloc(NULL, NULL, 1000, NULL), -EINVAL);
        CHECK_ERR(ipcf_alloc("", NULL, 1000, NULL), -EINVAL);
        CHECK_ERR(ipcf_alloc("a b", NULL, 1000, NULL), -EINVAL);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

TEST(probe_names) {
        test_daemon_start(&d, NULL, NULL);
        char n[200];
        memset(n, 'x', sizeof n);
        n[127] = 0;
        int r = CHECK_OK(ipcf_register(n, NULL));
        n[127] = 'x'; n[128] = 0;
        CHECK_ERR(ipcf_register(n, NULL), -EINVAL);
        CHECK_ERR(ipcf_register("", NULL), -EINVAL);
        CHECK_ERR(ipcf_register(NULL, NULL), -EINVAL);
        CHECK_ERR(ipcf_register("a\tb", NULL), -EINVAL);
        CHECK_ERR(ipcf_register("a\x7f", NULL), -EINVAL);
        CHECK_ERR(ipcf_register("caf\xc3\xa9", NULL), -EINVAL);
        ipcf_reg_opts o = { sizeof o, 1u << 5, 0, 0 };
        CHECK_ERR(ipcf_register("p.o", &o), -EINVAL);
        o.flags = 0; o.size = 3;
        CHECK_ERR(ipcf_register("p.o", &o), -EINVAL);
        o.size = 0; o.flags = IPCF_REG_EXCLUSIVE;
        int ex = CHECK_OK(ipcf_register("p.ex", &o));
        CHECK_ERR(ipcf_register("p.ex", NULL), -EADDRINUSE);
        CHECK_ERR(ipcf_register("p.ex", &o), -EADDRINUSE);
        int sh = CHECK_OK(ipcf_register("p.sh", NULL));
        CHECK_ERR(ipcf_register("p.sh", &o), -EADDRINUSE);
        CHECK_OK(ipcf_dealloc(ex, NULL));
        CHECK_OK(ipcf_dealloc(sh, NULL));
        CHECK_OK(ipcf_dealloc(r, NULL));
        CHECK_ERR(ipcf_dealloc(r, NULL), -EBADF);
        CHECK_ERR(ipcf_dealloc(-1, NULL), -EBADF);
        CHECK_ERR(ipcf_dealloc(100000, NULL), -EBADF);
        CHECK_ERR(ipcf_detach(-1), -EBADF);
        test_daemon_stop(&d);
}

/* "name@<this host>" is this host's "name" also when the daemon is local
 * only (docs/DAEMON.md, Hosts, "Search rules"; the host is the first label of
 * gethostname() when no [hosts] name is set): it reaches a registered name,
 * and nothing may be registered under such a name. */
TEST(probe_name_at_this_host_is_the_local_name) {
        test_daemon_start(&d, NULL, NULL);
        char host[256] = "", name[300];
        gethostname(host, sizeof(host) - 1);
        host[strcspn(host, ".")] = 0;
        int a, b;
        snprintf(name, sizeof name, "p.here@%s", host);
        struct acc acc = { CHECK_OK(ipcf_register("p.here", NULL)), -1, 0 };
        pthread_t t;
        pthread_create(&t, NULL, acceptor, &acc);
        a = ipcf_alloc(name, NULL, 5000, NULL);
        pthread_join(t, NULL);
        CHECK_OK(a);
        b = CHECK_OK(acc.port);
        CHECK_EQ(ipcf_write(a, "hi", 2, 1000), 2);
        char buf[8];
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 1000), 2);
        CHECK_ERR(ipcf_register(name, NULL), -EINVAL);
        snprintf(name, sizeof name, "p.box@%s", host);
        CHECK_ERR(ipcf_mbox_create(name, NULL), -EINVAL);
        /* another '@' is a character of a name like any other */
        int other = CHECK_OK(ipcf_register("p.x@no-such-host", NULL));
        CHECK_OK(ipcf_dealloc(other, NULL));
        CHECK_OK(ipcf_dealloc(a, NULL));
        CHECK_OK(ipcf_dealloc(b, NULL));
        CHECK_OK(ipcf_dealloc(acc.reg, NULL));
        test_daemon_stop(&d);
}

TEST(probe_wrong_kinds) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.k", NULL));
        char b[8];
        CHECK_ERR(ipcf_write(reg, "x", 1, 0), -EBADF);
        CHECK_ERR(ipcf_read(reg, b, 8, 0), -EBADF);
        CHECK_ERR(ipcf_next_size(reg, 0), -EBADF);
        ipcf_reason rs;
        CHECK_ERR(ipcf_end_reason(reg, &rs), -EBADF);
        ipcf_peer_info pi;
        CHECK_ERR(ipcf_peer(reg, &pi), -EBADF);
        ipcf_port_stats st;
        CHECK_ERR(ipcf_stats(reg, &st), -EBADF);
        CHECK_ERR(ipcf_fd_send(reg), -EBADF);
        CHECK_ERR(ipcf_flush(reg, 0), -EBADF);
        ipcf_request rq;
        int a, bb;
        pair("p.k2", NULL, &a, &bb);
        CHECK_ERR(ipcf_accept(a, 0, NULL), -EBADF);
        CHECK_ERR(ipcf_request_next(a, 0, &rq), -EBADF);
        CHECK_ERR(ipcf_request_next(reg, 0, NULL), -EINVAL);
        CHECK_ERR(ipcf_request_next(reg, 0, &rq), -EAGAIN);
        CHECK_ERR(ipcf_request_next(reg, 30, &rq), -ETIMEDOUT);
        CHECK_ERR(ipcf_request_next(reg, -2, &rq), -EINVAL);
        CHECK_ERR(ipcf_request_accept(reg, NULL), -EINVAL);
        CHECK_ERR(ipcf_request_refuse(reg, NULL, "x"), -EINVAL);
        CHECK_ERR(ipcf_read(a, NULL, 8, 0), -EINVAL);
        CHECK_ERR(ipcf_write(a, NULL, 8, 0), -EINVAL);
        CHECK_ERR(ipcf_read(a, b, 8, -2), -EINVAL);
        CHECK_ERR(ipcf_write(a, b, 8, -2), -EINVAL);
        CHECK_ERR(ipcf_end_reason(a, NULL), -EINVAL);
        CHECK_ERR(ipcf_peer(a, NULL), -EINVAL);
        CHECK_ERR(ipcf_stats(a, NULL), -EINVAL);
        CHECK_ERR(ipcf_qos_get(a, NULL), -EINVAL);
        CHECK_OK(ipcf_end_reason(a, &rs));
        CHECK_EQ(rs.code, IPCF_END_NONE);
        CHECK_ERR(ipcf_commit(a, 1), -EINVAL);
        CHECK_ERR(ipcf_release(a), -EINVAL);
        CHECK_OK(ipcf_dealloc(a, NULL));
        CHECK_ERR(ipcf_write(a, "x", 1, 0), -EBADF);
        CHECK_ERR(ipcf_read(a, b, 8, 0), -EBADF);
        CHECK_OK(ipcf_dealloc(bb, NULL));
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

TEST(probe_msg_size_edges) {
        int a, b;
        start_pair("p.s", msgs_of_1000, &a, &b);
        static char buf[4096], in[4096];
        test_fill(buf, sizeof buf, 1);
        CHECK_EQ(ipcf_write(a, buf, 1000, 0), 1000);
        CHECK_ERR(ipcf_write(a, buf, 1001, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_write(b, buf, 1000, 0), 1000);
        CHECK_ERR(ipcf_write(b, buf, 1001, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_write(a, buf, 0, 0), 0);
        CHECK_EQ(ipcf_next_size(b, 0), 1000);
        CHECK_ERR(ipcf_read(b, in, 999, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_read(b, in, 1000, 0), 1000);
        CHECK_MEM(in, buf, 1000);
        CHECK_EQ(ipcf_next_size(b, 0), 0);
        CHECK_EQ(ipcf_read(b, in, 0, 0), 0);
        CHECK_ERR(ipcf_read(b, in, sizeof in, 0), -EAGAIN);
        ipcf_qos g;
        CHECK_OK(ipcf_qos_get(b, &g));
        CHECK_EQ(g.max_msg_size, 1000);
        CHECK_EQ(g.max_bytes, 1u << 20);
        CHECK_EQ(g.spin_us, 10);
        CHECK_EQ(g.cache_msgs, 1);
        CHECK_OK(ipcf_qos_get(a, &g));
        CHECK_EQ(g.max_msg_size, 1000);
        CHECK_OK(ipcf_dealloc(a, "bye"));
        CHECK_ERR(ipcf_read(b, in, sizeof in, 0), -EPIPE);
        test_daemon_stop(&d);
}

TEST(probe_bounded_policies) {
        int a, b;
        start_pair("p.b", three_msgs, &a, &b);
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msgs = 3;
        char buf[64] = "m";
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_write(a, buf, 10, 0), 10);
        CHECK_ERR(ipcf_write(a, buf, 10, 0), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_write(a, buf, 10, 60), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 60);
        CHECK(test_now_ms() - t0 < 1000);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.msgs_out, 3);
        /* FAIL: never waits */
        int a2, b2;
        q.full = IPCF_FULL_FAIL;
        pair("p.f", &q, &a2, &b2);
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_write(a2, buf, 10, 0), 10);
        t0 = test_now_ms();
        CHECK_ERR(ipcf_write(a2, buf, 10, -1), -EAGAIN);
        CHECK_ERR(ipcf_write(a2, buf, 10, 500), -EAGAIN);
        CHECK(test_now_ms() - t0 < 200);
        /* CACHE */
        int a3, b3;
        q.full = IPCF_FULL_CACHE;
        q.cache_msgs = 2;
        pair("p.c", &q, &a3, &b3);
        for (int i = 0; i < 5; i++) {
                buf[0] = (char)i;
                CHECK_EQ(ipcf_write(a3, buf, 10, 0), 10);
        }
        CHECK_ERR(ipcf_write(a3, buf, 10, 0), -EAGAIN);
        CHECK_ERR(ipcf_write(a3, buf, 10, 40), -ETIMEDOUT);
        CHECK_OK(ipcf_stats(a3, &st));
        CHECK_EQ(st.cached, 2);
        CHECK_EQ(ipcf_flush(a3, 0), 2);
        CHECK_OK(ipcf_dealloc(a3, "cached bye"));
        for (int i = 0; i < 5; i++) {
                CHECK_EQ(ipcf_read(b3, buf, sizeof buf, 1000), 10);
                CHECK_EQ(buf[0], i);
        }
        CHECK_ERR(ipcf_read(b3, buf, sizeof buf, 1000), -EPIPE);
        ipcf_reason rs;
        CHECK_OK(ipcf_end_reason(b3, &rs));
        CHECK_EQ(rs.code, IPCF_END_DEALLOC);
        CHECK(strcmp(rs.text, "cached bye") == 0);
        test_daemon_stop(&d);
}

/* A BOUNDED queue holds max_bytes, each message with its 16-byte header
 * (records in 16-byte steps), whatever max_msg_size is; one message larger
 * than that still goes alone into an empty queue. The ring behind it was
 * sized for two records of max_msg_size, and the queue used all of it: with
 * max_bytes 4096 and the default 256 KiB messages, 13,107 messages of 64 B
 * were queued before -EAGAIN. */
static void bytes_4096_fail(ipcf_qos *q) { q->max_bytes = 4096; q->full = IPCF_FULL_FAIL; }
static void bytes_100_stream(ipcf_qos *q) { q->max_bytes = 100; q->mode = IPCF_MODE_STREAM; q->full = IPCF_FULL_FAIL; }
TEST(bounded_max_bytes_is_what_the_queue_holds) {
        int a, b;
        start_pair("p.mb", bytes_4096_fail, &a, &b);
        static char buf[200 * 1024], in[200 * 1024];
        test_fill(buf, sizeof buf, 7);
        int n = 0;
        while (n < 100000 && ipcf_write(a, buf, 64, 0) == 64)
                n++;
        CHECK_EQ(n, 4096 / 80); /* a record: 16 + 64 bytes */
        CHECK_ERR(ipcf_write(a, buf, 64, 0), -EAGAIN);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.queued_out, 4096 / 80 * 80);
        for (int i = 0; i < n; i++)
                CHECK_EQ(ipcf_read(b, in, sizeof in, 1000), 64);
        /* alone, a message larger than the queue; then nothing beside it */
        CHECK_EQ(ipcf_write(a, buf, sizeof buf, 0), (ssize_t)sizeof buf);
        CHECK_ERR(ipcf_write(a, buf, 16, 0), -EAGAIN);
        CHECK_EQ(ipcf_read(b, in, sizeof in, 1000), (ssize_t)sizeof buf);
        CHECK_MEM(in, buf, sizeof buf);
        CHECK_EQ(ipcf_write(a, buf, 16, 0), 16);

        /* a stream over a 100-byte queue moves in pieces of what fits */
        ipcf_qos q;
        ipcf_qos_init(&q);
        bytes_100_stream(&q);
        pair("p.ms", &q, &a, &b);
        ssize_t w = ipcf_write(a, buf, 1000, 0);
        CHECK(w > 0 && w <= 100 - 16);
        size_t got = 0;
        while (got < 1000) {
                if (w < 1000) {
                        ssize_t k = ipcf_write(a, buf + w, 1000 - (size_t)w, 0);
                        if (k > 0)
                                w += k;
                }
                ssize_t r = ipcf_read(b, in + got, sizeof in - got, 1000);
                CHECK(r > 0 && r <= 100 - 16);
                got += (size_t)r;
        }
        CHECK_MEM(in, buf, 1000);
        test_daemon_stop(&d);
}

struct zr { int port; int delay_ms; ssize_t got; char buf[64]; };
static void *zero_reader(void *arg) {
        struct zr *z = arg;
        usleep(z->delay_ms * 1000);
        z->got = ipcf_read(z->port, z->buf, sizeof z->buf, 5000);
        return NULL;
}

TEST(probe_zero_capacity) {
        int a, b;
        start_pair("p.z", zero_capacity, &a, &b);
        char buf[64];
        CHECK_ERR(ipcf_write(a, "one", 3, 0), -EAGAIN);
        CHECK_ERR(ipcf_write(a, "two", 3, 50), -ETIMEDOUT);
        CHECK_ERR(ipcf_read(b, buf, sizeof buf, 50), -ETIMEDOUT); /* withdrawn: never delivered */
        struct zr z = { b, 100, 0, {0} };
        pthread_t t;
        pthread_create(&t, NULL, zero_reader, &z);
        uint64_t t0 = test_now_ms();
        CHECK_EQ(ipcf_write(a, "three", 5, 5000), 5);
        CHECK(test_now_ms() - t0 >= 90);
        pthread_join(t, NULL);
        CHECK_EQ(z.got, 5);
        CHECK_MEM(z.buf, "three", 5);
        void *p;
        CHECK_ERR(ipcf_reserve(a, 4, 0, &p), -EOPNOTSUPP);
        ipcf_qos g;
        CHECK_OK(ipcf_qos_get(a, &g));
        CHECK_EQ(g.capacity, IPCF_CAPACITY_ZERO);
        CHECK_OK(ipcf_dealloc(a, "zbye"));
        CHECK_ERR(ipcf_read(b, buf, sizeof buf, 1000), -EPIPE);
        test_daemon_stop(&d);
}

TEST(probe_stream_mode) {
        int a, b;
        start_pair("p.st", stream_of_100, &a, &b);
        static char buf[1000], in[1000];
        test_fill(buf, sizeof buf, 3);
        ssize_t w = ipcf_write(a, buf, 1000, 1000);
        CHECK_EQ(w, 1000);
        size_t got = 0;
        while (got < 1000) {
                ssize_t r = CHECK_OK(ipcf_read(b, in + got, 7, 1000));
                CHECK(r >= 1 && r <= 7);
                got += (size_t)r;
        }
        CHECK_MEM(in, buf, 1000);
        struct iovec v = { buf, 1 };
        CHECK_ERR(ipcf_write_many(a, &v, 1, 0), -EOPNOTSUPP);
        CHECK_ERR(ipcf_read_many(b, &v, 1, 0), -EOPNOTSUPP);
        CHECK_OK(ipcf_dealloc(a, NULL));
        CHECK_ERR(ipcf_read(b, in, 10, 1000), -EPIPE);
        test_daemon_stop(&d);
}

TEST(probe_unbounded) {
        int a, b;
        start_pair("p.u", unbounded_1m, &a, &b);
        static char buf[65536];
        int n = 0;
        ssize_t r;
        while ((r = ipcf_write(a, buf, sizeof buf, -1)) == (ssize_t)sizeof buf)
                n++;
        CHECK_ERR(r, -ENOBUFS);
        CHECK(n >= 14 && n <= 16);
        int fs = CHECK_OK(ipcf_fd_send(a));
        CHECK(!test_readable(fs));
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 0), (ssize_t)sizeof buf);
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 0), (ssize_t)sizeof buf);
        struct pollfd pf = { fs, POLLIN, 0 };
        CHECK_EQ(poll(&pf, 1, 1000), 1);
        CHECK_EQ(ipcf_write(a, buf, sizeof buf, 0), (ssize_t)sizeof buf);
        test_daemon_stop(&d);
}

TEST(probe_refuse_and_reasons) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.r", NULL));
        pid_t c = fork();
        if (c == 0) {
                ipcf_reason rs;
                int r = ipcf_alloc("p.r", NULL, 5000, &rs);
                if (r != -ECONNREFUSED || rs.code != IPCF_END_REFUSED ||
                    strcmp(rs.text, "no ?thanks?") != 0) {
                        fprintf(stderr, "refuse: %d code %d '%s'\n", r, rs.code, rs.text);
                        _exit(1);
                }
                ipcf_reason lr;
                ipcf_last_reason(&lr);
                if (lr.code != IPCF_END_REFUSED || strcmp(lr.text, "no ?thanks?") != 0)
                        _exit(2);
                char longr[300];
                memset(longr, 'r', sizeof longr);
                longr[299] = 0;
                r = ipcf_alloc("p.r", NULL, 5000, &rs);
                if (r != -ECONNREFUSED || strlen(rs.text) != IPCF_REASON_MAX) {
                        fprintf(stderr, "refuse2: %d code %d len %zu\n", r, rs.code, strlen(rs.text));
                        _exit(3);
                }
                r = ipcf_alloc("p.r", NULL, 5000, &rs);
                if (r != -ECONNREFUSED || rs.text[0] != 0) {
                        fprintf(stderr, "refuse3: %d '%s'\n", r, rs.text);
                        _exit(4);
                }
                /* an alloc left pending when the registration goes */
                r = ipcf_alloc("p.r", NULL, 5000, &rs);
                if (r != -ECONNREFUSED || strcmp(rs.text, "unregistered") != 0) {
                        fprintf(stderr, "unreg: %d '%s'\n", r, rs.text);
                        _exit(5);
                }
                _exit(0);
        }
        ipcf_request rq;
        CHECK_OK(ipcf_request_next(reg, 5000, &rq));
        CHECK_EQ(rq.from.pid, c);
        CHECK(strcmp(rq.name, "p.r") == 0);
        CHECK_OK(ipcf_request_refuse(reg, &rq, "no \nthanks\x01"));
        CHECK_ERR(ipcf_request_refuse(reg, &rq, "again"), -ENOENT);
        CHECK_ERR(ipcf_request_accept(reg, &rq), -ENOENT);
        char longr[300];
        memset(longr, 'r', sizeof longr);
        longr[299] = 0;
        CHECK_OK(ipcf_request_next(reg, 5000, &rq));
        CHECK_OK(ipcf_request_refuse(reg, &rq, longr));
        CHECK_OK(ipcf_request_next(reg, 5000, &rq));
        CHECK_OK(ipcf_request_refuse(reg, &rq, NULL));
        CHECK_OK(ipcf_request_next(reg, 5000, &rq));
        CHECK_OK(ipcf_dealloc(reg, NULL));
        CHECK_EQ(test_wait(c, 10000), 0);
        test_daemon_stop(&d);
}

TEST(probe_withdrawn_request) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.w", NULL));
        pid_t c = fork();
        if (c == 0) {
                int r = ipcf_alloc("p.w", NULL, 100, NULL);
                _exit(r == -ETIMEDOUT ? 0 : 1);
        }
        ipcf_request rq;
        CHECK_OK(ipcf_request_next(reg, 5000, &rq));
        CHECK_EQ(test_wait(c, 5000), 0);
        usleep(50000);
        CHECK_ERR(ipcf_request_accept(reg, &rq), -ECANCELED);
        CHECK_ERR(ipcf_request_next(reg, 0, &rq), -EAGAIN);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

TEST(probe_backlog) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_reg_opts o = { sizeof o, 0, 1, 0 };
        int reg = CHECK_OK(ipcf_register("p.bl", &o));
        pid_t c = fork();
        if (c == 0) {
                int r = ipcf_alloc("p.bl", NULL, 800, NULL);
                _exit(r == -ETIMEDOUT ? 0 : 1);
        }
        ipcf_request rq;
        CHECK_OK(ipcf_request_next(reg, 5000, &rq));
        CHECK_ERR(ipcf_alloc("p.bl", NULL, 1000, NULL), -EBUSY);
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

static void dier(void *arg) {
        (void)arg;
        int p = ipcf_alloc("p.die", NULL, 5000, NULL);
        if (p < 0) _exit(1);
        ipcf_write(p, "before", 6, 0);
        pause();
}

TEST(probe_peer_death_and_fd) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.die", NULL));
        pid_t c = test_fork(dier, NULL);
        int b = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        int fd = CHECK_OK(ipcf_fd(b));
        struct pollfd pf = { fd, POLLIN, 0 };
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        char buf[16];
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 0), 6);
        CHECK(!test_readable(fd));
        uint64_t t0 = test_now_ms();
        kill(c, SIGKILL);
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        CHECK(test_now_ms() - t0 < 100);
        CHECK_ERR(ipcf_read(b, buf, sizeof buf, 0), -ECONNRESET);
        CHECK(test_readable(fd));
        ipcf_reason rs;
        CHECK_OK(ipcf_end_reason(b, &rs));
        CHECK_EQ(rs.code, IPCF_END_PEER_DIED);
        CHECK(strcmp(rs.text, "peer died") == 0);
        CHECK_ERR(ipcf_write(b, "x", 1, 0), -ECONNRESET);
        test_wait(c, 1000);
        test_daemon_stop(&d);
}

TEST(probe_dealloc_reason_text) {
        int a, b;
        start_pair("p.dr", NULL, &a, &b);
        char r[300];
        memset(r, 'z', sizeof r);
        r[0] = '\x80';
        r[299] = 0;
        CHECK_OK(ipcf_write(a, "x", 1, 0));
        CHECK_OK(ipcf_dealloc(a, r));
        char buf[8];
        CHECK_EQ(ipcf_read(b, buf, 8, 0), 1);
        CHECK_ERR(ipcf_read(b, buf, 8, 0), -EPIPE);
        CHECK_ERR(ipcf_write(b, buf, 1, 0), -EPIPE);
        ipcf_reason rs;
        CHECK_OK(ipcf_end_reason(b, &rs));
        CHECK_EQ(rs.code, IPCF_END_DEALLOC);
        CHECK_EQ(strlen(rs.text), IPCF_REASON_MAX);
        CHECK_EQ(rs.text[0], '?');
        CHECK_EQ(rs.text[1], 'z');
        test_daemon_stop(&d);
}

TEST(probe_reserve_peek_edges) {
        int a, b;
        start_pair("p.rp", msgs_of_1000, &a, &b);
        void *p;
        CHECK_ERR(ipcf_reserve(a, 1001, 0, &p), -EMSGSIZE);
        CHECK_ERR(ipcf_reserve(a, 10, 0, NULL), -EINVAL);
        CHECK_OK(ipcf_reserve(a, 10, 0, &p));
        CHECK_ERR(ipcf_reserve(a, 10, 0, &p), -EBUSY);
        CHECK_ERR(ipcf_commit(a, 11), -EINVAL);
        memcpy(p, "0123456789", 10);
        CHECK_OK(ipcf_commit(a, 4));
        CHECK_ERR(ipcf_commit(a, 1), -EINVAL);
        const void *cp;
        CHECK_EQ(ipcf_peek(b, 0, &cp), 4);
        CHECK_MEM(cp, "0123", 4);
        CHECK_ERR(ipcf_peek(b, 0, &cp), -EBUSY);
        CHECK_OK(ipcf_release(b));
        CHECK_ERR(ipcf_release(b), -EINVAL);
        CHECK_ERR(ipcf_peek(b, 0, &cp), -EAGAIN);
        CHECK_ERR(ipcf_peek(b, 0, NULL), -EINVAL);
        test_daemon_stop(&d);
}

/* A read or write of one port in a thread of its own, and its result. */
struct io_job { int port; ssize_t r; };
static pthread_t run_io(void *(*fn)(void *), struct io_job *j) {
        pthread_t t;
        pthread_create(&t, NULL, fn, j);
        return t;
}
static void *zero_writer(void *arg) {
        struct io_job *z = arg;
        z->r = ipcf_write(z->port, "0123456789", 10, 2000);
        return NULL;
}

static void *blocked_reader(void *arg) {
        struct io_job *k = arg;
        char b[8];
        k->r = ipcf_read(k->port, b, sizeof b, 5000);
        return NULL;
}

TEST(probe_dealloc_wakes_blocked_reader) {
        int a, b;
        start_pair("p.wk", NULL, &a, &b);
        struct io_job k = { b, 0 };
        pthread_t t = run_io(blocked_reader, &k);
        usleep(100000);
        uint64_t t0 = test_now_ms();
        CHECK_OK(ipcf_dealloc(b, NULL));
        pthread_join(t, NULL);
        CHECK(test_now_ms() - t0 < 1000);
        CHECK_ERR(k.r, -EPIPE);
        char buf[8];
        CHECK_ERR(ipcf_read(a, buf, 8, 1000), -EPIPE);
        ipcf_reason rs;
        CHECK_OK(ipcf_end_reason(a, &rs));
        CHECK_EQ(rs.code, IPCF_END_DEALLOC);
        test_daemon_stop(&d);
}

TEST(probe_reg_fd_level) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.fd", NULL));
        int fd = CHECK_OK(ipcf_fd(reg));
        CHECK(!test_readable(fd));
        pid_t c = fork();
        if (c == 0) {
                int p = ipcf_alloc("p.fd", NULL, 5000, NULL);
                if (p < 0) _exit(1);
                char b[4];
                ipcf_read(p, b, 4, 5000);
                _exit(0);
        }
        struct pollfd pf = { fd, POLLIN, 0 };
        CHECK_EQ(poll(&pf, 1, 5000), 1);
        CHECK(test_readable(fd));
        ipcf_request rq;
        int port = CHECK_OK(ipcf_accept(reg, 0, &rq));
        CHECK_EQ(rq.from.pid, c);
        CHECK(!test_readable(fd));
        ipcf_peer_info pi;
        CHECK_OK(ipcf_peer(port, &pi));
        CHECK_EQ(pi.pid, c);
        CHECK(strcmp(pi.name, "test-local-probe") == 0);
        CHECK_OK(ipcf_dealloc(port, NULL));
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

/* The unbounded-memory quota counts what an UNBOUNDED flow's queue can really
 * hold: a flow asking for a small max_bytes still holds two records of its
 * max_msg_size (ARCHITECTURE.md, the ring layout), and was charged only
 * 2 x max_bytes — 8 KiB charged, 1 MiB queued per direction. */
TEST(unbounded_quota_counts_what_the_queue_holds) {
        test_daemon_start(&d, "[limits]\nunbounded_bytes_per_user = 4M\n", NULL);
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.capacity = IPCF_CAPACITY_UNBOUNDED;
        q.max_bytes = 4096;
        int reg = CHECK_OK(ipcf_register("p.uq", NULL));
        static char buf[65536];
        uint64_t queued = 0;
        int flows = 0, r;
        while (flows < 16) {
                struct acc a = { reg, -1, 500 };
                pthread_t t;
                pthread_create(&t, NULL, acceptor, &a);
                r = ipcf_alloc("p.uq", &q, 5000, NULL);
                pthread_join(t, NULL);
                if (r < 0)
                        break;
                CHECK_OK(a.port);
                flows++;
                ssize_t w;
                while ((w = ipcf_write(r, buf, sizeof buf, 0)) == (ssize_t)sizeof buf)
                        queued += sizeof buf;
                CHECK_ERR(w, -ENOBUFS);
        }
        fprintf(stderr, "%d flows, %llu bytes queued against a 4 MiB quota\n", flows,
                (unsigned long long)queued);
        CHECK(queued <= 4u << 20);
        CHECK(flows >= 1);
        CHECK_ERR(r, -EDQUOT);
        test_daemon_stop(&d);
}

static void cache_one(ipcf_qos *q) { q->max_msgs = 2; q->full = IPCF_FULL_CACHE; q->cache_msgs = 3; }

TEST(probe_cache_delivered_without_sender_calls) {
        int a, b;
        start_pair("p.cache", cache_one, &a, &b);
        char buf[16];
        for (int i = 0; i < 5; i++) {
                buf[0] = (char)('0' + i);
                CHECK_EQ(ipcf_write(a, buf, 1, 0), 1);
        }
        CHECK_ERR(ipcf_write(a, buf, 1, 0), -EAGAIN);
        int fd = CHECK_OK(ipcf_fd(b));
        for (int i = 0; i < 5; i++) {
                struct pollfd pf = { fd, POLLIN, 0 };
                CHECK_EQ(poll(&pf, 1, 1000), 1);
                CHECK_EQ(ipcf_read(b, buf, sizeof buf, 0), 1);
                CHECK_EQ(buf[0], '0' + i);
        }
        CHECK(!test_readable(fd));
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.cached, 0);
        CHECK_EQ(ipcf_flush(a, 0), 0);
        test_daemon_stop(&d);
}

static void stream_small(ipcf_qos *q) { q->mode = IPCF_MODE_STREAM; q->max_bytes = 4096; q->max_msg_size = 512; q->full = IPCF_FULL_FAIL; }

TEST(probe_stream_full_fail_partial) {
        int a, b;
        start_pair("p.sff", stream_small, &a, &b);
        static char buf[10000];
        ssize_t total = 0, r;
        while ((r = ipcf_write(a, buf, 1000, 0)) > 0)
                total += r;
        CHECK_ERR(r, -EAGAIN);
        CHECK(total > 0);
        ssize_t got = 0;
        while ((r = ipcf_read(b, buf, sizeof buf, 0)) > 0)
                got += r;
        CHECK_EQ(got, total);
        int fs = CHECK_OK(ipcf_fd_send(a));
        CHECK(test_readable(fs));
        test_daemon_stop(&d);
}

static void zero_stream(ipcf_qos *q) { q->capacity = IPCF_CAPACITY_ZERO; q->mode = IPCF_MODE_STREAM; }
TEST(probe_zero_stream_partial_read) {
        int a, b;
        start_pair("p.zs", zero_stream, &a, &b);
        struct io_job z = { a, 0 };
        pthread_t t = run_io(zero_writer, &z);
        char buf[16];
        CHECK_EQ(ipcf_read(b, buf, 4, 2000), 4);
        CHECK_EQ(ipcf_read(b, buf + 4, 12, 500), 6);
        pthread_join(t, NULL);
        CHECK_EQ(z.r, 10);
        CHECK_MEM(buf, "0123456789", 10);
        test_daemon_stop(&d);
}

static void small_counted(ipcf_qos *q) { q->max_msgs = 2; q->max_msg_size = 100; q->max_bytes = 4096; }

TEST(probe_fd_send_levels) {
        int a, b;
        start_pair("p.fs", small_counted, &a, &b);
        int fs = CHECK_OK(ipcf_fd_send(a));
        char buf[128] = {0};
        CHECK(test_readable(fs));
        CHECK_EQ(ipcf_write(a, buf, 100, 0), 100);
        CHECK(test_readable(fs));
        CHECK_EQ(ipcf_write(a, buf, 100, 0), 100);
        CHECK(!test_readable(fs));
        CHECK_ERR(ipcf_write(a, buf, 1, 0), -EAGAIN);
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 0), 100);
        struct pollfd pf = { fs, POLLIN, 0 };
        CHECK_EQ(poll(&pf, 1, 1000), 1);
        CHECK_EQ(ipcf_write(a, buf, 100, 0), 100);
        CHECK(!test_readable(fs));
        /* the peer's end makes it readable (a write would not block: it fails) */
        CHECK_OK(ipcf_dealloc(b, "gone"));
        CHECK_EQ(poll(&pf, 1, 1000), 1);
        CHECK_ERR(ipcf_write(a, buf, 1, 0), -EPIPE);
        test_daemon_stop(&d);
}

TEST(probe_fd_send_zero) {
        int a, b;
        start_pair("p.fz", zero_capacity, &a, &b);
        int fs = CHECK_OK(ipcf_fd_send(a));
        CHECK(test_readable(fs));
        int fr = CHECK_OK(ipcf_fd(b));
        CHECK(!test_readable(fr));
        struct io_job z = { a, 0 };
        pthread_t t = run_io(zero_writer, &z);
        struct pollfd pf = { fr, POLLIN, 0 };
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        char buf[16];
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 0), 10);
        pthread_join(t, NULL);
        CHECK_EQ(z.r, 10);
        CHECK(!test_readable(fr));
        test_daemon_stop(&d);
}

static void ender(void *arg) {
        const char *how = arg;
        int p1 = ipcf_alloc("p.ev", NULL, 5000, NULL);
        int p2 = ipcf_alloc("p.ev", NULL, 5000, NULL);
        if (p1 < 0 || p2 < 0) _exit(1);
        usleep(200000);
        if (strcmp(how, "dealloc") == 0) {
                ipcf_dealloc(p2, "second done");
                usleep(100000);
                ipcf_dealloc(p1, "first done");
                _exit(0);
        }
        raise(SIGKILL);
}

TEST(probe_flow_events) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_notify_fd());
        int reg = CHECK_OK(ipcf_register("p.ev", NULL));
        pid_t c = test_fork(ender, "dealloc");
        int b1 = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        int b2 = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        ipcf_event e;
        CHECK_OK(ipcf_notify_next(3000, &e));
        CHECK_EQ(e.kind, IPCF_EVENT_FLOW_ENDED);
        CHECK_EQ(e.port, b2);
        CHECK_EQ(e.end_code, IPCF_END_DEALLOC);
        CHECK(strcmp(e.reason, "second done") == 0);
        CHECK(strcmp(e.name, "p.ev") == 0);
        CHECK_EQ(e.pid, c);
        CHECK_OK(ipcf_notify_next(3000, &e));
        CHECK_EQ(e.kind, IPCF_EVENT_FLOW_ENDED);
        CHECK_EQ(e.port, b1);
        CHECK(strcmp(e.reason, "first done") == 0);
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_ERR(ipcf_notify_next(100, &e), -ETIMEDOUT);
        CHECK_OK(ipcf_dealloc(b1, NULL));
        CHECK_OK(ipcf_dealloc(b2, NULL));
        c = test_fork(ender, "kill");
        b1 = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        b2 = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        int seen_died = 0, seen_ended = 0;
        for (int i = 0; i < 2; i++) {
                CHECK_OK(ipcf_notify_next(2000, &e));
                CHECK(e.port == b1 || e.port == b2);
                CHECK_EQ(e.end_code, IPCF_END_PEER_DIED);
                if (e.kind == IPCF_EVENT_PEER_DIED) seen_died++;
                if (e.kind == IPCF_EVENT_FLOW_ENDED) seen_ended++;
        }
        CHECK_EQ(seen_died, 2); /* one event each, carrying the end */
        CHECK_EQ(seen_ended, 0);
        CHECK_ERR(ipcf_notify_next(100, &e), -ETIMEDOUT);
        test_wait(c, 5000);
        test_daemon_stop(&d);
}

static void alloc_n(void *arg) {
        int n = *(int *)arg;
        for (int i = 0; i < n; i++)
                if (ipcf_alloc("p.spread", NULL, 5000, NULL) < 0)
                        _exit(1);
        pause();
}

TEST(probe_spread_least_loaded) {
        test_daemon_start(&d, NULL, NULL);
        int r1 = CHECK_OK(ipcf_register("p.spread", NULL));
        int r2 = CHECK_OK(ipcf_register("p.spread", NULL));
        int n = 6;
        pid_t c = test_fork(alloc_n, &n);
        int got1 = 0, got2 = 0;
        for (int i = 0; i < n; i++) {
                struct pollfd pf[2] = { { CHECK_OK(ipcf_fd(r1)), POLLIN, 0 }, { CHECK_OK(ipcf_fd(r2)), POLLIN, 0 } };
                CHECK(poll(pf, 2, 5000) >= 1);
                if (pf[0].revents && CHECK_OK(ipcf_accept(r1, 0, NULL)) >= 0)
                        got1++;
                else if (pf[1].revents && CHECK_OK(ipcf_accept(r2, 0, NULL)) >= 0)
                        got2++;
        }
        CHECK_EQ(got1 + got2, n);
        CHECK_EQ(got1, 3);
        CHECK_EQ(got2, 3);
        kill(c, SIGKILL);
        test_wait(c, 5000);
        test_daemon_stop(&d);
}

static void *alloc_once(void *arg) {
        struct io_job *j = arg;
        j->r = ipcf_alloc("p.bl64", NULL, 1500, NULL);
        return NULL;
}

TEST(probe_default_backlog_64) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.bl64", NULL));
        static struct io_job j[66];
        pthread_t t[66];
        for (int i = 0; i < 66; i++)
                t[i] = run_io(alloc_once, &j[i]);
        int busy = 0, timedout = 0;
        for (int i = 0; i < 66; i++) {
                pthread_join(t[i], NULL);
                if (j[i].r == -EBUSY) busy++;
                if (j[i].r == -ETIMEDOUT) timedout++;
        }
        CHECK_EQ(timedout, 64);
        CHECK_EQ(busy, 2);
        (void)reg;
        test_daemon_stop(&d);
}

TEST(probe_detach_last_holder) {
        int a, b;
        start_pair("p.det", NULL, &a, &b);
        CHECK_EQ(ipcf_write(a, "x", 1, 0), 1);
        pid_t c = fork();
        if (c == 0) {
                usleep(200000);
                if (ipcf_write(a, "child", 5, 1000) != 5) _exit(1);
                ipcf_detach(a);
                _exit(0);
        }
        CHECK_OK(ipcf_detach(a));
        char buf[16];
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 1000), 1);
        CHECK_EQ(ipcf_read(b, buf, sizeof buf, 2000), 5); /* the child still holds it */
        CHECK_EQ(test_wait(c, 5000), 0);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_read(b, buf, sizeof buf, 2000), -ECONNRESET);
        CHECK(test_now_ms() - t0 < 500);
        ipcf_reason rs;
        CHECK_OK(ipcf_end_reason(b, &rs));
        CHECK_EQ(rs.code, IPCF_END_PEER_DIED);
        CHECK(strcmp(rs.text, "peer let go of the flow") == 0);
        test_daemon_stop(&d);
}

static void prefork_worker(void *arg) {
        int reg = *(int *)arg;
        for (;;) {
                int p = ipcf_accept(reg, 800, NULL);
                if (p == -ETIMEDOUT)
                        _exit(0);
                if (p < 0)
                        _exit(1);
                char b[16];
                ssize_t n = ipcf_read(p, b, sizeof b, 3000);
                if (n <= 0 || ipcf_write(p, b, (size_t)n, 3000) != n)
                        _exit(2);
                ipcf_dealloc(p, NULL);
        }
}

TEST(probe_prefork_workers_share_a_registration) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("p.pre", NULL));
        pid_t w[3];
        for (int i = 0; i < 3; i++)
                w[i] = test_fork(prefork_worker, &reg);
        for (int i = 0; i < 30; i++) {
                int p = CHECK_OK(ipcf_alloc("p.pre", NULL, 5000, NULL));
                char b[16];
                int n = snprintf(b, sizeof b, "m%d", i);
                CHECK_EQ(ipcf_write(p, b, (size_t)n, 1000), n);
                char e[16];
                CHECK_EQ(ipcf_read(p, e, sizeof e, 3000), n);
                CHECK_MEM(e, b, (size_t)n);
                CHECK_OK(ipcf_dealloc(p, NULL));
        }
        for (int i = 0; i < 3; i++)
                CHECK_EQ(test_wait(w[i], 10000), 0);
        test_daemon_stop(&d);
}
