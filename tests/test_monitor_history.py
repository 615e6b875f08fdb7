"""Each client's own history (what its screen opens with), bounded per client and in all."""

from __future__ import annotations

import itertools

from tui_echo.monitor.models.feed import Direction, FeedEntry
from tui_echo.monitor.models.history import DEPARTED_KEPT, LINES_IN_ALL, LINES_PER_CLIENT, ClientHistories

clock = itertools.count(1)


def line(client_id: int, text: str) -> FeedEntry:
    return FeedEntry.of_bytes(float(next(clock)), client_id, Direction.ECHOED, text.encode(), len(text))


def texts(entries: list[FeedEntry]) -> list[str]:
    return [entry.text for entry in entries]


def test_a_client_keeps_its_last_lines_whatever_the_others_send() -> None:
    histories = ClientHistories()
    histories.add([line(1, f"quiet {n}") for n in range(3)])
    for n in range(50_000):  # a flood from another client
        histories.add([line(2, f"loud {n}")])
    assert texts(histories.lines(1, since=0)) == ["quiet 0", "quiet 1", "quiet 2"]
    assert texts(histories.lines(2, since=0)) == [f"loud {n}" for n in range(50_000 - LINES_PER_CLIENT, 50_000)]
    assert histories.total == 3 + LINES_PER_CLIENT


def test_10000_clients_never_keep_more_than_the_total_and_each_keeps_its_newest() -> None:
    histories = ClientHistories()
    clients = 10_000
    for n in range(6):  # six lines each: 60,000 in all, three times the bound
        histories.add([line(client_id, f"#{client_id} line {n}") for client_id in range(1, clients + 1)])
        assert histories.total <= LINES_IN_ALL
    assert histories.total == LINES_IN_ALL
    kept = [texts(histories.lines(client_id, since=0)) for client_id in range(1, clients + 1)]
    share = LINES_IN_ALL // clients  # those that keep the most give theirs up first: an even share each
    assert all(lines == [f"#{n} line {k}" for k in range(6 - share, 6)] for n, lines in enumerate(kept, 1))


def test_a_departed_clients_lines_stay_while_it_is_one_of_the_last_to_leave() -> None:
    histories = ClientHistories()
    for client_id in range(1, DEPARTED_KEPT + 2):
        histories.add([line(client_id, "bye")])
        histories.left(client_id)
    assert histories.lines(1, since=0) == []  # the first of DEPARTED_KEPT + 1 to leave
    assert texts(histories.lines(2, since=0)) == ["bye"]
    assert histories.total == DEPARTED_KEPT


def test_a_broadcast_is_kept_once_and_shows_for_the_clients_connected_when_it_went() -> None:
    histories = ClientHistories()
    early = line(1, "early")
    histories.add([early])
    broadcast = FeedEntry.of_bytes(float(next(clock)), None, Direction.SENT, b"to all", 6, "all (1 client)")
    histories.add([broadcast])
    late = line(2, "late")
    histories.add([late])
    assert histories.lines(1, since=early.at) == [early, broadcast]
    assert histories.lines(2, since=late.at) == [late]
    assert histories.total == 2


def test_a_screen_opens_with_the_feeds_lines_of_the_client_or_the_kept_ones_if_more() -> None:
    histories = ClientHistories()
    mine = [line(1, f"mine {n}") for n in range(LINES_PER_CLIENT + 20)]
    histories.add(mine)
    assert histories.of(1, 0, feed=mine) == mine  # the feed keeps more than the history: all of them
    assert histories.of(1, 0, feed=mine[-5:]) == mine[-LINES_PER_CLIENT:]  # flooded out of the feed
