"""The one-line prompts that open over the table and over the feed: the table's filter (``/``), go to a client
(the palette's "Go to client…"), the feed's find (``ctrl+f``).

Each is hidden until opened, reports every change as you type (the table
filters and the feed highlights live), and names its keys in the footer while
it has the focus: the letter keys type, so Enter, Esc (and for find, the way
to the other hits) are what the footer offers.

A change is reported by a call, in the same step as the key that made it, not
by a message: Input.Changed and a message of the bar's own took three hops
through Textual's queues, and a frame drawn in between showed the character
without its effect, so that with 10,000 clients a filter keypress painted (and
laid the screen out) twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive
from textual.widgets import Input, Label

from tui_echo.monitor.widgets.steady import SteadyLabel

FILTER_HELP = "#1234 · 10.0.0.7 · :51234 · 10.0.0.0/24 · kicked · tls · a label · a|b · !term · /regex/"


class _PromptInput(Input):
    """The bar's CSS fixes the box (1fr of one line), so the text's width needs no layout: Textual's Input
    asks for a layout of the whole screen on every key (its virtual size follows the text), and with 10,000
    rows in the table that was a second layout per filter keypress."""

    virtual_size = Reactive(Size(0, 0), layout=False)


class _FilterInput(_PromptInput):
    BINDING_GROUP_TITLE = "Filter bar"  # the help lists its keys with the bar's
    BINDINGS = [Binding("enter", "submit", "Keep filter")]  # the focused input's Enter is the one the footer shows


class _GoToInput(_PromptInput):
    BINDING_GROUP_TITLE = "Go-to bar"
    BINDINGS = [Binding("enter", "submit", "Go")]


class _FindInput(_PromptInput):
    BINDING_GROUP_TITLE = "Find bar"
    BINDINGS = [Binding("enter", "submit", "Older hit")]


class PromptBar(Horizontal):
    """A label, the text, and a note on the right (a count, or what is wrong with the text); ``changed`` is
    called with the text each time it changes."""

    def __init__(self, prompt: str, text: Input, changed: Callable[[str], object], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.input = text
        self._changed = changed
        self._note = SteadyLabel(classes="prompt-note")
        self._prompt = Label(prompt, classes="prompt-label")
        self.display = False

    def compose(self) -> ComposeResult:
        yield self._prompt
        yield self.input
        yield self._note

    def on_mount(self) -> None:
        self.watch(self.input, "value", self._text_changed, init=False)  # a watcher runs at once, in the key's step

    def _text_changed(self, text: str) -> None:
        self._changed(text)

    @property
    def is_open(self) -> bool:
        return bool(self.display)

    @property
    def text(self) -> str:
        return self.input.value

    def open(self) -> None:
        self.display = True
        # At once, not as Input.focus() does (after the keys already queued): text typed or pasted right
        # after the key that opened the bar goes into it, not to the table.
        self.screen.set_focus(self.input)
        self.input.cursor_position = len(self.input.value)

    def close(self) -> None:
        self.display = False
        self.screen.focus_next()  # whatever comes after the bar: the table, or the feed

    def note(self, text: str, error: bool = False) -> None:
        self._note.show(text)
        self._note.set_class(error, "-error")

    @on(Input.Changed)
    def _reported(self, event: Input.Changed) -> None:
        event.stop()  # already reported to ``changed``


class FilterBar(PromptBar):
    """``/``: show only the table's rows that match (live); Enter keeps the filter, Esc clears it."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    @dataclass
    class Closed(Message):
        """The prompt closed: with the filter kept (Enter), or cleared (Esc)."""

        bar: FilterBar
        kept: bool

        @property
        def control(self) -> FilterBar:
            return self.bar

    def __init__(self, changed: Callable[[str], object], *, id: str | None = None) -> None:
        super().__init__("filter /", _FilterInput(placeholder=FILTER_HELP, compact=True), changed, id=id)

    @on(Input.Submitted)
    def _keep(self, event: Input.Submitted) -> None:
        event.stop()
        self.close()
        self.post_message(self.Closed(self, kept=True))

    def action_clear(self) -> None:
        self.input.value = ""  # Changed follows: the table shows every row again
        self.note("")
        self.close()
        self.post_message(self.Closed(self, kept=False))


class GoToBar(PromptBar):
    """The palette's "Go to client…": type an id, Enter puts the cursor on its row. The bar stays open for the
    next id until Esc: a go-to is then the cursor's move alone, with no screen to switch back from and nothing
    to lay out, one frame even among 10,000 rows."""

    BINDINGS = [Binding("escape", "close", "Close")]

    @dataclass
    class Go(Message):
        """Enter: go to the client(s) this text names."""

        bar: GoToBar
        text: str

        @property
        def control(self) -> GoToBar:
            return self.bar

    def __init__(self, placeholder: str, *, id: str | None = None) -> None:
        super().__init__("go to", _GoToInput(placeholder=placeholder, compact=True), self._typed, id=id)

    def _typed(self, text: str) -> None:
        self.note("")  # what the last Enter found no longer applies

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Go(self, self.text))

    def action_close(self) -> None:
        self.input.value = ""
        self.note("")
        self.close()


class FindBar(PromptBar):
    """``ctrl+f``: find text in the feed's kept lines; Enter and shift+Enter go to the older and newer hits."""

    BINDINGS = [
        Binding("shift+enter", "next(False)", "Newer hit"),
        Binding("up", "next(True)", "Older hit", show=False),  # for terminals that send Enter for shift+Enter
        Binding("down", "next(False)", "Newer hit", show=False),
        Binding("escape", "close", "Close"),
    ]

    @dataclass
    class Step(Message):
        """Go to the next hit: older (up) or newer (down)."""

        bar: FindBar
        older: bool

        @property
        def control(self) -> FindBar:
            return self.bar

    def __init__(self, changed: Callable[[str], object], *, id: str | None = None) -> None:
        placeholder = "text or hex bytes (0d 0a) in the feed's kept lines"
        super().__init__("find", _FindInput(placeholder=placeholder, compact=True), changed, id=id)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next(True)

    def action_next(self, older: bool) -> None:
        self.post_message(self.Step(self, older))

    def action_close(self) -> None:
        self.input.value = ""  # Changed follows: no more highlights
        self.note("")
        self.close()
