/*
 * rawctl.c — the raw control-protocol client of the daemon's protocol tests
 * (see rawctl.h).
 */
#include "support/rawctl.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "support/test.h"

uint32_t next_seq = 1;

int dconnect(void) {
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
int recv_msg(int fd, rmsg *r, int timeout_ms) {
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

void close_fds(rmsg *r) {
        for (unsigned i = 0; i < r->n_fds; i++)
                close(r->fds[i]);
        r->n_fds = 0;
}

/* Wait for the reply to a request: 0 for OK (r holds it), -errno for ERROR. */
int wait_reply(int fd, rmsg *r, uint32_t seq) {
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

int do_hello(int fd, uint32_t *ret_pid) {
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

int do_register(int fd, const char *name, uint32_t flags, uint32_t backlog, uint64_t *ret_id,
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

int do_simple(int fd, uint16_t type, uint16_t a1, uint64_t v1, uint16_t a2, uint64_t v2,
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
int do_name_request(int fd, uint16_t type, const char *name) {
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
int do_alloc_wire(int fd, const char *name, const struct ctl_qos_wire *qw, int64_t role,
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
int do_alloc(int fd, const char *name, const ipcf_qos *qos, int timeout_ms, uint64_t *ret_id,
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
void wait_request(int rs, uint64_t *ret_req, struct ctl_peer_wire *ret_peer, char *ret_pname) {
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

void parse_flow(rmsg *r, flowinfo *f) {
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

int do_accept(int fd, uint64_t reg_id, uint64_t req_id, flowinfo *f) {
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
int wait_outcome(int reply, flowinfo *f, char *ret_reason, uint32_t *ret_end, int timeout_ms) {
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

void send_ok(int sock) {
        ctl_builder b;
        ctl_begin(&b, CTL_OK, 0);
        CHECK_OK(ctl_end(&b));
        CHECK_OK(ctl_send(sock, &b, NULL, 0));
}

void flow_close(flowinfo *f) {
        for (int i = 0; i < FLOW_SIDE_FDS; i++)
                close(f->fds[i]);
}

void *flow_map(const flowinfo *f) {
        void *p = mmap(NULL, f->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fds[0], 0);
        CHECK(p != MAP_FAILED);
        return p;
}

/* Is the fd readable within timeout_ms? */
bool readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, timeout_ms) == 1;
}

/* Has the daemon closed this connection (EOF) within 2 s? */
bool refused_by_daemon(int fd, int err) {
        rmsg *r = malloc(sizeof(*r));
        CHECK(r != NULL);
        uint32_t e = 0;
        bool ok = recv_msg(fd, r, 2000) == 1 && r->m.type == CTL_ERROR && r->m.seq == 0 &&
                  ctl_get_u32(&r->m, CTL_A_ERRNO, &e) == 0 && e == (uint32_t)err;
        close_fds(r);
        free(r);
        return ok && closed_by_daemon(fd);
}

bool closed_by_daemon(int fd) {
        uint8_t b[64];
        if (!readable(fd, 2000))
                return false;
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Make sure the daemon has handled every event that was ready before this
 * call (closes of our sockets included): a round trip on fd, which it
 * answers in the same or a later batch of events, then a little slack. */
void sync_daemon(int fd) {
        CHECK_OK(do_hello(fd, NULL));
        usleep(10000);
}

/* Register + alloc + accept; fills both flow ends (a: allocator, b: acceptor). */
void make_flow(int ca, int cb, const char *name, const ipcf_qos *qos, uint64_t *ret_reg,
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

/* Send raw bytes (and maybe fds) as one packet. */
void send_raw(int fd, const void *buf, size_t len, const int *fds, unsigned n_fds) {
        ctl_builder *b = malloc(sizeof(*b));
        memcpy(b->buf, buf, len);
        b->len = len;
        b->err = 0;
        CHECK_OK(ctl_send(fd, b, fds, n_fds));
        free(b);
}

void do_list(int fd, listing *l) {
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

/* One LIST page: counts of entries and the LIST_MORE flag. */
void do_list_page(int fd, uint32_t skip, unsigned *ret_names, unsigned *ret_flows,
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

void as_nobody(void) {
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
