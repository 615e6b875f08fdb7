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
from dataclasses import replace

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Label

from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.monitor.models.feed import FeedEntry, FeedIntake
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
from tui_echo.monitor.screens.main_palette import GoToProvider, main_commands
from tui_echo.monitor.screens.main_table import ManyClients
from tui_echo.monitor.screens.saving import SAVE_HELP, SaveRequested
from tui_echo.monitor.source import ServerSource
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.monitor.widgets.steady import SteadyFooter, SteadyLabel
from tui_echo.monitor.widgets.prompts import FilterBar, FindBar, GoToBar
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.monitor.widgets.stats_bar import StatsBar
from tui_echo.server.access import is_loopback
from tui_echo.server.clients import ClientState
from tui_echo.server.commands import Ban, Broadcast, ClientAction, Kick, KickAll, SendTo, ServerCommand, SetFaults
from tui_echo.server.config import Mode
from tui_echo.server.events import ClientConnected, ClientDisconnected, ServerListening

TICK_SECONDS = 0.2  # events are drained and the feed grows this often
REFRESH_SECONDS = 0.4  # the table and the stats are read this often
EVENTS_PER_TICK = 5000  # beyond this, events wait for the next tick (the server skips data events meanwhile)
DATA_LINES_PER_TICK = 80  # data lines added to the feed per tick at most (see tui_echo.monitor.models.feed)
HELP_HELP = "This help: every key, and what the feed's marks mean"
FILTER_TABLE_HELP = "Show only the clients that match, as you type (Enter keeps the filter, Esc clears it)"
FREEZE_HELP = "Hold the table's rows and their order still (htop's Z); the numbers keep counting"


class MainScreen(ManyClients):
    COMMANDS = {GoToProvider}  # a palette search that is a client id goes to its row
    # The footer shows these in this order, then the app's, and cuts what does not fit: kicking and
    # quitting come first. ``q`` and ``?`` are the app's (they work on every screen); they are here
    # for their place in the footer. Freezing the table and pausing the feed say what they hold.
    BINDINGS = [
        Binding("k", "kick", "Kick"),
        Binding("K", "kick_all", "Kick all"),
        Binding("q", "app.quit", "Stop & quit"),
        Binding("b", "ban", "Ban"),
        Binding("s", "focus_send", "Send"),
        Binding("question_mark", "app.help", "Help", key_display="?", tooltip=HELP_HELP),
        # Priority, like ctrl+f: the bar opens before the keys typed after it are handed out (see check_action).
        Binding("slash", "filter_table", "Filter", key_display="/", tooltip=FILTER_TABLE_HELP, priority=True),
        Binding("Z", "freeze", "Freeze table", tooltip=FREEZE_HELP),
        Binding("p", "pause", "Pause feed", tooltip="Stop the feed scrolling (new lines wait); the table counts on"),
        Binding("f", "filter", "Feed: one client", tooltip="The feed shows the selected client's lines only, or all"),
        Binding("x", "hex", "Hex"),
        Binding("N", "label", "Label", show=False, tooltip="Name the selected client (N again: rename it)"),
        # Not in the footer (no room beside an attached console's "S Stop server"): in ?, the palette, the README.
        Binding("G", "group", "Group", show=False, tooltip="One row per peer address, their clients' numbers summed"),
        Binding("ctrl+f", "find", "Find in feed", show=False, priority=True),
        Binding("escape", "clear_tags", "Clear tags", show=False),
        Binding("c", "clear", "Clear", show=False),  # in the palette and the README; the footer has no room
        Binding("F", "faults", "Faults", show=False, tooltip="Give the selected client faults, or clear them"),
        Binding("B", "bans", "Bans", show=False),  # the table's title says "N banned (B)" while there are bans
        Binding("R", "rules", "Rules", show=False, tooltip="The reply rules: each one's hits and last match"),
        Binding("w", "save('text')", "Save", show=False, tooltip=SAVE_HELP.format("text")),
        Binding("W", "save('jsonl')", "Save JSON", show=False, tooltip=SAVE_HELP.format("JSON Lines")),
    ]

    def __init__(
        self,
        server: ServerSource,
        *,
        feed_lines: int,
        clock: Callable[[], float],
        started_at: float,
        keys: ClientKeys = ONE_SERVER,
    ) -> None:
        """``started_at``: when the server started (the stats' uptime counts from it); ``keys``: how the
        console names clients (several servers: ``#12@7002``)."""
        super().__init__()
        self._server = server
        self.keys = keys
        self._clock = clock
        self._feed_lines = feed_lines
        self._table_model = TableModel(keys)
        self._stats = StatsModel(server.addresses, started_at, server.mode)
        self._rate_window = RateWindow(clock())
        self._intake = FeedIntake(DATA_LINES_PER_TICK)
        self._histories = ClientHistories()  # each client's last lines, whatever floods the feed
        self._next_refresh = 0.0
        # Held, not queried: the timer may still fire while the screen is being taken down.
        self._stats_bar = StatsBar(id="stats")
        self._table_title = SteadyLabel("Connections", id="table-title")
        self._origin = Label("", id="origin")  # the control socket, or the server this console is attached to
        self._table = ConnectionsTable(TableView(self._table_model), id="connections")
        self._filter_bar = FilterBar(self.apply_filter, id="filter-bar")
        self._go_to_bar = GoToBar(self.go_to_placeholder(), id="go-to-bar")
        self._find_bar = FindBar(self._find_changed, id="find-bar")
        self._feed = Feed(feed_lines, id="feed", keys=keys)
        self._send_box = SendBox(id="send", keys=keys)

    def compose(self) -> ComposeResult:
        yield self._stats_bar
        with Horizontal(id="table-bar"):
            yield self._table_title
            yield self._origin
            kick_all = Button("✕ Kick all", id="kick-all", variant="error", compact=True)
            kick_all.can_focus = False  # Enter on a focused "Kick all" is too easy a mistake; K and the mouse reach it
            yield kick_all
        yield self._filter_bar
        yield self._go_to_bar
        yield self._table
        yield self._find_bar
        yield self._feed
        yield self._send_box
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.watch(self._table, "highlighted", self._client_highlighted, init=False)
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
        self._table_model = TableModel(self.keys)
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
        if self._table.show_labels:  # some client has a label: its lines carry it (a lookup per line)
            entries = [self._labelled(entry) for entry in entries]
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

    def _labelled(self, entry: FeedEntry) -> FeedEntry:
        row = None if entry.client_id is None else self._table_model.row(entry.client_id)
        return replace(entry, label=row.label) if row is not None and row.label else entry

    def _refresh_numbers(self, now: float) -> None:
        self._next_refresh = now + REFRESH_SECONDS
        window = self._rate_window.close(now)  # one window for the table and the stats: their msg/s agree
        self._table.update_rows(self._table_model.refresh(self._server.clients(), now, window), now)
        stats = self._stats.stats(self._server.totals(), now, self._intake.skipped, window)
        self._stats_bar.show(stats)
        self.show_table_note()
        self._table_title.show(f"Connections · {stats.clients_now} now{self._bans_note(now)}")
        for screen in self._client_screens():
            screen.show(self._table.row_of(screen.client_id), now)

    def _soon(self) -> None:
        """Show a command's effect without waiting for the next tick."""
        self._next_refresh = 0.0
        self.set_timer(0.02, self.tick)

    def _client_screens(self) -> Iterator[ClientScreen]:
        return (screen for screen in self.app.screen_stack if isinstance(screen, ClientScreen))

    # ---- what the widgets report ----------------------------------------

    def _client_highlighted(self, client_id: int | None) -> None:
        self._send_box.target = client_id

    @on(ConnectionsTable.KickRequested)
    def _kick_requested(self, event: ConnectionsTable.KickRequested) -> None:
        self.command(Kick(event.client_id))

    @on(Button.Pressed, "#kick-all")
    def _kick_all_pressed(self) -> None:
        self.action_kick_all()

    @on(ConnectionsTable.GroupKickRequested)
    def _group_kick_requested(self, event: ConnectionsTable.GroupKickRequested) -> None:
        self.act_on(ClientAction.KICK, event.group.live_ids, f"{event.group.host}")

    @on(SendBox.Submitted)
    def _send(self, event: SendBox.Submitted) -> None:
        target = self._table.cursor_client
        if event.to_all:
            self.command(Broadcast(event.data))
        elif self.tagged_ids:
            self.act_on(ClientAction.SEND, self.tagged_ids, "tagged", event.data)
        elif target is not None:
            self.command(SendTo(target, event.data))

    @on(ConnectionsTable.DetailsRequested)
    def _open_client(self, event: ConnectionsTable.DetailsRequested) -> None:
        row = self._table.row_of(event.client_id)
        if row is None:
            return
        history = self._histories.of(event.client_id, row.connected_at, self._feed.entries)
        chat = self._server.mode is Mode.CHAT
        self.app.push_screen(ClientScreen(row, history, self._feed_lines, self._clock(), chat=chat, keys=self.keys))

    # ---- actions ---------------------------------------------------------

    def action_kick(self) -> None:
        """Kick the tagged clients (after a question), or else the selected client (a group: its clients)."""
        if self.tagged_ids:
            self.act_on(ClientAction.KICK, self.tagged_ids, "tagged")
        elif not self._table.request_kick():
            self.notify("No connected client is selected.", severity="warning")

    def action_kick_all(self) -> None:
        """Kick every client; when the table's filter hides some, ask first."""
        view = self._table.view
        if not view.filtered or view.clients_shown == view.clients:
            self.command(KickAll())
            return
        live = sum(1 for _ in self._server.clients())
        question = (
            f"The table's filter shows {view.clients_shown:,} of {view.clients:,} clients. Kick all "
            f"{live:,} connected clients, hidden ones included?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.command(KickAll())

        self.app.push_screen(ConfirmScreen(question, yes=f"Kick all {live:,}"), answered)

    def action_ban(self) -> None:
        """Ban the tagged clients' addresses (after a question), or else the selected client's; loopback, which
        most local clients share, asks first."""
        if self.tagged_ids:
            self.act_on(ClientAction.BAN, self.tagged_ids, "tagged")
            return
        state = self._selected_state()
        if state is None:
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

    def _selected_state(self) -> ClientState | None:
        """The client under the cursor, or None (and a notice that none is selected)."""
        client_id = self._table.cursor_client
        state = next((c for c in self._server.clients() if c.client_id == client_id), None)
        if state is None:
            self.notify("No connected client is selected.", severity="warning")
        return state

    def action_faults(self) -> None:
        """The fault form for the selected client: set, change or clear its faults."""
        state = self._selected_state()
        if state is None:
            return

        def chosen(choice: FaultChoice | None) -> None:
            if choice is not None:
                self.command(SetFaults(state.client_id, choice.faults))

        self.app.push_screen(FaultsScreen(self.keys.label(state.client_id), state.fault), chosen)

    def _bans_note(self, now: float) -> str:
        banned = sum(1 for ban in self._server.bans() if ban.until > now)
        return f" · {banned} banned (B lists them)" if banned else ""

    def action_bans(self) -> None:
        self.app.push_screen(BansScreen(self._server.bans, self._clock))

    def action_rules(self) -> None:
        self.app.push_screen(RulesScreen(self._server.rules, self._clock))

    def action_filter(self) -> None:
        feed = self._feed
        if feed.only_client is not None or feed.only_clients is not None:
            feed.only_client = feed.only_clients = None
            return
        client_id = self._table.cursor_client
        if client_id is None:
            self.notify("Select a client in the table to filter the feed to it.", severity="warning")
        else:
            feed.only_client = client_id

    def action_feed_to_shown(self) -> None:
        """The feed shows the lines of the clients the table's filter shows now (a fixed set), or all again."""
        feed = self._feed
        if feed.only_client is not None or feed.only_clients is not None:
            feed.only_client = feed.only_clients = None
        elif not self._table.view.filtered:
            self.notify("The table has no filter (/ sets one).", severity="warning")
        else:
            feed.only_clients = frozenset(self._table.view.shown_ids())

    def action_hex(self) -> None:
        self._feed.hex_view = not self._feed.hex_view

    def action_pause(self) -> None:
        self._feed.paused = not self._feed.paused

    def action_clear(self) -> None:
        self._feed.clear()

    def action_focus_send(self) -> None:
        self._send_box.focus_input()

    def action_save(self, kind: str | ExportFormat) -> None:
        """Save every line the feed keeps to a new file (the app writes it)."""
        self.post_message(SaveRequested(self._feed.entries, ExportFormat(kind), "feed", "The feed"))

    def action_tls_fingerprint(self) -> None:
        fingerprint = self._stats.tls_fingerprint
        if fingerprint is None:
            self.notify("This server does not serve TLS.", severity="warning")
        else:
            self.notify(fingerprint, title="TLS certificate SHA-256", timeout=30)

    def open_selected(self) -> None:
        if not self._table.request_details():
            self.notify("Select a client in the table first.", severity="warning")

    @property
    def tls_fingerprint(self) -> str | None:
        return self._stats.tls_fingerprint

    # ---- the feed's find bar ------------------------------------------------------

    def action_find(self) -> None:
        self._find_bar.open()

    def _find_changed(self, text: str) -> None:
        if not text:
            self._feed.find("")
            self._find_bar.note("")
            return
        lines = self._feed.find(text)
        self._find_bar.note(f"{lines:,} line{'s' if lines != 1 else ''}" if lines else "not found", error=not lines)

    @on(FindBar.Step)
    def _find_step(self, event: FindBar.Step) -> None:
        if not self._feed.find_next(event.older) and self._find_bar.text:
            self._find_bar.note(f"no {'older' if event.older else 'newer'} line has it", error=True)

    # ---- the command palette -------------------------------------------------

    def system_commands(self) -> Iterable[SystemCommand]:
        """What the palette offers over this screen (besides Textual's own)."""
        return main_commands(self, self.action_save)
