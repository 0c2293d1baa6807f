/*
 * test-call-fork.c — ipcf_call in a process that forked. The library keeps
 * one call channel per service per process; a child of fork() holds a copy
 * of its parent's, which is not its own: each process's calls must go on a
 * channel of its own (a port is written by one process at a time), a
 * child's calls must not wait on the reader role or the channel's lock
 * that a parent thread held at the fork (the lock is held through the
 * allocation of the channel's port), a call the parent started before the
 * fork stays the parent's, and the child never ends the parent's channel;
 * nor a child's forks (before its first call, and after) their parent's;
 * nor does the library close a port of the child's that took the number
 * of its copy of the parent's channel.
 *
 * The service answers each request with the caller's pid as the facility
 * stamped it, the request's value and the token of the caller's channel, so
 * a caller sees whose channel its call went on; it holds "hold" requests
 * unanswered until a "release".
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

#define SVC "svc.forked"

enum { OP_ECHO, OP_HOLD, OP_RELEASE, OP_QUIT };

struct req {
        uint32_t op;
        uint32_t pad;
        uint64_t v;
};

struct ans {
        int32_t pid;    /* the caller, as the facility stamped its channel */
        uint32_t pad;
        uint64_t v;     /* the request's */
        uint64_t token; /* the caller's channel, as the service sees it */
};

/* What the service shows the test (shared memory). */
struct svc_seen {
        _Atomic unsigned held; /* hold requests it keeps now */
};
static struct svc_seen *seen;

static void answer(int svc, const ipcf_call_req *req, uint64_t v) {
        struct ans a = { .pid = (int32_t)req->from.pid, .v = v, .token = req->token };
        int r = ipcf_service_reply(svc, req, &a, sizeof(a), 5000);
        CHECK(r == 0 || r == -ECANCELED); /* (the caller may have given up: timed out) */
}

static void service_main(void *arg) {
        (void)arg;
        int svc = CHECK_OK(ipcf_service(SVC, NULL));
        struct {
                ipcf_call_req req;
                uint64_t v;
        } held[16];
        unsigned n_held = 0;
        for (;;) {
                struct req m;
                ipcf_call_req req;
                ssize_t n = ipcf_service_next(svc, &m, sizeof(m), 100, &req);
                if (n == -ETIMEDOUT)
                        continue;
                CHECK_EQ(n, sizeof(m));
                if (m.op == OP_HOLD) {
                        CHECK(n_held < 16);
                        held[n_held].req = req;
                        held[n_held++].v = m.v;
                        atomic_store(&seen->held, n_held);
                        continue;
                }
                if (m.op == OP_RELEASE) {
                        for (unsigned i = 0; i < n_held; i++) {
                                /* (a caller that died meanwhile gets nothing) */
                                struct ans a = { .pid = (int32_t)held[i].req.from.pid, .v = held[i].v,
                                                 .token = held[i].req.token };
                                (void)ipcf_service_reply(svc, &held[i].req, &a, sizeof(a), 5000);
                        }
                        n_held = 0;
                        atomic_store(&seen->held, 0);
                }
                answer(svc, &req, m.v);
                if (m.op == OP_QUIT)
                        break;
        }
        CHECK_OK(ipcf_dealloc(svc, NULL));
}

/* One call of op with value v: its result, the answer in *a. */
static ssize_t call_op(uint32_t op, uint64_t v, int timeout_ms, struct ans *a) {
        struct req m = { .op = op, .v = v };
        memset(a, 0, sizeof(*a));
        return ipcf_call(SVC, &m, sizeof(m), a, sizeof(*a), timeout_ms, NULL);
}

/* The service, forked while this process is single-threaded, answering. */
static pid_t service_started(void) {
        seen = mmap(NULL, sizeof(*seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(seen != MAP_FAILED);
        pid_t s = test_fork(service_main, NULL);
        test_wait_for_name(SVC, 5000);
        return s;
}

static void service_stop(pid_t s) {
        struct ans a;
        CHECK_EQ(call_op(OP_QUIT, 0, 5000, &a), sizeof(a));
        CHECK_EQ(test_wait(s, 5000), 0);
        munmap(seen, sizeof(*seen));
}

static void wait_held(unsigned n) {
        uint64_t t0 = test_now_ms();
        while (atomic_load(&seen->held) != n && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(atomic_load(&seen->held), n);
}

/* Fork while another thread runs (test_fork refuses: a child forked while a
 * thread held an allocator lock may hang in malloc; the callers here fork
 * while that thread is asleep in a system call, in no such lock): the child
 * runs fn and exits with what it returns. */
static pid_t fork_beside_a_thread(int (*fn)(void)) {
        fflush(stdout);
        fflush(stderr);
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
                int st = fn();
                fflush(stdout);
                _exit(st);
        }
        return c;
}

/* Join th, a thread that called with value v: it got its own answer. */
static void joined_answered(pthread_t th, const struct ans *a, uint64_t v) {
        void *r;
        CHECK_OK(-pthread_join(th, &r));
        CHECK_EQ((intptr_t)r, sizeof(*a));
        CHECK_EQ(a->v, v);
        CHECK_EQ(a->pid, getpid());
}

/* ---- (a) parent and child call the service at once ---- */

#define CONC_CALLS 2000
#define CONC_TIMEOUT_MS 1000
#define CONC_GIVE_UP 10 /* failures after which a side stops (each may take a timeout) */

/* What each side saw (shared memory): [0] the parent, [1] the child. */
struct side {
        _Atomic unsigned ok, wrong_value, wrong_pid, timeouts, eproto, reset, other;
        _Atomic int other_err;
        _Atomic uint64_t token; /* the channel its answers named */
        _Atomic unsigned tokens; /* answers naming another channel than the first */
};
static struct side *sides;

static void conc_calls(struct side *sd) {
        unsigned failed = 0;
        uint64_t base = (uint64_t)getpid() << 32;
        for (uint64_t i = 0; i < CONC_CALLS && failed < CONC_GIVE_UP; i++) {
                struct ans a;
                ssize_t r = call_op(OP_ECHO, base | i, CONC_TIMEOUT_MS, &a);
                if (r == (ssize_t)sizeof(a) && a.v == (base | i)) {
                        /* its own answer, but on whose channel? */
                        if (a.pid != getpid()) {
                                atomic_fetch_add(&sd->wrong_pid, 1);
                                continue;
                        }
                        atomic_fetch_add(&sd->ok, 1);
                        uint64_t want = 0;
                        if (!atomic_compare_exchange_strong(&sd->token, &want, a.token) &&
                            want != a.token)
                                atomic_fetch_add(&sd->tokens, 1);
                        continue;
                }
                failed++;
                if (r == (ssize_t)sizeof(a))
                        atomic_fetch_add(&sd->wrong_value, 1);
                else if (r == -ETIMEDOUT)
                        atomic_fetch_add(&sd->timeouts, 1);
                else if (r == -EPROTO)
                        atomic_fetch_add(&sd->eproto, 1);
                else if (r == -ECONNRESET || r == -EPIPE)
                        atomic_fetch_add(&sd->reset, 1);
                else {
                        atomic_fetch_add(&sd->other, 1);
                        atomic_store(&sd->other_err, (int)r);
                }
        }
}

static void conc_child(void *arg) {
        (void)arg;
        conc_calls(&sides[1]);
}

static void side_print(const char *who, struct side *sd) {
        printf("     %s: %u ok, %u wrong value, %u wrong pid, %u timed out, %u -EPROTO, "
               "%u -ECONNRESET/-EPIPE, %u other (%d), %u answers on another channel\n",
               who, atomic_load(&sd->ok), atomic_load(&sd->wrong_value), atomic_load(&sd->wrong_pid),
               atomic_load(&sd->timeouts), atomic_load(&sd->eproto), atomic_load(&sd->reset),
               atomic_load(&sd->other), atomic_load(&sd->other_err), atomic_load(&sd->tokens));
}

/* A process calls the service once (its channel is made) and forks; parent
 * and child then make 2,000 calls each at once: every call gets its own
 * answer, on a channel of its own process (the service sees the child's
 * calls stamped with the child's pid), none fails or times out. */
TEST_TIMEOUT(parent_and_child_call_at_once_each_on_its_own_channel, 120) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = service_started();
        sides = mmap(NULL, 2 * sizeof(*sides), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(sides != MAP_FAILED);
        memset(sides, 0, 2 * sizeof(*sides));
        struct ans a;
        CHECK_EQ(call_op(OP_ECHO, 7, 5000, &a), sizeof(a));
        CHECK_EQ(a.pid, getpid());
        int gate;
        pid_t c = test_fork_gated(conc_child, NULL, &gate);
        test_gate_open(&gate);
        conc_calls(&sides[0]);
        CHECK_EQ(test_wait(c, 60000), 0);
        side_print("parent", &sides[0]);
        side_print("child", &sides[1]);
        for (int i = 0; i < 2; i++) {
                CHECK_EQ(atomic_load(&sides[i].ok), CONC_CALLS);
                CHECK_EQ(atomic_load(&sides[i].tokens), 0);
        }
        /* the parent's calls stayed on the channel it had before the fork */
        CHECK_EQ(atomic_load(&sides[0].token), a.token);
        CHECK(atomic_load(&sides[1].token) != a.token);
        munmap(sides, 2 * sizeof(*sides));
        service_stop(s);
        test_daemon_stop(&d);
}

/* ---- (b) a parent thread is the reader when another forks ---- */

static void *held_caller(void *arg) {
        struct ans *a = arg;
        ssize_t r = call_op(OP_HOLD, 99, 20000, a);
        return (void *)(intptr_t)r;
}

/* In the child of a fork made while another thread waited in ipcf_call:
 * 20 calls, the first within 2 s (not behind the reader role nor a lock of
 * a thread the child does not have). Its exit status: 0, or which failed. */
static int reader_child(void) {
        uint64_t t0 = test_now_ms();
        for (uint64_t i = 0; i < 20; i++) {
                struct ans a;
                ssize_t r = call_op(OP_ECHO, 1000 + i, 2000, &a);
                if (r != (ssize_t)sizeof(a)) {
                        printf("     child: call %llu: %zd (%s) after %llu ms\n", (unsigned long long)i, r,
                               strerror((int)-r), (unsigned long long)(test_now_ms() - t0));
                        return 10 + (int)i;
                }
                if (a.v != 1000 + i || a.pid != getpid()) {
                        printf("     child: call %llu: answer %llu for pid %d\n", (unsigned long long)i,
                               (unsigned long long)a.v, a.pid);
                        return 40 + (int)i;
                }
        }
        printf("     child: 20 calls in %llu ms\n", (unsigned long long)(test_now_ms() - t0));
        return 0;
}

/* A thread of the parent waits in ipcf_call (the service answers late: it
 * is the channel's reader, asleep on its port, holding its read lock) when
 * another thread forks: the child's own calls work at once; the parent's
 * held call then gets its own answer. */
TEST_TIMEOUT(a_child_forked_while_a_parent_thread_reads_calls_at_once, 60) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = service_started();
        struct ans a;
        CHECK_EQ(call_op(OP_ECHO, 1, 5000, &a), sizeof(a));
        struct ans held;
        pthread_t th;
        CHECK_OK(-pthread_create(&th, NULL, held_caller, &held));
        wait_held(1);
        usleep(50000); /* it is asleep on the port by now */
        pid_t c = fork_beside_a_thread(reader_child);
        CHECK_EQ(test_wait(c, 30000), 0);
        CHECK_EQ(call_op(OP_RELEASE, 2, 5000, &a), sizeof(a));
        joined_answered(th, &held, 99);
        service_stop(s);
        test_daemon_stop(&d);
}

/* ---- (c) a call started before the fork is the parent's ---- */

static ipcf_pending pending;
static struct ans pending_ans;

static void pending_child(void *arg) {
        (void)arg;
        /* unknown here: the parent's (ipcf.h: after fork) */
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_call_wait(&pending, 500, NULL), -ECANCELED);
        CHECK(test_now_ms() - t0 < 400);
        CHECK_ERR(ipcf_call_cancel(&pending), -ENOENT);
        /* its own calls go on its own channel */
        struct ans a;
        CHECK_EQ(call_op(OP_ECHO, 5, 2000, &a), sizeof(a));
        CHECK_EQ(a.v, 5);
        CHECK_EQ(a.pid, getpid());
        CHECK_ERR(ipcf_call_wait(&pending, 0, NULL), -ECANCELED);
}

/* ipcf_call_start before fork(): in the child that call is unknown
 * (ipcf_call_wait -ECANCELED at once, ipcf_call_cancel -ENOENT, and the
 * child reads nothing of the parent's channel); the parent waits for it and
 * gets its answer. */
TEST(a_call_started_before_the_fork_is_the_parents) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = service_started();
        struct req m = { .op = OP_HOLD, .v = 77 };
        CHECK_OK(ipcf_call_start(SVC, &m, sizeof(m), &pending_ans, sizeof(pending_ans), 5000, &pending));
        wait_held(1);
        pid_t c = test_fork(pending_child, NULL);
        CHECK_EQ(test_wait(c, 10000), 0);
        struct ans a;
        CHECK_EQ(call_op(OP_RELEASE, 3, 5000, &a), sizeof(a));
        CHECK_EQ(ipcf_call_wait(&pending, 5000, NULL), sizeof(pending_ans));
        CHECK_EQ(pending_ans.v, 77);
        CHECK_EQ(pending_ans.pid, getpid());
        service_stop(s);
        test_daemon_stop(&d);
}

/* ---- (d) the child's exit leaves the parent's channel alone ---- */

static void exiting_child(void *arg) {
        bool killed = arg != NULL;
        struct ans a;
        for (uint64_t i = 0; i < 50; i++) {
                CHECK_EQ(call_op(OP_ECHO, 500 + i, 2000, &a), sizeof(a));
                CHECK_EQ(a.pid, getpid());
        }
        if (killed) {
                /* dies with a call of its own in progress */
                struct req m = { .op = OP_HOLD, .v = 600 };
                ipcf_pending p;
                CHECK_OK(ipcf_call_start(SVC, &m, sizeof(m), &a, sizeof(a), 5000, &p));
                wait_held(2);
                raise(SIGKILL);
        }
        exit(0); /* (with the library's exit handlers, if any) */
}

/* The parent has a call pending when it forks; the child calls and exits
 * (once normally, once killed mid-call): the parent's pending call gets
 * its answer, and its next calls go on the same channel as before. */
TEST(the_childs_exit_leaves_the_parents_channel) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = service_started();
        struct ans a;
        CHECK_EQ(call_op(OP_ECHO, 1, 5000, &a), sizeof(a));
        uint64_t token = a.token;
        for (int round = 0; round < 2; round++) {
                struct req m = { .op = OP_HOLD, .v = 800 + (uint64_t)round };
                CHECK_OK(ipcf_call_start(SVC, &m, sizeof(m), &pending_ans, sizeof(pending_ans), 5000,
                                         &pending));
                wait_held(1);
                pid_t c = test_fork(exiting_child, round ? (void *)1 : NULL);
                int st = test_wait(c, 20000);
                CHECK_EQ(st, round ? 128 + SIGKILL : 0);
                CHECK_EQ(call_op(OP_RELEASE, 3, 5000, &a), sizeof(a));
                CHECK_EQ(a.token, token);
                CHECK_EQ(ipcf_call_wait(&pending, 5000, NULL), sizeof(pending_ans));
                CHECK_EQ(pending_ans.v, 800 + (uint64_t)round);
                CHECK_EQ(pending_ans.token, token);
                for (uint64_t i = 0; i < 100; i++) {
                        CHECK_EQ(call_op(OP_ECHO, i, 5000, &a), sizeof(a));
                        CHECK_EQ(a.v, i);
                        CHECK_EQ(a.token, token);
                }
        }
        service_stop(s);
        test_daemon_stop(&d);
}

/* ---- (e) a parent thread holds the channel's lock at the fork ---- */

static _Atomic bool first_done;

static void *first_caller(void *arg) {
        struct ans *a = arg;
        ssize_t r = call_op(OP_ECHO, 41, 20000, a);
        atomic_store(&first_done, true);
        return (void *)(intptr_t)r;
}

/* The child's call, once the daemon runs again: exit status 0, or 1. */
static int lock_child(void) {
        struct ans a;
        ssize_t r = call_op(OP_ECHO, 42, 5000, &a);
        if (r == (ssize_t)sizeof(a) && a.v == 42 && a.pid == getpid())
                return 0;
        printf("     child: %zd (%s), answer %llu for pid %d\n", r, r < 0 ? strerror((int)-r) : "",
               (unsigned long long)a.v, a.pid);
        return 1;
}

/* A thread makes the first call to the service while the daemon is stopped:
 * it holds the channel's lock through the allocation when another thread
 * forks. The fork does not wait for it, and once the daemon runs again the
 * child's own call works (the lock it inherited held is not waited for),
 * as does the parent thread's. */
TEST_TIMEOUT(a_child_forked_while_a_parent_thread_makes_the_channel_calls, 60) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = service_started();
        kill(d.pid, SIGSTOP);
        struct ans first;
        pthread_t th;
        CHECK_OK(-pthread_create(&th, NULL, first_caller, &first));
        usleep(100000); /* it waits for the daemon's answer by now, holding the lock */
        pid_t c = fork_beside_a_thread(lock_child);
        CHECK(!atomic_load(&first_done)); /* the fork did not wait for the allocation */
        kill(d.pid, SIGCONT);
        CHECK_EQ(test_wait(c, 15000), 0);
        joined_answered(th, &first, 41);
        service_stop(s);
        test_daemon_stop(&d);
}

/* ---- a fork of a fork ---- */

static void calls_on_own_channel(void *arg) {
        (void)arg;
        struct ans a;
        for (uint64_t i = 0; i < 100; i++) {
                CHECK_EQ(call_op(OP_ECHO, i, 5000, &a), sizeof(a));
                CHECK_EQ(a.v, i);
                CHECK_EQ(a.pid, getpid());
        }
}

/* A child that forks before its first call (it still holds its copy of the
 * parent's channel), and once after: every process calls on its own. */
static void forking_child(void *arg) {
        (void)arg;
        pid_t g = test_fork(calls_on_own_channel, NULL);
        calls_on_own_channel(NULL);
        CHECK_EQ(test_wait(g, 20000), 0);
        g = test_fork(calls_on_own_channel, NULL);
        calls_on_own_channel(NULL);
        CHECK_EQ(test_wait(g, 20000), 0);
}

TEST(the_forks_of_a_child_call_each_on_its_own_channel) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = service_started();
        calls_on_own_channel(NULL);
        pid_t c = test_fork(forking_child, NULL);
        calls_on_own_channel(NULL);
        CHECK_EQ(test_wait(c, 30000), 0);
        calls_on_own_channel(NULL);
        service_stop(s);
        test_daemon_stop(&d);
}

/* ---- (g) a child that closes what it inherited reuses the numbers ---- */

/* Hands every live number below 64 to a pipe of its own (a "close what we
 * inherited" loop, then new ports); calls, and its pipes must be as it left
 * them (the copy of the parent's channel that the library lets go is not
 * whatever holds its number now). */
static void closing_child(void *arg) {
        (void)arg;
        int ports[128];
        int n = test_reuse_handle_numbers(ports);
        calls_on_own_channel(NULL);
        test_reused_pipes_untouched(ports, n);
}

/* The parent's channel lives on too. */
TEST(a_child_that_reuses_the_numbers_of_its_parents_channel_keeps_its_ports) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = service_started();
        struct ans before, after;
        CHECK_EQ(call_op(OP_ECHO, 1, 5000, &before), sizeof(before));
        CHECK_EQ(test_wait(test_fork(closing_child, NULL), 30000), 0);
        CHECK_EQ(call_op(OP_ECHO, 2, 5000, &after), sizeof(after));
        CHECK_EQ(after.token, before.token);
        service_stop(s);
        test_daemon_stop(&d);
}
