"""The send box: type text, press Enter, and the exact bytes go to one client or to all.

To all is one send at a time: the ``all`` tick clears after each broadcast, so that
the next Enter never reaches every client by surprise.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Checkbox, Input

from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.monitor.widgets.steady import SteadyLabel
from tui_echo.send_text import SendTextError, parse_send_text


class _TextInput(Input):
    BINDING_GROUP_TITLE = "Send box"  # the help lists its keys with the box's
    # Shown in the footer: while typing, the letter keys type, so Enter and Esc are what the footer can offer.
    BINDINGS = [Binding("enter", "submit", "Send")]


class _TickBox(Checkbox):
    """The ``all`` tick: an X only while ticked (Textual's compact box shows one either way, in another colour)."""

    BUTTON_INNER = " "

    def watch_value(self) -> None:
        super().watch_value()
        self.BUTTON_INNER = "X" if self.value else " "


class SendBox(Horizontal):
    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding(
            "ctrl+t",
            "toggle_all",
            "To all",
            tooltip="Tick 'all': the next Enter sends to every client, once (the tick clears after the send)",
        ),
    ]

    @dataclass
    class Submitted(Message):
        """The operator asked to send ``data`` to the selected client, or to all."""

        send_box: SendBox
        data: bytes
        to_all: bool

        @property
        def control(self) -> SendBox:
            return self.send_box

    target: reactive[int | None] = reactive(None)  # the selected client
    tagged: reactive[int] = reactive(0)  # tagged clients in the table: a send goes to them (after a question)
    # A chat server: what you send goes out as "<operator> text" (privately to one client), a line of the chat.
    chat: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, keys: ClientKeys = ONE_SERVER) -> None:
        """``keys``: how the console names clients (``#12@7002`` among several servers)."""
        super().__init__(id=id)
        self.keys = keys
        self.set_class(keys.several, "-servers")  # "to #12@7002": wider than one server's ids
        self._target_label = SteadyLabel("to —", id="send-target")
        self._to_all = _TickBox("all", id="send-all", compact=True)
        self._to_all.can_focus = False  # Tab goes from the table to the feed to the text; ctrl+t or a click ticks it
        self._input = _TextInput(
            placeholder=r"text to send; \n \r \t \0 \xNN \\ escapes; Enter sends", id="send-input", compact=True
        )

    def compose(self) -> ComposeResult:
        yield self._target_label
        yield self._to_all
        yield self._input

    def watch_target(self) -> None:
        self._show_target()

    def watch_tagged(self) -> None:
        self._show_target()

    def watch_chat(self, chat: bool) -> None:
        self.set_class(chat, "-chat")
        self._show_target()

    @on(Checkbox.Changed)
    def _show_target(self) -> None:
        speaker = "<operator> " if self.chat else ""
        self.set_class(self._to_all.value, "-all")
        self.set_class(bool(self.tagged) and not self._to_all.value, "-tagged")
        if self._to_all.value:
            self._target_label.show(f"{speaker}to all")
        elif self.tagged:
            self._target_label.show(f"{speaker}to {self.tagged:,} tagged")
        elif self.target is None:
            self._target_label.show("to —")
        else:
            self._target_label.show(f"{speaker}to {self.keys.label(self.target)}")

    def focus_input(self) -> None:
        self._input.focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value:
            return
        try:
            data = parse_send_text(event.value)
        except SendTextError as error:
            self.notify(str(error), title="Not sent", severity="error")
            return  # the text stays in the box to be fixed
        to_all = self._to_all.value
        if not to_all and self.target is None and not self.tagged:
            self.notify("Select a client in the table, or tick 'all'.", title="Not sent", severity="warning")
            return
        self.post_message(self.Submitted(self, data, to_all))
        event.input.clear()
        self._to_all.value = False  # one broadcast per tick

    def action_toggle_all(self) -> None:
        self._to_all.toggle()

    def action_leave(self) -> None:
        self.screen.focus_next()
