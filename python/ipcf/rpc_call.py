"""rpc_call — an RPC call started from Python and finished later
(ipcf.rpc.Client.start): the C runtime's ipcf_rpc_start, ipcf_rpc_wait and
ipcf_rpc_cancel, so a started call has the same guarantees as a generated
C stub's (exactly once while the server lives; a cancel reaches the
handler as ipcf_rpc_cancelled, also on another host).

    call = calc.start("ADD", {"a": 40, "b": 2})    # returns once it is sent
    ...                                           # other work
    call.result(timeout=5)                        # 42, or the call's exception
    call.cancel()                                 # ask the server to stop it

How: the call's ipcf_rpc_proc entry has cffi callbacks for an encoder that
copies the arguments' XDR (encoded by the package's codec before the start)
and a decoder that keeps the result's bytes, which result() decodes. The
runtime reaches them through the call's 8-byte argument and result cells,
which hold keys of a table here (_rpcffi.Cells). A Call is used by one
thread at a time; its client may not be closed while it runs (close()
frees the client's started calls first, cancelling those that run).
"""
import errno as _errno
import time
import weakref

from ._rpcffi import Cells, ffi, lib as _lib, xdr_rest
from ._timeout import to_ms
from .rpc import _Closes

_cells = Cells()
_SLICE_MS = 250  # a wait for ever is cut into these, so that Ctrl-C reaches Python


@ffi.callback("int(ipcf_xdr *, const void *)")
def _encode_arg(x, cell):
    data = _cells.get(cell, b"")
    return _lib.ipcf_xdr_put_fixed(x, data, len(data))


@ffi.callback("int(ipcf_xdr *, void *)")
def _decode_res(x, cell):
    _cells.put(cell, xdr_rest(x))
    return 0


@ffi.callback("void(void *)")
def _free_res(cell):
    pass  # the bytes stay for result(), which takes them


class Call(_Closes):
    """A started call: done(), wait(timeout), result(timeout), cancel(),
    close() (or `with`)."""

    def __init__(self, client, p, vers, args_xdr, timeout_ms, before):
        self.client, self.procedure, self._before = client, p, before
        self._c, self._r, self._value = None, None, None
        self._in = ffi.new("uint64_t *")
        self._out = ffi.new("uint64_t *")
        self._proc = ffi.new("ipcf_rpc_proc *")
        self._name = ffi.new("char[]", p.name.encode())
        self._proc.number, self._proc.flags, self._proc.timeout_ms = p.number, p.flags, p.timeout_ms
        self._proc.name = self._name
        if p.args:
            self._proc.arg_size, self._proc.encode_arg = 8, _encode_arg
            _cells.put(self._in, args_xdr)
        if p.result.kind != "void":
            self._proc.res_size, self._proc.decode_res, self._proc.free_res = 8, _decode_res, _free_res
        self._v = ffi.new("ipcf_rpc_version *")
        self._v.prog, self._v.vers = p.prog, vers
        self._v.procs, self._v.n_procs = self._proc, 1
        self._info = ffi.new("ipcf_rpc_info *")
        self._opts = ffi.new("ipcf_rpc_opts *")
        self._opts.timeout_ms, self._opts.info = timeout_ms, self._info
        ret = ffi.new("ipcf_rpc_call **")
        client_c = ffi.cast("ipcf_rpc_client *", client._address())
        try:
            r = _lib.ipcf_rpc_start(client_c, self._v, self._proc, self._in if p.args else ffi.NULL,
                                    self._out if p.result.kind != "void" else ffi.NULL, self._opts, ret)
        finally:
            _cells.take(self._in)  # encoded, or never to be
        if r < 0:
            self._raise(r)
        self._c = ret[0]
        client._calls.add(self)

    def done(self):
        """True once the call is finished (result() will not wait)."""
        return self.wait(0)

    def wait(self, timeout=None):
        """Wait up to timeout seconds (None: until it finishes) for the call
        to finish: True if it has."""
        if self._r is not None:
            return True
        if self._c is None:
            raise ValueError("the call is closed")
        ms = to_ms(timeout)
        end = None if ms < 0 else time.monotonic() + ms / 1000
        while True:
            left = _SLICE_MS if end is None else max(0, min(_SLICE_MS, int((end - time.monotonic()) * 1000)))
            r = _lib.ipcf_rpc_wait(self._c, left)
            if r not in (-_errno.EAGAIN, -_errno.ETIMEDOUT):
                self._r = r
                raw = _cells.take(self._out) if self.procedure.result.kind != "void" else None
                if r == 0:
                    self._value = raw
                return True
            if end is not None and time.monotonic() >= end:
                return False

    def result(self, timeout=None):
        """The call's result (waiting up to timeout seconds for it; None:
        until it finishes), or its exception, as Client.call raises them;
        IpcfTimeoutError if it is still running when the wait ends (the
        call goes on)."""
        if not self.wait(timeout):
            from .errors import error
            raise error(-_errno.ETIMEDOUT, "%s: still running" % self.procedure.name)
        if self._r < 0:
            self._raise(self._r)
        return self.client._decode_result(self.procedure, self._value)

    def cancel(self):
        """Ask the server to stop the call (see ipcf_rpc_cancel): result()
        then gives its verdict — its result if it came first, ECANCELED if
        it never ran, what its handler returned, or OutcomeUnknownError."""
        if self._c is not None and self._r is None:
            _lib.ipcf_rpc_cancel(self._c)

    def _raise(self, r):
        from .rpc import _raise
        _raise(r, self.client.name, self.procedure, self._info, self._before)

    def close(self):
        """Free the call (a running one is cancelled first). Idempotent."""
        if getattr(self, "_c", None) is not None:
            _lib.ipcf_rpc_call_free(self._c)
            self._c = None
            if self._r is None:
                _cells.take(self._out)
            self.client._calls.discard(self)


def new_call_set():
    """The started calls of a client, which it frees before it is freed."""
    return weakref.WeakSet()
