"""The connections table: one row per client, or per address when grouped, a kick control on each.

A Line API widget over a ``TableView`` (``models/table_view.py``): the view
keeps the rows, their order, the filter, the groups and the tags, and only
the rows in view are ever formatted, so ten thousand clients cost what the
thirty visible ones cost. The cursor follows a client (or a group), not a
row number.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive, var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_echo.monitor.models.groups import GroupRow
from tui_echo.monitor.models.table import Changes, ConnectionRow
from tui_echo.monitor.models.table_view import ASCENDING_FIRST, SORT_KEYS, Row, RowKey, TableView, key_of
from tui_echo.monitor.widgets.table_columns import (
    GAP,
    KICK_LABEL,
    MARK_WIDTH,
    Column,
    columns_fitting,
    fit,
    mark,
    width_of,
)


class ConnectionsTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "connections--header",
        "connections--cursor",
        "connections--kick",
        "connections--kick-cursor",
        "connections--gone",
        "connections--tagged",
        "connections--group",
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
        Binding("space", "tag", "Tag", show=False),
    ]

    @dataclass
    class KickRequested(Message):
        """The operator asked to kick a client: its row's kick control, or the kick key."""

        table: ConnectionsTable
        client_id: int

        @property
        def control(self) -> ConnectionsTable:
            return self.table

    @dataclass
    class GroupKickRequested(Message):
        """The operator asked to kick every client of a group (its row's kick control, or the kick key)."""

        table: ConnectionsTable
        group: GroupRow

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

    @dataclass
    class TagsChanged(Message):
        """Clients were tagged or untagged (``table.view.tags`` has them)."""

        table: ConnectionsTable

        @property
        def control(self) -> ConnectionsTable:
            return self.table

    sort_key: reactive[str] = reactive("id")
    sort_reverse: reactive[bool] = reactive(False)
    show_tls: reactive[bool] = reactive(False)  # the tls column (version, cipher), for a TLS server
    show_dropped: reactive[bool] = reactive(False)  # the dropped column, for a chat or broker server
    show_labels: reactive[bool] = reactive(False)  # the label column, once a client has a label
    # The client under the cursor (None: an empty table, a group's row). A watcher hears of a move in the
    # same step, so the send box's "to #12" is drawn with the row: a message reached the screen a frame later.
    highlighted: var[int | None] = var(None, init=False, always_update=True)

    def __init__(self, view: TableView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows = view
        self._now = 0.0
        self._cursor = 0
        self._cursor_key: RowKey | None = None
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
        """Show another model's rows (attached again), in the same order and through the same filter."""
        view.sort_by(self.sort_key, self.sort_reverse, self._now)
        if self._rows.predicate is not None:
            view.set_filter(self._rows.predicate, self._now, self._rows.filter_text)
        self._rows = view
        self._place_cursor()
        self._resize()
        self.refresh()

    @property
    def cursor_row(self) -> Row | None:
        return self._rows[self._cursor] if self._rows else None

    @property
    def cursor_client(self) -> int | None:
        """The client under the cursor (None on a group's row)."""
        return self._cursor_key if isinstance(self._cursor_key, int) else None

    def row_of(self, client_id: int) -> ConnectionRow | None:
        """The client's row, shown or filtered out; None once it has left the table."""
        return self._rows.row(client_id)

    def update_rows(self, changes: Changes, now: float) -> None:
        """Show a refresh of the model: the view follows what changed; the cursor stays on its row."""
        self._now = now
        if not self.show_labels and any(row.label for row in (*changes.added, *changes.changed)):
            self.show_labels = True  # and it stays: a column that comes and goes would move the others
        self._rows.update(changes, now)
        self.shown_again()

    def shown_again(self) -> None:
        """The view changed (a refresh, a filter, a freeze, grouping): follow it."""
        self.updates += 1
        self._place_cursor()
        self._resize()
        self.refresh()

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns that fit: on a narrow terminal the kick control stays in view, some numbers go."""
        width, keys = self.scrollable_content_region.width, self._rows.keys
        return columns_fitting(
            width, self.show_tls, self.show_dropped, self.show_labels, keys.several, keys.has_workers
        )

    def header_span(self, key: str) -> tuple[int, int]:
        """Where a column's header is, in the table's content coordinates (clicking it sorts)."""
        start = MARK_WIDTH
        for column in self.columns:
            if column.key == key:
                return start, start + column.width
            start += column.width + GAP
        raise KeyError(key)

    def kick_span(self) -> tuple[int, int]:
        """Where the kick controls are, in the table's content coordinates."""
        start = width_of(self.columns) - len(KICK_LABEL)
        return start, start + len(KICK_LABEL)

    def on_resize(self) -> None:
        self._resize()  # the columns that fit depend on the width

    def watch_show_tls(self) -> None:
        self._resize()
        self.refresh()

    def watch_show_dropped(self) -> None:
        self._resize()
        self.refresh()

    def watch_show_labels(self) -> None:
        self._resize()
        self.refresh()

    def _resize(self) -> None:
        size = Size(0, len(self._rows) + 1)  # + the header line; the columns always fit the width
        height = self.container_size.height
        if self.show_vertical_scrollbar and min(size.height, self.virtual_size.height) > height > 0:
            # The scrollbar stays: move its thumb, not every widget on the screen (a layout, with 10,000
            # rows half of a filter keypress's work). Textual's _scroll_update does this after a layout.
            self.set_reactive(ConnectionsTable.virtual_size, size)
            self.vertical_scrollbar.window_virtual_size = size.height
            self.scroll_y = self.validate_scroll_y(self.scroll_y)
        else:
            self.virtual_size = size

    def _place_cursor(self) -> None:
        rows = self._rows
        if not rows:
            self._cursor = 0
            self._set_cursor_key(None)
            return
        if self._cursor_key is not None:
            if self._cursor < len(rows) and key_of(rows[self._cursor]) == self._cursor_key:
                return
            index = rows.index_of(self._cursor_key)
            if index is not None:  # rows came, went or were sorted: follow the client
                self._cursor = index
                self._keep_cursor_in_view()
                return
        # Its row left the table: stay at the same place, on whoever is there now.
        self._cursor = min(self._cursor, len(rows) - 1)
        self._set_cursor_key(key_of(rows[self._cursor]))

    def _set_cursor_key(self, key: RowKey | None) -> None:
        if key != self._cursor_key:
            client_before = self.cursor_client
            self._cursor_key = key
            if self.cursor_client != client_before or not isinstance(key, int):
                self.highlighted = self.cursor_client

    def move_cursor_to(self, index: int) -> None:
        if not self._rows:
            return
        self._cursor = max(0, min(index, len(self._rows) - 1))
        self._set_cursor_key(key_of(self._rows[self._cursor]))
        self._keep_cursor_in_view()
        self.refresh()

    def go_to(self, client_id: int) -> bool:
        """Put the cursor on a client's row (unfolding its group); False if the table does not show it."""
        index = self._rows.index_of(client_id)
        group = self._rows.group_of(client_id)
        if index is None and group is not None and not group.unfolded and self._rows.unfold(group.host, self._now):
            self._resize()
            index = self._rows.index_of(client_id)
        if index is None:
            return False
        self.move_cursor_to(index)
        return True

    def _keep_cursor_in_view(self) -> None:
        visible = max(self.size.height - 1, 1)
        if self._cursor < self.scroll_y:
            self.scroll_to(y=self._cursor, animate=False, immediate=True, force=True)
        elif self._cursor >= self.scroll_y + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True, force=True)

    def request_kick(self) -> bool:
        """Ask for the cursor's client to be kicked (``KickRequested``), or its group's clients
        (``GroupKickRequested``); False if no live client is there.

        The one way a kick leaves the table, whether by key or by click.
        """
        row = self.cursor_row
        if row is None or row.gone:
            return False
        if isinstance(row, GroupRow):
            self.post_message(self.GroupKickRequested(self, row))
        else:
            self.post_message(self.KickRequested(self, row.client_id))
        return True

    def request_details(self) -> bool:
        """Ask for the cursor's client's own screen (``DetailsRequested``), or unfold or fold its group;
        False if the table is empty.

        A departed client's row opens too: its history stays readable.
        """
        row = self.cursor_row
        if row is None:
            return False
        if isinstance(row, GroupRow):
            self._rows.unfold(row.host, self._now)
            self.shown_again()
        else:
            self.post_message(self.DetailsRequested(self, row.client_id))
        return True

    # ---- actions -----------------------------------------------------------

    def action_details(self) -> None:
        self.request_details()

    def action_tag(self) -> None:
        """Tag the cursor's client (a group: all its clients), or untag it, and go to the next row."""
        row = self.cursor_row
        if row is None:
            return
        self._rows.toggle_tag(row)
        self.post_message(self.TagsChanged(self))
        self.move_cursor_to(self._cursor + 1)
        self.refresh()

    def clear_tags(self) -> bool:
        """Untag every client; False if none was tagged."""
        if not self._rows.tags:
            return False
        self._rows.tags.clear()
        self.post_message(self.TagsChanged(self))
        self.refresh()
        return True

    def action_cursor(self, delta: int) -> None:
        self.move_cursor_to(self._cursor + delta)

    def action_first(self) -> None:
        self.move_cursor_to(0)

    def action_last(self) -> None:
        self.move_cursor_to(len(self._rows) - 1)

    def action_page(self, direction: int) -> None:
        self.move_cursor_to(self._cursor + direction * max(self.size.height - 2, 1))

    def action_sort_next(self) -> None:
        """Sort by the next column shown (a column that does not fit, or this server has not, is skipped)."""
        shown = {column.key for column in self.columns}
        keys = [key for key in SORT_KEYS if key in shown or key == self.sort_key]
        self.sort_by(keys[(keys.index(self.sort_key) + 1) % len(keys)])

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
                if start <= x < end + GAP:
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
            parts.append(fit(title, column.width, column.right))
        return " " * MARK_WIDTH + (" " * GAP).join(parts) + " " * GAP + "kick".center(len(KICK_LABEL))

    def row_text(self, row: Row) -> str:
        cells = (fit(column.cell(row, self._now), column.width, column.right) for column in self.columns)
        return mark(row, self._rows.tags).ljust(MARK_WIDTH) + (" " * GAP).join(cells) + " " * GAP

    def _tagged(self, row: Row) -> bool:
        tags = self._rows.tags
        if isinstance(row, ConnectionRow):
            return row.client_id in tags
        return bool(tags) and all(row.client_id in tags for row in row.members if not row.gone)

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
        if isinstance(row, GroupRow):
            style += self.get_component_rich_style("connections--group")
        if self._tagged(row):
            style += self.get_component_rich_style("connections--tagged")
        if index == self._cursor:
            style += self.get_component_rich_style("connections--cursor")
        segments = [Segment(self.row_text(row), style)]
        if not row.gone:  # a quiet button on every row; the cursor's row has the full one
            kick = "connections--kick-cursor" if index == self._cursor else "connections--kick"
            segments.append(Segment(KICK_LABEL, base + self.get_component_rich_style(kick)))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, style if index == self._cursor else base)
