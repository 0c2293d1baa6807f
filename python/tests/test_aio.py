"""test_aio — ports in asyncio through loop.add_reader (ipcf.aio)."""
import asyncio

import ipcf
from helpers import Background


def test_asyncio_echo_server_serves_clients_concurrently(name):
    async def serve(reg, flows):
        async def echo(port):
            with port:
                try:
                    while True:
                        await ipcf.aio.write(port, await ipcf.aio.read(port))
                except BrokenPipeError:
                    return
        tasks = [asyncio.create_task(echo(await ipcf.aio.accept(reg))) for _ in range(flows)]
        await asyncio.gather(*tasks)

    def client(i):
        with ipcf.alloc(name, timeout=5) as port:
            out = []
            for k in range(20):
                port.write(b"%d:%d" % (i, k), timeout=5)
                out.append(port.read(timeout=5))
            return out

    with ipcf.register(name) as reg:
        clients = [Background(lambda i=i: client(i)) for i in range(3)]
        asyncio.run(asyncio.wait_for(serve(reg, 3), 20))
        for i, c in enumerate(clients):
            assert c.result() == [b"%d:%d" % (i, k) for k in range(20)]


def test_asyncio_write_waits_for_room():
    a, b = ipcf.pipe(ipcf.QoS(max_msgs=2))

    async def writer():
        for k in range(10):
            await ipcf.aio.write(a, b"%d" % k)
        return "done"

    async def main():
        w = asyncio.create_task(writer())
        got = []
        while len(got) < 10:
            got.append(await ipcf.aio.read(b))
        assert await w == "done"
        return got
    with a, b:
        assert asyncio.run(asyncio.wait_for(main(), 10)) == [b"%d" % k for k in range(10)]
