"""mbox — mailboxes and multicast groups: named queues kept by the facility.

    ipcf.mbox_create("jobs")
    with ipcf.mbox_open("jobs", "recv") as rx, ipcf.mbox_open("jobs", "send") as tx:
        tx.send(b"job 1")
        rx.recv()                       # b"job 1"
    ipcf.mbox_destroy("jobs")

Each message of a mailbox goes to exactly one receiver; each message of a
multicast group to every other member. Handles are port-ids (fileno(),
close()). A mailbox or group lives until destroyed, not with its creator.
"""
from . import _timeout
from ._ffi import MBOX_EXCLUSIVE, MBOX_RECV, MBOX_SEND, MBOX_STREAM, ffi, lib
from .errors import check, check_alloc
from .handle import Handle, _name_arg
from .qos import peer_info, qos_c

SLOW_POLICIES = ("block", "drop", "remove")
_HOW = {"send": MBOX_SEND, "recv": MBOX_RECV}


class _Queue(Handle):
    """What mailbox and group handles share: receiving with the sender."""

    _recv = None  # the library's receive function

    def recv_from(self, timeout=None):
        """(data, sender PeerInfo) of the next message."""
        who = ffi.new("ipcf_peer_info *")
        recv = type(self)._recv
        data = self._receive(lambda h, buf, cap, ms: recv(h, buf, cap, ms, who), timeout)
        return data, peer_info(who)

    def recv(self, timeout=None):
        """The next message (bytes), waiting up to timeout seconds."""
        return self.recv_from(timeout)[0]


class Mailbox(_Queue):
    """A handle on a mailbox, opened to send or to receive."""

    _recv = lib.ipcf_mbox_recv

    def send(self, data, timeout=None, receipt=False):
        """Send data; returns its length, or with receipt=True waits until a
        receiver took it and returns that receiver's pid."""
        b = ffi.from_buffer(data)
        rc = ffi.new("ipcf_receipt *") if receipt else ffi.NULL
        n = check(lib.ipcf_mbox_send(self._h, b, len(b), _timeout.to_ms(timeout), rc), self.name)
        return rc.receiver if receipt else n

    @property
    def undelivered(self):
        """How many messages sent on this handle are known not delivered."""
        return check(lib.ipcf_mbox_undelivered(self._h), self.name)


class Group(_Queue):
    """A membership of a multicast group."""

    _recv = lib.ipcf_mcast_recv

    def send(self, data, timeout=None):
        """Send data to every other member; returns its length."""
        b = ffi.from_buffer(data)
        return check(lib.ipcf_mcast_send(self._h, b, len(b), _timeout.to_ms(timeout)), self.name)

    @property
    def lost(self):
        """How many messages the group dropped for this member so far."""
        return check(lib.ipcf_mcast_lost(self._h), self.name)


def mbox_create(name, stream=False, exclusive=False, max_msgs=0, max_msg_size=0, max_bytes=0):
    """Create mailbox name (0: the facility's default for each bound)."""
    o = ffi.new("ipcf_mbox_opts *")
    o.size = ffi.sizeof("ipcf_mbox_opts")
    o.flags = (MBOX_STREAM if stream else 0) | (MBOX_EXCLUSIVE if exclusive else 0)
    o.max_msgs, o.max_msg_size, o.max_bytes = max_msgs, max_msg_size, max_bytes
    check(lib.ipcf_mbox_create(_name_arg(name), o), name)


def mbox_destroy(name):
    """Destroy mailbox name; returns how many messages of senders that had
    closed their handles it discarded."""
    return check(lib.ipcf_mbox_destroy(_name_arg(name)), name)


def mbox_open(name, how, qos=None, timeout=None):
    """Open mailbox name to "send" or to "recv"; returns a Mailbox."""
    if how not in _HOW:
        raise ValueError("how must be 'send' or 'recv', not %r" % (how,))
    h = lib.ipcf_mbox_open(_name_arg(name), _HOW[how], qos_c(qos), _timeout.to_ms(timeout))
    return Mailbox(check_alloc(h, name), name)


def mcast_create(name, slow="block", max_msgs=0, max_msg_size=0):
    """Create multicast group name; slow: what a full member's queue does
    to senders: "block" them, "drop" its messages, or "remove" it."""
    if slow not in SLOW_POLICIES:
        raise ValueError("slow must be one of %s, not %r" % (", ".join(SLOW_POLICIES), slow))
    o = ffi.new("ipcf_mcast_opts *")
    o.size = ffi.sizeof("ipcf_mcast_opts")
    o.slow = SLOW_POLICIES.index(slow)
    o.max_msgs, o.max_msg_size = max_msgs, max_msg_size
    check(lib.ipcf_mcast_create(_name_arg(name), o), name)


def mcast_destroy(name):
    check(lib.ipcf_mcast_destroy(_name_arg(name)), name)


def mcast_join(name, qos=None, timeout=None):
    """Become a member of multicast group name; returns a Group."""
    return Group(check_alloc(lib.ipcf_mcast_join(_name_arg(name), qos_c(qos), _timeout.to_ms(timeout)), name),
                 name)
