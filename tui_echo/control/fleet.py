"""Several control sockets as one server: the workers of a ``--workers`` server, for the consoles.

Which sockets a TARGET names (``resolve_targets``), and ``Fleet``: a connection to each,
their clients as one list (each labelled with its worker), and a command sent where it
belongs: one client's to the worker that holds it, the server's to every worker.
No trio: the command-line consoles block, as ``client.Connection`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_echo.control.client import Connection, ConsoleError, TargetError, known_servers
from tui_echo.control.paths import ServerEntry, default_socket_path, worker_socket_path


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


@dataclass
class Member:
    """One connection of a fleet and how the tables name it ("" for a server of one process)."""

    label: str
    connection: Connection


class Fleet:
    """Connections to every socket of one server (or of several, for a console watching many)."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members

    @classmethod
    def open(cls, paths: list[Path], *, events: bool) -> Fleet:
        members: list[Member] = []
        try:
            for path in paths:
                connection = Connection.open(path, events=events)
                slot = connection.server.config.worker
                label = "" if len(paths) == 1 else (str(slot.index) if slot is not None else str(path))
                members.append(Member(label, connection))
        except ConsoleError:
            for member in members:
                member.connection.close()
            raise
        return cls(members)

    @property
    def labelled(self) -> bool:
        return len(self.members) > 1

    def close(self) -> None:
        for member in self.members:
            member.connection.close()

    def clients(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every client record of every member's snapshot, with its member's label, by client id."""
        records = [(m.label, record) for m in self.members for record in m.connection.snapshot["clients"]]
        return iter(sorted(records, key=lambda pair: int(pair[1]["client"])))

    def rules(self) -> list[dict[str, Any]]:
        """The rules (the same in every worker) with each one's hits summed over the members."""
        merged: list[dict[str, Any]] = []
        for member in self.members:
            for index, record in enumerate(member.connection.snapshot.get("rules", [])):
                if index == len(merged):
                    merged.append(dict(record))
                else:
                    merged[index]["hits"] = int(merged[index]["hits"]) + int(record["hits"])
        return merged

    def holder(self, client_id: int) -> Member:
        """The member that holds ``client_id`` (by its snapshot); the first if none does, to say so."""
        for member in self.members:
            if any(int(record["client"]) == client_id for record in member.connection.snapshot["clients"]):
                return member
        return self.members[0]

    def command(self, name: str, **fields: object) -> dict[str, Any]:
        """A command to the member it concerns: a client's to its holder, any other to every member.
        The reply is the first refusal, or the last member's ``ok``."""
        client = fields.get("client")
        targets = [self.holder(client)] if isinstance(client, int) else self.members
        reply: dict[str, Any] = {}
        for member in targets:
            reply = member.connection.command(name, **fields)
            if not reply.get("ok"):
                return reply
        return reply
