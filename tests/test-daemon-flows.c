/*
 * test-daemon-flows.c — flows and allocation through the raw control protocol
 * (common/ctl.c, not the library): the whole handshake (FLOW descriptors:
 * size, seals, mapping, header, wake-up channels), refusal with reason,
 * ENOENT and EINVAL, roles only from their attribute, a broker flow given up
 * during handover, ETIMEDOUT then ECANCELED, withdrawal by hang-up or death,
 * peer death both ways, "requester gave up", LIST content, states and
 * paging, one connection holding both sides, quotas of every kind, a random
 * churn that must leave no name, flow or descriptor behind, and the
 * handshake rate. Every case starts the real daemon on a private runtime dir.
 * Split from test-daemon-proto.c by module (issue 9); the shared helpers are
 * tests/support/rawctl.c.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <limits.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/flowmem.h"
#include "common/ring.h"
#include "common/util.h"
#include "common/wake.h"
#include "support/rawctl.h"
#include "support/test.h"

TEST_TIMEOUT(handshake, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, aid, req;
        int rs, reply;
        struct ctl_peer_wire pw;
        char pname[IPCF_NAME_MAX + 1];
        flowinfo a, b;

        CHECK_OK(do_register(cb, "svc.echo", 0, 0, &reg, &rs));
        ipcf_qos q = { .max_bytes = 65536, .max_msg_size = 1024 };
        CHECK_OK(do_alloc(ca, "svc.echo", &q, 5000, &aid, &reply));
        wait_request(rs, &req, &pw, pname);
        CHECK_EQ(req, aid);
        CHECK_EQ(le32toh(pw.pid), getpid());
        CHECK_EQ(le32toh(pw.uid), getuid());
        CHECK(strcmp(pname, "test-daemon-flows") == 0);

        CHECK_OK(do_accept(cb, reg, req, &b));
        CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
        send_ok(reply);
        close(reply);

        /* Both ends agree on the flow. */
        CHECK_EQ(a.id, b.id);
        CHECK_EQ(a.side, 0);
        CHECK_EQ(b.side, 1);
        CHECK_EQ(a.shm_size, b.shm_size);
        CHECK_EQ(a.qos.max_bytes, 65536);
        CHECK_EQ(a.qos.max_msg_size, 1024);
        CHECK(strcmp(a.peer_name, "svc.echo") == 0);
        CHECK(strcmp(b.peer_name, "test-daemon-flows") == 0);
        CHECK_EQ(le32toh(b.peer.pid), getpid());

        /* The memfd: sized as the layout says, sealed, with the header. */
        flow_layout l;
        CHECK_OK(flow_layout_for(&a.qos, &l));
        struct stat st;
        CHECK_OK(fstat(a.fds[0], &st));
        CHECK_EQ(st.st_size, l.total);
        CHECK_EQ(a.shm_size, l.total);
        int seals = fcntl(a.fds[0], F_GET_SEALS);
        CHECK_EQ(seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        CHECK(ftruncate(a.fds[0], 0) < 0);
        struct flow_hdr *h = flow_map(&a);
        CHECK_EQ(h->magic, FLOW_MAGIC);
        CHECK_EQ(h->version, FLOW_VERSION);
        CHECK_EQ(h->size, l.total);
        CHECK_EQ(atomic_load(&h->end[0].code), 0);
        /* Writes through one end's memfd show through the other's. */
        struct flow_hdr *hb = flow_map(&b);
        flow_ctl_of(h, 0)->msgs_w = 7;
        CHECK_EQ(atomic_load(&flow_ctl_of(hb, 0)->msgs_w), 7);

        /* The wake-up channels are crossed: a's "peer rx" bell rings b's rx
         * ear, and each side's own bells ring its own ears. */
        CHECK_OK(wake_ring(a.fds[FLOW_FD_PEER_RX_BELL]));
        CHECK(readable(b.fds[FLOW_FD_RX_EAR], 1000));
        CHECK_EQ(wake_drain(b.fds[FLOW_FD_RX_EAR]), 1);
        CHECK_OK(wake_ring(b.fds[FLOW_FD_PEER_TX_BELL]));
        CHECK_EQ(wake_drain(a.fds[FLOW_FD_TX_EAR]), 1);
        CHECK_EQ(wake_drain(a.fds[FLOW_FD_RX_EAR]), 0);
        CHECK_OK(wake_ring(a.fds[FLOW_FD_RX_BELL]));
        CHECK_EQ(wake_drain(a.fds[FLOW_FD_RX_EAR]), 1);
        CHECK_OK(wake_ring(b.fds[FLOW_FD_TX_BELL]));
        CHECK_EQ(wake_drain(b.fds[FLOW_FD_TX_EAR]), 1);
        CHECK_EQ(wake_drain(b.fds[FLOW_FD_RX_EAR]), 0);

        /* Dealloc both sides; then the id is gone. */
        CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "bye"));
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
        CHECK_ERR(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL), -ENOENT);
        /* A's dealloc was written for it (the library normally does that). */
        CHECK_EQ(atomic_load(&hb->end[0].code), IPCF_END_DEALLOC);
        CHECK(strcmp(hb->end[0].reason, "bye") == 0);
        flow_close(&a);
        flow_close(&b);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(refuse_with_reason, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, aid, req;
        int rs, reply;
        char reason[IPCF_REASON_MAX + 1];
        uint32_t end;
        CHECK_OK(do_register(cb, "picky", 0, 0, &reg, &rs));
        CHECK_OK(do_alloc(ca, "picky", NULL, 5000, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_simple(cb, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, "not today"));
        CHECK_ERR(wait_outcome(reply, NULL, reason, &end, 5000), -ECONNREFUSED);
        CHECK(strcmp(reason, "not today") == 0);
        CHECK_EQ(end, IPCF_END_REFUSED);
        /* The daemon closed its end after the outcome. */
        CHECK(closed_by_daemon(reply));
        /* Deciding it again: no such request. */
        CHECK_ERR(do_simple(cb, CTL_ACCEPT, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, NULL), -ENOENT);
        /* Someone else's registration: no such registration. */
        CHECK_ERR(do_simple(ca, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, NULL), -ENOENT);
        close(reply);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(unknown_name, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), reply;
        CHECK_OK(do_alloc(ca, "nobody.home", NULL, 5000, NULL, &reply));
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ENOENT);
        close(reply);
        /* Bad names, qos and timeouts are refused on the main connection. */
        CHECK_ERR(do_alloc(ca, "has space", NULL, 5000, NULL, &reply), -EINVAL);
        char longname[200];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        CHECK_ERR(do_alloc(ca, longname, NULL, 5000, NULL, &reply), -EINVAL);
        ipcf_qos q = { .capacity = 9 };
        CHECK_ERR(do_alloc(ca, "x", &q, 5000, NULL, &reply), -EINVAL);
        CHECK_ERR(do_alloc(ca, "x", NULL, 0, NULL, &reply), -EINVAL);
        CHECK_ERR(do_alloc(ca, "x", NULL, -5, NULL, &reply), -EINVAL);
        uint64_t reg;
        int rs;
        CHECK_ERR(do_register(ca, "", 0, 0, &reg, &rs), -EINVAL);
        CHECK_ERR(do_register(ca, "ok", 0x80, 0, &reg, &rs), -EINVAL);
        CHECK_OK(do_hello(ca, NULL));
        close(ca);
        test_daemon_stop(&d);
}

/* The role of an ALLOC is its ROLE attribute, set by the library's model
 * code; the qos's reserved byte (where the role used to travel, unchecked)
 * opens nothing: it is refused. Issue 9. */
TEST_TIMEOUT(alloc_role_only_from_its_attribute, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), reply;
        ctl_builder b;
        CHECK_OK(do_name_request(c, CTL_MBOX_CREATE, "role.box"));
        ipcf_qos q = { 0 };
        struct ctl_qos_wire qw;
        ctl_qos_to_wire(&q, &qw);
        CHECK_EQ(qw.reserved0, 0);
        /* The old way: the role in the qos byte. Refused, nothing opened. */
        for (unsigned role = 1; role < CTL_ROLE_MAX_ + 2; role++) {
                qw.reserved0 = (uint8_t)role;
                CHECK_ERR(do_alloc_wire(c, "role.box", &qw, -1, 2000, NULL, &reply), -EINVAL);
                CHECK_ERR(do_alloc_wire(c, "role.box", &qw, CTL_ROLE_MBOX_RECV, 2000, NULL, &reply),
                          -EINVAL);
        }
        qw.reserved0 = 0;
        /* A role the daemon does not know. */
        CHECK_ERR(do_alloc_wire(c, "role.box", &qw, CTL_ROLE_MAX_, 2000, NULL, &reply), -EINVAL);
        /* No role: an ordinary flow, and nobody registered the name. */
        CHECK_OK(do_alloc_wire(c, "role.box", &qw, -1, 2000, NULL, &reply));
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ENOENT);
        close(reply);
        /* The attribute: a mailbox receiver, whose other side is the daemon. */
        flowinfo f;
        CHECK_OK(do_alloc_wire(c, "role.box", &qw, CTL_ROLE_MBOX_RECV, 2000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &f, NULL, NULL, 5000));
        CHECK_EQ(f.side, 0);
        CHECK_EQ(f.qos.reserved, 0); /* the granted qos carries no role either */
        uint32_t dpid;
        CHECK_OK(do_hello(c, &dpid));
        CHECK_EQ(f.peer.pid, dpid);
        send_ok(reply);
        close(reply);
        flow_close(&f);
        /* A ROLE of the wrong size breaks the protocol. */
        int bad = CHECK_OK(dconnect()), sv[2];
        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
        ctl_begin(&b, CTL_ALLOC, 1);
        ctl_put_str(&b, CTL_A_NAME, "role.box");
        ctl_put_u64(&b, CTL_A_ROLE, CTL_ROLE_MBOX_RECV);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(bad, &b, &sv[1], 1));
        CHECK(closed_by_daemon(bad));
        close(sv[0]);
        close(sv[1]);
        close(bad);
        CHECK_OK(do_hello(c, NULL));
        close(c);
        test_daemon_stop(&d);
}

/* Receivers of the mailbox, from MODEL_LIST (-1 if it is not listed). */
static int mbox_receivers(int c, const char *name) {
        ctl_builder b;
        rmsg r;
        uint32_t seq = next_seq++;
        ctl_begin(&b, CTL_MODEL_LIST, seq);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(c, &b, NULL, 0));
        CHECK_OK(wait_reply(c, &r, seq));
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        while (ctl_attr_next(&r.m, &cur, &t, &v, &len)) {
                struct ctl_model_entry_wire e;
                if (t != CTL_A_MODEL_ENTRY || len != sizeof(e))
                        continue;
                memcpy(&e, v, sizeof(e));
                if (strcmp(e.name, name) == 0)
                        return (int)le32toh(e.receivers);
        }
        return -1;
}

/* A flow to the broker is handed over like any other: a requester that
 * closes its reply socket without the OK gave up, and the daemon's end lets
 * go of it (nothing is left behind in the mailbox). */
TEST_TIMEOUT(broker_requester_gave_up, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), reply;
        CHECK_OK(do_name_request(c, CTL_MBOX_CREATE, "gaveup.box"));
        struct ctl_qos_wire qw;
        ipcf_qos q = { 0 };
        ctl_qos_to_wire(&q, &qw);
        flowinfo f;
        CHECK_OK(do_alloc_wire(c, "gaveup.box", &qw, CTL_ROLE_MBOX_RECV, 2000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &f, NULL, NULL, 5000));
        CHECK_EQ(mbox_receivers(c, "gaveup.box"), 1);
        close(reply); /* no OK */
        struct flow_hdr *h = flow_map(&f);
        for (int i = 0; i < 200 && mbox_receivers(c, "gaveup.box") != 0; i++)
                usleep(10000);
        CHECK_EQ(mbox_receivers(c, "gaveup.box"), 0);
        CHECK_EQ(atomic_load(&h->end[0].code), IPCF_END_DEALLOC);
        CHECK(strcmp(h->end[0].reason, "requester gave up") == 0);
        munmap(h, f.shm_size);
        flow_close(&f);
        close(c);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(alloc_timeout, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, aid, req;
        int rs, reply;
        flowinfo f;
        CHECK_OK(do_register(cb, "slow", 0, 0, &reg, &rs));
        uint64_t t0 = test_now_ms();
        CHECK_OK(do_alloc(ca, "slow", NULL, 200, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ETIMEDOUT);
        uint64_t dt = test_now_ms() - t0;
        CHECK(dt >= 190 && dt < 3000);
        /* Too late to decide: cancelled, not unknown. */
        CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        CHECK_ERR(do_simple(cb, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, NULL), -ECANCELED);
        close(reply);

        /* A requester that hangs up its reply socket withdraws its request. */
        CHECK_OK(do_alloc(ca, "slow", NULL, 5000, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        close(reply);
        sync_daemon(cb);
        CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        /* So does one whose main connection dies. */
        int cc = CHECK_OK(dconnect());
        CHECK_OK(do_alloc(cc, "slow", NULL, 5000, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        close(cc);
        CHECK(closed_by_daemon(reply));
        CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        close(reply);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(many_withdrawn_requests_cancel, 30) {
        /* A registrant that reads its requests late: 200 of them timed out
         * meanwhile; deciding each, even the oldest, says ECANCELED. */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect()), rs;
        uint64_t reg;
        enum { N = 200 };
        int reply[N];
        CHECK_OK(do_register(cb, "late.reader", 0, 1024, &reg, &rs));
        for (int i = 0; i < N; i++)
                CHECK_OK(do_alloc(ca, "late.reader", NULL, 50, NULL, &reply[i]));
        for (int i = 0; i < N; i++) {
                CHECK_ERR(wait_outcome(reply[i], NULL, NULL, NULL, 5000), -ETIMEDOUT);
                close(reply[i]);
        }
        for (int i = 0; i < N; i++) {
                uint64_t req;
                flowinfo f;
                wait_request(rs, &req, NULL, NULL);
                CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        }
        /* An id never sent to it is still unknown. */
        CHECK_ERR(do_simple(cb, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, 999999, NULL), -ENOENT);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

/* A forked acceptor for the death tests: registers `mortal`, says so on the
 * pipe, accepts one request, says so again, then waits to be killed. */
static int death_pipe[2];

static void mortal_child(void *arg) {
        (void)arg;
        int fd = dconnect(), rs;
        uint64_t reg, req;
        flowinfo f;
        CHECK(fd >= 0);
        CHECK_OK(do_register(fd, "mortal", 0, 0, &reg, &rs));
        CHECK(write(death_pipe[1], "r", 1) == 1);
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_accept(fd, reg, req, &f));
        CHECK(write(death_pipe[1], "a", 1) == 1);
        for (;;)
                pause();
}

TEST_TIMEOUT(peer_death_acceptor, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(pipe(death_pipe));
        pid_t child = test_fork(mortal_child, NULL);
        char ch;
        CHECK(read(death_pipe[0], &ch, 1) == 1);
        int ca = CHECK_OK(dconnect()), reply;
        flowinfo a;
        CHECK_OK(do_alloc(ca, "mortal", NULL, 5000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
        send_ok(reply);
        close(reply);
        CHECK(read(death_pipe[0], &ch, 1) == 1);
        CHECK_EQ(le32toh(a.peer.pid), child);
        struct flow_hdr *h = flow_map(&a);
        CHECK(!readable(a.fds[FLOW_FD_RX_EAR], 0));

        uint64_t t0 = test_now_ns();
        kill(child, SIGKILL);
        CHECK(readable(a.fds[FLOW_FD_RX_EAR], 2000));
        uint64_t us = (test_now_ns() - t0) / 1000;
        printf("  peer death noticed in %llu us\n", (unsigned long long)us);
        CHECK_EQ(atomic_load(&h->end[1].code), IPCF_END_PEER_DIED);
        CHECK(strcmp(h->end[1].reason, "peer died") == 0);
        CHECK_EQ(atomic_load(&h->end[0].code), 0);
        CHECK(readable(a.fds[FLOW_FD_TX_EAR], 1000)); /* tx rung too (just after rx) */
        CHECK(us < 100000);
        test_wait(child, 1000);
        /* The survivor deallocates; the flow is then reclaimed. */
        CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "ok"));
        CHECK_ERR(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "ok"), -ENOENT);
        flow_close(&a);
        close(ca);
        test_daemon_stop(&d);
}

static void mortal_allocator(void *arg) {
        (void)arg;
        int fd = dconnect(), reply;
        flowinfo f;
        CHECK(fd >= 0);
        CHECK_OK(do_alloc(fd, "keeper", NULL, 5000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &f, NULL, NULL, 5000));
        send_ok(reply);
        CHECK(write(death_pipe[1], "a", 1) == 1);
        for (;;)
                pause();
}

TEST_TIMEOUT(peer_death_allocator, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(pipe(death_pipe));
        int cb = CHECK_OK(dconnect()), rs;
        uint64_t reg, req;
        flowinfo b;
        CHECK_OK(do_register(cb, "keeper", 0, 0, &reg, &rs));
        pid_t child = test_fork(mortal_allocator, NULL);
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_accept(cb, reg, req, &b));
        char ch;
        CHECK(read(death_pipe[0], &ch, 1) == 1);
        struct flow_hdr *h = flow_map(&b);
        uint64_t t0 = test_now_ns();
        kill(child, SIGKILL);
        CHECK(readable(b.fds[FLOW_FD_RX_EAR], 2000));
        uint64_t us = (test_now_ns() - t0) / 1000;
        printf("  peer death noticed in %llu us\n", (unsigned long long)us);
        CHECK_EQ(atomic_load(&h->end[0].code), IPCF_END_PEER_DIED);
        CHECK(us < 100000);
        test_wait(child, 1000);
        flow_close(&b);
        close(rs);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(requester_gave_up, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, req;
        int rs, reply;
        flowinfo b;
        CHECK_OK(do_register(cb, "late", 0, 0, &reg, &rs));
        CHECK_OK(do_alloc(ca, "late", NULL, 5000, NULL, &reply));
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_accept(cb, reg, req, &b));
        struct flow_hdr *h = flow_map(&b);
        /* The FLOW is waiting on the reply socket; the requester closes it
         * without the handover OK. */
        CHECK(readable(reply, 2000));
        close(reply);
        CHECK(readable(b.fds[FLOW_FD_RX_EAR], 2000));
        CHECK_EQ(atomic_load(&h->end[0].code), IPCF_END_DEALLOC);
        CHECK(strcmp(h->end[0].reason, "requester gave up") == 0);
        CHECK(readable(b.fds[FLOW_FD_TX_EAR], 1000)); /* tx too (rung just after rx) */
        /* The requester's side is closed: the flow goes with the acceptor's. */
        CHECK_ERR(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL), -ENOENT);
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
        flow_close(&b);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(list_content, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        listing l;
        flowinfo a, b;
        uint64_t reg;
        int rs;
        do_list(ca, &l);
        CHECK_EQ(l.pid, d.pid);
        CHECK_EQ(l.n_names, 0);
        CHECK_EQ(l.n_flows, 0);

        ipcf_qos q = { .max_bytes = 8192 };
        make_flow(ca, cb, "listed", &q, &reg, &rs, &a, &b);
        /* Pretend side 0 wrote 3 messages of 100 bytes, 2 still queued. */
        struct flow_hdr *h = flow_map(&a);
        struct ring_ctl *rc = flow_ctl_of(h, 0);
        atomic_store(&rc->msgs_w, 3);
        atomic_store(&rc->bytes_w, 300);
        atomic_store(&rc->head, 3 * ring_rec_size(100));
        atomic_store(&rc->tail, 1 * ring_rec_size(100));
        do_list(ca, &l);
        CHECK_EQ(l.n_names, 1);
        CHECK(strcmp(l.names[0].name, "listed") == 0);
        CHECK_EQ(l.names[0].pid, getpid());
        CHECK_EQ(l.names[0].flows, 1);
        CHECK_EQ(l.names[0].pending, 0);
        CHECK_EQ(l.n_flows, 1);
        CHECK_EQ(l.flows[0].id, a.id);
        CHECK(strcmp(l.flows[0].name, "listed") == 0);
        CHECK_EQ(l.flows[0].pid_a, getpid());
        CHECK_EQ(l.flows[0].pid_b, getpid());
        CHECK_EQ(l.flows[0].msgs_ab, 3);
        CHECK_EQ(l.flows[0].bytes_ab, 300);
        CHECK_EQ(l.flows[0].queued_ab, 2 * ring_rec_size(100));
        CHECK_EQ(l.flows[0].msgs_ba, 0);
        CHECK_EQ(l.flows[0].state, 0);
        CHECK_EQ(l.flows[0].qos.max_bytes, 8192);
        /* One side ends: the flow is closing. */
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
        do_list(ca, &l);
        CHECK_EQ(l.n_flows, 1);
        CHECK_EQ(l.flows[0].state, 1);
        CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, NULL));
        do_list(ca, &l);
        CHECK_EQ(l.n_flows, 0);
        CHECK_EQ(l.n_names, 1);
        CHECK_EQ(l.names[0].flows, 0);
        /* Closing the request socket is unregistering. */
        close(rs);
        sync_daemon(ca);
        do_list(ca, &l);
        CHECK_EQ(l.n_names, 0);
        flow_close(&a);
        flow_close(&b);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(list_paging, 30) {
        /* More names than one message holds, and some flows: the pages add
         * up to everything, and only the last says no more. */
        test_daemon d;
        test_daemon_start(&d, "[limits]\nregistrations_per_user = 1000\n", NULL);
        int c = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        enum { N = 600, F = 5 };
        int *rs = calloc(N, sizeof(int));
        uint64_t reg;
        char name[32];
        for (int i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "page.%d", i);
                CHECK_OK(do_register(c, name, 0, 0, &reg, &rs[i]));
        }
        flowinfo a[F], b[F];
        int frs[F];
        for (int i = 0; i < F; i++) {
                snprintf(name, sizeof(name), "pflow.%d", i);
                make_flow(c, cb, name, NULL, NULL, &frs[i], &a[i], &b[i]);
        }
        unsigned names = 0, flows = 0, pages = 0, n, f;
        uint32_t more = 1;
        while (more) {
                do_list_page(c, names + flows, &n, &f, &more);
                CHECK(n + f > 0);
                names += n;
                flows += f;
                pages++;
                CHECK(pages < 10);
        }
        CHECK_EQ(names, N + F);
        CHECK_EQ(flows, F);
        CHECK(pages >= 2);
        /* Skipping everything: an empty last page. */
        do_list_page(c, N + 2 * F, &n, &f, &more);
        CHECK_EQ(n + f, 0);
        CHECK_EQ(more, 0);
        for (int i = 0; i < F; i++) {
                flow_close(&a[i]);
                flow_close(&b[i]);
                close(frs[i]);
        }
        for (int i = 0; i < N; i++)
                close(rs[i]);
        free(rs);
        close(c);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(self_flow_dealloc_by_side, 20) {
        /* One connection holds both sides (it allocated its own name). */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect());
        flowinfo a, b;
        make_flow(c, c, "myself", NULL, NULL, NULL, &a, &b);
        struct flow_hdr *h = flow_map(&a);
        /* The library writes its end record before DEALLOC: side 1 here. */
        strcpy(h->end[1].reason, "b done");
        atomic_store(&h->end[1].code, IPCF_END_DEALLOC);
        CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "b done"));
        /* Side 0 is still open: the daemon did not touch its end record, and
         * did not ring side 0 (the library does that itself). */
        CHECK_EQ(atomic_load(&h->end[0].code), 0);
        CHECK(!readable(a.fds[FLOW_FD_RX_EAR], 50));
        listing l;
        do_list(c, &l);
        CHECK_EQ(l.n_flows, 1);
        CHECK_EQ(l.flows[0].state, 1);
        CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, NULL));
        do_list(c, &l);
        CHECK_EQ(l.n_flows, 0);
        flow_close(&a);
        flow_close(&b);
        close(c);
        test_daemon_stop(&d);
}

static int quota_pipe[2];

static void nobody_allocates_three(void *arg) {
        (void)arg;
        as_nobody();
        int fd = CHECK_OK(dconnect()), reply[3];
        flowinfo f[2];
        for (int i = 0; i < 3; i++)
                CHECK_OK(do_alloc(fd, "q.shared", NULL, 5000, NULL, &reply[i]));
        CHECK(write(quota_pipe[1], "a", 1) == 1);
        CHECK_OK(wait_outcome(reply[0], &f[0], NULL, NULL, 5000));
        CHECK_OK(wait_outcome(reply[1], &f[1], NULL, NULL, 5000));
        CHECK_ERR(wait_outcome(reply[2], NULL, NULL, NULL, 5000), -EDQUOT);
        close(fd);
}

TEST_TIMEOUT(requester_quota_at_accept, 20) {
        /* The requester's flow quota fills between its ALLOC and the ACCEPT:
         * the allocation fails EDQUOT, the acceptor just sees it cancelled. */
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, "[limits]\nflows_per_user = 2\n[name q.*]\nallocate = *\n", shared);
        int c = CHECK_OK(dconnect()), rs;
        uint64_t reg, req[3];
        flowinfo f;
        CHECK_OK(do_register(c, "q.shared", 0, 0, &reg, &rs));
        CHECK_OK(pipe(quota_pipe));
        pid_t p = test_fork(nobody_allocates_three, NULL);
        char ch;
        CHECK(read(quota_pipe[0], &ch, 1) == 1);
        for (int i = 0; i < 3; i++)
                wait_request(rs, &req[i], NULL, NULL);
        /* The acceptor (root, under the same limit) lets its sides go at
         * once, so only the requester's count matters. */
        for (int i = 0; i < 2; i++) {
                CHECK_OK(do_accept(c, reg, req[i], &f));
                CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, f.id, 0, 0, NULL));
                flow_close(&f);
        }
        CHECK_ERR(do_accept(c, reg, req[2], &f), -ECANCELED);
        CHECK_EQ(test_wait(p, 10000), 0);
        close(rs);
        close(c);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(quotas, 30) {
        test_daemon d;
        test_daemon_start(&d,
                          "[limits]\n"
                          "registrations_per_user = 3\n"
                          "pending_per_user = 2\n"
                          "clients_per_user = 4\n"
                          "flows_per_user = 4\n"
                          "unbounded_bytes_per_user = 3M\n",
                          NULL);
        int c = CHECK_OK(dconnect()), rs[3], rp[3];
        uint64_t reg[3], aid;
        /* Registrations. */
        CHECK_OK(do_register(c, "q.a", 0, 0, &reg[0], &rs[0]));
        CHECK_OK(do_register(c, "q.b", 0, 0, &reg[1], &rs[1]));
        CHECK_OK(do_register(c, "q.c", 0, 0, &reg[2], &rs[2]));
        CHECK_ERR(do_register(c, "q.d", 0, 0, &reg[2], &rs[2]), -EDQUOT);
        CHECK_OK(do_simple(c, CTL_UNREGISTER, CTL_A_REG_ID, reg[1], 0, 0, NULL));
        close(rs[1]);
        CHECK_OK(do_register(c, "q.d", 0, 0, &reg[1], &rs[1]));
        /* Make room for the flows' registrations below. */
        CHECK_OK(do_simple(c, CTL_UNREGISTER, CTL_A_REG_ID, reg[1], 0, 0, NULL));
        CHECK_OK(do_simple(c, CTL_UNREGISTER, CTL_A_REG_ID, reg[2], 0, 0, NULL));
        close(rs[1]);
        close(rs[2]);
        /* Pending requests. */
        CHECK_OK(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[0]));
        CHECK_OK(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[1]));
        CHECK_ERR(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[2]), -EDQUOT);
        close(rp[0]);
        close(rp[1]);
        sync_daemon(c); /* the daemon notices the withdrawals */
        /* Flows: each side counts for its user (here both are ours). */
        flowinfo a[2], b[2];
        int cb = CHECK_OK(dconnect());
        make_flow(c, cb, "q.f1", NULL, NULL, NULL, &a[0], &b[0]);
        make_flow(c, cb, "q.f2", NULL, NULL, NULL, &a[1], &b[1]);
        CHECK_ERR(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[0]), -EDQUOT);
        CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, a[0].id, 0, 0, NULL));
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b[0].id, 0, 0, NULL));
        CHECK_OK(do_alloc(c, "q.none", NULL, 5000, &aid, &rp[0]));
        CHECK_ERR(wait_outcome(rp[0], NULL, NULL, NULL, 5000), -ENOENT);
        close(rp[0]);
        /* Unbounded memory: 2 x 1 MiB per flow against 3 MiB. */
        ipcf_qos q = { .capacity = IPCF_CAPACITY_UNBOUNDED, .max_bytes = 1 << 20 };
        CHECK_OK(do_alloc(c, "q.a", &q, 5000, &aid, &rp[0]));
        CHECK_ERR(do_alloc(c, "q.a", &q, 5000, &aid, &rp[1]), -EDQUOT);
        close(rp[0]);
        sync_daemon(c);
        CHECK_OK(do_alloc(c, "q.a", &q, 5000, &aid, &rp[0]));
        close(rp[0]);
        /* Connections: c, cb and two more; the fifth is turned away, told why. */
        int c3 = CHECK_OK(dconnect()), c4 = CHECK_OK(dconnect()), c5 = CHECK_OK(dconnect());
        CHECK_OK(do_hello(c4, NULL));
        CHECK(refused_by_daemon(c5, EDQUOT));
        close(c3);
        close(c4);
        close(c5);
        close(rs[0]);
        flow_close(&a[0]);
        flow_close(&b[0]);
        flow_close(&a[1]);
        flow_close(&b[1]);
        close(cb);
        close(c);
        test_daemon_stop(&d);
}

static int count_fds(pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        DIR *dir = opendir(path);
        int n = 0;
        CHECK(dir != NULL);
        while (readdir(dir))
                n++;
        closedir(dir);
        return n;
}

enum { CH_CONNS = 6, CH_REGS = 8, CH_REPLIES = 16, CH_FLOWS = 32 };

typedef struct churn {
        int conn[CH_CONNS];
        struct {
                int conn;       /* index into conn[] */
                int sock;
                uint64_t id;
        } reg[CH_REGS];
        int reply[CH_REPLIES];
        int reply_conn[CH_REPLIES];
        struct {
                int conn;
                flowinfo f;
        } flow[CH_FLOWS];
        bool flow_used[CH_FLOWS];
} churn;

static void churn_close_conn(churn *ch, int i) {
        close(ch->conn[i]);
        ch->conn[i] = -1;
        for (int k = 0; k < CH_REGS; k++)
                if (ch->reg[k].sock >= 0 && ch->reg[k].conn == i)
                        ch->reg[k].sock = safe_close(ch->reg[k].sock);
        for (int k = 0; k < CH_REPLIES; k++)
                if (ch->reply[k] >= 0 && ch->reply_conn[k] == i)
                        ch->reply[k] = safe_close(ch->reply[k]);
        for (int k = 0; k < CH_FLOWS; k++)
                if (ch->flow_used[k] && ch->flow[k].conn == i) {
                        flow_close(&ch->flow[k].f);
                        ch->flow_used[k] = false;
                }
}

static unsigned churn_flows;

static void churn_add_flow(churn *ch, int conn, const flowinfo *f) {
        churn_flows++;
        for (int k = 0; k < CH_FLOWS; k++)
                if (!ch->flow_used[k]) {
                        ch->flow_used[k] = true;
                        ch->flow[k].conn = conn;
                        ch->flow[k].f = *f;
                        return;
                }
        flowinfo g = *f;
        flow_close(&g);
}

TEST_TIMEOUT(churn_reclaims_everything, 120) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        churn ch;
        unsigned seed = 12345;
        memset(&ch, 0, sizeof(ch));
        for (int i = 0; i < CH_CONNS; i++)
                ch.conn[i] = -1;
        for (int i = 0; i < CH_REGS; i++)
                ch.reg[i].sock = -1;
        for (int i = 0; i < CH_REPLIES; i++)
                ch.reply[i] = -1;
        int probe = CHECK_OK(dconnect());
        CHECK_OK(do_hello(probe, NULL));
        int base_fds = count_fds(d.pid);

        for (int it = 0; it < 20000; it++) {
                int op = rand_r(&seed) % 9, ci = rand_r(&seed) % CH_CONNS;
                char name[16];
                snprintf(name, sizeof(name), "churn.%d", rand_r(&seed) % 3);
                if (ch.conn[ci] < 0) {
                        ch.conn[ci] = CHECK_OK(dconnect());
                        continue;
                }
                int c = ch.conn[ci];
                switch (op) {
                case 0: /* a process dies */
                        if (rand_r(&seed) % 16 == 0)
                                churn_close_conn(&ch, ci);
                        break;
                case 1: { /* register */
                        int k = rand_r(&seed) % CH_REGS;
                        if (ch.reg[k].sock >= 0)
                                break;
                        if (do_register(c, name, 0, 1 + rand_r(&seed) % 3, &ch.reg[k].id,
                                        &ch.reg[k].sock) == 0)
                                ch.reg[k].conn = ci;
                        break;
                }
                case 2: { /* unregister, or just close the socket */
                        int k = rand_r(&seed) % CH_REGS;
                        if (ch.reg[k].sock < 0)
                                break;
                        if (rand_r(&seed) % 2)
                                do_simple(ch.conn[ch.reg[k].conn], CTL_UNREGISTER, CTL_A_REG_ID,
                                          ch.reg[k].id, 0, 0, NULL);
                        ch.reg[k].sock = safe_close(ch.reg[k].sock);
                        break;
                }
                case 3: { /* allocate */
                        int k = rand_r(&seed) % CH_REPLIES;
                        if (ch.reply[k] >= 0)
                                break;
                        ipcf_qos q = { .max_bytes = 4096u << (rand_r(&seed) % 4) };
                        if (rand_r(&seed) % 5 == 0)
                                q.capacity = IPCF_CAPACITY_UNBOUNDED;
                        if (do_alloc(c, name, &q, 20 + rand_r(&seed) % 200, NULL, &ch.reply[k]) == 0)
                                ch.reply_conn[k] = ci;
                        break;
                }
                case 4: { /* a registrant decides its next request */
                        int k = rand_r(&seed) % CH_REGS;
                        rmsg r;
                        uint64_t req;
                        if (ch.reg[k].sock < 0 || recv_msg(ch.reg[k].sock, &r, 0) != 1)
                                break;
                        CHECK_OK(ctl_get_u64(&r.m, CTL_A_REQ_ID, &req));
                        int rc = ch.reg[k].conn;
                        if (rand_r(&seed) % 3 == 0) {
                                int e = do_simple(ch.conn[rc], CTL_REFUSE, CTL_A_REG_ID, ch.reg[k].id,
                                                  CTL_A_REQ_ID, req, "no");
                                CHECK(e == 0 || e == -ECANCELED);
                        } else {
                                flowinfo f;
                                int e = do_accept(ch.conn[rc], ch.reg[k].id, req, &f);
                                CHECK(e == 0 || e == -ECANCELED);
                                if (e == 0)
                                        churn_add_flow(&ch, rc, &f);
                        }
                        break;
                }
                case 5: { /* an allocator collects its outcome */
                        int k = rand_r(&seed) % CH_REPLIES;
                        rmsg r;
                        if (ch.reply[k] < 0)
                                break;
                        int got = recv_msg(ch.reply[k], &r, 0);
                        if (got == -ETIMEDOUT && rand_r(&seed) % 4)
                                break; /* keep waiting */
                        if (got == 1 && r.m.type == CTL_FLOW && rand_r(&seed) % 4) {
                                flowinfo f;
                                parse_flow(&r, &f);
                                send_ok(ch.reply[k]);
                                churn_add_flow(&ch, ch.reply_conn[k], &f);
                        }
                        close_fds(&r);
                        ch.reply[k] = safe_close(ch.reply[k]); /* or give up */
                        break;
                }
                case 6: { /* dealloc a flow */
                        int k = rand_r(&seed) % CH_FLOWS;
                        if (!ch.flow_used[k] || ch.conn[ch.flow[k].conn] < 0)
                                break;
                        int e = do_simple(ch.conn[ch.flow[k].conn], CTL_DEALLOC, CTL_A_FLOW_ID,
                                          ch.flow[k].f.id, 0, 0, "churn");
                        CHECK(e == 0 || e == -ENOENT);
                        flow_close(&ch.flow[k].f);
                        ch.flow_used[k] = false;
                        break;
                }
                case 7: {
                        listing l;
                        do_list(c, &l);
                        break;
                }
                case 8: /* garbage from a doomed client */
                        if (rand_r(&seed) % 32 == 0) {
                                send_raw(c, "\x06\x00\x00\x00\xff\xff\xff\xff", 8, NULL, 0);
                                CHECK(closed_by_daemon(c));
                                churn_close_conn(&ch, ci);
                        }
                        break;
                }
        }
        for (int i = 0; i < CH_CONNS; i++)
                if (ch.conn[i] >= 0)
                        churn_close_conn(&ch, i);
        for (int i = 0; i < CH_REPLIES; i++)
                safe_close(ch.reply[i]);
        for (int i = 0; i < CH_FLOWS; i++)
                if (ch.flow_used[i])
                        flow_close(&ch.flow[i].f);
        printf("  churn: %u flow ends handed out\n", churn_flows);
        CHECK(churn_flows > 200);
        /* Everything was reclaimed: no names, no flows, no stray fds
         * (waiting up to 5 s for the daemon to catch up with the closes). */
        listing l;
        for (int i = 0; i < 500; i++) {
                do_list(probe, &l);
                if (l.n_names == 0 && l.n_flows == 0 && count_fds(d.pid) == base_fds)
                        break;
                usleep(10000);
        }
        CHECK_EQ(l.n_names, 0);
        CHECK_EQ(l.n_flows, 0);
        CHECK_EQ(count_fds(d.pid), base_fds);
        close(probe);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(handshake_rate, 60) {
        /* Not a benchmark, a sanity bound: a full alloc/accept/handover/dealloc
         * cycle costs a handful of round trips, so hundreds per second at the
         * very least even under sanitizers. Prints the rate. */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect()), rs, reply;
        uint64_t reg, req;
        flowinfo a, b;
        CHECK_OK(do_register(cb, "rate", 0, 0, &reg, &rs));
        enum { N = 1000 };
        uint64_t t0 = test_now_ns();
        for (int i = 0; i < N; i++) {
                CHECK_OK(do_alloc(ca, "rate", NULL, 5000, NULL, &reply));
                wait_request(rs, &req, NULL, NULL);
                CHECK_OK(do_accept(cb, reg, req, &b));
                CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
                send_ok(reply);
                close(reply);
                CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, NULL));
                CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
                flow_close(&a);
                flow_close(&b);
        }
        uint64_t us = (test_now_ns() - t0) / 1000;
        printf("  %d flows made and ended in %llu ms: %.1f us each\n", N,
               (unsigned long long)(us / 1000), (double)us / N);
        CHECK(us / N < 10000);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}
