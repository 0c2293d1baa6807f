/*
 * test-hosts-undelivered-probe.c — ipcf_mbox_undelivered of a sender on
 * another host than its mailbox (docs/MODELS.md "Across hosts"), with real
 * daemons, each in its own network namespace (root; on the loopback
 * otherwise: tests/support/hostset.c). A mailbox on beta, a receiver on
 * beta that reads 3,000 numbered messages and stops, a sender on alpha that
 * sends until a send fails; once all is still, one daemon is killed (-9):
 *  - beta's (the mailbox's host): the sender's flow ends; its count is what
 *    it sent less the 3,000 beta told it were taken (it was 0), and the
 *    receiver, which reads what its queue still holds, read no message
 *    that is not counted, nor any twice;
 *  - alpha's (the sender's own): the same count (it was every message
 *    sent), while beta keeps what it had received and the receiver reads
 *    it on (counted, yet read: the documented doubt).
 * Both: every message is read or counted, what was read was sent, and the
 * count is exactly sent - 3,000. The same with the receiver on alpha
 * (what it read reaches beta's count by CONSUMED) and beta's daemon killed.
 * And mid-stream, the receiver reading on while the daemon is killed:
 * every message read or counted, none read twice, fewer counted than sent.
 */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/hostset.h"
#include "support/test.h"

#define ALLOW2 "[name *]\nremote_allocate = *@alpha *@beta\n"
#define READ_FIRST 3000
#define MSG 64

static hostset S;
static int ids[2];    /* the receiver -> the test: each id it read */
static int back[2];   /* the receiver -> the test: 'o' opened, 'r' read READ_FIRST */
static int gate[2];   /* the test -> the receiver: read on */
static int result[2]; /* the sender -> the test: struct sent */

struct sent {
        int64_t n, err, undelivered;
        int end_code;
};

static void start(void) {
        int mode = geteuid() == 0 ? HOSTSET_NETNS : HOSTSET_LOOPBACK;
        CHECK(hostset_init(&S, 2, mode));
        hostset_start(&S, 0, ALLOW2);
        hostset_start(&S, 1, ALLOW2);
        CHECK(hostset_wait_up(&S, 0, 15000));
        CHECK(hostset_wait_up(&S, 1, 15000));
        CHECK(pipe(ids) == 0 && pipe(back) == 0 && pipe(gate) == 0 && pipe(result) == 0);
        CHECK(fcntl(ids[1], F_SETPIPE_SZ, 1 << 20) >= 1 << 18);
}

/* Which daemon is killed, where the receiver is, and when. */
typedef struct run {
        int kill;    /* host */
        int rx_host; /* the receiver's */
        bool stream; /* the receiver reads on (else it stops at READ_FIRST) */
} run;

/* Beta: the mailbox. */
static void make_box(void *p) {
        hostset_enter(&S, 1);
        CHECK_OK(ipcf_mbox_create("ub", NULL));
}

/* The receiver: READ_FIRST messages, a word, and (at the gate, unless it
 * streams on) what more it can read (until 4 s of nothing, or its end). */
static void receiver(void *p) {
        const run *u = p;
        hostset_enter(&S, u->rx_host);
        int rx = CHECK_OK(hostset_mbox_open(u->rx_host == 1 ? "ub" : "ub@beta", IPCF_MBOX_RECV));
        CHECK_EQ(write(back[1], "o", 1), 1);
        char buf[MSG * 2];
        for (int k = 0; k < READ_FIRST; k++) {
                CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 20000, NULL), MSG);
                CHECK_EQ(write(ids[1], buf, 4), 4);
        }
        CHECK_EQ(write(back[1], "r", 1), 1);
        char c;
        if (!u->stream)
                CHECK_EQ(read(gate[0], &c, 1), 1);
        while (ipcf_mbox_recv(rx, buf, sizeof(buf), 4000, NULL) == MSG)
                CHECK_EQ(write(ids[1], buf, 4), 4);
}

/* Alpha: numbered messages until a send fails; then what it knows. */
static void sender(void *p) {
        hostset_enter(&S, 0);
        int tx = CHECK_OK(hostset_mbox_open("ub@beta", IPCF_MBOX_SEND));
        struct sent s = { 0 };
        char m[MSG] = { 0 };
        for (;;) {
                uint32_t i = (uint32_t)s.n;
                memcpy(m, &i, 4);
                ssize_t r = ipcf_mbox_send(tx, m, sizeof(m), 30000, NULL);
                if (r != MSG) {
                        s.err = r;
                        break;
                }
                s.n++;
        }
        s.undelivered = ipcf_mbox_undelivered(tx);
        ipcf_reason why;
        if (ipcf_end_reason(tx, &why) == 0)
                s.end_code = why.code;
        fprintf(stderr, "sender: %lld sent, then %lld ('%s'); undelivered %lld\n", (long long)s.n,
                (long long)s.err, why.text, (long long)s.undelivered);
        CHECK_EQ(write(result[1], &s, sizeof(s)), (ssize_t)sizeof(s));
}

static void kill_one(run u) {
        start();
        CHECK_EQ(test_wait(test_fork(make_box, NULL), 10000), 0);
        pid_t rx = test_fork(receiver, &u);
        char c;
        CHECK_EQ(read(back[0], &c, 1), 1);
        CHECK_EQ(c, 'o');
        pid_t tx = test_fork(sender, NULL);
        CHECK_EQ(read(back[0], &c, 1), 1);
        CHECK_EQ(c, 'r');
        /* all still: the sender blocked on full queues, beta's count of
         * what the receiver took (READ_FIRST) told to alpha; or while the
         * receiver reads on, 0.2 s after it read READ_FIRST (some told) */
        usleep(u.stream ? 200000 : 1500000);
        hostset_kill_host(&S, u.kill);
        CHECK_EQ(write(gate[1], "g", 1), 1);
        struct sent s;
        CHECK_EQ(read(result[0], &s, sizeof(s)), (ssize_t)sizeof(s));
        CHECK_EQ(test_wait(tx, 20000), 0);
        CHECK_EQ(test_wait(rx, 60000), 0);
        close(ids[1]);
        static uint8_t seen[1 << 20];
        uint32_t i;
        int64_t read_n = 0, twice = 0, unsent = 0;
        while (read(ids[0], &i, 4) == 4) {
                if (i >= s.n || i >= sizeof(seen)) {
                        unsent++;
                        continue;
                }
                twice += seen[i]++ > 0;
                read_n++;
        }
        int64_t not_read = s.n - read_n;
        fprintf(stderr,
                "%s%s killed, receiver on %s: %lld sent, %lld read (%lld beyond the first %d), %lld not read; "
                "undelivered %lld (%lld of them read: in doubt)\n",
                u.stream ? "mid-stream, " : "", S.h[u.kill].name, S.h[u.rx_host].name, (long long)s.n,
                (long long)read_n, (long long)(read_n - READ_FIRST), READ_FIRST, (long long)not_read,
                (long long)s.undelivered, (long long)(s.undelivered - not_read));
        CHECK(s.n > READ_FIRST);
        CHECK(s.err < 0);
        CHECK_EQ(unsent, 0);
        CHECK_EQ(twice, 0);
        /* every message read or counted */
        CHECK(s.undelivered >= not_read);
        if (!u.stream) /* what beta told before the kill: READ_FIRST taken */
                CHECK_EQ(s.undelivered, s.n - READ_FIRST);
        else /* some were told taken */
                CHECK(s.undelivered < s.n);
        hostset_stop(&S);
}

TEST_TIMEOUT(the_mailbox_host_killed_a_remote_sender_counts_what_was_not_taken, 120) {
        kill_one((run){ .kill = 1, .rx_host = 1 });
}

TEST_TIMEOUT(the_sender_daemon_killed_it_counts_what_the_mailbox_host_said_was_not_taken, 120) {
        kill_one((run){ .kill = 0, .rx_host = 1 });
}

TEST_TIMEOUT(the_mailbox_host_killed_its_receiver_on_the_sender_host_counted_too, 120) {
        kill_one((run){ .kill = 1, .rx_host = 0 });
}

TEST_TIMEOUT(the_mailbox_host_killed_mid_stream_nothing_is_lost_uncounted, 120) {
        kill_one((run){ .kill = 1, .rx_host = 1, .stream = true });
}

TEST_TIMEOUT(the_sender_daemon_killed_mid_stream_nothing_is_lost_uncounted, 120) {
        kill_one((run){ .kill = 0, .rx_host = 1, .stream = true });
}
