"""Per-client state: the explicit context the teaching server kept in a thread.

Owned and mutated by the server's client task; readers (the monitor's
refresh, tests) may read it at any time and see exact counts. No trio, no
Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tui_echo.net import Peer


MAX_LABEL_CHARS = 64  # a label is cut to this many characters wherever it comes from


def bounded_label(text: str) -> str:
    """A label as the server keeps it: stripped and cut to MAX_LABEL_CHARS (shown escaped, wherever shown)."""
    return text.strip()[:MAX_LABEL_CHARS]


class ClientStatus(StrEnum):
    CONNECTED = "connected"
    CLOSING = "closing"  # kicked or timed out: its socket is being closed


@dataclass(slots=True, kw_only=True)
class ClientState:
    client_id: int
    peer: Peer
    connected_at: float  # wall clock
    last_activity: float  # wall clock of the last byte received (or the connect)
    messages_in: int = 0
    bytes_in: int = 0
    bytes_out: int = 0  # written to it: its echo, what others said (chat, broker), what the operator sent
    # Chat and broker: deliveries (one chat line, one broker chunk, one join/leave line) that never reached
    # it, because its queue was full or because it left before they were written. Never part of one.
    dropped_out: int = 0
    status: ClientStatus = ClientStatus.CONNECTED
    tls_version: str | None = None  # e.g. "TLSv1.3", for a client of a TLS server
    tls_cipher: str | None = None  # e.g. "TLS_AES_256_GCM_SHA384"
    # A name for a person ("alice"), set by the operator or a rule's label action; it belongs to this
    # connection (a client that reconnects starts without one). Any text: escaped wherever shown.
    label: str = ""
    fault: str = ""  # its faults as a spec (``server/faults.py``), "" without
    fault_ends: float | None = None  # wall clock at which a timed fault ends (stall=5s, reset-after=3s)
    fault_dropped: int = 0  # messages a fault dropped (drop, timeout): never sent, never in bytes_out
    fault_corrupted: int = 0  # bytes a corrupt fault flipped (sent, and counted in bytes_out)
    proxy: Peer | None = None  # the proxy that relayed it (--proxy-protocol); ``peer`` is then the real client
