/*
 * test-io-many-hostile.c — the batch calls (ipcf_write_many, ipcf_read_many)
 * against a hostile or dying peer, played as a tester would play it: side 1
 * of a flow pair (support/flowpair.h) forges what it shares — record headers
 * in the middle of a reader's batch, the reader's position while a writer's
 * batch waits for room, a flood of skipped records, random words anywhere
 * (support/hostile.h's seeded mutator) — or is killed with SIGKILL in
 * mid-batch; signals interrupt the waits; readers slow or fast behind a
 * batch far larger than the queue; the iovec edge cases and the exact
 * outcome of a batch larger than the queue. Every call must come back with a
 * documented outcome (ipcf.h) within its timeout plus HOSTILE_SLACK_MS, a
 * forgery ends the flow with -EPROTO (and only that flow), and nothing
 * written before a peer's death is lost.
 */
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/ring.h"
#include "ipcf.h"
#include "support/flowpair.h"
#include "support/hostile.h"
#include "support/test.h"

/* ---- helpers ------------------------------------------------------------ */

/* The pair under test: side 0 honest, side 1 the hostile (or dying) peer,
 * and the descriptors the pair brought (a forked hostile rings them). */
static int hp0, hp1, pair_fds[64], n_pair_fds;

static void make_pair(const ipcf_qos *q) {
        fdset before;
        fdset_snapshot(&before);
        CHECK_OK(flowpair_make(q, 0, 0, &hp0, &hp1));
        n_pair_fds = fdset_new_since(&before, pair_fds, 64);
}

/* A queue of max_msgs messages of at most 64 bytes. */
static ipcf_qos small_qos(uint32_t max_msgs) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msgs = max_msgs;
        q.max_bytes = 4096;
        q.max_msg_size = 64;
        return q;
}

/* The hostile's view of the flow: its region and layout. */
typedef struct view {
        uint8_t *mem;
        flow_layout l;
} view;

static view hostile_view(void) {
        view v;
        size_t size;
        ipcf_qos q;
        v.mem = flowpair_mem(hp1, &size);
        CHECK(v.mem);
        CHECK_OK(ipcf_qos_get(hp1, &q));
        CHECK_OK(flow_layout_for(&q, &v.l));
        return v;
}

/* Wake whoever waits on the pair, as a peer that changed something does. */
static void ring_all(void) {
        for (int i = 0; i < n_pair_fds; i++)
                hostile_ring(pair_fds[i]);
}

/* msgs[i] points at v[i] = first + i, for i < n. */
static void numbered(int *v, struct iovec *msgs, int n, int first) {
        for (int i = 0; i < n; i++) {
                v[i] = first + i;
                msgs[i] = (struct iovec){ &v[i], sizeof(int) };
        }
}

/* msgs[i] points at v[i] = -1 (capacity one int), for i < n. */
static void read_slots(int *v, struct iovec *msgs, int n) {
        for (int i = 0; i < n; i++) {
                v[i] = -1;
                msgs[i] = (struct iovec){ &v[i], sizeof(int) };
        }
}

/* Read port until it reports its end, each call within timeout_ms; the ints
 * read must be first, first + 1, ... Returns how many were read; *ret_end
 * the error that ended it. */
static int read_run(int port, int first, int timeout_ms, ssize_t *ret_end) {
        int got[16], seen = 0;
        struct iovec in[16];
        for (;;) {
                read_slots(got, in, 16);
                ssize_t n = WITHIN(timeout_ms, ipcf_read_many(port, in, 16, timeout_ms));
                if (n < 0) {
                        *ret_end = n;
                        return seen;
                }
                CHECK(n > 0 && n <= 16);
                for (int i = 0; i < n; i++) {
                        CHECK_EQ(in[i].iov_len, sizeof(int));
                        CHECK_EQ(got[i], first + seen + i);
                }
                seen += (int)n;
        }
}

/* The flow is dead by a protocol error, both ways, and says so. */
static void check_broken(int port) {
        int v[4];
        struct iovec m[4];
        read_slots(v, m, 4);
        CHECK_ERR(ipcf_read_many(port, m, 4, 100), -EPROTO);
        CHECK_ERR(ipcf_read(port, v, sizeof(v), 0), -EPROTO);
        numbered(v, m, 4, 0);
        CHECK_ERR(ipcf_write_many(port, m, 4, 0), -EPROTO);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_PROTOCOL);
}

/* ---- forged records in the middle of a reader's batch -------------------- */

enum forgery {
        LEN_HUGE,        /* a length reaching far past the data area */
        LEN_PAST_MAX,    /* a length over max_msg_size */
        STATE_TAKEN,     /* a state only a rendezvous reader writes */
        FLAGS_UNKNOWN,   /* a flag no producer sets */
        PAD_TO_PAD,      /* a pad to the next lap, whose first record is a pad */
        WITHDRAWN_PAST,  /* a withdrawn record whose length leaves the ring */
        FORGERIES
};

static const char *const forgery_names[] = { "len 2^32 - 1", "len past max", "state taken",
                                             "unknown flags", "pad to a pad", "withdrawn past" };

/* The position of int message k when each int is a record of 32 bytes and
 * one was read before (so the first lap's first record is free to forge). */
static uint64_t int_pos(int k) {
        return (uint64_t)(k + 1) * ring_rec_size(sizeof(int));
}

/* Record k of the ints forged as f. */
static void forge_record(const view *v, int k, enum forgery f) {
        uint64_t pos = int_pos(k), size = v->l.ring_size;
        uint64_t ready = pos << 2 | REC_READY;
        switch (f) {
        case LEN_HUGE: hostile_record(v->mem, &v->l, 1, pos, ready, UINT32_MAX, 0); break;
        case LEN_PAST_MAX: hostile_record(v->mem, &v->l, 1, pos, ready, 65, 0); break;
        case STATE_TAKEN: hostile_record(v->mem, &v->l, 1, pos, pos << 2 | REC_TAKEN, 4, 0); break;
        case FLAGS_UNKNOWN: hostile_record(v->mem, &v->l, 1, pos, ready, 4, 2); break;
        case PAD_TO_PAD:
                hostile_record(v->mem, &v->l, 1, size, size << 2 | REC_READY, 0, REC_PAD);
                hostile_record(v->mem, &v->l, 1, pos, ready, 0, REC_PAD);
                break;
        case WITHDRAWN_PAST:
                hostile_record(v->mem, &v->l, 1, pos, pos << 2 | REC_WITHDRAWN, (uint32_t)size, 0);
                break;
        default: CHECK(false);
        }
}

/* One message read (so the ring's first record is free for a forged pad),
 * ten queued, the sixth's header forged: a batch reads the five
 * before it (every byte right), stops there, and the next call fails
 * -EPROTO — as does every call after it, even once the peer puts a valid
 * header back: a broken flow stays broken. */
TEST(a_forged_record_in_mid_batch_ends_the_flow_after_what_came_before) {
        for (int f = 0; f < FORGERIES; f++) {
                printf("  %s\n", forgery_names[f]);
                fflush(stdout);
                ipcf_qos q = small_qos(0);
                make_pair(&q);
                int v[16];
                struct iovec m[16];
                CHECK_EQ(ipcf_write(hp1, v, sizeof(int), 0), sizeof(int));
                CHECK_EQ(ipcf_read(hp0, v, sizeof(int), 0), sizeof(int));
                numbered(v, m, 10, 0);
                CHECK_EQ(ipcf_write_many(hp1, m, 10, 0), 10);
                view hv = hostile_view();
                forge_record(&hv, 5, (enum forgery)f);
                read_slots(v, m, 16);
                CHECK_EQ(WITHIN(1000, ipcf_read_many(hp0, m, 16, 1000)), 5);
                for (int i = 0; i < 5; i++)
                        CHECK_EQ(v[i], i);
                CHECK_EQ(v[5], -1);
                check_broken(hp0);
                /* the peer takes its forgery back: the flow stays broken */
                uint64_t pos = int_pos(5);
                hostile_record(hv.mem, &hv.l, 1, pos, pos << 2 | REC_READY, sizeof(int), 0);
                check_broken(hp0);
                ipcf_detach(hp0);
                ipcf_detach(hp1);
        }
}

/* Five messages, a hundred withdrawn records (more than RING_SKIP_MAX), five
 * more: the first batch ends at the flood (bounded work per call), the next
 * one passes it and reads the five after — skipped records are no error. */
TEST(a_flood_of_skipped_records_ends_a_batch_not_the_flow) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = 64;
        make_pair(&q);
        int v[16];
        struct iovec m[16];
        numbered(v, m, 5, 0);
        CHECK_EQ(ipcf_write_many(hp1, m, 5, 0), 5);
        struct iovec empty[100];
        for (int i = 0; i < 100; i++)
                empty[i] = (struct iovec){ NULL, 0 };
        CHECK_EQ(ipcf_write_many(hp1, empty, 100, 0), 100);
        numbered(v, m, 5, 5);
        CHECK_EQ(ipcf_write_many(hp1, m, 5, 0), 5);
        view hv = hostile_view();
        uint64_t pos = 5 * ring_rec_size(sizeof(int));
        for (int i = 0; i < 100; i++, pos += REC_HDR)
                hostile_record(hv.mem, &hv.l, 1, pos, pos << 2 | REC_WITHDRAWN, 0, 0);
        read_slots(v, m, 16);
        CHECK_EQ(WITHIN(0, ipcf_read_many(hp0, m, 16, 0)), 5);
        for (int i = 0; i < 5; i++)
                CHECK_EQ(v[i], i);
        read_slots(v, m, 16);
        CHECK_EQ(WITHIN(1000, ipcf_read_many(hp0, m, 16, 1000)), 5);
        for (int i = 0; i < 5; i++)
                CHECK_EQ(v[i], 5 + i);
        CHECK_ERR(ipcf_read_many(hp0, m, 16, 0), -EAGAIN);
        CHECK_EQ(ipcf_write(hp0, "ok", 2, 0), 2); /* the flow lives */
}

/* Keep a chain of skipped records in front of the reader for duration_ms:
 * a pad to the next lap wherever the reader is inside a lap, a withdrawn
 * record where it is at a lap's start — the reader runs lap after lap and
 * never meets a message. */
static void skip_flood(void *arg) {
        view v = hostile_view();
        struct ring_ctl *c = flow_ctl_of(v.mem, 1);
        uint64_t mask = v.l.ring_size - 1, end = test_now_ms() + (uint64_t)(uintptr_t)arg;
        for (unsigned i = 0; (i & 255) || test_now_ms() < end; i++) {
                uint64_t t = atomic_load(&c->tail) & ~(uint64_t)15;
                if (t & mask) {
                        hostile_record(v.mem, &v.l, 1, t, t << 2 | REC_READY, 0, REC_PAD);
                        t = (t | mask) + 1;
                }
                hostile_record(v.mem, &v.l, 1, t, t << 2 | REC_WITHDRAWN, 0, 0);
                if ((i & 15) == 0)
                        ring_all();
        }
}

TEST_TIMEOUT(a_reader_chased_around_the_ring_keeps_its_deadlines, 60) {
        ipcf_qos q = small_qos(0);
        make_pair(&q);
        pid_t h = test_fork(skip_flood, (void *)(uintptr_t)3000);
        static const int timeouts[] = { 0, 1, 50, 300 };
        uint64_t t0 = test_now_ms();
        for (unsigned i = 0; test_now_ms() - t0 < 2000; i++) {
                int v[16], t = timeouts[i % 4];
                struct iovec m[16];
                read_slots(v, m, 16);
                ssize_t r = WITHIN(t, ipcf_read_many(hp0, m, 16, t));
                CHECK(r == -EAGAIN || r == -ETIMEDOUT || r == -EPROTO);
        }
        kill(h, SIGKILL);
        test_wait(h, 5000);
}

/* ---- a reader that forges its position while a writer's batch waits ----- */

enum { TAIL_BACK, TAIL_PAST_HEAD, TAIL_UNALIGNED, COUNT_BACK, COUNT_PAST, TAMPERS };

/* The hostile reader takes three messages, lets the writer fill the queue
 * again and wait for room, then forges its position as `how` says and rings
 * the writer. */
static void forging_reader(void *arg) {
        int how = (int)(uintptr_t)arg;
        char buf[64];
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_read(hp1, buf, sizeof(buf), 5000), sizeof(int));
        usleep(300000);
        struct ring_ctl *c = flow_ctl_of(hostile_view().mem, 0);
        uint64_t head = atomic_load(&c->head);
        switch (how) {
        case TAIL_BACK: atomic_store(&c->tail, 0); break;
        case TAIL_PAST_HEAD: atomic_store(&c->tail, head + 32); break;
        case TAIL_UNALIGNED: atomic_store(&c->tail, atomic_load(&c->tail) + 8); break;
        case COUNT_BACK: atomic_store(&c->msgs_r, 1); break;
        default: atomic_store(&c->msgs_r, atomic_load(&c->msgs_w) + 1); break;
        }
        ring_all();
        usleep(200000);
}

/* A batch of 20 into a queue of 8 waits for room after 11 (8, then the 3 the
 * reader took); the reader forges its position: the batch returns the 11 at
 * once — not at its deadline — and the next call fails -EPROTO. */
TEST_TIMEOUT(a_reader_forging_its_position_ends_a_waiting_batch, 60) {
        for (int how = 0; how < TAMPERS; how++) {
                ipcf_qos q = small_qos(8);
                make_pair(&q);
                pid_t h = test_fork(forging_reader, (void *)(uintptr_t)how);
                int v[20];
                struct iovec m[20];
                numbered(v, m, 20, 0);
                uint64_t t0 = test_now_ms();
                CHECK_EQ(WITHIN(8000, ipcf_write_many(hp0, m, 20, 8000)), 11);
                CHECK(test_now_ms() - t0 < 4000);
                CHECK_ERR(ipcf_write_many(hp0, m + 11, 9, 1000), -EPROTO);
                check_broken(hp0);
                CHECK_EQ(test_wait(h, 5000), 0);
                ipcf_detach(hp0);
                ipcf_detach(hp1);
        }
}

/* ---- random words anywhere, while batches run ----------------------------- */

static void mutating_peer(void *arg) {
        size_t size;
        void *mem = flowpair_mem(hp1, &size);
        CHECK(mem);
        mutator m;
        mutator_init(&m, (uint64_t)(uintptr_t)arg, mem, size, 1, pair_fds, n_pair_fds);
        m.shutdown_pct = 2;
        uint64_t end = test_now_ms() + 1500;
        for (unsigned i = 0; test_now_ms() < end; i++) {
                mutator_step(&m);
                if ((i & 7) == 0)
                        usleep(200);
        }
}

/* Is r an outcome a batch call documents (a count of 1..n, or an error)? */
static bool documented(ssize_t r, size_t n, bool reading) {
        if (r > 0)
                return (size_t)r <= n;
        return r == -EAGAIN || r == -ETIMEDOUT || r == -EPROTO || r == -EPIPE ||
               r == -ECONNRESET || (reading && r == -EMSGSIZE);
}

/* Seeded rounds of the hostile mutator against a writer's and a reader's
 * batches (timeouts 0 to 100 ms): every outcome documented and on time,
 * lengths within the buffers, and once -EPROTO, only -EPROTO. */
TEST_TIMEOUT(batches_survive_a_peer_that_writes_anything_anywhere, 120) {
        static const int timeouts[] = { 0, 1, 20, 100 };
        int protos = 0;
        for (uint64_t seed = 1; seed <= 8; seed++) {
                ipcf_qos q = small_qos(0);
                q.max_bytes = 8192;
                make_pair(&q);
                pid_t h = test_fork(mutating_peer, (void *)(uintptr_t)seed);
                bool broken = false;
                uint64_t t0 = test_now_ms();
                for (unsigned i = 0; test_now_ms() - t0 < 1500; i++) {
                        int t = timeouts[i % 4];
                        uint8_t out[16][64], in[16][64];
                        struct iovec w[16], r[16];
                        for (int k = 0; k < 16; k++) {
                                w[k] = (struct iovec){ out[k], (size_t)(k * 4) };
                                r[k] = (struct iovec){ in[k], sizeof(in[k]) };
                        }
                        ssize_t wn = WITHIN(t, ipcf_write_many(hp0, w, 16, t));
                        ssize_t rn = WITHIN(t, ipcf_read_many(hp0, r, 16, t));
                        CHECK(documented(wn, 16, false));
                        CHECK(documented(rn, 16, true));
                        for (ssize_t k = 0; k < rn; k++)
                                CHECK(r[k].iov_len <= 64);
                        if (broken) {
                                CHECK_ERR(wn, -EPROTO);
                                CHECK_ERR(rn, -EPROTO);
                        }
                        broken |= wn == -EPROTO || rn == -EPROTO;
                }
                protos += broken;
                kill(h, SIGKILL);
                test_wait(h, 5000);
                ipcf_detach(hp0);
                ipcf_detach(hp1);
        }
        printf("  %d of 8 flows ended -EPROTO\n", protos);
        CHECK(protos > 0);
}

/* ---- the iovec edge cases ------------------------------------------------- */

TEST(iovec_edge_cases) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = 16384;
        q.max_bytes = 4096; /* a message of max_msg_size is larger than the queue */
        make_pair(&q);
        /* n = 0: 0, whatever msgs is; n beyond SSIZE_MAX: -EINVAL */
        CHECK_EQ(ipcf_write_many(hp0, NULL, 0, 0), 0);
        CHECK_EQ(ipcf_read_many(hp1, NULL, 0, 0), 0);
        struct iovec one = { "x", 1 };
        CHECK_ERR(ipcf_write_many(hp0, &one, (size_t)SSIZE_MAX + 1, 0), -EINVAL);
        CHECK_ERR(ipcf_read_many(hp1, &one, SIZE_MAX, 0), -EINVAL);
        /* a NULL base with length 0 is an empty message, and a slot that
         * takes an empty one */
        struct iovec w[3] = { { NULL, 0 }, { "abc", 3 }, { NULL, 0 } };
        CHECK_EQ(ipcf_write_many(hp0, w, 3, 0), 3);
        char buf[8];
        struct iovec r[3] = { { NULL, 0 }, { buf, sizeof(buf) }, { NULL, 0 } };
        CHECK_EQ(ipcf_read_many(hp1, r, 3, 0), 3);
        CHECK_EQ(r[0].iov_len, 0);
        CHECK_EQ(r[1].iov_len, 3);
        CHECK_EQ(r[2].iov_len, 0);
        CHECK_MEM(buf, "abc", 3);
        CHECK_EQ(ipcf_write_many(hp0, w, 1, 0), 1); /* and ipcf_read alike */
        CHECK_EQ(ipcf_read(hp1, NULL, 0, 0), 0);
        /* a message in a NULL slot of length 0: -EMSGSIZE, kept */
        CHECK_EQ(ipcf_write_many(hp0, &one, 1, 0), 1);
        struct iovec none = { NULL, 0 };
        CHECK_ERR(ipcf_read_many(hp1, &none, 1, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_read_many(hp1, r + 1, 1, 0), 1);
        /* a length beyond any message (SIZE_MAX: no overflow): -EMSGSIZE,
         * nothing written; in mid-batch, the count before it */
        static uint8_t big[16385];
        struct iovec huge[2] = { { "a", 1 }, { big, SIZE_MAX } };
        CHECK_ERR(ipcf_write_many(hp0, huge + 1, 1, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_write_many(hp0, huge, 2, 0), 1);
        huge[1].iov_len = sizeof(big);
        CHECK_ERR(ipcf_write_many(hp0, huge + 1, 1, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_read(hp1, buf, sizeof(buf), 0), 1);
        /* the largest message, larger than the queue's bytes, goes alone */
        huge[1].iov_len = 16384;
        test_fill(big, 16384, 7);
        CHECK_EQ(ipcf_write_many(hp0, huge + 1, 1, 0), 1);
        static uint8_t back[16384];
        struct iovec rb = { back, sizeof(back) };
        CHECK_EQ(ipcf_read_many(hp1, &rb, 1, 0), 1);
        CHECK_EQ(rb.iov_len, 16384);
        CHECK_MEM(back, big, 16384);
        /* more messages than IOV_MAX in one call: no such bound */
        ipcf_qos_init(&q);
        make_pair(&q);
        enum { MANY = IOV_MAX + 1 };
        static int v[MANY];
        static struct iovec m[MANY];
        numbered(v, m, MANY, 0);
        CHECK_EQ(ipcf_write_many(hp0, m, MANY, 0), MANY);
        read_slots(v, m, MANY);
        CHECK_EQ(ipcf_read_many(hp1, m, MANY, 0), MANY);
        for (int i = 0; i < MANY; i++)
                CHECK_EQ(v[i], i);
}

/* ---- a batch larger than the queue: the exact outcomes -------------------- */

TEST(a_batch_larger_than_the_queue_with_timeouts_0_and_50) {
        ipcf_qos q = small_qos(8);
        make_pair(&q);
        int v[100], got[100];
        struct iovec m[100], in[100];
        numbered(v, m, 100, 0);
        /* timeout 0: what fits, at once; then -EAGAIN */
        CHECK_EQ(WITHIN(0, ipcf_write_many(hp0, m, 100, 0)), 8);
        CHECK_ERR(WITHIN(0, ipcf_write_many(hp0, m + 8, 92, 0)), -EAGAIN);
        /* a reader's batch larger than what is queued: what is, at once */
        read_slots(got, in, 100);
        uint64_t t0 = test_now_ms();
        CHECK_EQ(ipcf_read_many(hp1, in, 100, 50), 8);
        CHECK(test_now_ms() - t0 < 50);
        for (int i = 0; i < 8; i++)
                CHECK_EQ(got[i], i);
        /* timeout 50: what fits, then the wait for more times out: the count */
        t0 = test_now_ms();
        CHECK_EQ(WITHIN(50, ipcf_write_many(hp0, m + 8, 92, 50)), 8);
        CHECK(test_now_ms() - t0 >= 45);
        t0 = test_now_ms();
        CHECK_ERR(WITHIN(50, ipcf_write_many(hp0, m + 16, 84, 50)), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 45);
        read_slots(got, in, 100);
        CHECK_EQ(ipcf_read_many(hp1, in, 100, 0), 8);
        for (int i = 0; i < 8; i++)
                CHECK_EQ(got[i], 8 + i);
        t0 = test_now_ms();
        CHECK_ERR(WITHIN(50, ipcf_read_many(hp1, in, 100, 50)), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 45);
}

/* A reader that takes a message every 100 us, steadily, cannot stretch a
 * batch of 100,000 past its 300 ms: the batch returns its count on time. */
static void steady_reader(void *arg) {
        (void)arg;
        char buf[64];
        uint64_t end = test_now_ms() + 3000;
        while (test_now_ms() < end) {
                (void)ipcf_read(hp1, buf, sizeof(buf), 10);
                usleep(100);
        }
}

TEST_TIMEOUT(a_steady_slow_reader_cannot_stretch_a_batch_past_its_deadline, 60) {
        ipcf_qos q = small_qos(64);
        q.spin_us = 1000;
        make_pair(&q);
        pid_t h = test_fork(steady_reader, NULL);
        enum { N = 100000 };
        static int v[N];
        static struct iovec m[N];
        numbered(v, m, N, 0);
        usleep(100000);
        ssize_t n = WITHIN(300, ipcf_write_many(hp0, m, N, 300));
        printf("  %zd of %d queued in 300 ms\n", n, N);
        CHECK(n > 0 && n < N);
        CHECK_EQ(test_wait(h, 10000), 0);
}

/* ---- the peer's death in mid-batch ---------------------------------------- */

/* The reader takes 20 messages one by one, waits for the writer to fill the
 * queue again, and dies. */
static void reader_then_die(void *arg) {
        (void)arg;
        int x;
        for (int i = 0; i < 20; i++) {
                CHECK_EQ(ipcf_read(hp1, &x, sizeof(x), 5000), sizeof(x));
                CHECK_EQ(x, i);
        }
        usleep(300000);
        raise(SIGKILL);
}

/* A writer whose batch waits for room when the reader dies: the count of
 * what it queued (8 + the 20 read, or one fewer if it saw the death first),
 * long before its deadline; then -ECONNRESET. */
TEST(the_readers_death_ends_a_waiting_batch_with_its_count) {
        ipcf_qos q = small_qos(8);
        make_pair(&q);
        pid_t c = test_fork(reader_then_die, NULL);
        CHECK_OK(flowpair_watch(hp0, c));
        int v[100];
        struct iovec m[100];
        numbered(v, m, 100, 0);
        uint64_t t0 = test_now_ms();
        ssize_t n = WITHIN(10000, ipcf_write_many(hp0, m, 100, 10000));
        CHECK(test_now_ms() - t0 < 5000);
        CHECK(n >= 27 && n <= 28);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(hp0, &st));
        CHECK_EQ(st.msgs_out, (uint64_t)n);
        CHECK_ERR(WITHIN(0, ipcf_write_many(hp0, m + n, 100 - (size_t)n, 10000)), -ECONNRESET);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(hp0, &why));
        CHECK_EQ(why.code, IPCF_END_PEER_DIED);
        test_wait(c, 5000);
}

/* The writer's batch of 100 into a queue of 8 waits for room (the queue is
 * full, nobody reads), and is killed there. */
static void blocked_batch_writer(void *arg) {
        (void)arg;
        int v[100];
        struct iovec m[100];
        numbered(v, m, 100, 0);
        (void)ipcf_write_many(hp1, m, 100, 20000);
        CHECK(false); /* killed before */
}

static void die_now(int sig) {
        (void)sig;
        raise(SIGKILL);
}

/* A writer that keeps writing big batches into the queue while its reader
 * reads, killed (SIGKILL) by a timer after arg ms — most likely inside a
 * batch, between its records or waiting for room. */
static void busy_batch_writer(void *arg) {
        signal(SIGALRM, die_now);
        struct itimerval it = { .it_value = { 0, (suseconds_t)(uintptr_t)arg * 1000 } };
        CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
        int v[1000];
        struct iovec m[1000];
        for (int first = 0;; first += 1000) {
                numbered(v, m, 1000, first);
                for (size_t sent = 0; sent < 1000;) {
                        ssize_t w = ipcf_write_many(hp1, m + sent, 1000 - sent, 20000);
                        CHECK(w > 0);
                        sent += (size_t)w;
                }
        }
}

/* Killed in mid-batch, waiting for room or not: every message it queued is
 * read, in order, whole, then -ECONNRESET — promptly. */
TEST_TIMEOUT(the_writers_death_in_mid_batch_loses_nothing_it_queued, 60) {
        ipcf_qos q = small_qos(8);
        make_pair(&q);
        pid_t c = test_fork(blocked_batch_writer, NULL);
        CHECK_OK(flowpair_watch(hp0, c));
        ipcf_port_stats st;
        uint64_t t0 = test_now_ms();
        do {
                CHECK(test_now_ms() - t0 < 10000);
                usleep(10000);
                CHECK_OK(ipcf_stats(hp0, &st));
        } while (st.queued_in < 8 * ring_rec_size(sizeof(int)));
        usleep(100000); /* asleep in its wait for room */
        kill(c, SIGKILL);
        CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
        ssize_t end = 0;
        CHECK_EQ(read_run(hp0, 0, 5000, &end), 8);
        CHECK_ERR(end, -ECONNRESET);
        ipcf_detach(hp0);
        ipcf_detach(hp1);

        for (int round = 0; round < 5; round++) {
                ipcf_qos_init(&q);
                q.max_bytes = 64 << 10;
                make_pair(&q);
                c = test_fork(busy_batch_writer, (void *)(uintptr_t)(20 + 17 * round));
                CHECK_OK(flowpair_watch(hp0, c));
                int n = read_run(hp0, 0, 5000, &end);
                printf("  killed after %d messages\n", n);
                CHECK_ERR(end, -ECONNRESET);
                CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
                ipcf_detach(hp0);
                ipcf_detach(hp1);
        }
}

/* ---- signals during a batch's wait ----------------------------------------- */

static void on_signal(int sig) { (void)sig; }

/* Send the parent SIGUSR1 every 2 ms for duration_ms. */
static void signaller(void *arg) {
        uint64_t end = test_now_ms() + (uint64_t)(uintptr_t)arg;
        while (test_now_ms() < end) {
                kill(getppid(), SIGUSR1);
                usleep(2000);
        }
}

/* A handled signal (without SA_RESTART) interrupts the waits' system calls:
 * the batch calls wait on, to their deadline — never -EINTR, never early. */
TEST_TIMEOUT(signals_during_a_batch_wait_change_nothing, 60) {
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
        ipcf_qos q = small_qos(8);
        make_pair(&q);
        pid_t s = test_fork(signaller, (void *)(uintptr_t)3000);
        int v[20];
        struct iovec m[20];
        for (int spin = 0; spin < 2; spin++) {
                uint64_t t0 = test_now_ms();
                read_slots(v, m, 20);
                CHECK_ERR(WITHIN(300, ipcf_read_many(hp0, m, 20, 300)), -ETIMEDOUT);
                CHECK(test_now_ms() - t0 >= 295);
                numbered(v, m, 20, 0);
                t0 = test_now_ms();
                CHECK_EQ(WITHIN(300, ipcf_write_many(hp0, m, 20, 300)), 8);
                CHECK(test_now_ms() - t0 >= 295);
                read_slots(v, m, 20);
                CHECK_EQ(ipcf_read_many(hp1, m, 20, 0), 8);
                q.spin_us = 0; /* the second round sleeps at once */
                ipcf_detach(hp0);
                ipcf_detach(hp1);
                make_pair(&q);
        }
        kill(s, SIGKILL);
        test_wait(s, 5000);
}

/* A reader that takes everything as fast as it can, for arg ms. */
static void fast_reader(void *arg) {
        static uint8_t bufs[16][4096];
        struct iovec in[16];
        uint64_t end = test_now_ms() + (uint64_t)(uintptr_t)arg;
        while (test_now_ms() < end) {
                for (int i = 0; i < 16; i++)
                        in[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
                (void)ipcf_read_many(hp1, in, 16, 10);
        }
}

/* A batch far larger than the queue, behind a reader that keeps making
 * room: the batch's first wait for room starts its clock, and it returns
 * its count within its timeout (plus the slack) — not when it has written
 * every message, seconds later. */
TEST_TIMEOUT(a_batch_behind_a_fast_reader_keeps_its_timeout, 60) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = 4096;
        q.max_bytes = 64 << 10;
        make_pair(&q);
        pid_t h = test_fork(fast_reader, (void *)(uintptr_t)10000);
        enum { N = 1 << 20 };
        static uint8_t msg[4096];
        static struct iovec m[N];
        for (int i = 0; i < N; i++)
                m[i] = (struct iovec){ msg, 1024 };
        usleep(100000);
        uint64_t t0 = test_now_ms();
        ssize_t n = ipcf_write_many(hp0, m, N, 50);
        uint64_t took = test_now_ms() - t0;
        printf("  %zd of %d queued in %llu ms (timeout 50 ms)\n", n, N, (unsigned long long)took);
        CHECK(n > 0);
        CHECK(took <= 50 + HOSTILE_SLACK_MS);
        kill(h, SIGKILL);
        test_wait(h, 5000);
}
