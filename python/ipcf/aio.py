"""aio — ipcf handles in asyncio, through their descriptors.

Every handle's fileno() is a level-triggered descriptor that is readable
when a read, accept or receive would not block, so an event loop watches it
with loop.add_reader and then makes the call with timeout 0. These helpers
do exactly that (nothing else: the calls are the ordinary ones):

    port = await ipcf.aio.accept(reg)
    msg = await ipcf.aio.read(port)
    await ipcf.aio.write(port, msg)
    ports = await ipcf.aio.wait(ready)      # an ipcf.Set: its ready ports

Use them from the loop's thread only. A call that raises WouldBlockError
after the descriptor turned readable (another reader was first) just waits
again.
"""
import asyncio

from .errors import WouldBlockError


async def _ready(fd):
    """Wait until fd is readable."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def wake():
        if not fut.done():
            fut.set_result(None)
    loop.add_reader(fd, wake)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def _retry(attempt, fileno):
    while True:
        try:
            return attempt()
        except WouldBlockError:
            await _ready(fileno())


async def readable(handle):
    """Wait until a read (accept, receive) on handle would not block."""
    await _ready(handle.fileno())


async def read(port):
    """The next message of a Port."""
    return await _retry(lambda: port.read(timeout=0), port.fileno)


async def write(port, data):
    """Send data on a Port, waiting (in the loop) while its queue is full."""
    return await _retry(lambda: port.write(data, timeout=0), port.fileno_send)


async def accept(reg):
    """Accept the next request of a Registration: its Port."""
    return await _retry(lambda: reg.accept(timeout=0), reg.fileno)


async def recv(handle):
    """The next message of a Mailbox or Group, or Datagram of an Endpoint."""
    return await _retry(lambda: handle.recv(timeout=0), handle.fileno)


async def next_request(svc):
    """The next CallRequest of a Service."""
    return await _retry(lambda: svc.next(timeout=0), svc.fileno)


async def wait(rset):
    """The ready Ports of an ipcf.Set (a non-empty list). Looks first (a
    wait of timeout 0: while ports keep coming it never sleeps in the
    loop), and only after a look that found nothing, which arms every
    port, waits for the set's descriptor."""
    while True:
        ready = rset.wait(timeout=0)
        if ready:
            return ready
        await _ready(rset.fileno())
