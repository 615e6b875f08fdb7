"""The echo server against real client sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import itertools
import socket

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_echo.server.commands import Broadcast, Kick, KickAll, SendTo, Shutdown
from tui_echo.server.config import Framing
from tui_echo.server.events import (
    EVENT_DATA_BYTES,
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DisconnectReason,
    RefusalReason,
    DataBroadcast,
    DataReceived,
    DataSent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)
from tui_echo.server.clients import ClientStatus

from .helpers import (
    disconnect_of,
    TIMEOUT,
    connect,
    receive_exactly,
    receive_until_eof,
    reset_on_close,
    running_server,
)

pytestmark = pytest.mark.trio


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=12))
async def test_echo_is_byte_exact_for_any_chunking(chunks: list[bytes]) -> None:
    async with running_server() as run:
        client = await connect(run.port)
        for chunk in chunks:
            await client.send_all(chunk)
        expected = b"".join(chunks)
        assert await receive_exactly(client, len(expected)) == expected
        state = next(run.server.clients())
        assert (state.bytes_in, state.bytes_out) == (len(expected), len(expected))
        await client.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(min_size=1, max_size=4000).map(lambda b: b.replace(b"\x00", b"\n")),
    cuts=st.lists(st.integers(min_value=1, max_value=3999), max_size=10),
)
async def test_under_line_framing_random_splits_never_change_the_echo_or_the_line_count(
    data: bytes, cuts: list[int]
) -> None:
    # Chunk counts depend on how the kernel merges sends; bytes and complete lines never do.
    edges = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    async with running_server(framing=Framing.LINE) as run:
        client = await connect(run.port)
        for start, end in itertools.pairwise(edges):
            await client.send_all(data[start:end])
            await trio.sleep(0)  # let the server read some pieces apart
        assert await receive_exactly(client, len(data)) == data
        state = next(run.server.clients())
        assert (state.messages_in, state.bytes_in, state.bytes_out) == (data.count(b"\n"), len(data), len(data))
        await client.aclose()


async def test_binary_and_partial_lines_come_back_unchanged_while_streaming() -> None:
    payload = bytes(range(256)) * 400  # 100 KiB with every byte value, no framing at all
    async with running_server() as run:
        client = await connect(run.port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, payload)
            assert await receive_exactly(client, len(payload)) == payload
        await client.send_eof()
        assert await receive_until_eof(client) == b""


async def test_200_concurrent_clients_get_exact_counts() -> None:
    clients, messages = 200, 25
    async with running_server() as run:

        async def talk(index: int) -> None:
            stream = await connect(run.port)
            for n in range(messages):
                message = f"client {index} message {n}".encode().ljust(40, b".")
                await stream.send_all(message)
                assert await receive_exactly(stream, len(message)) == message
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            for index in range(clients):
                nursery.start_soon(talk, index)
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == clients)
        finals = run.recorder.of(ClientDisconnected)
        assert {e.reason for e in finals} == {"closed by peer"}
        assert all((e.messages_in, e.bytes_in, e.bytes_out) == (messages, 40 * messages, 40 * messages) for e in finals)
        assert sorted(e.client_id for e in finals) == list(range(1, clients + 1))
        totals = run.server.totals()
        assert (totals.clients_total, totals.messages_in, totals.bytes_in) == (
            clients,
            clients * messages,
            clients * messages * 40,
        )


async def test_line_framing_counts_newline_terminated_lines_across_chunks() -> None:
    async with running_server(framing=Framing.LINE) as run:
        client = await connect(run.port)
        sent = b""
        for piece in (b"one\ntw", b"o\n", b"three", b"\nfour\nfive\n", b"partial"):
            await client.send_all(piece)
            sent += piece
            assert await receive_exactly(client, len(piece)) == piece
        state = next(run.server.clients())
        assert state.messages_in == 5  # "partial" has no newline yet
        await client.send_all(b"\n")
        await receive_exactly(client, 1)
        assert state.messages_in == 6
        await run.recorder.wait_for(lambda: len(run.recorder.of(DataReceived)) == 6)
        assert [e.messages for e in run.recorder.of(DataReceived)] == [1, 1, 0, 3, 0, 1]


async def test_events_tell_the_story_of_a_client() -> None:
    async with running_server() as run:
        client = await connect(run.port)
        for word in (b"alpha", b"beta!", b"gamma"):
            await client.send_all(word)
            await receive_exactly(client, len(word))
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
    events = run.recorder.events
    kinds = [type(e) for e in events]
    assert kinds == [
        ServerListening,
        ClientConnected,
        DataReceived,
        DataReceived,
        DataReceived,
        ClientDisconnected,
        ServerStopped,
    ]
    listening, connected, *data, gone, stopped = events
    assert listening.addresses == (("127.0.0.1", run.port),)
    assert connected.client_id == 1 and connected.peer[0] == "127.0.0.1"
    assert [(e.data, e.messages_in, e.bytes_in, e.bytes_out) for e in data] == [
        (b"alpha", 1, 5, 5),
        (b"beta!", 2, 10, 10),
        (b"gamma", 3, 15, 15),
    ]
    assert (gone.reason, gone.messages_in, gone.bytes_in, gone.bytes_out) == ("closed by peer", 3, 15, 15)
    totals = stopped.totals
    assert (totals.clients_total, totals.messages_in, totals.bytes_in, totals.events_skipped) == (1, 3, 15, 0)
    assert (totals.clients_now, totals.clients_peak) == (0, 1)


async def test_ids_count_up_and_are_never_reused() -> None:
    async with running_server() as run:
        for _ in range(3):
            stream = await connect(run.port)
            await stream.aclose()
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == 3)
        assert [e.client_id for e in run.recorder.of(ClientConnected)] == [1, 2, 3]


async def test_kick_closes_one_client_who_sees_eof() -> None:
    async with running_server() as run:
        first, second = await connect(run.port), await connect(run.port)
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 2)
        run.server.command_nowait(Kick(1))
        assert await receive_until_eof(first) == b""
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        assert disconnect_of(run, 1).reason == "kicked"
        await second.send_all(b"still here")
        assert await receive_exactly(second, 10) == b"still here"
        assert [s.client_id for s in run.server.clients()] == [2]


async def test_kick_all_closes_every_client() -> None:
    async with running_server() as run:
        streams = [await connect(run.port) for _ in range(5)]
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 5)
        run.server.command_nowait(KickAll())
        for stream in streams:
            assert await receive_until_eof(stream) == b""
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == 5)
        assert {e.reason for e in run.recorder.of(ClientDisconnected)} == {"kicked"}
        assert list(run.server.clients()) == []


async def test_kick_of_a_client_with_unread_input_still_gives_eof() -> None:
    async with running_server() as run:
        stream = await connect(run.port)
        await run.recorder.wait_for(lambda: run.recorder.of(ClientConnected))
        state = next(run.server.clients())
        # The client never reads: the server's writes back up and input stays unread.
        with trio.move_on_after(0.5):
            while True:
                await stream.send_all(b"z" * 65536)
        run.server.command_nowait(Kick(state.client_id))
        await run.recorder.wait_for(lambda: disconnect_of(run, state.client_id))
        echoed = await receive_until_eof(stream)
        assert len(echoed) == disconnect_of(run, state.client_id).bytes_out


async def test_send_to_one_client_delivers_exact_bytes() -> None:
    async with running_server() as run:
        first, second = await connect(run.port), await connect(run.port)
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 2)
        payload = b"\x00\x01binary\r\n\xff"
        run.server.command_nowait(SendTo(2, payload))
        assert await receive_exactly(second, len(payload)) == payload
        await run.recorder.wait_for(lambda: run.recorder.of(DataSent))
        (sent,) = run.recorder.of(DataSent)
        assert (sent.client_id, sent.data, sent.bytes_out) == (2, payload, len(payload))
        # The other client got nothing: its next bytes are its own echo.
        await first.send_all(b"mine")
        assert await receive_exactly(first, 4) == b"mine"


async def test_broadcast_reaches_every_client_and_is_one_event() -> None:
    async with running_server() as run:
        streams = [await connect(run.port) for _ in range(4)]
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 4)
        run.server.command_nowait(Broadcast(b"to all\n"))
        for stream in streams:
            assert await receive_exactly(stream, 7) == b"to all\n"
        await run.recorder.wait_for(lambda: run.recorder.of(DataBroadcast))
        (broadcast,) = run.recorder.of(DataBroadcast)
        assert (broadcast.data, broadcast.size, broadcast.recipients) == (b"to all\n", 7, 4)
        run.server.command_nowait(KickAll())
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == 4)
        # No event per client, and each client's own count still has its copy, exactly.
        assert run.recorder.of(DataSent) == []
        assert [gone.bytes_out for gone in run.recorder.of(ClientDisconnected)] == [7] * 4
        for stream in streams:
            await stream.aclose()


async def test_operator_send_and_echo_never_interleave() -> None:
    async with running_server() as run:
        stream = await connect(run.port)
        await run.recorder.wait_for(lambda: run.recorder.of(ClientConnected))
        block = b"E" * 200_000
        operator = b"O" * 200_000
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.send_all, block)
            run.server.command_nowait(SendTo(1, operator))
            received = await receive_exactly(stream, len(block) + len(operator))
        # Whatever the order, the operator's bytes arrive as one unbroken run.
        start = received.index(b"O")
        assert received[start : start + len(operator)] == operator


async def test_commands_for_unknown_clients_give_a_notice() -> None:
    async with running_server() as run:
        run.server.command_nowait(Kick(42))
        run.server.command_nowait(SendTo(7, b"x"))
        run.server.command_nowait(Broadcast(b"x"))
        await run.recorder.wait_for(lambda: len(run.recorder.of(ServerNotice)) == 3)
        assert [n.message for n in run.recorder.of(ServerNotice)] == [
            "kick: no client #42",
            "send: no client #7",
            "broadcast: no clients connected",
        ]


async def test_idle_client_is_disconnected_and_active_one_is_not(mock_clock: trio.testing.MockClock) -> None:
    # trio's clock moves only when the test moves it: 50 ms between two pings, whatever the machine's speed.
    async with running_server(idle_timeout=0.4) as run:
        idle, busy = await connect(run.port), await connect(run.port)
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 2)
        for _ in range(20):  # 1 s: the idle one goes after 0.4 s
            await busy.send_all(b"ping")
            await receive_exactly(busy, 4)
            mock_clock.jump(0.05)
            await trio.testing.wait_all_tasks_blocked(cushion=0.01)
            if disconnect_of(run, 1) is not None:
                break
        mock_clock.autojump_threshold = 0  # from here on timeouts may pass
        gone = disconnect_of(run, 1)
        assert gone is not None and gone.reason == "idle timeout"
        assert 0.4 <= gone.at - gone.connected_at <= 0.45 + 1e-6
        assert await receive_until_eof(idle) == b""
        assert disconnect_of(run, 2) is None


async def test_a_data_event_carries_at_most_1_KiB_of_a_big_chunk_and_its_full_size() -> None:
    async with running_server() as run:
        client = await connect(run.port)
        payload = bytes(range(256)) * 200  # 51,200 bytes; the echo must be whole
        await client.send_all(payload)
        assert await receive_exactly(client, len(payload)) == payload
        await run.recorder.wait_for(lambda: sum(e.size for e in run.recorder.of(DataReceived)) == len(payload))
        events = run.recorder.of(DataReceived)
        assert all(len(e.data) == min(e.size, EVENT_DATA_BYTES) for e in events)
        assert any(e.size > EVENT_DATA_BYTES for e in events)  # a 64 KiB read takes more than a segment
        assert all(payload.find(e.data) >= 0 for e in events)
        await client.aclose()


async def test_the_idle_deadline_runs_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    # An hour of idleness in no time: the clock jumps whenever every task waits.
    hour = 3600.0
    async with running_server(idle_timeout=hour) as run:
        idle = await connect(run.port)
        await run.recorder.wait_for(lambda: disconnect_of(run, 1), timeout=2 * hour)
        with trio.fail_after(2 * hour):
            assert await idle.receive_some(10) == b""
        gone = disconnect_of(run, 1)
        assert gone.reason is DisconnectReason.IDLE_TIMEOUT
        assert gone.at - gone.connected_at == pytest.approx(hour, abs=1.0)


async def test_a_client_that_never_reads_is_cut_off_as_a_slow_reader_and_others_keep_their_pace(
    mock_clock: trio.testing.MockClock,
) -> None:
    # trio's clock stands still until the test moves it: the write timeout cannot fire before the test says so,
    # however slow the machine. An idle timeout shorter than the write timeout: the hog is busy, never idle.
    async with running_server(write_timeout=0.5, idle_timeout=0.3) as run:
        hog = trio.socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # its echo backs up sooner
        await hog.connect(("127.0.0.1", run.port))
        ping = await connect(run.port)

        async def flood() -> None:
            with contextlib.suppress(OSError):
                while True:
                    await hog.send(b"x" * 65536)

        async def pings(count: int) -> None:
            for _ in range(count):
                await ping.send_all(b"ping")
                assert await receive_exactly(ping, 4) == b"ping"

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            # Every task waits: the flood on the hog's full socket, the server on writing the hog's echo.
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            nursery.cancel_scope.cancel()
        hogged = next(state for state in run.server.clients() if state.client_id == 1)
        assert hogged.bytes_out < hogged.bytes_in  # its echo stopped draining
        await pings(20)  # served while the hog's echo waits
        for _ in range(3):  # 0.6 s pass, past the write timeout; the pinger is never idle for 0.3 s
            mock_clock.jump(0.2)
            await pings(1)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        mock_clock.autojump_threshold = 0  # from here on (the checks, the stop) timeouts may pass
        hog.close()
        gone = disconnect_of(run, 1)
        assert gone is not None and gone.reason is DisconnectReason.SLOW_READER
        assert gone.bytes_out < gone.bytes_in
        assert disconnect_of(run, 2) is None
        await pings(1)
        await ping.aclose()


async def test_max_clients_refuses_extra_connections_and_keeps_serving() -> None:
    async with running_server(max_clients=2) as run:
        first, second = await connect(run.port), await connect(run.port)
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 2)
        extra = await connect(run.port)
        assert await receive_until_eof(extra) == b""
        await run.recorder.wait_for(lambda: run.recorder.of(ConnectionRefused))
        [refused] = run.recorder.of(ConnectionRefused)
        assert (refused.client_id, refused.reason) == (3, RefusalReason.SERVER_FULL)
        assert all(e.client_id != 3 for e in run.recorder.of(ClientDisconnected))  # it never was a client
        assert run.server.totals().refused_total == 1
        for stream in (first, second):
            await stream.send_all(b"ok")
            assert await receive_exactly(stream, 2) == b"ok"
        await first.aclose()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        later = await connect(run.port)  # room again
        await later.send_all(b"in")
        assert await receive_exactly(later, 2) == b"in"


async def test_half_close_gets_the_rest_of_its_echo_then_eof() -> None:
    async with running_server() as run:
        stream = await connect(run.port)
        payload = b"last words " * 10_000
        await stream.send_all(payload)
        await stream.send_eof()
        assert await receive_until_eof(stream) == payload
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        assert disconnect_of(run, 1).reason == "closed by peer"
        assert disconnect_of(run, 1).bytes_out == len(payload)


async def test_abrupt_reset_is_a_normal_disconnect() -> None:
    async with running_server() as run:
        doomed = await connect(run.port)
        await doomed.send_all(b"bye")
        await receive_exactly(doomed, 3)
        await doomed.send_all(b"unread")  # reset with echo in flight
        reset_on_close(doomed)
        await doomed.aclose()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        assert disconnect_of(run, 1).why in ("error: connection reset by peer", "closed by peer")
        survivor = await connect(run.port)
        await survivor.send_all(b"alive")
        assert await receive_exactly(survivor, 5) == b"alive"


async def test_reset_while_idle_reports_connection_reset() -> None:
    async with running_server() as run:
        doomed = await connect(run.port)
        await doomed.send_all(b"x")
        await receive_exactly(doomed, 1)
        reset_on_close(doomed)
        await doomed.aclose()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        gone = disconnect_of(run, 1)
        assert (gone.reason, gone.error, gone.why) == (
            DisconnectReason.ERROR,
            "connection reset by peer",
            "error: connection reset by peer",
        )


async def test_stalled_consumer_never_stalls_the_echo() -> None:
    clients, messages = 4, 500
    async with running_server(consume=False, event_buffer=8) as run:

        async def talk() -> None:
            stream = await connect(run.port)
            for n in range(messages):
                await stream.send_all(b"%08d" % n)
                assert await receive_exactly(stream, 8) == b"%08d" % n
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(talk)
        # Every echo finished while nobody read a single event.
        assert run.recorder.events == []
        assert run.server.totals().messages_in == clients * messages
        run.recorder.consuming.set()
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == clients)
    recorded = run.recorder
    # Lifecycle events all arrived, each connect before its disconnect.
    connected = [e.client_id for e in recorded.of(ClientConnected)]
    assert sorted(connected) == list(range(1, clients + 1))
    for client_id in connected:
        order = [
            i
            for i, e in enumerate(recorded.events)
            if getattr(e, "client_id", None) == client_id and isinstance(e, ClientConnected | ClientDisconnected)
        ]
        assert isinstance(recorded.events[order[0]], ClientConnected)
        assert isinstance(recorded.events[order[-1]], ClientDisconnected)
    delivered = len(recorded.of(DataReceived))
    (stopped,) = recorded.of(ServerStopped)
    assert stopped.totals.events_skipped == clients * messages - delivered > 0
    assert {e.messages_in for e in recorded.of(ClientDisconnected)} == {messages}


async def test_full_lifecycle_backlog_pauses_accept_without_losing_events() -> None:
    async with running_server(consume=False, event_buffer=2, lifecycle_backlog=3) as run:
        streams = [await connect(run.port) for _ in range(8)]  # the kernel queues what is not accepted
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # nothing more will happen: accept waits for room
        assert run.server.totals().clients_total < 8  # accept paused
        run.recorder.consuming.set()
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientConnected)) == 8)
        for stream in streams:
            await stream.send_all(b"k")
            assert await receive_exactly(stream, 1) == b"k"
    assert [e.client_id for e in run.recorder.of(ClientConnected)] == list(range(1, 9))


async def test_shutdown_closes_every_client_with_eof_and_reports_totals() -> None:
    async with running_server() as run:
        streams = [await connect(run.port) for _ in range(3)]
        for stream in streams:
            await stream.send_all(b"hey")
            await receive_exactly(stream, 3)
        run.server.command_nowait(Shutdown())
        for stream in streams:
            assert await receive_until_eof(stream) == b""
        await run.recorder.wait_for(lambda: run.recorder.of(ServerStopped))
    assert {e.reason for e in run.recorder.of(ClientDisconnected)} == {"server shutdown"}
    (stopped,) = run.recorder.of(ServerStopped)
    totals = stopped.totals
    assert (totals.clients_total, totals.messages_in, totals.bytes_in, totals.bytes_out) == (3, 3, 9, 9)
    with pytest.raises(OSError):
        await connect(run.port)


async def test_a_stop_while_clients_talk_gives_each_all_it_was_sent_then_eof() -> None:
    """The stop shuts every plain socket down at once (FIN after what was written): a client still
    sending reads every byte the server counted as written to it, then EOF, never a reset first."""
    read: dict[int, int] = {}
    async with running_server() as run:
        streams = [await connect(run.port) for _ in range(20)]

        async def talk(index: int, stream: trio.SocketStream) -> None:
            async def keep_sending() -> None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    while True:
                        await stream.send_all(b"x" * 4096)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_sending)
                read[index] = 0
                while data := await stream.receive_some(65536):  # a reset would raise BrokenResourceError
                    read[index] += len(data)
                nursery.cancel_scope.cancel()

        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                for index, stream in enumerate(streams):
                    nursery.start_soon(talk, index, stream)
                while run.server.totals().bytes_out < 20 * 65536:
                    await trio.sleep(0.01)
                run.server.stop()
        await run.recorder.wait_for(lambda: run.recorder.of(ServerStopped))
        for stream in streams:
            await stream.aclose()
    gone = {event.client_id: event for event in run.recorder.of(ClientDisconnected)}
    assert {event.reason for event in gone.values()} == {DisconnectReason.SERVER_SHUTDOWN}
    assert {index + 1: count for index, count in read.items()} == {cid: e.bytes_out for cid, e in gone.items()}


def queue_connections(port: int, count: int) -> list[socket.socket]:
    """Connect without yielding to trio: the server cannot run meanwhile, so all wait in its listen queue."""
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]


async def test_waiting_connections_are_accepted_in_batches_not_one_per_scheduler_pass() -> None:
    async with running_server() as run:
        waiting = queue_connections(run.port, 300)
        try:
            passes = 0
            while run.server.totals().clients_total < 300 and passes < 10:
                await trio.lowlevel.checkpoint()  # one pass of trio's scheduler
                passes += 1
            # One accept per pass (the old loop) would have taken 300 passes.
            assert run.server.totals().clients_total == 300, f"{run.server.totals().clients_total} after {passes}"
        finally:
            for sock in waiting:
                sock.close()


async def test_a_stop_closes_connections_still_in_the_listen_queue_with_eof_not_reset() -> None:
    async with running_server() as run:
        waiting = [trio.socket.from_stdlib_socket(sock) for sock in queue_connections(run.port, 50)]
        run.server.stop()
        with trio.fail_after(TIMEOUT):
            for sock in waiting:
                assert await sock.recv(10) == b""  # a reset would raise ConnectionResetError
                sock.close()
        await run.recorder.wait_for(lambda: run.recorder.of(ServerStopped))
    assert len(run.recorder.of(ClientDisconnected)) == 50
    assert {e.reason for e in run.recorder.of(ClientDisconnected)} == {DisconnectReason.SERVER_SHUTDOWN}


async def test_state_is_exact_while_clients_talk() -> None:
    async with running_server() as run:
        stream = await connect(run.port)
        for n in range(1, 51):
            await stream.send_all(b"abc")
            await receive_exactly(stream, 3)
            (state,) = run.server.clients()
            assert (state.messages_in, state.bytes_in, state.bytes_out) == (n, 3 * n, 3 * n)
            assert state.status is ClientStatus.CONNECTED


async def test_sends_to_a_client_that_does_not_read_are_bounded() -> None:
    async with running_server(max_pending_sends=3) as run:
        stream = await connect(run.port)
        await run.recorder.wait_for(lambda: run.recorder.of(ClientConnected))
        big = b"B" * 8_000_000  # more than the socket buffers hold: the first send blocks
        for _ in range(4):
            run.server.command_nowait(SendTo(1, big))
        await run.recorder.wait_for(lambda: run.recorder.of(ServerNotice))
        (notice,) = run.recorder.of(ServerNotice)
        assert notice.message == "send to #1 refused: 3 sends already waiting (the client is not reading)"
        run.server.command_nowait(Kick(1))
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        assert disconnect_of(run, 1).bytes_out < 3 * len(big)
        await stream.aclose()


async def test_a_client_with_more_to_read_is_read_again_without_a_readiness_wait(monkeypatch: object) -> None:
    """The echo's readiness loop keeps every plain client in one level-triggered epoll set: a client with more
    to read is read again in the next round, with no readiness wait (in trio each one re-arms epoll and parks
    a task). 64 chunks already in the socket when the server first reads are read with one wait at most."""
    waits = 0
    real_wait = trio.lowlevel.wait_readable

    async def counted_wait(fd: socket.socket) -> None:
        nonlocal waits
        if not isinstance(fd, socket.socket) or fd.getsockname() != run.server.addresses[0]:  # not the listener
            waits += 1
        await real_wait(fd)

    async with running_server(recv_size=1024) as run:
        monkeypatch.setattr(trio.lowlevel, "wait_readable", counted_wait)  # type: ignore[attr-defined]
        # Connected and sent without yielding to trio: all 64 KiB wait in the socket before the server accepts.
        with socket.create_connection(("127.0.0.1", run.port)) as client:
            client.sendall(b"y" * 64 * 1024)
            got = 0
            with trio.fail_after(TIMEOUT):
                while got < 64 * 1024:
                    got += len(await trio.to_thread.run_sync(client.recv, 1 << 20))
            assert run.server.totals().messages_in == 64
    assert waits <= 1, f"{waits} readiness waits for 64 chunks that were all there"
