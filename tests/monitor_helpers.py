"""Run the monitor app against a real server on port 0, with real client sockets.

Textual tests stay synchronous (``asyncio.run`` around ``app.run_test()``):
trio's pytest plugin must not see them. Clients are asyncio streams, so they
never block the event loop the app and the server share.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from textual.app import App
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import OptionList
from textual.widget import Widget

from tui_echo.monitor.guest import GuestServer
from tui_echo.server.config import DEFAULT_FEED_LINES, ServerConfig
from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed

from .helpers import TIMEOUT

SIZE = (120, 40)


@dataclass
class Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def say(self, data: bytes) -> None:
        """Send ``data`` and read its echo back."""
        self.writer.write(data)
        assert await self.receive(len(data)) == data

    async def receive(self, count: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(count), TIMEOUT)

    async def until_eof(self) -> bytes:
        """Everything up to the server's FIN; fails if it never comes."""
        return await asyncio.wait_for(self.reader.read(), TIMEOUT)


@dataclass
class Monitor:
    app: MonitorApp
    pilot: Pilot[None]
    port: int
    clients: list[Client] = field(default_factory=list)

    @property
    def table(self) -> ConnectionsTable:
        return self.app.query_one(ConnectionsTable)

    @property
    def feed(self) -> Feed:
        return self.app.query_one(Feed)

    async def connect(self) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.clients.append(Client(reader, writer))
        return self.clients[-1]

    async def until(
        self, condition: Callable[[], object], what: str | Callable[[], str], timeout: float = TIMEOUT
    ) -> None:
        """Wait for ``condition``; ``what`` names it in the failure (a callable: as things are then)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                rows = [(row.client_id, row.status) for row in self.table.rows]
                said = what() if callable(what) else what
                raise AssertionError(f"timed out waiting for {said}; table rows: {rows}")
            await self.pilot.pause(0.02)

    def live_ids(self) -> list[int]:
        return [row.client_id for row in self.table.rows if not row.gone]

    async def palette(self, query: str, command: str) -> None:
        """Run ``command`` from the command palette, found by typing ``query``."""
        await self.pilot.press("ctrl+p", *query)

        def best_hit() -> str:
            screen = self.app.screen
            if not isinstance(screen, CommandPalette):
                return ""
            hits = screen.query_one(OptionList)
            return str(hits.get_option_at_index(0).prompt) if hits.option_count else ""

        await self.until(lambda: best_hit().startswith(command), f"the palette to offer {command!r}")
        await self.pilot.press("enter")

    def notifications(self) -> list[str]:
        return [str(notification.message) for notification in self.app._notifications]


def screen_lines(widget: Widget) -> list[str]:
    """The text the widget draws now, line by line, as it would reach the terminal."""
    return ["".join(segment.text for segment in widget.render_line(y)) for y in range(widget.size.height)]


def screen_text(app: App[None]) -> list[str]:
    """The whole screen as the terminal shows it, line by line (border, scrollbars and all)."""
    strips = app.screen._compositor.render_strips()  # the compositor is what reaches the terminal
    return ["".join(segment.text for segment in strip) for strip in strips]


def on_screen(widget: Widget) -> list[str]:
    """The part of the screen the widget covers, border included."""
    region = widget.region
    return [line[region.x : region.right] for line in screen_text(widget.app)[region.y : region.bottom]]


def run_monitor(
    test: Callable[[Monitor], Awaitable[None]],
    size: tuple[int, int] = SIZE,
    server: GuestServer | None = None,
    feed_lines: int = DEFAULT_FEED_LINES,
    **settings: object,
) -> None:
    """``test`` against the monitor on ``server``, or by default a GuestServer with ``settings`` on port 0."""

    async def main() -> None:
        source = server or GuestServer(ServerConfig(port=0, **settings))  # type: ignore[arg-type]
        source.listen()
        app = MonitorApp(source, feed_lines=feed_lines, handle_signals=False)
        async with app.run_test(size=size) as pilot:
            monitor = Monitor(app, pilot, source.addresses[0][1])
            try:
                await test(monitor)
            finally:
                for client in monitor.clients:
                    client.writer.close()
                for client in monitor.clients:  # closed now, not when collected in a later test
                    with contextlib.suppress(OSError, asyncio.TimeoutError):
                        await asyncio.wait_for(client.writer.wait_closed(), TIMEOUT)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()  # an unclosed socket warns when it is collected
    # An unfinished guest run warns and leaves trio broken for the next run.
    problems = [w for w in caught if "guest run" in str(w.message) or issubclass(w.category, ResourceWarning)]
    assert not problems, [str(w.message) for w in problems]
