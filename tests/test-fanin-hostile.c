/*
 * test-fanin-hostile.c — hostile checks of the many-flows, many-callers and
 * mailbox cut-through work (issue 14), against a real daemon and real
 * processes, each case time-bounded:
 *  - a mailbox: one sender's 64 B, 4095 B, 4 KiB and 64 KiB messages arrive
 *    whole in send order across the FIFO and cut-through paths, every
 *    receipt once, in order; the daemon takes no CPU once traffic stops
 *    (its mailbox spin backs off) — also while a receiver that does not
 *    read blocks two senders; a receiver that holds cut-through records and
 *    never reads stops neither the sender nor the other receiver, and a
 *    sender killed with records held loses nothing; max_bytes with 64 KiB
 *    messages (passed by one message at most, as documented); destroy while
 *    a sender streams (every message read or reported undelivered); a
 *    receiver and then the sender killed mid-stream (nothing lost, none
 *    twice); a stream mailbox's bytes across the cut-through path;
 *  - a readiness set: a port taken out during a sleeping wait is then an
 *    ordinary port (a blocking read and ipcf_fd see its next message), a
 *    port deallocated during a wait leaves it, a peer that ends while armed
 *    is reported, and 1,200 flows all ready at once while the set sleeps
 *    are each reported, round after round, then their ends; a blocking
 *    reader beside the set on one port (sleep-only flow) loses nothing;
 *  - a service: four worker threads, twenty callers, a greedy caller with
 *    sixteen threads and three callers killed mid-call: every caller's
 *    calls answered; a service killed holding requests fails its callers
 *    at once.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/util.h"
#include "ipcf.h"
#include "support/flowpair.h"
#include "support/test.h"

static test_daemon d;
struct shared { _Atomic int ready, go, got, bad; };
static struct shared *SH;
static void shared_new(void) {
        SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(SH != MAP_FAILED);
        memset(SH, 0, sizeof(*SH));
}
static void wait_flag(_Atomic int *f, int v) {
        uint64_t t0 = test_now_ms();
        while (atomic_load(f) < v) { CHECK(test_now_ms() - t0 < 40000); usleep(2000); }
}
static void wait_receivers(const char *name, uint32_t want) {
        for (int i = 0; i < 2000; i++) {
                ipcf_model_entry *e; size_t n;
                CHECK_OK(ipcf_model_list(&e, &n));
                bool ok = false;
                for (size_t k = 0; k < n; k++) ok |= strcmp(e[k].name, name) == 0 && e[k].receivers == want;
                ipcf_free(e);
                if (ok) return;
                usleep(10000);
        }
        CHECK(0);
}
static void fill(uint8_t *b, size_t len, uint32_t seq) {
        memcpy(b, &seq, 4);
        for (size_t i = 4; i < len; i++) b[i] = (uint8_t)(seq * 131 + i);
}
static bool whole(const uint8_t *b, size_t len, uint32_t seq) {
        uint32_t s; memcpy(&s, b, 4);
        if (s != seq) return false;
        for (size_t i = 4; i < len; i++) if (b[i] != (uint8_t)(seq * 131 + i)) return false;
        return true;
}
static uint64_t cpu_ticks(pid_t pid) {
        char p[64], buf[1024];
        snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(p, "r"); CHECK(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f); fclose(f); buf[n] = 0;
        char *q = strrchr(buf, ')'); CHECK(q);
        unsigned long ut, st;
        CHECK(sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2);
        return ut + st;
}

#define N 3000
static size_t len_of(uint32_t k) { return k % 4 == 0 ? 65536 : k % 4 == 1 ? 64 : k % 4 == 2 ? 4096 : 4095; }

static void receiver(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 5000));
        atomic_store(&SH->ready, 1);
        static uint8_t b[65536];
        for (uint32_t k = 0; k < N; k++) {
                ssize_t r = ipcf_mbox_recv(rx, b, sizeof b, 20000, NULL);
                if (r != (ssize_t)len_of(k) || !whole(b, (size_t)r, k)) {
                        fprintf(stderr, "k=%u r=%zd seq=%u\n", k, r, *(uint32_t *)b);
                        atomic_store(&SH->bad, 1);
                        exit(3);
                }
                if (k % 700 < 20) usleep(300);
        }
        atomic_store(&SH->got, N);
        wait_flag(&SH->go, 1);
}

TEST_TIMEOUT(one_sender_mixed_sizes_order_receipts_and_idle_cpu, 120) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 16, .max_bytes = 128 * 1024 };
        CHECK_OK(ipcf_mbox_create("box.m", &o));
        pid_t r = test_fork(receiver, "box.m");
        wait_flag(&SH->ready, 1);
        wait_receivers("box.m", 1);
        int tx = CHECK_OK(ipcf_mbox_open("box.m", IPCF_MBOX_SEND, NULL, 5000));
        static uint8_t b[65536];
        for (uint32_t k = 0; k < N; k++) {
                fill(b, len_of(k), k);
                uint64_t seq;
                CHECK_EQ(ipcf_mbox_send_async(tx, b, len_of(k), 20000, &seq), (ssize_t)len_of(k));
                CHECK_EQ(seq, (uint64_t)k + 1);
        }
        wait_flag(&SH->got, N);
        /* receipts: every one, once, in order (at most 1024 kept) */
        uint64_t last = 0; int nr = 0;
        ipcf_receipt rc;
        int e;
        while ((e = ipcf_mbox_receipt(tx, 2000, &rc)) == 0) {
                CHECK(rc.seq > last);
                CHECK_EQ(rc.receiver, r);
                last = rc.seq; nr++;
        }
        CHECK_EQ(last, (uint64_t)N);
        uint64_t c0 = cpu_ticks(d.pid);
        usleep(2000000);
        uint64_t c1 = cpu_ticks(d.pid);
        CHECK(c1 - c0 <= 10);
        CHECK_EQ(ipcf_mbox_undelivered(tx), 0);
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 20000), 0);
        /* idle with a sender and no receivers after traffic */
        c0 = cpu_ticks(d.pid);
        usleep(2000000);
        c1 = cpu_ticks(d.pid);
        CHECK(c1 - c0 <= 10);
        test_daemon_stop(&d);
}

struct shared2 { _Atomic int seen[4000]; _Atomic int stalled_ready, total; };
static struct shared2 *S2;
static void r_stall(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 5000));
        (void)rx;
        atomic_store(&S2->stalled_ready, 1);
        for (;;) pause();
}
#define M2 1500
static void r_read(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 5000));
        atomic_store(&SH->ready, 1);
        static uint8_t b[65536];
        for (;;) {
                ssize_t r = ipcf_mbox_recv(rx, b, sizeof b, 15000, NULL);
                if (r < 0) { fprintf(stderr, "r_read: %zd after %d\n", r, atomic_load(&S2->total)); exit(r == -ETIMEDOUT ? 4 : 5); }
                uint32_t k; memcpy(&k, b, 4);
                CHECK(k < M2);
                CHECK(whole(b, (size_t)r, k));
                CHECK_EQ(atomic_fetch_add(&S2->seen[k], 1), 0);
                if (atomic_fetch_add(&S2->total, 1) + 1 == M2) return;
        }
}
static void s_send(void *arg) {
        int tx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_SEND, NULL, 5000));
        static uint8_t b[65536];
        for (uint32_t k = 0; k < M2; k++) {
                size_t len = k % 5 ? 65536 : 100;
                fill(b, len, k);
                ssize_t e = ipcf_mbox_send(tx, b, len, 20000, NULL);
                if (e != (ssize_t)len) { fprintf(stderr, "send %u: %zd\n", k, e); exit(6); }
        }
        atomic_store(&SH->go, 1);
        for (;;) pause();
}
TEST_TIMEOUT(a_stalled_receiver_holding_cut_through_does_not_stop_the_other, 120) {
        shared_new();
        S2 = mmap(NULL, sizeof(*S2), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        memset(S2, 0, sizeof *S2);
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.t", NULL));
        pid_t rs = test_fork(r_stall, "box.t");
        wait_flag(&S2->stalled_ready, 1);
        wait_receivers("box.t", 1);
        pid_t rr = test_fork(r_read, "box.t");
        wait_flag(&SH->ready, 1);
        wait_receivers("box.t", 2);
        pid_t s = test_fork(s_send, "box.t");
        uint64_t t0 = test_now_ms();
        while (!atomic_load(&SH->go) && test_now_ms() - t0 < 60000) usleep(10000);
        CHECK(atomic_load(&SH->go));
        /* the sender is killed now (its held records must be copied in) */
        kill(s, SIGKILL);
        CHECK_EQ(test_wait(s, 10000), 128 + SIGKILL);
        usleep(200000);
        kill(rs, SIGKILL);
        CHECK_EQ(test_wait(rs, 10000), 128 + SIGKILL);
        CHECK_EQ(test_wait(rr, 30000), 0);
        CHECK_EQ(atomic_load(&S2->total), M2);
        test_daemon_stop(&d);
}

struct wa { int set; int result; ipcf_set_event ev[8]; int timeout; };
static void *waiter(void *arg) {
        struct wa *w = arg;
        w->result = ipcf_set_wait(w->set, w->ev, 8, w->timeout);
        return NULL;
}
struct wr { int port; int delay_ms; };
static void *late_writer(void *arg) {
        struct wr *w = arg;
        usleep((useconds_t)w->delay_ms * 1000);
        CHECK_EQ(ipcf_write(w->port, "y", 1, 1000), 1);
        return NULL;
}
TEST(del_during_a_wait_then_block_on_the_port) {
        int a0, a1, b0, b1;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a0, &a1));
        CHECK_OK(flowpair_make(NULL, 0, 0, &b0, &b1));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, a1, 1));
        CHECK_OK(ipcf_set_add(set, b1, 2));
        struct wa w = { .set = set, .timeout = 3000 };
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, waiter, &w), 0);
        usleep(100000); /* armed and asleep */
        CHECK_OK(ipcf_set_del(set, a1));
        /* a blocking read on the port taken out: the writer comes later */
        pthread_t tw;
        struct wr wr = { a0, 100 };
        CHECK_EQ(pthread_create(&tw, NULL, late_writer, &wr), 0);
        char c;
        uint64_t t0 = test_now_ms();
        CHECK_EQ(ipcf_read(a1, &c, 1, 20000), 1); /* a lost wake-up: -ETIMEDOUT */
        (void)t0;
        pthread_join(tw, NULL);
        /* the waiter must not report a1 (taken out) */
        pthread_join(t, NULL);
        for (int i = 0; i < w.result; i++) CHECK(w.ev[i].port != a1);
        /* ipcf_fd on it now, and readiness by poll */
        int fd = CHECK_OK(ipcf_fd(a1));
        CHECK_EQ(ipcf_write(a0, "z", 1, 1000), 1);
        struct pollfd pf = { fd, POLLIN, 0 };
        CHECK_EQ(poll(&pf, 1, 2000), 1);
        CHECK_EQ(ipcf_read(a1, &c, 1, 0), 1);
        /* b still reported */
        CHECK_EQ(pthread_create(&t, NULL, waiter, &w), 0);
        usleep(100000);
        CHECK_EQ(ipcf_write(b0, "q", 1, 1000), 1);
        pthread_join(t, NULL);
        CHECK_EQ(w.result, 1);
        CHECK_EQ(w.ev[0].port, b1);
        CHECK_EQ(w.ev[0].data, 2);
        ipcf_dealloc(set, NULL);
}

TEST(dealloc_during_a_wait_and_a_reused_handle) {
        int a0, a1, b0, b1;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a0, &a1));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, a1, 1));
        struct wa w = { .set = set, .timeout = 1500 };
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, waiter, &w), 0);
        usleep(100000);
        CHECK_OK(ipcf_dealloc(a1, NULL));
        CHECK_OK(flowpair_make(NULL, 0, 0, &b0, &b1));
        CHECK_OK(ipcf_set_add(set, b1, 7));
        CHECK_EQ(ipcf_write(b0, "q", 1, 1000), 1);
        pthread_join(t, NULL);
        CHECK_EQ(w.result, 1);
        CHECK_EQ(w.ev[0].port, b1);
        CHECK_EQ(w.ev[0].data, 7);
        char c;
        CHECK_EQ(ipcf_read(b1, &c, 1, 0), 1);
        /* the peer of the dead a1 ends */
        CHECK_EQ(ipcf_read(a0, &c, 1, 2000), -EPIPE);
        /* a peer that ends while armed: reported, read says so */
        CHECK_EQ(pthread_create(&t, NULL, waiter, &w), 0);
        usleep(100000);
        ipcf_dealloc(b0, "bye");
        pthread_join(t, NULL);
        CHECK_EQ(w.result, 1);
        CHECK_EQ(w.ev[0].port, b1);
        ssize_t r = ipcf_read(b1, &c, 1, 0);
        CHECK(r == -EPIPE);
        ipcf_dealloc(b1, NULL);
        /* and it left: nothing reported */
        CHECK_ERR(ipcf_set_wait(set, w.ev, 8, 200), -ETIMEDOUT);
        ipcf_dealloc(set, NULL);
}

TEST(a_reused_port_id_added_before_the_next_wait) {
        int a0, a1, b0, b1;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a0, &a1));
        int set = CHECK_OK(ipcf_set_new(NULL));
        CHECK_OK(ipcf_set_add(set, a1, 1));
        CHECK_OK(ipcf_dealloc(a1, NULL));
        CHECK_OK(ipcf_dealloc(a0, NULL));
        CHECK_OK(flowpair_make(NULL, 0, 0, &b0, &b1));
        int x = b0 == a1 ? b0 : b1, y = x == b0 ? b1 : b0;
        int r = ipcf_set_add(set, x, 9);
        CHECK_OK(r);
        CHECK_EQ(ipcf_write(y, "q", 1, 1000), 1);
        ipcf_set_event ev[4];
        int k = ipcf_set_wait(set, ev, 4, 2000);
        CHECK_EQ(k, 1);
        CHECK_EQ(ev[0].port, x);
        CHECK_EQ(ev[0].data, 9);
        CHECK_ERR(ipcf_set_del(set, x), 0);
        ipcf_dealloc(set, NULL);
}

#define NF_MAX 1200
#define ROUNDS 5
static int NF;
static int P0[NF_MAX], P1[NF_MAX];
static void many_writer(void *arg) {
        (void)arg;
        for (int i = 0; i < NF; i++) ipcf_detach(P1[i]);
        for (int r = 0; r < ROUNDS; r++) {
                wait_flag(&SH->go, r + 1);
                usleep(30000); /* the set arms everything and sleeps */
                for (int i = 0; i < NF; i++) {
                        uint32_t m[2] = { (uint32_t)r, (uint32_t)i };
                        CHECK_EQ(ipcf_write(P0[i], m, 8, 10000), 8);
                }
        }
        wait_flag(&SH->go, ROUNDS + 1);
        for (int i = 0; i < NF; i++) ipcf_dealloc(P0[i], "done");
}
TEST_TIMEOUT(over_a_thousand_flows_all_ready_at_once_while_asleep, 200) {
        shared_new();
        /* About 13 descriptors a pair in this process. */
        struct rlimit rl;
        CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
        NF = (int)MIN((rlim_t)NF_MAX, (rl.rlim_cur - 256) / 13);
        CHECK(NF >= 1000);
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = 64;
        q.max_bytes = 1024;
        for (int i = 0; i < NF; i++) {
                int e = flowpair_make(&q, 0, 0, &P0[i], &P1[i]);
                if (e < 0) { fprintf(stderr, "flowpair %d: %d\n", i, e); CHECK_OK(e); }
        }
        pid_t w = test_fork(many_writer, NULL);
        for (int i = 0; i < NF; i++) ipcf_detach(P0[i]);
        int set = CHECK_OK(ipcf_set_new(NULL));
        for (int i = 0; i < NF; i++) CHECK_OK(ipcf_set_add(set, P1[i], (uint64_t)i));
        static ipcf_set_event ev[300];
        for (int r = 0; r < ROUNDS; r++) {
                atomic_store(&SH->go, r + 1);
                int got = 0;
                static char seen[NF_MAX];
                memset(seen, 0, sizeof seen);
                while (got < NF) {
                        int k = ipcf_set_wait(set, ev, 300, 10000);
                        if (k < 0) { fprintf(stderr, "round %d: wait %d after %d\n", r, k, got); CHECK_OK(k); }
                        for (int j = 0; j < k; j++) {
                                uint32_t m[2];
                                for (;;) {
                                        ssize_t n = ipcf_read(ev[j].port, m, 8, 0);
                                        if (n == -EAGAIN) break;
                                        CHECK_EQ(n, 8);
                                        CHECK_EQ(m[0], (uint32_t)r);
                                        CHECK_EQ(m[1], (uint32_t)ev[j].data);
                                        CHECK(!seen[m[1]]);
                                        seen[m[1]] = 1;
                                        got++;
                                }
                        }
                }
        }
        atomic_store(&SH->go, ROUNDS + 1);
        CHECK_EQ(test_wait(w, 20000), 0);
        /* the writer's ends are gone: every port reports, read says EPIPE */
        int ended = 0;
        while (ended < NF) {
                int k = ipcf_set_wait(set, ev, 300, 10000);
                if (k < 0) { fprintf(stderr, "ends: wait %d after %d\n", k, ended); CHECK_OK(k); }
                for (int j = 0; j < k; j++) {
                        char c;
                        ssize_t n = ipcf_read(ev[j].port, &c, 1, 0);
                        if (n == -EAGAIN) continue;
                        CHECK(n == -EPIPE || n == -ECONNRESET);
                        ipcf_dealloc(ev[j].port, NULL);
                        ended++;
                }
        }
        CHECK_ERR(ipcf_set_wait(set, ev, 300, 100), -ETIMEDOUT);
        ipcf_dealloc(set, NULL);
}

#define WK 4
#define NC 20
#define CALLS 200
static atomic_bool wstop;
static _Atomic unsigned served, gone_replies;
static int SVC;
static void *wk_main(void *arg) {
        (void)arg;
        while (!atomic_load(&wstop)) {
                ipcf_call_req req;
                int v[2];
                ssize_t r = ipcf_service_next(SVC, v, sizeof(v), 50, &req);
                if (r == -ETIMEDOUT) continue;
                CHECK_EQ(r, sizeof(v));
                usleep(100);
                v[1] += 1;
                int e = ipcf_service_reply(SVC, &req, v, sizeof(v), 5000);
                if (e < 0) {
                        if (e != -EPIPE && e != -ECONNRESET && e != -ECANCELED) { fprintf(stderr, "reply: %d\n", e); CHECK_OK(e); }
                        atomic_fetch_add(&gone_replies, 1);
                } else atomic_fetch_add(&served, 1);
        }
        return NULL;
}
static void *greedy_thread(void *arg) {
        int id = (int)(intptr_t)arg;
        for (int k = 0;; k++) {
                int v[2] = { id, k }, back[2];
                ssize_t r = ipcf_call("svc.hw", v, sizeof(v), back, sizeof(back), 20000, NULL);
                if (r != sizeof(back)) { fprintf(stderr, "greedy call %zd\n", r); exit(7); }
        }
        return NULL;
}
static void greedy_caller(void *arg) {
        (void)arg;
        pthread_t t[16];
        for (int i = 0; i < 16; i++) pthread_create(&t[i], NULL, greedy_thread, (void *)(intptr_t)(1000 + i));
        for (;;) pause();
}
static void doomed_caller(void *arg) {
        int id = (int)(intptr_t)arg;
        for (int k = 0;; k++) {
                int v[2] = { id, k }, back[2];
                ipcf_call("svc.hw", v, sizeof(v), back, sizeof(back), 20000, NULL);
        }
}
static void hw_caller(void *arg) {
        int id = (int)(intptr_t)arg;
        for (int k = 0; k < CALLS; k++) {
                int v[2] = { id, k }, back[2];
                ssize_t r = ipcf_call("svc.hw", v, sizeof(v), back, sizeof(back), 20000, NULL);
                if (r != sizeof(back) || back[0] != id || back[1] != k + 1) { fprintf(stderr, "caller %d call %d: %zd\n", id, k, r); exit(8); }
        }
}
TEST_TIMEOUT(workers_with_a_greedy_caller_and_callers_killed_mid_call, 200) {
        test_daemon_start(&d, NULL, NULL);
        SVC = CHECK_OK(ipcf_service("svc.hw", NULL));
        pid_t pids[NC], g, dm[3];
        int gate[NC], gg, gd[3];
        for (int i = 0; i < NC; i++) pids[i] = test_fork_gated(hw_caller, (void *)(intptr_t)i, &gate[i]);
        g = test_fork_gated(greedy_caller, NULL, &gg);
        for (int i = 0; i < 3; i++) dm[i] = test_fork_gated(doomed_caller, (void *)(intptr_t)(500 + i), &gd[i]);
        pthread_t th[WK];
        for (int i = 0; i < WK; i++) CHECK_OK(-pthread_create(&th[i], NULL, wk_main, NULL));
        test_gate_open(&gg);
        for (int i = 0; i < 3; i++) test_gate_open(&gd[i]);
        usleep(100000);
        for (int i = 0; i < NC; i++) test_gate_open(&gate[i]);
        for (int i = 0; i < 3; i++) { usleep(30000); kill(dm[i], SIGKILL); CHECK_EQ(test_wait(dm[i], 10000), 128 + SIGKILL); }
        for (int i = 0; i < NC; i++) CHECK_EQ(test_wait(pids[i], 120000), 0);
        kill(g, SIGKILL);
        CHECK_EQ(test_wait(g, 10000), 128 + SIGKILL);
        usleep(200000);
        atomic_store(&wstop, true);
        for (int i = 0; i < WK; i++) CHECK_OK(-pthread_join(th[i], NULL));
        CHECK_OK(ipcf_dealloc(SVC, NULL));
        test_daemon_stop(&d);
}

static void svc_take_then_hang(void *arg) {
        (void)arg;
        int svc = CHECK_OK(ipcf_service("svc.k", NULL));
        atomic_store(&SH->ready, 1);
        ipcf_call_req req;
        int v[2];
        CHECK_EQ(ipcf_service_next(svc, v, sizeof v, 20000, &req), sizeof v);
        atomic_store(&SH->go, 1);
        for (;;) pause();
}
static void *bg_call(void *arg) {
        int *res = arg;
        int v[2] = { 1, 1 }, back[2];
        *res = (int)ipcf_call("svc.k", v, sizeof v, back, sizeof back, 20000, NULL);
        return NULL;
}
TEST_TIMEOUT(a_service_killed_holding_requests_fails_its_callers_promptly, 60) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        pid_t s = test_fork(svc_take_then_hang, NULL);
        wait_flag(&SH->ready, 1);
        /* two calls outstanding: one taken, one queued */
        pthread_t t1, t2;
        int r1 = 1, r2 = 1;
        CHECK_OK(-pthread_create(&t1, NULL, bg_call, &r1));
        wait_flag(&SH->go, 1);
        CHECK_OK(-pthread_create(&t2, NULL, bg_call, &r2));
        usleep(100000);
        uint64_t t0 = test_now_ms();
        kill(s, SIGKILL);
        CHECK_EQ(test_wait(s, 10000), 128 + SIGKILL);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        CHECK(r1 < 0 && r2 < 0);
        CHECK(test_now_ms() - t0 < 15000); /* not the calls' 20 s timeout */
        test_daemon_stop(&d);
}

static void s_block(void *arg) {
        int tx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_SEND, NULL, 5000));
        static uint8_t b[65536];
        for (uint32_t k = 0;; k++) {
                size_t len = k % 2 ? 65536 : 64;
                fill(b, len, k);
                ssize_t e = ipcf_mbox_send(tx, b, len, 60000, NULL);
                if (e != (ssize_t)len) exit(6);
                atomic_store(&SH->got, (int)k + 1);
        }
}
TEST_TIMEOUT(daemon_idle_while_a_stalled_receiver_blocks_senders, 60) {
        shared_new();
        S2 = mmap(NULL, sizeof(*S2), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        memset(S2, 0, sizeof *S2);
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 8 };
        CHECK_OK(ipcf_mbox_create("box.i", &o));
        pid_t rs = test_fork(r_stall, "box.i");
        wait_flag(&S2->stalled_ready, 1);
        wait_receivers("box.i", 1);
        pid_t s1 = test_fork(s_block, "box.i");
        pid_t s2 = test_fork(s_block, "box.i");
        int last = -1;
        for (int i = 0; i < 100; i++) { usleep(50000); int g = atomic_load(&SH->got); if (g == last && g > 0) break; last = g; }
        uint64_t c0 = cpu_ticks(d.pid);
        uint64_t s0 = cpu_ticks(s1);
        usleep(2000000);
        uint64_t c1 = cpu_ticks(d.pid);
        uint64_t sx = cpu_ticks(s1);
        CHECK(c1 - c0 <= 10);
        CHECK(sx - s0 <= 10);
        kill(s1, SIGKILL); kill(s2, SIGKILL); kill(rs, SIGKILL);
        test_wait(s1, 5000); test_wait(s2, 5000); test_wait(rs, 5000);
        test_daemon_stop(&d);
}

static void r_late(void *arg) {
        wait_flag(&SH->go, 1);
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 5000));
        static uint8_t b[65536];
        for (uint32_t k = 0; k < (uint32_t)atomic_load(&SH->got); k++) {
                ssize_t r = ipcf_mbox_recv(rx, b, sizeof b, 10000, NULL);
                CHECK_EQ(r, 65536);
                CHECK(whole(b, 65536, k));
        }
        CHECK_ERR(ipcf_mbox_recv(rx, b, sizeof b, 200, NULL), -ETIMEDOUT);
}
TEST_TIMEOUT(max_bytes_with_large_messages, 60) {
        shared_new();
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_bytes = 100000 };
        CHECK_OK(ipcf_mbox_create("box.b", &o));
        pid_t r = test_fork(r_late, "box.b");
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.full = IPCF_FULL_FAIL;
        int tx = CHECK_OK(ipcf_mbox_open("box.b", IPCF_MBOX_SEND, &q, 5000));
        static uint8_t b[65536];
        int sent = 0;
        for (;;) {
                fill(b, sizeof b, (uint32_t)sent);
                ssize_t n = ipcf_mbox_send(tx, b, sizeof b, 0, NULL);
                if (n == -EAGAIN) { usleep(50000); if ((n = ipcf_mbox_send(tx, b, sizeof b, 0, NULL)) == -EAGAIN) break; }
                CHECK_EQ(n, 65536);
                sent++;
        }
        usleep(100000);
        ipcf_model_entry *e; size_t n;
        CHECK_OK(ipcf_model_list(&e, &n));
        /* 100,000 bytes: the second 64 KiB message passes it, no third */
        CHECK_EQ(e[0].queued, 2);
        CHECK(sent > 2);
        ipcf_free(e);
        atomic_store(&SH->got, sent);
        atomic_store(&SH->go, 1);
        CHECK_EQ(test_wait(r, 30000), 0);
        test_daemon_stop(&d);
}

/* ---- more: destroy mid-stream, kills mid-stream, a stream mailbox, a blocking reader beside a set ---- */

struct sh_d { _Atomic int ready, got, sent; _Atomic long und; };
static struct sh_d *SD;
static void d_rx(void *arg) {
        int rx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_RECV, NULL, 5000));
        atomic_store(&SD->ready, 1);
        static uint8_t b[65536];
        ssize_t n; int i = 0;
        while ((n = ipcf_mbox_recv(rx, b, sizeof b, 10000, NULL)) >= 0) {
                uint32_t s; memcpy(&s, b, 4);
                if (s != (uint32_t)i) { fprintf(stderr, "got %u want %d\n", s, i); exit(3); }
                i++;
                if (i % 7 == 0) usleep(100);
        }
        if (n != -EPIPE) { fprintf(stderr, "rx end %zd\n", n); exit(4); }
        atomic_store(&SD->got, i);
}
static void d_tx(void *arg) {
        int tx = CHECK_OK(ipcf_mbox_open((const char *)arg, IPCF_MBOX_SEND, NULL, 5000));
        static uint8_t b[65536];
        int i = 0;
        for (;; i++) {
                memcpy(b, &i, 4);
                size_t len = i % 3 ? 65536 : 64;
                uint64_t seq;
                ssize_t n = i % 2 ? ipcf_mbox_send_async(tx, b, len, 10000, &seq) : ipcf_mbox_send(tx, b, len, 10000, NULL);
                if (n < 0) { if (n != -EPIPE) { fprintf(stderr, "send %zd\n", n); exit(5); } break; }
                atomic_store(&SD->sent, i + 1);
        }
        atomic_store(&SD->und, (long)ipcf_mbox_undelivered(tx));
        atomic_store(&SD->ready, 2);
}
TEST_TIMEOUT(destroy_while_a_sender_streams_every_message_read_or_reported, 120) {
        SD = mmap(NULL, sizeof *SD, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        test_daemon_start(&d, NULL, NULL);
        for (int round = 0; round < 6; round++) {
                memset(SD, 0, sizeof *SD);
                char name[32]; snprintf(name, sizeof name, "box.%d", round);
                ipcf_mbox_opts o = { .size = sizeof o, .max_msgs = 8 };
                CHECK_OK(ipcf_mbox_create(name, &o));
                pid_t r = test_fork(d_rx, name);
                wait_flag(&SD->ready, 1);
                usleep(50000);
                pid_t s = test_fork(d_tx, name);
                while (atomic_load(&SD->sent) < 200 + round * 300) usleep(1000);
                CHECK(ipcf_mbox_destroy(name) >= 0);
                CHECK_EQ(test_wait(s, 20000), 0);
                CHECK_EQ(test_wait(r, 20000), 0);
                CHECK_EQ(SD->sent, SD->got + SD->und);
        }
        test_daemon_stop(&d);
}

#define KN 4000
struct sh_k { _Atomic int ready, r1n, r2n, done, distinct; _Atomic int seen[KN]; };
static struct sh_k *SK;
static void k_rx(void *arg) {
        int who = (int)(intptr_t)arg;
        int rx = CHECK_OK(ipcf_mbox_open("box.k", IPCF_MBOX_RECV, NULL, 5000));
        atomic_fetch_add(&SK->ready, 1);
        static uint8_t b[65536];
        ssize_t n;
        while ((n = ipcf_mbox_recv(rx, b, sizeof b, 30000, NULL)) >= 0) {
                uint32_t s; memcpy(&s, b, 4);
                CHECK(s < KN);
                /* counted as soon as it is taken, checked after: a SIGKILL
                 * while r1 checked 64 KiB (tens of µs under ASan) lost a
                 * message the facility had delivered (CI, ASan stage) */
                bool last = atomic_fetch_add(&SK->seen[s], 1) == 0 &&
                            atomic_fetch_add(&SK->distinct, 1) + 1 == KN;
                CHECK_EQ((size_t)n, s % 3 ? 65536u : 64u);
                for (size_t i = 4; i < (size_t)n; i++) if (b[i] != (uint8_t)(s + i)) { fprintf(stderr, "bad byte\n"); exit(3); }
                if (last)
                        exit(0); /* every message has come */
                atomic_fetch_add(who == 1 ? &SK->r1n : &SK->r2n, 1);
                if (who == 1) usleep(300);
        }
}
static void k_tx(void *arg) {
        (void)arg;
        int tx = CHECK_OK(ipcf_mbox_open("box.k", IPCF_MBOX_SEND, NULL, 5000));
        static uint8_t b[65536];
        for (uint32_t i = 0; i < KN; i++) {
                size_t len = i % 3 ? 65536 : 64;
                memcpy(b, &i, 4);
                for (size_t k = 4; k < len; k++) b[k] = (uint8_t)(i + k);
                CHECK_EQ(ipcf_mbox_send(tx, b, len, 20000, NULL), (ssize_t)len);
        }
        atomic_store(&SK->done, 1);
        for (;;) pause();
}
TEST_TIMEOUT(receiver_and_sender_killed_mid_stream, 120) {
        SK = mmap(NULL, sizeof *SK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        memset(SK, 0, sizeof *SK);
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("box.k", NULL));
        pid_t r1 = test_fork(k_rx, (void *)1);
        pid_t r2 = test_fork(k_rx, (void *)2);
        wait_flag(&SK->ready, 2);
        usleep(50000);
        pid_t s = test_fork(k_tx, NULL);
        while (atomic_load(&SK->r1n) < 100) usleep(1000);
        kill(r1, SIGKILL);
        wait_flag(&SK->done, 1);
        kill(s, SIGKILL);
        CHECK_EQ(test_wait(r1, 10000), 128 + SIGKILL);
        CHECK_EQ(test_wait(s, 10000), 128 + SIGKILL);
        CHECK_EQ(test_wait(r2, 60000), 0);
        int lost = 0, dup = 0;
        for (int i = 0; i < KN; i++) { if (!SK->seen[i]) lost++; if (SK->seen[i] > 1) dup++; }
        CHECK_EQ(lost, 0);
        CHECK(dup <= 1);
        test_daemon_stop(&d);
}

static void st_rx(void *arg) {
        (void)arg;
        int rx = CHECK_OK(ipcf_mbox_open("box.st", IPCF_MBOX_RECV, NULL, 5000));
        uint8_t b[1000];
        uint64_t pos = 0, total = 0;
        for (int i = 0; i < 300; i++) total += (i % 4) ? 65536 - i : 100 + i;
        while (pos < total) {
                ssize_t n = ipcf_mbox_recv(rx, b, sizeof b, 10000, NULL);
                if (n <= 0) { fprintf(stderr, "recv %zd at %lu\n", n, (unsigned long)pos); exit(3); }
                for (ssize_t k = 0; k < n; k++) if (b[k] != (uint8_t)((pos + (uint64_t)k) * 7 + 1)) { fprintf(stderr, "byte at %lu\n", (unsigned long)(pos + k)); exit(4); }
                pos += (uint64_t)n;
        }
}
TEST_TIMEOUT(stream_mailbox_across_cut_through, 60) {
        test_daemon_start(&d, NULL, NULL);
        ipcf_mbox_opts o = { .size = sizeof o, .flags = IPCF_MBOX_STREAM };
        CHECK_OK(ipcf_mbox_create("box.st", &o));
        pid_t r = test_fork(st_rx, NULL);
        usleep(100000);
        int tx = CHECK_OK(ipcf_mbox_open("box.st", IPCF_MBOX_SEND, NULL, 5000));
        static uint8_t b[65536];
        uint64_t pos = 0;
        for (int i = 0; i < 300; i++) {
                size_t len = (i % 4) ? 65536 - (size_t)i : 100 + (size_t)i;
                for (size_t k = 0; k < len; k++) b[k] = (uint8_t)((pos + k) * 7 + 1);
                CHECK_EQ(ipcf_mbox_send(tx, b, len, 10000, NULL), (ssize_t)len);
                pos += len;
        }
        CHECK_EQ(test_wait(r, 30000), 0);
        test_daemon_stop(&d);
}

static int A0, A1, SET;
static _Atomic int reported;
static atomic_bool stop;
static void *bwaiter(void *arg) {
        (void)arg;
        while (!atomic_load(&stop)) {
                ipcf_set_event ev[4];
                int k = ipcf_set_wait(SET, ev, 4, 100);
                if (k > 0) {
                        char c;
                        while (ipcf_read(A1, &c, 1, 0) == 1) atomic_fetch_add(&reported, 1);
                }
        }
        return NULL;
}
TEST_TIMEOUT(blocking_reader_and_set_on_one_port, 60) {
        for (int spin = 0; spin < 2; spin++) {
                ipcf_qos q; ipcf_qos_init(&q); q.spin_us = 0;
                CHECK_OK(flowpair_make(&q, 0, 0, &A0, &A1));
                ipcf_set_opts o = { .size = sizeof o, .spin_us = spin ? 50 : 0 };
                SET = CHECK_OK(ipcf_set_new(&o));
                CHECK_OK(ipcf_set_add(SET, A1, 0));
                atomic_store(&stop, false);
                atomic_store(&reported, 0);
                pthread_t t;
                pthread_create(&t, NULL, bwaiter, NULL);
                int direct = 0;
                for (int i = 0; i < 300; i++) {
                        usleep(i % 2 ? 1000 : 0);
                        CHECK_EQ(ipcf_write(A0, "x", 1, 1000), 1);
                        if (i % 3 == 0) {
                                char c;
                                ssize_t r = ipcf_read(A1, &c, 1, 5);
                                if (r == 1) direct++;
                        }
                }
                /* everything must be read by someone within a bound */
                uint64_t t0 = test_now_ms();
                while (atomic_load(&reported) + direct < 300 && test_now_ms() - t0 < 30000) usleep(1000);
                CHECK_EQ(atomic_load(&reported) + direct, 300);
                /* then one more message: the set must report it */
                CHECK_EQ(ipcf_write(A0, "y", 1, 1000), 1);
                t0 = test_now_ms();
                while (atomic_load(&reported) + direct < 301 && test_now_ms() - t0 < 30000) usleep(1000);
                CHECK_EQ(atomic_load(&reported) + direct, 301);
                atomic_store(&stop, true);
                pthread_join(t, NULL);
                ipcf_dealloc(SET, NULL); ipcf_dealloc(A0, NULL); ipcf_dealloc(A1, NULL);
        }
}
