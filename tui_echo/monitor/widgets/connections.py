"""The connections table: one row per client, a kick control on each.

A Line API widget over a ``TableView`` (``models/table_view.py``): the view
keeps the rows, their order and the filter, and only the rows in view are
ever formatted, so ten thousand clients cost what the thirty visible ones
cost. The cursor follows a client, not a row number.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_echo.monitor.models.table import Changes, ConnectionRow
from tui_echo.monitor.models.table_view import ASCENDING_FIRST, SORT_KEYS, TableView
from tui_echo.net import format_address
from tui_echo.text import format_count, format_duration, format_size

KICK_LABEL = " ✕ kick "


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    right: bool
    cell: Callable[[ConnectionRow, float], str]  # what a row shows; the view sorts by the same key's value


def _exact_or_short(count: int, width: int) -> str:
    exact = str(count)
    return exact if len(exact) <= width else format_count(count)


def _peer(row: ConnectionRow, now: float) -> str:
    return format_address(row.peer)


def _idle(row: ConnectionRow, now: float) -> str:
    """How long since it last sent; ``fault`` while a slow fault holds it (it is not idle, it is held)."""
    return "fault" if row.held_by_fault else format_duration((row.ended_at or now) - row.last_activity)


def _status(row: ConnectionRow, now: float) -> str:
    """The status; a client with faults shows them instead (the table's fault marker), time left included."""
    return f"faulted {row.fault_text(now)}" if row.fault and not row.gone else row.status


def _tls(row: ConnectionRow, now: float) -> str:
    """``1.3 AES_256_GCM_SHA384``: the version and cipher, without the ``TLS`` the column title says."""
    if row.tls_version is None:
        return ""
    return f"{row.tls_version.removeprefix('TLSv')} {(row.tls_cipher or '?').removeprefix('TLS_')}"


COLUMNS = (
    Column("id", "id", 6, True, lambda r, now: f"#{r.client_id}"),
    Column("peer", "peer", 21, False, _peer),
    Column("age", "connected", 10, True, lambda r, now: format_duration((r.ended_at or now) - r.connected_at)),
    Column("msgs", "msgs", 9, True, lambda r, now: _exact_or_short(r.messages, 9)),
    Column("in", "in", 9, True, lambda r, now: format_size(r.bytes_in)),
    Column("out", "out", 9, True, lambda r, now: format_size(r.bytes_out)),
    # Chat and broker only: deliveries to this client that never reached it (its queue was full).
    Column("dropped", "dropped", 8, True, lambda r, now: _exact_or_short(r.dropped_out, 8)),
    Column("rate", "msg/s", 6, True, lambda r, now: format_count(r.rate)),
    Column("idle", "idle", 6, True, _idle),
    Column("tls", "tls", 22, False, _tls),  # only when the server serves TLS
    Column("status", "status", 16, False, _status),
)
assert tuple(column.key for column in COLUMNS) == SORT_KEYS  # one column per key the view sorts by
# On a narrow terminal, columns are left out in this order: the id, the count and the kick control stay.
NARROW_DROPS = ("out", "idle", "dropped", "tls", "age", "rate", "in", "status", "peer")
# On a wide one, the peer grows to fit an IPv6 address and the status takes the rest, so the kick
# controls sit at the right edge, under "Kick all".
PEER_WIDEST = len("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")
_GAP = 1


def _fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def _width_of(columns: tuple[Column, ...]) -> int:
    return sum(column.width + _GAP for column in columns) + len(KICK_LABEL)


def _widen(columns: tuple[Column, ...], key: str, extra: int) -> tuple[Column, ...]:
    return tuple(dataclasses.replace(c, width=c.width + extra) if c.key == key else c for c in columns)


@functools.cache
def _columns_fitting(width: int, tls: bool, dropped: bool) -> tuple[Column, ...]:
    shown = {"tls": tls, "dropped": dropped}  # the columns only some servers have
    columns = tuple(column for column in COLUMNS if shown.get(column.key, True))
    for key in NARROW_DROPS:
        if _width_of(columns) <= width:
            break
        columns = tuple(column for column in columns if column.key != key)
    for key, widest in (("peer", PEER_WIDEST), ("status", width)):
        column = next((column for column in columns if column.key == key), None)
        if column is not None:
            columns = _widen(columns, key, max(min(width - _width_of(columns), widest - column.width), 0))
    return columns


class ConnectionsTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "connections--header",
        "connections--cursor",
        "connections--kick",
        "connections--kick-cursor",
        "connections--gone",
    }
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("o", "sort_next", "Sort", show=False),  # the footer keeps its room for kick and quit
        Binding("O", "sort_reverse", "Reverse sort", show=False),
        Binding("enter", "details", "Client details", show=False),
    ]

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another client (or to none)."""

        table: ConnectionsTable
        client_id: int | None

        @property
        def control(self) -> ConnectionsTable:
            return self.table

    @dataclass
    class KickRequested(Message):
        """The operator asked to kick a client: its row's kick control, or the kick key."""

        table: ConnectionsTable
        client_id: int

        @property
        def control(self) -> ConnectionsTable:
            return self.table

    @dataclass
    class DetailsRequested(Message):
        """The operator asked for a client's own screen (Enter on its row)."""

        table: ConnectionsTable
        client_id: int

        @property
        def control(self) -> ConnectionsTable:
            return self.table

    sort_key: reactive[str] = reactive("id")
    sort_reverse: reactive[bool] = reactive(False)
    show_tls: reactive[bool] = reactive(False)  # the tls column (version, cipher), for a TLS server
    show_dropped: reactive[bool] = reactive(False)  # the dropped column, for a chat or broker server

    def __init__(self, view: TableView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows = view
        self._now = 0.0
        self._cursor = 0
        self.cursor_client: int | None = None
        self.updates = 0  # refreshes shown so far (tests wait for the next one)

    @property
    def rows(self) -> TableView:
        """The rows in the order shown."""
        return self._rows

    @property
    def view(self) -> TableView:
        return self._rows

    @view.setter
    def view(self, view: TableView) -> None:
        """Show another model's rows (attached again), in the same order as before."""
        view.sort_by(self.sort_key, self.sort_reverse, self._now)
        self._rows = view
        self._place_cursor()
        self._resize()
        self.refresh()

    def row_of(self, client_id: int) -> ConnectionRow | None:
        """The client's row, shown or filtered out; None once it has left the table."""
        return self._rows.row(client_id)

    def update_rows(self, changes: Changes, now: float) -> None:
        """Show a refresh of the model: the view follows what changed; the cursor stays on its client."""
        self._now = now
        self._rows.update(changes, now)
        self.updates += 1
        self._place_cursor()
        self._resize()
        self.refresh()

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns that fit: on a narrow terminal the kick control stays in view, some numbers go."""
        return _columns_fitting(self.scrollable_content_region.width, self.show_tls, self.show_dropped)

    def header_span(self, key: str) -> tuple[int, int]:
        """Where a column's header is, in the table's content coordinates (clicking it sorts)."""
        start = 0
        for column in self.columns:
            if column.key == key:
                return start, start + column.width
            start += column.width + _GAP
        raise KeyError(key)

    def kick_span(self) -> tuple[int, int]:
        """Where the kick controls are, in the table's content coordinates."""
        start = _width_of(self.columns) - len(KICK_LABEL)
        return start, start + len(KICK_LABEL)

    def on_resize(self) -> None:
        self._resize()  # the columns that fit depend on the width

    def watch_show_tls(self) -> None:
        self._resize()
        self.refresh()

    def watch_show_dropped(self) -> None:
        self._resize()
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(0, len(self._rows) + 1)  # + the header line; the columns always fit the width

    def _place_cursor(self) -> None:
        rows = self._rows
        if not rows:
            self._cursor = 0
            self._set_cursor_client(None)
            return
        if self.cursor_client is not None:
            if self._cursor < len(rows) and rows[self._cursor].client_id == self.cursor_client:
                return
            index = rows.index_of(self.cursor_client)
            if index is not None:  # rows came, went or were sorted: follow the client
                self._cursor = index
                self._keep_cursor_in_view()
                return
        # Its client left the table: stay at the same place, on whoever is there now.
        self._cursor = min(self._cursor, len(self._rows) - 1)
        self._set_cursor_client(self._rows[self._cursor].client_id)

    def _set_cursor_client(self, client_id: int | None) -> None:
        if client_id != self.cursor_client:
            self.cursor_client = client_id
            self.post_message(self.Highlighted(self, client_id))

    def move_cursor_to(self, index: int) -> None:
        if not self._rows:
            return
        self._cursor = max(0, min(index, len(self._rows) - 1))
        self._set_cursor_client(self._rows[self._cursor].client_id)
        self._keep_cursor_in_view()
        self.refresh()

    def _keep_cursor_in_view(self) -> None:
        visible = max(self.size.height - 1, 1)
        if self._cursor < self.scroll_y:
            self.scroll_to(y=self._cursor, animate=False, immediate=True, force=True)
        elif self._cursor >= self.scroll_y + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True, force=True)

    def request_kick(self) -> bool:
        """Ask for the cursor's client to be kicked (``KickRequested``); False if no live client is there.

        The one way a kick leaves the table, whether by key or by click.
        """
        row = self._rows[self._cursor] if self._rows else None
        if row is None or row.gone:
            return False
        self.post_message(self.KickRequested(self, row.client_id))
        return True

    def request_details(self) -> bool:
        """Ask for the cursor's client's own screen (``DetailsRequested``); False if the table is empty.

        A departed client's row opens too: its history stays readable.
        """
        if not self._rows:
            return False
        self.post_message(self.DetailsRequested(self, self._rows[self._cursor].client_id))
        return True

    # ---- actions -----------------------------------------------------------

    def action_details(self) -> None:
        self.request_details()

    def action_cursor(self, delta: int) -> None:
        self.move_cursor_to(self._cursor + delta)

    def action_first(self) -> None:
        self.move_cursor_to(0)

    def action_last(self) -> None:
        self.move_cursor_to(len(self._rows) - 1)

    def action_page(self, direction: int) -> None:
        self.move_cursor_to(self._cursor + direction * max(self.size.height - 2, 1))

    def action_sort_next(self) -> None:
        self.sort_by(SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)])

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def sort_by(self, key: str) -> None:
        """Sort by a column; choosing the current one again reverses the order."""
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key = key
            self.sort_reverse = key not in ASCENDING_FIRST  # biggest first for numbers
        self._resort()

    def _resort(self) -> None:
        self._rows.sort_by(self.sort_key, self.sort_reverse, self._now)
        self._place_cursor()
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x = offset.x + self.scroll_x
        if offset.y == 0:
            for column in self.columns:
                start, end = self.header_span(column.key)
                if start <= x < end + _GAP:
                    self.sort_by(column.key)
                    return
            return
        index = int(self.scroll_y) + offset.y - 1
        if not 0 <= index < len(self._rows):
            return
        self.move_cursor_to(index)
        kick_start, kick_end = self.kick_span()
        if kick_start <= x < kick_end:
            self.request_kick()

    # ---- drawing -----------------------------------------------------------

    def _header(self) -> str:
        parts = []
        for column in self.columns:
            title = column.title
            if column.key == self.sort_key:
                title += "▼" if self.sort_reverse else "▲"  # every column is wider than its title: it fits
            parts.append(_fit(title, column.width, column.right))
        return (" " * _GAP).join(parts) + " " * _GAP + "kick".center(len(KICK_LABEL))

    def row_text(self, row: ConnectionRow) -> str:
        cells = (_fit(column.cell(row, self._now), column.width, column.right) for column in self.columns)
        return (" " * _GAP).join(cells) + " " * _GAP

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("connections--header")
            strip = Strip([Segment(self._header(), style)])
            return strip.crop_extend(scroll_x, scroll_x + width, style)
        index = scroll_y + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, base)
        row = self._rows[index]
        style = base
        if row.gone:
            style += self.get_component_rich_style("connections--gone")
        if index == self._cursor:
            style += self.get_component_rich_style("connections--cursor")
        segments = [Segment(self.row_text(row), style)]
        if not row.gone:  # a quiet button on every row; the cursor's row has the full one
            kick = "connections--kick-cursor" if index == self._cursor else "connections--kick"
            segments.append(Segment(KICK_LABEL, base + self.get_component_rich_style(kick)))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, style if index == self._cursor else base)
