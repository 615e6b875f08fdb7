"""The one yes/no question over a screen: for actions that are easy to regret, and for what to do next."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    """Dismissed with True for yes (its button, or ``y``), False for no (its button, ``n`` or Esc).

    Each button names its key. A question with other keys is a subclass with other ``BINDINGS``
    (``answer(True)`` and ``answer(False)``): the buttons name whichever keys those are.
    """

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > Vertical {
        width: 70;
        max-width: 100%;
        height: auto;
        padding: 1 2;
        border: thick $error;
        background: $surface;
    }
    ConfirmScreen #question {
        width: 1fr;
    }
    ConfirmScreen Horizontal {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    ConfirmScreen Button {
        margin-left: 2;
    }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str, no: str = "Cancel", *, default: bool = False) -> None:
        """``default``: the answer Enter gives at once (the focused button); no, unless said otherwise."""
        super().__init__()
        self._question = question
        self._yes = yes
        self._no = no
        self._default = default

    def _key(self, answer: bool) -> str:
        """The first key bound to this answer, as the button shows it."""
        action = f"answer({answer})"
        binding = next(b for b in self.BINDINGS if isinstance(b, Binding) and b.action == action)
        return binding.key.split(",")[0]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._question, id="question")
            with Horizontal():
                yield Button(f"{self._no} ({self._key(False)})", id="no")
                yield Button(f"{self._yes} ({self._key(True)})", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#yes" if self._default else "#no", Button).focus()  # by default, keep things as they are

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
