"""Widgets that lay the screen out again only when their size can have changed.

A layout of the main screen places and paints every widget again. Textual's
``Label.update`` asks for one at every update, in case the new text is wider;
``SteadyLabel.show`` asks only when its width changes: none when its CSS
fixes the width in cells, else the text's, or its CSS ``min-width`` (in
cells) when the text is narrower. The moving cursor
(the send box's "to #12"), the filter prompt's count and the table's title
change text without changing width nearly every time.

Textual's ``Footer`` builds its keys again (a widget each, styled and laid
out) whenever its screen says its bindings may have changed: on every focus
change and every time the screen comes back from another one, the command
palette included. With ten thousand clients and a thousand echoing, that was
the largest part of a go-to from the palette: two rebuilds of the same keys,
each a layout of the whole screen. This one compares what the footer would
show with what it shows, and rebuilds only when they differ.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.binding import Binding
from textual.css.scalar import Unit
from textual.screen import Screen
from textual.widgets import Footer, Label

FooterKeys = tuple[tuple[Binding, bool, str], ...]


def footer_keys(screen: Screen[object]) -> FooterKeys:
    """Every key a footer on ``screen`` could show, with whether it is enabled and its tooltip."""
    return tuple((binding, enabled, tooltip) for _, binding, enabled, tooltip in screen.active_bindings.values())


class SteadyFooter(Footer):
    def __init__(self) -> None:
        super().__init__()
        self._shown: FooterKeys | None = None
        self.rebuilds = 0  # how often the keys were built again (a test counts them)

    def bindings_changed(self, screen: Screen[object]) -> None:
        if not (screen.app.app_focus and self.is_attached and screen is self.screen):
            super().bindings_changed(screen)  # Textual's own: it shows nothing new in these cases
            return
        keys = footer_keys(screen)
        if keys == self._shown:
            return
        self._shown = keys
        self.rebuilds += 1
        super().bindings_changed(screen)


class SteadyLabel(Label):
    """A label of plain text (no markup) that lays the screen out again only when its text's width changes."""

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(text, id=id, classes=classes, markup=False)
        self._text = text

    @property
    def text(self) -> str:
        return self._text

    def show(self, text: str) -> None:
        if text == self._text:
            return
        layout = self._width(text) != self._width(self._text)
        self._text = text
        self.update(text, layout=layout)

    def _width(self, text: str) -> int:
        width, floor = self.styles.width, self.styles.min_width
        if width is not None and width.unit == Unit.CELLS:
            return int(width.value)
        return max(cell_len(text), int(floor.value) if floor is not None and floor.unit == Unit.CELLS else 0)
