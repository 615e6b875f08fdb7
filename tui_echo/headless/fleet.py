"""The bookkeeping of a ``--workers`` server's one log: what each worker says, merged. No trio.

Each worker writes its events, one JSON record a line (``WireLog``), to a pipe its
parent reads; the parent passes them through ``Fleet.take`` into one ``EventLog``. A
client lives on one worker, so its lines stay in order. The parent keeps what a
worker's death would otherwise lose: its live clients (reported as disconnected,
with their last known counts), its counts so far (in the final totals), and the
highest id it gave out (its successor starts past it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tui_echo.net import Peer
from tui_echo.ratelimit import TokenBucket
from tui_echo.server.config import ServerConfig
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DataReceived,
    DataSent,
    DisconnectReason,
    ServerEvent,
    ServerListening,
    ServerStopped,
    ServerTotals,
    sum_totals,
)
from tui_echo.wire.events import encode_event
from tui_echo.wire.records import to_json

# A restarted worker's ids start this many of its steps past the highest the parent saw: a worker
# killed outright may have admitted clients whose events never reached its pipe.
RESTART_ID_GAP = 1000


class WireLog:
    """A worker's log: its events as wire records, for the parent to merge into one ``EventLog``.

    Every event but data goes through. Data events are thinned here, as the log would: a client's
    data goes through while the parent's log could still print it line by line (``per_client`` a
    second, ``overall`` in all, the log's own limits), and a busy client's latest event, with its
    running totals, once a second (``tick``), which is all the log's summaries need. Encoding
    every event of a busy server as JSON, and decoding it again in the parent, would cost more
    than the echo itself.
    """

    def __init__(self, per_client: int = 5, overall: int = 20) -> None:
        self._per_client = per_client
        self._overall_rate = overall
        self._buckets: dict[int, TokenBucket] = {}
        self._overall: TokenBucket | None = None
        self._latest: dict[int, ServerEvent] = {}  # a busy client's newest data event not sent

    def handle(self, event: ServerEvent) -> list[str]:
        if isinstance(event, DataReceived):
            client_id = event.client_id
            bucket = self._buckets.get(client_id)
            if bucket is None:
                bucket = self._buckets[client_id] = TokenBucket(self._per_client, self._per_client, event.at)
            if self._overall is None:
                self._overall = TokenBucket(self._overall_rate, self._overall_rate, event.at)
            if not (bucket.take(event.at) and self._overall.take(event.at)):
                self._latest[client_id] = event
                return []
            self._latest.pop(client_id, None)
        elif isinstance(event, ClientDisconnected):
            self._buckets.pop(event.client_id, None)
            self._latest.pop(event.client_id, None)  # its totals are in the disconnect
        return [to_json(encode_event(event))]

    def tick(self, now: float) -> list[str]:
        latest, self._latest = self._latest, {}
        return [to_json(encode_event(event)) for event in latest.values()]


@dataclass(slots=True)
class _Client:
    peer: Peer
    connected_at: float
    messages_in: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(slots=True)
class _Worker:
    live: dict[int, _Client] = field(default_factory=dict)
    top_id: int = 0  # the highest client id seen from this worker (any of its lives)
    listened: bool = False  # this life said "listening"
    # What its earlier lives counted (those that died: no "stopped" of theirs came).
    lost_lives: list[ServerTotals] = field(default_factory=list)
    connected: int = 0  # this life's clients so far, and the counts of those that left
    left_messages: int = 0
    left_bytes_in: int = 0
    left_bytes_out: int = 0
    stopped: ServerTotals | None = None


class Fleet:
    """The workers of one server as its log sees them."""

    def __init__(self, workers: int, config: ServerConfig) -> None:
        self.count = workers
        self._config = config  # the whole server's, as the user gave it
        self._workers = {index: _Worker() for index in range(1, workers + 1)}
        self._listening: ServerListening | None = None

    def take(self, index: int, event: ServerEvent) -> ServerEvent | None:
        """What the merged log shows of worker ``index``'s event: the event, or None (a worker's own
        ``listening`` after the first, and its ``stopped``: the parent says those once for all)."""
        worker = self._workers[index]
        match event:
            case ServerListening():
                worker.listened = True
                if self._listening is not None:
                    return None
                # Said once for the server: its settings as given (a worker's --max-clients is its share),
                # and no control socket (each worker has its own: the parent names them in a notice).
                self._listening = event = replace(event, config=self._config, control="")
            case ClientConnected():
                worker.live[event.client_id] = _Client(event.peer, event.at)
                worker.connected += 1
                worker.top_id = max(worker.top_id, event.client_id)
            case ConnectionRefused():
                worker.top_id = max(worker.top_id, event.client_id)
            case DataReceived():
                client = worker.live.get(event.client_id)
                if client is not None:
                    client.messages_in, client.bytes_in, client.bytes_out = (
                        event.messages_in,
                        event.bytes_in,
                        event.bytes_out,
                    )
            case DataSent():
                client = worker.live.get(event.client_id)
                if client is not None:
                    client.bytes_out = event.bytes_out
            case ClientDisconnected():
                worker.live.pop(event.client_id, None)
                worker.left_messages += event.messages_in
                worker.left_bytes_in += event.bytes_in
                worker.left_bytes_out += event.bytes_out
            case ServerStopped():
                worker.stopped = event.totals
                return None
        return event

    def listened(self, index: int) -> bool:
        return self._workers[index].listened

    @property
    def all_listened(self) -> bool:
        return all(worker.listened for worker in self._workers.values())

    def clients_of(self, index: int) -> int:
        return len(self._workers[index].live)

    def died(self, index: int, at: float, why: str) -> list[ClientDisconnected]:
        """Worker ``index`` is gone without a ``stopped``: its clients' disconnects (their connections
        went with it), and its counts kept for the totals. Its next life starts afresh."""
        worker = self._workers[index]
        gone = [
            ClientDisconnected(
                client_id=client_id,
                peer=client.peer,
                at=at,
                reason=DisconnectReason.ERROR,
                error=why,
                connected_at=client.connected_at,
                messages_in=client.messages_in,
                bytes_in=client.bytes_in,
                bytes_out=client.bytes_out,
            )
            for client_id, client in worker.live.items()
        ]
        for event in gone:
            self.take(index, event)
        worker.lost_lives.append(
            ServerTotals(
                clients_total=worker.connected,
                clients_now=0,
                clients_peak=0,
                refused_total=0,
                messages_in=worker.left_messages,
                bytes_in=worker.left_bytes_in,
                bytes_out=worker.left_bytes_out,
                events_skipped=0,
            )
        )
        self._workers[index] = _Worker(top_id=worker.top_id, lost_lives=worker.lost_lives)
        return gone

    def next_first_id(self, index: int) -> int:
        """The first id of worker ``index``'s next life: its own residue, past every id it gave out."""
        top = self._workers[index].top_id
        if top == 0:
            return index
        return top + self.count * RESTART_ID_GAP

    def stopped(self, at: float, skipped: int) -> ServerStopped:
        """The whole server's ``stopped``: every worker's totals summed, with those of lives that died
        (as far as their events told), and ``skipped``, the data events the parent itself dropped."""
        parts: list[ServerTotals] = []
        for worker in self._workers.values():
            parts += worker.lost_lives
            if worker.stopped is not None:
                parts.append(worker.stopped)
        totals = sum_totals(parts)
        return ServerStopped(at=at, totals=replace(totals, events_skipped=totals.events_skipped + skipped))
