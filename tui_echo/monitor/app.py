"""The monitor app: the server's live view, and the operator's controls over it.

The app reads a ``ServerSource`` (see ``tui_echo.monitor.source``); the real one
runs the server in the app's own event loop (``tui_echo.monitor.guest``). The
app never waits on it: a timer drains its events in batches for the feed and
reads its exact counts for the table and the stats, so the cost of the screen
stays fixed whatever the load.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from textual import on, work
from textual.actions import parse
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Label

from tui_echo.monitor import signals
from tui_echo.monitor.models.feed import FeedEntry, FeedIntake
from tui_echo.monitor.models.feed_export import ExportFormat, write_export
from tui_echo.monitor.models.stats import StatsModel
from tui_echo.monitor.models.table import RateWindow, TableModel
from tui_echo.monitor.screens.bans import BansScreen
from tui_echo.monitor.screens.client_detail import ClientScreen
from tui_echo.monitor.screens.confirm import ConfirmScreen
from tui_echo.monitor.screens.help import HelpScreen
from tui_echo.monitor.screens.rules import RulesScreen
from tui_echo.monitor.source import ServerSource
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.monitor.widgets.stats_bar import StatsBar
from tui_echo.server.access import is_loopback
from tui_echo.server.commands import Ban, Broadcast, Kick, KickAll, SendTo, ServerCommand, Unban
from tui_echo.server.config import DEFAULT_FEED_LINES, Mode
from tui_echo.server.events import ClientConnected, ClientDisconnected, ServerListening, describe_error
from tui_echo.text import plural

TICK_SECONDS = 0.2  # events are drained and the feed grows this often
REFRESH_SECONDS = 0.4  # the table and the stats are read this often
EVENTS_PER_TICK = 5000  # beyond this, events wait for the next tick (the server skips data events meanwhile)
DATA_LINES_PER_TICK = 80  # data lines added to the feed per tick at most (see tui_echo.monitor.models.feed)
EVERY_SCREEN_ACTIONS = {"quit", "help", "save"}  # the app's other keys act on the main screen, and only there
SAVE_HELP = "Save the feed (on a client's screen: its history) as {} to a new file in the current directory"
HELP_HELP = "This help: every key, and what the feed's marks mean"


class MonitorApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tui-echo"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-wide")]  # the screen's class, for app.tcss
    # The footer shows these in this order and cuts what does not fit: kicking and quitting come first.
    BINDINGS = [
        Binding("k", "kick", "Kick"),
        Binding("K", "kick_all", "Kick all"),
        Binding("q", "quit", "Stop & quit"),  # attached (tui-echo attach), q detaches instead
        Binding("b", "ban", "Ban"),
        Binding("s", "focus_send", "Send"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip=HELP_HELP),
        Binding("f", "filter", "Filter"),
        Binding("x", "hex", "Hex"),
        Binding("p", "pause", "Pause"),
        Binding("c", "clear", "Clear", show=False),  # in the palette and the README; the footer has no room
        Binding("B", "bans", "Bans", show=False),  # the table's title says "N banned (B)" while there are bans
        Binding("R", "rules", "Rules", show=False, tooltip="The reply rules: each one's hits and last match"),
        Binding("w", "save('text')", "Save", show=False, tooltip=SAVE_HELP.format("text")),
        Binding("W", "save('jsonl')", "Save JSON", show=False, tooltip=SAVE_HELP.format("JSON Lines")),
        Binding("f1", "help", "Help", show=False, tooltip=HELP_HELP),
        Binding("ctrl+q", "quit", "Stop & quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Stop & quit", show=False, priority=True),
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
        self._feed_lines = feed_lines
        self.save_dir: Path | None = None  # where saved feeds go; None: the current directory at the time
        # The app's own keys act on the main screen's widgets: on another screen they are off.
        own_actions = {parse(binding.action)[1] for binding in self.BINDINGS if isinstance(binding, Binding)}
        self._main_screen_actions = own_actions - EVERY_SCREEN_ACTIONS
        self._handle_signals = handle_signals
        self._table_model = TableModel()
        self._stats = StatsModel(server.addresses, clock(), server.mode)
        self._rate_window = RateWindow(clock())
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
            self._remove_signal_handlers = signals.install(
                self.action_quit, self._hang_up, self.call_later, quit_deadline=self._quit_deadline()
            )
        self.server.start(self._server_stopped)
        self._origin.update(self.server.origin)
        self._show_mode()
        self.set_interval(TICK_SECONDS, self._tick)
        self._tick()
        self._table.focus()

    def _quit_deadline(self) -> float | None:
        """After SIGINT or SIGTERM, leave anyway this many seconds later (None: wait for the clean stop)."""
        return None

    def _show_mode(self) -> None:
        """What the mode changes on screen: the dropped column (chat, broker) and how the send box speaks (chat)."""
        mode = self.server.mode
        self._table.show_dropped = mode.relays
        self._send_box.chat = mode is Mode.CHAT

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
        entries = self._intake.entries(events, now)
        self._feed.add(entries)
        for screen in self._client_screens():
            screen.add(entries)
        lifecycle = False
        for event in events:
            if isinstance(event, ClientConnected):
                lifecycle = True
            elif isinstance(event, ServerListening) and event.config.tls is not None:
                self._stats.tls_fingerprint = event.config.tls.fingerprint
                self._table.show_tls = True
            elif isinstance(event, ClientDisconnected):
                lifecycle = True
                self._table_model.client_left(event, now)
        if lifecycle or now >= self._next_refresh:
            self._refresh_numbers(now)

    def _refresh_numbers(self, now: float) -> None:
        self._next_refresh = now + REFRESH_SECONDS
        window = self._rate_window.close(now)  # one window for the table and the stats: their msg/s agree
        self._table.update_rows(self._table_model.rows(self.server.clients(), now, window), now)
        stats = self._stats.stats(self.server.totals(), now, self._intake.skipped, window)
        self._stats_bar.show(stats)
        self._table_title.update(f"Connections · {stats.clients_now} now{self._bans_note(now)}")
        for screen in self._client_screens():
            screen.show(self._table.row_of(screen.client_id), now)

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

    # ---- bans (b, B) ------------------------------------------------------

    def action_ban(self) -> None:
        """Ban the selected client's address; loopback, which most local clients share, asks first."""
        client_id = self._table.cursor_client
        state = next((c for c in self.server.clients() if c.client_id == client_id), None)
        if state is None:
            self.notify("No connected client is selected.", severity="warning")
            return
        host = state.peer[0]
        if not is_loopback(host):
            self._command(Ban(state.client_id))
            return
        sharing = sum(1 for c in self.server.clients() if c.peer[0] == host)
        question = (
            f"{host} is a loopback address: most local clients share it. Banning it closes "
            f"{sharing} client{'s' if sharing != 1 else ''} from it now and refuses new ones until the ban ends "
            "or you lift it (B)."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._command(Ban(state.client_id))

        self.push_screen(ConfirmScreen(question, yes=f"Ban {host}"), answered)

    def _bans_note(self, now: float) -> str:
        banned = sum(1 for ban in self.server.bans() if ban.until > now)
        return f" · {banned} banned (B lists them)" if banned else ""

    def action_bans(self) -> None:
        self.push_screen(BansScreen(self.server.bans, self._clock))

    @on(BansScreen.LiftRequested)
    def _lift_ban(self, event: BansScreen.LiftRequested) -> None:
        self._command(Unban(event.address))

    def action_rules(self) -> None:
        self.push_screen(RulesScreen(self.server.rules, self._clock))

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

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        # Textual's default, ~/Downloads, is missing on most servers: save where the user started
        # tui-echo, or where TEXTUAL_SCREENSHOT_LOCATION says. The notification names the file in full.
        folder = path or os.path.abspath(os.path.expanduser(os.environ.get("TEXTUAL_SCREENSHOT_LOCATION") or "."))
        return super().deliver_screenshot(filename, folder, time_format)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:  # type: ignore[type-arg]
        yield from super().get_system_commands(screen)
        yield from self._screen_commands(screen)
        if screen is not self.screen_stack[0]:
            return  # the rest act on the main screen's widgets
        yield SystemCommand("Kick selected client", "Disconnect the client under the cursor (k)", self.action_kick)
        yield SystemCommand("Kick all clients", "Disconnect every client (K)", self.action_kick_all)
        yield SystemCommand(
            "Ban selected client's address", "Kick it and refuse its address a while (b)", self.action_ban
        )
        yield SystemCommand("Banned addresses", "List the bans and lift one (B)", self.action_bans)
        yield SystemCommand("Reply rules", "Each rule's hits and last match (R)", self.action_rules)
        yield SystemCommand(
            "Filter feed to selected client", "Show one client's lines, or all again (f)", self.action_filter
        )
        yield SystemCommand("Hex view", "Show data as a hex and ASCII dump, or as text again (x)", self.action_hex)
        yield SystemCommand("Pause feed", "Stop or resume scrolling the feed (p)", self.action_pause)
        yield SystemCommand("Clear feed", "Remove every line from the feed (c)", self.action_clear)
        yield SystemCommand("Send text", "Go to the send box (s)", self.action_focus_send)
        yield SystemCommand("Sort connections", "Sort the table by the next column (o)", self._table.action_sort_next)
        yield SystemCommand("Reverse sort", "Reverse the table's order (O)", self._table.action_sort_reverse)
        if self._stats.tls_fingerprint is not None:
            yield SystemCommand(
                "TLS certificate fingerprint", "Show the whole SHA-256 fingerprint", self.action_tls_fingerprint
            )

    def action_tls_fingerprint(self) -> None:
        fingerprint = self._stats.tls_fingerprint
        if fingerprint is None:
            self.notify("This server does not serve TLS.", severity="warning")
        else:
            self.notify(fingerprint, title="TLS certificate SHA-256", timeout=30)

    # ---- a client's own screen, saving, help --------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        stack = self.screen_stack
        if not stack or stack[-1] is stack[0] or action in EVERY_SCREEN_ACTIONS:
            return True
        return action not in self._main_screen_actions

    def _client_screens(self) -> Iterator[ClientScreen]:
        return (screen for screen in self.screen_stack if isinstance(screen, ClientScreen))

    @on(ConnectionsTable.DetailsRequested)
    def _open_client(self, event: ConnectionsTable.DetailsRequested) -> None:
        row = self._table.row_of(event.client_id)
        if row is None:
            return
        history = [entry for entry in self._feed.entries if entry.client_id == event.client_id]
        chat = self.server.mode is Mode.CHAT
        self.push_screen(ClientScreen(row, history, self._feed_lines, self._clock(), chat=chat))

    @on(ClientScreen.SendRequested)
    def _send_to_one(self, event: ClientScreen.SendRequested) -> None:
        self._command(SendTo(event.client_id, event.data))

    @on(ClientScreen.KickRequested)
    def _kick_one(self, event: ClientScreen.KickRequested) -> None:
        self._command(Kick(event.client_id))

    def action_save(self, kind: str) -> None:
        """Save the feed, or the client's history on a client's screen, to a new file."""
        self._save_from(self.screen, ExportFormat(kind))

    def _save_from(self, screen: Screen, kind: ExportFormat) -> None:  # type: ignore[type-arg]
        entries: tuple[FeedEntry, ...]
        if isinstance(screen, ClientScreen):
            entries, subject, what = screen.history, f"client{screen.client_id}", f"#{screen.client_id}'s history"
        else:
            entries, subject, what = self._feed.entries, "feed", "The feed"
        self._write_file(entries, kind, subject, what, self._clock())

    @work(thread=True, exit_on_error=False)
    def _write_file(
        self, entries: tuple[FeedEntry, ...], kind: ExportFormat, subject: str, what: str, at: float
    ) -> None:
        # In a thread: 100000 lines take seconds to format as JSON, and the server shares the event loop.
        try:
            directory = self.save_dir or Path.cwd()  # the current directory may have been removed
            path = write_export(entries, kind, directory, subject, at)
        except OSError as error:  # a read-only directory, a full disk: the feed stays as it was
            where = f"{error.filename}: " if error.filename else ""
            message = f"{where}{describe_error(error)}"
            self.call_from_thread(self.notify, message, title="Not saved", severity="error", timeout=10)
            return
        message = f"{what} ({plural(len(entries), 'line')}, {kind.label}) is in {path}"
        self.call_from_thread(self.notify, message, title="Saved", timeout=10)

    def action_help(self) -> None:
        self._help_over(self.screen)

    def _help_over(self, screen: Screen) -> None:  # type: ignore[type-arg]
        self.push_screen(HelpScreen(screen))

    def _screen_commands(self, screen: Screen) -> Iterator[SystemCommand]:  # type: ignore[type-arg]
        """Palette commands for whichever screen the palette was opened over."""
        if not isinstance(screen, ClientScreen) and screen is not self.screen_stack[0]:
            return  # the help screen has nothing to act on
        for kind in ExportFormat:
            key = "w" if kind is ExportFormat.TEXT else "W"
            if isinstance(screen, ClientScreen):
                title, lines = f"Save #{screen.client_id}'s history as {kind.label}", "its kept lines"
            else:
                title, lines = f"Save feed as {kind.label}", "every kept line"
            yield SystemCommand(
                title,
                f"Write {lines} to a new file in the current directory ({key})",
                partial(self._save_from, screen, kind),
            )
        if isinstance(screen, ClientScreen):
            yield SystemCommand(f"Kick #{screen.client_id}", "Disconnect this client (k)", screen.action_kick)
            yield SystemCommand("Hex view", "Show its data as a hex and ASCII dump, or as text (x)", screen.action_hex)
            yield SystemCommand(
                "Send text", f"Go to the send box, to #{screen.client_id} alone (s)", screen.action_focus_send
            )
            yield SystemCommand("Back", "Back to the main screen (Esc)", screen.action_back)
        else:
            yield SystemCommand("Client details", "The selected client's own screen (Enter)", self._open_selected)
        yield SystemCommand(
            "Keys and marks",
            "Every key here, and what the feed's marks mean (? or F1)",
            partial(self._help_over, screen),
        )

    def _open_selected(self) -> None:
        if not self._table.request_details():
            self.notify("Select a client in the table first.", severity="warning")
