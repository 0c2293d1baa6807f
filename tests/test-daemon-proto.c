/*
 * test-daemon-proto.c — integration tests of ipcfd speaking the raw control
 * protocol (common/ctl.c), not the library: every case starts the real daemon
 * on a private runtime dir (test_daemon_start) and plays client, registrant
 * and allocator itself.
 *
 * The same binary doubles as an activated service: started as
 *   test-daemon-proto --act-child NAME N
 * (detected by a constructor, before the harness's main) it registers NAME,
 * accepts N requests and lingers until the daemon goes away.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <limits.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/flowmem.h"
#include "common/ring.h"
#include "common/util.h"
#include "common/wake.h"
#include "support/test.h"

/* ---- raw protocol helpers ------------------------------------------------ */

typedef struct rmsg {
        uint8_t buf[CTL_MSG_MAX];
        ctl_msg m;
        int fds[CTL_FDS_MAX];
        unsigned n_fds;
} rmsg;

typedef struct flowinfo {
        uint64_t id;
        uint32_t side;
        uint64_t shm_size;
        ipcf_qos qos;
        struct ctl_peer_wire peer;
        char peer_name[IPCF_NAME_MAX + 1];
        int fds[FLOW_SIDE_FDS]; /* common/flowmem.h order */
} flowinfo;

static uint32_t next_seq = 1;

static int dconnect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", getenv("IPCF_RUNTIME_DIR"),
                 CTL_SOCKET_NAME);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Receive one message within timeout_ms: 1 got one, 0 EOF, -ETIMEDOUT, -errno. */
static int recv_msg(int fd, rmsg *r, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int k = poll(&p, 1, timeout_ms);
        if (k == 0)
                return -ETIMEDOUT;
        if (k < 0)
                return -errno;
        ssize_t n = ctl_recv(fd, r->buf, sizeof(r->buf), r->fds, &r->n_fds, 0);
        if (n <= 0)
                return (int)n;
        int e = ctl_msg_parse(r->buf, (size_t)n, &r->m);
        return e < 0 ? e : 1;
}

static void close_fds(rmsg *r) {
        for (unsigned i = 0; i < r->n_fds; i++)
                close(r->fds[i]);
        r->n_fds = 0;
}

/* Wait for the reply to a request: 0 for OK (r holds it), -errno for ERROR. */
static int wait_reply(int fd, rmsg *r, uint32_t seq) {
        int k = recv_msg(fd, r, 5000);
        if (k <= 0)
                test_fail(__FILE__, __LINE__, "no reply (%d)", k);
        CHECK_EQ(r->m.seq, seq);
        if (r->m.type == CTL_ERROR) {
                uint32_t e = 0;
                CHECK_OK(ctl_get_u32(&r->m, CTL_A_ERRNO, &e));
                return -(int)e;
        }
        CHECK(r->m.type == CTL_OK || r->m.type == CTL_FLOW);
        return 0;
}

static int do_hello(int fd, uint32_t *ret_pid) {
        ctl_builder b;
        rmsg r;
        uint32_t seq = next_seq++;
        ctl_begin(&b, CTL_HELLO, seq);
        ctl_put_u32(&b, CTL_A_VERSION, CTL_VERSION);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, NULL, 0));
        int e = wait_reply(fd, &r, seq);
        if (e == 0 && ret_pid)
                CHECK_OK(ctl_get_u32(&r.m, CTL_A_PID, ret_pid));
        return e;
}

static int do_register(int fd, const char *name, uint32_t flags, uint32_t backlog, uint64_t *ret_id,
                       int *ret_sock) {
        ctl_builder b;
        rmsg r;
        uint32_t seq = next_seq++;
        ctl_begin(&b, CTL_REGISTER, seq);
        ctl_put_str(&b, CTL_A_NAME, name);
        ctl_put_u32(&b, CTL_A_REG_FLAGS, flags);
        ctl_put_u32(&b, CTL_A_BACKLOG, backlog);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, NULL, 0));
        int e = wait_reply(fd, &r, seq);
        if (e < 0) {
                CHECK_EQ(r.n_fds, 0);
                return e;
        }
        CHECK_EQ(r.n_fds, 1);
        CHECK_OK(ctl_get_u64(&r.m, CTL_A_REG_ID, ret_id));
        *ret_sock = r.fds[0];
        return 0;
}

static int do_simple(int fd, uint16_t type, uint16_t a1, uint64_t v1, uint16_t a2, uint64_t v2,
                     const char *reason) {
        ctl_builder b;
        rmsg r;
        uint32_t seq = next_seq++;
        ctl_begin(&b, type, seq);
        if (a1)
                ctl_put_u64(&b, a1, v1);
        if (a2)
                ctl_put_u64(&b, a2, v2);
        if (reason)
                ctl_put_str(&b, CTL_A_REASON, reason);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, NULL, 0));
        int e = wait_reply(fd, &r, seq);
        close_fds(&r);
        return e;
}

/* A request whose only attribute is NAME (MBOX_CREATE, WATCH...): 0 or -errno. */
static int do_name_request(int fd, uint16_t type, const char *name) {
        ctl_builder b;
        rmsg r;
        uint32_t seq = next_seq++;
        ctl_begin(&b, type, seq);
        ctl_put_str(&b, CTL_A_NAME, name);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, NULL, 0));
        int e = wait_reply(fd, &r, seq);
        close_fds(&r);
        return e;
}

/* ALLOC of a wire qos with a fresh reply socketpair; *ret_reply is our end.
 * role < 0: no ROLE attribute. */
static int do_alloc_wire(int fd, const char *name, const struct ctl_qos_wire *qw, int64_t role,
                         int timeout_ms, uint64_t *ret_id, int *ret_reply) {
        ctl_builder b;
        rmsg r;
        int sv[2];
        uint32_t seq = next_seq++;

        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
        ctl_begin(&b, CTL_ALLOC, seq);
        ctl_put_str(&b, CTL_A_NAME, name);
        ctl_put(&b, CTL_A_QOS, qw, sizeof(*qw));
        ctl_put_u32(&b, CTL_A_TIMEOUT_MS, (uint32_t)timeout_ms);
        if (role >= 0)
                ctl_put_u32(&b, CTL_A_ROLE, (uint32_t)role);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, &sv[1], 1));
        close(sv[1]);
        int e = wait_reply(fd, &r, seq);
        if (e < 0) {
                close(sv[0]);
                return e;
        }
        if (ret_id)
                CHECK_OK(ctl_get_u64(&r.m, CTL_A_ALLOC_ID, ret_id));
        *ret_reply = sv[0];
        return 0;
}

/* ALLOC with a fresh reply socketpair; *ret_reply is our end. */
static int do_alloc(int fd, const char *name, const ipcf_qos *qos, int timeout_ms, uint64_t *ret_id,
                    int *ret_reply) {
        struct ctl_qos_wire qw;
        ipcf_qos q;
        memset(&q, 0, sizeof(q));
        if (qos)
                q = *qos;
        ctl_qos_to_wire(&q, &qw);
        return do_alloc_wire(fd, name, &qw, -1, timeout_ms, ret_id, ret_reply);
}

/* The next REQUEST on a registration socket. */
static void wait_request(int rs, uint64_t *ret_req, struct ctl_peer_wire *ret_peer, char *ret_pname) {
        rmsg r;
        int k = recv_msg(rs, &r, 5000);
        if (k != 1)
                test_fail(__FILE__, __LINE__, "no REQUEST (%d)", k);
        CHECK_EQ(r.m.type, CTL_REQUEST);
        CHECK_EQ(r.n_fds, 0);
        CHECK_OK(ctl_get_u64(&r.m, CTL_A_REQ_ID, ret_req));
        if (ret_peer)
                CHECK_OK(ctl_get_fixed(&r.m, CTL_A_PEER, ret_peer, sizeof(*ret_peer)));
        if (ret_pname) {
                const char *s;
                CHECK_OK(ctl_get_str(&r.m, CTL_A_PEER_NAME, IPCF_NAME_MAX, &s));
                strcpy(ret_pname, s);
        }
}

static void parse_flow(rmsg *r, flowinfo *f) {
        struct ctl_qos_wire qw;
        const char *s;
        CHECK_EQ(r->m.type, CTL_FLOW);
        CHECK_EQ(r->n_fds, FLOW_SIDE_FDS);
        CHECK_OK(ctl_get_u64(&r->m, CTL_A_FLOW_ID, &f->id));
        CHECK_OK(ctl_get_u32(&r->m, CTL_A_SIDE, &f->side));
        CHECK_OK(ctl_get_u64(&r->m, CTL_A_SHM_SIZE, &f->shm_size));
        CHECK_OK(ctl_get_fixed(&r->m, CTL_A_QOS, &qw, sizeof(qw)));
        ctl_qos_from_wire(&qw, &f->qos);
        CHECK_OK(ctl_get_fixed(&r->m, CTL_A_PEER, &f->peer, sizeof(f->peer)));
        CHECK_OK(ctl_get_str(&r->m, CTL_A_PEER_NAME, IPCF_NAME_MAX, &s));
        strcpy(f->peer_name, s);
        memcpy(f->fds, r->fds, sizeof(f->fds));
        r->n_fds = 0;
}

static int do_accept(int fd, uint64_t reg_id, uint64_t req_id, flowinfo *f) {
        ctl_builder b;
        rmsg r;
        uint32_t seq = next_seq++;
        ctl_begin(&b, CTL_ACCEPT, seq);
        ctl_put_u64(&b, CTL_A_REG_ID, reg_id);
        ctl_put_u64(&b, CTL_A_REQ_ID, req_id);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, NULL, 0));
        int e = wait_reply(fd, &r, seq);
        if (e < 0)
                return e;
        parse_flow(&r, f);
        return 0;
}

/* The outcome on a reply socket: 0 and *f for FLOW, -errno for ERROR. */
static int wait_outcome(int reply, flowinfo *f, char *ret_reason, uint32_t *ret_end, int timeout_ms) {
        rmsg r;
        int k = recv_msg(reply, &r, timeout_ms);
        if (k != 1)
                test_fail(__FILE__, __LINE__, "no outcome on the reply socket (%d)", k);
        if (r.m.type == CTL_FLOW) {
                parse_flow(&r, f);
                return 0;
        }
        CHECK_EQ(r.m.type, CTL_ERROR);
        uint32_t e = 0, end = 0;
        const char *s;
        CHECK_OK(ctl_get_u32(&r.m, CTL_A_ERRNO, &e));
        if (ret_reason)
                strcpy(ret_reason, ctl_get_str(&r.m, CTL_A_REASON, IPCF_REASON_MAX, &s) == 0 ? s : "");
        if (ret_end) {
                if (ctl_get_u32(&r.m, CTL_A_END_CODE, &end) < 0)
                        end = 0;
                *ret_end = end;
        }
        return -(int)e;
}

static void send_ok(int sock) {
        ctl_builder b;
        ctl_begin(&b, CTL_OK, 0);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(sock, &b, NULL, 0));
}

static void flow_close(flowinfo *f) {
        for (int i = 0; i < FLOW_SIDE_FDS; i++)
                close(f->fds[i]);
}

static void *flow_map(const flowinfo *f) {
        void *p = mmap(NULL, f->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fds[0], 0);
        CHECK(p != MAP_FAILED);
        return p;
}

/* Is the fd readable within timeout_ms? */
static bool readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, timeout_ms) == 1;
}

/* Has the daemon closed this connection (EOF) within 2 s? */
static bool closed_by_daemon(int fd) {
        uint8_t b[64];
        if (!readable(fd, 2000))
                return false;
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Make sure the daemon has handled every event that was ready before this
 * call (closes of our sockets included): a round trip on fd, which it
 * answers in the same or a later batch of events, then a little slack. */
static void sync_daemon(int fd) {
        CHECK_OK(do_hello(fd, NULL));
        usleep(10000);
}

/* Register + alloc + accept; fills both flow ends (a: allocator, b: acceptor). */
static void make_flow(int ca, int cb, const char *name, const ipcf_qos *qos, uint64_t *ret_reg,
                      int *ret_rs, flowinfo *a, flowinfo *b) {
        uint64_t reg, req, aid;
        int rs, reply;
        CHECK_OK(do_register(cb, name, 0, 0, &reg, &rs));
        CHECK_OK(do_alloc(ca, name, qos, 5000, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        CHECK_EQ(req, aid);
        CHECK_OK(do_accept(cb, reg, req, b));
        CHECK_OK(wait_outcome(reply, a, NULL, NULL, 5000));
        send_ok(reply);
        close(reply);
        if (ret_reg)
                *ret_reg = reg;
        if (ret_rs)
                *ret_rs = rs;
        else
                close(rs);
}

/* ---- the activated service (see the file comment) ------------------------ */

__attribute__((constructor)) static void act_child_main(int argc, char **argv, char **envp) {
        (void)envp;
        if (argc < 4 || strcmp(argv[1], "--act-child") != 0)
                return;
        int n = atoi(argv[3]), fd = dconnect(), rs;
        uint64_t reg, req;
        flowinfo f;
        const char *nas = getenv("IPCF_NO_AUTOSTART"), *an = getenv("IPCF_ACTIVATED_NAME");
        /* The daemon's environment for activated programs. */
        if (!nas || strcmp(nas, "1") != 0 || !an || strcmp(an, argv[2]) != 0 ||
            !getenv("IPCF_RUNTIME_DIR") || isatty(0))
                _exit(5);
        if (fd < 0)
                _exit(3);
        if (do_register(fd, argv[2], 0, 0, &reg, &rs) < 0)
                _exit(4);
        for (int i = 0; i < n; i++) {
                wait_request(rs, &req, NULL, NULL);
                if (do_accept(fd, reg, req, &f) == 0)
                        flow_close(&f);
        }
        /* Linger until the daemon goes (or 10 s). */
        readable(fd, 10000);
        _exit(0);
}

/* ---- cases ---------------------------------------------------------------- */

TEST_TIMEOUT(hello, 20) {
        test_daemon d;
        uint32_t pid = 0;
        test_daemon_start(&d, NULL, NULL);
        int fd = CHECK_OK(dconnect());
        CHECK_OK(do_hello(fd, &pid));
        CHECK_EQ(pid, d.pid);
        /* Requests without HELLO work too. */
        int fd2 = CHECK_OK(dconnect());
        CHECK_ERR(do_simple(fd2, CTL_UNREGISTER, CTL_A_REG_ID, 12345, 0, 0, NULL), -ENOENT);
        close(fd);
        close(fd2);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(handshake, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, aid, req;
        int rs, reply;
        struct ctl_peer_wire pw;
        char pname[IPCF_NAME_MAX + 1];
        flowinfo a, b;

        CHECK_OK(do_register(cb, "svc.echo", 0, 0, &reg, &rs));
        ipcf_qos q = { .max_bytes = 65536, .max_msg_size = 1024 };
        CHECK_OK(do_alloc(ca, "svc.echo", &q, 5000, &aid, &reply));
        wait_request(rs, &req, &pw, pname);
        CHECK_EQ(req, aid);
        CHECK_EQ(le32toh(pw.pid), getpid());
        CHECK_EQ(le32toh(pw.uid), getuid());
        CHECK(strcmp(pname, "test-daemon-proto") == 0);

        CHECK_OK(do_accept(cb, reg, req, &b));
        CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
        send_ok(reply);
        close(reply);

        /* Both ends agree on the flow. */
        CHECK_EQ(a.id, b.id);
        CHECK_EQ(a.side, 0);
        CHECK_EQ(b.side, 1);
        CHECK_EQ(a.shm_size, b.shm_size);
        CHECK_EQ(a.qos.max_bytes, 65536);
        CHECK_EQ(a.qos.max_msg_size, 1024);
        CHECK(strcmp(a.peer_name, "svc.echo") == 0);
        CHECK(strcmp(b.peer_name, "test-daemon-proto") == 0);
        CHECK_EQ(le32toh(b.peer.pid), getpid());

        /* The memfd: sized as the layout says, sealed, with the header. */
        flow_layout l;
        CHECK_OK(flow_layout_for(&a.qos, &l));
        struct stat st;
        CHECK_OK(fstat(a.fds[0], &st));
        CHECK_EQ(st.st_size, l.total);
        CHECK_EQ(a.shm_size, l.total);
        int seals = fcntl(a.fds[0], F_GET_SEALS);
        CHECK_EQ(seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        CHECK(ftruncate(a.fds[0], 0) < 0);
        struct flow_hdr *h = flow_map(&a);
        CHECK_EQ(h->magic, FLOW_MAGIC);
        CHECK_EQ(h->version, FLOW_VERSION);
        CHECK_EQ(h->size, l.total);
        CHECK_EQ(atomic_load(&h->end[0].code), 0);
        /* Writes through one end's memfd show through the other's. */
        struct flow_hdr *hb = flow_map(&b);
        flow_ctl_of(h, 0)->msgs_w = 7;
        CHECK_EQ(atomic_load(&flow_ctl_of(hb, 0)->msgs_w), 7);

        /* The wake-up channels are crossed: a's "peer rx" bell rings b's rx
         * ear, and each side's own bells ring its own ears. */
        CHECK_OK(wake_ring(a.fds[FLOW_FD_PEER_RX_BELL]));
        CHECK(readable(b.fds[FLOW_FD_RX_EAR], 1000));
        CHECK_EQ(wake_drain(b.fds[FLOW_FD_RX_EAR]), 1);
        CHECK_OK(wake_ring(b.fds[FLOW_FD_PEER_TX_BELL]));
        CHECK_EQ(wake_drain(a.fds[FLOW_FD_TX_EAR]), 1);
        CHECK_EQ(wake_drain(a.fds[FLOW_FD_RX_EAR]), 0);
        CHECK_OK(wake_ring(a.fds[FLOW_FD_RX_BELL]));
        CHECK_EQ(wake_drain(a.fds[FLOW_FD_RX_EAR]), 1);
        CHECK_OK(wake_ring(b.fds[FLOW_FD_TX_BELL]));
        CHECK_EQ(wake_drain(b.fds[FLOW_FD_TX_EAR]), 1);
        CHECK_EQ(wake_drain(b.fds[FLOW_FD_RX_EAR]), 0);

        /* Dealloc both sides; then the id is gone. */
        CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "bye"));
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
        CHECK_ERR(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL), -ENOENT);
        /* A's dealloc was written for it (the library normally does that). */
        CHECK_EQ(atomic_load(&hb->end[0].code), IPCF_END_DEALLOC);
        CHECK(strcmp(hb->end[0].reason, "bye") == 0);
        flow_close(&a);
        flow_close(&b);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(refuse_with_reason, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, aid, req;
        int rs, reply;
        char reason[IPCF_REASON_MAX + 1];
        uint32_t end;
        CHECK_OK(do_register(cb, "picky", 0, 0, &reg, &rs));
        CHECK_OK(do_alloc(ca, "picky", NULL, 5000, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_simple(cb, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, "not today"));
        CHECK_ERR(wait_outcome(reply, NULL, reason, &end, 5000), -ECONNREFUSED);
        CHECK(strcmp(reason, "not today") == 0);
        CHECK_EQ(end, IPCF_END_REFUSED);
        /* The daemon closed its end after the outcome. */
        CHECK(closed_by_daemon(reply));
        /* Deciding it again: no such request. */
        CHECK_ERR(do_simple(cb, CTL_ACCEPT, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, NULL), -ENOENT);
        /* Someone else's registration: no such registration. */
        CHECK_ERR(do_simple(ca, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, NULL), -ENOENT);
        close(reply);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(unknown_name, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), reply;
        CHECK_OK(do_alloc(ca, "nobody.home", NULL, 5000, NULL, &reply));
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ENOENT);
        close(reply);
        /* Bad names, qos and timeouts are refused on the main connection. */
        CHECK_ERR(do_alloc(ca, "has space", NULL, 5000, NULL, &reply), -EINVAL);
        char longname[200];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        CHECK_ERR(do_alloc(ca, longname, NULL, 5000, NULL, &reply), -EINVAL);
        ipcf_qos q = { .capacity = 9 };
        CHECK_ERR(do_alloc(ca, "x", &q, 5000, NULL, &reply), -EINVAL);
        CHECK_ERR(do_alloc(ca, "x", NULL, 0, NULL, &reply), -EINVAL);
        CHECK_ERR(do_alloc(ca, "x", NULL, -5, NULL, &reply), -EINVAL);
        uint64_t reg;
        int rs;
        CHECK_ERR(do_register(ca, "", 0, 0, &reg, &rs), -EINVAL);
        CHECK_ERR(do_register(ca, "ok", 0x80, 0, &reg, &rs), -EINVAL);
        CHECK_OK(do_hello(ca, NULL));
        close(ca);
        test_daemon_stop(&d);
}

/* The role of an ALLOC is its ROLE attribute, set by the library's model
 * code; the qos's reserved byte (where the role used to travel, unchecked)
 * opens nothing: it is refused. Issue 9. */
TEST_TIMEOUT(alloc_role_only_from_its_attribute, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), reply;
        ctl_builder b;
        CHECK_OK(do_name_request(c, CTL_MBOX_CREATE, "role.box"));
        ipcf_qos q = { 0 };
        struct ctl_qos_wire qw;
        ctl_qos_to_wire(&q, &qw);
        CHECK_EQ(qw.reserved0, 0);
        /* The old way: the role in the qos byte. Refused, nothing opened. */
        for (unsigned role = 1; role < CTL_ROLE_MAX_ + 2; role++) {
                qw.reserved0 = (uint8_t)role;
                CHECK_ERR(do_alloc_wire(c, "role.box", &qw, -1, 2000, NULL, &reply), -EINVAL);
                CHECK_ERR(do_alloc_wire(c, "role.box", &qw, CTL_ROLE_MBOX_RECV, 2000, NULL, &reply),
                          -EINVAL);
        }
        qw.reserved0 = 0;
        /* A role the daemon does not know. */
        CHECK_ERR(do_alloc_wire(c, "role.box", &qw, CTL_ROLE_MAX_, 2000, NULL, &reply), -EINVAL);
        /* No role: an ordinary flow, and nobody registered the name. */
        CHECK_OK(do_alloc_wire(c, "role.box", &qw, -1, 2000, NULL, &reply));
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ENOENT);
        close(reply);
        /* The attribute: a mailbox receiver, whose other side is the daemon. */
        flowinfo f;
        CHECK_OK(do_alloc_wire(c, "role.box", &qw, CTL_ROLE_MBOX_RECV, 2000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &f, NULL, NULL, 5000));
        CHECK_EQ(f.side, 0);
        CHECK_EQ(f.qos.reserved, 0); /* the granted qos carries no role either */
        uint32_t dpid;
        CHECK_OK(do_hello(c, &dpid));
        CHECK_EQ(f.peer.pid, dpid);
        send_ok(reply);
        close(reply);
        flow_close(&f);
        /* A ROLE of the wrong size breaks the protocol. */
        int bad = CHECK_OK(dconnect()), sv[2];
        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
        ctl_begin(&b, CTL_ALLOC, 1);
        ctl_put_str(&b, CTL_A_NAME, "role.box");
        ctl_put_u64(&b, CTL_A_ROLE, CTL_ROLE_MBOX_RECV);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(bad, &b, &sv[1], 1));
        CHECK(closed_by_daemon(bad));
        close(sv[0]);
        close(sv[1]);
        close(bad);
        CHECK_OK(do_hello(c, NULL));
        close(c);
        test_daemon_stop(&d);
}

/* Receivers of the mailbox, from MODEL_LIST (-1 if it is not listed). */
static int mbox_receivers(int c, const char *name) {
        ctl_builder b;
        rmsg r;
        uint32_t seq = next_seq++;
        ctl_begin(&b, CTL_MODEL_LIST, seq);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(c, &b, NULL, 0));
        CHECK_OK(wait_reply(c, &r, seq));
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        while (ctl_attr_next(&r.m, &cur, &t, &v, &len)) {
                struct ctl_model_entry_wire e;
                if (t != CTL_A_MODEL_ENTRY || len != sizeof(e))
                        continue;
                memcpy(&e, v, sizeof(e));
                if (strcmp(e.name, name) == 0)
                        return (int)le32toh(e.receivers);
        }
        return -1;
}

/* A flow to the broker is handed over like any other: a requester that
 * closes its reply socket without the OK gave up, and the daemon's end lets
 * go of it (nothing is left behind in the mailbox). */
TEST_TIMEOUT(broker_requester_gave_up, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), reply;
        CHECK_OK(do_name_request(c, CTL_MBOX_CREATE, "gaveup.box"));
        struct ctl_qos_wire qw;
        ipcf_qos q = { 0 };
        ctl_qos_to_wire(&q, &qw);
        flowinfo f;
        CHECK_OK(do_alloc_wire(c, "gaveup.box", &qw, CTL_ROLE_MBOX_RECV, 2000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &f, NULL, NULL, 5000));
        CHECK_EQ(mbox_receivers(c, "gaveup.box"), 1);
        close(reply); /* no OK */
        struct flow_hdr *h = flow_map(&f);
        for (int i = 0; i < 200 && mbox_receivers(c, "gaveup.box") != 0; i++)
                usleep(10000);
        CHECK_EQ(mbox_receivers(c, "gaveup.box"), 0);
        CHECK_EQ(atomic_load(&h->end[0].code), IPCF_END_DEALLOC);
        CHECK(strcmp(h->end[0].reason, "requester gave up") == 0);
        munmap(h, f.shm_size);
        flow_close(&f);
        close(c);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(alloc_timeout, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, aid, req;
        int rs, reply;
        flowinfo f;
        CHECK_OK(do_register(cb, "slow", 0, 0, &reg, &rs));
        uint64_t t0 = test_now_ms();
        CHECK_OK(do_alloc(ca, "slow", NULL, 200, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ETIMEDOUT);
        uint64_t dt = test_now_ms() - t0;
        CHECK(dt >= 190 && dt < 3000);
        /* Too late to decide: cancelled, not unknown. */
        CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        CHECK_ERR(do_simple(cb, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, req, NULL), -ECANCELED);
        close(reply);

        /* A requester that hangs up its reply socket withdraws its request. */
        CHECK_OK(do_alloc(ca, "slow", NULL, 5000, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        close(reply);
        sync_daemon(cb);
        CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        /* So does one whose main connection dies. */
        int cc = CHECK_OK(dconnect());
        CHECK_OK(do_alloc(cc, "slow", NULL, 5000, &aid, &reply));
        wait_request(rs, &req, NULL, NULL);
        close(cc);
        CHECK(closed_by_daemon(reply));
        CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        close(reply);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(many_withdrawn_requests_cancel, 30) {
        /* A registrant that reads its requests late: 200 of them timed out
         * meanwhile; deciding each, even the oldest, says ECANCELED. */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect()), rs;
        uint64_t reg;
        enum { N = 200 };
        int reply[N];
        CHECK_OK(do_register(cb, "late.reader", 0, 1024, &reg, &rs));
        for (int i = 0; i < N; i++)
                CHECK_OK(do_alloc(ca, "late.reader", NULL, 50, NULL, &reply[i]));
        for (int i = 0; i < N; i++) {
                CHECK_ERR(wait_outcome(reply[i], NULL, NULL, NULL, 5000), -ETIMEDOUT);
                close(reply[i]);
        }
        for (int i = 0; i < N; i++) {
                uint64_t req;
                flowinfo f;
                wait_request(rs, &req, NULL, NULL);
                CHECK_ERR(do_accept(cb, reg, req, &f), -ECANCELED);
        }
        /* An id never sent to it is still unknown. */
        CHECK_ERR(do_simple(cb, CTL_REFUSE, CTL_A_REG_ID, reg, CTL_A_REQ_ID, 999999, NULL), -ENOENT);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

/* Send raw bytes (and maybe fds) as one packet. */
static void send_raw(int fd, const void *buf, size_t len, const int *fds, unsigned n_fds) {
        ctl_builder *b = malloc(sizeof(*b));
        memcpy(b->buf, buf, len);
        b->len = len;
        b->err = 0;
        CHECK_OK(ctl_send(fd, b, fds, n_fds));
        free(b);
}

TEST_TIMEOUT(malformed_messages, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int good = CHECK_OK(dconnect());
        CHECK_OK(do_hello(good, NULL));
        ctl_builder b;

        for (int k = 0; k < 14; k++) {
                int bad = CHECK_OK(dconnect());
                int sv[2] = { -1, -1 };
                switch (k) {
                case 0: send_raw(bad, "garbage!", 8, NULL, 0); break;
                case 1: /* a header whose len disagrees with the packet */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        b.buf[4] = 99;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 2: /* an attribute running past the end */
                        ctl_begin(&b, CTL_REGISTER, 1);
                        ctl_put_str(&b, CTL_A_NAME, "abc");
                        ctl_end(&b);
                        b.buf[CTL_HDR_SIZE + 2] = 200;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 3: /* a string without its NUL */
                        ctl_begin(&b, CTL_REGISTER, 1);
                        ctl_put(&b, CTL_A_NAME, "abcd", 4);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 4: /* unknown message type */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        b.buf[0] = 99;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 5: /* a daemon-to-client type */
                        ctl_begin(&b, CTL_FLOW, 1);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 6: /* a known attribute of the wrong size */
                        ctl_begin(&b, CTL_UNREGISTER, 1);
                        ctl_put_u32(&b, CTL_A_REG_ID, 5);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 7: /* an fd where none belongs */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
                        send_raw(bad, b.buf, b.len, sv, 1);
                        break;
                case 8: /* ALLOC without its reply socket */
                        ctl_begin(&b, CTL_ALLOC, 1);
                        ctl_put_str(&b, CTL_A_NAME, "x");
                        ctl_put_u32(&b, CTL_A_TIMEOUT_MS, 100);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 9: /* ALLOC with two fds */
                        ctl_begin(&b, CTL_ALLOC, 1);
                        ctl_put_str(&b, CTL_A_NAME, "x");
                        ctl_end(&b);
                        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
                        send_raw(bad, b.buf, b.len, sv, 2);
                        break;
                case 10: /* a short packet */
                        send_raw(bad, "\x03\x00\x00\x00", 4, NULL, 0);
                        break;
                case 11: /* nonzero flags in the header */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        b.buf[2] = 1;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 12: /* a known attribute of the wrong size, in a listing */
                        ctl_begin(&b, CTL_LIST, 1);
                        ctl_put_u64(&b, CTL_A_LIST_SKIP, 0);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 13: /* a bad value and a malformed attribute: framing wins */
                        ctl_begin(&b, CTL_REGISTER, 1);
                        ctl_put_str(&b, CTL_A_NAME, "has space");
                        ctl_put_u64(&b, CTL_A_BACKLOG, 1);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                }
                if (!closed_by_daemon(bad))
                        test_fail(__FILE__, __LINE__, "case %d: offender not dropped", k);
                safe_close(sv[0]);
                safe_close(sv[1]);
                close(bad);
                /* The well-behaved client is untouched. */
                CHECK_OK(do_hello(good, NULL));
        }
        /* An empty packet is the same as garbage; ALLOC with a non-socket fd
         * is refused politely. */
        int bad = CHECK_OK(dconnect());
        int p[2];
        CHECK_OK(pipe(p));
        ctl_begin(&b, CTL_ALLOC, 77);
        ctl_put_str(&b, CTL_A_NAME, "x");
        ctl_put_u32(&b, CTL_A_TIMEOUT_MS, 100);
        ctl_end(&b);
        send_raw(bad, b.buf, b.len, p, 1);
        rmsg r;
        CHECK_ERR(wait_reply(bad, &r, 77), -EINVAL);
        close(p[0]);
        close(p[1]);
        close(bad);
        CHECK_OK(do_hello(good, NULL));
        close(good);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(exclusive_and_spreading, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c1 = CHECK_OK(dconnect()), c2 = CHECK_OK(dconnect()), ca = CHECK_OK(dconnect());
        uint64_t r1, r2, r3, aid, req;
        int s1, s2, s3, reply;
        CHECK_OK(do_register(c1, "solo", IPCF_REG_EXCLUSIVE, 0, &r1, &s1));
        CHECK_ERR(do_register(c2, "solo", 0, 0, &r2, &s2), -EADDRINUSE);
        CHECK_ERR(do_register(c2, "solo", IPCF_REG_EXCLUSIVE, 0, &r2, &s2), -EADDRINUSE);
        CHECK_OK(do_simple(c1, CTL_UNREGISTER, CTL_A_REG_ID, r1, 0, 0, NULL));
        close(s1);
        CHECK_OK(do_register(c2, "solo", IPCF_REG_EXCLUSIVE, 0, &r2, &s2));
        close(s2);

        /* Two shared registrations with backlog 1: requests alternate, the
         * third finds both full. */
        CHECK_OK(do_register(c1, "pool", 0, 1, &r1, &s1));
        CHECK_OK(do_register(c2, "pool", 0, 1, &r3, &s3));
        int rp[3];
        CHECK_OK(do_alloc(ca, "pool", NULL, 5000, &aid, &rp[0]));
        CHECK_OK(do_alloc(ca, "pool", NULL, 5000, &aid, &rp[1]));
        CHECK(readable(s1, 1000));
        CHECK(readable(s3, 1000));
        CHECK_OK(do_alloc(ca, "pool", NULL, 5000, &aid, &rp[2]));
        CHECK_ERR(wait_outcome(rp[2], NULL, NULL, NULL, 5000), -EBUSY);

        /* Unregistering c1's hands its request to... nobody with room:
         * refused "unregistered". */
        wait_request(s1, &req, NULL, NULL);
        CHECK_OK(do_simple(c1, CTL_UNREGISTER, CTL_A_REG_ID, r1, 0, 0, NULL));
        char reason[IPCF_REASON_MAX + 1];
        uint32_t end;
        CHECK_ERR(wait_outcome(rp[0], NULL, reason, &end, 5000), -ECONNREFUSED);
        CHECK(strcmp(reason, "unregistered") == 0);
        CHECK_EQ(end, IPCF_END_REFUSED);
        (void)reply;
        for (int i = 0; i < 3; i++)
                close(rp[i]);
        close(s1);
        close(s3);
        close(c1);
        close(c2);
        close(ca);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(redispatch_on_death, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c1 = CHECK_OK(dconnect()), c2 = CHECK_OK(dconnect()), ca = CHECK_OK(dconnect());
        uint64_t r1, r2, aid, req;
        int s1, s2, reply;
        flowinfo a, b;
        CHECK_OK(do_register(c1, "ha", 0, 0, &r1, &s1));
        CHECK_OK(do_alloc(ca, "ha", NULL, 5000, &aid, &reply));
        wait_request(s1, &req, NULL, NULL);
        CHECK_OK(do_register(c2, "ha", 0, 0, &r2, &s2));
        /* c1 dies with the request pending: it moves to c2. */
        close(c1);
        uint64_t req2;
        wait_request(s2, &req2, NULL, NULL);
        CHECK_EQ(req2, req);
        CHECK_OK(do_accept(c2, r2, req2, &b));
        CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
        send_ok(reply);
        close(reply);
        /* With no one left, a pending requester learns the target died. */
        CHECK_OK(do_alloc(ca, "ha", NULL, 5000, &aid, &reply));
        wait_request(s2, &req, NULL, NULL);
        close(c2);
        char reason[IPCF_REASON_MAX + 1];
        uint32_t end;
        CHECK_ERR(wait_outcome(reply, NULL, reason, &end, 5000), -ECONNREFUSED);
        CHECK(strcmp(reason, "target died") == 0);
        CHECK_EQ(end, IPCF_END_PEER_DIED);
        flow_close(&a);
        flow_close(&b);
        close(reply);
        close(s1);
        close(s2);
        close(ca);
        test_daemon_stop(&d);
}

/* A forked acceptor for the death tests: registers `mortal`, says so on the
 * pipe, accepts one request, says so again, then waits to be killed. */
static int death_pipe[2];
static void mortal_child(void *arg) {
        (void)arg;
        int fd = dconnect(), rs;
        uint64_t reg, req;
        flowinfo f;
        CHECK(fd >= 0);
        CHECK_OK(do_register(fd, "mortal", 0, 0, &reg, &rs));
        CHECK(write(death_pipe[1], "r", 1) == 1);
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_accept(fd, reg, req, &f));
        CHECK(write(death_pipe[1], "a", 1) == 1);
        for (;;)
                pause();
}

TEST_TIMEOUT(peer_death_acceptor, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(pipe(death_pipe));
        pid_t child = test_fork(mortal_child, NULL);
        char ch;
        CHECK(read(death_pipe[0], &ch, 1) == 1);
        int ca = CHECK_OK(dconnect()), reply;
        flowinfo a;
        CHECK_OK(do_alloc(ca, "mortal", NULL, 5000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
        send_ok(reply);
        close(reply);
        CHECK(read(death_pipe[0], &ch, 1) == 1);
        CHECK_EQ(le32toh(a.peer.pid), child);
        struct flow_hdr *h = flow_map(&a);
        CHECK(!readable(a.fds[FLOW_FD_RX_EAR], 0));

        uint64_t t0 = test_now_ns();
        kill(child, SIGKILL);
        CHECK(readable(a.fds[FLOW_FD_RX_EAR], 2000));
        uint64_t us = (test_now_ns() - t0) / 1000;
        printf("  peer death noticed in %llu us\n", (unsigned long long)us);
        CHECK_EQ(atomic_load(&h->end[1].code), IPCF_END_PEER_DIED);
        CHECK(strcmp(h->end[1].reason, "peer died") == 0);
        CHECK_EQ(atomic_load(&h->end[0].code), 0);
        CHECK(readable(a.fds[FLOW_FD_TX_EAR], 1000)); /* tx rung too (just after rx) */
        CHECK(us < 100000);
        test_wait(child, 1000);
        /* The survivor deallocates; the flow is then reclaimed. */
        CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "ok"));
        CHECK_ERR(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "ok"), -ENOENT);
        flow_close(&a);
        close(ca);
        test_daemon_stop(&d);
}

static void mortal_allocator(void *arg) {
        (void)arg;
        int fd = dconnect(), reply;
        flowinfo f;
        CHECK(fd >= 0);
        CHECK_OK(do_alloc(fd, "keeper", NULL, 5000, NULL, &reply));
        CHECK_OK(wait_outcome(reply, &f, NULL, NULL, 5000));
        send_ok(reply);
        CHECK(write(death_pipe[1], "a", 1) == 1);
        for (;;)
                pause();
}

TEST_TIMEOUT(peer_death_allocator, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(pipe(death_pipe));
        int cb = CHECK_OK(dconnect()), rs;
        uint64_t reg, req;
        flowinfo b;
        CHECK_OK(do_register(cb, "keeper", 0, 0, &reg, &rs));
        pid_t child = test_fork(mortal_allocator, NULL);
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_accept(cb, reg, req, &b));
        char ch;
        CHECK(read(death_pipe[0], &ch, 1) == 1);
        struct flow_hdr *h = flow_map(&b);
        uint64_t t0 = test_now_ns();
        kill(child, SIGKILL);
        CHECK(readable(b.fds[FLOW_FD_RX_EAR], 2000));
        uint64_t us = (test_now_ns() - t0) / 1000;
        printf("  peer death noticed in %llu us\n", (unsigned long long)us);
        CHECK_EQ(atomic_load(&h->end[0].code), IPCF_END_PEER_DIED);
        CHECK(us < 100000);
        test_wait(child, 1000);
        flow_close(&b);
        close(rs);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(requester_gave_up, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        uint64_t reg, req;
        int rs, reply;
        flowinfo b;
        CHECK_OK(do_register(cb, "late", 0, 0, &reg, &rs));
        CHECK_OK(do_alloc(ca, "late", NULL, 5000, NULL, &reply));
        wait_request(rs, &req, NULL, NULL);
        CHECK_OK(do_accept(cb, reg, req, &b));
        struct flow_hdr *h = flow_map(&b);
        /* The FLOW is waiting on the reply socket; the requester closes it
         * without the handover OK. */
        CHECK(readable(reply, 2000));
        close(reply);
        CHECK(readable(b.fds[FLOW_FD_RX_EAR], 2000));
        CHECK_EQ(atomic_load(&h->end[0].code), IPCF_END_DEALLOC);
        CHECK(strcmp(h->end[0].reason, "requester gave up") == 0);
        CHECK(readable(b.fds[FLOW_FD_TX_EAR], 1000)); /* tx too (rung just after rx) */
        /* The requester's side is closed: the flow goes with the acceptor's. */
        CHECK_ERR(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL), -ENOENT);
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
        flow_close(&b);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

/* LIST: parse the reply into counts and copies of the entries. */
typedef struct listing {
        uint32_t pid;
        uint64_t uptime;
        unsigned n_names, n_flows;
        struct ctl_name_entry_wire names[16];
        struct ctl_flow_entry_wire flows[16];
} listing;

static void do_list(int fd, listing *l) {
        ctl_builder b;
        rmsg *r = malloc(sizeof(*r));
        uint32_t seq = next_seq++;
        memset(l, 0, sizeof(*l));
        ctl_begin(&b, CTL_LIST, seq);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, NULL, 0));
        CHECK_OK(wait_reply(fd, r, seq));
        CHECK_OK(ctl_get_u32(&r->m, CTL_A_PID, &l->pid));
        CHECK_OK(ctl_get_u64(&r->m, CTL_A_UPTIME_MS, &l->uptime));
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        while (ctl_attr_next(&r->m, &cur, &t, &v, &len)) {
                if (t == CTL_A_NAME_ENTRY && l->n_names < 16) {
                        CHECK_EQ(len, sizeof(l->names[0]));
                        memcpy(&l->names[l->n_names++], v, len);
                } else if (t == CTL_A_FLOW_ENTRY && l->n_flows < 16) {
                        CHECK_EQ(len, sizeof(l->flows[0]));
                        memcpy(&l->flows[l->n_flows++], v, len);
                }
        }
        free(r);
}

TEST_TIMEOUT(list_content, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        listing l;
        flowinfo a, b;
        uint64_t reg;
        int rs;
        do_list(ca, &l);
        CHECK_EQ(l.pid, d.pid);
        CHECK_EQ(l.n_names, 0);
        CHECK_EQ(l.n_flows, 0);

        ipcf_qos q = { .max_bytes = 8192 };
        make_flow(ca, cb, "listed", &q, &reg, &rs, &a, &b);
        /* Pretend side 0 wrote 3 messages of 100 bytes, 2 still queued. */
        struct flow_hdr *h = flow_map(&a);
        struct ring_ctl *rc = flow_ctl_of(h, 0);
        atomic_store(&rc->msgs_w, 3);
        atomic_store(&rc->bytes_w, 300);
        atomic_store(&rc->head, 3 * ring_rec_size(100));
        atomic_store(&rc->tail, 1 * ring_rec_size(100));
        do_list(ca, &l);
        CHECK_EQ(l.n_names, 1);
        CHECK(strcmp(l.names[0].name, "listed") == 0);
        CHECK_EQ(l.names[0].pid, getpid());
        CHECK_EQ(l.names[0].flows, 1);
        CHECK_EQ(l.names[0].pending, 0);
        CHECK_EQ(l.n_flows, 1);
        CHECK_EQ(l.flows[0].id, a.id);
        CHECK(strcmp(l.flows[0].name, "listed") == 0);
        CHECK_EQ(l.flows[0].pid_a, getpid());
        CHECK_EQ(l.flows[0].pid_b, getpid());
        CHECK_EQ(l.flows[0].msgs_ab, 3);
        CHECK_EQ(l.flows[0].bytes_ab, 300);
        CHECK_EQ(l.flows[0].queued_ab, 2 * ring_rec_size(100));
        CHECK_EQ(l.flows[0].msgs_ba, 0);
        CHECK_EQ(l.flows[0].state, 0);
        CHECK_EQ(l.flows[0].qos.max_bytes, 8192);
        /* One side ends: the flow is closing. */
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
        do_list(ca, &l);
        CHECK_EQ(l.n_flows, 1);
        CHECK_EQ(l.flows[0].state, 1);
        CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, NULL));
        do_list(ca, &l);
        CHECK_EQ(l.n_flows, 0);
        CHECK_EQ(l.n_names, 1);
        CHECK_EQ(l.names[0].flows, 0);
        /* Closing the request socket is unregistering. */
        close(rs);
        sync_daemon(ca);
        do_list(ca, &l);
        CHECK_EQ(l.n_names, 0);
        flow_close(&a);
        flow_close(&b);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

/* One LIST page: counts of entries and the LIST_MORE flag. */
static void do_list_page(int fd, uint32_t skip, unsigned *ret_names, unsigned *ret_flows,
                         uint32_t *ret_more) {
        ctl_builder b;
        rmsg *r = malloc(sizeof(*r));
        uint32_t seq = next_seq++;
        ctl_begin(&b, CTL_LIST, seq);
        if (skip)
                ctl_put_u32(&b, CTL_A_LIST_SKIP, skip);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(fd, &b, NULL, 0));
        CHECK_OK(wait_reply(fd, r, seq));
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        *ret_names = *ret_flows = 0;
        while (ctl_attr_next(&r->m, &cur, &t, &v, &len)) {
                *ret_names += t == CTL_A_NAME_ENTRY;
                *ret_flows += t == CTL_A_FLOW_ENTRY;
        }
        CHECK_OK(ctl_get_u32(&r->m, CTL_A_LIST_MORE, ret_more));
        free(r);
}

TEST_TIMEOUT(list_paging, 30) {
        /* More names than one message holds, and some flows: the pages add
         * up to everything, and only the last says no more. */
        test_daemon d;
        test_daemon_start(&d, "[limits]\nregistrations_per_user = 1000\n", NULL);
        int c = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect());
        enum { N = 600, F = 5 };
        int *rs = calloc(N, sizeof(int));
        uint64_t reg;
        char name[32];
        for (int i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "page.%d", i);
                CHECK_OK(do_register(c, name, 0, 0, &reg, &rs[i]));
        }
        flowinfo a[F], b[F];
        int frs[F];
        for (int i = 0; i < F; i++) {
                snprintf(name, sizeof(name), "pflow.%d", i);
                make_flow(c, cb, name, NULL, NULL, &frs[i], &a[i], &b[i]);
        }
        unsigned names = 0, flows = 0, pages = 0, n, f;
        uint32_t more = 1;
        while (more) {
                do_list_page(c, names + flows, &n, &f, &more);
                CHECK(n + f > 0);
                names += n;
                flows += f;
                pages++;
                CHECK(pages < 10);
        }
        CHECK_EQ(names, N + F);
        CHECK_EQ(flows, F);
        CHECK(pages >= 2);
        /* Skipping everything: an empty last page. */
        do_list_page(c, N + 2 * F, &n, &f, &more);
        CHECK_EQ(n + f, 0);
        CHECK_EQ(more, 0);
        for (int i = 0; i < F; i++) {
                flow_close(&a[i]);
                flow_close(&b[i]);
                close(frs[i]);
        }
        for (int i = 0; i < N; i++)
                close(rs[i]);
        free(rs);
        close(c);
        close(cb);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(self_flow_dealloc_by_side, 20) {
        /* One connection holds both sides (it allocated its own name). */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect());
        flowinfo a, b;
        make_flow(c, c, "myself", NULL, NULL, NULL, &a, &b);
        struct flow_hdr *h = flow_map(&a);
        /* The library writes its end record before DEALLOC: side 1 here. */
        strcpy(h->end[1].reason, "b done");
        atomic_store(&h->end[1].code, IPCF_END_DEALLOC);
        CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, "b done"));
        /* Side 0 is still open: the daemon did not touch its end record, and
         * did not ring side 0 (the library does that itself). */
        CHECK_EQ(atomic_load(&h->end[0].code), 0);
        CHECK(!readable(a.fds[FLOW_FD_RX_EAR], 50));
        listing l;
        do_list(c, &l);
        CHECK_EQ(l.n_flows, 1);
        CHECK_EQ(l.flows[0].state, 1);
        CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, NULL));
        do_list(c, &l);
        CHECK_EQ(l.n_flows, 0);
        flow_close(&a);
        flow_close(&b);
        close(c);
        test_daemon_stop(&d);
}

/* ---- policy, activation, quotas ------------------------------------------- */

static void as_nobody(void) {
        /* More supplementary groups than the daemon keeps (64); the one the
         * policy names is among the first. */
        gid_t extra[100];
        for (int i = 0; i < 100; i++)
                extra[i] = (gid_t)(5000 + i);
        extra[10] = 4321;
        CHECK_OK(setgroups(100, extra));
        CHECK_OK(setgid(65534));
        CHECK_OK(setuid(65534));
}

static void nobody_child(void *arg) {
        (void)arg;
        as_nobody();
        int fd = CHECK_OK(dconnect()), rs, reply;
        uint64_t reg;
        /* Default policy: only root and the daemon's uid. */
        CHECK_ERR(do_register(fd, "secret", 0, 0, &reg, &rs), -EACCES);
        CHECK_ERR(do_alloc(fd, "secret", NULL, 1000, NULL, &reply), -EACCES);
        /* A rule opening pub* to anyone. */
        CHECK_OK(do_register(fd, "pub.nobody", 0, 0, &reg, &rs));
        CHECK_OK(do_alloc(fd, "pub.none", NULL, 1000, NULL, &reply));
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ENOENT);
        close(reply);
        /* gid rules: group 65534 may allocate grp.*, register it not. */
        CHECK_ERR(do_register(fd, "grp.x", 0, 0, &reg, &rs), -EACCES);
        CHECK_OK(do_alloc(fd, "grp.x", NULL, 1000, NULL, &reply));
        close(reply);
        /* Supplementary groups count (SO_PEERGROUPS). */
        CHECK_OK(do_alloc(fd, "sup.x", NULL, 1000, NULL, &reply));
        close(reply);
        /* uid rules: only uid 4242 may allocate uid.x. */
        CHECK_ERR(do_alloc(fd, "uid.x", NULL, 1000, NULL, &reply), -EACCES);
        /* LIST shows nobody only its own registration. */
        listing l;
        do_list(fd, &l);
        CHECK_EQ(l.n_names, 1);
        CHECK(strcmp(l.names[0].name, "pub.nobody") == 0);
        close(fd);
}

TEST_TIMEOUT(policy_nobody, 20) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d,
                          "[name pub*]\n"
                          "allocate = *\n"
                          "register = *\n"
                          "[name grp.*]   # by group\n"
                          "allocate = gid:65534 group:root\n"
                          "[name uid.*]\n"
                          "allocate = uid:4242\n"
                          "[name sup.*]\n"
                          "allocate = gid:4321\n",
                          shared);
        struct stat st;
        char path[300];
        snprintf(path, sizeof(path), "%s/%s", d.dir, CTL_SOCKET_NAME);
        CHECK_OK(stat(path, &st));
        CHECK_EQ(st.st_mode & 0777, 0666);
        int c = CHECK_OK(dconnect()), rs;
        uint64_t reg;
        CHECK_OK(do_register(c, "secret.root", 0, 0, &reg, &rs));
        pid_t p = test_fork(nobody_child, NULL);
        CHECK_EQ(test_wait(p, 10000), 0);
        /* Root sees everything, nobody's registration included (it is gone
         * with its connection by now, so just ours). */
        listing l;
        do_list(c, &l);
        CHECK(l.n_names >= 1);
        close(rs);
        close(c);
        test_daemon_stop(&d);
}

static int quota_pipe[2];
static void nobody_allocates_three(void *arg) {
        (void)arg;
        as_nobody();
        int fd = CHECK_OK(dconnect()), reply[3];
        flowinfo f[2];
        for (int i = 0; i < 3; i++)
                CHECK_OK(do_alloc(fd, "q.shared", NULL, 5000, NULL, &reply[i]));
        CHECK(write(quota_pipe[1], "a", 1) == 1);
        CHECK_OK(wait_outcome(reply[0], &f[0], NULL, NULL, 5000));
        CHECK_OK(wait_outcome(reply[1], &f[1], NULL, NULL, 5000));
        CHECK_ERR(wait_outcome(reply[2], NULL, NULL, NULL, 5000), -EDQUOT);
        close(fd);
}

TEST_TIMEOUT(requester_quota_at_accept, 20) {
        /* The requester's flow quota fills between its ALLOC and the ACCEPT:
         * the allocation fails EDQUOT, the acceptor just sees it cancelled. */
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, "[limits]\nflows_per_user = 2\n[name q.*]\nallocate = *\n", shared);
        int c = CHECK_OK(dconnect()), rs;
        uint64_t reg, req[3];
        flowinfo f;
        CHECK_OK(do_register(c, "q.shared", 0, 0, &reg, &rs));
        CHECK_OK(pipe(quota_pipe));
        pid_t p = test_fork(nobody_allocates_three, NULL);
        char ch;
        CHECK(read(quota_pipe[0], &ch, 1) == 1);
        for (int i = 0; i < 3; i++)
                wait_request(rs, &req[i], NULL, NULL);
        /* The acceptor (root, under the same limit) lets its sides go at
         * once, so only the requester's count matters. */
        for (int i = 0; i < 2; i++) {
                CHECK_OK(do_accept(c, reg, req[i], &f));
                CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, f.id, 0, 0, NULL));
                flow_close(&f);
        }
        CHECK_ERR(do_accept(c, reg, req[2], &f), -ECANCELED);
        CHECK_EQ(test_wait(p, 10000), 0);
        close(rs);
        close(c);
        test_daemon_stop(&d);
}

static void nobody_connect_child(void *arg) {
        (void)arg;
        as_nobody();
        CHECK_ERR(dconnect(), -EACCES);
}

TEST_TIMEOUT(private_socket, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        struct stat st;
        char path[300];
        snprintf(path, sizeof(path), "%s/%s", d.dir, CTL_SOCKET_NAME);
        CHECK_OK(stat(path, &st));
        CHECK_EQ(st.st_mode & 0777, 0600);
        if (geteuid() == 0) {
                pid_t p = test_fork(nobody_connect_child, NULL);
                CHECK_EQ(test_wait(p, 10000), 0);
        } else {
                printf("  (not root: the other-user connect is skipped)\n");
        }
        test_daemon_stop(&d);
}

static char *self_exe(void) {
        static char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        CHECK(n > 0);
        buf[n] = 0;
        return buf;
}

TEST_TIMEOUT(activation, 30) {
        test_daemon d;
        char conf[PATH_MAX * 2];
        snprintf(conf, sizeof(conf),
                 "[name act.svc]\n"
                 "activate = '%s' --act-child act.svc 2\n"
                 "[name act.false]\n"
                 "activate = exit 3\n"
                 "[name act.slow]\n"
                 "activate = sleep 3\n"
                 "activate_timeout_ms = 300\n"
                 "[name act.stubborn]\n"
                 "activate = trap '' TERM; sleep 3\n"
                 "activate_timeout_ms = 50\n",
                 self_exe());
        test_daemon_start(&d, conf, NULL);
        int ca = CHECK_OK(dconnect()), r1, r2;
        flowinfo f1, f2;
        /* Two allocations while the program starts: it is started once and
         * gets both. */
        CHECK_OK(do_alloc(ca, "act.svc", NULL, 5000, NULL, &r1));
        CHECK_OK(do_alloc(ca, "act.svc", NULL, 5000, NULL, &r2));
        CHECK_OK(wait_outcome(r1, &f1, NULL, NULL, 5000));
        CHECK_OK(wait_outcome(r2, &f2, NULL, NULL, 5000));
        send_ok(r1);
        send_ok(r2);
        CHECK_EQ(f1.peer.pid, f2.peer.pid);
        listing l;
        do_list(ca, &l);
        CHECK_EQ(l.n_names, 1);
        CHECK(strcmp(l.names[0].name, "act.svc") == 0);
        CHECK_EQ(l.names[0].pid, f1.peer.pid);
        flow_close(&f1);
        flow_close(&f2);
        close(r1);
        close(r2);

        /* A program that exits without registering. */
        CHECK_OK(do_alloc(ca, "act.false", NULL, 5000, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ENOEXEC);
        close(r1);
        /* One that never registers: activate_timeout_ms. */
        uint64_t t0 = test_now_ms();
        CHECK_OK(do_alloc(ca, "act.slow", NULL, 5000, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 < 3000);
        close(r1);
        /* The allocation's own timeout is shorter than the activation's. */
        CHECK_OK(do_alloc(ca, "act.slow", NULL, 100, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ETIMEDOUT);
        close(r1);
        /* Failed starts that survive SIGTERM do not pile up: 8 per name. */
        for (int i = 0; i < 8; i++) {
                CHECK_OK(do_alloc(ca, "act.stubborn", NULL, 5000, NULL, &r1));
                CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ETIMEDOUT);
                close(r1);
        }
        CHECK_OK(do_alloc(ca, "act.stubborn", NULL, 5000, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -EBUSY);
        close(r1);
        close(ca);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(quotas, 30) {
        test_daemon d;
        test_daemon_start(&d,
                          "[limits]\n"
                          "registrations_per_user = 3\n"
                          "pending_per_user = 2\n"
                          "clients_per_user = 4\n"
                          "flows_per_user = 4\n"
                          "unbounded_bytes_per_user = 3M\n",
                          NULL);
        int c = CHECK_OK(dconnect()), rs[3], rp[3];
        uint64_t reg[3], aid;
        /* Registrations. */
        CHECK_OK(do_register(c, "q.a", 0, 0, &reg[0], &rs[0]));
        CHECK_OK(do_register(c, "q.b", 0, 0, &reg[1], &rs[1]));
        CHECK_OK(do_register(c, "q.c", 0, 0, &reg[2], &rs[2]));
        CHECK_ERR(do_register(c, "q.d", 0, 0, &reg[2], &rs[2]), -EDQUOT);
        CHECK_OK(do_simple(c, CTL_UNREGISTER, CTL_A_REG_ID, reg[1], 0, 0, NULL));
        close(rs[1]);
        CHECK_OK(do_register(c, "q.d", 0, 0, &reg[1], &rs[1]));
        /* Make room for the flows' registrations below. */
        CHECK_OK(do_simple(c, CTL_UNREGISTER, CTL_A_REG_ID, reg[1], 0, 0, NULL));
        CHECK_OK(do_simple(c, CTL_UNREGISTER, CTL_A_REG_ID, reg[2], 0, 0, NULL));
        close(rs[1]);
        close(rs[2]);
        /* Pending requests. */
        CHECK_OK(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[0]));
        CHECK_OK(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[1]));
        CHECK_ERR(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[2]), -EDQUOT);
        close(rp[0]);
        close(rp[1]);
        sync_daemon(c); /* the daemon notices the withdrawals */
        /* Flows: each side counts for its user (here both are ours). */
        flowinfo a[2], b[2];
        int cb = CHECK_OK(dconnect());
        make_flow(c, cb, "q.f1", NULL, NULL, NULL, &a[0], &b[0]);
        make_flow(c, cb, "q.f2", NULL, NULL, NULL, &a[1], &b[1]);
        CHECK_ERR(do_alloc(c, "q.a", NULL, 5000, &aid, &rp[0]), -EDQUOT);
        CHECK_OK(do_simple(c, CTL_DEALLOC, CTL_A_FLOW_ID, a[0].id, 0, 0, NULL));
        CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b[0].id, 0, 0, NULL));
        CHECK_OK(do_alloc(c, "q.none", NULL, 5000, &aid, &rp[0]));
        CHECK_ERR(wait_outcome(rp[0], NULL, NULL, NULL, 5000), -ENOENT);
        close(rp[0]);
        /* Unbounded memory: 2 x 1 MiB per flow against 3 MiB. */
        ipcf_qos q = { .capacity = IPCF_CAPACITY_UNBOUNDED, .max_bytes = 1 << 20 };
        CHECK_OK(do_alloc(c, "q.a", &q, 5000, &aid, &rp[0]));
        CHECK_ERR(do_alloc(c, "q.a", &q, 5000, &aid, &rp[1]), -EDQUOT);
        close(rp[0]);
        sync_daemon(c);
        CHECK_OK(do_alloc(c, "q.a", &q, 5000, &aid, &rp[0]));
        close(rp[0]);
        /* Connections: c, cb and two more; the fifth is turned away. */
        int c3 = CHECK_OK(dconnect()), c4 = CHECK_OK(dconnect()), c5 = CHECK_OK(dconnect());
        CHECK_OK(do_hello(c4, NULL));
        CHECK(closed_by_daemon(c5));
        close(c3);
        close(c4);
        close(c5);
        close(rs[0]);
        flow_close(&a[0]);
        flow_close(&b[0]);
        flow_close(&a[1]);
        flow_close(&b[1]);
        close(cb);
        close(c);
        test_daemon_stop(&d);
}

/* ---- start-up and shut-down ---------------------------------------------- */

/* Run ipcfd with args; returns its pid; its stderr goes to *ret_err (a pipe). */
static pid_t spawn_daemon(const char *const *args, int *ret_err) {
        int p[2];
        CHECK_OK(pipe2(p, O_CLOEXEC));
        char *bin = test_build_path("bin/ipcfd");
        const char *argv[16] = { bin };
        unsigned n = 1;
        for (; args[n - 1] && n < 15; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                dup2(p[1], 2);
                execv(bin, (char *const *)argv);
                _exit(127);
        }
        free(bin);
        close(p[1]);
        *ret_err = p[0];
        return pid;
}

TEST_TIMEOUT(second_daemon_and_sigterm, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), e;
        /* A second daemon on the same dir steps aside with status 0. */
        const char *args[] = { "--runtime-dir", d.dir, NULL };
        pid_t p = spawn_daemon(args, &e);
        CHECK_EQ(test_wait(p, 5000), 0);
        close(e);
        CHECK_OK(do_hello(c, NULL));

        /* SIGTERM: exit 0, socket and pid file gone. */
        char sock[300], pidf[300];
        snprintf(sock, sizeof(sock), "%s/%s", d.dir, CTL_SOCKET_NAME);
        snprintf(pidf, sizeof(pidf), "%s/ipcfd.pid", d.dir);
        CHECK_OK(access(pidf, F_OK));
        kill(d.pid, SIGTERM);
        CHECK_EQ(test_wait(d.pid, 5000), 0);
        d.pid = 0;
        CHECK(access(sock, F_OK) < 0);
        CHECK(access(pidf, F_OK) < 0);
        CHECK(closed_by_daemon(c));
        close(c);

        /* A stale socket (daemon killed) does not stop the next one. */
        p = spawn_daemon(args, &e);
        for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
                usleep(10000);
        c = -1;
        for (int i = 0; i < 500 && (c = dconnect()) < 0; i++)
                usleep(10000);
        CHECK(c >= 0);
        kill(p, SIGKILL);
        test_wait(p, 5000);
        close(c);
        CHECK_OK(access(sock, F_OK));
        p = spawn_daemon(args, &e);
        c = -1;
        for (int i = 0; i < 500 && (c = dconnect()) < 0; i++)
                usleep(10000);
        CHECK(c >= 0);
        CHECK_OK(do_hello(c, NULL));
        close(c);
        d.pid = p;
        test_daemon_stop(&d);
}

TEST_TIMEOUT(bad_config_and_dir, 20) {
        char dir[] = "/tmp/ipcf-test-cfg.XXXXXX", conf[300], buf[512];
        CHECK(mkdtemp(dir));
        snprintf(conf, sizeof(conf), "%s/bad.conf", dir);
        FILE *f = fopen(conf, "w");
        fputs("[daemon]\nshared = no\n[limits]\nflows_per_user = lots\n", f);
        fclose(f);
        const char *args[] = { "--runtime-dir", dir, "--config", conf, NULL };
        int e;
        pid_t p = spawn_daemon(args, &e);
        CHECK_EQ(test_wait(p, 5000), 1);
        ssize_t n = read(e, buf, sizeof(buf) - 1);
        CHECK(n > 0);
        buf[n] = 0;
        CHECK(strstr(buf, "line 4") != NULL);
        close(e);
        unlink(conf);
        if (geteuid() == 0) {
                /* A runtime dir that belongs to someone else is refused. */
                CHECK_OK(chown(dir, 65534, 65534));
                const char *args2[] = { "--runtime-dir", dir, NULL };
                p = spawn_daemon(args2, &e);
                CHECK_EQ(test_wait(p, 5000), 1);
                close(e);
        }
        char lock[300];
        snprintf(lock, sizeof(lock), "%s/ipcfd.lock", dir);
        unlink(lock);
        CHECK_OK(rmdir(dir));
}

TEST_TIMEOUT(backpressure, 30) {
        /* A client that sends many requests and reads no replies is not
         * dropped: the daemon stops reading it until it reads. Others go on. */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), other = CHECK_OK(dconnect());
        int rs[200];
        uint64_t reg;
        char name[32];
        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof(name), "bp.%d", i);
                CHECK_OK(do_register(c, name, 0, 0, &reg, &rs[i]));
        }
        enum { N = 60 };
        uint32_t first = next_seq;
        for (int i = 0; i < N; i++) {
                ctl_builder b;
                ctl_begin(&b, CTL_LIST, next_seq++);
                CHECK_OK(ctl_end(&b));
                CHECK_OK(ctl_send(c, &b, NULL, 0));
        }
        usleep(100000);
        CHECK_OK(do_hello(other, NULL));
        rmsg *r = malloc(sizeof(*r));
        for (int i = 0; i < N; i++) {
                CHECK_OK(wait_reply(c, r, first + (uint32_t)i));
                size_t cur = 0;
                uint16_t t, len;
                const void *v;
                unsigned names = 0;
                while (ctl_attr_next(&r->m, &cur, &t, &v, &len))
                        names += t == CTL_A_NAME_ENTRY;
                CHECK_EQ(names, 200);
        }
        free(r);
        CHECK_OK(do_hello(c, NULL));
        for (int i = 0; i < 200; i++)
                close(rs[i]);
        close(c);
        close(other);
        test_daemon_stop(&d);
}

/* ---- churn: random operations, then everything must be reclaimed --------- */

static int count_fds(pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        DIR *dir = opendir(path);
        int n = 0;
        CHECK(dir != NULL);
        while (readdir(dir))
                n++;
        closedir(dir);
        return n;
}

enum { CH_CONNS = 6, CH_REGS = 8, CH_REPLIES = 16, CH_FLOWS = 32 };
typedef struct churn {
        int conn[CH_CONNS];
        struct {
                int conn;       /* index into conn[] */
                int sock;
                uint64_t id;
        } reg[CH_REGS];
        int reply[CH_REPLIES];
        int reply_conn[CH_REPLIES];
        struct {
                int conn;
                flowinfo f;
        } flow[CH_FLOWS];
        bool flow_used[CH_FLOWS];
} churn;

static void churn_close_conn(churn *ch, int i) {
        close(ch->conn[i]);
        ch->conn[i] = -1;
        for (int k = 0; k < CH_REGS; k++)
                if (ch->reg[k].sock >= 0 && ch->reg[k].conn == i)
                        ch->reg[k].sock = safe_close(ch->reg[k].sock);
        for (int k = 0; k < CH_REPLIES; k++)
                if (ch->reply[k] >= 0 && ch->reply_conn[k] == i)
                        ch->reply[k] = safe_close(ch->reply[k]);
        for (int k = 0; k < CH_FLOWS; k++)
                if (ch->flow_used[k] && ch->flow[k].conn == i) {
                        flow_close(&ch->flow[k].f);
                        ch->flow_used[k] = false;
                }
}

static unsigned churn_flows;
static void churn_add_flow(churn *ch, int conn, const flowinfo *f) {
        churn_flows++;
        for (int k = 0; k < CH_FLOWS; k++)
                if (!ch->flow_used[k]) {
                        ch->flow_used[k] = true;
                        ch->flow[k].conn = conn;
                        ch->flow[k].f = *f;
                        return;
                }
        flowinfo g = *f;
        flow_close(&g);
}

TEST_TIMEOUT(churn_reclaims_everything, 120) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        churn ch;
        unsigned seed = 12345;
        memset(&ch, 0, sizeof(ch));
        for (int i = 0; i < CH_CONNS; i++)
                ch.conn[i] = -1;
        for (int i = 0; i < CH_REGS; i++)
                ch.reg[i].sock = -1;
        for (int i = 0; i < CH_REPLIES; i++)
                ch.reply[i] = -1;
        int probe = CHECK_OK(dconnect());
        CHECK_OK(do_hello(probe, NULL));
        int base_fds = count_fds(d.pid);

        for (int it = 0; it < 20000; it++) {
                int op = rand_r(&seed) % 9, ci = rand_r(&seed) % CH_CONNS;
                char name[16];
                snprintf(name, sizeof(name), "churn.%d", rand_r(&seed) % 3);
                if (ch.conn[ci] < 0) {
                        ch.conn[ci] = CHECK_OK(dconnect());
                        continue;
                }
                int c = ch.conn[ci];
                switch (op) {
                case 0: /* a process dies */
                        if (rand_r(&seed) % 16 == 0)
                                churn_close_conn(&ch, ci);
                        break;
                case 1: { /* register */
                        int k = rand_r(&seed) % CH_REGS;
                        if (ch.reg[k].sock >= 0)
                                break;
                        if (do_register(c, name, 0, 1 + rand_r(&seed) % 3, &ch.reg[k].id,
                                        &ch.reg[k].sock) == 0)
                                ch.reg[k].conn = ci;
                        break;
                }
                case 2: { /* unregister, or just close the socket */
                        int k = rand_r(&seed) % CH_REGS;
                        if (ch.reg[k].sock < 0)
                                break;
                        if (rand_r(&seed) % 2)
                                do_simple(ch.conn[ch.reg[k].conn], CTL_UNREGISTER, CTL_A_REG_ID,
                                          ch.reg[k].id, 0, 0, NULL);
                        ch.reg[k].sock = safe_close(ch.reg[k].sock);
                        break;
                }
                case 3: { /* allocate */
                        int k = rand_r(&seed) % CH_REPLIES;
                        if (ch.reply[k] >= 0)
                                break;
                        ipcf_qos q = { .max_bytes = 4096u << (rand_r(&seed) % 4) };
                        if (rand_r(&seed) % 5 == 0)
                                q.capacity = IPCF_CAPACITY_UNBOUNDED;
                        if (do_alloc(c, name, &q, 20 + rand_r(&seed) % 200, NULL, &ch.reply[k]) == 0)
                                ch.reply_conn[k] = ci;
                        break;
                }
                case 4: { /* a registrant decides its next request */
                        int k = rand_r(&seed) % CH_REGS;
                        rmsg r;
                        uint64_t req;
                        if (ch.reg[k].sock < 0 || recv_msg(ch.reg[k].sock, &r, 0) != 1)
                                break;
                        CHECK_OK(ctl_get_u64(&r.m, CTL_A_REQ_ID, &req));
                        int rc = ch.reg[k].conn;
                        if (rand_r(&seed) % 3 == 0) {
                                int e = do_simple(ch.conn[rc], CTL_REFUSE, CTL_A_REG_ID, ch.reg[k].id,
                                                  CTL_A_REQ_ID, req, "no");
                                CHECK(e == 0 || e == -ECANCELED);
                        } else {
                                flowinfo f;
                                int e = do_accept(ch.conn[rc], ch.reg[k].id, req, &f);
                                CHECK(e == 0 || e == -ECANCELED);
                                if (e == 0)
                                        churn_add_flow(&ch, rc, &f);
                        }
                        break;
                }
                case 5: { /* an allocator collects its outcome */
                        int k = rand_r(&seed) % CH_REPLIES;
                        rmsg r;
                        if (ch.reply[k] < 0)
                                break;
                        int got = recv_msg(ch.reply[k], &r, 0);
                        if (got == -ETIMEDOUT && rand_r(&seed) % 4)
                                break; /* keep waiting */
                        if (got == 1 && r.m.type == CTL_FLOW && rand_r(&seed) % 4) {
                                flowinfo f;
                                parse_flow(&r, &f);
                                send_ok(ch.reply[k]);
                                churn_add_flow(&ch, ch.reply_conn[k], &f);
                        }
                        close_fds(&r);
                        ch.reply[k] = safe_close(ch.reply[k]); /* or give up */
                        break;
                }
                case 6: { /* dealloc a flow */
                        int k = rand_r(&seed) % CH_FLOWS;
                        if (!ch.flow_used[k] || ch.conn[ch.flow[k].conn] < 0)
                                break;
                        int e = do_simple(ch.conn[ch.flow[k].conn], CTL_DEALLOC, CTL_A_FLOW_ID,
                                          ch.flow[k].f.id, 0, 0, "churn");
                        CHECK(e == 0 || e == -ENOENT);
                        flow_close(&ch.flow[k].f);
                        ch.flow_used[k] = false;
                        break;
                }
                case 7: {
                        listing l;
                        do_list(c, &l);
                        break;
                }
                case 8: /* garbage from a doomed client */
                        if (rand_r(&seed) % 32 == 0) {
                                send_raw(c, "\x06\x00\x00\x00\xff\xff\xff\xff", 8, NULL, 0);
                                CHECK(closed_by_daemon(c));
                                churn_close_conn(&ch, ci);
                        }
                        break;
                }
        }
        for (int i = 0; i < CH_CONNS; i++)
                if (ch.conn[i] >= 0)
                        churn_close_conn(&ch, i);
        for (int i = 0; i < CH_REPLIES; i++)
                safe_close(ch.reply[i]);
        for (int i = 0; i < CH_FLOWS; i++)
                if (ch.flow_used[i])
                        flow_close(&ch.flow[i].f);
        printf("  churn: %u flow ends handed out\n", churn_flows);
        CHECK(churn_flows > 200);
        /* Everything was reclaimed: no names, no flows, no stray fds
         * (waiting up to 5 s for the daemon to catch up with the closes). */
        listing l;
        for (int i = 0; i < 500; i++) {
                do_list(probe, &l);
                if (l.n_names == 0 && l.n_flows == 0 && count_fds(d.pid) == base_fds)
                        break;
                usleep(10000);
        }
        CHECK_EQ(l.n_names, 0);
        CHECK_EQ(l.n_flows, 0);
        CHECK_EQ(count_fds(d.pid), base_fds);
        close(probe);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(sighup_reloads_config, 20) {
        test_daemon d;
        test_daemon_start(&d, "[limits]\nregistrations_per_user = 1\n", NULL);
        int c = CHECK_OK(dconnect()), rs[3];
        uint64_t reg;
        char conf[300];
        snprintf(conf, sizeof(conf), "%s/ipcfd.conf", d.dir);
        CHECK_OK(do_register(c, "h.1", 0, 0, &reg, &rs[0]));
        CHECK_ERR(do_register(c, "h.2", 0, 0, &reg, &rs[1]), -EDQUOT);

        /* A bad config is refused; the old one stays. */
        FILE *f = fopen(conf, "w");
        fputs("[limits]\nregistrations_per_user = many\n", f);
        fclose(f);
        kill(d.pid, SIGHUP);
        usleep(100000); /* a reload that would succeed shows here */
        sync_daemon(c);
        CHECK_ERR(do_register(c, "h.2", 0, 0, &reg, &rs[1]), -EDQUOT);

        f = fopen(conf, "w");
        fputs("[daemon]\nshared = yes\n[limits]\nregistrations_per_user = 3\n", f);
        fclose(f);
        kill(d.pid, SIGHUP);
        int r = -EDQUOT;
        for (int i = 0; i < 200 && r == -EDQUOT; i++) {
                r = do_register(c, "h.2", 0, 0, &reg, &rs[1]);
                if (r == -EDQUOT)
                        usleep(10000);
        }
        CHECK_OK(r);
        CHECK_OK(do_register(c, "h.3", 0, 0, &reg, &rs[2]));
        struct stat st;
        char path[300];
        snprintf(path, sizeof(path), "%s/%s", d.dir, CTL_SOCKET_NAME);
        CHECK_OK(stat(path, &st));
        CHECK_EQ(st.st_mode & 0777, 0666);
        for (int i = 0; i < 3; i++)
                close(rs[i]);
        close(c);
        test_daemon_stop(&d);
}

/* ---- random well-framed requests: the daemon answers or drops, never dies -- */

TEST_TIMEOUT(random_requests_never_crash, 120) {
        test_daemon d;
        test_daemon_start(&d, "[name r.*]\nallocate = *\nregister = *\nactivate = exit 0\n", NULL);
        unsigned seed = 777;
        int c = -1, drops = 0, answers = 0;
        ctl_builder *b = malloc(sizeof(*b));
        rmsg *r = malloc(sizeof(*r));
        static const char *names[] = { "r.a", "r.b", "x", "", "has space", "r.*" };

        for (int it = 0; it < 4000; it++) {
                if (c < 0)
                        c = CHECK_OK(dconnect());
                uint16_t type = (uint16_t)(1 + rand_r(&seed) % (CTL_TYPE_MAX_ + 1));
                ctl_begin(b, type, (uint32_t)it);
                int n_attrs = rand_r(&seed) % 6;
                for (int k = 0; k < n_attrs; k++) {
                        uint16_t at = (uint16_t)(1 + rand_r(&seed) % (CTL_A_TYPE_MAX_ + 1));
                        uint8_t val[300];
                        size_t len;
                        switch (rand_r(&seed) % 5) {
                        case 0: len = 4; break;
                        case 1: len = 8; break;
                        case 2: len = sizeof(struct ctl_qos_wire); break;
                        case 3: { /* a string */
                                const char *s = names[rand_r(&seed) % ARRAY_SIZE(names)];
                                len = strlen(s) + 1;
                                memcpy(val, s, len);
                                goto put;
                        }
                        default: len = (size_t)(rand_r(&seed) % sizeof(val)); break;
                        }
                        for (size_t i = 0; i < len; i++)
                                val[i] = (uint8_t)rand_r(&seed);
                        /* Small ids often, so some refer to live objects. */
                        if (len == 8 && rand_r(&seed) % 2)
                                memset(val + 1, 0, 7);
                        if (at == CTL_A_TIMEOUT_MS && len == 4)
                                memcpy(val, "\x32\x00\x00\x00", 4);
                put:
                        ctl_put(b, at, val, len);
                }
                CHECK_OK(ctl_end(b));
                int sv[2] = { -1, -1 };
                unsigned nfds = 0;
                if (type == CTL_ALLOC ? rand_r(&seed) % 8 != 0 : rand_r(&seed) % 16 == 0) {
                        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
                        nfds = 1;
                }
                int e = ctl_send(c, b, sv, nfds);
                safe_close(sv[1]);
                if (e < 0) { /* dropped already */
                        safe_close(sv[0]);
                        c = safe_close(c);
                        drops++;
                        continue;
                }
                int k = recv_msg(c, r, 5000);
                if (k == 1) {
                        answers++;
                        close_fds(r);
                } else {
                        CHECK(k == 0 || k == -ECONNRESET); /* dropped, never silent */
                        c = safe_close(c);
                        drops++;
                }
                safe_close(sv[0]);
        }
        printf("  %d answered, %d dropped\n", answers, drops);
        CHECK(answers > 100 && drops > 100);
        safe_close(c);
        c = CHECK_OK(dconnect());
        CHECK_OK(do_hello(c, NULL));
        close(c);
        free(b);
        free(r);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(handshake_rate, 60) {
        /* Not a benchmark, a sanity bound: a full alloc/accept/handover/dealloc
         * cycle costs a handful of round trips, so hundreds per second at the
         * very least even under sanitizers. Prints the rate. */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int ca = CHECK_OK(dconnect()), cb = CHECK_OK(dconnect()), rs, reply;
        uint64_t reg, req;
        flowinfo a, b;
        CHECK_OK(do_register(cb, "rate", 0, 0, &reg, &rs));
        enum { N = 1000 };
        uint64_t t0 = test_now_ns();
        for (int i = 0; i < N; i++) {
                CHECK_OK(do_alloc(ca, "rate", NULL, 5000, NULL, &reply));
                wait_request(rs, &req, NULL, NULL);
                CHECK_OK(do_accept(cb, reg, req, &b));
                CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
                send_ok(reply);
                close(reply);
                CHECK_OK(do_simple(ca, CTL_DEALLOC, CTL_A_FLOW_ID, a.id, 0, 0, NULL));
                CHECK_OK(do_simple(cb, CTL_DEALLOC, CTL_A_FLOW_ID, b.id, 0, 0, NULL));
                flow_close(&a);
                flow_close(&b);
        }
        uint64_t us = (test_now_ns() - t0) / 1000;
        printf("  %d flows made and ended in %llu ms: %.1f us each\n", N,
               (unsigned long long)(us / 1000), (double)us / N);
        CHECK(us / N < 10000);
        close(rs);
        close(ca);
        close(cb);
        test_daemon_stop(&d);
}

/* ---- a tiny descriptor limit: the caps hold, the daemon survives ---------- */

/* HELLO that tolerates a connection the daemon turned away: 0 or -errno. */
static int try_hello(int fd) {
        ctl_builder b;
        rmsg r;
        ctl_begin(&b, CTL_HELLO, next_seq++);
        CHECK_OK(ctl_end(&b));
        int e = ctl_send(fd, &b, NULL, 0);
        if (e < 0)
                return e;
        e = recv_msg(fd, &r, 5000);
        return e == 1 && r.m.type == CTL_OK ? 0 : e < 0 ? e : -ECONNRESET;
}

TEST_TIMEOUT(tiny_fd_limit, 60) {
        char dir[] = "/tmp/ipcf-test-fd.XXXXXX";
        CHECK(mkdtemp(dir));
        setenv("IPCF_RUNTIME_DIR", dir, 1);
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                struct rlimit rl = { 64, 64 };
                setrlimit(RLIMIT_NOFILE, &rl);
                char *bin = test_build_path("bin/ipcfd");
                execl(bin, bin, "--runtime-dir", dir, (char *)NULL);
                _exit(127);
        }
        int probe = -1;
        for (int i = 0; i < 500 && (probe = dconnect()) < 0; i++)
                usleep(10000);
        CHECK(probe >= 0);

        /* Far more of everything than 64 descriptors allow. */
        enum { N = 24 };
        int conn[N], rs[N], reply[N];
        uint64_t reg[N];
        flowinfo fa[N], fb[N];
        int n_conn = 0, n_reg = 0, n_flow = 0, refused = 0;
        for (int i = 0; i < N; i++) {
                conn[i] = dconnect();
                rs[i] = reply[i] = -1;
                fa[i].fds[0] = fb[i].fds[0] = -1;
                if (conn[i] < 0 || try_hello(conn[i]) < 0) {
                        /* Turned away: the daemon closed it. */
                        safe_close(conn[i]);
                        conn[i] = -1;
                        refused++;
                        continue;
                }
                n_conn++;
        }
        for (int i = 0; i < N; i++) {
                char name[16];
                if (conn[i] < 0)
                        continue;
                snprintf(name, sizeof(name), "fd.%d", i);
                if (do_register(conn[i], name, 0, 0, &reg[i], &rs[i]) < 0) {
                        rs[i] = -1;
                        continue;
                }
                n_reg++;
                int e = do_alloc(probe, name, NULL, 2000, NULL, &reply[i]);
                if (e < 0) {
                        CHECK(e == -EDQUOT || e == -EMFILE || e == -ENOMEM);
                        reply[i] = -1;
                        continue;
                }
                uint64_t req;
                wait_request(rs[i], &req, NULL, NULL);
                e = do_accept(conn[i], reg[i], req, &fb[i]);
                if (e < 0) {
                        CHECK(e == -EDQUOT || e == -EMFILE);
                        fb[i].fds[0] = -1;
                        continue;
                }
                CHECK_OK(wait_outcome(reply[i], &fa[i], NULL, NULL, 5000));
                send_ok(reply[i]);
                n_flow++;
        }
        printf("  %d connections (%d turned away), %d registrations, %d flows\n", n_conn, refused,
               n_reg, n_flow);
        CHECK(refused > 0 && n_flow > 0 && n_flow < N);
        CHECK_OK(do_hello(probe, NULL));
        /* Release everything; the daemon is whole again. */
        for (int i = 0; i < N; i++) {
                if (fa[i].fds[0] >= 0)
                        flow_close(&fa[i]);
                if (fb[i].fds[0] >= 0)
                        flow_close(&fb[i]);
                safe_close(reply[i]);
                safe_close(rs[i]);
                safe_close(conn[i]);
        }
        close(probe);
        probe = -1;
        for (int i = 0; i < 500 && probe < 0; i++) {
                probe = dconnect();
                if (probe >= 0 && try_hello(probe) < 0)
                        probe = safe_close(probe);
                if (probe < 0)
                        usleep(10000);
        }
        CHECK(probe >= 0);
        listing l;
        for (int i = 0; i < 200; i++) {
                do_list(probe, &l);
                if (l.n_flows == 0 && l.n_names == 0)
                        break;
                usleep(10000);
        }
        CHECK_EQ(l.n_flows, 0);
        CHECK_EQ(l.n_names, 0);
        close(probe);
        kill(p, SIGTERM);
        CHECK_EQ(test_wait(p, 5000), 0);
        char path[300];
        snprintf(path, sizeof(path), "%s/ipcfd.lock", dir);
        unlink(path);
        CHECK_OK(rmdir(dir));
}
