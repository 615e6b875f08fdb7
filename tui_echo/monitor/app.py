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
    DataEchoed,
    DataSent,
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)
from tui_echo.listeners import describe_addresses, format_address
from tui_echo.monitor.connections import ConnectionsTable
from tui_echo.monitor.feed import Direction, Feed, FeedEntry
from tui_echo.monitor.sendbox import SendBox
from tui_echo.monitor.stats import StatsBar
from tui_echo.tracker import ConnectionTracker, StatsTracker
from tui_echo.units import format_duration, format_size, plural

TICK_SECONDS = 0.2  # events are drained and the feed grows this often
REFRESH_SECONDS = 0.4  # the table and the stats are read this often
EVENTS_PER_TICK = 5000  # beyond this, events wait for the next tick (the server skips data events meanwhile)
DATA_LINES_PER_TICK = 80  # data lines added to the feed per tick; the rest are counted as skipped
LINES_PER_CLIENT_SECOND = 10  # so that one busy client cannot drown the others' lines...
LINES_PER_CLIENT_BURST = 10  # ...while a short burst (a paste) still shows whole
BUSY_NOTES_PER_SECOND = 5  # "lines not shown" notes per second, for the busiest clients
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
        self._feed_lines = feed_lines
        self._clock = clock
        self._handle_signals = handle_signals
        self._connections = ConnectionTracker()
        self._stats = StatsTracker(engine.addresses, clock())
        self._clients_now = 0  # from connect and disconnect events: it sees every client, even brief ones
        self._feed_skipped = 0
        self._allowance: dict[int, tuple[float, float]] = {}  # client id -> (lines it may show, as of when)
        self._unshown_this_second: dict[int, int] = {}  # client id -> data lines not shown in this second
        self._second_ends = 0.0
        self._next_refresh = 0.0
        self._quitting = False
        self._signals: list[signal.Signals] = []

    def compose(self) -> ComposeResult:
        yield StatsBar(id="stats")
        with Horizontal(id="table-bar"):
            yield Label("Connections", id="table-title")
            kick_all = Button("✕ Kick all", id="kick-all", variant="error", compact=True)
            kick_all.can_focus = False  # Enter on a focused "Kick all" is too easy a mistake; K and the mouse reach it
            yield kick_all
        yield ConnectionsTable(id="connections")
        yield Feed(self._feed_lines, id="feed")
        yield SendBox(id="send")
        yield Footer()

    def on_mount(self) -> None:
        if self._handle_signals:
            self._install_signal_handlers()
        self.engine.start(self._engine_stopped)
        self.set_interval(TICK_SECONDS, self._tick)
        self._tick()
        self.query_one(ConnectionsTable).focus()

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
        message = "the server stopped" if error is None else f"the server stopped: {error!r}"
        self.exit(return_code=1, message=f"tui-echo: error: {message}")

    # ---- the tick --------------------------------------------------------

    def _tick(self) -> None:
        now = self._clock()
        events = self.engine.take_events(EVENTS_PER_TICK)
        entries, lifecycle = self._feed_entries(events, now)
        self.query_one(Feed).add(entries)
        if lifecycle or now >= self._next_refresh:
            self._refresh_numbers(now)

    def _busy_notes(self, now: float) -> list[FeedEntry]:
        """Once a second: which clients had lines left out of the feed, busiest first."""
        if now < self._second_ends:
            return []
        busiest = sorted(self._unshown_this_second.items(), key=lambda item: -item[1])
        notes = [
            FeedEntry.system(now, client_id, f"busy: {plural(count, 'line')} not shown in the last second")
            for client_id, count in busiest[:BUSY_NOTES_PER_SECOND]
        ]
        self._unshown_this_second.clear()
        self._second_ends = now + 1.0
        return notes

    def _take_line(self, client_id: int, now: float) -> bool:
        """Whether the client may add one more data line now (a token bucket per client)."""
        lines, since = self._allowance.get(client_id, (LINES_PER_CLIENT_BURST, now))
        lines = min(LINES_PER_CLIENT_BURST, lines + (now - since) * LINES_PER_CLIENT_SECOND)
        if lines < 1:
            self._allowance[client_id] = (lines, now)
            return False
        self._allowance[client_id] = (lines - 1, now)
        return True

    def _feed_entries(self, events: Iterable[ServerEvent], now: float) -> tuple[list[FeedEntry], bool]:
        entries: list[FeedEntry] = []
        data_lines = 0
        lifecycle = False
        for event in events:
            match event:
                case DataEchoed(client_id, data, at) | DataSent(client_id, data, at):
                    if data_lines < DATA_LINES_PER_TICK and self._take_line(client_id, now):
                        direction = Direction.ECHOED if isinstance(event, DataEchoed) else Direction.SENT
                        entries.append(FeedEntry.of_bytes(at, client_id, direction, data))
                        data_lines += 1
                    else:
                        self._feed_skipped += 1
                        self._unshown_this_second[client_id] = self._unshown_this_second.get(client_id, 0) + 1
                case ClientConnected(client_id, peer, at):
                    lifecycle = True
                    self._clients_now += 1
                    self._stats.saw_clients(self._clients_now)
                    entries.append(FeedEntry.system(at, client_id, f"connected from {format_address(peer)}"))
                case ClientDisconnected() if event.reason.startswith("refused"):
                    lifecycle = True
                    entries.append(FeedEntry.system(event.at, None, f"{event.reason}: {format_address(event.peer)}"))
                case ClientDisconnected():
                    lifecycle = True
                    self._clients_now -= 1
                    self._allowance.pop(event.client_id, None)
                    self._connections.client_left(event, now)
                    entries.append(FeedEntry.system(event.at, event.client_id, _goodbye(event)))
                case ServerNotice(message, at):
                    entries.append(FeedEntry.system(at, None, message))
                case ServerListening(addresses, at):
                    entries.append(FeedEntry.system(at, None, f"listening on {describe_addresses(addresses)}"))
                case ServerStopped(at=at):
                    entries.append(FeedEntry.system(at, None, "server stopped"))
        entries += self._busy_notes(now)
        return entries, lifecycle

    def _refresh_numbers(self, now: float) -> None:
        self._next_refresh = now + REFRESH_SECONDS
        table = self.query_one(ConnectionsTable)
        table.update_rows(self._connections.rows(self.engine.clients(), now), now)
        stats = self._stats.stats(self.engine.totals(), now, self._feed_skipped)
        self.query_one(StatsBar).show(stats)
        self.query_one("#table-title", Label).update(
            f"Connections · {stats.clients_now} now · sorted by {table.sort_key}"
        )

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
        self.query_one(SendBox).target = event.client_id

    @on(ConnectionsTable.KickRequested)
    def _kick_requested(self, event: ConnectionsTable.KickRequested) -> None:
        self._command(Kick(event.client_id))

    @on(Button.Pressed, "#kick-all")
    def _kick_all_pressed(self) -> None:
        self.action_kick_all()

    @on(SendBox.Submitted)
    def _send(self, event: SendBox.Submitted) -> None:
        target = self.query_one(ConnectionsTable).cursor_client
        if event.to_all:
            self._command(Broadcast(event.data))
        elif target is not None:
            self._command(SendTo(target, event.data))

    # ---- actions ---------------------------------------------------------

    def _selected_live_client(self) -> int | None:
        table = self.query_one(ConnectionsTable)
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
        feed = self.query_one(Feed)
        if feed.only_client is not None:
            feed.only_client = None
            return
        client_id = self.query_one(ConnectionsTable).cursor_client
        if client_id is None:
            self.notify("Select a client in the table to filter the feed to it.", severity="warning")
        else:
            feed.only_client = client_id

    def action_hex(self) -> None:
        feed = self.query_one(Feed)
        feed.hex_view = not feed.hex_view

    def action_pause(self) -> None:
        feed = self.query_one(Feed)
        feed.paused = not feed.paused

    def action_clear(self) -> None:
        self.query_one(Feed).clear()

    def action_focus_send(self) -> None:
        self.query_one(SendBox).focus_input()

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
        self.query_one(ConnectionsTable).action_sort_next()


def _goodbye(event: ClientDisconnected) -> str:
    return (
        f"disconnected: {event.reason} · {plural(event.messages_in, 'msg')}, {format_size(event.bytes_in)} in, "
        f"after {format_duration(event.at - event.connected_at)}"
    )
