"""The help screen: every key that works on the screen it was opened over, and what the feed's marks mean.

Nothing here is written by hand: the keys come from the bindings of the app,
the screen and the project's own widgets on it, and the marks from
``Direction`` (their one definition), so the help cannot go stale. The app's
and the screen's keys are Textual's public ``active_bindings``; a widget's,
whether or not it has the focus, need Textual's private view of a node's
bindings (see ``tui_echo.monitor.private_api``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from tui_echo.monitor.models.feed import Direction
from tui_echo.monitor.private_api import node_bindings

OWN_PACKAGE = "tui_echo."  # widgets from Textual itself (the text input, the tick box) keep their usual keys


@dataclass(frozen=True, slots=True)
class KeyGroup:
    title: str
    keys: tuple[tuple[str, str], ...]  # (the keys, as shown; what they do)


def _words(name: str) -> str:
    """``ConnectionsTable`` -> ``Connections table``; ``focus_send`` -> ``Focus send``."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join([words[0].capitalize(), *(word.lower() for word in words[1:])]) if words else name


def _target(node: DOMNode, binding: Binding) -> tuple[DOMNode, str, tuple[object, ...]]:
    """The node a binding's action runs on (``app.quit`` on a screen runs on the app), the action and its
    parameters."""
    namespace, action, parameters = parse(binding.action)
    return {"app": node.app, "screen": node.screen}.get(namespace, node), action, parameters


def _enabled(node: DOMNode, binding: Binding) -> bool:
    target, action, parameters = _target(node, binding)
    return target.check_action(action, parameters) is not False


def _group(title: str, bindings: Iterable[tuple[DOMNode, Binding]]) -> KeyGroup | None:
    """One group of keys, with the keys for one action (on one node) on one line."""
    lines: dict[tuple[int, str, tuple[object, ...], str], list[str]] = {}
    for node, binding in bindings:
        target, action, parameters = _target(node, binding)
        what = binding.tooltip or binding.description or _words(action)
        lines.setdefault((id(target), action, parameters, what), []).append(node.app.get_key_display(binding))
    if not lines:
        return None
    return KeyGroup(
        title, tuple((" ".join(sorted(dict.fromkeys(keys), key=len)), key[3]) for key, keys in lines.items())
    )


def _declared(node: DOMNode, ours: bool) -> list[tuple[str, str]]:
    """The keys and actions ``node``'s classes declare (the project's, or Textual's), most derived first."""
    declared = []
    for cls in type(node).__mro__:
        if cls.__module__.startswith(OWN_PACKAGE) == ours:
            for binding in cls.__dict__.get("BINDINGS", ()):
                binding = binding if isinstance(binding, Binding) else Binding(*binding)
                declared += [(key.strip(), binding.action) for key in binding.key.split(",")]
    return declared


def key_groups(screen: Screen[object]) -> list[KeyGroup]:
    """The keys that work on ``screen``: first those that work wherever the focus is, then each widget's."""
    app = screen.app
    # The screen's and the app's keys, as Textual resolves them: the first node to bind a key has it, a
    # priority binding of the app's wins over any other, and keys whose action is off are left out.
    active = [(bound.node, bound.binding) for bound in screen.active_bindings.values() if bound.node in (app, screen)]
    # In the order they are declared: quitting (Textual's app binds ctrl+q first), the screen's keys,
    # the app's, those Textual adds as it runs (the palette's), then those of Textual's own screens.
    first = _declared(app, False) + _declared(screen, True) + _declared(app, True)
    rank: dict[tuple[str, str], int] = {}
    for place, declared in enumerate([*first, *_declared(screen, False)]):
        rank.setdefault(declared, place if place < len(first) else place + 1)
    active.sort(key=lambda bound: rank.get((bound[1].key, bound[1].action), len(first)))  # added: in between
    priority = {binding.key for _, binding in active if binding.priority}
    groups = [_group("Keys", active)]
    by_title: dict[str, list[tuple[DOMNode, Binding]]] = {}  # a widget and its parts (a prompt, its text) as one
    for widget in screen.query("*"):
        # The footer (ours: it builds its keys only when they change) shows keys; its own are Textual's scrolling.
        if type(widget).__module__.startswith(OWN_PACKAGE) and not isinstance(widget, Footer):
            title = widget.BINDING_GROUP_TITLE or _words(type(widget).__name__)
            # A text box's editing keys are Textual's usual ones: only what the project adds is listed.
            own = set(_declared(widget, True)) if isinstance(widget, Input) else None
            by_title.setdefault(title, []).extend(
                (widget, binding)
                for key, binding in node_bindings(widget)
                if key not in priority and _enabled(widget, binding) and (own is None or (key, binding.action) in own)
            )
    groups += [_group(f"{title} (when it has the focus)", keys) for title, keys in by_title.items()]
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
    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Each section's title and its lines: (the keys, as shown; what they do)."""
        return self._sections

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
