"""test_models — datagrams, mailboxes, multicast groups."""
import errno
import os

import pytest

import ipcf
from helpers import Background


def test_datagram_send_recv_answer(name):
    with ipcf.dgram(name) as server, ipcf.dgram() as client:
        assert client.send(name, b"ping", timeout=1) == 4
        d = server.recv(timeout=5)
        assert d.data == b"ping" and d.sender.pid == os.getpid()
        d.answer(b"pong")
        assert client.recv(timeout=5).data == b"pong"
        assert client.drops == 0
        with pytest.raises(ipcf.WouldBlockError):
            server.recv(timeout=0)


def test_datagram_errors(name):
    with ipcf.dgram() as ep:
        with pytest.raises(ipcf.NameNotFoundError):
            ep.send(name, b"x")
        with ipcf.register(name):
            with pytest.raises(ipcf.RefusedError):
                ep.send(name, b"x")
        with pytest.raises(ipcf.MessageTooLongError):
            ep.send(name, b"x" * (256 * 1024 + 1))


def test_mailbox_one_receiver_each_with_receipt(name):
    ipcf.mbox_create(name)
    try:
        with pytest.raises(ipcf.AlreadyExistsError) as ei:
            ipcf.mbox_create(name)
        assert isinstance(ei.value, FileExistsError)
        with ipcf.mbox_open(name, "recv", timeout=5) as rx, ipcf.mbox_open(name, "send", timeout=5) as tx:
            assert tx.send(b"job 1", timeout=5) == 5
            data, sender = rx.recv_from(timeout=5)
            assert data == b"job 1" and sender.pid == os.getpid()
            tx.send(b"job 2", timeout=5)
            assert rx.recv(timeout=5) == b"job 2"
            assert tx.undelivered == 0
    finally:
        assert ipcf.mbox_destroy(name) == 0
    with pytest.raises(ipcf.NameNotFoundError):
        ipcf.mbox_open(name, "send", timeout=1)
    with pytest.raises(ValueError):
        ipcf.mbox_open(name, "both", timeout=1)


def test_mailbox_destroyed_under_a_receiver(name):
    ipcf.mbox_create(name, max_msg_size=1024)
    rx = ipcf.mbox_open(name, "recv", timeout=5)
    tx = ipcf.mbox_open(name, "send", timeout=5)
    with pytest.raises(ipcf.MessageTooLongError):
        tx.send(b"m" * 1025, timeout=1)
    tx.send(b"kept", timeout=5)
    assert rx.recv(timeout=5) == b"kept"
    ipcf.mbox_destroy(name)
    with pytest.raises(ipcf.FlowEndedError) as ei:
        rx.recv(timeout=5)
    assert ei.value.errno == errno.EPIPE
    rx.close()
    tx.close()


def test_multicast_reaches_every_other_member(name):
    ipcf.mcast_create(name)
    try:
        with ipcf.mcast_join(name, timeout=5) as a, ipcf.mcast_join(name, timeout=5) as b, \
                ipcf.mcast_join(name, timeout=5) as c:
            a.send(b"to all", timeout=5)
            assert b.recv(timeout=5) == b"to all"
            assert c.recv(timeout=5) == b"to all"
            with pytest.raises(ipcf.WouldBlockError):
                a.recv(timeout=0)
            assert b.lost == 0
    finally:
        ipcf.mcast_destroy(name)
    with pytest.raises(ValueError):
        ipcf.mcast_create(name, slow="sometimes")



END_REFUSED = 4  # enum ipcf_end: IPCF_END_REFUSED


def test_refusals_carry_the_facilitys_reason(name):
    """call, a datagram's send, an RPC client's call, mbox_open (and
    mcast_join, alike) allocate without a reason parameter: their
    exceptions carry it as alloc's do (.reason, from ipcf_last_reason), and
    ipcf.last_reason() gives it."""
    wrong = "wrong kind of channel for this name"
    with ipcf.register(name):  # a plain name: no call, no datagram
        with pytest.raises(ipcf.RefusedError) as ei:
            ipcf.call(name, b"x", timeout=5)
        assert ei.value.reason == wrong
        assert ipcf.last_reason() == ipcf.Reason(END_REFUSED, wrong)
        with ipcf.dgram() as ep:
            for _ in range(2):  # the same refusal again is this send's too
                with pytest.raises(ipcf.RefusedError) as ei:
                    ep.send(name, b"x", timeout=5)
                assert ei.value.reason == wrong
        with pytest.raises(ipcf.RefusedError) as ei:
            ipcf.rpc.Client(name, timeout=5)  # its describe call
        assert ei.value.reason == wrong
    box = name + ".box"
    ipcf.mbox_create(box, exclusive=True)
    try:
        with ipcf.mbox_open(box, "recv", timeout=5):
            with pytest.raises(ipcf.IpcfError) as ei:
                ipcf.mbox_open(box, "recv", timeout=5)
            assert ei.value.errno == errno.EBUSY
            assert ei.value.reason == "exclusive mailbox has a receiver"
            assert ipcf.last_reason().text == "exclusive mailbox has a receiver"
    finally:
        ipcf.mbox_destroy(box)
    # a failure of a call that allocated nothing (its service's channel is
    # up) carries no earlier allocation's reason
    with ipcf.service(name + ".svc") as svc:
        server = Background(lambda: svc.serve(lambda d, r: d, count=1, timeout=10))
        assert ipcf.call(name + ".svc", b"a", timeout=5) == b"a"
        assert server.result() == 1
        assert ipcf.last_reason() == ipcf.Reason(0, "")  # a success clears it
        with ipcf.register(name), ipcf.dgram() as ep, pytest.raises(ipcf.RefusedError):
            ep.send(name, b"x", timeout=5)
        assert ipcf.last_reason().text == wrong
        with pytest.raises(ipcf.IpcfTimeoutError) as ei:
            ipcf.call(name + ".svc", b"b", timeout=0.2)  # nobody answers
        assert ei.value.reason == ""
