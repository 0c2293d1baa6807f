/*
 * test-daemon-hostlink.c — the daemon's host associations (daemon/hosts/
 * link.c) over real UDP on 127.0.0.1, two (or three) links in one process
 * around one event loop: they come up and say HELLO; control messages and
 * a data flow of 16 MiB arrive intact and in order; the same under the
 * impairment hook (10 % loss, 1 % duplication, 1 % corruption, reordering);
 * a host that stops answering is down within the dead interval; a host that
 * restarts takes the old association down (PEER_RESTARTED) and comes up
 * again; garbage and truncated datagrams at the port change nothing;
 * datagrams recorded on the path and replayed are dropped; a host with a wrong key or an unenrolled one never comes up.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/conf.h"
#include "daemon/core/dlist.h"
#include "daemon/hosts/link.h"
#include "efcp/keyfile.h"
#include "efcp/noise.h"
#include "support/loopwait.h"
#include "support/test.h"

#define MAX_SIDES 3

/* One host: its link and what its callbacks saw. */
typedef struct side {
        const char *name;
        uint8_t priv[32], pub[32];
        char key[48];
        uint16_t port;
        conf c;
        hlink *k;
        int ups, downs;
        uint32_t last_down;
        int ctl_msgs;
        hw_msg last_ctl;
        efcp_flow *rx;            /* a data flow the peer opened */
        uint64_t rx_bytes, rx_hash, rx_msgs;
        bool rx_bad;
} side;

static loop *g_loop;
static side g_side[MAX_SIDES];
/* The dead interval the sides are started with: the default's 5 s, so an
 * association on a loaded machine under ASan is not declared dead in the
 * middle of a transfer; only the dead-host case shortens it. */
static int g_dead_interval_ms;

static void on_up(void *ctx, hpeer *p) { ((side *)ctx)->ups++; }

static void on_down(void *ctx, hpeer *p, uint32_t reason) {
        side *s = ctx;
        s->downs++;
        s->last_down = reason;
        s->rx = NULL;
}

static void on_control(void *ctx, hpeer *p, const hw_msg *m) {
        side *s = ctx;
        s->ctl_msgs++;
        s->last_ctl = *m;
}

static void on_flow_alloc(void *ctx, hpeer *p, efcp_flow *f) {
        side *s = ctx;
        s->rx = f;
        hlink_flow_adopt(p, f, s);
}

/* Messages carry their index in the first 8 bytes; the rest is test_fill of it. */
static void on_flow_ready(void *ctx, hpeer *p, efcp_flow *f) {
        side *s = ctx;
        static uint8_t buf[70000], want[70000];
        int n;
        while ((n = efcp_flow_recv(f, buf, sizeof(buf))) >= 0) {
                uint64_t idx;
                memcpy(&idx, buf, 8);
                test_fill(want, (size_t)n, idx);
                if (idx != s->rx_msgs || memcmp(buf + 8, want + 8, (size_t)n - 8) != 0)
                        s->rx_bad = true;
                s->rx_msgs++;
                s->rx_bytes += (uint64_t)n;
        }
}

static const hlink_ops ops = { on_up, on_down, on_control, on_flow_alloc, on_flow_ready };

static uint16_t free_udp_port(void) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(sa);
        CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        CHECK(getsockname(fd, (struct sockaddr *)&sa, &l) == 0);
        close(fd);
        return ntohs(sa.sin_port);
}

static void sides_init(int n) {
        CHECK_OK(loop_new(&g_loop));
        g_dead_interval_ms = 5000;
        static const char *names[MAX_SIDES] = { "alpha", "beta", "gamma" };
        for (int i = 0; i < n; i++) {
                side *s = &g_side[i];
                memset(s, 0, sizeof(*s));
                s->name = names[i];
                noise_keypair(s->priv, s->pub);
                efcp_key_format(s->pub, s->key, sizeof(s->key));
                s->port = free_udp_port();
        }
}

/* Start side i with the others enrolled (with their address when
 * with_addr; the extra text is appended to its config). */
static int side_start(int i, int n, bool with_addr, const char *extra, const uint8_t *priv) {
        side *s = &g_side[i];
        char text[4096];
        size_t len = (size_t)snprintf(text, sizeof(text), "[hosts]\nname = %s\ndead_interval_ms = %d\n%s\n",
                                      s->name, g_dead_interval_ms, extra ? extra : "");
        for (int j = 0; j < n; j++) {
                if (j == i)
                        continue;
                len += (size_t)snprintf(text + len, sizeof(text) - len, "[host %s]\nkey = %s\n", g_side[j].name,
                                        g_side[j].key);
                if (with_addr)
                        len += (size_t)snprintf(text + len, sizeof(text) - len, "address = 127.0.0.1:%u\n",
                                                g_side[j].port);
        }
        char err[256];
        conf_deinit(&s->c);
        CHECK_OK(conf_parse(text, len, &s->c, err, sizeof(err)));
        hlink_cfg cfg = { .c = &s->c, .self = s->name };
        memcpy(cfg.private_key, priv ? priv : s->priv, 32);
        cfg.listen.family = 4;
        cfg.listen.port = s->port;
        inet_pton(AF_INET, "127.0.0.1", cfg.listen.ip);
        unsigned line = 0;
        return hlink_new(g_loop, &cfg, &ops, s, &s->k, &line);
}

static bool both_up(void *ctx) { return g_side[0].ups >= 1 && g_side[1].ups >= 1; }

static bool transfer(int a, int b, uint64_t total, int bound_ms);

TEST_TIMEOUT(hostlink_up_control_and_data, 60) {
        sides_init(2);
        CHECK_OK(side_start(0, 2, true, NULL, NULL));
        CHECK_OK(side_start(1, 2, true, NULL, NULL));
        CHECK(loop_wait(g_loop, both_up, NULL, 10000));
        hpeer *ab = hlink_peer_by_name(g_side[0].k, "beta");
        CHECK(ab && ab->state == HPEER_UP);
        /* a control message arrives as sent */
        hw_msg m = { .type = HW_CANCEL, .req = 12345 };
        CHECK_OK(hlink_send(ab, &m));
        CHECK(loop_wait(g_loop, NULL, NULL, 0) || true);
        for (int t = 0; t < 500 && g_side[1].ctl_msgs == 0; t++)
                loop_wait(g_loop, NULL, NULL, 10);
        CHECK_EQ(g_side[1].ctl_msgs, 1);
        CHECK_EQ(g_side[1].last_ctl.type, HW_CANCEL);
        CHECK_EQ(g_side[1].last_ctl.req, 12345);
        /* 16 MiB in messages of up to 20 KB, in order, intact */
        CHECK(transfer(0, 1, 16ull << 20, 50000));
        hpeer_info pi;
        hlink_peer_info(ab, &pi);
        CHECK_EQ(pi.flows, 1);
        CHECK(pi.path.srtt_ns > 0);
        hlink_free(g_side[0].k);
        hlink_free(g_side[1].k);
}

/* Send total bytes from side a to side b on a new flow; true if all came
 * intact and in order within the bound. An association that goes down
 * meanwhile ends the transfer (false): its flows are freed with it, so the
 * sender's flow is not touched again. */
static bool transfer(int a, int b, uint64_t total, int bound_ms) {
        hpeer *p = hlink_peer_by_name(g_side[a].k, g_side[b].name);
        efcp_flow *f;
        int downs_a = g_side[a].downs, downs_b = g_side[b].downs;
        g_side[b].rx_bytes = g_side[b].rx_msgs = 0;
        g_side[b].rx_bad = false;
        static uint32_t remote_port = 4242;
        CHECK_OK(hlink_flow_open(p, hlink_port_new(p), remote_port++, EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                 &g_side[a], &f));
        static uint8_t msg[20000];
        uint64_t sent = 0, idx = 0, end = test_now_ms() + (uint64_t)bound_ms;
        while ((g_side[b].rx_bytes < total || sent < total) && test_now_ms() < end) {
                if (g_side[a].downs != downs_a || g_side[b].downs != downs_b) {
                        fprintf(stderr, "transfer: the association went down (reason %u/%u) after %llu of %llu bytes\n",
                                g_side[a].last_down, g_side[b].last_down, (unsigned long long)g_side[b].rx_bytes,
                                (unsigned long long)total);
                        return false;
                }
                while (sent < total) {
                        size_t len = 8 + (size_t)(idx * 7919 % (sizeof(msg) - 8));
                        if (len > total - sent)
                                len = total - sent < 8 ? 8 : (size_t)(total - sent);
                        test_fill(msg, len, idx);
                        memcpy(msg, &idx, 8);
                        if (efcp_flow_send(f, msg, len) < 0)
                                break;
                        sent += len;
                        idx++;
                }
                hlink_kick(g_side[a].k);
                loop_wait(g_loop, NULL, NULL, 2);
        }
        return !g_side[b].rx_bad && g_side[b].rx_msgs == idx && g_side[b].rx_bytes == sent && sent == total;
}

TEST_TIMEOUT(hostlink_under_impairment_nothing_lost, 120) {
        sides_init(2);
        const char *imp = "[impair]\nloss = 10%\nduplicate = 1%\ncorrupt = 1%\nreorder = 5%\nseed = 3\n";
        CHECK_OK(side_start(0, 2, true, imp, NULL));
        CHECK_OK(side_start(1, 2, true, imp, NULL));
        CHECK(loop_wait(g_loop, both_up, NULL, 20000));
        CHECK(transfer(0, 1, 8ull << 20, 90000));
        hlink_stats st;
        hlink_stats_get(g_side[1].k, &st);
        /* the hook did its work: corrupted datagrams were refused by the AEAD */
        CHECK(st.host.dropped_auth > 0);
        hlink_free(g_side[0].k);
        hlink_free(g_side[1].k);
}

static bool a_down(void *ctx) { return g_side[0].downs >= *(int *)ctx; }
static bool a_ups(void *ctx) { return g_side[0].ups >= *(int *)ctx; }

TEST_TIMEOUT(hostlink_dead_host_and_restarted_host, 60) {
        sides_init(2);
        g_dead_interval_ms = 2000;
        CHECK_OK(side_start(0, 2, true, NULL, NULL));
        CHECK_OK(side_start(1, 2, true, NULL, NULL));
        CHECK(loop_wait(g_loop, both_up, NULL, 10000));
        /* beta restarts (a new link with the same key): alpha's association
         * is retired with PEER_RESTARTED and a new one comes up */
        hlink_free(g_side[1].k);
        g_side[1].k = NULL;
        CHECK_OK(side_start(1, 2, true, NULL, NULL));
        int one = 1, two = 2;
        CHECK(loop_wait(g_loop, a_down, &one, 10000));
        CHECK_EQ(g_side[0].last_down, EFCP_REASON_PEER_RESTARTED);
        CHECK(loop_wait(g_loop, a_ups, &two, 10000));
        CHECK(transfer(0, 1, 1 << 20, 20000));
        /* beta dies (no word): alpha says so within the dead interval (2 s),
         * allowing for a loaded machine */
        hlink_free(g_side[1].k);
        g_side[1].k = NULL;
        uint64_t t0 = test_now_ms();
        CHECK(loop_wait(g_loop, a_down, &two, 10000));
        CHECK_EQ(g_side[0].last_down, EFCP_REASON_PEER_TIMEOUT);
        fprintf(stderr, "down after %llu ms (dead interval %d ms)\n", (unsigned long long)(test_now_ms() - t0),
                g_dead_interval_ms);
        /* and when beta is back, alpha reconnects by itself */
        CHECK_OK(side_start(1, 2, true, NULL, NULL));
        int three = 3;
        CHECK(loop_wait(g_loop, a_ups, &three, 10000));
        hlink_free(g_side[0].k);
        hlink_free(g_side[1].k);
}

static bool none_up(void *ctx) { return g_side[0].ups || g_side[1].ups; }

static hlink_stats alpha_stats(void) {
        hlink_stats st;
        hlink_stats_get(g_side[0].k, &st);
        return st;
}
static bool alpha_got_an_init(void *ctx) { return alpha_stats().host.init_in > 0; }
static bool alpha_refused_a_key(void *ctx) { return alpha_stats().host.init_bad_key > 0; }

TEST_TIMEOUT(hostlink_wrong_key_and_unenrolled_host_never_up, 30) {
        sides_init(3);
        /* beta claims to be beta with gamma's private key: alpha pinned
         * beta's public key, so nothing comes up */
        CHECK_OK(side_start(0, 2, true, NULL, NULL));
        CHECK_OK(side_start(1, 2, true, NULL, g_side[2].priv));
        /* once alpha has had beta's handshake, a second more: still not up */
        CHECK(loop_wait(g_loop, alpha_got_an_init, NULL, 10000));
        CHECK(!loop_wait(g_loop, none_up, NULL, 1000));
        hlink_stats st = alpha_stats();
        CHECK(st.host.handshakes_done == 0);
        hlink_free(g_side[1].k);
        /* gamma, enrolled nowhere, calls alpha with alpha's key known */
        char extra[256];
        snprintf(extra, sizeof(extra), "[host alpha]\nkey = %s\naddress = 127.0.0.1:%u\n", g_side[0].key,
                 g_side[0].port);
        conf_deinit(&g_side[2].c);
        char text[512], err[256];
        snprintf(text, sizeof(text), "[hosts]\nname = gamma\n%s", extra);
        CHECK_OK(conf_parse(text, strlen(text), &g_side[2].c, err, sizeof(err)));
        hlink_cfg cfg = { .c = &g_side[2].c, .self = "gamma" };
        memcpy(cfg.private_key, g_side[2].priv, 32);
        cfg.listen.family = 4;
        cfg.listen.port = g_side[2].port;
        inet_pton(AF_INET, "127.0.0.1", cfg.listen.ip);
        unsigned line;
        CHECK_OK(hlink_new(g_loop, &cfg, &ops, &g_side[2], &g_side[2].k, &line));
        CHECK(loop_wait(g_loop, alpha_refused_a_key, NULL, 10000));
        CHECK(!loop_wait(g_loop, none_up, NULL, 1000));
        CHECK_EQ(g_side[2].ups, 0);
        st = alpha_stats();
        CHECK(st.host.init_bad_key > 0);
        CHECK(st.host.handshakes_done == 0);
        hlink_free(g_side[0].k);
        hlink_free(g_side[2].k);
}

/* A raw socket playing the attacker on the path. */
static int raw_to(uint16_t port, const void *buf, size_t len) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int r = (int)sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        return r;
}

TEST_TIMEOUT(hostlink_garbage_and_truncated_change_nothing, 60) {
        sides_init(2);
        CHECK_OK(side_start(0, 2, true, NULL, NULL));
        CHECK_OK(side_start(1, 2, true, NULL, NULL));
        CHECK(loop_wait(g_loop, both_up, NULL, 10000));
        /* garbage of every length, and each type byte with garbage after it */
        uint8_t junk[1600];
        uint64_t rng = 77;
        for (int i = 0; i < 3000; i++) {
                size_t len = (size_t)(i % 1600);
                for (size_t k = 0; k < len; k++) {
                        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                        junk[k] = (uint8_t)rng;
                }
                if (len > 1)
                        junk[0] = (uint8_t)(i % 7), junk[1] = 1;
                raw_to(g_side[1].port, junk, len);
                if (i % 100 == 0)
                        loop_wait(g_loop, NULL, NULL, 1);
        }
        /* a datagram bigger than any the daemon takes (truncated by the kernel) */
        static uint8_t huge[9000];
        memset(huge, 2, sizeof(huge));
        raw_to(g_side[1].port, huge, sizeof(huge));
        loop_wait(g_loop, NULL, NULL, 50);
        CHECK_EQ(g_side[1].downs, 0);
        CHECK(transfer(0, 1, 2 << 20, 20000));
        hlink_stats st;
        hlink_stats_get(g_side[1].k, &st);
        CHECK(st.host.dropped_short + st.host.dropped_type + st.host.dropped_index + st.host.dropped_auth +
                      st.host.init_bad_mac1 + st.host.resp_bad > 2000);
        CHECK_EQ(g_side[1].downs, 0);
        CHECK_EQ(g_side[0].downs, 0);
        hlink_free(g_side[0].k);
        hlink_free(g_side[1].k);
}

/* A forwarding socket between alpha and beta that records what alpha sends
 * (the attacker on the path who replays it later). */
typedef struct proxy {
        int fd;
        loop_io io;
        uint16_t port, a_port, b_port;
        uint8_t (*rec)[1600];
        uint16_t *rec_len;
        int n_rec;
} proxy;

static void proxy_on_io(loop_io *io, uint32_t events) {
        proxy *x = container_of(io, proxy, io);
        uint8_t buf[2048];
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n;
        while ((n = recvfrom(x->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl)) > 0) {
                bool from_a = ntohs(from.sin_port) == x->a_port;
                struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(from_a ? x->b_port : x->a_port),
                                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                if (from_a && x->n_rec < 4000 && n <= 1600) {
                        memcpy(x->rec[x->n_rec], buf, (size_t)n);
                        x->rec_len[x->n_rec++] = (uint16_t)n;
                }
                sendto(x->fd, buf, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to));
                fl = sizeof(from);
        }
}

TEST_TIMEOUT(hostlink_replayed_datagrams_dropped, 60) {
        sides_init(2);
        static proxy x;
        x.port = free_udp_port();
        x.a_port = g_side[0].port;
        x.b_port = g_side[1].port;
        x.rec = calloc(4000, sizeof(*x.rec));
        x.rec_len = calloc(4000, sizeof(*x.rec_len));
        x.fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(x.port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        CHECK(bind(x.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        CHECK_OK(loop_io_add(g_loop, &x.io, x.fd, EPOLLIN, proxy_on_io));
        /* alpha reaches beta through the proxy; beta only answers */
        uint16_t real_b = g_side[1].port;
        g_side[1].port = x.port;
        CHECK_OK(side_start(0, 2, true, NULL, NULL));
        g_side[1].port = real_b;
        CHECK_OK(side_start(1, 2, false, NULL, NULL));
        CHECK(loop_wait(g_loop, both_up, NULL, 10000));
        CHECK(transfer(0, 1, 1 << 20, 20000));
        CHECK(x.n_rec > 100);
        hlink_stats before;
        hlink_stats_get(g_side[1].k, &before);
        uint64_t dup0 = 0;
        hpeer *ba = hlink_peer_by_name(g_side[1].k, "alpha");
        hpeer_info pi;
        hlink_peer_info(ba, &pi);
        dup0 = pi.st.dup_packets + pi.st.old_packets;
        /* every recorded datagram again, the handshake initiation included */
        for (int i = 0; i < x.n_rec; i++)
                raw_to(real_b, x.rec[i], x.rec_len[i]);
        loop_wait(g_loop, NULL, NULL, 300);
        hlink_stats after;
        hlink_stats_get(g_side[1].k, &after);
        hlink_peer_info(ba, &pi);
        /* nothing was taken twice, no new association was made of a replayed
         * initiation, and the flow still works */
        CHECK(after.host.init_replayed > before.host.init_replayed ||
              after.host.init_in == before.host.init_in);
        CHECK_EQ(after.host.handshakes_done, before.host.handshakes_done);
        CHECK(after.host.dropped_auth + pi.st.dup_packets + pi.st.old_packets > dup0 + (uint64_t)x.n_rec / 2);
        CHECK_EQ(g_side[1].downs, 0);
        CHECK_EQ(g_side[0].downs, 0);
        CHECK(transfer(0, 1, 1 << 20, 20000));
        hlink_free(g_side[0].k);
        hlink_free(g_side[1].k);
}
