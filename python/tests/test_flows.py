"""test_flows — alloc/register/accept, read/write, and how flows end."""
import errno
import os
import selectors
import signal
import subprocess
import time

import pytest

import ipcf
import ipcf.rpc
from helpers import Background


def echo_once(reg, count=None):
    """Accept one flow on reg and echo it until it ends; returns the port's request."""
    with reg.accept(timeout=10) as port:
        n = 0
        for msg in port:
            port.write(msg, timeout=5)
            n += 1
            if count is not None and n == count:
                break
        return port.request


def test_echo_round_trip_with_identities(name):
    with ipcf.register(name) as reg:
        server = Background(lambda: echo_once(reg))
        with ipcf.alloc(name, timeout=5) as port:
            for msg in (b"hello", b"", bytearray(b"x" * 70000), memoryview(b"view")):
                assert port.write(msg, timeout=5) == len(msg)
                assert port.read(timeout=5) == bytes(msg)
            assert port.peer.name == name
            assert port.peer.pid == os.getpid()
            assert port.end_reason == ipcf.Reason(0, "")
            st = port.stats
            assert st.msgs_out == 4 and st.msgs_in == 4
        req = server.result()
        assert req.sender.pid == os.getpid() and req.sender.uid == os.getuid()
        assert req.name == name


def test_peer_reason_ends_iteration_and_read(name):
    with ipcf.register(name) as reg:
        client = Background(lambda: ipcf.alloc(name, timeout=5))
        port = reg.accept(timeout=5)
        c = client.result()
        c.write(b"last words", timeout=1)
        c.close("client done")
        assert list(port) == [b"last words"]
        with pytest.raises(ipcf.FlowEndedError) as ei:
            port.read(timeout=1)
        assert isinstance(ei.value, BrokenPipeError) and ei.value.errno == errno.EPIPE
        assert ei.value.reason == "client done"
        assert port.end_reason.text == "client done"
        port.close()


def test_unknown_name(name):
    with pytest.raises(ipcf.NameNotFoundError) as ei:
        ipcf.alloc(name, timeout=2)
    e = ei.value
    assert isinstance(e, FileNotFoundError) and isinstance(e, ipcf.IpcfError)
    assert e.errno == errno.ENOENT and e.filename == name
    assert name in str(e) and e.strerror == ipcf.strerror(errno.ENOENT)


def test_name_with_a_nul_is_refused_not_cut(name):
    # C would read "NAME\0evil" as NAME: the flow would go to another name.
    with ipcf.register(name):
        for call in (lambda n: ipcf.alloc(n, timeout=1), ipcf.register, ipcf.mbox_create,
                     ipcf.watch, lambda n: ipcf.call(n, b"x", timeout=1)):
            with pytest.raises(ValueError, match="null character"):
                call(name + "\0evil")
        with pytest.raises(ValueError, match="null character"):
            ipcf.rpc.Client(name + "\0evil")
    a, b = ipcf.pipe()
    with a, b:
        with pytest.raises(ValueError, match="null character"):
            a.close("done\0secret")


def test_timeout_values():
    from ipcf._timeout import to_ms
    assert to_ms(None) == -1 and to_ms(float("inf")) == -1 and to_ms(1e12) == -1
    assert to_ms(0) == 0 and to_ms(0.0001) == 1 and to_ms(2) == 2000
    for bad in (float("nan"), -1, -0.5, float("-inf")):
        with pytest.raises(ValueError):
            to_ms(bad)
    for bad in ("1", True, b"1", [1]):
        with pytest.raises(TypeError):
            to_ms(bad)
    a, b = ipcf.pipe()
    with a, b:
        a.write(b"x", timeout=float("inf"))
        assert b.read(timeout=float("inf")) == b"x"
        with pytest.raises(ValueError):
            b.read(timeout=float("nan"))


def test_refused_with_reason(name):
    with ipcf.register(name) as reg:
        client = Background(lambda: ipcf.alloc(name, timeout=5))
        reg.next_request(timeout=5).refuse("not today")
        with pytest.raises(ipcf.RefusedError) as ei:
            client.result()
        assert isinstance(ei.value, ConnectionRefusedError)
        assert ei.value.errno == errno.ECONNREFUSED and ei.value.reason == "not today"


def test_timeouts(name):
    with ipcf.register(name):
        t0 = time.monotonic()
        with pytest.raises(ipcf.IpcfTimeoutError) as ei:
            ipcf.alloc(name, timeout=0.3)  # registered, never accepted
        assert isinstance(ei.value, TimeoutError) and ei.value.errno == errno.ETIMEDOUT
        assert 0.25 < time.monotonic() - t0 < 5
    a, b = ipcf.pipe()
    with a, b:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            b.read(timeout=0.6)  # longer than a slice of the Ctrl-C-friendly wait
        assert 0.55 < time.monotonic() - t0 < 5
        with pytest.raises(ipcf.WouldBlockError) as ei:
            b.read(timeout=0)
        assert isinstance(ei.value, BlockingIOError) and ei.value.errno == errno.EAGAIN
        with pytest.raises(ValueError):
            b.read(timeout=-1)


def test_oversized_message_writes_nothing():
    a, b = ipcf.pipe(ipcf.QoS(max_msg_size=1024))
    with a, b:
        assert a.qos.max_msg_size == 1024
        with pytest.raises(ipcf.MessageTooLongError) as ei:
            a.write(b"y" * 1025, timeout=1)
        assert ei.value.errno == errno.EMSGSIZE
        a.write(b"fits", timeout=1)
        assert b.read(timeout=1) == b"fits"
        # A receive buffer too small keeps the message queued.
        a.write(b"z" * 100, timeout=1)
        small = bytearray(10)
        with pytest.raises(ipcf.MessageTooLongError):
            b.readinto(small, timeout=1)
        assert b.next_size(timeout=1) == 100
        big = bytearray(200)
        assert b.readinto(big, timeout=1) == 100 and big[:100] == b"z" * 100


def test_closed_port():
    a, b = ipcf.pipe()
    a.close("gone")
    a.close()  # twice: nothing
    assert a.closed and a.handle == -1
    for op in (lambda: a.read(timeout=0), lambda: a.write(b"x", timeout=0), a.fileno):
        with pytest.raises(ipcf.IpcfError) as ei:
            op()
        assert ei.value.errno == errno.EBADF
    with pytest.raises(BrokenPipeError) as ei:
        b.read(timeout=1)
    assert ei.value.reason == "gone"
    b.close()


def test_close_from_another_thread_ends_a_read_waiting_for_ever():
    a, b = ipcf.pipe()
    reader = Background(lambda: b.read())
    time.sleep(0.3)
    b.close()
    with pytest.raises(BrokenPipeError):
        reader.result(5)
    a.close()


def test_bad_arguments(name):
    with pytest.raises(ipcf.IpcfError) as ei:
        ipcf.alloc("has space", timeout=1)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        ipcf.alloc(b"bytes-name", timeout=1)
    with pytest.raises(ValueError):
        ipcf.QoS(capacity="huge").to_c()
    with pytest.raises(ValueError):
        ipcf.pipe({"max_msgs": -1})
    with pytest.raises(TypeError):
        ipcf.pipe("bounded")
    with pytest.raises(ipcf.IpcfError) as ei:  # 1 GiB of cache: the library says no
        ipcf.pipe(ipcf.QoS(full="cache", cache_msgs=100000, max_msg_size=1 << 20))
    assert ei.value.errno == errno.EINVAL


def test_stream_mode_and_qos_dict():
    a, b = ipcf.pipe({"mode": "stream"})
    with a, b:
        assert b.qos.mode == "stream"
        a.write(b"abc", timeout=1)
        a.write(b"def", timeout=1)
        got = b""
        while len(got) < 6:
            got += b.read(timeout=1)
        assert got == b"abcdef"


def test_selectors_wake_on_data():
    a, b = ipcf.pipe()
    with a, b, selectors.DefaultSelector() as sel:
        sel.register(b, selectors.EVENT_READ)  # a Port is a file object: fileno()
        assert sel.select(timeout=0.05) == []
        Background(lambda: (time.sleep(0.1), a.write(b"ding", timeout=1))).result()
        ready = sel.select(timeout=5)
        assert [key.fileobj for key, _ in ready] == [b]
        assert b.read(timeout=0) == b"ding"
        assert sel.select(timeout=0.05) == []
        # Writable side: fileno_send is readable while a write would not block.
        sel.register(a.fileno_send(), selectors.EVENT_READ)
        assert len(sel.select(timeout=1)) == 1


def test_exclusive_registration(name):
    with ipcf.register(name, exclusive=True):
        with pytest.raises(ipcf.IpcfError) as ei:
            ipcf.register(name)
        assert ei.value.errno == errno.EADDRINUSE


def test_peer_death_is_connection_reset(name, run_python):
    with ipcf.register(name) as reg:
        child = run_python("-c", "import ipcf, time, sys; p = ipcf.alloc(sys.argv[1], timeout=5); "
                           "p.write(b'before'); print('ready', flush=True); time.sleep(60)", name)
        port = reg.accept(timeout=10)
        assert child.stdout.readline() == b"ready\n"
        child.kill()
        child.wait(5)
        assert port.read(timeout=5) == b"before"  # what it wrote stays readable
        with pytest.raises(ipcf.PeerDiedError) as ei:
            port.read(timeout=5)
        assert isinstance(ei.value, ConnectionResetError)
        port.close()


def test_ctrl_c_ends_a_read_waiting_for_ever(run_python):
    child = run_python("-c", "import ipcf\na, b = ipcf.pipe()\nprint('waiting', flush=True)\n"
                       "try:\n    b.read()\nexcept KeyboardInterrupt:\n    print('interrupted')\n")
    assert child.stdout.readline() == b"waiting\n"
    time.sleep(0.2)
    t0 = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=20)
    assert out == b"interrupted\n", err
    assert time.monotonic() - t0 < 10  # (a read not ended stays for ever)


def test_no_daemon(tmp_path, python_env):
    env = dict(python_env, IPCF_RUNTIME_DIR=str(tmp_path), IPCF_NO_AUTOSTART="1")
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import ipcf\ntry:\n    ipcf.alloc('anyone', timeout=1)\n"
                        "except ipcf.NoDaemonError as e:\n    print(e.errno, e.strerror)\n"],
                       env=env, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == str(errno.EHOSTDOWN).encode()


def test_library_missing_is_a_clear_import_error(python_env):
    env = dict(python_env, IPCF_LIBRARY="/nonexistent/libipcf.so.1")
    r = subprocess.run(["/usr/bin/python3", "-c", "import ipcf"], env=env, capture_output=True,
                       timeout=30)
    assert r.returncode != 0
    assert b"ImportError: ipcf: cannot load the C library /nonexistent/libipcf.so.1" in r.stderr
