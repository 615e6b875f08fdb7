"""What the operator does to clients: kick, send, broadcast, ban, unban; and the idle reaper.

The server's command loop calls ``apply`` for each command, whoever issued it
(the monitor, a console). An operator send is written by a task of its own,
behind the client's write lock, so that it never interleaves with the echo
and never makes the command loop wait for a slow client.
"""

from __future__ import annotations

from typing import assert_never

import trio

from tui_echo.server.access import AccessControl, plain_host
from tui_echo.server.clients import ClientStatus
from tui_echo.server.commands import (
    Ban,
    BanAddress,
    Broadcast,
    ClientAction,
    Done,
    ForClients,
    Kick,
    KickAll,
    Label,
    SendTo,
    SetFaults,
    Unban,
)
from tui_echo.server.config import Mode
from tui_echo.server.connection import Connection
from tui_echo.server.context import Context
from tui_echo.server.fault_transport import held_by_fault
from tui_echo.server.faulting import Faulting
from tui_echo.server.events import EVENT_DATA_BYTES, DataBroadcast, DataSent, DisconnectReason
from tui_echo.server.relay import operator_says
from tui_echo.server.transport import SlowReader
from tui_echo.text import format_duration, plural

# Every command but Shutdown, the server's own.
ClientCommand = Kick | KickAll | SendTo | Broadcast | Ban | BanAddress | Unban | Label | ForClients | SetFaults
GONE_IDS_NAMED = 10  # a notice names at most this many of the ids a command on many clients found gone


class Operator:
    def __init__(self, context: Context, access: AccessControl, faulting: Faulting) -> None:
        self._context = context
        self._config, self._registry, self._notices = context.config, context.registry, context.notices
        self._access = access
        self._faulting = faulting
        self.senders: trio.Nursery | None = None  # where operator sends are written: the clients' nursery

    def apply(self, command: ClientCommand) -> Done:
        """Carry out one command now; what it did (``Done``: how many, for a command on many clients)."""
        connections = self._registry.connections
        say = self._notices.say
        chat = self._config.mode is Mode.CHAT  # the operator speaks in the chat's own form
        match command:
            case Kick(client_id):
                conn = connections.get(client_id)
                if conn is None:
                    say(f"kick: no client #{client_id}")
                else:
                    conn.kick(DisconnectReason.KICKED)
            case KickAll():
                for conn in list(connections.values()):
                    conn.kick(DisconnectReason.KICKED)
            case SendTo(client_id, data):
                conn = connections.get(client_id)
                if conn is None:
                    say(f"send: no client #{client_id}")
                else:
                    self._queue_send(conn, operator_says(data, private=True) if chat else data)
            case Broadcast(data):
                if not connections:
                    say("broadcast: no clients connected")
                    return Done()
                if chat:
                    data = operator_says(data, private=False)
                # One event for them all: a DataSent per client would flood every feed and log.
                recipients = sum(self._queue_send(conn, data, announce=False) for conn in list(connections.values()))
                self._context.outbox.lifecycle(
                    DataBroadcast(
                        data=data[:EVENT_DATA_BYTES],
                        size=len(data),
                        at=self._context.clock.now(),
                        recipients=recipients,
                    )
                )
            case Ban(client_id):
                conn = connections.get(client_id)
                if conn is None:
                    say(f"ban: no client #{client_id}")
                else:
                    self._ban(conn.state.peer[0])
            case BanAddress(address):
                self._ban(plain_host(address))
            case Unban(address):
                host = plain_host(address)
                if self._access.unban(host):
                    say(f"ban on {host} lifted")
                else:
                    say(f"unban: {host} is not banned")
            case SetFaults(client_id, faults, by):
                conn = connections.get(client_id)
                if conn is None:
                    say(f"fault: no client #{client_id}")
                elif not self._faulting.set(conn, faults, by):
                    say(f"fault: client #{client_id} has no faults to clear")
            case Label(client_id, text):
                conn = connections.get(client_id)
                if conn is None:
                    say(f"label: no client #{client_id}")
                else:
                    self._context.label(conn.state, text)
            case ForClients():
                return self._for_clients(command)
            case _:
                assert_never(command)
        return Done()

    def _for_clients(self, command: ForClients) -> Done:
        """One command for a fixed set of clients, in one step: no client comes or goes in between."""
        connections = self._registry.connections
        found, gone = [], []
        for client_id in dict.fromkeys(command.client_ids):  # each id once, in the order given
            conn = connections.get(client_id)
            if conn is None or conn.close_reason is not None:
                gone.append(client_id)
            else:
                found.append(conn)
        acted = len(found)
        match command.action:
            case ClientAction.KICK:
                for conn in found:
                    conn.kick(DisconnectReason.KICKED)
                did = "kicked"
            case ClientAction.SEND:
                data = operator_says(command.data, private=True) if self._config.mode is Mode.CHAT else command.data
                acted = sum(self._queue_send(conn, data) for conn in found)
                did = "sent to"
            case ClientAction.BAN:
                for host in dict.fromkeys(conn.state.peer[0] for conn in found):
                    self._ban(host)
                did = "banned the addresses of"
            case _:
                assert_never(command.action)
        named = ", ".join(f"#{client_id}" for client_id in gone[:GONE_IDS_NAMED])
        more = f" and {len(gone) - GONE_IDS_NAMED} more" if len(gone) > GONE_IDS_NAMED else ""
        already = f"; {plural(len(gone), 'client')} already gone ({named}{more})" if gone else ""
        self._notices.say(f"{did} {plural(acted, 'client')} of {len(command.client_ids)}{already}")
        return Done(acted, tuple(gone))

    def _ban(self, host: str) -> None:
        """Refuse ``host`` for the configured time and close every client from it."""
        seconds = self._config.ban_seconds
        if not self._access.ban(host, seconds, trio.current_time()):
            self._notices.say(f"ban on {host} refused: the ban list is full")
            return
        closed = 0
        for conn in list(self._registry.connections.values()):
            if conn.state.peer[0] == host and conn.close_reason is None:
                conn.kick(DisconnectReason.BANNED)
                closed += 1
        self._notices.say(f"banned {host} for {format_duration(seconds)}; closed {plural(closed, 'client')}")

    # ---- operator sends ------------------------------------------------------

    def _queue_send(self, conn: Connection, data: bytes, *, announce: bool = True) -> bool:
        """Queue an operator send; False if refused. ``announce``: publish a DataSent once it is written."""
        if conn.close_reason is not None:
            return False
        if conn.pending_sends >= self._config.max_pending_sends:
            self._notices.say(
                f"send to #{conn.state.client_id} refused: {conn.pending_sends} sends already waiting "
                "(the client is not reading)"
            )
            return False
        conn.pending_sends += 1
        assert self.senders is not None
        self.senders.start_soon(self._deliver, conn, data, announce)
        return True

    async def _deliver(self, conn: Connection, data: bytes, announce: bool) -> None:
        state = conn.state
        try:
            async with conn.write_lock:
                gone = self._registry.connections.get(state.client_id) is not conn
                if gone or state.status is not ClientStatus.CONNECTED:
                    return  # kicked, or gone while this send waited its turn
                await conn.transport.send_all(data)
        except SlowReader:
            conn.kick(DisconnectReason.SLOW_READER)
            return
        except (OSError, trio.ClosedResourceError, trio.BrokenResourceError):
            return  # the client's own task reports why it went away
        finally:
            conn.pending_sends -= 1
        if not announce:
            return
        now = trio.current_time()
        self._context.outbox.data(
            DataSent(
                client_id=state.client_id,
                data=data[:EVENT_DATA_BYTES],
                size=len(data),
                at=now + self._context.clock.offset,
                bytes_out=state.bytes_out,
            ),
            now,
        )

    # ---- the idle reaper -------------------------------------------------------

    async def reap_idle(self, timeout: float) -> None:
        """Kick clients idle for ``timeout``: one task sleeping until the earliest deadline, no timer per chunk."""
        clock = self._context.clock
        while True:
            now = clock.now()  # last_activity is wall clock: compare like with like
            next_check = now + timeout  # a client that connects later expires later than this
            for conn in list(self._registry.connections.values()):
                if conn.close_reason is not None or conn.writing or held_by_fault(conn):
                    continue  # a client whose echo waits is busy (the write timeout covers it), or faulted slow
                expires = conn.state.last_activity + timeout
                if expires <= now:
                    conn.kick(DisconnectReason.IDLE_TIMEOUT)
                else:
                    next_check = min(next_check, expires)
            await trio.sleep_until(next_check - clock.offset)
