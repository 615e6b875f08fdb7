"""Per-client state: the explicit context the teaching server kept in a thread.

Owned and mutated by the server's client task; readers (the monitor's tick,
tests) may read it at any time and see exact counts. No trio, no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tui_echo.events import Peer


class ClientStatus(StrEnum):
    CONNECTED = "connected"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(slots=True)
class ClientState:
    client_id: int
    peer: Peer
    connected_at: float  # wall clock
    last_activity: float  # wall clock of the last byte received (or the connect)
    messages_in: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    status: ClientStatus = ClientStatus.CONNECTED
    events_skipped: int = 0  # data events the consumer never saw, for this client


@dataclass(frozen=True, slots=True)
class ServerTotals:
    clients_total: int
    clients_now: int
    refused_total: int
    messages_in: int
    bytes_in: int
    bytes_out: int
    events_skipped: int
