"""test_set — readiness sets (ipcf.Set): many flows of the real daemon served
by one thread through one wait, the set's descriptor in selectors and
asyncio, and the rules of membership and closing."""
import asyncio
import errno
import selectors
import time

import pytest

import ipcf
from helpers import Background

# A child process: allocates FLOWS flows to NAME, writes COUNT numbered
# messages on each (round robin over the flows), reads every echo back and
# checks it, then ends each flow with the reason "done <i>".
WRITER = r"""
import sys, ipcf
name, flows, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ports = [ipcf.alloc(name, timeout=10) for _ in range(flows)]
for k in range(count):
    for i, p in enumerate(ports):
        p.write(b"%d:%d" % (i, k), timeout=10)
for k in range(count):
    for i, p in enumerate(ports):
        got = p.read(timeout=10)
        assert got == b"%d:%d" % (i, k), (i, k, got)
for i, p in enumerate(ports):
    p.close("done %d" % i)
print("ok")
"""


def serve_with_set(reg, flows, deadline_s=60):
    """Accept flows ports on reg, serve them all with one Set (echo each
    message) until every flow ended; returns {flow index: (messages in
    order, end reason)} keyed by the set's data."""
    ports = [reg.accept(timeout=10) for _ in range(flows)]
    seen = {}
    with ipcf.Set() as ready:
        for i, p in enumerate(ports):
            ready.add(p, data=i)
            seen[i] = []
        assert len(ready) == flows and all(p in ready for p in ports)
        deadline = time.monotonic() + deadline_s
        while ready:
            assert time.monotonic() < deadline, "flows still open: %r" % list(ready)
            for port in ready.wait(timeout=1):
                i = ready.data(port)
                try:
                    msg = port.read(timeout=0)
                except ipcf.WouldBlockError:
                    continue  # a report may be spurious
                except ipcf.FlowEndedError as e:
                    seen[i] = (seen[i], e.reason)
                    ready.remove(port)
                    port.close()
                    continue
                seen[i].append(msg)
                port.write(msg, timeout=10)
    return seen


def test_one_thread_serves_many_flows_of_another_process(name, run_python):
    flows, count = 40, 50
    with ipcf.register(name) as reg:
        child = run_python("-c", WRITER, name, str(flows), str(count))
        seen = serve_with_set(reg, flows)
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0 and out.strip() == b"ok", err.decode()
    assert sorted(seen) == list(range(flows))
    for i, (msgs, reason) in seen.items():
        assert msgs == [b"%d:%d" % (i, k) for k in range(count)]
        assert reason == "done %d" % i


def test_membership_rules_and_errors():
    a, a_peer = ipcf.pipe()
    b, b_peer = ipcf.pipe()
    with ipcf.Set() as ready, ipcf.Set(spin_us=0) as other, a, a_peer, b, b_peer:
        assert not ready and list(ready) == []
        ready.add(a_peer, data="a")
        assert a_peer in ready and a not in ready and ready.data(a_peer) == "a"
        with pytest.raises(ipcf.IpcfError) as ei:
            ready.add(a_peer)
        assert ei.value.errno == errno.EEXIST
        with pytest.raises(ipcf.IpcfError) as ei:
            other.add(a_peer)           # in one set at most
        assert ei.value.errno == errno.EBUSY
        with pytest.raises(ipcf.IpcfError) as ei:
            a_peer.fileno()             # its readiness is the set's
        assert ei.value.errno == errno.EBUSY
        b_peer.fileno()                 # polled: cannot join a set
        with pytest.raises(ipcf.IpcfError) as ei:
            ready.add(b_peer)
        assert ei.value.errno == errno.EBUSY
        with pytest.raises(ipcf.NameNotFoundError):
            ready.remove(b_peer)
        with pytest.raises(TypeError):
            ready.add(ready)
        with pytest.raises(ValueError):
            ready.wait(0, max_events=0)
        with pytest.raises(ipcf.IpcfError) as ei:
            ipcf.Set(spin_us=100001)
        assert ei.value.errno == errno.EINVAL

        # level-triggered: reported until read, then nothing
        assert ready.wait(timeout=0) == []
        a.write(b"x")
        assert ready.wait(timeout=5) == [a_peer]
        assert ready.wait(timeout=0) == [a_peer]
        assert a_peer.read(timeout=0) == b"x"
        assert ready.wait(timeout=0) == []
        t0 = time.monotonic()
        assert ready.wait(timeout=0.05) == []
        assert time.monotonic() - t0 >= 0.04

        # remove gives the port back: pollable again, or into another set
        ready.remove(a_peer)
        assert a_peer not in ready and len(ready) == 0
        other.add(a_peer)
        other.remove(a_peer)
        a_peer.fileno()


def test_more_ready_than_max_events_come_in_later_waits():
    pairs = [ipcf.pipe() for _ in range(5)]
    with ipcf.Set() as ready:
        for w, r in pairs:
            ready.add(r)
            w.write(b"m")
        got = []
        for _ in range(3):
            batch = ready.wait(timeout=5, max_events=2)
            assert 1 <= len(batch) <= 2
            for p in batch:
                assert p.read(timeout=0) == b"m"
            got += batch
        assert sorted(p.handle for p in got) == sorted(r.handle for _, r in pairs)
        assert ready.wait(timeout=0) == []
    for w, r in pairs:
        w.close()
        r.close()


def test_a_closed_member_leaves_unreported_and_the_ports_outlive_the_set():
    a, a_peer = ipcf.pipe()
    b, b_peer = ipcf.pipe()
    ready = ipcf.Set()
    ready.add(a_peer)
    ready.add(b_peer)
    a.write(b"never read")
    a_peer.close()
    assert ready.wait(timeout=0) == [] and len(ready) == 1 and list(ready) == [b_peer]
    ready.close()
    assert ready.closed
    with pytest.raises(ipcf.IpcfError) as ei:
        ready.wait(timeout=0)
    assert ei.value.errno == errno.EBADF
    b.write(b"after")                   # b_peer is its own again
    sel = selectors.DefaultSelector()
    sel.register(b_peer.fileno(), selectors.EVENT_READ)
    assert sel.select(timeout=5)
    assert b_peer.read(timeout=0) == b"after"
    sel.close()
    for p in (a, b, b_peer):
        p.close()


def test_the_descriptor_in_a_selector(name):
    with ipcf.register(name) as reg:
        client = Background(lambda: ipcf.alloc(name, timeout=5))
        port = reg.accept(timeout=5)
        c = client.result()
        with ipcf.Set() as ready, port, c:
            ready.add(port)
            sel = selectors.DefaultSelector()
            sel.register(ready, selectors.EVENT_READ)
            assert ready.wait(timeout=0) == []      # arms every port
            assert sel.select(timeout=0) == []
            c.write(b"ping")
            assert len(sel.select(timeout=5)) == 1
            assert ready.wait(timeout=0) == [port]
            assert port.read(timeout=0) == b"ping"
            sel.close()


def test_a_wait_in_another_thread_lets_adds_in_and_ends_when_the_set_closes():
    a, a_peer = ipcf.pipe()
    ready = ipcf.Set()
    waiter = Background(lambda: ready.wait(timeout=20))
    time.sleep(0.05)                    # (it sleeps in the wait by now, or soon)
    ready.add(a_peer, data=42)          # let in while it sleeps
    a.write(b"x")
    assert waiter.result() == [a_peer] and ready.data(a_peer) == 42
    assert a_peer.read(timeout=0) == b"x"

    def wait_closed():
        with pytest.raises(ipcf.IpcfError) as ei:
            ready.wait(timeout=20)
        return ei.value.errno
    waiter = Background(wait_closed)
    time.sleep(0.05)
    ready.close()
    assert waiter.result() == errno.EBADF
    a_peer.fileno()                     # its own again
    a.close()
    a_peer.close()


def test_asyncio_serves_flows_of_another_process_through_the_set(name, run_python):
    flows, count = 8, 30

    async def serve(reg):
        ports = [await ipcf.aio.accept(reg) for _ in range(flows)]
        ended = 0
        echoed = 0
        with ipcf.Set() as ready:
            for p in ports:
                ready.add(p)
            while ready:
                for port in await ipcf.aio.wait(ready):
                    try:
                        msg = port.read(timeout=0)
                    except ipcf.WouldBlockError:
                        continue
                    except BrokenPipeError:
                        ready.remove(port)
                        port.close()
                        ended += 1
                        continue
                    await ipcf.aio.write(port, msg)
                    echoed += 1
        return ended, echoed

    with ipcf.register(name) as reg:
        child = run_python("-c", WRITER, name, str(flows), str(count))
        ended, echoed = asyncio.run(asyncio.wait_for(serve(reg), 60))
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0 and out.strip() == b"ok", err.decode()
    assert ended == flows and echoed == flows * count
