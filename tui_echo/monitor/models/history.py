"""Each client's last feed lines, kept apart from the shared feed: a client's own screen always has them.

Pure logic, no trio, no Textual. The feed keeps its last ``--feed-lines``
lines of everyone's, so one client's flood can push a quiet client's lines
out of it; here each client keeps its own last ``per_client`` lines. The
total is bounded too, whatever the number of clients: past ``total`` lines,
the clients that keep the most give up their oldest first, so that every
client keeps its newest few. The lines are the feed's own entries (shared,
not copied), and a client that has left keeps its lines while one of the last
``departed`` to leave. Broadcasts (one line for every client) are kept once,
the last ``broadcasts`` of them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable

from tui_echo.monitor.models.feed import FeedEntry

LINES_PER_CLIENT = 100
LINES_IN_ALL = 20_000
DEPARTED_KEPT = 200  # as many as the table shows gone rows for: a gone row opens the client's screen
BROADCASTS_KEPT = 50


class ClientHistories:
    def __init__(
        self,
        per_client: int = LINES_PER_CLIENT,
        total: int = LINES_IN_ALL,
        departed: int = DEPARTED_KEPT,
        broadcasts: int = BROADCASTS_KEPT,
    ) -> None:
        assert 0 < per_client <= total
        self._per_client = per_client
        self._limit = total
        self._lines: dict[int, list[FeedEntry]] = {}  # a list, not a deque: 10,000 clients each pay for one
        self._by_length: list[set[int]] = [set() for _ in range(per_client + 1)]  # clients by lines kept
        self._longest = 0  # no client keeps more lines than this
        self._total = 0
        self._departed: deque[int] = deque()
        self._departed_limit = departed
        self._broadcasts: deque[FeedEntry] = deque(maxlen=broadcasts)

    @property
    def total(self) -> int:
        """Lines kept, in all (broadcasts aside)."""
        return self._total

    def add(self, entries: Iterable[FeedEntry]) -> None:
        """A batch of feed lines, oldest first: each client's are kept with it."""
        for entry in entries:
            client_id = entry.client_id
            if client_id is not None:
                self._keep(client_id, entry)
            elif entry.everyone:
                self._broadcasts.append(entry)

    def left(self, client_id: int) -> None:
        """The client disconnected: its lines stay while it is one of the last DEPARTED_KEPT to leave."""
        self._departed.append(client_id)
        if len(self._departed) > self._departed_limit:
            self._forget(self._departed.popleft())

    def lines(self, client_id: int, since: float) -> list[FeedEntry]:
        """The client's kept lines, and the broadcasts from ``since`` (when it connected) on, oldest first."""
        broadcasts = [entry for entry in self._broadcasts if entry.at >= since]
        return list(heapq.merge(self._lines.get(client_id, ()), broadcasts, key=lambda entry: entry.at))

    def of(self, client_id: int, since: float, feed: Iterable[FeedEntry]) -> list[FeedEntry]:
        """What a client's screen opens with: its lines in the shared feed, or those kept here if more.

        The feed drops its oldest lines first, so it keeps the newest of each client's lines, as
        this does: whichever keeps more of them has all the other has.
        """
        from_feed = [entry for entry in feed if entry.client_id == client_id or (entry.everyone and entry.at >= since)]
        kept = self._lines.get(client_id, [])
        if sum(1 for entry in from_feed if entry.client_id == client_id) >= len(kept):
            return from_feed
        return self.lines(client_id, since)

    def _keep(self, client_id: int, entry: FeedEntry) -> None:
        lines = self._lines.get(client_id)
        if lines is None:
            lines = self._lines[client_id] = []
        count = len(lines)
        lines.append(entry)
        if count == self._per_client:
            del lines[0]  # at most per_client lines to move: cheaper than a deque per client
            return
        self._by_length[count].discard(client_id)
        self._by_length[count + 1].add(client_id)
        self._longest = max(self._longest, count + 1)
        self._total += 1
        if self._total > self._limit:
            self._trim()

    def _trim(self) -> None:
        """One line less: the oldest of a client that keeps the most."""
        while not self._by_length[self._longest]:
            self._longest -= 1
        client_id = self._by_length[self._longest].pop()
        lines = self._lines[client_id]
        del lines[0]
        self._total -= 1
        if lines:
            self._by_length[len(lines)].add(client_id)
        else:
            del self._lines[client_id]

    def _forget(self, client_id: int) -> None:
        lines = self._lines.pop(client_id, None)
        if lines is not None:
            self._by_length[len(lines)].discard(client_id)
            self._total -= len(lines)
