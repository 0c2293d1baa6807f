/*
 * test-call.c — service processes and calls (LPC) against the real daemon:
 * stamps, replies matched to calls across threads, failures, timeouts with
 * cancellation, a service that dies mid-call, fairness between callers, a
 * channel's number closed by the caller and reused by a port of its own.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

/* A service that answers "x" with "x!" until told "quit". */
static void echo_service(void *arg) {
        int svc = CHECK_OK(ipcf_service((const char *)arg, NULL));
        char buf[4096];
        for (;;) {
                ipcf_call_req req;
                ssize_t n = ipcf_service_next(svc, buf, sizeof(buf) - 1, 10000, &req);
                CHECK(n >= 0);
                if (n == 4 && memcmp(buf, "quit", 4) == 0) {
                        CHECK_OK(ipcf_service_reply(svc, &req, "bye", 3, 1000));
                        break;
                }
                if (n == 4 && memcmp(buf, "fail", 4) == 0) {
                        CHECK_OK(ipcf_service_fail(svc, &req, 42, 1000));
                        continue;
                }
                buf[n] = '!';
                CHECK_OK(ipcf_service_reply(svc, &req, buf, (size_t)n + 1, 1000));
        }
        CHECK_OK(ipcf_dealloc(svc, NULL));
}

TEST(call_roundtrip_and_failure_codes) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = test_fork(echo_service, "svc.calc");
        test_wait_for_name("svc.calc", 5000);
        char reply[64];
        for (int i = 0; i < 1000; i++) {
                char req[16];
                int n = snprintf(req, sizeof(req), "n%d", i);
                CHECK_EQ(ipcf_call("svc.calc", req, (size_t)n, reply, sizeof(reply), 5000, NULL), n + 1);
                CHECK_MEM(reply, req, (size_t)n);
                CHECK_EQ(reply[n], '!');
        }
        int code = 0;
        CHECK_ERR(ipcf_call("svc.calc", "fail", 4, reply, sizeof(reply), 5000, &code), -EREMOTEIO);
        CHECK_EQ(code, 42);
        CHECK_ERR(ipcf_call("svc.calc", "abcdef", 6, reply, 3, 5000, NULL), -EMSGSIZE);
        /* the channel is still fine after a reply that did not fit */
        CHECK_EQ(ipcf_call("svc.calc", "ok", 2, reply, sizeof(reply), 5000, NULL), 3);
        CHECK_EQ(ipcf_call("svc.calc", "quit", 4, reply, sizeof(reply), 5000, NULL), 3);
        CHECK_EQ(test_wait(s, 5000), 0);
        CHECK_ERR(ipcf_call("no.such.service", "x", 1, reply, sizeof(reply), 1000, NULL), -ENOENT);
        CHECK_ERR(ipcf_call("svc.calc", "x", 1, reply, sizeof(reply), 0, NULL), -EINVAL);
        static char big[IPCF_CALL_MAX + 1];
        CHECK_ERR(ipcf_call("svc.calc", big, sizeof(big), reply, sizeof(reply), 1000, NULL), -EMSGSIZE);
        test_daemon_stop(&d);
}

static void stamp_and_sizes_client(void *arg) {
        (void)arg;
        char reply[64];
        /* claims to be someone else in the payload: the stamp says who it is */
        CHECK_EQ(ipcf_call("svc.stamp", "I am pid 1, uid 0", 17, reply, sizeof(reply), 5000, NULL), 2);
        static char big[10000];
        memset(big, 'b', sizeof(big));
        CHECK_EQ(ipcf_call("svc.stamp", big, sizeof(big), reply, sizeof(reply), 5000, NULL), 2);
}

TEST(requests_are_stamped_by_the_facility) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.stamp", NULL));
        pid_t c = test_fork(stamp_and_sizes_client, NULL);
        char buf[100];
        ipcf_call_req req;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 17);
        CHECK_EQ(req.from.pid, c);
        CHECK_EQ(req.from.uid, getuid());
        CHECK_OK(ipcf_service_reply(svc, &req, "ok", 2, 1000));
        /* a request larger than the buffer stays queued and says its size */
        CHECK_ERR(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), -EMSGSIZE);
        CHECK_EQ(req.len, 10000);
        static char big[10000];
        CHECK_EQ(ipcf_service_next(svc, big, sizeof(big), 0, &req), 10000);
        CHECK_OK(ipcf_service_reply(svc, &req, "ok", 2, 1000));
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

static void impatient_client(void *arg) {
        (void)arg;
        char reply[16];
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_call("svc.slow", "work", 4, reply, sizeof(reply), 100, NULL), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 100);
        /* the late reply to the cancelled call is dropped, never mistaken for this one */
        CHECK_EQ(ipcf_call("svc.slow", "next", 4, reply, sizeof(reply), 5000, NULL), 4);
        CHECK_MEM(reply, "done", 4);
}

TEST(timeout_cancels_and_the_service_sees_it) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.slow", NULL));
        uint64_t forked = test_now_ms();
        pid_t c = test_fork(impatient_client, NULL);
        char buf[16];
        ipcf_call_req req;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 4);
        /* Not cancelled while its 100 ms cannot have passed (a loaded
         * machine may take longer than that to get here). */
        int early = ipcf_service_cancelled(svc, &req);
        CHECK(early == 0 || early == 1);
        if (test_now_ms() - forked < 100)
                CHECK_EQ(early, 0);
        uint64_t t0 = test_now_ms();
        while (!ipcf_service_cancelled(svc, &req) && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(ipcf_service_cancelled(svc, &req), 1);
        CHECK_ERR(ipcf_service_reply(svc, &req, "late", 4, 1000), -ECANCELED);
        ipcf_call_req req2;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req2), 4);
        CHECK(req2.id != req.id);
        CHECK_OK(ipcf_service_reply(svc, &req2, "done", 4, 1000));
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

static void dying_service(void *arg) {
        (void)arg;
        int svc = CHECK_OK(ipcf_service("svc.doomed", NULL));
        char buf[16];
        ipcf_call_req req;
        CHECK(ipcf_service_next(svc, buf, sizeof(buf), 10000, &req) >= 0);
        raise(SIGKILL); /* mid-call */
}

TEST(service_dies_mid_call) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = test_fork(dying_service, NULL);
        test_wait_for_name("svc.doomed", 5000);
        char reply[16];
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_call("svc.doomed", "help", 4, reply, sizeof(reply), -1, NULL), -ECONNRESET);
        printf("     caller learned of the death after %llu ms\n",
               (unsigned long long)(test_now_ms() - t0));
        CHECK(test_now_ms() - t0 < 2000);
        test_wait(s, 1000);
        test_daemon_stop(&d);
}

/* echo_service under name, forked, once the name is registered, and
 * answering: its first call checked. */
static pid_t echo_started(const char *name) {
        pid_t s = test_fork(echo_service, (void *)name);
        test_wait_for_name(name, 5000);
        char reply[16];
        CHECK_EQ(ipcf_call(name, "a", 1, reply, sizeof(reply), 5000, NULL), 2);
        CHECK(memcmp(reply, "a!", 2) == 0);
        return s;
}

/* Sends SIGCONT to the daemon (pid in arg) after 400 ms. */
static void wake_daemon_later(void *arg) {
        usleep(400000);
        kill((pid_t)(intptr_t)arg, SIGCONT);
}

/* A call that finds its channel broken since the last call (the service
 * was restarted) goes once on a new channel: to the new service while there
 * is time, and if the caller's timeout passed while the broken channel was
 * being let go, -ETIMEDOUT — never the old service's -ECONNRESET for a
 * request it never saw (CI, Valgrind step: a 50 ms call slice ran out while
 * the broken channel was deallocated, and the call failed -ECONNRESET). */
TEST_TIMEOUT(a_call_on_a_channel_broken_since_goes_on_a_new_one_or_times_out, 60) {
        test_daemon_start(&d, NULL, NULL);
        char reply[16];
        pid_t s = echo_started("svc.again");
        for (int round = 0; round < 2; round++) {
                kill(s, SIGKILL);
                test_wait(s, 5000);
                test_wait_for_name_gone("svc.again", 5000); /* the daemon ended the old channel */
                if (round == 0) {
                        /* time enough: the new service answers (echo_started's call) */
                        s = echo_started("svc.again");
                        continue;
                }
                s = test_fork(echo_service, "svc.again");
                test_wait_for_name("svc.again", 5000);
                /* the daemon answers the broken channel's deallocation only
                 * after the call's 100 ms have passed */
                kill(d.pid, SIGSTOP);
                pid_t waker = test_fork(wake_daemon_later, (void *)(intptr_t)d.pid);
                CHECK_ERR(ipcf_call("svc.again", "c", 1, reply, sizeof(reply), 100, NULL), -ETIMEDOUT);
                test_wait(waker, 5000);
                CHECK_EQ(ipcf_call("svc.again", "d", 1, reply, sizeof(reply), 5000, NULL), 2);
                CHECK(memcmp(reply, "d!", 2) == 0);
        }
        CHECK_EQ(ipcf_call("svc.again", "quit", 4, reply, sizeof(reply), 5000, NULL), 3);
        test_wait(s, 5000);
        test_daemon_stop(&d);
}

/* A service that dies while the daemon is stopped: its caller learns at
 * once, without the daemon (the peer's death is seen in shared memory and
 * its pidfd or ears), and letting the broken channel go does not wait for
 * the stopped daemon (before: the call, and every other call queued on the
 * channel's lock, waited IPCF_REQUEST_TIMEOUT_MS, 30 s, for the answer to
 * the channel's deallocation). (Without a pidfd — under Valgrind — only
 * the daemon tells: run-valgrind.sh leaves out "peer_death" cases.) */
TEST_TIMEOUT(a_services_peer_death_while_the_daemon_is_stopped_fails_its_call_at_once, 60) {
        test_daemon_start(&d, NULL, NULL);
        char reply[16];
        pid_t s = echo_started("svc.gone");
        kill(d.pid, SIGSTOP);
        kill(s, SIGKILL);
        test_wait(s, 5000);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_call("svc.gone", "b", 1, reply, sizeof(reply), -1, NULL), -ECONNRESET);
        uint64_t took = test_now_ms() - t0;
        printf("     the caller learned of the death after %llu ms\n", (unsigned long long)took);
        CHECK(took < 10000);
        kill(d.pid, SIGCONT);
        test_wait_for_name_gone("svc.gone", 5000);
        test_daemon_stop(&d);
}

/* Calls svc.wait once, with no bound; the test kills it meanwhile. Its
 * name svc.caller goes when the daemon has seen it die. */
static void patient_caller(void *arg) {
        (void)arg;
        char reply[16];
        CHECK_OK(ipcf_register("svc.caller", NULL));
        ipcf_call("svc.wait", "a", 1, reply, sizeof(reply), -1, NULL);
        _exit(0);
}

/* A caller that died, its channel ended by the daemon, which is then
 * stopped: the service's next take forgets the channel without waiting for
 * the stopped daemon, and keeps its own timeout (before: ipcf_service_next with 300 ms waited
 * IPCF_REQUEST_TIMEOUT_MS, 30 s, under the service's lock, for the answer to
 * the dead caller's channel's deallocation). */
TEST_TIMEOUT(a_dead_callers_channel_is_let_go_without_waiting_for_the_daemon, 60) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.wait", NULL));
        pid_t caller = test_fork(patient_caller, NULL);
        char buf[16];
        ipcf_call_req req;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 1);
        kill(caller, SIGKILL);
        test_wait(caller, 5000);
        test_wait_for_name_gone("svc.caller", 5000); /* the daemon ended its channel */
        kill(d.pid, SIGSTOP);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_service_next(svc, buf, sizeof(buf), 300, &req), -ETIMEDOUT);
        uint64_t took = test_now_ms() - t0;
        printf("     the service's wait of 300 ms took %llu ms\n", (unsigned long long)took);
        CHECK(took < 10000);
        kill(d.pid, SIGCONT);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* Workers answer out of order (later requests can finish first). */
struct worker_args {
        int svc;
        int count;
};

static void *worker(void *arg) {
        struct worker_args *w = arg;
        for (int i = 0; i < w->count; i++) {
                char buf[64];
                ipcf_call_req req;
                ssize_t n = ipcf_service_next(w->svc, buf, sizeof(buf), 10000, &req);
                if (n < 0)
                        return (void *)1;
                if (buf[0] & 1)
                        usleep(50); /* some take longer */
                if (ipcf_service_reply(w->svc, &req, buf, (size_t)n, 5000) < 0)
                        return (void *)2;
        }
        return NULL;
}

#define THREADS 4
#define CALLS 2000

static void *caller(void *arg) {
        int id = (int)(intptr_t)arg;
        for (int i = 0; i < CALLS; i++) {
                int msg[2] = { id, i }, got[2] = { -1, -1 };
                if (ipcf_call("svc.mt", msg, sizeof(msg), got, sizeof(got), 10000, NULL) != sizeof(got))
                        return (void *)1;
                if (got[0] != id || got[1] != i)
                        return (void *)2; /* someone else's reply */
        }
        return NULL;
}

static void threaded_callers(void *arg) {
        (void)arg;
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
                pthread_create(&t[i], NULL, caller, (void *)(intptr_t)i);
        for (int i = 0; i < THREADS; i++) {
                void *r;
                pthread_join(t[i], &r);
                CHECK(r == NULL);
        }
}

TEST_TIMEOUT(concurrent_calls_get_their_own_replies, 120) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.mt", NULL));
        pid_t c = test_fork(threaded_callers, NULL);
        pthread_t w[2];
        struct worker_args wa = { svc, THREADS * CALLS / 2 };
        for (int i = 0; i < 2; i++)
                pthread_create(&w[i], NULL, worker, &wa);
        for (int i = 0; i < 2; i++) {
                void *r;
                pthread_join(w[i], &r);
                CHECK(r == NULL);
        }
        CHECK_EQ(test_wait(c, 30000), 0);
        test_daemon_stop(&d);
}

#define ROUNDS 50

static void counting_caller(void *arg) {
        int id = (int)(intptr_t)arg;
        for (int i = 0; i < ROUNDS; i++) {
                int got = -1;
                CHECK_EQ(ipcf_call("svc.fair", &id, sizeof(id), &got, sizeof(got), 10000, NULL), sizeof(got));
        }
}

TEST_TIMEOUT(callers_are_served_fairly, 60) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.fair", NULL));
        pid_t c[2];
        for (int i = 0; i < 2; i++)
                c[i] = test_fork(counting_caller, (void *)(intptr_t)i);
        /* Each round: once both callers have a request queued, the next two
         * taken come from different callers (round robin, never one twice). */
        for (int round = 0; round < ROUNDS; round++) {
                test_wait_queued("svc.fair", 2, 5000);
                ipcf_call_req req[2];
                int id[2] = { -1, -1 };
                for (int k = 0; k < 2; k++)
                        CHECK_EQ(ipcf_service_next(svc, &id[k], sizeof(int), 5000, &req[k]), sizeof(int));
                CHECK(id[0] != id[1]);
                for (int k = 0; k < 2; k++)
                        CHECK_OK(ipcf_service_reply(svc, &req[k], &id[k], sizeof(int), 5000));
        }
        for (int i = 0; i < 2; i++)
                CHECK_EQ(test_wait(c[i], 10000), 0);
        test_daemon_stop(&d);
}

static void caller_of_closing(void *arg) {
        (void)arg;
        char reply[8];
        ssize_t r = ipcf_call("svc.closing", "x", 1, reply, sizeof(reply), 5000, NULL);
        CHECK(r == -EPIPE || r == -ECONNRESET);
}

TEST(closing_service_ends_pending_calls_and_poll_works) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.closing", NULL));
        int fd = CHECK_OK(ipcf_fd(svc));
        struct pollfd p = { .fd = fd, .events = POLLIN };
        pid_t c = test_fork(caller_of_closing, NULL);
        CHECK_EQ(poll(&p, 1, 5000), 1); /* a caller, then its request */
        char buf[8];
        ipcf_call_req req;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 1);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

static void async_client(void *arg) {
        (void)arg;
        char r[3][16];
        ipcf_pending p[3];
        for (int i = 0; i < 3; i++) {
                char req[8];
                snprintf(req, sizeof(req), "q%d", i);
                CHECK_OK(ipcf_call_start("svc.async", req, 2, r[i], sizeof(r[i]), 5000, &p[i]));
        }
        /* wait out of order; the service answers in reverse order */
        for (int i = 2; i >= 0; i--) {
                CHECK_EQ(ipcf_call_wait(&p[i], 5000, NULL), 3);
                CHECK_EQ(r[i][1], '0' + i);
                CHECK_EQ(r[i][2], '!');
        }
        CHECK_ERR(ipcf_call_wait(&p[0], 0, NULL), -ECANCELED); /* finished: unknown now */
        CHECK_ERR(ipcf_call_cancel(&p[0]), -ENOENT);
        /* a pending call survives a short wait, then is cancelled */
        ipcf_pending q;
        char rq[16];
        CHECK_OK(ipcf_call_start("svc.async", "hold", 4, rq, sizeof(rq), 5000, &q));
        CHECK_ERR(ipcf_call_wait(&q, 0, NULL), -EAGAIN);
        CHECK_ERR(ipcf_call_wait(&q, 20, NULL), -ETIMEDOUT);
        CHECK_OK(ipcf_call_cancel(&q));
        CHECK_ERR(ipcf_call_wait(&q, 0, NULL), -ECANCELED);
}

TEST(async_calls_waited_out_of_order_and_cancelled) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.async", NULL));
        pid_t c = test_fork(async_client, NULL);
        ipcf_call_req req[3];
        char buf[3][16];
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_service_next(svc, buf[i], sizeof(buf[i]) - 1, 5000, &req[i]), 2);
        for (int i = 2; i >= 0; i--) {
                buf[i][2] = '!';
                CHECK_OK(ipcf_service_reply(svc, &req[i], buf[i], 3, 1000));
        }
        ipcf_call_req held;
        char hb[8];
        CHECK_EQ(ipcf_service_next(svc, hb, sizeof(hb), 5000, &held), 4);
        uint64_t t0 = test_now_ms();
        while (!ipcf_service_cancelled(svc, &held) && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(ipcf_service_cancelled(svc, &held), 1);
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

struct canceller {
        ipcf_pending *call;
};

static void *cancel_soon(void *arg) {
        struct canceller *k = arg;
        usleep(50000);
        return (void *)(intptr_t)ipcf_call_cancel(k->call);
}

static void explicit_cancel_client(void *arg) {
        (void)arg;
        ipcf_pending p;
        char r[16];
        CHECK_OK(ipcf_call_start("svc.cancel", "slow", 4, r, sizeof(r), 5000, &p));
        pthread_t t;
        struct canceller k = { &p };
        pthread_create(&t, NULL, cancel_soon, &k);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_call_wait(&p, 5000, NULL), -ECANCELED); /* woken by the other thread */
        CHECK(test_now_ms() - t0 < 2000);
        void *ret;
        pthread_join(t, &ret);
        CHECK(ret == NULL);
}

TEST(explicit_cancel_from_another_thread) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.cancel", NULL));
        pid_t c = test_fork(explicit_cancel_client, NULL);
        ipcf_call_req req;
        char buf[8];
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 4);
        uint64_t t0 = test_now_ms();
        while (!ipcf_service_cancelled(svc, &req) && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(ipcf_service_cancelled(svc, &req), 1);
        CHECK_ERR(ipcf_service_reply(svc, &req, "late", 4, 1000), -ECANCELED);
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

static void serve_until_daemon_dies(void *arg) {
        (void)arg;
        int svc = CHECK_OK(ipcf_service("svc.orphan", NULL));
        char buf[8];
        ipcf_call_req req;
        /* The daemon dies with no caller connected: nothing can ever come, and
         * the service must say so instead of spinning on the hung-up socket. */
        CHECK_ERR(ipcf_service_next(svc, buf, sizeof(buf), 10000, &req), -EHOSTDOWN);
}

TEST(service_learns_the_daemon_died) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = test_fork(serve_until_daemon_dies, NULL);
        test_wait_for_name("svc.orphan", 5000);
        test_daemon_kill(&d);
        uint64_t t0 = test_now_ms();
        CHECK_EQ(test_wait(s, 5000), 0);
        CHECK(test_now_ms() - t0 < 2000);
        test_daemon_stop(&d);
}

/* A wait of 0 never waits, but a reply already there is no wait: it reads
 * what the channel holds (ipcf.h: -EAGAIN only when it would have had to
 * wait). Polled with 0 only, a call's reply must come (here within 10 s;
 * before, nothing ever read the channel and every poll said -EAGAIN). */
TEST(a_wait_of_0_reads_a_reply_already_there) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = test_fork(echo_service, "svc.poll0");
        test_wait_for_name("svc.poll0", 5000);
        char reply[64];
        CHECK_EQ(ipcf_call("svc.poll0", "warm", 4, reply, sizeof(reply), 5000, NULL), 5);
        for (int round = 0; round < 3; round++) {
                ipcf_pending p;
                CHECK_OK(ipcf_call_start("svc.poll0", "abc", 3, reply, sizeof(reply), 5000, &p));
                ssize_t n = -EAGAIN;
                for (int i = 0; i < 10000 && n == -EAGAIN; i++) {
                        n = ipcf_call_wait(&p, 0, NULL);
                        if (n == -EAGAIN)
                                usleep(1000);
                }
                CHECK_EQ(n, 4);
                CHECK_MEM(reply, "abc!", 4);
        }
        CHECK_EQ(ipcf_call("svc.poll0", "quit", 4, reply, sizeof(reply), 5000, NULL), 3);
        CHECK_EQ(test_wait(s, 5000), 0);
        test_daemon_stop(&d);
}

/* A process that closes handle numbers it did not make (a loop detaching
 * every inherited number, or a stale number) lets the number of the
 * library's call channel go to a port of its own: the next call must not
 * write into that port nor end it, and must work (on a new channel). */
TEST_TIMEOUT(a_channels_number_reused_by_the_users_port_is_not_the_channel, 60) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = echo_started("svc.stale");
        int ports[128];
        int n = test_reuse_handle_numbers(ports);
        char reply[16];
        for (int i = 0; i < 3; i++) {
                CHECK_EQ(ipcf_call("svc.stale", "b", 1, reply, sizeof(reply), 5000, NULL), 2);
                CHECK_MEM(reply, "b!", 2);
        }
        /* no pipe got a request, and every one is still ours and live */
        test_reused_pipes_untouched(ports, n);
        for (int i = 0; i < n; i++)
                CHECK_OK(ipcf_dealloc(ports[i], NULL));
        CHECK_EQ(ipcf_call("svc.stale", "quit", 4, reply, sizeof(reply), 5000, NULL), 3);
        CHECK_EQ(test_wait(s, 5000), 0);
        test_daemon_stop(&d);
}
