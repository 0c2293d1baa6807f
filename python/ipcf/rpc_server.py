"""rpc_server — serve an RPC interface (.x text) from Python handlers.

The server is the C runtime's (ipcf_rpc_server: sessions, slots, the reply
cache, deadlines and cancels, calls in pieces up to 64 MiB, and calls from
other hosts), so a Python server answers the stubs ipcf-idl generates, `ipcf
rpc call` and ipcf.rpc.Client exactly as a generated C server does:

    def add(ctx, ops):
        return ops["a"] + ops["b"]

    with ipcf.rpc.Server("calc", CALC_X, {"ADD": add}) as s:
        s.run(threads=2)                  # until s.stop() or a timeout

A handler is called as handler(ctx, *args): its arguments decoded into the
Python values of ipcf.rpc's table, in the order the procedure declares
them; what it returns is encoded by the result type (None for void). It
fails the call by raising an exception that carries an errno (OSError,
IpcfError: the caller's call fails -EREMOTEIO with that errno as its
remote error); any other exception, or a result that does not fit its
type, fails the call with EIO and is kept in Server.errors (the last 16).
Procedures without a handler are answered "no such procedure" (-EOPNOTSUPP
at the caller). ctx (a Context) says who called: pid, uid, gid, program, host
as the facility stamps them; deadline (time.monotonic() seconds, None for
none), and cancelled() while the handler runs.

How: each procedure's entry in the C version table (ipcf_rpc_proc) is a
set of cffi callbacks. decode_arg takes the arguments' bytes whole from the
runtime's decoder and decodes them with ipcf.rpc's Codec (nesting counted as
in C); invoke runs the handler and encodes its result at once, so
encode_res only copies bytes. The values live in a table keyed by an
integer that the runtime's 8-byte argument and result cells hold. The
runtime's workers are C threads: each callback takes the GIL, so handlers
of one server run one at a time in Python (a handler that blocks in a C
call lets another run).
"""
import errno as _errno
import math
import os
import threading
import time

from ._rpcffi import Cells, ffi, lib as _lib, xdr_rest
from .errors import IpcfError, error
from .handle import _name_arg
from ._timeout import to_ms
from .qos import PeerInfo, text
from .rpc import Codec, Interface, ONEWAY, InterfaceError, _Closes, _Decoder


_tls = threading.local()  # in_handler: this thread runs one of our handlers
KEEP_ERRORS = 16
RUN_SLICE_MS = 1000
_NO_DEADLINE = 2**64 - 1


class Context:
    """Who called, and until when (see the module's text). cancelled() is
    only meaningful while the handler runs."""

    def __init__(self, c):
        self._c = c
        self.caller = PeerInfo(text(c.caller.name), c.caller.pid, c.caller.uid, c.caller.gid)
        self.pid, self.uid, self.gid, self.program = (self.caller.pid, self.caller.uid,
                                                       self.caller.gid, self.caller.name)
        self.host = text(c.host)
        self.deadline = None if c.deadline_ns == _NO_DEADLINE else c.deadline_ns / 1e9
        self.prog, self.vers, self.proc = c.prog, c.vers, c.proc

    def cancelled(self):
        """True once the caller cancelled the call, went away, or the
        deadline passed: the handler should stop early."""
        return self._c is not None and _lib.ipcf_rpc_cancelled(self._c) == 1


def _errno_of(exc):
    """The errno a handler's exception fails its call with."""
    e = getattr(exc, "errno", None)
    return e if isinstance(e, int) and 0 < e < 4096 else _errno.EIO


class _Version:
    """One served version: its C table and the callbacks behind it (kept
    alive here: the runtime calls them for as long as the server lives)."""

    def __init__(self, server, prog, vers, procs, handlers):
        self.keep = []
        self.table = ffi.new("ipcf_rpc_proc[]", max(len(procs), 1))
        for i, p in enumerate(procs):
            self._fill(self.table[i], server, p, handlers.get(p.name))
        self.v = ffi.new("ipcf_rpc_version *")
        self.v.prog, self.v.vers = prog[1], vers
        self.v.prog_name = self._str(prog[0])
        self.v.vers_name = self._str("%s_V%d" % (prog[0], vers))
        self.v.procs, self.v.n_procs = self.table, len(procs)
        self.v.description = self._str(server.text)

    def _str(self, s):
        c = ffi.new("char[]", s.encode("utf-8", "surrogateescape"))
        self.keep.append(c)
        return c

    def _fill(self, e, server, p, handler):
        e.number, e.flags, e.timeout_ms = p.number, p.flags, p.timeout_ms
        e.name = self._str(p.name)
        e.arg_type = self._str("args" if p.args else "void")
        e.res_type = self._str("void" if p.result.kind == "void" else "result")
        cbs = server._callbacks(p, handler)
        self.keep.append(cbs)
        e.invoke = cbs["invoke"]
        if p.args:
            e.arg_size, e.decode_arg, e.free_arg = 8, cbs["decode_arg"], cbs["free"]
        if p.result.kind != "void":
            e.res_size, e.encode_res, e.free_res = 8, cbs["encode_res"], cbs["free"]


class Server(_Closes):
    """An RPC server registered as `name`, serving `interface` (.x text)
    with `handlers` ({procedure name: callable}, any case): the program
    `program` (its name; default: the only one the text defines) in version
    `version` (default: its highest). add() serves more versions. opts: the
    C runtime's (cache_path, cache_sync, max_sessions, max_slots, max_msg,
    max_memory). close() (or `with`) unregisters and ends every session."""

    def __init__(self, name, interface, handlers, program=None, version=None, **opts):
        self.name, self.text = name, interface
        self.interface = Interface(interface)
        self._codec = Codec(self.interface)
        self._cells, self._lock = Cells(), threading.Lock()
        self._versions, self.errors = [], []
        self._stopping, self._interrupt = False, None
        self._run_lock, self._close_pending = threading.Lock(), False
        o = ffi.new("ipcf_rpc_server_opts *")
        path = None
        for k, v in opts.items():
            if k == "cache_path":
                path = ffi.new("char[]", os.fsencode(v))
                o.cache_path = path
            elif k in ("cache_sync", "max_sessions", "max_slots", "max_msg", "max_memory"):
                setattr(o, k, int(v))
            else:
                raise TypeError("no option %r" % k)
        ret = ffi.new("ipcf_rpc_server **")
        r = _lib.ipcf_rpc_server_new(_name_arg(name), o, ret)
        if r < 0:
            raise error(r, name)
        self._s = ret[0]
        try:
            self.add(handlers, program, version)
        except BaseException:
            self.close()
            raise

    def add(self, handlers, program=None, version=None):
        """Serve one more version of the interface's program with handlers."""
        self._check_open()
        progs = self.interface.programs
        if program is None:
            if len(progs) != 1:
                raise InterfaceError("the text defines %d programs: name one" % len(progs), 0)
            program = next(iter(progs))
        if program not in progs:
            raise InterfaceError("no program %r" % program, 0)
        versions = progs[program]["versions"]
        vers = max(versions) if version is None else version
        if vers not in versions:
            raise InterfaceError("program %s has no version %r" % (program, vers), 0)
        procs = list(versions[vers].values())
        by_name = {p.name.lower(): p.name for p in procs}
        named = {}
        for k, fn in handlers.items():
            if k.lower() not in by_name:
                raise InterfaceError("version %d of %s has no procedure %r" % (vers, program, k), 0)
            if not callable(fn):
                raise TypeError("the handler of %s is not callable" % k)
            named[by_name[k.lower()]] = fn
        v = _Version(self, (program, progs[program]["number"]), vers, procs, named)
        r = _lib.ipcf_rpc_server_add(self._s, v.v, v.table, ffi.NULL)
        if r < 0:
            raise error(r, self.name)
        self._versions.append(v)

    def _keep_error(self, exc):
        with self._lock:
            self.errors = (self.errors + [exc])[-KEEP_ERRORS:]

    def _callbacks(self, p, handler):
        codec, server = self._codec, self
        depth = 1 if len(p.args) > 1 else 0  # the C arguments' struct is a level

        @ffi.callback("int(ipcf_xdr *, void *)")
        def decode_arg(x, cell):
            try:
                data = xdr_rest(x)
                dec = _Decoder(data)
                args = [codec.decode(d, dec, depth) for d in p.args]
                if dec.pos != len(data):
                    raise ValueError("bytes after the arguments")
                server._cells.put(cell, args)
                return 0
            except Exception:  # malformed: the caller gets -EBADMSG
                return _lib.ipcf_xdr_fail(x, -_errno.EBADMSG)

        @ffi.callback("void(void *)")
        def free(cell):
            server._cells.take(cell)

        @ffi.callback("int(const void *, ipcf_rpc_ctx *, const void *, void *, void *)")
        def invoke(handlers, ctx, cell_in, cell_out, user):
            if ctx == ffi.NULL:
                return 0 if handler is not None else -_errno.EOPNOTSUPP
            c = None
            _tls.in_handler = True
            try:
                args = server._cells.take(cell_in) if p.args else []
                c = Context(ctx)
                v = handler(c, *(args or []))
                if p.result.kind == "void":
                    if v is not None and not (p.flags & ONEWAY):
                        raise TypeError("%s returns void, not %r" % (p.name, type(v).__name__))
                    return 0
                out = bytearray()
                codec.encode(p.result, v, out)
                server._cells.put(cell_out, bytes(out))
                return 0
            except Exception as e:  # the call fails with its errno (EIO for other errors)
                if not isinstance(e, (OSError, IpcfError)) or _errno_of(e) == _errno.EIO:
                    server._keep_error(e)
                return -_errno_of(e)
            except BaseException as e:  # KeyboardInterrupt in a handler: run() raises it
                server._interrupt = e
                server.stop()
                return -_errno.EINTR
            finally:
                _tls.in_handler = False
                if c is not None:
                    c._c = None

        @ffi.callback("int(ipcf_xdr *, const void *)")
        def encode_res(x, cell):
            data = server._cells.get(cell, b"")
            return _lib.ipcf_xdr_put_fixed(x, data, len(data))

        return {"decode_arg": decode_arg, "free": free, "invoke": invoke, "encode_res": encode_res}

    # -- running
    def run(self, threads=1, timeout=None):
        """Serve calls with `threads` workers (the calling thread among
        them) until stop() or `timeout` seconds (None: for ever). The C
        runtime serves in slices of a second, between which Python handles
        its signals (Ctrl-C); a stop() that falls between two slices ends
        the next one, so run() returns within a second of it."""
        self._check_open()
        ms = to_ms(timeout)
        end = None if ms < 0 else time.monotonic() + ms / 1000
        if not self._run_lock.acquire(blocking=False):
            raise RuntimeError("the server runs already")
        self._stopping, self._interrupt = False, None
        try:
            while not self._close_pending:
                left = RUN_SLICE_MS if end is None else \
                    max(0, min(RUN_SLICE_MS, math.ceil((end - time.monotonic()) * 1000)))
                r = _lib.ipcf_rpc_server_run(self._s, threads, left)
                if self._interrupt is not None:
                    e, self._interrupt = self._interrupt, None
                    raise e
                if r < 0:
                    raise error(r, self.name)
                if self._stopping or (end is not None and time.monotonic() >= end):
                    return
        finally:
            if self._close_pending:
                self._free()
            self._run_lock.release()

    def stop(self):
        """Make run() return (from any thread, also a handler)."""
        if getattr(self, "_s", None) is not None:
            self._stopping = True
            _lib.ipcf_rpc_server_stop(self._s)

    def _check_open(self):
        if getattr(self, "_s", None) is None:
            raise ValueError("the server is closed")

    def close(self):
        """Unregister and end every session. Idempotent. While run() runs
        (in another thread, or from a handler) it stops it; the server is
        freed when run() returns (close() from another thread waits for
        that; from a handler it returns at once)."""
        if getattr(self, "_s", None) is None:
            return
        if self._run_lock.acquire(blocking=False):  # not running: free it now
            try:
                self._free()
            finally:
                self._run_lock.release()
            return
        self._close_pending = True
        self.stop()
        if getattr(_tls, "in_handler", False):
            return
        with self._run_lock:  # run() frees it as it returns
            return

    def _free(self):
        if self._s is not None:
            _lib.ipcf_rpc_server_free(self._s)
            self._s = None

