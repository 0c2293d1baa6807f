/*
 * test-service-answer.c — a request is answered at most once: a second
 * ipcf_service_reply or ipcf_service_fail of one request (or a copy of it)
 * fails -EALREADY and nothing more goes out, whoever answers it: one thread
 * or several at once, requests of one channel pipelined and answered out of
 * order (more of them than the service's account of one channel holds), a
 * hostile caller that repeats ids, leaves gaps or floods requests the
 * service never answers, a worker process made by fork(). Callers that count
 * the frames coming back (a raw call channel, as a hostile caller would
 * make it) see one answer per request taken.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipcf.h"
#include "lib/core/lib.h"
#include "lib/models/callwire.h"
#include "support/test.h"

static test_daemon d;

/* ---- a raw caller: its own call channel, its own ids ------------------- */

/* What a raw caller saw come back, in shared memory (the test reads it). */
struct seen {
        _Atomic unsigned frames;      /* answers read */
        _Atomic unsigned per_id[64];  /* of them, for ids 1..63 */
        _Atomic unsigned other_ids;   /* for other ids */
        _Atomic unsigned fails;       /* CALL_FAIL among them */
        _Atomic int done;             /* the caller has sent all it sends */
        _Atomic bool hold;            /* the caller reads nothing until it is false */
};
static struct seen *SEEN;

static struct seen *seen_new(void) {
        struct seen *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(s != MAP_FAILED);
        memset(s, 0, sizeof(*s));
        return s;
}

/* A call channel to name as ipcf_call makes one (role CALL). */
static int raw_channel(const char *name) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = IPCF_CALL_MAX + sizeof(struct call_hdr);
        int ph = -ENOENT;
        for (uint64_t t0 = test_now_ms(); ph == -ENOENT && test_now_ms() - t0 < 5000;)
                if ((ph = alloc_role(name, &q, CTL_ROLE_CALL, 5000, NULL)) == -ENOENT)
                        usleep(2000); /* not registered yet */
        return CHECK_OK(ph);
}

static void raw_send(int ph, uint64_t id) {
        uint8_t f[sizeof(struct call_hdr) + 1];
        struct call_hdr h = { .id = id, .kind = CALL_REQ };
        memcpy(f, &h, sizeof(h));
        f[sizeof(h)] = 'q';
        CHECK_EQ(ipcf_write(ph, f, sizeof(f), 10000), sizeof(f));
}

/* Read answers until the channel is quiet for quiet_ms after the test
 * said stop (SEEN->done == 2), counting them. */
static void raw_count(int ph, unsigned quiet_ms) {
        static uint8_t f[sizeof(struct call_hdr) + IPCF_CALL_MAX];
        while (atomic_load(&SEEN->hold))
                usleep(1000);
        uint64_t last = test_now_ms();
        for (;;) {
                ssize_t n = ipcf_read(ph, f, sizeof(f), 20);
                if (n == -ETIMEDOUT || n == -EAGAIN) {
                        if (atomic_load(&SEEN->done) == 2 && test_now_ms() - last >= quiet_ms)
                                return;
                        continue;
                }
                CHECK_OK(n);
                CHECK(n >= (ssize_t)sizeof(struct call_hdr));
                struct call_hdr h;
                memcpy(&h, f, sizeof(h));
                CHECK(h.kind == CALL_REPLY || h.kind == CALL_FAIL);
                if (h.id < 64)
                        atomic_fetch_add(&SEEN->per_id[h.id], 1);
                else
                        atomic_fetch_add(&SEEN->other_ids, 1);
                atomic_fetch_add(&SEEN->fails, h.kind == CALL_FAIL);
                atomic_fetch_add(&SEEN->frames, 1);
                last = test_now_ms();
        }
}

/* The ids a raw caller sends (ids[0]: how many; 0 ends the list). */
static uint64_t RAW_IDS[1 + 20100];

static void raw_caller(void *arg) {
        int ph = raw_channel((const char *)arg);
        for (uint64_t i = 1; i <= RAW_IDS[0]; i++)
                raw_send(ph, RAW_IDS[i]);
        atomic_store(&SEEN->done, 1);
        raw_count(ph, 300);
}

/* A raw caller of name sending ids 1..n (a fresh count of what it sees;
 * with hold, it reads nothing until SEEN->hold is cleared). */
static pid_t raw_start(const char *name, unsigned n, bool hold) {
        SEEN = seen_new();
        atomic_store(&SEEN->hold, hold);
        RAW_IDS[0] = n;
        for (unsigned i = 1; i <= n; i++)
                RAW_IDS[i] = i;
        return test_fork(raw_caller, (void *)name);
}

/* Wait until the test tells the raw caller to stop counting, then for it. */
static void raw_finish(pid_t c) {
        atomic_store(&SEEN->done, 2);
        CHECK_EQ(test_wait(c, 20000), 0);
}

/* ---- one thread answers twice ------------------------------------------ */

static void three_calls(void *arg) {
        (void)arg;
        char back[16];
        int code = 0;
        CHECK_EQ(ipcf_call("ans.twice", "a", 1, back, sizeof(back), 5000, NULL), 5);
        CHECK_MEM(back, "first", 5);
        CHECK_ERR(ipcf_call("ans.twice", "b", 1, back, sizeof(back), 5000, &code), -EREMOTEIO);
        CHECK_EQ(code, 11);
        CHECK_EQ(ipcf_call("ans.twice", "c", 1, back, sizeof(back), 5000, NULL), 2);
        CHECK_MEM(back, "ok", 2);
}

/* Reply twice, fail twice, reply then fail, fail then reply, a copy of the
 * request: the first answer goes, every later one fails -EALREADY (nothing
 * written); ipcf_service_cancelled on an answered request says -EALREADY
 * too. An id the service never handed out (0) is -EINVAL. */
TEST(a_second_answer_fails_ealready) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("ans.twice", NULL));
        pid_t c = test_fork(three_calls, NULL);
        char buf[16];
        ipcf_call_req req, copy;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 1);
        CHECK_EQ(ipcf_service_cancelled(svc, &req), 0);
        copy = req;
        CHECK_OK(ipcf_service_reply(svc, &req, "first", 5, 1000));
        CHECK_ERR(ipcf_service_reply(svc, &req, "second", 6, 1000), -EALREADY);
        CHECK_ERR(ipcf_service_fail(svc, &req, 9, 1000), -EALREADY);
        CHECK_ERR(ipcf_service_reply(svc, &copy, "copy", 4, 1000), -EALREADY);
        CHECK_ERR(ipcf_service_cancelled(svc, &req), -EALREADY);
        /* argument errors come first, and do not answer */
        CHECK_ERR(ipcf_service_reply(svc, &req, NULL, 3, 1000), -EINVAL);

        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 1);
        static char big[IPCF_CALL_MAX + 1];
        CHECK_ERR(ipcf_service_reply(svc, &req, big, sizeof(big), 1000), -EMSGSIZE); /* not an answer */
        CHECK_OK(ipcf_service_fail(svc, &req, 11, 1000));
        CHECK_ERR(ipcf_service_fail(svc, &req, 12, 1000), -EALREADY);
        CHECK_ERR(ipcf_service_reply(svc, &req, "late", 4, 1000), -EALREADY);

        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 1);
        ipcf_call_req zero = req;
        zero.id = 0;
        CHECK_ERR(ipcf_service_reply(svc, &zero, "z", 1, 1000), -EINVAL);
        CHECK_ERR(ipcf_service_cancelled(svc, &zero), -EINVAL);
        CHECK_OK(ipcf_service_reply(svc, &req, "ok", 2, 1000));
        CHECK_ERR(ipcf_service_fail(svc, &req, 1, 1000), -EALREADY);
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* The same seen from the caller's side of the wire: ids 1..40 sent on a
 * raw channel, each answered three times (reply, fail, reply) by the
 * service: exactly one frame per id comes back, the first (a reply). */
TEST(one_frame_per_request_reaches_the_caller) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("ans.frames", NULL));
        pid_t c = raw_start("ans.frames", 40, false);
        char buf[16];
        for (unsigned i = 0; i < 40; i++) {
                ipcf_call_req req;
                CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &req), 1);
                CHECK_EQ(req.id, i + 1);
                CHECK_OK(ipcf_service_reply(svc, &req, "r", 1, 1000));
                CHECK_ERR(ipcf_service_fail(svc, &req, 5, 1000), -EALREADY);
                CHECK_ERR(ipcf_service_reply(svc, &req, "again", 5, 1000), -EALREADY);
        }
        usleep(100 * 1000);
        raw_finish(c);
        CHECK_EQ(atomic_load(&SEEN->frames), 40);
        CHECK_EQ(atomic_load(&SEEN->fails), 0);
        for (unsigned i = 1; i <= 40; i++)
                CHECK_EQ(atomic_load(&SEEN->per_id[i]), 1);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* An answer that finds the caller's queue full writes nothing (-EAGAIN,
 * -ETIMEDOUT): the request is still owed, and answered again once there is
 * room; then a second answer fails. The caller reads one frame per id. */
TEST_TIMEOUT(an_answer_that_found_no_room_leaves_the_request_owed, 60) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("ans.full", NULL));
        pid_t c = raw_start("ans.full", 60, true);
        static char big[IPCF_CALL_MAX];
        memset(big, 'b', sizeof(big));
        char buf[16];
        ipcf_call_req reqs[60];
        for (int i = 0; i < 60; i++)
                CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &reqs[i]), 1);
        int full = -1, r = 0;
        for (int i = 0; i < 60 && full < 0; i++) {
                r = ipcf_service_reply(svc, &reqs[i], big, sizeof(big), i % 2 ? 0 : 20);
                if (r < 0)
                        full = i;
        }
        CHECK(full > 0); /* the caller's queue filled up */
        CHECK(r == -EAGAIN || r == -ETIMEDOUT);
        CHECK_ERR(ipcf_service_reply(svc, &reqs[full], big, sizeof(big), 0), -EAGAIN); /* still no room, still owed */
        CHECK_ERR(ipcf_service_reply(svc, &reqs[full - 1], "x", 1, 0), -EALREADY);
        atomic_store(&SEEN->hold, false); /* the caller reads */
        CHECK_OK(ipcf_service_fail(svc, &reqs[full], 8, 5000));
        CHECK_ERR(ipcf_service_fail(svc, &reqs[full], 8, 5000), -EALREADY);
        usleep(100 * 1000);
        raw_finish(c);
        CHECK_EQ(atomic_load(&SEEN->frames), full + 1);
        CHECK_EQ(atomic_load(&SEEN->fails), 1);
        for (int i = 1; i <= full + 1; i++)
                CHECK_EQ(atomic_load(&SEEN->per_id[i]), 1);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* ---- several threads answer one request at once ------------------------- */

#define RACERS 6
#define RACE_ROUNDS 60

static int RSVC;
static ipcf_call_req RREQ;
static pthread_barrier_t race_start, race_end;
static _Atomic unsigned race_ok, race_already, race_other;

static void *racer(void *arg) {
        unsigned me = (unsigned)(uintptr_t)arg;
        for (int k = 0; k < RACE_ROUNDS; k++) {
                pthread_barrier_wait(&race_start);
                ipcf_call_req req = RREQ; /* each its own copy */
                int r = me % 2 ? ipcf_service_fail(RSVC, &req, 3, 1000) : ipcf_service_reply(RSVC, &req, "x", 1, 1000);
                atomic_fetch_add(r == 0 ? &race_ok : r == -EALREADY ? &race_already : &race_other, 1);
                pthread_barrier_wait(&race_end);
        }
        return NULL;
}

/* RACERS threads answer each request at the same moment, RACE_ROUNDS
 * requests: exactly one answer of each succeeds, the others fail -EALREADY,
 * and the caller reads exactly one frame per request. */
TEST_TIMEOUT(threads_answering_one_request_at_once_one_wins, 120) {
        test_daemon_start(&d, NULL, NULL);
        RSVC = CHECK_OK(ipcf_service("ans.race", NULL));
        pid_t c = raw_start("ans.race", RACE_ROUNDS, false); /* before the threads */
        pthread_barrier_init(&race_start, NULL, RACERS + 1);
        pthread_barrier_init(&race_end, NULL, RACERS + 1);
        pthread_t th[RACERS];
        for (int i = 0; i < RACERS; i++)
                CHECK_OK(-pthread_create(&th[i], NULL, racer, (void *)(uintptr_t)i));
        char buf[16];
        for (int k = 0; k < RACE_ROUNDS; k++) {
                CHECK_EQ(ipcf_service_next(RSVC, buf, sizeof(buf), 5000, &RREQ), 1);
                pthread_barrier_wait(&race_start);
                pthread_barrier_wait(&race_end);
                CHECK_EQ(atomic_load(&race_ok), k + 1);
        }
        for (int i = 0; i < RACERS; i++)
                CHECK_OK(-pthread_join(th[i], NULL));
        CHECK_EQ(atomic_load(&race_ok), RACE_ROUNDS);
        CHECK_EQ(atomic_load(&race_already), RACE_ROUNDS * (RACERS - 1));
        CHECK_EQ(atomic_load(&race_other), 0);
        usleep(100 * 1000);
        raw_finish(c);
        CHECK_EQ(atomic_load(&SEEN->frames), RACE_ROUNDS);
        for (unsigned i = 1; i <= RACE_ROUNDS; i++)
                CHECK_EQ(atomic_load(&SEEN->per_id[i]), 1);
        CHECK_OK(ipcf_dealloc(RSVC, NULL));
        test_daemon_stop(&d);
}

/* ---- pipelined requests of one channel ---------------------------------- */

static void pipelined_caller(void *arg) {
        int n = (int)(intptr_t)arg;
        ipcf_pending p[200];
        int v[200], back[200];
        for (int k = 0; k < n; k++) {
                v[k] = k;
                CHECK_OK(ipcf_call_start("ans.pipe", &v[k], sizeof(int), &back[k], sizeof(int), 20000, &p[k]));
        }
        for (int k = 0; k < n; k++) {
                CHECK_EQ(ipcf_call_wait(&p[k], 20000, NULL), sizeof(int));
                CHECK_EQ(back[k], k + 1000);
        }
}

/* Take n pipelined requests of one caller, answer them in a shuffled
 * order (each answer must go); return them in reqs (by the caller's k). */
static void take_and_answer_shuffled(int svc, int n, ipcf_call_req *reqs) {
        for (int i = 0; i < n; i++) {
                int k;
                ipcf_call_req req;
                CHECK_EQ(ipcf_service_next(svc, &k, sizeof(k), 10000, &req), sizeof(int));
                CHECK(k >= 0 && k < n);
                reqs[k] = req;
        }
        for (int i = 0; i < n; i++) {
                int k = (i * 37 + 11) % n; /* a permutation: 37 is prime to n */
                int back = k + 1000;
                CHECK_OK(ipcf_service_reply(svc, &reqs[k], &back, sizeof(back), 5000));
        }
}

/* A caller with n calls in flight at once, all taken before any is
 * answered, answered out of order (each first answer must go); then second
 * answers (reply or fail, newest first) of the requests from the
 * checked-th on: each fails -EALREADY. */
static void pipelined(int n, int checked) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("ans.pipe", NULL));
        pid_t c = test_fork(pipelined_caller, (void *)(intptr_t)n);
        ipcf_call_req reqs[200];
        take_and_answer_shuffled(svc, n, reqs);
        for (int k = n - 1; k >= checked; k--)
                CHECK_ERR(k % 2 ? ipcf_service_fail(svc, &reqs[k], 1, 1000) : ipcf_service_reply(svc, &reqs[k], "x", 1, 1000),
                          -EALREADY);
        CHECK_EQ(test_wait(c, 20000), 0);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* 48 pipelined calls of one caller: every second answer fails. */
TEST_TIMEOUT(pipelined_requests_answered_out_of_order_each_once, 60) {
        pipelined(48, 0);
}

/* 150 calls in flight, more than the service keeps account of for one
 * channel (64): no first answer is refused (the oldest requests are
 * forgotten first, and an answer to one forgotten goes out unchecked);
 * second answers of the 64 newest fail -EALREADY. */
TEST_TIMEOUT(more_requests_in_flight_than_the_account_holds_are_all_answered, 60) {
        pipelined(150, 150 - 64);
}

/* ---- a hostile caller's ids --------------------------------------------- */

/* A caller that repeats an id, leaves huge gaps and goes backwards: the
 * service took each request, and may answer each once — an id sent three
 * times is three requests, answered three times (the caller reads three
 * frames of it), a fourth answer fails; every other id is answered once. */
TEST(a_caller_repeating_an_id_gets_one_answer_per_request_sent) {
        test_daemon_start(&d, NULL, NULL);
        SEEN = seen_new();
        int svc = CHECK_OK(ipcf_service("ans.hostile", NULL));
        const uint64_t ids[] = { 7, 7, UINT64_C(1) << 63, 5, UINT64_MAX, 3, 7 };
        RAW_IDS[0] = 7;
        memcpy(&RAW_IDS[1], ids, sizeof(ids));
        pid_t c = test_fork(raw_caller, "ans.hostile");
        ipcf_call_req reqs[7];
        char buf[16];
        for (int i = 0; i < 7; i++) {
                CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 5000, &reqs[i]), 1);
                CHECK_EQ(reqs[i].id, ids[i]);
        }
        for (int i = 6; i >= 0; i--) /* answered newest first */
                CHECK_OK(ipcf_service_reply(svc, &reqs[i], "r", 1, 1000));
        for (int i = 0; i < 7; i++)
                CHECK_ERR(ipcf_service_fail(svc, &reqs[i], 1, 1000), -EALREADY);
        usleep(100 * 1000);
        raw_finish(c);
        CHECK_EQ(atomic_load(&SEEN->per_id[7]), 3);
        CHECK_EQ(atomic_load(&SEEN->per_id[5]), 1);
        CHECK_EQ(atomic_load(&SEEN->per_id[3]), 1);
        CHECK_EQ(atomic_load(&SEEN->other_ids), 2);
        CHECK_EQ(atomic_load(&SEEN->frames), 7);
        CHECK_EQ(atomic_load(&SEEN->fails), 0);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* The service's heap in use (bytes; 0 where the allocator does not say,
 * as under a sanitizer's). */
static long heap_used(void) {
        return (long)mallinfo2().uordblks;
}

#define FLOOD 20000

/* A caller floods requests the service takes and never answers (ids
 * 1000..20999), then sends one more (id 50000): the service's heap does
 * not grow with the flood, the new request is answered once (a second
 * answer fails), and an answer to one of the flood's oldest (forgotten)
 * still goes out: a legitimate late answer is never refused. */
TEST_TIMEOUT(a_flood_of_requests_never_answered_costs_nothing, 120) {
        test_daemon_start(&d, NULL, NULL);
        SEEN = seen_new();
        int svc = CHECK_OK(ipcf_service("ans.flood", NULL));
        RAW_IDS[0] = FLOOD + 1;
        for (unsigned i = 1; i <= FLOOD; i++)
                RAW_IDS[i] = 999 + i;
        RAW_IDS[FLOOD + 1] = 50000;
        pid_t c = test_fork(raw_caller, "ans.flood");
        char buf[16];
        ipcf_call_req first, req;
        long before = 0;
        for (unsigned i = 0; i < FLOOD; i++) {
                CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 10000, &req), 1);
                CHECK_EQ(req.id, 1000 + i);
                if (i == 0)
                        first = req;
                if (i == 1000)
                        before = heap_used();
        }
        CHECK(heap_used() - before < 4096);
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 10000, &req), 1);
        CHECK_EQ(req.id, 50000);
        CHECK_OK(ipcf_service_reply(svc, &req, "new", 3, 1000));
        CHECK_ERR(ipcf_service_reply(svc, &req, "new", 3, 1000), -EALREADY);
        CHECK_OK(ipcf_service_reply(svc, &first, "old", 3, 1000));
        usleep(100 * 1000);
        raw_finish(c);
        CHECK_EQ(atomic_load(&SEEN->other_ids), 2);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        test_daemon_stop(&d);
}

/* ---- worker processes --------------------------------------------------- */

static void two_calls(void *arg) {
        char back[16];
        CHECK_EQ(ipcf_call((const char *)arg, "x", 1, back, sizeof(back), 10000, NULL), 1);
        int code = 0;
        CHECK_ERR(ipcf_call((const char *)arg, "y", 1, back, sizeof(back), 10000, &code), -EREMOTEIO);
        CHECK_EQ(code, 4);
}

static int WSVC;

/* Fail req with code 4 (two_calls' second call), then answer it again
 * both ways: -EALREADY. */
static void fail_once(ipcf_call_req *req) {
        CHECK_OK(ipcf_service_fail(WSVC, req, 4, 1000));
        CHECK_ERR(ipcf_service_fail(WSVC, req, 4, 1000), -EALREADY);
        CHECK_ERR(ipcf_service_reply(WSVC, req, "y", 1, 1000), -EALREADY);
}

/* A worker: takes both requests of a channel that came after the fork,
 * answers each once; second answers fail there too. */
static void answering_worker(void *arg) {
        (void)arg;
        char buf[16];
        ipcf_call_req req;
        CHECK_EQ(ipcf_service_next(WSVC, buf, sizeof(buf), 10000, &req), 1);
        CHECK_OK(ipcf_service_reply(WSVC, &req, buf, 1, 1000));
        CHECK_ERR(ipcf_service_reply(WSVC, &req, buf, 1, 1000), -EALREADY);
        CHECK_EQ(ipcf_service_next(WSVC, buf, sizeof(buf), 10000, &req), 1);
        fail_once(&req);
}

/* A worker process made by fork() answers what it took, once. */
TEST_TIMEOUT(a_worker_process_answers_what_it_took_once, 60) {
        test_daemon_start(&d, NULL, NULL);
        WSVC = CHECK_OK(ipcf_service("ans.worker", NULL));
        pid_t w = test_fork(answering_worker, NULL);
        pid_t c = test_fork(two_calls, "ans.worker");
        CHECK_EQ(test_wait(c, 20000), 0);
        CHECK_EQ(test_wait(w, 20000), 0);
        CHECK_OK(ipcf_dealloc(WSVC, NULL));
        test_daemon_stop(&d);
}

static ipcf_call_req XCOPY;

/* The worker a channel is handed over to: it takes the caller's second
 * request (taking the channel over) and answers it once; the copy it
 * holds of the first, which its maker took before the fork and answered,
 * is not its to answer: -EALREADY, nothing goes out. */
static void takeover_worker(void *arg) {
        (void)arg;
        char buf[16];
        ipcf_call_req req;
        CHECK_EQ(ipcf_service_next(WSVC, buf, sizeof(buf), 10000, &req), 1);
        CHECK_ERR(ipcf_service_reply(WSVC, &XCOPY, "dup", 3, 1000), -EALREADY);
        fail_once(&req);
        CHECK_ERR(ipcf_service_reply(WSVC, &XCOPY, "dup", 3, 1000), -EALREADY);
}

TEST_TIMEOUT(a_channel_handed_over_carries_no_answer_of_its_old_server, 60) {
        test_daemon_start(&d, NULL, NULL);
        WSVC = CHECK_OK(ipcf_service("ans.handed", NULL));
        pid_t c = test_fork(two_calls, "ans.handed");
        char buf[16];
        CHECK_EQ(ipcf_service_next(WSVC, buf, sizeof(buf), 10000, &XCOPY), 1);
        int gate;
        pid_t w = test_fork_gated(takeover_worker, NULL, &gate); /* holds a copy of XCOPY */
        CHECK_OK(ipcf_service_reply(WSVC, &XCOPY, "x", 1, 1000));
        CHECK_OK(ipcf_detach(WSVC)); /* the channel goes to the worker */
        test_gate_open(&gate);
        CHECK_EQ(test_wait(c, 20000), 0);
        CHECK_EQ(test_wait(w, 20000), 0);
        test_daemon_stop(&d);
}
