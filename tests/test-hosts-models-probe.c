/*
 * test-hosts-models-probe.c — the qos and the models across hosts, as a
 * hostile probe of issue 10 checked them where no other test did (real
 * daemons over real UDP on 127.0.0.1: tests/support/hostset.c):
 *  - each qos on a flow to another host, beta reading late: the terms beta
 *    is asked for and granted are alpha's (spin aside); FAIL says EAGAIN
 *    while the queues are full, UNBOUNDED ENOBUFS at its limit, CACHE's
 *    cached messages and everything else arrive whole, in order, after the
 *    writer deallocated, then its reason; ZERO, max_msgs and STREAM alike;
 *  - an empty message and a batch (ipcf_write_many / ipcf_read_many, with
 *    an empty message in it) there and back;
 *  - a multicast group on beta with members on alpha, beta and gamma: each
 *    hears the 50 messages of each other member, in each sender's order;
 *  - a member on alpha that does not read, in a DROP group (what it gets +
 *    ipcf_mcast_lost = what was sent) and a REMOVE group (what it was
 *    given, then -EPIPE "too slow");
 *  - a mailbox on beta destroyed under a sender on alpha:
 *    ipcf_mbox_undelivered is exact (the queued ones, and one sent after);
 *  - a receiver on alpha of a mailbox on beta that read 1 of 20 messages and
 *    is killed, or deallocates: the 19 it had not read go to beta's next
 *    receiver, as a local receiver's do (they were lost: beta's relay had
 *    taken them, so the broker counted them taken), and a receipt for a
 *    message that receiver read names it; and mid-stream: 20,000 messages
 *    to a receiver on alpha that dies after 3,000 and one on beta, each
 *    read exactly once between them.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/hostset.h"
#include "support/test.h"

static hostset S;
static int gate[2]; /* the test process -> a child: go on */
static int back[2]; /* a child -> the test process: done */

static void start_two(void) {
        hostset_start_two(&S, "[name *]\nremote_allocate = *@alpha\n");
        CHECK(pipe(gate) == 0 && pipe(back) == 0);
}

static void gate_wait(void) {
        char c;
        CHECK_EQ(read(gate[0], &c, 1), 1);
}

/* ---- qos ------------------------------------------------------------------------ */

typedef struct qcase {
        const char *label;
        ipcf_qos q;
        int msgs;            /* the writer's messages */
        size_t len;
        int reader_delay_ms; /* beta reads this long after accepting */
} qcase;

static qcase QC[8];
static int NQ;

/* Are the terms got those asked for (w)? (Spinning aside; a max_bytes of 0
 * asks for the default; ZERO capacity holds one message.) */
static bool same_terms(const ipcf_qos *got, const ipcf_qos *w) {
        bool zero = w->capacity == IPCF_CAPACITY_ZERO;
        return got->capacity == w->capacity && got->mode == w->mode && got->full == w->full &&
               got->max_msg_size == w->max_msg_size && got->cache_msgs == w->cache_msgs &&
               (zero || got->max_msgs == w->max_msgs) && (zero || !w->max_bytes || got->max_bytes == w->max_bytes);
}

/* Beta: each case's flow, read late, checked whole and in order. */
static void qos_reader(void *p) {
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register("q", NULL));
        static uint8_t buf[1 << 20], want[1 << 20];
        for (int c = 0; c < NQ; c++) {
                const qcase *k = &QC[c];
                ipcf_request rq;
                CHECK_OK(ipcf_request_next(reg, 30000, &rq));
                int port = CHECK_OK(ipcf_request_accept(reg, &rq));
                ipcf_qos granted;
                CHECK_OK(ipcf_qos_get(port, &granted));
                if (!same_terms(&rq.qos, &k->q) || !same_terms(&granted, &k->q))
                        test_fail(__FILE__, __LINE__, "%s: beta was asked or granted other terms", k->label);
                usleep((useconds_t)k->reader_delay_ms * 1000);
                uint64_t bytes = 0;
                ssize_t n;
                for (int i = 0; (n = ipcf_read(port, buf, sizeof(buf), 20000)) >= 0; i++) {
                        if (k->q.mode == IPCF_MODE_MESSAGE) {
                                CHECK_EQ((size_t)n, k->len);
                                test_fill(want, k->len, (uint64_t)i);
                                CHECK_MEM(buf, want, k->len);
                        }
                        bytes += (uint64_t)n;
                }
                CHECK_EQ(n, -EPIPE);
                ipcf_reason why;
                CHECK_OK(ipcf_end_reason(port, &why));
                if (bytes != (uint64_t)k->msgs * k->len || strcmp(why.text, "written") != 0)
                        test_fail(__FILE__, __LINE__, "%s: %llu bytes then '%s'", k->label, (unsigned long long)bytes,
                                  why.text);
                ipcf_dealloc(port, NULL);
        }
}

/* Alpha: write a case's messages (again after EAGAIN or ENOBUFS), then
 * deallocate; the count of each refusal in *ret_again, *ret_nobufs. */
static void qos_writer(const qcase *k, int *ret_again, int *ret_nobufs) {
        int port = CHECK_OK(hostset_alloc("q@beta", &k->q));
        static uint8_t msg[1 << 20];
        *ret_again = *ret_nobufs = 0;
        for (int i = 0; i < k->msgs; i++) {
                test_fill(msg, k->len, (uint64_t)i);
                ssize_t w;
                while ((w = ipcf_write(port, msg, k->len, k->q.full == IPCF_FULL_FAIL ? 0 : 20000)) == -EAGAIN ||
                       w == -ENOBUFS) {
                        *(w == -EAGAIN ? ret_again : ret_nobufs) += 1;
                        usleep(1000);
                }
                CHECK_EQ(w, (ssize_t)k->len);
        }
        CHECK_OK(ipcf_dealloc(port, "written"));
}

static ipcf_qos qos_with(void (*set)(ipcf_qos *)) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        set(&q);
        return q;
}

static void set_default(ipcf_qos *q) { (void)q; }
static void set_zero(ipcf_qos *q) { q->capacity = IPCF_CAPACITY_ZERO; }
static void set_fail(ipcf_qos *q) {
        q->full = IPCF_FULL_FAIL;
        q->max_bytes = 4096;
        q->max_msg_size = 512;
}
static void set_cache(ipcf_qos *q) {
        q->full = IPCF_FULL_CACHE;
        q->max_bytes = 4096;
        q->max_msg_size = 512;
        q->cache_msgs = 16;
}
static void set_unbounded(ipcf_qos *q) {
        q->capacity = IPCF_CAPACITY_UNBOUNDED;
        q->max_bytes = 1 << 20;
        q->max_msg_size = 65536;
}
static void set_max_msgs(ipcf_qos *q) { q->max_msgs = 2; }
static void set_stream(ipcf_qos *q) {
        q->mode = IPCF_MODE_STREAM;
        q->max_msg_size = 4096;
}

TEST_TIMEOUT(each_qos_across_hosts_with_a_late_reader, 300) {
        start_two();
        QC[NQ++] = (qcase){ "default", qos_with(set_default), 200, 1000, 0 };
        QC[NQ++] = (qcase){ "zero", qos_with(set_zero), 50, 100, 500 };
        QC[NQ++] = (qcase){ "fail", qos_with(set_fail), 400, 500, 500 };
        QC[NQ++] = (qcase){ "cache", qos_with(set_cache), 40, 500, 1000 };
        QC[NQ++] = (qcase){ "unbounded", qos_with(set_unbounded), 200, 65536, 1000 };
        QC[NQ++] = (qcase){ "max_msgs", qos_with(set_max_msgs), 100, 100, 500 };
        QC[NQ++] = (qcase){ "stream", qos_with(set_stream), 300, 3000, 200 };
        pid_t srv = test_fork(qos_reader, NULL);
        hostset_enter(&S, 0);
        for (int c = 0; c < NQ; c++) {
                int again, nobufs;
                qos_writer(&QC[c], &again, &nobufs);
                fprintf(stderr, "%s: EAGAIN %d, ENOBUFS %d\n", QC[c].label, again, nobufs);
                if (QC[c].q.full == IPCF_FULL_FAIL)
                        CHECK(again > 0);
                if (QC[c].q.capacity == IPCF_CAPACITY_UNBOUNDED)
                        CHECK(nobufs > 0);
        }
        CHECK_EQ(test_wait(srv, 60000), 0);
        hostset_stop(&S);
}

/* ---- empty messages and batches ----------------------------------------------------- */

static void echo_on_beta(void *p) {
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register("em", NULL));
        int port = CHECK_OK(ipcf_accept(reg, 20000, NULL));
        static char buf[65536];
        ssize_t n;
        while ((n = ipcf_read(port, buf, sizeof(buf), 20000)) >= 0)
                CHECK_EQ(ipcf_write(port, buf, (size_t)n, 20000), n);
}

TEST_TIMEOUT(an_empty_message_and_a_batch_there_and_back, 60) {
        start_two();
        pid_t srv = test_fork(echo_on_beta, NULL);
        hostset_enter(&S, 0);
        int port = CHECK_OK(hostset_alloc("em@beta", NULL));
        char buf[64];
        CHECK_EQ(ipcf_write(port, "", 0, 5000), 0);
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 0);
        struct iovec out[4] = { { "a", 1 }, { NULL, 0 }, { "ccc", 3 }, { "dd", 2 } };
        CHECK_EQ(ipcf_write_many(port, out, 4, 5000), 4);
        char b[4][8];
        struct iovec in[4] = { { b[0], 8 }, { b[1], 8 }, { b[2], 8 }, { b[3], 8 } };
        for (size_t got = 0; got < 4;) {
                ssize_t k = ipcf_read_many(port, in + got, 4 - got, 5000);
                CHECK(k > 0);
                got += (size_t)k;
        }
        for (int i = 0; i < 4; i++) {
                CHECK_EQ(in[i].iov_len, out[i].iov_len);
                if (out[i].iov_len)
                        CHECK_MEM(in[i].iov_base, out[i].iov_base, out[i].iov_len);
        }
        CHECK_OK(ipcf_dealloc(port, "done"));
        CHECK_EQ(test_wait(srv, 10000), 0);
        hostset_stop(&S);
}

/* ---- multicast ----------------------------------------------------------------------- */

/* Create a group (slow: its policy) or, with slow < 0, a mailbox on host,
 * from a child (the test process talks to alpha). */
static void make_model(int host, const char *name, int slow) {
        pid_t c = fork();
        if (c == 0) {
                hostset_enter(&S, host);
                ipcf_mcast_opts o = { .size = sizeof(o), .slow = (uint32_t)slow };
                _exit((slow < 0 ? ipcf_mbox_create(name, NULL) : ipcf_mcast_create(name, &o)) == 0 ? 0 : 1);
        }
        CHECK_EQ(test_wait(c, 10000), 0);
}

static int join_from(int host, const char *name) {
        char full[64];
        snprintf(full, sizeof(full), host == 1 ? "%s" : "%s@beta", name);
        int h = -ENOENT;
        for (int t = 0; t < 100 && h == -ENOENT; t++)
                if ((h = ipcf_mcast_join(full, NULL, 5000)) == -ENOENT)
                        usleep(50000);
        return CHECK_OK(h);
}

/* A member on host *p: say it joined, send 50, hear the other two's 100 in
 * each sender's order. */
static void member(void *p) {
        int host = *(int *)p;
        hostset_enter(&S, host);
        int h = join_from(host, "grp");
        CHECK_EQ(write(back[1], "j", 1), 1);
        gate_wait(); /* everyone joined */
        for (int i = 0; i < 50; i++) {
                char m[32];
                snprintf(m, sizeof(m), "%d %d", host, i);
                CHECK_EQ(ipcf_mcast_send(h, m, strlen(m), 5000), (ssize_t)strlen(m));
        }
        int next[3] = { 0, 0, 0 };
        for (int k = 0; k < 100; k++) {
                char buf[32];
                ssize_t n = ipcf_mcast_recv(h, buf, sizeof(buf) - 1, 10000, NULL);
                CHECK(n > 0);
                buf[n] = 0;
                int from, i;
                CHECK_EQ(sscanf(buf, "%d %d", &from, &i), 2);
                CHECK(from >= 0 && from < 3 && from != host);
                CHECK_EQ(i, next[from]);
                next[from]++;
        }
        usleep(500000); /* the others hear us out */
}

TEST_TIMEOUT(a_group_with_members_on_three_hosts, 120) {
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, NULL);
        hostset_start(&S, 1, "[name *]\nremote_allocate = *@alpha *@gamma\n");
        hostset_start(&S, 2, NULL);
        CHECK(hostset_wait_up(&S, 1, 10000));
        CHECK(pipe(gate) == 0 && pipe(back) == 0);
        make_model(1, "grp", IPCF_MCAST_BLOCK);
        static int hosts[3] = { 0, 1, 2 };
        pid_t m[3];
        for (int i = 0; i < 3; i++)
                m[i] = test_fork(member, &hosts[i]);
        for (int i = 0; i < 3; i++) {
                char c;
                CHECK_EQ(read(back[0], &c, 1), 1);
        }
        for (int i = 0; i < 3; i++)
                CHECK_EQ(write(gate[1], "g", 1), 1);
        for (int i = 0; i < 3; i++)
                CHECK_EQ(test_wait(m[i], 60000), 0);
        hostset_stop(&S);
}

/* Beta: join the group, wait for alpha's member, send 3000 messages of 4
 * KiB (each numbered) as fast as the group takes them; say how many went. */
static void flood_group(void *p) {
        int *told = p;
        hostset_enter(&S, 1);
        int h = join_from(1, "sg");
        gate_wait();
        static char msg[4096];
        int sent = 0;
        for (; sent < 3000; sent++) {
                snprintf(msg, 16, "%d", sent);
                if (ipcf_mcast_send(h, msg, sizeof(msg), 2000) != (ssize_t)sizeof(msg))
                        break;
        }
        CHECK_EQ(write(told[1], &sent, sizeof(sent)), (ssize_t)sizeof(sent));
        pause();
}

/* A member on alpha that reads only once beta's sender is done. */
static void slow_member(uint32_t slow) {
        start_two();
        make_model(1, "sg", (int)slow);
        int told[2];
        CHECK(pipe(told) == 0);
        pid_t flood = test_fork(flood_group, told);
        hostset_enter(&S, 0);
        int h = join_from(0, "sg");
        CHECK_EQ(write(gate[1], "j", 1), 1);
        int sent;
        CHECK_EQ(read(told[0], &sent, sizeof(sent)), (ssize_t)sizeof(sent));
        static char buf[8192];
        int got = 0, last = -1;
        ssize_t n;
        while ((n = ipcf_mcast_recv(h, buf, sizeof(buf), 3000, NULL)) > 0) {
                int i = atoi(buf);
                CHECK(i > last); /* in order, never twice */
                last = i;
                got++;
        }
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(h, &why));
        fprintf(stderr, "slow %u: sent %d, got %d, lost %lld, then %zd '%s'\n", slow, sent, got,
                (long long)ipcf_mcast_lost(h), n, why.text);
        if (slow == IPCF_MCAST_DROP) {
                CHECK_EQ(sent, 3000);
                CHECK_EQ(got + ipcf_mcast_lost(h), sent);
                CHECK_EQ(n, -ETIMEDOUT); /* still a member */
        } else {
                CHECK(got < sent);
                CHECK_EQ(n, -EPIPE);
                CHECK(strcmp(why.text, "too slow") == 0);
        }
        kill(flood, SIGKILL);
        test_wait(flood, 5000);
        hostset_stop(&S);
}

TEST_TIMEOUT(a_slow_member_on_another_host_in_a_drop_group, 60) { slow_member(IPCF_MCAST_DROP); }
TEST_TIMEOUT(a_slow_member_on_another_host_in_a_remove_group, 60) { slow_member(IPCF_MCAST_REMOVE); }

/* ---- a mailbox destroyed under a sender on another host ----------------------------- */

/* Beta: the mailbox, a receiver that takes 10 and leaves, then (at the
 * gate) the destroy. */
static void box_taking_ten(void *p) {
        hostset_enter(&S, 1);
        CHECK_OK(ipcf_mbox_create("mbd", NULL));
        int rx = CHECK_OK(ipcf_mbox_open("mbd", IPCF_MBOX_RECV, NULL, 5000));
        char buf[16];
        for (int i = 0; i < 10; i++)
                CHECK_OK(ipcf_mbox_recv(rx, buf, sizeof(buf), 10000, NULL));
        CHECK_OK(ipcf_dealloc(rx, NULL));
        CHECK_EQ(write(back[1], "r", 1), 1);
        gate_wait();
        CHECK_EQ(ipcf_mbox_destroy("mbd"), 0); /* the sender still holds its handle */
}

TEST_TIMEOUT(a_mailbox_destroyed_under_a_sender_on_another_host_counts_exactly, 60) {
        start_two();
        pid_t box = test_fork(box_taking_ten, NULL);
        hostset_enter(&S, 0);
        int tx = -ENOENT;
        for (int t = 0; t < 100 && tx == -ENOENT; t++)
                if ((tx = ipcf_mbox_open("mbd@beta", IPCF_MBOX_SEND, NULL, 5000)) == -ENOENT)
                        usleep(50000);
        CHECK_OK(tx);
        for (int i = 0; i < 10; i++)
                CHECK_EQ(ipcf_mbox_send(tx, "m", 1, 5000, NULL), 1);
        char c;
        CHECK_EQ(read(back[0], &c, 1), 1); /* 10 read, the receiver gone */
        for (int i = 0; i < 25; i++)
                CHECK_EQ(ipcf_mbox_send(tx, "q", 1, 5000, NULL), 1);
        usleep(300000); /* the 25 are in beta's mailbox */
        CHECK_EQ(write(gate[1], "d", 1), 1);
        CHECK_EQ(test_wait(box, 10000), 0);
        ssize_t r;
        int after = 0;
        while ((r = ipcf_mbox_send(tx, "z", 1, 1000, NULL)) == 1 && after < 100) {
                after++;
                usleep(20000);
        }
        CHECK_EQ(r, -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(tx, &why));
        fprintf(stderr, "%d sent after the destroy; '%s'; undelivered %lld\n", after, why.text,
                (long long)ipcf_mbox_undelivered(tx));
        CHECK_EQ(ipcf_mbox_undelivered(tx), 25 + after);
        hostset_stop(&S);
}

/* ---- a receiver on another host that ends gives back what it had not read -------- */

/* Beta: the mailbox and 20 messages in it, a receipt asked for the first. */
static void box_of_twenty(void *p) {
        hostset_enter(&S, 1);
        CHECK_OK(ipcf_mbox_create("mb", NULL));
        int tx = CHECK_OK(ipcf_mbox_open("mb", IPCF_MBOX_SEND, NULL, 5000));
        ipcf_receipt rc;
        CHECK_OK(ipcf_mbox_send_async(tx, "m0", 2, 5000, NULL));
        for (int i = 1; i < 20; i++) {
                char m[16];
                snprintf(m, sizeof(m), "m%d", i);
                CHECK_OK(ipcf_mbox_send(tx, m, strlen(m), 5000, NULL));
        }
        /* the receiver on alpha read m0 */
        CHECK_OK(ipcf_mbox_receipt(tx, 20000, &rc));
        CHECK_EQ(rc.seq, 1);
        CHECK_EQ(write(gate[1], &rc.receiver, sizeof(rc.receiver)), (ssize_t)sizeof(rc.receiver));
        pause();
}

/* Alpha: read one, then die (kill) or deallocate. */
static void read_one_then_end(void *p) {
        bool dealloc = *(bool *)p;
        hostset_enter(&S, 0);
        int rx = -ENOENT;
        for (int t = 0; t < 100 && rx == -ENOENT; t++)
                if ((rx = ipcf_mbox_open("mb@beta", IPCF_MBOX_RECV, NULL, 5000)) == -ENOENT)
                        usleep(50000);
        CHECK_OK(rx);
        char buf[16];
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 10000, NULL), 2);
        CHECK(!memcmp(buf, "m0", 2));
        usleep(300000); /* the other 19 reach this host's ring */
        if (dealloc)
                CHECK_OK(ipcf_dealloc(rx, NULL));
        CHECK_EQ(write(back[1], "r", 1), 1);
        pause();
}

/* Beta's next receiver: exits with how many it got, in order. */
static void read_the_rest(void *p) {
        hostset_enter(&S, 1);
        int rx = CHECK_OK(ipcf_mbox_open("mb", IPCF_MBOX_RECV, NULL, 5000));
        char buf[16];
        int n = 0;
        ssize_t k;
        while ((k = ipcf_mbox_recv(rx, buf, sizeof(buf) - 1, 2000, NULL)) > 0) {
                buf[k] = 0;
                char want[16];
                snprintf(want, sizeof(want), "m%d", n + 1);
                CHECK(strcmp(buf, want) == 0);
                n++;
        }
        _exit(n);
}

static void remote_receiver_ends(bool dealloc) {
        start_two();
        pid_t box = test_fork(box_of_twenty, NULL);
        usleep(300000); /* the mailbox is made */
        pid_t rx = test_fork(read_one_then_end, &dealloc);
        pid_t who;
        CHECK_EQ(read(gate[0], &who, sizeof(who)), (ssize_t)sizeof(who));
        CHECK_EQ(who, rx); /* the receipt names the receiver on alpha */
        char c;
        CHECK_EQ(read(back[0], &c, 1), 1);
        if (!dealloc) {
                kill(rx, SIGKILL);
                test_wait(rx, 5000);
        }
        usleep(500000); /* the end crossed */
        pid_t rest = test_fork(read_the_rest, NULL);
        CHECK_EQ(test_wait(rest, 30000), 19);
        kill(rx, SIGKILL);
        test_wait(rx, 5000);
        kill(box, SIGKILL);
        test_wait(box, 5000);
        hostset_stop(&S);
}

TEST_TIMEOUT(a_receiver_on_another_host_killed_gives_back_what_it_had_not_read, 60) { remote_receiver_ends(false); }
TEST_TIMEOUT(a_receiver_on_another_host_deallocating_gives_back_what_it_had_not_read, 60) {
        remote_receiver_ends(true);
}

/* Mid-stream: the ids each receiver read go to ids (a pipe big enough for
 * all of them). */
static int ids[2];

/* Beta: n numbered messages into "fl" as fast as it takes them. */
static void flood_box(void *p) {
        int n = *(int *)p;
        hostset_enter(&S, 1);
        int tx = CHECK_OK(ipcf_mbox_open("fl", IPCF_MBOX_SEND, NULL, 5000));
        char m[64] = { 0 };
        for (int i = 0; i < n; i++) {
                memcpy(m, &i, sizeof(i));
                CHECK_EQ(ipcf_mbox_send(tx, m, sizeof(m), 30000, NULL), (ssize_t)sizeof(m));
        }
        pause();
}

/* Read numbered messages from box on host (at most max, or until 4 s of
 * nothing), telling ids each one. */
static void read_ids(int host, const char *box, int max) {
        hostset_enter(&S, host);
        int rx = -ENOENT;
        for (int t = 0; t < 100 && rx == -ENOENT; t++)
                if ((rx = ipcf_mbox_open(box, IPCF_MBOX_RECV, NULL, 5000)) == -ENOENT)
                        usleep(50000);
        CHECK_OK(rx);
        char buf[128];
        for (int k = 0; k < max && ipcf_mbox_recv(rx, buf, sizeof(buf), 4000, NULL) == 64; k++) {
                int i;
                memcpy(&i, buf, sizeof(i));
                CHECK_EQ(write(ids[1], &i, sizeof(i)), (ssize_t)sizeof(i));
        }
}

static void alpha_reads_3000_and_dies(void *p) {
        read_ids(0, "fl@beta", 3000);
        kill(getpid(), SIGKILL);
}

static void beta_reads_the_rest(void *p) { read_ids(1, "fl", 1 << 30); }

TEST_TIMEOUT(a_receiver_on_another_host_dying_mid_stream_loses_nothing, 120) {
        enum { N = 20000 };
        start_two();
        make_model(1, "fl", -1);
        CHECK(pipe(ids) == 0);
        CHECK(fcntl(ids[1], F_SETPIPE_SZ, 1 << 20) >= (int)(N * sizeof(int)));
        static int n = N;
        pid_t alpha_rx = test_fork(alpha_reads_3000_and_dies, NULL);
        usleep(500000); /* it is a receiver before anything is sent */
        pid_t flood = test_fork(flood_box, &n);
        pid_t beta_rx = test_fork(beta_reads_the_rest, NULL);
        close(ids[1]);
        CHECK_EQ(test_wait(alpha_rx, 60000), 128 + SIGKILL);
        CHECK_EQ(test_wait(beta_rx, 60000), 0);
        kill(flood, SIGKILL);
        test_wait(flood, 5000);
        static int count[N];
        int i, missing = 0, twice = 0;
        while (read(ids[0], &i, sizeof(i)) == (ssize_t)sizeof(i)) {
                CHECK(i >= 0 && i < N);
                count[i]++;
        }
        for (int k = 0; k < N; k++) {
                missing += count[k] == 0;
                twice += count[k] > 1;
        }
        fprintf(stderr, "%d messages: %d never read, %d read twice\n", N, missing, twice);
        CHECK_EQ(missing, 0);
        CHECK_EQ(twice, 0);
        hostset_stop(&S);
}
