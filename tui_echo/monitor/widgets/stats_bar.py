"""The stats bar: where the server listens, for how long, and how busy it is."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from tui_echo.monitor.models.stats import Stats, sparkline_points
from tui_echo.text import describe_addresses, format_count, format_duration, format_size, plural


def short_fingerprint(fingerprint: str) -> str:
    """``16:1B:A8:9E…BE:9C:EA``: enough to tell certificates apart at a glance (the feed has it whole)."""
    return f"{fingerprint[:11]}…{fingerprint[-8:]}"


class StatsText(Widget):
    COMPONENT_CLASSES = {"stats--gone"}

    stats: reactive[Stats | None] = reactive(None, layout=False)
    table_note: reactive[str] = reactive("", layout=False)  # what the table shows: filtered, frozen, tagged

    def render(self) -> Text:
        stats = self.stats
        if stats is None:
            return Text("starting…")
        text = Text(no_wrap=True, overflow="ellipsis")  # a line too long is cut, never wrapped onto the next
        if stats.gone is not None:  # an attached console's server: the last figures it had, and that it is gone
            text.append(f"server {stats.gone}", style=self.get_component_rich_style("stats--gone"))
            text.append(" · was ", style="dim")
        text.append("listening ", style="dim")
        text.append(describe_addresses(stats.addresses), style="bold")
        text.append(" · ", style="dim")
        text.append(f"{stats.mode} mode", style="bold")
        if stats.tls_fingerprint is not None:
            text.append(" TLS", style="bold")
            text.append(f" SHA-256 {short_fingerprint(stats.tls_fingerprint)}", style="dim")
        text.append("  up " if stats.gone is None else "  ran ", style="dim")  # 80 columns: room for the sparkline
        text.append(format_duration(stats.uptime))
        text.append("\nclients ", style="dim")
        text.append(f"{stats.clients_now} now", style="bold")
        if self.table_note:  # first after the count: what the operator set, before the peak and total
            text.append(f" · {self.table_note}", style="bold")
        text.append(f" · {stats.clients_peak} peak · {stats.clients_total} total")
        if stats.refused_total:
            text.append(f" · {stats.refused_total} refused", style="bold")
        if stats.tls_handshakes_failed:
            text.append(f" · {plural(stats.tls_handshakes_failed, 'TLS handshake')} failed", style="bold")
        append_traffic(
            text, stats.messages, stats.bytes_in, stats.bytes_out, stats.messages_per_second, stats.dropped_out
        )
        text.append(f" · {format_size(int(stats.bytes_per_second))}/s")
        if stats.feed_skipped:
            text.append(f" · feed skipped {format_count(stats.feed_skipped)} msgs", style="bold")
        return text


class StatsBar(Horizontal):
    """Numbers on the left, the last minute's messages per second on the right."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = StatsText(id="stats-text")
        self._history_label = Label("log msg/s · 1 min", id="history-label")
        self._sparkline = Sparkline([], summary_function=max, id="history-sparkline")
        self._history: tuple[float, ...] = ()

    def compose(self) -> ComposeResult:
        yield self._text
        with Vertical(id="history"):
            yield self._history_label
            yield self._sparkline

    def show(self, stats: Stats) -> None:
        self._text.stats = stats
        if stats.history != self._history:
            self._history = stats.history
            self._sparkline.data = sparkline_points(stats.history)
            peak = max(stats.history, default=0.0)
            self._history_label.update(f"log msg/s · 1 min · peak {format_count(peak)}")

    def show_table(self, note: str) -> None:
        """What the table shows, when it is not every client as it comes: ``showing 12 of 2,000 · filter: …``."""
        self._text.table_note = note


def append_traffic(text: Text, messages: int, bytes_in: int, bytes_out: int, rate: float, dropped: int) -> None:
    """The "messages … · in … · out …" and "rate …" lines, as the stats bar and a client's screen show them."""
    text.append("\nmessages ", style="dim")
    text.append(f"{messages:,}", style="bold")  # exact: the server's own count
    text.append(f" · in {format_size(bytes_in)} · out {format_size(bytes_out)}")
    if dropped:
        text.append(f" · dropped {dropped:,}", style="bold")  # chat and broker deliveries that never got out
    text.append("\nrate ", style="dim")
    text.append(f"{format_count(rate)} msg/s", style="bold")
