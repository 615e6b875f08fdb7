"""The chat-style feed: one line per echoed chunk, operator send and client event.

A Line API widget over a bounded ring of entries: only the visible lines are
ever rendered, so adding lines costs the same however many are kept. Client
bytes arrive here already escaped (text view) or as raw bytes that only the
hex dump renders; nothing from a client is ever read as markup.
"""

from __future__ import annotations

import time
from collections import deque

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_echo.monitor.models.feed import Direction, FeedEntry
from tui_echo.monitor.models.hexdump import BYTES_PER_LINE, hex_line, hex_line_count
from tui_echo.text import format_size

LABEL_WIDTH = 7
_INDENT = " " * (13 + LABEL_WIDTH + 2)

# Client label colours, readable on dark and on light backgrounds respectively.
_DARK_PALETTE = ("#5fafff", "#87d75f", "#ffaf5f", "#d787ff", "#5fd7d7", "#ff875f", "#d7d75f", "#ff87af")
_LIGHT_PALETTE = ("#005fd7", "#008700", "#af5f00", "#8700af", "#007f7f", "#d70000", "#7f7f00", "#d7005f")


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


class Feed(ScrollView, can_focus=True):
    """The last ``max_entries`` feed entries, newest at the bottom."""

    COMPONENT_CLASSES = {"feed--time", "feed--system", "feed--sent", "feed--echoed", "feed--cut"}
    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Oldest", show=False),
        Binding("end", "scroll_end", "Newest", show=False),
    ]

    paused: reactive[bool] = reactive(False)
    hex_view: reactive[bool] = reactive(False)
    only_client: reactive[int | None] = reactive(None)

    def __init__(self, max_entries: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._entries: deque[FeedEntry] = deque()
        self._max_entries = max_entries
        self._rows: deque[tuple[FeedEntry, int]] = deque()  # (entry, line of it) for every shown line
        self._widest = 0
        self._unseen = 0  # lines added while paused
        self._style_cache: dict[tuple[int | None, Direction], dict[str, Style]] = {}

    @property
    def entries(self) -> tuple[FeedEntry, ...]:
        return tuple(self._entries)

    def shown_lines(self) -> list[str]:
        """The plain text of every line the feed would show, oldest first (for tests and copying)."""
        return [self._line_text(entry, part) for entry, part in self._rows]

    # ---- adding and removing ------------------------------------------

    def add(self, entries: list[FeedEntry]) -> None:
        """Append a batch of entries: one call per UI tick."""
        if not entries:
            return
        at_end = self.is_vertical_scroll_end
        dropped_rows = 0
        for entry in entries:
            if len(self._entries) >= self._max_entries:
                old = self._entries.popleft()
                while self._rows and self._rows[0][0] is old:
                    self._rows.popleft()
                    dropped_rows += 1
            self._entries.append(entry)
            added = self._add_rows(entry)
            if self.paused:
                self._unseen += added
        self._resize()
        if self.paused:
            # Keep the same lines in view while old ones fall off the top.
            self.scroll_to(y=max(self.scroll_y - dropped_rows, 0), animate=False, immediate=True, force=True)
            self._update_title()
        elif at_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh()

    def clear(self) -> None:
        self._entries.clear()
        self._rows.clear()
        self._widest = 0
        self._unseen = 0
        self._resize()
        self._update_title()
        self.refresh()

    def _shows(self, entry: FeedEntry) -> bool:
        return self.only_client is None or entry.client_id == self.only_client

    def _add_rows(self, entry: FeedEntry) -> int:
        if not self._shows(entry):
            return 0
        count = self._line_count(entry)
        self._rows.extend((entry, part) for part in range(count))
        self._widest = max(self._widest, self._width_of(entry))
        return count

    def _line_count(self, entry: FeedEntry) -> int:
        if not self.hex_view or entry.direction is Direction.SYSTEM:
            return 1
        return 1 + hex_line_count(len(entry.data)) + (entry.size > len(entry.data))

    def _width_of(self, entry: FeedEntry) -> int:
        if self.hex_view and entry.direction is not Direction.SYSTEM:
            return len(_INDENT) + 14 + 3 * BYTES_PER_LINE + BYTES_PER_LINE
        return len(_INDENT) + cell_len(entry.text)  # wide characters take two cells

    def _rebuild(self) -> None:
        self._rows.clear()
        self._widest = 0
        for entry in self._entries:
            self._add_rows(entry)
        self._resize()
        self.scroll_end(animate=False, x_axis=False, force=True)  # after the new size is laid out
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self._widest, len(self._rows))

    # ---- modes -----------------------------------------------------------

    def watch_hex_view(self) -> None:
        self._rebuild()
        self._update_title()

    def watch_only_client(self) -> None:
        self._rebuild()
        self._update_title()

    def watch_paused(self, paused: bool) -> None:
        self._unseen = 0
        if not paused:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self._update_title()

    def _update_title(self) -> None:
        parts = ["Feed"]
        if self.only_client is not None:
            parts.append(f"#{self.only_client} only")
        if self.hex_view:
            parts.append("hex")
        if self.paused:
            parts.append(f"PAUSED, {self._unseen} new lines" if self._unseen else "PAUSED")
        self.border_title = " · ".join(parts)

    def on_mount(self) -> None:
        self._update_title()
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self) -> None:
        self._style_cache.clear()  # label colours depend on whether the theme is dark
        self.refresh()

    # ---- drawing ---------------------------------------------------------

    def _label(self, entry: FeedEntry) -> str:
        label = "server" if entry.client_id is None else f"#{entry.client_id}"
        return label.ljust(LABEL_WIDTH)

    def _line_text(self, entry: FeedEntry, part: int) -> str:
        return "".join(text for text, _ in self._pieces(entry, part))

    def _pieces(self, entry: FeedEntry, part: int) -> list[tuple[str, str]]:
        """The line's text in pieces, each with the name of its style."""
        if part == 0:
            head = [(_clock(entry.at) + " ", "time"), (self._label(entry), "label"), (f"{entry.direction} ", "mark")]
            if entry.direction is Direction.SYSTEM:
                return [*head, (entry.text, "system")]
            if self.hex_view:
                return [*head, (format_size(entry.size), "cut")]
            return [*head, (entry.text, "data")]
        offset = (part - 1) * BYTES_PER_LINE
        if offset < len(entry.data):
            return [(_INDENT + hex_line(entry.data, offset), "data")]
        return [(_INDENT + f"… {format_size(entry.size - len(entry.data))} more not kept", "cut")]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache.clear()

    def _styles(self, entry: FeedEntry) -> dict[str, Style]:
        """The styles of one line's pieces; cached, as every repaint needs them for every line."""
        colour = None if entry.client_id is None else entry.client_id % len(_DARK_PALETTE)
        key = (colour, entry.direction)
        styles = self._style_cache.get(key)
        if styles is not None:
            return styles
        base = self.rich_style
        palette = _DARK_PALETTE if self.app.current_theme.dark else _LIGHT_PALETTE
        label = Style(bold=True) if colour is None else Style(color=palette[colour], bold=True)
        mark = {
            Direction.ECHOED: "feed--echoed",
            Direction.SENT: "feed--sent",
            Direction.SYSTEM: "feed--system",
        }[entry.direction]
        styles = {
            "time": base + self.get_component_rich_style("feed--time"),
            "label": base + label,
            "mark": base + self.get_component_rich_style(mark),
            "system": base + self.get_component_rich_style("feed--system"),
            "cut": base + self.get_component_rich_style("feed--cut"),
            "data": base + self.get_component_rich_style(mark) if entry.direction is Direction.SENT else base,
        }
        self._style_cache[key] = styles
        return styles

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        index = scroll_y + y
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        entry, part = self._rows[index]
        styles = self._styles(entry)
        strip = Strip([Segment(text, styles[style]) for text, style in self._pieces(entry, part)])
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)
