"""A token bucket: the one throttle behind the feed's and the log's "at most N lines a second", and the accept rate."""

from __future__ import annotations


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
