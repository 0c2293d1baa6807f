"""notify — what the facility tells this process without being asked
(ipcf_notify_fd, ipcf_notify_next, ipcf_watch, ipcf_unwatch): a watched name
became reachable or stopped being so, a flow of this process ended at the
other side (and why), the peer process of a flow died.

    ipcf.watch("printer")                 # a NAME_UP at once if it is up now
    ev = ipcf.next_event(timeout=5)       # Event(kind="name_up", name="printer", ...)

    with ipcf.watching("printer"):        # watch, then unwatch at the end
        for ev in ipcf.events(timeout=1): # until a second passes without one
            print(ev.kind, ev.name)

Events queue on one descriptor per process, owned by the library (made on
first use): notify_fileno() for selectors and event loops (readable exactly
when an event waits); never read or close it. Events about flows come to
every process that opened it; name events only for watched names. Events
the process does not read in time are dropped, and the next one says how
many (Event.lost). Errors as everywhere: IpcfError and its subclasses
(watch: AccessDeniedError when the policy hides the name, IpcfError EDQUOT
past 64 watches; unwatch: NameNotFoundError when not watched).
"""
import errno

from . import _timeout
from ._ffi import ffi, lib, new_raw
from .errors import check
from .handle import _name_arg

KINDS = {1: "name_up", 2: "name_down", 3: "flow_ended", 4: "peer_died"}


class Event:
    """One notification. kind: "name_up", "name_down", "flow_ended" or
    "peer_died"; name: the name (names) or the flow's name; flow_id, port
    (this process's port-id, or -1), pid (the peer's, or the registrant's
    for name_up: 0 when another user's and hidden), end_code and reason
    (flow_ended, peer_died); lost: events dropped before this one."""

    __slots__ = ("kind", "lost", "name", "flow_id", "port", "pid", "end_code", "reason")

    def __init__(self, c):
        self.kind = KINDS.get(c.kind, c.kind)
        self.lost = c.lost
        self.name = ffi.string(c.name).decode("utf-8", "replace")
        self.flow_id = c.flow_id
        self.port = c.port
        self.pid = c.pid
        self.end_code = c.end_code
        self.reason = ffi.string(c.reason).decode("utf-8", "replace")

    def __repr__(self):
        return "Event(kind=%r, name=%r, flow_id=%d, port=%d, pid=%d, end_code=%d, reason=%r, lost=%d)" % (
            self.kind, self.name, self.flow_id, self.port, self.pid, self.end_code, self.reason, self.lost)


def notify_fileno():
    """The process's notification descriptor (the library's: poll it, never
    read or close it)."""
    return check(lib.ipcf_notify_fd())


def next_event(timeout=None):
    """The next event, waiting up to timeout seconds (None: for ever; then
    IpcfTimeoutError, or WouldBlockError for 0)."""
    ev = new_raw("ipcf_event *")
    check(_timeout.wait(lambda ms: lib.ipcf_notify_next(ms, ev), timeout))
    return Event(ev)


def events(timeout=None):
    """Yield events as they come, until none comes within timeout seconds
    (None: for ever)."""
    while True:
        ev = new_raw("ipcf_event *")
        r = _timeout.wait(lambda ms: lib.ipcf_notify_next(ms, ev), timeout)
        if r in (-errno.ETIMEDOUT, -errno.EAGAIN):
            return
        check(r)
        yield Event(ev)


def watch(name):
    """Be told (name_up / name_down) when name becomes reachable or stops
    being so; a name_up comes at once if it is reachable now."""
    check(lib.ipcf_watch(_name_arg(name)), name)


def unwatch(name):
    """Stop watching name (NameNotFoundError if it was not watched)."""
    check(lib.ipcf_unwatch(_name_arg(name)), name)


class watching:
    """`with ipcf.watching(name):` watch name for the block's time."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        watch(self.name)
        return self

    def __exit__(self, *exc):
        unwatch(self.name)
        return False
