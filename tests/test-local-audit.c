/*
 * test-local-audit.c — a hostile audit of issue 14's local fast paths
 * (readiness sets, writer batching, sleep-only flows): each case is a
 * situation the other tests leave out, and what the API documents for it.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/flowpair.h"
#include "support/test.h"

#define SLACK_MS 1000 /* how late a timeout may come on a loaded machine */

static void small_qos(ipcf_qos *q) {
        ipcf_qos_init(q);
        q->max_msg_size = 256;
        q->max_bytes = 4096;
}

/* ---- readiness sets and fork ----------------------------------------------- */

static int shared_set = -1;

static void detach_the_set(void *arg) {
        (void)arg;
        ipcf_set_event ev[4];
        /* not the child's: its calls fail */
        CHECK_ERR(ipcf_set_wait(shared_set, ev, 4, 0), -EBADF);
        CHECK_ERR(ipcf_set_add(shared_set, shared_set + 1000, 0), -EBADF);
        CHECK_OK(ipcf_detach(shared_set));
}

/* A child of fork() closes the set it inherited (ipcf_detach, as the API
 * says a process closes what it does not use): the parent's set goes on —
 * a message written after it is still reported. */
TEST(a_child_detaching_an_inherited_set_leaves_the_parents_set_working) {
        int a0, a1;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a0, &a1));
        int set = shared_set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, a1, 7));
        ipcf_set_event ev[4];
        /* everything armed: the set sleeps on the kernel from now on */
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);
        CHECK_EQ(test_wait(test_fork(detach_the_set, NULL), 10000), 0);
        CHECK_EQ(ipcf_write(a0, "x", 1, 1000), 1);
        CHECK_EQ(ipcf_set_wait(set, ev, 4, 2000), 1);
        CHECK_EQ(ev[0].data, 7);
        /* and its descriptor still says so */
        char c;
        CHECK_EQ(ipcf_read(a1, &c, 1, 0), 1);
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 0), -EAGAIN);
        struct pollfd pf = { .fd = CHECK_OK(ipcf_fd(set)), .events = POLLIN };
        CHECK_EQ(ipcf_write(a0, "y", 1, 1000), 1);
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        ipcf_dealloc(set, NULL);
        ipcf_dealloc(a0, NULL);
        ipcf_dealloc(a1, NULL);
}

/* ---- a peer killed while the set sleeps ------------------------------------------ */

static int kept_end = -1;

static void keep_end_and_sleep(void *arg) {
        (void)arg;
        for (;;)
                pause();
}

/* A pipe's end handed to a child (the parent detaches it); the child is
 * killed with SIGKILL while the parent's set sleeps: the set reports the
 * end, and the read says -ECONNRESET. */
TEST(a_pipe_peer_killed_while_the_set_sleeps_is_reported) {
        int p[2];
        CHECK_OK(ipcf_pipe(NULL, p));
        kept_end = p[0];
        pid_t child = test_fork(keep_end_and_sleep, NULL);
        CHECK_OK(ipcf_detach(p[0]));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, p[1], 1));
        ipcf_set_event ev[4];
        CHECK_ERR(ipcf_set_wait(set, ev, 4, 100), -ETIMEDOUT);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        uint64_t t0 = test_now_ms();
        CHECK_EQ(ipcf_set_wait(set, ev, 4, 5000), 1);
        CHECK(test_now_ms() - t0 < SLACK_MS);
        char c;
        CHECK_ERR(ipcf_read(p[1], &c, 1, 0), -ECONNRESET);
        ipcf_dealloc(set, NULL);
        ipcf_dealloc(p[1], NULL);
}

/* The same through ipcf_fd: a pipe end's descriptor becomes readable when
 * its peer dies ("readable ... or the flow has ended"). */
TEST(a_pipe_peer_killed_while_its_fd_is_polled_is_seen) {
        int p[2];
        CHECK_OK(ipcf_pipe(NULL, p));
        kept_end = p[0];
        pid_t child = test_fork(keep_end_and_sleep, NULL);
        CHECK_OK(ipcf_detach(p[0]));
        struct pollfd pf = { .fd = CHECK_OK(ipcf_fd(p[1])), .events = POLLIN };
        CHECK_EQ(poll(&pf, 1, 100), 0);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        CHECK_EQ(poll(&pf, 1, 5000), 1);
        char c;
        CHECK_ERR(ipcf_read(p[1], &c, 1, 0), -ECONNRESET);
        ipcf_dealloc(p[1], NULL);
}

/* ---- timeouts of writes that wait ------------------------------------------------- */

static void stop_self(void *arg) {
        (void)arg;
        raise(SIGSTOP);
        for (;;)
                pause();
}

/* Fill port w's queue (its reader takes nothing), then a write with a
 * timeout of ms must fail -ETIMEDOUT about ms later, whatever the spin. */
static void write_times_out(const ipcf_qos *q, int ms) {
        int p[2];
        CHECK_OK(ipcf_pipe(q, p));
        pid_t child = test_fork(stop_self, NULL);
        CHECK_OK(ipcf_detach(p[1]));
        int st;
        CHECK_EQ(waitpid(child, &st, WUNTRACED), child);
        char buf[256] = { 0 };
        size_t len = q->mode == IPCF_MODE_STREAM ? 256 : 64;
        if (q->capacity != IPCF_CAPACITY_ZERO) {
                int n = 0;
                while (ipcf_write(p[0], buf, len, 0) > 0)
                        n++;
                CHECK(n > 0);
        }
        for (int i = 0; i < 5; i++) {
                uint64_t t0 = test_now_ns();
                ssize_t r = ipcf_write(p[0], buf, len, ms);
                uint64_t took = (test_now_ns() - t0) / 1000;
                if (r != -ETIMEDOUT)
                        printf("# write %zd\n", r);
                CHECK_ERR(r, -ETIMEDOUT);
                printf("# timeout %d ms took %llu us\n", ms, (unsigned long long)took);
                CHECK(took >= (uint64_t)ms * 1000);
                CHECK(took < (uint64_t)ms * 1000 + 20000);
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        ipcf_dealloc(p[0], NULL);
}

TEST(a_write_to_a_stopped_reader_times_out_on_time) {
        ipcf_qos q;
        small_qos(&q);
        q.spin_us = 100000;
        write_times_out(&q, 5);
        q.spin_us = 0;
        write_times_out(&q, 5);
        small_qos(&q);
        q.spin_us = 100000;
        q.mode = IPCF_MODE_STREAM;
        write_times_out(&q, 5);
        small_qos(&q);
        q.spin_us = 100000;
        q.full = IPCF_FULL_CACHE;
        write_times_out(&q, 5);
        small_qos(&q);
        q.spin_us = 100000;
        q.capacity = IPCF_CAPACITY_ZERO;
        write_times_out(&q, 5);
        small_qos(&q);
        q.spin_us = 100000;
        write_times_out(&q, 1);
}
