"""The fault form (F): give the selected client faults, change them, or clear them."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tui_echo.server.faults import Faults, FaultSpecError, parse_faults

EXAMPLES = "latency=200ms,jitter=50ms · bandwidth=10KiB/s · slicer=16B/5ms · stall=5s · timeout · reset-after=4KiB"


@dataclass(frozen=True, slots=True)
class FaultChoice:
    """What the form decided: these faults, or none (``None``: clear them)."""

    faults: Faults | None


class FaultsScreen(ModalScreen[FaultChoice | None]):
    """Dismissed with a FaultChoice (Enter or Set; Clear), or None (Esc, Cancel): nothing changes.

    A bad spec stays in the form with its error under it: nothing is sent until it reads.
    """

    DEFAULT_CSS = """
    FaultsScreen {
        align: center middle;
    }
    FaultsScreen > Vertical {
        width: 80;
        max-width: 100%;
        height: auto;
        padding: 1 2;
        border: thick $warning;
        background: $surface;
    }
    FaultsScreen #fault-error {
        color: $error;
        height: auto;
    }
    FaultsScreen #fault-examples {
        color: $text-muted;
    }
    FaultsScreen Horizontal {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    FaultsScreen Button {
        margin-left: 2;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, client: str, current: str) -> None:
        """``client``: whom, as the table names it (``#12``, ``#12@7002``)."""
        super().__init__()
        self.client = client
        self._current = current

    def compose(self) -> ComposeResult:
        now = f"now: {self._current}" if self._current else "no faults now"
        with Vertical():
            yield Label(f"Faults for {self.client} ({now})", id="fault-title")
            yield Input(self._current, placeholder="latency=200ms", id="fault-spec")
            yield Label(EXAMPLES, id="fault-examples")
            yield Label("", id="fault-error")
            with Horizontal():
                yield Button("Cancel (Esc)", id="cancel")
                yield Button("Clear", id="clear", disabled=not self._current)
                yield Button("Set (Enter)", id="set", variant="warning")

    @on(Input.Submitted)
    @on(Button.Pressed, "#set")
    def _set(self) -> None:
        spec = self.query_one("#fault-spec", Input).value
        try:
            faults = parse_faults(spec)
        except FaultSpecError as exc:
            self.query_one("#fault-error", Label).update(str(exc))
            return
        self.dismiss(FaultChoice(faults))

    @on(Button.Pressed, "#clear")
    def _clear(self) -> None:
        self.dismiss(FaultChoice(None))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
