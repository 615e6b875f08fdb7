"""What the server reports to whoever watches it (headless log, monitor, tests).

Plain frozen dataclasses: no trio, no Textual. Times are wall-clock seconds
(``time.time()``). A peer is ``(host, port)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

Peer: TypeAlias = tuple[str, int]

# Disconnect reasons. ``error: ...`` reasons are built by ``error_reason``.
CLOSED_BY_PEER = "closed by peer"
KICKED = "kicked"
IDLE_TIMEOUT = "idle timeout"
REFUSED_SERVER_FULL = "refused: server full"
SERVER_SHUTDOWN = "server shutdown"


def error_reason(exc: OSError) -> str:
    """The disconnect reason for a socket error, e.g. ``error: connection reset by peer``."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"error: {text[:1].lower()}{text[1:]}"


@dataclass(frozen=True, slots=True)
class ServerListening:
    addresses: tuple[Peer, ...]
    at: float


@dataclass(frozen=True, slots=True)
class ClientConnected:
    client_id: int
    peer: Peer
    at: float


@dataclass(frozen=True, slots=True)
class DataEchoed:
    """One received chunk, already echoed back. Totals are the client's, after this chunk."""

    client_id: int
    data: bytes
    at: float
    messages: int  # messages this chunk completed (chunk framing: 1; line framing: 0..n)
    messages_in: int
    bytes_in: int
    bytes_out: int
    skipped: int  # this client's data events dropped since the previous one delivered


@dataclass(frozen=True, slots=True)
class DataSent:
    """Bytes the operator sent to one client (send or broadcast), already written."""

    client_id: int
    data: bytes
    at: float
    bytes_out: int


@dataclass(frozen=True, slots=True)
class ClientDisconnected:
    """A client left. ``refused: ...`` reasons had no ``ClientConnected`` before them."""

    client_id: int
    peer: Peer
    at: float
    reason: str
    connected_at: float
    messages_in: int
    bytes_in: int
    bytes_out: int

    @property
    def refused(self) -> bool:
        """Refused at the door (server full): the client was never connected."""
        return self.reason.startswith("refused")


@dataclass(frozen=True, slots=True)
class ServerNotice:
    """Something the operator should know that is not a client's life: a failed command, accept trouble."""

    message: str
    at: float


@dataclass(frozen=True, slots=True)
class ServerStopped:
    at: float
    clients_total: int
    refused_total: int
    messages_in: int
    bytes_in: int
    bytes_out: int
    events_skipped: int


ServerEvent: TypeAlias = (
    ServerListening | ClientConnected | DataEchoed | DataSent | ClientDisconnected | ServerNotice | ServerStopped
)
