"""What the server reports to whoever watches it: the headless log, the monitor, tests.

Plain frozen dataclasses: no trio, no Textual. Times (``at``) are wall-clock
seconds, for display; the server keeps its deadlines on trio's clock. A peer
is ``(host, port)``. Every event that concerns one client carries that
client's exact running totals, so that a consumer that missed data events
(they are dropped under load, and counted) still shows exact numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

from tui_echo.net import Peer
from tui_echo.server.config import Mode, ServerConfig

if TYPE_CHECKING:  # a type only: the module's names stay the events themselves
    from tui_echo.server.clients import ClientState

# Data events carry at most this much of a chunk, plus its full ``size``: every consumer
# shows less than this, and it bounds what a backed-up event path can hold.
EVENT_DATA_BYTES = 1024


class DisconnectReason(StrEnum):
    """Why a connected client left. ``ERROR`` comes with the socket error's text."""

    CLOSED_BY_PEER = "closed by peer"
    KICKED = "kicked"
    IDLE_TIMEOUT = "idle timeout"
    SLOW_READER = "slow reader"  # took none of its echo for --write-timeout seconds
    SERVER_SHUTDOWN = "server shutdown"
    BANNED = "banned"  # the operator banned its address (which also kicks it)
    DENIED = "denied"  # a reload denied its address (--allow-file, --deny-file), unless --keep-denied
    FAULT = "fault"  # a fault ended it (reset-after, close-after, limit-data): the error says how
    ERROR = "error"


class RefusalReason(StrEnum):
    """Why a connection was closed at the door, before it became a client."""

    SERVER_FULL = "server full"  # --max-clients
    DENIED = "denied"  # --allow / --deny
    BANNED = "banned"  # the operator banned the address from the monitor
    RATE_LIMITED = "rate limited"  # --accept-rate
    PER_IP_LIMIT = "per-IP limit"  # --max-per-ip
    BAD_PROXY_HEADER = "bad proxy header"  # --proxy-protocol: none, a malformed one, or none within the timeout
    UNTRUSTED_PROXY = "untrusted proxy"  # --proxy-protocol from an address outside --proxy-from


@dataclass(frozen=True, slots=True)
class ServerTotals:
    """The whole server's exact counts: clients that left are included, refused ones are not."""

    clients_total: int  # clients admitted since the start
    clients_now: int
    clients_peak: int  # most clients connected at once
    refused_total: int
    messages_in: int
    bytes_in: int
    bytes_out: int
    events_skipped: int  # data events dropped because the consumer was behind
    tls_handshakes_failed: int = 0  # TLS connections that never became clients (plaintext, scanners, timeouts)
    dropped_out: int = 0  # chat/broker: deliveries that never reached their receiver (see ClientState.dropped_out)
    refused_by_reason: Mapping[RefusalReason, int] = field(default_factory=dict)  # adds up to refused_total
    rule_hits: tuple[int, ...] = ()  # messages each reply rule answered, in the rules' order
    proxy_checks: int = 0  # --proxy-protocol: connections of the proxy itself (LOCAL headers: health checks)


def sum_totals(parts: Sequence[ServerTotals]) -> ServerTotals:
    """The totals of one server made of several (``--workers``, or a console's fleet): each count summed.

    ``clients_peak`` is the sum of the parts' peaks: an upper bound of the whole's peak, since
    the parts need not have peaked at the same moment.
    """
    by_reason: Counter[RefusalReason] = Counter()
    for part in parts:
        by_reason.update(part.refused_by_reason)
    rule_hits = [0] * max((len(part.rule_hits) for part in parts), default=0)
    for part in parts:
        for index, hits in enumerate(part.rule_hits):
            rule_hits[index] += hits
    return ServerTotals(
        clients_total=sum(part.clients_total for part in parts),
        clients_now=sum(part.clients_now for part in parts),
        clients_peak=sum(part.clients_peak for part in parts),
        refused_total=sum(part.refused_total for part in parts),
        messages_in=sum(part.messages_in for part in parts),
        bytes_in=sum(part.bytes_in for part in parts),
        bytes_out=sum(part.bytes_out for part in parts),
        events_skipped=sum(part.events_skipped for part in parts),
        tls_handshakes_failed=sum(part.tls_handshakes_failed for part in parts),
        dropped_out=sum(part.dropped_out for part in parts),
        refused_by_reason=dict(by_reason),
        rule_hits=tuple(rule_hits),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerListening:
    addresses: tuple[Peer, ...]
    at: float
    config: ServerConfig  # the settings it serves with, for whoever reports them
    control: str = ""  # the control socket's path, if consoles can attach


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConnected:
    client_id: int
    peer: Peer
    at: float
    tls_version: str | None = None  # set when the client came in over TLS (after its handshake)
    tls_cipher: str | None = None
    proxy: Peer | None = None  # the proxy that relayed it (--proxy-protocol); ``peer`` is the real client


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionRefused:
    """A connection closed at the door; it never was a client (no ``ClientConnected``)."""

    client_id: int
    peer: Peer
    at: float
    reason: RefusalReason


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusalsSummary:
    """Refusals not published one by one (a flood of them): how many of each reason over ``seconds``.

    Past a few refusals a second, the server counts them instead of queueing an event for each,
    so that a flood cannot back up the event path and pause accepting for everyone else.
    """

    at: float
    seconds: float
    counts: Mapping[RefusalReason, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        """The counts as a person reads them, busiest reason first: ``denied 950, rate limited 40``."""
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{reason} {count}" for reason, count in ordered)


# The data events are built once per message on the echo's hot path: not frozen, since a frozen
# dataclass's __init__ stores each field through object.__setattr__, about four times the cost of a
# plain one (benchmarks: about 6 % of the echo's CPU). Nobody changes an event once published.
@dataclass(slots=True, kw_only=True)
class DataReceived:
    """One chunk received from a client and echoed back (other modes: the subclasses below). Totals are after it."""

    client_id: int
    data: bytes  # the chunk's first EVENT_DATA_BYTES
    size: int  # the chunk's full length
    at: float
    messages: int  # messages this chunk completed (chunk framing: 1; line framing: 0..n; a frame: 1, noise: 0)
    messages_in: int
    bytes_in: int
    bytes_out: int
    noise: bool = False  # binary framing: bytes outside any frame (before an STX), not a message
    cut: bool = False  # part of a line or frame longer than --max-frame, cut there

    @property
    def framing_note(self) -> str:
        """What the piece is when not a whole message: ``noise: outside any frame``, ``cut at --max-frame``."""
        if self.noise:
            return "noise: outside any frame"
        return "cut at --max-frame" if self.cut else ""


@dataclass(slots=True, kw_only=True)
class DataRelayed(DataReceived):
    """Chat and broker: one message passed on to the other clients (never back to its sender).

    A chat line (``data``) went out as ``<#3> `` plus the line; a broker chunk went out unchanged.
    A subclass, so that the echo path builds the plain event and pays nothing for these fields.
    """

    mode: Mode  # CHAT or BROKER
    recipients: int  # receivers it was queued for
    dropped: int  # receivers whose queue had no room for it (each counts it in its dropped_out)


@dataclass(slots=True, kw_only=True)
class DataAnswered(DataReceived):
    """Echo with reply rules: a chunk some of whose messages a rule answered instead of echoing them."""

    answered: int  # messages of this chunk a rule answered (the rest were echoed)
    rules: tuple[int, ...]  # the rules that answered them, by number, each once, in the order they first answered
    reply: bytes  # the first EVENT_DATA_BYTES of the replies, as sent (without the echoed messages)
    reply_size: int  # the replies' full length


@dataclass(slots=True, kw_only=True)
class DataDiscarded(DataReceived):
    """Discard mode: one message read and counted; nothing was sent back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSent:
    """Bytes the operator sent to one client (``SendTo``), already written. A broadcast is one ``DataBroadcast``."""

    client_id: int
    data: bytes  # the first EVENT_DATA_BYTES
    size: int  # the full length
    at: float
    bytes_out: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DataBroadcast:
    """Bytes the operator sent to every client: one event for them all (no ``DataSent`` per client).

    Published when the sends are queued; each client's ``bytes_out`` counts its copy once written.
    """

    data: bytes  # the first EVENT_DATA_BYTES, as sent (in chat mode with its "<operator> " prefix)
    size: int  # the full length
    at: float
    recipients: int  # clients it was queued for (one with max_pending_sends waiting is skipped, with a notice)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientDisconnected:
    client_id: int
    peer: Peer
    at: float
    reason: DisconnectReason
    error: str = ""  # the socket error, when ``reason`` is ``ERROR``
    connected_at: float
    messages_in: int
    bytes_in: int
    bytes_out: int
    dropped_out: int = 0  # chat/broker: deliveries that never reached it

    @property
    def why(self) -> str:
        """The reason as a person reads it, e.g. ``kicked`` or ``error: connection reset by peer``."""
        return f"{self.reason}: {self.error}" if self.error else str(self.reason)

    @classmethod
    def of(
        cls, state: ClientState, *, at: float, reason: DisconnectReason, error: str = "", client_id: int | None = None
    ) -> ClientDisconnected:
        """A client's goodbye with its last counts (``client_id``: another name for it, e.g. a console's key)."""
        return cls(
            client_id=state.client_id if client_id is None else client_id,
            peer=state.peer,
            at=at,
            reason=reason,
            error=error,
            connected_at=state.connected_at,
            messages_in=state.messages_in,
            bytes_in=state.bytes_in,
            bytes_out=state.bytes_out,
            dropped_out=state.dropped_out,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultChanged:
    """A client's faults were set, replaced or cleared (``faults`` empty), and by whom."""

    client_id: int
    at: float
    faults: str  # the spec as ``tui_echo.server.faults.format_faults`` writes it; "" once cleared
    by: str  # "--fault", "operator", "console uid 1000", "rule 2"
    ends_at: float | None = None  # wall clock at which a timed fault ends (stall=5s, reset-after=3s)

    def describe(self) -> str:
        """``fault set: latency=200ms (by operator)``, or ``fault cleared (by rule 2)``."""
        return f"fault set: {self.faults} (by {self.by})" if self.faults else f"fault cleared (by {self.by})"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataCorrupted:
    """A ``corrupt`` fault flipped bytes of one write: where, in the client's stream of bytes sent to it.

    ``offsets`` count from the first byte the client was ever sent (0), so they match what it received;
    they list at most the first 256 of one write, ``corrupted`` counts them all.
    """

    client_id: int
    at: float
    offsets: tuple[int, ...]
    corrupted: int
    corrupted_total: int  # the client's corrupted bytes so far, this write's included

    def describe(self) -> str:
        """``corrupted 2 bytes sent at offsets 17, 90 (5 in all)``."""
        shown = ", ".join(str(offset) for offset in self.offsets[:8])
        more = "…" if self.corrupted > 8 else ""
        return f"corrupted {self.corrupted} B sent at offsets {shown}{more} ({self.corrupted_total} in all)"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientLabelled:
    """A client got a label (``""``: its label was taken away), from the operator or a rule's action."""

    client_id: int
    label: str
    at: float
    rule: int | None = None  # the rule whose label action set it; None: the operator


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerNotice:
    """Something the operator should know that is not a client's life: a failed command, accept trouble."""

    message: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStopped:
    at: float
    totals: ServerTotals


ServerEvent: TypeAlias = (
    ServerListening
    | ClientConnected
    | ConnectionRefused
    | RefusalsSummary
    | DataReceived
    | DataSent
    | DataBroadcast
    | ClientDisconnected
    | FaultChanged
    | DataCorrupted
    | ClientLabelled
    | ServerNotice
    | ServerStopped
)
