"""State records: a client, its counts, the server's totals, a ban, a reply rule's hits.

Each kind has its ``encode_*`` and ``decode_*`` side by side. Times are UTC
ISO 8601 strings, to the millisecond (``tui_echo.times``).
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

from tui_echo.net import format_address
from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState, ClientStatus
from tui_echo.server.events import RefusalReason, ServerTotals
from tui_echo.server.rules import RuleHits
from tui_echo.times import utc_time
from tui_echo.wire.records import (
    Fields,
    Record,
    optional_peer,
    optional_time,
    read_bool,
    read_int,
    read_int_list,
    read_object,
    read_optional_int,
    read_optional_peer,
    read_optional_str,
    read_optional_time,
    read_peer,
    read_str,
    read_actions,
    read_time,
)

# ---- a client, and its counts ----------------------------------------------------------------


class ClientCounts(NamedTuple):
    """What changes on a live client. A count record carries exactly these (and the id), and a console
    is sent a client's count record again when, and only when, these differ from what it was last sent."""

    last_activity: float
    messages_in: int
    bytes_in: int
    bytes_out: int
    dropped_out: int
    status: ClientStatus
    label: str
    fault: str
    fault_ends: float | None
    fault_dropped: int
    fault_corrupted: int

    @classmethod
    def of(cls, state: ClientState) -> ClientCounts:
        return cls._make(counts_of(state))

    def apply_to(self, state: ClientState) -> None:
        for name, value in zip(self._fields, self, strict=True):
            setattr(state, name, value)


CountsTuple: TypeAlias = tuple[float, int, int, int, int, ClientStatus, str, str, float | None, int, int]


def counts_of(state: ClientState) -> CountsTuple:
    """A client's counts as a plain tuple, equal to ``ClientCounts.of(state)``: a session compares every
    client's every 0.25 s, and a plain tuple costs a quarter of a named one to build."""
    return (
        state.last_activity,
        state.messages_in,
        state.bytes_in,
        state.bytes_out,
        state.dropped_out,
        state.status,
        state.label,
        state.fault,
        state.fault_ends,
        state.fault_dropped,
        state.fault_corrupted,
    )


def encode_counts(client_id: int, counts: ClientCounts) -> Record:
    """The fault fields only for a client that has or had faults: most never do, and 10,000 records a
    snapshot would carry them for nothing (a record without them reads as no faults)."""
    record: Record = {
        "client": client_id,
        "last_activity": utc_time(counts.last_activity),
        "messages_in": counts.messages_in,
        "bytes_in": counts.bytes_in,
        "bytes_out": counts.bytes_out,
        "dropped_out": counts.dropped_out,
        "status": str(counts.status),
        "label": counts.label,
    }
    if counts.fault or counts.fault_ends is not None or counts.fault_dropped or counts.fault_corrupted:
        record["fault"] = counts.fault
        record["fault_ends"] = optional_time(counts.fault_ends)
        record["fault_dropped"] = counts.fault_dropped
        record["fault_corrupted"] = counts.fault_corrupted
    return record


def decode_counts(record: Fields) -> tuple[int, ClientCounts]:
    """The client's id and its counts."""
    return read_int(record, "client"), ClientCounts(
        last_activity=read_time(record, "last_activity"),
        messages_in=read_int(record, "messages_in"),
        bytes_in=read_int(record, "bytes_in"),
        bytes_out=read_int(record, "bytes_out"),
        dropped_out=read_int(record, "dropped_out"),
        status=ClientStatus(read_str(record, "status")),
        label=read_str(record, "label"),
        fault=read_optional_str(record, "fault") or "",  # absent: no faults (see encode_counts)
        fault_ends=read_optional_time(record, "fault_ends"),
        fault_dropped=read_optional_int(record, "fault_dropped") or 0,
        fault_corrupted=read_optional_int(record, "fault_corrupted") or 0,
    )


def encode_client(state: ClientState) -> Record:
    """A count record, plus who the client is: its peer, when it connected, its TLS (``null`` without)."""
    return {
        "peer": format_address(state.peer),
        "connected": utc_time(state.connected_at),
        "tls_version": state.tls_version,
        "tls_cipher": state.tls_cipher,
        "proxy": optional_peer(state.proxy),
        **encode_counts(state.client_id, ClientCounts.of(state)),
    }


def decode_client(record: Fields) -> ClientState:
    client_id, counts = decode_counts(record)
    return ClientState(
        client_id=client_id,
        peer=read_peer(record),
        connected_at=read_time(record, "connected"),
        tls_version=read_optional_str(record, "tls_version"),
        tls_cipher=read_optional_str(record, "tls_cipher"),
        proxy=read_optional_peer(record, "proxy"),
        **counts._asdict(),
    )


# ---- the server's totals -------------------------------------------------------------------

# The totals that are one number each, under their own names.
_TOTAL_COUNTS = (
    "clients_total",
    "clients_now",
    "clients_peak",
    "refused_total",
    "messages_in",
    "bytes_in",
    "bytes_out",
    "events_skipped",
    "tls_handshakes_failed",
    "dropped_out",
    "proxy_checks",
)


def encode_totals(totals: ServerTotals) -> Record:
    return {
        **{name: getattr(totals, name) for name in _TOTAL_COUNTS},
        "refused_by_reason": {str(reason): count for reason, count in totals.refused_by_reason.items()},
        "rule_hits": list(totals.rule_hits),
    }


def decode_totals(record: Fields) -> ServerTotals:
    by_reason = read_object(record, "refused_by_reason")
    return ServerTotals(
        **{name: read_int(record, name) for name in _TOTAL_COUNTS},
        refused_by_reason={RefusalReason(reason): read_int(by_reason, reason) for reason in by_reason},
        rule_hits=tuple(read_int_list(record, "rule_hits")),
    )


# ---- bans and rules -----------------------------------------------------------------------------


def encode_ban(ban: ActiveBan) -> Record:
    return {"address": ban.address, "until": utc_time(ban.until)}


def decode_ban(record: Fields) -> ActiveBan:
    return ActiveBan(read_str(record, "address"), read_time(record, "until"))


def encode_rule(rule: RuleHits) -> Record:
    """A reply rule with its hits; ``last_match`` is escaped as the log's data is (inert)."""
    return {
        "rule": rule.number,
        "match": rule.match,
        "reply": rule.reply,
        "once": rule.once,
        "hits": rule.hits,
        "last_match": rule.last_match,
        "last_client": rule.last_client,
        "last_time": optional_time(rule.last_at),
        "new": rule.new,
        "actions": dict(rule.actions),
    }


def decode_rule(record: Fields) -> RuleHits:
    return RuleHits(
        number=read_int(record, "rule"),
        match=read_str(record, "match"),
        reply=read_optional_str(record, "reply"),
        once=read_bool(record, "once"),
        hits=read_int(record, "hits"),
        last_match=read_optional_str(record, "last_match"),
        last_client=read_optional_int(record, "last_client"),
        last_at=read_optional_time(record, "last_time"),
        new=record.get("new") is not None and read_bool(record, "new"),
        actions=read_actions(record),
    )
