"""A console's end of the control socket, with plain blocking sockets: find a server, say hello, read.

Used by the consoles (``list``, ``events``, ``ctl``, ``web``), and by
``attach`` to connect before the screen opens (so that every problem is one
line and exit 2); the attached monitor then reads the same socket from its
own event loop (``tui_echo.monitor.remote``). No trio, no Textual.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_echo.control import protocol
from tui_echo.control.paths import ServerEntry, default_socket_path, read_entries, remove_entry
from tui_echo.control.protocol import ProtocolError, VersionMismatch
from tui_echo.wire.records import Fields
from tui_echo.wire.settings import ServerInfo, decode_server

CONNECT_SECONDS = 5.0  # for the hello; a live server answers at once
# For each read of the first snapshot: the server builds it in one go, and with 10,000 clients on a
# machine whose cores are shared many ways that took seconds of the server's turn (a 2.3 MiB snapshot).
SNAPSHOT_SECONDS = 30.0
# A command's reply comes once it has run: a kick of thousands on a machine under heavy load took
# more than CONNECT_SECONDS in the suite (load average 27 on 2 cores).
COMMAND_SECONDS = 30.0


class ConsoleError(Exception):
    """Cannot reach or talk to a server; the message is meant for the user as is."""


class ServerGone(ConsoleError):
    """The server closed the connection."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def known_servers() -> list[ServerEntry]:
    """This user's servers whose process still runs (entries of dead ones are removed)."""
    entries = []
    for entry in read_entries():
        if _pid_alive(entry.pid) and os.path.exists(entry.socket):
            entries.append(entry)
        elif not _pid_alive(entry.pid):
            remove_entry(entry)
    return entries


class TargetError(ConsoleError):
    """TARGET names no server, or nothing was named and several run."""

    def __init__(self, message: str, servers: list[ServerEntry] | None = None) -> None:
        super().__init__(message)
        self.servers = servers or []


def resolve_target(target: str | None) -> Path:
    """The control socket that TARGET (a port, a socket path or nothing) names."""
    if target is None:
        servers = known_servers()
        if len(servers) == 1:
            return Path(servers[0].socket)
        if not servers:
            raise TargetError("no running tui-echo server found; start one, or name its port or control socket")
        raise TargetError("several servers are running: name one by port or control socket", servers)
    if target.isdigit():
        port = int(target)
        sockets = sorted({entry.socket for entry in known_servers() if entry.port == port})
        if len(sockets) == 1:
            return Path(sockets[0])
        if len(sockets) > 1:
            servers = [entry for entry in known_servers() if entry.port == port]
            raise TargetError(f"several servers listen on port {port}: name one by control socket", servers)
        path = default_socket_path(port)
        if not path.exists():
            raise TargetError(f"no tui-echo server with a control socket on port {port} (nothing at {path})")
        return path
    return Path(target)


@dataclass
class Connection:
    """One hello'd connection to a server's control socket, read line by line."""

    path: Path
    sock: socket.socket
    _server: ServerInfo | None = None  # from the server's hello
    snapshot: dict[str, Any] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)  # read, not yet taken
    _gathering: protocol.SnapshotPages | None = None  # a snapshot whose pages are still coming
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def open(cls, path: Path, *, events: bool, snapshot: bool = True, role: str = "console") -> Connection:
        """Connect, trade hellos and read the first snapshot (raises ConsoleError).

        ``snapshot=False`` (with ``events=False``) asks for none: replies only, for a console that
        only sends commands (a snapshot of 10,000 clients takes the server's loop a while)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_SECONDS)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            raise ConsoleError(_connect_error(path, exc)) from None
        connection = cls(path, sock)
        try:
            hello = connection.read()
            if hello.get("type") == "error":
                raise ConsoleError(f"the server at {path} refused: {hello.get('message')}")
            try:
                protocol.check_hello(hello)
            except VersionMismatch as exc:
                raise ConsoleError(
                    f"the server at {path} speaks version {exc.theirs!r} of the control protocol and this console "
                    f"version {protocol.VERSION}: use a console from the same tui-echo release as the server"
                ) from None
            except ProtocolError as exc:
                raise ConsoleError(f"{path} does not speak this console's protocol: {exc.message}") from None
            connection._server = _server_info(hello)
            if not snapshot:
                connection.send(protocol.hello(role, events=False, snapshot=False))
                return connection
            connection.send(protocol.hello(role, events=events))
            sock.settimeout(SNAPSHOT_SECONDS)
            connection.snapshot = connection.read_until("snapshot")
            sock.settimeout(CONNECT_SECONDS)
        except (TimeoutError, OSError) as exc:
            connection.close()
            raise ConsoleError(f"the server at {path} did not answer: {exc}") from None
        except ConsoleError:
            connection.close()
            raise
        return connection

    @property
    def server(self) -> ServerInfo:
        """The server this connection talks to, as its hello said (known once ``open`` returns)."""
        assert self._server is not None, "not open yet"
        return self._server

    def send(self, record: dict[str, Any]) -> None:
        try:
            self.sock.sendall(protocol.encode_line(record))
        except OSError:
            raise ServerGone(f"the server at {self.path} went away") from None

    def read(self) -> dict[str, Any]:
        """The next message, a snapshot whole (its pages read and joined into ``clients``); raises
        ServerGone at EOF, TimeoutError if the socket has a timeout (a snapshot half read is kept
        for the next call)."""
        while True:
            message = self._read_line()
            try:
                if self._gathering is None:
                    if message["type"] != "snapshot":
                        return message
                    self._gathering = protocol.SnapshotPages(message)
                else:
                    self._gathering.add(message)
            except ProtocolError as exc:
                raise ConsoleError(f"the server sent something this console cannot read: {exc.message}") from None
            if self._gathering.complete:
                snapshot, self._gathering = self._gathering.snapshot, None
                return snapshot

    def _read_line(self) -> dict[str, Any]:
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[: newline + 1]
                try:
                    return protocol.decode_line(line)
                except ProtocolError as exc:
                    raise ConsoleError(f"the server sent something this console cannot read: {exc.message}") from None
            if len(self.buffer) > protocol.MAX_LINE_BYTES:
                raise ConsoleError("the server sent a line longer than the protocol allows")
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                raise ServerGone(f"the server at {self.path} went away")
            self.buffer += data

    def read_until(self, kind: str) -> dict[str, Any]:
        while True:
            message = self.read()
            if message["type"] == kind:
                return message
            if message["type"] == "error":
                raise ConsoleError(f"the server says: {message.get('message')}")

    def command(self, name: str, **fields: object) -> dict[str, Any]:
        """Send a command and return its reply (other messages in between are skipped); raises ConsoleError
        if no reply comes within COMMAND_SECONDS."""
        request_id = next(self._ids)
        self.send(protocol.command_message(request_id, name, **fields))
        self.sock.settimeout(COMMAND_SECONDS)
        try:
            while True:
                message = self.read()
                if message["type"] == "reply" and message.get("id") == request_id:
                    return message
                if message["type"] == "error":
                    raise ConsoleError(f"the server says: {message.get('message')}")
        except TimeoutError:
            raise ConsoleError(f"the server at {self.path} did not answer within {COMMAND_SECONDS:g} s") from None

    def close(self) -> None:
        self.sock.close()


def _server_info(hello: Fields) -> ServerInfo:
    try:
        return decode_server(hello["server"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConsoleError(f"the server's hello cannot be read: {exc}") from None


def _connect_error(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return f"no control socket at {path} (is the server running?)"
    if exc.errno == errno.ECONNREFUSED:
        return f"nothing answers on {path}: the server that made it is gone"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied on {path}: only the server's own user (or root) may attach"
    return f"cannot connect to {path}: {exc.strerror or exc}"
