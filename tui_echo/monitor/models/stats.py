"""The stats bar's figures: the server's exact totals, rates over the last rate window, a minute of history.

Pure logic, no trio, no Textual.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from tui_echo.server.config import Mode
from tui_echo.server.events import ServerTotals
from tui_echo.net import Peer

HISTORY_SECONDS = 60  # the sparkline's span, one sample a second


def sparkline_points(history: Sequence[float]) -> list[float]:
    """A minute of msg/s as a sparkline draws it: on a log scale, log10(1 + rate), zeros first for a young server.

    So one spike does not flatten the rest: beside a 1,000 msg/s spike, 10 msg/s is a third
    of its height, not a hundredth. The label gives the peak in msg/s.
    """
    recent = list(history)[-HISTORY_SECONDS:]
    return [0.0] * (HISTORY_SECONDS - len(recent)) + [math.log10(1.0 + rate) for rate in recent]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    addresses: tuple[Peer, ...]
    mode: Mode
    uptime: float
    clients_now: int
    clients_peak: int
    clients_total: int
    refused_total: int
    messages: int
    bytes_in: int
    bytes_out: int
    messages_per_second: float
    bytes_per_second: float  # in and out together
    feed_skipped: int  # messages the feed left out
    history: tuple[float, ...]  # messages per second, one a second, oldest first
    tls_fingerprint: str | None  # the certificate's SHA-256 when serving TLS
    tls_handshakes_failed: int
    dropped_out: int  # chat, broker: deliveries that never reached their receiver
    gone: str | None = None  # an attached console's server that "stopped" or "went away": uptime stops with it


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sample:
    at: float
    messages: int
    bytes: int


class StatsModel:
    def __init__(self, addresses: tuple[Peer, ...], started_at: float, mode: Mode = Mode.ECHO) -> None:
        self._addresses = addresses
        self._mode = mode
        self._started_at = started_at
        self._window_mark = _Sample(at=started_at, messages=0, bytes=0)  # at the start of the rate window
        self._messages_rate = 0.0
        self._bytes_rate = 0.0
        self._history: deque[float] = deque(maxlen=HISTORY_SECONDS)
        self._history_mark = _Sample(at=started_at, messages=0, bytes=0)
        self.tls_fingerprint: str | None = None  # known once the server says it listens
        self._gone: tuple[str, float] | None = None

    def server_gone(self, what: str, at: float) -> None:
        """The server ``what`` ("stopped", "went away") at ``at``: the figures say so and stop counting up."""
        self._gone = (what, at)

    def stats(self, totals: ServerTotals, now: float, feed_skipped: int, window: float | None) -> Stats:
        """``window``: the length of the rate window that closed now (``RateWindow.close``), if one did."""
        sample = _Sample(at=now, messages=totals.messages_in, bytes=totals.bytes_in + totals.bytes_out)
        if window is not None:
            self._messages_rate = (sample.messages - self._window_mark.messages) / window
            self._bytes_rate = (sample.bytes - self._window_mark.bytes) / window
            self._window_mark = sample
        mark = self._history_mark
        if now - mark.at >= 1.0:
            self._history.append((sample.messages - mark.messages) / (now - mark.at))
            self._history_mark = sample
        return Stats(
            addresses=self._addresses,
            mode=self._mode,
            uptime=(now if self._gone is None else self._gone[1]) - self._started_at,
            clients_now=totals.clients_now,
            clients_peak=totals.clients_peak,
            clients_total=totals.clients_total,
            refused_total=totals.refused_total,
            messages=totals.messages_in,
            bytes_in=totals.bytes_in,
            bytes_out=totals.bytes_out,
            messages_per_second=self._messages_rate,
            bytes_per_second=self._bytes_rate,
            feed_skipped=feed_skipped,  # from the running totals: it covers the events the server skipped too
            history=tuple(self._history),
            tls_fingerprint=self.tls_fingerprint,
            tls_handshakes_failed=totals.tls_handshakes_failed,
            dropped_out=totals.dropped_out,
            gone=None if self._gone is None else self._gone[0],
        )
