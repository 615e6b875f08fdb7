"""A token bucket: the one throttle behind the feed's and the log's "at most N lines a second", and the accept
rate (and the readiness loop's sample of data events, kept as token times for its hot loop)."""

from __future__ import annotations

import math


class TokenBucket:
    """Allows ``rate`` takes a second on average and bursts of up to ``burst`` at once."""

    __slots__ = ("_rate", "_burst", "_tokens", "_since")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._since = now

    def take(self, now: float) -> bool:
        """Take one token if there is one; the bucket refills by ``rate`` a second, up to ``burst``."""
        tokens = min(self._burst, self._tokens + max(now - self._since, 0.0) * self._rate)
        self._since = now
        if tokens < 1:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1
        return True

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled to ``burst``: it then behaves as a new one, and may be forgotten."""
        return self._tokens + max(now - self._since, 0.0) * self._rate >= self._burst


class TokenTimes:
    """The same throttle kept as the time of the next token (GCRA), for a hot loop: the loop holds one float per
    client and compares ``now`` with it, calling ``after_take`` only when it takes a token. (The readiness
    loop's sample: a ``take`` call per chunk was 10 % of the plain echo's CPU per message, measured.)"""

    __slots__ = ("_interval", "_tolerance")

    FULL = -math.inf  # the next token's time of a full bucket

    def __init__(self, rate: float, burst: float) -> None:
        self._interval = 1.0 / rate
        # A nanosecond more, so that sums of the interval do not lose a token of the burst to rounding.
        self._tolerance = (burst - 1.0) * self._interval + 1e-9

    def after_take(self, next_at: float, now: float) -> float:
        """The next token's time after taking one at ``now`` (for ``now >= next_at``)."""
        return max(next_at, now - self._tolerance) + self._interval
