"""The reply rules: each rule with its exact hit count and its last match, refreshed every second."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from tui_echo.server.rules import RuleHits

REFRESH_SECONDS = 1.0
_COLUMNS = (("rule", "#"), ("hits", "hits"), ("last", "last hit"), ("match", "last match"), ("text", "match => reply"))


class RulesScreen(ModalScreen[None]):
    """Reads the rules through ``rules`` (a ``ServerSource.rules``)."""

    DEFAULT_CSS = """
    RulesScreen {
        align: center middle;
    }
    RulesScreen > Vertical {
        width: 90%;
        height: auto;
        max-height: 80%;
        padding: 0 1;
        border: thick $accent;
        background: $surface;
    }
    RulesScreen #rules-title {
        text-style: bold;
    }
    RulesScreen #rules-hint {
        color: $text-muted;
    }
    RulesScreen DataTable {
        height: auto;
        max-height: 20;
    }
    """
    BINDINGS = [Binding("escape,R", "close", "Close")]

    def __init__(self, rules: Callable[[], Sequence[RuleHits]], clock: Callable[[], float]) -> None:
        super().__init__()
        self._rules = rules
        self._clock = clock
        self._table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                "Reply rules: the first that matches a message answers it instead of the echo", id="rules-title"
            )
            yield self._table
            yield Label("Counts are exact; they refresh every second · Esc: close", id="rules-hint")

    def on_mount(self) -> None:
        for key, label in _COLUMNS:
            self._table.add_column(label, key=key)
        self.refresh_rules()
        self.set_interval(REFRESH_SECONDS, self.refresh_rules)
        self._table.focus()

    @property
    def rows(self) -> list[tuple[str, ...]]:
        """The cells shown now, row by row, as plain text."""
        return [tuple(cell.plain for cell in self._table.get_row_at(i)) for i in range(self._table.row_count)]

    def refresh_rules(self) -> None:
        now = self._clock()
        table = self._table
        row = table.cursor_row
        table.clear()
        rules = self._rules()
        for rule in rules:
            # Text, never a markup string: a match is client data, and a rule may hold brackets.
            table.add_row(*(Text(cell) for cell in rule.cells(now)))
        if not rules:
            table.add_row(Text("no rules: start the server with --rule or --rules"))
        table.move_cursor(row=min(row, table.row_count - 1))

    def action_close(self) -> None:
        self.dismiss()
