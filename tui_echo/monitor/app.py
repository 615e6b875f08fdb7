"""The monitor app: the server's live view, and the operator's controls over it.

The server runs beside the app in the same event loop (see ``tui_echo.bridge``).
The app never waits on it: a timer drains its events in batches and reads its
exact counts, so the cost of the screen stays fixed whatever the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Label

from tui_echo.commands import Broadcast, Kick, KickAll, SendTo, ServerCommand
from tui_echo.config import DEFAULT_FEED_LINES
from tui_echo.engine import Engine
from tui_echo.events import (
    ClientConnected,
    ClientDisconnected,
)
from tui_echo.feedlines import FeedIntake
from tui_echo.monitor.connections import ConnectionsTable
from tui_echo.monitor.feed import Feed
from tui_echo.monitor.sendbox import SendBox
from tui_echo.monitor.stats import StatsBar
from tui_echo.tracker import ConnectionTracker, StatsTracker

TICK_SECONDS = 0.2  # events are drained and the feed grows this often
REFRESH_SECONDS = 0.4  # the table and the stats are read this often
EVENTS_PER_TICK = 5000  # beyond this, events wait for the next tick (the server skips data events meanwhile)
DATA_LINES_PER_TICK = 80  # data lines added to the feed per tick at most (see tui_echo.feedlines)
_QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HANG_UP_DEADLINE = 5.0  # seconds to close the clients after the terminal went away, before leaving anyway


class MonitorApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tui-echo"
    BINDINGS = [
        Binding("k", "kick", "Kick"),
        Binding("K", "kick_all", "Kick all"),
        Binding("f", "filter", "Filter"),
        Binding("x", "hex", "Hex"),
        Binding("p", "pause", "Pause"),
        Binding("c", "clear", "Clear"),
        Binding("s", "focus_send", "Send"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        engine: Engine,
        *,
        feed_lines: int = DEFAULT_FEED_LINES,
        clock: Callable[[], float] = time.time,
        handle_signals: bool = True,
    ) -> None:
        super().__init__()
        self.engine = engine
        self._clock = clock
        self._handle_signals = handle_signals
        self._connections = ConnectionTracker()
        self._stats = StatsTracker(engine.addresses, clock())
        self._clients_now = 0  # from connect and disconnect events: it sees every client, even brief ones
        self._intake = FeedIntake(DATA_LINES_PER_TICK)
        self._next_refresh = 0.0
        self._quitting = False
        self._signals: list[signal.Signals] = []
        # Held, not queried: the timer may still fire while the screen is being taken down.
        self._stats_bar = StatsBar(id="stats")
        self._table_title = Label("Connections", id="table-title")
        self._table = ConnectionsTable(id="connections")
        self._feed = Feed(feed_lines, id="feed")
        self._send_box = SendBox(id="send")

    def compose(self) -> ComposeResult:
        yield self._stats_bar
        with Horizontal(id="table-bar"):
            yield self._table_title
            kick_all = Button("✕ Kick all", id="kick-all", variant="error", compact=True)
            kick_all.can_focus = False  # Enter on a focused "Kick all" is too easy a mistake; K and the mouse reach it
            yield kick_all
        yield self._table
        yield self._feed
        yield self._send_box
        yield Footer()

    def on_mount(self) -> None:
        if self._handle_signals:
            self._install_signal_handlers()
        self.engine.start(self._engine_stopped)
        self.set_interval(TICK_SECONDS, self._tick)
        self._tick()
        self._table.focus()

    async def on_unmount(self) -> None:
        self._quitting = True
        await self.engine.stop()  # closes every client, whichever way the app ends
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        handlers = [(signum, self.action_quit) for signum in _QUIT_SIGNALS] + [(signal.SIGHUP, self._hang_up)]
        for signum, handler in handlers:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
                loop.add_signal_handler(signum, self.call_later, handler)
                self._signals.append(signum)

    async def _hang_up(self) -> None:
        """The terminal went away: close every client, then leave without touching the screen.

        Textual's output thread dies on the first write to a vanished terminal, and
        later writes would block the event loop for good, so the usual exit (which
        restores the terminal) would hang. A timer thread ends the process even then.
        """
        threading.Timer(_HANG_UP_DEADLINE, os._exit, args=(1,)).start()
        self._quitting = True
        await self.engine.stop()
        os._exit(0)

    def _engine_stopped(self, error: BaseException | None) -> None:
        if self._quitting:
            return
        # Not a user error: a bug. Keep the traceback for the report.
        detail = "" if error is None else ":\n" + "".join(traceback.format_exception(error))
        self.exit(return_code=1, message=f"tui-echo: error: the server stopped unexpectedly{detail}")

    # ---- the tick --------------------------------------------------------

    def _tick(self) -> None:
        now = self._clock()
        events = self.engine.take_events(EVENTS_PER_TICK)
        self._feed.add(self._intake.entries(events, now))
        lifecycle = False
        for event in events:
            if isinstance(event, ClientConnected):
                lifecycle = True
                self._clients_now += 1
                self._stats.saw_clients(self._clients_now)
            elif isinstance(event, ClientDisconnected) and not event.refused:
                lifecycle = True
                self._clients_now -= 1
                self._connections.client_left(event, now)
        if lifecycle or now >= self._next_refresh:
            self._refresh_numbers(now)

    def _refresh_numbers(self, now: float) -> None:
        self._next_refresh = now + REFRESH_SECONDS
        self._table.update_rows(self._connections.rows(self.engine.clients(), now), now)
        stats = self._stats.stats(self.engine.totals(), now, self._intake.skipped)
        self._stats_bar.show(stats)
        self._table_title.update(f"Connections · {stats.clients_now} now")

    def _soon(self) -> None:
        """Show a command's effect without waiting for the next tick."""
        self._next_refresh = 0.0
        self.set_timer(0.02, self._tick)

    def _command(self, command: ServerCommand) -> None:
        if self.engine.send(command):
            self._soon()
        else:
            self.notify("The server is busy: try again.", title="Not done", severity="warning")

    # ---- what the widgets report ----------------------------------------

    @on(ConnectionsTable.Highlighted)
    def _client_highlighted(self, event: ConnectionsTable.Highlighted) -> None:
        self._send_box.target = event.client_id

    @on(ConnectionsTable.KickRequested)
    def _kick_requested(self, event: ConnectionsTable.KickRequested) -> None:
        self._command(Kick(event.client_id))

    @on(Button.Pressed, "#kick-all")
    def _kick_all_pressed(self) -> None:
        self.action_kick_all()

    @on(SendBox.Submitted)
    def _send(self, event: SendBox.Submitted) -> None:
        target = self._table.cursor_client
        if event.to_all:
            self._command(Broadcast(event.data))
        elif target is not None:
            self._command(SendTo(target, event.data))

    # ---- actions ---------------------------------------------------------

    def _selected_live_client(self) -> int | None:
        table = self._table
        row = None if table.cursor_client is None else table.row_of(table.cursor_client)
        return None if row is None or row.gone else row.client_id

    def action_kick(self) -> None:
        client_id = self._selected_live_client()
        if client_id is None:
            self.notify("No connected client is selected.", severity="warning")
        else:
            self._command(Kick(client_id))

    def action_kick_all(self) -> None:
        self._command(KickAll())

    def action_filter(self) -> None:
        feed = self._feed
        if feed.only_client is not None:
            feed.only_client = None
            return
        client_id = self._table.cursor_client
        if client_id is None:
            self.notify("Select a client in the table to filter the feed to it.", severity="warning")
        else:
            feed.only_client = client_id

    def action_hex(self) -> None:
        feed = self._feed
        feed.hex_view = not feed.hex_view

    def action_pause(self) -> None:
        feed = self._feed
        feed.paused = not feed.paused

    def action_clear(self) -> None:
        self._feed.clear()

    def action_focus_send(self) -> None:
        self._send_box.focus_input()

    async def action_quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.notify("Closing every client…", timeout=2)
        await self.engine.stop()
        self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:  # type: ignore[type-arg]
        yield from super().get_system_commands(screen)
        yield SystemCommand("Kick selected client", "Disconnect the client under the cursor (k)", self.action_kick)
        yield SystemCommand("Kick all clients", "Disconnect every client (K)", self.action_kick_all)
        yield SystemCommand(
            "Filter feed to selected client", "Show one client's lines, or all again (f)", self.action_filter
        )
        yield SystemCommand("Hex view", "Show data as a hex and ASCII dump, or as text again (x)", self.action_hex)
        yield SystemCommand("Pause feed", "Stop or resume scrolling the feed (p)", self.action_pause)
        yield SystemCommand("Clear feed", "Remove every line from the feed (c)", self.action_clear)
        yield SystemCommand("Send text", "Go to the send box (s)", self.action_focus_send)
        yield SystemCommand("Sort connections", "Sort the table by the next column (o)", self._sort_next)

    def _sort_next(self) -> None:
        self._table.action_sort_next()
