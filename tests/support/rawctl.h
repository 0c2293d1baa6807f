/*
 * rawctl.h — a client of ipcfd speaking the raw control protocol
 * (common/ctl.c), not the library: the helpers the daemon's protocol tests
 * share (test-daemon-core, -flows, -names). Each call that talks to the
 * daemon waits a bounded time (5 s) and fails the test on anything
 * unexpected; requests number themselves from next_seq.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "common/flowmem.h"

/* One received message with its descriptors. */
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

/* LIST: parse the reply into counts and copies of the entries. */
typedef struct listing {
        uint32_t pid;
        uint64_t uptime;
        unsigned n_names, n_flows;
        struct ctl_name_entry_wire names[16];
        struct ctl_flow_entry_wire flows[16];
} listing;

/* The next request seq (each helper takes one). */
extern uint32_t next_seq;

/* A new connection to the daemon of IPCF_RUNTIME_DIR, or -errno. */
int dconnect(void);

/* Receive one message within timeout_ms: 1 got one, 0 EOF, -ETIMEDOUT, -errno. */
int recv_msg(int fd, rmsg *r, int timeout_ms);

/* Close the descriptors r received. */
void close_fds(rmsg *r);

/* Wait for the reply to a request: 0 for OK (r holds it), -errno for ERROR. */
int wait_reply(int fd, rmsg *r, uint32_t seq);

/* HELLO: 0 (and the daemon's pid) or -errno. */
int do_hello(int fd, uint32_t *ret_pid);

/* REGISTER name: 0, *ret_id and the request socket, or -errno. */
int do_register(int fd, const char *name, uint32_t flags, uint32_t backlog, uint64_t *ret_id,
                int *ret_sock);

/* A request of type with up to two u64 attributes and a reason: 0 or -errno. */
int do_simple(int fd, uint16_t type, uint16_t a1, uint64_t v1, uint16_t a2, uint64_t v2,
              const char *reason);

/* A request whose only attribute is NAME (MBOX_CREATE, WATCH...): 0 or -errno. */
int do_name_request(int fd, uint16_t type, const char *name);

/* ALLOC of a wire qos with a fresh reply socketpair; *ret_reply is our end.
 * role < 0: no ROLE attribute. */
int do_alloc_wire(int fd, const char *name, const struct ctl_qos_wire *qw, int64_t role,
                  int timeout_ms, uint64_t *ret_id, int *ret_reply);

/* ALLOC with a fresh reply socketpair; *ret_reply is our end. */
int do_alloc(int fd, const char *name, const ipcf_qos *qos, int timeout_ms, uint64_t *ret_id,
             int *ret_reply);

/* The next REQUEST on a registration socket. */
void wait_request(int rs, uint64_t *ret_req, struct ctl_peer_wire *ret_peer, char *ret_pname);

/* A FLOW message into f (its descriptors move into f). */
void parse_flow(rmsg *r, flowinfo *f);

/* ACCEPT req_id on reg_id: 0 and the FLOW in f, or -errno. */
int do_accept(int fd, uint64_t reg_id, uint64_t req_id, flowinfo *f);

/* The outcome on a reply socket: 0 and *f for FLOW, -errno for ERROR. */
int wait_outcome(int reply, flowinfo *f, char *ret_reason, uint32_t *ret_end, int timeout_ms);

/* The handover OK on a reply socket. */
void send_ok(int sock);

/* Close f's descriptors. */
void flow_close(flowinfo *f);

/* Map f's region whole. */
void *flow_map(const flowinfo *f);

/* Is the fd readable within timeout_ms? */
bool readable(int fd, int timeout_ms);

/* Has the daemon closed this connection (EOF) within 2 s? */
bool closed_by_daemon(int fd);
/* Has the daemon refused (or reclaimed) connection fd with a notice of
 * err (an ERROR with seq 0), then closed it? */
bool refused_by_daemon(int fd, int err);

/* Make sure the daemon has handled every event that was ready before this
 * call (closes of our sockets included): a round trip on fd, which it
 * answers in the same or a later batch of events, then a little slack. */
void sync_daemon(int fd);

/* Register + alloc + accept; fills both flow ends (a: allocator, b: acceptor). */
void make_flow(int ca, int cb, const char *name, const ipcf_qos *qos, uint64_t *ret_reg,
               int *ret_rs, flowinfo *a, flowinfo *b);

/* Send raw bytes (and maybe fds) as one packet. */
void send_raw(int fd, const void *buf, size_t len, const int *fds, unsigned n_fds);

/* LIST (first page) into l. */
void do_list(int fd, listing *l);

/* One LIST page: counts of entries and the LIST_MORE flag. */
void do_list_page(int fd, uint32_t skip, unsigned *ret_names, unsigned *ret_flows,
                  uint32_t *ret_more);

/* Become uid/gid 65534 with no supplementary groups (root only). */
void as_nobody(void);
