"""handle — what every ipcf handle is in Python, and the flows (ports).

A Handle owns one handle number of the library (a port-id, registration,
service, datagram endpoint, mailbox or multicast handle). Rules:
 - close(reason) ends what it names (ipcf_dealloc), detach() only forgets
   it in this process (ipcf_detach); both make the object closed, and every
   later call on it fails with EBADF (IpcfError). Closing twice is a no-op.
 - A handle not closed when the object is collected is closed then, as a
   file is (do not rely on it: use `with`).
 - fileno() is the library's ipcf_fd(): level-triggered, readable when a
   read (accept, receive) would not block; for selectors and asyncio
   (loop.add_reader). Never read, write or close that descriptor.
 - Data received is returned as bytes; data sent may be any bytes-like
   object. Reads of one handle from several threads are serialized here
   (they share the handle's receive buffer).
"""
import errno
import threading

from . import _timeout
from ._ffi import ffi, lib, new_raw
from .errors import MINOR_OF_MANY, check, error, need_minor
from .qos import PortStats, QoS, Reason, peer_info, qos_c, text

# The largest message of any flow (max_msg_size's default; mailboxes and
# datagrams allow no more).
DEFAULT_BUFFER = 256 * 1024


def _c_str(s, what):
    """s as a C string, whole: the library would read one with a NUL in it as
    its part before the NUL (another name), so that is a ValueError, as for
    the os module's paths."""
    b = s.encode("utf-8")
    if b"\0" in b:
        raise ValueError("embedded null character in %s %r" % (what, s))
    return b


def _name_arg(name):
    if not isinstance(name, str):
        raise TypeError("an ipcf name is a str, not %s" % type(name).__name__)
    return _c_str(name, "name")


def _reason_arg(reason):
    return ffi.NULL if reason is None else _c_str(str(reason), "reason")


class Handle:
    """One handle of the library; see the module's rules."""

    # What a wait in another thread sees once this side closed the handle.
    _closed_errno = errno.EBADF

    def __init__(self, h, name=None):
        self._h = h
        self.name = name
        self._lock = threading.Lock()
        self._buf = None

    @property
    def handle(self):
        """The library's handle number (-1 once closed)."""
        return self._h

    @property
    def closed(self):
        return self._h < 0

    def fileno(self):
        """A descriptor to poll for POLLIN (ipcf_fd)."""
        return check(lib.ipcf_fd(self._h), self.name)

    def close(self, reason=None):
        """End what the handle names (ipcf_dealloc) with reason (str or None)."""
        h, self._h = self._h, -1
        if h >= 0:
            check(lib.ipcf_dealloc(h, _reason_arg(reason)), self.name)

    def detach(self):
        """Forget the handle in this process without ending it (ipcf_detach)."""
        h, self._h = self._h, -1
        if h >= 0:
            check(lib.ipcf_detach(h), self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        h = getattr(self, "_h", -1)
        if h >= 0:
            self._h = -1
            try:
                lib.ipcf_dealloc(h, ffi.NULL)
            except Exception:
                pass

    def __repr__(self):
        state = "closed" if self.closed else "handle %d" % self._h
        return "<ipcf.%s %r %s>" % (type(self).__name__, self.name, state)

    def _fail(self, r):
        """The exception of a failed call on this handle."""
        return error(r, self.name)

    def _wait(self, call, timeout):
        """call(h, ms) in Ctrl-C-friendly slices (see _timeout.wait); stops
        with this handle's closed error once another thread closed it."""
        h = self._h

        def step(ms):
            if self._h != h:
                return -self._closed_errno
            return call(h, ms)
        return _timeout.wait(step, timeout)

    def _receive(self, call, timeout, cap=None):
        """bytes from call(h, buf, cap, ms) -> length or -errno, into this
        handle's buffer (cap bytes, default DEFAULT_BUFFER)."""
        cap = cap or self._buffer_size()
        with self._lock:
            if self._buf is None or len(self._buf) < cap:
                self._buf = new_raw("char[]", cap)
            buf = self._buf
            r = self._wait(lambda h, ms: call(h, buf, cap, ms), timeout)
            if r < 0:
                raise self._fail(r)
            return ffi.buffer(buf, r)[:]

    def _buffer_size(self):
        return DEFAULT_BUFFER


class Port(Handle):
    """One end of a flow (ipcf_alloc, ipcf_accept, ipcf_pipe).

    read() returns one whole message (MESSAGE mode) or what is there (STREAM
    mode); write() sends one. After the peer ended the flow, what it wrote
    can still be read, then reads raise FlowEndedError (a BrokenPipeError)
    whose .reason is the peer's reason; iterating over a port yields its
    messages until then."""

    _closed_errno = errno.EPIPE
    # For a port from Registration.accept / Request.accept: who asked.
    request = None

    def _fail(self, r):
        e = error(r, self.name)
        if -r in (errno.EPIPE, errno.ECONNRESET, errno.EPROTO) and self._h >= 0:
            rs = ffi.new("ipcf_reason *")
            if lib.ipcf_end_reason(self._h, rs) == 0:
                e.reason = text(rs.text)
        return e

    def _buffer_size(self):
        q = ffi.new("ipcf_qos *")
        if lib.ipcf_qos_get(self._h, q) == 0 and q.max_msg_size:
            return q.max_msg_size
        return DEFAULT_BUFFER

    def read(self, timeout=None):
        """The next message (bytes), waiting up to timeout seconds (None: for
        ever, 0: not at all -> WouldBlockError)."""
        return self._receive(lambda h, buf, cap, ms: lib.ipcf_read(h, buf, cap, ms), timeout)

    def readinto(self, buffer, timeout=None):
        """Read the next message into a writable bytes-like object; returns
        its length. MessageTooLongError if it does not fit (it stays queued)."""
        b = ffi.from_buffer(buffer, require_writable=True)
        r = self._wait(lambda h, ms: lib.ipcf_read(h, b, len(b), ms), timeout)
        if r < 0:
            raise self._fail(r)
        return r

    def write(self, data, timeout=None):
        """Send data (bytes-like) as one message; returns its length (STREAM
        mode: the bytes moved)."""
        b = ffi.from_buffer(data)
        r = lib.ipcf_write(self._h, b, len(b), _timeout.to_ms(timeout))
        if r < 0:
            raise self._fail(r)
        return r

    def write_many(self, messages, timeout=None):
        """Send a sequence of bytes-like messages at once (ipcf_write_many,
        libipcf 1.10; MESSAGE mode): one lock and one wake-up look for the
        batch. Returns how many were queued — all of them, unless an error
        or the timeout came after the first (the next call from the first
        not queued meets it); raises if the first could not be."""
        need_minor(MINOR_OF_MANY, "write_many", "ipcf_write_many")
        bufs = [ffi.from_buffer(m) for m in messages]
        if not bufs:
            return 0
        iov = ffi.new("struct iovec[]", len(bufs))
        for i, b in enumerate(bufs):
            iov[i].iov_base = b
            iov[i].iov_len = len(b)
        r = lib.ipcf_write_many(self._h, iov, len(bufs), _timeout.to_ms(timeout))
        if r < 0:
            raise self._fail(r)
        return r

    def read_many(self, n, timeout=None):
        """Up to n messages (a list of bytes, at least one) at once
        (ipcf_read_many, libipcf 1.10; MESSAGE mode): waits for the first as
        read() does, then takes those already queued."""
        need_minor(MINOR_OF_MANY, "read_many", "ipcf_read_many")
        if n < 1:
            raise ValueError("read_many: n must be at least 1")
        cap = self._buffer_size()
        with self._lock:
            # n slots of cap bytes in the handle's receive buffer
            if self._buf is None or len(self._buf) < n * cap:
                self._buf = new_raw("char[]", n * cap)
            iov = ffi.new("struct iovec[]", n)
            for i in range(n):
                iov[i].iov_base = self._buf + i * cap
                iov[i].iov_len = cap
            # (a call that fails leaves iov as it was: only what it read is set)
            r = self._wait(lambda h, ms: lib.ipcf_read_many(h, iov, n, ms), timeout)
            if r < 0:
                raise self._fail(r)
            return [ffi.buffer(iov[i].iov_base, iov[i].iov_len)[:] for i in range(r)]

    def next_size(self, timeout=None):
        """The length of the next message, waiting for one as read() does."""
        r = self._wait(lambda h, ms: lib.ipcf_next_size(h, ms), timeout)
        if r < 0:
            raise self._fail(r)
        return r

    def flush(self, timeout=None):
        """FULL_CACHE: wait until no message is cached; returns how many still are."""
        r = lib.ipcf_flush(self._h, _timeout.to_ms(timeout))
        if r < 0:
            raise self._fail(r)
        return r

    def fileno_send(self):
        """A descriptor readable when a write would not block (ipcf_fd_send)."""
        return check(lib.ipcf_fd_send(self._h), self.name)

    @property
    def peer(self):
        """Who is at the other end (PeerInfo: name, pid, uid, gid)."""
        p = ffi.new("ipcf_peer_info *")
        check(lib.ipcf_peer(self._h, p), self.name)
        return peer_info(p)

    @property
    def end_reason(self):
        """Why the flow ended (Reason: code, text); code 0 while it is live."""
        rs = ffi.new("ipcf_reason *")
        check(lib.ipcf_end_reason(self._h, rs), self.name)
        return Reason(rs.code, text(rs.text))

    @property
    def qos(self):
        """The characteristics the facility granted (QoS, defaults filled in)."""
        q = ffi.new("ipcf_qos *")
        check(lib.ipcf_qos_get(self._h, q), self.name)
        return QoS.from_c(q)

    @property
    def stats(self):
        s = ffi.new("ipcf_port_stats *")
        check(lib.ipcf_stats(self._h, s), self.name)
        return PortStats(s.msgs_out, s.bytes_out, s.msgs_in, s.bytes_in, s.queued_out,
                         s.queued_in, s.cached)

    def __iter__(self):
        while True:
            try:
                yield self.read()
            except BrokenPipeError:
                return


def alloc(name, qos=None, timeout=None):
    """Allocate a flow to name (Allocate(name, qos)) and return its Port.
    Waits up to timeout seconds (None: for ever) for the whole procedure.
    RefusedError carries the target's reason in .reason."""
    rs = ffi.new("ipcf_reason *")
    ms = _timeout.to_ms(timeout)
    r = lib.ipcf_alloc(_name_arg(name), qos_c(qos), ms, rs)
    if r < 0:
        raise error(r, name, text(rs.text))
    return Port(r, name)


def pipe(qos=None):
    """A connected pair of Ports made in this process, without the daemon."""
    ports = ffi.new("int[2]")
    check(lib.ipcf_pipe(qos_c(qos), ports))
    return Port(ports[0], "pipe"), Port(ports[1], "pipe")


def reg_opts(exclusive, backlog):
    o = ffi.new("ipcf_reg_opts *")
    o.size = ffi.sizeof("ipcf_reg_opts")
    o.flags = 1 if exclusive else 0
    o.backlog = backlog or 0
    return o


class Request:
    """A pending allocation request seen by the target: .id, .name (asked
    for), .sender (PeerInfo, stamped by the facility), .qos. Decide it with
    accept() or refuse(reason)."""

    def __init__(self, reg, c):
        self._reg = reg
        self._c = c
        self.id = c.id
        self.name = text(c.name)
        self.sender = peer_info(getattr(c, "from"))
        self.qos = QoS.from_c(c.qos)

    def accept(self):
        p = Port(check(lib.ipcf_request_accept(self._reg.handle, self._c), self.name), self.name)
        p.request = self
        return p

    def refuse(self, reason=None):
        check(lib.ipcf_request_refuse(self._reg.handle, self._c, _reason_arg(reason)), self.name)

    def __repr__(self):
        return "<ipcf.Request %d for %r from %s>" % (self.id, self.name, self.sender)


class Registration(Handle):
    """This process reachable under a name (ipcf_register). fileno() is
    readable when a request is pending."""

    def accept(self, timeout=None):
        """Accept the next request: its Port (port.request: who asked)."""
        c = ffi.new("ipcf_request *")
        r = self._wait(lambda h, ms: lib.ipcf_accept(h, ms, c), timeout)
        if r < 0:
            raise self._fail(r)
        p = Port(r, self.name)
        p.request = Request(self, c)
        return p

    def next_request(self, timeout=None):
        """The next pending Request, undecided."""
        c = ffi.new("ipcf_request *")
        r = self._wait(lambda h, ms: lib.ipcf_request_next(h, ms, c), timeout)
        if r < 0:
            raise self._fail(r)
        return Request(self, c)


def register(name, exclusive=False, backlog=None):
    """Make this process reachable under name; returns a Registration.
    exclusive: fail (IpcfError, errno EADDRINUSE) if anyone holds the name,
    and keep others out while it lives. backlog: pending requests kept
    (default 64)."""
    return Registration(check(lib.ipcf_register(_name_arg(name), reg_opts(exclusive, backlog)), name),
                        name)
