/*
 * test-service-share.c — many callers of one service against the real
 * daemon, in real processes: a greedy caller with many calls outstanding gets
 * one turn per round like everyone else; a service with many callers at once
 * tells them so (the inbox's busy mark, seen in shared memory: no plain spin)
 * and still answers them all, and lifts the mark once they are gone quiet,
 * but not when they all run on another CPU than the service's and are fewer
 * than the inbox's busy_many; a
 * caller killed mid-call costs the service nothing; an inbox set up over
 * garbage is empty and open; a service whose registration number the user
 * detached and was given again for its own never touches the user's;
 * several worker threads take from the one queue.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "lib/core/lib.h"
#include "lib/models/callwire.h"
#include "lib/models/inbox.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

/* ---- a greedy caller --------------------------------------------------- */

#define SHARE_NORMAL 15
#define SHARE_ROUNDS 20
#define GREEDY_DEPTH 16
#define GREEDY_ID 99

/* One call at a time, SHARE_ROUNDS of them, each saying who calls. */
static void normal_caller(void *arg) {
        int id = (int)(intptr_t)arg, back;
        for (int k = 0; k < SHARE_ROUNDS; k++) {
                CHECK_EQ(ipcf_call("svc.share", &id, sizeof(id), &back, sizeof(back), 20000, NULL),
                         sizeof(int));
                CHECK_EQ(back, id);
        }
}

/* GREEDY_DEPTH calls outstanding all the time, SHARE_ROUNDS + GREEDY_DEPTH - 1
 * in all (one per round, then the rest once the rounds are over). */
static void greedy_caller(void *arg) {
        (void)arg;
        int id = GREEDY_ID, back[GREEDY_DEPTH];
        ipcf_pending p[GREEDY_DEPTH];
        int total = SHARE_ROUNDS + GREEDY_DEPTH - 1, started = 0, done = 0;
        for (; started < GREEDY_DEPTH; started++)
                CHECK_OK(ipcf_call_start("svc.share", &id, sizeof(id), &back[started],
                                         sizeof(int), 20000, &p[started]));
        while (done < total) {
                int s = done % GREEDY_DEPTH;
                CHECK_EQ(ipcf_call_wait(&p[s], 20000, NULL), sizeof(int));
                CHECK_EQ(back[s], GREEDY_ID);
                done++;
                if (started < total) {
                        CHECK_OK(ipcf_call_start("svc.share", &id, sizeof(id), &back[s],
                                                 sizeof(int), 20000, &p[s]));
                        started++;
                }
        }
}

/* Serve whatever comes until every child in pids has exited. */
static void serve_until_gone(int svc, const pid_t *pids, int n) {
        int alive = n;
        bool gone[64] = { false };
        while (alive) {
                ipcf_call_req req;
                int id;
                ssize_t r = ipcf_service_next(svc, &id, sizeof(id), 50, &req);
                if (r == sizeof(int))
                        CHECK_OK(ipcf_service_reply(svc, &req, &id, sizeof(id), 5000));
                else
                        CHECK_EQ(r, -ETIMEDOUT);
                for (int i = 0; i < n; i++) {
                        int st;
                        if (!gone[i] && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                                gone[i] = true;
                                alive--;
                        }
                }
        }
}

/* Sixteen callers, one of them with 16 calls outstanding: once each has a
 * request queued, the next 16 requests taken come from 16 different callers
 * — the greedy one gets one turn a round, the 15 others theirs. */
TEST_TIMEOUT(greedy_caller_gets_one_turn_per_round, 120) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.share", NULL));
        pid_t pids[SHARE_NORMAL + 1];
        pids[0] = test_fork(greedy_caller, NULL);
        for (int i = 0; i < SHARE_NORMAL; i++)
                pids[i + 1] = test_fork(normal_caller, (void *)(intptr_t)i);
        for (int round = 0; round < SHARE_ROUNDS; round++) {
                test_wait_queued("svc.share", SHARE_NORMAL + 1, 10000);
                ipcf_call_req req[SHARE_NORMAL + 1];
                int id[SHARE_NORMAL + 1], greedy = 0;
                bool seen[SHARE_NORMAL] = { false };
                for (int k = 0; k < SHARE_NORMAL + 1; k++) {
                        CHECK_EQ(ipcf_service_next(svc, &id[k], sizeof(int), 5000, &req[k]),
                                 sizeof(int));
                        if (id[k] == GREEDY_ID) {
                                greedy++;
                                continue;
                        }
                        CHECK(id[k] >= 0 && id[k] < SHARE_NORMAL && !seen[id[k]]);
                        seen[id[k]] = true;
                }
                CHECK_EQ(greedy, 1);
                for (int k = 0; k < SHARE_NORMAL + 1; k++)
                        CHECK_OK(ipcf_service_reply(svc, &req[k], &id[k], sizeof(int), 5000));
        }
        serve_until_gone(svc, pids, SHARE_NORMAL + 1);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* ---- the busy mark ------------------------------------------------------ */

#define BUSY_CALLERS 20
#define BUSY_MAX_ROUNDS 50

/* The pipe the callers wait on at the end: the parent holds the write end. */
static int busy_hold[2] = { -1, -1 };
/* The CPU the callers pin themselves to, or -1 (set before they fork). */
static int busy_caller_cpu = -1;

/* Calls until an answer says stop (the negated value minus one), then stays
 * (with its channel) until the parent has looked. */
static void busy_caller(void *arg) {
        int id = (int)(intptr_t)arg, back;
        close(busy_hold[1]);
        if (busy_caller_cpu >= 0)
                test_pin(busy_caller_cpu);
        for (int k = 0;; k++) {
                int v = id + k;
                CHECK_EQ(ipcf_call("svc.busy", &v, sizeof(v), &back, sizeof(back), 20000, NULL),
                         sizeof(int));
                if (back == -v - 1)
                        break;
                CHECK_EQ(back, v);
        }
        char c;
        CHECK_EQ(read(busy_hold[0], &c, 1), 0);
}

struct taken {
        struct call_hdr h;
        int id;
};

static ssize_t take_req(void *arg, const void *data, size_t len) {
        struct taken *t = arg;
        CHECK_EQ(len, sizeof(t->h) + sizeof(int));
        memcpy(&t->h, data, sizeof(t->h));
        memcpy(&t->id, (const uint8_t *)data + sizeof(t->h), sizeof(int));
        return (ssize_t)len;
}

/* How many of b's channels show the service's side as `state`. */
static unsigned channels_marked(inbox *b, uint32_t state) {
        unsigned n = 0;
        pthread_mutex_lock(&b->lock);
        for (unsigned i = 0; i < b->n; i++)
                n += atomic_load(&b->chans[i].p->my_run->blocked) == state;
        pthread_mutex_unlock(&b->lock);
        return n;
}

/* Take one request and answer it with what it says (or to stop). */
static void take_and_answer(inbox *b, bool stop) {
        struct taken t;
        port *p = NULL;
        CHECK_EQ(inbox_take(b, take_req, &t, 5000, &p), sizeof(t.h) + sizeof(int));
        CHECK_EQ(t.h.kind, CALL_REQ);
        struct call_hdr h = { .id = t.h.id, .kind = CALL_REPLY };
        int v = stop ? -t.id - 1 : t.id;
        CHECK_EQ(port_write2(p, &h, sizeof(h), &v, sizeof(v), 5000), sizeof(h) + sizeof(v));
        handle_put(p);
}

/* Twenty callers with a request each queued, taken one after the other in
 * rounds: within a round (one window of the inbox) twenty senders mark the
 * service's side of every channel CALL_RUN_BUSY, and every caller still gets
 * its answers. Once they have gone quiet, a window with no sender lifts the
 * mark once its span of windows has not seen busy_many senders (takes that
 * find nothing end the windows: at most 8 + 1 of 30 ms). Twenty
 * senders raise the mark wherever they run only from busy_many senders
 * (BUSY_MANY): here it is twenty, so that where the kernel puts the callers
 * does not matter (the next case is about that). */
TEST_TIMEOUT(many_callers_mark_the_service_busy, 120) {
        test_daemon_start(&d, NULL, NULL);
        inbox b;
        CHECK_OK(inbox_init(&b, "svc.busy", NULL, CTL_ROLE_CALL));
        int *hold = busy_hold;
        CHECK_OK(pipe(hold));
        pid_t pids[BUSY_CALLERS];
        for (int i = 0; i < BUSY_CALLERS; i++)
                pids[i] = test_fork(busy_caller, (void *)(intptr_t)(i * 1000));
        close(hold[0]);
        /* Rounds: once every caller has a request queued, take them all,
         * until the mark is up (then one last round tells them to stop). One
         * window lasts the whole test here (a loaded machine may stop us
         * longer than 10 ms within a round). */
        b.window_len_ns = 600000000000ull;
        b.busy_many = BUSY_CALLERS;
        bool busy = false;
        for (int k = 0; k < BUSY_MAX_ROUNDS && !busy; k++) {
                test_wait_queued("svc.busy", BUSY_CALLERS, 10000);
                for (int i = 0; i < BUSY_CALLERS; i++)
                        take_and_answer(&b, false);
                busy = b.busy;
        }
        CHECK(busy);
        CHECK_EQ(channels_marked(&b, CALL_RUN_BUSY), BUSY_CALLERS);
        test_wait_queued("svc.busy", BUSY_CALLERS, 10000);
        for (int i = 0; i < BUSY_CALLERS; i++)
                take_and_answer(&b, true);
        /* Every caller has its last answer and waits on the pipe. Windows
         * of 1 ms: the second take that finds nothing ends a window without
         * a sender. */
        b.window_len_ns = 1000000;
        struct taken t;
        port *p = NULL;
        for (int k = 0; k < 20 && b.busy; k++)
                CHECK_EQ(inbox_take(&b, take_req, &t, 30, &p), -ETIMEDOUT);
        CHECK(!b.busy);
        CHECK_EQ(channels_marked(&b, 0), BUSY_CALLERS);
        close(hold[1]);
        for (int i = 0; i < BUSY_CALLERS; i++)
                CHECK_EQ(test_wait(pids[i], 10000), 0);
        inbox_close_all(&b, "done");
        inbox_deinit(&b);
        test_daemon_stop(&d);
}

/* One round: wait until every caller has a request queued, take and answer
 * them all. */
static void busy_round(inbox *b, bool stop) {
        test_wait_queued("svc.busy", BUSY_CALLERS, 10000);
        for (int i = 0; i < BUSY_CALLERS; i++)
                take_and_answer(b, stop);
}

/* Twenty callers pinned to one CPU, the service on another: twenty senders in a
 * window, none on the service's CPU, fewer than busy_many (BUSY_MANY, 48):
 * no mark (with it, 16 such callers lost a third of their calls/s). With
 * the service moved to the callers' CPU, a window of them raises it. Fails
 * before the mark looked at where senders ran (16 senders raised it). */
TEST_TIMEOUT(callers_on_another_cpu_leave_the_mark_down, 120) {
        /* The first two CPUs we may run on: the callers' and the service's. */
        int cpus[2];
        if (!test_two_cpus(cpus))
                return;
        test_daemon_start(&d, NULL, NULL);
        inbox b;
        CHECK_OK(inbox_init(&b, "svc.busy", NULL, CTL_ROLE_CALL));
        CHECK_EQ(b.busy_on, 16u);
        CHECK_EQ(b.busy_many, 48u);
        CHECK(BUSY_CALLERS >= b.busy_on && BUSY_CALLERS < b.busy_many);
        test_pin(cpus[1]);
        int *hold = busy_hold;
        CHECK_OK(pipe(hold));
        busy_caller_cpu = cpus[0];
        pid_t pids[BUSY_CALLERS];
        for (int i = 0; i < BUSY_CALLERS; i++)
                pids[i] = test_fork(busy_caller, (void *)(intptr_t)(i * 1000));
        close(hold[0]);
        /* One window for the whole of each part (as above). */
        b.window_len_ns = 600000000000ull;
        for (int k = 0; k < 5; k++) {
                busy_round(&b, false);
                CHECK(!b.busy);
        }
        CHECK_EQ(channels_marked(&b, CALL_RUN_BUSY), 0u);
        /* The service on CPU 0 with them, and a new window from the next
         * take on. */
        test_pin(cpus[0]);
        b.window_ns = 0;
        bool busy = false;
        for (int k = 0; k < BUSY_MAX_ROUNDS && !busy; k++) {
                busy_round(&b, false);
                busy = b.busy;
        }
        CHECK(busy);
        busy_round(&b, true);
        close(hold[1]);
        for (int i = 0; i < BUSY_CALLERS; i++)
                CHECK_EQ(test_wait(pids[i], 10000), 0);
        inbox_close_all(&b, "done");
        inbox_deinit(&b);
        test_daemon_stop(&d);
}

/* inbox_init sets every field, whatever the memory held: an inbox on a
 * stack of garbage (0xa5 everywhere: a true reg_dead, closed, busy...) is
 * empty, open and takes nothing. */
TEST(inbox_init_sets_every_field) {
        inbox b;
        memset(&b, 0xa5, sizeof(b));
        CHECK_OK(inbox_init(&b, NULL, NULL, CTL_ROLE_CALL));
        CHECK(!b.reg_dead && !b.closed && !b.busy && !b.poll_mode);
        CHECK(b.n == 0 && b.sleepers == 0 && b.chans == NULL && !b.has_reg);
        struct taken t;
        port *p = NULL;
        CHECK_EQ(inbox_take(&b, take_req, &t, 0, &p), -EAGAIN);
        inbox_deinit(&b);
}

/* ---- a caller killed mid-call ------------------------------------------ */

static void victim_caller(void *arg) {
        (void)arg;
        char reply[8];
        ipcf_call("svc.victim", "v", 1, reply, sizeof(reply), 20000, NULL);
        _exit(3); /* never: killed while waiting */
}

static void echo_caller(void *arg) {
        int id = (int)(intptr_t)arg, back;
        for (int k = 0; k < 50; k++) {
                CHECK_EQ(ipcf_call("svc.victim", &id, sizeof(id), &back, sizeof(back), 20000, NULL),
                         sizeof(int));
                CHECK_EQ(back, id);
        }
}

/* A caller SIGKILLed while the service holds its request: the late answer
 * fails with -EPIPE or -ECONNRESET (or goes into the dead caller's queue
 * before the end is seen), the request shows as cancelled once the death is
 * known, and the other callers are served as before. */
TEST_TIMEOUT(caller_killed_mid_call, 60) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.victim", NULL));
        pid_t victim = test_fork(victim_caller, NULL);
        char buf[8];
        ipcf_call_req vreq;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 10000, &vreq), 1);
        CHECK_EQ(vreq.from.pid, victim);
        CHECK_OK(kill(victim, SIGKILL));
        int st;
        CHECK_EQ(waitpid(victim, &st, 0), victim);
        CHECK(WIFSIGNALED(st));
        pid_t others[3];
        for (int i = 0; i < 3; i++)
                others[i] = test_fork(echo_caller, (void *)(intptr_t)i);
        /* The death reaches the channel (the daemon ends it): cancelled. */
        uint64_t t0 = test_now_ms();
        while (ipcf_service_cancelled(svc, &vreq) != 1 && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(ipcf_service_cancelled(svc, &vreq), 1);
        int r = ipcf_service_reply(svc, &vreq, "late", 4, 1000);
        CHECK(r == -EPIPE || r == -ECONNRESET);
        serve_until_gone(svc, others, 3);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* ---- the service's registration number reused ---------------------------- */

static void user_name_caller(void *arg) {
        (void)arg;
        int h = CHECK_OK(ipcf_alloc("svc.reuse.user", NULL, 10000, NULL));
        CHECK_OK(ipcf_dealloc(h, NULL));
}

/* The service's registration is the library's, yet reachable by number: the
 * user detaches every number but the service's (the registration with them),
 * and its own ipcf_register is given that number. The service never acts on
 * what holds the number now: a caller of the user's name reaches the user
 * (the service's takes do not eat its request), and ipcf_dealloc of the
 * service leaves the user's registration and name alone. The service's own
 * name went with its registration (the daemon sees its socket close): its
 * callers are refused, and the service says nothing can come (-EHOSTDOWN). */
TEST_TIMEOUT(service_never_touches_what_holds_its_registration_number, 60) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.reuse", NULL));
        for (int h = 0; h < 64; h++)
                if (h != svc)
                        (void)ipcf_detach(h);
        int ureg = CHECK_OK(ipcf_register("svc.reuse.user", NULL));
        CHECK(ureg < 64);
        test_wait_for_name_gone("svc.reuse", 10000);
        CHECK(ipcf_call("svc.reuse", "x", 1, NULL, 0, 2000, NULL) < 0);

        /* (a) */
        pid_t a = test_fork(user_name_caller, NULL);
        char buf[8];
        ipcf_call_req req;
        for (int i = 0; i < 5; i++)
                CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 100, &req), -EHOSTDOWN);
        ipcf_request rq;
        CHECK_OK(ipcf_request_next(ureg, 10000, &rq));
        int p = CHECK_OK(ipcf_request_accept(ureg, &rq));
        CHECK_OK(test_wait(a, 20000));
        CHECK_OK(ipcf_dealloc(p, NULL));

        /* (b) */
        CHECK_OK(ipcf_dealloc(svc, "bye"));
        CHECK_EQ(ipcf_request_next(ureg, 0, &rq), -EAGAIN); /* open, and nothing waits */
        pid_t b = test_fork(user_name_caller, NULL);
        CHECK_OK(ipcf_request_next(ureg, 10000, &rq));
        p = CHECK_OK(ipcf_request_accept(ureg, &rq));
        CHECK_OK(test_wait(b, 20000));
        CHECK_OK(ipcf_dealloc(p, NULL));
        CHECK_OK(ipcf_dealloc(ureg, NULL));
        test_daemon_stop(&d);
}

/* ---- several worker threads --------------------------------------------- */

#define WORKERS 4
#define WORK_CALLERS 8
#define WORK_CALLS 100

struct worker {
        int svc;
        atomic_bool *stop;
        unsigned served;
};

/* Take, hold each request 200 µs (so requests pile up), answer. */
static void *worker_main(void *arg) {
        struct worker *w = arg;
        while (!atomic_load(w->stop)) {
                ipcf_call_req req;
                int v[2];
                ssize_t r = ipcf_service_next(w->svc, v, sizeof(v), 50, &req);
                if (r == -ETIMEDOUT)
                        continue;
                CHECK_EQ(r, sizeof(v));
                usleep(200);
                v[1] += 1;
                CHECK_OK(ipcf_service_reply(w->svc, &req, v, sizeof(v), 5000));
                w->served++;
        }
        return NULL;
}

static void work_caller(void *arg) {
        int id = (int)(intptr_t)arg;
        for (int k = 0; k < WORK_CALLS; k++) {
                int v[2] = { id, k }, back[2];
                CHECK_EQ(ipcf_call("svc.workers", v, sizeof(v), back, sizeof(back), 20000, NULL),
                         sizeof(back));
                CHECK(back[0] == id && back[1] == k + 1);
        }
}

/* Four threads take from one service: every call of eight callers is
 * answered exactly once with its own reply, and the work is shared (a
 * taker that leaves with a request while more wait wakes another). */
TEST_TIMEOUT(worker_threads_share_one_queue, 120) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.workers", NULL));
        /* The callers are forked first (no fork once threads run), held at
         * a gate until the workers are there. */
        pid_t pids[WORK_CALLERS];
        int gate[WORK_CALLERS];
        for (int i = 0; i < WORK_CALLERS; i++)
                pids[i] = test_fork_gated(work_caller, (void *)(intptr_t)i, &gate[i]);
        atomic_bool stop = false;
        struct worker w[WORKERS];
        pthread_t th[WORKERS];
        for (int i = 0; i < WORKERS; i++) {
                w[i] = (struct worker){ .svc = svc, .stop = &stop };
                CHECK_OK(-pthread_create(&th[i], NULL, worker_main, &w[i]));
        }
        for (int i = 0; i < WORK_CALLERS; i++)
                test_gate_open(&gate[i]);
        for (int i = 0; i < WORK_CALLERS; i++)
                CHECK_EQ(test_wait(pids[i], 60000), 0);
        atomic_store(&stop, true);
        unsigned total = 0, busy = 0;
        for (int i = 0; i < WORKERS; i++) {
                CHECK_OK(-pthread_join(th[i], NULL));
                total += w[i].served;
                busy += w[i].served > 0;
        }
        CHECK_EQ(total, WORK_CALLERS * WORK_CALLS);
        CHECK(busy >= 2);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}
