"""Saving the feed: text lines and JSON Lines records, named files that never overwrite, errors that leave no file."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_echo.wire.events import encode_event
from tui_echo.monitor.models.feed import HEX_KEEP_BYTES, FeedEntry, FeedIntake
from tui_echo.monitor.models.feed_export import ExportFormat, export_lines, record, text_line, write_export
from tui_echo.server.events import ClientConnected, DataAnswered, DataBroadcast, DataReceived, DataSent, ServerEvent
from tui_echo.text import escape_bytes, local_time

AT = 1_764_050_400.0
HOSTILE = b"\x1b[2J\x1b]0;owned\x07\r[bold red]x[/] \xff\xe2\x80\xae\n"


def received(data: bytes, size: int | None = None) -> DataReceived:
    size = len(data) if size is None else size
    return DataReceived(
        client_id=3, data=data, size=size, at=AT, messages=1, messages_in=1, bytes_in=size, bytes_out=size
    )


def entries_of(*events: ServerEvent) -> list[FeedEntry]:
    return FeedIntake(80).entries(events, AT)


def test_a_data_record_has_the_logs_names_and_escaping_where_they_overlap() -> None:
    for event in (received(HOSTILE), DataSent(client_id=3, data=HOSTILE, size=len(HOSTILE), at=AT, bytes_out=9)):
        (entry,) = entries_of(event)
        saved, logged = record(entry), encode_event(event, peer="127.0.0.1:5000")
        shared = saved.keys() & logged.keys()
        assert shared == {"event", "time", "client", "len", "data", "truncated"}
        assert {key: saved[key] for key in shared} == {key: logged[key] for key in shared}
        assert saved["data"] == r"\x1b[2J\x1b]0;owned\x07\r[bold red]x[/] \xff\u202e\n"


def test_a_line_a_rule_answered_is_saved_with_its_reply_and_a_broadcast_once_for_all() -> None:
    answered = DataAnswered(
        **vars_of(received(b"\x02AB\x03")),
        answered=1,
        rules=(2,),
        reply=b"\x06AB\x03",
        reply_size=4,
    )
    broadcast = DataBroadcast(data=b"hi all", size=6, at=AT, recipients=2000)
    rule_line, broadcast_line = entries_of(answered, broadcast)
    saved = record(rule_line)
    assert (saved["to"], saved["data"], saved["reply"], saved["reply_len"]) == (
        "rule 2",
        "\\x02AB\\x03",
        "\\x06AB\\x03",
        4,
    )
    assert text_line(rule_line).endswith("#3      ↩ rule 2  \\x02AB\\x03  reply \\x06AB\\x03")
    assert record(broadcast_line) == {
        "event": "sent",
        "time": "2025-11-25T06:00:00.000Z",
        "mark": "→",
        "len": 6,
        "data": "hi all",
        "truncated": False,
        "to": "all (2000 clients)",
    }


def vars_of(event: DataReceived) -> dict[str, object]:
    return {name: getattr(event, name) for name in DataReceived.__dataclass_fields__}


def test_a_long_chunk_keeps_what_the_feed_keeps_and_says_it_was_cut() -> None:
    (entry,) = entries_of(received(b"A" * 300 + b"\x00" * 200, size=5000))
    saved = record(entry)
    assert saved["len"] == 5000 and saved["truncated"] is True
    assert saved["data"] == escape_bytes(entry.data, HEX_KEEP_BYTES)[0] == "A" * 256


def test_system_lines_carry_their_text_and_the_servers_own_lines_no_client() -> None:
    connected, listening = FeedEntry.system(AT, 4, "connected from 127.0.0.1:1"), FeedEntry.system(AT, None, "hi")
    assert record(connected) == {
        "event": "system",
        "time": "2025-11-25T06:00:00.000Z",
        "client": 4,
        "mark": "•",
        "message": "connected from 127.0.0.1:1",
    }
    assert "client" not in record(listening)
    assert text_line(connected) == f"{local_time(AT)}  #4      • connected from 127.0.0.1:1"
    assert text_line(listening) == f"{local_time(AT)}  server  • hi"


def test_the_text_format_is_the_feeds_escaped_text_one_line_each() -> None:
    entries = entries_of(ClientConnected(client_id=3, peer=("127.0.0.1", 1), at=AT), received(HOSTILE))
    lines = list(export_lines(entries, ExportFormat.TEXT))
    assert len(lines) == 2 and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert lines[1].endswith("#3      ⇄ \\x1b[2J\\x1b]0;owned\\x07\\r[bold red]x[/] \\xff\\u202e\\n\n")
    records = [json.loads(line) for line in export_lines(entries, ExportFormat.JSON_LINES)]
    assert [r["event"] for r in records] == ["system", "data"]


def test_files_get_a_timestamped_name_in_the_directory_and_never_overwrite(tmp_path: Path) -> None:
    entries = entries_of(received(b"hello\n"))
    first = write_export(entries, ExportFormat.TEXT, tmp_path, "feed", AT)
    second = write_export(entries, ExportFormat.TEXT, tmp_path, "feed", AT)
    jsonl = write_export(entries, ExportFormat.JSON_LINES, tmp_path, "client3", AT)
    assert first.is_absolute() and first.parent == tmp_path
    assert first.name.startswith("tui-echo-feed-2025112") and first.suffix == ".txt"
    assert second.name == first.name.replace(".txt", "-2.txt")
    assert jsonl.name.startswith("tui-echo-client3-") and jsonl.suffix == ".jsonl"
    assert first.read_text() == second.read_text() != ""


def test_a_write_error_raises_and_leaves_no_file_cut_short(tmp_path: Path) -> None:
    def entries_then_disk_full() -> Iterator[FeedEntry]:
        yield from entries_of(received(b"hello\n"))
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_export(entries_then_disk_full(), ExportFormat.TEXT, tmp_path, "feed", AT)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NotADirectoryError):
        (tmp_path / "a-file").write_text("")
        write_export([], ExportFormat.TEXT, tmp_path / "a-file", "feed", AT)
