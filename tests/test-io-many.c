/*
 * test-io-many.c — batches of messages (ipcf_write_many, ipcf_read_many) on
 * real flows between real processes (support/flowpair.h: the flow exactly as
 * ipcfd makes it): order and bytes across many wrap-arounds, each argument
 * error, an error in mid-batch (the count, then the error from the next
 * call), a full queue, a batch larger than the queue (published before the
 * writer waits), a sleeping reader woken by a batch, the end of the flow and
 * the peer's death, ZERO capacity, FULL_CACHE, poll readiness, STREAM refused;
 * two threads' batches into one port never interleaved (in CI's TSan step).
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/flowpair.h"
#include "support/test.h"

/* Both ends of a fresh flow of qos q (NULL: the defaults) in this process. */
static void pair(const ipcf_qos *q, int *a, int *b) {
        CHECK_OK(flowpair_make(q, 0, 0, a, b));
}

/* iov[i] points at the int v[i], for i < n; v[i] = i when numbered (to
 * send), else -1 (a buffer to read into, that a read must fill). */
static void int_iovecs(int *v, struct iovec *iov, int n, bool numbered) {
        for (int i = 0; i < n; i++) {
                v[i] = numbered ? i : -1;
                iov[i] = (struct iovec){ &v[i], sizeof(int) };
        }
}

/* Read the ints 0..count-1 from port with ipcf_read_many (up to 16 a call,
 * each call within timeout_ms), checking each is the next one. */
static void read_numbered_ints(int port, int count, int timeout_ms) {
        int got[16];
        struct iovec in[16];
        for (int seen = 0; seen < count;) {
                int_iovecs(got, in, 16, false);
                ssize_t n = ipcf_read_many(port, in, 16, timeout_ms);
                CHECK(n > 0 && seen + n <= count);
                for (int i = 0; i < n; i++)
                        CHECK_EQ(got[i], seen + i);
                seen += (int)n;
        }
}

/* Message i of a numbered run: its length and its bytes (the number first). */
static size_t numbered_len(unsigned i, size_t max) {
        return 4 + (i * 2654435761u) % (max - 4);
}

static void numbered_fill(uint8_t *buf, unsigned i, size_t len) {
        test_fill(buf, len, i);
        memcpy(buf, &i, 4);
}

static void numbered_check(const uint8_t *buf, size_t len, unsigned i, size_t max) {
        static uint8_t want[8192];
        CHECK_EQ(len, numbered_len(i, max));
        numbered_fill(want, i, len);
        CHECK_MEM(buf, want, len);
}

struct run {
        int port;
        unsigned count;
        size_t max;      /* largest message + 1 */
        unsigned batch;  /* messages per call */
        int timeout_ms;
};

/* Writes count numbered messages, batch per ipcf_write_many, taking the
 * counts it returns (a partial batch goes again from the first not queued). */
static void many_writer(void *arg) {
        struct run *r = arg;
        static uint8_t bufs[64][8192];
        struct iovec iov[64];
        for (unsigned i = 0; i < r->count;) {
                unsigned n = r->count - i < r->batch ? r->count - i : r->batch;
                for (unsigned k = 0; k < n; k++) {
                        size_t len = numbered_len(i + k, r->max);
                        numbered_fill(bufs[k], i + k, len);
                        iov[k] = (struct iovec){ bufs[k], len };
                }
                unsigned sent = 0;
                while (sent < n) {
                        ssize_t w = ipcf_write_many(r->port, iov + sent, n - sent, r->timeout_ms);
                        CHECK(w > 0);
                        sent += (unsigned)w;
                }
                i += n;
        }
}

/* Reads count numbered messages, batch per ipcf_read_many; returns how many
 * calls it took. */
static unsigned many_reader(const struct run *r) {
        static uint8_t bufs[64][8192];
        struct iovec iov[64];
        unsigned calls = 0;
        for (unsigned i = 0; i < r->count;) {
                for (unsigned k = 0; k < r->batch; k++)
                        iov[k] = (struct iovec){ bufs[k], sizeof(bufs[k]) };
                ssize_t got = ipcf_read_many(r->port, iov, r->batch, r->timeout_ms);
                CHECK(got > 0 && (size_t)got <= r->batch);
                for (unsigned k = 0; k < (unsigned)got; k++)
                        numbered_check(bufs[k], iov[k].iov_len, i + k, r->max);
                i += (unsigned)got;
                calls++;
        }
        return calls;
}

static void many_reader_child(void *arg) {
        many_reader(arg);
}

/* 200,000 messages of 4..299 bytes through a 16 KiB ring (thousands of laps,
 * pads at its end), batches of 32 against batches of 7: every byte, in order. */
TEST_TIMEOUT(batches_keep_order_and_bytes_across_wraparounds, 120) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = 16 << 10;
        q.max_msg_size = 300;
        pair(&q, &a, &b);
        struct run w = { .port = a, .count = 200000, .max = 300, .batch = 32, .timeout_ms = 10000 };
        pid_t c = test_fork(many_writer, &w);
        struct run r = { .port = b, .count = 200000, .max = 300, .batch = 7, .timeout_ms = 10000 };
        unsigned calls = many_reader(&r);
        CHECK_EQ(test_wait(c, 60000), 0);
        printf("  200000 messages in %u ipcf_read_many calls\n", calls);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(b, &st));
        CHECK_EQ(st.msgs_in, 200000);
        char x;
        CHECK_ERR(ipcf_read(b, &x, 1, 0), -EAGAIN);
}

TEST(arguments_are_checked_before_anything_moves) {
        int a, b;
        pair(NULL, &a, &b);
        char buf[16];
        struct iovec ok[2] = { { "ab", 2 }, { "cd", 2 } };
        struct iovec bad[2] = { { "ab", 2 }, { NULL, 5 } };
        struct iovec in[2] = { { buf, 8 }, { buf + 8, 8 } };
        CHECK_EQ(ipcf_write_many(a, ok, 0, 0), 0);
        CHECK_EQ(ipcf_write_many(a, NULL, 0, 0), 0);
        CHECK_ERR(ipcf_write_many(a, NULL, 1, 0), -EINVAL);
        CHECK_ERR(ipcf_write_many(a, bad, 2, 0), -EINVAL); /* nothing written, not even "ab" */
        CHECK_ERR(ipcf_write_many(a, ok, 2, -2), -EINVAL);
        CHECK_ERR(ipcf_write_many(-1, ok, 2, 0), -EBADF);
        CHECK_ERR(ipcf_write_many(12345, ok, 2, 0), -EBADF);
        CHECK_ERR(ipcf_read_many(b, in, 2, 0), -EAGAIN);
        CHECK_EQ(ipcf_read_many(b, in, 0, 0), 0);
        CHECK_ERR(ipcf_read_many(b, NULL, 1, 0), -EINVAL);
        CHECK_ERR(ipcf_read_many(b, bad, 2, 0), -EINVAL);
        CHECK_ERR(ipcf_read_many(b, in, 2, -7), -EINVAL);
        CHECK_ERR(ipcf_read_many(-1, in, 2, 0), -EBADF);
        /* the empty message is a message */
        struct iovec empty[3] = { { NULL, 0 }, { "x", 1 }, { NULL, 0 } };
        CHECK_EQ(ipcf_write_many(a, empty, 3, 0), 3);
        struct iovec three[3] = { { buf, 4 }, { buf + 4, 4 }, { buf + 8, 4 } };
        CHECK_EQ(ipcf_read_many(b, three, 3, 0), 3);
        CHECK_EQ(three[0].iov_len, 0);
        CHECK_EQ(three[1].iov_len, 1);
        CHECK_EQ(three[2].iov_len, 0);
        CHECK_EQ(buf[4], 'x');
        /* a STREAM flow has no messages to batch */
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.mode = IPCF_MODE_STREAM;
        int s0, s1;
        pair(&q, &s0, &s1);
        CHECK_ERR(ipcf_write_many(s0, ok, 2, 0), -EOPNOTSUPP);
        CHECK_ERR(ipcf_read_many(s1, in, 2, 0), -EOPNOTSUPP);
        CHECK_ERR(ipcf_read(s1, buf, sizeof(buf), 0), -EAGAIN);
}

/* A message too large in mid-batch: the batch stops before it and says how
 * many went; the next call, from it, fails -EMSGSIZE and writes nothing. */
TEST(an_error_in_mid_batch_is_the_next_calls) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = 100;
        pair(&q, &a, &b);
        static char big[101];
        struct iovec m[4] = { { "one", 3 }, { "two", 3 }, { big, sizeof(big) }, { "four", 4 } };
        CHECK_EQ(ipcf_write_many(a, m, 4, 0), 2);
        CHECK_ERR(ipcf_write_many(a, m + 2, 2, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_write_many(a, m + 3, 1, 0), 1);
        char buf[3][8];
        struct iovec in[3] = { { buf[0], 8 }, { buf[1], 8 }, { buf[2], 8 } };
        CHECK_EQ(ipcf_read_many(b, in, 3, 0), 3);
        CHECK_MEM(buf[0], "one", 3);
        CHECK_MEM(buf[1], "two", 3);
        CHECK_MEM(buf[2], "four", 4);
        CHECK_EQ(in[2].iov_len, 4);
        /* the reader's side: a message that does not fit its buffer stays
         * queued; before it, the batch is returned */
        struct iovec w[3] = { { "aa", 2 }, { "bbbbbbbbbb", 10 }, { "c", 1 } };
        CHECK_EQ(ipcf_write_many(a, w, 3, 0), 3);
        struct iovec r[3] = { { buf[0], 8 }, { buf[1], 8 }, { buf[2], 8 } };
        CHECK_EQ(ipcf_read_many(b, r, 3, 0), 1);
        CHECK_EQ(r[0].iov_len, 2);
        CHECK_EQ(r[1].iov_len, 8); /* untouched */
        CHECK_ERR(ipcf_read_many(b, r + 1, 2, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_next_size(b, 0), 10);
        char big_in[16];
        struct iovec r2[2] = { { big_in, sizeof(big_in) }, { buf[2], 8 } };
        CHECK_EQ(ipcf_read_many(b, r2, 2, 0), 2);
        CHECK_MEM(big_in, "bbbbbbbbbb", 10);
        CHECK_EQ(r2[1].iov_len, 1);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(b, &st));
        CHECK_EQ(st.msgs_in, 6);
}

/* A full queue: without waiting, a batch queues what fits and says how many;
 * then -EAGAIN; FULL_FAIL alike; with a timeout, -ETIMEDOUT only when none
 * went. */
TEST(a_full_queue_takes_part_of_a_batch) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msgs = 5;
        pair(&q, &a, &b);
        int v[8];
        struct iovec m[8];
        int_iovecs(v, m, 8, true);
        CHECK_EQ(ipcf_write_many(a, m, 8, 0), 5);
        CHECK_ERR(ipcf_write_many(a, m + 5, 3, 0), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_write_many(a, m + 5, 3, 50), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 45);
        int got[8];
        struct iovec in[8];
        int_iovecs(got, in, 8, false);
        CHECK_EQ(ipcf_read_many(b, in, 2, 0), 2);
        /* room for two: a waiting batch takes them, then waits out its
         * timeout for the third and returns the two */
        CHECK_EQ(ipcf_write_many(a, m + 5, 3, 50), 2);
        CHECK_EQ(ipcf_read_many(b, in, 8, 0), 5);
        for (int i = 0; i < 5; i++)
                CHECK_EQ(got[i], i + 2);
        q.full = IPCF_FULL_FAIL;
        pair(&q, &a, &b);
        CHECK_EQ(ipcf_write_many(a, m, 8, 1000), 5);
        CHECK_ERR(ipcf_write_many(a, m, 8, 1000), -EAGAIN);
}

/* One batch of 20,000 messages into a queue of 64: the writer must publish
 * what it queued before it waits for room, or the reader never sees it. The
 * reader sleeps (spin_us 0), so every wake-up is the batch's. */
TEST_TIMEOUT(a_batch_larger_than_the_queue_goes_through, 60) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msgs = 64;
        q.max_msg_size = 300;
        q.spin_us = 0;
        pair(&q, &a, &b);
        struct run w = { .port = a, .count = 20000, .max = 300, .batch = 20000, .timeout_ms = 10000 };
        static uint8_t bufs[20000][300];
        static struct iovec iov[20000];
        for (unsigned i = 0; i < w.count; i++) {
                size_t len = numbered_len(i, w.max);
                numbered_fill(bufs[i], i, len);
                iov[i] = (struct iovec){ bufs[i], len };
        }
        struct run r = { .port = b, .count = 20000, .max = 300, .batch = 64, .timeout_ms = 10000 };
        pid_t c = test_fork(many_reader_child, &r);
        CHECK_EQ(ipcf_write_many(a, iov, 20000, 10000), 20000);
        CHECK_EQ(test_wait(c, 30000), 0);
}

static void sleepy_batch_reader(void *arg) {
        int b = *(int *)arg;
        int got[4];
        struct iovec in[4];
        int_iovecs(got, in, 4, false);
        /* asleep well before the batch comes; woken by it, not by the timeout */
        ssize_t n = ipcf_read_many(b, in, 4, 20000);
        CHECK(n >= 1);
        for (int i = 0; i < n; i++)
                CHECK_EQ(got[i], i);
}

/* A reader asleep in ipcf_read_many (spin_us 0: on the futex at once) is
 * woken by a batch: the batch's fence and want-word check. */
TEST(a_sleeping_reader_is_woken_by_a_batch) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.spin_us = 0;
        pair(&q, &a, &b);
        pid_t c = test_fork(sleepy_batch_reader, &b);
        usleep(200000);
        int v[3] = { 0, 1, 2 };
        struct iovec m[3] = { { &v[0], 4 }, { &v[1], 4 }, { &v[2], 4 } };
        uint64_t t0 = test_now_ms();
        CHECK_EQ(ipcf_write_many(a, m, 3, 0), 3);
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK(test_now_ms() - t0 < 10000); /* not the reader's 20 s timeout */
}

/* The end of the flow: what a batch wrote before is read, then -EPIPE and
 * the reason; the peer's death: read, then -ECONNRESET; a batch on an ended
 * flow fails as ipcf_write. */
static void batch_then_die(void *arg) {
        int b = *(int *)arg;
        int v[10];
        struct iovec m[10];
        int_iovecs(v, m, 10, true);
        CHECK_EQ(ipcf_write_many(b, m, 10, 1000), 10);
        raise(SIGKILL);
}

TEST(the_end_of_the_flow_after_a_batch) {
        int a, b;
        pair(NULL, &a, &b);
        struct iovec m[3] = { { "a", 1 }, { "bb", 2 }, { "ccc", 3 } };
        CHECK_EQ(ipcf_write_many(a, m, 3, 0), 3);
        CHECK_OK(ipcf_dealloc(a, "batch done"));
        char buf[4][4];
        struct iovec in[4] = { { buf[0], 4 }, { buf[1], 4 }, { buf[2], 4 }, { buf[3], 4 } };
        CHECK_EQ(ipcf_read_many(b, in, 4, 0), 3);
        CHECK_MEM(buf[2], "ccc", 3);
        CHECK_ERR(ipcf_read_many(b, in, 4, -1), -EPIPE);
        CHECK_ERR(ipcf_write_many(b, m, 3, -1), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(b, &why));
        CHECK(strcmp(why.text, "batch done") == 0);

        pair(NULL, &a, &b);
        pid_t c = test_fork(batch_then_die, &b);
        CHECK_OK(flowpair_watch(a, c));
        read_numbered_ints(a, 10, 5000);
        CHECK_ERR(ipcf_read_many(a, in, 4, 5000), -ECONNRESET);
        CHECK_ERR(ipcf_write_many(a, m, 3, 0), -ECONNRESET);
        test_wait(c, 1000);
}

static void rendezvous_taker(void *arg) {
        int b = *(int *)arg;
        char buf[3][4];
        for (int i = 0; i < 3; i++) {
                struct iovec in = { buf[i], 4 };
                CHECK_EQ(ipcf_read_many(b, &in, 1, 5000), 1);
                CHECK_EQ(in.iov_len, 1);
                CHECK_EQ(buf[i][0], 'a' + i);
        }
}

/* ZERO capacity: each message of a batch is a rendezvous; nobody reading:
 * -EAGAIN at once, -ETIMEDOUT after a wait, nothing left behind. */
TEST(zero_capacity_batches_are_rendezvous) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.capacity = IPCF_CAPACITY_ZERO;
        pair(&q, &a, &b);
        struct iovec m[3] = { { "a", 1 }, { "b", 1 }, { "c", 1 } };
        CHECK_ERR(ipcf_write_many(a, m, 3, 0), -EAGAIN);
        CHECK_ERR(ipcf_write_many(a, m, 3, 30), -ETIMEDOUT);
        char x;
        CHECK_ERR(ipcf_read(b, &x, 1, 0), -EAGAIN);
        pid_t c = test_fork(rendezvous_taker, &b);
        CHECK_EQ(ipcf_write_many(a, m, 3, 5000), 3);
        CHECK_EQ(test_wait(c, 5000), 0);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.msgs_out, 3);
}

/* FULL_CACHE: a batch beyond the queue is cached as single writes are, and
 * read in order. */
TEST(full_cache_batches_are_cached_in_order) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.full = IPCF_FULL_CACHE;
        q.cache_msgs = 4;
        q.max_msgs = 2;
        pair(&q, &a, &b);
        int v[6];
        struct iovec m[6];
        int_iovecs(v, m, 6, true);
        CHECK_EQ(ipcf_write_many(a, m, 6, 0), 6);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.cached, 4);
        read_numbered_ints(b, 6, 1000);
        CHECK_EQ(ipcf_flush(a, 1000), 0);
}

/* Poll readiness follows batches exactly as single messages. */
TEST(poll_readiness_follows_batches) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msgs = 4;
        pair(&q, &a, &b);
        int fd = ipcf_fd(b), sfd = ipcf_fd_send(a);
        CHECK(fd >= 0 && sfd >= 0);
        CHECK(!test_readable(fd));
        CHECK(test_readable(sfd));
        struct iovec m[4] = { { "1", 1 }, { "2", 1 }, { "3", 1 }, { "4", 1 } };
        CHECK_EQ(ipcf_write_many(a, m, 4, 0), 4);
        CHECK(test_readable(fd));
        CHECK(!test_readable(sfd)); /* full */
        char buf[4][2];
        struct iovec in[4] = { { buf[0], 2 }, { buf[1], 2 }, { buf[2], 2 }, { buf[3], 2 } };
        CHECK_EQ(ipcf_read_many(b, in, 3, 0), 3);
        CHECK(test_readable(fd));
        CHECK(test_readable(sfd));
        CHECK_EQ(ipcf_read_many(b, in, 4, 0), 1);
        CHECK(!test_readable(fd));
}

struct batch_thread {
        int port;
        uint32_t id;
};

/* 500 batches of 10 messages {id, batch, k}, waiting for room as needed. */
static void *batch_writer_thread(void *arg) {
        struct batch_thread *bt = arg;
        uint32_t m[10][3];
        struct iovec iov[10];
        for (uint32_t batch = 0; batch < 500; batch++) {
                for (uint32_t k = 0; k < 10; k++) {
                        m[k][0] = bt->id;
                        m[k][1] = batch;
                        m[k][2] = k;
                        iov[k] = (struct iovec){ m[k], sizeof(m[k]) };
                }
                CHECK_EQ(ipcf_write_many(bt->port, iov, 10, 10000), 10);
        }
        return NULL;
}

/* Two threads writing batches into one port through a small queue (so they
 * wait for room in mid-batch): each batch arrives whole and in order, never
 * interleaved with the other thread's messages — the write lock is held for
 * the batch — and every message once. */
TEST_TIMEOUT(batches_of_two_threads_are_never_interleaved, 60) {
        int a, b;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msgs = 16;
        pair(&q, &a, &b);
        struct batch_thread bt[2] = { { a, 1 }, { a, 2 } };
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
                CHECK_OK(-pthread_create(&th[i], NULL, batch_writer_thread, &bt[i]));
        uint32_t next_batch[3] = { 0, 0, 0 }, got[7][3];
        uint32_t in_batch_of = 0, expect_k = 0;
        struct iovec in[7];
        for (unsigned total = 0; total < 2 * 500 * 10;) {
                for (int i = 0; i < 7; i++)
                        in[i] = (struct iovec){ got[i], sizeof(got[i]) };
                ssize_t n = ipcf_read_many(b, in, 7, 10000);
                CHECK(n > 0);
                for (int i = 0; i < n; i++) {
                        uint32_t id = got[i][0], batch = got[i][1], k = got[i][2];
                        CHECK(id == 1 || id == 2);
                        if (expect_k == 0) {
                                in_batch_of = id; /* a batch starts */
                                CHECK_EQ(batch, next_batch[id]);
                        }
                        CHECK_EQ(id, in_batch_of);
                        CHECK_EQ(batch, next_batch[id]);
                        CHECK_EQ(k, expect_k);
                        if (++expect_k == 10) {
                                expect_k = 0;
                                next_batch[id]++;
                        }
                }
                total += (unsigned)n;
        }
        for (int i = 0; i < 2; i++)
                CHECK_OK(-pthread_join(th[i], NULL));
        CHECK_EQ(next_batch[1], 500u);
        CHECK_EQ(next_batch[2], 500u);
}

