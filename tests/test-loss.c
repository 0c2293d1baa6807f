/*
 * test-loss.c — nothing is lost without someone being told (issue 16),
 * against the real daemon and real processes, written as an unlucky or
 * hostile user would:
 *   - a service or datagram endpoint that closes while its process lives
 *     ends every channel the daemon had accepted for it but it never took:
 *     a pending call fails -EPIPE at once, a datagram sender's next send
 *     fails and what it sent is counted dropped, nothing is listed live;
 *   - a process that lets go of a flow without ending it (ipcf_detach, its
 *     descriptors closed) ends it for its peer, as a death;
 *   - a mailbox sender or group member that leaves while the daemon has no
 *     memory for its messages (its address space capped with prlimit) is
 *     not dropped with them unread: they go out at the next wake-up.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/steps.h"
#include "support/test.h"

static test_daemon d;

/* Flows the facility lists as live (state 0). */
static size_t live_flows(void) {
        ipcf_listing *l = NULL;
        CHECK_OK(ipcf_list(&l));
        size_t n = 0;
        for (size_t i = 0; i < l->n_flows; i++)
                n += l->flows[i].state == 0;
        ipcf_free(l);
        return n;
}

/* Wait (bounded) until no flow is listed live. */
static void wait_no_live_flow(void) {
        for (int i = 0; i < 500 && live_flows() != 0; i++)
                usleep(10000);
        CHECK_EQ(live_flows(), 0);
}

/* Wait (bounded) until n flows to name are listed live. */
static void wait_live_flows_to(const char *name, size_t n) {
        for (int i = 0; i < 1000; i++) {
                ipcf_listing *l = NULL;
                CHECK_OK(ipcf_list(&l));
                size_t k = 0;
                for (size_t j = 0; j < l->n_flows; j++)
                        k += l->flows[j].state == 0 && strcmp(l->flows[j].name, name) == 0;
                ipcf_free(l);
                if (k == n)
                        return;
                usleep(10000);
        }
        test_fail(__FILE__, __LINE__, "%zu live flows to %s never listed", n, name);
}

/* Block until fd is readable (bounded). */
static void wait_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 10000), 1);
}

/* A caller whose call the service never takes: it must fail -EPIPE ("the
 * service closed"), not wait out its 30 s. */
static void caller_expecting_epipe(void *arg) {
        const char *svc = arg;
        char reply[8];
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_call(svc, "ping", 4, reply, sizeof(reply), 30000, NULL), -EPIPE);
        CHECK(test_now_ms() - t0 < 30000);
}

TEST(a_closing_service_ends_the_calls_it_never_took) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("lost.svc", NULL));
        int fd = CHECK_OK(ipcf_fd(svc));
        pid_t c[3];
        for (int i = 0; i < 3; i++)
                c[i] = test_fork(caller_expecting_epipe, "lost.svc");
        /* Their channels are accepted by the daemon on the service's behalf
         * and parked on its registration socket; the service takes none. */
        wait_readable(fd);
        wait_live_flows_to("lost.svc", 3);
        CHECK_OK(ipcf_dealloc(svc, "closing for good"));
        for (int i = 0; i < 3; i++)
                CHECK_EQ(test_wait(c[i], 20000), 0);
        wait_no_live_flow();
        test_daemon_stop(&d);
}

/* One request taken (its channel in the service's set), another parked: a
 * close ends both. */
TEST(a_closing_service_ends_taken_and_parked_channels) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("lost.svc2", NULL));
        pid_t a = test_fork(caller_expecting_epipe, "lost.svc2");
        char buf[8];
        ipcf_call_req req;
        CHECK_EQ(ipcf_service_next(svc, buf, sizeof(buf), 10000, &req), 4);
        CHECK_EQ(req.from.pid, a);
        pid_t b = test_fork(caller_expecting_epipe, "lost.svc2");
        /* b's channel is parked once the registration socket is readable. */
        wait_readable(CHECK_OK(ipcf_fd(svc)));
        wait_live_flows_to("lost.svc2", 2);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        CHECK_EQ(test_wait(a, 20000), 0);
        CHECK_EQ(test_wait(b, 20000), 0);
        wait_no_live_flow();
        test_daemon_stop(&d);
}

/* Processes that must not share descriptors: each test's service or
 * acceptor runs in a child forked before anything of the test exists, so
 * that it alone holds what it lets go of (a forked child would otherwise
 * inherit the registration socket and keep it alive). Parent and child step
 * through a pipe pair (support/steps.h). */

/* The service forgets its handle (ipcf_detach) once a call is parked, and
 * lives on until told. */
static void detaching_service(void *arg) {
        struct steps *s = arg;
        int svc = CHECK_OK(ipcf_service("lost.svc3", NULL));
        step_send(s->to_parent[1]);
        wait_readable(CHECK_OK(ipcf_fd(svc)));
        wait_live_flows_to("lost.svc3", 1);
        CHECK_OK(ipcf_detach(svc));
        step_wait(s->to_child[0]);
}

static void caller_expecting_reset(void *arg) {
        const char *svc = arg;
        char reply[8];
        CHECK_ERR(ipcf_call(svc, "ping", 4, reply, sizeof(reply), 30000, NULL), -ECONNRESET);
}

/* Nobody holds the caller's channel any more, which is a death: the call
 * fails -ECONNRESET at once, not after its 30 s. */
TEST(a_detached_service_ends_its_calls_as_a_death) {
        test_daemon_start(&d, NULL, NULL);
        struct steps s;
        steps_init(&s);
        pid_t svc = test_fork(detaching_service, &s);
        step_wait(s.to_parent[0]);
        pid_t c = test_fork(caller_expecting_reset, "lost.svc3");
        CHECK_EQ(test_wait(c, 20000), 0);
        wait_no_live_flow();
        step_send(s.to_child[1]);
        CHECK_EQ(test_wait(svc, 10000), 0);
        test_daemon_stop(&d);
}

/* The acceptor writes, then forgets its port without ending the flow. */
static void detaching_acceptor(void *arg) {
        struct steps *s = arg;
        int reg = CHECK_OK(ipcf_register("lost.plain", NULL));
        step_send(s->to_parent[1]);
        int b = CHECK_OK(ipcf_accept(reg, 10000, NULL));
        CHECK_EQ(ipcf_write(b, "last", 4, 1000), 4);
        CHECK_OK(ipcf_detach(b));
        step_wait(s->to_child[0]);
        CHECK_OK(ipcf_dealloc(reg, NULL));
}

/* The allocator reads what is left, then -ECONNRESET "peer let go of the
 * flow"; the flow is not listed live. */
TEST(a_port_let_go_without_dealloc_ends_the_flow_for_the_peer) {
        test_daemon_start(&d, NULL, NULL);
        struct steps s;
        steps_init(&s);
        pid_t b = test_fork(detaching_acceptor, &s);
        step_wait(s.to_parent[0]);
        int a = CHECK_OK(ipcf_alloc("lost.plain", NULL, 5000, NULL));
        char buf[8];
        CHECK_EQ(ipcf_read(a, buf, sizeof(buf), 5000), 4);
        CHECK_MEM(buf, "last", 4);
        CHECK_ERR(ipcf_read(a, buf, sizeof(buf), 5000), -ECONNRESET);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(a, &why));
        CHECK_EQ(why.code, IPCF_END_PEER_DIED);
        CHECK(strcmp(why.text, "peer let go of the flow") == 0);
        CHECK_ERR(ipcf_write(a, "x", 1, 1000), -ECONNRESET);
        CHECK_OK(ipcf_dealloc(a, NULL));
        wait_no_live_flow();
        step_send(s.to_child[1]);
        CHECK_EQ(test_wait(b, 10000), 0);
        test_daemon_stop(&d);
}

/* The sender of datagrams to an endpoint that closes without taking them:
 * the next send fails (the name is gone), the three are counted dropped. */
struct dg_sync {
        int go[2], done[2];
};

static void dgram_sender(void *arg) {
        struct dg_sync *s = arg;
        int ep = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_dgram_send(ep, "lost.dg", "data", 4, 1000), 4);
        CHECK_EQ(write(s->done[1], "s", 1), 1);
        char c;
        CHECK_EQ(read(s->go[0], &c, 1), 1); /* the endpoint is closed now */
        uint64_t drops = 0;
        CHECK_OK(ipcf_dgram_drops(ep, &drops));
        CHECK_EQ(drops, 3);
        CHECK_ERR(ipcf_dgram_send(ep, "lost.dg", "more", 4, 1000), -ENOENT);
        CHECK_OK(ipcf_dgram_drops(ep, &drops));
        CHECK_EQ(drops, 3);
        CHECK_OK(ipcf_dealloc(ep, NULL));
}

TEST(a_closing_datagram_endpoint_tells_its_senders) {
        test_daemon_start(&d, NULL, NULL);
        int ep = CHECK_OK(ipcf_dgram_open("lost.dg", NULL));
        struct dg_sync s;
        CHECK_OK(pipe(s.go));
        CHECK_OK(pipe(s.done));
        pid_t c = test_fork(dgram_sender, &s);
        char x;
        CHECK_EQ(read(s.done[0], &x, 1), 1);
        CHECK_OK(ipcf_dealloc(ep, NULL));
        /* Nothing is listed live any more: the channel's receiving side ended. */
        wait_no_live_flow();
        CHECK_EQ(write(s.go[1], "g", 1), 1);
        CHECK_EQ(test_wait(c, 20000), 0);
        test_daemon_stop(&d);
}

/* ---- the daemon's death, for the models whose other end it is ---------- */

/* The facility's entry for mailbox or group name (zeros if none). */
static ipcf_model_entry model_entry(const char *name) {
        ipcf_model_entry *e = NULL, found;
        size_t k = 0;
        memset(&found, 0, sizeof(found));
        CHECK_OK(ipcf_model_list(&e, &k));
        for (size_t j = 0; j < k; j++)
                if (strcmp(e[j].name, name) == 0)
                        found = e[j];
        ipcf_free(e);
        return found;
}

/* Wait (bounded) until expr, of the entry e of mailbox name, holds. */
#define WAIT_MODEL(name, e, expr)                                                   \
        do {                                                                        \
                int _i = 0;                                                         \
                for (ipcf_model_entry e = model_entry(name); !(expr) && _i < 1000; \
                     e = model_entry(name), _i++)                                   \
                        usleep(10000);                                              \
                ipcf_model_entry e = model_entry(name);                             \
                if (!(expr))                                                        \
                        test_fail(__FILE__, __LINE__, "%s: never %s", name, #expr); \
        } while (0)

/* The case: 1,000 messages queued in the daemon, no receiver, then
 * kill -9 ipcfd. The next send fails (not 16,384 more "successes"), and the
 * 1,000 are reported undelivered. */
TEST(mailbox_sends_after_the_daemons_death_fail_and_the_loss_is_counted) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.lost", NULL));
        int tx = CHECK_OK(ipcf_mbox_open("box.lost", IPCF_MBOX_SEND, NULL, 2000));
        for (int i = 0; i < 1000; i++)
                CHECK_EQ(ipcf_mbox_send(tx, "m", 1, 1000, NULL), 1);
        WAIT_MODEL("box.lost", e, e.queued == 1000);
        CHECK_EQ(ipcf_mbox_undelivered(tx), 0); /* nothing known lost yet */
        test_daemon_kill(&d);
        CHECK_ERR(ipcf_mbox_send(tx, "m", 1, 1000, NULL), -ECONNRESET);
        CHECK_ERR(ipcf_mbox_send(tx, "m", 1, 0, NULL), -ECONNRESET);
        uint64_t seq;
        CHECK_ERR(ipcf_mbox_send_async(tx, "m", 1, 1000, &seq), -ECONNRESET);
        CHECK_EQ(ipcf_mbox_undelivered(tx), 1000);
        CHECK_OK(ipcf_dealloc(tx, NULL));
        test_daemon_stop(&d);
}

/* With a receiver: what it took while the daemon lived is delivered; the
 * rest is reported undelivered, exactly — and the receiver may still read
 * what its queue held when the daemon died (those, and only those, are in
 * doubt: read, and counted undelivered). */
TEST(mailbox_every_message_delivered_or_reported_across_the_daemons_death) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.half", NULL));
        int rx = CHECK_OK(ipcf_mbox_open("box.half", IPCF_MBOX_RECV, NULL, 2000));
        int tx = CHECK_OK(ipcf_mbox_open("box.half", IPCF_MBOX_SEND, NULL, 2000));
        const int sent = 1001;
        for (int i = 0; i < sent - 1; i++)
                CHECK_EQ(ipcf_mbox_send(tx, &i, sizeof(i), 1000, NULL), (ssize_t)sizeof(i));
        static char seen[1001];
        int got = 0, v;
        for (; got < 300; got++) {
                CHECK_EQ(ipcf_mbox_recv(rx, &v, sizeof(v), 2000, NULL), (ssize_t)sizeof(v));
                CHECK(v >= 0 && v < sent && !seen[v]);
                seen[v] = 1;
        }
        /* One more message: once the daemon has taken it, it has also seen
         * the 300 taken (it counts them as it goes round the mailbox). */
        v = sent - 1;
        CHECK_EQ(ipcf_mbox_send(tx, &v, sizeof(v), 1000, NULL), (ssize_t)sizeof(v));
        WAIT_MODEL("box.half", e, e.msgs_in == (uint64_t)sent);
        test_daemon_kill(&d);
        int after = 0;
        ssize_t r;
        while ((r = ipcf_mbox_recv(rx, &v, sizeof(v), 2000, NULL)) == (ssize_t)sizeof(v)) {
                CHECK(v >= 0 && v < sent && !seen[v]);
                seen[v] = 1;
                after++;
        }
        CHECK_ERR(r, -ECONNRESET);
        CHECK_ERR(ipcf_mbox_send(tx, "x", 1, 1000, NULL), -ECONNRESET);
        int64_t und = ipcf_mbox_undelivered(tx);
        printf("  %d read before the death, %d after (in doubt), %lld reported undelivered\n", got,
               after, (long long)und);
        CHECK_EQ(und, sent - got);
        CHECK(got + after <= sent);
        CHECK_OK(ipcf_dealloc(tx, NULL));
        CHECK_OK(ipcf_dealloc(rx, NULL));
        test_daemon_stop(&d);
}

/* A receiver that polls its handle (ipcf_fd) is woken by the daemon's death;
 * so is a sender polling for room (ipcf_fd_send) and one blocked in a send. */
TEST(mailbox_handles_polled_or_blocked_learn_the_daemons_death) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 1 };
        CHECK_OK(ipcf_mbox_create("box.poll", &o));
        int rx = CHECK_OK(ipcf_mbox_open("box.poll", IPCF_MBOX_RECV, NULL, 2000));
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = 4096;
        int tx = CHECK_OK(ipcf_mbox_open("box.poll", IPCF_MBOX_SEND, &q, 2000));
        int rfd = CHECK_OK(ipcf_fd(rx));
        struct pollfd p = { .fd = rfd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 0), 0);
        /* Fill everything: the receiver's ring, the mailbox, the sender's ring. */
        static char big[1024];
        int sfd = CHECK_OK(ipcf_fd_send(tx));
        struct pollfd ps = { .fd = sfd, .events = POLLIN };
        /* (The daemon moves messages on meanwhile, into the receiver's ring:
         * fill until three pauses in a row let nothing more in. A full ring
         * right after a fill proves nothing: the daemon may not have run.) */
        for (int i = 0, quiet = 0; i < 500 && quiet < 3; i++) {
                int sent = 0;
                while (ipcf_mbox_send(tx, big, sizeof(big), 0, NULL) == (ssize_t)sizeof(big))
                        sent++;
                quiet = sent == 0 && poll(&ps, 1, 0) == 0 ? quiet + 1 : 0;
                usleep(10000);
        }
        CHECK_EQ(poll(&ps, 1, 0), 0);
        test_daemon_kill(&d);
        CHECK_EQ(poll(&ps, 1, 10000), 1);
        CHECK_ERR(ipcf_mbox_send(tx, big, sizeof(big), 20000, NULL), -ECONNRESET);
        /* The receiver drains its queue, then learns; its descriptor said so. */
        CHECK_EQ(poll(&p, 1, 10000), 1);
        ssize_t r;
        while ((r = ipcf_mbox_recv(rx, big, sizeof(big), 0, NULL)) == (ssize_t)sizeof(big))
                ;
        CHECK_ERR(r, -ECONNRESET);
        CHECK_EQ(poll(&p, 1, 0), 1);
        CHECK_OK(ipcf_dealloc(tx, NULL));
        CHECK_OK(ipcf_dealloc(rx, NULL));
        test_daemon_stop(&d);
}

/* Multicast: the same review. */
TEST(multicast_sends_after_the_daemons_death_fail) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mcast_create("mc.lost", NULL));
        int a = CHECK_OK(ipcf_mcast_join("mc.lost", NULL, 2000));
        int b = CHECK_OK(ipcf_mcast_join("mc.lost", NULL, 2000));
        CHECK_EQ(ipcf_mcast_send(a, "hi", 2, 1000), 2);
        char buf[8];
        CHECK_EQ(ipcf_mcast_recv(b, buf, sizeof(buf), 5000, NULL), 2);
        int bfd = CHECK_OK(ipcf_fd(b));
        test_daemon_kill(&d);
        CHECK_ERR(ipcf_mcast_send(a, "lost", 4, 1000), -ECONNRESET);
        struct pollfd p = { .fd = bfd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 10000), 1);
        CHECK_ERR(ipcf_mcast_recv(b, buf, sizeof(buf), 0, NULL), -ECONNRESET);
        CHECK_OK(ipcf_dealloc(a, NULL));
        CHECK_OK(ipcf_dealloc(b, NULL));
        test_daemon_stop(&d);
}

/* Senders that left their messages to a mailbox nobody reads: its destroyer
 * is told how many it discarded (the others' senders are told themselves). */
TEST(a_mailbox_destroyer_is_told_what_departed_senders_left) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.left", NULL));
        int gone = CHECK_OK(ipcf_mbox_open("box.left", IPCF_MBOX_SEND, NULL, 2000));
        int stays = CHECK_OK(ipcf_mbox_open("box.left", IPCF_MBOX_SEND, NULL, 2000));
        for (int i = 0; i < 7; i++)
                CHECK_EQ(ipcf_mbox_send(gone, "g", 1, 1000, NULL), 1);
        for (int i = 0; i < 5; i++)
                CHECK_EQ(ipcf_mbox_send(stays, "s", 1, 1000, NULL), 1);
        CHECK_OK(ipcf_dealloc(gone, NULL));
        WAIT_MODEL("box.left", e, e.queued == 12);
        CHECK_EQ(ipcf_mbox_destroy("box.left"), 7);
        CHECK_ERR(ipcf_mbox_send(stays, "s", 1, 1000, NULL), -EPIPE);
        CHECK_EQ(ipcf_mbox_undelivered(stays), 5);
        CHECK_OK(ipcf_dealloc(stays, NULL));
        test_daemon_stop(&d);
}

/* A multicast member that had not read its messages when the group was
 * destroyed is told how many it will never get. */
TEST(a_destroyed_group_tells_each_member_what_it_missed) {
        test_daemon_start(&d, NULL, NULL);
        /* Small messages and a small queue for b: most of what a sends stays
         * in the group's own queue, waiting for b. */
        ipcf_mcast_opts o = { .size = sizeof(o), .max_msg_size = 64 };
        CHECK_OK(ipcf_mcast_create("mc.gone", &o));
        int a = CHECK_OK(ipcf_mcast_join("mc.gone", NULL, 2000));
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = 4096;
        int b = CHECK_OK(ipcf_mcast_join("mc.gone", &q, 2000));
        for (int i = 0; i < 200; i++)
                CHECK_EQ(ipcf_mcast_send(a, "m", 1, 1000), 1);
        char buf[8];
        for (int i = 0; i < 4; i++)
                CHECK_EQ(ipcf_mcast_recv(b, buf, sizeof(buf), 5000, NULL), 1);
        WAIT_MODEL("mc.gone", e, e.msgs_in == 200);
        /* b reads what its queue holds, and is told the rest are lost. */
        CHECK_OK(ipcf_mcast_destroy("mc.gone"));
        int more = 0;
        ssize_t r;
        while ((r = ipcf_mcast_recv(b, buf, sizeof(buf), 5000, NULL)) == 1)
                more++;
        CHECK_ERR(r, -EPIPE);
        printf("  b read %d after the destroy, told %lld lost\n", more, (long long)ipcf_mcast_lost(b));
        CHECK(ipcf_mcast_lost(b) > 0);
        CHECK_EQ(more + ipcf_mcast_lost(b), 196);
        CHECK_EQ(ipcf_mcast_lost(a), 0); /* its own messages are not for it */
        CHECK_OK(ipcf_dealloc(a, NULL));
        CHECK_OK(ipcf_dealloc(b, NULL));
        test_daemon_stop(&d);
}

/* The same when the mailbox was full: the daemon had stopped reading the
 * departed sender's ring, where the rest of its messages still are. */
TEST(a_mailbox_destroyer_is_told_of_a_departed_senders_unread_ring) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 4 };
        CHECK_OK(ipcf_mbox_create("box.full", &o));
        int gone = CHECK_OK(ipcf_mbox_open("box.full", IPCF_MBOX_SEND, NULL, 2000));
        int stays = CHECK_OK(ipcf_mbox_open("box.full", IPCF_MBOX_SEND, NULL, 2000));
        for (int i = 0; i < 20; i++)
                CHECK_EQ(ipcf_mbox_send(gone, "g", 1, 1000, NULL), 1);
        WAIT_MODEL("box.full", e, e.queued == 4);
        for (int i = 0; i < 5; i++)
                CHECK_EQ(ipcf_mbox_send(stays, "s", 1, 1000, NULL), 1);
        CHECK_OK(ipcf_dealloc(gone, NULL));
        CHECK_EQ(ipcf_mbox_destroy("box.full"), 20);
        CHECK_ERR(ipcf_mbox_send(stays, "s", 1, 1000, NULL), -EPIPE);
        CHECK_EQ(ipcf_mbox_undelivered(stays), 5);
        CHECK_OK(ipcf_dealloc(stays, NULL));
        test_daemon_stop(&d);
}

/* ---- a departed sender's messages while the daemon has no memory --------- */

enum { NOMEM_LEN = 250 * 1024, NOMEM_MSGS = 3 };

static struct rlimit nomem_old;

/* The daemon's address space capped at what it maps now: its next large
 * malloc (a message block of NOMEM_LEN, mapped apart) fails. Not for a
 * sanitized daemon (IPCF_BUILD=build-asan: its shadow memory, terabytes
 * reserved, shows in its size), whose own mappings would fail first: then
 * false, and the case has nothing to test. */
static bool nomem_on(void) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)d.pid);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        long kb = -1;
        while (kb < 0 && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmSize: %ld kB", &kb) != 1)
                        kb = -1;
        fclose(f);
        CHECK(kb > 0);
        if (kb > (1l << 30)) {
                fprintf(stderr, "(a sanitized daemon: its address space cannot be capped)\n");
                return false;
        }
        struct rlimit lim = { (rlim_t)kb * 1024, RLIM_INFINITY };
        CHECK_OK(prlimit(d.pid, RLIMIT_AS, NULL, &nomem_old));
        CHECK_OK(prlimit(d.pid, RLIMIT_AS, &lim, NULL));
        return true;
}

static void nomem_off(void) { CHECK_OK(prlimit(d.pid, RLIMIT_AS, &nomem_old, NULL)); }

/* Sends NOMEM_MSGS messages of NOMEM_LEN on h (a mailbox's or a group's)
 * while the daemon cannot take them in, and leaves at once; the daemon
 * gets its memory back a moment later. False: it cannot be done here. */
static bool nomem_send_and_leave(int h, bool group) {
        static char msg[NOMEM_LEN];
        if (!nomem_on())
                return false;
        for (int i = 0; i < NOMEM_MSGS; i++) {
                memset(msg, 'a' + i, NOMEM_LEN);
                ssize_t w = group ? ipcf_mcast_send(h, msg, NOMEM_LEN, 5000)
                                  : ipcf_mbox_send(h, msg, NOMEM_LEN, 5000, NULL);
                CHECK_EQ(w, NOMEM_LEN);
        }
        CHECK_OK(ipcf_dealloc(h, NULL));
        usleep(200000); /* its end seen, its ring not read */
        nomem_off();
        return true;
}

/* What the departed sender wrote, in order. */
static void nomem_receive(int h, bool group) {
        static char buf[NOMEM_LEN];
        for (int i = 0; i < NOMEM_MSGS; i++) {
                ssize_t n = group ? ipcf_mcast_recv(h, buf, sizeof(buf), 5000, NULL)
                                  : ipcf_mbox_recv(h, buf, sizeof(buf), 5000, NULL);
                if (n != NOMEM_LEN)
                        test_fail(__FILE__, __LINE__, "message %d of %d: %zd", i, NOMEM_MSGS, n);
                CHECK(buf[0] == 'a' + i && buf[NOMEM_LEN - 1] == 'a' + i);
        }
}

/* A sender that leaves while the daemon has no memory for its messages
 * (each block malloc'ed apart) is not dropped with them unread: they wait
 * in its ring for the daemon's next wake-up (here a receiver opening). */
TEST_TIMEOUT(a_departed_senders_messages_outlive_a_lack_of_memory, 60) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msg_size = 256 * 1024, .max_bytes = 16 << 20 };
        CHECK_OK(ipcf_mbox_create("box.nomem", &o));
        int tx = CHECK_OK(ipcf_mbox_open("box.nomem", IPCF_MBOX_SEND, NULL, 2000));
        if (nomem_send_and_leave(tx, false)) {
                int rx = CHECK_OK(ipcf_mbox_open("box.nomem", IPCF_MBOX_RECV, NULL, 2000));
                nomem_receive(rx, false);
                CHECK_EQ(ipcf_mbox_destroy("box.nomem"), 0);
        }
        test_daemon_stop(&d);
}

/* The same in a group: a member that leaves with messages the daemon had
 * no memory for yet; they go to the others at its next wake-up (a member
 * joining). */
TEST_TIMEOUT(a_departed_members_messages_outlive_a_lack_of_memory, 60) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mcast_opts o = { .size = sizeof(o), .max_msg_size = 256 * 1024 };
        CHECK_OK(ipcf_mcast_create("grp.nomem", &o));
        int stays = CHECK_OK(ipcf_mcast_join("grp.nomem", NULL, 2000));
        int leaves = CHECK_OK(ipcf_mcast_join("grp.nomem", NULL, 2000));
        if (nomem_send_and_leave(leaves, true)) {
                int joins = CHECK_OK(ipcf_mcast_join("grp.nomem", NULL, 2000));
                nomem_receive(stays, true);
                CHECK_OK(ipcf_dealloc(joins, NULL));
        }
        CHECK_OK(ipcf_dealloc(stays, NULL));
        test_daemon_stop(&d);
}
