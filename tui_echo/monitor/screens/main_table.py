"""The main screen's table keys: filter (``/``), go to, freeze (``Z``), group (``G``) and tags (Space, Esc).

``TableKeys`` is the part of ``MainScreen`` (``screens/main.py``) that
changes what the connections table shows and which clients an action is for;
the screen composes the widgets and holds the server. The table's view
(``models/table_view.py``) does the work; this says it on the stats bar and
in notifications.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from textual import on
from textual.screen import Screen

from tui_echo.client_filter import FilterError, compile_filter
from tui_echo.monitor.models.table_view import TableView
from tui_echo.monitor.screens.ask import AskScreen
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.prompts import FilterBar
from tui_echo.monitor.widgets.stats_bar import StatsBar

_CLIENT_ID = re.compile(r"\s*#?\s*(\d{1,9})\s*")


def client_id_of(text: str) -> int | None:
    """``1234`` or ``#1234``: a client's id; None for anything else."""
    found = _CLIENT_ID.fullmatch(text)
    return None if found is None else int(found.group(1))


class TableKeys(Screen[None]):
    """Keys and palette commands over the connections table. The screen that uses it sets the widgets."""

    _table: ConnectionsTable
    _filter_bar: FilterBar
    _stats_bar: StatsBar
    _clock: Callable[[], float]

    @property
    def table(self) -> ConnectionsTable:
        return self._table

    @property
    def tls_fingerprint(self) -> str | None:
        """The TLS certificate's fingerprint, for a server that serves TLS."""
        return None

    # ---- filter ------------------------------------------------------------

    def action_filter_table(self, text: str | None = None) -> None:
        """Open the filter prompt over the table (with ``text`` in it, if given)."""
        if text is not None:
            self._filter_bar.input.value = text
        self._filter_bar.open()

    def action_filter_port(self) -> None:
        self.action_filter_table(":")

    @on(FilterBar.Changed, "FilterBar")  # FindBar.Changed is the same message class: by the bar it came from
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.apply_filter(event.text)

    def apply_filter(self, text: str) -> bool:
        """Show only the rows ``text`` matches ("": every row); False, and the prompt says why, if it is not
        a filter (the table keeps the last one that was)."""
        try:
            chosen = compile_filter(text)
        except FilterError as exc:
            self._filter_bar.note(str(exc), error=True)
            return False
        view = self._table.view
        view.set_filter(None if chosen.everything else chosen, self._clock(), text.strip())
        self._table_changed()
        self._filter_bar.note(f"{view.clients_shown:,} of {view.clients:,}" if view.filtered else "")
        return True

    # ---- go to -------------------------------------------------------------

    def go_to(self, client_id: int) -> None:
        """Put the cursor on a client's row, or say why not."""
        if self._table.go_to(client_id):
            self._table.focus()
        elif self._table.row_of(client_id) is not None:
            self.notify(f"#{client_id} is not shown: the table's filter hides it.", severity="warning")
        else:
            self.notify(f"No client #{client_id}.", severity="warning")

    def action_go_to(self) -> None:
        def answered(text: str | None) -> None:
            client_id = client_id_of(text or "")
            if client_id is not None:
                self.go_to(client_id)
            elif text:
                self.notify(f"Not a client id: {text!r} (a number, as in #1234).", severity="warning")

        self.app.push_screen(AskScreen("Go to client", placeholder="#1234", max_length=12), answered)

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
        self._stats_bar.show_table(table_note(self._table.view))


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
