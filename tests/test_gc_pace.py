"""The monitor's garbage collector policy (monitor/gc_pace.py), counted, never timed: what a full collection
keeps is frozen (so the next ones walk only what came since), and the deep pass that thaws and collects
everything comes when its clients have left or its time has come, once the keyboard rests."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tui_echo.monitor.gc_pace import (
    DEEP_AFTER_CLIENTS,
    DEEP_EVERY_SECONDS,
    DEEP_MIN_SECONDS,
    DEEP_REST_SECONDS,
    DEEP_WAIT_SECONDS,
    YOUNG_OBJECTS,
    GcPace,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pace() -> Iterator[tuple[GcPace, Clock]]:
    clock = Clock()
    pace = GcPace(clock)
    before = gc.get_threshold()
    pace.start()
    try:
        yield pace, clock
    finally:
        pace.stop()
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0 and not pace.running


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    """A pair of objects that refer to each other (a client's task and its connection, say)."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def test_what_a_full_collection_keeps_is_frozen_at_the_next_tick(pace: tuple[GcPace, Clock]) -> None:
    gc_pace, _ = pace
    assert gc.get_threshold()[0] == max(YOUNG_OBJECTS, 700) and gc.get_freeze_count() > 0  # the program itself
    kept = [Node() for _ in range(1000)]
    frozen = gc.get_freeze_count()
    gc_pace.tick(clients=0)
    assert gc.get_freeze_count() == frozen  # no full collection since: nothing to freeze
    gc.collect()
    gc_pace.tick(clients=0)
    assert gc.get_freeze_count() >= frozen + len(kept)
    assert not any(gc.is_tracked(node) and node in gc.get_objects(2) for node in kept[:3])  # out of every pass


def test_a_frozen_cycle_is_freed_by_the_deep_pass_once_clients_have_come_and_gone(
    pace: tuple[GcPace, Clock],
) -> None:
    gc_pace, clock = pace
    gc_pace.tick(clients=DEEP_AFTER_CLIENTS)  # a deep pass may come at once: the clients' objects are new
    assert gc_pace.deep_passes == 1
    client = [cycle()]
    gone = weakref.ref(client[0])
    gc.collect()
    gc_pace.tick(clients=0)  # frozen, as a connected client's objects are
    client.clear()  # the client leaves
    gc.collect()
    assert gone() is not None  # frozen: not freed by a full collection (its cycle keeps it)

    clock.now += DEEP_MIN_SECONDS
    gc_pace.tick(clients=2 * DEEP_AFTER_CLIENTS - 1)
    assert gone() is not None and gc_pace.deep_passes == 1
    gc_pace.tick(clients=2 * DEEP_AFTER_CLIENTS)
    assert gone() is None and gc_pace.deep_passes == 2


def test_the_deep_pass_waits_for_the_keyboard_to_rest_but_not_forever(pace: tuple[GcPace, Clock]) -> None:
    gc_pace, clock = pace
    clock.now += DEEP_EVERY_SECONDS - DEEP_MIN_SECONDS  # due by time alone (the start was no deep pass)
    gc_pace.key_pressed()
    gc_pace.tick(clients=0)
    assert gc_pace.deep_passes == 0
    clock.now += DEEP_REST_SECONDS
    gc_pace.tick(clients=0)
    assert gc_pace.deep_passes == 1  # the keys rested

    clock.now += DEEP_EVERY_SECONDS
    typed_until = clock.now + DEEP_WAIT_SECONDS
    while clock.now < typed_until:  # a key every half second, for a minute
        gc_pace.key_pressed()
        gc_pace.tick(clients=0)
        assert gc_pace.deep_passes == 1
        clock.now += 0.5
    gc_pace.key_pressed()
    gc_pace.tick(clients=0)
    assert gc_pace.deep_passes == 2  # waited its longest


def test_deep_passes_are_apart_whatever_the_churn(pace: tuple[GcPace, Clock]) -> None:
    gc_pace, clock = pace
    left = 0
    for _ in range(int(DEEP_MIN_SECONDS * 4)):  # 4 x the least gap, 1,000 clients coming every second
        clock.now += 1
        left += DEEP_AFTER_CLIENTS
        gc_pace.tick(clients=left)
    assert gc_pace.deep_passes == 4
