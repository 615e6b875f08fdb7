"""A scripted engine for pictures of the monitor: fixed clients, events, times and port.

Snapshot tests need the same screen on every run, which a real server (random
ports, real times) cannot give. Everything behavioural runs against the real
server instead (test_monitor.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tui_echo.commands import ServerCommand
from tui_echo.events import (
    ClientConnected,
    ClientDisconnected,
    DataEchoed,
    DataSent,
    Peer,
    ServerEvent,
    ServerListening,
)
from tui_echo.state import ClientState, ClientStatus, ServerTotals

T0 = 1_764_050_400.0  # 2025-11-25 06:00:00 UTC
ADDRESS: Peer = ("127.0.0.1", 12354)


class ScriptedEngine:
    def __init__(self, clients: list[ClientState], events: list[ServerEvent], totals: ServerTotals) -> None:
        self._clients = clients
        self._events = events
        self._totals = totals
        self.commands: list[ServerCommand] = []

    @property
    def addresses(self) -> tuple[Peer, ...]:
        return (ADDRESS,)

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        pass

    def take_events(self, limit: int) -> list[ServerEvent]:
        taken, self._events = self._events[:limit], self._events[limit:]
        return taken

    def clients(self) -> Iterator[ClientState]:
        return iter(self._clients)

    def totals(self) -> ServerTotals:
        return self._totals

    def send(self, command: ServerCommand) -> bool:
        self.commands.append(command)
        return True

    async def stop(self) -> None:
        pass


def classroom() -> ScriptedEngine:
    """Four clients as in a lesson: two chatting, one device sending binary frames, one kicked."""
    peers = {1: ("127.0.0.1", 50412), 2: ("127.0.0.1", 50418), 3: ("10.0.0.7", 40001), 4: ("127.0.0.1", 50430)}
    events: list[ServerEvent] = [ServerListening((ADDRESS,), T0)]
    events += [ClientConnected(n, peers[n], T0 + n) for n in peers]
    talk = [
        (1, b"Hello, world (4242)\n"),
        (2, b"hi from client two\n"),
        (3, b"\x02\x10\x00\x2a\xff\xfe\x1b[2J[bold]\x03"),
        (1, b"Hello, world (4242)\n"),
        (2, b"\x1b]0;not a title\x07 [red]still text[/red]\r\n"),
    ]
    counts = dict.fromkeys(peers, 0)
    for step, (client_id, data) in enumerate(talk):
        counts[client_id] += 1
        size = counts[client_id] * len(data)
        events.append(DataEchoed(client_id, data, T0 + 10 + step, 1, counts[client_id], size, size, 0))
    events.append(DataSent(2, b"welcome, #2\n", T0 + 20, 50))
    events.append(ClientDisconnected(4, peers[4], T0 + 30, "kicked", T0 + 4, 0, 0, 0))
    clients = [
        ClientState(1, peers[1], T0 + 1, T0 + 13, 2, 40, 40),
        ClientState(2, peers[2], T0 + 2, T0 + 14, 2, 63, 75),
        ClientState(3, peers[3], T0 + 3, T0 + 12, 1, 13, 13, ClientStatus.CONNECTED),
    ]
    totals = ServerTotals(
        clients_total=4, clients_now=3, refused_total=0, messages_in=5, bytes_in=116, bytes_out=128, events_skipped=0
    )
    return ScriptedEngine(clients, events, totals)
