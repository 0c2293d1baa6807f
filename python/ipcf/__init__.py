"""ipcf — the interprocess communication facility from Python.

Applications reach each other by name. A client:

    import ipcf
    with ipcf.alloc("greeter", timeout=5) as port:
        port.write(b"hello")
        print(port.read(timeout=5))

and its server:

    with ipcf.register("greeter") as reg:
        with reg.accept() as port:
            for msg in port:            # until the client ends the flow
                port.write(msg)

Also: call/serve/service (request and reply), dgram (datagrams), mailboxes
(mbox_*) and multicast groups (mcast_*), readiness sets (Set: many ports,
one descriptor, one wait), notifications (watch, next_event,
events: names coming and going, flows ending), pipe(), ipcf.aio for asyncio, and
ipcf.rpc to call any procedure of an RPC server (ipcf-idl) by name.
Timeouts are in seconds: None waits for ever, 0 never waits. Failures raise
IpcfError (an OSError) or a subclass (see ipcf.errors). Every handle has
fileno() for selectors and event loops, close(reason) and `with`.

This package is a binding of the C library libipcf.so.1 (loaded with cffi in
ABI mode; see ipcf._ffi for how it is found) and follows its documentation
(include/ipcf.h, man 3 libipcf) for everything else.
"""
from ._ffi import CALL_MAX, NAME_MAX, lib as _lib, ffi as _cffi
from .errors import (AbortedError, AccessDeniedError, AlreadyExistsError, DaemonNotFoundError,
                     FlowEndedError, IpcfError, IpcfTimeoutError, MessageTooLongError,
                     NameNotFoundError, NoDaemonError, PeerDiedError, QuotaError, RefusedError,
                     RemoteError, WouldBlockError, last_reason, strerror)
from .qos import PeerInfo, PortStats, QoS, Reason
from .handle import Handle, Port, Registration, Request, alloc, pipe, register
from .service import CallRequest, Service, ServiceFailure, call, serve, service
from .dgram import Datagram, Endpoint, dgram
from .mbox import (Group, Mailbox, mbox_create, mbox_destroy, mbox_open, mcast_create,
                   mcast_destroy, mcast_join)
from .notify import Event, events, next_event, notify_fileno, unwatch, watch, watching
from .readiness import Set
from . import aio, errors, rpc  # noqa: F401  (ipcf.aio, ipcf.errors, ipcf.rpc)

__version__ = "1.4"


def version():
    """The C library's version as (major, minor)."""
    v = _lib.ipcf_version()
    return v >> 16, v & 0xFFFF


def runtime_dir():
    """The facility instance this process talks to (IPCF_RUNTIME_DIR...)."""
    return _cffi.string(_lib.ipcf_runtime_dir()).decode()


def connect():
    """Connect to the daemon now (else the first call that needs it does)."""
    r = _lib.ipcf_connect()
    if r < 0:
        raise errors.error(r)


__all__ = [
    "AbortedError", "AccessDeniedError", "AlreadyExistsError", "CALL_MAX", "CallRequest",
    "DaemonNotFoundError", "Datagram", "Endpoint", "Event", "FlowEndedError", "Group", "Handle", "IpcfError", "IpcfTimeoutError",
    "Mailbox", "MessageTooLongError", "NAME_MAX", "NameNotFoundError", "NoDaemonError",
    "PeerDiedError", "PeerInfo", "Port", "PortStats", "QoS", "QuotaError", "Reason", "RefusedError",
    "Registration", "RemoteError", "Request", "Service", "ServiceFailure", "Set", "WouldBlockError",
    "aio", "alloc", "call", "connect", "dgram", "errors", "events", "last_reason", "mbox_create",
    "mbox_destroy", "mbox_open", "mcast_create", "mcast_destroy", "mcast_join", "next_event", "notify_fileno",
    "pipe", "register", "rpc", "runtime_dir", "serve", "service", "strerror", "unwatch",
    "version", "watch", "watching",
]
