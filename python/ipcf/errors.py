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
    EREMOTEIO     RemoteError: .code the service's code (ipcf_service_fail)
    anything else IpcfError itself.
"""
import errno as _errno

from ._ffi import ffi, lib


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
    _errno.EREMOTEIO: RemoteError,
}


def strerror(err):
    """The facility's text for an errno (positive or negative)."""
    return ffi.string(lib.ipcf_strerror(-abs(int(err)))).decode("utf-8", "replace")


def error(err, about=None, reason=""):
    """The exception for errno err (positive or negative) of a call about
    `about` (a name, or None)."""
    err = abs(int(err))
    cls = _CLASSES.get(err, IpcfError)
    e = cls(err, strerror(err)) if about is None else cls(err, strerror(err), about)
    e.reason = reason
    return e


def check(r, about=None):
    """r if it is a success (>= 0), else raise its exception."""
    if r < 0:
        raise error(r, about)
    return r
