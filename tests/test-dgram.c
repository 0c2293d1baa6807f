/*
 * test-dgram.c — datagrams against the real daemon: stamped senders and
 * answers, drops when a queue is full (counted and listed), several senders,
 * the wrong kind of name, a receiver that goes away, polling.
 */
#include <poll.h>
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
