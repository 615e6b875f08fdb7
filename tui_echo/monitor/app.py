"""The monitor app: the server's live view, and the operator's controls over it.

The app reads a ``ServerSource`` (see ``tui_echo.monitor.source``); the real one
runs the server in the app's own event loop (``tui_echo.monitor.guest``). The
app never waits on it: a timer drains its events in batches for the feed and
reads its exact counts for the table and the stats, so the cost of the screen
stays fixed whatever the load.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Label

from tui_echo.monitor import signals
from tui_echo.monitor.models.feed import FeedIntake
from tui_echo.monitor.models.stats import StatsModel
from tui_echo.monitor.models.table import TableModel
from tui_echo.monitor.source import ServerSource
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.monitor.widgets.stats_bar import StatsBar
from tui_echo.server.commands import Broadcast, Kick, KickAll, SendTo, ServerCommand
from tui_echo.server.config import DEFAULT_FEED_LINES
from tui_echo.server.events import ClientConnected, ClientDisconnected

TICK_SECONDS = 0.2  # events are drained and the feed grows this often
REFRESH_SECONDS = 0.4  # the table and the stats are read this often
EVENTS_PER_TICK = 5000  # beyond this, events wait for the next tick (the server skips data events meanwhile)
DATA_LINES_PER_TICK = 80  # data lines added to the feed per tick at most (see tui_echo.monitor.models.feed)


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
        Binding("q", "quit", "Stop & quit"),  # attached (tui-echo attach), q detaches instead
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        server: ServerSource,
        *,
        feed_lines: int = DEFAULT_FEED_LINES,
        clock: Callable[[], float] = time.time,
        handle_signals: bool = True,
    ) -> None:
        super().__init__()
        self.server = server
        self._clock = clock
        self._handle_signals = handle_signals
        self._table_model = TableModel()
        self._stats = StatsModel(server.addresses, clock())
        self._intake = FeedIntake(DATA_LINES_PER_TICK)
        self._next_refresh = 0.0
        self._quitting = False
        self._remove_signal_handlers: Callable[[], None] | None = None
        # Held, not queried: the timer may still fire while the screen is being taken down.
        self._stats_bar = StatsBar(id="stats")
        self._table_title = Label("Connections", id="table-title")
        self._origin = Label("", id="origin")  # the control socket, or the server this console is attached to
        self._table = ConnectionsTable(id="connections")
        self._feed = Feed(feed_lines, id="feed")
        self._send_box = SendBox(id="send")

    def compose(self) -> ComposeResult:
        yield self._stats_bar
        with Horizontal(id="table-bar"):
            yield self._table_title
            yield self._origin
            kick_all = Button("✕ Kick all", id="kick-all", variant="error", compact=True)
            kick_all.can_focus = False  # Enter on a focused "Kick all" is too easy a mistake; K and the mouse reach it
            yield kick_all
        yield self._table
        yield self._feed
        yield self._send_box
        yield Footer()

    def on_mount(self) -> None:
        if self._handle_signals:
            self._remove_signal_handlers = signals.install(self.action_quit, self._hang_up, self.call_later)
        self.server.start(self._server_stopped)
        self._origin.update(self.server.origin)
        self.set_interval(TICK_SECONDS, self._tick)
        self._tick()
        self._table.focus()

    async def on_unmount(self) -> None:
        self._quitting = True
        await self.server.stop()  # closes every client, whichever way the app ends
        if self._remove_signal_handlers is not None:
            self._remove_signal_handlers()

    async def _hang_up(self) -> None:
        self._quitting = True
        await signals.leave_after_hang_up(self.server.stop)

    def _server_stopped(self, error: BaseException | None) -> None:
        if self._quitting:
            return
        # Not a user error: a bug. Keep the traceback for the report.
        detail = "" if error is None else ":\n" + "".join(traceback.format_exception(error))
        self.exit(return_code=1, message=f"tui-echo: error: the server stopped unexpectedly{detail}")

    # ---- the tick --------------------------------------------------------

    def _tick(self) -> None:
        now = self._clock()
        events = self.server.take_events(EVENTS_PER_TICK)
        self._feed.add(self._intake.entries(events, now))
        lifecycle = False
        for event in events:
            if isinstance(event, ClientConnected):
                lifecycle = True
            elif isinstance(event, ClientDisconnected):
                lifecycle = True
                self._table_model.client_left(event, now)
        if lifecycle or now >= self._next_refresh:
            self._refresh_numbers(now)

    def _refresh_numbers(self, now: float) -> None:
        self._next_refresh = now + REFRESH_SECONDS
        self._table.update_rows(self._table_model.rows(self.server.clients(), now), now)
        stats = self._stats.stats(self.server.totals(), now, self._intake.skipped)
        self._stats_bar.show(stats)
        self._table_title.update(f"Connections · {stats.clients_now} now")

    def _soon(self) -> None:
        """Show a command's effect without waiting for the next tick."""
        self._next_refresh = 0.0
        self.set_timer(0.02, self._tick)

    def _command(self, command: ServerCommand) -> None:
        if self.server.send(command):
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

    def action_kick(self) -> None:
        if not self._table.request_kick():
            self.notify("No connected client is selected.", severity="warning")

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
        await self.server.stop()
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
