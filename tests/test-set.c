/*
 * test-set.c — readiness sets (ipcf_set_*) against a real daemon and real
 * writer processes: 1,000 flows from two writer processes into one set, every
 * message checked both ways; a writer killed mid-stream (everything it wrote
 * before is read in order, then its flows end, and the other writer goes on);
 * no readiness lost when the set arms its ports and sleeps between messages;
 * a peer that forges wake-up marks (rings, want words) costs only spurious
 * looks, and one that scribbles over its whole flow stalls neither the set
 * nor the other flows; and the calls' documented errors, its descriptor,
 * and its ends.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ring.h"
#include "common/wakeword.h"
#include "ipcf.h"
#include "support/flowpair.h"
#include "support/hostile.h"
#include "support/names.h"
#include "support/test.h"

#define MSG 64
#define SLACK_MS 1000 /* how late a timeout may come on a loaded machine */

static test_daemon d;

/* A message: who wrote it (writer, flow), its number, and a filler that
 * follows from them, so every byte is checked. */
typedef struct msg {
        uint32_t writer, flow;
        uint64_t seq;
        uint8_t fill[MSG - 16];
} msg;

static void msg_make(msg *m, uint32_t writer, uint32_t flow, uint64_t seq) {
        m->writer = writer;
        m->flow = flow;
        m->seq = seq;
        test_fill(m->fill, sizeof(m->fill), (uint64_t)writer << 48 ^ (uint64_t)flow << 32 ^ seq);
}

static bool msg_ok(const msg *m) {
        msg want;
        msg_make(&want, m->writer, m->flow, m->seq);
        return !memcmp(m, &want, sizeof(want));
}

static void small_qos(ipcf_qos *q) {
        ipcf_qos_init(q);
        q->max_msg_size = 1024;
        q->max_bytes = 8192;
}

static int reg_big(const char *name) {
        ipcf_reg_opts o = { .size = sizeof(o), .backlog = 1024 };
        return CHECK_OK(ipcf_register(name, &o));
}

/* ---- the server side: a set that checks and echoes ------------------------ */

/* What the server knows of one port: the writer and flow its first message
 * named, the next number it expects, whether it ended. */
typedef struct seen {
        int port;
        int64_t writer, flow;
        uint64_t next;
        bool ended;
        bool quiet;             /* its writer reads nothing: no echo */
        int end_err;
} seen;

/* Read everything port s has (timeout 0), check it, echo it if echo. Returns
 * how many messages; marks s ended at the end of the flow. */
static unsigned serve_port(seen *s, bool echo) {
        unsigned n = 0;
        msg m;
        for (;;) {
                ssize_t r = ipcf_read(s->port, &m, sizeof(m), 0);
                if (r == -EAGAIN)
                        return n;
                if (r < 0) {
                        CHECK(r == -EPIPE || r == -ECONNRESET);
                        s->ended = true;
                        s->end_err = (int)r;
                        ipcf_dealloc(s->port, NULL); /* leaves the set */
                        return n;
                }
                CHECK_EQ(r, MSG);
                CHECK(msg_ok(&m));
                if (s->writer < 0) {
                        s->writer = m.writer;
                        s->flow = m.flow;
                }
                CHECK_EQ(m.writer, s->writer);
                CHECK_EQ(m.flow, s->flow);
                CHECK_EQ(m.seq, s->next);
                s->next++;
                n++;
                if (echo && !s->quiet)
                        CHECK_EQ(ipcf_write(s->port, &m, MSG, 5000), MSG);
        }
}

/* Accept n flows on reg into a new set (data = index in seen). */
static int accept_into_set(int reg, seen *s, unsigned n, const ipcf_set_opts *o) {
        int set = CHECK_OK(ipcf_set_new(o));
        for (unsigned i = 0; i < n; i++) {
                s[i] = (seen){ .port = CHECK_OK(ipcf_accept(reg, 10000, NULL)), .writer = -1,
                               .flow = -1 };
                CHECK_OK(ipcf_set_add(set, s[i].port, i));
        }
        return set;
}

/* Serve until `ended` ports ended; every wait must report within 10 s (a
 * lost wake-up fails here). Returns the messages read. */
static uint64_t serve_until_ended(int set, seen *s, unsigned ended_want, bool echo) {
        ipcf_set_event ev[256];
        uint64_t total = 0;
        unsigned ended = 0;
        while (ended < ended_want) {
                int k = ipcf_set_wait(set, ev, 256, 10000);
                CHECK_OK(k);
                for (int j = 0; j < k; j++) {
                        seen *p = &s[ev[j].data];
                        CHECK_EQ(ev[j].port, p->port);
                        CHECK_EQ(ev[j].events, IPCF_SET_IN);
                        CHECK(!p->ended);
                        total += serve_port(p, echo);
                        ended += p->ended;
                }
        }
        return total;
}

/* ---- the writers ------------------------------------------------------------ */

typedef struct writer_args {
        const char *name;
        uint32_t id;
        unsigned flows, rounds;
        unsigned pause_every;   /* every so many rounds, sleep 2 ms first (0: never) */
        bool echo;              /* read back each round's answers and check them */
} writer_args;

/* Allocate the flows, then rounds: one message on every flow, then (echo)
 * every answer. */
static void writer(void *arg) {
        const writer_args *a = arg;
        int *h = calloc(a->flows, sizeof(int));
        ipcf_qos q;
        small_qos(&q);
        for (unsigned i = 0; i < a->flows; i++)
                h[i] = CHECK_OK(ipcf_alloc(a->name, &q, 10000, NULL));
        for (unsigned r = 0; r < a->rounds; r++) {
                if (a->pause_every && r % a->pause_every == 0)
                        usleep(2000); /* the set arms its ports and sleeps */
                msg m;
                for (unsigned i = 0; i < a->flows; i++) {
                        msg_make(&m, a->id, i, r);
                        CHECK_EQ(ipcf_write(h[i], &m, MSG, 10000), MSG);
                }
                for (unsigned i = 0; i < a->flows && a->echo; i++) {
                        CHECK_EQ(ipcf_read(h[i], &m, sizeof(m), 10000), MSG);
                        CHECK(msg_ok(&m));
                        CHECK_EQ(m.writer, a->id);
                        CHECK_EQ(m.flow, i);
                        CHECK_EQ(m.seq, r);
                }
        }
        for (unsigned i = 0; i < a->flows; i++)
                ipcf_dealloc(h[i], "done");
        free(h);
}

/* ---- 1,000 flows, two writer processes ------------------------------------- */

TEST_TIMEOUT(a_thousand_flows_from_two_writer_processes_every_message_checked, 240) {
        enum { WRITERS = 2, FLOWS = 500, ROUNDS = 30 };
        test_daemon_start(&d, NULL, NULL);
        int reg = reg_big("set.thousand");
        writer_args wa[WRITERS];
        pid_t pid[WRITERS];
        for (unsigned w = 0; w < WRITERS; w++) {
                wa[w] = (writer_args){ .name = "set.thousand", .id = w, .flows = FLOWS,
                                       .rounds = ROUNDS, .pause_every = 5, .echo = true };
                pid[w] = test_fork(writer, &wa[w]);
        }
        static seen s[WRITERS * FLOWS];
        int set = accept_into_set(reg, s, WRITERS * FLOWS, NULL);
        uint64_t total = serve_until_ended(set, s, WRITERS * FLOWS, true);
        CHECK_EQ(total, (uint64_t)WRITERS * FLOWS * ROUNDS);
        /* every flow of each writer seen once, each with all its rounds */
        static bool got[WRITERS][FLOWS];
        for (unsigned i = 0; i < WRITERS * FLOWS; i++) {
                CHECK(s[i].writer >= 0 && s[i].writer < WRITERS && s[i].flow >= 0 &&
                      s[i].flow < FLOWS);
                CHECK(!got[s[i].writer][s[i].flow]);
                got[s[i].writer][s[i].flow] = true;
                CHECK_EQ(s[i].next, ROUNDS);
                CHECK_EQ(s[i].end_err, -EPIPE);
        }
        for (unsigned w = 0; w < WRITERS; w++)
                CHECK_EQ(test_wait(pid[w], 30000), 0);
        /* ended ports left the set: it has nothing, and says so */
        ipcf_set_event ev;
        CHECK_ERR(ipcf_set_wait(set, &ev, 1, 0), -EAGAIN);
        CHECK_OK(ipcf_dealloc(set, NULL));
        test_daemon_stop(&d);
}

/* ---- a writer killed mid-stream --------------------------------------------- */

/* Write numbered messages on every flow for ever (until killed). */
static void endless_writer(void *arg) {
        const writer_args *a = arg;
        int h[16];
        ipcf_qos q;
        small_qos(&q);
        for (unsigned i = 0; i < a->flows; i++)
                h[i] = CHECK_OK(ipcf_alloc(a->name, &q, 10000, NULL));
        for (uint64_t r = 0;; r++)
                for (unsigned i = 0; i < a->flows; i++) {
                        msg m;
                        msg_make(&m, a->id, i, r);
                        CHECK_EQ(ipcf_write(h[i], &m, MSG, 10000), MSG);
                }
}

TEST_TIMEOUT(a_writer_killed_mid_stream_ends_its_flows_and_the_others_go_on, 120) {
        enum { FLOWS = 10 };
        test_daemon_start(&d, NULL, NULL);
        int reg = reg_big("set.kill");
        writer_args victim = { .name = "set.kill", .id = 7, .flows = FLOWS };
        pid_t vp = test_fork(endless_writer, &victim);
        static seen s[2 * FLOWS];
        int set = accept_into_set(reg, s, FLOWS, NULL);
        for (unsigned i = 0; i < FLOWS; i++)
                s[i].quiet = true;
        /* read until the victim has written a good many, then kill it */
        uint64_t before = 0;
        ipcf_set_event ev[64];
        while (before < 20000) {
                int k = CHECK_OK(ipcf_set_wait(set, ev, 64, 10000));
                for (int j = 0; j < k; j++)
                        before += serve_port(&s[ev[j].data], false);
        }
        CHECK_EQ(kill(vp, SIGKILL), 0);
        CHECK_EQ(test_wait(vp, 10000), 128 + SIGKILL);
        /* an honest writer comes along meanwhile */
        writer_args honest = { .name = "set.kill", .id = 8, .flows = FLOWS, .rounds = 200,
                               .pause_every = 50, .echo = true };
        pid_t hp = test_fork(writer, &honest);
        for (unsigned i = FLOWS; i < 2 * FLOWS; i++) {
                s[i] = (seen){ .port = CHECK_OK(ipcf_accept(reg, 10000, NULL)), .writer = -1,
                               .flow = -1 };
                CHECK_OK(ipcf_set_add(set, s[i].port, i));
        }
        /* everything the victim wrote is read, in order, then its flows end
         * as a death; the honest writer's flows end as a deallocation */
        serve_until_ended(set, s, 2 * FLOWS, true);
        for (unsigned i = 0; i < FLOWS; i++) {
                CHECK_EQ(s[i].writer, 7);
                CHECK_EQ(s[i].end_err, -ECONNRESET);
        }
        for (unsigned i = FLOWS; i < 2 * FLOWS; i++) {
                CHECK_EQ(s[i].writer, 8);
                CHECK_EQ(s[i].next, 200);
                CHECK_EQ(s[i].end_err, -EPIPE);
        }
        CHECK_EQ(test_wait(hp, 30000), 0);
        ipcf_dealloc(set, NULL);
        test_daemon_stop(&d);
}

/* ---- readiness never lost ----------------------------------------------------- */

/* Ping-pong on flow 0 of its flows with pauses of 0 to ~300 µs between
 * turns: around the set's spin, so it arms and sleeps at every moment of a
 * writer's turn. The other flows stay idle. */
static void pauser(void *arg) {
        const writer_args *a = arg;
        int h[64];
        ipcf_qos q;
        small_qos(&q);
        for (unsigned i = 0; i < a->flows; i++)
                h[i] = CHECK_OK(ipcf_alloc(a->name, &q, 10000, NULL));
        uint64_t x = 88172645463325252ull;
        for (unsigned r = 0; r < a->rounds; r++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                unsigned pause = (unsigned)(x % 300);
                uint64_t until = test_now_ns() + pause * 1000u;
                if (pause % 3 == 0)
                        usleep(pause);
                else
                        while (test_now_ns() < until) /* bounded: at most 300 µs */
                                ;
                msg m;
                msg_make(&m, a->id, 0, r);
                CHECK_EQ(ipcf_write(h[0], &m, MSG, 10000), MSG);
                CHECK_EQ(ipcf_read(h[0], &m, sizeof(m), 10000), MSG);
                CHECK(msg_ok(&m) && m.seq == r);
        }
        for (unsigned i = 0; i < a->flows; i++)
                ipcf_dealloc(h[i], "done");
}

static void no_lost_wakeups(const char *name, uint32_t spin_us) {
        enum { FLOWS = 50, ROUNDS = 3000 };
        test_daemon_start(&d, NULL, NULL);
        int reg = reg_big(name);
        writer_args a = { .name = name, .id = 1, .flows = FLOWS, .rounds = ROUNDS };
        pid_t p = test_fork(pauser, &a);
        static seen s[FLOWS];
        ipcf_set_opts o = { .size = sizeof(o), .spin_us = spin_us };
        int set = accept_into_set(reg, s, FLOWS, &o);
        /* a wait that times out (10 s) fails: a message was not seen */
        CHECK_EQ(serve_until_ended(set, s, FLOWS, true), ROUNDS);
        CHECK_EQ(test_wait(p, 30000), 0);
        ipcf_dealloc(set, NULL);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(a_message_written_while_the_set_goes_to_sleep_is_seen, 120) {
        no_lost_wakeups("set.sleepy", 0); /* arms and sleeps at every wait */
}

TEST_TIMEOUT(a_message_written_while_the_set_spins_or_sleeps_is_seen, 120) {
        no_lost_wakeups("set.spinny", 100);
}

/* ---- forged marks --------------------------------------------------------------- */

typedef struct forger_args {
        const char *name;
        int stop_fd;            /* readable: stop */
} forger_args;

/* Allocate a flow to name as a hostile peer would hold it: the descriptors it
 * brought (into fds, up to 64; returns how many) and its memory. */
static int hostile_alloc(const char *name, int *fds, uint8_t **ret_mem, size_t *ret_len) {
        fdset before;
        mapset maps;
        CHECK_OK(ipcf_connect());
        fdset_snapshot(&before);
        mapset_snapshot(&maps, "ipcf-flow");
        CHECK_OK(ipcf_alloc(name, NULL, 10000, NULL));
        int n = fdset_new_since(&before, fds, 64);
        *ret_mem = mapset_new_since(&maps, "ipcf-flow", ret_len);
        CHECK(n >= 4 && *ret_mem);
        return n;
}

/* Is the stop pipe of a hostile child readable? */
static bool told_to_stop(const forger_args *a) {
        struct pollfd stop = { .fd = a->stop_fd, .events = POLLIN };
        return poll(&stop, 1, 0) != 0;
}

/* Allocate a flow, then forge wake-ups on it until told to stop: ring every
 * descriptor it brought (the server's ear among them) and scribble the
 * server's want word and run state — never a message. */
static void forger(void *arg) {
        const forger_args *a = arg;
        int fds[64];
        uint8_t *mem;
        size_t len;
        int n = hostile_alloc(a->name, fds, &mem, &len);
        /* we are side 0: ring 0 is ours to the server, its want word the
         * server's */
        struct ring_ctl *ctl = flow_ctl_of(mem, 0);
        struct flow_hdr *hdr = flow_hdr_of(mem);
        static const uint32_t words[] = { WAKEWORD_NONE, WAKEWORD_EAR, WAKEWORD_FUTEX, 7,
                                          UINT32_MAX };
        for (unsigned i = 0; !told_to_stop(a); i++) {
                for (int f = 0; f < n; f++)
                        hostile_ring(fds[f]);
                atomic_store(&ctl->rx_sleep, words[i % (sizeof(words) / sizeof(words[0]))]);
                atomic_store(&hdr->run[1].blocked, i & 1);
                atomic_store(&hdr->run[1].cpu, i);
                if (i % 16 == 0)
                        usleep(100);
        }
}

/* A hostile child (fn) and an honest writer of ROUNDS echo rounds on name,
 * both in a new set: the hostile's port with data 999, the honest one's 0. */
enum { ROUNDS = 300 };
typedef struct mixed {
        int stop[2];
        forger_args fa;
        writer_args wa;
        pid_t hostile_pid, honest_pid;
        int set, bad;
        seen s;
} mixed;

static void mixed_start(mixed *x, const char *name, void (*fn)(void *)) {
        test_daemon_start(&d, NULL, NULL);
        int reg = reg_big(name);
        CHECK_OK(pipe(x->stop));
        x->fa = (forger_args){ .name = name, .stop_fd = x->stop[0] };
        x->hostile_pid = test_fork(fn, &x->fa);
        x->set = CHECK_OK(ipcf_set_new(NULL));
        x->bad = CHECK_OK(ipcf_accept(reg, 10000, NULL));
        CHECK_OK(ipcf_set_add(x->set, x->bad, 999));
        x->wa = (writer_args){ .name = name, .id = 3, .flows = 1, .rounds = ROUNDS,
                               .pause_every = 10, .echo = true };
        x->honest_pid = test_fork(writer, &x->wa);
        x->s = (seen){ .port = CHECK_OK(ipcf_accept(reg, 10000, NULL)), .writer = -1,
                       .flow = -1 };
        CHECK_OK(ipcf_set_add(x->set, x->s.port, 0));
}

/* The honest writer had all its rounds; stop the hostile child. */
static void mixed_stop(mixed *x) {
        CHECK_EQ(x->s.next, ROUNDS);
        CHECK_EQ(test_wait(x->honest_pid, 30000), 0);
        CHECK_EQ(write(x->stop[1], "x", 1), 1);
        CHECK_EQ(test_wait(x->hostile_pid, 10000), 0);
}

TEST_TIMEOUT(forged_wake_up_marks_cost_only_spurious_looks, 120) {
        static mixed x;
        mixed_start(&x, "set.forged", forger);
        int set = x.set;
        seen s = x.s;
        ipcf_set_event ev[8];
        while (!s.ended) {
                int k = CHECK_OK(ipcf_set_wait(set, ev, 8, 10000));
                for (int j = 0; j < k; j++) {
                        /* the forger never wrote a message: never reported */
                        CHECK_EQ(ev[j].data, 0);
                        serve_port(&s, true);
                }
        }
        x.s = s;
        /* with only the forger left, a wait still times out on time */
        for (int i = 0; i < 3; i++) {
                uint64_t t0 = test_now_ms();
                CHECK_ERR(ipcf_set_wait(set, ev, 8, 200), -ETIMEDOUT);
                CHECK(test_now_ms() - t0 < 200 + SLACK_MS);
        }
        CHECK_ERR(ipcf_set_wait(set, ev, 8, 0), -EAGAIN);
        mixed_stop(&x);
        ipcf_dealloc(set, NULL);
        test_daemon_stop(&d);
}

/* A peer that scribbles over its whole flow at random (tests/support/hostile.h:
 * control words, record headers, data, end records, run slots, its
 * descriptors) until told to stop. */
static void scribbler(void *arg) {
        const forger_args *a = arg;
        int fds[64];
        uint8_t *mem;
        size_t len;
        int n = hostile_alloc(a->name, fds, &mem, &len);
        mutator m;
        mutator_init(&m, 0x5e7, mem, len, 0, fds, n);
        for (unsigned i = 0; !told_to_stop(a); i++) {
                mutator_step(&m);
                if (i % 8 == 0)
                        usleep(50);
        }
}

TEST_TIMEOUT(a_peer_scribbling_over_its_flow_stalls_neither_the_set_nor_others, 120) {
        static mixed x;
        mixed_start(&x, "set.scribble", scribbler);
        int set = x.set, bad = x.bad;
        seen *s = &x.s;
        ipcf_set_event ev[8];
        char buf[256];
        unsigned bad_reports = 0;
        bool bad_open = true;
        while (!s->ended) {
                int k = CHECK_OK(ipcf_set_wait(set, ev, 8, 10000));
                for (int j = 0; j < k; j++) {
                        if (ev[j].data == 0) {
                                serve_port(s, true);
                                continue;
                        }
                        /* whatever it forged: a read never blocks; a broken
                         * flow stays reported (level-triggered) beside the
                         * honest one, until we end it */
                        bad_reports++;
                        CHECK(bad_open);
                        ssize_t r = ipcf_read(bad, buf, sizeof(buf), 0);
                        if (r < 0 && r != -EAGAIN && r != -EMSGSIZE && bad_reports > 2000) {
                                ipcf_dealloc(bad, NULL);
                                bad_open = false;
                        }
                }
        }
        mixed_stop(&x);
        printf("# the scribbler's port was reported %u times%s\n", bad_reports,
               bad_open ? "" : ", then ended");
        ipcf_dealloc(set, NULL);
        test_daemon_stop(&d);
}

/* ---- the calls, their errors, the descriptor ----------------------------------- */

TEST(the_calls_say_what_they_do_and_their_errors) {
        int a0, a1, b0, b1;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a0, &a1));
        CHECK_OK(flowpair_make(NULL, 0, 0, &b0, &b1));
        ipcf_set_opts bad = { .size = 3 };
        CHECK_ERR(ipcf_set_new(&bad), -EINVAL);
        bad = (ipcf_set_opts){ .size = sizeof(bad), .spin_us = 100001 };
        CHECK_ERR(ipcf_set_new(&bad), -EINVAL);
        int set = CHECK_OK(ipcf_set_new(NULL));
        int other = CHECK_OK(ipcf_set_new(NULL));
        ipcf_set_event ev[4];

        CHECK_ERR(ipcf_set_add(-1, a1, 0), -EBADF);
        CHECK_ERR(ipcf_set_add(a1, a1, 0), -EBADF);     /* not a set */
        CHECK_ERR(ipcf_set_add(set, other, 0), -EBADF); /* not a port */
        CHECK_OK(ipcf_set_add(set, a1, 11));
        CHECK_ERR(ipcf_set_add(set, a1, 0), -EEXIST);
        CHECK_ERR(ipcf_set_add(other, a1, 0), -EBUSY);
        CHECK_ERR(ipcf_fd(a1), -EBUSY);                 /* its readiness is the set's */
        CHECK_OK(ipcf_fd(b1));
        CHECK_ERR(ipcf_set_add(set, b1, 0), -EBUSY);    /* in poll mode */
        CHECK_ERR(ipcf_set_del(set, b1), -ENOENT);
        CHECK_ERR(ipcf_set_wait(set, NULL, 4, 0), -EINVAL);
        CHECK_ERR(ipcf_set_wait(set, ev, 0, 0), -EINVAL);
        CHECK_ERR(ipcf_set_wait(set, ev, 4, -2), -EINVAL);
        CHECK_ERR(ipcf_set_wait(a1, ev, 4, 0), -EBADF);

        /* nothing queued: -EAGAIN, and -ETIMEDOUT on time */
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 50), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 49 && test_now_ms() - t0 < 50 + SLACK_MS);

        /* the descriptor: not readable with everything armed, readable once
         * a message comes; the wait reports the port with its data, level-
         * triggered until it is read */
        struct pollfd pf = { .fd = CHECK_OK(ipcf_fd(set)), .events = POLLIN };
        CHECK_EQ(poll(&pf, 1, 0), 0);
        CHECK_EQ(ipcf_write(a0, "hello", 5, 1000), 5);
        CHECK_EQ(poll(&pf, 1, 5000), 1);
        for (int i = 0; i < 2; i++) {
                CHECK_EQ(ipcf_set_wait(set, ev, 4, 0), 1);
                CHECK_EQ(ev[0].port, a1);
                CHECK_EQ(ev[0].events, IPCF_SET_IN);
                CHECK_EQ(ev[0].data, 11);
        }
        char buf[16];
        CHECK_EQ(ipcf_read(a1, buf, sizeof(buf), 0), 5);
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);

        /* the end of a flow is reported (the read says how) */
        ipcf_dealloc(a0, "bye");
        CHECK_EQ(ipcf_set_wait(set, ev, 4, 5000), 1);
        CHECK_ERR(ipcf_read(a1, buf, sizeof(buf), 0), -EPIPE);

        /* a member closed by the caller leaves the set unreported */
        CHECK_OK(ipcf_dealloc(a1, NULL));
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);

        /* del gives the port back: it can be polled, or join another set */
        int c0, c1;
        CHECK_OK(flowpair_make(NULL, 0, 0, &c0, &c1));
        /* a port this thread holds a peek of: not added (its read lock is
         * held), and taken out without waiting for that lock */
        const void *ptr;
        CHECK_EQ(ipcf_write(c0, "p", 1, 1000), 1);
        CHECK_EQ(ipcf_peek(c1, 0, &ptr), 1);
        CHECK_ERR(ipcf_set_add(set, c1, 5), -EBUSY);
        CHECK_OK(ipcf_release(c1));
        CHECK_OK(ipcf_set_add(set, c1, 5));
        CHECK_EQ(ipcf_write(c0, "q", 1, 1000), 1);
        CHECK_EQ(ipcf_peek(c1, 0, &ptr), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 4, 0), 1); /* (a held peek is ready) */
        CHECK_OK(ipcf_set_del(set, c1));
        CHECK_OK(ipcf_release(c1));
        CHECK_OK(ipcf_set_add(set, c1, 5));
        CHECK_OK(ipcf_set_del(set, c1));
        CHECK_ERR(ipcf_set_del(set, c1), -ENOENT);
        CHECK_OK(ipcf_set_add(other, c1, 6));
        CHECK_OK(ipcf_set_del(other, c1));
        CHECK_OK(ipcf_fd(c1));
        ipcf_dealloc(c0, NULL);
        ipcf_dealloc(c1, NULL);
        ipcf_dealloc(b0, NULL);
        ipcf_dealloc(b1, NULL);
        ipcf_dealloc(other, NULL);
        ipcf_dealloc(set, NULL);
}

/* A thread waiting on a set while the set is deallocated, or ports are added
 * to it from another thread. */
typedef struct waiter_args {
        int set;
        int result;
        ipcf_set_event ev;
} waiter_args;

static void *waiter(void *arg) {
        waiter_args *w = arg;
        w->result = ipcf_set_wait(w->set, &w->ev, 1, 20000);
        return NULL;
}

TEST(adds_from_another_thread_get_in_and_a_dealloc_ends_a_wait) {
        int a0, a1;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a0, &a1));
        int set = CHECK_OK(ipcf_set_new(NULL));
        waiter_args w = { .set = set };
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, waiter, &w), 0);
        usleep(50000); /* (it sleeps in the wait by now, or soon) */
        uint64_t t0 = test_now_ms();
        CHECK_OK(ipcf_set_add(set, a1, 42)); /* let in while it sleeps */
        CHECK(test_now_ms() - t0 < 5000);
        CHECK_EQ(ipcf_write(a0, "x", 1, 1000), 1);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(w.result, 1);
        CHECK_EQ(w.ev.port, a1);
        CHECK_EQ(w.ev.data, 42);
        char c;
        CHECK_EQ(ipcf_read(a1, &c, 1, 0), 1);

        CHECK_EQ(pthread_create(&t, NULL, waiter, &w), 0);
        usleep(50000);
        t0 = test_now_ms();
        CHECK_OK(ipcf_dealloc(set, NULL));
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(w.result, -EBADF);
        CHECK(test_now_ms() - t0 < 5000);
        /* the port is its own again once the set is gone */
        CHECK_OK(ipcf_fd(a1));
        ipcf_dealloc(a0, NULL);
        ipcf_dealloc(a1, NULL);
}
