/*
 * test-api.c — the rules include/ipcf.h states for every call, tested as a
 * careless or hostile caller would break them: structs whose size is wrong,
 * opaque tokens forged, reused after their object went away, or taken to
 * another handle; every kind of handle closed by ipcf_dealloc, polled by
 * ipcf_fd, detached without leaking a descriptor; a service's failure code
 * reaching its caller as an out-parameter; listings freed by ipcf_free.
 * Against the real daemon.
 */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

/* Descriptors open in this process. */
static int open_fds(void) {
        DIR *dir = opendir("/proc/self/fd");
        CHECK(dir != NULL);
        int n = 0;
        while (readdir(dir))
                n++;
        closedir(dir);
        return n;
}

/* ---- sizes --------------------------------------------------------------- */

TEST(a_qos_of_another_size_is_refused) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("api.sized", NULL));
        CHECK_OK(ipcf_mbox_create("api.box", NULL));
        CHECK_OK(ipcf_mcast_create("api.grp", NULL));
        ipcf_qos q;
        ipcf_qos_init(&q);
        CHECK_EQ(q.size, sizeof(ipcf_qos));
        const uint32_t bad[] = { 0, 3, sizeof(ipcf_qos) - 1, sizeof(ipcf_qos) + 1, UINT32_MAX };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                q.size = bad[i];
                int p[2];
                CHECK_ERR(ipcf_alloc("api.sized", &q, 1000, NULL), -EINVAL);
                CHECK_ERR(ipcf_pipe(&q, p), -EINVAL);
                CHECK_ERR(ipcf_mbox_open("api.box", IPCF_MBOX_SEND, &q, 1000), -EINVAL);
                CHECK_ERR(ipcf_mcast_join("api.grp", &q, 1000), -EINVAL);
        }
        /* The reserved fields are 0 (room for later versions, never read). */
        ipcf_qos_init(&q);
        q.reserved2 = 1;
        CHECK_ERR(ipcf_alloc("api.sized", &q, 1000, NULL), -EINVAL);
        CHECK_ERR(ipcf_pipe(&q, (int[2]){ 0, 0 }), -EINVAL);
        q.reserved2 = 0;
        /* Nothing reached the registrant. */
        ipcf_request req;
        CHECK_ERR(ipcf_request_next(reg, 0, &req), -EAGAIN);
        /* The right size works, as does NULL. */
        q.size = sizeof(q);
        int p[2];
        CHECK_OK(ipcf_pipe(&q, p));
        CHECK_OK(ipcf_dealloc(p[0], NULL));
        CHECK_OK(ipcf_dealloc(p[1], NULL));
        int h = CHECK_OK(ipcf_mcast_join("api.grp", &q, 1000));
        CHECK_OK(ipcf_dealloc(h, NULL));
        test_daemon_stop(&d);
}

TEST(option_structs_of_another_size_are_refused) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_reg_opts ro = { .size = 3 };
        CHECK_ERR(ipcf_register("api.opts", &ro), -EINVAL);
        CHECK_ERR(ipcf_service("api.opts", &ro), -EINVAL);
        CHECK_ERR(ipcf_dgram_open("api.opts", &ro), -EINVAL);
        ipcf_mbox_opts mo = { .size = 3 };
        CHECK_ERR(ipcf_mbox_create("api.opts", &mo), -EINVAL);
        mo.size = sizeof(mo) + 8; /* a larger (newer?) struct is not read as ours either */
        CHECK_ERR(ipcf_mbox_create("api.opts", &mo), -EINVAL);
        ipcf_mcast_opts co = { .size = 3 };
        CHECK_ERR(ipcf_mcast_create("api.opts", &co), -EINVAL);
        ipcf_group_opts go = { .size = 3 };
        CHECK_ERR(ipcf_group_create("api.opts", 4096, &go), -EINVAL);
        /* Flags the caller may not give (the library's own, for its inboxes). */
        ipcf_reg_opts inner = { .size = sizeof(inner), .flags = 1u << 16 };
        CHECK_ERR(ipcf_register("api.opts", &inner), -EINVAL);
        CHECK_ERR(ipcf_service("api.opts", &inner), -EINVAL);
        /* size 0 means this version; sizeof too. */
        ro.size = 0;
        int r = CHECK_OK(ipcf_register("api.opts", &ro));
        CHECK_OK(ipcf_dealloc(r, NULL));
        mo.size = sizeof(mo);
        CHECK_OK(ipcf_mbox_create("api.opts", &mo));
        go.size = 0;
        CHECK_OK(ipcf_group_create("api.opts2", 4096, &go));
        test_daemon_stop(&d);
}

/* ---- service request tokens ------------------------------------------------ */

/* Call once with a short timeout and leave (the service answers too late). */
static void call_and_leave(void *arg) {
        (void)arg;
        char r[16];
        CHECK_ERR(ipcf_call("api.svc", "one", 3, r, sizeof(r), 300, NULL), -ETIMEDOUT);
}

/* Call and expect exactly "two back". */
static void call_and_check(void *arg) {
        (void)arg;
        char r[16] = { 0 };
        CHECK_EQ(ipcf_call("api.svc", "two", 3, r, sizeof(r), 5000, NULL), 8);
        CHECK_MEM(r, "two back", 8);
}

TEST(request_tokens_are_checked_before_any_answer) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("api.svc", NULL));
        int other = CHECK_OK(ipcf_service("api.other", NULL));
        char buf[16];
        ipcf_call_req first;
        pid_t c1 = test_fork(call_and_leave, NULL);
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &first), 3);

        /* Forged tokens: never a crash, never a channel. */
        ipcf_call_req forged = first;
        const uint64_t tokens[] = { 0, 1, first.token + 1, first.token - 1, first.token ^ 1,
                                    first.token ^ (1ull << 40), ~first.token, UINT64_MAX,
                                    0x0123456789abcdefull };
        for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
                forged.token = tokens[i];
                CHECK_ERR(ipcf_service_reply(svc, &forged, "x", 1, 100), -EINVAL);
                CHECK_ERR(ipcf_service_fail(svc, &forged, 7, 100), -EINVAL);
                CHECK_ERR(ipcf_service_cancelled(svc, &forged), -EINVAL);
        }
        /* A true token at another service, or at a handle that is no service. */
        CHECK_ERR(ipcf_service_reply(other, &first, "x", 1, 100), -EBADF);
        CHECK_ERR(ipcf_service_cancelled(other, &first), -EBADF);
        CHECK_ERR(ipcf_service_reply(svc + 1000, &first, "x", 1, 100), -EBADF);
        CHECK_ERR(ipcf_service_reply(svc, NULL, "x", 1, 100), -EINVAL);

        /* The first caller gives up and exits; the service lets its channel
         * go (a take finds it ended: then the request's channel is gone,
         * -EPIPE); the next caller's channel takes the lowest free port-id,
         * the one just freed. The old request's token must not reach it. */
        CHECK_EQ(test_wait(c1, 5000), 0);
        uint64_t t0 = test_now_ms();
        for (;;) {
                ipcf_call_req none;
                CHECK_ERR(ipcf_service_next(svc, buf, sizeof(buf), 0, &none), -EAGAIN);
                int r = ipcf_service_reply(svc, &first, "late", 4, 100);
                if (r == -EPIPE)
                        break;
                /* cancelled, then gone; a first answer settles the request
                 * (even one that found it cancelled), so until its channel
                 * is gone the next ones find it answered */
                CHECK(r == -ECANCELED || r == -ECONNRESET || r == -EALREADY);
                CHECK(test_now_ms() - t0 < 5000);
                usleep(1000);
        }
        CHECK_EQ(ipcf_service_cancelled(svc, &first), 1);
        pid_t c2 = test_fork(call_and_check, NULL);
        ipcf_call_req second;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &second), 3);
        CHECK_EQ(second.id, first.id); /* ids are per channel: both are call 1 */
        CHECK_ERR(ipcf_service_reply(svc, &first, "stale!!!", 8, 1000), -EPIPE);
        CHECK_EQ(ipcf_service_cancelled(svc, &first), 1);
        CHECK_OK(ipcf_service_reply(svc, &second, "two back", 8, 1000));
        CHECK_EQ(test_wait(c2, 5000), 0);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        CHECK_OK(ipcf_dealloc(other, NULL));
        test_daemon_stop(&d);
}

static void send_datagram(void *arg) {
        int ep = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        CHECK_EQ(ipcf_dgram_send(ep, (const char *)arg, "ping", 4, 1000), 4);
        char b[16];
        ipcf_dgram_src src;
        CHECK_EQ(ipcf_dgram_recv(ep, b, sizeof(b), 5000, &src), 4);
        CHECK_MEM(b, "pong", 4);
        /* only the one true answer came */
        CHECK_ERR(ipcf_dgram_recv(ep, b, sizeof(b), 200, &src), -ETIMEDOUT);
        CHECK_OK(ipcf_dealloc(ep, NULL));
}

TEST(datagram_source_tokens_are_checked_before_any_answer) {
        test_daemon_start(&d, NULL, NULL);
        int ep = CHECK_OK(ipcf_dgram_open("api.dg", NULL));
        int other = CHECK_OK(ipcf_dgram_open("api.dg2", NULL));
        int svc = CHECK_OK(ipcf_service("api.dgsvc", NULL));
        pid_t c = test_fork(send_datagram, "api.dg");
        char b[16];
        ipcf_dgram_src src;
        CHECK_EQ(ipcf_dgram_recv(ep, b, sizeof(b), 5000, &src), 4);
        ipcf_dgram_src forged = src;
        forged.token = 0;
        CHECK_ERR(ipcf_dgram_answer(ep, &forged, "bad", 3, 100), -EINVAL);
        forged.token = src.token + 1;
        CHECK_ERR(ipcf_dgram_answer(ep, &forged, "bad", 3, 100), -EINVAL);
        CHECK_ERR(ipcf_dgram_answer(other, &src, "bad", 3, 100), -EBADF);
        CHECK_ERR(ipcf_dgram_answer(ep, NULL, "bad", 3, 100), -EINVAL);
        /* A datagram channel is no call channel. */
        ipcf_call_req as_call = { .id = 1, .token = src.token };
        CHECK_ERR(ipcf_service_reply(svc, &as_call, "bad", 3, 100), -EBADF);
        CHECK_EQ(ipcf_dgram_answer(ep, &src, "pong", 4, 1000), 4);
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

static void async_fail_client(void *arg) {
        (void)arg;
        char r[8];
        ipcf_pending p;
        CHECK_OK(ipcf_call_start("api.async", "f", 1, r, sizeof(r), 5000, &p));
        /* Forged pending calls: -EINVAL, and the true one is untouched. */
        ipcf_pending forged = p;
        const uint64_t tokens[] = { 0, p.token + 1, p.token ^ 1, UINT64_MAX, 0x1234 };
        for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
                forged.token = tokens[i];
                CHECK_ERR(ipcf_call_wait(&forged, 0, NULL), -EINVAL);
                CHECK_ERR(ipcf_call_cancel(&forged), -EINVAL);
        }
        CHECK_ERR(ipcf_call_wait(NULL, 0, NULL), -EINVAL);
        int code = -1;
        CHECK_ERR(ipcf_call_wait(&p, 5000, &code), -EREMOTEIO);
        CHECK_EQ(code, 42);
        /* a success leaves ret_code alone */
        code = -1;
        CHECK_EQ(ipcf_call("api.async", "ok", 2, r, sizeof(r), 5000, &code), 2);
        CHECK_EQ(code, -1);
}

TEST(a_failure_code_reaches_the_caller_and_pending_tokens_are_checked) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("api.async", NULL));
        pid_t c = test_fork(async_fail_client, NULL);
        /* fail the first request with 42, answer the second */
        for (int i = 0; i < 2; i++) {
                char b[8];
                ipcf_call_req req;
                CHECK_EQ(ipcf_service_next(svc, b, sizeof(b), 5000, &req), i + 1);
                if (i == 0)
                        CHECK_OK(ipcf_service_fail(svc, &req, 42, 1000));
                else
                        CHECK_OK(ipcf_service_reply(svc, &req, b, 2, 1000));
        }
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

/* ---- one closing call, one readiness call, for every kind ------------------ */

/* ipcf_fd works, ipcf_dealloc closes, then both say -EBADF. */
static void check_closes(int h, const char *reason) {
        int fd = CHECK_OK(ipcf_fd(h));
        CHECK(fd >= 0);
        CHECK_OK(ipcf_dealloc(h, reason));
        CHECK_ERR(ipcf_dealloc(h, reason), -EBADF);
        CHECK_ERR(ipcf_fd(h), -EBADF);
        CHECK_ERR(ipcf_detach(h), -EBADF);
}

TEST(every_handle_kind_polls_with_ipcf_fd_and_closes_with_ipcf_dealloc) {
        test_daemon_start(&d, NULL, NULL);
        int base = open_fds();
        /* registration: the name goes */
        int reg = CHECK_OK(ipcf_register("api.reg", NULL));
        check_closes(reg, "bye");
        CHECK_ERR(ipcf_alloc("api.reg", NULL, 500, NULL), -ENOENT);
        /* service (its callers' pending calls end: test-call.c) */
        check_closes(CHECK_OK(ipcf_service("api.closing", NULL)), "closing now");
        char b[8];
        /* datagram endpoint */
        int ep = CHECK_OK(ipcf_dgram_open("api.ep", NULL));
        check_closes(ep, NULL);
        /* pipe ends: the reason reaches the peer */
        int p[2];
        CHECK_OK(ipcf_pipe(NULL, p));
        check_closes(p[0], "pipe done");
        CHECK_ERR(ipcf_read(p[1], b, sizeof(b), 0), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(p[1], &why));
        CHECK_EQ(why.code, IPCF_END_DEALLOC);
        CHECK(strcmp(why.text, "pipe done") == 0);
        check_closes(p[1], NULL);
        /* group handle: its descriptor is the notice eventfd */
        CHECK_OK(ipcf_group_create("api.shared", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("api.shared"));
        struct pollfd gf = { .fd = CHECK_OK(ipcf_fd(g)), .events = POLLIN };
        CHECK_EQ(poll(&gf, 1, 0), 0);
        CHECK_OK(ipcf_group_resize("api.shared", 8192));
        CHECK_EQ(poll(&gf, 1, 5000), 1);
        check_closes(g, NULL);
        ipcf_group_entry *v;
        size_t n;
        CHECK_OK(ipcf_group_list(&v, &n));
        CHECK_EQ(n, 1);
        CHECK_EQ(v[0].members, 0); /* we left */
        ipcf_free(v);
        /* mailbox and multicast handles are port-ids */
        CHECK_OK(ipcf_mbox_create("api.mb", NULL));
        check_closes(CHECK_OK(ipcf_mbox_open("api.mb", IPCF_MBOX_RECV, NULL, 1000)), NULL);
        CHECK_OK(ipcf_mcast_create("api.mc", NULL));
        check_closes(CHECK_OK(ipcf_mcast_join("api.mc", NULL, 1000)), "left");
        /* no descriptor of any of them is left behind (the connection to the
         * daemon and the group's or mailbox's none) */
        CHECK(open_fds() <= base + 1);
        /* numbers that were never handles */
        CHECK_ERR(ipcf_dealloc(-1, NULL), -EBADF);
        CHECK_ERR(ipcf_dealloc(1 << 30, NULL), -EBADF);
        CHECK_ERR(ipcf_fd(-7), -EBADF);
        CHECK_ERR(ipcf_detach(123456), -EBADF);
        test_daemon_stop(&d);
}

static void two_calls(void *arg) {
        (void)arg;
        char r[8];
        for (int i = 0; i < 2; i++)
                CHECK_EQ(ipcf_call("api.detach", "x", 1, r, sizeof(r), 5000, NULL), 1);
}

TEST(detach_forgets_a_handle_without_ending_it_and_leaks_nothing) {
        test_daemon_start(&d, NULL, NULL);
        int base = open_fds();
        /* A pipe end detached: the number is free, the flow is not ended
         * (no end record), and once no one holds that end, its peer sees
         * the holder gone. */
        int p[2];
        CHECK_OK(ipcf_pipe(NULL, p));
        CHECK_OK(ipcf_detach(p[1]));
        CHECK_ERR(ipcf_write(p[1], "x", 1, 0), -EBADF);
        char b[8];
        CHECK_ERR(ipcf_read(p[0], b, sizeof(b), 2000), -ECONNRESET);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(p[0], &why));
        CHECK(why.code != IPCF_END_DEALLOC);
        CHECK_OK(ipcf_dealloc(p[0], NULL));
        /* A service with channels, detached: every descriptor goes. */
        int svc = CHECK_OK(ipcf_service("api.detach", NULL));
        pid_t c = test_fork(two_calls, NULL);
        for (int i = 0; i < 2; i++) {
                ipcf_call_req req;
                CHECK_EQ(ipcf_service_next(svc, b, sizeof(b), 5000, &req), 1);
                CHECK_OK(ipcf_service_reply(svc, &req, "y", 1, 1000));
        }
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK(open_fds() > base + 2);
        CHECK_OK(ipcf_detach(svc));
        CHECK_ERR(ipcf_fd(svc), -EBADF);
        CHECK(open_fds() <= base + 1);
        test_daemon_stop(&d);
}

static void *accept_one(void *arg) {
        return (void *)(intptr_t)ipcf_accept(*(int *)arg, 5000, NULL);
}

TEST(listings_are_freed_with_ipcf_free) {
        test_daemon_start(&d, NULL, NULL);
        int regs[40];
        for (int i = 0; i < 40; i++) {
                char name[32];
                snprintf(name, sizeof(name), "api.list.%d", i);
                regs[i] = CHECK_OK(ipcf_register(name, NULL));
        }
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, accept_one, &regs[3]), 0);
        int p = CHECK_OK(ipcf_alloc("api.list.3", NULL, 5000, NULL));
        void *accepted;
        pthread_join(t, &accepted);
        CHECK((intptr_t)accepted >= 0);
        ipcf_listing *l;
        CHECK_OK(ipcf_list(&l));
        CHECK_EQ(l->n_names, 40);
        CHECK_EQ(l->n_flows, 1);
        CHECK(l->flows[0].pid_a == getpid() && l->flows[0].pid_b == getpid());
        CHECK(strcmp(l->flows[0].name, "api.list.3") == 0);
        bool seen = false;
        for (size_t i = 0; i < l->n_names; i++)
                seen |= strcmp(l->names[i].name, "api.list.39") == 0;
        CHECK(seen);
        ipcf_free(l); /* one block: AddressSanitizer would see a leak otherwise */
        ipcf_free(NULL);
        CHECK_ERR(ipcf_list(NULL), -EINVAL);
        ipcf_model_entry *m;
        size_t n;
        CHECK_OK(ipcf_model_list(&m, &n));
        CHECK_EQ(n, 0);
        ipcf_free(m);
        CHECK_OK(ipcf_dealloc(p, NULL));
        CHECK_OK(ipcf_dealloc((int)(intptr_t)accepted, NULL));
        for (int i = 0; i < 40; i++)
                CHECK_OK(ipcf_dealloc(regs[i], NULL));
        test_daemon_stop(&d);
}

/* ---- closing a handle while another thread waits on it --------------------- */

struct blocked {
        int h;
        int kind; /* 0 port read, 1 registration accept, 2 service take, 3 endpoint recv */
        _Atomic int done;
        long long r;
};

static void *block_on(void *arg) {
        struct blocked *b = arg;
        char buf[16];
        ipcf_call_req req;
        ipcf_dgram_src src;
        switch (b->kind) {
        case 0: b->r = ipcf_read(b->h, buf, sizeof(buf), 10000); break;
        case 1: b->r = ipcf_accept(b->h, 10000, NULL); break;
        case 2: b->r = ipcf_service_next(b->h, buf, sizeof(buf), 10000, &req); break;
        default: b->r = ipcf_dgram_recv(b->h, buf, sizeof(buf), 10000, &src); break;
        }
        atomic_store(&b->done, 1);
        return NULL;
}

TEST(dealloc_ends_the_waits_of_other_threads_on_the_handle) {
        test_daemon_start(&d, NULL, NULL);
        int p[2];
        CHECK_OK(ipcf_pipe(NULL, p));
        int handles[4] = { p[0], CHECK_OK(ipcf_register("api.wait.reg", NULL)),
                           CHECK_OK(ipcf_service("api.wait.svc", NULL)),
                           CHECK_OK(ipcf_dgram_open("api.wait.ep", NULL)) };
        for (int k = 0; k < 4; k++) {
                struct blocked b = { .h = handles[k], .kind = k };
                pthread_t t;
                CHECK_EQ(pthread_create(&t, NULL, block_on, &b), 0);
                usleep(50000); /* (a start that is late only makes the wait shorter) */
                uint64_t t0 = test_now_ms();
                CHECK_OK(ipcf_dealloc(handles[k], "closing"));
                while (!atomic_load(&b.done) && test_now_ms() - t0 < 5000)
                        usleep(1000);
                if (!atomic_load(&b.done))
                        test_fail(__FILE__, __LINE__, "kind %d: the wait did not end", k);
                pthread_join(t, NULL);
                /* a port's flow ended by this side; any other handle is gone */
                CHECK_EQ(b.r, k == 0 ? -EPIPE : -EBADF);
        }
        CHECK_OK(ipcf_dealloc(p[1], NULL));
        test_daemon_stop(&d);
}
