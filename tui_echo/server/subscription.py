"""A subscriber's copy of the server's events: for consoles, which must never slow the echo or each other.

The primary consumer (the log or the in-process monitor) gets events through
the outbox, with backpressure on accept. A subscription is different: it is
fed synchronously where the server publishes, never blocks, never pauses
anything, and holds a bounded queue of its own.

- Data events are capped at ``data_rate`` a second (a feed shows no more);
  the rest, and those that find the queue past ``data_limit``, are dropped
  and counted in ``data_dropped``.
- Lifecycle events (connect, refusal, disconnect, notice, stop) are kept in
  order up to ``limit``. Past it, the queue is emptied and the subscription
  is *out of sync*: its reader must send a fresh snapshot of the server's
  state (``resynced``) instead of a backlog. ``lost`` counts the events
  that snapshot replaced. The server's ``stopped`` is never lost: it comes
  after that snapshot (a stop with 10,000 clients is 10,000 disconnects).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

from tui_echo.ratelimit import TokenBucket
from tui_echo.server.events import ServerEvent, ServerStopped

DATA_EVENTS_PER_SECOND = 400.0  # what the monitor's feed shows at most
DATA_EVENTS_BURST = 100.0
QUEUE_LIMIT = 2000  # events waiting for one subscriber before it goes out of sync
DATA_LIMIT = 1000  # data events are only queued while fewer than this many events wait


class Subscription:
    __slots__ = (
        "_events",
        "_limit",
        "_data_limit",
        "_bucket",
        "_data_rate",
        "_data_closed_until",
        "_ready",
        "_on_close",
        "_last_word",
        "data_dropped",
        "lost",
        "out_of_sync",
        "closed",
    )

    def __init__(
        self,
        now: float,
        on_close: Callable[[Subscription], None],
        *,
        limit: int = QUEUE_LIMIT,
        data_limit: int = DATA_LIMIT,
        data_rate: float = DATA_EVENTS_PER_SECOND,
        data_burst: float = DATA_EVENTS_BURST,
    ) -> None:
        self._events: deque[ServerEvent] = deque()
        self._limit = limit
        self._data_limit = min(data_limit, limit)
        self._data_rate = data_rate
        self._bucket = TokenBucket(data_rate, data_burst, now)
        self._data_closed_until = 0.0  # trio clock: no token before this, drop without asking the bucket
        self._ready = trio.Event()
        self._on_close = on_close
        self._last_word: ServerEvent | None = None  # a ServerStopped that came out of sync: sent after the snapshot
        self.data_dropped = 0
        self.lost = 0
        self.out_of_sync = False
        self.closed = False

    # ---- fed by the server (synchronous, never blocks) -------------------

    def data(self, event: ServerEvent, now: float) -> None:
        """Offer a data event (``now``: trio clock); dropped and counted past the rate or the queue."""
        if now < self._data_closed_until or self.out_of_sync or len(self._events) >= self._data_limit:
            self.data_dropped += 1
            return
        if not self._bucket.take(now):
            self.data_dropped += 1
            self._data_closed_until = now + 1.0 / self._data_rate  # about when the next token comes
            return
        self._events.append(event)
        self._ready.set()

    def lifecycle(self, event: ServerEvent) -> None:
        """Queue an event that must not be lost; past the limit, go out of sync instead."""
        if isinstance(event, ServerStopped) and (self.out_of_sync or len(self._events) >= self._limit):
            self._last_word = event
        if self.out_of_sync:
            self.lost += 1
            return
        if len(self._events) >= self._limit:
            self.lost += len(self._events) + 1
            self._events.clear()
            self.out_of_sync = True
        else:
            self._events.append(event)
        self._ready.set()

    # ---- read by the subscriber -------------------------------------------

    def take(self) -> list[ServerEvent]:
        """Every event waiting, oldest first."""
        events = list(self._events)
        self._events.clear()
        return events

    def resynced(self) -> None:
        """The reader has just taken a fresh snapshot (with no checkpoint since): events flow again."""
        self._events.clear()
        self.out_of_sync = False
        if self._last_word is not None:
            self._events.append(self._last_word)
            self._last_word = None

    async def wait(self) -> None:
        """Wait until there is something to take (or a snapshot to send)."""
        if not self._events and not self.out_of_sync:
            self._ready = trio.Event()
            await self._ready.wait()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._events.clear()
            self._on_close(self)
