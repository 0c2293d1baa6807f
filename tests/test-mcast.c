/*
 * test-mcast.c — multicast groups against the real daemon: every other
 * member gets each message, in order, stamped; a slow member under each
 * policy (BLOCK: nothing lost, the sender blocks; DROP: that member only
 * loses, and is told how many; REMOVE: it is removed, "too slow"); a member
 * killed; timeouts; destroy.
 */
#include <signal.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

/* Small rings: 4 KiB per direction, 8-byte payloads (64-byte records). */
static int join_small(const char *name, uint64_t ring) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_bytes = ring;
        return ipcf_mcast_join(name, &q, 2000);
}

static void create_small(const char *name, uint32_t slow) {
        ipcf_mcast_opts o = { .size = sizeof(o), .slow = slow, .max_msgs = 16, .max_msg_size = 8 };
        CHECK_OK(ipcf_mcast_create(name, &o));
}

TEST(every_other_member_gets_each_message_in_order) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mcast_create("grp.a", NULL));
        CHECK_ERR(ipcf_mcast_create("grp.a", NULL), -EEXIST);
        CHECK_ERR(ipcf_mbox_create("grp.a", NULL), -EEXIST);
        CHECK_ERR(ipcf_mcast_join("grp.none", NULL, 1000), -ENOENT);
        int a = CHECK_OK(ipcf_mcast_join("grp.a", NULL, 2000));
        int b = CHECK_OK(ipcf_mcast_join("grp.a", NULL, 2000));
        int c = CHECK_OK(ipcf_mcast_join("grp.a", NULL, 2000));
        for (int i = 0; i < 100; i++)
                CHECK_EQ(ipcf_mcast_send(a, &i, sizeof(i), 1000), sizeof(i));
        CHECK_EQ(ipcf_mcast_send(b, "from-b", 6, 1000), 6);
        /* b gets a's 100 in order; c gets those and b's message, in order per
         * sender (the two senders' messages may interleave). */
        int v;
        ipcf_peer_info from;
        for (int i = 0; i < 100; i++) {
                CHECK_EQ(ipcf_mcast_recv(b, &v, sizeof(v), 1000, &from), sizeof(v));
                CHECK_EQ(v, i);
                CHECK_EQ(from.pid, getpid());
        }
        char buf[16];
        int next = 0, other = 0;
        for (int i = 0; i < 101; i++) {
                ssize_t n = ipcf_mcast_recv(c, buf, sizeof(buf), 1000, NULL);
                if (n == 6) {
                        CHECK_MEM(buf, "from-b", 6);
                        other++;
                        continue;
                }
                CHECK_EQ(n, sizeof(v));
                memcpy(&v, buf, sizeof(v));
                CHECK_EQ(v, next);
                next++;
        }
        CHECK_EQ(next, 100);
        CHECK_EQ(other, 1);
        CHECK_EQ(ipcf_mcast_recv(a, buf, sizeof(buf), 1000, NULL), 6);
        CHECK_MEM(buf, "from-b", 6);
        /* Nobody gets its own. */
        CHECK_ERR(ipcf_mcast_recv(b, buf, sizeof(buf), 0, NULL), -EAGAIN);
        CHECK_ERR(ipcf_mcast_recv(a, buf, sizeof(buf), 50, NULL), -ETIMEDOUT);
        CHECK_EQ(ipcf_mcast_lost(a), 0);
        /* Leave: the others go on. */
        CHECK_OK(ipcf_dealloc(c, "left the group"));
        CHECK_EQ(ipcf_mcast_send(a, "x", 1, 1000), 1);
        CHECK_EQ(ipcf_mcast_recv(b, buf, sizeof(buf), 1000, NULL), 1);
        /* Destroy ends every member with a reason. */
        CHECK_OK(ipcf_mcast_destroy("grp.a"));
        CHECK_ERR(ipcf_mcast_recv(b, buf, sizeof(buf), 1000, NULL), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(b, &why));
        CHECK(strcmp(why.text, "group destroyed") == 0);
        CHECK_ERR(ipcf_mcast_send(a, "x", 1, 1000), -EPIPE);
        CHECK_ERR(ipcf_mcast_destroy("grp.a"), -ENOENT);
        test_daemon_stop(&d);
}

TEST(slow_member_block_policy_blocks_the_sender_and_loses_nothing) {
        test_daemon_start(&d, NULL, NULL);
        create_small("grp.block", IPCF_MCAST_BLOCK);
        int a = CHECK_OK(join_small("grp.block", 4096));
        int fast = CHECK_OK(join_small("grp.block", 1 << 20));
        int slow = CHECK_OK(join_small("grp.block", 4096));
        uint64_t sent = 0;
        ssize_t r;
        while ((r = ipcf_mcast_send(a, &sent, sizeof(sent), 200)) == sizeof(sent))
                sent++;
        CHECK_ERR(r, -ETIMEDOUT);
        /* The slow member's ring (64) + the group's FIFO (16) + the sender's ring (64). */
        CHECK(sent >= 64 && sent <= 64 + 16 + 64 + 2);
        /* Now the slow one reads: everything, in order; the sender can go on. */
        uint64_t v;
        for (uint64_t i = 0; i < sent; i++) {
                CHECK_EQ(ipcf_mcast_recv(slow, &v, sizeof(v), 2000, NULL), sizeof(v));
                CHECK_EQ(v, i);
        }
        for (uint64_t i = 0; i < sent; i++) {
                CHECK_EQ(ipcf_mcast_recv(fast, &v, sizeof(v), 2000, NULL), sizeof(v));
                CHECK_EQ(v, i);
        }
        CHECK_EQ(ipcf_mcast_lost(slow), 0);
        CHECK_EQ(ipcf_mcast_send(a, &sent, sizeof(sent), 1000), sizeof(sent));
        CHECK_EQ(ipcf_mcast_recv(slow, &v, sizeof(v), 2000, NULL), sizeof(v));
        CHECK_EQ(v, sent);
        test_daemon_stop(&d);
}

TEST(slow_member_drop_policy_loses_only_its_own_and_is_told) {
        test_daemon_start(&d, NULL, NULL);
        create_small("grp.drop", IPCF_MCAST_DROP);
        int a = CHECK_OK(join_small("grp.drop", 1 << 20));
        int fast = CHECK_OK(join_small("grp.drop", 1 << 20));
        int slow = CHECK_OK(join_small("grp.drop", 4096));
        const uint64_t N = 1000;
        for (uint64_t i = 0; i < N; i++)
                CHECK_EQ(ipcf_mcast_send(a, &i, sizeof(i), 2000), sizeof(i));
        /* The fast member (a big ring) gets all of them. */
        uint64_t v;
        for (uint64_t i = 0; i < N; i++) {
                CHECK_EQ(ipcf_mcast_recv(fast, &v, sizeof(v), 2000, NULL), sizeof(v));
                CHECK_EQ(v, i);
        }
        CHECK_EQ(ipcf_mcast_lost(fast), 0);
        /* The slow one: what fitted, in order, and the count of the rest,
         * until they add up to N (20 s at most): the count comes as its
         * ring has room, from a daemon that may be held off the CPU. */
        uint64_t got = 0, last = 0, t0 = test_now_ms();
        while (got + (uint64_t)ipcf_mcast_lost(slow) < N) {
                ssize_t n = ipcf_mcast_recv(slow, &v, sizeof(v), 100, NULL);
                if (n == -ETIMEDOUT) {
                        CHECK(test_now_ms() - t0 < 20000);
                        continue;
                }
                CHECK_EQ(n, sizeof(v));
                CHECK(got == 0 || v > last);
                last = v;
                got++;
        }
        int64_t lost = ipcf_mcast_lost(slow);
        CHECK(lost > 0);
        CHECK_EQ(got + (uint64_t)lost, N);
        /* It is a member still: later messages reach it. */
        CHECK_EQ(ipcf_mcast_send(a, &N, sizeof(N), 1000), sizeof(N));
        CHECK_EQ(ipcf_mcast_recv(slow, &v, sizeof(v), 2000, NULL), sizeof(v));
        CHECK_EQ(v, N);
        test_daemon_stop(&d);
}

TEST(slow_member_remove_policy_removes_it_too_slow) {
        test_daemon_start(&d, NULL, NULL);
        create_small("grp.rm", IPCF_MCAST_REMOVE);
        int a = CHECK_OK(join_small("grp.rm", 1 << 20));
        int fast = CHECK_OK(join_small("grp.rm", 1 << 20));
        int slow = CHECK_OK(join_small("grp.rm", 4096));
        const uint64_t N = 1000;
        for (uint64_t i = 0; i < N; i++)
                CHECK_EQ(ipcf_mcast_send(a, &i, sizeof(i), 2000), sizeof(i));
        uint64_t v;
        for (uint64_t i = 0; i < N; i++) {
                CHECK_EQ(ipcf_mcast_recv(fast, &v, sizeof(v), 2000, NULL), sizeof(v));
                CHECK_EQ(v, i);
        }
        /* The slow one reads what it was given (a prefix, in order), then the end. */
        uint64_t got = 0;
        ssize_t r;
        while ((r = ipcf_mcast_recv(slow, &v, sizeof(v), 2000, NULL)) == sizeof(v)) {
                CHECK_EQ(v, got);
                got++;
        }
        CHECK_ERR(r, -EPIPE);
        CHECK(got > 0 && got < N);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(slow, &why));
        CHECK(strcmp(why.text, "too slow") == 0);
        ipcf_model_entry *e;
        size_t n;
        CHECK_OK(ipcf_model_list(&e, &n));
        CHECK_EQ(n, 1);
        CHECK_EQ(e[0].kind, 1);
        CHECK_EQ(e[0].senders, 2);
        ipcf_free(e);
        test_daemon_stop(&d);
}

static void join_and_die(void *arg) {
        int h = CHECK_OK(join_small((const char *)arg, 4096));
        (void)h;
        raise(SIGKILL);
}

TEST(killed_member_does_not_block_the_group) {
        test_daemon_start(&d, NULL, NULL);
        create_small("grp.k", IPCF_MCAST_BLOCK);
        int a = CHECK_OK(join_small("grp.k", 1 << 20));
        int b = CHECK_OK(join_small("grp.k", 1 << 20));
        pid_t c = test_fork(join_and_die, "grp.k");
        CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
        /* Far more than its ring: the dead member must not hold the group. */
        for (uint64_t i = 0; i < 2000; i++) {
                CHECK_EQ(ipcf_mcast_send(a, &i, sizeof(i), 2000), sizeof(i));
                uint64_t v;
                CHECK_EQ(ipcf_mcast_recv(b, &v, sizeof(v), 2000, NULL), sizeof(v));
                CHECK_EQ(v, i);
        }
        test_daemon_stop(&d);
}

/* ---- under load ---------------------------------------------------------------- */

#include <stdatomic.h>
#include <sys/mman.h>

struct gload {
        _Atomic int joined;
        _Atomic uint64_t got[4], lost[4];
        _Atomic int bad;
};
static struct gload *G;
static uint64_t g_n;

/* Member k: read until every message is received or told lost, checking
 * order; the slow member (2) sleeps now and then. */
static void load_member(void *arg) {
        int k = (int)(uintptr_t)arg & 0xff;
        bool slow = (uintptr_t)arg & 0x100;
        int h = CHECK_OK(join_small((uintptr_t)arg & 0x200 ? "grp.drop.load" : "grp.block.load", 1 << 16));
        atomic_fetch_add(&G->joined, 1);
        uint64_t last = UINT64_MAX, got = 0;
        uint64_t deadline = test_now_ms() + 60000;
        /* Until every message is accounted for: received, or told lost. */
        while (got + (uint64_t)ipcf_mcast_lost(h) < g_n && test_now_ms() < deadline) {
                uint64_t v;
                ssize_t n = ipcf_mcast_recv(h, &v, sizeof(v), 100, NULL);
                if (n == -ETIMEDOUT)
                        continue;
                CHECK_EQ(n, sizeof(v));
                if (last != UINT64_MAX && v <= last)
                        atomic_store(&G->bad, 1);
                last = v;
                got++;
                if (slow && got % 1000 == 0)
                        usleep(2000);
        }
        atomic_store(&G->got[k], got);
        atomic_store(&G->lost[k], (uint64_t)ipcf_mcast_lost(h));
}

static void run_group_load(const char *name, uint32_t slow_policy, uint64_t n) {
        G = mmap(NULL, sizeof(*G), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(G != MAP_FAILED);
        g_n = n;
        test_daemon_start(&d, NULL, NULL);
        create_small(name, slow_policy);
        uintptr_t drop = slow_policy == IPCF_MCAST_DROP ? 0x200 : 0;
        pid_t m[3];
        for (int k = 0; k < 3; k++)
                m[k] = test_fork(load_member, (void *)(uintptr_t)(k | (k == 2 ? 0x100 : 0) | drop));
        while (atomic_load(&G->joined) < 3)
                usleep(1000);
        int a = CHECK_OK(join_small(name, 1 << 16));
        for (uint64_t i = 0; i < n; i++)
                CHECK_EQ(ipcf_mcast_send(a, &i, sizeof(i), 10000), sizeof(i));
        for (int k = 0; k < 3; k++)
                CHECK_EQ(test_wait(m[k], 60000), 0);
        CHECK_EQ(atomic_load(&G->bad), 0);
        test_daemon_stop(&d);
}

/* Messages sent under load: 200 k; 50 k with IPCF_TEST_QUICK=1 (the 64 KiB
 * rings still wrap many times). */
static uint64_t load_count(void) { return getenv("IPCF_TEST_QUICK") ? 50000 : 200000; }

TEST_TIMEOUT(block_group_under_load_every_member_gets_all_in_order, 120) {
        run_group_load("grp.block.load", IPCF_MCAST_BLOCK, load_count());
        for (int k = 0; k < 3; k++) {
                CHECK_EQ(atomic_load(&G->got[k]), load_count());
                CHECK_EQ(atomic_load(&G->lost[k]), 0);
        }
}

TEST_TIMEOUT(drop_group_under_load_got_plus_lost_is_all, 120) {
        run_group_load("grp.drop.load", IPCF_MCAST_DROP, load_count());
        for (int k = 0; k < 3; k++) {
                CHECK_EQ(atomic_load(&G->got[k]) + atomic_load(&G->lost[k]), load_count());
        }
}
