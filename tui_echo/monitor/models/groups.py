"""The table grouped by peer address: one row per address, its clients' numbers summed. Pure: no trio, no Textual.

"Which machine is hammering me": a group row has the same fields the table
sorts and shows a client's row by, so one sort and one set of columns serve
both (its id is its lowest client id, its peer the address without a port,
its numbers the sums, its idle time its busiest client's). ``Grouping``
follows the rows shown (``TableView``): a refresh marks the groups of the
rows that came, changed or went, and only those groups are summed again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tui_echo.monitor.models.table import ConnectionRow, PeerKey, peer_sort_key


@dataclass(slots=True, eq=False)
class GroupRow:
    """The clients of one address, as a row: what they count together."""

    host: str
    members: list[ConnectionRow] = field(default_factory=list)  # in no particular order
    unfolded: bool = False  # its clients are shown under it
    # What the table shows and sorts by, as on a client's row (summed, or the group's extreme):
    client_id: int = 0  # the lowest: the group sorts by id as its first client did
    peer_key: PeerKey = field(init=False)
    connected_at: float = 0.0  # the earliest
    last_activity: float = 0.0  # the latest
    ended_at: float | None = None  # every client gone: when the last one left
    messages: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped_out: int = 0
    rate: float = 0.0
    connected: int = 0  # clients still connected
    tls_version: str | None = None
    tls_cipher: str | None = None
    label: str = ""  # a group has none (its clients may)
    server: str = ""  # an address's clients may be on several servers, or workers: neither is the group's
    worker: int = 0

    def __post_init__(self) -> None:
        self.peer_key = peer_sort_key((self.host, 0))

    @property
    def key(self) -> str:
        """What the cursor follows on a group row (a client's row: its id)."""
        return self.host

    @property
    def gone(self) -> bool:
        return self.ended_at is not None

    @property
    def status(self) -> str:
        clients = len(self.members)
        if self.connected == clients:
            return f"{clients} client{'s' if clients != 1 else ''}"
        return f"{self.connected} of {clients} connected"

    @property
    def live_ids(self) -> list[int]:
        """The group's connected clients, in id order: what its kick kicks."""
        return sorted(row.client_id for row in self.members if not row.gone)

    def sum_up(self) -> None:
        """Sum the members again (after some of them changed)."""
        members = self.members
        live = [row for row in members if not row.gone]
        self.client_id = min(row.client_id for row in members)
        self.connected_at = min(row.connected_at for row in members)
        self.last_activity = max(row.last_activity for row in members)
        self.ended_at = None if live else max(row.ended_at or 0.0 for row in members)
        self.messages = sum(row.messages for row in members)
        self.bytes_in = sum(row.bytes_in for row in members)
        self.bytes_out = sum(row.bytes_out for row in members)
        self.dropped_out = sum(row.dropped_out for row in members)
        self.rate = sum(row.rate for row in live)
        self.connected = len(live)


class Grouping:
    """The groups of a set of rows, kept as rows come, change and go."""

    def __init__(self, rows: Iterable[ConnectionRow]) -> None:
        self.groups: dict[str, GroupRow] = {}
        self.dirty: set[GroupRow] = set()
        for row in rows:
            self._join(row)
        self.sum_dirty()

    def _join(self, row: ConnectionRow) -> None:
        group = self.groups.get(row.peer[0])
        if group is None:
            group = self.groups[row.peer[0]] = GroupRow(row.peer[0])
        group.members.append(row)
        self.dirty.add(group)

    def follow(
        self, joined: Iterable[ConnectionRow], changed: Iterable[ConnectionRow], left: set[ConnectionRow]
    ) -> None:
        """Rows that joined the shown set, shown rows whose numbers changed, and rows that left it."""
        for row in joined:
            self._join(row)
        groups = self.groups
        for row in changed:
            group = groups.get(row.peer[0])
            if group is not None:
                self.dirty.add(group)
        for host in {row.peer[0] for row in left}:
            group = groups[host]
            group.members = [row for row in group.members if row not in left]
            if group.members:
                self.dirty.add(group)
            else:
                del groups[host]
                self.dirty.discard(group)
        self.sum_dirty()

    def sum_dirty(self) -> None:
        for group in self.dirty:
            group.sum_up()
        self.dirty.clear()
