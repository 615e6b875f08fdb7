"""Counting refused connections, and deciding which ones become an event of their own.

Pure logic, no trio: times are trio's clock, passed in. Every refusal is
counted by reason, exactly. Up to ``INDIVIDUAL_PER_SECOND`` a second (a token
bucket) are published one by one, with their address; past that they are held
and published as one ``RefusalsSummary`` per ``SUMMARY_SECONDS``. A flood of
thousands of refused connects so costs a dozen events a second, never one
each, and cannot back up the event path (which would pause accept).
"""

from __future__ import annotations

from tui_echo.ratelimit import TokenBucket
from tui_echo.server.events import RefusalReason, RefusalsSummary

INDIVIDUAL_PER_SECOND = 10  # refusals published one by one, a second (bursts of as many)
SUMMARY_SECONDS = 1.0  # held refusals are summarised this long after the first of them


class RefusalCounter:
    def __init__(self) -> None:
        self.by_reason: dict[RefusalReason, int] = {}  # since the start, exact
        self.total = 0
        self._individual: TokenBucket | None = None  # made at the first refusal: the clock may not run before
        self._held: dict[RefusalReason, int] = {}
        self._held_since = 0.0

    def refused(self, reason: RefusalReason, now: float) -> bool:
        """Count one refusal; True if it should be published on its own, False if it is held for the summary."""
        self.total += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        # While a summary is pending, everything waits for it: the log reads in order.
        if self._individual is None:
            self._individual = TokenBucket(INDIVIDUAL_PER_SECOND, INDIVIDUAL_PER_SECOND, now)
        if not self._held and self._individual.take(now):
            return True
        if not self._held:
            self._held_since = now
        self._held[reason] = self._held.get(reason, 0) + 1
        return False

    def summary(self, at: float, now: float) -> RefusalsSummary | None:
        """The held refusals as one event (``at``: wall clock), or None if none are held; starts a new period."""
        if not self._held:
            return None
        held, self._held = self._held, {}
        return RefusalsSummary(at=at, seconds=max(now - self._held_since, 0.0), counts=held)
