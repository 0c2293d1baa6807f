"""dgram — datagram endpoints (ipcf_dgram_*): single messages to names.

    with ipcf.dgram("sensor") as ep:        # receives what is sent to "sensor"
        d = ep.recv()                       # Datagram: .data, .sender
        d.answer(b"ack")                    # back to the endpoint that sent it
    with ipcf.dgram() as ep:                # no name: receives answers only
        ep.send("sensor", b"21.5")

A send that finds the receiver's queue full waits up to its timeout (default
0: not at all), then the datagram is dropped and counted (drops).
"""
from . import _timeout
from ._ffi import ffi, lib
from .errors import check, check_alloc, reason_before
from .handle import Handle, _name_arg, reg_opts
from .qos import peer_info


class Datagram:
    """A received datagram: .data (bytes), .sender (PeerInfo)."""

    def __init__(self, ep, src, data):
        self._ep = ep
        self._src = src
        self.data = data
        self.sender = peer_info(getattr(src, "from"))

    def answer(self, data, timeout=0):
        """Send data back to the endpoint this came from; returns its length."""
        return self._ep.answer(self, data, timeout)

    def __repr__(self):
        return "<ipcf.Datagram from %s, %d bytes>" % (self.sender, len(self.data))


class Endpoint(Handle):
    """A datagram endpoint; fileno() is readable when a datagram may be waiting."""

    def send(self, dest, data, timeout=0):
        b = ffi.from_buffer(data)
        before = reason_before()
        return check_alloc(lib.ipcf_dgram_send(self._h, _name_arg(dest), b, len(b), _timeout.to_ms(timeout)),
                           dest, before)

    def recv(self, timeout=None):
        src = ffi.new("ipcf_dgram_src *")
        data = self._receive(lambda h, buf, cap, ms: lib.ipcf_dgram_recv(h, buf, cap, ms, src), timeout)
        return Datagram(self, src, data)

    def answer(self, datagram, data, timeout=0):
        b = ffi.from_buffer(data)
        return check(lib.ipcf_dgram_answer(self._h, datagram._src, b, len(b), _timeout.to_ms(timeout)),
                     self.name)

    @property
    def drops(self):
        """Datagrams this endpoint dropped so far."""
        n = ffi.new("uint64_t *")
        check(lib.ipcf_dgram_drops(self._h, n), self.name)
        return n[0]


def dgram(name=None, exclusive=False, backlog=None):
    """A datagram Endpoint receiving what is sent to name (None: answers only)."""
    c_name = ffi.NULL if name is None else _name_arg(name)
    return Endpoint(check(lib.ipcf_dgram_open(c_name, reg_opts(exclusive, backlog)), name), name)
