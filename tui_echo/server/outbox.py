"""The bounded event path: hand events to one consumer without ever making the echo wait for it.

Data events go straight into a bounded memory channel or, when it is full,
are dropped and counted; for ``FULL_PAUSE_SECONDS`` after that, busy clients
drop theirs without even building them. Lifecycle events (connect,
disconnect, refusal, notices, start, stop) are never dropped: past a full
channel they wait in a backlog that ``pump`` feeds in order. While that
backlog is non-empty, data events are dropped too, so that the consumer sees
everything in order. The backlog is bounded by pausing accept
(``wait_for_room``) when it is long: each live client adds at most one more
event (its disconnect).

Subscribers (consoles on the control socket, ``tui_echo.server.subscription``)
get a copy of every event, synchronously and without backpressure: each
bounds itself. With none, they cost one check per event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

from tui_echo.server.events import ServerEvent
from tui_echo.server.subscription import Subscription

FULL_PAUSE_SECONDS = 0.005  # after finding the channel full, data events are dropped unbuilt this long


class EventOutbox:
    def __init__(self, channel: trio.MemorySendChannel[ServerEvent], backlog_limit: int) -> None:
        self._channel = channel
        self._backlog: deque[ServerEvent] = deque()
        self._backlog_limit = backlog_limit
        self._backlog_changed = trio.Event()
        self._consumer_gone = False
        self._full_until = 0.0  # trio clock
        self.dropped = 0  # data events the consumer never got
        self.subscribers: list[Subscription] = []
        self.recorders: list[Callable[[ServerEvent], None]] = []  # a recording: every lifecycle event, at once

    @property
    def backlog(self) -> int:
        """Lifecycle events waiting for room in the channel."""
        return len(self._backlog)

    def subscribe(self, subscription: Subscription) -> None:
        self.subscribers = [*self.subscribers, subscription]  # a new list: never changed while fed

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscribers = [s for s in self.subscribers if s is not subscription]

    def skip_if_full(self, now: float) -> bool:
        """True, counting a dropped data event, if the channel was full moments ago (``now``: trio clock).

        Lets a busy client skip even building an event the consumer has no room for
        (unless a subscriber may want it).
        """
        if now < self._full_until and not self.subscribers:
            self.dropped += 1
            return True
        return False

    def data(self, event: ServerEvent, now: float) -> None:
        """Offer a data event; it is dropped and counted if the consumer is behind."""
        if self.subscribers:
            for subscriber in self.subscribers:
                subscriber.data(event, now)
            if now < self._full_until:  # built for the subscribers: the consumer still has no room
                self.dropped += 1
                return
        if self._backlog or not self._offer(event):
            self.dropped += 1
            if not self._consumer_gone:
                self._full_until = now + FULL_PAUSE_SECONDS

    def lifecycle(self, event: ServerEvent) -> None:
        """Publish an event that must not be lost."""
        for recorder in self.recorders:
            recorder(event)
        for subscriber in self.subscribers:
            subscriber.lifecycle(event)
        if self._consumer_gone or (not self._backlog and self._offer(event)):
            return
        if not self._consumer_gone:
            self._backlog.append(event)
            self._notify()

    def _offer(self, event: ServerEvent) -> bool:
        """Put the event in the channel if there is room now; False if not (or nobody listens)."""
        if self._consumer_gone:
            return False
        try:
            self._channel.send_nowait(event)
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._consumer_gone = True
            self._backlog.clear()
            return False
        return True

    async def wait_for_room(self) -> None:
        """Wait while the lifecycle backlog is at its limit (used to pause accept)."""
        while len(self._backlog) >= self._backlog_limit and not self._consumer_gone:
            await self._backlog_changed.wait()

    def _notify(self) -> None:
        # Wake every current waiter; later waiters wait on a fresh event.
        self._backlog_changed.set()
        self._backlog_changed = trio.Event()

    async def pump(self) -> None:
        """Move backlog events into the channel, in order, waiting for the consumer. Runs forever."""
        while True:
            while self._backlog:
                try:
                    await self._channel.send(self._backlog[0])
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._consumer_gone = True
                    self._backlog.clear()
                else:
                    self._backlog.popleft()
                self._notify()
            await self._backlog_changed.wait()

    async def drain(self) -> None:
        """Wait until every lifecycle event is in the channel."""
        while self._backlog:
            await self._backlog_changed.wait()
