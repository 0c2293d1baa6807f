/*
 * test-set-probe.c — readiness sets as a tester reads ipcf.h: more ready
 * ports than max are all reported before any again; bad sizes and option
 * sizes; a port added (or with a message queued) after the last wait armed
 * the set still makes its descriptor readable; in a child of fork() every
 * call on the set, ipcf_fd too, fails -EBADF; a sleep-only set (spin_us 0)
 * sees every message; a detached member is never reported; a peer that
 * shuts down or clogs its bell costs the set no spin and the other flows
 * nothing; a flow that ended before it was added is reported at once; a set
 * closed while its wait spins ends the wait; what a set takes from the
 * facility (flows, mailbox and multicast handles; not registrations,
 * services or endpoints); a stream mailbox's rest of a message that the
 * library keeps is reported, and only until it is read; a spin_us 0 set
 * never spins (its thread's CPU while messages come in bursts); adds and
 * dels from another thread get in while the waiter is kept busy; a child
 * of fork() detaching an inherited member leaves the parent's set working;
 * a second waiter with timeout 0 returns at once while the first sleeps;
 * a mailbox handle in a set is reported when the daemon (its peer) is
 * killed, and its receive says -ECONNRESET.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "lib/core/lib.h"
#include "support/flowpair.h"
#include "support/hostile.h"
#include "support/test.h"

#define NP 10

/* A new set with n flows (writer w[i], reader r[i] added with data i+1). */
static int set_of_flows(int n, int *w, int *r) {
        int set = CHECK_OK(ipcf_set_new(NULL));
        for (int i = 0; i < n; i++) {
                CHECK_OK(flowpair_make(NULL, 0, 0, &w[i], &r[i]));
                CHECK_OK(ipcf_set_add(set, r[i], (uint64_t)i + 1));
        }
        return set;
}

TEST(more_ready_than_max_goes_on_where_it_stopped) {
        int w[NP], r[NP];
        int set = set_of_flows(NP, w, r);
        for (int i = 0; i < NP; i++)
                CHECK_EQ(ipcf_write(w[i], "x", 1, 1000), 1);
        /* every ready port is reported once before any is reported again */
        for (int max = 1; max <= 4; max++) {
                int seen[NP] = { 0 }, total = 0;
                while (total < NP) {
                        ipcf_set_event ev[4];
                        int n = CHECK_OK(ipcf_set_wait(set, ev, (unsigned)max, 0));
                        CHECK(n >= 1 && n <= max);
                        for (int k = 0; k < n && total < NP; k++, total++) {
                                CHECK(ev[k].data >= 1 && ev[k].data <= NP);
                                CHECK_EQ(seen[ev[k].data - 1]++, 0);
                        }
                }
        }
        ipcf_set_event ev[1];
        CHECK_ERR(ipcf_set_wait(set, ev, (unsigned)INT_MAX + 1u, 0), -EINVAL);
        CHECK_ERR(ipcf_set_wait(set, ev, UINT_MAX, 0), -EINVAL);
        ipcf_set_opts o = { .size = sizeof(o) + 8 };
        CHECK_ERR(ipcf_set_new(&o), -EINVAL);
        o = (ipcf_set_opts){ .size = 0, .spin_us = 12345678 };
        CHECK_OK(ipcf_set_new(&o)); /* size 0: "for the defaults", whatever else */
        o = (ipcf_set_opts){ .size = sizeof(o), .spin_us = 100000 };
        CHECK_OK(ipcf_set_new(&o));
}

/* A port added after the last wait armed everything: the set's descriptor
 * must still say when it has a message (the natural epoll-server step:
 * accept a flow, add it, go back to epoll). */
TEST(a_port_added_while_the_set_sleeps_on_its_fd_wakes_the_fd) {
        int w[2], r[2];
        int set = set_of_flows(1, w, r);
        int w2, r2;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w2, &r2));
        ipcf_set_event ev[4];
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);
        struct pollfd pf = { .fd = CHECK_OK(ipcf_fd(set)), .events = POLLIN };
        CHECK_EQ(poll(&pf, 1, 0), 0);
        CHECK_OK(ipcf_set_add(set, r2, 2));
        CHECK_EQ(ipcf_write(w2, "y", 1, 1000), 1);
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 4, 0), 1);
        CHECK_EQ(ev[0].data, 2);
        char c;
        CHECK_EQ(ipcf_read(r2, &c, 1, 0), 1);
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);
        /* a port with a message queued before it is added */
        int w3, r3;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w3, &r3));
        CHECK_EQ(ipcf_write(w3, "z", 1, 1000), 1);
        CHECK_OK(ipcf_set_add(set, r3, 3));
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 4, 0), 1);
        CHECK_EQ(ev[0].data, 3);
}

/* A set is for the process that made it: in a child every call fails -EBADF. */
static int g_set, g_port;
static void child_uses_set(void *arg) {
        (void)arg;
        ipcf_set_event ev[2];
        CHECK_ERR(ipcf_set_wait(g_set, ev, 2, 0), -EBADF);
        CHECK_ERR(ipcf_set_wait(g_set, ev, 2, 100), -EBADF);
        CHECK_ERR(ipcf_set_del(g_set, g_port), -EBADF);
        int a, b;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a, &b));
        CHECK_ERR(ipcf_set_add(g_set, b, 0), -EBADF);
        CHECK_ERR(ipcf_fd(g_set), -EBADF);
}

TEST(a_set_in_a_child_of_fork_fails_ebadf) {
        int w, r;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w, &r));
        g_set = CHECK_OK(ipcf_set_new(NULL));
        g_port = r;
        CHECK_OK(ipcf_set_add(g_set, r, 1));
        CHECK_EQ(ipcf_write(w, "x", 1, 1000), 1);
        CHECK_EQ(test_wait(test_fork(child_uses_set, NULL), 10000), 0);
        ipcf_set_event ev[2];
        CHECK_EQ(ipcf_set_wait(g_set, ev, 2, 0), 1);
}

/* spin_us 0: never spins; messages are still seen, sleeping every time. */
TEST(spin_0_set_sees_every_message) {
        ipcf_set_opts o = { .size = sizeof(o), .spin_us = 0 };
        int set = CHECK_OK(ipcf_set_new(&o));
        int w, r;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w, &r));
        CHECK_OK(ipcf_set_add(set, r, 9));
        pid_t p = fork();
        if (p == 0) {
                for (int i = 0; i < 2000; i++) {
                        if (ipcf_write(w, &i, sizeof(i), 5000) != sizeof(i))
                                _exit(1);
                        if (i % 7 == 0)
                                usleep(50);
                }
                _exit(0);
        }
        ipcf_detach(w);
        int next = 0;
        while (next < 2000) {
                ipcf_set_event ev[2];
                int n = ipcf_set_wait(set, ev, 2, 5000);
                CHECK_EQ(n, 1);
                int v;
                ssize_t k;
                while ((k = ipcf_read(r, &v, sizeof(v), 0)) == sizeof(v))
                        CHECK_EQ(v, next++);
                CHECK_ERR(k, -EAGAIN);
        }
        CHECK_EQ(test_wait(p, 10000), 0);
}

/* A detached member is never reported, and leaves the set. */
TEST(a_detached_member_is_not_reported) {
        int w, r;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w, &r));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, r, 77));
        CHECK_OK(ipcf_detach(r));
        CHECK_EQ(ipcf_write(w, "x", 1, 1000), 1);
        ipcf_set_event ev[4];
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 100), -ETIMEDOUT);
        CHECK_ERR(ipcf_set_del(set, r), -EBADF);
}

/* A peer that shuts down its bell to our ear (or closes every bell it
 * holds): our ear reads as hung up for good. The set must not report the
 * port for ever with nothing to read, nor spin its thread. */
static uint64_t thread_cpu_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void shut_bells_run(int how) {
        int w[2], r[2];
        int set = set_of_flows(2, w, r);
        int a0 = w[0], a1 = r[0], b0 = w[1];
        ipcf_set_event ev[4];
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);
        port *p = handle_get_port(a0);
        CHECK(p);
        if (how == 0)
                hostile_fd(p->peer_bell_rx, HOSTILE_SHUTDOWN);
        else
                hostile_fd(p->peer_bell_rx, HOSTILE_CLEAR_NONBLOCK | HOSTILE_FILL);
        unsigned reports = 0;
        bool a_open = true;
        uint64_t c0 = thread_cpu_ms(), w0 = test_now_ms();
        while (test_now_ms() - w0 < 1000) {
                int n = ipcf_set_wait(set, ev, 4, 100);
                if (n == -ETIMEDOUT)
                        continue;
                CHECK_EQ(n, 1);
                CHECK_EQ(ev[0].data, 1);
                CHECK(a_open);
                reports++;
                char c;
                ssize_t got = ipcf_read(a1, &c, 1, 0);
                if (got != -EAGAIN) {
                        CHECK_ERR(got, -ECONNRESET); /* a shutdown reads as the peer gone */
                        ipcf_dealloc(a1, NULL);
                        a_open = false;
                }
        }
        uint64_t cpu = thread_cpu_ms() - c0;
        printf("# how %d: %u reports, %llu ms CPU\n", how, reports, (unsigned long long)cpu);
        CHECK(cpu < 250);
        /* the other flow goes on */
        CHECK_EQ(ipcf_write(b0, "m", 1, 1000), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 4, 1000), 1);
        CHECK_EQ(ev[0].data, 2);
        handle_put(p);
}

TEST(a_peer_shutting_its_bell_costs_the_set_no_spin) { shut_bells_run(0); }
TEST(a_peer_filling_its_bell_costs_the_set_no_spin) { shut_bells_run(1); }

TEST(an_ended_flow_added_is_reported_at_once) {
        int w, r;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w, &r));
        CHECK_EQ(ipcf_write(w, "a", 1, 1000), 1);
        CHECK_OK(ipcf_dealloc(w, "gone"));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, r, 5));
        ipcf_set_event ev[2];
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 0), 1);
        char c;
        CHECK_EQ(ipcf_read(r, &c, 1, 0), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 0), 1);
        CHECK_ERR(ipcf_read(r, &c, 1, 0), -EPIPE);
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 0), 1); /* level-triggered: still ended */
        /* ipcf_fd_send works on a member and leaves its reports alone */
        int w2, r2;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w2, &r2));
        CHECK_OK(ipcf_set_add(set, r2, 6));
        CHECK_OK(ipcf_fd_send(r2));
        CHECK_OK(ipcf_dealloc(r, NULL));
        CHECK_ERR(ipcf_set_wait(set, ev, 2, 0), -EAGAIN);
        struct pollfd pf = { .fd = CHECK_OK(ipcf_fd(set)), .events = POLLIN };
        CHECK_EQ(ipcf_write(w2, "b", 1, 1000), 1);
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 0), 1);
        CHECK_EQ(ev[0].data, 6);
}

static int g_dset;
static void *dealloc_soon(void *arg) {
        (void)arg;
        usleep(20000);
        ipcf_dealloc(g_dset, NULL);
        return NULL;
}

/* The set closed while its wait spins over busy ports (never sleeping). */
TEST(a_set_closed_while_its_wait_spins_returns_ebadf) {
        ipcf_set_opts o = { .size = sizeof(o), .spin_us = 100000 };
        g_dset = CHECK_OK(ipcf_set_new(&o));
        int w, r;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w, &r));
        CHECK_OK(ipcf_set_add(g_dset, r, 1));
        ipcf_set_event ev[2];
        CHECK_ERR(ipcf_set_wait(g_dset, ev, 2, 0), -EAGAIN);
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, dealloc_soon, NULL), 0);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_set_wait(g_dset, ev, 2, 5000), -EBADF);
        CHECK(test_now_ms() - t0 < 1000);
        pthread_join(t, NULL);
        CHECK_OK(ipcf_fd(r)); /* the port is its own again */
}

/* What a set takes from the facility: flows, mailbox and multicast handles
 * (port-ids); registrations, services and datagram endpoints are not
 * port-ids: -EBADF. */
static void accept_one(void *arg) {
        (void)arg;
        int p = CHECK_OK(ipcf_alloc("probe.plain", NULL, 5000, NULL));
        CHECK_EQ(ipcf_write(p, "hi", 2, 1000), 2);
        char c;
        (void)ipcf_read(p, &c, 1, 5000); /* until the other side ends */
}

TEST_TIMEOUT(what_a_set_takes_from_the_facility, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int set = CHECK_OK(ipcf_set_new(NULL));
        int rg = CHECK_OK(ipcf_register("probe.plain", NULL));
        int svc = CHECK_OK(ipcf_service("probe.svc", NULL));
        int ep = CHECK_OK(ipcf_dgram_open("probe.ep", NULL));
        CHECK_OK(ipcf_mbox_create("probe.box", NULL));
        int mb = CHECK_OK(ipcf_mbox_open("probe.box", IPCF_MBOX_RECV, NULL, 5000));
        CHECK_OK(ipcf_mcast_create("probe.mc", NULL));
        int mc = CHECK_OK(ipcf_mcast_join("probe.mc", NULL, 5000));
        CHECK_ERR(ipcf_set_add(set, rg, 0), -EBADF);
        CHECK_ERR(ipcf_set_add(set, svc, 0), -EBADF);
        CHECK_ERR(ipcf_set_add(set, ep, 0), -EBADF);
        CHECK_OK(ipcf_set_add(set, mb, 10));
        CHECK_OK(ipcf_set_add(set, mc, 11));
        ipcf_set_event ev[2];
        int tx = CHECK_OK(ipcf_mbox_open("probe.box", IPCF_MBOX_SEND, NULL, 5000));
        CHECK_EQ(ipcf_mbox_send(tx, "m", 1, 1000, NULL), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 5000), 1);
        CHECK_EQ(ev[0].data, 10);
        char buf[4];
        CHECK_EQ(ipcf_mbox_recv(mb, buf, sizeof(buf), 0, NULL), 1);
        int mc2 = CHECK_OK(ipcf_mcast_join("probe.mc", NULL, 5000));
        CHECK_EQ(ipcf_mcast_send(mc2, "c", 1, 1000), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 5000), 1);
        CHECK_EQ(ev[0].data, 11);
        CHECK_OK(ipcf_set_del(set, mb));
        CHECK_OK(ipcf_set_del(set, mc));
        pid_t c = test_fork(accept_one, NULL);
        int p = CHECK_OK(ipcf_accept(rg, 5000, NULL));
        CHECK_OK(ipcf_set_add(set, p, 3));
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 5000), 1);
        CHECK_EQ(ev[0].data, 3);
        CHECK_EQ(ipcf_read(p, buf, sizeof(buf), 0), 2);
        /* the peer killed: reported, and the read says so */
        kill(c, SIGKILL);
        CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 5000), 1);
        CHECK_ERR(ipcf_read(p, buf, sizeof(buf), 0), -ECONNRESET);
        test_daemon_stop(&d);
}

/* A stream mailbox's receiver in a set: what its library keeps of a frame
 * (a receive of fewer bytes than came) is still "a read would not block",
 * and once it is read the port is quiet again. */
TEST_TIMEOUT(a_stream_mailbox_receiver_in_a_set_reports_what_its_library_keeps, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .flags = IPCF_MBOX_STREAM };
        CHECK_OK(ipcf_mbox_create("probe.sbox", &o));
        int rx = CHECK_OK(ipcf_mbox_open("probe.sbox", IPCF_MBOX_RECV, NULL, 5000));
        int tx = CHECK_OK(ipcf_mbox_open("probe.sbox", IPCF_MBOX_SEND, NULL, 5000));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, rx, 1));
        ipcf_set_event ev[2];
        CHECK_ERR(ipcf_set_wait(set, ev, 2, 0), -EAGAIN);
        struct pollfd pf = { .fd = CHECK_OK(ipcf_fd(set)), .events = POLLIN };
        for (int round = 0; round < 3; round++) {
                CHECK_EQ(ipcf_mbox_send(tx, "hello world", 11, 1000, NULL), 11);
                CHECK_EQ(poll(&pf, 1, 5000), 1);
                CHECK_EQ(ipcf_set_wait(set, ev, 2, 0), 1);
                char buf[16];
                CHECK_EQ(ipcf_mbox_recv(rx, buf, 5, 0, NULL), 5);
                CHECK_EQ(ipcf_set_wait(set, ev, 2, 500), 1); /* 6 bytes kept */
                CHECK_EQ(ev[0].data, 1);
                CHECK_EQ(ipcf_mbox_recv(rx, buf, 4, 0, NULL), 4);
                CHECK_EQ(ipcf_set_wait(set, ev, 2, 500), 1); /* 2 kept */
                CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 0, NULL), 2);
                CHECK_MEM(buf, "ld", 2);
                CHECK_ERR(ipcf_set_wait(set, ev, 2, 0), -EAGAIN);
                CHECK_EQ(poll(&pf, 1, 0), 0);
        }
        test_daemon_stop(&d);
}

/* spin_us 0: "never" spin, also while messages come in bursts that would
 * grow a spin. */
static void *steady_writer(void *arg) {
        int w = (int)(intptr_t)arg;
        for (int i = 0; i < 3000; i++) {
                if (ipcf_write(w, &i, sizeof(i), 1000) != sizeof(i))
                        break;
                usleep(i % 10 == 0 ? 2000 : 150);
        }
        return NULL;
}

TEST(a_spin_0_set_never_spins) {
        for (int spin = 0; spin <= 1; spin++) {
                ipcf_set_opts o = { .size = sizeof(o), .spin_us = spin ? 50 : 0 };
                int set = CHECK_OK(ipcf_set_new(&o));
                int w, r;
                CHECK_OK(flowpair_make(NULL, 0, 0, &w, &r));
                CHECK_OK(ipcf_set_add(set, r, 1));
                pthread_t t;
                CHECK_EQ(pthread_create(&t, NULL, steady_writer, (void *)(intptr_t)w), 0);
                uint64_t c0 = thread_cpu_ms(), w0 = test_now_ms();
                int got = 0, wakes = 0;
                while (got < 3000) {
                        ipcf_set_event ev[2];
                        int n = ipcf_set_wait(set, ev, 2, 2000);
                        CHECK_EQ(n, 1);
                        wakes++;
                        int v;
                        while (ipcf_read(r, &v, sizeof(v), 0) == sizeof(v))
                                CHECK_EQ(v, got++);
                }
                uint64_t cpu = thread_cpu_ms() - c0, wall = test_now_ms() - w0;
                pthread_join(t, NULL);
                printf("# spin_us %d: %llu ms CPU in %llu ms, %d wake-ups\n", spin ? 50 : 0,
                       (unsigned long long)cpu, (unsigned long long)wall, wakes);
                if (!spin)
                        CHECK(cpu * 4 < wall);
                ipcf_dealloc(set, NULL);
        }
}

/* add/del from another thread while the waiting thread is kept busy (and
 * spinning its longest): they get in soon. */
static atomic_bool busy_stop;
static int busy_set, busy_r;
static void *busy_waiter(void *arg) {
        (void)arg;
        while (!atomic_load(&busy_stop)) {
                ipcf_set_event ev[4];
                int n = ipcf_set_wait(busy_set, ev, 4, 100);
                for (int i = 0; i < n; i++) {
                        char buf[8];
                        while (ipcf_read(ev[i].port, buf, sizeof(buf), 0) > 0)
                                ;
                }
        }
        return NULL;
}
static void *busy_writer(void *arg) {
        int w = (int)(intptr_t)arg;
        while (!atomic_load(&busy_stop))
                (void)ipcf_write(w, "x", 1, 100);
        return NULL;
}

TEST(adds_and_dels_get_in_while_the_waiter_is_busy) {
        ipcf_set_opts o = { .size = sizeof(o), .spin_us = 100000 };
        busy_set = CHECK_OK(ipcf_set_new(&o));
        int w;
        CHECK_OK(flowpair_make(NULL, 0, 0, &w, &busy_r));
        CHECK_OK(ipcf_set_add(busy_set, busy_r, 1));
        pthread_t tw, tr;
        CHECK_EQ(pthread_create(&tr, NULL, busy_waiter, NULL), 0);
        CHECK_EQ(pthread_create(&tw, NULL, busy_writer, (void *)(intptr_t)w), 0);
        usleep(100000);
        uint64_t worst = 0;
        for (int i = 0; i < 50; i++) {
                int a, b;
                CHECK_OK(flowpair_make(NULL, 0, 0, &a, &b));
                uint64_t t0 = test_now_ns();
                CHECK_OK(ipcf_set_add(busy_set, b, 2));
                CHECK_OK(ipcf_set_del(busy_set, b));
                uint64_t dt = test_now_ns() - t0;
                if (dt > worst)
                        worst = dt;
                ipcf_dealloc(a, NULL);
                ipcf_dealloc(b, NULL);
        }
        atomic_store(&busy_stop, true);
        pthread_join(tw, NULL);
        pthread_join(tr, NULL);
        printf("# worst add+del: %llu us\n", (unsigned long long)(worst / 1000));
        CHECK(worst < 200000000ull);
}

/* A child of fork() detaches a member port it inherited (closing what it
 * does not use, as ipcf.h asks): the parent's set still reports it. */
static int g_member;
static void child_detaches_member(void *arg) {
        (void)arg;
        CHECK_OK(ipcf_detach(g_member));
}

TEST(a_child_detaching_an_inherited_member_leaves_the_parents_set_working) {
        int w[1], r[1];
        int set = set_of_flows(1, w, r);
        g_member = r[0];
        ipcf_set_event ev[2];
        CHECK_ERR(ipcf_set_wait(set, ev, 2, 0), -EAGAIN); /* armed: asleep on the kernel */
        CHECK_EQ(test_wait(test_fork(child_detaches_member, NULL), 10000), 0);
        CHECK_EQ(ipcf_write(w[0], "x", 1, 1000), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 2000), 1);
        char c;
        CHECK_EQ(ipcf_read(r[0], &c, 1, 0), 1);
        CHECK_ERR(ipcf_set_wait(set, ev, 2, 0), -EAGAIN);
        struct pollfd pf = { .fd = CHECK_OK(ipcf_fd(set)), .events = POLLIN };
        CHECK_EQ(ipcf_write(w[0], "y", 1, 1000), 1);
        CHECK_EQ(poll(&pf, 1, 2000), 1);
}

/* A second waiter with timeout 0 while the first sleeps for ever: "0: not
 * at all" — it returns at once (-EAGAIN), it does not queue behind. */
static int g_fset;
static int forever_r;
static void *wait_forever(void *arg) {
        (void)arg;
        ipcf_set_event ev[1];
        forever_r = ipcf_set_wait(g_fset, ev, 1, -1);
        return NULL;
}

TEST(a_second_waiter_with_timeout_0_returns_at_once) {
        int w[1], r[1];
        g_fset = set_of_flows(1, w, r);
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, wait_forever, NULL), 0);
        usleep(100000);
        ipcf_set_event ev[1];
        uint64_t t0 = test_now_ms();
        int n = ipcf_set_wait(g_fset, ev, 1, 0);
        uint64_t took = test_now_ms() - t0;
        printf("# second waiter, timeout 0: %d after %llu ms\n", n, (unsigned long long)took);
        CHECK(took < 1000);
        CHECK_ERR(n, -EAGAIN);
        CHECK_EQ(ipcf_write(w[0], "x", 1, 1000), 1);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(forever_r, 1);
}

/* The daemon, the peer of a mailbox handle, killed: the set reports the
 * handle (it watches the daemon's pidfd), and the receive says so. */
TEST_TIMEOUT(a_mailbox_handle_in_a_set_sees_the_daemon_die, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("probe.dbox", NULL));
        int rx = CHECK_OK(ipcf_mbox_open("probe.dbox", IPCF_MBOX_RECV, NULL, 5000));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, rx, 4));
        ipcf_set_event ev[2];
        CHECK_ERR(ipcf_set_wait(set, ev, 2, 0), -EAGAIN);
        test_daemon_kill(&d);
        uint64_t t0 = test_now_ms();
        CHECK_EQ(ipcf_set_wait(set, ev, 2, 5000), 1);
        CHECK(test_now_ms() - t0 < 2000);
        CHECK_EQ(ev[0].data, 4);
        char buf[8];
        CHECK_ERR(ipcf_mbox_recv(rx, buf, sizeof(buf), 0, NULL), -ECONNRESET);
}
