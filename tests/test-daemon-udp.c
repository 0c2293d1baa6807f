/*
 * test-daemon-udp.c — the daemon's UDP socket (daemon/hosts/udp.c) over real
 * UDP on 127.0.0.1: a batch of datagrams of mixed sizes to two receivers,
 * more than one flush holds, arrives whole, once and in order, each from the
 * sender's address, with the segmentation offloads on both sides, off on
 * both, and on one side only (the kernel segments a GSO message for a
 * socket without GRO); with GSO the batch left in fewer messages than
 * datagrams, with GRO several datagrams came in one buffer and were cut
 * again. A datagram longer than any EFCP datagram is counted and skipped,
 * with and without GRO, and what follows it still arrives.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/hosts/udp.h"
#include "support/test.h"

#define N_DGRAMS 400

typedef struct plan {
        unsigned to;     /* 1 or 2: which receiver */
        uint16_t len;
} plan;

static plan g_plan[N_DGRAMS];
static unsigned g_n;

static void add(unsigned count, unsigned to, uint16_t len) {
        for (unsigned i = 0; i < count && g_n < N_DGRAMS; i++)
                g_plan[g_n++] = (plan){ to, len };
}

/* Runs of one size (longer than a GSO message holds), a shorter last one,
 * a change of destination, sizes that all differ, a run of tiny ones. */
static void make_plan(void) {
        g_n = 0;
        add(100, 1, 1472);
        add(1, 1, 700);
        add(5, 1, 300);
        add(3, 2, 1472);
        add(2, 1, 1472);
        add(1, 1, UDP_DGRAM_MAX);
        for (unsigned i = 0; i < 40; i++)
                add(1, 1 + i % 2, (uint16_t)(1 + i * 37 % 1400));
        add(70, 2, 64);
        add(60, 1, 1200);
}

static void fill(uint8_t *buf, unsigned idx, size_t len) {
        test_fill(buf, len, 1000 + idx);
        if (len >= 2) {
                buf[0] = (uint8_t)idx;
                buf[1] = (uint8_t)(idx >> 8);
        }
}

static void open_local(udp_sock *u) {
        conf_addr a = { .family = 4, .ip = { 127, 0, 0, 1 }, .port = 0 };
        CHECK_OK(udp_open(u, &a));
}

/* Everything queued for r (idx in g_plan with .to == which) arrives, in
 * order, whole, from the address from. */
static void receive_all(udp_sock *r, unsigned which, const efcp_addr *from) {
        unsigned want = 0;
        while (want < g_n && g_plan[want].to != which)
                want++;
        uint8_t exp[UDP_DGRAM_MAX];
        uint64_t deadline = test_now_ms() + 5000;
        while (want < g_n) {
                CHECK(test_now_ms() < deadline);
                struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
                poll(&pfd, 1, 100);
                int n = udp_recv(r);
                CHECK(n >= 0);
                udp_dgram d;
                while (udp_rx_next(r, &d)) {
                        CHECK(want < g_n);
                        CHECK_EQ(d.len, g_plan[want].len);
                        fill(exp, want, d.len);
                        CHECK_MEM(d.data, exp, d.len);
                        CHECK_EQ(d.srclen, from->len);
                        CHECK_MEM(d.src, from->bytes, from->len);
                        do
                                want++;
                        while (want < g_n && g_plan[want].to != which);
                }
        }
}

/* s sends the plan to r1 and r2 (s, r1, r2 with the offloads given). */
static void exchange(bool gso, bool gro) {
        static udp_sock s, r1, r2;
        open_local(&s);
        open_local(&r1);
        open_local(&r2);
        udp_offload_set(&s, gso, gro);
        udp_offload_set(&r1, gso, gro);
        udp_offload_set(&r2, gso, gro);
        efcp_addr a1, a2, as;
        CHECK_OK(udp_local(&r1, &a1));
        CHECK_OK(udp_local(&r2, &a2));
        CHECK_OK(udp_local(&s, &as));
        make_plan();
        for (unsigned i = 0; i < g_n; i++) {
                uint8_t *slot = udp_tx_slot(&s);
                if (!slot) {
                        CHECK_OK(udp_flush(&s));
                        slot = udp_tx_slot(&s);
                }
                CHECK(slot != NULL);
                fill(slot, i, g_plan[i].len);
                udp_tx_commit(&s, g_plan[i].len, g_plan[i].to == 1 ? &a1 : &a2);
        }
        CHECK_OK(udp_flush(&s));
        CHECK_EQ(udp_tx_pending(&s), 0);
        CHECK_EQ(s.st.dgrams_out, g_n);
        CHECK_EQ(s.st.send_errors, 0);
        receive_all(&r1, 1, &as);
        receive_all(&r2, 2, &as);
        CHECK_EQ(r1.st.truncated + r2.st.truncated, 0);
        CHECK_EQ(r1.st.dgrams_in + r2.st.dgrams_in, g_n);
        if (s.can_gso && gso)
                CHECK(s.st.gso_msgs > 0);
        else
                CHECK_EQ(s.st.gso_msgs, 0);
        /* loopback hands a GSO message to a GRO socket as it was sent */
        if (s.can_gso && gso && r1.can_gro && gro)
                CHECK(r1.st.gro_msgs > 0);
        if (!gro)
                CHECK_EQ(r1.st.gro_msgs + r2.st.gro_msgs, 0);
        udp_close(&s);
        udp_close(&r1);
        udp_close(&r2);
}

TEST_TIMEOUT(udp_batches_with_offloads, 30) {
        exchange(true, true);
}

TEST_TIMEOUT(udp_batches_without_offloads, 30) {
        exchange(false, false);
}

TEST_TIMEOUT(udp_gso_to_a_socket_without_gro, 30) {
        exchange(true, false);
}

TEST_TIMEOUT(udp_gro_from_single_datagrams, 30) {
        exchange(false, true);
}

/* A datagram longer than UDP_DGRAM_MAX (from anyone) is counted and
 * skipped; the next one arrives. */
static void too_long(bool gro) {
        static udp_sock r;
        open_local(&r);
        udp_offload_set(&r, true, gro);
        efcp_addr ar;
        CHECK_OK(udp_local(&r, &ar));
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        CHECK(fd >= 0);
        static uint8_t big[UDP_DGRAM_MAX + 1000];
        uint8_t small[100];
        fill(big, 1, sizeof(big));
        fill(small, 2, sizeof(small));
        CHECK(sendto(fd, big, sizeof(big), 0, (struct sockaddr *)ar.bytes, ar.len) == (ssize_t)sizeof(big));
        CHECK(sendto(fd, small, sizeof(small), 0, (struct sockaddr *)ar.bytes, ar.len) == (ssize_t)sizeof(small));
        uint64_t deadline = test_now_ms() + 5000;
        bool got = false;
        while (!got) {
                CHECK(test_now_ms() < deadline);
                struct pollfd pfd = { .fd = r.fd, .events = POLLIN };
                poll(&pfd, 1, 100);
                CHECK(udp_recv(&r) >= 0);
                udp_dgram d;
                while (udp_rx_next(&r, &d)) {
                        CHECK(!got);
                        CHECK_EQ(d.len, sizeof(small));
                        CHECK_MEM(d.data, small, sizeof(small));
                        got = true;
                }
        }
        CHECK_EQ(r.st.truncated, 1);
        close(fd);
        udp_close(&r);
}

TEST_TIMEOUT(udp_too_long_counted_and_skipped, 30) {
        too_long(true);
        too_long(false);
}
