"""The feed, or one client's history, saved to a file: plain text or JSON Lines.

No trio, no Textual. The records use the ``--json`` log's names where they
overlap (``tui_echo.wire``): ``event``, ``time`` (UTC), ``client``,
and for data ``len``, ``data`` (escaped as in the log) and ``truncated``.
A data line keeps what the feed keeps of a chunk (its first 256 bytes), so
``truncated`` is true past that. Client bytes are written escaped, in both
formats: a saved file is as inert as the screen.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import assert_never

from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.monitor.models.feed import Direction, FeedEntry
from tui_echo.text import local_time
from tui_echo.times import utc_time
from tui_echo.wire.records import Record, data_fields, to_json

MAX_NAME_TRIES = 100  # files saved within the same second get -2, -3, … rather than overwrite


class ExportFormat(StrEnum):
    TEXT = "text"
    JSON_LINES = "jsonl"

    @property
    def suffix(self) -> str:
        return ".txt" if self is ExportFormat.TEXT else ".jsonl"

    @property
    def label(self) -> str:
        return "text" if self is ExportFormat.TEXT else "JSON Lines"


def text_line(entry: FeedEntry, keys: ClientKeys = ONE_SERVER) -> str:
    """``2026-11-25 04:42:43.260  #1      ⇄ hello\\n``: the feed's text view, with the date
    (``#1@7002`` among several servers)."""
    label = "server" if entry.client_id is None else keys.label(entry.client_id)
    to = f"{entry.to}  " if entry.to else ""
    reply = f"  reply {entry.reply_text}" if entry.reply_size else ""
    return f"{local_time(entry.at)}  {label:<7} {entry.direction} {to}{entry.text}{reply}"


def _event_name(direction: Direction) -> str:
    match direction:
        case Direction.ECHOED | Direction.RELAYED | Direction.DISCARDED | Direction.ANSWERED:
            return "data"  # as in the log: received, and echoed, relayed, discarded or answered (the mark says which)
        case Direction.SENT:
            return "sent"
        case Direction.SYSTEM:
            return "system"  # a connect, disconnect, refusal, busy or notice line: its text is in ``message``
        case _:
            assert_never(direction)


def record(entry: FeedEntry, keys: ClientKeys = ONE_SERVER) -> Record:
    """One feed line as a JSON-ready record; ``client`` is left out for the server's own lines, and
    among several servers ``server`` names the client's (``client`` is the id its server gave it)."""
    fields: Record = {"event": _event_name(entry.direction), "time": utc_time(entry.at)}
    if entry.client_id is not None:
        fields["client"] = keys.number(entry.client_id)
        if keys.several:
            fields["server"] = keys.server_name(entry.client_id)
    fields["mark"] = str(entry.direction)
    if entry.direction is Direction.SYSTEM:
        fields["message"] = entry.text
    else:
        fields |= data_fields(entry.data, entry.size)
    if entry.to:
        fields["to"] = entry.to
    if entry.reply_size:  # a rule's answer, kept and escaped as the request is
        reply = data_fields(entry.reply, entry.reply_size)
        fields |= {"reply_len": reply["len"], "reply": reply["data"], "reply_truncated": reply["truncated"]}
    return fields


def export_lines(entries: Iterable[FeedEntry], kind: ExportFormat, keys: ClientKeys = ONE_SERVER) -> Iterator[str]:
    """The file's lines, each with its newline."""
    for entry in entries:
        yield (text_line(entry, keys) if kind is ExportFormat.TEXT else to_json(record(entry, keys))) + "\n"


def file_name(subject: str, kind: ExportFormat, at: float, attempt: int = 0) -> str:
    """``tui-echo-feed-20261125-044243.txt``; later attempts in the same second add ``-2``, ``-3``, …"""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(at))
    again = f"-{attempt + 1}" if attempt else ""
    return f"tui-echo-{subject}-{stamp}{again}{kind.suffix}"


def write_export(
    entries: Iterable[FeedEntry],
    kind: ExportFormat,
    directory: Path,
    subject: str,
    at: float,
    keys: ClientKeys = ONE_SERVER,
) -> Path:
    """Write a new file in ``directory`` (never over an existing one) and return its full path.

    Raises ``OSError`` (read-only directory, disk full, …); a file cut short by an error is removed.
    """
    for attempt in range(MAX_NAME_TRIES):
        path = directory.absolute() / file_name(subject, kind, at, attempt)
        try:
            out = path.open("x", encoding="utf-8")
        except FileExistsError:
            continue
        try:
            with out:
                out.writelines(export_lines(entries, kind, keys))
        except OSError:
            path.unlink(missing_ok=True)
            raise
        return path
    raise FileExistsError(f"{MAX_NAME_TRIES} files named {file_name(subject, kind, at)} or similar already exist")
