"""Each mode handler, and a connection's life, on its own: a fake transport instead of a socket.

The real-socket tests (test_server, test_modes, test_rules_server, test_tls) show the same
behaviour end to end; these pin down what each handler does with exactly the bytes it is
given, and let a test decide when a write completes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import pytest
import trio
import trio.testing

from tui_echo.server.access import AccessControl
from tui_echo.server.clients import ClientState
from tui_echo.server.clock import WallClock
from tui_echo.server.config import Framing, Mode, ServerConfig
from tui_echo.server.connection import Connection, ModeHandler
from tui_echo.server.context import Context
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    DataAnswered,
    DataDiscarded,
    DataReceived,
    DataRelayed,
    DisconnectReason,
    ServerEvent,
    ServerNotice,
)
from tui_echo.server.modes import mode_for
from tui_echo.server.answers import RuleAnswers
from tui_echo.server.notices import Notices
from tui_echo.server.outbox import EventOutbox
from tui_echo.server.registry import Registry
from tui_echo.server.rules import RuleBook, parse_rule_option
from tui_echo.server.transport import PlainTransport, SlowReader, WriteTimeout

from .helpers import TIMEOUT

pytestmark = pytest.mark.trio
PEER = ("127.0.0.1", 40000)


class FakeTransport:
    """A transport a test feeds and reads: ``give`` bytes to receive, ``end`` for EOF; what is sent is kept.

    Counts into the client's ``bytes_out`` as a real one does. ``gate``, when set, holds every write
    until the test opens it; ``fail`` makes the next write raise.
    """

    def __init__(self, state: ClientState, timeout: WriteTimeout) -> None:
        self.state = state
        self.timeout = timeout
        self.sent = bytearray()
        self.closed: str | None = None  # "gracefully" or "at once"
        self.gate: trio.Event | None = None
        self.fail: BaseException | None = None
        self._send, self._incoming = trio.open_memory_channel[bytes](100)

    def give(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self._send.send_nowait(chunk)

    def end(self) -> None:
        self._send.send_nowait(b"")

    async def receive(self, size: int) -> bytes:
        data = await self._incoming.receive()
        assert len(data) <= size
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.sent += data
        self.state.bytes_out += len(data)

    async def close_gracefully(self, linger: float) -> None:
        self.closed = "gracefully"

    def shut_down(self) -> bool:
        return False  # as TLS: the server stopping kicks it

    def close(self) -> None:
        self.closed = "at once"


class Harness:
    """A server's shared parts, built for real (none needs a socket), and the events they publish."""

    def __init__(self, **settings: object) -> None:
        self.config = replace(ServerConfig(port=0), **settings)
        send, self.receive = trio.open_memory_channel[ServerEvent](1000)
        self.outbox = EventOutbox(send, self.config.lifecycle_backlog)
        clock = WallClock()
        self.registry = Registry(self.config, AccessControl(self.config), self.outbox, clock)
        notices = Notices(self.outbox, clock)
        self.context = Context(self.config, self.outbox, clock, self.registry, notices)
        rules = self.config.rules
        self.answers = RuleAnswers(RuleBook(rules), self.context) if rules else None
        self.mode = mode_for(self.context, self.answers)
        self.events: list[ServerEvent] = []

    def connect(self, mode: ModeHandler | None = None) -> tuple[Connection, FakeTransport]:
        conn = self.registry.enter(PEER, FakeTransport, (mode or self.mode).joined)
        assert isinstance(conn.transport, FakeTransport)
        return conn, conn.transport

    def take(self) -> list[ServerEvent]:
        while True:
            try:
                self.events.append(self.receive.receive_nowait())
            except trio.WouldBlock:
                return self.events

    def of(self, kind: type) -> list:
        return [event for event in self.take() if isinstance(event, kind)]

    async def wait_for(self, condition: Callable[[], object]) -> None:
        with trio.fail_after(TIMEOUT):
            while not condition():
                await trio.sleep(0.001)


def rules(*texts: str) -> tuple:
    return tuple(parse_rule_option(text, number, number) for number, text in enumerate(texts, 1))


# ---- echo -------------------------------------------------------------------------------------


async def test_echo_over_a_transport_sends_each_chunk_back_and_counts_exactly() -> None:
    run = Harness(framing=Framing.LINE)
    conn, fake = run.connect()
    fake.give(b"one\ntw", b"o\n", b"\x00\xff")
    fake.end()
    assert await run.mode.serve(conn) == (DisconnectReason.CLOSED_BY_PEER, "")
    assert fake.sent == b"one\ntwo\n\x00\xff"
    state = conn.state
    assert (state.messages_in, state.bytes_in, state.bytes_out) == (2, 10, 10)
    received = run.of(DataReceived)
    assert [(e.data, e.messages, e.messages_in, e.bytes_out) for e in received] == [
        (b"one\ntw", 1, 1, 6),
        (b"o\n", 1, 2, 8),
        (b"\x00\xff", 0, 2, 10),
    ]


async def test_the_echo_takes_the_hot_loop_for_exactly_a_plain_socket_and_the_stream_loop_otherwise() -> None:
    run = Harness()
    conn, _ = run.connect()
    loop = run.mode.serve(conn)
    assert loop.__qualname__ == "EchoMode._echo_stream"
    loop.close()
    near, far = socket.socketpair()
    with near, far:
        plain = run.registry.enter(PEER, partial(PlainTransport, near), run.mode.joined)
        hot = run.mode.serve(plain)
        assert hot.__qualname__ == "EchoMode._echo_socket"
        hot.close()


async def test_the_hot_loop_echoes_counts_and_publishes_over_a_socket_pair() -> None:
    # The hot loop calls the socket itself: a socket pair (no network, no server) stands in for a client.
    run = Harness()
    near, far = socket.socketpair()
    near.setblocking(False)
    conn = run.registry.enter(PEER, partial(PlainTransport, near), run.mode.joined)
    client = trio.SocketStream(trio.socket.from_stdlib_socket(far))
    ended = []

    async def serve() -> None:
        ended.append(await run.mode.serve(conn))

    async with client, trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        await client.send_all(b"hello")
        assert await client.receive_some(100) == b"hello"
        await client.send_all(b"\n" * 3)
        assert await client.receive_some(100) == b"\n\n\n"
        await client.send_eof()
    conn.transport.close()
    assert ended == [(DisconnectReason.CLOSED_BY_PEER, "")]
    assert (conn.state.messages_in, conn.state.bytes_in, conn.state.bytes_out) == (2, 8, 8)
    assert [e.size for e in run.of(DataReceived)] == [5, 3]


# ---- echo with rules --------------------------------------------------------------------------


async def test_rules_answer_a_line_and_echo_the_rest_and_the_event_says_how_many() -> None:
    run = Harness(framing=Framing.LINE, rules=rules(r"^PING (\d+)$ => PONG {1}\n"))
    conn, fake = run.connect()
    fake.give(b"PING 1\nhi\nPING 2\n", b"hi\n", b"PING")
    fake.end()
    assert await run.mode.serve(conn) == (DisconnectReason.CLOSED_BY_PEER, "")
    assert fake.sent == b"PONG 1\nhi\nPONG 2\nhi\nPING"  # the last partial line: no rule, so its echo
    answered = run.of(DataAnswered)
    assert [(e.messages, e.answered) for e in answered] == [(3, 2)]
    assert [type(e) for e in run.of(DataReceived)] == [DataAnswered, DataReceived, DataReceived]
    assert run.answers is not None and run.answers.book.hits == [2]
    assert [e.message for e in run.of(ServerNotice)] == [r"rule 1 (^PING (\d+)$) first hit, by #1: PING 1"]


async def test_a_clients_answered_count_is_its_own_while_another_client_is_answered_meanwhile() -> None:
    run = Harness(framing=Framing.LINE, rules=rules("^a$ => " + "A" * 1000 + r"\n"))
    (first, first_fake), (second, second_fake) = run.connect(), run.connect()
    first_fake.gate = trio.Event()  # first's writes wait until second has been answered in full
    first_fake.give(b"a\n" * 200)  # about four batches of replies
    second_fake.give(b"a\n" * 30)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run.mode.serve, first)
        nursery.start_soon(run.mode.serve, second)
        await run.wait_for(lambda: second.state.bytes_out == 30 * 1001)
        first_fake.gate.set()
        await run.wait_for(lambda: first.state.bytes_out == 200 * 1001)
        nursery.cancel_scope.cancel()
    by_client = {e.client_id: (e.messages, e.answered) for e in run.of(DataAnswered)}
    assert by_client == {1: (200, 200), 2: (30, 30)}
    assert run.answers is not None and run.answers.book.hits == [230]


async def test_hits_are_summarised_once_after_a_burst(autojump_clock: trio.testing.MockClock) -> None:
    run = Harness(rules=rules("x => y"))
    assert run.answers is not None
    conn, fake = run.connect()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run.answers.summaries.run)
        nursery.start_soon(run.mode.serve, conn)
        for _ in range(3):
            fake.give(b"x")
            await trio.sleep(1)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert [e.message for e in run.of(ServerNotice)] == [
        "rule 1 (x) first hit, by #1: x",
        "rule hits in the last 10 s: rule 1 +3 (3 in all)",
    ]


# ---- discard ----------------------------------------------------------------------------------


async def test_discard_reads_and_counts_and_sends_nothing() -> None:
    run = Harness(mode=Mode.DISCARD, framing=Framing.LINE)
    conn, fake = run.connect()
    fake.give(b"a\nb\n", b"c")
    fake.end()
    assert await run.mode.serve(conn) == (DisconnectReason.CLOSED_BY_PEER, "")
    assert fake.sent == b""
    assert (conn.state.messages_in, conn.state.bytes_in, conn.state.bytes_out) == (2, 5, 0)
    assert [(type(e), e.messages) for e in run.of(DataReceived)] == [(DataDiscarded, 2), (DataDiscarded, 0)]


# ---- chat and broker --------------------------------------------------------------------------


async def test_chat_says_a_line_to_the_others_with_joins_and_leaves() -> None:
    run = Harness(mode=Mode.CHAT)
    (alice, alice_fake), (bob, bob_fake) = run.connect(), run.connect()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run.mode.serve, alice)
        nursery.start_soon(run.mode.serve, bob)
        alice_fake.give(b"hi bo", b"b\nand")
        await run.wait_for(lambda: bob_fake.sent.endswith(b"<#1> hi bob\n"))
        alice_fake.end()  # its unfinished last line is said too
        await run.wait_for(lambda: bob_fake.sent.endswith(b"<#1> and\n"))
        nursery.cancel_scope.cancel()
    assert alice_fake.sent == b"* #2 joined from 127.0.0.1:40000\n"  # never its own lines
    assert bob_fake.sent == b"<#1> hi bob\n<#1> and\n"  # alice was there before: no join line
    relayed = run.of(DataRelayed)
    assert [(e.data, e.recipients, e.dropped) for e in relayed] == [(b"hi bob\n", 1, 0), (b"and", 1, 0)]
    gone = run.registry.retire(alice, DisconnectReason.CLOSED_BY_PEER, "")
    run.mode.left(alice, gone)
    assert bob.outbound is not None
    assert await bob.outbound.batch() == (b"* #1 left (closed by peer)\n", 1)


async def test_a_rule_answers_the_sender_in_chat_and_is_not_relayed() -> None:
    run = Harness(mode=Mode.BROKER, rules=rules("^ping$ => pong"))
    (sender, sender_fake), (other, other_fake) = run.connect(), run.connect()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run.mode.serve, sender)
        nursery.start_soon(run.mode.serve, other)
        sender_fake.give(b"ping")
        await run.wait_for(lambda: sender_fake.sent == b"pong")
        sender_fake.give(b"data")
        await run.wait_for(lambda: other_fake.sent == b"data")
        nursery.cancel_scope.cancel()
    assert [(type(e), e.data) for e in run.of(DataReceived)] == [(DataAnswered, b"ping"), (DataRelayed, b"data")]


# ---- a connection's life ----------------------------------------------------------------------


async def test_a_kicked_connection_is_retired_then_closed_gracefully() -> None:
    run = Harness()
    conn, fake = run.connect()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run, run.mode, run.registry)
        await trio.testing.wait_all_tasks_blocked()
        conn.kick(DisconnectReason.KICKED)
    assert fake.closed == "gracefully" and not run.registry.connections
    (gone,) = run.of(ClientDisconnected)
    assert (gone.client_id, gone.reason) == (1, DisconnectReason.KICKED)


@pytest.mark.parametrize(
    ("failure", "reason", "error"),
    [
        (SlowReader(), DisconnectReason.SLOW_READER, ""),
        (ConnectionResetError(104, "Connection reset by peer"), DisconnectReason.ERROR, "connection reset by peer"),
    ],
)
async def test_a_failed_write_ends_the_client_with_its_reason(
    failure: BaseException, reason: DisconnectReason, error: str
) -> None:
    run = Harness()
    conn, fake = run.connect()
    fake.fail = failure
    fake.give(b"x")
    await conn.run(run.mode, run.registry)
    assert fake.closed == "at once"
    assert [(e.reason, e.error) for e in run.of(ClientDisconnected)] == [(reason, error)]
    assert [type(e) for e in run.take()][:1] == [ClientConnected]


async def test_every_mode_has_its_handler() -> None:
    handlers = {mode: type(Harness(mode=mode).mode).__name__ for mode in Mode}
    assert handlers == {
        Mode.ECHO: "EchoMode",
        Mode.CHAT: "RelayMode",
        Mode.BROKER: "RelayMode",
        Mode.DISCARD: "DiscardMode",
    }
    assert type(Harness(rules=rules("a => b")).mode).__name__ == "EchoRulesMode"
