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
 * mailbox's other parties are served as before). And the exception, a
 * service inherited across fork() (family.c): a pool of workers recycled
 * under a caller's calls; a member of the family that clogs what it
 * inherited blocks no other; a worker that forks and dies hands its
 * channels over; the family's page full; a worker that polls the
 * service's descriptor.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
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

/* ---- worker processes of one service (family.c) ---- */

/* Outcomes of a caller's calls through the workers' deaths (shared memory). */
struct deaths {
        _Atomic unsigned calls, resets, timeouts, other, worst_ms, stop;
        _Atomic int other_err;
};
static struct deaths *dt;
static int POOL;
static const char *pool_name = "fork.pool";

/* Serve up to max calls of POOL; how many were answered (less: no request
 * came for 3 s, or an error). */
static unsigned pool_worker_serve(unsigned max) {
        char buf[64];
        unsigned done = 0;
        ssize_t n = 0;
        while (done < max && n >= 0) {
                ipcf_call_req req;
                n = ipcf_service_next(POOL, buf, sizeof(buf), 3000, &req);
                if (n >= 0 && ipcf_service_reply(POOL, &req, buf, (size_t)n, 1000) == 0)
                        done++;
        }
        return done;
}

/* Serve up to (uintptr_t)arg calls, then exit without letting the service
 * go (a recycled or crashed worker); leave after 3 s without a request. */
static void pool_worker(void *arg) {
        pool_worker_serve((unsigned)(uintptr_t)arg);
        _exit(0);
}

/* Call the pool until told to stop; every failure counted. */
static void pool_caller(void *arg) {
        (void)arg;
        for (int k = 0; !atomic_load(&dt->stop); k++) {
                int v[2] = { 7, k }, back[2];
                uint64_t t0 = test_now_ms();
                ssize_t r = ipcf_call(pool_name, v, sizeof(v), back, sizeof(back), 2000, NULL);
                unsigned el = (unsigned)(test_now_ms() - t0);
                if (el > atomic_load(&dt->worst_ms))
                        atomic_store(&dt->worst_ms, el);
                atomic_fetch_add(&dt->calls, 1);
                if (r == sizeof(back) && back[1] == k)
                        continue;
                if (r == -ECONNRESET || r == -EPIPE) {
                        atomic_fetch_add(&dt->resets, 1);
                } else if (r == -ETIMEDOUT) {
                        atomic_fetch_add(&dt->timeouts, 1);
                        fprintf(stderr, "# call %d timed out (%u ms)\n", k, el);
                } else {
                        atomic_fetch_add(&dt->other, 1);
                        atomic_store(&dt->other_err, (int)r);
                }
        }
}

/* A daemon, fresh counts, the service name made here (before: a snapshot of
 * the mappings taken first, for family_page) and its caller, gated (*gate). */
static pid_t pool_start(const char *name, mapset *before, int *gate) {
        test_daemon_start(&d, NULL, NULL);
        dt = mmap(NULL, sizeof(*dt), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(dt != MAP_FAILED);
        pool_name = name;
        if (before)
                mapset_snapshot(before, "/dev/zero");
        POOL = CHECK_OK(ipcf_service(pool_name, NULL));
        return test_fork_gated(pool_caller, NULL, gate);
}

/* A prefork pool: the service's maker forks two workers and serves no
 * call itself; each worker serves 200 calls and exits without letting the
 * service go, and the maker forks another in its place, 12 times. The
 * caller's channel is taken in by one worker after the fork and ends with
 * it (-ECONNRESET at once); its next call makes a new channel, which a live
 * worker takes in: no call times out. */
TEST_TIMEOUT(a_pool_of_recycled_workers_serves_every_next_call, 120) {
        int gc;
        pid_t c = pool_start("fork.pool", NULL, &gc);
        pid_t w[2] = { test_fork(pool_worker, (void *)200), test_fork(pool_worker, (void *)200) };
        test_gate_open(&gc);
        for (int deaths = 0; deaths < 12; deaths++) {
                int st;
                pid_t dead = waitpid(-1, &st, 0);
                CHECK(dead == w[0] || dead == w[1]);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                w[dead == w[1]] = test_fork(pool_worker, (void *)200);
        }
        atomic_store(&dt->stop, 1);
        CHECK_EQ(test_wait(c, 10000), 0);
        kill(w[0], SIGKILL);
        kill(w[1], SIGKILL);
        test_wait(w[0], 5000);
        test_wait(w[1], 5000);
        printf("# %u calls: %u ended with a worker, %u timed out, %u other (%d); the slowest %u ms\n", dt->calls,
               dt->resets, dt->timeouts, dt->other, dt->other_err, dt->worst_ms);
        CHECK_EQ(dt->timeouts, 0u);
        CHECK_EQ(dt->other, 0u);
        CHECK(dt->resets <= 14u); /* (the last two workers may die before the caller stops) */
        CHECK_OK(ipcf_dealloc(POOL, NULL));
        test_daemon_stop(&d);
}

/* A member of the family that clogs what it inherited: every eventfd filled
 * to 2^64-2 and every descriptor made blocking (shared open file
 * descriptions: the others' too). */
static void clogging_member(void *arg) {
        (void)arg;
        for (int fd = 3; fd < 1024; fd++) {
                char path[64], what[64];
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                ssize_t n = readlink(path, what, sizeof(what) - 1);
                if (n < 0)
                        continue;
                what[n] = 0;
                int fl = fcntl(fd, F_GETFL);
                if (strcmp(what, "anon_inode:[eventfd]") == 0) {
                        uint64_t v, full = 0xfffffffffffffffeull;
                        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                        (void)!read(fd, &v, sizeof(v));
                        (void)!write(fd, &full, sizeof(full));
                }
                if (fl >= 0 && strncmp(what, "anon_inode:", 11) == 0)
                        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        }
}

/* The maker of fork.clog: takes a caller's channel in (one call), forks a
 * worker and the clogging member, then lets the service go (ipcf_detach:
 * the worker takes the channel over), says so (clog_pipes[1]) and exits
 * when told (clog_pipes[0]). */
static int clog_pipes[2][2];
static void clogged_maker(void *arg) {
        int *gate = arg;
        POOL = CHECK_OK(ipcf_service("fork.clog", NULL));
        test_gate_open(gate);
        CHECK_EQ(pool_worker_serve(1), 1u); /* the caller's channel is in */
        test_fork(pool_worker, (void *)(uintptr_t)UINT_MAX);
        CHECK_EQ(test_wait(test_fork(clogging_member, NULL), 5000), 0);
        CHECK_OK(ipcf_detach(POOL));
        CHECK_EQ(write(clog_pipes[1][1], "d", 1), 1); /* detached */
        char c; /* the service lives while its maker does */
        CHECK_EQ(read(clog_pipes[0][0], &c, 1), 1);
        /* The worker leaves 3 s after its last request. */
}

/* Each member of the family can only make its own calls block: its
 * bells (the family's, and the takers' wake-up channel a child inherits)
 * never block another. Before they were wake-up channels (common/wake.h),
 * the maker's ipcf_detach blocked for good writing to the family's eventfd
 * (the test's maker never exited), and the caller's channel was never
 * handed over. */
static void clog_caller(void *arg) {
        (void)arg;
        for (int k = 0; k < 200; k++) {
                int v[2] = { 9, k }, back[2];
                ssize_t r = -ENOENT;
                for (uint64_t t0 = test_now_ms(); r == -ENOENT && test_now_ms() - t0 < 5000;)
                        if ((r = ipcf_call("fork.clog", v, sizeof(v), back, sizeof(back), 3000, NULL)) == -ENOENT)
                                usleep(2000); /* not registered yet */
                CHECK_EQ(r, (ssize_t)sizeof(back));
                CHECK_EQ(back[1], k);
        }
}

TEST_TIMEOUT(a_member_that_clogs_what_it_inherited_blocks_no_other, 60) {
        test_daemon_start(&d, NULL, NULL);
        int gc;
        pid_t c = test_fork_gated(clog_caller, NULL, &gc);
        CHECK_OK(pipe(clog_pipes[0]));
        CHECK_OK(pipe(clog_pipes[1]));
        pid_t m = test_fork(clogged_maker, &gc);
        struct pollfd detached = { .fd = clog_pipes[1][0], .events = POLLIN };
        CHECK_EQ(poll(&detached, 1, 10000), 1); /* ipcf_detach returned */
        CHECK_EQ(test_wait(c, 20000), 0);
        CHECK_EQ(write(clog_pipes[0][1], "g", 1), 1);
        CHECK_EQ(test_wait(m, 5000), 0);
        test_daemon_stop(&d);
}

/* A worker that takes the caller's channel in (after the fork), serves 100
 * calls, forks a worker of its own and dies without letting the service
 * go. */
static void forking_worker(void *arg) {
        (void)arg;
        CHECK_EQ(pool_worker_serve(100), 100u);
        test_fork(pool_worker, (void *)(uintptr_t)UINT_MAX);
        _exit(0);
}

/* The family's page of a service made just now (after *before): its
 * shared memory, a page, as every process of the family maps it. */
static _Atomic uint64_t *family_page(const mapset *before) {
        size_t len = 0;
        _Atomic uint64_t *page = mapset_new_since(before, "/dev/zero", &len);
        CHECK(page);
        CHECK_EQ(len, 4096u);
        return page;
}

/* Fill every free slot of the family's page as 511 hand-overs by this
 * process (alive) that nobody took would (family.c: flow id << 23, the
 * hand-over bit 1 << 22, the pid), of flows that are not ours. */
static void family_page_fill(_Atomic uint64_t *page) {
        for (uint64_t k = 0; k < 511; k++)
                if (atomic_load(&page[1 + k]) == 0)
                        atomic_store(&page[1 + k], ((1ull << 40) + k) << 23 | 1ull << 22 | (uint64_t)getpid());
}

/* A service whose maker forks a worker that takes the caller's channel in,
 * serves 100 calls, forks a worker of its own and dies; with full, the
 * family's page full from the start. */
static void worker_forks_and_dies(bool full) {
        mapset before;
        int gc;
        pid_t c = pool_start("fork.gen2", &before, &gc);
        if (full)
                family_page_fill(family_page(&before));
        pid_t w = test_fork(forking_worker, NULL);
        test_gate_open(&gc);
        CHECK_EQ(test_wait(w, 20000), 0);
        unsigned at_death = dt->calls;
        usleep(1500000);
        atomic_store(&dt->stop, 1);
        CHECK_EQ(test_wait(c, 10000), 0);
        printf("# %u calls (%u after the death): %u ended, %u timed out, %u other (%d); the slowest %u ms\n",
               dt->calls, dt->calls - at_death, dt->resets, dt->timeouts, dt->other, dt->other_err, dt->worst_ms);
        CHECK_EQ(dt->timeouts, 0u);
        CHECK(dt->resets <= (full ? 1u : 0u));
        CHECK_EQ(dt->other, 0u);
        CHECK(dt->calls - at_death > 50u); /* (on a new channel, with full) */
        CHECK_OK(ipcf_dealloc(POOL, NULL));
        test_daemon_stop(&d);
}

/* The channel a worker took in after the fork is in the worker it forked
 * too: when the first dies, the second takes the channel over and serves
 * the caller's next calls, none lost, none timed out. Before family.c
 * watched holders (pidfds) the copy in the second stayed unserved: the
 * caller's calls timed out, every one. */
TEST_TIMEOUT(a_worker_that_forks_and_dies_hands_its_channels_over, 60) {
        worker_forks_and_dies(false);
}

/* The same with the family's page full (511 hand-overs nobody took): the
 * channel cannot be registered as the first worker forks, so when it dies
 * the second lets its copy go, and the caller's call fails -ECONNRESET at
 * once; its next call makes a new channel, which the second takes in. */
TEST_TIMEOUT(a_worker_that_forks_and_dies_with_the_family_page_full, 60) {
        worker_forks_and_dies(true);
}

/* The holder of a channel cannot hand it over when the family's page is
 * full: ipcf_detach says -ENOSPC, the channel ends (its caller's call fails
 * -EPIPE at once, not a timeout), and the caller's next call makes a
 * new channel, which the worker takes in. Before, ipcf_detach said 0. */
static void full_caller(void *arg) {
        (void)arg;
        int v[2] = { 5, 0 }, back[2];
        CHECK_EQ(ipcf_call("fork.full", v, sizeof(v), back, sizeof(back), 5000, NULL), sizeof(back));
        v[1] = 1;
        uint64_t t0 = test_now_ms();
        ssize_t r = ipcf_call("fork.full", v, sizeof(v), back, sizeof(back), 5000, NULL);
        if (r != -EPIPE && r != -ECONNRESET) /* (-EPIPE: the holder ended it) */
                CHECK_EQ(r, -EPIPE);
        CHECK(test_now_ms() - t0 < 1000);
        for (v[1] = 2; v[1] < 50; v[1]++)
                CHECK_EQ(ipcf_call("fork.full", v, sizeof(v), back, sizeof(back), 5000, NULL), sizeof(back));
}

TEST_TIMEOUT(a_hand_over_with_the_family_page_full_fails_and_ends_the_channel, 60) {
        test_daemon_start(&d, NULL, NULL);
        mapset before;
        mapset_snapshot(&before, "/dev/zero");
        POOL = CHECK_OK(ipcf_service("fork.full", NULL));
        family_page_fill(family_page(&before));
        int gc;
        pid_t c = test_fork_gated(full_caller, NULL, &gc);
        test_gate_open(&gc);
        CHECK_EQ(pool_worker_serve(1), 1u); /* the caller's channel is in */
        char buf[64];
        ipcf_call_req req; /* its second call: in flight, never answered here */
        CHECK_EQ(ipcf_service_next(POOL, buf, sizeof(buf), 5000, &req), 8);
        pid_t w = test_fork(pool_worker, (void *)(uintptr_t)UINT_MAX);
        CHECK_ERR(ipcf_detach(POOL), -ENOSPC);
        CHECK_EQ(test_wait(c, 20000), 0);
        kill(w, SIGKILL);
        test_wait(w, 5000);
        test_daemon_stop(&d);
}

/* A worker took the caller's channel over (the maker's ipcf_detach) and
 * dies after 300 calls; the other worker, which held a copy and looks only
 * then, takes the caller's new channel in: the caller's call in flight
 * fails at once, and its next calls are served, none timed out (the case
 * of test-service-probe a_worker_that_took_a_channel_over_dies, its caller
 * going on after the death). */
TEST_TIMEOUT(after_a_taken_over_worker_dies_the_next_calls_are_served, 60) {
        int gc, gb;
        pid_t c = pool_start("fork.over", NULL, &gc);
        test_gate_open(&gc);
        CHECK_EQ(pool_worker_serve(1), 1u); /* the caller's channel is in */
        pid_t b = test_fork_gated(pool_worker, (void *)(uintptr_t)UINT_MAX, &gb); /* looks later */
        pid_t a = test_fork(pool_worker, (void *)300);
        CHECK_OK(ipcf_detach(POOL)); /* a takes the channel over */
        CHECK_EQ(test_wait(a, 30000), 0);
        unsigned at_death = dt->calls;
        test_gate_open(&gb);
        usleep(1000000);
        atomic_store(&dt->stop, 1);
        CHECK_EQ(test_wait(c, 10000), 0);
        kill(b, SIGKILL);
        test_wait(b, 5000);
        printf("# %u calls (%u after the death): %u ended, %u timed out, %u other (%d); the slowest %u ms\n",
               dt->calls, dt->calls - at_death, dt->resets, dt->timeouts, dt->other, dt->other_err, dt->worst_ms);
        CHECK_EQ(dt->timeouts, 0u);
        CHECK(dt->resets <= 1u);
        CHECK_EQ(dt->other, 0u);
        CHECK(dt->calls - at_death > 50u);
        test_daemon_stop(&d);
}

/* A worker that serves POOL by polling its descriptor (ipcf_fd) for 800
 * ms, then tells the caller to stop and serves 300 ms more: each wake-up
 * that finds nothing to take is counted in dt->other. */
static void polling_worker(void *arg) {
        (void)arg;
        struct pollfd p = { .fd = CHECK_OK(ipcf_fd(POOL)), .events = POLLIN };
        char buf[64];
        uint64_t t0 = test_now_ms();
        for (uint64_t now = t0; now - t0 < 1100; now = test_now_ms()) {
                if (now - t0 >= 800)
                        atomic_store(&dt->stop, 1);
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ipcf_call_req req;
                ssize_t n = ipcf_service_next(POOL, buf, sizeof(buf), 0, &req);
                if (n >= 0)
                        CHECK_OK(ipcf_service_reply(POOL, &req, buf, (size_t)n, 1000));
                else
                        atomic_fetch_add(&dt->other, 1);
        }
}

/* Workers that poll the service's descriptor see it readable only when
 * there is something to take: the family's bell (rung at the maker's
 * ipcf_detach) and the maker's exit wake each at most a few times. */
TEST_TIMEOUT(a_polling_worker_is_not_woken_for_ever_by_the_family, 60) {
        int gc;
        pid_t c = pool_start("fork.poll", NULL, &gc);
        test_gate_open(&gc);
        CHECK_EQ(pool_worker_serve(1), 1u); /* the caller's channel is in */
        pid_t w = test_fork(polling_worker, NULL);
        CHECK_OK(ipcf_detach(POOL)); /* the worker takes the channel over */
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK_EQ(test_wait(w, 10000), 0);
        printf("# %u calls, %u timed out; %u wake-ups of the worker found nothing\n", dt->calls, dt->timeouts,
               dt->other);
        CHECK_EQ(dt->timeouts, 0u);
        CHECK(dt->other < 1000u);
        test_daemon_stop(&d);
}
