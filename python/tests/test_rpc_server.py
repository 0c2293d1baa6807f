"""test_rpc_server — ipcf.rpc.Server: an RPC server whose handlers are Python
functions, on the C runtime, called by the calculator example's C stubs
(build/examples/calc-client, its own process), by `ipcf rpc call` and by
ipcf.rpc.Client, all against the session's real daemon."""
import errno
import os
import subprocess
import threading
import time

import pytest

import ipcf
import ipcf.rpc as rpc
from conftest import BUILD, TREE, plain_env

CALC_X = open(os.path.join(TREE, "examples", "rpc", "calc.x")).read()

TOOLS_X = r"""
struct pair { int a; int b; };
typedef string text<>;
program TOOLS {
        version TOOLS_V1 {
                hyper SUM3(hyper, hyper, hyper) = 1;
                int FAILS(int) = 2;
                int WAITS(int) = 3;
                int WRONG(int) = 4;
                int MISSING(int) = 5;
                void STOP(void) = 6;
                text WHO(void) = 7;
                pair SWAP(pair) = 8;
                int BREAKS(int) = 9;
        } = 1;
} = 0x20005678;
"""


def calc_handlers():
    total = [0]

    def accumulate(ctx, n):
        total[0] += n
        return total[0]

    def div(ctx, ops):
        if ops["b"] == 0:
            return {"err": errno.EDOM}
        return {"err": 0, "value": int(ops["a"] / ops["b"])}
    return {"ADD": lambda ctx, o: o["a"] + o["b"], "mul": lambda ctx, o: o["a"] * o["b"],
            "DIV": div, "ACCUMULATE": accumulate}


class Running:
    """A server run in a thread of this process for the test's length."""

    def __init__(self, server, threads=2):
        self.server = server
        self.error = None
        self.t = threading.Thread(target=self._run, args=(threads,), daemon=True)
        self.t.start()

    def _run(self, threads):
        try:
            self.server.run(threads=threads, timeout=60)
        except BaseException as e:  # noqa: B036 (the test looks at it)
            self.error = e

    def stop(self):
        self.server.stop()
        self.t.join(10)
        assert not self.t.is_alive()


def run_cli(*args):
    return subprocess.run([os.path.join(BUILD, "bin", "ipcf")] + list(args), capture_output=True, text=True,
                          timeout=30, env=plain_env())


def test_c_stubs_the_shell_and_python_call_a_python_server(name):
    """The calculator of examples/rpc served from Python: the C example's
    generated stubs (another process), `ipcf rpc call` and rpc.Client get the
    same answers as from calc-server; `ipcf rpc describe` prints the text."""
    with rpc.Server(name, CALC_X, calc_handlers()) as s:
        r = Running(s)
        try:
            out = subprocess.run([os.path.join(BUILD, "examples", "calc-client"), name, "40", "2"],
                                 capture_output=True, text=True, timeout=30, env=plain_env())
            assert out.returncode == 0, out.stderr
            assert out.stdout.split() == ["sum", "42", "product", "80", "quotient", "20", "total", "40"]
            assert run_cli("rpc", "call", name, "DIV", '{"a": 1, "b": 0}').stdout.strip() == '{"err": 33}'
            assert run_cli("rpc", "describe", name).stdout.rstrip("\n") == CALC_X.rstrip("\n")
            with rpc.Client(name) as c:
                assert c.call("MUL", {"a": -3, "b": 7}) == -21
                assert c.call("ACCUMULATE", 2) == 42  # after the C client's 40
        finally:
            r.stop()
        assert r.error is None and s.errors == []


def test_arguments_results_and_errors(name):
    """Several arguments (as the C arguments' struct), a handler's errno, an
    exception without one, a result of the wrong type, a procedure without a
    handler, and arguments that do not decode."""
    seen = []

    def fails(ctx, n):
        raise OSError(n, "failed on purpose")

    def breaks(ctx, n):
        raise KeyError("no such thing")

    def who(ctx):
        seen.append(ctx)
        return "%s pid %d uid %d on %s" % (ctx.program, ctx.pid, ctx.uid, ctx.host)

    h = {"SUM3": lambda ctx, a, b, c: a + b + c, "FAILS": fails, "WRONG": lambda ctx, n: "text",
         "WHO": who, "SWAP": lambda ctx, p: {"a": p["b"], "b": p["a"]}, "BREAKS": breaks}
    with rpc.Server(name, TOOLS_X, h) as s:
        r = Running(s)
        try:
            with rpc.Client(name) as c:
                assert c.call("SUM3", 1, 2, 2**40) == 3 + 2**40
                assert c.call("SWAP", {"a": 1, "b": 2}) == {"a": 2, "b": 1}
                with pytest.raises(ipcf.RemoteError) as e:
                    c.call("FAILS", errno.EDOM)
                assert e.value.code == -errno.EDOM
                with pytest.raises(ipcf.RemoteError) as e:
                    c.call("BREAKS", 1)
                assert e.value.code == -errno.EIO
                with pytest.raises(ipcf.RemoteError) as e:
                    c.call("WRONG", 1)
                assert e.value.code == -errno.EIO
                with pytest.raises(rpc.UnknownProcedureError):
                    c.call("MISSING", 1)
                me = os.path.basename(os.readlink("/proc/self/exe"))
                assert c.call("WHO") == "%s pid %d uid %d on %s" % (me, os.getpid(), os.getuid(), seen[0].host)
                assert seen[0].gid == os.getgid() and seen[0].deadline > time.monotonic() - 60
            # arguments with bytes after them: -EBADMSG, nothing run
            res, n = rpc.ffi.new("void **"), rpc.ffi.new("size_t *")
            raw = rpc.ffi.new("ipcf_rpc_client **")
            assert rpc._lib.ipcf_rpc_client_new(name.encode(), rpc.ffi.NULL, raw) == 0
            try:
                args = b"\0\0\0\1" * 7  # three hypers take 24 bytes
                r3 = rpc._lib.ipcf_rpc_call_raw(raw[0], 0x20005678, 1, 1, 0, args, len(args), rpc.ffi.NULL,
                                                res, n)
                assert r3 == -errno.EBADMSG
            finally:
                rpc._lib.ipcf_rpc_client_free(raw[0])
        finally:
            r.stop()
        assert r.error is None
        assert [type(e) for e in s.errors] == [KeyError, TypeError]  # BREAKS, WRONG


def test_a_deadline_reaches_the_handler_as_cancelled(name):
    """A handler that works until ctx.cancelled() stops when the caller's
    deadline passes; the caller gets "outcome unknown", or the handler's
    answer if it is back before the caller gives up."""
    stopped = threading.Event()

    def waits(ctx, n):
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if ctx.cancelled():
                stopped.set()
                return 0
            time.sleep(0.005)
        return n
    with rpc.Server(name, TOOLS_X, {"WAITS": waits}) as s:
        r = Running(s)
        try:
            with rpc.Client(name) as c:
                t0 = time.monotonic()
                try:  # the handler's answer may still come in time (RPC.md)
                    assert c.call("WAITS", 1, timeout=0.3) == 0
                except rpc.OutcomeUnknownError:
                    pass
                assert stopped.wait(10)
                assert time.monotonic() - t0 < 10
        finally:
            r.stop()


def test_stop_and_close_from_a_handler_and_from_another_thread(name):
    """stop() from a handler makes run() return; close() from another thread
    while run() runs waits for it and frees the server (the name goes);
    close() from a handler frees it when run() returns; an interrupt raised
    in a handler comes out of run()."""
    holder = {}

    def stop(ctx):
        holder["s"].stop()

    with rpc.Server(name, TOOLS_X, {"STOP": stop, "SUM3": lambda ctx, a, b, c: a + b + c}) as s:
        holder["s"] = s
        r = Running(s)
        with rpc.Client(name) as c:
            assert c.call("SUM3", 1, 1, 1) == 3
            c.call("STOP")
        r.t.join(10)
        assert not r.t.is_alive() and r.error is None
        r = Running(s)  # again, then closed from here
        with rpc.Client(name) as c:
            assert c.call("SUM3", 1, 1, 2) == 4
        s.close()
        r.t.join(10)
        assert not r.t.is_alive() and r.error is None
        with pytest.raises(ipcf.IpcfError) as e:
            rpc.Client(name, interface=TOOLS_X).call("SUM3", 1, 1, 1, timeout=2)
        assert e.value.errno == errno.ENOENT
        with pytest.raises(ValueError):
            s.run(timeout=0)

    def closes(ctx):
        holder["s2"].close()

    def interrupts(ctx, n):
        raise KeyboardInterrupt()

    with rpc.Server(name, TOOLS_X, {"STOP": closes, "BREAKS": interrupts}) as s2:
        holder["s2"] = s2
        r = Running(s2)
        with rpc.Client(name) as c:
            c.call("STOP")
        r.t.join(10)
        assert not r.t.is_alive() and r.error is None and s2._s is None
    with rpc.Server(name, TOOLS_X, {"BREAKS": interrupts}) as s3:
        r = Running(s3)
        with rpc.Client(name) as c:
            with pytest.raises(ipcf.RemoteError) as e:
                c.call("BREAKS", 1)
            assert e.value.code == -errno.EINTR
        r.t.join(10)
        assert isinstance(r.error, KeyboardInterrupt)


def test_bad_servers_are_refused(name):
    """Handlers the interface does not have, several programs without a
    name, a version that is not there, an unknown option: errors before
    serving; run() while it runs: RuntimeError."""
    with pytest.raises(rpc.InterfaceError):
        rpc.Server(name, TOOLS_X, {"NOSUCH": lambda ctx: 0})
    with pytest.raises(TypeError):
        rpc.Server(name, TOOLS_X, {"SUM3": 5})
    with pytest.raises(rpc.InterfaceError):
        rpc.Server(name, TOOLS_X + CALC_X, {})
    with pytest.raises(rpc.InterfaceError):
        rpc.Server(name, TOOLS_X, {}, version=9)
    with pytest.raises(TypeError):
        rpc.Server(name, TOOLS_X, {}, nosuch_option=1)
    with rpc.Server(name, CALC_X, calc_handlers()) as s:
        s.run(timeout=0)
        with pytest.raises(RuntimeError):  # run() twice at once
            s._run_lock.acquire()
            try:
                s.run(timeout=0)
            finally:
                s._run_lock.release()


def test_the_server_declarations_match_the_header(tmp_path):
    """_rpcffi.py's declarations (the server's and started calls' structs)
    against include/ipcf.h."""
    from ipcf import rpc_server
    pairs = []
    for s in ("ipcf_xdr", "ipcf_rpc_ctx", "ipcf_rpc_proc", "ipcf_rpc_version", "ipcf_rpc_server_opts",
              "ipcf_rpc_info", "ipcf_rpc_opts"):
        t = rpc_server.ffi.typeof(s)
        pairs.append(("sizeof(%s)" % s, rpc_server.ffi.sizeof(t)))
        pairs += [("offsetof(%s, %s)" % (s, f), ft.offset) for f, ft in t.fields]
    src = tmp_path / "abi.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include \"ipcf.h\"\nint main(void) {\n" +
                   "".join('printf("%%llu\\n", (unsigned long long)(%s));\n' % e for e, _ in pairs) + "}\n")
    subprocess.run(["cc", "-I", os.path.join(TREE, "include"), "-o", str(tmp_path / "abi"), str(src)],
                   check=True, timeout=60, env=plain_env())
    got = [int(v) for v in subprocess.run([str(tmp_path / "abi")], check=True, capture_output=True,
                                          timeout=10, env=plain_env()).stdout.split()]
    assert got == [v for _, v in pairs]
