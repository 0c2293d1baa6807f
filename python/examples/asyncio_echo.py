#!/usr/bin/env python3
"""asyncio_echo.py — an echo server in asyncio: many flows, one thread.

    asyncio_echo.py NAME [N]    register NAME and echo on every flow it
                                accepts; with N, stop after N flows ended

Each handle's fileno() is a level-triggered descriptor that the event loop
watches (loop.add_reader, through ipcf.aio); the ipcf calls themselves are
made with timeout 0, so the loop never blocks.
"""
import asyncio
import sys

import ipcf


async def echo(port):
    with port:
        try:
            while True:
                msg = await ipcf.aio.read(port)
                await ipcf.aio.write(port, msg)
        except (ipcf.FlowEndedError, ipcf.PeerDiedError):
            pass  # the client ended the flow, or died


async def main(name, flows):
    with ipcf.register(name) as reg:
        tasks = set()
        accepted = 0
        while flows is None or accepted < flows:
            port = await ipcf.aio.accept(reg)
            accepted += 1
            task = asyncio.create_task(echo(port))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: asyncio_echo.py NAME [N]")
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
    except ipcf.IpcfError as e:
        sys.exit("asyncio_echo: %s" % e)
    except KeyboardInterrupt:
        pass
