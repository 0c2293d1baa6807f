"""service — services and calls (ipcf_service, ipcf_call): B = call(S, A).

A service takes requests from one input queue, each stamped with its caller,
and answers each with a reply or a failure code. call() sends a request and
waits for the reply. serve() runs the loop for a handler function:

    def handler(data, req):           # data: bytes; req.sender: PeerInfo
        return data.upper()           # the reply (bytes-like; None: empty)

    ipcf.serve("upper", handler)      # until the service is closed or fails

A handler may answer its request itself (req.reply(), req.fail()): serve()
then sends nothing more. A handler that raises ServiceFailure(code) fails
that call: the caller's call() raises RemoteError with .code. Any other
exception (also a reply that is not bytes-like) fails the call with code
-EIO and then propagates out of serve() (a bug should be seen).
"""
import errno

from . import _timeout
from ._ffi import CALL_MAX, ffi, lib, new_raw
from .errors import alloc_error, check, reason_before
from .handle import Handle, _name_arg, reg_opts
from .qos import peer_info


class ServiceFailure(Exception):
    """Raised by a serve() handler to fail the call with code."""

    def __init__(self, code, message=""):
        super().__init__(message or "call failed with code %d" % code)
        self.code = code


class CallRequest:
    """One request: .data (bytes), .sender (PeerInfo), .id; answer it once
    with reply(data) or fail(code): a second answer raises IpcfError with
    errno EALREADY, as .cancelled does once it is answered."""

    def __init__(self, svc, c, data):
        self._svc = svc
        self._c = c
        self.id = c.id
        self.sender = peer_info(getattr(c, "from"))
        self.data = data

    def reply(self, data=b"", timeout=None):
        b = ffi.from_buffer(data)
        check(lib.ipcf_service_reply(self._svc.handle, self._c, b, len(b), _timeout.to_ms(timeout)),
              self._svc.name)

    def fail(self, code, timeout=None):
        check(lib.ipcf_service_fail(self._svc.handle, self._c, int(code), _timeout.to_ms(timeout)),
              self._svc.name)

    @property
    def cancelled(self):
        """True once the caller gave up on this call or is gone (IpcfError
        EALREADY once the request was answered)."""
        return check(lib.ipcf_service_cancelled(self._svc.handle, self._c), self._svc.name) == 1

    def __repr__(self):
        return "<ipcf.CallRequest %d from %s, %d bytes>" % (self.id, self.sender, len(self.data))


class Service(Handle):
    """A registered service (ipcf_service); fileno() is readable when a
    request may be waiting."""

    def next(self, timeout=None):
        """The next CallRequest, waiting up to timeout seconds."""
        c = ffi.new("ipcf_call_req *")
        data = self._receive(lambda h, buf, cap, ms: lib.ipcf_service_next(h, buf, cap, ms, c),
                             timeout, CALL_MAX)
        return CallRequest(self, c, data)

    def serve(self, handler, count=None, timeout=None):
        """Answer requests with handler(data, req) (see the module) until
        count requests were answered (None: no limit) or none came within
        timeout seconds (then IpcfTimeoutError). Returns how many."""
        done = 0
        while count is None or done < count:
            req = self.next(timeout)
            try:
                out = handler(req.data, req)
                if out is not None and not isinstance(out, (bytes, bytearray, memoryview)):
                    raise TypeError("a serve() handler returns bytes-like or None, not %s"
                                    % type(out).__name__)
            except ServiceFailure as f:
                _answer_quietly(req.fail, f.code)
            except BaseException:
                _answer_quietly(req.fail, -errno.EIO)
                raise
            else:
                _answer_quietly(req.reply, b"" if out is None else out)
            done += 1
        return done


def _answer_quietly(answer, what):
    """Answer a request; a caller that gave up or went away meanwhile is
    not the service's failure, nor a handler that answered it itself."""
    try:
        answer(what)
    except ConnectionError:
        pass
    except OSError as e:
        if e.errno not in (errno.ECANCELED, errno.EALREADY):
            raise


def service(name, exclusive=False, backlog=None):
    """Register name as a service; returns a Service."""
    return Service(check(lib.ipcf_service(_name_arg(name), reg_opts(exclusive, backlog)), name), name)


def serve(name, handler, count=None, timeout=None):
    """Register service name and answer its requests with handler (see
    Service.serve); closes the service when it returns or raises."""
    with service(name) as svc:
        return svc.serve(handler, count, timeout)


def call(name, data=b"", timeout=None, cap=CALL_MAX):
    """Call service name with data; returns the reply (bytes). Waits up to
    timeout seconds (None: for ever; 0 is a ValueError: a call always
    waits). RemoteError (.code) if the service failed the call."""
    ms = _timeout.to_ms(timeout)
    if ms == 0:
        raise ValueError("a call always waits: timeout must be None or > 0")
    b = ffi.from_buffer(data)
    reply = new_raw("char[]", cap)
    code = ffi.new("int *")
    before = reason_before()
    r = lib.ipcf_call(_name_arg(name), b, len(b), reply, cap, ms, code)
    if r < 0:
        e = alloc_error(r, name, before)
        if -r == errno.EREMOTEIO:
            e.code = code[0]
        raise e
    return ffi.buffer(reply, r)[:]
