"""A scripted server source for pictures of the monitor: fixed clients, events, times and port.

Snapshot tests need the same screen on every run, which a real server (random
ports, real times) cannot give. Everything behavioural runs against the real
server instead (test_monitor.py).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

from tui_echo.server.access import ActiveBan
from tui_echo.server.commands import ServerCommand
from tui_echo.server.rules import RuleHits
from tui_echo.server.config import Mode, ServerConfig
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    DisconnectReason,
    ServerTotals,
    DataAnswered,
    DataBroadcast,
    DataReceived,
    DataRelayed,
    DataSent,
    ServerEvent,
    ServerListening,
)
from tui_echo.net import Peer
from tui_echo.server.clients import ClientState, ClientStatus
from tui_echo.server.tls import TlsSettings

T0 = 1_764_050_400.0  # 2025-11-25 06:00:00 UTC
ADDRESS: Peer = ("127.0.0.1", 12354)


class ScriptedSource:
    def __init__(
        self,
        clients: list[ClientState],
        events: list[ServerEvent],
        totals: ServerTotals,
        bans: tuple[ActiveBan, ...] = (),
        mode: Mode = Mode.ECHO,
    ) -> None:
        self.mode = mode
        self._clients = clients
        self._events = events
        self._totals = totals
        self._bans = bans
        self.commands: list[ServerCommand] = []

    @property
    def addresses(self) -> tuple[Peer, ...]:
        return (ADDRESS,)

    @property
    def origin(self) -> str:
        return ""

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        pass

    def take_events(self, limit: int) -> list[ServerEvent]:
        taken, self._events = self._events[:limit], self._events[limit:]
        return taken

    def clients(self) -> Iterator[ClientState]:
        return iter(self._clients)

    def totals(self) -> ServerTotals:
        return self._totals

    def bans(self) -> tuple[ActiveBan, ...]:
        return self._bans

    def rules(self) -> tuple[RuleHits, ...]:
        return ()

    def send(self, command: ServerCommand) -> bool:
        self.commands.append(command)
        return True

    async def stop(self) -> None:
        pass


def classroom(bans: tuple[ActiveBan, ...] = ()) -> ScriptedSource:
    """Four clients as in a lesson: two chatting, one device sending binary frames, one kicked."""
    peers = {1: ("127.0.0.1", 50412), 2: ("127.0.0.1", 50418), 3: ("10.0.0.7", 40001), 4: ("127.0.0.1", 50430)}
    events: list[ServerEvent] = [ServerListening(addresses=(ADDRESS,), at=T0, config=ServerConfig(port=0))]
    events += [ClientConnected(client_id=n, peer=peers[n], at=T0 + n) for n in peers]
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
        events.append(
            DataReceived(
                client_id=client_id,
                data=data,
                size=len(data),
                at=T0 + 10 + step,
                messages=1,
                messages_in=counts[client_id],
                bytes_in=size,
                bytes_out=size,
            )
        )
    events.append(DataSent(client_id=2, data=b"welcome, #2\n", size=len(b"welcome, #2\n"), at=T0 + 20, bytes_out=50))
    events.append(
        ClientDisconnected(
            client_id=4,
            peer=peers[4],
            at=T0 + 30,
            reason=DisconnectReason.KICKED,
            connected_at=T0 + 4,
            messages_in=0,
            bytes_in=0,
            bytes_out=0,
        )
    )
    clients = [
        ClientState(
            client_id=1,
            peer=peers[1],
            connected_at=T0 + 1,
            last_activity=T0 + 13,
            messages_in=2,
            bytes_in=40,
            bytes_out=40,
        ),
        ClientState(
            client_id=2,
            peer=peers[2],
            connected_at=T0 + 2,
            last_activity=T0 + 14,
            messages_in=2,
            bytes_in=63,
            bytes_out=75,
        ),
        ClientState(
            client_id=3,
            peer=peers[3],
            connected_at=T0 + 3,
            last_activity=T0 + 12,
            messages_in=1,
            bytes_in=13,
            bytes_out=13,
            status=ClientStatus.CONNECTED,
        ),
    ]
    totals = ServerTotals(
        clients_total=4,
        clients_now=3,
        clients_peak=4,
        refused_total=0,
        messages_in=5,
        bytes_in=116,
        bytes_out=128,
        events_skipped=0,
    )
    return ScriptedSource(clients, events, totals, bans)


def chat_room() -> ScriptedSource:
    """A chat server: three students talking, one of them not reading (its deliveries are dropped)."""
    peers = {1: ("127.0.0.1", 50412), 2: ("127.0.0.1", 50418), 3: ("127.0.0.1", 50424)}
    events: list[ServerEvent] = [
        ServerListening(addresses=(ADDRESS,), at=T0, config=ServerConfig(port=0, mode=Mode.CHAT))
    ]
    events += [ClientConnected(client_id=n, peer=peers[n], at=T0 + n) for n in peers]
    talk = [(1, b"hi everyone\n", 0), (2, b"hello #1\n", 0), (1, b"who is #3?\n", 1)]
    for step, (client_id, line, dropped) in enumerate(talk):
        events.append(
            DataRelayed(
                client_id=client_id,
                data=line,
                size=len(line),
                at=T0 + 10 + step,
                messages=1,
                messages_in=1 + step // 2,
                bytes_in=len(line),
                bytes_out=0,
                mode=Mode.CHAT,
                recipients=2 - dropped,
                dropped=dropped,
            )
        )
    events.append(
        DataSent(client_id=3, data=b"<operator> (private) are you there?\n", size=36, at=T0 + 20, bytes_out=36)
    )
    clients = [
        ClientState(
            client_id=1,
            peer=peers[1],
            connected_at=T0 + 1,
            last_activity=T0 + 12,
            messages_in=2,
            bytes_in=23,
            bytes_out=79,
        ),
        ClientState(
            client_id=2,
            peer=peers[2],
            connected_at=T0 + 2,
            last_activity=T0 + 11,
            messages_in=1,
            bytes_in=9,
            bytes_out=68,
        ),
        ClientState(client_id=3, peer=peers[3], connected_at=T0 + 3, last_activity=T0 + 3, bytes_out=36, dropped_out=1),
    ]
    totals = ServerTotals(
        clients_total=3,
        clients_now=3,
        clients_peak=3,
        refused_total=0,
        messages_in=3,
        bytes_in=32,
        bytes_out=183,
        events_skipped=0,
        dropped_out=1,
    )
    return ScriptedSource(clients, events, totals, mode=Mode.CHAT)


FINGERPRINT = ":".join(f"{n * 7 % 256:02X}" for n in range(32))


def lab() -> ScriptedSource:
    """A TLS server with a reply rule: a device's frame answered by rule 1, and the operator's broadcast to all."""
    peers = {n: ("127.0.0.1", 50400 + n) for n in range(1, 4)}
    tls = TlsSettings(context=ssl.create_default_context(), fingerprint=FINGERPRINT, self_signed=True)
    events: list[ServerEvent] = [ServerListening(addresses=(ADDRESS,), at=T0, config=ServerConfig(port=0, tls=tls))]
    events += [
        ClientConnected(
            client_id=n, peer=peers[n], at=T0 + n, tls_version="TLSv1.3", tls_cipher="TLS_AES_256_GCM_SHA384"
        )
        for n in peers
    ]
    events.append(
        DataAnswered(
            client_id=2,
            data=b"\x02AB\x03",
            size=4,
            at=T0 + 10,
            messages=1,
            messages_in=1,
            bytes_in=4,
            bytes_out=4,
            answered=1,
            rules=(1,),
            reply=b"\x06AB\x03",
            reply_size=4,
        )
    )
    events.append(DataBroadcast(data=b"class starts in 5 minutes\n", size=26, at=T0 + 20, recipients=3))
    clients = [
        ClientState(
            client_id=n,
            peer=peers[n],
            connected_at=T0 + n,
            last_activity=T0 + 20,
            messages_in=int(n == 2),
            bytes_in=4 * (n == 2),
            bytes_out=26 + 4 * (n == 2),
            tls_version="TLSv1.3",
            tls_cipher="TLS_AES_256_GCM_SHA384",
        )
        for n in peers
    ]
    totals = ServerTotals(
        clients_total=3,
        clients_now=3,
        clients_peak=3,
        refused_total=0,
        messages_in=1,
        bytes_in=4,
        bytes_out=82,
        events_skipped=0,
        rule_hits=(1,),
    )
    return ScriptedSource(clients, events, totals)
