/*
 * test-dgram.c — datagrams against the real daemon: stamped senders and
 * answers, drops when a queue is full (counted and listed), several senders,
 * the wrong kind of name, a receiver that goes away, polling.
 */
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

static void hello_sender(void *arg) {
        (void)arg;
        int ep = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        CHECK_EQ(ipcf_dgram_send(ep, "dg.a", "hello", 5, 1000), 5);
        char buf[16];
        ipcf_dgram_src src;
        CHECK_EQ(ipcf_dgram_recv(ep, buf, sizeof(buf), 5000, &src), 2);
        CHECK_MEM(buf, "hi", 2);
        CHECK(strcmp(src.from.name, "dg.a") == 0); /* the answer comes from the name we sent to */
        CHECK_OK(ipcf_dealloc(ep, NULL));
}

TEST(datagram_stamped_and_answered) {
        test_daemon_start(&d, NULL, NULL);
        int ep = CHECK_OK(ipcf_dgram_open("dg.a", NULL));
        pid_t c = test_fork(hello_sender, NULL);
        char buf[16];
        ipcf_dgram_src src;
        CHECK_EQ(ipcf_dgram_recv(ep, buf, sizeof(buf), 5000, &src), 5);
        CHECK_MEM(buf, "hello", 5);
        CHECK_EQ(src.from.pid, c);
        CHECK_EQ(src.from.uid, getuid());
        CHECK_EQ(ipcf_dgram_answer(ep, &src, "hi", 2, 1000), 2);
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_ERR(ipcf_dgram_recv(ep, buf, sizeof(buf), 0, &src), -EAGAIN);
        CHECK_ERR(ipcf_dgram_recv(ep, buf, sizeof(buf), 30, &src), -ETIMEDOUT);
        CHECK_OK(ipcf_dealloc(ep, NULL));
        CHECK_ERR(ipcf_dealloc(ep, NULL), -EBADF);
        test_daemon_stop(&d);
}

TEST(full_queue_drops_are_counted_and_listed) {
        test_daemon_start(&d, NULL, NULL);
        int rx = CHECK_OK(ipcf_dgram_open("dg.sink", NULL));
        int tx = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        static char buf[60000];
        ssize_t r;
        int sent = 0;
        while ((r = ipcf_dgram_send(tx, "dg.sink", buf, sizeof(buf), 0)) == (ssize_t)sizeof(buf))
                sent++;
        CHECK_ERR(r, -EAGAIN); /* the sender chose not to wait: dropped */
        CHECK(sent >= 8);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_dgram_send(tx, "dg.sink", buf, sizeof(buf), 50), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 50);
        uint64_t drops = 0;
        CHECK_OK(ipcf_dgram_drops(tx, &drops));
        CHECK_EQ(drops, 2);
        ipcf_listing *l;
        CHECK_OK(ipcf_list(&l));
        uint32_t listed = 0;
        for (size_t i = 0; i < l->n_flows; i++)
                if (strcmp(l->flows[i].name, "dg.sink") == 0)
                        listed += l->flows[i].drops;
        ipcf_free(l);
        CHECK_EQ(listed, 2);
        /* nothing lost of what was accepted */
        for (int i = 0; i < sent; i++)
                CHECK_EQ(ipcf_dgram_recv(rx, buf, sizeof(buf), 1000, NULL), sizeof(buf));
        CHECK_ERR(ipcf_dgram_recv(rx, buf, sizeof(buf), 0, NULL), -EAGAIN);
        CHECK_EQ(ipcf_dgram_send(tx, "dg.sink", buf, 10, 0), 10); /* room again */
        CHECK_ERR(ipcf_dgram_recv(rx, buf, 5, 1000, NULL), -EMSGSIZE);
        CHECK_EQ(ipcf_dgram_recv(rx, buf, sizeof(buf), 0, NULL), 10);
        static char huge[300000];
        CHECK_ERR(ipcf_dgram_send(tx, "dg.sink", huge, sizeof(huge), 0), -EMSGSIZE);
        test_daemon_stop(&d);
}

static void numbered_sender(void *arg) {
        int id = (int)(intptr_t)arg;
        int ep = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        for (int i = 0; i < 200; i++) {
                int msg[2] = { id, i };
                CHECK_EQ(ipcf_dgram_send(ep, "dg.many", msg, sizeof(msg), 5000), sizeof(msg));
        }
}

TEST(several_senders_none_lost_each_in_order) {
        test_daemon_start(&d, NULL, NULL);
        int rx = CHECK_OK(ipcf_dgram_open("dg.many", NULL));
        pid_t c[3];
        for (int i = 0; i < 3; i++)
                c[i] = test_fork(numbered_sender, (void *)(intptr_t)i);
        int next[3] = { 0, 0, 0 };
        pid_t who[3] = { 0, 0, 0 };
        for (int n = 0; n < 600; n++) {
                int msg[2];
                ipcf_dgram_src src;
                CHECK_EQ(ipcf_dgram_recv(rx, msg, sizeof(msg), 5000, &src), sizeof(msg));
                CHECK(msg[0] >= 0 && msg[0] < 3);
                CHECK_EQ(msg[1], next[msg[0]]);
                next[msg[0]]++;
                if (!who[msg[0]])
                        who[msg[0]] = src.from.pid;
                CHECK_EQ(src.from.pid, who[msg[0]]); /* the stamp follows the sender */
        }
        for (int i = 0; i < 3; i++)
                CHECK_EQ(test_wait(c[i], 5000), 0);
        test_daemon_stop(&d);
}

TEST(wrong_kind_of_name_is_refused) {
        test_daemon_start(&d, NULL, NULL);
        int svc = CHECK_OK(ipcf_service("kind.svc", NULL));
        int rx = CHECK_OK(ipcf_dgram_open("kind.dg", NULL));
        int tx = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        CHECK_ERR(ipcf_dgram_send(tx, "kind.svc", "x", 1, 1000), -ECONNREFUSED);
        char r[8];
        CHECK_ERR(ipcf_call("kind.dg", "x", 1, r, sizeof(r), 1000, NULL), -ECONNREFUSED);
        CHECK_ERR(ipcf_dgram_send(tx, "kind.none", "x", 1, 1000), -ENOENT);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        CHECK_OK(ipcf_dealloc(rx, NULL));
        test_daemon_stop(&d);
}

static void short_lived_receiver(void *arg) {
        (void)arg;
        int rx = CHECK_OK(ipcf_dgram_open("dg.gone", NULL));
        char buf[8];
        CHECK_EQ(ipcf_dgram_recv(rx, buf, sizeof(buf), 5000, NULL), 1);
        raise(SIGKILL);
}

TEST(receiver_goes_away) {
        test_daemon_start(&d, NULL, NULL);
        pid_t c = test_fork(short_lived_receiver, NULL);
        test_wait_for_name("dg.gone", 5000);
        int tx = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        CHECK_EQ(ipcf_dgram_send(tx, "dg.gone", "x", 1, 1000), 1);
        test_wait(c, 5000);
        /* its channel is dead and its name gone: the next send says so */
        uint64_t t0 = test_now_ms();
        ssize_t r;
        while ((r = ipcf_dgram_send(tx, "dg.gone", "y", 1, 1000)) == 1 && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_ERR(r, -ENOENT);
        test_daemon_stop(&d);
}

TEST(endpoint_is_pollable) {
        test_daemon_start(&d, NULL, NULL);
        int rx = CHECK_OK(ipcf_dgram_open("dg.poll", NULL));
        int fd = CHECK_OK(ipcf_fd(rx));
        int tx = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        CHECK_EQ(ipcf_dgram_send(tx, "dg.poll", "p", 1, 1000), 1);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 5000), 1);
        char buf[4];
        CHECK_EQ(ipcf_dgram_recv(rx, buf, sizeof(buf), 1000, NULL), 1);
        test_daemon_stop(&d);
}

/* ---- an endpoint inherited across fork() ---- */

#define FORK_DGRAMS 20000

/* Send FORK_DGRAMS numbered datagrams as sender id from ep. */
static void fork_send_all(int ep, int id) {
        for (int k = 0; k < FORK_DGRAMS; k++) {
                int v[2] = { id, k };
                ssize_t r = ipcf_dgram_send(ep, "dg.fork", v, sizeof(v), 5000);
                if (r != (ssize_t)sizeof(v)) {
                        fprintf(stderr, "sender %d datagram %d: %zd\n", id, k, r);
                        _exit(4);
                }
        }
}

/* An endpoint that sent to dg.fork (so it holds a channel there), then
 * forks: parent and child send at once. */
static void fork_senders(void *arg) {
        (void)arg;
        int ep = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        int first[2] = { 0, -1 };
        CHECK_EQ(ipcf_dgram_send(ep, "dg.fork", first, sizeof(first), 5000), sizeof(first));
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
                fork_send_all(ep, 1);
                _exit(0);
        }
        fork_send_all(ep, 0);
        CHECK_EQ(test_wait(c, 60000), 0);
}

/* Both processes send on the endpoint they share: the child's datagrams go
 * on a channel of its own, not on the one it inherited (which its parent
 * writes: one port end in two processes at once corrupts it). Every
 * datagram arrives once, each sender's in order. Before family.c and
 * dgram.c's outs_reap, both wrote the inherited channel. */
TEST_TIMEOUT(a_forked_endpoint_sends_on_channels_of_its_own, 120) {
        test_daemon_start(&d, NULL, NULL);
        int rx = CHECK_OK(ipcf_dgram_open("dg.fork", NULL));
        pid_t s = test_fork(fork_senders, NULL);
        int next[2] = { -1, 0 };
        pid_t pid[2] = { 0, 0 };
        for (int n = 0; n < 2 * FORK_DGRAMS + 1; n++) {
                int v[2];
                ipcf_dgram_src src;
                ssize_t r = ipcf_dgram_recv(rx, v, sizeof(v), 10000, &src);
                if (r != (ssize_t)sizeof(v)) {
                        fprintf(stderr, "datagram %d: %zd (next %d %d)\n", n, r, next[0], next[1]);
                        CHECK_EQ(r, (ssize_t)sizeof(v));
                }
                CHECK(v[0] == 0 || v[0] == 1);
                CHECK_EQ(v[1], next[v[0]]);
                next[v[0]]++;
                if (v[1] >= 0 && !pid[v[0]])
                        pid[v[0]] = src.from.pid;
        }
        CHECK_EQ(next[0], FORK_DGRAMS);
        CHECK_EQ(next[1], FORK_DGRAMS);
        CHECK(pid[0] != pid[1]); /* the child sent as itself */
        CHECK_EQ(test_wait(s, 30000), 0);
        test_daemon_stop(&d);
}
