"""Retake the README's picture of the monitor (assets/monitor.svg): ``make screenshot``.

It runs the real monitor (Textual's Pilot, no terminal needed) on a real server
with real clients on 127.0.0.1, as in the README: two clients chatting, a device
sending binary frames, a busy client, one client kicked and a line sent by the
operator. Times, ports and rates differ from run to run; the picture stays the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.guest import GuestServer
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.server.binding import ListenError
from tui_echo.server.config import DEFAULT_PORT, ServerConfig

SIZE = (120, 36)
OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "monitor.svg"
TIMEOUT = 10.0


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def say(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.reader.readexactly(len(data)), TIMEOUT)


async def connect(port: int) -> Client:
    return Client(*await asyncio.open_connection("127.0.0.1", port))


def listening_server() -> GuestServer:
    """On the teaching server's port, as in the README, or any free port if it is taken."""
    for port in (DEFAULT_PORT, 0):
        server = GuestServer(ServerConfig(port=port))
        try:
            server.listen()
        except ListenError:
            continue
        return server
    raise SystemExit("screenshot: cannot listen on 127.0.0.1")


async def busy(client: Client, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        await client.say(b"reading %06d\n" % n)
        n += 1


async def main() -> None:
    server = listening_server()
    port = server.addresses[0][1]
    app = MonitorApp(server, handle_signals=False)
    async with app.run_test(size=SIZE) as pilot:

        async def until(condition: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + TIMEOUT
            while not condition():
                if time.monotonic() > deadline:
                    raise SystemExit(f"screenshot: timed out waiting for {what}")
                await pilot.pause(0.05)

        alice, bob, device, sensor, leaver = [await connect(port) for _ in range(5)]
        table = app.query_one(ConnectionsTable)
        await until(lambda: len(table.rows) == 5, "five rows")
        stop = asyncio.Event()
        load = asyncio.create_task(busy(sensor, stop))
        await pilot.pause(2.5)  # rates, the sparkline and busy notes under load
        stop.set()
        await load
        # The rest happens within one refresh, so that the numbers still show the load.
        await alice.say(b"Hello, world (4242)\n")
        await bob.say("hi from client two, ça va ?\n".encode())
        for frame in (b"\x02\x10\x00\x2a\xff\xfe\x03", b"\x02\x11\x00\x07\x1b[2J\x03"):
            await device.say(frame)
        await alice.say(b"Hello, world (4242)\n")
        await pilot.press("end", "k")  # kick the last client
        await until(lambda: any(row.status == "kicked" for row in table.rows), "the kick")
        await pilot.press("home", "down", "s", *r"welcome, #2\n", "enter", "escape")
        await until(lambda: "welcome" in app.query_one(Feed).entries[-1].text, "the line sent to #2")
        await pilot.pause(0.2)
        OUTPUT.write_text(app.export_screenshot(title="tui-echo"), encoding="utf-8")
        for client in (alice, bob, device, sensor, leaver):
            client.writer.close()
            with contextlib.suppress(ConnectionError):
                await client.writer.wait_closed()
    print(f"screenshot: wrote {OUTPUT}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
