"""The plain echo's readiness loop (``server/echo_reactor.py``): one loop echoes every plain client, each client's
task waits until it is needed, and with ``data_event_rate`` a busy client's data events are a sample whose
running totals catch up once it pauses. Time is trio's mock clock: the sample's counts are exact."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio.testing

from tui_echo.server.connection import Connection
from tui_echo.server.events import DataReceived, DisconnectReason
from tui_echo.server.subscription import Subscription
from tui_echo.server.transport import PlainTransport

from .test_mode_handlers import PEER, Harness

pytestmark = pytest.mark.trio


@asynccontextmanager
async def plain_client(run: Harness) -> AsyncIterator[tuple[Connection, trio.SocketStream, list[object]]]:
    """A plain client over a socket pair, served by the echo mode; yields its connection, its far end and
    what its loop ended with (once it has)."""
    near, far = socket.socketpair()
    near.setblocking(False)
    conn = run.registry.enter(PEER, partial(PlainTransport, near), run.mode.joined)
    client = trio.SocketStream(trio.socket.from_stdlib_socket(far))
    ended: list[object] = []

    async def serve() -> None:
        with conn.scope:  # as Connection.run does: a kick cancels it
            ended.append(await run.mode.serve(conn))

    async with client, trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        yield conn, client, ended
        await client.send_eof()
    conn.transport.close()


async def echo_round_trips(client: trio.SocketStream, count: int) -> None:
    for n in range(count):
        message = b"m%05d" % n
        await client.send_all(message)
        assert await client.receive_some(100) == message


async def test_a_busy_clients_events_are_a_burst_then_the_rate_and_a_pause_catches_the_totals_up(
    mock_clock: trio.testing.MockClock,
) -> None:
    run = Harness(data_event_rate=20.0)
    async with plain_client(run) as (conn, client, ended):
        await echo_round_trips(client, 100)  # no time passes: the burst of 20, then none
        got = [e.messages_in for e in run.of(DataReceived)]
        assert got == list(range(1, 21)), str(got)
        mock_clock.jump(0.2)  # quiet for longer than PAUSE_SECONDS: the last chunk left out gets its event
        await trio.testing.wait_all_tasks_blocked()
        last = run.of(DataReceived)[-1]
        assert (last.data, last.messages_in, last.bytes_in, last.bytes_out) == (b"m00099", 100, 600, 600)
        mock_clock.jump(0.3)  # 0.5 s since the burst: 10 tokens (20 a second), so of 11 chunks the 11th has none
        await echo_round_trips(client, 11)
        got = [e.messages_in for e in run.of(DataReceived)][21:]
        assert got == list(range(101, 111)), str(got)
    assert run.of(DataReceived)[-1].messages_in == 111  # the client's end publishes the chunk left out
    assert ended == [(DisconnectReason.CLOSED_BY_PEER, "")]
    assert (conn.state.messages_in, conn.state.bytes_in, conn.state.bytes_out) == (111, 666, 666)


async def test_with_a_console_attached_every_chunk_has_its_event(mock_clock: trio.testing.MockClock) -> None:
    run = Harness(data_event_rate=20.0)
    subscription = Subscription(trio.current_time(), run.outbox.unsubscribe, data_rate=1e9, data_burst=1e9)
    run.outbox.subscribe(subscription)
    async with plain_client(run) as (_, client, _):
        await echo_round_trips(client, 100)
    assert [e.messages_in for e in run.of(DataReceived)] == list(range(1, 101))
    assert len([e for e in subscription.take() if isinstance(e, DataReceived)]) == 100


async def test_without_a_rate_every_chunk_has_its_event_in_order() -> None:
    run = Harness()
    async with plain_client(run) as (_, client, _):
        await echo_round_trips(client, 300)
    assert [e.messages_in for e in run.of(DataReceived)] == list(range(1, 301))


async def test_one_loop_serves_many_clients_a_kick_takes_one_out_and_the_loop_ends_with_the_last() -> None:
    run = Harness()
    async with plain_client(run) as (kicked, kicked_far, kicked_ended):
        async with plain_client(run) as (_, other, other_ended):
            await echo_round_trips(kicked_far, 3)
            await echo_round_trips(other, 3)
            kicked.kick(DisconnectReason.KICKED)  # its task leaves the loop's set as it is cancelled
            await run.wait_for(lambda: kicked.scope.cancelled_caught)
            await echo_round_trips(other, 3)  # the loop goes on for the others
            assert run.mode._reactor._running  # type: ignore[attr-defined]
        assert other_ended == [(DisconnectReason.CLOSED_BY_PEER, "")]
    await run.wait_for(lambda: not run.mode._reactor._running)  # type: ignore[attr-defined]
    async with plain_client(run) as (_, again, _):  # and a new client starts it again
        await echo_round_trips(again, 2)
