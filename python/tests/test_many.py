"""test_many — Port.write_many and Port.read_many (ipcf_write_many and
ipcf_read_many): batches in order, partial batches, errors, a STREAM flow."""
import errno

import pytest

import ipcf
from helpers import Background


def test_batches_keep_order_and_bytes():
    a, b = ipcf.pipe(ipcf.QoS(max_msg_size=4096, max_bytes=64 * 1024))
    msgs = [bytes([i % 251]) * (i % 300) for i in range(5000)]

    def writer():
        for i in range(0, len(msgs), 32):
            batch = msgs[i:i + 32]
            done = 0
            while done < len(batch):
                done += a.write_many(batch[done:], timeout=10)
    w = Background(writer)
    got = []
    while len(got) < len(msgs):
        got += b.read_many(7, timeout=10)
    w.result()
    assert got == msgs
    with pytest.raises(ipcf.WouldBlockError):
        b.read_many(7, timeout=0)
    a.close()
    b.close()


def test_partial_batch_and_errors():
    a, b = ipcf.pipe(ipcf.QoS(max_msgs=3, max_msg_size=16))
    assert a.write_many([], timeout=0) == 0
    assert a.write_many([b"1", b"22", bytearray(b"333"), b"4"], timeout=0) == 3
    with pytest.raises(ipcf.WouldBlockError):
        a.write_many([b"4"], timeout=0)
    assert b.read_many(10, timeout=0) == [b"1", b"22", b"333"]
    # too large in mid-batch: the count; the next call from it: the error
    assert a.write_many([b"ok", b"x" * 17], timeout=0) == 1
    with pytest.raises(ipcf.IpcfError) as ei:
        a.write_many([b"x" * 17], timeout=0)
    assert ei.value.errno == errno.EMSGSIZE
    with pytest.raises(ValueError):
        b.read_many(0)
    assert b.read_many(1, timeout=0) == [b"ok"]
    a.close("done")
    with pytest.raises(ipcf.FlowEndedError) as ei:
        b.read_many(4, timeout=1)
    assert ei.value.reason == "done"
    b.close()


def test_stream_flows_have_no_batches():
    a, b = ipcf.pipe(ipcf.QoS(mode="stream"))
    for call in (lambda: a.write_many([b"x"]), lambda: b.read_many(2, timeout=0)):
        with pytest.raises(ipcf.IpcfError) as ei:
            call()
        assert ei.value.errno == errno.EOPNOTSUPP
    a.close()
    b.close()
