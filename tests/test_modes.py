"""Chat, broker and discard modes (--mode) against real client sockets on 127.0.0.1."""

from __future__ import annotations

import os
import socket

import pytest
import trio
import trio.testing

from tui_echo.server.commands import Broadcast, Kick, SendTo
from tui_echo.server.config import Mode
from tui_echo.server.events import (
    DataAnswered,
    ClientConnected,
    DataDiscarded,
    DataRelayed,
    DisconnectReason,
    ServerNotice,
)
from tui_echo.server.modes.relay import RELAY_SEND_BUFFER
from tui_echo.server.relay import CHAT_LINE_BYTES
from tui_echo.server.rules import parse_rule_option

from .helpers import disconnect_of, TIMEOUT, connect, receive_exactly, receive_until_eof, running_server

pytestmark = pytest.mark.trio


async def nothing_arrives(stream: trio.SocketStream, seconds: float = 0.2) -> None:
    with trio.move_on_after(seconds):
        data = await stream.receive_some(65536)
        raise AssertionError(f"expected nothing, got {data!r}")


async def chat_room(run, count: int) -> list[trio.SocketStream]:
    """``count`` clients, #1 first; each has read the joins of those after it, so every stream starts clean."""
    clients: list[trio.SocketStream] = []
    for n in range(1, count + 1):
        clients.append(await connect(run.port))
        await run.recorder.wait_for(lambda n=n: len(run.recorder.of(ClientConnected)) == n)
        for earlier in clients[:-1]:
            line = f"* #{n} joined from 127.0.0.1:{clients[-1].socket.getsockname()[1]}\n".encode()
            assert await receive_exactly(earlier, len(line)) == line
    return clients


async def test_chat_a_line_reaches_the_others_with_its_prefix_and_never_its_sender() -> None:
    async with running_server(mode=Mode.CHAT) as run:
        one, two, three = await chat_room(run, 3)
        joins = {state.client_id: state.bytes_out for state in run.server.clients()}  # the join lines they read
        await one.send_all(b"hello ")  # a partial line waits for its newline
        await nothing_arrives(two)
        await one.send_all(b"all\nsecond line\n")
        expected = b"<#1> hello all\n<#1> second line\n"
        assert await receive_exactly(two, len(expected)) == expected
        assert await receive_exactly(three, len(expected)) == expected
        await two.send_all(b"hi #1\n")
        assert await receive_exactly(one, 11) == b"<#2> hi #1\n"
        assert await receive_exactly(three, 11) == b"<#2> hi #1\n"
        await nothing_arrives(one)  # nothing of its own came back to #1...
        await nothing_arrives(two)  # ...or to #2
        states = {state.client_id: state for state in run.server.clients()}
        assert (states[1].messages_in, states[1].bytes_in, states[1].bytes_out - joins[1]) == (2, 22, 11)
        assert (states[2].messages_in, states[2].bytes_in, states[2].bytes_out - joins[2]) == (1, 6, len(expected))
        assert (joins[3], states[3].bytes_out) == (0, len(expected) + 11)  # it joined last: no join lines for it
        relayed = run.recorder.of(DataRelayed)
        assert [(e.client_id, e.data, e.recipients, e.dropped) for e in relayed] == [
            (1, b"hello all\n", 2, 0),
            (1, b"second line\n", 2, 0),
            (2, b"hi #1\n", 2, 0),
        ]


async def test_chat_announces_joins_and_leaves_and_a_kick_is_a_leave() -> None:
    async with running_server(mode=Mode.CHAT) as run:
        one, two, three = await chat_room(run, 3)  # the joins of #2 and #3 were read there
        await three.aclose()
        leave = b"* #3 left (closed by peer)\n"
        for stream in (one, two):
            assert await receive_exactly(stream, len(leave)) == leave
        run.server.apply(Kick(2))
        assert await receive_exactly(one, 19) == b"* #2 left (kicked)\n"
        assert await receive_until_eof(two) == b""  # the kicked one gets its EOF, not its own leave


async def test_chat_the_operator_speaks_to_all_or_privately() -> None:
    async with running_server(mode=Mode.CHAT) as run:
        one, two = await chat_room(run, 2)
        run.server.apply(Broadcast(b"quiet please"))
        for stream in (one, two):
            assert await receive_exactly(stream, 24) == b"<operator> quiet please\n"
        run.server.apply(SendTo(2, b"you too\n"))
        assert await receive_exactly(two, 29) == b"<operator> (private) you too\n"
        await nothing_arrives(one)


async def test_chat_a_line_past_64_KiB_is_delivered_as_it_is_and_a_last_unfinished_line_too() -> None:
    async with running_server(mode=Mode.CHAT) as run:
        one, two = await chat_room(run, 2)
        await one.send_all(b"x" * (CHAT_LINE_BYTES + 10))  # no newline: the first 64 KiB go without waiting
        first = b"<#1> " + b"x" * CHAT_LINE_BYTES + b"\n"
        assert await receive_exactly(two, len(first)) == first
        await nothing_arrives(two)
        await one.send_eof()
        assert await receive_exactly(two, 16) == b"<#1> xxxxxxxxxx\n"


async def test_broker_relays_1_MB_of_random_binary_to_the_others_exactly() -> None:
    payload = os.urandom(1_000_000)
    async with running_server(mode=Mode.BROKER) as run:
        sender, one, two = [await connect(run.port) for _ in range(3)]
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 3)
        received: dict[int, bytes] = {}

        async def read_all(name: int, stream: trio.SocketStream) -> None:
            received[name] = await receive_exactly(stream, len(payload))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all, 1, one)
            nursery.start_soon(read_all, 2, two)
            for start in range(0, len(payload), 50_000):
                await sender.send_all(payload[start : start + 50_000])
        assert received[1] == payload and received[2] == payload
        await nothing_arrives(sender)
        states = {state.client_id: state for state in run.server.clients()}
        assert states[1].bytes_in == len(payload) and states[1].bytes_out == 0
        assert states[2].bytes_out == states[3].bytes_out == len(payload)
        assert all(state.dropped_out == 0 for state in states.values())
        assert run.server.totals().bytes_out == 2 * len(payload)


async def test_a_receiver_that_never_reads_loses_whole_deliveries_counted_and_is_cut_off(
    mock_clock: trio.testing.MockClock,
) -> None:
    # trio's clock stands still until the test lets it run: the stuck one's write timeout cannot fire while
    # the others talk, however slow the machine. If they had to wait for it, this would hang (pytest-timeout).
    line = b"m" * 999 + b"\n"  # 1000 bytes; 1005 with its prefix
    lines = 8000  # 8 MB: past the stuck one's queue (1 MiB) and its socket buffers
    async with running_server(mode=Mode.CHAT, write_timeout=1.0) as run:
        sender, reader = await chat_room(run, 2)
        stuck = trio.socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await stuck.connect(("127.0.0.1", run.port))  # #3: never reads
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 3)
        join = f"* #3 joined from 127.0.0.1:{stuck.getsockname()[1]}\n".encode()
        assert await receive_exactly(sender, len(join)) == join
        assert await receive_exactly(reader, len(join)) == join
        delivery = b"<#1> " + line
        got = bytearray()

        async def read_everything() -> None:
            while len(got) < lines * len(delivery):
                got.extend(await reader.receive_some(1 << 20))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_everything)
            for _ in range(lines // 100):
                await sender.send_all(line * 100)
        # The sender and the reader never waited for the stuck one: every line arrived while no time passed.
        assert bytes(got) == delivery * lines
        assert disconnect_of(run, 3) is None
        mock_clock.autojump_threshold = 0  # now time may pass: the write timeout cuts the stuck one off
        state = next(s for s in run.server.clients() if s.client_id == 3)
        assert state.dropped_out > 0
        assert state.bytes_out + state.dropped_out * len(delivery) <= lines * len(delivery)
        assert sum(e.dropped for e in run.recorder.of(DataRelayed)) <= state.dropped_out  # events may be skipped
        await run.recorder.wait_for(
            lambda: any("#3 is not reading" in e.message for e in run.recorder.of(ServerNotice))
        )
        await run.recorder.wait_for(lambda: disconnect_of(run, 3) is not None)
        gone = disconnect_of(run, 3)
        assert gone.reason is DisconnectReason.SLOW_READER
        # Every delivery offered to #3 either reached its socket or was counted as dropped.
        assert gone.dropped_out >= state.dropped_out
        assert disconnect_of(run, 1) is None and disconnect_of(run, 2) is None
        assert run.server.totals().dropped_out == gone.dropped_out
        stuck.close()


async def test_discard_sends_nothing_back_and_counts_exactly() -> None:
    async with running_server(mode=Mode.DISCARD) as run:
        client = await connect(run.port)
        sizes = [1, 100, 65536, 7]
        for size in sizes:
            await client.send_all(b"d" * size)
        total = sum(sizes)
        await run.recorder.wait_for(
            lambda: sum(e.size for e in run.recorder.of(DataDiscarded)) == total, timeout=TIMEOUT
        )
        await nothing_arrives(client)
        (state,) = run.server.clients()
        assert (state.bytes_in, state.bytes_out, state.dropped_out) == (total, 0, 0)
        assert state.messages_in == len(run.recorder.of(DataDiscarded))
        await client.send_eof()
        assert await receive_until_eof(client) == b""
        await run.recorder.wait_for(lambda: disconnect_of(run, 1) is not None)
        totals = run.server.totals()
        assert (totals.bytes_in, totals.bytes_out) == (total, 0)


async def test_chat_a_line_a_rule_answers_goes_back_to_its_sender_and_is_not_relayed() -> None:
    async with running_server(mode=Mode.CHAT, rules=(parse_rule_option(r"^PING (\d+) => PONG {1}\n", 1, 1),)) as run:
        one, two = await chat_room(run, 2)
        await one.send_all(b"PING 7\nhello\n")
        assert await receive_exactly(one, 7) == b"PONG 7\n"
        assert await receive_exactly(two, 11) == b"<#1> hello\n"  # the answered line never reached #2
        await nothing_arrives(two)
        states = {state.client_id: state for state in run.server.clients()}
        assert states[1].messages_in == 2
        await run.recorder.wait_for(lambda: run.recorder.of(DataAnswered))
        [answered] = run.recorder.of(DataAnswered)
        assert (answered.client_id, answered.data, answered.answered) == (1, b"PING 7\n", 1)
        assert (answered.rules, answered.reply, answered.reply_size) == ((1,), b"PONG 7\n", 7)


@pytest.mark.parametrize("mode", [Mode.CHAT, Mode.BROKER, Mode.ECHO])
async def test_the_relay_modes_bound_each_clients_kernel_send_buffer(mode: Mode) -> None:
    """So a flood fills a receiver that never reads at once (the kernel holds at most twice the
    bound; Linux doubles what is asked), not after 4 MiB of autotuned buffer each; echo keeps the
    kernel's own."""
    async with running_server(mode=mode) as run:
        client = await connect(run.port)
        with trio.fail_after(TIMEOUT):
            while not run.server._registry.connections:
                await trio.sleep(0.01)
        (conn,) = run.server._registry.connections.values()
        sock = conn.transport.sock  # type: ignore[attr-defined]
        size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if mode is Mode.ECHO:
            assert size != 2 * RELAY_SEND_BUFFER  # the kernel's default (16 KiB, doubled, growing)
        else:
            assert size == 2 * RELAY_SEND_BUFFER
        await client.aclose()
