"""Server settings, shared by the CLI, the server and its consumers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
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
DEFAULT_PROXY_HEADER_TIMEOUT = 5.0  # seconds a connection may take to send its PROXY header
DEFAULT_BAN_SECONDS = 600.0  # how long a ban from the monitor lasts (--ban-minutes 10)
# Chat and broker: deliveries waiting for one receiver, in bytes. At least recv_size (one broker chunk)
# and the longest chat line, so that any one delivery fits an empty queue.
RELAY_QUEUE_BYTES = 1 << 20
DEFAULT_MAX_FRAME = 64 * 1024  # --max-frame: the most one message (a line, a frame) may hold before it is cut
# The command line's server builds a busy plain echo client's data events at most this many a second (bursts of
# as many) while no console is attached, and always the last chunk's before the client pauses: the feed shows
# 10 lines a second of a client and the log 5, and both take their counts from the running totals.
SAMPLED_DATA_EVENTS_PER_SECOND = 20.0

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
    STX_ETX = "stx-etx"  # STX (0x02) … the first ETX (0x03) after it; bytes before an STX are noise
    LEN_U8 = "len:u8"  # a length prefix (of the payload after it), then that many bytes
    LEN_U16BE = "len:u16be"
    LEN_U16LE = "len:u16le"
    LEN_U32BE = "len:u32be"
    LEN_U32LE = "len:u32le"

    @property
    def binary(self) -> bool:
        """Whether a message is a frame of a binary protocol (neither a chunk nor a line)."""
        return self is not Framing.CHUNK and self is not Framing.LINE


@dataclass(frozen=True, slots=True)
class WorkerSlot:
    """This process is worker ``index`` (1..``count``) of a ``--workers`` server.

    Its client ids are ``first_id``, ``first_id + count``, …: interleaved, so that ids stay unique
    integers across the workers (id = k·count + index) and the worker of an id is
    ``(id - 1) % count + 1``. A restarted worker starts past the ids its predecessor gave out.
    It binds its own listening socket with SO_REUSEPORT on the port its parent holds.
    """

    index: int
    count: int
    first_id: int
    # The shared memory of the workers' client counts (server/siblings.py), inherited from the parent;
    # -1 for none. This process's own file descriptor: never on the wire.
    counts_fd: int = field(default=-1, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count or self.first_id % self.count != self.index % self.count:
            raise ValueError(f"not a worker slot: {self}")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_clients: int | None = None
    idle_timeout: float | None = None
    write_timeout: float | None = DEFAULT_WRITE_TIMEOUT  # None: wait for a slow reader for ever
    framing: Framing = Framing.CHUNK
    max_frame: int = DEFAULT_MAX_FRAME  # a longer line or frame is cut into messages this long
    mode: Mode = Mode.ECHO
    relay_queue_bytes: int = RELAY_QUEUE_BYTES  # chat/broker: bytes waiting for one receiver before deliveries drop
    recv_size: int = 65536  # bytes read per recv; also the most one client has in flight in the server
    event_buffer: int = 4096  # events waiting for the consumer before data events are skipped
    # A plain echo client's data events a second while no console is attached (SAMPLED_DATA_EVENTS_PER_SECOND);
    # None: one event per chunk, as consoles get them
    data_event_rate: float | None = None
    lifecycle_backlog: int = 10_000  # lifecycle events held past a full channel before accept pauses
    max_pending_sends: int = 64  # operator sends queued per client before more are refused
    tls: TlsSettings | None = None  # serve TLS echo with these settings; None: plain TCP
    allow: tuple[Network, ...] = ()  # if any: only these may connect
    deny: tuple[Network, ...] = ()  # never these (wins over allow)
    max_per_ip: int | None = None  # clients at once from one address
    accept_rate: float | None = None  # new connections a second from one address (bursts of as many)
    ban_seconds: float = DEFAULT_BAN_SECONDS
    rules: tuple[Rule, ...] = ()  # reply rules, tried in order on each message
    worker: WorkerSlot | None = None  # one worker of a --workers server; None: the whole server
    proxy_protocol: bool = False  # every connection starts with a PROXY header (v1 or v2) naming the real client
    proxy_from: tuple[Network, ...] = ()  # if any: only these may send a PROXY header (anyone else is refused)
    proxy_header_timeout: float = DEFAULT_PROXY_HEADER_TIMEOUT
    # What a reload (ctl reload, SIGUSR1) re-reads: one CIDR a line; reply rules (TOML). Inline --allow, --deny
    # and --rule stay as started.
    allow_files: tuple[str, ...] = ()
    deny_files: tuple[str, ...] = ()
    rules_files: tuple[str, ...] = ()
    keep_denied: bool = False  # a reload leaves connected clients it now denies alone (instead of closing them)
    metrics: tuple[str, int] | None = None  # --metrics HOST:PORT: where Prometheus scrapes (served by the service)
    fault: Faults | None = None  # --fault: every new client gets these (each with the chance of their toxicity)
    fault_seed: int | None = None  # --fault-seed: the probabilistic faults repeat from run to run
