"""The bounded event path on its own: what waits, what is dropped and counted, and in what order."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tui_echo.server.events import ServerEvent, ServerNotice
from tui_echo.server.outbox import FULL_PAUSE_SECONDS, EventOutbox

from .helpers import TIMEOUT

pytestmark = pytest.mark.trio


def notice(n: int) -> ServerNotice:
    return ServerNotice(message=f"n{n}", at=float(n))


def drain_now(receive: trio.MemoryReceiveChannel[ServerEvent]) -> list[str]:
    taken = []
    while True:
        try:
            event = receive.receive_nowait()
        except trio.WouldBlock:
            return taken
        assert isinstance(event, ServerNotice)
        taken.append(event.message)


async def test_data_events_fill_the_channel_then_are_dropped_and_counted() -> None:
    send, receive = trio.open_memory_channel[ServerEvent](2)
    outbox = EventOutbox(send, backlog_limit=10)
    for n in range(5):
        outbox.data(notice(n), now=100.0)
    assert drain_now(receive) == ["n0", "n1"]
    assert outbox.dropped == 3


async def test_after_a_full_channel_data_is_skipped_unbuilt_for_a_moment() -> None:
    send, receive = trio.open_memory_channel[ServerEvent](1)
    outbox = EventOutbox(send, backlog_limit=10)
    outbox.data(notice(0), now=100.0)
    outbox.data(notice(1), now=100.0)  # full: dropped, and the pause starts
    drain_now(receive)
    assert outbox.skip_if_full(100.0 + FULL_PAUSE_SECONDS / 2)
    assert outbox.dropped == 2  # a skip counts as a drop
    assert not outbox.skip_if_full(100.0 + FULL_PAUSE_SECONDS)


async def test_lifecycle_events_wait_in_order_and_data_is_dropped_meanwhile() -> None:
    send, receive = trio.open_memory_channel[ServerEvent](1)
    outbox = EventOutbox(send, backlog_limit=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.pump)
        for n in range(4):
            outbox.lifecycle(notice(n))
        assert outbox.backlog == 3
        outbox.data(notice(99), now=0.0)  # would overtake the waiting lifecycle events
        got = [await receive.receive() for _ in range(4)]
        await trio.testing.wait_all_tasks_blocked()
        assert [e.message for e in got if isinstance(e, ServerNotice)] == ["n0", "n1", "n2", "n3"]
        assert outbox.backlog == 0 and outbox.dropped == 1
        nursery.cancel_scope.cancel()


async def test_accept_waits_while_the_backlog_is_at_its_limit() -> None:
    send, receive = trio.open_memory_channel[ServerEvent](0)
    outbox = EventOutbox(send, backlog_limit=2)
    outbox.lifecycle(notice(0))
    outbox.lifecycle(notice(1))
    room = trio.Event()

    async def accept() -> None:
        await outbox.wait_for_room()
        room.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        nursery.start_soon(outbox.pump)
        await trio.testing.wait_all_tasks_blocked()
        assert not room.is_set()  # the pump is stuck on a consumer that does not read
        assert [(await receive.receive()).message for _ in range(1)] == ["n0"]  # type: ignore[union-attr]
        with trio.fail_after(TIMEOUT):
            await room.wait()
        nursery.cancel_scope.cancel()


async def test_drain_waits_until_every_lifecycle_event_is_in_the_channel() -> None:
    send, receive = trio.open_memory_channel[ServerEvent](1)
    outbox = EventOutbox(send, backlog_limit=10)
    for n in range(3):
        outbox.lifecycle(notice(n))
    drained = trio.Event()

    async def drain() -> None:
        await outbox.drain()
        drained.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.pump)
        nursery.start_soon(drain)
        await trio.testing.wait_all_tasks_blocked()
        assert not drained.is_set()
        got = [await receive.receive() for _ in range(2)]
        with trio.fail_after(TIMEOUT):
            await drained.wait()
        assert len(got) == 2 and outbox.backlog == 0
        nursery.cancel_scope.cancel()


async def test_a_consumer_that_went_away_costs_nothing_and_never_blocks_accept(autojump_clock: trio.abc.Clock) -> None:
    send, receive = trio.open_memory_channel[ServerEvent](1)
    outbox = EventOutbox(send, backlog_limit=1)
    await receive.aclose()
    outbox.lifecycle(notice(0))
    outbox.lifecycle(notice(1))
    outbox.data(notice(2), now=0.0)
    assert outbox.backlog == 0
    # trio's clock jumps whenever every task waits: any wait at all ends in TooSlowError, at once.
    with trio.fail_after(1):
        await outbox.wait_for_room()
        await outbox.drain()
