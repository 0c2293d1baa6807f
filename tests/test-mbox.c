/*
 * test-mbox.c — mailboxes against the real daemon: the normal path (stamps,
 * receipts, fairness), every timeout, the failures (receiver killed holding
 * messages, exclusive mailbox, destroy with receivers and blocked senders),
 * and 4 senders x 4 competing receivers x 1 M numbered messages: none lost,
 * none duplicated (IPCF_TEST_QUICK=1: 50 k per sender); large messages of
 * every size class of the daemon's block pool, whole and in order.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/ring.h"
#include "ipcf.h"
#include "support/hostile.h"
#include "support/test.h"

static test_daemon d;

TEST(send_receive_stamped_with_receipt) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.a", NULL));
        CHECK_ERR(ipcf_mbox_create("box.a", NULL), -EEXIST);
        int rx = CHECK_OK(ipcf_mbox_open("box.a", IPCF_MBOX_RECV, NULL, 2000));
        int tx = CHECK_OK(ipcf_mbox_open("box.a", IPCF_MBOX_SEND, NULL, 2000));
        CHECK_EQ(ipcf_mbox_send(tx, "hello", 5, 1000, NULL), 5);
        char buf[64];
        ipcf_peer_info from;
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 1000, &from), 5);
        CHECK_MEM(buf, "hello", 5);
        CHECK_EQ(from.pid, getpid());
        CHECK_EQ(from.uid, getuid());
        /* An empty message is a message. */
        CHECK_EQ(ipcf_mbox_send(tx, "", 0, 1000, NULL), 0);
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 1000, NULL), 0);
        /* A receipt: sent, then taken by the receiver (another thread would
         * do; here the receiver reads once the receipt's wait times out). */
        ipcf_receipt rc;
        CHECK_ERR(ipcf_mbox_send(tx, "r1", 2, 100, &rc), -ETIMEDOUT);
        CHECK_EQ(rc.seq, 3); /* sent: its number, no receiver yet */
        CHECK_EQ(rc.receiver, 0);
        CHECK_ERR(ipcf_mbox_receipt(tx, 0, &rc), -EAGAIN);
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 1000, NULL), 2);
        /* ...and its receipt comes later. */
        CHECK_OK(ipcf_mbox_receipt(tx, 2000, &rc));
        CHECK_EQ(rc.seq, 3);
        CHECK_EQ(rc.receiver, getpid());
        /* Asynchronous receipts: send now, collect later, each once. */
        uint64_t seq;
        for (int i = 0; i < 10; i++) {
                CHECK_EQ(ipcf_mbox_send_async(tx, "s", 1, 1000, &seq), 1);
                CHECK_EQ(seq, 4 + i);
        }
        for (int i = 0; i < 10; i++)
                CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 1000, NULL), 1);
        uint32_t seen = 0;
        for (int i = 0; i < 10; i++) {
                CHECK_OK(ipcf_mbox_receipt(tx, 2000, &rc));
                CHECK(rc.seq >= 4 && rc.seq < 14 && !(seen & (1u << (rc.seq - 4))));
                seen |= 1u << (rc.seq - 4);
        }
        CHECK_ERR(ipcf_mbox_receipt(tx, 50, &rc), -ETIMEDOUT);
        CHECK_ERR(ipcf_mbox_receipt(tx, 0, NULL), -EINVAL);
        /* cap too small: the message stays */
        CHECK_EQ(ipcf_mbox_send(tx, "abcdef", 6, 1000, NULL), 6);
        CHECK_ERR(ipcf_mbox_recv(rx, buf, 3, 1000, NULL), -EMSGSIZE);
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 1000, NULL), 6);
        /* A handle is pollable: readable exactly when a message waits. */
        struct pollfd p = { .fd = CHECK_OK(ipcf_fd(rx)), .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 0), 0);
        CHECK_EQ(ipcf_mbox_send(tx, "p", 1, 1000, NULL), 1);
        CHECK_EQ(poll(&p, 1, 2000), 1);
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 0, NULL), 1);
        CHECK_EQ(poll(&p, 1, 0), 0);
        CHECK_OK(ipcf_dealloc(rx, NULL));
        CHECK_OK(ipcf_dealloc(tx, NULL));
        CHECK_OK(ipcf_mbox_destroy("box.a"));
        CHECK_ERR(ipcf_mbox_destroy("box.a"), -ENOENT);
        test_daemon_stop(&d);
}

static void receiver_echo_one(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 2000));
        char buf[64];
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 5000, NULL), 3);
        usleep(200 * 1000);
}

TEST(receipt_names_the_receiver) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.rc", NULL));
        int tx = CHECK_OK(ipcf_mbox_open("box.rc", IPCF_MBOX_SEND, NULL, 2000));
        pid_t c = test_fork(receiver_echo_one, "box.rc");
        ipcf_receipt rc;
        CHECK_EQ(ipcf_mbox_send(tx, "abc", 3, 5000, &rc), 3);
        CHECK_EQ(rc.receiver, c);
        CHECK_EQ(rc.seq, 1);
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

TEST(timeouts_and_bad_arguments) {
        test_daemon_start(&d, NULL, NULL);
        char buf[16];
        CHECK_ERR(ipcf_mbox_open("box.none", IPCF_MBOX_SEND, NULL, 1000), -ENOENT);
        CHECK_ERR(ipcf_mbox_create("bad name", NULL), -EINVAL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 2, .max_msg_size = 8 };
        CHECK_OK(ipcf_mbox_create("box.t", &o));
        CHECK_ERR(ipcf_mbox_open("box.t", 3, NULL, 1000), -EINVAL);
        CHECK_ERR(ipcf_mbox_open("box.t", IPCF_MBOX_SEND, NULL, 0), -EINVAL);
        int rx = CHECK_OK(ipcf_mbox_open("box.t", IPCF_MBOX_RECV, NULL, 2000));
        CHECK_ERR(ipcf_mbox_recv(rx, buf, sizeof(buf), 0, NULL), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_mbox_recv(rx, buf, sizeof(buf), 100, NULL), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 90);
        CHECK_OK(ipcf_dealloc(rx, NULL));
        /* No receiver: the mailbox holds 2, then the sender's own queue fills
         * and its full policy applies. */
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msgs = 2;
        int tx = CHECK_OK(ipcf_mbox_open("box.t", IPCF_MBOX_SEND, &q, 2000));
        CHECK_ERR(ipcf_mbox_send(tx, "123456789", 9, 1000, NULL), -EMSGSIZE);
        /* 2 in the mailbox, 2 in the sender's queue (the 3rd waits for the
         * daemon to take the first 2: a long bound), then the 5th blocks. */
        for (int i = 0; i < 4; i++)
                CHECK_EQ(ipcf_mbox_send(tx, "x", 1, 5000, NULL), 1);
        CHECK_ERR(ipcf_mbox_send(tx, "x", 1, 200, NULL), -ETIMEDOUT);
        CHECK_ERR(ipcf_mbox_send(tx, "x", 1, 0, NULL), -EAGAIN);
        q.full = IPCF_FULL_FAIL;
        int tx2 = CHECK_OK(ipcf_mbox_open("box.t", IPCF_MBOX_SEND, &q, 2000));
        CHECK_EQ(ipcf_mbox_send(tx2, "y", 1, 1000, NULL), 1);
        CHECK_EQ(ipcf_mbox_send(tx2, "y", 1, 1000, NULL), 1);
        CHECK_ERR(ipcf_mbox_send(tx2, "y", 1, 1000, NULL), -EAGAIN);
        /* A receipt nobody can give in time. */
        ipcf_receipt rc;
        CHECK_ERR(ipcf_mbox_send(tx2, "z", 1, 50, &rc), -EAGAIN);
        CHECK_EQ(rc.seq, 0); /* the queue was full: nothing sent */
        /* Bad handles. */
        CHECK_ERR(ipcf_mbox_send(9999, "x", 1, 0, NULL), -EBADF);
        CHECK_ERR(ipcf_mbox_recv(9999, buf, 1, 0, NULL), -EBADF);
        /* A receiver takes the backlog, in order per sender. */
        rx = CHECK_OK(ipcf_mbox_open("box.t", IPCF_MBOX_RECV, NULL, 2000));
        int got = 0;
        while (ipcf_mbox_recv(rx, buf, sizeof(buf), 500, NULL) == 1)
                got++;
        CHECK_EQ(got, 6);
        test_daemon_stop(&d);
}

TEST(exclusive_mailbox_has_one_receiver) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .flags = IPCF_MBOX_EXCLUSIVE };
        CHECK_OK(ipcf_mbox_create("box.x", &o));
        int rx = CHECK_OK(ipcf_mbox_open("box.x", IPCF_MBOX_RECV, NULL, 2000));
        CHECK_ERR(ipcf_mbox_open("box.x", IPCF_MBOX_RECV, NULL, 2000), -EBUSY);
        int tx = CHECK_OK(ipcf_mbox_open("box.x", IPCF_MBOX_SEND, NULL, 2000));
        CHECK_OK(ipcf_dealloc(rx, NULL));
        /* Released at once: the next receiver is welcome. */
        int rx2 = CHECK_OK(ipcf_mbox_open("box.x", IPCF_MBOX_RECV, NULL, 2000));
        CHECK_EQ(ipcf_mbox_send(tx, "q", 1, 1000, NULL), 1);
        char b[4];
        CHECK_EQ(ipcf_mbox_recv(rx2, b, sizeof(b), 1000, NULL), 1);
        test_daemon_stop(&d);
}

/* Mailbox name's entry in the model list into *ret; false if none. */
static bool model_entry_of(const char *name, ipcf_model_entry *ret) {
        ipcf_model_entry *e;
        size_t n;
        CHECK_OK(ipcf_model_list(&e, &n));
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
                if (strcmp(e[k].name, name) == 0)
                        *ret = e[k], found = true;
        ipcf_free(e);
        return found;
}

/* Waits (40 s at most) until mailbox name has taken n messages from its
 * senders and holds none: every one is in a receiver's ring. */
static void model_wait_given_out(const char *name, uint64_t n) {
        uint64_t t0 = test_now_ms();
        for (;;) {
                ipcf_model_entry e;
                if (model_entry_of(name, &e) && e.msgs_in == n && e.queued == 0)
                        return;
                if (test_now_ms() - t0 > 40000)
                        test_fail(__FILE__, __LINE__, "%s never gave out %llu messages", name,
                                  (unsigned long long)n);
                usleep(10000);
        }
}

static void model_wait_counts(const char *name, uint32_t senders, uint32_t receivers) {
        for (int i = 0; i < 500; i++) {
                ipcf_model_entry e;
                if (model_entry_of(name, &e) && e.senders == senders && e.receivers == receivers)
                        return;
                usleep(10000);
        }
        test_fail(__FILE__, __LINE__, "%s never had %u senders, %u receivers", name, senders, receivers);
}

TEST(round_robin_among_receivers) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.rr", NULL));
        int rx[3];
        for (int i = 0; i < 3; i++)
                rx[i] = CHECK_OK(ipcf_mbox_open("box.rr", IPCF_MBOX_RECV, NULL, 2000));
        int tx = CHECK_OK(ipcf_mbox_open("box.rr", IPCF_MBOX_SEND, NULL, 2000));
        for (int i = 0; i < 300; i++)
                CHECK_EQ(ipcf_mbox_send(tx, &i, sizeof(i), 1000, NULL), sizeof(i));
        /* All given out before the reads (a daemon held off the CPU 300 ms
         * would end a receiver's share early): then each reads its ring. */
        model_wait_given_out("box.rr", 300);
        int n[3] = { 0, 0, 0 }, last = -1;
        for (int k = 0; k < 3; k++) {
                int v;
                while (ipcf_mbox_recv(rx[k], &v, sizeof(v), 300, NULL) == sizeof(v)) {
                        n[k]++;
                        CHECK(k > 0 || v > last); /* in order within a receiver */
                        if (k == 0)
                                last = v;
                }
        }
        CHECK_EQ(n[0] + n[1] + n[2], 300);
        for (int k = 0; k < 3; k++)
                CHECK(n[k] >= 90 && n[k] <= 110);
        test_daemon_stop(&d);
}

static void receiver_then_killed(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 2000));
        char b[16];
        /* Take one, hold the rest unread, die. */
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL), 4);
        raise(SIGKILL);
}

TEST(receiver_killed_holding_messages_gives_them_back) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.k", NULL));
        int tx = CHECK_OK(ipcf_mbox_open("box.k", IPCF_MBOX_SEND, NULL, 2000));
        pid_t c = test_fork(receiver_then_killed, "box.k");
        /* Wait for the child's receiver to exist, then send 20. */
        for (int i = 0; i < 200; i++) {
                ipcf_model_entry *e;
                size_t n;
                CHECK_OK(ipcf_model_list(&e, &n));
                bool ready = n == 1 && e[0].receivers == 1;
                ipcf_free(e);
                if (ready)
                        break;
                usleep(10000);
        }
        for (int i = 0; i < 20; i++)
                CHECK_EQ(ipcf_mbox_send(tx, &i, 4, 1000, NULL), 4);
        CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
        /* The daemon has seen the death (the 19 back in its FIFO), then
         * given them all to the next receiver, before its reads end on a
         * 500 ms silence (a daemon held off the CPU that long is no loss). */
        model_wait_counts("box.k", 1, 0);
        int rx = CHECK_OK(ipcf_mbox_open("box.k", IPCF_MBOX_RECV, NULL, 2000));
        model_wait_given_out("box.k", 20);
        int v, got = 0, expect = 1;
        while (ipcf_mbox_recv(rx, &v, 4, 500, NULL) == 4) {
                CHECK_EQ(v, expect); /* the child took #0; the rest come back in order */
                expect++;
                got++;
        }
        CHECK_EQ(got, 19);
        test_daemon_stop(&d);
}

/* Counts shared with the children of the destroy tests. */
struct dcounts {
        _Atomic int64_t sent, undelivered, got;
        _Atomic bool hold, go; /* hold: the receiver stops after its first message until go */
};
static struct dcounts *DC;

static void sender_until_blocked(void *arg) {
        int tx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_SEND, NULL, 2000));
        ssize_t r;
        while ((r = ipcf_mbox_send(tx, "m", 1, -1, NULL)) == 1)
                atomic_fetch_add(&DC->sent, 1);
        /* Woken by the destroy while blocked. */
        CHECK_ERR(r, -EPIPE);
        atomic_store(&DC->undelivered, ipcf_mbox_undelivered(tx));
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(tx, &why));
        CHECK(strstr(why.text, "mailbox destroyed") != NULL);
}

static void receiver_blocked(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 2000));
        char b[8];
        ssize_t r;
        /* What it was given before the destroy stays readable; then -EPIPE. */
        while ((r = ipcf_mbox_recv(rx, b, sizeof(b), -1, NULL)) >= 0) {
                atomic_fetch_add(&DC->got, 1);
                while (atomic_load(&DC->hold) && !atomic_load(&DC->go))
                        usleep(1000);
        }
        CHECK_ERR(r, -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(rx, &why));
        CHECK(strcmp(why.text, "mailbox destroyed") == 0);
}

/* Waits (40 s at most) until mailbox name holds queued messages. */
static void model_wait_queued(const char *name, uint32_t queued) {
        uint64_t t0 = test_now_ms();
        for (;;) {
                ipcf_model_entry e;
                if (model_entry_of(name, &e) && e.queued == queued)
                        return;
                if (test_now_ms() - t0 > 40000)
                        test_fail(__FILE__, __LINE__, "%s never held %u messages", name, queued);
                usleep(10000);
        }
}

TEST(destroy_wakes_a_blocked_receiver) {
        DC = mmap(NULL, sizeof(*DC), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.d1", NULL));
        pid_t r = test_fork(receiver_blocked, "box.d1");
        model_wait_counts("box.d1", 0, 1);
        usleep(50 * 1000);
        CHECK_OK(ipcf_mbox_destroy("box.d1"));
        CHECK_EQ(test_wait(r, 5000), 0);
        CHECK_EQ(atomic_load(&DC->got), 0);
        test_daemon_stop(&d);
}

TEST(destroy_with_a_blocked_sender_reports_every_message_undelivered) {
        DC = mmap(NULL, sizeof(*DC), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 8 };
        CHECK_OK(ipcf_mbox_create("box.d2", &o));
        pid_t s = test_fork(sender_until_blocked, "box.d2");
        /* Let it fill the mailbox and its queue, and block: its count is past
         * the mailbox's 8 and stops moving (on a loaded machine the child
         * may take long to start: a first count of 0 is no answer). */
        int64_t last = -1, now;
        uint64_t t0 = test_now_ms();
        while ((now = atomic_load(&DC->sent)) != last || now <= 8) {
                CHECK(test_now_ms() - t0 < 40000);
                last = now;
                usleep(200 * 1000);
        }
        CHECK_OK(ipcf_mbox_destroy("box.d2"));
        CHECK_EQ(test_wait(s, 5000), 0);
        CHECK_EQ(atomic_load(&DC->undelivered), atomic_load(&DC->sent));
        CHECK_ERR(ipcf_mbox_open("box.d2", IPCF_MBOX_SEND, NULL, 1000), -ENOENT);
        test_daemon_stop(&d);
}

TEST(destroy_midway_every_message_delivered_or_reported) {
        DC = mmap(NULL, sizeof(*DC), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 64 };
        CHECK_OK(ipcf_mbox_create("box.d3", &o));
        pid_t r = test_fork(receiver_blocked, "box.d3");
        model_wait_counts("box.d3", 0, 1);
        atomic_store(&DC->hold, true);
        pid_t s = test_fork(sender_until_blocked, "box.d3");
        /* Midway, by state, not time: the receiver has its first message
         * and stops reading (hold), so its ring fills, then the mailbox
         * (its 64), then the sender's queue, and the sender blocks; the
         * mailbox stays full until the destroy. A sender or receiver held
         * off the CPU only makes this wait longer (before, a fixed 400 ms
         * after the first message: a sender late that long had sent 1,
         * nothing undelivered). The receiver reads the rest after. */
        uint64_t t0 = test_now_ms();
        while (atomic_load(&DC->got) < 1) {
                CHECK(test_now_ms() - t0 < 40000);
                usleep(10 * 1000);
        }
        model_wait_queued("box.d3", 64);
        CHECK_OK(ipcf_mbox_destroy("box.d3"));
        atomic_store(&DC->go, true);
        CHECK_EQ(test_wait(s, 5000), 0);
        CHECK_EQ(test_wait(r, 10000), 0);
        int64_t sent = atomic_load(&DC->sent), got = atomic_load(&DC->got);
        int64_t und = atomic_load(&DC->undelivered);
        CHECK(got > 1 && und >= 64); /* its ring's share, the mailbox's */
        CHECK_EQ(got + und, sent);
        test_daemon_stop(&d);
}

/* ---- 4 senders x 4 receivers ------------------------------------------------ */

#define NS 4
#define NR 4

struct load {
        uint64_t per_sender;
        _Atomic uint64_t received;
        _Atomic uint8_t seen[]; /* NS * per_sender: times each message arrived */
};

static struct load *L;

struct __attribute__((packed)) numbered {
        uint32_t sender;
        uint64_t seq;
};

static void load_sender(void *arg) {
        uint32_t id = (uint32_t)(uintptr_t)arg;
        int tx = CHECK_OK(ipcf_mbox_open("box.load", IPCF_MBOX_SEND, NULL, 5000));
        for (uint64_t i = 0; i < L->per_sender; i++) {
                struct numbered m = { id, i };
                CHECK_EQ(ipcf_mbox_send(tx, &m, sizeof(m), 10000, NULL), sizeof(m));
        }
        CHECK_OK(ipcf_dealloc(tx, "done"));
}

static void load_receiver(void *arg) {
        (void)arg;
        int rx = CHECK_OK(ipcf_mbox_open("box.load", IPCF_MBOX_RECV, NULL, 5000));
        uint64_t total = NS * L->per_sender, last[NS];
        memset(last, 0xff, sizeof(last));
        while (atomic_load(&L->received) < total) {
                struct numbered m;
                ipcf_peer_info from;
                ssize_t n = ipcf_mbox_recv(rx, &m, sizeof(m), 100, &from);
                if (n == -ETIMEDOUT)
                        continue;
                CHECK_EQ(n, sizeof(m));
                CHECK(m.sender < NS && m.seq < L->per_sender);
                /* FIFO per sender within one receiver. */
                CHECK(last[m.sender] == UINT64_MAX || m.seq > last[m.sender]);
                last[m.sender] = m.seq;
                atomic_fetch_add(&L->seen[m.sender * L->per_sender + m.seq], 1);
                atomic_fetch_add(&L->received, 1);
        }
}

TEST_TIMEOUT(four_senders_four_receivers_none_lost_none_duplicated, 300) {
        const char *q = getenv("IPCF_TEST_QUICK");
        uint64_t per = q && strcmp(q, "1") == 0 ? 50000 : 1000000;
        size_t size = sizeof(struct load) + NS * per;
        L = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(L != MAP_FAILED);
        L->per_sender = per;
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 4096 };
        CHECK_OK(ipcf_mbox_create("box.load", &o));
        uint64_t t0 = test_now_ms();
        pid_t rp[NR], sp[NS];
        for (int i = 0; i < NR; i++)
                rp[i] = test_fork(load_receiver, NULL);
        for (int i = 0; i < NS; i++)
                sp[i] = test_fork(load_sender, (void *)(uintptr_t)i);
        for (int i = 0; i < NS; i++)
                CHECK_EQ(test_wait(sp[i], 280000), 0);
        for (int i = 0; i < NR; i++)
                CHECK_EQ(test_wait(rp[i], 60000), 0);
        uint64_t ms = test_now_ms() - t0;
        CHECK_EQ(atomic_load(&L->received), NS * per);
        for (uint64_t i = 0; i < NS * per; i++)
                if (L->seen[i] != 1)
                        test_fail(__FILE__, __LINE__, "message %llu of sender %llu seen %u times",
                                  (unsigned long long)(i % per), (unsigned long long)(i / per),
                                  (unsigned)L->seen[i]);
        printf("     %d x %d x %llu messages in %llu ms (%.0f msgs/s)\n", NS, NR,
               (unsigned long long)per, (unsigned long long)ms, NS * per * 1000.0 / (double)(ms ? ms : 1));
        test_daemon_stop(&d);
}

TEST(a_sender_writing_garbage_loses_only_its_own_flow) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.bad", NULL));
        int rx = CHECK_OK(ipcf_mbox_open("box.bad", IPCF_MBOX_RECV, NULL, 2000));
        int good = CHECK_OK(ipcf_mbox_open("box.bad", IPCF_MBOX_SEND, NULL, 2000));
        int bad = CHECK_OK(ipcf_mbox_open("box.bad", IPCF_MBOX_SEND, NULL, 2000));
        /* A handle is a port: raw writes bypass the framing. */
        CHECK_EQ(ipcf_write(bad, "xx", 2, 1000), 2);
        char frame[40] = { 9 }; /* unknown kind */
        ipcf_write(bad, frame, sizeof(frame), 1000);
        ssize_t r = 0;
        for (int i = 0; i < 100 && r >= 0; i++) {
                r = ipcf_mbox_send(bad, "y", 1, 100, NULL);
                usleep(10000);
        }
        CHECK(r == -EPIPE || r == -EPROTO);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(bad, &why));
        CHECK(strcmp(why.text, "bad mailbox frame") == 0);
        /* The mailbox and the others go on. */
        CHECK_EQ(ipcf_mbox_send(good, "ok", 2, 1000, NULL), 2);
        char b[8];
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 1000, NULL), 2);
        CHECK_MEM(b, "ok", 2);
        test_daemon_stop(&d);
}

static void sender_sends_then_dies(void *arg) {
        int tx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_SEND, NULL, 2000));
        for (int i = 0; i < 500; i++)
                CHECK_EQ(ipcf_mbox_send(tx, &i, 4, 1000, NULL), 4);
        raise(SIGKILL);
}

TEST(what_a_killed_sender_sent_is_still_delivered) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.sd", NULL));
        pid_t c = test_fork(sender_sends_then_dies, "box.sd");
        CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
        int rx = CHECK_OK(ipcf_mbox_open("box.sd", IPCF_MBOX_RECV, NULL, 2000));
        ipcf_peer_info from;
        for (int i = 0; i < 500; i++) {
                int v;
                CHECK_EQ(ipcf_mbox_recv(rx, &v, 4, 2000, &from), 4);
                CHECK_EQ(v, i);
                CHECK_EQ(from.pid, c);
        }
        test_daemon_stop(&d);
}

static void receiver_takes_nothing_and_dies(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 2000));
        (void)rx;
        usleep(300 * 1000);
        raise(SIGKILL);
}

static void *thread_receive_two(void *arg) {
        int rx = -EBUSY;
        for (int i = 0; i < 100 && rx == -EBUSY; i++) {
                rx = ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 2000);
                if (rx == -EBUSY)
                        usleep(10000); /* the dead one is not gone yet */
        }
        char b[4];
        if (rx < 0 || ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL) != 1 || b[0] != 'm' ||
            ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL) != 1 || b[0] != 'n')
                return (void *)1;
        return NULL;
}

TEST(a_receipt_names_the_receiver_that_really_took_it) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .flags = IPCF_MBOX_EXCLUSIVE };
        CHECK_OK(ipcf_mbox_create("box.rr2", &o));
        int tx = CHECK_OK(ipcf_mbox_open("box.rr2", IPCF_MBOX_SEND, NULL, 2000));
        pid_t c = test_fork(receiver_takes_nothing_and_dies, "box.rr2");
        usleep(100 * 1000);
        /* Goes to the child first, which dies without reading it: the
         * message comes back, and we take it ourselves. */
        ipcf_receipt rc;
        CHECK_ERR(ipcf_mbox_send(tx, "m", 1, 100, &rc), -ETIMEDOUT);
        CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
        /* A receiver thread of ours takes both; the receipt of each names us
         * (the first's, not waited for any more, is kept for collection). */
        pthread_t t;
        CHECK(pthread_create(&t, NULL, thread_receive_two, "box.rr2") == 0);
        CHECK_EQ(ipcf_mbox_send(tx, "n", 1, 5000, &rc), 1);
        CHECK_EQ(rc.receiver, getpid());
        CHECK_EQ(rc.seq, 2);
        void *res;
        CHECK(pthread_join(t, &res) == 0);
        CHECK(res == NULL);
        CHECK_OK(ipcf_mbox_receipt(tx, 2000, &rc));
        CHECK_EQ(rc.seq, 1);
        CHECK_EQ(rc.receiver, getpid());
        test_daemon_stop(&d);
}

/* A receiver that leaves (deallocates) after `quota` messages, holding
 * whatever else its queue had: those go back to the others. */
static uint64_t churn_quota;

static void churn_receiver(void *arg) {
        (void)arg;
        int rx = CHECK_OK(ipcf_mbox_open("box.load", IPCF_MBOX_RECV, NULL, 5000));
        uint64_t total = NS * L->per_sender, mine = 0;
        while (atomic_load(&L->received) < total && (!churn_quota || mine < churn_quota)) {
                struct numbered m;
                ssize_t n = ipcf_mbox_recv(rx, &m, sizeof(m), 100, NULL);
                if (n == -ETIMEDOUT)
                        continue;
                CHECK_EQ(n, sizeof(m));
                CHECK(m.sender < NS && m.seq < L->per_sender);
                atomic_fetch_add(&L->seen[m.sender * L->per_sender + m.seq], 1);
                atomic_fetch_add(&L->received, 1);
                mine++;
        }
        CHECK_OK(ipcf_dealloc(rx, "leaving"));
}

TEST_TIMEOUT(receivers_leaving_under_load_lose_and_duplicate_nothing, 120) {
        uint64_t per = 50000;
        size_t size = sizeof(struct load) + NS * per;
        L = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(L != MAP_FAILED);
        L->per_sender = per;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.load", NULL));
        pid_t stay = test_fork(churn_receiver, NULL); /* reads to the end */
        churn_quota = 5000;
        pid_t leave[6];
        for (int i = 0; i < 2; i++)
                leave[i] = test_fork(churn_receiver, NULL);
        pid_t sp[NS];
        for (int i = 0; i < NS; i++)
                sp[i] = test_fork(load_sender, (void *)(uintptr_t)i);
        /* More leavers join while it runs. */
        for (int i = 2; i < 6; i++) {
                usleep(50 * 1000);
                leave[i] = test_fork(churn_receiver, NULL);
        }
        for (int i = 0; i < NS; i++)
                CHECK_EQ(test_wait(sp[i], 60000), 0);
        for (int i = 0; i < 6; i++)
                CHECK_EQ(test_wait(leave[i], 60000), 0);
        CHECK_EQ(test_wait(stay, 60000), 0);
        CHECK_EQ(atomic_load(&L->received), NS * per);
        for (uint64_t i = 0; i < NS * per; i++)
                if (L->seen[i] != 1)
                        test_fail(__FILE__, __LINE__, "message %llu of sender %llu seen %u times",
                                  (unsigned long long)(i % per), (unsigned long long)(i / per),
                                  (unsigned)L->seen[i]);
        test_daemon_stop(&d);
}

TEST(daemon_death_ends_mailbox_handles) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.dd", NULL));
        int rx = CHECK_OK(ipcf_mbox_open("box.dd", IPCF_MBOX_RECV, NULL, 2000));
        int tx = CHECK_OK(ipcf_mbox_open("box.dd", IPCF_MBOX_SEND, NULL, 2000));
        CHECK_EQ(ipcf_mbox_send(tx, "a", 1, 1000, NULL), 1);
        model_wait_given_out("box.dd", 1); /* in rx's ring: delivered */
        test_daemon_kill(&d);
        char b[4];
        /* What was delivered is read; then the broker's death shows. */
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 2000, NULL), 1);
        CHECK_ERR(ipcf_mbox_recv(rx, b, sizeof(b), 2000, NULL), -ECONNRESET);
        ssize_t r = 0;
        for (int i = 0; i < 100000 && r >= 0; i++)
                r = ipcf_mbox_send(tx, "b", 1, 2000, NULL);
        CHECK_ERR(r, -ECONNRESET);
        test_daemon_stop(&d);
}

/* The daemon's run slot (side 1) of a mailbox flow at region mem: its CPU
 * and "asleep" as wait.c reads them. */
static void run_slot(void *mem, unsigned *ret_cpu, unsigned *ret_blocked) {
        struct flow_hdr *h = mem;
        *ret_cpu = atomic_load(&h->run[1].cpu);
        *ret_blocked = atomic_load(&h->run[1].blocked);
}

/* Open name (how) and find the flow's region this process mapped. */
static int open_mapped(const char *name, int how, void **ret_mem) {
        mapset ms;
        size_t len = 0;
        mapset_snapshot(&ms, "ipcf-flow");
        int h = CHECK_OK(ipcf_mbox_open(name, how, NULL, 2000));
        *ret_mem = mapset_new_since(&ms, "ipcf-flow", &len);
        CHECK(*ret_mem != NULL);
        return h;
}

/* Until the daemon's slot in mem reads (cpu, blocked); false after ~10 s. */
static bool run_slot_reaches(void *mem, unsigned cpu, unsigned blocked) {
        for (int i = 0; i < 1000; i++) {
                unsigned c, b;
                run_slot(mem, &c, &b);
                if (c == cpu && b == blocked)
                        return true;
                usleep(10000);
        }
        return false;
}

/* RUN SLOTS (mbox.c): after each pump the daemon writes its CPU, and
 * whether it will look at the mailbox again without a wake-up, in the run
 * slot of each of the mailbox's flows, so that a client spins only for a
 * daemon that is awake on another CPU (wait.c). The daemon is pinned to a
 * CPU here, so the slot must name that CPU; once the traffic stops (its
 * spin window closes) the slot must say asleep; what a client scribbles
 * over the slot is overwritten by the next pump. */
TEST(the_daemon_shows_its_cpu_and_its_sleep_in_a_mailboxs_run_slots) {
        test_daemon_start(&d, NULL, NULL);
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned cpu = ncpu > 1 ? 1 : 0;
        cpu_set_t one, all;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        CHECK_OK(sched_getaffinity(d.pid, sizeof(all), &all));
        CHECK_OK(sched_setaffinity(d.pid, sizeof(one), &one));
        CHECK_OK(ipcf_mbox_create("box.run", NULL));
        void *rmem, *smem;
        int rx = open_mapped("box.run", IPCF_MBOX_RECV, &rmem);
        int tx = open_mapped("box.run", IPCF_MBOX_SEND, &smem);
        /* Opened, nothing moved: no window, the daemon sleeps. */
        CHECK(run_slot_reaches(rmem, cpu, 1));
        CHECK(run_slot_reaches(smem, cpu, 1));
        for (int round = 0; round < 3; round++) {
                /* A client lies in the daemon's slot: awake, another CPU. */
                atomic_store(&((struct flow_hdr *)rmem)->run[1].cpu, cpu + 7);
                atomic_store(&((struct flow_hdr *)rmem)->run[1].blocked, 0);
                atomic_store(&((struct flow_hdr *)smem)->run[1].cpu, cpu + 7);
                char b[8];
                for (int i = 0; i < 100; i++) {
                        CHECK_EQ(ipcf_mbox_send(tx, "ping", 4, 2000, NULL), 4);
                        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 2000, NULL), 4);
                }
                /* The traffic stopped: the window closes, the slots say
                 * so, with the daemon's own CPU. */
                CHECK(run_slot_reaches(rmem, cpu, 1));
                CHECK(run_slot_reaches(smem, cpu, 1));
        }
        CHECK_OK(sched_setaffinity(d.pid, sizeof(all), &all));
        ipcf_dealloc(tx, "done");
        ipcf_dealloc(rx, "done");
        CHECK_OK(ipcf_mbox_destroy("box.run"));
        test_daemon_stop(&d);
}

TEST(a_stream_mailbox_is_a_named_pipe) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .flags = IPCF_MBOX_STREAM };
        CHECK_OK(ipcf_mbox_create("pipe.s", &o));
        int rx = CHECK_OK(ipcf_mbox_open("pipe.s", IPCF_MBOX_RECV, NULL, 2000));
        int tx = CHECK_OK(ipcf_mbox_open("pipe.s", IPCF_MBOX_SEND, NULL, 2000));
        CHECK_EQ(ipcf_mbox_send(tx, "hello world", 11, 1000, NULL), 11);
        CHECK_EQ(ipcf_mbox_send(tx, "abc", 3, 1000, NULL), 3);
        struct pollfd p = { .fd = CHECK_OK(ipcf_fd(rx)), .events = POLLIN };
        char b[8];
        ipcf_peer_info from;
        CHECK_EQ(ipcf_mbox_recv(rx, b, 4, 1000, &from), 4);
        CHECK_MEM(b, "hell", 4);
        CHECK_EQ(from.pid, getpid());
        /* The rest waits in this process: the descriptor says so. */
        CHECK_EQ(poll(&p, 1, 0), 1);
        memset(&from, 0, sizeof(from));
        CHECK_EQ(ipcf_mbox_recv(rx, b, 4, 1000, &from), 4);
        CHECK_MEM(b, "o wo", 4);
        CHECK_EQ(from.pid, getpid());
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 1000, NULL), 3);
        CHECK_MEM(b, "rld", 3);
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 1000, NULL), 3);
        CHECK_MEM(b, "abc", 3);
        CHECK_ERR(ipcf_mbox_recv(rx, b, sizeof(b), 0, NULL), -EAGAIN);
        CHECK_EQ(poll(&p, 1, 0), 0);
        /* cap 0 reads nothing and loses nothing. */
        CHECK_EQ(ipcf_mbox_send(tx, "z", 1, 1000, NULL), 1);
        CHECK_ERR(ipcf_mbox_recv(rx, b, 0, 1000, NULL), -EMSGSIZE);
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 1000, NULL), 1);
        test_daemon_stop(&d);
}

/* ---- large messages: every size class of the daemon's block pool ------------- */

/* Sizes around each power of two and quarter octave from 4 KiB to the
 * largest message (256 KiB), where the daemon's blocks change class (block =
 * its header + payload); 0 and 1 as well. */
static size_t big_sizes(size_t *out) {
        size_t n = 0;
        out[n++] = 0;
        out[n++] = 1;
        for (size_t base = 4096; base <= 256 * 1024; base *= 2)
                for (size_t q = 4; q < 8; q++)
                        for (int delta = -72; delta <= 8; delta += 8) {
                                long s = (long)(base * q / 4) + delta;
                                if (s > 0 && s <= 256 * 1024)
                                        out[n++] = (size_t)s;
                        }
        return n;
}

/* Message number seq of size len: its bytes say both. */
static void big_fill(uint8_t *b, size_t len, uint32_t seq) {
        for (size_t j = 0; j < len; j++)
                b[j] = (uint8_t)(seq * 131u + j * 7u + (j >> 8));
}

static bool big_check(const uint8_t *b, size_t len, uint32_t seq) {
        for (size_t j = 0; j < len; j++)
                if (b[j] != (uint8_t)(seq * 131u + j * 7u + (j >> 8)))
                        return false;
        return true;
}

#define BIG_ROUNDS 3

/* Receives every message of the rounds, in order, each checked whole. */
static void big_receiver(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 2000));
        static size_t sizes[512];
        size_t n = big_sizes(sizes);
        uint8_t *b = malloc(256 * 1024);
        uint32_t seq = 0;
        for (int r = 0; r < BIG_ROUNDS; r++)
                for (size_t i = 0; i < n; i++, seq++) {
                        CHECK_EQ(ipcf_mbox_recv(rx, b, 256 * 1024, 10000, NULL), (ssize_t)sizes[i]);
                        CHECK(big_check(b, sizes[i], seq));
                }
        free(b);
}

/* Takes one message of 100 KiB, holds the rest and dies. */
static void big_receiver_killed(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 2000));
        uint8_t *b = malloc(256 * 1024);
        CHECK_EQ(ipcf_mbox_recv(rx, b, 256 * 1024, 10000, NULL), 100 * 1024);
        CHECK(big_check(b, 100 * 1024, 0));
        raise(SIGKILL);
}

static void big_wait_receivers(const char *name, uint32_t want) {
        for (int i = 0; i < 500; i++) {
                ipcf_model_entry *e;
                size_t n;
                CHECK_OK(ipcf_model_list(&e, &n));
                bool ready = false;
                for (size_t k = 0; k < n; k++)
                        ready |= !strcmp(e[k].name, name) && e[k].receivers == want;
                ipcf_free(e);
                if (ready)
                        return;
                usleep(10000);
        }
        CHECK(!"the receiver never opened the mailbox");
}

/* The daemon keeps the blocks of large messages for reuse: messages of
 * every size class, three rounds over them (so that blocks come back and
 * serve other messages), arrive whole and in order; a receiver killed
 * holding 100 KiB messages gives them back whole to the next. */
TEST_TIMEOUT(large_messages_of_every_size_arrive_whole_and_blocks_are_reused, 120) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msg_size = 256 * 1024 };
        CHECK_OK(ipcf_mbox_create("box.big", &o));
        int tx = CHECK_OK(ipcf_mbox_open("box.big", IPCF_MBOX_SEND, NULL, 2000));
        static size_t sizes[512];
        size_t n = big_sizes(sizes);
        CHECK(n > 100 && n < 512);
        uint8_t *b = malloc(256 * 1024);
        pid_t c = test_fork(big_receiver, "box.big");
        uint32_t seq = 0;
        for (int r = 0; r < BIG_ROUNDS; r++)
                for (size_t i = 0; i < n; i++, seq++) {
                        big_fill(b, sizes[i], seq);
                        CHECK_EQ(ipcf_mbox_send(tx, b, sizes[i], 10000, NULL), (ssize_t)sizes[i]);
                }
        CHECK_EQ(test_wait(c, 60000), 0);

        c = test_fork(big_receiver_killed, "box.big");
        big_wait_receivers("box.big", 1);
        for (seq = 0; seq < 8; seq++) {
                big_fill(b, 100 * 1024, seq);
                CHECK_EQ(ipcf_mbox_send(tx, b, 100 * 1024, 10000, NULL), 100 * 1024);
        }
        CHECK_EQ(test_wait(c, 10000), 128 + SIGKILL);
        int rx = CHECK_OK(ipcf_mbox_open("box.big", IPCF_MBOX_RECV, NULL, 2000));
        for (seq = 1; seq < 8; seq++) {
                CHECK_EQ(ipcf_mbox_recv(rx, b, 256 * 1024, 5000, NULL), 100 * 1024);
                CHECK(big_check(b, 100 * 1024, seq));
        }
        CHECK_ERR(ipcf_mbox_recv(rx, b, 256 * 1024, 100, NULL), -ETIMEDOUT);
        free(b);
        CHECK_OK(ipcf_dealloc(rx, NULL));
        CHECK_OK(ipcf_dealloc(tx, NULL));
        CHECK_OK(ipcf_mbox_destroy("box.big"));
        test_daemon_stop(&d);
}
