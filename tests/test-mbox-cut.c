/*
 * test-mbox-cut.c — the mailbox's CUT-THROUGH (src/daemon/models/mbox.c):
 * while its FIFO is empty the daemon copies a message from the sender's ring
 * straight into a receiver's and holds the sender's record until the
 * receiver takes it. Against the real daemon, real processes, each case
 * time-bounded: order across the cut-through and FIFO paths; a receiver
 * killed holding cut-through messages (given back in order, whole, none
 * lost or duplicated, receipts naming the receiver that took them) — also
 * after scribbling over its own ring; a sender that ends while its records
 * are held; a hostile sender rewriting its held records and its indexes;
 * destroy with cut-through messages in flight; a receiver that does not
 * read (the FIFO bound, backpressure, nothing lost) — killed while the
 * sender is blocked behind it, joined by another, beside another that
 * reads; a sender that ends with messages unread in its ring.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/ring.h"
#include "ipcf.h"
#include "support/hostile.h"
#include "support/test.h"

static test_daemon d;

/* Shared with the children. */
struct shared {
        _Atomic int ready, go, got, want;
};
static struct shared *SH;

static void shared_new(void) {
        SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(SH != MAP_FAILED);
        memset(SH, 0, sizeof(*SH));
}

static void wait_flag(_Atomic int *f, int v) {
        uint64_t t0 = test_now_ms();
        while (atomic_load(f) < v) {
                CHECK(test_now_ms() - t0 < 40000);
                usleep(2000);
        }
}

static void wait_receivers(const char *name, uint32_t want) {
        for (int i = 0; i < 2000; i++) {
                ipcf_model_entry *e;
                size_t n;
                CHECK_OK(ipcf_model_list(&e, &n));
                bool ok = false;
                for (size_t k = 0; k < n; k++)
                        ok |= strcmp(e[k].name, name) == 0 && e[k].receivers == want;
                ipcf_free(e);
                if (ok)
                        return;
                usleep(10000);
        }
        test_fail(__FILE__, __LINE__, "%s never had %u receivers", name, want);
}

/* Until the daemon has taken n messages into name (so that, with a
 * receiver with room and the FIFO empty, they are cut through). */
static void wait_msgs_in(const char *name, uint64_t n) {
        for (int i = 0;; i++) {
                ipcf_model_entry *e;
                size_t k;
                CHECK_OK(ipcf_model_list(&e, &k));
                bool all = false;
                for (size_t j = 0; j < k; j++)
                        all |= strcmp(e[j].name, name) == 0 && e[j].msgs_in >= n;
                ipcf_free(e);
                if (all)
                        return;
                CHECK(i < 4000);
                usleep(10000);
        }
}

/* A message: its number, then a pattern of it (checked byte by byte). */
/* above the daemon's MBOX_CUT_MIN (4096): cut through */
#define MSG 5000
static void fill(uint8_t *b, size_t len, uint32_t seq) {
        memcpy(b, &seq, 4);
        for (size_t i = 4; i < len; i++)
                b[i] = (uint8_t)(seq * 131 + i);
}
static bool whole(const uint8_t *b, size_t len, uint32_t seq) {
        uint32_t s;
        memcpy(&s, b, 4);
        if (s != seq)
                return false;
        for (size_t i = 4; i < len; i++)
                if (b[i] != (uint8_t)(seq * 131 + i))
                        return false;
        return true;
}

/* The data area of ring `ring` of a mailbox handle's region (mapped here). */
static uint8_t *ring_data(void *mem, size_t len, int ring, size_t *ret_size) {
        size_t rs = (len - FLOW_DATA_OFF) / 2;
        *ret_size = rs;
        return (uint8_t *)mem + FLOW_DATA_OFF + (size_t)ring * rs;
}

/* ---- a receiver killed holding cut-through messages --------------------------- */

struct killed_arg {
        const char *name;
        int take;          /* messages to read before dying */
        bool scribble;     /* write over its own ring first */
};

static void receiver_take_then_die(void *arg) {
        const struct killed_arg *a = arg;
        mapset mb;
        mapset_snapshot(&mb, "ipcf-flow");
        int rx = CHECK_OK(ipcf_mbox_open(a->name, IPCF_MBOX_RECV, NULL, 5000));
        size_t len = 0;
        void *mem = mapset_new_since(&mb, "ipcf-flow", &len);
        CHECK(mem != NULL);
        atomic_store(&SH->ready, 1);
        wait_flag(&SH->go, 1);
        uint8_t b[MSG];
        for (int i = 0; i < a->take; i++) {
                CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 10000, NULL), MSG);
                CHECK(whole(b, MSG, (uint32_t)i));
                atomic_fetch_add(&SH->got, 1);
        }
        if (a->scribble) {
                /* Every byte of the ring the daemon wrote to us: the copies
                 * it would give back must not come from here. */
                size_t rs;
                uint8_t *data = ring_data(mem, len, 1, &rs);
                memset(data, 0xa5, rs);
                /* and its position: forged (a tail past the head) */
                atomic_store(&flow_ctl_of(mem, 1)->tail, 0x7777777777777770ull);
        }
        raise(SIGKILL);
}

static void killed_holding(bool scribble) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.k", NULL));
        struct killed_arg a = { "box.k", 3, scribble };
        pid_t c = test_fork(receiver_take_then_die, &a);
        wait_flag(&SH->ready, 1);
        wait_receivers("box.k", 1);
        int tx = CHECK_OK(ipcf_mbox_open("box.k", IPCF_MBOX_SEND, NULL, 5000));
        uint8_t b[MSG];
        /* 40 messages, each with a receipt asked: the FIFO is empty and the
         * receiver has room, so they are cut through. */
        for (uint32_t i = 0; i < 40; i++) {
                fill(b, MSG, i);
                CHECK_EQ(ipcf_mbox_send_async(tx, b, MSG, 5000, NULL), MSG);
        }
        wait_msgs_in("box.k", 40);
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(c, 20000), 128 + SIGKILL);
        CHECK_EQ(atomic_load(&SH->got), 3);
        /* The 37 it held come back, in order, whole, once. (One that forged
         * its position may also give back some of the 3 it read: the daemon cannot
         * tell what a receiver looked at; then those come twice.) */
        int rx = CHECK_OK(ipcf_mbox_open("box.k", IPCF_MBOX_RECV, NULL, 5000));
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL), MSG);
        uint32_t first;
        memcpy(&first, b, 4);
        CHECK(first == 3 || (scribble && first < 3));
        CHECK(whole(b, MSG, first));
        for (uint32_t i = first + 1; i < 40; i++) {
                CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL), MSG);
                CHECK(whole(b, MSG, i));
        }
        CHECK_ERR(ipcf_mbox_recv(rx, b, sizeof(b), 200, NULL), -ETIMEDOUT);
        /* 40 receipts, each once: the first 3 name the dead receiver (or us,
         * who took them again), the rest us. */
        uint64_t seen = 0;
        int ours = 0;
        for (int i = 0; i < 40; i++) {
                ipcf_receipt rc;
                CHECK_OK(ipcf_mbox_receipt(tx, 5000, &rc));
                CHECK(rc.seq >= 1 && rc.seq <= 40 && !(seen & (1ull << (rc.seq - 1))));
                seen |= 1ull << (rc.seq - 1);
                CHECK_EQ(rc.receiver, rc.seq <= first ? c : getpid());
                ours += rc.receiver == getpid();
        }
        CHECK_EQ(ours, 40 - (int)first);
        CHECK_EQ(ipcf_mbox_undelivered(tx), 0);
        test_daemon_stop(&d);
}

TEST(receiver_killed_holding_cut_through_messages_gives_them_back) { killed_holding(false); }

TEST(receiver_scribbling_its_ring_before_dying_gives_back_the_originals) { killed_holding(true); }

/* ---- order across the cut-through and FIFO paths ------------------------------ */

#define ORDER_N 4000

static void receiver_slow_then_fast(void *arg) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = 4096; /* a few records (the mailbox's max_msg_size sets the
                             * ring's least): it fills, the FIFO takes the rest */
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, &q, 5000));
        atomic_store(&SH->ready, 1);
        uint8_t b[MSG];
        uint32_t n = 0;
        while (n < 2 * ORDER_N) {
                ssize_t r = ipcf_mbox_recv(rx, b, sizeof(b), 10000, NULL);
                CHECK(r == 64 || r == MSG);
                uint32_t seq;
                memcpy(&seq, b, 4);
                /* two senders' streams, each in order; the pattern whole */
                uint32_t who = seq >> 24, k = seq & 0xffffff;
                static uint32_t next[2];
                CHECK(who < 2);
                CHECK_EQ(k, next[who]);
                CHECK(whole(b, (size_t)r, seq));
                next[who]++;
                n++;
                /* Slow in bursts: the FIFO fills and empties, again and again. */
                if (n % 500 < 50)
                        usleep(200);
        }
        atomic_store(&SH->got, (int)n);
}

static void sender_stream(void *arg) {
        uint32_t who = (uint32_t)(uintptr_t)arg;
        int tx = CHECK_OK(ipcf_mbox_open("box.o", IPCF_MBOX_SEND, NULL, 5000));
        uint8_t b[MSG];
        for (uint32_t k = 0; k < ORDER_N; k++) {
                uint32_t seq = who << 24 | k;
                size_t len = k % 3 ? 64 : MSG; /* sizes mixed */
                fill(b, len, seq);
                CHECK_EQ(ipcf_mbox_send(tx, b, len, 20000, NULL), (ssize_t)len);
        }
        CHECK_OK(ipcf_dealloc(tx, "done"));
}

TEST_TIMEOUT(order_kept_across_cut_through_and_fifo, 120) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 16, .max_msg_size = 8192 };
        CHECK_OK(ipcf_mbox_create("box.o", &o));
        pid_t r = test_fork(receiver_slow_then_fast, "box.o");
        wait_flag(&SH->ready, 1);
        wait_receivers("box.o", 1);
        pid_t s0 = test_fork(sender_stream, (void *)0);
        pid_t s1 = test_fork(sender_stream, (void *)1);
        CHECK_EQ(test_wait(s0, 60000), 0);
        CHECK_EQ(test_wait(s1, 60000), 0);
        CHECK_EQ(test_wait(r, 60000), 0);
        CHECK_EQ(atomic_load(&SH->got), 2 * ORDER_N);
        test_daemon_stop(&d);
}

/* ---- a sender that ends while its records are held ---------------------------- */

static void sender_send_then_die(void *arg) {
        int tx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_SEND, NULL, 5000));
        uint8_t b[MSG];
        for (uint32_t i = 0; i < 40; i++) {
                fill(b, MSG, i);
                CHECK_EQ(ipcf_mbox_send(tx, b, MSG, 5000, NULL), MSG);
        }
        atomic_store(&SH->ready, 2);
        wait_flag(&SH->go, 1);
        raise(SIGKILL);
}

TEST(a_sender_killed_while_its_records_are_held_loses_nothing) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.s", NULL));
        /* A receiver that takes 0 and dies after the sender: its 40 (the
         * sender's ring gone) come back whole to the next. */
        struct killed_arg a = { "box.s", 0, true };
        pid_t r = test_fork(receiver_take_then_die, &a);
        wait_flag(&SH->ready, 1);
        wait_receivers("box.s", 1);
        pid_t s = test_fork(sender_send_then_die, "box.s");
        wait_flag(&SH->ready, 2);
        wait_msgs_in("box.s", 40);
        /* The sender dies first (its held records are copied in)... */
        kill(s, SIGKILL);
        CHECK_EQ(test_wait(s, 10000), 128 + SIGKILL);
        for (int i = 0; i < 100; i++) {
                ipcf_model_entry *e;
                size_t n;
                CHECK_OK(ipcf_model_list(&e, &n));
                bool gone = n == 1 && e[0].senders == 0;
                ipcf_free(e);
                if (gone)
                        break;
                usleep(10000);
        }
        /* ...then the receiver, scribbling its ring. */
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 10000), 128 + SIGKILL);
        int rx = CHECK_OK(ipcf_mbox_open("box.s", IPCF_MBOX_RECV, NULL, 5000));
        uint8_t b[MSG];
        ipcf_peer_info from;
        for (uint32_t i = 0; i < 40; i++) {
                CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 5000, &from), MSG);
                CHECK(whole(b, MSG, i));
                CHECK_EQ(from.pid, s);
        }
        CHECK_ERR(ipcf_mbox_recv(rx, b, sizeof(b), 200, NULL), -ETIMEDOUT);
        test_daemon_stop(&d);
}

/* ---- a hostile sender ------------------------------------------------------------ */

TEST(a_sender_rewriting_its_held_records_and_indexes_harms_nobody_else) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.h", NULL));
        struct killed_arg a = { "box.h", 0, false };
        pid_t r = test_fork(receiver_take_then_die, &a);
        wait_flag(&SH->ready, 1);
        wait_receivers("box.h", 1);
        mapset mb;
        mapset_snapshot(&mb, "ipcf-flow");
        int bad = CHECK_OK(ipcf_mbox_open("box.h", IPCF_MBOX_SEND, NULL, 5000));
        size_t len = 0;
        void *mem = mapset_new_since(&mb, "ipcf-flow", &len);
        CHECK(mem != NULL);
        int good = CHECK_OK(ipcf_mbox_open("box.h", IPCF_MBOX_SEND, NULL, 5000));
        uint8_t b[MSG];
        /* Interleaved: the bad sender's records are cut through and held. */
        for (uint32_t i = 0; i < 20; i++) {
                fill(b, MSG, i);
                CHECK_EQ(ipcf_mbox_send(bad, b, MSG, 5000, NULL), MSG);
                fill(b, MSG, 1000 + i);
                CHECK_EQ(ipcf_mbox_send(good, b, MSG, 5000, NULL), MSG);
        }
        /* Once the daemon has taken all 40 (each cut through: held)... */
        wait_msgs_in("box.h", 40);
        /* ...it rewrites every byte of its ring (the held records included)... */
        size_t rs;
        uint8_t *data = ring_data(mem, len, 0, &rs);
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < rs; i += 8) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(data + i, &x, 8);
        }
        /* ...then the receiver holding them dies: the daemon copies the held
         * records back from that ring (garbage, within their bounds). */
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 10000), 128 + SIGKILL);
        /* And it forges its indexes. */
        struct ring_ctl *ctl = flow_ctl_of(mem, 0);
        atomic_store(&ctl->head, 0x5a5a5a5a5a5a5a50ull);
        atomic_store(&ctl->tail, 0x123450ull);
        (void)ipcf_mbox_send(bad, "z", 1, 100, NULL);
        /* The good sender's 20 all arrive, in order and whole; the bad
         * sender's count no more than it sent. */
        int rx = CHECK_OK(ipcf_mbox_open("box.h", IPCF_MBOX_RECV, NULL, 5000));
        uint32_t next_good = 1000;
        int from_bad = 0;
        for (;;) {
                ipcf_peer_info from;
                /* The good sender's each within 5 s (the daemon hands them
                 * over: it may be held off the CPU), the rest until 500 ms
                 * bring none. */
                ssize_t n = ipcf_mbox_recv(rx, b, sizeof(b), next_good < 1020 ? 5000 : 500, &from);
                if (n == -ETIMEDOUT)
                        break;
                CHECK(n >= 0);
                uint32_t seq;
                memcpy(&seq, b, 4);
                if (n == MSG && seq == next_good && whole(b, MSG, seq)) {
                        next_good++;
                        continue;
                }
                from_bad++;
        }
        CHECK_EQ(next_good, 1020);
        CHECK(from_bad <= 21);
        /* The daemon and the mailbox go on. */
        CHECK_EQ(ipcf_mbox_send(good, "ok", 2, 1000, NULL), 2);
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 2000, NULL), 2);
        CHECK_MEM(b, "ok", 2);
        CHECK_OK(ipcf_mbox_create("box.h2", NULL));
        test_daemon_stop(&d);
}

/* ---- destroy, and a receiver that does not read ------------------------------ */

static void receiver_reads_after_destroy(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 5000));
        atomic_store(&SH->ready, 1);
        wait_flag(&SH->go, 1);
        uint8_t b[MSG];
        ssize_t n;
        uint32_t i = 0;
        while ((n = ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL)) >= 0) {
                CHECK_EQ(n, MSG);
                CHECK(whole(b, MSG, i));
                i++;
        }
        CHECK_ERR(n, -EPIPE);
        atomic_store(&SH->got, (int)i);
}

TEST(destroy_with_cut_through_messages_in_flight) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.d", NULL));
        pid_t r = test_fork(receiver_reads_after_destroy, "box.d");
        wait_flag(&SH->ready, 1);
        wait_receivers("box.d", 1);
        int tx = CHECK_OK(ipcf_mbox_open("box.d", IPCF_MBOX_SEND, NULL, 5000));
        uint8_t b[MSG];
        for (uint32_t i = 0; i < 40; i++) {
                fill(b, MSG, i);
                CHECK_EQ(ipcf_mbox_send(tx, b, MSG, 5000, NULL), MSG);
        }
        wait_msgs_in("box.d", 40); /* taken by the daemon: in the receiver's ring */
        CHECK_OK(ipcf_mbox_destroy("box.d"));
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 10000), 0);
        /* Every message in the receiver's ring is its to read: none undelivered. */
        CHECK_EQ(atomic_load(&SH->got), 40);
        CHECK_EQ(ipcf_mbox_undelivered(tx), 0);
        test_daemon_stop(&d);
}

static void receiver_idle(void *arg) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = 8192;
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, &q, 5000));
        atomic_store(&SH->ready, 1);
        wait_flag(&SH->go, 1);
        /* Each of the want sent within 5 s (the daemon refills its ring as
         * it reads: a daemon held off the CPU is no loss), then no more. */
        uint8_t b[MSG];
        int got = 0, want = atomic_load(&SH->want);
        while (got < want && ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL) == MSG) {
                uint32_t seq;
                memcpy(&seq, b, 4);
                CHECK_EQ(seq, (uint32_t)got);
                got++;
        }
        CHECK_ERR(ipcf_mbox_recv(rx, b, sizeof(b), 300, NULL), -ETIMEDOUT);
        atomic_store(&SH->got, got);
}

TEST(a_receiver_that_does_not_read_fills_then_backpressure_nothing_lost) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 32 };
        CHECK_OK(ipcf_mbox_create("box.f", &o));
        pid_t r = test_fork(receiver_idle, "box.f");
        wait_flag(&SH->ready, 1);
        wait_receivers("box.f", 1);
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.full = IPCF_FULL_FAIL;
        int tx = CHECK_OK(ipcf_mbox_open("box.f", IPCF_MBOX_SEND, &q, 5000));
        uint8_t b[MSG];
        int sent = 0;
        for (int tries = 0; tries < 200000; tries++) {
                fill(b, sizeof(b), (uint32_t)sent);
                ssize_t n = ipcf_mbox_send(tx, b, sizeof(b), 0, NULL);
                if (n == -EAGAIN) {
                        /* full now: the daemon may still be reading; give it
                         * a moment, and stop once nothing moves */
                        usleep(20000);
                        if (ipcf_mbox_send(tx, b, sizeof(b), 0, NULL) == -EAGAIN)
                                break;
                        sent++;
                        continue;
                }
                CHECK_EQ(n, MSG);
                sent++;
        }
        /* The receiver's ring, the mailbox's 32 and the sender's queue. */
        CHECK(sent > 32);
        atomic_store(&SH->want, sent);
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 60000), 0);
        CHECK_EQ(atomic_load(&SH->got), sent);
        test_daemon_stop(&d);
}

/* ---- a receiver that does not read: killed, joined, beside another --------- */

/* The mailbox for these: records of at most 8 KiB, so that rings are small
 * (a receiver's of 64 KiB holds a dozen MSG messages). */
static void small_rings_box(const char *name) {
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msg_size = 8192 };
        CHECK_OK(ipcf_mbox_create(name, &o));
}

static int open_ring(const char *name, int role, uint64_t bytes) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = bytes;
        return CHECK_OK(ipcf_mbox_open(name, role, &q, 5000));
}

/* Messages name has taken from its senders so far. */
static uint64_t msgs_in_of(const char *name) {
        ipcf_model_entry *e;
        size_t k;
        uint64_t in = UINT64_MAX;
        CHECK_OK(ipcf_model_list(&e, &k));
        for (size_t j = 0; j < k; j++)
                if (strcmp(e[j].name, name) == 0)
                        in = e[j].msgs_in;
        ipcf_free(e);
        CHECK(in != UINT64_MAX);
        return in;
}

/* Until name has taken no message for 300 ms (its senders blocked). */
static void wait_settled(const char *name) {
        uint64_t last = UINT64_MAX, t0 = test_now_ms(), since = t0;
        for (;;) {
                uint64_t in = msgs_in_of(name);
                if (in != last)
                        last = in, since = test_now_ms();
                if (test_now_ms() - since >= 300)
                        break;
                CHECK(test_now_ms() - t0 < 20000);
                usleep(20000);
        }
}

/* A receiver that reads nothing (a 64 KiB ring) until go, then dies. */
static void receiver_idle_then_die(void *arg) {
        (void)open_ring((const char *)arg, IPCF_MBOX_RECV, 65536);
        atomic_store(&SH->ready, 1);
        wait_flag(&SH->go, 1);
        raise(SIGKILL);
}

/* Sends STREAM_N numbered messages (blocking, each within 20 s), then waits
 * for go 2 before it ends. */
#define STREAM_N 300
static void sender_numbered(void *arg) {
        int tx = open_ring((const char *)arg, IPCF_MBOX_SEND, 65536);
        uint8_t b[MSG];
        for (uint32_t i = 0; i < STREAM_N; i++) {
                fill(b, MSG, i);
                CHECK_EQ(ipcf_mbox_send(tx, b, MSG, 20000, NULL), MSG);
        }
        wait_flag(&SH->go, 2);
        CHECK_OK(ipcf_dealloc(tx, "done"));
}

/* One message at rx within timeout_ms: what ipcf_mbox_recv returned; a
 * whole message (MSG) is one of sender_numbered's, checked whole and below
 * STREAM_N, its number in *seq. */
static ssize_t recv_numbered(int rx, int timeout_ms, uint32_t *seq) {
        uint8_t b[MSG];
        ssize_t n = ipcf_mbox_recv(rx, b, sizeof(b), timeout_ms, NULL);
        if (n == MSG) {
                memcpy(seq, b, 4);
                CHECK(*seq < STREAM_N && whole(b, MSG, *seq));
        }
        return n;
}

/* Read n messages at rx, each within 5 s, numbers first .. first+n-1 in
 * order and whole. */
static void read_in_order(int rx, uint32_t first, uint32_t n) {
        uint8_t b[MSG];
        for (uint32_t i = first; i < first + n; i++) {
                CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL), MSG);
                CHECK(whole(b, MSG, i));
        }
}

/* A daemon and a mailbox box of small rings whose only receiver does not
 * read (*idle: receiver_idle_then_die), and sender_numbered (*sender)
 * blocked behind it: it filled what there is room for. */
static void sender_blocked_behind_idle(const char *box, pid_t *idle, pid_t *sender) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        small_rings_box(box);
        *idle = test_fork(receiver_idle_then_die, (void *)box);
        wait_flag(&SH->ready, 1);
        wait_receivers(box, 1);
        *sender = test_fork(sender_numbered, (void *)box);
        wait_settled(box);
}

/* Its only receiver does not read: the sender fills what there is room for
 * and blocks. The receiver is killed: what it held and the rest go, in
 * order, to the next receiver. */
TEST(the_only_receiver_killed_while_the_sender_is_blocked_the_next_gets_all) {
        pid_t r, s;
        sender_blocked_behind_idle("box.wk", &r, &s);
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 10000), 128 + SIGKILL);
        int rx = open_ring("box.wk", IPCF_MBOX_RECV, 65536);
        read_in_order(rx, 0, STREAM_N);
        atomic_store(&SH->go, 2);
        CHECK_EQ(test_wait(s, 10000), 0);
        test_daemon_stop(&d);
}

/* A receiver opens while the sender is blocked behind one that does not
 * read: it gets the rest (the first receiver's come back when it dies). */
TEST(a_receiver_added_while_the_sender_is_blocked_gets_the_rest) {
        pid_t r, s;
        sender_blocked_behind_idle("box.wa", &r, &s);
        int rx = open_ring("box.wa", IPCF_MBOX_RECV, 65536);
        /* Round robin with the idle one while it has room: a rising
         * sequence here, until only what the idle one holds is left. */
        static uint8_t seen[STREAM_N];
        uint32_t n = 0, last = 0, seq;
        while (recv_numbered(rx, 1000, &seq) == MSG) {
                CHECK(!seen[seq]);
                CHECK(n == 0 || seq > last);
                seen[seq] = 1, last = seq, n++;
        }
        CHECK(n >= STREAM_N - 16);
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 10000), 128 + SIGKILL);
        /* Then what it held, once each. */
        for (; n < STREAM_N; n++) {
                CHECK_EQ(recv_numbered(rx, 5000, &seq), MSG);
                CHECK(!seen[seq]);
                seen[seq] = 1;
        }
        atomic_store(&SH->go, 2);
        CHECK_EQ(test_wait(s, 10000), 0);
        test_daemon_stop(&d);
}

/* A sender that ends with messages unread in its ring (its receiver does
 * not read): the daemon reads the rest of its ring as it ends; nothing is
 * lost. */
static void sender_fill_then_end(void *arg) {
        int tx = open_ring((const char *)arg, IPCF_MBOX_SEND, 65536);
        uint8_t b[MSG];
        uint32_t i = 0;
        /* Until its ring is full (the receiver's too). */
        for (;; i++) {
                fill(b, MSG, i);
                ssize_t n = ipcf_mbox_send(tx, b, MSG, 300, NULL);
                if (n == -ETIMEDOUT)
                        break;
                CHECK_EQ(n, MSG);
        }
        atomic_store(&SH->got, (int)i);
        /* Some are unread in its ring as it ends. */
        CHECK(msgs_in_of((const char *)arg) < i);
        CHECK_OK(ipcf_dealloc(tx, "done"));
}

static void receiver_go_then_read(void *arg) {
        int rx = open_ring((const char *)arg, IPCF_MBOX_RECV, 65536);
        atomic_store(&SH->ready, 1);
        wait_flag(&SH->go, 1);
        read_in_order(rx, 0, (uint32_t)atomic_load(&SH->got));
        uint8_t b[MSG];
        CHECK_ERR(ipcf_mbox_recv(rx, b, sizeof(b), 300, NULL), -ETIMEDOUT);
}

TEST(a_sender_that_ends_with_unread_messages_loses_none) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        small_rings_box("box.we");
        pid_t r = test_fork(receiver_go_then_read, "box.we");
        wait_flag(&SH->ready, 1);
        wait_receivers("box.we", 1);
        pid_t s = test_fork(sender_fill_then_end, "box.we");
        CHECK_EQ(test_wait(s, 20000), 0);
        CHECK(atomic_load(&SH->got) >= 10);
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 30000), 0);
        test_daemon_stop(&d);
}

/* Two receivers, one that never reads: the other gets every message as it
 * reads, paced (its ring often full), and
 * then the idle one's, when it dies. None is lost or doubled; no send
 * waits 20 s. */
static _Atomic uint8_t *SEEN;

static void receiver_paced(void *arg) {
        int rx = open_ring((const char *)arg, IPCF_MBOX_RECV, 65536);
        atomic_store(&SH->ready, 2);
        for (int n = 0; n < STREAM_N; n++) {
                uint32_t seq;
                CHECK_EQ(recv_numbered(rx, 10000, &seq), MSG);
                CHECK_EQ(atomic_fetch_add(&SEEN[seq], 1), 0);
                if (n % 4 == 0)
                        usleep(300);
        }
}

TEST(a_receiver_that_reads_beside_one_that_never_does_gets_every_message) {
        shared_new();
        SEEN = mmap(NULL, STREAM_N, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(SEEN != MAP_FAILED);
        test_daemon_start(&d, NULL, NULL);
        small_rings_box("box.w2");
        pid_t idle = test_fork(receiver_idle_then_die, "box.w2");
        wait_flag(&SH->ready, 1);
        pid_t r = test_fork(receiver_paced, "box.w2");
        wait_flag(&SH->ready, 2);
        wait_receivers("box.w2", 2);
        pid_t s = test_fork(sender_numbered, "box.w2");
        /* Every message but the dozen the idle one holds reaches the other
         * while the idle one lives. */
        uint64_t t0 = test_now_ms();
        for (;;) {
                int seen = 0;
                for (int i = 0; i < STREAM_N; i++)
                        seen += atomic_load(&SEEN[i]);
                if (seen >= STREAM_N - 16)
                        break;
                CHECK(test_now_ms() - t0 < 30000);
                usleep(10000);
        }
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(idle, 10000), 128 + SIGKILL);
        CHECK_EQ(test_wait(r, 30000), 0);
        atomic_store(&SH->go, 2);
        CHECK_EQ(test_wait(s, 10000), 0);
        test_daemon_stop(&d);
}
