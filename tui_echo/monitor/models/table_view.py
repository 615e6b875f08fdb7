"""The rows the connections table shows, in the order it shows them. Pure: no trio, no Textual.

A ``TableView`` is the table model's rows (``models/table.py``) after a
filter (any predicate over a row; none by default), in the order of one sort
key, or frozen. It follows the model's ``Changes``: a refresh that changed k
rows costs the view O(k) predicate calls, and a re-sort only when a changed
row's sort key can have moved (Python's sort runs in about linear time over
the mostly sorted list). Setting a filter or a sort key costs one pass over
every row; that is what a keypress pays.

The id -> position map is built when asked for and kept until the order
changes, so finding a client (the cursor, go to) is a dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import Any, overload

from tui_echo.monitor.models.table import Changes, ConnectionRow, TableModel

RowPredicate = Callable[[ConnectionRow], bool]
SortValue = Callable[[ConnectionRow], Any]  # something that orders: a number, text, a tuple

SORT_KEYS = ("id", "peer", "age", "msgs", "in", "out", "dropped", "rate", "idle", "tls", "status")
ASCENDING_FIRST = frozenset({"id", "peer", "tls", "status"})  # the rest sort biggest first when chosen
_STEADY = frozenset({"id", "peer", "tls"})  # what a refresh never changes: a changed row stays in place
_TIMED = frozenset({"age", "idle"})  # what moves with the clock: re-sorted at every refresh


def sort_value(key: str, now: float) -> SortValue:
    """What a row sorts by for the column ``key`` at ``now``. Peers sort as addresses with numeric ports."""
    match key:
        case "id":
            return attrgetter("client_id")
        case "peer":
            return attrgetter("peer_key")
        case "age":
            return lambda row: (row.ended_at or now) - row.connected_at
        case "idle":
            return lambda row: (row.ended_at or now) - row.last_activity
        case "msgs":
            return attrgetter("messages")
        case "in" | "out" | "dropped" | "rate" | "status":
            return attrgetter({"in": "bytes_in", "out": "bytes_out", "dropped": "dropped_out"}.get(key, key))
        case "tls":
            return lambda row: (row.tls_version or "", row.tls_cipher or "")
    raise KeyError(key)


class TableView(Sequence[ConnectionRow]):
    """The shown rows of one ``TableModel``, filtered, sorted or frozen."""

    def __init__(self, model: TableModel) -> None:
        self._model = model
        self._rows: list[ConnectionRow] = []
        self._members: set[ConnectionRow] = set()  # the rows in _rows
        self._index: dict[int, int] | None = None  # client id -> position, while the order holds
        self._predicate: RowPredicate | None = None
        self.sort_key = "id"
        self.reverse = False
        self.frozen = False  # order and rows held; the rows' numbers still change in place

    # ---- reading -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> ConnectionRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ConnectionRow]: ...
    def __getitem__(self, index: int | slice) -> ConnectionRow | Sequence[ConnectionRow]:
        return self._rows[index]

    def __iter__(self) -> Iterator[ConnectionRow]:
        return iter(self._rows)

    def index_of(self, client_id: int) -> int | None:
        """Where the client's row is shown, or None if it is not."""
        if self._index is None:
            self._index = {row.client_id: index for index, row in enumerate(self._rows)}
        return self._index.get(client_id)

    def row(self, client_id: int) -> ConnectionRow | None:
        """The client's row, whether shown or not (None once it has left the model)."""
        return self._model.row(client_id)

    @property
    def filtered(self) -> bool:
        return self._predicate is not None

    # ---- following the model ---------------------------------------------------

    def update(self, changes: Changes, now: float) -> None:
        """Follow one refresh of the model: O(changed rows), and a re-sort only if the order can have moved."""
        if self.frozen:
            return
        members, keep = self._members, self._predicate
        leaving = {row for row in changes.removed if row in members}
        joining = [row for row in changes.added if keep is None or keep(row)]
        if keep is not None:  # a changed row may match now, or no longer
            for row in changes.changed:
                if keep(row):
                    if row not in members:
                        joining.append(row)
                elif row in members:
                    leaving.add(row)
        if leaving:
            members -= leaving
            self._rows = [row for row in self._rows if row not in leaving]
            self._index = None
        if joining:
            members.update(joining)
            self._rows.extend(joining)
        if joining or (changes.changed and self.sort_key not in _STEADY) or self.sort_key in _TIMED:
            self._sort(now)

    # ---- what the operator changes -------------------------------------------

    def sort_by(self, key: str, reverse: bool, now: float) -> None:
        """Sort by a column (ties in client id order)."""
        if key not in SORT_KEYS:
            raise KeyError(key)
        self.sort_key, self.reverse = key, reverse
        self._rows.sort(key=attrgetter("client_id"))
        self._sort(now)

    def set_filter(self, predicate: RowPredicate | None, now: float) -> None:
        """Show only the rows ``predicate`` keeps (None: every row); one call per row. Frozen or not, the
        rows are chosen again now: asking for a filter is asking for what it shows."""
        self._predicate = predicate
        self._rebuild(now)

    def freeze(self, frozen: bool, now: float) -> None:
        """Hold the order and the set of rows (their numbers still update), or let them follow again."""
        if frozen == self.frozen:
            return
        self.frozen = frozen
        if not frozen:
            self._rebuild(now)

    def _rebuild(self, now: float) -> None:
        keep = self._predicate
        rows = list(self._model) if keep is None else [row for row in self._model if keep(row)]
        rows.sort(key=attrgetter("client_id"))
        self._rows, self._members = rows, set(rows)
        self._sort(now)

    def _sort(self, now: float) -> None:
        self._rows.sort(key=sort_value(self.sort_key, now), reverse=self.reverse)  # stable: ties keep their place
        self._index = None  # rebuilt when someone looks a client up; the cursor checks its own row first
