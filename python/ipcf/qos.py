"""qos — the characteristics of a flow (ipcf_qos) and who is at its ends.

QoS(capacity="bounded", mode="message", full="block", ...): every field has
the library's default when left None (ipcf_qos_init). The words are those of
the header's enums: capacity bounded | zero | unbounded, mode message |
stream, full block | fail | cache. A wrong word or a field out of range is a
ValueError here, or the library's -EINVAL (IpcfError) when it is sent.
"""
from collections import namedtuple
from dataclasses import dataclass, fields
from typing import Optional

from ._ffi import ffi, lib

CAPACITIES = ("bounded", "zero", "unbounded")
MODES = ("message", "stream")
FULL_POLICIES = ("block", "fail", "cache")

# Who is at the other end (ipcf_peer_info), stamped by the facility.
PeerInfo = namedtuple("PeerInfo", "name pid uid gid")
# Why a flow ended (ipcf_reason): code an enum ipcf_end (0: live), text.
Reason = namedtuple("Reason", "code text")
# A port's counters (ipcf_port_stats).
PortStats = namedtuple("PortStats",
                       "msgs_out bytes_out msgs_in bytes_in queued_out queued_in cached")


def text(chars):
    """A char[] of the library as str."""
    return ffi.string(chars).decode("utf-8", "replace")


def peer_info(c):
    return PeerInfo(text(c.name), c.pid, c.uid, c.gid)


@dataclass
class QoS:
    capacity: str = "bounded"
    mode: str = "message"
    full: str = "block"
    max_msgs: Optional[int] = None
    max_bytes: Optional[int] = None
    max_msg_size: Optional[int] = None
    spin_us: Optional[int] = None
    cache_msgs: Optional[int] = None

    def to_c(self):
        """A new ipcf_qos holding these characteristics."""
        q = ffi.new("ipcf_qos *")
        lib.ipcf_qos_init(q)
        for field, words in (("capacity", CAPACITIES), ("mode", MODES), ("full", FULL_POLICIES)):
            word = getattr(self, field)
            if word not in words:
                raise ValueError("qos %s must be one of %s, not %r" % (field, ", ".join(words), word))
            setattr(q, field, words.index(word))
        for f in fields(self)[3:]:
            v = getattr(self, f.name)
            if v is not None:
                try:
                    setattr(q, f.name, v)
                except OverflowError as e:
                    raise ValueError("qos %s out of range: %r" % (f.name, v)) from e
        return q

    @classmethod
    def from_c(cls, q):
        def word(words, i):
            return words[i] if i < len(words) else str(i)
        return cls(word(CAPACITIES, q.capacity), word(MODES, q.mode), word(FULL_POLICIES, q.full),
                   q.max_msgs, q.max_bytes, q.max_msg_size, q.spin_us, q.cache_msgs)


def qos_c(qos):
    """None, a QoS or a dict of QoS fields -> an ipcf_qos * (or NULL)."""
    if qos is None:
        return ffi.NULL
    if isinstance(qos, dict):
        qos = QoS(**qos)
    if not isinstance(qos, QoS):
        raise TypeError("qos must be None, a dict or an ipcf.QoS, not %s" % type(qos).__name__)
    return qos.to_c()
