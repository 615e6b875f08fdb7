"""The help screen: every key that works on the screen it was opened over, and what the feed's marks mean.

Nothing here is written by hand: the keys come from the bindings of the app,
the screen and the project's own widgets on it, and the marks from
``Direction`` (their one definition), so the help cannot go stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui_echo.monitor.models.feed import Direction

OWN_PACKAGE = "tui_echo."  # widgets from Textual itself (the text input, the tick box) keep their usual keys


@dataclass(frozen=True, slots=True)
class KeyGroup:
    title: str
    keys: tuple[tuple[str, str], ...]  # (the keys, as shown; what they do)


def _words(name: str) -> str:
    """``ConnectionsTable`` -> ``Connections table``; ``focus_send`` -> ``Focus send``."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join([words[0].capitalize(), *(word.lower() for word in words[1:])]) if words else name


def _enabled(node: DOMNode, binding: Binding) -> bool:
    namespace, action, parameters = parse(binding.action)
    target = {"app": node.app, "screen": node.screen}.get(namespace, node)
    return target.check_action(action, parameters) is not False


Source = tuple[DOMNode, BindingsMap, set[str]]  # a node, its bindings, and keys bound before it with priority


def _group(title: str, sources: list[Source]) -> KeyGroup | None:
    """One group of keys, with the keys for one action on one line."""
    lines: dict[tuple[str, str], list[str]] = {}
    for node, bindings, taken in sources:
        for key, binding in bindings:
            if key in taken or not _enabled(node, binding):
                continue
            what = binding.tooltip or binding.description or _words(parse(binding.action)[1])
            lines.setdefault((binding.action, what), []).append(node.app.get_key_display(binding))
    if not lines:
        return None
    return KeyGroup(
        title, tuple((" ".join(sorted(dict.fromkeys(keys), key=len)), what) for (_, what), keys in lines.items())
    )


def key_groups(screen: Screen[object]) -> list[KeyGroup]:
    """The keys that work on ``screen``: first those that work wherever the focus is, then each widget's."""
    app = screen.app
    app_bindings = app._bindings  # Textual keeps a node's merged bindings here; it offers no public view of them
    # A priority binding of the app's wins over any other binding of its key.
    priority = {key for key, binding in app_bindings if binding.priority}
    groups = [_group("Keys", [(app, app_bindings, set()), (screen, screen._bindings, priority)])]
    for widget in screen.query("*"):
        if type(widget).__module__.startswith(OWN_PACKAGE):
            title = widget.BINDING_GROUP_TITLE or _words(type(widget).__name__)
            groups.append(_group(f"{title} (when it has the focus)", [(widget, widget._bindings, priority)]))
    return [group for group in groups if group is not None]


def help_sections(groups: list[KeyGroup]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The marks first (a few lines, needed to read the feed), then the keys."""
    marks = [(str(direction), direction.meaning) for direction in Direction]
    return [("Marks in the feed", marks), *((group.title, list(group.keys)) for group in groups)]


def _section(title: str, lines: list[tuple[str, str]]) -> Group:
    table = Table.grid(padding=(0, 1))
    table.add_column(width=16, style="bold", no_wrap=True)
    table.add_column(ratio=1)  # a long meaning wraps in its own column
    for left, right in lines:
        table.add_row(left, right)
    return Group(Text(title, style="bold"), Padding(table, (0, 0, 1, 2)))


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen #help {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $primary;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", key_display="?"),
        Binding("f1", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def __init__(self, over: Screen[object]) -> None:
        """Help for the keys of ``over``, the screen it opens over."""
        super().__init__()
        self._sections = help_sections(key_groups(over))

    @property
    def text(self) -> str:
        """What the help says, one line per key or mark (for tests)."""
        return "\n".join(f"{left}  {right}" for _, lines in self._sections for left, right in lines)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as scroll:
            scroll.border_title = "Help: keys and marks"
            scroll.border_subtitle = "Esc closes"
            yield Static(Group(*(_section(title, lines) for title, lines in self._sections)))

    def action_close(self) -> None:
        self.dismiss()
