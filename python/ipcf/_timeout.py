"""_timeout — Python timeouts to the library's, and waits that Ctrl-C ends.

Python side: a timeout is in seconds (a real number: int, float...); None (or inf, or
more than 2^31 - 1 ms) waits for ever, 0 never waits; NaN or below 0 is a
ValueError, anything else (a str, a bool) a TypeError. Library side: milliseconds, -1 for ever (a positive fraction of a
millisecond rounds up to 1, never down to "do not wait").

The library resumes a wait after a signal, so a call waiting for ever would
not let Python run a signal handler (KeyboardInterrupt). wait() therefore
cuts long waits into slices of SLICE_MS; it is only used for calls that
consume nothing when they time out (reads, receives, accepts), so slicing
changes nothing else.
"""
import errno
import math
import numbers
import time

SLICE_MS = 250


def to_ms(timeout):
    """Seconds (None: for ever) to the library's milliseconds."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError("timeout must be None or a number of seconds, not %s" % type(timeout).__name__)
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be None or >= 0 seconds, not %r" % (timeout,))
    if math.isinf(timeout):
        return -1
    if timeout == 0:
        return 0
    ms = math.ceil(timeout * 1000)
    if ms > 2**31 - 1:
        return -1
    return ms


def wait(call, timeout):
    """call(ms) -> result, repeated in slices until it does not time out or
    the whole timeout has passed; returns its last result."""
    ms = to_ms(timeout)
    if 0 <= ms <= SLICE_MS:
        return call(ms)
    deadline = None if ms < 0 else time.monotonic() + ms / 1000.0
    while True:
        step = SLICE_MS
        if deadline is not None:
            left = math.ceil((deadline - time.monotonic()) * 1000)
            if left <= 0:
                return -errno.ETIMEDOUT
            step = min(step, left)
        r = call(step)
        if r != -errno.ETIMEDOUT:
            return r
