"""The chat-style feed: one line per echoed chunk, operator send and client event.

A Line API widget over a bounded ring of entries: only the visible lines are
ever rendered, so adding lines costs the same however many are kept. Client
bytes arrive here already escaped (text view) or as raw bytes that only the
hex dump renders; nothing from a client is ever read as markup.

It follows the newest line unless the user scrolled up (scrolling back to the
bottom follows again) or paused it. A data line wider than the feed is cut with
a visible ``…`` rather than scrolled sideways: the hex view and the filter show
the rest, and there is no sideways scrollbar to steal a line from the view. A
system line (a notice, the TLS fingerprint) has nothing else that shows it
whole: it wraps onto lines of its own, under its text.
"""

from __future__ import annotations

import textwrap
import time
from collections import deque

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.monitor.models.feed import Direction, FeedEntry
from tui_echo.monitor.models.feed_search import normalise, spans
from tui_echo.monitor.models.hexdump import BYTES_PER_LINE, hex_line, hex_line_count
from tui_echo.text import format_size, printable

LABEL_WIDTH = 7
NAME_WIDTH = 12  # of a client's label, next to its id
_INDENT = " " * (13 + LABEL_WIDTH + 2)  # where a line's text starts: after the time, the label and the mark
MIN_WRAP_WIDTH = 20  # a system line wraps at the feed's width, but never narrower than this
_HEX_WIDTH = len(hex_line(bytes(BYTES_PER_LINE), 0))
CUT_MARK = "…"
REPLY_LABEL = "  reply "  # between a request a rule answered and the rule's reply

# Client label colours, readable on dark and on light backgrounds respectively.
_DARK_PALETTE = ("#5fafff", "#87d75f", "#ffaf5f", "#d787ff", "#5fd7d7", "#ff875f", "#d7d75f", "#ff87af")
_LIGHT_PALETTE = ("#005fd7", "#008700", "#af5f00", "#8700af", "#007f7f", "#d70000", "#7f7f00", "#d7005f")


def _dump_lines(data: bytes, size: int) -> int:
    """The hex view's lines for a chunk: its dump, and a line for what was not kept."""
    return hex_line_count(len(data)) + (size > len(data))


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


class Feed(ScrollView, can_focus=True):
    """The last ``max_entries`` feed entries, newest at the bottom."""

    COMPONENT_CLASSES = {
        "feed--time",
        "feed--system",
        "feed--sent",
        "feed--echoed",
        "feed--relayed",
        "feed--discarded",
        "feed--answered",
        "feed--cut",
        "feed--hit",
        "feed--hit-current",
    }
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
    only_clients: reactive[frozenset[int] | None] = reactive(None)  # the table's filtered clients, when asked

    def __init__(self, max_entries: int, *, id: str | None = None, keys: ClientKeys = ONE_SERVER) -> None:
        """``keys``: how the console names clients (``#12@7002`` among several servers)."""
        super().__init__(id=id)
        self.keys = keys
        self._entries: deque[FeedEntry] = deque()
        self._max_entries = max_entries
        self._rows: deque[tuple[FeedEntry, int]] = deque()  # (entry, line of it) for every shown line
        self._follow = True  # show the newest line; off while the user has scrolled up from the bottom
        self._moving = False  # the feed itself is scrolling, not the user
        self._held = 0  # while paused: the lines in the view; newer ones wait below it, unseen
        self._unseen = 0  # lines added while paused
        self._style_cache: dict[tuple[int | None, Direction], dict[str, Style]] = {}
        self._wrap_width = 0  # the width system lines were wrapped for
        self._find = ""  # the find bar's query, lower case: its hits are highlighted
        self._hit: int | None = None  # the line of the current hit (an index into _rows)

    @property
    def entries(self) -> tuple[FeedEntry, ...]:
        return tuple(self._entries)

    def shown_lines(self) -> list[str]:
        """The plain text of every line the feed would show, oldest first (for tests and copying)."""
        return [self._line_text(entry, part) for entry, part in self._rows]

    @property
    def following(self) -> bool:
        """Whether the view shows the newest line, and will show the next one."""
        return self._follow and not self.paused

    def _line_total(self) -> int:
        """The lines the view can reach: while paused, only those there when it paused."""
        return self._held if self.paused else len(self._rows)

    # ---- adding and removing ------------------------------------------

    def add(self, entries: list[FeedEntry]) -> None:
        """Append a batch of entries: one call per UI tick."""
        if not entries:
            return
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
        if self._hit is not None and dropped_rows:  # the hit's line moved up, or fell off the top
            self._hit = self._hit - dropped_rows if self._hit >= dropped_rows else None
        if self.paused:
            # Keep the same lines in view while old ones fall off the top.
            self._held = max(self._held - dropped_rows, 0)
            self._resize()
            if dropped_rows:
                self._scroll_by_itself(max(self.scroll_y - dropped_rows, 0))
            self._update_title()
        else:
            self._resize()
            self._show_newest()
        self.refresh()

    def clear(self) -> None:
        self._entries.clear()
        self._rows.clear()
        self._hit = None
        self._held = 0
        self._unseen = 0
        self._follow = True
        self._resize()
        self._update_title()
        self.refresh()

    def _shows(self, entry: FeedEntry) -> bool:
        if entry.everyone:
            return True
        clients = self.only_clients
        return (self.only_client is None or entry.client_id == self.only_client) and (
            clients is None or entry.client_id in clients
        )

    def _add_rows(self, entry: FeedEntry) -> int:
        if not self._shows(entry):
            return 0
        count = self._line_count(entry)
        self._rows.extend((entry, part) for part in range(count))
        return count

    def _line_count(self, entry: FeedEntry) -> int:
        if entry.direction is Direction.SYSTEM:
            return len(self._wrapped(entry.text))
        if not self.hex_view:
            return 1
        reply = 1 + _dump_lines(entry.reply, entry.reply_size) if entry.reply_size else 0  # a title, then its dump
        return 1 + _dump_lines(entry.data, entry.size) + reply

    def _wrapped(self, text: str) -> list[str]:
        """A system line's text, in lines that fit the feed's width after the time and label."""
        width = max(self._wrap_width - len(_INDENT), MIN_WRAP_WIDTH)
        if self._wrap_width <= 0 or len(text) <= width:  # not laid out yet, or fits: most lines
            return [text]
        return textwrap.wrap(text, width, break_on_hyphens=False) or [text]

    def _rebuild(self) -> None:
        self._rows.clear()
        self._hit = None
        for entry in self._entries:
            self._add_rows(entry)
        self._held = len(self._rows)  # a new view shows every line, paused or not
        self._unseen = 0
        self._follow = True
        self._resize()
        self._show_newest()
        self.refresh()

    def _rewrap(self) -> None:
        """Lay the rows out again for a new width, keeping the view on the same lines."""
        top = self._rows[self._top()][0] if self._top() < len(self._rows) else None
        held = self._rows[self._held - 1][0] if 0 < self._held <= len(self._rows) else None
        self._rows.clear()
        self._hit = None
        for entry in self._entries:
            self._add_rows(entry)
        if held is not None:  # just after the held entry's last line
            self._held = 1 + max(index for index, (entry, _) in enumerate(self._rows) if entry is held)
        self._resize()
        if self.following or top is None:
            self._show_newest()
        else:
            self._scroll_by_itself(next(index for index, (entry, _) in enumerate(self._rows) if entry is top))
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(0, self._line_total())  # no sideways scrolling: wide lines are cut

    # ---- following the newest line ----------------------------------------

    def _show_newest(self) -> None:
        if self.following:
            self._scroll_by_itself(self.max_scroll_y)

    def _scroll_by_itself(self, y: float) -> None:
        self._moving = True
        try:
            self.scroll_to(y=y, animate=False, immediate=True, force=True)
        finally:
            self._moving = False

    def _scroll_to(self, x: float | None = None, y: float | None = None, **options: Any) -> bool:
        # Every scroll goes through here: keys, the mouse wheel, the scrollbar, and the feed's own.
        scrolled = super()._scroll_to(x, y, **options)
        if y is not None and not self._moving:
            self._follow = self.scroll_target_y >= self.max_scroll_y  # up stops following; the bottom resumes
        return scrolled

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._wrap_width:
            self._wrap_width = width
            self._rewrap()
        self._show_newest()  # a new height moves the bottom

    # ---- modes -----------------------------------------------------------

    def watch_hex_view(self) -> None:
        self._rebuild()
        self._update_title()

    def watch_only_client(self) -> None:
        self._rebuild()
        self._update_title()

    def watch_only_clients(self) -> None:
        self._rebuild()
        self._update_title()

    def watch_paused(self, paused: bool) -> None:
        self._unseen = 0
        self._held = len(self._rows)
        self._follow = True  # resuming shows the newest line
        self._resize()
        self._show_newest()
        self._update_title()
        self.refresh()

    # ---- finding ---------------------------------------------------------

    def find(self, query: str) -> int:
        """Highlight ``query`` (any case) in the lines the view can reach; the number of lines it is in."""
        self._find = normalise(query)
        self._hit = None
        self.refresh()
        if not self._find:
            return 0
        return sum(1 for index in range(self._line_total()) if self._matches(index))

    def find_next(self, older: bool) -> bool:
        """Go to the next line with the query, older (up) or newer (down) than the current hit (or than the
        lines in view); False if there is none that way."""
        if not self._find:
            return False
        total, height = self._line_total(), self.scrollable_content_region.height
        if self._hit is not None and self._hit < total:
            start = self._hit  # from the current hit, not counting it
        else:  # from the lines in view, counting them: from the bottom going up, from the top going down
            start = min(self._top() + height, total) if older else self._top() - 1
        indices = range(start - 1, -1, -1) if older else range(start + 1, total)
        hit = next((index for index in indices if self._matches(index)), None)
        if hit is None:
            return False
        self._hit = hit
        if not self._top() <= hit < self._top() + height:  # scrolling away from the bottom stops following
            self.scroll_to(y=max(hit - height // 2, 0), animate=False, immediate=True, force=True)
        self.refresh()
        return True

    def _matches(self, index: int) -> bool:
        entry, part = self._rows[index]
        return self._find in self._line_text(entry, part).lower()

    def _highlighted(self, pieces: list[tuple[str, Style]], current: bool) -> list[Segment]:
        """The line's pieces, with the query's occurrences in the hit style."""
        found = spans("".join(text for text, _ in pieces), self._find)
        if not found:
            return [Segment(text, style) for text, style in pieces]
        hit = self.get_component_rich_style("feed--hit-current" if current else "feed--hit")
        segments, offset = [], 0
        for text, style in pieces:
            end = offset + len(text)
            cuts = sorted({offset, end, *(p for span in found for p in span if offset < p < end)})
            for start, stop in zip(cuts, cuts[1:], strict=False):
                inside = any(a <= start and stop <= b for a, b in found)
                segments.append(Segment(text[start - offset : stop - offset], style + hit if inside else style))
            offset = end
        return segments

    def _update_title(self) -> None:
        parts = ["Feed"]
        if self.only_client is not None:
            parts.append(f"{self.keys.label(self.only_client)} only")
        if self.only_clients is not None:
            count = len(self.only_clients)
            parts.append(f"{count:,} filtered client{'s' if count != 1 else ''} only")
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
        """``#17``, or ``#17 alice`` for a labelled client (its label escaped and cut: the line moves right)."""
        label = "server" if entry.client_id is None else self.keys.label(entry.client_id)
        if entry.label:
            name = printable(entry.label)
            label += " " + (name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…")
        return label.ljust(LABEL_WIDTH - 1) + " "  # a space before the mark, however long (#12@7002)

    def _line_text(self, entry: FeedEntry, part: int) -> str:
        return "".join(text for text, _ in self._pieces(entry, part, _INDENT))

    def _pieces(self, entry: FeedEntry, part: int, indent: str) -> list[tuple[str, str]]:
        """The line's text in pieces, each with the name of its style."""
        if entry.direction is Direction.SYSTEM:
            lines = self._wrapped(entry.text)
            text = lines[part] if part < len(lines) else ""
            return [*self._head(entry), (text, "system")] if part == 0 else [(_INDENT + text, "system")]
        if part == 0:
            if self.hex_view:
                sizes = [(format_size(entry.size), "cut")]
                reply = [(format_size(entry.reply_size), "cut")]
            else:
                sizes, reply = [(entry.text, "data")], [(entry.reply_text, "data")]
            return [*self._head(entry), *sizes, *(((REPLY_LABEL, "mark"), *reply) if entry.reply_size else ())]
        data, size, row = entry.data, entry.size, part - 1
        if row >= _dump_lines(data, size):  # past the request's dump: the reply's title, then its dump
            row -= _dump_lines(data, size)
            if row == 0:
                return [(indent + f"{entry.direction}{REPLY_LABEL}{format_size(entry.reply_size)}", "mark")]
            data, size, row = entry.reply, entry.reply_size, row - 1
        offset = row * BYTES_PER_LINE
        if offset < len(data):
            return [(indent + hex_line(data, offset), "data")]
        return [(indent + f"… {format_size(size - len(data))} more not kept", "cut")]

    def _head(self, entry: FeedEntry) -> list[tuple[str, str]]:
        """The time, the label, the mark, and (relayed, broadcast, answered) to whom or by which rule."""
        head = [(_clock(entry.at) + " ", "time"), (self._label(entry), "label"), (f"{entry.direction} ", "mark")]
        if entry.to:
            head.append((f"{entry.to}  ", "mark"))
        return head

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
            Direction.RELAYED: "feed--relayed",
            Direction.DISCARDED: "feed--discarded",
            Direction.ANSWERED: "feed--answered",
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

    def _top(self) -> int:
        """The first line in view. Following, it is worked out from the size now, so that the newest
        line shows even before the scroll position catches up with a resize."""
        if self.following:
            return max(self._line_total() - self.scrollable_content_region.height, 0)
        return self.scroll_offset.y

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self._top() + y
        if index >= self._line_total():
            return Strip.blank(width, self.rich_style)
        entry, part = self._rows[index]
        styles = self._styles(entry)
        # Hex lines move left on a narrow feed, so that the dump fits whole.
        indent = " " * max(min(len(_INDENT), width - _HEX_WIDTH), 0)
        pieces = [(text, styles[style]) for text, style in self._pieces(entry, part, indent)]
        if self._find:
            strip = Strip(self._highlighted(pieces, current=index == self._hit))
        else:
            strip = Strip([Segment(text, style) for text, style in pieces])
        if strip.cell_length > width:
            strip = Strip([*strip.crop(0, width - len(CUT_MARK)), Segment(CUT_MARK, styles["cut"])])
        return strip.extend_cell_length(width, self.rich_style)
