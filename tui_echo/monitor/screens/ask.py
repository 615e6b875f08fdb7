"""The one one-line question over a screen: which client to go to, what to call a client."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class AskScreen(ModalScreen[str | None]):
    """Dismissed with the text typed (Enter), or None (Esc)."""

    DEFAULT_CSS = """
    AskScreen {
        align: center middle;
    }
    AskScreen > Vertical {
        width: 60;
        max-width: 100%;
        height: auto;
        padding: 1 2;
        border: thick $primary;
        background: $surface;
    }
    AskScreen Input {
        margin-top: 1;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, *, placeholder: str = "", value: str = "", max_length: int = 0) -> None:
        super().__init__()
        self._question = question
        self._input = Input(value, placeholder=placeholder, max_length=max_length, id="answer")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._question, id="question")
            yield self._input

    def on_mount(self) -> None:
        self._input.focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
