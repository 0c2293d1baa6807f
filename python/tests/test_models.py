"""test_models — datagrams, mailboxes, multicast groups."""
import errno
import os

import pytest

import ipcf


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
