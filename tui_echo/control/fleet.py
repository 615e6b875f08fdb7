"""Several control sockets as one server: the workers of a ``--workers`` server, for the consoles.

Which sockets a TARGET names (``resolve_targets``), and ``Fleet``: a connection to each,
their snapshots as one (each client with its worker), and a command sent where it
belongs: one client's to the worker that gave out its id, the server's to every worker.
No trio: the command-line consoles block, as ``client.Connection`` does.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_echo.client_keys import worker_of
from tui_echo.control.client import Connection, ConsoleError, TargetError, known_servers
from tui_echo.control.paths import ServerEntry, default_socket_path, worker_socket_path
from tui_echo.server.events import ServerStopped, sum_totals
from tui_echo.wire.events import decode_event, encode_event

INBOX_MESSAGES = 10_000  # messages read from the members, not yet taken: past it, their readers wait


def _groups(entries: list[ServerEntry]) -> list[list[ServerEntry]]:
    """Entries grouped by server: a ``--workers`` server's workers (same port) together, in worker order."""
    grouped: dict[tuple[object, ...], list[ServerEntry]] = {}
    for entry in entries:
        key: tuple[object, ...] = ("workers", entry.port) if entry.workers > 1 else ("one", entry.socket)
        grouped.setdefault(key, []).append(entry)
    return [sorted(group, key=lambda entry: entry.worker) for group in grouped.values()]


def servers() -> list[list[ServerEntry]]:
    """The running servers, each as its entries: one for a single process, one per worker."""
    return _groups(known_servers())


def resolve_targets(target: str | None) -> list[Path]:
    """The control sockets that TARGET (a port, a socket path or nothing) names: one, or a worker's each."""
    running = servers()
    if target is None:
        if len(running) == 1:
            return [Path(entry.socket) for entry in running[0]]
        if not running:
            raise TargetError("no running tui-echo server found; start one, or name its port or control socket")
        raise TargetError(
            "several servers are running: name one by port or control socket", [group[0] for group in running]
        )
    if target.isdigit():
        port = int(target)
        matching = [group for group in running if group[0].port == port]
        if len(matching) == 1:
            return [Path(entry.socket) for entry in matching[0]]
        if len(matching) > 1:
            raise TargetError(
                f"several servers listen on port {port}: name one by control socket", [g[0] for g in matching]
            )
        path = default_socket_path(port)
        if not path.exists():
            raise TargetError(f"no tui-echo server with a control socket on port {port} (nothing at {path})")
        return [path]
    path = Path(target)
    if not path.exists():  # the --control PATH a --workers server was given: its workers' sockets
        for group in running:
            if group[0].workers > 1 and all(Path(e.socket) == worker_socket_path(path, e.worker) for e in group):
                return [Path(entry.socket) for entry in group]
    return [path]


def resolve_servers(targets: list[str] | None) -> list[tuple[str, list[Path]]]:
    """Several separate servers, for one console: each TARGET's name (the port as typed, a socket's file
    name) and sockets (``resolve_targets``); ``None``: every running server (``--all``), named by port.
    Raises TargetError for a TARGET that names no server, or two that name the same one."""
    if targets is None:
        running = servers()
        if not running:
            raise TargetError("no running tui-echo server found; start one, or name its port or control socket")
        found = [(str(group[0].port), [Path(entry.socket) for entry in group]) for group in running]
    else:
        found = []
        for target in targets:
            paths = resolve_targets(target)
            same = next((name for name, known in found if known == paths), None)
            if same is not None:
                raise TargetError(f"{same} and {target} name the same server: name each server once")
            found.append((target if target.isdigit() else Path(target).name, paths))
    names = [name for name, _ in found]
    # Two sockets of the same name in different folders (or two servers on one port): their paths.
    return [(name if names.count(name) == 1 else str(paths[0]), paths) for name, paths in found]


@dataclass
class Member:
    """One connection of a fleet, and its worker (None for a server of one process)."""

    worker: int | None
    connection: Connection


class Fleet:
    """Connections to every socket of one server: what ``ctl`` reads and steers, as one ``Connection``."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members
        self.tick: float | None = None  # read() raises TimeoutError after this long with nothing
        self._inbox: queue.Queue[tuple[int, dict[str, Any] | ConsoleError]] = queue.Queue(INBOX_MESSAGES)
        self._readers: list[threading.Thread] = []
        self._stopped: dict[int, ServerStopped] = {}
        self._gone: set[int] = set()

    @classmethod
    def open(cls, paths: list[Path], *, events: bool, snapshot: bool = True) -> Fleet:
        """Connect to every socket; ``snapshot=False``: replies only (``ctl`` sending a command)."""
        members: list[Member] = []
        try:
            for path in paths:
                connection = Connection.open(path, events=events, snapshot=snapshot)
                slot = connection.server.config.worker
                members.append(Member(None if slot is None or len(paths) == 1 else slot.index, connection))
        except ConsoleError:
            for member in members:
                member.connection.close()
            raise
        return cls(members)

    def close(self) -> None:
        for member in self.members:
            member.connection.close()

    # ---- events (tui-echo events) --------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        """The next message of any member (a client's stay in order: it lives on one), as
        ``Connection.read`` gives them; one ``stopped`` event, its totals summed, once every member
        has stopped. Raises TimeoutError after ``tick`` seconds with nothing, ServerGone when a
        member went away without its ``stopped``."""
        if not self._readers:
            for index, member in enumerate(self.members):
                member.connection.sock.settimeout(None)  # the thread blocks; the queue's wait has the tick
                reader = threading.Thread(target=self._read_member, args=(index,), daemon=True)
                reader.start()
                self._readers.append(reader)
        while True:
            try:
                index, message = self._inbox.get(timeout=self.tick)
            except queue.Empty:
                raise TimeoutError from None
            if isinstance(message, ConsoleError):
                raise message
            if message.get("type") != "event" or message.get("event") != "stopped":
                return message
            event = decode_event(message)
            assert isinstance(event, ServerStopped)
            self._stopped[index] = event
            if len(self._stopped) == len(self.members):
                totals = sum_totals([stopped.totals for stopped in self._stopped.values()])
                whole = ServerStopped(at=max(stopped.at for stopped in self._stopped.values()), totals=totals)
                return {"type": "event", **encode_event(whole)}

    def _read_member(self, index: int) -> None:
        connection = self.members[index].connection
        try:
            while True:
                message = connection.read()
                self._inbox.put((index, message))
                if message.get("type") == "event" and message.get("event") == "stopped":
                    return
        except ConsoleError as exc:
            self._inbox.put((index, exc))
        except OSError:  # closed under it: the console is ending
            return

    @property
    def snapshot(self) -> dict[str, Any]:
        """The members' snapshots as one: every client (with its ``worker`` when there are several
        members), by id; the rules with their hits summed."""
        records = [
            record if m.worker is None else {**record, "worker": m.worker}
            for m in self.members
            for record in m.connection.snapshot["clients"]
        ]
        return {"clients": sorted(records, key=lambda record: int(record["client"])), "rules": self._rules()}

    def _rules(self) -> list[dict[str, Any]]:
        merged: list[dict[str, Any]] = []
        for member in self.members:
            for index, record in enumerate(member.connection.snapshot.get("rules", [])):
                if index == len(merged):
                    merged.append(dict(record))
                else:
                    merged[index]["hits"] = int(merged[index]["hits"]) + int(record["hits"])
        return merged

    def _holder(self, client_id: int) -> int:
        """The index of the member whose worker gave out ``client_id``: the ids interleave (worker K of
        N gives K, K+N, …), so no snapshot is needed; the first member for an id none gave out."""
        slots = {member.worker: index for index, member in enumerate(self.members)}
        return slots.get(worker_of(client_id, len(self.members)), 0)

    def command(self, name: str, **fields: object) -> dict[str, Any]:
        """A command to the members it concerns: one client's to its holder; a set of clients' split
        by holder (the replies' ``acted`` summed, ``gone`` joined); any other to every member. The
        reply is the first refusal, or the members' ``ok`` joined."""
        client, clients = fields.get("client"), fields.get("clients")
        if len(self.members) == 1:
            return self.members[0].connection.command(name, **fields)
        if isinstance(client, int):
            return self.members[self._holder(client)].connection.command(name, **fields)
        if isinstance(clients, list):
            shares: dict[int, list[int]] = {}
            for client_id in clients:
                shares.setdefault(self._holder(int(client_id)), []).append(int(client_id))
            parts = [(self.members[index], {**fields, "clients": ids}) for index, ids in sorted(shares.items())]
        else:
            parts = [(member, fields) for member in self.members]
        joined: dict[str, Any] = {}
        for member, share in parts:
            reply = member.connection.command(name, **share)
            if not reply.get("ok"):
                return reply
            for key, value in reply.items():
                if key == "acted" and key in joined:
                    joined[key] = int(joined[key]) + int(value)
                elif key == "gone" and key in joined:
                    joined[key] = [*joined[key], *value]
                else:
                    joined[key] = value
        return joined
