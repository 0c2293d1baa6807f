/*
 * test-inbox-takers.c — several threads taking from one service inbox
 * (src/lib/models/inbox.c, "Who is awake"), against the real daemon with
 * callers in real processes: while one taker sleeps in the inbox and another
 * answers, the callers see the service awake (no futex sleep for their
 * answer), and calls still complete; the service shows asleep once every
 * taker sleeps, and a taker that took a request and stopped taking no longer
 * counts after OUT_STALE_NS; closing the inbox wakes every sleeping taker;
 * two workers answer every call of many callers with random gaps within its
 * deadline (no lost wake-up as the last taker goes to sleep).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "ipcf.h"
#include "common/util.h"
#include "lib/core/lib.h"
#include "lib/models/callwire.h"
#include "lib/models/inbox.h"
#include "support/test.h"

static test_daemon d;

static bool quick(void) {
        const char *q = getenv("IPCF_TEST_QUICK");
        return q && *q && *q != '0';
}

/* ---- taking and answering by hand (the inbox itself) --------------------- */

struct taken {
        struct call_hdr h;
        int v;
};

static ssize_t take_req(void *arg, const void *data, size_t len) {
        struct taken *t = arg;
        if (len != sizeof(t->h) + sizeof(int))
                return -EPROTO;
        memcpy(&t->h, data, sizeof(t->h));
        memcpy(&t->v, (const uint8_t *)data + sizeof(t->h), sizeof(int));
        return (ssize_t)len;
}

/* Answer a taken request with its value plus one; let go of the channel. */
static void answer(port *p, const struct taken *t) {
        struct call_hdr h = { .id = t->h.id, .kind = CALL_REPLY };
        int v = t->v + 1;
        CHECK_EQ(port_write2(p, &h, sizeof(h), &v, sizeof(v), 5000), sizeof(h) + sizeof(v));
        handle_put(p);
}

/* b's counts, read under its lock. */
static unsigned sleepers_of(inbox *b) {
        pthread_mutex_lock(&b->lock);
        unsigned n = b->sleepers;
        pthread_mutex_unlock(&b->lock);
        return n;
}

static unsigned answering_of(inbox *b) {
        pthread_mutex_lock(&b->lock);
        unsigned n = b->n_out;
        pthread_mutex_unlock(&b->lock);
        return n;
}

/* Wait (at most 10 s) until n takers sleep in b. */
static void wait_sleepers(inbox *b, unsigned n) {
        uint64_t t0 = test_now_ms();
        while (sleepers_of(b) != n) {
                CHECK(test_now_ms() - t0 < 10000);
                usleep(1000);
        }
}

/* What the service's side of b's only channel shows its caller. */
static void marks_of(inbox *b, uint32_t *blocked, uint32_t *waiting) {
        pthread_mutex_lock(&b->lock);
        CHECK_EQ(b->n, 1u);
        *blocked = atomic_load(&b->chans[0].p->my_run->blocked);
        *waiting = atomic_load(&b->chans[0].p->my_run->waiting);
        pthread_mutex_unlock(&b->lock);
}

/* The caller: n calls in a row (value k, answer k + 1), then it keeps its
 * channel until the parent closes the pipe. */
#define PARKED_CALLS 200
static int hold[2] = { -1, -1 };
/* The CPU the caller pins itself to, or -1 (set before it forks). */
static int caller_cpu = -1;

static void caller_in_a_row(void *arg) {
        int n = (int)(intptr_t)arg;
        close(hold[1]);
        if (caller_cpu >= 0)
                test_pin(caller_cpu);
        for (int k = 0; k < n; k++) {
                int back = -1;
                CHECK_EQ(ipcf_call("svc.takers", &k, sizeof(k), &back, sizeof(back), 10000, NULL),
                         sizeof(int));
                CHECK_EQ(back, k + 1);
        }
        char c;
        CHECK_EQ(read(hold[0], &c, 1), 0);
}

struct parked {
        inbox *b;
        int cpu;
        atomic_uint served;
};

/* Who answered the last call (0 A, 1 B), and how often that changed. */
static atomic_int last_taker;
static atomic_uint handovers;

static void answered_by(int who) {
        if (atomic_exchange(&last_taker, who) != who)
                atomic_fetch_add(&handovers, 1);
}

/* A worker that takes with a long wait, answers, and takes again, until the
 * inbox closes. */
static void *parked_taker(void *arg) {
        struct parked *pk = arg;
        test_pin(pk->cpu);
        for (;;) {
                struct taken t;
                port *p = NULL;
                ssize_t r = inbox_take(pk->b, take_req, &t, 20000, &p);
                if (r == -EBADF)
                        break;
                CHECK_EQ(r, sizeof(t.h) + sizeof(int));
                answered_by(1);
                answer(p, &t);
                atomic_fetch_add(&pk->served, 1);
        }
        return NULL;
}

/* Two takers: A holds a caller's request while B sleeps in the inbox. The
 * caller's channel shows the service awake (blocked 0) and not waiting —
 * A answers it — where before a sleeping B marked it asleep (1) and the
 * caller slept on a futex for every answer. Then A answers the rest of the
 * calls while B stays parked, and every call completes exactly once.
 * The caller runs on one CPU, A and B on the other (so A, awake, spins for
 * the next request: a caller on its own CPU would make it sleep too). */
TEST_TIMEOUT(a_sleeping_taker_leaves_the_service_awake_while_another_answers, 120) {
        int cpus[2];
        if (!test_two_cpus(cpus))
                return;
        test_daemon_start(&d, NULL, NULL);
        inbox b;
        CHECK_OK(inbox_init(&b, "svc.takers", NULL, CTL_ROLE_CALL));
        CHECK_OK(pipe(hold));
        caller_cpu = cpus[0];
        pid_t c = test_fork(caller_in_a_row, (void *)(intptr_t)PARKED_CALLS);
        close(hold[0]);
        test_pin(cpus[1]);
        /* A (this thread) takes the first request and holds it. */
        struct taken t;
        port *p = NULL;
        CHECK_EQ(inbox_take(&b, take_req, &t, 10000, &p), sizeof(t.h) + sizeof(int));
        CHECK_EQ(t.v, 0);
        CHECK_EQ(answering_of(&b), 1u);
        /* B comes in, finds nothing and sleeps. */
        struct parked pk = { .b = &b, .cpu = cpus[1] };
        pthread_t tb;
        CHECK_OK(-pthread_create(&tb, NULL, parked_taker, &pk));
        wait_sleepers(&b, 1);
        uint32_t blocked, waiting;
        marks_of(&b, &blocked, &waiting);
        /* A counts as answering for OUT_STALE_NS after its take: if the
         * machine let more pass before B went to sleep, B rightly showed the
         * service asleep (CI, at load 19, took longer than 10 ms here). */
        pthread_mutex_lock(&b.lock);
        uint64_t since = b.n_out ? b.out[0].since : 0;
        pthread_mutex_unlock(&b.lock);
        uint64_t took = now_ns() - since;
        if (since && took < OUT_STALE_NS) {
                CHECK_EQ(blocked, 0u);
                CHECK_EQ(waiting, 0u);
        } else {
                printf("  marks not checked: B went to sleep more than %u ms after A's take\n",
                       OUT_STALE_NS / 1000000u);
        }
        answer(p, &t);
        /* A takes and answers the rest while B sleeps (a request may wake B:
         * then B answers it). */
        unsigned a_served = 1;
        while (a_served + atomic_load(&pk.served) < PARKED_CALLS) {
                ssize_t r = inbox_take(&b, take_req, &t, 100, &p);
                if (r == -ETIMEDOUT)
                        continue;
                CHECK_EQ(r, sizeof(t.h) + sizeof(int));
                answered_by(0);
                answer(p, &t);
                a_served++;
        }
        /* How often the takers alternated is a figure, not an assertion: on
         * a quiet machine A answers nearly every call in a row, but on a
         * loaded one A's spin misses, both takers sleep, and the wake-ups
         * alternate (CI saw 98 handovers in 200 calls). What must hold is
         * asserted above (the marks while B sleeps) and here: every call was
         * answered once, by one of the two. */
        fprintf(stderr, "A answered %u, B %u, the other taker answered next %u times\n", a_served,
                atomic_load(&pk.served), atomic_load(&handovers));
        CHECK_EQ(a_served + atomic_load(&pk.served), (unsigned)PARKED_CALLS);
        close(hold[1]);
        CHECK_EQ(test_wait(c, 10000), 0);
        inbox_close_all(&b, "done");
        CHECK_OK(-pthread_join(tb, NULL));
        inbox_deinit(&b);
        test_daemon_stop(&d);
}

struct sleeper {
        inbox *b;
        int timeout_ms;
        ssize_t r;
};

/* One take of up to timeout_ms; what it took is answered. As a thread: one
 * that never comes back. */
static void *take_once(void *arg) {
        struct sleeper *s = arg;
        struct taken t;
        port *p = NULL;
        s->r = inbox_take(s->b, take_req, &t, s->timeout_ms, &p);
        if (s->r >= 0)
                answer(p, &t);
        return NULL;
}

/* A thread that took a request, answered it and ended counts as answering
 * only for OUT_STALE_NS: two takers that go to sleep after that find it
 * gone and show the service asleep (blocked 1) and waiting; when they leave,
 * nobody sleeps and the service shows awake again (as it always did). */
TEST_TIMEOUT(a_taker_that_stopped_taking_counts_no_longer, 60) {
        test_daemon_start(&d, NULL, NULL);
        inbox b;
        CHECK_OK(inbox_init(&b, "svc.takers", NULL, CTL_ROLE_CALL));
        CHECK_OK(pipe(hold));
        pid_t c = test_fork(caller_in_a_row, (void *)(intptr_t)1);
        close(hold[0]);
        struct sleeper x = { .b = &b, .timeout_ms = 10000 };
        pthread_t tx;
        CHECK_OK(-pthread_create(&tx, NULL, take_once, &x));
        CHECK_OK(-pthread_join(tx, NULL));
        CHECK_EQ(x.r, sizeof(struct call_hdr) + sizeof(int));
        CHECK_EQ(answering_of(&b), 1u);
        usleep(30000); /* > OUT_STALE_NS */
        struct sleeper s[2] = { { .b = &b, .timeout_ms = 1000 }, { .b = &b, .timeout_ms = 1000 } };
        pthread_t ts[2];
        for (int i = 0; i < 2; i++)
                CHECK_OK(-pthread_create(&ts[i], NULL, take_once, &s[i]));
        wait_sleepers(&b, 2);
        uint32_t blocked, waiting;
        marks_of(&b, &blocked, &waiting);
        CHECK_EQ(blocked, 1u);
        CHECK_EQ(waiting, 1u);
        CHECK_EQ(answering_of(&b), 0u);
        for (int i = 0; i < 2; i++) {
                CHECK_OK(-pthread_join(ts[i], NULL));
                CHECK_EQ(s[i].r, -ETIMEDOUT);
        }
        marks_of(&b, &blocked, &waiting);
        CHECK_EQ(blocked, 0u);
        CHECK_EQ(waiting, 0u);
        close(hold[1]);
        CHECK_EQ(test_wait(c, 10000), 0);
        inbox_close_all(&b, "done");
        inbox_deinit(&b);
        test_daemon_stop(&d);
}

/* ---- closing while several takers sleep ---------------------------------- */

#define CLOSE_SLEEPERS 3

static atomic_uint closed_out;

static void *take_until_closed(void *arg) {
        struct sleeper *s = arg;
        struct taken t;
        port *p = NULL;
        s->r = inbox_take(s->b, take_req, &t, s->timeout_ms, &p);
        atomic_fetch_add(&closed_out, 1);
        return NULL;
}

/* Three takers asleep with no time limit when the inbox closes: every one
 * returns -EBADF at once. epoll wakes one sleeper per event and that one
 * drains b->wake, so before it passed the wake-up on, the others slept on
 * (for ever: seen as a hang of two workers at the end of the next case). */
TEST_TIMEOUT(closing_wakes_every_sleeping_taker, 60) {
        inbox b;
        CHECK_OK(inbox_init(&b, NULL, NULL, CTL_ROLE_CALL));
        struct sleeper s[CLOSE_SLEEPERS];
        pthread_t th[CLOSE_SLEEPERS];
        for (int i = 0; i < CLOSE_SLEEPERS; i++) {
                s[i] = (struct sleeper){ .b = &b, .timeout_ms = -1 };
                CHECK_OK(-pthread_create(&th[i], NULL, take_until_closed, &s[i]));
        }
        wait_sleepers(&b, CLOSE_SLEEPERS);
        inbox_close_all(&b, "done");
        uint64_t t0 = test_now_ms();
        while (atomic_load(&closed_out) < CLOSE_SLEEPERS && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(atomic_load(&closed_out), CLOSE_SLEEPERS);
        for (int i = 0; i < CLOSE_SLEEPERS; i++) {
                CHECK_OK(-pthread_join(th[i], NULL));
                CHECK_EQ(s[i].r, -EBADF);
        }
        inbox_deinit(&b);
}

/* ---- two workers, many callers, random gaps (the public API) ------------- */

#define GAP_CALLERS 6
#define CALL_DEADLINE_MS 5000

/* A random gap before the next call, about where the service's takers go
 * from spinning (10 µs) to sleeping: none, a yield, a spin of up to 40 µs,
 * a sleep of up to 300 µs, now and then 2-6 ms (both workers asleep). */
static void random_gap(unsigned *seed) {
        unsigned k = (unsigned)rand_r(seed) % 16;
        if (k < 3)
                return;
        if (k < 5) {
                sched_yield();
        } else if (k < 11) {
                uint64_t until = test_now_ns() + (uint64_t)(rand_r(seed) % 40000);
                while (test_now_ns() < until)
                        ;
        } else if (k < 15) {
                usleep((useconds_t)(rand_r(seed) % 300));
        } else {
                usleep((useconds_t)(2000 + rand_r(seed) % 4000));
        }
}

/* n calls with random gaps, each answered within CALL_DEADLINE_MS (a lost
 * wake-up leaves a call unanswered: -ETIMEDOUT); the slowest is printed. */
static void gap_caller(void *arg) {
        int id = (int)(intptr_t)arg;
        unsigned seed = 0x9e3779b9u * (unsigned)(id + 1), n = quick() ? 300 : 1500;
        uint64_t worst = 0;
        for (unsigned k = 0; k < n; k++) {
                random_gap(&seed);
                int v[2] = { id, (int)k }, back[2] = { -1, -1 };
                uint64_t t0 = test_now_ns();
                CHECK_EQ(ipcf_call("svc.gaps", v, sizeof(v), back, sizeof(back), CALL_DEADLINE_MS, NULL),
                         sizeof(back));
                uint64_t t = test_now_ns() - t0;
                worst = t > worst ? t : worst;
                CHECK(back[0] == id && back[1] == (int)k + 1);
        }
        fprintf(stderr, "caller %d: %u calls, slowest %.3f ms\n", id, n, worst / 1e6);
}

struct gap_worker {
        int svc;
        unsigned served;
};

/* Take with no time limit (a wake-up lost would never be made up for by a
 * timeout), answer, until the service is closed. */
static void *gap_worker_main(void *arg) {
        struct gap_worker *w = arg;
        for (;;) {
                ipcf_call_req req;
                int v[2];
                ssize_t r = ipcf_service_next(w->svc, v, sizeof(v), -1, &req);
                if (r == -EBADF)
                        break;
                CHECK_EQ(r, sizeof(v));
                v[1] += 1;
                CHECK_OK(ipcf_service_reply(w->svc, &req, v, sizeof(v), 5000));
                w->served++;
        }
        return NULL;
}

/* Two workers that wait without a time limit: one caller alone (every gap
 * lets both go to sleep, or catches the last one on its way), then six at
 * once; every call is answered within its deadline. */
TEST_TIMEOUT(two_workers_answer_every_call_in_time, 300) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("svc.gaps", NULL));
        /* The callers are forked first (no fork once threads run), held at
         * a gate until the workers are there. */
        pid_t pids[1 + GAP_CALLERS];
        int gate[1 + GAP_CALLERS];
        for (int i = 0; i < 1 + GAP_CALLERS; i++)
                pids[i] = test_fork_gated(gap_caller, (void *)(intptr_t)i, &gate[i]);
        struct gap_worker w[2] = { { .svc = svc }, { .svc = svc } };
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
                CHECK_OK(-pthread_create(&th[i], NULL, gap_worker_main, &w[i]));
        test_gate_open(&gate[0]);
        CHECK_EQ(test_wait(pids[0], 120000), 0);
        for (int i = 1; i < 1 + GAP_CALLERS; i++)
                test_gate_open(&gate[i]);
        for (int i = 1; i < 1 + GAP_CALLERS; i++)
                CHECK_EQ(test_wait(pids[i], 120000), 0);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        unsigned total = 0;
        for (int i = 0; i < 2; i++) {
                CHECK_OK(-pthread_join(th[i], NULL));
                total += w[i].served;
        }
        fprintf(stderr, "served %u + %u\n", w[0].served, w[1].served);
        CHECK_EQ(total, (quick() ? 300u : 1500u) * (1 + GAP_CALLERS));
        test_daemon_stop(&d);
}
