"""The main screen's table keys: filter (``/``), go to, freeze (``Z``), group (``G``), tags (Space, Esc),
labels (``N``), and acting on many clients at once.

``TableKeys`` is the part of ``MainScreen`` (``screens/main.py``) that
changes what the connections table shows and which clients an action is for;
the screen composes the widgets and holds the server. The table's view
(``models/table_view.py``) does the work; this says it on the stats bar and
in notifications. An action on many clients (the tagged, the filtered, a
group) asks first, giving the count, and sends one ``ForClients`` command
with the ids fixed when the question was asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from textual import on
from textual.screen import Screen
from textual.widgets import Input

from tui_echo.client_filter import FilterError, compile_filter
from tui_echo.client_keys import ClientKeys
from tui_echo.monitor.models.table_view import TableView
from tui_echo.monitor.screens.ask import AskScreen
from tui_echo.monitor.screens.confirm import ConfirmScreen
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.prompts import FilterBar, GoToBar
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.monitor.widgets.stats_bar import StatsBar
from tui_echo.send_text import SendTextError, parse_send_text
from tui_echo.server.clients import MAX_LABEL_CHARS
from tui_echo.server.commands import ClientAction, ForClients, Label, ServerCommand
from tui_echo.text import format_size

_CLIENT_ID = re.compile(r"\s*#?\s*(\d{1,9})\s*(@.+)?")


def client_keys_of(text: str, keys: ClientKeys) -> list[int] | None:
    """``1234`` or ``#1234``: a client's id (on every server of the console), ``#1234@7002`` on one;
    the console's keys of the clients it names, None for anything else."""
    found = _CLIENT_ID.fullmatch(text)
    return None if found is None else keys.keys_of(found.group(1) + (found.group(2) or "").rstrip())


class TableKeys(Screen[None]):
    """Keys and palette commands over the connections table. The screen that uses it sets the widgets."""

    _table: ConnectionsTable
    _filter_bar: FilterBar
    _go_to_bar: GoToBar
    _stats_bar: StatsBar
    _send_box: SendBox  # it says whom a send goes to: the tagged, when there are
    _clock: Callable[[], float]

    @property
    def table(self) -> ConnectionsTable:
        return self._table

    def command(self, command: ServerCommand) -> None:
        """Send the server a command (the screen that uses this class says how)."""
        raise NotImplementedError

    @property
    def tls_fingerprint(self) -> str | None:
        """The TLS certificate's fingerprint, for a server that serves TLS."""
        return None

    # ---- filter ------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``/`` and ctrl+f are priority keys: the app runs them as it reads them, so the bar they open has
        the focus before the keys typed (or sent by a terminal) right after them are handed out; a screen's
        ordinary key runs only once the focused widget has passed it up, after those keys went to the table.
        In a text box they are the box's own (a regex is written /…/)."""
        return not (action in ("filter_table", "find") and isinstance(self.focused, Input))

    def action_filter_table(self, text: str | None = None) -> None:
        """Open the filter prompt over the table (with ``text`` in it, if given)."""
        if text is not None:
            self._filter_bar.input.value = text
        self._filter_bar.open()

    def action_filter_port(self) -> None:
        self.action_filter_table(":")

    def apply_filter(self, text: str) -> bool:
        """Show only the rows ``text`` matches ("": every row); False, and the prompt says why, if it is not
        a filter (the table keeps the last one that was)."""
        try:
            chosen = compile_filter(text, self._table.view.keys)
        except FilterError as exc:
            self._filter_bar.note(str(exc), error=True)
            return False
        view = self._table.view
        view.set_filter(None if chosen.everything else chosen, self._clock(), text.strip())
        self._table_changed()
        self._filter_bar.note(f"{view.clients_shown:,} of {view.clients:,}" if view.filtered else "")
        return True

    # ---- go to -------------------------------------------------------------

    def go_to(self, *client_ids: int) -> None:
        """Put the cursor on a client's row (the first of these shown: #12 of several servers), or say why not."""
        why_not = self._go_to(client_ids)
        if why_not is None:
            self._table.focus()
        else:
            self.notify(why_not, severity="warning")

    def _go_to(self, client_ids: Sequence[int]) -> str | None:
        """Move the cursor to the first of these clients shown; if none is, why not."""
        if any(self._table.go_to(client_id) for client_id in client_ids):
            return None
        named = " or ".join(self._table.view.keys.label(client_id) for client_id in client_ids)
        if any(self._table.row_of(client_id) is not None for client_id in client_ids):
            return f"{named} is not shown: the table's filter hides it."
        return f"No client {named}."

    def action_go_to(self) -> None:
        """The go-to bar: an id and Enter, as many times as you like, then Esc. Opened after the next refresh:
        chosen in the palette, this runs before the main screen is back and has taken its focus back."""
        self.call_after_refresh(self._go_to_bar.open)

    def go_to_placeholder(self) -> str:
        keys = self._table.view.keys
        return (
            f"#1234 (#1234@{keys.names[-1]}: on that server) · Enter goes · Esc closes"
            if keys.several
            else ("#1234 · Enter goes · Esc closes")
        )

    @on(GoToBar.Go)
    def _go_typed(self, event: GoToBar.Go) -> None:
        keys = self._table.view.keys
        client_ids = client_keys_of(event.text, keys)
        if client_ids is None:
            if event.text.strip():  # an empty Enter says nothing
                example = "#1234@" + keys.names[-1] if keys.several else "#1234"
                event.bar.note(f"not a client id (as in {example})", error=True)
            return
        why_not = self._go_to(client_ids)  # the bar keeps the focus: the next id can be typed at once
        event.bar.note("" if why_not is None else why_not.rstrip(".").lower(), error=why_not is not None)

    # ---- freeze, group, tags -----------------------------------------------

    def action_freeze(self) -> None:
        view = self._table.view
        view.freeze(not view.frozen, self._clock())
        self._table_changed()

    def action_group(self) -> None:
        view = self._table.view
        view.group(not view.grouped, self._clock())
        self._table_changed()

    def action_clear_tags(self) -> None:
        if not self._table.clear_tags():
            self.notify("No client is tagged (space tags the selected one).", severity="information")

    @on(ConnectionsTable.TagsChanged)
    def _table_changed(self) -> None:
        self._table.shown_again()
        self.show_table_note()

    def show_table_note(self) -> None:
        """What the table shows (filter, groups, freeze, tags) on the stats bar, and the tags in the send box."""
        self._stats_bar.show_table(table_note(self._table.view))
        self._send_box.tagged = len(self._table.view.tagged_ids())


class ManyClients(TableKeys):
    """Kick, send and ban for many clients at once, and labels."""

    def act_on(self, action: ClientAction, client_ids: Sequence[int], whom: str, data: bytes = b"") -> None:
        """Ask first, giving the count, then act on exactly these clients (``whom``: "tagged", "filtered",
        "from 10.0.0.7", as the question names them)."""
        ids = tuple(client_ids)
        if not ids:
            self.notify(f"No {whom} client is connected.", severity="warning")
            return
        clients = counted(len(ids), "client", "clients")
        label = self._table.view.keys.label
        shown = ", ".join(label(client_id) for client_id in ids[:8]) + (", …" if len(ids) > 8 else "")
        match action:
            case ClientAction.KICK:
                question, yes = f"Kick the {whom} {clients} ({shown})?", f"Kick {len(ids):,}"
            case ClientAction.SEND:
                question = f"Send {format_size(len(data))} to the {whom} {clients} ({shown})?"
                yes = f"Send to {len(ids):,}"
            case ClientAction.BAN:
                hosts = {row.peer[0] for client_id in ids if (row := self._table.row_of(client_id)) is not None}
                addresses = counted(len(hosts), "address", "addresses")
                question = (
                    f"Ban the {addresses} of the {whom} {clients} ({shown})? Every client from them is closed, "
                    "and new ones are refused until the ban ends or you lift it (B)."
                )
                yes = f"Ban {addresses}"

        def answered(yes: bool | None) -> None:
            if yes:
                self.command(ForClients(action, ids, data))

        self.app.push_screen(ConfirmScreen(question, yes=yes), answered)

    @property
    def tagged_ids(self) -> list[int]:
        return self._table.view.tagged_ids()

    def action_kick_filtered(self) -> None:
        self._act_on_filtered(ClientAction.KICK)

    def action_ban_filtered(self) -> None:
        self._act_on_filtered(ClientAction.BAN)

    def action_send_filtered(self) -> None:
        view = self._table.view
        if not view.filtered:
            self.notify("The table has no filter (/ sets one).", severity="warning")
            return
        ids = view.shown_ids()  # fixed now: clients that match later are not sent to

        def answered(text: str | None) -> None:
            if not text:
                return
            try:
                data = parse_send_text(text)
            except SendTextError as error:
                self.notify(str(error), title="Not sent", severity="error")
                return
            self.act_on(ClientAction.SEND, ids, "filtered", data)

        question = f"Send to the {counted(len(ids), 'filtered client', 'filtered clients')} (\\n \\r \\xNN escapes)"
        self.app.push_screen(AskScreen(question, placeholder="text to send"), answered)

    def _act_on_filtered(self, action: ClientAction) -> None:
        view = self._table.view
        if not view.filtered:
            self.notify("The table has no filter (/ sets one).", severity="warning")
        else:
            self.act_on(action, view.shown_ids(), "filtered")

    def action_label(self) -> None:
        """Name the selected client (an empty name takes its label away)."""
        client_id = self._table.cursor_client
        row = None if client_id is None else self._table.row_of(client_id)
        if row is None or row.gone:
            self.notify("Select a connected client to label it.", severity="warning")
            return

        def answered(text: str | None) -> None:
            if text is not None:
                self.command(Label(row.client_id, text))

        question = f"Label for {self._table.view.keys.label(row.client_id)} (empty: no label)"
        self.app.push_screen(AskScreen(question, value=row.label, max_length=MAX_LABEL_CHARS), answered)


def counted(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def table_note(view: TableView) -> str:
    """The stats bar's word on what the table shows: ``showing 12 of 2,000 · filter: 10.0.0. · 3 tagged``."""
    parts = []
    if view.filtered:
        parts.append(f"showing {view.clients_shown:,} of {view.clients:,} · filter: {view.filter_text}")
    if view.grouped:
        parts.append("grouped by address")
    if view.frozen:
        parts.append("table frozen")
    if view.tags:
        parts.append(f"{len(view.tags):,} tagged")
    return " · ".join(parts)
