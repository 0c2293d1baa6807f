"""test_rpc_call — calls started from Python (ipcf.rpc.Client.start) against a
server on the session's real daemon: several at once on one client, waits
that end before the call does, a cancel that reaches the handler, a
deadline, a client closed with calls running."""
import threading
import time

import pytest

import ipcf
import ipcf.rpc as rpc

SLOW_X = r"""
typedef string text<>;
program SLOW {
        version SLOW_V1 {
                hyper TWICE(hyper) = 1;
                int WAIT_MS(int) = 2;
                int UNTIL_CANCELLED(int) = 3;
                void NOTHING(void) = 4;
                text HELLO(text, int) = 5;
        } = 1;
} = 0x20007777;
"""


class Serving:
    """A Python server of SLOW_X, run in a thread of this process."""

    def __init__(self, name):
        self.cancelled = threading.Event()
        self.started = threading.Event()

        def wait_ms(ctx, ms):
            time.sleep(ms / 1000)
            return ms

        def until_cancelled(ctx, n):
            self.started.set()
            end = time.monotonic() + 20
            while time.monotonic() < end:
                if ctx.cancelled():
                    self.cancelled.set()
                    return -n
                time.sleep(0.002)
            return n

        h = {"TWICE": lambda ctx, n: 2 * n, "WAIT_MS": wait_ms, "UNTIL_CANCELLED": until_cancelled,
             "NOTHING": lambda ctx: None, "HELLO": lambda ctx, t, k: t * k}
        self.s = rpc.Server(name, SLOW_X, h)
        self.t = threading.Thread(target=self.s.run, kwargs={"threads": 4, "timeout": 60}, daemon=True)
        self.t.start()

    def close(self):
        self.s.stop()
        self.t.join(10)
        self.s.close()


@pytest.fixture
def server(name):
    s = Serving(name)
    yield s
    s.close()


def test_calls_started_at_once_each_get_their_result(name, server):
    with rpc.Client(name) as c:
        calls = [c.start("TWICE", k) for k in range(12)] + [c.start("HELLO", "ab", 3), c.start("NOTHING")]
        assert [k.result(10) for k in calls[:12]] == [2 * k for k in range(12)]
        assert calls[12].result(10) == "ababab"
        assert calls[13].result(10) is None
        assert all(k.done() for k in calls)
        for k in calls:
            k.close()
        assert len(c._calls) == 0


def test_a_wait_that_ends_first_leaves_the_call_running(name, server):
    # A call of 2 s: the two waits of 50 ms end long before it, however
    # late a loaded machine lets this thread run (a call of 300 ms left
    # them 150 ms)
    with rpc.Client(name) as c:
        with c.start("WAIT_MS", 2000) as k:
            t0 = time.monotonic()
            assert not k.wait(0.05)
            assert not k.done()
            with pytest.raises(ipcf.IpcfTimeoutError):
                k.result(0.05)
            assert time.monotonic() - t0 < 1.5
            assert k.result(10) == 2000


def test_a_cancel_reaches_the_handler(name, server):
    """The handler sees ipcf_rpc_cancelled and returns: result() gives what
    it returned (RPC.md: a cancel while the handler runs)."""
    with rpc.Client(name) as c:
        k = c.start("UNTIL_CANCELLED", 5)
        assert server.started.wait(10)
        k.cancel()
        assert server.cancelled.wait(10)
        assert k.result(10) == -5
        k.close()


def test_a_deadline_and_errors(name, server):
    with rpc.Client(name) as c:
        with c.start("UNTIL_CANCELLED", 1, timeout=0.2) as k:
            try:  # the handler's answer may still come in time (RPC.md)
                assert k.result(10) == -1
            except rpc.OutcomeUnknownError:
                pass
        assert server.cancelled.wait(10)  # the deadline reached the handler
        with pytest.raises(rpc.UnknownProcedureError):
            c.start("NOSUCH", 1)
        with pytest.raises(TypeError):
            c.start("TWICE")
        with pytest.raises(TypeError):
            c.start("TWICE", "not a number")
        with pytest.raises(ValueError):
            c.start("TWICE", 1, timeout=0)


def test_closing_the_client_frees_its_running_calls(name, server):
    """A client closed with a call running cancels and frees it first (the
    runtime's client may not be freed with calls running)."""
    c = rpc.Client(name)
    k = c.start("UNTIL_CANCELLED", 2)
    assert server.started.wait(10)
    c.close()
    assert k._c is None
    assert server.cancelled.wait(10)
    with pytest.raises(ValueError):
        k.wait(0)
    k.close()
    with pytest.raises(ValueError):
        c.start("TWICE", 1)
