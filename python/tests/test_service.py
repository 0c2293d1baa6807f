"""test_service — call/serve/service, and their failures."""
import errno
import time

import pytest

import ipcf
from helpers import Background


def test_serve_answers_calls_with_the_callers_identity(name):
    seen = []

    def handler(data, req):
        seen.append(req.sender)
        if data == b"fail":
            raise ipcf.ServiceFailure(42)
        return data[::-1]
    with ipcf.service(name) as svc:
        server = Background(lambda: svc.serve(handler, count=3, timeout=10))
        assert ipcf.call(name, b"abc", timeout=5) == b"cba"
        assert ipcf.call(name, bytearray(100000), timeout=5) == bytes(100000)
        with pytest.raises(ipcf.RemoteError) as ei:
            ipcf.call(name, b"fail", timeout=5)
        assert ei.value.code == 42 and ei.value.errno == errno.EREMOTEIO
        assert server.result() == 3
    assert all(s.pid == seen[0].pid and s.uid == seen[0].uid for s in seen)


def test_module_serve_and_a_handler_bug(name):
    def handler(data, req):
        raise KeyError("bug")
    server = Background(lambda: ipcf.serve(name, handler, timeout=10))
    deadline = time.monotonic() + 5
    while True:  # until the service is registered
        try:
            ipcf.call(name, b"x", timeout=5)
        except ipcf.NameNotFoundError:
            assert time.monotonic() < deadline
            time.sleep(0.02)
            continue
        except ipcf.RemoteError as e:
            assert e.code == -errno.EIO
            break
    with pytest.raises(KeyError):
        server.result()


def test_call_errors(name):
    with pytest.raises(ipcf.NameNotFoundError):
        ipcf.call(name, b"x", timeout=2)
    with pytest.raises(ValueError):
        ipcf.call(name, b"x", timeout=0)
    with ipcf.register(name):  # a plain registration is not a service
        with pytest.raises(ipcf.RefusedError):
            ipcf.call(name, b"x", timeout=2)


def test_call_timeout_is_seen_as_cancelled(name):
    with ipcf.service(name) as svc:
        with pytest.raises(ipcf.IpcfTimeoutError):
            ipcf.call(name, b"slow", timeout=0.3)
        req = svc.next(timeout=5)
        assert req.data == b"slow"
        assert req.cancelled
        with pytest.raises(ipcf.IpcfError) as ei:
            req.reply(b"late")
        assert ei.value.errno == errno.ECANCELED


def test_reply_larger_than_callers_buffer(name):
    with ipcf.service(name) as svc:
        server = Background(lambda: svc.serve(lambda d, r: b"r" * 5000, count=1, timeout=10))
        with pytest.raises(ipcf.MessageTooLongError):
            ipcf.call(name, b"x", timeout=5, cap=100)
        server.result()
    with pytest.raises(ipcf.MessageTooLongError):
        ipcf.call(name, b"q" * (ipcf.CALL_MAX + 1), timeout=2)


def test_service_closed_under_a_waiting_call(name):
    svc = ipcf.service(name)
    caller = Background(lambda: ipcf.call(name, b"x", timeout=10))
    svc.next(timeout=5)
    svc.close("bye")
    with pytest.raises(ipcf.FlowEndedError):
        caller.result()


def test_handler_returning_str_fails_the_call_and_raises(name):
    with ipcf.service(name) as svc:
        server = Background(lambda: svc.serve(lambda d, r: "not bytes", count=1, timeout=10))
        with pytest.raises(ipcf.RemoteError) as ei:
            ipcf.call(name, b"x", timeout=5)
        assert ei.value.code == -errno.EIO
        with pytest.raises(TypeError):
            server.result()


def test_a_request_is_answered_once(name):
    # a serve() handler may answer its request itself: serve() then sends nothing more
    with ipcf.service(name) as svc:
        def answers_itself(data, req):
            req.reply(b"mine")

        server = Background(lambda: svc.serve(answers_itself, count=1, timeout=10))
        assert ipcf.call(name, b"x", timeout=5) == b"mine"
        assert server.result() == 1
        # a second answer, or asking after an answered request, is an error
        client = Background(lambda: ipcf.call(name, b"y", timeout=5))
        req = svc.next(timeout=5)
        req.reply(b"first")
        with pytest.raises(ipcf.IpcfError) as ei:
            req.reply(b"second")
        assert ei.value.errno == errno.EALREADY
        with pytest.raises(ipcf.IpcfError) as ei:
            req.fail(7)
        assert ei.value.errno == errno.EALREADY
        with pytest.raises(ipcf.IpcfError) as ei:
            req.cancelled
        assert ei.value.errno == errno.EALREADY
        assert client.result() == b"first"
