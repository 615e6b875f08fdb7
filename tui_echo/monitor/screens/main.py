"""The main screen: the stats, the connections table, the feed and the send box, and the operator's keys.

It reads a ``ServerSource`` (see ``tui_echo.monitor.source``) and never waits
on it: a timer drains its events in batches for the feed and reads its exact
counts for the table and the stats, so the cost of the screen stays fixed
whatever the load. A client's own screen, opened from here, gets its lines
from the same batches. The app owns the server's lifetime; this screen
only reads it and sends it commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Label

from tui_echo.monitor.models.feed import FeedIntake
from tui_echo.monitor.models.feed_export import ExportFormat
from tui_echo.monitor.models.history import ClientHistories
from tui_echo.monitor.models.stats import StatsModel
from tui_echo.monitor.models.table import RateWindow, TableModel
from tui_echo.monitor.models.table_view import TableView
from tui_echo.monitor.screens.bans import BansScreen
from tui_echo.monitor.screens.client_detail import ClientScreen
from tui_echo.monitor.screens.confirm import ConfirmScreen
from tui_echo.monitor.screens.faults import FaultChoice, FaultsScreen
from tui_echo.monitor.screens.rules import RulesScreen
from tui_echo.monitor.screens.saving import SAVE_HELP, SaveRequested, save_commands
from tui_echo.monitor.source import ServerSource
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.monitor.widgets.stats_bar import StatsBar
from tui_echo.server.access import is_loopback
from tui_echo.server.commands import Ban, Broadcast, Kick, KickAll, SendTo, ServerCommand, SetFaults
from tui_echo.server.config import Mode
from tui_echo.server.events import ClientConnected, ClientDisconnected, ServerListening

TICK_SECONDS = 0.2  # events are drained and the feed grows this often
REFRESH_SECONDS = 0.4  # the table and the stats are read this often
EVENTS_PER_TICK = 5000  # beyond this, events wait for the next tick (the server skips data events meanwhile)
DATA_LINES_PER_TICK = 80  # data lines added to the feed per tick at most (see tui_echo.monitor.models.feed)
HELP_HELP = "This help: every key, and what the feed's marks mean"


class MainScreen(Screen[None]):
    # The footer shows these in this order, then the app's, and cuts what does not fit: kicking and
    # quitting come first. ``q`` and ``?`` are the app's (they work on every screen); they are here
    # for their place in the footer.
    BINDINGS = [
        Binding("k", "kick", "Kick"),
        Binding("K", "kick_all", "Kick all"),
        Binding("q", "app.quit", "Stop & quit"),
        Binding("b", "ban", "Ban"),
        Binding("s", "focus_send", "Send"),
        Binding("question_mark", "app.help", "Help", key_display="?", tooltip=HELP_HELP),
        Binding("f", "filter", "Filter"),
        Binding("x", "hex", "Hex"),
        Binding("p", "pause", "Pause"),
        Binding("c", "clear", "Clear", show=False),  # in the palette and the README; the footer has no room
        Binding("F", "faults", "Faults", show=False, tooltip="Give the selected client faults, or clear them"),
        Binding("B", "bans", "Bans", show=False),  # the table's title says "N banned (B)" while there are bans
        Binding("R", "rules", "Rules", show=False, tooltip="The reply rules: each one's hits and last match"),
        Binding("w", "save('text')", "Save", show=False, tooltip=SAVE_HELP.format("text")),
        Binding("W", "save('jsonl')", "Save JSON", show=False, tooltip=SAVE_HELP.format("JSON Lines")),
    ]

    def __init__(self, server: ServerSource, *, feed_lines: int, clock: Callable[[], float], started_at: float) -> None:
        """``started_at``: when the server started (the stats' uptime counts from it)."""
        super().__init__()
        self._server = server
        self._clock = clock
        self._feed_lines = feed_lines
        self._table_model = TableModel()
        self._stats = StatsModel(server.addresses, started_at, server.mode)
        self._rate_window = RateWindow(clock())
        self._intake = FeedIntake(DATA_LINES_PER_TICK)
        self._histories = ClientHistories()  # each client's last lines, whatever floods the feed
        self._next_refresh = 0.0
        # Held, not queried: the timer may still fire while the screen is being taken down.
        self._stats_bar = StatsBar(id="stats")
        self._table_title = Label("Connections", id="table-title")
        self._origin = Label("", id="origin")  # the control socket, or the server this console is attached to
        self._table = ConnectionsTable(TableView(self._table_model), id="connections")
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
        self._show_server()
        self.set_interval(TICK_SECONDS, self.tick)
        self.tick()
        self._table.focus()

    def _show_server(self) -> None:
        """What the server changes on screen: where it is, the dropped column (chat, broker) and how the
        send box speaks (chat)."""
        self._origin.update(self._server.origin)
        mode = self._server.mode
        self._table.show_dropped = mode.relays
        self._send_box.chat = mode is Mode.CHAT

    # ---- what the app tells it ----------------------------------------------

    def server_gone(self, what: str) -> None:
        """The server "stopped" or "went away": its last events, and figures that say so and stop counting."""
        self.tick()
        self._stats.server_gone(what, self._clock())
        self._refresh_numbers(self._clock())

    def server_back(self, started_at: float) -> None:
        """Attached again, perhaps to another run of the server: fresh figures, from ``started_at``."""
        self._stats = StatsModel(self._server.addresses, started_at, self._server.mode)
        self._table_model = TableModel()
        self._table.view = TableView(self._table_model)
        self._show_server()
        self._soon()

    def command(self, command: ServerCommand) -> None:
        """Send the server a command; its effect shows without waiting for the next refresh."""
        if self._server.send(command):
            self._soon()
        else:
            self.notify("The server is busy: try again.", title="Not done", severity="warning")

    # ---- the tick --------------------------------------------------------

    def tick(self) -> None:
        now = self._clock()
        events = self._server.take_events(EVENTS_PER_TICK)
        entries = self._intake.entries(events, now)
        self._feed.add(entries)
        self._histories.add(entries)
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
                self._histories.left(event.client_id)
        if lifecycle or now >= self._next_refresh:
            self._refresh_numbers(now)

    def _refresh_numbers(self, now: float) -> None:
        self._next_refresh = now + REFRESH_SECONDS
        window = self._rate_window.close(now)  # one window for the table and the stats: their msg/s agree
        self._table.update_rows(self._table_model.refresh(self._server.clients(), now, window), now)
        stats = self._stats.stats(self._server.totals(), now, self._intake.skipped, window)
        self._stats_bar.show(stats)
        self._table_title.update(f"Connections · {stats.clients_now} now{self._bans_note(now)}")
        for screen in self._client_screens():
            screen.show(self._table.row_of(screen.client_id), now)

    def _soon(self) -> None:
        """Show a command's effect without waiting for the next tick."""
        self._next_refresh = 0.0
        self.set_timer(0.02, self.tick)

    def _client_screens(self) -> Iterator[ClientScreen]:
        return (screen for screen in self.app.screen_stack if isinstance(screen, ClientScreen))

    # ---- what the widgets report ----------------------------------------

    @on(ConnectionsTable.Highlighted)
    def _client_highlighted(self, event: ConnectionsTable.Highlighted) -> None:
        self._send_box.target = event.client_id

    @on(ConnectionsTable.KickRequested)
    def _kick_requested(self, event: ConnectionsTable.KickRequested) -> None:
        self.command(Kick(event.client_id))

    @on(Button.Pressed, "#kick-all")
    def _kick_all_pressed(self) -> None:
        self.action_kick_all()

    @on(SendBox.Submitted)
    def _send(self, event: SendBox.Submitted) -> None:
        target = self._table.cursor_client
        if event.to_all:
            self.command(Broadcast(event.data))
        elif target is not None:
            self.command(SendTo(target, event.data))

    @on(ConnectionsTable.DetailsRequested)
    def _open_client(self, event: ConnectionsTable.DetailsRequested) -> None:
        row = self._table.row_of(event.client_id)
        if row is None:
            return
        history = self._histories.of(event.client_id, row.connected_at, self._feed.entries)
        chat = self._server.mode is Mode.CHAT
        self.app.push_screen(ClientScreen(row, history, self._feed_lines, self._clock(), chat=chat))

    # ---- actions ---------------------------------------------------------

    def action_kick(self) -> None:
        if not self._table.request_kick():
            self.notify("No connected client is selected.", severity="warning")

    def action_kick_all(self) -> None:
        self.command(KickAll())

    def action_ban(self) -> None:
        """Ban the selected client's address; loopback, which most local clients share, asks first."""
        client_id = self._table.cursor_client
        state = next((c for c in self._server.clients() if c.client_id == client_id), None)
        if state is None:
            self.notify("No connected client is selected.", severity="warning")
            return
        host = state.peer[0]
        if not is_loopback(host):
            self.command(Ban(state.client_id))
            return
        sharing = sum(1 for c in self._server.clients() if c.peer[0] == host)
        question = (
            f"{host} is a loopback address: most local clients share it. Banning it closes "
            f"{sharing} client{'s' if sharing != 1 else ''} from it now and refuses new ones until the ban ends "
            "or you lift it (B)."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.command(Ban(state.client_id))

        self.app.push_screen(ConfirmScreen(question, yes=f"Ban {host}"), answered)

    def action_faults(self) -> None:
        """The fault form for the selected client: set, change or clear its faults."""
        client_id = self._table.cursor_client
        state = next((c for c in self._server.clients() if c.client_id == client_id), None)
        if state is None:
            self.notify("No connected client is selected.", severity="warning")
            return

        def chosen(choice: FaultChoice | None) -> None:
            if choice is not None:
                self.command(SetFaults(state.client_id, choice.faults))

        self.app.push_screen(FaultsScreen(state.client_id, state.fault), chosen)

    def _bans_note(self, now: float) -> str:
        banned = sum(1 for ban in self._server.bans() if ban.until > now)
        return f" · {banned} banned (B lists them)" if banned else ""

    def action_bans(self) -> None:
        self.app.push_screen(BansScreen(self._server.bans, self._clock))

    def action_rules(self) -> None:
        self.app.push_screen(RulesScreen(self._server.rules, self._clock))

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
        self._feed.hex_view = not self._feed.hex_view

    def action_pause(self) -> None:
        self._feed.paused = not self._feed.paused

    def action_clear(self) -> None:
        self._feed.clear()

    def action_focus_send(self) -> None:
        self._send_box.focus_input()

    def action_save(self, kind: str) -> None:
        """Save every line the feed keeps to a new file (the app writes it)."""
        self.post_message(SaveRequested(self._feed.entries, ExportFormat(kind), "feed", "The feed"))

    def action_tls_fingerprint(self) -> None:
        fingerprint = self._stats.tls_fingerprint
        if fingerprint is None:
            self.notify("This server does not serve TLS.", severity="warning")
        else:
            self.notify(fingerprint, title="TLS certificate SHA-256", timeout=30)

    def _open_selected(self) -> None:
        if not self._table.request_details():
            self.notify("Select a client in the table first.", severity="warning")

    # ---- the command palette -------------------------------------------------

    def system_commands(self) -> Iterable[SystemCommand]:
        """What the palette offers over this screen (besides Textual's own)."""
        yield from save_commands("Save feed", "every kept line", self.action_save)
        yield SystemCommand("Client details", "The selected client's own screen (Enter)", self._open_selected)
        yield SystemCommand("Kick selected client", "Disconnect the client under the cursor (k)", self.action_kick)
        yield SystemCommand("Kick all clients", "Disconnect every client (K)", self.action_kick_all)
        yield SystemCommand(
            "Ban selected client's address", "Kick it and refuse its address a while (b)", self.action_ban
        )
        yield SystemCommand("Faults", "Give the selected client faults, or clear them (F)", self.action_faults)
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
