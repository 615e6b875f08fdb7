"""Hand events to a consumer without ever making the echo path wait for it.

Data events go straight into a bounded memory channel or, when it is full,
are dropped and counted; for 5 ms after that, busy clients drop theirs
without even building them. Lifecycle events (connect, disconnect, notices,
start, stop) are never dropped: past a full channel they wait in a backlog
that a pump task feeds in order. While that backlog is non-empty, data
events are dropped too, so that the consumer sees everything in order. The
backlog is bounded by pausing accept (``wait_for_room``) when it is long:
each live client adds at most one more event (its disconnect).
"""

from __future__ import annotations

from collections import deque

import trio

from tui_echo.events import ServerEvent


_FULL_PAUSE_SECONDS = 0.005  # after finding the channel full, data events are dropped unbuilt this long


class EventPublisher:
    def __init__(self, channel: trio.MemorySendChannel[ServerEvent], backlog_limit: int) -> None:
        self._channel = channel
        self._backlog: deque[ServerEvent] = deque()
        self._backlog_limit = backlog_limit
        self._backlog_changed = trio.Event()
        self._consumer_gone = False
        self._full_until = 0.0
        self.dropped = 0

    def skip_if_full(self, now: float) -> bool:
        """True, counting a dropped data event, if the channel was full moments ago.

        Lets a busy client skip even building an event the consumer has no room for.
        """
        if now < self._full_until:
            self.dropped += 1
            return True
        return False

    def data(self, event: ServerEvent) -> bool:
        """Offer a data event; False when it was dropped (full channel or backlog)."""
        if self._backlog or self._consumer_gone:
            self.dropped += 1
            return False
        try:
            self._channel.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
            self._full_until = event.at + _FULL_PAUSE_SECONDS
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._consumer_gone = True
            self.dropped += 1
            return False
        return True

    def lifecycle(self, event: ServerEvent) -> None:
        """Publish an event that must not be lost."""
        if self._consumer_gone:
            return
        if not self._backlog:
            try:
                self._channel.send_nowait(event)
                return
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._consumer_gone = True
                return
        self._backlog.append(event)
        self._notify()

    async def wait_for_room(self) -> None:
        """Wait while the lifecycle backlog is at its limit (used to pause accept)."""
        while len(self._backlog) >= self._backlog_limit and not self._consumer_gone:
            await self._wait_backlog_changed()

    def _notify(self) -> None:
        # Wake every current waiter; later waiters wait on a fresh event.
        self._backlog_changed.set()
        self._backlog_changed = trio.Event()

    async def _wait_backlog_changed(self) -> None:
        await self._backlog_changed.wait()

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
            await self._wait_backlog_changed()

    async def drain(self) -> None:
        """Wait until every lifecycle event is in the channel."""
        while self._backlog:
            await self._wait_backlog_changed()
