"""The monitor's pure pieces: send-box escapes, hex dump, number formats, rows and stats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_echo.events import (
    ClientConnected,
    ClientDisconnected,
    DataEchoed,
    DataSent,
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)
from tui_echo.feedlines import Direction, FeedIntake
from tui_echo.hexdump import hex_line, hex_line_count
from tui_echo.sendtext import SendTextError, parse_send_text
from tui_echo.state import ClientState, ClientStatus, ServerTotals
from tui_echo.tracker import GONE_ROW_SECONDS, ConnectionTracker, StatsTracker
from tui_echo.units import format_count, format_duration


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
    return ClientState(client_id, ("127.0.0.1", 5000 + client_id), 100.0, 100.0 + messages, messages, 0, 0, status)


def test_rows_carry_exact_counts_and_rates_between_refreshes() -> None:
    tracker = ConnectionTracker()
    first = tracker.rows([state(1, 10), state(2, 0)], now=110.0)
    assert [(r.client_id, r.messages, r.rate) for r in first] == [(1, 10, 0.0), (2, 0, 0.0)]
    second = tracker.rows([state(2, 6), state(1, 30, ClientStatus.CLOSING)], now=112.0)
    assert [(r.client_id, r.messages, r.rate, r.status) for r in second] == [
        (1, 30, 10.0, "closing"),
        (2, 6, 3.0, "connected"),
    ]


def test_a_departed_client_shows_its_reason_for_a_while_then_leaves() -> None:
    tracker = ConnectionTracker()
    tracker.rows([state(1, 3)], now=110.0)
    tracker.client_left(ClientDisconnected(1, ("127.0.0.1", 5001), 111.0, "kicked", 100.0, 3, 9, 9), now=111.0)
    (row,) = tracker.rows([], now=112.0)
    assert row.gone and row.status == "kicked" and row.messages == 3 and row.last_activity == 103.0
    assert tracker.rows([], now=111.0 + GONE_ROW_SECONDS) == []


def test_refused_connections_never_get_a_row() -> None:
    tracker = ConnectionTracker()
    tracker.client_left(ClientDisconnected(7, ("127.0.0.1", 1), 5.0, "refused: server full", 5.0, 0, 0, 0), now=5.0)
    assert tracker.rows([], now=5.5) == []


def totals(messages: int, clients_now: int = 1) -> ServerTotals:
    return ServerTotals(clients_now, clients_now, 0, messages, messages * 10, messages * 10, 3)


def test_stats_rates_peak_history_and_skips() -> None:
    stats = StatsTracker((("127.0.0.1", 9),), started_at=0.0)
    stats.saw_clients(5)
    first = stats.stats(totals(1000, clients_now=2), now=1.0, feed_skipped=4)
    assert (first.uptime, first.clients_now, first.clients_peak) == (1.0, 2, 5)
    assert first.messages_per_second == 1000.0 and first.bytes_per_second == 20_000.0
    assert first.feed_skipped == 7  # the server's skipped events and the monitor's own
    assert first.history == (1000.0,)
    later = stats.stats(totals(1500), now=2.0, feed_skipped=4)
    assert later.messages_per_second == 500.0 and later.history == (1000.0, 500.0)


def echo(client_id: int, n: int, at: float = 100.0) -> DataEchoed:
    data = b"msg %d" % n
    return DataEchoed(client_id, data, at, 1, n, n * len(data), n * len(data), 0)


def test_the_feed_takes_a_burst_of_ten_then_ten_a_second_and_notes_the_rest() -> None:
    intake = FeedIntake(lines_per_batch=1000)
    first = intake.entries([echo(1, n) for n in range(30)], now=100.0)
    assert [e.text for e in first[:-1]] == [f"msg {n}" for n in range(10)]
    assert first[-1].direction is Direction.SYSTEM and first[-1].text == "busy: 20 lines not shown in the last second"
    half_second_later = intake.entries([echo(1, n) for n in range(30, 40)], now=100.5)
    assert [e.text for e in half_second_later] == [f"msg {n}" for n in range(30, 35)]  # 5 lines earned, no note yet
    assert [e.text for e in intake.entries([], now=101.0)] == ["busy: 5 lines not shown in the last second"]
    assert intake.skipped == 25


def test_one_busy_client_does_not_silence_another() -> None:
    intake = FeedIntake(lines_per_batch=1000)
    events: list[ServerEvent] = [echo(1, n) for n in range(50)] + [echo(2, 0)]
    assert [e.client_id for e in intake.entries(events, now=5.0) if e.direction is Direction.ECHOED][-1] == 2


def test_a_batch_has_at_most_its_share_of_data_lines_but_every_lifecycle_line() -> None:
    intake = FeedIntake(lines_per_batch=4)
    events: list[ServerEvent] = [echo(client, 0) for client in range(1, 9)]
    events.append(ClientDisconnected(9, ("10.0.0.9", 9), 5.0, "refused: server full", 5.0, 0, 0, 0))
    entries = intake.entries(events, now=5.0)
    assert len([e for e in entries if e.direction is Direction.ECHOED]) == 4
    assert "refused: server full: 10.0.0.9:9" in [e.text for e in entries]
    assert intake.skipped == 4


def test_feed_lines_for_the_life_of_a_client() -> None:
    peer = ("127.0.0.1", 4000)
    events: list[ServerEvent] = [
        ServerListening((("127.0.0.1", 12354),), 1.0),
        ClientConnected(1, peer, 2.0),
        DataEchoed(1, b"\x1b[2J[b]hi\r\n" + b"z" * 300, 3.0, 1, 1, 311, 311, 0),
        DataSent(1, b"bye\n", 4.0, 315),
        ServerNotice("kick: no client #7", 4.5),
        ClientDisconnected(1, peer, 65.0, "kicked", 2.0, 1, 311, 315),
        ServerStopped(70.0, 1, 0, 1, 311, 315, 0),
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
    tracker = ConnectionTracker()
    tracker.rows([state(1, 0)], now=10.0)
    assert tracker.rows([state(1, 1)], now=10.02)[0].rate == 0.0  # one message in 20 ms is not 50 msg/s
    assert tracker.rows([state(1, 30)], now=11.0)[0].rate == 30.0
    assert tracker.rows([state(1, 31)], now=11.4)[0].rate == 30.0  # kept until the next full second
