"""_rpcffi — the C runtime's RPC tables, server and started calls, as the
Python package's RPC server (rpc_server.py) and started calls (rpc_call.py)
use them: ipcf_rpc_proc entries whose encoders and decoders are cffi
callbacks that move XDR bytes the package's own codec made or will read.
Checked against include/ipcf.h by python/tests/test_rpc_server.py."""
import os

import cffi

from . import _ffi

_CDEF = """
typedef struct ipcf_xdr_seg { const void *ptr; size_t off, len; } ipcf_xdr_seg;
typedef struct ipcf_xdr {
    uint8_t *buf; size_t pos; size_t cap; int err; uint32_t depth; uint32_t max_depth;
    uint64_t budget; uint32_t flags; uint32_t n_segs, cap_segs; ipcf_xdr_seg *segs;
    size_t sg_min; size_t total;
} ipcf_xdr;
typedef struct ipcf_rpc_ctx {
    ipcf_peer_info caller; char host[128]; uint64_t deadline_ns;
    uint32_t prog, vers, proc; uint32_t reserved; void *internal;
} ipcf_rpc_ctx;
typedef struct ipcf_rpc_proc {
    uint32_t number; uint32_t flags; int timeout_ms; const char *name;
    const char *arg_type, *res_type; size_t arg_size, res_size;
    int (*encode_arg)(ipcf_xdr *x, const void *v);
    int (*decode_arg)(ipcf_xdr *x, void *v);
    void (*free_arg)(void *v);
    int (*encode_res)(ipcf_xdr *x, const void *v);
    int (*decode_res)(ipcf_xdr *x, void *v);
    void (*free_res)(void *v);
    int (*invoke)(const void *handlers, ipcf_rpc_ctx *ctx, const void *in, void *out, void *user);
} ipcf_rpc_proc;
typedef struct ipcf_rpc_version {
    uint32_t prog, vers; const char *prog_name, *vers_name;
    const ipcf_rpc_proc *procs; size_t n_procs; const char *description;
} ipcf_rpc_version;
typedef struct ipcf_rpc_server ipcf_rpc_server;
typedef struct ipcf_rpc_server_opts {
    const char *cache_path; int cache_sync; uint32_t max_sessions; uint32_t max_slots;
    uint32_t max_msg; uint64_t max_memory; const void *reg;
} ipcf_rpc_server_opts;
int ipcf_rpc_server_new(const char *name, const ipcf_rpc_server_opts *opts, ipcf_rpc_server **ret);
int ipcf_rpc_server_add(ipcf_rpc_server *s, const ipcf_rpc_version *v, const void *handlers, void *user);
int ipcf_rpc_server_run(ipcf_rpc_server *s, unsigned threads, int timeout_ms);
void ipcf_rpc_server_stop(ipcf_rpc_server *s);
ipcf_rpc_server *ipcf_rpc_server_free(ipcf_rpc_server *s);
int ipcf_rpc_cancelled(const ipcf_rpc_ctx *ctx);
int ipcf_xdr_put_fixed(ipcf_xdr *x, const void *p, size_t n);
int ipcf_xdr_fail(ipcf_xdr *x, int err);
typedef struct ipcf_rpc_client ipcf_rpc_client;
typedef struct ipcf_rpc_call ipcf_rpc_call;
typedef struct ipcf_rpc_info {
    int remote_error; uint32_t vers_low; uint32_t vers_high; uint32_t transmissions;
    uint32_t from_cache; uint64_t incarnation;
} ipcf_rpc_info;
typedef struct ipcf_rpc_opts { int timeout_ms; ipcf_rpc_info *info; } ipcf_rpc_opts;
int ipcf_rpc_start(ipcf_rpc_client *c, const ipcf_rpc_version *v, const ipcf_rpc_proc *p, const void *in,
                   void *out, const ipcf_rpc_opts *o, ipcf_rpc_call **ret);
int ipcf_rpc_wait(ipcf_rpc_call *call, int timeout_ms);
int ipcf_rpc_cancel(ipcf_rpc_call *call);
ipcf_rpc_call *ipcf_rpc_call_free(ipcf_rpc_call *call);
"""
ffi = cffi.FFI()
ffi.include(_ffi.ffi)  # ipcf_peer_info, pid_t...
ffi.cdef(_CDEF)
lib = ffi.dlopen(os.environ.get("IPCF_LIBRARY") or "libipcf.so.%d" % _ffi.MAJOR)


class Cells:
    """Python values handed through the runtime's 8-byte argument and result
    cells: a table keyed by the integer a cell holds (thread-safe)."""

    def __init__(self):
        import itertools
        import threading
        self._values, self._lock, self._keys = {}, threading.Lock(), itertools.count(1)

    def put(self, cell, value):
        with self._lock:
            k = next(self._keys)
            self._values[k] = value
        ffi.cast("uint64_t *", cell)[0] = k

    def take(self, cell):
        k = ffi.cast("uint64_t *", cell)[0]
        with self._lock:
            return self._values.pop(k, None)

    def get(self, cell, default=None):
        return self._values.get(ffi.cast("uint64_t *", cell)[0], default)


def xdr_rest(x):
    """The bytes left in decoder x, taken whole (x then reads as ended)."""
    data = bytes(ffi.buffer(x.buf + x.pos, x.cap - x.pos))
    x.pos = x.cap
    return data
