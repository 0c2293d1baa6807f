"""readiness — many ports, one descriptor, one call: the library's readiness
sets (ipcf_set_new, ipcf_set_add, ipcf_set_del, ipcf_set_wait).

    with ipcf.Set() as ready:
        for port in ports:
            ready.add(port)
        while ready:
            for port in ready.wait(timeout=1):       # [] when nothing came
                try:
                    msg = port.read(timeout=0)
                except ipcf.WouldBlockError:
                    continue                          # a spurious report
                except BrokenPipeError:
                    ready.remove(port)
                    port.close()
                    continue
                port.write(msg)

For a server with many flows in one thread: while it keeps busy, a message
on a port of the set costs no system call on either side (the set looks at
the ports' queues); only when nothing is ready for spin_us microseconds
does a wait arm the ports and sleep (include/ipcf.h, docs/ARCHITECTURE.md
"Waiting and waking"). Rules:
 - wait() is level-triggered: a port stays reported while a read would not
   block (a message is queued, or its flow ended: the read says how).
   Read with timeout=0; a report may be spurious (WouldBlockError).
 - A port is in one set at most, and has no fileno() while in it
   (IpcfError EBUSY: its readiness is the set's); a port already polled
   (fileno() was called on it) cannot join one (EBUSY). remove() gives it
   back. A port closed while in the set leaves it at the next wait,
   unreported.
 - fileno() of the set, for selectors and asyncio, is readable when a wait
   would report a port — once the last wait returned [] (that is what arms
   every port): after a wait that reported ports, handle them and wait
   again (timeout=0) before sleeping on the descriptor; ipcf.aio.wait(set)
   does that. It may be readable for nothing now and then.
 - close() ends the set only: its ports stay open; a wait in another thread
   then raises IpcfError EBADF. One thread waits at a time (a second waits
   for the first); add/remove from another thread are let in while a wait
   sleeps.
 - A set is for the process that made it (not across fork).
"""
import errno

from ._ffi import ffi, lib, new_raw
from .errors import check, error
from .handle import Handle, Port

# Reports fetched per wait unless max_events says otherwise.
DEFAULT_EVENTS = 64
# The library's MINOR version that brought readiness sets.
MINOR_OF_SETS = 7


def _opts(spin_us):
    if spin_us is None:
        return ffi.NULL
    o = ffi.new("ipcf_set_opts *")
    o.size = ffi.sizeof("ipcf_set_opts")
    o.spin_us = spin_us
    return o


class Set(Handle):
    """A readiness set: Set(spin_us=None) (None: the library's default, 50
    µs; 0: never spin; at most 100000). add(port, data=None), remove(port),
    wait(timeout=None) -> the ready Ports; data(port) is what add() was given.
    len(), `in` and iteration are over its ports. See the module's rules."""

    def __init__(self, spin_us=None):
        if spin_us is not None and not isinstance(spin_us, int):
            raise TypeError("spin_us is an int (microseconds) or None")
        if lib.ipcf_version() & 0xFFFF < MINOR_OF_SETS:
            raise error(-errno.ENOSYS, "set: libipcf before 1.%d has no readiness sets"
                        % MINOR_OF_SETS)
        super().__init__(check(lib.ipcf_set_new(_opts(spin_us))), "set")
        self._members = {}  # port handle number -> (Port, data)

    def _forget_closed(self):
        """Members closed by their owner have left the library's set (at
        its next wait): leave ours too."""
        gone = [h for h, (p, _) in self._members.items() if p.handle != h]
        for h in gone:
            del self._members[h]

    def add(self, port, data=None):
        """Watch port (a Port); data comes back from data(port)."""
        if not isinstance(port, Port):
            raise TypeError("a readiness set watches Ports, not %s" % type(port).__name__)
        self._forget_closed()
        h = port.handle
        check(lib.ipcf_set_add(self._h, h, h), port.name)
        self._members[h] = (port, data)

    def remove(self, port):
        """Stop watching port (NameNotFoundError, ENOENT, if not in the set)."""
        h = port.handle
        check(lib.ipcf_set_del(self._h, h), port.name)
        self._members.pop(h, None)

    def data(self, port):
        """What add() was given with port (KeyError if not in the set)."""
        p, d = self._members[port.handle]
        if p is not port:
            raise KeyError(port)
        return d

    def wait(self, timeout=None, max_events=DEFAULT_EVENTS):
        """The ports ready now, waiting up to timeout seconds (None: for ever,
        0: not at all) for one; [] if none came in time (every port is then
        armed: fileno() turns readable when one is ready). At most
        max_events ports; the next wait goes on from there. Long waits are
        cut in slices so that Ctrl-C ends them."""
        if not isinstance(max_events, int) or not 0 < max_events <= 2**31 - 1:
            raise ValueError("max_events must be an int from 1 to 2**31-1")
        evs = new_raw("ipcf_set_event[]", max_events)
        n = self._wait(lambda h, ms: lib.ipcf_set_wait(h, evs, max_events, ms), timeout)
        if n in (-errno.EAGAIN, -errno.ETIMEDOUT):
            return []
        if n < 0:
            raise error(n, self.name)
        ready = []
        for i in range(n):
            member = self._members.get(evs[i].port)
            # A port added by number behind our back, or closed: not ours to report.
            if member is not None and member[0].handle == evs[i].port:
                ready.append(member[0])
        return ready

    def close(self, reason=None):
        """Close the set (ipcf_dealloc); its ports stay open."""
        self._members.clear()
        super().close(reason)

    def detach(self):
        self._members.clear()
        super().detach()

    def __len__(self):
        self._forget_closed()
        return len(self._members)

    def __bool__(self):
        return len(self) > 0

    def __contains__(self, port):
        member = self._members.get(getattr(port, "handle", -1))
        return member is not None and member[0] is port and port.handle >= 0

    def __iter__(self):
        self._forget_closed()
        return iter([p for p, _ in self._members.values()])
