"""A ``ServerSource`` over a running server's control socket: the monitor, attached. No trio, no Textual.

The connection is opened and greeted before the screen opens
(``tui_echo.control.client``); from ``start`` on, an asyncio task reads
the socket in the app's own event loop and keeps a mirror of the server's
clients and totals, which the server's snapshot, events and counts messages
keep exact. Commands go out as command messages; a refusal comes back as a
notice in the feed.

One of several separate servers in one console (``client_keys``), it keys its
clients, their events and the commands for them by the console's keys, and
names its server in its notices: everything above it sees keys only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, KeysView
from pathlib import Path
from typing import Any

from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.control import protocol
from tui_echo.control.client import Connection, ConsoleError
from tui_echo.control.protocol import ProtocolError
from tui_echo.net import Peer
from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState
from tui_echo.server.commands import Ban, ForClients, Kick, Label, SendTo, ServerCommand, SetFaults
from tui_echo.server.config import Mode
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    ClientLabelled,
    ConnectionRefused,
    DataCorrupted,
    DataReceived,
    DataSent,
    DisconnectReason,
    FaultChanged,
    ServerEvent,
    ServerNotice,
    ServerStopped,
    ServerTotals,
)
from tui_echo.server.rules import RuleHits
from tui_echo.wire.events import decode_event
from tui_echo.wire.settings import ServerInfo
from tui_echo.wire.state import decode_ban, decode_client, decode_counts, decode_rule, decode_totals

# The events about one client (DataReceived: its kinds too), whose id a console of several servers keys.
_ONE_CLIENTS = (
    ClientConnected,
    ConnectionRefused,
    DataReceived,
    DataSent,
    ClientDisconnected,
    FaultChanged,
    DataCorrupted,
    ClientLabelled,
)
MISSED_DISCONNECT = "left while this console was behind (its disconnect was among the events missed)"
EVENT_LIMIT = 10_000  # events waiting for the app's tick; the server sends a few hundred a second at most
WRITE_BUFFER_LIMIT = 1 << 20  # commands waiting to go out before send() says "busy"


class RemoteSource:
    def __init__(self, connection: Connection, keys: ClientKeys = ONE_SERVER, server: int = 0) -> None:
        """``keys``, ``server``: the console's servers, and this one's place among them."""
        self.path: Path = connection.path
        self._keys, self._server = keys, server
        self._name = keys.names[server] if keys.several else ""  # what its notices start with
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False
        self.gone_reason = ""  # why the connection ended, when it did
        self.stopped_by_server = False  # the server said "stopped" (it did not just vanish)
        self._adopt(connection)

    def _adopt(self, connection: Connection) -> None:
        self._connection = connection
        self.server: ServerInfo = connection.server
        self._events: deque[ServerEvent] = deque()
        self.events_dropped = 0  # events this console had no room for (it was not drawing)
        self._gathering: protocol.SnapshotPages | None = None  # a fresh snapshot whose pages are coming
        self._load(connection.snapshot)
        # What the in-process monitor hears first: the addresses, the settings, TLS and its fingerprint.
        self._push(self.server.listening())
        self.gone_reason = ""
        self.stopped_by_server = False

    def _load(self, snapshot: dict[str, Any]) -> None:
        clients = [decode_client(record) for record in snapshot["clients"]]
        if self._name:
            for state in clients:
                state.client_id = self._key(state.client_id)
        self._clients: dict[int, ClientState] = {state.client_id: state for state in clients}
        self._totals = decode_totals(snapshot["totals"])
        self._bans = tuple(decode_ban(record) for record in snapshot["bans"])
        self._rules = tuple(decode_rule(record) for record in snapshot["rules"])
        self._data_dropped = int(snapshot["data_dropped"])

    # ---- what the app reads ------------------------------------------------

    @property
    def addresses(self) -> tuple[Peer, ...]:
        return self.server.addresses

    @property
    def started_at(self) -> float:
        return self.server.started_at

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def mode(self) -> Mode:
        return self.server.config.mode

    @property
    def origin(self) -> str:
        return f"attached to pid {self.pid} · {self.path}"

    @property
    def keys(self) -> ClientKeys:
        """How the console names clients: with one server, its ids."""
        return self._keys

    @property
    def name(self) -> str:
        """What it is, for the console's title and messages."""
        return f"pid {self.pid}"

    def clients(self) -> Iterable[ClientState]:
        return self._clients.values()

    def client(self, client_id: int) -> ClientState | None:
        """A live client's state, by id (by key, as one of several servers)."""
        return self._clients.get(client_id)

    def client_ids(self) -> KeysView[int]:
        """The live clients' ids (a view: ``in`` is a dict lookup)."""
        return self._clients.keys()

    def totals(self) -> ServerTotals:
        # "skipped" on a console is what this console did not get: the server's cap, and its own queue.
        return dataclasses.replace(
            self._totals, clients_now=len(self._clients), events_skipped=self._data_dropped + self.events_dropped
        )

    def bans(self) -> tuple[ActiveBan, ...]:
        return self._bans

    def rules(self) -> tuple[RuleHits, ...]:
        return self._rules

    def take_events(self, limit: int) -> list[ServerEvent]:
        events = self._events
        return [events.popleft() for _ in range(min(limit, len(events)))]

    # ---- running -------------------------------------------------------------

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._read(on_stopped))

    async def _read(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        connection = self._connection
        connection.sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=connection.sock, limit=protocol.MAX_LINE_BYTES + 2)
        self._writer = writer
        try:
            leftover = bytes(connection.buffer)  # read with the snapshot, not yet handled
            connection.buffer.clear()
            *lines, rest = leftover.split(b"\n")
            for line in lines:
                self._handle(protocol.decode_line(line))
            partial = rest
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    self.gone_reason = "the server closed the connection"
                    break
                self._handle(protocol.decode_line(partial + line[:-1]))
                partial = b""
        except (ConnectionError, OSError) as exc:
            self.gone_reason = f"the connection broke: {exc}"
        except (ProtocolError, ValueError, KeyError, TypeError) as exc:
            self.gone_reason = f"the server sent something this console cannot read: {exc}"
        finally:
            self._writer = None
            writer.close()
        if not self._closing:
            on_stopped(None)

    def _key(self, client_id: int) -> int:
        return self._keys.key(self._server, client_id)

    def _keyed(self, event: ServerEvent) -> ServerEvent:
        """The event as the console knows it: its client by key, a notice naming its server."""
        if isinstance(event, ServerNotice):
            return dataclasses.replace(event, message=f"{self._name}: {event.message}")
        if isinstance(event, _ONE_CLIENTS):
            return dataclasses.replace(event, client_id=self._key(event.client_id))
        return event

    def _push(self, event: ServerEvent) -> None:
        if len(self._events) >= EVENT_LIMIT:
            self.events_dropped += 1
            return
        self._events.append(event)

    def _note(self, message: str) -> None:
        self._push(ServerNotice(message=f"{self._name}: {message}" if self._name else message, at=time.time()))

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self._gathering is not None:
            self._gathering.add(message)
            self._resync_when_complete()
        elif kind == "event":
            event = decode_event(message)
            if event is not None:
                if self._name:
                    event = self._keyed(event)
                self._apply(event)
                self._push(event)
        elif kind == "counts":
            for record in message["clients"]:
                client_id, counts = decode_counts(record)
                state = self._clients.get(self._key(client_id) if self._name else client_id)
                if state is not None:
                    counts.apply_to(state)
            if "totals" in message:  # the last counts message of a tick (the others carry only clients)
                self._totals = decode_totals(message["totals"])
                self._bans = tuple(decode_ban(record) for record in message["bans"])
                self._data_dropped = int(message["data_dropped"])
            if "rules" in message:
                self._rules = tuple(decode_rule(record) for record in message["rules"])
        elif kind == "snapshot":  # this console fell behind: a fresh state instead of a backlog
            self._gathering = protocol.SnapshotPages(message)
            self._resync_when_complete()
        elif kind == "reply" and not message.get("ok"):
            self._note(f"not done: {message.get('message', message.get('error'))}")
        elif kind == "error":
            self._note(f"the server says: {message.get('message', message.get('error'))}")

    def _resync_when_complete(self) -> None:
        if self._gathering is None or not self._gathering.complete:
            return
        snapshot, self._gathering = self._gathering.snapshot, None
        before = self._clients
        self._load(snapshot)
        self._note(f"this console fell behind: {snapshot.get('lost', 0)} events missed, numbers reloaded")
        # The clients that left meanwhile: their disconnects were among the events missed. Said as such,
        # with their last counts, so that their rows leave the table as any departed client's do.
        now = time.time()
        for key, state in before.items():
            if key not in self._clients:
                gone = ClientDisconnected.of(
                    state, at=now, reason=DisconnectReason.ERROR, error=MISSED_DISCONNECT, client_id=key
                )
                self._push(gone)

    def _apply(self, event: ServerEvent) -> None:
        """Keep the mirror exact between two counts messages."""
        match event:
            case ClientConnected(client_id=client_id, peer=peer, at=at):
                self._clients[client_id] = ClientState(
                    client_id=client_id,
                    peer=peer,
                    connected_at=at,
                    last_activity=at,
                    tls_version=event.tls_version,
                    tls_cipher=event.tls_cipher,
                    proxy=event.proxy,
                )
            case ClientDisconnected(client_id=client_id):
                self._clients.pop(client_id, None)
            case ClientLabelled(client_id=client_id, label=label):
                state = self._clients.get(client_id)
                if state is not None:
                    state.label = label
            case DataReceived():
                state = self._clients.get(event.client_id)
                if state is not None:
                    state.messages_in = max(state.messages_in, event.messages_in)
                    state.bytes_in = max(state.bytes_in, event.bytes_in)
                    state.bytes_out = max(state.bytes_out, event.bytes_out)
                    state.last_activity = max(state.last_activity, event.at)
            case DataSent():
                state = self._clients.get(event.client_id)
                if state is not None:
                    state.bytes_out = max(state.bytes_out, event.bytes_out)
            case FaultChanged(client_id=client_id):
                state = self._clients.get(client_id)
                if state is not None:  # at once, not at the next counts message
                    state.fault, state.fault_ends = event.faults, event.ends_at
            case ServerStopped():
                self.stopped_by_server = True
            case _:
                pass

    def send(self, command: ServerCommand) -> bool:
        writer = self._writer
        if writer is None or writer.is_closing() or writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            return False
        if self._name:  # the server's own ids
            number = self._keys.number
            if isinstance(command, ForClients):
                command = dataclasses.replace(command, client_ids=tuple(map(number, command.client_ids)))
            elif isinstance(command, Kick | SendTo | Ban | SetFaults | Label):
                command = dataclasses.replace(command, client_id=number(command.client_id))
        name, fields = protocol.command_request(command)
        writer.write(protocol.encode_line(protocol.command_message(next(self._ids), name, **fields)))
        return True

    async def stop(self) -> None:
        """Detach: close the connection. The server and its clients carry on."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(OSError):
            self._connection.close()

    def detach_now(self) -> None:
        """Close the connection of a source never started."""
        self._connection.close()

    def reconnect(self) -> str | None:
        """Connect again to the same socket; the error's text if that fails. ``start`` it after."""
        try:
            connection = Connection.open(self.path, events=True)
        except ConsoleError as exc:
            return str(exc)
        self._adopt(connection)
        return None
