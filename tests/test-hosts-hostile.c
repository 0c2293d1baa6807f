/*
 * test-hosts-hostile.c — hosts under a hostile network and hostile hosts,
 * with real daemons over real UDP on 127.0.0.1:
 *  - 64 MiB across hosts at 10 % loss + 1 % duplication + 1 % corruption +
 *    5 % reordering both ways (the daemons' impairment hook): every byte
 *    once and in order;
 *  - a host that is not enrolled, and one enrolled with the wrong key, get
 *    no association: their allocations fail EHOSTUNREACH, the target's
 *    names stay unreachable to them;
 *  - garbage, truncated and forged datagrams at a daemon's port (plain EFCP
 *    with a valid CRC: a packet number far ahead, a CLOSE, a DEALLOC, DATA
 *    for a live port) and replays of recorded ones change nothing: the flow
 *    in progress goes on intact;
 *  - remote activation: a name configured with `activate` on beta is started
 *    there by an allocation from alpha;
 *  - a hostile client of a relayed flow, scribbling over its shared memory
 *    and descriptors while its daemon spins on its ring (relay.c SPIN),
 *    holds up neither daemon: another client's round trips on alpha go on.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "efcp/crc32c.h"
#include "ipcf.h"
#include "support/hostile.h"
#include "support/hostset.h"
#include "support/test.h"

static hostset S;

/* Beta: accept one flow on name and check total bytes of the reproducible
 * stream (test_fill of each 64 KiB block's index) arrive in order. */
typedef struct sink_arg {
        const char *name;
        uint64_t total;
} sink_arg;

static void stream_sink(void *p) {
        sink_arg *a = p;
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register(a->name, NULL));
        int port = CHECK_OK(ipcf_accept(reg, 30000, NULL));
        static uint8_t buf[65536], want[65536];
        uint64_t got = 0;
        while (got < a->total) {
                /* block by block, however the stream cuts them */
                size_t need = (size_t)MIN((uint64_t)sizeof(buf), a->total - got);
                size_t have = 0;
                while (have < need) {
                        ssize_t n = ipcf_read(port, buf + have, need - have, 60000);
                        CHECK(n > 0);
                        have += (size_t)n;
                }
                test_fill(want, need, got / sizeof(buf));
                CHECK_MEM(buf, want, need);
                got += need;
        }
        char x;
        CHECK_EQ(ipcf_read(port, &x, 1, 60000), -EPIPE);
}

static void stream_source(int port, uint64_t total) {
        static uint8_t buf[65536];
        for (uint64_t off = 0; off < total; off += sizeof(buf)) {
                size_t n = (size_t)MIN((uint64_t)sizeof(buf), total - off);
                test_fill(buf, n, off / sizeof(buf));
                for (size_t w = 0; w < n;) {
                        ssize_t k = ipcf_write(port, buf + w, n - w, 60000);
                        CHECK(k > 0);
                        w += (size_t)k;
                }
        }
}

#define ALLOW "[name *]\nremote_allocate = *@alpha *@beta\n"

TEST_TIMEOUT(sixty_four_mib_under_loss_duplication_corruption_reordering, 600) {
        uint64_t total = getenv("IPCF_TEST_QUICK") ? 16ull << 20 : 64ull << 20;
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        const char *imp = ALLOW "[impair]\nloss = 10%\nduplicate = 1%\ncorrupt = 1%\nreorder = 5%\n";
        char a[256], b[256];
        snprintf(a, sizeof(a), "%sseed = 11\n", imp);
        snprintf(b, sizeof(b), "%sseed = 12\n", imp);
        hostset_start(&S, 0, a);
        hostset_start(&S, 1, b);
        CHECK(hostset_wait_up(&S, 0, 30000));
        sink_arg sa = { "lossy", total };
        pid_t srv = test_fork(stream_sink, &sa);
        hostset_enter(&S, 0);
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.mode = IPCF_MODE_STREAM;
        int port = CHECK_OK(hostset_alloc("lossy@beta", &q));
        uint64_t t0 = test_now_ms();
        stream_source(port, total);
        CHECK_OK(ipcf_dealloc(port, "done"));
        CHECK_EQ(test_wait(srv, 300000), 0);
        ipcf_host_listing *hl;
        CHECK_OK(ipcf_hosts(&hl));
        fprintf(stderr, "%llu MiB in %llu ms at 10%% loss: %llu datagrams lost, %llu PDUs resent\n",
                (unsigned long long)(total >> 20), (unsigned long long)(test_now_ms() - t0),
                (unsigned long long)hl->hosts[0].lost, (unsigned long long)hl->hosts[0].retransmitted);
        CHECK(hl->hosts[0].lost > 0 && hl->hosts[0].retransmitted > 0);
        ipcf_free(hl);
        hostset_stop(&S);
}

/* Host i's view of host j (its state in ipcf_hosts), from a child. */
static void expect_state(int i, const char *name, uint32_t state) {
        pid_t p = fork();
        if (p == 0) {
                hostset_enter(&S, i);
                ipcf_host_listing *hl;
                CHECK_OK(ipcf_hosts(&hl));
                bool found = false;
                for (size_t k = 0; k < hl->n; k++)
                        if (!strcmp(hl->hosts[k].name, name)) {
                                found = true;
                                CHECK_EQ(hl->hosts[k].state, state);
                        }
                CHECK(found);
                ipcf_free(hl);
                _exit(0);
        }
        CHECK_EQ(test_wait(p, 20000), 0);
}

static void alloc_from(int i, const char *name, int want) {
        pid_t p = fork();
        if (p == 0) {
                hostset_enter(&S, i);
                CHECK_ERR(ipcf_alloc(name, NULL, 4000, NULL), want);
                _exit(0);
        }
        CHECK_EQ(test_wait(p, 20000), 0);
}

TEST_TIMEOUT(unenrolled_host_and_wrong_key_never_associate, 90) {
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        /* beta enrols alpha (its right key) but not gamma; alpha has a wrong
         * key for beta; gamma has beta's right key */
        const char *wrong[3] = { NULL, "ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZha2U=", NULL };
        hostset_start_enrol(&S, 1, ALLOW, 1u << 0, NULL);
        hostset_start_enrol(&S, 0, ALLOW, 1u << 1, wrong);
        hostset_start_enrol(&S, 2, "[name *]\nremote_allocate = *@beta\n", 1u << 1, NULL); /* alpha: not enrolled */
        usleep(3000000); /* handshakes every second: three rounds */
        expect_state(1, "alpha", IPCF_HOST_CONNECTING);
        expect_state(0, "beta", IPCF_HOST_CONNECTING);
        expect_state(2, "beta", IPCF_HOST_CONNECTING);
        alloc_from(0, "echo@beta", -EHOSTUNREACH);
        alloc_from(2, "echo@beta", -EHOSTUNREACH);
        hostset_stop(&S);
}

/* ---- forged and garbage datagrams at the ports --------------------------- */

#include "efcp/efcp.h"
#include "efcp/wire.h"

static int raw_fd = -1;

static void raw_send(uint16_t port, const void *buf, size_t len) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        sendto(raw_fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
}

/* One forged plain datagram (a valid CRC: anyone can compute it) of frames
 * f[0..n) to port, with receiver index idx and packet number pn. */
static void forge_plain(uint16_t port, uint32_t idx, uint64_t pn, const uint8_t *frames, size_t n) {
        uint8_t d[1500];
        efcp_hdr h = { .type = EFCP_TYPE_PLAIN, .version = EFCP_VERSION, .rx_index = idx, .pn = pn };
        efcp_wire_put_hdr(d, &h);
        memcpy(d + EFCP_HDR_LEN, frames, n);
        efcp_wire_seal_plain(d, EFCP_HDR_LEN + n);
        raw_send(port, d, EFCP_HDR_LEN + n + EFCP_CRC_LEN);
}

/* Everything an attacker without a host key can send, for ms. */
static void attack(uint16_t port, int ms) {
        uint64_t end = test_now_ms() + (uint64_t)ms, rng = 99;
        uint8_t f[256], junk[1600];
        while (test_now_ms() < end) {
                for (int k = 0; k < 50; k++) {
                        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                        uint32_t idx = (uint32_t)rng, port_id = (uint32_t)(rng >> 32) % 64;
                        size_t n;
                        /* a packet number far ahead */
                        n = efcp_wire_put_ping(f);
                        forge_plain(port, idx, (1ull << 62) - 1, f, n);
                        /* a CLOSE, a DEALLOC request and confirm, DATA, CREDIT */
                        n = efcp_wire_put_close(f, 0, EFCP_REASON_PROTOCOL_ERROR);
                        forge_plain(port, idx, rng % 1000, f, n);
                        n = efcp_wire_put_dealloc(f, 0, 0, port_id, port_id, EFCP_REASON_NORMAL, 0);
                        forge_plain(port, idx, rng % 1000, f, n);
                        n = efcp_wire_put_dealloc(f, 2, 0, port_id, port_id, EFCP_REASON_NORMAL, 0);
                        forge_plain(port, idx, rng % 1000, f, n);
                        n = efcp_wire_put_data_hdr(f, 3, 8, port_id, port_id, (uint32_t)rng);
                        memcpy(f + n, "forged!!", 8);
                        forge_plain(port, idx, rng % 1000, f, n + 8);
                        n = efcp_wire_put_fc(f, EFCP_FT_CREDIT, port_id, port_id, (uint32_t)rng);
                        forge_plain(port, idx, rng % 1000, f, n);
                        /* authenticated-looking ones: any index, any tag */
                        size_t len = 16 + (size_t)(rng % 1400);
                        for (size_t i = 0; i < len; i++)
                                junk[i] = (uint8_t)(rng >> (i % 56));
                        junk[0] = 2;
                        junk[1] = 1;
                        raw_send(port, junk, len);
                        /* handshake types with garbage, truncated ones, nothing */
                        junk[0] = (uint8_t)(3 + k % 3);
                        raw_send(port, junk, (size_t)(rng % 200));
                        raw_send(port, junk, 0);
                }
                usleep(1000);
        }
}

TEST_TIMEOUT(forged_and_garbage_datagrams_change_nothing, 300) {
        uint64_t total = getenv("IPCF_TEST_QUICK") ? 8ull << 20 : 32ull << 20;
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, ALLOW);
        hostset_start(&S, 1, ALLOW);
        CHECK(hostset_wait_up(&S, 0, 10000));
        raw_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sink_arg sa = { "target", total };
        pid_t srv = test_fork(stream_sink, &sa);
        pid_t cli = fork();
        if (cli == 0) {
                hostset_enter(&S, 0);
                ipcf_qos q;
                ipcf_qos_init(&q);
                q.mode = IPCF_MODE_STREAM;
                int port = CHECK_OK(hostset_alloc("target@beta", &q));
                stream_source(port, total);
                CHECK_OK(ipcf_dealloc(port, "done"));
                _exit(0);
        }
        /* while the transfer runs: at both daemons' ports */
        for (int round = 0; round < 6; round++) {
                attack(S.h[1].port, 300);
                attack(S.h[0].port, 300);
        }
        CHECK_EQ(test_wait(cli, 120000), 0);
        CHECK_EQ(test_wait(srv, 120000), 0);
        /* no association was lost or made again by any of it */
        pid_t p = fork();
        if (p == 0) {
                hostset_enter(&S, 0);
                ipcf_host_listing *hl;
                CHECK_OK(ipcf_hosts(&hl));
                CHECK_EQ(hl->hosts[0].state, IPCF_HOST_UP);
                CHECK_EQ(hl->hosts[0].ups, 1);
                CHECK_EQ(hl->hosts[0].downs, 0);
                ipcf_free(hl);
                _exit(0);
        }
        CHECK_EQ(test_wait(p, 20000), 0);
        hostset_stop(&S);
}

/* ---- remote activation -------------------------------------------------------- */

TEST_TIMEOUT(remote_activation_starts_the_program_on_beta, 90) {
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        /* beta starts `ipcf listen --echo` for "lazy" when someone asks */
        char *ipcf = test_build_path("bin/ipcf");
        char rule[1024];
        snprintf(rule, sizeof(rule),
                 "[name lazy]\nremote_allocate = *@alpha\nactivate = exec %s listen lazy --echo\n", ipcf);
        free(ipcf);
        hostset_start(&S, 0, ALLOW);
        hostset_start(&S, 1, rule);
        CHECK(hostset_wait_up(&S, 0, 10000));
        hostset_enter(&S, 0);
        int port = CHECK_OK(hostset_alloc("lazy@beta", NULL));
        CHECK_EQ(ipcf_write(port, "wake up", 7, 5000), 7);
        char buf[16];
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 10000), 7);
        CHECK(!memcmp(buf, "wake up", 7));
        ipcf_peer_info pi;
        CHECK_OK(ipcf_peer(port, &pi));
        CHECK(!strcmp(pi.name, "lazy@beta"));
        CHECK_OK(ipcf_dealloc(port, "done"));
        hostset_stop(&S);
}

/* ---- a hostile client of a relayed flow ------------------------------------------ */

/* Beta: echo every message of one flow on name, until it ends in any way
 * (the hostile side may break its flow: no check here). */
static void loose_echo(void *p) {
        const char *name = p;
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register(name, NULL));
        int port = ipcf_accept(reg, 30000, NULL);
        if (port < 0)
                _exit(0);
        static char buf[1 << 16];
        ssize_t n;
        while ((n = ipcf_read(port, buf, sizeof(buf), 30000)) >= 0)
                if (ipcf_write(port, buf, (size_t)n, 5000) != n)
                        break;
        _exit(0);
}

static void hostile_gone(int sig) {
        (void)sig;
        _exit(0);
}

/* Alpha: a client of NAME@beta that sends and reads (so that its daemon
 * delivers answers and spins on its ring) and, between, rewrites ring
 * control words, records, its end and run state, and tampers with its
 * descriptors (the seeded mutator of tests/support/hostile.c), until
 * killed. */
typedef struct hostile_arg {
        uint64_t seed;
        const char *name;
} hostile_arg;

static void hostile_client(void *p) {
        const hostile_arg *a = p;
        hostset_enter(&S, 0);
        fdset fb;
        mapset mb;
        CHECK_OK(ipcf_connect());
        fdset_snapshot(&fb);
        mapset_snapshot(&mb, "ipcf-flow");
        char target[64];
        snprintf(target, sizeof(target), "%s@beta", a->name);
        int port = CHECK_OK(hostset_alloc(target, NULL));
        int fds[64];
        int n = fdset_new_since(&fb, fds, 64);
        size_t len;
        void *mem = mapset_new_since(&mb, "ipcf-flow", &len);
        CHECK(mem != NULL);
        mutator m;
        mutator_init(&m, a->seed, mem, len, 0, fds, n);
        struct sigaction sa = { .sa_handler = hostile_gone };
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        static char buf[512];
        for (;;) {
                uint64_t r = mutator_rand(&m);
                (void)ipcf_write(port, buf, 64, 0);
                (void)ipcf_read(port, buf, sizeof(buf), 1);
                if (r % 4 == 0)
                        mutator_step(&m); /* often while its daemon spins for its answer */
        }
}

TEST_TIMEOUT(hostile_client_of_a_relayed_flow_stalls_no_daemon, 120) {
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, ALLOW);
        hostset_start(&S, 1, ALLOW);
        CHECK(hostset_wait_up(&S, 0, 10000));
        static const char *const names[] = { "echo-h7", "echo-h8", "echo-h9" };
        static const uint64_t seeds[] = { 7, 8, 9 };
        pid_t eo = test_fork(loose_echo, "echo-ok"), eh[3];
        for (int k = 0; k < 3; k++)
                eh[k] = test_fork(loose_echo, (void *)names[k]);
        hostset_enter(&S, 0);
        int port = CHECK_OK(hostset_alloc("echo-ok@beta", NULL));
        for (int k = 0; k < 3; k++) {
                hostile_arg ha = { seeds[k], names[k] };
                pid_t h = test_fork(hostile_client, &ha);
                /* an honest client's round trips meanwhile, each bounded:
                 * for 1.5 s, and 10 at least however long they take (how
                 * many fit in 1.5 s is the machine's load, a figure only) */
                uint64_t end = test_now_ms() + 1500, worst = 0;
                int trips = 0;
                char out[64], in[64];
                while (test_now_ms() < end || trips < 10) {
                        test_fill(out, sizeof(out), (uint64_t)trips);
                        uint64_t t = test_now_ms();
                        CHECK_EQ(ipcf_write(port, out, sizeof(out), 10000), (ssize_t)sizeof(out));
                        CHECK_EQ(ipcf_read(port, in, sizeof(in), 10000), (ssize_t)sizeof(in));
                        CHECK_MEM(in, out, sizeof(out));
                        worst = MAX(worst, test_now_ms() - t);
                        trips++;
                }
                fprintf(stderr, "seed %llu: %d round trips beside the hostile, the slowest %llu ms\n",
                        (unsigned long long)seeds[k], trips, (unsigned long long)worst);
                /* loose enough for ASan at load 30; a stalled daemon fails
                 * a 10 s read above */
                CHECK(worst < 5000);
                kill(h, SIGKILL);
                test_wait(h, 5000);
        }
        CHECK_OK(ipcf_dealloc(port, "done"));
        CHECK_EQ(test_wait(eo, 10000), 0);
        /* the association lived through it all */
        ipcf_host_listing *hl;
        CHECK_OK(ipcf_hosts(&hl));
        CHECK_EQ(hl->hosts[0].state, IPCF_HOST_UP);
        CHECK_EQ(hl->hosts[0].ups, 1);
        CHECK_EQ(hl->hosts[0].downs, 0);
        ipcf_free(hl);
        for (int k = 0; k < 3; k++) {
                kill(eh[k], SIGKILL);
                test_wait(eh[k], 5000);
        }
        hostset_stop(&S);
}
