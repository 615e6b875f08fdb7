"""Server settings, shared by the CLI, the server and its consumers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from tui_echo.server.faults import Faults
from tui_echo.server.rules import Rule
from tui_echo.server.tls import TlsSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 12354  # the teaching server's port
DEFAULT_FEED_LINES = 5000  # lines the monitor's feed keeps
MAX_FEED_LINES = 100_000  # a line keeps up to about 1 KiB
DEFAULT_MAX_CLIENTS = 10_000  # clients at once, from the command line (the library's default is no limit)
DEFAULT_WRITE_TIMEOUT = 30.0  # seconds a client may take none of its echo before it is cut off
DEFAULT_BAN_SECONDS = 600.0  # how long a ban from the monitor lasts (--ban-minutes 10)
# Chat and broker: deliveries waiting for one receiver, in bytes. At least recv_size (one broker chunk)
# and the longest chat line, so that any one delivery fits an empty queue.
RELAY_QUEUE_BYTES = 1 << 20

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class Mode(StrEnum):
    """What the server does with what a client sends (--mode)."""

    ECHO = "echo"  # send it back to its sender
    CHAT = "chat"  # each complete line to every other client, as ``<#3> the line``, with joins and leaves
    BROKER = "broker"  # the raw bytes to every other client, unchanged
    DISCARD = "discard"  # read and count, send nothing (RFC 863)

    @property
    def relays(self) -> bool:
        """Whether clients' messages go to the other clients (each receiver with its own queue and writer)."""
        return self is Mode.CHAT or self is Mode.BROKER


class Framing(StrEnum):
    CHUNK = "chunk"  # one received chunk is one message, as in the teaching server
    LINE = "line"  # one newline-terminated line is one message


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_clients: int | None = None
    idle_timeout: float | None = None
    write_timeout: float | None = DEFAULT_WRITE_TIMEOUT  # None: wait for a slow reader for ever
    framing: Framing = Framing.CHUNK
    mode: Mode = Mode.ECHO
    relay_queue_bytes: int = RELAY_QUEUE_BYTES  # chat/broker: bytes waiting for one receiver before deliveries drop
    recv_size: int = 65536  # bytes read per recv; also the most one client has in flight in the server
    event_buffer: int = 4096  # events waiting for the consumer before data events are skipped
    lifecycle_backlog: int = 10_000  # lifecycle events held past a full channel before accept pauses
    max_pending_sends: int = 64  # operator sends queued per client before more are refused
    tls: TlsSettings | None = None  # serve TLS echo with these settings; None: plain TCP
    allow: tuple[Network, ...] = ()  # if any: only these may connect
    deny: tuple[Network, ...] = ()  # never these (wins over allow)
    max_per_ip: int | None = None  # clients at once from one address
    accept_rate: float | None = None  # new connections a second from one address (bursts of as many)
    ban_seconds: float = DEFAULT_BAN_SECONDS
    rules: tuple[Rule, ...] = ()  # reply rules, tried in order on each message
    fault: Faults | None = None  # --fault: every new client gets these (each with the chance of their toxicity)
    fault_seed: int | None = None  # --fault-seed: the probabilistic faults repeat from run to run
