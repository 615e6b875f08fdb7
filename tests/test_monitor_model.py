"""The monitor's pure pieces: send-box escapes, hex dump, number formats, rows and stats."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_echo.server.config import ServerConfig
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DisconnectReason,
    RefusalReason,
    ServerTotals,
    DataReceived,
    DataSent,
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)
from tui_echo.monitor.models.feed import Direction, FeedIntake
from tui_echo.monitor.models.hexdump import hex_line, hex_line_count
from tui_echo.send_text import SendTextError, parse_send_text
from tui_echo.monitor.models.stats import HISTORY_SECONDS, StatsModel, sparkline_points
from tui_echo.monitor.models.table import GONE_ROW_SECONDS, ConnectionRow, RateWindow, TableModel
from tui_echo.server.clients import ClientState, ClientStatus
from tui_echo.text import format_count, format_duration


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("hello", b"hello"),
        (r"line\n", b"line\n"),
        (r"\r\n\t\0", b"\r\n\t\0"),
        (r"\x00\xff\x7F", b"\x00\xff\x7f"),
        (r"back\\slash \\n", b"back\\slash \\n"),
        ("é€", "é€".encode()),
        ("", b""),
    ],
)
def test_send_text_escapes(text: str, data: bytes) -> None:
    assert parse_send_text(text) == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (r"oops\q", r"unknown escape \q at column 5"),
        (r"\x4", r"\x at column 1 needs two hex digits"),
        (r"\xzz", r"\x at column 1 needs two hex digits"),
        ("end\\", r"a lone \ at the end"),
    ],
)
def test_send_text_refuses_escapes_that_mean_nothing(text: str, message: str) -> None:
    with pytest.raises(SendTextError, match=message.replace("\\", "\\\\")):
        parse_send_text(text)


@given(st.binary())
def test_any_bytes_can_be_typed(data: bytes) -> None:
    typed = "".join(f"\\x{b:02x}" for b in data)
    assert parse_send_text(typed) == data


def test_hex_lines_look_like_hexdump_c() -> None:
    data = b"Hello, world!\n\x00\xff\x1b[2J"
    assert hex_line(data, 0) == "0000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 ff  |Hello, world!...|"
    assert hex_line(data, 16) == "0010  1b 5b 32 4a" + " " * 39 + "|.[2J|"
    assert [hex_line_count(n) for n in (0, 1, 16, 17, 256)] == [1, 1, 1, 2, 16]


@given(st.binary(min_size=1, max_size=64))
def test_hex_lines_are_inert_and_aligned(data: bytes) -> None:
    lines = [hex_line(data, offset) for offset in range(0, len(data), 16)]
    assert all(line.isprintable() and line.isascii() for line in lines)
    assert len({line.index("|") for line in lines}) == 1


def test_number_formats_fit_a_cell() -> None:
    assert [format_count(n) for n in (0, 7, 2.5, 950, 9999, 12_345, 999_999, 4_560_000, 7e12)] == [
        "0",
        "7",
        "2.5",
        "950",
        "9999",
        "12.3k",
        "1000k",
        "4.6M",
        "7000G",
    ]
    assert [format_duration(s) for s in (0, 4.25, 59, 187, 7500, 3 * 86400 + 4 * 3600)] == [
        "0.0s",
        "4.2s",
        "59s",
        "3m07s",
        "2h05m",
        "3d04h",
    ]


def state(client_id: int, messages: int, status: ClientStatus = ClientStatus.CONNECTED) -> ClientState:
    return ClientState(
        client_id=client_id,
        peer=("127.0.0.1", 5000 + client_id),
        connected_at=100.0,
        last_activity=100.0 + messages,
        messages_in=messages,
        bytes_in=0,
        bytes_out=0,
        status=status,
    )


class Tracker(TableModel):
    """The model read as the table did before it kept its rows: every row, in client id order, at each refresh."""

    def rows(self, clients: list[ClientState], now: float, window: float | None) -> list[ConnectionRow]:
        self.refresh(clients, now, window)
        return sorted(self, key=lambda row: row.client_id)


def test_rows_carry_exact_counts_and_rates_between_refreshes() -> None:
    tracker = Tracker()
    first = tracker.rows([state(1, 10), state(2, 0)], now=110.0, window=None)
    assert [(r.client_id, r.messages, r.rate) for r in first] == [(1, 10, 0.0), (2, 0, 0.0)]
    second = tracker.rows([state(2, 6), state(1, 30, ClientStatus.CLOSING)], now=112.0, window=2.0)
    assert [(r.client_id, r.messages, r.rate, r.status) for r in second] == [
        (1, 30, 15.0, "closing"),  # all 30 of its messages came in this window, which it joined
        (2, 6, 3.0, "connected"),
    ]


def test_a_departed_client_shows_its_reason_for_a_while_then_leaves() -> None:
    tracker = Tracker()
    tracker.rows([state(1, 3)], now=110.0, window=None)
    tracker.client_left(
        ClientDisconnected(
            client_id=1,
            peer=("127.0.0.1", 5001),
            at=111.0,
            reason=DisconnectReason.KICKED,
            connected_at=100.0,
            messages_in=3,
            bytes_in=9,
            bytes_out=9,
        ),
        now=111.0,
    )
    (row,) = tracker.rows([], now=112.0, window=None)
    assert row.gone and row.status == "kicked" and row.messages == 3 and row.last_activity == 103.0
    assert tracker.rows([], now=111.0 + GONE_ROW_SECONDS, window=None) == []


def totals(messages: int, clients_now: int = 1) -> ServerTotals:
    return ServerTotals(
        clients_total=5,
        clients_now=clients_now,
        clients_peak=5,
        refused_total=0,
        messages_in=messages,
        bytes_in=messages * 10,
        bytes_out=messages * 10,
        events_skipped=3,
    )


def test_stats_rates_peak_history_and_skips() -> None:
    stats = StatsModel((("127.0.0.1", 9),), started_at=0.0)
    first = stats.stats(totals(1000, clients_now=2), now=1.0, feed_skipped=4, window=1.0)
    assert (first.uptime, first.clients_now, first.clients_peak) == (1.0, 2, 5)
    assert first.messages_per_second == 1000.0 and first.bytes_per_second == 20_000.0
    assert first.feed_skipped == 4  # the feed's count: from the running totals, so the server's skips are in it
    assert first.history == (1000.0,)
    later = stats.stats(totals(1500), now=2.0, feed_skipped=4, window=1.0)
    assert later.messages_per_second == 500.0 and later.history == (1000.0, 500.0)


def echo(client_id: int, n: int, at: float = 100.0) -> DataReceived:
    """The client's message number ``n`` (from 0): its totals count it and the ``n`` before it."""
    data = b"msg %d" % n
    return DataReceived(
        client_id=client_id,
        data=data,
        size=len(data),
        at=at,
        messages=1,
        messages_in=n + 1,
        bytes_in=(n + 1) * len(data),
        bytes_out=(n + 1) * len(data),
    )


def test_the_feed_takes_a_burst_of_ten_then_ten_a_second_and_notes_the_rest() -> None:
    intake = FeedIntake(lines_per_batch=1000)
    first = intake.entries([echo(1, n) for n in range(30)], now=100.0)
    assert [e.text for e in first[:-1]] == [f"msg {n}" for n in range(10)]
    assert first[-1].direction is Direction.SYSTEM and first[-1].text == "busy: 20 msgs not shown in the last second"
    half_second_later = intake.entries([echo(1, n) for n in range(30, 40)], now=100.5)
    assert [e.text for e in half_second_later] == [f"msg {n}" for n in range(30, 35)]  # 5 lines earned, no note yet
    assert [e.text for e in intake.entries([], now=101.0)] == ["busy: 5 msgs not shown in the last second"]
    assert intake.skipped == 25


def test_one_busy_client_does_not_silence_another() -> None:
    intake = FeedIntake(lines_per_batch=1000)
    events: list[ServerEvent] = [echo(1, n) for n in range(50)] + [echo(2, 0)]
    assert [e.client_id for e in intake.entries(events, now=5.0) if e.direction is Direction.ECHOED][-1] == 2


def test_a_batch_has_at_most_its_share_of_data_lines_but_every_lifecycle_line() -> None:
    intake = FeedIntake(lines_per_batch=4)
    events: list[ServerEvent] = [echo(client, 0) for client in range(1, 9)]
    events.append(ConnectionRefused(client_id=9, peer=("10.0.0.9", 9), at=5.0, reason=RefusalReason.SERVER_FULL))
    entries = intake.entries(events, now=5.0)
    assert len([e for e in entries if e.direction is Direction.ECHOED]) == 4
    assert "refused: server full: 10.0.0.9:9" in [e.text for e in entries]
    assert intake.skipped == 4


def test_feed_lines_for_the_life_of_a_client() -> None:
    peer = ("127.0.0.1", 4000)
    events: list[ServerEvent] = [
        ServerListening(addresses=(("127.0.0.1", 12354),), at=1.0, config=ServerConfig(port=0)),
        ClientConnected(client_id=1, peer=peer, at=2.0),
        DataReceived(
            client_id=1,
            data=b"\x1b[2J[b]hi\r\n" + b"z" * 300,
            size=len(b"\x1b[2J[b]hi\r\n" + b"z" * 300),
            at=3.0,
            messages=1,
            messages_in=1,
            bytes_in=311,
            bytes_out=311,
        ),
        DataSent(client_id=1, data=b"bye\n", size=len(b"bye\n"), at=4.0, bytes_out=315),
        ServerNotice(message="kick: no client #7", at=4.5),
        ClientDisconnected(
            client_id=1,
            peer=peer,
            at=65.0,
            reason=DisconnectReason.KICKED,
            connected_at=2.0,
            messages_in=1,
            bytes_in=311,
            bytes_out=315,
        ),
        ServerStopped(
            at=70.0,
            totals=ServerTotals(
                clients_total=1,
                refused_total=0,
                messages_in=1,
                bytes_in=311,
                bytes_out=315,
                events_skipped=0,
                clients_now=0,
                clients_peak=0,
            ),
        ),
    ]
    entries = FeedIntake(lines_per_batch=100).entries(events, now=70.0)
    cut = "\\x1b[2J[b]hi\\r\\n" + "z" * 189 + " … +111 B"  # 200 bytes shown, then the mark
    assert [(e.client_id, e.direction.value, e.text) for e in entries] == [
        (None, "•", "listening on 127.0.0.1:12354"),
        (1, "•", "connected from 127.0.0.1:4000"),
        (1, "⇄", cut),
        (1, "→", "bye\\n"),
        (None, "•", "kick: no client #7"),
        (1, "•", "disconnected: kicked · 1 msg, 311 B in, after 1m03s"),
        (None, "•", "server stopped"),
    ]
    assert entries[2].size == 311 and len(entries[2].data) == 256


def test_a_rate_spans_at_least_a_second_however_often_the_table_refreshes() -> None:
    tracker, windows = Tracker(), RateWindow(10.0)
    tracker.rows([state(1, 0)], now=10.0, window=windows.close(10.0))
    assert tracker.rows([state(1, 1)], now=10.02, window=windows.close(10.02))[0].rate == 0.0  # not 50 msg/s
    assert tracker.rows([state(1, 30)], now=11.0, window=windows.close(11.0))[0].rate == 30.0
    assert tracker.rows([state(1, 31)], now=11.4, window=windows.close(11.4))[0].rate == 30.0  # kept until 12.0


def test_a_lone_clients_msg_per_second_is_the_servers() -> None:
    # Both are read at each refresh, 0.4 s apart; they close their windows together.
    tracker, stats, windows = Tracker(), StatsModel((("127.0.0.1", 9),), started_at=0.0), RateWindow(0.0)
    for step in range(1, 20):
        now, messages = step * 0.4, int(step**1.5 * 300)  # an uneven load
        window = windows.close(now)
        (row,) = tracker.rows([state(1, messages)], now=now, window=window)
        shown = stats.stats(totals(messages), now=now, feed_skipped=0, window=window)
        assert row.rate == shown.messages_per_second


def test_a_cut_feed_line_ends_on_a_whole_character() -> None:
    data = b"a" + "ü".encode() * 150  # the 200-byte cut falls inside a two-byte character
    entries = FeedIntake(lines_per_batch=10).entries(
        [
            DataReceived(
                client_id=1, data=data, size=len(data), at=1.0, messages=1, messages_in=1, bytes_in=301, bytes_out=301
            )
        ],
        now=1.0,
    )
    assert entries[0].text == "a" + "ü" * 99 + " … +102 B"  # 199 bytes shown, no fake \xc3


def goodbye(messages_in: int, bytes_in: int) -> ClientDisconnected:
    """Client 1 closes at 100.5, 1.5 s after it connected, with these totals (all of it echoed)."""
    return ClientDisconnected(
        client_id=1,
        peer=("127.0.0.1", 5001),
        at=100.5,
        reason=DisconnectReason.CLOSED_BY_PEER,
        connected_at=99.0,
        messages_in=messages_in,
        bytes_in=bytes_in,
        bytes_out=bytes_in,
    )


def test_a_busy_note_never_follows_its_clients_disconnect_line() -> None:
    intake = FeedIntake(lines_per_batch=1000)
    intake.entries([echo(1, n) for n in range(10)], now=100.0)  # a burst of 10 shown; the next notes at 101.0
    intake.entries([echo(1, n) for n in range(10, 20)], now=100.2)  # 2 more shown, 8 waiting for a note
    later = intake.entries([goodbye(messages_in=20, bytes_in=100)], now=100.5) + intake.entries([], now=101.5)
    assert [e.text for e in later] == [
        "busy: 8 msgs not shown in the last second",
        "disconnected: closed by peer · 20 msgs, 100 B in, after 1.5s",
    ]


def test_the_sparkline_is_on_a_log_scale_so_one_spike_leaves_the_rest_visible() -> None:
    points = sparkline_points([10.0] * 30 + [1052.0] + [10.0] * 9)
    assert len(points) == HISTORY_SECONDS and points[:20] == [0.0] * 20  # a young server: zeros first
    spike, usual = max(points), points[-1]
    assert usual / spike > 0.3  # on a linear scale, 10 beside 1052 would be under 1 % of the height
    assert sparkline_points([float(n) for n in range(70)])[0] == math.log10(11.0)  # the last minute only


def test_once_its_server_is_gone_the_stats_say_so_and_the_uptime_stops() -> None:
    model = StatsModel((("127.0.0.1", 1),), started_at=100.0)
    totals = ServerTotals(
        clients_total=1,
        clients_now=1,
        clients_peak=1,
        refused_total=0,
        messages_in=5,
        bytes_in=5,
        bytes_out=5,
        events_skipped=0,
    )
    assert (model.stats(totals, 110.0, 0, None).uptime, model.stats(totals, 110.0, 0, None).gone) == (10.0, None)
    model.server_gone("went away", 112.0)
    later = model.stats(totals, 130.0, 0, None)
    assert (later.uptime, later.gone) == (12.0, "went away")


def test_the_feed_counts_what_it_left_out_from_the_running_totals_so_a_sampled_server_is_counted_exactly() -> None:
    # The server sends a busy client's data events as a sample: messages 1, 50 and 100 of 100, then the
    # goodbye at 120. The three lines are shown; the 97 messages between them and the 20 after are noted.
    intake = FeedIntake(lines_per_batch=1000)
    shown = intake.entries([echo(1, 0), echo(1, 49), echo(1, 99)], now=100.0)
    assert [e.text for e in shown] == ["msg 0", "msg 49", "msg 99", "busy: 97 msgs not shown in the last second"]
    assert [e.text for e in intake.entries([goodbye(messages_in=120, bytes_in=600)], now=100.5)][
        0
    ] == "busy: 20 msgs not shown in the last second"
    assert intake.skipped == 117
