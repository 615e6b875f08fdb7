"""A ``ServerSource`` over several control sockets at once: the workers of a ``--workers`` server,
shown as one server, or several separate servers in one console. No trio, no Textual.

Each member is a ``RemoteSource`` (a worker, or a server of one process) or, among separate
servers, a fleet of a ``--workers`` server's workers; the fleet reads them as one: every member's
clients in one table, the totals summed, events taken from each in turn, a command for one client
sent to the member that holds it and any other command to every member. A member that goes away
(a worker that died and its parent restarts, a server that stopped) is said once in the feed, and
the fleet attaches to it again as soon as the same control socket answers; the fleet has stopped
when every member has.

Separate servers all count their clients from 1: their members key them by the console's keys
(``client_keys``), so the one that holds a client is known from its key alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from pathlib import Path

from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.control.client import Connection, ConsoleError
from tui_echo.monitor.remote import RemoteSource
from tui_echo.net import Peer
from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState
from tui_echo.server.commands import (
    Ban,
    BanAddress,
    ClientAction,
    ForClients,
    Kick,
    Label,
    SendTo,
    ServerCommand,
    SetFaults,
    Shutdown,
    Unban,
)
from tui_echo.server.config import Mode
from tui_echo.server.events import (
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
    ServerTotals,
    sum_totals,
)
from tui_echo.server.rules import RuleHits

REATTACH_SECONDS = 0.5  # how often a fleet tries the socket of a worker that went away


@dataclass(frozen=True, slots=True)
class _Holding:
    members: list[RemoteSource | FleetSource]

    def __contains__(self, client_id: object) -> bool:
        return any(client_id in member.client_ids() for member in self.members)


class FleetSource:
    def __init__(self, members: list[RemoteSource | FleetSource], keys: ClientKeys | None = None) -> None:
        """``keys``: separate servers, one member each; without, the members are one server's workers."""
        self.members = members
        self.keys = keys if keys is not None else ClientKeys(workers=(len(members),))
        self._servers = self.keys.several
        self._gone: set[int] = set()  # indexes of members that went away
        self._notes: list[ServerEvent] = []
        self._turn = itertools.cycle(range(len(members)))
        self._on_stopped: Callable[[BaseException | None], None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stopped_by_server = False
        self._listened = False

    @classmethod
    def open(cls, paths: list[Path], keys: ClientKeys = ONE_SERVER, server: int = 0) -> FleetSource:
        """Attach to every worker's socket (raises ConsoleError, with none left open, if one cannot be).
        ``keys``, ``server``: the console's servers and this one's place among them."""
        members: list[RemoteSource | FleetSource] = []
        try:
            for path in paths:
                members.append(RemoteSource(Connection.open(path, events=True), keys, server))
        except ConsoleError:
            for member in members:
                member.detach_now()
            raise
        return cls(members)

    @classmethod
    def open_servers(cls, servers: list[list[Path]], names: list[str]) -> FleetSource:
        """Attach to several separate servers, each named (its port, its socket's name) and given as its
        sockets (one, or one per worker); raises ConsoleError, with none left open, if one cannot be."""
        keys = ClientKeys(tuple(names), tuple(len(paths) for paths in servers))
        members: list[RemoteSource | FleetSource] = []
        try:
            for place, paths in enumerate(servers):
                if len(paths) == 1:
                    members.append(RemoteSource(Connection.open(paths[0], events=True), keys, place))
                else:
                    members.append(cls.open(paths, keys, place))
        except ConsoleError:
            for member in members:
                member.detach_now()
            raise
        return cls(members, keys)

    def detach_now(self) -> None:
        """Close the connections of a fleet never started."""
        for member in self.members:
            member.detach_now()

    # ---- what the app reads ------------------------------------------------

    @property
    def addresses(self) -> tuple[Peer, ...]:
        return tuple(dict.fromkeys(address for member in self.members for address in member.addresses))

    @property
    def started_at(self) -> float:
        return min(member.started_at for member in self.members)

    @property
    def pid(self) -> int:
        return self.members[0].pid

    @property
    def path(self) -> Path:
        return self.members[0].path

    @property
    def gone_reason(self) -> str:
        return "; ".join(member.gone_reason for member in self.members if member.gone_reason)

    @property
    def mode(self) -> Mode:
        return self.members[0].mode

    @property
    def origin(self) -> str:
        if self._servers:
            return f"attached to {len(self.members)} servers: " + ", ".join(
                f"{name} ({member.name})" for name, member in zip(self.keys.names, self.members, strict=True)
            )
        pids = ", ".join(str(member.pid) for member in self.members)
        return f"attached to {len(self.members)} workers (pids {pids}) · {self.members[0].path.parent}"

    @property
    def name(self) -> str:
        """What it is, for the console's title and messages."""
        return f"{len(self.members)} {'servers' if self._servers else 'workers'}"

    def clients(self) -> Iterable[ClientState]:
        return itertools.chain.from_iterable(
            member.clients() for index, member in enumerate(self.members) if index not in self._gone
        )

    def totals(self) -> ServerTotals:
        return sum_totals([member.totals() for member in self.members])

    def bans(self) -> tuple[ActiveBan, ...]:
        """Bans go to every worker, so each holds them all: one list, each address once."""
        bans: dict[str, ActiveBan] = {}
        for member in self.members:
            for ban in member.bans():
                bans[ban.address] = ban
        return tuple(sorted(bans.values(), key=lambda ban: ban.until))

    def rules(self) -> tuple[RuleHits, ...]:
        """Every worker has the same rules: each with its hits summed, its latest match. Separate servers
        may not: a rule several have (the same number and text) is one, its hits summed; others follow."""
        merged: dict[object, RuleHits] = {}
        for member in self.members:
            for index, rule in enumerate(member.rules()):
                key = (rule.number, rule.match, rule.reply, rule.actions, rule.once) if self._servers else index
                if key not in merged:
                    merged[key] = rule
                    continue
                latest = rule if (rule.last_at or 0) > (merged[key].last_at or 0) else merged[key]
                merged[key] = dataclasses.replace(latest, hits=merged[key].hits + rule.hits)
        return tuple(merged.values())

    def take_events(self, limit: int) -> list[ServerEvent]:
        """Each member's events in turn (a client's stay in order: it lives on one member); one
        ``stopped`` once every member has stopped, with the totals summed. One ``listening`` for a
        server's workers; separate servers each say theirs (their addresses, a TLS server's fingerprint)."""
        events, self._notes = self._notes, []
        for _ in self.members:
            if len(events) >= limit:
                break
            member = self.members[next(self._turn)]
            for event in member.take_events(limit - len(events)):
                if isinstance(event, ServerListening) and not self._servers:
                    if self._listened:
                        continue  # one "listening" for the server, as its log has
                    self._listened = True
                if not isinstance(event, ServerStopped):
                    events.append(event)
        return events

    # ---- running -------------------------------------------------------------

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        self._on_stopped = on_stopped
        self._closing = False
        self._gone.clear()
        for index, member in enumerate(self.members):
            member.start(self._watcher(index))

    def _watcher(self, index: int) -> Callable[[BaseException | None], None]:
        return lambda error: self._member_stopped(index)

    def _member_stopped(self, index: int) -> None:
        member = self.members[index]
        self._gone.add(index)
        if len(self._gone) == len(self.members):
            self.stopped_by_server = all(m.stopped_by_server for m in self.members)
            if self.stopped_by_server:
                self._notes.append(ServerStopped(at=time.time(), totals=self.totals()))
            if self._on_stopped is not None:
                self._on_stopped(None)
            return
        what = "stopped" if member.stopped_by_server else f"went away ({member.gone_reason})"
        whose = f"server {self.keys.names[index]} ({member.name})" if self._servers else f"worker pid {member.pid}"
        self._notes.append(ServerNotice(message=f"{whose} {what}; its clients are not shown", at=time.time()))
        task = asyncio.get_running_loop().create_task(self._reattach(index))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _reattach(self, index: int) -> None:
        """Its parent restarts a worker that died, on the same control socket: attach to the new one."""
        member = self.members[index]
        while not self._closing and index in self._gone and len(self._gone) < len(self.members):
            await asyncio.sleep(REATTACH_SECONDS)
            if member.reconnect() is None:
                self._gone.discard(index)
                member.start(self._watcher(index))
                whose = (
                    f"server {self.keys.names[index]} ({member.name})" if self._servers else f"worker pid {member.pid}"
                )
                self._notes.append(ServerNotice(message=f"attached to {whose}", at=time.time()))
                return

    def _holder(self, client_id: int) -> int:
        """The index of the member that holds ``client_id``; 0 if none does, to say so. Among separate
        servers, its key says; a server's workers interleave their ids, but one restarted starts past its
        predecessor's: the member whose clients have it."""
        if self._servers:
            return self.keys.server(client_id)
        return next((index for index, m in enumerate(self.members) if client_id in m.client_ids()), 0)

    def client_ids(self) -> Container[int]:
        """Its live clients' keys (``in`` asks each member)."""
        return _Holding(self.members)

    def client(self, client_id: int) -> ClientState | None:
        """A live client's state, by key (None if no member has it)."""
        return next((state for m in self.members if (state := m.client(client_id)) is not None), None)

    def send(self, command: ServerCommand) -> bool:
        """One client's command to its member; a set of clients' split by member; any other to all (an
        unban among separate servers: to those with that ban). A ban names clients: the members that
        hold them ban their addresses, and the others are told to ban the same addresses."""
        if isinstance(command, Kick | SendTo | Label | SetFaults | Ban):
            holder = self._holder(command.client_id)
            sent = self.members[holder].send(command)
            return self._pass_bans_on({holder: [command.client_id]}) and sent if isinstance(command, Ban) else sent
        if isinstance(command, Unban) and self._servers:
            holding = [m for m in self.members if any(ban.address == command.address for ban in m.bans())]
            return all([member.send(command) for member in holding or self.members])
        if isinstance(command, ForClients):
            shares: dict[int, list[int]] = {}
            for client_id in command.client_ids:
                shares.setdefault(self._holder(client_id), []).append(client_id)
            sent = all(
                [
                    self.members[index].send(dataclasses.replace(command, client_ids=tuple(ids)))
                    for index, ids in shares.items()
                ]
            )
            return self._pass_bans_on(shares) and sent if command.action is ClientAction.BAN else sent
        live = [m for index, m in enumerate(self.members) if index not in self._gone or isinstance(command, Shutdown)]
        return all([member.send(command) for member in live])

    def _pass_bans_on(self, shares: dict[int, list[int]]) -> bool:
        """Bans are the whole console's: each member that does not hold a banned client bans its address."""
        hosts = {
            index: {state.peer[0] for client_id in ids if (state := self.members[index].client(client_id))}
            for index, ids in shares.items()
        }
        banned = set().union(*hosts.values())
        return all(
            [
                member.send(BanAddress(host))
                for index, member in enumerate(self.members)
                if index not in self._gone
                for host in sorted(banned - hosts.get(index, set()))
            ]
        )

    async def stop(self) -> None:
        """Detach from every member; the server carries on."""
        self._closing = True
        for task in list(self._retries):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for member in self.members:
            await member.stop()

    def reconnect(self) -> str | None:
        for member in self.members:
            error = member.reconnect()
            if error is not None:
                return error
        return None
