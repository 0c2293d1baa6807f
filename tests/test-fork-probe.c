/*
 * test-fork-probe.c — one port end used by two processes at once after
 * fork(), which ipcf.h does not allow (a port is written by one process at a
 * time, and read by one): what everyone else sees. Two processes writing one
 * end, or reading one, break its queue as a hostile peer could; the peer
 * reads whole messages (lost, repeated, out of order) or garbled ones (mixed
 * from two messages' bytes) or -EPROTO, or its reads find nothing more, and
 * it never crashes nor waits past its timeout; the daemon goes on serving.
 * The processes that broke the rule see the same kinds of outcome. On daemon
 * flows (two writers, two readers), on a pipe (two writers), and on mailbox
 * handles, whose other side is the daemon (two senders, two receivers: the
 * mailbox's other parties are served as before).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/hostile.h"
#include "support/test.h"

static test_daemon d;

#define ROUNDS 6
#define MSGS 20000
#define WAIT_MS 1000

/* A message: who sent it, its number, then bytes made from both. */
struct msg {
        uint32_t who, seq;
        uint8_t fill[240];
};

static size_t msg_make(struct msg *m, uint32_t who, uint32_t seq) {
        m->who = who;
        m->seq = seq;
        size_t n = 16 + (seq * 37u + who * 101u) % (sizeof(m->fill) - 16);
        memset(m->fill, (int)((who * 31u + seq) & 0xff), n);
        return 8 + n;
}

/* Is m (len bytes) a message msg_make made, whole? */
static bool msg_whole(const struct msg *m, size_t len) {
        if (len < 8 || m->who > 2)
                return false;
        struct msg want;
        return msg_make(&want, m->who, m->seq) == len && memcmp(&want, m, len) == 0;
}

/* Outcomes, counted across the rounds by every process (shared memory). */
struct tally {
        _Atomic unsigned whole, garbled, eproto, ended, timeouts, other, late;
        _Atomic unsigned honest, honest_bad; /* whole ones of the honest party (who 2):
                                              * in order, out of order */
        _Atomic int other_err;
};
static struct tally *rd, *wr; /* the readers', the writers' */

static void note_err(struct tally *t, ssize_t r) {
        if (r == -EPROTO)
                atomic_fetch_add(&t->eproto, 1);
        else if (r == -EPIPE || r == -ECONNRESET)
                atomic_fetch_add(&t->ended, 1);
        else if (r == -ETIMEDOUT)
                atomic_fetch_add(&t->timeouts, 1);
        else {
                atomic_fetch_add(&t->other, 1);
                atomic_store(&t->other_err, (int)r);
        }
}

static void note_time(struct tally *t, uint64_t t0) {
        if (test_now_ms() - t0 > WAIT_MS + HOSTILE_SLACK_MS)
                atomic_fetch_add(&t->late, 1);
}

static bool on_mbox; /* the port is a mailbox handle: its calls, not the flow's */

/* Write MSGS messages as who on port, until the first error. */
static void write_all(int port, uint32_t who) {
        struct msg m;
        for (uint32_t k = 0; k < MSGS; k++) {
                size_t n = msg_make(&m, who, k);
                uint64_t t0 = test_now_ms();
                ssize_t r = on_mbox ? ipcf_mbox_send(port, &m, n, WAIT_MS, NULL) : ipcf_write(port, &m, n, WAIT_MS);
                note_time(wr, t0);
                if (r < 0) {
                        note_err(wr, r);
                        return;
                }
                atomic_fetch_add(&wr->whole, 1);
        }
}

/* Read until the flow ends, breaks, or stays silent twice (into a buffer
 * of the flow's largest message: a garbled one may be longer than any sent). */
static void read_all(int port) {
        static union {
                struct msg m;
                uint8_t any[256 * 1024];
        } u;
        struct msg *mp = &u.m;
        unsigned silent = 0, honest_next = 0;
        for (;;) {
                uint64_t t0 = test_now_ms();
                ssize_t r = on_mbox ? ipcf_mbox_recv(port, &u, sizeof(u), WAIT_MS, NULL)
                                    : ipcf_read(port, &u, sizeof(u), WAIT_MS);
                note_time(rd, t0);
                if (r >= 0) {
                        bool whole = msg_whole(mp, (size_t)r);
                        atomic_fetch_add(whole ? &rd->whole : &rd->garbled, 1);
                        if (whole && mp->who == 2) {
                                atomic_fetch_add(mp->seq >= honest_next ? &rd->honest : &rd->honest_bad, 1);
                                honest_next = mp->seq + 1;
                        }
                        continue;
                }
                note_err(rd, r);
                if (r != -ETIMEDOUT || ++silent == 2)
                        return;
        }
}

/* The flow's allocator: forks, and both processes write its end at once. */
static void two_writers(void *arg) {
        int port = CHECK_OK(ipcf_alloc((const char *)arg, NULL, 5000, NULL));
        pid_t c = fork();
        CHECK(c >= 0);
        write_all(port, c == 0);
        if (c == 0)
                _exit(0);
        CHECK_EQ(test_wait(c, 60000), 0);
}

/* A pipe's end 0 (ports[0]; end 1 let go here): forks, and both processes
 * write it at once. */
static int pipe_ends[2];
static void two_pipe_writers(void *arg) {
        (void)arg;
        CHECK_OK(ipcf_detach(pipe_ends[1]));
        pid_t c = fork();
        CHECK(c >= 0);
        write_all(pipe_ends[0], c == 0);
        if (c == 0)
                _exit(0);
        CHECK_EQ(test_wait(c, 60000), 0);
}

/* The flow's acceptor: forks, and both processes read its end at once. */
static void two_readers(void *arg) {
        int reg = CHECK_OK(ipcf_register((const char *)arg, NULL));
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        pid_t c = fork();
        CHECK(c >= 0);
        read_all(port);
        if (c == 0)
                _exit(0);
        CHECK_EQ(test_wait(c, 60000), 0);
}

static void *tally_new(void) {
        void *m = mmap(NULL, sizeof(struct tally), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(m != MAP_FAILED);
        memset(m, 0, sizeof(struct tally));
        return m;
}

static void tally_show(const char *who, struct tally *t) {
        printf("# %s: %u whole, %u garbled, %u -EPROTO, %u ended, %u timeouts, %u late, %u other (%d)\n", who,
               t->whole, t->garbled, t->eproto, t->ended, t->timeouts, t->late, t->other, t->other_err);
}

/* The daemon still serves: a new flow carries a message both ways. */
static void echo_peer(void *arg) {
        (void)arg;
        int port = CHECK_OK(ipcf_alloc("fork.after", NULL, 5000, NULL));
        char buf[8];
        CHECK_EQ(ipcf_write(port, "ping", 4, 1000), 4);
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 4);
        CHECK_MEM(buf, "pong", 4);
}

static void daemon_still_serves(void) {
        CHECK_EQ(kill(d.pid, 0), 0);
        int reg = CHECK_OK(ipcf_register("fork.after", NULL));
        pid_t c = test_fork(echo_peer, NULL);
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        char buf[8];
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 4);
        CHECK_EQ(ipcf_write(port, "pong", 4, 1000), 4);
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK_OK(ipcf_dealloc(port, NULL));
        CHECK_OK(ipcf_dealloc(reg, NULL));
}

/* A daemon, and the counts fresh. */
static void probe_start(void) {
        test_daemon_start(&d, NULL, NULL);
        rd = tally_new();
        wr = tally_new();
}

/* After the rounds: no call came back late, none failed but as the rules
 * say (ended, broken, timed out), and the daemon serves. */
static void outcomes_check(const char *readers, const char *writers) {
        tally_show(readers, rd);
        tally_show(writers, wr);
        CHECK_EQ(rd->late, 0u);
        CHECK_EQ(wr->late, 0u);
        CHECK_EQ(rd->other, 0u);
        CHECK_EQ(wr->other, 0u);
        daemon_still_serves();
}

/* Two processes write the allocator's end at once; this process reads. */
TEST_TIMEOUT(two_processes_writing_one_end, 240) {
        probe_start();
        for (int round = 0; round < ROUNDS; round++) {
                int reg = CHECK_OK(ipcf_register("fork.w", NULL));
                pid_t w = test_fork(two_writers, "fork.w");
                int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
                read_all(port);
                CHECK_OK(ipcf_dealloc(port, NULL)); /* the writers see it end */
                CHECK_EQ(test_wait(w, 60000), 0);  /* and neither crashed */
                CHECK_OK(ipcf_dealloc(reg, NULL));
        }
        outcomes_check("reader", "writers");
        test_daemon_stop(&d);
}

/* Two processes read the acceptor's end at once; this process writes. */
TEST_TIMEOUT(two_processes_reading_one_end, 240) {
        probe_start();
        for (int round = 0; round < ROUNDS; round++) {
                pid_t r = test_fork(two_readers, "fork.r");
                int port = -1;
                for (uint64_t t0 = test_now_ms(); port < 0 && test_now_ms() - t0 < 5000;)
                        if ((port = ipcf_alloc("fork.r", NULL, 5000, NULL)) == -ENOENT)
                                usleep(2000); /* not registered yet */
                CHECK_OK(port);
                write_all(port, 0);
                CHECK_OK(ipcf_dealloc(port, NULL)); /* the readers see it end */
                CHECK_EQ(test_wait(r, 60000), 0);   /* and neither crashed */
        }
        outcomes_check("readers", "writer");
        test_daemon_stop(&d);
}

/* The same on a pipe, which no daemon made (h6 measured it so: 3 writers,
 * one run in three ended -EPROTO). */
TEST_TIMEOUT(two_processes_writing_one_pipe_end, 240) {
        probe_start(); /* (the daemon for daemon_still_serves) */
        for (int round = 0; round < ROUNDS; round++) {
                CHECK_OK(ipcf_pipe(NULL, pipe_ends));
                pid_t w = test_fork(two_pipe_writers, NULL);
                CHECK_OK(ipcf_detach(pipe_ends[0]));
                read_all(pipe_ends[1]);
                CHECK_OK(ipcf_dealloc(pipe_ends[1], NULL)); /* the writers see it end */
                CHECK_EQ(test_wait(w, 60000), 0);          /* and neither crashed */
        }
        outcomes_check("reader", "writers");
        test_daemon_stop(&d);
}

/* ---- mailboxes: the other side is the daemon ---- */

/* A mailbox handle opened here (how: IPCF_MBOX_SEND or _RECV): forks, and
 * both processes send (as 0 and 1) or receive on it at once. */
static int mbox_how;
static void two_on_one_mbox_handle(void *arg) {
        int h = CHECK_OK(ipcf_mbox_open((const char *)arg, mbox_how, NULL, 5000));
        pid_t c = fork();
        CHECK(c >= 0);
        if (mbox_how == IPCF_MBOX_SEND)
                write_all(h, c == 0);
        else
                read_all(h);
        if (c == 0)
                _exit(0);
        CHECK_EQ(test_wait(c, 60000), 0);
}

/* Another party, on a handle of its own: sends as 2, or receives into hr. */
static struct tally *hr;
static void honest_mbox_party(void *arg) {
        int h = CHECK_OK(ipcf_mbox_open((const char *)arg, mbox_how, NULL, 5000));
        if (mbox_how == IPCF_MBOX_SEND) {
                write_all(h, 2);
                return;
        }
        rd = hr;
        read_all(h);
}

/* The daemon's broker reads a sender's handle that two processes write at
 * once: it goes on serving, and a sender on its own handle has every
 * message taken, whole and in order. */
TEST_TIMEOUT(two_processes_sending_on_one_mailbox_handle, 240) {
        probe_start();
        on_mbox = true;
        mbox_how = IPCF_MBOX_SEND;
        CHECK_OK(ipcf_mbox_create("fork.mb", NULL));
        int rx = CHECK_OK(ipcf_mbox_open("fork.mb", IPCF_MBOX_RECV, NULL, 5000));
        pid_t h = test_fork(honest_mbox_party, "fork.mb");
        pid_t w = test_fork(two_on_one_mbox_handle, "fork.mb");
        read_all(rx);
        CHECK_EQ(test_wait(h, 60000), 0);
        CHECK_EQ(test_wait(w, 60000), 0);
        printf("# the other sender's: %u in order, %u not\n", rd->honest, rd->honest_bad);
        CHECK_EQ(rd->honest, MSGS);
        CHECK_EQ(rd->honest_bad, 0u);
        outcomes_check("receiver", "senders");
        test_daemon_stop(&d);
}

/* The daemon's broker writes a receiver's handle that two processes read at
 * once: it goes on serving, and a receiver on its own handle gets whole
 * messages, in order. */
TEST_TIMEOUT(two_processes_receiving_on_one_mailbox_handle, 240) {
        probe_start();
        hr = tally_new();
        on_mbox = true;
        mbox_how = IPCF_MBOX_RECV;
        CHECK_OK(ipcf_mbox_create("fork.mb", NULL));
        pid_t h = test_fork(honest_mbox_party, "fork.mb");
        pid_t r = test_fork(two_on_one_mbox_handle, "fork.mb");
        int tx = CHECK_OK(ipcf_mbox_open("fork.mb", IPCF_MBOX_SEND, NULL, 5000));
        write_all(tx, 2);
        CHECK_EQ(test_wait(h, 60000), 0);
        CHECK_EQ(test_wait(r, 60000), 0);
        printf("# the other receiver: %u whole in order, %u not, %u garbled\n", hr->honest, hr->honest_bad,
               hr->garbled);
        CHECK_EQ(hr->honest_bad, 0u);
        CHECK_EQ(hr->garbled, 0u);
        CHECK_EQ(hr->late, 0u);
        outcomes_check("receivers", "sender");
        test_daemon_stop(&d);
}
