"""The fastest plain-Python echo: an asyncio ``Protocol`` (data_received -> transport.write), optionally on uvloop.

Prints the port it got on stdout. usage: asyncio_protocol_server.py [PORT] [--uvloop]
(port 0 picks one; --uvloop needs the uvloop package).
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a cast, not an isinstance check: uvloop's transports do not subclass asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        # No flow control, as in the usual examples: with one message in flight per client
        # the write buffer never grows.
        self.transport.write(data)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--uvloop" in args:
        args.remove("--uvloop")
        import uvloop

        uvloop.install()
    asyncio.run(main(int(args[0]) if args else 0))
