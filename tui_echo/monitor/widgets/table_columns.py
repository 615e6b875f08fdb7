"""The connections table's columns: what each shows of a client's row or a group's, and which fit the width.

A group row (``models/groups.py``) has the fields a client's row has, summed
or the group's extreme, so every column reads both; only the id (the fold
mark and the number of clients) and the peer (the address, no port) differ.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

from tui_echo.monitor.models.groups import GroupRow
from tui_echo.monitor.models.table import ConnectionRow
from tui_echo.monitor.models.table_view import SORT_KEYS, Row
from tui_echo.net import format_address
from tui_echo.text import format_count, format_duration, format_size, printable

KICK_LABEL = " ✕ kick "
TAG_MARK = "✔"  # a tagged client; kick, send and ban act on the tagged ones
FOLDED, UNFOLDED = "▸", "▾"  # a group row, its clients hidden or shown under it
MARK_WIDTH = 1  # before the first column, which is right-aligned: "✔   #17"
GAP = 1


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    right: bool
    cell: Callable[[Row, float], str]  # what a row shows; the view sorts by the same key's value


def _exact_or_short(count: int, width: int) -> str:
    exact = str(count)
    return exact if len(exact) <= width else format_count(count)


def _id(row: Row, now: float) -> str:
    return f"#{row.number}" if isinstance(row, ConnectionRow) else f"{len(row.members)}×"


def _peer(row: Row, now: float) -> str:
    return format_address(row.peer) if isinstance(row, ConnectionRow) else row.host


def _idle(row: Row, now: float) -> str:
    """How long since it last sent; ``fault`` while a slow fault holds it (it is not idle, it is held)."""
    if isinstance(row, ConnectionRow) and row.held_by_fault:
        return "fault"
    return format_duration((row.ended_at or now) - row.last_activity)


def _status(row: Row, now: float) -> str:
    """The status; a client with faults shows them instead (the table's fault marker), time left included."""
    if isinstance(row, ConnectionRow) and row.fault and not row.gone:
        return f"faulted {row.fault_text(now)}"
    return row.status


def _tls(row: Row, now: float) -> str:
    """``1.3 AES_256_GCM_SHA384``: the version and cipher, without the ``TLS`` the column title says."""
    if row.tls_version is None:
        return ""
    return f"{row.tls_version.removeprefix('TLSv')} {(row.tls_cipher or '?').removeprefix('TLS_')}"


COLUMNS = (
    Column("id", "id", 6, True, _id),
    Column("server", "server", 10, False, lambda r, now: printable(r.server)),  # among several servers
    Column("worker", "worker", 7, True, lambda r, now: str(r.worker or "")),  # on a --workers server
    Column("peer", "peer", 20, False, _peer),  # "255.255.255.255:65535" is cut by one on a narrow terminal
    Column("label", "label", 14, False, lambda r, now: printable(r.label)),  # once a client has one; escaped
    Column("age", "connected", 10, True, lambda r, now: format_duration((r.ended_at or now) - r.connected_at)),
    Column("msgs", "msgs", 9, True, lambda r, now: _exact_or_short(r.messages, 9)),
    Column("in", "in", 9, True, lambda r, now: format_size(r.bytes_in)),
    Column("out", "out", 9, True, lambda r, now: format_size(r.bytes_out)),
    # Chat and broker only: deliveries to this client that never reached it (its queue was full).
    Column("dropped", "dropped", 8, True, lambda r, now: _exact_or_short(r.dropped_out, 8)),
    Column("rate", "msg/s", 6, True, lambda r, now: format_count(r.rate)),
    Column("idle", "idle", 6, True, _idle),
    Column("tls", "tls", 22, False, _tls),  # only when the server serves TLS
    Column("status", "status", 16, False, _status),
)
assert tuple(column.key for column in COLUMNS) == SORT_KEYS  # one column per key the view sorts by
TITLES = {column.key: column.title for column in COLUMNS}
# On a narrow terminal, columns are left out in this order: the id, the count and the kick control stay.
NARROW_DROPS = ("out", "idle", "worker", "dropped", "tls", "age", "label", "rate", "in", "status", "peer", "server")
# On a wide one, the peer grows to fit an IPv6 address and the status takes the rest, so the kick
# controls sit at the right edge, under "Kick all".
PEER_WIDEST = len("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")


def mark(row: Row, tags: set[int]) -> str:
    if isinstance(row, GroupRow):
        return UNFOLDED if row.unfolded else FOLDED
    return TAG_MARK if row.client_id in tags else " "


def fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def width_of(columns: tuple[Column, ...]) -> int:
    return MARK_WIDTH + sum(column.width + GAP for column in columns) + len(KICK_LABEL)


def _widen(columns: tuple[Column, ...], key: str, extra: int) -> tuple[Column, ...]:
    return tuple(dataclasses.replace(c, width=c.width + extra) if c.key == key else c for c in columns)


@functools.cache
def columns_fitting(
    width: int, tls: bool, dropped: bool, labels: bool = False, servers: bool = False, workers: bool = False
) -> tuple[Column, ...]:
    """The columns that fit ``width``: on a narrow terminal the kick control stays in view, some numbers go."""
    shown = {
        "tls": tls,
        "dropped": dropped,
        "label": labels,
        "server": servers,
        "worker": workers,
    }  # the columns only some servers (or clients) have
    columns = tuple(column for column in COLUMNS if shown.get(column.key, True))
    for key in NARROW_DROPS:
        if width_of(columns) <= width:
            break
        columns = tuple(column for column in columns if column.key != key)
    for key, widest in (("peer", PEER_WIDEST), ("status", width)):
        column = next((column for column in columns if column.key == key), None)
        if column is not None:
            columns = _widen(columns, key, max(min(width - width_of(columns), widest - column.width), 0))
    return columns
