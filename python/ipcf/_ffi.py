"""_ffi — the C interface of libipcf as this package sees it (cffi, ABI mode).

The declarations below are a copy of the parts of include/ipcf.h the package
uses, with the layout of every struct exactly as the header's (cffi computes
it with the C rules; tests/test_abi.py compiles the real header and compares
sizes and offsets, so a drift fails the tests instead of corrupting memory).
No compiler is needed to install or import the package: the library is
loaded at import time with dlopen.

Which library: $IPCF_LIBRARY if set (a path), else libipcf.so.<MAJOR> by the
dynamic loader's search (LD_LIBRARY_PATH, the ld.so cache: an installed
/usr/local/lib). Its MAJOR version must be the one declared here, and its
MINOR at least MINOR_NEEDED; otherwise the import fails with ImportError.
"""
import os

import cffi

MAJOR = 1
MINOR_NEEDED = 0

CDEF = """
typedef int32_t pid_t;
typedef uint32_t uid_t;
typedef uint32_t gid_t;

uint32_t ipcf_version(void);

typedef struct ipcf_qos {
    uint32_t size;
    uint8_t capacity, mode, full, reserved;
    uint32_t max_msgs;
    uint64_t max_bytes;
    uint32_t max_msg_size, spin_us, cache_msgs, reserved2;
} ipcf_qos;
void ipcf_qos_init(ipcf_qos *qos);

typedef struct ipcf_peer_info {
    char name[128];
    pid_t pid;
    uid_t uid;
    gid_t gid;
} ipcf_peer_info;

typedef struct ipcf_reason {
    int code;
    char text[128];
} ipcf_reason;

typedef struct ipcf_reg_opts {
    uint32_t size, flags, backlog, reserved;
} ipcf_reg_opts;
int ipcf_register(const char *name, const ipcf_reg_opts *opts);

typedef struct ipcf_request {
    uint64_t id;
    char name[128];
    ipcf_peer_info from;
    ipcf_qos qos;
} ipcf_request;
int ipcf_request_next(int reg, int timeout_ms, ipcf_request *ret);
int ipcf_request_accept(int reg, const ipcf_request *req);
int ipcf_request_refuse(int reg, const ipcf_request *req, const char *reason);
int ipcf_accept(int reg, int timeout_ms, ipcf_request *ret_req);

int ipcf_alloc(const char *name, const ipcf_qos *qos, int timeout_ms, ipcf_reason *ret_reason);
ssize_t ipcf_write(int port, const void *buf, size_t len, int timeout_ms);
ssize_t ipcf_read(int port, void *buf, size_t cap, int timeout_ms);
struct iovec { void *iov_base; size_t iov_len; };
ssize_t ipcf_write_many(int port, const struct iovec *msgs, size_t n, int timeout_ms);
ssize_t ipcf_read_many(int port, struct iovec *msgs, size_t n, int timeout_ms);
ssize_t ipcf_next_size(int port, int timeout_ms);
int ipcf_flush(int port, int timeout_ms);
int ipcf_dealloc(int handle, const char *reason);
int ipcf_detach(int handle);
int ipcf_end_reason(int port, ipcf_reason *ret);
int ipcf_last_reason(ipcf_reason *ret);
int ipcf_peer(int port, ipcf_peer_info *ret);
int ipcf_qos_get(int port, ipcf_qos *ret);
int ipcf_fd(int handle);
int ipcf_fd_send(int port);

typedef struct ipcf_set_opts {
    uint32_t size, spin_us;
} ipcf_set_opts;
typedef struct ipcf_set_event {
    int port;
    uint32_t events;
    uint64_t data;
} ipcf_set_event;
int ipcf_set_new(const ipcf_set_opts *opts);
int ipcf_set_add(int set, int port, uint64_t data);
int ipcf_set_del(int set, int port);
int ipcf_set_wait(int set, ipcf_set_event *evs, unsigned max, int timeout_ms);

typedef struct ipcf_port_stats {
    uint64_t msgs_out, bytes_out, msgs_in, bytes_in, queued_out, queued_in;
    uint32_t cached, reserved;
} ipcf_port_stats;
int ipcf_stats(int port, ipcf_port_stats *ret);

const char *ipcf_strerror(int err);
int ipcf_error_cause(int err, char *buf, size_t cap);
const char *ipcf_runtime_dir(void);
int ipcf_connect(void);
int ipcf_pipe(const ipcf_qos *qos, int ret_ports[2]);

typedef struct ipcf_call_req {
    uint64_t id;
    ipcf_peer_info from;
    size_t len;
    uint64_t token;
} ipcf_call_req;
int ipcf_service(const char *name, const ipcf_reg_opts *opts);
ssize_t ipcf_service_next(int svc, void *buf, size_t cap, int timeout_ms, ipcf_call_req *ret);
int ipcf_service_reply(int svc, const ipcf_call_req *req, const void *reply, size_t len,
                       int timeout_ms);
int ipcf_service_fail(int svc, const ipcf_call_req *req, int code, int timeout_ms);
int ipcf_service_cancelled(int svc, const ipcf_call_req *req);
ssize_t ipcf_call(const char *service, const void *req, size_t len, void *reply, size_t cap,
                  int timeout_ms, int *ret_code);

typedef struct ipcf_dgram_src {
    ipcf_peer_info from;
    uint64_t token;
} ipcf_dgram_src;
int ipcf_dgram_open(const char *name, const ipcf_reg_opts *opts);
ssize_t ipcf_dgram_send(int ep, const char *dest, const void *buf, size_t len, int timeout_ms);
ssize_t ipcf_dgram_recv(int ep, void *buf, size_t cap, int timeout_ms, ipcf_dgram_src *ret_src);
ssize_t ipcf_dgram_answer(int ep, const ipcf_dgram_src *src, const void *buf, size_t len,
                          int timeout_ms);
int ipcf_dgram_drops(int ep, uint64_t *ret);

typedef struct ipcf_mbox_opts {
    uint32_t size, flags, max_msgs, max_msg_size;
    uint64_t max_bytes;
} ipcf_mbox_opts;
typedef struct ipcf_receipt {
    pid_t receiver;
    uint32_t reserved;
    uint64_t seq;
} ipcf_receipt;
int ipcf_mbox_create(const char *name, const ipcf_mbox_opts *opts);
int ipcf_mbox_destroy(const char *name);
int ipcf_mbox_open(const char *name, int how, const ipcf_qos *qos, int timeout_ms);
ssize_t ipcf_mbox_send(int h, const void *buf, size_t len, int timeout_ms,
                       ipcf_receipt *ret_receipt);
ssize_t ipcf_mbox_recv(int h, void *buf, size_t cap, int timeout_ms, ipcf_peer_info *ret_sender);
int64_t ipcf_mbox_undelivered(int h);

typedef struct ipcf_mcast_opts {
    uint32_t size, slow, max_msgs, max_msg_size;
} ipcf_mcast_opts;
int ipcf_mcast_create(const char *name, const ipcf_mcast_opts *opts);
int ipcf_mcast_destroy(const char *name);
int ipcf_mcast_join(const char *name, const ipcf_qos *qos, int timeout_ms);
ssize_t ipcf_mcast_send(int h, const void *buf, size_t len, int timeout_ms);
ssize_t ipcf_mcast_recv(int h, void *buf, size_t cap, int timeout_ms, ipcf_peer_info *ret_sender);
int64_t ipcf_mcast_lost(int h);

typedef struct ipcf_event {
    int kind;
    uint32_t lost;
    char name[128];
    uint64_t flow_id;
    int port;
    pid_t pid;
    int end_code;
    char reason[128];
} ipcf_event;
int ipcf_notify_fd(void);
int ipcf_notify_next(int timeout_ms, ipcf_event *ret);
int ipcf_watch(const char *name);
int ipcf_unwatch(const char *name);
"""

# The header's constants the package needs (checked by tests/test_abi.py).
NAME_MAX = 127
REASON_MAX = 127
CALL_MAX = 256 * 1024 - 64
REG_EXCLUSIVE = 1
MBOX_EXCLUSIVE = 1
MBOX_STREAM = 2
MBOX_SEND = 1
MBOX_RECV = 2
SET_IN = 1

ffi = cffi.FFI()
ffi.cdef(CDEF)


def _load():
    path = os.environ.get("IPCF_LIBRARY") or "libipcf.so.%d" % MAJOR
    try:
        lib = ffi.dlopen(path)
    except OSError as e:
        raise ImportError(
            "ipcf: cannot load the C library %s (%s); install ipcf (make install) "
            "or point IPCF_LIBRARY or LD_LIBRARY_PATH at it" % (path, e)) from e
    v = lib.ipcf_version()
    if v >> 16 != MAJOR or (v & 0xFFFF) < MINOR_NEEDED:
        raise ImportError("ipcf: %s is version %d.%d; this package needs %d.%d or a later 1.x"
                          % (path, v >> 16, v & 0xFFFF, MAJOR, MINOR_NEEDED))
    return lib


lib = _load()

# Buffers filled by the library before they are read: no need to zero them.
new_raw = ffi.new_allocator(should_clear_after_alloc=False)
