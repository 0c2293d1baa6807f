/*
 * test-flow-data.c — the data path of a flow, end to end across two real
 * processes, without the control plane: rings, wrap-around, every qos option,
 * timeouts, end of flow, peer death, poll readiness, zero-copy, a hostile peer.
 * (The same paths through the real daemon are in test-flow.c.)
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"
#include "lib/core/lib.h"
#include "support/flowpair.h"
#include "support/test.h"

static void pair(const ipcf_qos *q, int *a, int *b) {
        CHECK_OK(flowpair_make(q, 0, 0, a, b));
}

static ipcf_qos qos_default(void) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        return q;
}

TEST(message_roundtrip_and_sizes) {
        int a, b;
        ipcf_qos q = qos_default();
        q.max_msg_size = 1000;
        pair(&q, &a, &b);
        char buf[2000];
        CHECK_EQ(ipcf_write(a, "hello", 5, 0), 5);
        CHECK_EQ(ipcf_write(a, "", 0, 0), 0); /* an empty message is a message */
        CHECK_EQ(ipcf_next_size(b, 0), 5);
        CHECK_ERR(ipcf_read(b, buf, 4, 0), -EMSGSIZE); /* too small: kept */
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 5);
        CHECK_MEM(buf, "hello", 5);
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 0);
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), 0), -EAGAIN);
        CHECK_ERR(ipcf_write(a, buf, 1001, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_write(a, buf, 1000, 0), 1000);
        /* both directions */
        CHECK_EQ(ipcf_write(b, "back", 4, 0), 4);
        CHECK_EQ(ipcf_read(a, buf, sizeof(buf), 0), 4);
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.msgs_out, 3);
        CHECK_EQ(st.msgs_in, 1);
        CHECK_ERR(ipcf_read(-1, buf, 1, 0), -EBADF);
        CHECK_ERR(ipcf_read(a, buf, 1, -2), -EINVAL);
}

struct stream_args {
        int port;
        unsigned count;
        size_t max;
};

/* Writer of numbered messages of varying size, each filled from its number. */
static void numbered_writer(void *arg) {
        struct stream_args *s = arg;
        static uint8_t buf[70000];
        for (unsigned i = 0; i < s->count; i++) {
                size_t len = 4 + (i * 2654435761u) % (s->max - 4);
                test_fill(buf, len, i);
                memcpy(buf, &i, 4);
                CHECK_EQ(ipcf_write(s->port, buf, len, 10000), len);
        }
}

TEST_TIMEOUT(ring_wraparound_checksums, 120) {
        int a, b;
        ipcf_qos q = qos_default();
        q.max_bytes = 64 << 10; /* small ring: wraps thousands of times */
        q.max_msg_size = 5000;
        pair(&q, &a, &b);
        struct stream_args s = { .port = a, .count = 200000, .max = 5000 };
        pid_t w = test_fork(numbered_writer, &s);
        static uint8_t buf[70000], want[70000];
        for (unsigned i = 0; i < s.count; i++) {
                ssize_t n = ipcf_read(b, buf, sizeof(buf), 10000);
                size_t len = 4 + (i * 2654435761u) % (s.max - 4);
                CHECK_EQ(n, len);
                test_fill(want, len, i);
                memcpy(want, &i, 4);
                CHECK_MEM(buf, want, len);
        }
        CHECK_EQ(test_wait(w, 10000), 0);
}

TEST(timeouts_each_outcome) {
        int a, b;
        ipcf_qos q = qos_default();
        q.max_bytes = 4096;
        q.max_msg_size = 1000;
        q.full = IPCF_FULL_BLOCK;
        pair(&q, &a, &b);
        char buf[1000] = { 0 };
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), 0), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), 50), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 50);
        int n = 0;
        while (ipcf_write(a, buf, 1000, 0) == 1000)
                n++;
        CHECK(n >= 2);
        CHECK_ERR(ipcf_write(a, buf, 1000, 0), -EAGAIN);
        t0 = test_now_ms();
        CHECK_ERR(ipcf_write(a, buf, 1000, 40), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 40);
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 1000); /* room again */
        CHECK_EQ(ipcf_write(a, buf, 1000, 0), 1000);
}

TEST(full_policy_fail_and_max_msgs) {
        int a, b;
        ipcf_qos q = qos_default();
        q.full = IPCF_FULL_FAIL;
        q.max_msgs = 3;
        pair(&q, &a, &b);
        char buf[16];
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_write(a, "x", 1, -1), 1);
        CHECK_ERR(ipcf_write(a, "x", 1, -1), -EAGAIN); /* FAIL ignores the timeout */
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 1);
        CHECK_EQ(ipcf_write(a, "x", 1, -1), 1);
}

TEST(full_policy_cache_delivers_later_in_order) {
        int a, b;
        ipcf_qos q = qos_default();
        q.full = IPCF_FULL_CACHE;
        q.cache_msgs = 2;
        q.max_msgs = 2;
        pair(&q, &a, &b);
        int v;
        for (v = 0; v < 4; v++) /* 2 queued + 2 cached */
                CHECK_EQ(ipcf_write(a, &v, sizeof(v), 0), sizeof(v));
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.cached, 2);
        CHECK_ERR(ipcf_write(a, &v, sizeof(v), 0), -EAGAIN); /* cache full too */
        CHECK_ERR(ipcf_write(a, &v, sizeof(v), 20), -ETIMEDOUT);
        for (int i = 0; i < 4; i++) {
                int got = -1;
                if (i == 2) /* the writer's next call moves its cache into the queue */
                        CHECK_EQ(ipcf_flush(a, 0), 0);
                CHECK_EQ(ipcf_read(b, &got, sizeof(got), 0), sizeof(got));
                CHECK_EQ(got, i);
        }
        CHECK_ERR(ipcf_read(b, &v, sizeof(v), 0), -EAGAIN);
}

/* Issue 16, item 7: a cached message reaches a reader that waits for it,
 * without any further call of the sender. */
static void patient_reader(void *arg) {
        int b = *(int *)arg;
        for (int i = 0; i < 3; i++) {
                int got = -1;
                CHECK_EQ(ipcf_read(b, &got, sizeof(got), 500), sizeof(got));
                CHECK_EQ(got, i);
        }
}

TEST(cached_messages_reach_a_waiting_reader_without_the_sender) {
        int a, b;
        ipcf_qos q = qos_default();
        q.full = IPCF_FULL_CACHE;
        q.cache_msgs = 2;
        q.max_msgs = 1;
        pair(&q, &a, &b);
        for (int v = 0; v < 3; v++) /* 1 queued + 2 cached */
                CHECK_EQ(ipcf_write(a, &v, sizeof(v), 0), sizeof(v));
        ipcf_port_stats st;
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.cached, 2);
        pid_t r = test_fork(patient_reader, &b);
        CHECK_EQ(test_wait(r, 10000), 0); /* the sender did nothing meanwhile */
        CHECK_OK(ipcf_stats(a, &st));
        CHECK_EQ(st.cached, 0);
        CHECK_EQ(ipcf_flush(a, 0), 0);
        /* And after the sender ended the flow, its cached messages are still read. */
        pair(&q, &a, &b);
        for (int v = 0; v < 3; v++)
                CHECK_EQ(ipcf_write(a, &v, sizeof(v), 0), sizeof(v));
        CHECK_OK(ipcf_dealloc(a, "done"));
        for (int v = 0; v < 3; v++) {
                int got = -1;
                CHECK_EQ(ipcf_read(b, &got, sizeof(got), 0), sizeof(got));
                CHECK_EQ(got, v);
        }
        CHECK_ERR(ipcf_read(b, &st, sizeof(st), 0), -EPIPE);
}

/* A page shared with a forked child (zeroed; never unmapped: a test is a process). */
static _Atomic int *shared_word(void) {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(m != MAP_FAILED);
        return m;
}

static _Atomic int *reading; /* set by slow_reader just before its read */

static void slow_reader(void *arg) {
        int b = *(int *)arg;
        char buf[64];
        usleep(100000);
        atomic_store(reading, 1);
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 5000), 3);
}

TEST(zero_capacity_rendezvous) {
        int a, b;
        ipcf_qos q = qos_default();
        q.capacity = IPCF_CAPACITY_ZERO;
        pair(&q, &a, &b);
        reading = shared_word();
        pid_t r = test_fork(slow_reader, &b);
        CHECK_EQ(ipcf_write(a, "abc", 3, 5000), 3);
        /* returned only once taken: the reader (asleep 100 ms first) was in
         * its read. (Not a time since the fork: a parent preempted after
         * fork() saw less than the reader's sleep.) */
        CHECK(atomic_load(reading));
        CHECK_EQ(test_wait(r, 5000), 0);
        /* (the child consumed on b: a fresh flow for the rest, one reader per port) */
        pair(&q, &a, &b);
        /* nobody reads: the write times out and the message is withdrawn */
        CHECK_ERR(ipcf_write(a, "zzz", 3, 30), -ETIMEDOUT);
        char buf[8];
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), 0), -EAGAIN);
        CHECK_ERR(ipcf_write(a, "zzz", 3, 0), -EAGAIN);
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), 0), -EAGAIN);
}

/* Issue 16, item 1: a rendezvous that timed out (or had no reader at once)
 * must leave the flow usable: the withdrawn message no longer counts. */
static void rendezvous_reader(void *arg) {
        int b = *(int *)arg;
        char buf[64];
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 5000), 3);
}

TEST(zero_capacity_survives_a_timed_out_write) {
        ipcf_qos q = qos_default();
        q.capacity = IPCF_CAPACITY_ZERO;
        for (int timeout = 0; timeout <= 200; timeout += 200) {
                int a, b;
                pair(&q, &a, &b);
                CHECK_ERR(ipcf_write(a, "zzz", 3, timeout), timeout ? -ETIMEDOUT : -EAGAIN);
                CHECK_ERR(ipcf_write(a, "zzz", 3, timeout), timeout ? -ETIMEDOUT : -EAGAIN);
                pid_t r = test_fork(rendezvous_reader, &b);
                for (int i = 0; i < 3; i++)
                        CHECK_EQ(ipcf_write(a, "abc", 3, 5000), 3);
                CHECK_EQ(test_wait(r, 5000), 0);
                ipcf_port_stats st;
                CHECK_OK(ipcf_stats(a, &st));
                CHECK_EQ(st.msgs_out, 3); /* withdrawn messages were never written */
        }
}

TEST(unbounded_never_waits_until_its_limit) {
        int a, b;
        ipcf_qos q = qos_default();
        q.capacity = IPCF_CAPACITY_UNBOUNDED;
        q.max_bytes = 8 << 20;
        q.max_msg_size = 64 << 10;
        pair(&q, &a, &b);
        static char buf[64 << 10];
        unsigned n = 0;
        ssize_t r;
        while ((r = ipcf_write(a, buf, sizeof(buf), -1)) == (ssize_t)sizeof(buf))
                n++;
        CHECK_ERR(r, -ENOBUFS);
        CHECK(n >= 100); /* ~8 MiB queued without a reader */
        for (unsigned i = 0; i < n; i++)
                CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), sizeof(buf));
        CHECK_EQ(ipcf_write(a, buf, sizeof(buf), -1), sizeof(buf));
}

/* Read len bytes of a stream from port b, at most piece bytes a call. */
static void read_pieces(int b, uint8_t *in, size_t len, size_t piece) {
        for (size_t got = 0; got < len;) {
                ssize_t n = ipcf_read(b, in + got, len - got < piece ? len - got : piece, 10000);
                CHECK(n > 0);
                got += (size_t)n;
        }
}

TEST(stream_mode_bytes) {
        int a, b;
        ipcf_qos q = qos_default();
        q.mode = IPCF_MODE_STREAM;
        q.max_bytes = 16384;
        q.max_msg_size = 4096;
        pair(&q, &a, &b);
        static uint8_t out[100000], in[100000];
        test_fill(out, sizeof(out), 7);
        pid_t w = fork();
        if (w == 0) {
                CHECK_EQ(ipcf_write(a, out, sizeof(out), 10000), sizeof(out));
                _exit(0);
        }
        read_pieces(b, in, sizeof(in), 777);
        CHECK_MEM(in, out, sizeof(out));
        CHECK_EQ(test_wait(w, 5000), 0);
}

/* A stream read takes every record that fits in one call and publishes its
 * progress once, before it returns: the room is the writer's at once. */
TEST(stream_read_takes_many_records_and_frees_their_room) {
        int a, b;
        ipcf_qos q = qos_default();
        q.mode = IPCF_MODE_STREAM;
        q.max_bytes = 4096;
        q.max_msg_size = 64; /* one record per 64-byte write */
        pair(&q, &a, &b);
        static uint8_t out[16384], in[16384];
        test_fill(out, sizeof(out), 11);
        size_t wrote = 0, got = 0;
        ssize_t w;
        while ((w = ipcf_write(a, out + wrote, 64, 0)) == 64)
                wrote += 64;
        CHECK_EQ(w, -EAGAIN);
        unsigned n = (unsigned)(wrote / 64);
        CHECK(n >= 40); /* 80-byte records in a 4 KiB ring */
        /* One call takes half of them (many records)... */
        CHECK_EQ(ipcf_read(b, in, 64 * (n / 2), 0), (ssize_t)(64 * (n / 2)));
        got = 64 * (n / 2);
        /* ...and their room is free as the call returns: exactly that much. */
        for (unsigned i = 0; i < n / 2; i++, wrote += 64)
                CHECK_EQ(ipcf_write(a, out + wrote, 64, 0), 64);
        CHECK_EQ(ipcf_write(a, out + wrote, 64, 0), -EAGAIN);
        while (got < wrote) {
                ssize_t r = ipcf_read(b, in + got, wrote - got, 0);
                CHECK(r > 0);
                got += (size_t)r;
        }
        CHECK_MEM(in, out, wrote);
        CHECK_EQ(ipcf_read(b, in, sizeof(in), 0), -EAGAIN);

        /* A writer in another process blocked on the full ring, records of 64
         * bytes, a reader taking up to 4000 bytes a call: all of it arrives. */
        static uint8_t big[65536], back[65536];
        test_fill(big, sizeof(big), 12);
        pid_t c = fork();
        if (c == 0) {
                for (size_t off = 0; off < sizeof(big); off += 64)
                        if (ipcf_write(a, big + off, 64, 10000) != 64)
                                _exit(1);
                _exit(0);
        }
        read_pieces(b, back, sizeof(back), 4000);
        CHECK_MEM(back, big, sizeof(big));
        CHECK_EQ(test_wait(c, 5000), 0);
}

/* A writer that finds a big queue full may wait for a batch of room while
 * its reader works through the queue (ring_batches), but never for room the
 * reader is not freeing: one message read, then nothing — the blocked write
 * takes that one message's room at once. */
TEST(full_queue_writer_takes_the_room_one_read_frees) {
        int a, b, fds[2];
        pair(NULL, &a, &b); /* default qos: a 1 MiB queue, batches of 128 KiB */
        CHECK_OK(pipe(fds));
        pid_t c = fork();
        if (c == 0) {
                uint8_t m[64] = { 0 };
                unsigned n = 0;
                while (ipcf_write(a, m, sizeof(m), 0) == (ssize_t)sizeof(m))
                        n++;
                if (write(fds[1], &n, sizeof(n)) != (ssize_t)sizeof(n))
                        _exit(1);
                m[0] = 1;
                _exit(ipcf_write(a, m, sizeof(m), 5000) == (ssize_t)sizeof(m) ? 0 : 2);
        }
        unsigned n;
        CHECK_EQ(read(fds[0], &n, sizeof(n)), (ssize_t)sizeof(n));
        CHECK(n > 10000); /* 80-byte records in 1 MiB */
        uint8_t in[64];
        CHECK_EQ(ipcf_read(b, in, sizeof(in), 0), 64);
        CHECK_EQ(test_wait(c, 2000), 0); /* well before its 5 s timeout */
        for (unsigned i = 1; i < n; i++)
                CHECK_EQ(ipcf_read(b, in, sizeof(in), 0), 64);
        CHECK_EQ(ipcf_read(b, in, sizeof(in), 0), 64);
        CHECK_EQ(in[0], 1); /* the blocked write, last */
        CHECK_EQ(ipcf_read(b, in, sizeof(in), 0), -EAGAIN);
        close(fds[0]);
        close(fds[1]);
}

TEST(dealloc_drains_then_reason) {
        int a, b;
        pair(NULL, &a, &b);
        for (int i = 0; i < 3; i++)
                CHECK_EQ(ipcf_write(a, &i, sizeof(i), 0), sizeof(i));
        CHECK_OK(ipcf_dealloc(a, "bye now"));
        CHECK_ERR(ipcf_write(a, "x", 1, 0), -EBADF);
        for (int i = 0; i < 3; i++) {
                int v;
                CHECK_EQ(ipcf_read(b, &v, sizeof(v), 0), sizeof(v));
                CHECK_EQ(v, i);
        }
        char buf[4];
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), -1), -EPIPE);
        CHECK_ERR(ipcf_write(b, "x", 1, -1), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(b, &why));
        CHECK_EQ(why.code, IPCF_END_DEALLOC);
        CHECK(strcmp(why.text, "bye now") == 0);
        CHECK_OK(ipcf_dealloc(b, NULL));
}

static void die_after_writes(void *arg) {
        int b = *(int *)arg;
        for (int i = 0; i < 10; i++)
                CHECK_EQ(ipcf_write(b, &i, sizeof(i), 1000), sizeof(i));
        raise(SIGKILL);
}

TEST(peer_death_seen_at_once) {
        int a, b;
        pair(NULL, &a, &b);
        pid_t c = test_fork(die_after_writes, &b);
        CHECK_OK(flowpair_watch(a, c));
        for (int i = 0; i < 10; i++) {
                int v;
                CHECK_EQ(ipcf_read(a, &v, sizeof(v), 5000), sizeof(v));
                CHECK_EQ(v, i);
        }
        uint64_t t0 = test_now_ms();
        char buf[8];
        CHECK_ERR(ipcf_read(a, buf, sizeof(buf), -1), -ECONNRESET);
        CHECK(test_now_ms() - t0 < 1000);
        CHECK_ERR(ipcf_write(a, "x", 1, -1), -ECONNRESET);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(a, &why));
        CHECK_EQ(why.code, IPCF_END_PEER_DIED);
        test_wait(c, 1000);
}

struct scribble {
        int port;
        size_t skip; /* leave this many bytes at the start alone */
};

static void scribbler(void *arg) {
        struct scribble *s = arg;
        size_t size;
        uint8_t *mem = flowpair_mem(s->port, &size);
        /* Garbage, over and over, while the other side works. */
        for (int round = 0; round < 200; round++) {
                test_fill(mem + s->skip, size - s->skip, (uint64_t)round + 1);
                usleep(500);
        }
}

/* Run reads and writes against a scribbling peer; every outcome must be a
 * documented one. Returns how many calls failed with -EPROTO. */
static int survive_scribbler(size_t skip) {
        int a, b;
        ipcf_qos q = qos_default();
        q.max_bytes = 64 << 10;
        q.max_msg_size = 4096;
        pair(&q, &a, &b);
        struct scribble s = { b, skip };
        pid_t c = test_fork(scribbler, &s);
        static char buf[8192];
        int protos = 0;
        uint64_t t0 = test_now_ms();
        while (test_now_ms() - t0 < 300) {
                ssize_t r = ipcf_read(a, buf, sizeof(buf), 1);
                ssize_t w = ipcf_write(a, buf, 4000, 1);
                CHECK(r >= 0 || r == -EAGAIN || r == -ETIMEDOUT || r == -EPROTO ||
                      r == -EPIPE || r == -ECONNRESET);
                CHECK(w >= 0 || w == -EAGAIN || w == -ETIMEDOUT || w == -EPROTO ||
                      w == -EPIPE || w == -ECONNRESET);
                protos += r == -EPROTO || w == -EPROTO;
        }
        CHECK_EQ(test_wait(c, 5000), 0);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(a, &why));
        CHECK_OK(ipcf_dealloc(a, "bad peer"));
        return protos;
}

TEST_TIMEOUT(hostile_peer_breaks_only_its_flow, 60) {
        /* Garbage in the rings' indexes and records: refused as a protocol error. */
        CHECK(survive_scribbler(4096) > 0);
        /* Garbage everywhere, end records included: the flow may look ended;
         * either way this process is unharmed. */
        survive_scribbler(0);
}

TEST(poll_fd_is_exact_level_triggered) {
        int a, b;
        pair(NULL, &a, &b);
        int fd = ipcf_fd(b);
        CHECK(fd >= 0);
        CHECK(!test_readable(fd));
        CHECK_EQ(ipcf_write(a, "1", 1, 0), 1);
        CHECK(test_readable(fd));
        CHECK(test_readable(fd)); /* level: stays readable until read */
        CHECK_EQ(ipcf_write(a, "2", 1, 0), 1);
        char buf[4];
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 1);
        CHECK(test_readable(fd));
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 1);
        CHECK(!test_readable(fd));
        /* a blocking read meanwhile must not break it */
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), 5), -ETIMEDOUT);
        CHECK(!test_readable(fd));
        CHECK_EQ(ipcf_write(a, "3", 1, 0), 1);
        CHECK(test_readable(fd));
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 1);
        CHECK(!test_readable(fd));
        /* send side: readable while there is room */
        ipcf_qos q = qos_default();
        int c, d;
        q.max_msgs = 1;
        pair(&q, &c, &d);
        int sfd = ipcf_fd_send(c);
        CHECK(test_readable(sfd));
        CHECK_EQ(ipcf_write(c, "x", 1, 0), 1);
        CHECK(!test_readable(sfd));
        CHECK_EQ(ipcf_read(d, buf, sizeof(buf), 0), 1);
        CHECK(test_readable(sfd));
        /* the end of the flow makes a read not block: readable */
        CHECK_OK(ipcf_dealloc(a, "end"));
        CHECK(test_readable(fd));
        CHECK_ERR(ipcf_read(b, buf, sizeof(buf), 0), -EPIPE);
        CHECK(test_readable(fd));
}

TEST(zero_copy_reserve_commit_peek_release) {
        int a, b;
        pair(NULL, &a, &b);
        void *w;
        CHECK_OK(ipcf_reserve(a, 1000, 0, &w));
        test_fill(w, 600, 3);
        CHECK_OK(ipcf_commit(a, 600));
        CHECK_ERR(ipcf_commit(a, 1), -EINVAL);
        const void *r;
        CHECK_EQ(ipcf_peek(b, 0, &r), 600);
        static uint8_t want[600];
        test_fill(want, 600, 3);
        CHECK_MEM(r, want, 600);
        CHECK_OK(ipcf_release(b));
        CHECK_ERR(ipcf_release(b), -EINVAL);
        CHECK_ERR(ipcf_peek(b, 0, &r), -EAGAIN);
}

struct thr {
        int port, id;
};

static void *thread_writer(void *arg) {
        struct thr *t = arg;
        for (int i = 0; i < 50000; i++) {
                int msg[2] = { t->id, i };
                if (ipcf_write(t->port, msg, sizeof(msg), 10000) != sizeof(msg))
                        return (void *)1;
        }
        return NULL;
}

TEST(concurrent_writers_are_serialised) {
        int a, b;
        pair(NULL, &a, &b);
        pthread_t th[2];
        struct thr t[2] = { { a, 0 }, { a, 1 } };
        for (int i = 0; i < 2; i++)
                pthread_create(&th[i], NULL, thread_writer, &t[i]);
        int next[2] = { 0, 0 };
        for (int n = 0; n < 100000; n++) {
                int msg[2];
                CHECK_EQ(ipcf_read(b, msg, sizeof(msg), 10000), sizeof(msg));
                CHECK(msg[0] == 0 || msg[0] == 1);
                CHECK_EQ(msg[1], next[msg[0]]);
                next[msg[0]]++;
        }
        for (int i = 0; i < 2; i++) {
                void *ret;
                pthread_join(th[i], &ret);
                CHECK(ret == NULL);
        }
}

static void read_two(void *arg) {
        int b = *(int *)arg;
        int v;
        for (int i = 0; i < 2; i++) {
                CHECK_EQ(ipcf_read(b, &v, sizeof(v), 5000), sizeof(v));
                CHECK_EQ(v, i);
        }
        CHECK_EQ(ipcf_write(b, &v, sizeof(v), 5000), sizeof(v));
}

TEST(port_handed_to_a_child_and_back) {
        int a, b;
        pair(NULL, &a, &b);
        for (int i = 0; i < 4; i++)
                CHECK_EQ(ipcf_write(a, &i, sizeof(i), 0), sizeof(i));
        /* the child reads two and writes one; then the parent carries on */
        pid_t c = test_fork(read_two, &b);
        CHECK_EQ(test_wait(c, 5000), 0);
        int v;
        for (int i = 2; i < 4; i++) {
                CHECK_EQ(ipcf_read(b, &v, sizeof(v), 0), sizeof(v));
                CHECK_EQ(v, i);
        }
        CHECK_ERR(ipcf_read(b, &v, sizeof(v), 0), -EAGAIN);
        CHECK_EQ(ipcf_read(a, &v, sizeof(v), 0), sizeof(v)); /* the child's message */
        CHECK_EQ(ipcf_write(b, &v, sizeof(v), 0), sizeof(v)); /* the parent writes after it */
        CHECK_EQ(ipcf_read(a, &v, sizeof(v), 0), sizeof(v));
        CHECK_ERR(ipcf_read(a, &v, sizeof(v), 0), -EAGAIN);
}

TEST(cache_keeps_empty_and_one_byte_messages) {
        int a, b;
        ipcf_qos q = qos_default();
        q.full = IPCF_FULL_CACHE;
        q.cache_msgs = 2;
        q.max_msgs = 1;
        pair(&q, &a, &b);
        CHECK_EQ(ipcf_write(a, "q", 1, 0), 1);   /* queued */
        CHECK_EQ(ipcf_write(a, "", 0, 0), 0);    /* cached, empty */
        CHECK_EQ(ipcf_write(a, "z", 1, 0), 1);   /* cached, one byte */
        CHECK_ERR(ipcf_write(a, "x", 1, 0), -EAGAIN);
        char buf[4];
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 1);
        CHECK_EQ(ipcf_flush(a, 0), 1); /* room for one: the empty one moves */
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 0);
        CHECK_EQ(ipcf_flush(a, 0), 0);
        CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), 1);
        CHECK_EQ(buf[0], 'z');
}

struct idle_args {
        int port;
        int timeout_ms;
        bool peer_waits;
        _Atomic int *cpu_ms; /* shared: the read's CPU time */
};

static uint64_t process_cpu_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Waits a->timeout_ms on an idle flow; with peer_waits, only once the peer
 * sleeps in its read (its run slot says blocked: a peer merely preempted on a
 * loaded machine is running, and spinning for it is right), and then ends
 * the peer's read with a byte. */
static void idle_reader(void *arg) {
        struct idle_args *a = arg;
        char buf[8];
        if (a->peer_waits) {
                port *p = handle_get_port(a->port);
                CHECK(p);
                uint64_t t0 = test_now_ms();
                while (!atomic_load(&p->peer_run->blocked)) {
                        CHECK(test_now_ms() - t0 < 20000);
                        usleep(1000);
                }
                handle_put(p);
        }
        uint64_t c0 = process_cpu_ms();
        CHECK_ERR(ipcf_read(a->port, buf, sizeof(buf), a->timeout_ms), -ETIMEDOUT);
        atomic_store(a->cpu_ms, (int)(process_cpu_ms() - c0));
        if (a->peer_waits)
                CHECK_EQ(ipcf_write(a->port, "!", 1, 5000), 1);
}

/* CPU time (ms) of a child's wait on an idle flow; the parent, its peer,
 * meanwhile sleeps in a read of its own if peer_waits. */
static unsigned idle_cpu_ms(const ipcf_qos *q, bool peer_waits) {
        int a, b;
        pair(q, &a, &b);
        struct idle_args ia = { b, 300, peer_waits, shared_word() };
        pid_t c = test_fork(idle_reader, &ia);
        if (peer_waits) {
                char buf[8];
                CHECK_EQ(ipcf_read(a, buf, sizeof(buf), 30000), 1); /* the child's byte */
        }
        CHECK_EQ(test_wait(c, 30000), 0);
        return (unsigned)atomic_load(ia.cpu_ms);
}

TEST(idle_flow_uses_no_cpu) {
        ipcf_qos q = qos_default();
        unsigned ms = idle_cpu_ms(&q, false);
        printf("     a reader waiting 300 ms on an idle flow used %u ms of CPU\n", ms);
        CHECK(ms < 30);
        /* A huge spin budget changes nothing while the peer sleeps in a wait. */
        q.spin_us = 100000;
        ms = idle_cpu_ms(&q, true);
        printf("     ... with a 100 ms spin budget, the peer asleep: %u ms\n", ms);
        CHECK(ms < 30);
}

/* Both sides read an idle flow at once, each with a 100 ms spin budget:
 * neither has work from the other, so each shows it waits before it spins
 * (wait.c: a wait with no answer due announces at once) and neither spins
 * at the other. One may still spin while the other has not started its read
 * (a loaded machine can keep a process from running for longer than 30 ms:
 * it is "running" then, and spinning for it is right), never both: a build
 * whose waits never announce made both spin their whole budget (82 and 94
 * ms of CPU in one round). */
TEST(two_sides_reading_an_idle_flow_do_not_spin_at_each_other) {
        ipcf_qos q = qos_default();
        q.spin_us = 100000;
        int a, b, both_spun = 0;
        pair(&q, &a, &b);
        for (int round = 0; round < 5; round++) {
                struct idle_args ia = { a, 300, false, shared_word() };
                struct idle_args ib = { b, 300, false, shared_word() };
                pid_t ca = test_fork(idle_reader, &ia), cb = test_fork(idle_reader, &ib);
                CHECK_EQ(test_wait(ca, 30000), 0);
                CHECK_EQ(test_wait(cb, 30000), 0);
                int ma = atomic_load(ia.cpu_ms), mb = atomic_load(ib.cpu_ms);
                printf("     round %d: the two readers used %d and %d ms of CPU in 300 ms\n", round,
                       ma, mb);
                both_spun += ma >= 30 && mb >= 30;
        }
        CHECK_EQ(both_spun, 0);
}

/* Resident pages of [mem, mem + size) (page-aligned). */
static size_t resident_mib(void *mem, size_t size) {
        size_t pages = size / 4096, n = 0;
        unsigned char *v = malloc(pages);
        CHECK(v != NULL);
        CHECK(mincore(mem, size, v) == 0);
        for (size_t i = 0; i < pages; i++)
                n += v[i] & 1;
        free(v);
        return n * 4096 >> 20;
}

TEST(unbounded_queue_gives_memory_back) {
        int a, b;
        ipcf_qos q = qos_default();
        q.capacity = IPCF_CAPACITY_UNBOUNDED;
        q.max_bytes = 64 << 20;
        q.max_msg_size = 64 << 10;
        pair(&q, &a, &b);
        size_t size;
        void *mem = flowpair_mem(a, &size);
        static char buf[64 << 10];
        /* A 48 MiB backlog: the queue grows in memory ... */
        for (int i = 0; i < 768; i++)
                CHECK_EQ(ipcf_write(a, buf, sizeof(buf), 0), sizeof(buf));
        size_t grown = resident_mib(mem, size);
        CHECK(grown >= 48);
        /* ... the reader drains it, the writer goes on a little ... */
        for (int i = 0; i < 768; i++)
                CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), sizeof(buf));
        for (int i = 0; i < 64; i++) {
                CHECK_EQ(ipcf_write(a, buf, sizeof(buf), 0), sizeof(buf));
                CHECK_EQ(ipcf_read(b, buf, sizeof(buf), 0), sizeof(buf));
        }
        /* ... and the memory of the empty queue is given back. */
        size_t after = resident_mib(mem, size);
        printf("     resident: %zu MiB with a 48 MiB backlog, %zu MiB after it drained\n", grown,
               after);
        CHECK(after <= 16);
}
