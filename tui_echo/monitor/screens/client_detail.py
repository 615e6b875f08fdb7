"""One client's own screen: its kept history, its exact numbers, and send and kick for it alone.

The screen reads nothing and writes nothing itself: the app hands it the
client's feed lines as they come (``add``) and its table row at every
refresh (``show``), and the screen asks for a send or a kick with a message,
which the app turns into a server command.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Label, Sparkline, Static

from tui_echo.monitor.models.feed import FeedEntry
from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.monitor.models.feed_export import ExportFormat
from tui_echo.monitor.models.stats import HISTORY_SECONDS, sparkline_points
from tui_echo.monitor.models.table import ConnectionRow
from tui_echo.monitor.screens.saving import SAVE_HELP, SaveRequested, save_commands
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.monitor.widgets.steady import SteadyFooter
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.monitor.widgets.stats_bar import append_traffic
from tui_echo.text import format_count, format_duration, printable
from tui_echo.net import format_address


class ClientScreen(Screen[None]):
    DEFAULT_CSS = """
    ClientScreen #client-numbers {
        height: 4;
        padding: 0 1;
        background: $boost;
    }
    ClientScreen #client-head {
        width: 1fr;
    }
    ClientScreen #client-rate {
        width: 30%;
        min-width: 12;
        max-width: 62;
    }
    ClientScreen #client-rate-label {
        color: $text-muted;
    }
    ClientScreen #client-sparkline {
        height: 3;
    }
    ClientScreen #client-gone {
        display: none;
        padding: 0 1;
        background: $error-muted;
        color: $text-error;
        text-style: bold;
    }
    ClientScreen.-gone #client-gone {
        display: block;
    }
    ClientScreen Feed {
        height: 1fr;
    }
    ClientScreen #send-all {
        display: none;  /* this screen sends to its client alone */
    }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the main screen"),
        Binding("x", "hex", "Hex", tooltip="Its data as a hex and ASCII dump (again: text)"),
        Binding("s", "focus_send", "Send", tooltip="Go to the send box: to this client alone (Esc leaves it)"),
        Binding("k", "kick", "Kick", tooltip="Kick this client"),
        Binding("w", "save('text')", "Save", show=False, tooltip=SAVE_HELP.format("text")),
        Binding("W", "save('jsonl')", "Save JSON", show=False, tooltip=SAVE_HELP.format("JSON Lines")),
    ]

    @dataclass
    class SendRequested(Message):
        """The operator asked to send ``data`` to this screen's client."""

        screen: ClientScreen
        client_id: int
        data: bytes

        @property
        def control(self) -> ClientScreen:
            return self.screen

    @dataclass
    class KickRequested(Message):
        """The operator asked to kick this screen's client."""

        screen: ClientScreen
        client_id: int

        @property
        def control(self) -> ClientScreen:
            return self.screen

    def __init__(
        self,
        row: ConnectionRow,
        history: Iterable[FeedEntry],
        max_entries: int,
        now: float,
        *,
        chat: bool = False,
        keys: ClientKeys = ONE_SERVER,
    ) -> None:
        """``row``: the client's table row at ``now``; ``history``: its kept feed lines, oldest first;
        ``max_entries``: how many lines to keep, as the main feed does; ``chat``: a chat server's (the
        send box speaks as the operator, privately); ``keys``: how the console names clients."""
        super().__init__()
        self.client_id = row.client_id
        self.client_name = row.name  # #12, or #12@7002 among several servers
        self._row = row
        self._now = now
        self._waiting: list[FeedEntry] | None = list(history)  # lines for the feed, until it is mounted
        self._rates: deque[float] = deque(maxlen=HISTORY_SECONDS)  # the row's msg/s, one a second
        self._next_sample = 0.0
        self._head = Static(id="client-head")
        self._rate_label = Label("log msg/s, last minute", id="client-rate-label")
        self._sparkline = Sparkline([], summary_function=max, id="client-sparkline")
        self._gone = Label(id="client-gone")
        self._feed = Feed(max_entries, id="client-feed", keys=keys)
        self._send_box = SendBox(id="client-send", keys=keys)
        self._send_box.chat = chat

    @property
    def gone(self) -> bool:
        return self._row.gone

    @property
    def history(self) -> tuple[FeedEntry, ...]:
        """The client's lines now kept, oldest first."""
        return tuple(self._waiting) if self._waiting is not None else self._feed.entries

    def compose(self) -> ComposeResult:
        with Horizontal(id="client-numbers"):
            yield self._head
            with Vertical(id="client-rate"):
                yield self._rate_label
                yield self._sparkline
        yield self._gone
        yield self._feed
        yield self._send_box
        yield SteadyFooter()

    def on_mount(self) -> None:
        self._send_box.target = self.client_id
        waiting, self._waiting = self._waiting or [], None
        self._feed.only_client = self.client_id  # its title says whose lines these are
        self._feed.add(waiting)
        self._feed.focus()
        self._show_row()

    # ---- what the app hands over -------------------------------------------

    def add(self, entries: Iterable[FeedEntry]) -> None:
        """A batch of new feed lines (everyone's): this client's are kept, and broadcasts (to it too)."""
        mine = [entry for entry in entries if entry.client_id == self.client_id or entry.everyone]
        if not mine:
            return
        if self._waiting is not None:
            self._waiting += mine
        else:
            self._feed.add(mine)

    def show(self, row: ConnectionRow | None, now: float) -> None:
        """The client's table row at a refresh, or ``None`` once its row has left the table."""
        self._now = now
        if row is not None:
            self._row = row
        elif not self._row.gone:  # gone unseen (a burst of departures pushed its row out): no reason known
            self._row = replace(self._row, status="disconnected", rate=0.0, ended_at=now)
        if not self._row.gone and now >= self._next_sample:
            self._next_sample = now + 1.0
            self._rates.append(self._row.rate)
            self._sparkline.data = sparkline_points(self._rates)
            self._rate_label.update(f"log msg/s, last minute · peak {format_count(max(self._rates))}")
        if self.is_mounted:
            self._show_row()

    def _show_row(self) -> None:
        row = self._row
        ended = row.ended_at or self._now
        text = Text()
        text.append(row.name, style="bold")
        if row.label:
            text.append(f" {printable(row.label)}", style="bold italic")  # Text, not markup: shown as written
        text.append(f"  {format_address(row.peer)}  ")
        if row.proxy is not None:
            text.append(f"via proxy {format_address(row.proxy)}  ", style="dim")
        text.append(row.status, style="bold italic" if row.gone else "bold")
        text.append("\nsince ", style="dim")
        text.append(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.connected_at)))
        text.append(f" · {format_duration(ended - row.connected_at)}")
        append_traffic(text, row.messages, row.bytes_in, row.bytes_out, row.rate, row.dropped_out)
        text.append(" · faulted" if row.held_by_fault else f" · idle {format_duration(ended - row.last_activity)}")
        if row.fault and not row.gone:
            text.append("\nfault ", style="dim")
            text.append(row.fault_text(self._now), style="bold")
            text.append("  (F in the table changes or clears it)", style="dim")
        self._head.update(text)
        if row.gone and not self.has_class("-gone"):
            self.add_class("-gone")
            self.refresh_bindings()  # send and kick show as off
            self._gone.update(
                f"{row.name} disconnected: {row.status}, after {format_duration(ended - row.connected_at)}. "
                "Its history stays here; Esc goes back."
            )
            self._send_box.disabled = True

    # ---- the operator ------------------------------------------------------

    @on(SendBox.Submitted)
    def _send(self, event: SendBox.Submitted) -> None:
        event.stop()  # for this client alone, not for the main screen's selection
        self.post_message(self.SendRequested(self, self.client_id, event.data))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if self.gone and action in ("kick", "focus_send") else True

    def action_back(self) -> None:
        self.dismiss()

    def action_hex(self) -> None:
        self._feed.hex_view = not self._feed.hex_view

    def action_focus_send(self) -> None:
        if self.gone:
            self.notify(f"{self.client_name} has left: nothing can be sent to it.", severity="warning")
        else:
            self._send_box.focus_input()

    def action_kick(self) -> None:
        if self.gone:
            self.notify(f"{self.client_name} has already left.", severity="warning")
        else:
            self.post_message(self.KickRequested(self, self.client_id))

    def action_save(self, kind: str) -> None:
        """Save the client's kept lines to a new file (the app writes it)."""
        subject, what = f"client{self.client_name.removeprefix('#').replace('@', '-')}", f"{self.client_name}'s history"
        self.post_message(SaveRequested(self.history, ExportFormat(kind), subject, what))

    def system_commands(self) -> Iterable[SystemCommand]:
        """What the palette offers over this screen (besides Textual's own)."""
        yield from save_commands(f"Save {self.client_name}'s history", "its kept lines", self.action_save)
        yield SystemCommand(f"Kick {self.client_name}", "Disconnect this client (k)", self.action_kick)
        yield SystemCommand("Hex view", "Show its data as a hex and ASCII dump, or as text (x)", self.action_hex)
        yield SystemCommand("Send text", f"Go to the send box, to {self.client_name} alone (s)", self.action_focus_send)
        yield SystemCommand("Back", "Back to the main screen (Esc)", self.action_back)
