"""The headless log: readable lines, exact counts, and folding of busy clients."""

from __future__ import annotations

import json

from tui_echo.server.config import ServerConfig
from tui_echo.headless.log import EventLog, HumanFormat, JsonFormat
from tui_echo.text import format_size
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DisconnectReason,
    RefusalReason,
    ServerTotals,
    DataReceived,
    DataSent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)

T0 = 1_800_000_000.0
PEER = ("127.0.0.1", 50000)


def data_events(client_id: int, count: int, start: float = T0, size: int = 4, every: int = 1):
    """``count`` echoes; only every ``every``-th is returned, as if the server skipped the rest."""
    events = []
    for n in range(1, count + 1):
        if n % every == 0:
            events.append(
                DataReceived(
                    client_id=client_id,
                    data=b"x" * size,
                    size=size,
                    at=start + n * 0.001,
                    messages=1,
                    messages_in=n,
                    bytes_in=n * size,
                    bytes_out=n * size,
                )
            )
    return events


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 1023, 1024, 1536, 5 * 1024**2, 3 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]


def test_human_lines_for_a_quiet_client() -> None:
    log = EventLog(HumanFormat())
    lines = log.handle(ServerListening(addresses=(("127.0.0.1", 4321),), at=T0, config=ServerConfig(port=0)))
    assert "listening on 127.0.0.1:4321 (mode echo, framing chunk" in lines[0]
    [connected] = log.handle(ClientConnected(client_id=1, peer=PEER, at=T0))
    assert connected.endswith("#1 127.0.0.1:50000  connected (1 now)")
    [line] = log.handle(
        DataReceived(
            client_id=1,
            data=b"hi\x1b[2J\n",
            size=len(b"hi\x1b[2J\n"),
            at=T0,
            messages=1,
            messages_in=1,
            bytes_in=7,
            bytes_out=7,
        )
    )
    assert line.endswith("#1 127.0.0.1:50000  msg 1  echoed 7 B: hi\\x1b[2J\\n")
    [sent] = log.handle(DataSent(client_id=1, data=b"op\r\n", size=len(b"op\r\n"), at=T0, bytes_out=11))
    assert sent.endswith("operator sent 4 B: op\\r\\n")
    [gone] = log.handle(
        ClientDisconnected(
            client_id=1,
            peer=PEER,
            at=T0 + 2,
            reason=DisconnectReason.KICKED,
            connected_at=T0,
            messages_in=1,
            bytes_in=7,
            bytes_out=11,
        )
    )
    assert gone.endswith("disconnected: kicked (1 msg, 7 B in, 11 B out, 2.0 s; 0 now)")
    [refused] = log.handle(ConnectionRefused(client_id=2, peer=PEER, at=T0 + 3, reason=RefusalReason.SERVER_FULL))
    assert refused.endswith("#2 127.0.0.1:50000  refused: server full (0 connected)")
    [notice] = log.handle(ServerNotice(message="kick: no client #9", at=T0))
    assert notice.endswith("notice: kick: no client #9")
    [stopped] = log.handle(
        ServerStopped(
            at=T0,
            totals=ServerTotals(
                clients_total=2,
                refused_total=1,
                messages_in=1,
                bytes_in=7,
                bytes_out=11,
                events_skipped=0,
                clients_now=0,
                clients_peak=0,
            ),
        )
    )
    assert stopped.endswith("server stopped: 2 clients, 1 refused, 1 msg, 7 B in, 11 B out")


def stopped_event(at: float = T0) -> ServerStopped:
    """A server that served one client, one 8-byte message."""
    totals = ServerTotals(
        clients_total=1,
        refused_total=0,
        messages_in=1,
        bytes_in=8,
        bytes_out=8,
        events_skipped=0,
        clients_now=0,
        clients_peak=0,
    )
    return ServerStopped(at=at, totals=totals)


def test_the_stopped_line_counts_the_log_lines_lost_so_far() -> None:
    lost = [0]
    human = EventLog(HumanFormat(), lines_lost=lambda: lost[0])
    assert human.handle(stopped_event())[0].endswith("8 B out")
    lost[0] = 3
    assert human.handle(stopped_event())[0].endswith("8 B out, 3 log lines lost")
    json_log = EventLog(JsonFormat(), lines_lost=lambda: lost[0])
    assert json.loads(json_log.handle(stopped_event())[0])["log_lines_lost"] == 3


def test_a_busy_client_is_folded_into_one_exact_summary_a_second() -> None:
    log = EventLog(HumanFormat(), per_client=5, overall=20)
    log.window_start = T0
    log.handle(ClientConnected(client_id=1, peer=PEER, at=T0))
    lines = [line for e in data_events(1, 1000) for line in log.handle(e)]
    assert len(lines) == 5  # the first five, then quiet
    [summary] = log.tick(T0 + 1.0)
    assert "busy, lines coalesced: +995 msgs, +3.9 KiB in 1.0 s" in summary
    assert "total 1000 msgs, 3.9 KiB in" in summary
    # Still busy in the next second: no single lines at all, one summary.
    lines = [
        line
        for e in data_events(1, 1000, start=T0 + 1)
        for line in log.handle(
            DataReceived(
                client_id=1,
                data=e.data,
                size=len(e.data),
                at=e.at,
                messages=1,
                messages_in=e.messages_in + 1000,
                bytes_in=e.bytes_in + 4000,
                bytes_out=e.bytes_out + 4000,
            )
        )
    ]
    assert lines == []
    [summary] = log.tick(T0 + 2.0)
    assert "+1000 msgs" in summary and "total 2000 msgs" in summary
    assert log.tick(T0 + 3.0) == []  # calm again: nothing to say
    [single] = log.handle(
        DataReceived(
            client_id=1,
            data=b"calm",
            size=len(b"calm"),
            at=T0 + 3.1,
            messages=1,
            messages_in=2001,
            bytes_in=8004,
            bytes_out=8004,
        )
    )
    assert "msg 2001" in single


def test_the_whole_server_has_a_line_budget_too() -> None:
    log = EventLog(HumanFormat(), per_client=5, overall=20)
    log.window_start = T0
    for client_id in range(1, 11):
        log.handle(ClientConnected(client_id=client_id, peer=PEER, at=T0))
    lines = []
    for n in range(1, 6):
        for client_id in range(1, 11):
            lines += log.handle(
                DataReceived(
                    client_id=client_id,
                    data=b"m",
                    size=len(b"m"),
                    at=T0 + n / 100,
                    messages=1,
                    messages_in=n,
                    bytes_in=n,
                    bytes_out=n,
                )
            )
    assert len(lines) == 20
    summaries = log.tick(T0 + 1)
    assert len(summaries) == 10  # clients with data not shown get a summary each
    assert sum(int(line.split("+")[1].split(" ")[0]) for line in summaries) == 50 - 20


def test_skipped_events_are_reported_with_exact_counts() -> None:
    log = EventLog(HumanFormat())
    log.handle(ClientConnected(client_id=1, peer=PEER, at=T0))
    # The server delivered only every 10th event: the log still counts all of them.
    lines = log.handle(data_events(1, 10, every=10)[0])
    assert len(lines) == 2
    assert "+9 msgs, +36 B in" in lines[0]
    assert "msg 10" in lines[1]


def test_disconnect_reports_what_was_not_shown_first() -> None:
    log = EventLog(HumanFormat(), per_client=1)
    log.handle(ClientConnected(client_id=1, peer=PEER, at=T0))
    for event in data_events(1, 50):
        log.handle(event)
    summary, gone = log.handle(
        ClientDisconnected(
            client_id=1,
            peer=PEER,
            at=T0 + 1,
            reason=DisconnectReason.CLOSED_BY_PEER,
            connected_at=T0,
            messages_in=50,
            bytes_in=200,
            bytes_out=200,
        )
    )
    assert "+49 msgs" in summary and "total 50 msgs" in summary
    assert "disconnected: closed by peer (50 msgs" in gone


def test_json_lines_are_objects_with_escaped_data() -> None:
    log = EventLog(JsonFormat())
    records = [
        json.loads(line)
        for event in (
            ServerListening(addresses=(("127.0.0.1", 4321),), at=T0, config=ServerConfig(port=0)),
            ClientConnected(client_id=1, peer=PEER, at=T0),
            DataReceived(
                client_id=1,
                data=b"\x1b[31m\xffhi\n",
                size=len(b"\x1b[31m\xffhi\n"),
                at=T0,
                messages=1,
                messages_in=1,
                bytes_in=8,
                bytes_out=8,
            ),
            ClientDisconnected(
                client_id=1,
                peer=PEER,
                at=T0 + 1,
                reason=DisconnectReason.IDLE_TIMEOUT,
                connected_at=T0,
                messages_in=1,
                bytes_in=8,
                bytes_out=8,
            ),
            stopped_event(at=T0 + 2),
        )
        for line in log.handle(event)
    ]
    listening, connected, data, gone, stopped = records
    assert (listening["event"], listening["port"], listening["host"]) == ("listening", 4321, "127.0.0.1")
    assert (connected["event"], connected["client"], connected["peer"]) == ("connected", 1, "127.0.0.1:50000")
    assert data["event"] == "data" and data["data"] == "\\x1b[31m\\xffhi\\n" and data["len"] == 9
    assert data["truncated"] is False and data["time"].endswith("Z")
    assert (gone["event"], gone["reason"], gone["messages_in"]) == ("disconnected", "idle timeout", 1)
    assert (stopped["event"], stopped["clients_total"], stopped["bytes_out"]) == ("stopped", 1, 8)
    assert stopped["log_lines_lost"] == 0


def test_json_summary_is_one_object_per_busy_client() -> None:
    log = EventLog(JsonFormat(), per_client=2)
    log.window_start = T0
    log.handle(ClientConnected(client_id=1, peer=PEER, at=T0))
    for event in data_events(1, 100):
        log.handle(event)
    [line] = log.tick(T0 + 1)
    record = json.loads(line)
    assert (record["event"], record["messages"], record["messages_in"]) == ("data_summary", 98, 100)
