/*
 * test-wakeword.c — the want words of a flow's rings (src/common/wakeword.h):
 * a futex sleep in one process woken by another, the word's values and what
 * a waker does for each, and a hostile peer that rewrites the word and
 * floods futex wake-ups while an honest sleep-only reader waits: the reader
 * still returns by its deadline, and gets the data sent once the flood stops.
 */
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/ring.h"
#include "common/util.h"
#include "common/wake.h"
#include "common/wakeword.h"
#include "ipcf.h"
#include "support/flowpair.h"
#include "support/test.h"

/* How late an honest call may return after its deadline on a loaded machine
 * (a flooder holding a sleeper past its deadline holds it until it stops,
 * which it does only after the sleeper's three waits). */
#define SLACK_MS 2000

/* A word in memory shared with forked children, as a flow region is. */
static _Atomic uint32_t *shared_word(void) {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(m != MAP_FAILED);
        return m;
}

TEST(a_futex_sleep_returns_at_once_unless_the_word_says_futex) {
        _Atomic uint32_t *w = shared_word();
        uint64_t far = now_ns() + 10ull * 1000000000u;
        uint64_t t0 = test_now_ms();
        atomic_store(w, WAKEWORD_NONE);
        CHECK_EQ(wakeword_sleep(w, far), 0);
        atomic_store(w, WAKEWORD_EAR);
        CHECK_EQ(wakeword_sleep(w, far), 0);
        atomic_store(w, 77); /* a peer's garbage */
        CHECK_EQ(wakeword_sleep(w, far), 0);
        CHECK(test_now_ms() - t0 < 5000);
        munmap((void *)w, 4096);
}

TEST(a_futex_sleep_ends_at_its_deadline) {
        _Atomic uint32_t *w = shared_word();
        atomic_store(w, WAKEWORD_FUTEX);
        uint64_t t0 = now_ns();
        CHECK_ERR(wakeword_sleep(w, t0 + 50000000u), -ETIMEDOUT);
        CHECK(now_ns() >= t0 + 50000000u);
        /* A deadline already past: at once. */
        CHECK_ERR(wakeword_sleep(w, t0), -ETIMEDOUT);
        CHECK_EQ(atomic_load(w), WAKEWORD_FUTEX); /* a sleep never writes the word */
        munmap((void *)w, 4096);
}

static _Atomic uint32_t *sleeper_word;

/* Say "asleep" in the word and sleep on it for up to 10 s; exit 0 if woken
 * well before that. */
static void futex_sleeper(void *arg) {
        (void)arg;
        uint64_t t0 = now_ns();
        atomic_store(&sleeper_word[1], 1); /* started */
        atomic_store(sleeper_word, WAKEWORD_FUTEX);
        while (atomic_load(sleeper_word) == WAKEWORD_FUTEX && now_ns() - t0 < 10000000000ull)
                CHECK_EQ(wakeword_sleep(sleeper_word, t0 + 10000000000ull), 0);
        CHECK(now_ns() - t0 < 5000000000ull);
}

TEST_TIMEOUT(a_waker_wakes_a_futex_sleeper_in_another_process, 30) {
        sleeper_word = shared_word();
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        pid_t c = test_fork(futex_sleeper, NULL);
        uint64_t t0 = test_now_ms();
        while (atomic_load(sleeper_word) != WAKEWORD_FUTEX && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(atomic_load(sleeper_word), WAKEWORD_FUTEX);
        usleep(20000); /* most likely inside futex_wait by now; either way it returns */
        wakeword_wake(sleeper_word, bell);
        CHECK_EQ(atomic_load(sleeper_word), WAKEWORD_NONE);
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK(!wake_pending(ear)); /* a futex sleeper is not rung */
        close(ear);
        close(bell);
        munmap((void *)sleeper_word, 4096);
}

TEST(each_value_of_the_word_gets_its_own_wake_up) {
        _Atomic uint32_t *w = shared_word();
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        /* Nobody asked: nothing happens. */
        atomic_store(w, WAKEWORD_NONE);
        wakeword_wake(w, bell);
        CHECK(!wake_pending(ear));
        /* A poll sleeper: its ear is rung, the word cleared. */
        atomic_store(w, WAKEWORD_EAR);
        wakeword_wake(w, bell);
        CHECK(wake_pending(ear));
        CHECK_EQ(atomic_load(w), WAKEWORD_NONE);
        CHECK_EQ(wake_drain(ear), 1);
        /* Garbage counts as a poll sleeper: one bounded ring. */
        atomic_store(w, 0xdeadbeef);
        wakeword_wake(w, bell);
        CHECK(wake_pending(ear));
        CHECK_EQ(wake_drain(ear), 1);
        /* An end wakes futex sleepers only, and leaves other words alone
         * (the ender rings the ear itself). */
        atomic_store(w, WAKEWORD_EAR);
        wakeword_end(w);
        CHECK_EQ(atomic_load(w), WAKEWORD_EAR);
        atomic_store(w, WAKEWORD_FUTEX);
        wakeword_end(w);
        CHECK_EQ(atomic_load(w), WAKEWORD_NONE);
        CHECK(!wake_pending(ear));
        close(ear);
        close(bell);
        munmap((void *)w, 4096);
}

/* ---- a hostile writer against a sleep-only reader ------------------------ */

static int hp0, hp1;
static int stop_pipe[2], stopped_pipe[2]; /* honest -> hostile, hostile -> honest */

/* Side 0's process: rewrite the reader's want word with every value and wake
 * its futex as fast as it can until told to stop, say so, then send "late". */
static void futex_flooder(void *arg) {
        (void)arg;
        size_t size;
        uint8_t *mem = flowpair_mem(hp0, &size);
        CHECK(mem);
        _Atomic uint32_t *want = &flow_ctl_of(mem, 0)->rx_sleep;
        struct pollfd stop = { .fd = stop_pipe[0], .events = POLLIN };
        for (uint32_t i = 0; i % 1024 || poll(&stop, 1, 0) == 0; i++) {
                atomic_store(want, i % 4);
                syscall(SYS_futex, (uint32_t *)want, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        }
        CHECK_EQ(write(stopped_pipe[1], "!", 1), 1);
        CHECK_EQ(ipcf_write(hp0, "late", 4, 5000), 4);
}

TEST_TIMEOUT(a_peer_flooding_the_want_word_cannot_hold_a_sleeper_past_its_deadline, 60) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.spin_us = 0;
        CHECK_OK(flowpair_make(&q, 0, 0, &hp0, &hp1));
        CHECK_OK(pipe(stop_pipe));
        CHECK_OK(pipe(stopped_pipe));
        pid_t c = test_fork(futex_flooder, NULL);
        char buf[16];
        for (int i = 0; i < 3; i++) {
                uint64_t t0 = test_now_ms();
                CHECK_ERR(ipcf_read(hp1, buf, sizeof(buf), 300), -ETIMEDOUT);
                uint64_t el = test_now_ms() - t0;
                CHECK(el >= 290 && el <= 300 + SLACK_MS);
        }
        /* Once it stops (while it runs, it can clear our word just before it
         * writes, and so delay its own message to our deadline: its loss),
         * the message it sends wakes us. */
        CHECK_EQ(write(stop_pipe[1], "!", 1), 1);
        struct pollfd stopped = { .fd = stopped_pipe[0], .events = POLLIN };
        CHECK_EQ(poll(&stopped, 1, 10000), 1);
        CHECK_EQ(ipcf_read(hp1, buf, sizeof(buf), 10000), 4);
        CHECK_MEM(buf, "late", 4);
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK_OK(ipcf_dealloc(hp0, NULL));
        CHECK_OK(ipcf_dealloc(hp1, NULL));
        for (int i = 0; i < 2; i++) {
                close(stop_pipe[i]);
                close(stopped_pipe[i]);
        }
}

/* ---- sleep-only exchanges in both directions ------------------------------- */

static void echo_side(void *arg) {
        (void)arg;
        char buf[64];
        for (;;) {
                ssize_t n = ipcf_read(hp0, buf, sizeof(buf), 10000);
                if (n < 0) {
                        CHECK_ERR(n, -EPIPE); /* the other side deallocated */
                        break;
                }
                CHECK_EQ(ipcf_write(hp0, buf, (size_t)n, 10000), n);
        }
}

TEST_TIMEOUT(sleep_only_round_trips_and_a_full_ring_wake_both_ways, 60) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.spin_us = 0;
        q.max_bytes = 4096; /* small: the writer waits for room (tx want word) too */
        q.max_msg_size = 64;
        CHECK_OK(flowpair_make(&q, 0, 0, &hp0, &hp1));
        pid_t c = test_fork(echo_side, NULL);
        char out[64], in[64];
        for (int i = 0; i < 2000; i++) {
                size_t n = 1 + (size_t)i % sizeof(out);
                test_fill(out, n, (uint64_t)i);
                CHECK_EQ(ipcf_write(hp1, out, n, 10000), (ssize_t)n);
                CHECK_EQ(ipcf_read(hp1, in, sizeof(in), 10000), (ssize_t)n);
                CHECK_MEM(in, out, n);
        }
        /* Bursts beyond the ring's room: both sides sleep for room and data. */
        uint64_t sent = 0, got = 0;
        for (int i = 0; i < 500; i++) {
                test_fill(out, sizeof(out), (uint64_t)i);
                CHECK_EQ(ipcf_write(hp1, out, sizeof(out), 10000), (ssize_t)sizeof(out));
                sent = test_hash(out, sizeof(out), sent);
                while (ipcf_read(hp1, in, sizeof(in), 0) == (ssize_t)sizeof(in))
                        got = test_hash(in, sizeof(in), got);
        }
        while (got != sent) {
                CHECK_EQ(ipcf_read(hp1, in, sizeof(in), 10000), (ssize_t)sizeof(in));
                got = test_hash(in, sizeof(in), got);
        }
        CHECK_OK(ipcf_dealloc(hp1, NULL));
        CHECK_EQ(test_wait(c, 10000), 0);
}
