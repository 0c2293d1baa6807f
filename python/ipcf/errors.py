"""errors — the library's negative-errno results as Python exceptions.

Every failure of a call raises IpcfError (a subclass of OSError) or one of
its subclasses, with .errno the positive errno, .strerror the facility's
text for it (ipcf_strerror) and .filename the name the call was about, when
there was one. Where Python has a builtin class for the errno, the
subclass derives from it too, so `except TimeoutError` and
`except ipcf.IpcfError` both catch an ipcf timeout:

    ENOENT        NameNotFoundError    (FileNotFoundError)
    ETIMEDOUT     IpcfTimeoutError     (TimeoutError)
    EAGAIN        WouldBlockError      (BlockingIOError)
    ECONNREFUSED  RefusedError         (ConnectionRefusedError): .reason the target's
    EPIPE         FlowEndedError       (BrokenPipeError): the flow ended in order
    ECONNRESET    PeerDiedError        (ConnectionResetError)
    ECONNABORTED  AbortedError         (ConnectionAbortedError)
    EACCES, EPERM AccessDeniedError    (PermissionError)
    EEXIST        AlreadyExistsError   (FileExistsError)
    EMSGSIZE      MessageTooLongError
    EHOSTDOWN     NoDaemonError        (no facility running, none could start)
    ENOPKG        DaemonNotFoundError  (a NoDaemonError: no daemon, and the program
                                        to start, ipcfd, was not found)
    EDQUOT, EUSERS QuotaError          (refused by a quota or cap of the daemon)
    EREMOTEIO     RemoteError: .code the service's code (ipcf_service_fail)
    anything else IpcfError itself.

.reason is the facility's reason for a failed allocation when it gave one
(the target's refusal, the access policy of another host, an activation
that failed...): alloc takes it from ipcf_alloc, and the calls that
allocate without a reason parameter (call, a datagram's send, mbox_open,
mcast_join, an RPC client's call) from ipcf_last_reason — see
alloc_error. last_reason() gives it too.

For the errors of reaching the daemon (EHOSTDOWN, ENOPKG, EACCES, EDQUOT,
EUSERS), .strerror is the library's precise cause as things are at the
moment of the failure (ipcf_error_cause): "the daemon program was not found
at /x/ipcfd (IPCF_DAEMON)", "runtime dir /run/... is owned by uid 0", "no
daemon serves DIR, and autostart is off (IPCF_NO_AUTOSTART=1)"... rather
than the errno's one-line text.

A daemon that is stopped (SIGSTOP) or wedged: every request to it waits for
its reply at most IPCF_REQUEST_TIMEOUT_MS (default 30000 ms; include/ipcf.h),
so a call without a timeout (connect, register, watch, mbox_create,
mcast_create, dgram..., and alloc or call with timeout=None) raises
IpcfTimeoutError (ETIMEDOUT) after that long, and a call with a timeout
after the shorter of the two. ipcf.rpc is the exception: an RPC client
retransmits a request that timed out until the call's own timeout, so it
raises IpcfTimeoutError after that (describe's 5 s by default), and with
timeout=None waits until the daemon answers again. The process keeps its
connection, its registrations and its ports: once the daemon runs again
the next call works. Ctrl-C during such a request takes effect when it returns (the
library resumes the wait after a signal): KeyboardInterrupt, at most
IPCF_REQUEST_TIMEOUT_MS later.
"""
import errno as _errno

from ._ffi import ffi, lib
from .qos import Reason

MINOR_OF_LAST_REASON = 9  # ipcf_last_reason came with libipcf 1.9
MINOR_OF_MANY = 10  # ipcf_write_many and ipcf_read_many came with libipcf 1.10


class IpcfError(OSError):
    """A call of libipcf failed; .errno says how (see the module's table).
    .reason is the facility's reason when it gave one (a refusal, the end
    of a flow), else ''."""
    reason = ""


class NameNotFoundError(IpcfError, FileNotFoundError):
    pass


class IpcfTimeoutError(IpcfError, TimeoutError):
    pass


class WouldBlockError(IpcfError, BlockingIOError):
    pass


class RefusedError(IpcfError, ConnectionRefusedError):
    pass


class FlowEndedError(IpcfError, BrokenPipeError):
    pass


class PeerDiedError(IpcfError, ConnectionResetError):
    pass


class AbortedError(IpcfError, ConnectionAbortedError):
    pass


class AccessDeniedError(IpcfError, PermissionError):
    pass


class AlreadyExistsError(IpcfError, FileExistsError):
    pass


class MessageTooLongError(IpcfError):
    pass


class NoDaemonError(IpcfError):
    pass


class DaemonNotFoundError(NoDaemonError):
    """No daemon runs, and the program to start one was not found
    (IPCF_DAEMON, else beside the program or in PATH): .strerror says where
    it was looked for."""


class QuotaError(IpcfError):
    """The daemon refused by a quota or cap (EDQUOT: this user's; EUSERS:
    the facility's): .strerror says which."""


class RemoteError(IpcfError):
    """The service answered the call with a failure: .code is its code."""
    code = 0


_CLASSES = {
    _errno.ENOENT: NameNotFoundError,
    _errno.ETIMEDOUT: IpcfTimeoutError,
    _errno.EAGAIN: WouldBlockError,
    _errno.ECONNREFUSED: RefusedError,
    _errno.EPIPE: FlowEndedError,
    _errno.ECONNRESET: PeerDiedError,
    _errno.ECONNABORTED: AbortedError,
    _errno.EACCES: AccessDeniedError,
    _errno.EPERM: AccessDeniedError,
    _errno.EEXIST: AlreadyExistsError,
    _errno.EMSGSIZE: MessageTooLongError,
    _errno.EHOSTDOWN: NoDaemonError,
    _errno.ENOPKG: DaemonNotFoundError,
    _errno.EDQUOT: QuotaError,
    _errno.EUSERS: QuotaError,
    _errno.EREMOTEIO: RemoteError,
}


def strerror(err):
    """The facility's text for an errno (positive or negative)."""
    return ffi.string(lib.ipcf_strerror(-abs(int(err)))).decode("utf-8", "replace")


# The errors of reaching the daemon, whose text ipcf_error_cause makes precise.
_REACH = frozenset((_errno.EHOSTDOWN, _errno.ENOPKG, _errno.EACCES, _errno.EDQUOT,
                    _errno.EUSERS))


def cause(err):
    """ipcf_error_cause: the text of errno err (positive or negative) made
    precise where the library can find out more by looking again (the
    errors of reaching the daemon); else strerror(err)."""
    err = -abs(int(err))
    buf = ffi.new("char[512]")
    if lib.ipcf_error_cause(err, buf, len(buf)) < 0:
        return strerror(err)
    return ffi.string(buf).decode("utf-8", "replace")


def error(err, about=None, reason=""):
    """The exception for errno err (positive or negative) of a call about
    `about` (a name, or None)."""
    err = abs(int(err))
    cls = _CLASSES.get(err, IpcfError)
    text = cause(err) if err in _REACH else strerror(err)
    e = cls(err, text) if about is None else cls(err, text, about)
    e.reason = reason
    return e


def check(r, about=None):
    """r if it is a success (>= 0), else raise its exception."""
    if r < 0:
        raise error(r, about)
    return r


def _last_reason():
    """ipcf_last_reason as a Reason; (0, '') from a library before 1.9."""
    if lib.ipcf_version() & 0xFFFF < MINOR_OF_LAST_REASON:
        return Reason(0, "")
    rs = ffi.new("ipcf_reason *")
    lib.ipcf_last_reason(rs)
    return Reason(rs.code, ffi.string(rs.text).decode("utf-8", "replace"))


def last_reason():
    """ipcf_last_reason: the facility's reason (a Reason: code, an enum
    ipcf_end; text) when this thread's last allocation failed — also one
    made by call, a datagram's send, mbox_open, mcast_join or an RPC
    client's call. Reason(0, '') after a success or a failure without a
    reason; a call that allocated nothing leaves the last one's.
    IpcfError (ENOSYS) from a library before 1.9."""
    need_minor(MINOR_OF_LAST_REASON, "last_reason", "ipcf_last_reason")
    return _last_reason()


def need_minor(minor, what, function):
    """IpcfError (ENOSYS) unless the loaded libipcf is 1.minor or later
    (what: the Python call; function: the C function it needs)."""
    if lib.ipcf_version() & 0xFFFF < minor:
        raise error(-_errno.ENOSYS, "%s: libipcf before 1.%d has no %s" % (what, minor, function))


# The errors only an allocation gives (never a call on a channel already up).
_OF_ALLOC_ONLY = frozenset((_errno.ECONNREFUSED, _errno.EACCES, _errno.EPERM, _errno.ENOENT,
                            _errno.ENOEXEC, _errno.EHOSTUNREACH, _errno.ENOLINK, _errno.EPROTO))


def reason_before():
    """The last reason before a call that may allocate nothing (call, a
    datagram's send, an RPC client's call): for alloc_error."""
    return _last_reason()


def alloc_error(r, about=None, before=None):
    """The exception of errno r from a call that allocates without a
    reason parameter, with .reason the one ipcf_last_reason gives if this
    call's allocation failed with one. before: reason_before() taken
    before a call that may allocate nothing (then the last reason is an
    earlier allocation's): a reason that changed is this call's, and one
    the same as before (the same refusal again) only with an errno that
    an allocation alone gives (a refusal, the policy, no such name...).
    None: the call always allocates (mbox_open, mcast_join)."""
    now = _last_reason()
    fresh = before is None or now != before or abs(int(r)) in _OF_ALLOC_ONLY
    return error(r, about, now.text if fresh else "")


def check_alloc(r, about=None, before=None):
    """r if it is a success (>= 0), else raise alloc_error(r, about, before)."""
    if r < 0:
        raise alloc_error(r, about, before)
    return r
