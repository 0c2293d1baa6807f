/*
 * test-hostile-campaign.c — the hostile-peer campaign (issue 15): for each
 * object an honest process shares with another — a flow, a call channel seen
 * from the caller and from the service, a mailbox channel — a hostile
 * process holds the other side and, seeded, rewrites the shared structures
 * (ring control blocks, records, data, end records, run state, cancel slots)
 * and tampers with the wake-up descriptors (flags, contents, shutdowns),
 * mixed with ordinary traffic, while the honest side runs reads, writes,
 * polls and calls with timeouts.
 *
 * What must hold, every round: each honest operation returns within its
 * timeout plus CAMPAIGN_SLACK_MS, with a result from the documented set (an
 * error on that object only); the honest process never crashes (it is this
 * test); the daemon stays alive and keeps serving other clients (a listing
 * and an honest mailbox round trip after each round); honest mailbox messages
 * are all delivered, once.
 *
 * Output: one line per object kind — rounds, seeds, honest operations,
 * outcomes by error, hangs (= 0) and crashes (= 0). IPCF_CAMPAIGN_SEED sets
 * the first seed (default 1); IPCF_TEST_QUICK=1 runs fewer rounds;
 * IPCF_CAMPAIGN_DEBUG=1 prints every operation that ended its object.
 */
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ring.h"
#include "ipcf.h"
#include "support/hostile.h"
#include "support/names.h"
#include "support/test.h"

/* How late an honest call may return after its timeout: a bound for a
 * loaded 2-CPU machine (test-group-hostile's campaign saw a call that waits
 * for nobody take 1.6 s once in 1.4 million, two busy loops sharing the 2
 * CPUs), far below what a hang would show (for ever). */
#define CAMPAIGN_SLACK_MS 3000
#define ROUND_MS 400

static test_daemon d;

static unsigned rounds(void) {
        const char *q = getenv("IPCF_TEST_QUICK");
        return q && *q == '1' ? 4 : 12;
}

static uint64_t first_seed(void) {
        const char *s = getenv("IPCF_CAMPAIGN_SEED");
        return s ? strtoull(s, NULL, 0) : 1;
}

/* ---- the honest side's book-keeping ---------------------------------------- */

enum { OUT_OK, OUT_EAGAIN, OUT_ETIMEDOUT, OUT_EPROTO, OUT_EPIPE, OUT_ECONNRESET, OUT_OTHER, OUT_N };
static const char *const out_name[OUT_N] = { "ok", "EAGAIN", "ETIMEDOUT", "EPROTO", "EPIPE",
                                             "ECONNRESET", "other" };

typedef struct tally {
        const char *object;
        unsigned rounds;
        uint64_t seed_lo, seed_hi, seed;
        uint64_t ops, out[OUT_N], other[160];  /* other: by errno */
        bool ended;                             /* the object ended (EPROTO/EPIPE/ECONNRESET) */
        unsigned hangs, crashes;
        uint64_t worst_late_ms;
} tally;

/* Record one honest operation: r its result, allowed the extra errors it may
 * return besides ok/EAGAIN/ETIMEDOUT/EPROTO/EPIPE/ECONNRESET (0-terminated). */
static void honest_done(tally *t, const char *what, long long r, int timeout_ms, uint64_t t0,
                        const int *allowed) {
        uint64_t el = test_now_ms() - t0;
        t->ops++;
        if (el > (uint64_t)timeout_ms) {
                uint64_t late = el - (uint64_t)timeout_ms;
                if (late > t->worst_late_ms)
                        t->worst_late_ms = late;
                if (late > CAMPAIGN_SLACK_MS) {
                        t->hangs++;
                        test_fail(__FILE__, __LINE__, "%s seed %llu: %s took %llu ms (timeout %d)",
                                  t->object, (unsigned long long)t->seed, what,
                                  (unsigned long long)el, timeout_ms);
                }
        }
        int o;
        switch (r >= 0 ? 0 : (int)-r) {
        case 0: o = OUT_OK; break;
        case EAGAIN: o = OUT_EAGAIN; break;
        case ETIMEDOUT: o = OUT_ETIMEDOUT; break;
        case EPROTO: o = OUT_EPROTO; break;
        case EPIPE: o = OUT_EPIPE; break;
        case ECONNRESET: o = OUT_ECONNRESET; break;
        default:
                o = OUT_OTHER;
                for (const int *a = allowed; a && *a; a++)
                        if (-r == *a) {
                                if (-r < 160)
                                        t->other[-r]++;
                                goto counted;
                        }
                test_fail(__FILE__, __LINE__, "%s seed %llu: %s returned %lld (%s)", t->object,
                          (unsigned long long)t->seed, what, r, strerror((int)-r));
        }
counted:
        t->out[o]++;
        if (getenv("IPCF_CAMPAIGN_DEBUG") && o >= OUT_EPROTO)
                fprintf(stderr, "%s: %s -> %lld\n", t->object, what, r);
        if (o == OUT_EPROTO || o == OUT_EPIPE || o == OUT_ECONNRESET)
                t->ended = true;
}

#define HONEST(t, what, timeout_ms, allowed, expr)                                \
        ({                                                                        \
                uint64_t _h0 = test_now_ms();                                     \
                long long _hr = (long long)(expr);                                \
                honest_done((t), (what), _hr, (timeout_ms), _h0, (allowed));      \
                _hr;                                                              \
        })

static void tally_print(const tally *t) {
        printf("  %-22s %u rounds, seeds %llu..%llu, %llu honest ops:", t->object, t->rounds,
               (unsigned long long)t->seed_lo, (unsigned long long)t->seed_hi,
               (unsigned long long)t->ops);
        for (int o = 0; o < OUT_OTHER; o++)
                if (t->out[o])
                        printf(" %s %llu", out_name[o], (unsigned long long)t->out[o]);
        for (int e = 0; e < 160; e++)
                if (t->other[e])
                        printf(" %s %llu", strerrorname_np(e), (unsigned long long)t->other[e]);
        printf("; worst lateness %llu ms; hangs %u, crashes %u\n",
               (unsigned long long)t->worst_late_ms, t->hangs, t->crashes);
        fflush(stdout);
}

/* A random timeout for an honest call: 0, short, or a little longer. */
static int pick_timeout(uint64_t *rng) {
        static const int ts[] = { 0, 0, 1, 5, 20, 50, 100, 200 };
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        return ts[*rng % 8];
}

static uint64_t next_rand(uint64_t *rng) {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        return *rng * 0x2545F4914F6CDD1Dull;
}

/* ---- the daemon keeps serving ------------------------------------------------ */

static void other_client(void *arg) {
        (void)arg;
        ipcf_listing *l = NULL;
        CHECK_OK(ipcf_list(&l));
        ipcf_free(l);
        /* An honest mailbox round trip through the broker. */
        int tx = CHECK_OK(ipcf_mbox_open("camp.other", IPCF_MBOX_SEND, NULL, 3000));
        int rx = CHECK_OK(ipcf_mbox_open("camp.other", IPCF_MBOX_RECV, NULL, 3000));
        CHECK_EQ(ipcf_mbox_send(tx, "ping", 4, 3000, NULL), 4);
        char buf[8];
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 3000, NULL), 4);
        ipcf_dealloc(tx, NULL);
        ipcf_dealloc(rx, NULL);
}

static void daemon_serves(tally *t) {
        if (kill(d.pid, 0) < 0) {
                t->crashes++;
                test_fail(__FILE__, __LINE__, "%s seed %llu: the daemon died", t->object,
                          (unsigned long long)t->seed);
        }
        pid_t p = test_fork(other_client, NULL);
        int st = test_wait(p, 10000);
        if (st != 0)
                test_fail(__FILE__, __LINE__, "%s seed %llu: another client was not served (%d)",
                          t->object, (unsigned long long)t->seed, st);
}

static void campaign_start(void) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("camp.other", NULL));
}

/* ---- the hostile side --------------------------------------------------------- */

typedef struct hostile_arg {
        uint64_t seed;
        char name[64];
        ipcf_qos qos;
} hostile_arg;

static void hostile_fault(int sig) {
        (void)sig;
        _exit(0);
}

/* Run the mutator over the flow whose memory and descriptors appeared since
 * the snapshots (the hostile holds side `side`), interleaved with
 * traffic(h, r) steps on its handle h, until the parent kills us. */
static _Noreturn void hostile_run(const hostile_arg *a, int h, int side, const fdset *fds_before,
                                  const mapset *maps_before, void (*traffic)(int h, uint64_t r)) {
        mutator m;
        int fds[64];
        int n = fdset_new_since(fds_before, fds, 64);
        size_t len;
        void *mem = mapset_new_since(maps_before, "ipcf-flow", &len);
        if (!mem)
                _exit(3);
        mutator_init(&m, a->seed, mem, len, side, fds, n);
        /* Its own library may unmap a channel it broke (a service drops
         * it): a fault of the hostile's own making ends it quietly. */
        struct sigaction sa = { .sa_handler = hostile_fault };
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        /* How hostile this round is: from a step in 2 to a step in 32,
         * after a quiet start of up to half a round (traffic only). */
        unsigned every = 1u << (mutator_rand(&m) % 5 + 1);
        uint64_t quiet = test_now_ms() + mutator_rand(&m) % (ROUND_MS / 2);
        uint64_t end = test_now_ms() + ROUND_MS * 4;
        while (test_now_ms() < end) {
                uint64_t r = mutator_rand(&m);
                if (r % every == 0 && test_now_ms() >= quiet)
                        mutator_step(&m);
                else if (traffic)
                        traffic(h, r);
                if ((r >> 32) % 8 == 0)
                        usleep((useconds_t)((r >> 40) % 300));
        }
        _exit(0);
}

/* End a round: the hostile is killed (it may be stuck in its own traps). */
static void hostile_stop(pid_t h) {
        kill(h, SIGKILL);
        test_wait(h, 5000);
}

/* ---- object 1: a flow ------------------------------------------------------------ */

static void flow_traffic(int port, uint64_t r) {
        static char buf[512];
        if (r & 1)
                (void)ipcf_write(port, buf, (size_t)(r >> 8) % sizeof(buf), 0);
        else
                (void)ipcf_read(port, buf, sizeof(buf), 0);
}

static void flow_hostile(void *arg) {
        const hostile_arg *a = arg;
        fdset fb;
        mapset mb;
        CHECK_OK(ipcf_connect());
        int reg = CHECK_OK(ipcf_register(a->name, NULL));
        fdset_snapshot(&fb);
        mapset_snapshot(&mb, "ipcf-flow");
        int port = ipcf_accept(reg, 5000, NULL);
        if (port < 0)
                _exit(2);
        hostile_run(a, port, 1, &fb, &mb, flow_traffic);
}

/* A qos for the round: each capacity, mode and full policy comes up. */
static ipcf_qos round_qos(uint64_t *rng) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        uint64_t r = next_rand(rng);
        q.capacity = (uint8_t)(r % 3);
        q.mode = q.capacity == IPCF_CAPACITY_ZERO ? IPCF_MODE_MESSAGE : (uint8_t)((r >> 4) % 2);
        q.full = (uint8_t)((r >> 8) % 3);
        q.max_bytes = q.capacity == IPCF_CAPACITY_UNBOUNDED ? 1u << 20 : 4096u << ((r >> 12) % 4);
        q.max_msg_size = 512;
        q.max_msgs = q.capacity == IPCF_CAPACITY_BOUNDED ? (uint32_t)((r >> 16) % 4) : 0;
        q.cache_msgs = q.full == IPCF_FULL_CACHE ? (uint32_t)((r >> 20) % 3) : 0;
        q.spin_us = (r >> 24) % 2 ? 10 : 0;
        return q;
}

static const int flow_extra[] = { EMSGSIZE, ENOBUFS, 0 };

/* One honest operation on a flow port. */
static void flow_honest_op(tally *t, int port, uint64_t *rng) {
        char buf[600] = { 0 };
        int to = pick_timeout(rng);
        uint64_t r = next_rand(rng);
        switch (r % 9) {
        case 0: case 1:
                HONEST(t, "write", to, flow_extra, ipcf_write(port, buf, (r >> 8) % 513, to));
                break;
        case 2: case 3:
                HONEST(t, "read", to, flow_extra, ipcf_read(port, buf, sizeof(buf), to));
                break;
        case 4: {
                uint64_t t0 = test_now_ms();
                int fd = ipcf_fd(port);
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = fd < 0 ? fd : poll(&p, 1, to);
                honest_done(t, "poll(ipcf_fd)", k < 0 ? -errno : 0, to, t0, flow_extra);
                HONEST(t, "read after poll", 0, flow_extra, ipcf_read(port, buf, sizeof(buf), 0));
                break;
        }
        case 5: {
                uint64_t t0 = test_now_ms();
                int fd = ipcf_fd_send(port);
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = fd < 0 ? fd : poll(&p, 1, to);
                honest_done(t, "poll(ipcf_fd_send)", k < 0 ? -errno : 0, to, t0, flow_extra);
                HONEST(t, "write after poll", 0, flow_extra, ipcf_write(port, buf, 16, 0));
                break;
        }
        case 6:
                HONEST(t, "next_size", to, flow_extra, ipcf_next_size(port, to));
                break;
        case 7: {
                void *p;
                static const int extra[] = { EMSGSIZE, ENOBUFS, EOPNOTSUPP, 0 };
                long long k = HONEST(t, "reserve", to, extra, ipcf_reserve(port, 64, to, &p));
                if (k == 0) {
                        memset(p, 0x5A, 64);
                        CHECK_OK(ipcf_commit(port, 64));
                }
                break;
        }
        default: {
                const void *p;
                long long k = HONEST(t, "peek", to, flow_extra, ipcf_peek(port, to, &p));
                if (k >= 0)
                        CHECK_OK(ipcf_release(port));
                break;
        }
        }
}

static void round_begin(tally *t, uint64_t base, unsigned i, hostile_arg *a, const char *prefix) {
        memset(a, 0, sizeof(*a));
        a->seed = base + i;
        t->seed = a->seed;
        t->seed_lo = base;
        t->seed_hi = a->seed;
        snprintf(a->name, sizeof(a->name), "%s.%u", prefix, i);
}

TEST_TIMEOUT(campaign_flow, 300) {
        campaign_start();
        tally t = { .object = "flow" };
        uint64_t base = first_seed();
        for (unsigned i = 0; i < rounds(); i++) {
                hostile_arg a;
                round_begin(&t, base, i, &a, "camp.flow");
                uint64_t rng = a.seed * 7919 + 1;
                a.qos = round_qos(&rng);
                pid_t h = test_fork(flow_hostile, &a);
                test_wait_for_name(a.name, 5000);
                int port = ipcf_alloc(a.name, &a.qos, 5000, NULL);
                if (port < 0) {
                        hostile_stop(h);
                        test_fail(__FILE__, __LINE__, "seed %llu: alloc %d",
                                  (unsigned long long)a.seed, port);
                }
                /* Until the round is over, or a little after the flow ended. */
                uint64_t end = test_now_ms() + ROUND_MS;
                t.ended = false;
                for (int after = 0; test_now_ms() < end && after < 20; after += t.ended)
                        flow_honest_op(&t, port, &rng);
                hostile_stop(h);
                /* The hostile is gone: every call still comes back in time. */
                for (int k = 0; k < 20; k++)
                        flow_honest_op(&t, port, &rng);
                ipcf_dealloc(port, "round over");
                daemon_serves(&t);
                t.rounds++;
        }
        tally_print(&t);
        test_daemon_stop(&d);
}

/* ---- object 2: a call channel, the caller honest ----------------------------------- */

static void service_traffic(int svc, uint64_t r) {
        char buf[600];
        ipcf_call_req req;
        ssize_t n = ipcf_service_next(svc, buf, sizeof(buf), 0, &req);
        if (n < 0)
                return;
        if (r % 5 == 0)
                (void)ipcf_service_fail(svc, &req, (int)(r >> 8), 0);
        else
                (void)ipcf_service_reply(svc, &req, buf, (size_t)((r >> 8) % 600), 0);
}

static void service_hostile(void *arg) {
        const hostile_arg *a = arg;
        fdset fb;
        mapset mb;
        CHECK_OK(ipcf_connect());
        fdset_snapshot(&fb);
        mapset_snapshot(&mb, "ipcf-flow");
        int svc = CHECK_OK(ipcf_service(a->name, NULL));
        /* Serve until the caller's channel exists, then attack it. */
        uint64_t give_up = test_now_ms() + 5000;
        while (!mapset_new_since(&mb, "ipcf-flow", NULL) && test_now_ms() < give_up) {
                service_traffic(svc, 1);
                usleep(200);
        }
        /* The service is side 1 of its channels (it accepted them). */
        hostile_run(a, svc, 1, &fb, &mb, service_traffic);
}

static const int call_extra[] = { EREMOTEIO, EMSGSIZE, ECANCELED, ENOENT, ECONNREFUSED, 0 };

static void caller_honest_op(tally *t, const char *svc, uint64_t *rng) {
        char req[256] = { 0 }, reply[600];
        int to = pick_timeout(rng);
        if (to == 0)
                to = 1; /* a call always waits */
        uint64_t r = next_rand(rng);
        if (r % 3) {
                int code = 0;
                HONEST(t, "call", to, call_extra,
                       ipcf_call(svc, req, (r >> 8) % sizeof(req), reply, sizeof(reply), to, &code));
                return;
        }
        ipcf_pending pc;
        long long k = HONEST(t, "call_start", to, call_extra,
                             ipcf_call_start(svc, req, 8, reply, sizeof(reply), to, &pc));
        if (k < 0)
                return;
        int to2 = pick_timeout(rng);
        k = HONEST(t, "call_wait", to2, call_extra, ipcf_call_wait(&pc, to2, NULL));
        if (k == -EAGAIN || k == -ETIMEDOUT)
                CHECK_OK(ipcf_call_cancel(&pc));
}

TEST_TIMEOUT(campaign_call_channel_honest_caller, 300) {
        campaign_start();
        tally t = { .object = "call (honest caller)" };
        uint64_t base = first_seed() + 1000;
        for (unsigned i = 0; i < rounds(); i++) {
                hostile_arg a;
                round_begin(&t, base, i, &a, "camp.svc");
                uint64_t rng = a.seed * 7919 + 1;
                pid_t h = test_fork(service_hostile, &a);
                test_wait_for_name(a.name, 5000);
                uint64_t end = test_now_ms() + ROUND_MS;
                t.ended = false;
                for (int after = 0; test_now_ms() < end && after < 20; after += t.ended)
                        caller_honest_op(&t, a.name, &rng);
                hostile_stop(h);
                for (int k = 0; k < 10; k++)
                        caller_honest_op(&t, a.name, &rng);
                daemon_serves(&t);
                t.rounds++;
        }
        tally_print(&t);
        test_daemon_stop(&d);
}

/* ---- object 3: a call channel, the service honest ---------------------------------- */

static void caller_traffic(int unused, uint64_t r) {
        (void)unused;
        /* static: a reply may come after we stopped waiting for it */
        static char req[64], reply[64];
        ipcf_pending pc;
        if (ipcf_call_start("camp.honest", req, (size_t)(r >> 8) % sizeof(req), reply,
                            sizeof(reply), 1, &pc) == 0)
                (void)ipcf_call_cancel(&pc);
}

static void caller_hostile(void *arg) {
        const hostile_arg *a = arg;
        fdset fb;
        mapset mb;
        char buf[64];
        CHECK_OK(ipcf_connect());
        fdset_snapshot(&fb);
        mapset_snapshot(&mb, "ipcf-flow");
        if (ipcf_call("camp.honest", "hi", 2, buf, sizeof(buf), 5000, NULL) < 0)
                _exit(2);
        /* The caller is side 0 of its channel (it allocated it). */
        hostile_run(a, -1, 0, &fb, &mb, caller_traffic);
}

/* An honest caller beside the hostile one: its calls must all be answered. */
static void other_caller(void *arg) {
        (void)arg;
        char buf[64];
        for (int i = 0; i < 5; i++)
                CHECK_EQ(ipcf_call("camp.honest", "ok", 2, buf, sizeof(buf), 5000, NULL), 2);
}

static void service_honest_op(tally *t, int svc, uint64_t *rng) {
        static const int extra[] = { EMSGSIZE, ECANCELED, 0 };
        char buf[600];
        ipcf_call_req req;
        int to = pick_timeout(rng);
        long long n = HONEST(t, "service_next", to, extra,
                             ipcf_service_next(svc, buf, sizeof(buf), to, &req));
        if (n < 0)
                return;
        int to2 = pick_timeout(rng);
        bool honest_caller = n == 2 && !memcmp(buf, "ok", 2);
        if (!honest_caller && next_rand(rng) % 4 == 0)
                HONEST(t, "service_fail", to2, extra, ipcf_service_fail(svc, &req, 7, to2));
        else
                HONEST(t, "service_reply", to2, extra,
                       ipcf_service_reply(svc, &req, buf, (size_t)n, to2));
        (void)ipcf_service_cancelled(svc, &req);
}

TEST_TIMEOUT(campaign_call_channel_honest_service, 300) {
        campaign_start();
        tally t = { .object = "call (honest service)" };
        uint64_t base = first_seed() + 2000;
        int svc = CHECK_OK(ipcf_service("camp.honest", NULL));
        for (unsigned i = 0; i < rounds(); i++) {
                hostile_arg a;
                round_begin(&t, base, i, &a, "camp.caller");
                uint64_t rng = a.seed * 7919 + 1;
                pid_t h = test_fork(caller_hostile, &a);
                pid_t o = test_fork(other_caller, NULL);
                uint64_t end = test_now_ms() + ROUND_MS;
                while (test_now_ms() < end)
                        service_honest_op(&t, svc, &rng);
                hostile_stop(h);
                /* The honest caller is still served, the hostile one forgotten. */
                end = test_now_ms() + 10000;
                int status = 0;
                pid_t w;
                while ((w = waitpid(o, &status, WNOHANG)) == 0 && test_now_ms() < end)
                        service_honest_op(&t, svc, &rng);
                if (w == 0) {
                        kill(o, SIGKILL);
                        waitpid(o, &status, 0);
                        test_fail(__FILE__, __LINE__, "seed %llu: the honest caller was not served",
                                  (unsigned long long)a.seed);
                }
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                for (int k = 0; k < 10; k++)
                        service_honest_op(&t, svc, &rng);
                daemon_serves(&t);
                t.rounds++;
        }
        ipcf_dealloc(svc, NULL);
        tally_print(&t);
        test_daemon_stop(&d);
}

/* ---- object 4: mailbox channels (the daemon is the other end) ----------------------- */

static void mbox_send_traffic(int h, uint64_t r) {
        char buf[256];
        memset(buf, 'x', sizeof(buf));
        (void)ipcf_mbox_send(h, buf, (size_t)(r >> 8) % sizeof(buf), 0, NULL);
}

static void mbox_recv_traffic(int h, uint64_t r) {
        char buf[256];
        (void)r;
        (void)ipcf_mbox_recv(h, buf, sizeof(buf), 0, NULL);
}

/* A sender (even seeds) or a receiver (odd seeds) that attacks its channel
 * to the daemon. */
static void mbox_hostile(void *arg) {
        const hostile_arg *a = arg;
        fdset fb;
        mapset mb;
        CHECK_OK(ipcf_connect());
        fdset_snapshot(&fb);
        mapset_snapshot(&mb, "ipcf-flow");
        bool recv = a->seed & 1;
        int h = ipcf_mbox_open(a->name, recv ? IPCF_MBOX_RECV : IPCF_MBOX_SEND, NULL, 5000);
        if (h < 0)
                _exit(2);
        /* The client is side 0 of a broker flow. */
        hostile_run(a, h, 0, &fb, &mb, recv ? mbox_recv_traffic : mbox_send_traffic);
}

/* An honest message: "H" and its number. */
static bool honest_msg(const char *buf, ssize_t n, uint32_t *ret_seq) {
        if (n != 5 || buf[0] != 'H')
                return false;
        memcpy(ret_seq, buf + 1, 4);
        return true;
}

TEST_TIMEOUT(campaign_mailbox_channel, 300) {
        campaign_start();
        tally t = { .object = "mailbox channel" };
        uint64_t base = first_seed() + 3000;
        static const int extra[] = { EMSGSIZE, 0 };
        for (unsigned i = 0; i < rounds(); i++) {
                hostile_arg a;
                round_begin(&t, base, i, &a, "camp.box");
                uint64_t rng = a.seed * 7919 + 1;
                CHECK_OK(ipcf_mbox_create(a.name, NULL));
                int tx = CHECK_OK(ipcf_mbox_open(a.name, IPCF_MBOX_SEND, NULL, 5000));
                int rx = CHECK_OK(ipcf_mbox_open(a.name, IPCF_MBOX_RECV, NULL, 5000));
                pid_t h = test_fork(mbox_hostile, &a);
                static uint8_t seen[1u << 16];
                memset(seen, 0, sizeof(seen));
                uint32_t sent = 0, got = 0;
                char buf[300];
                uint64_t end = test_now_ms() + ROUND_MS;
                while (test_now_ms() < end) {
                        int to = pick_timeout(&rng);
                        if (next_rand(&rng) % 2 && sent < sizeof(seen)) {
                                char m[5] = { 'H' };
                                memcpy(m + 1, &sent, 4);
                                if (HONEST(&t, "mbox_send", to, extra,
                                           ipcf_mbox_send(tx, m, sizeof(m), to, NULL)) == 5)
                                        sent++;
                        } else {
                                ssize_t n = HONEST(&t, "mbox_recv", to, extra,
                                                   ipcf_mbox_recv(rx, buf, sizeof(buf), to, NULL));
                                uint32_t q;
                                if (honest_msg(buf, n, &q)) {
                                        CHECK(q < sent && !seen[q]); /* never twice */
                                        seen[q] = 1;
                                        got++;
                                }
                        }
                }
                hostile_stop(h);
                /* Honest messages a hostile receiver did not take all arrive. */
                end = test_now_ms() + 5000;
                while (got < sent && test_now_ms() < end) {
                        ssize_t n = HONEST(&t, "mbox_recv", 100, extra,
                                           ipcf_mbox_recv(rx, buf, sizeof(buf), 100, NULL));
                        uint32_t q;
                        if (honest_msg(buf, n, &q)) {
                                CHECK(q < sent && !seen[q]);
                                seen[q] = 1;
                                got++;
                        } else if (n == -ETIMEDOUT && (a.seed & 1)) {
                                break; /* the rest went to the hostile receiver */
                        }
                }
                if (!(a.seed & 1))
                        CHECK_EQ(got, sent); /* nothing an honest sender sent is lost */
                ipcf_dealloc(tx, NULL);
                ipcf_dealloc(rx, NULL);
                CHECK_OK(ipcf_mbox_destroy(a.name));
                daemon_serves(&t);
                t.rounds++;
        }
        tally_print(&t);
        test_daemon_stop(&d);
}
