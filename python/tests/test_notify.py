"""test_notify — notifications against the real daemon: watched names coming
and going (with the registrant's pid), a NAME_UP at once for a name already
up, nothing for unwatched names, flows of this process ended by the peer
(with the peer's reason) and a peer process killed, the descriptor in a
selector, and the errors."""
import errno
import os
import selectors
import signal
import threading

import pytest

import ipcf


def drain():
    """Forget events earlier tests left queued."""
    for _ in ipcf.events(timeout=0.05):
        pass


def next_of(kind, name, timeout=5):
    """The next event of this kind and name (others, left by flows of other
    tests, are skipped)."""
    for ev in ipcf.events(timeout=timeout):
        if ev.kind == kind and ev.name == name:
            return ev
    pytest.fail("no %s event for %s within %s s" % (kind, name, timeout))


def test_watched_name_up_and_down(name):
    ipcf.notify_fileno()
    drain()
    ipcf.watch(name)
    try:
        with pytest.raises(ipcf.WouldBlockError):
            ipcf.next_event(timeout=0)         # not up yet: nothing
        reg = ipcf.register(name)
        ev = next_of("name_up", name)
        assert ev.pid == os.getpid() and ev.lost == 0
        reg.close()
        ev = next_of("name_down", name)
        assert ev.name == name
    finally:
        ipcf.unwatch(name)
    with ipcf.register(name):                  # no longer watched: no event
        assert [ev for ev in ipcf.events(timeout=0.3) if ev.name == name] == []


def test_watching_a_name_already_up_says_so_at_once(name):
    drain()
    with ipcf.register(name):
        with ipcf.watching(name):
            ev = ipcf.next_event(timeout=5)
            assert (ev.kind, ev.name, ev.pid) == ("name_up", name, os.getpid())
    with pytest.raises(ipcf.NameNotFoundError):
        ipcf.unwatch(name)                     # the with block unwatched it


def test_descriptor_in_a_selector(name):
    fd = ipcf.notify_fileno()
    drain()
    with ipcf.watching(name), selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        assert sel.select(timeout=0.1) == []   # nothing waits
        with ipcf.register(name):
            assert [k.fd for k, _ in sel.select(timeout=5)] == [fd]
            assert ipcf.next_event(timeout=0).kind == "name_up"


def test_flow_ended_by_the_peer_with_its_reason(name):
    ipcf.notify_fileno()
    drain()
    with ipcf.register(name) as reg:
        got = {}
        t = threading.Thread(target=lambda: got.update(port=reg.accept(timeout=5)))
        t.start()
        port = ipcf.alloc(name, timeout=5)
        t.join()
        served = got["port"]
        served.close("done here")
        ev = next_of("flow_ended", name)
        assert ev.port == port.handle             # this process's end of the flow
        assert ev.reason == "done here" and ev.flow_id > 0
        port.close()


def test_peer_process_killed(name, run_python):
    ipcf.notify_fileno()
    drain()
    child = ("import ipcf, sys, time\n"
             "p = ipcf.alloc(sys.argv[1], timeout=10)\n"
             "print('up', flush=True)\n"
             "time.sleep(60)\n")
    with ipcf.register(name) as reg:
        proc = run_python("-c", child, name)
        port = reg.accept(timeout=10)
        assert proc.stdout.readline() == b"up\n"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        ev = next_of("peer_died", name, timeout=10)
        assert ev.pid == proc.pid and ev.flow_id > 0 and ev.port == port.handle
        port.close()


def test_errors(name):
    with pytest.raises(ipcf.NameNotFoundError) as ei:
        ipcf.unwatch(name)
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(ipcf.IpcfError) as ei:
        ipcf.watch("bad name")
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        ipcf.next_event(timeout=-1)
