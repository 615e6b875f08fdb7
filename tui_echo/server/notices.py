"""Telling the operator things: one notice now, or a count summarised at most once per period.

``Notices`` publishes a ``ServerNotice`` (never dropped). ``Paced`` is the one
"count now, report later" helper that refused connections, failed TLS
handshakes and rule hits share: the caller counts exactly as things happen and
calls ``pending()``; ``run()`` calls the report at most once per ``seconds``,
either at once and then not again within the period (``at_once``: a failure
should be seen quickly) or ``seconds`` after the first of a burst (a summary
of the burst). A flood so costs a few events a second, never one each.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from tui_echo.server.clock import WallClock
from tui_echo.server.events import ServerNotice
from tui_echo.server.outbox import EventOutbox
from tui_echo.text import plural


class Notices:
    """Publish a notice to every consumer (the log, the monitor, consoles)."""

    __slots__ = ("_outbox", "_clock")

    def __init__(self, outbox: EventOutbox, clock: WallClock) -> None:
        self._outbox = outbox
        self._clock = clock

    def say(self, message: str) -> None:
        self._outbox.lifecycle(ServerNotice(message=message, at=self._clock.now()))


class Paced:
    """Reports what was counted at most once per ``seconds``, and only when there is something new."""

    __slots__ = ("seconds", "_report", "_at_once", "_due")

    def __init__(self, seconds: float, report: Callable[[], None], *, at_once: bool) -> None:
        self.seconds = seconds
        self._report = report
        self._at_once = at_once
        self._due = trio.Event()  # set while something counted waits for its report

    def pending(self) -> None:
        """Something was counted that the next report must include."""
        self._due.set()

    async def run(self) -> None:
        """Report as ``pending`` asks, paced; asleep while nothing is pending. Runs until cancelled."""
        while True:
            await self._due.wait()
            if self._at_once:
                self.report_now()
                await trio.sleep(self.seconds)
            else:
                await trio.sleep(self.seconds)
                self.report_now()

    def report_now(self) -> None:
        """Report at once (also at the stop, so that nothing counted goes unsaid)."""
        self._due = trio.Event()
        self._report()


class Failures:
    """Failures of one kind (TLS handshakes, PROXY headers): counted exactly, said in a paced notice.

    The first one is said at once with its detail; the ones after, at most once per ``seconds``, as a
    count with the latest detail and the total, e.g. "12 TLS handshakes failed (latest ...; 40 in all)".
    """

    __slots__ = ("total", "_what", "_notices", "_unreported", "_latest", "paced")

    def __init__(self, what: tuple[str, str], notices: Notices, seconds: float) -> None:
        self.total = 0
        self._what = what  # the noun and the verb: ("TLS handshake", "failed")
        self._notices = notices
        self._unreported = 0
        self._latest = ""
        self.paced = Paced(seconds, self._report, at_once=True)

    def failed(self, detail: str) -> None:
        self.total += 1
        self._unreported += 1
        self._latest = detail
        self.paced.pending()

    def _report(self) -> None:
        count, self._unreported = self._unreported, 0
        noun, verb = self._what
        if count == 1:
            self._notices.say(f"{noun} {verb}: {self._latest}")
        elif count > 1:
            self._notices.say(f"{plural(count, noun)} {verb} (latest {self._latest}; {self.total} in all)")
