"""The table's rows at 10,000 clients: a refresh works in proportion to what changed, the screen to what is visible.

These tests count work (rows written, predicate calls, rows formatted), never time: speed is measured in
``benchmarks/bench_monitor.py``.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from textual.app import App, ComposeResult

from tui_echo.monitor.models.table import ConnectionRow, RateWindow, TableModel, peer_sort_key
from tui_echo.monitor.models.table_view import SORT_KEYS, TableView, sort_value
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.server.clients import ClientState, ClientStatus
from tui_echo.server.events import ClientDisconnected, DisconnectReason

CLIENTS = 10_000
T0 = 1000.0


def clients(count: int = CLIENTS) -> dict[int, ClientState]:
    return {
        n: ClientState(client_id=n, peer=(f"10.0.{n // 250}.{n % 250}", 40000 + n), connected_at=T0, last_activity=T0)
        for n in range(1, count + 1)
    }


def talk(state: ClientState, messages: int, at: float) -> None:
    state.messages_in += messages
    state.bytes_in += 64 * messages
    state.bytes_out += 64 * messages
    state.last_activity = at


def left(state: ClientState, at: float) -> ClientDisconnected:
    return ClientDisconnected(
        client_id=state.client_id,
        peer=state.peer,
        at=at,
        reason=DisconnectReason.KICKED,
        connected_at=state.connected_at,
        messages_in=state.messages_in,
        bytes_in=state.bytes_in,
        bytes_out=state.bytes_out,
    )


class CountingFilter:
    """A filter that counts its calls: the work a refresh does on the rows."""

    def __init__(self, keep: int) -> None:
        self.keep = keep  # rows whose id ends with this digit
        self.calls = 0

    def __call__(self, row: ConnectionRow) -> bool:
        self.calls += 1
        return row.client_id % 10 == self.keep or row.status == "kicked"


def test_a_refresh_of_10000_rows_writes_only_the_rows_whose_counts_moved() -> None:
    states, model = clients(), TableModel()
    first = model.refresh(states.values(), T0 + 0.4, None)
    assert (len(first.added), first.changed, first.removed) == (CLIENTS, [], [])
    assert not model.refresh(states.values(), T0 + 0.8, None)  # nothing moved: nothing written

    talk(states[17], 3, T0 + 0.9)
    states[4242].bytes_out += 5  # the operator sent it something
    states[9999].status = ClientStatus.CLOSING
    changes = model.refresh(states.values(), T0 + 1.2, window=1.2)
    assert sorted(row.client_id for row in changes.changed) == [17, 4242, 9999] and changes.work == 3
    assert (model.row(17).messages, model.row(17).rate) == (3, 3 / 1.2)  # type: ignore[union-attr]
    assert model.row(9999).status == "closing"  # type: ignore[union-attr]

    # The next window: #17 said nothing, so its rate falls to 0 (a change); the idle 9,999 cost nothing.
    assert [row.client_id for row in model.refresh(states.values(), T0 + 2.4, window=1.2).changed] == [17]
    assert not model.refresh(states.values(), T0 + 3.6, window=1.2)


def test_a_departed_row_is_the_same_row_until_it_leaves() -> None:
    states, model = clients(3), TableModel()
    model.refresh(states.values(), T0, None)
    row = model.row(2)
    talk(states[2], 1, T0 + 0.1)
    model.client_left(left(states.pop(2), T0 + 0.2), T0 + 0.2)
    changes = model.refresh(states.values(), T0 + 0.4, None)
    assert changes.changed == [row] and row is not None and row.gone and row.status == "kicked" and row.messages == 1
    assert model.refresh(states.values(), T0 + 3.3, None).removed == [row] and model.row(2) is None


def test_the_view_follows_a_refresh_with_work_in_proportion_to_it() -> None:
    states, model = clients(), TableModel()
    view = TableView(model)
    view.update(model.refresh(states.values(), T0, None), T0)
    assert [row.client_id for row in view[:3]] == [1, 2, 3] and len(view) == CLIENTS

    keep = CountingFilter(7)
    view.set_filter(keep, T0)  # choosing a filter reads every row once
    assert keep.calls == CLIENTS and len(view) == CLIENTS // 10 and view.index_of(17) == 1

    keep.calls = 0
    talk(states[17], 1, T0 + 0.1)
    talk(states[18], 1, T0 + 0.1)
    view.update(model.refresh(states.values(), T0 + 0.4, None), T0 + 0.4)
    assert keep.calls == 2  # the two rows that changed, not the 10,000

    # A filter is a watch: a new client that matches shows up, one that does not stays out.
    keep.calls = 0
    states[10_007] = ClientState(client_id=10_007, peer=("10.9.9.9", 1), connected_at=T0, last_activity=T0)
    states[10_008] = ClientState(client_id=10_008, peer=("10.9.9.9", 2), connected_at=T0, last_activity=T0)
    view.update(model.refresh(states.values(), T0 + 0.8, None), T0 + 0.8)
    assert keep.calls == 2 and view[-1].client_id == 10_007 and view.index_of(10_008) is None

    # A row that comes to match joins, in its place in the order.
    model.client_left(left(states.pop(18), T0 + 0.9), T0 + 0.9)
    view.update(model.refresh(states.values(), T0 + 1.2, None), T0 + 1.2)
    assert [row.client_id for row in view[1:3]] == [17, 18] and view[2].gone

    view.set_filter(None, T0 + 1.2)
    assert len(view) == CLIENTS + 2


def test_sorting_moves_the_rows_whose_key_changed_and_keeps_ties_in_place() -> None:
    states, model = clients(), TableModel()
    view = TableView(model)
    view.update(model.refresh(states.values(), T0, None), T0)
    view.sort_by("msgs", reverse=True, now=T0)
    assert [row.client_id for row in view[:3]] == [1, 2, 3]  # all at 0: client id order
    talk(states[5000], 9, T0 + 0.1)
    talk(states[6000], 4, T0 + 0.1)
    view.update(model.refresh(states.values(), T0 + 0.4, None), T0 + 0.4)
    assert [row.client_id for row in view[:4]] == [5000, 6000, 1, 2]
    assert view.index_of(6000) == 1 and view.index_of(2) == 3

    view.sort_by("peer", reverse=False, now=T0 + 0.4)
    peers = [row.peer for row in view]
    assert peers == sorted(peers, key=peer_sort_key)
    assert view.index_of(9) < view.index_of(10) < view.index_of(250)  # type: ignore[operator]  # as text, .10 < .9


@pytest.mark.parametrize("key", SORT_KEYS)
def test_every_column_sorts(key: str) -> None:
    random.seed(key)
    states, model = clients(200), TableModel()
    for state in states.values():
        talk(state, random.randrange(5), T0 + random.random())
    view = TableView(model)
    view.update(model.refresh(states.values(), T0 + 2, None), T0 + 2)
    view.sort_by(key, reverse=True, now=T0 + 2)
    values = [sort_value(key, T0 + 2)(row) for row in view]
    assert values == sorted(values, reverse=True)


def test_peers_sort_as_addresses_with_numeric_ports() -> None:
    peers = [
        ("::1", 80),
        ("10.0.0.10", 80),
        ("10.0.0.9", 1000),
        ("::ffff:10.0.0.9", 99),  # an IPv4 client of a dual-stack listener sorts with IPv4
        ("10.0.0.9", 999),
        ("fe80::1%eth0", 1),
        ("2.0.0.1", 5),
        ("localhost", 1),
    ]
    assert sorted(peers, key=peer_sort_key) == [
        ("2.0.0.1", 5),
        ("::ffff:10.0.0.9", 99),
        ("10.0.0.9", 999),
        ("10.0.0.9", 1000),
        ("10.0.0.10", 80),
        ("::1", 80),
        ("fe80::1%eth0", 1),
        ("localhost", 1),
    ]


def test_a_frozen_view_keeps_its_rows_and_order_while_their_numbers_move() -> None:
    states, model = clients(5), TableModel()
    view = TableView(model)
    view.update(model.refresh(states.values(), T0, None), T0)
    view.sort_by("msgs", reverse=True, now=T0)
    view.freeze(True, T0)
    talk(states[4], 7, T0 + 0.1)
    model.client_left(left(states.pop(2), T0 + 0.1), T0 + 0.1)
    states[6] = ClientState(client_id=6, peer=("10.0.0.6", 6), connected_at=T0, last_activity=T0)
    for now in (T0 + 0.4, T0 + 4.0):  # past the departed row's time in the table, too
        view.update(model.refresh(states.values(), now, None), now)
        assert [(row.client_id, row.messages, row.gone) for row in view] == [
            (1, 0, False),
            (2, 0, True),
            (3, 0, False),
            (4, 7, False),
            (5, 0, False),
        ]
    view.freeze(False, T0 + 4.0)
    assert [row.client_id for row in view] == [4, 1, 3, 5, 6]


def test_the_rate_window_is_shared_with_the_stats() -> None:
    windows = RateWindow(T0)
    assert windows.close(T0 + 0.4) is None and windows.close(T0 + 1.0) == 1.0


class CountingTable(ConnectionsTable):
    formatted = 0

    def row_text(self, row: ConnectionRow) -> str:
        CountingTable.formatted += 1
        return super().row_text(row)


class TableApp(App[None]):
    def __init__(self, view: TableView) -> None:
        super().__init__()
        self.table = CountingTable(view)

    def compose(self) -> ComposeResult:
        yield self.table


@pytest.mark.tui
def test_a_table_of_10000_rows_formats_only_the_visible_ones_and_its_cursor_follows_its_client() -> None:
    states, model = clients(), TableModel()
    view = TableView(model)
    app = TableApp(view)

    async def main() -> None:
        async with app.run_test(size=(120, 20)) as pilot:
            table = app.table
            table.update_rows(model.refresh(states.values(), T0, None), T0)
            await pilot.pause()
            visible = table.size.height - 1  # the header takes a line
            assert 0 < CountingTable.formatted <= visible * 2  # the first paint, perhaps twice; not 10,000

            await pilot.press("end")
            assert table.cursor_client == CLIENTS
            CountingTable.formatted = 0
            talk(states[CLIENTS], 1, T0 + 0.1)
            table.update_rows(model.refresh(states.values(), T0 + 0.4, None), T0 + 0.4)
            await pilot.pause()
            assert 0 < CountingTable.formatted <= visible

            table.sort_by("msgs")  # the cursor's client goes to the top, and the cursor with it
            await pilot.pause()
            assert table.rows[0].client_id == CLIENTS and table.cursor_client == CLIENTS and table.scroll_y == 0
            await pilot.press("down")
            assert table.cursor_client == 1

    asyncio.run(main())


def test_a_row_that_comes_and_goes_between_two_refreshes_is_only_gone() -> None:
    states, model = clients(1), TableModel()
    view = TableView(model)
    view.update(model.refresh(states.values(), T0, None), T0)
    extra = ClientState(client_id=2, peer=("10.0.0.2", 2), connected_at=T0, last_activity=T0)
    model.client_left(left(extra, T0 + 0.1), T0 + 0.1)  # never seen alive
    changes = model.refresh(states.values(), T0 + 5, None)  # and a refresh that came late
    assert (changes.added, changes.changed, [row.client_id for row in changes.removed]) == ([], [], [2])
    view.update(changes, T0 + 5)
    assert [row.client_id for row in view] == [1]
