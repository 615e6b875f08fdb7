"""The ban list: every banned address with the time its ban has left, and a key to lift one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from tui_echo.server.access import ActiveBan
from tui_echo.text import format_duration

REFRESH_SECONDS = 1.0  # the time left counts down this often
_SOON_SECONDS = 0.1  # after a lift: the server applies it on its next turn


class BansScreen(ModalScreen[None]):
    """Reads the bans through ``bans`` (a ``ServerSource.bans``); a lift is a ``LiftRequested`` for the app."""

    DEFAULT_CSS = """
    BansScreen {
        align: center middle;
    }
    BansScreen > Vertical {
        width: 60;
        height: auto;
        max-height: 80%;
        padding: 0 1;
        border: thick $accent;
        background: $surface;
    }
    BansScreen #bans-title {
        text-style: bold;
    }
    BansScreen #bans-hint {
        color: $text-muted;
    }
    BansScreen DataTable {
        height: auto;
        max-height: 20;
    }
    """
    BINDINGS = [
        Binding("u,delete", "lift", "Lift ban"),
        Binding("escape,B", "close", "Close"),
    ]

    @dataclass
    class LiftRequested(Message):
        """The operator asked to lift the ban on ``address``."""

        address: str

    def __init__(self, bans: Callable[[], Sequence[ActiveBan]], clock: Callable[[], float]) -> None:
        super().__init__()
        self._bans = bans
        self._clock = clock
        self._table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Banned addresses", id="bans-title")
            yield self._table
            yield Label("u or Delete: lift the selected ban · Esc: close", id="bans-hint")

    def on_mount(self) -> None:
        self._table.add_column("address", key="address")
        self._table.add_column("time left", key="left")
        self.refresh_bans()
        self.set_interval(REFRESH_SECONDS, self.refresh_bans)
        self._table.focus()

    @property
    def addresses(self) -> list[str]:
        """The addresses listed now, in order."""
        return [str(key.value) for key in self._table.rows if key.value]

    def refresh_bans(self) -> None:
        """Show the bans in force now, keeping the cursor on its address."""
        now = self._clock()
        table = self._table
        selected = self._selected()
        table.clear()
        for ban in self._bans():
            if ban.until > now:
                table.add_row(ban.address, format_duration(ban.until - now), key=ban.address)
        if table.row_count == 0:
            table.add_row("(no bans)", "", key="")
        elif selected is not None and selected in self.addresses:
            table.move_cursor(row=table.get_row_index(selected))

    def _selected(self) -> str | None:
        table = self._table
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key or None

    def action_lift(self) -> None:
        address = self._selected()
        if address is None:
            self.notify("No ban is selected.", severity="warning")
            return
        self.post_message(self.LiftRequested(address))
        self.set_timer(_SOON_SECONDS, self.refresh_bans)

    def action_close(self) -> None:
        self.dismiss()
