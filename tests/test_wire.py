"""The one wire codec: ``decode(encode(x)) == x`` for every event kind and state record, over every field.

Instances are drawn with every field set, defaults included (``every_field``), and each record
goes through JSON text as on the wire. A field added to an event or a record and forgotten in
the codec comes back as its default and fails here; an event kind without a strategy fails
``test_every_event_kind_is_drawn``. Times travel to the millisecond (``tui_echo.times``), so
they are drawn in whole milliseconds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import ssl
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_echo.net import format_address, parse_address
from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState
from tui_echo.server.faults import parse_faults
from tui_echo.server.config import Mode, ServerConfig, WorkerSlot
from tui_echo.server.events import (
    EVENT_DATA_BYTES,
    DataAnswered,
    DataReceived,
    DataRelayed,
    ServerEvent,
    ServerListening,
    ServerStopped,
    ServerTotals,
)
from tui_echo.server.rules import ACTIONS, RuleHits, compile_rule
from tui_echo.server.tls import TlsSettings
from tui_echo.wire.events import DECODERS, decode_event, encode_event
from tui_echo.wire.records import Record
from tui_echo.wire.settings import ServerInfo, decode_server, encode_server
from tui_echo.wire.state import (
    ClientCounts,
    counts_of,
    decode_ban,
    decode_client,
    decode_counts,
    decode_rule,
    decode_totals,
    encode_ban,
    encode_client,
    encode_counts,
    encode_rule,
    encode_totals,
)

# ---- drawing instances with every field set ------------------------------------------------------

times = st.integers(0, 4_102_444_800_000).map(lambda ms: ms / 1000)  # whole milliseconds, to the year 2100
seconds = st.integers(0, 10**9).map(lambda ms: ms / 1000)
counts = st.integers(0, 2**63)
hosts = st.one_of(st.ip_addresses().map(str), st.sampled_from(["localhost", "example.org", "::"]))
peers = st.tuples(hosts, st.integers(0, 65535))
networks = st.tuples(st.ip_addresses(), st.integers(0, 128)).map(
    lambda pair: ipaddress.ip_network(f"{pair[0]}/{min(pair[1], pair[0].max_prefixlen)}", strict=False)
)
RULE_TEXTS = [
    (r"PING (\d+)", r"PONG {1}\n"),
    (r"\x02(..)\x03", r"\x06{1}"),
    (r"(?s).*", "{client} {peer} {count} {time} {len} {{ }}"),
    ("é+", "ü"),
    ("^(\\w+): ", None),  # no reply: it echoes, and acts
]
RULE_ACTIONS = [{}, {"label": "{0}"}, {"label": "{client}-{peer} {{x}}"}]
rules = st.builds(
    lambda number, origin, texts, once, actions: compile_rule(
        number, origin, *texts, once, actions if texts[1] is not None or actions else {"label": "{0}"}
    ),
    st.integers(1, 1000),
    st.text(max_size=30),
    st.sampled_from(RULE_TEXTS),
    st.booleans(),
    st.sampled_from(RULE_ACTIONS),
)
CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # not compared: a TLS setting is told apart by the rest

# Fields by name, where the type alone would draw what the wire does not carry (NaN, sub-millisecond times).
BY_NAME: dict[str, st.SearchStrategy[Any]] = {
    "at": times,
    "connected_at": times,
    "last_activity": times,
    "started_at": times,
    "until": times,
    "last_at": st.none() | times,
    "ends_at": st.none() | times,
    "fault_ends": st.none() | times,
    # A rule's actions are named once each (an object on the wire), in the order rules.ACTIONS gives.
    "actions": st.lists(st.tuples(st.sampled_from(ACTIONS), st.text()), unique_by=lambda pair: pair[0]).map(tuple),
    "seconds": seconds,
    "peer": peers,
    "addresses": st.lists(peers, min_size=1, max_size=3).map(tuple),
    "data": st.binary(max_size=EVENT_DATA_BYTES),
    "host": hosts,
    "port": st.integers(0, 65535),
    "allow": st.lists(networks, max_size=3).map(tuple),
    "deny": st.lists(networks, max_size=3).map(tuple),
    "proxy_from": st.lists(networks, max_size=3).map(tuple),
    "proxy": st.none() | peers,
    "metrics": st.none() | peers,
    "rules": st.lists(rules, max_size=3).map(tuple),
}
FINITE = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


def _by_type(hint: object) -> st.SearchStrategy[Any]:
    if hint is float:
        return FINITE
    if hint == float | None:
        return st.none() | FINITE
    return st.from_type(hint)  # type: ignore[arg-type]


def every_field(cls: type, **by_name: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``cls`` with every field drawn: ``st.builds`` alone leaves fields with defaults at their default,
    and a codec that forgot one of those would pass."""
    hints = typing.get_type_hints(cls)
    chosen = {**BY_NAME, **by_name}
    return st.builds(cls, **{f.name: chosen.get(f.name, _by_type(hints[f.name])) for f in fields(cls)})


tls_settings = every_field(TlsSettings, context=st.just(CONTEXT))
worker_slots = st.integers(1, 64).flatmap(
    lambda count: st.tuples(st.integers(1, count), st.integers(0, 10**6)).map(
        lambda pair: WorkerSlot(pair[0], count, pair[0] + pair[1] * count)
    )
)
fault_specs = st.sampled_from(["latency=200ms,jitter=50ms", "corrupt=0.001,toxicity=0.5", "reset"])
configs = every_field(
    ServerConfig,
    tls=st.none() | tls_settings,
    worker=st.none() | worker_slots,
    fault=st.none() | fault_specs.map(parse_faults),
)
totals = every_field(ServerTotals)
SPECIAL_EVENTS: dict[type, st.SearchStrategy[Any]] = {
    ServerListening: every_field(ServerListening, config=configs),
    DataRelayed: every_field(DataRelayed, mode=st.sampled_from([m for m in Mode if m.relays])),
    # "rules" here are the numbers of the rules that answered (BY_NAME's are a server's rules)
    DataAnswered: every_field(
        DataAnswered, rules=st.lists(st.integers(1, 10**6), max_size=5).map(tuple), reply=BY_NAME["data"]
    ),
    ServerStopped: every_field(ServerStopped, totals=totals),
}


def events_of(kind: type) -> st.SearchStrategy[Any]:
    return SPECIAL_EVENTS[kind] if kind in SPECIAL_EVENTS else every_field(kind)


def _event_kinds() -> list[type]:
    """Every class an event can be: the union's members and their subclasses."""
    found: list[type] = []
    pending = list(typing.get_args(ServerEvent))
    while pending:
        kind = pending.pop(0)
        # @dataclass(slots=True) makes a new class: the one it replaced may linger among the subclasses.
        if getattr(sys.modules[kind.__module__], kind.__name__, None) is kind and kind not in found:
            found.append(kind)
            pending += kind.__subclasses__()
    return found


EVENT_KINDS = _event_kinds()


def over_json(record: Record) -> Mapping[str, Any]:
    """The record as the other end reads it: through JSON text."""
    decoded: dict[str, Any] = json.loads(json.dumps(record, ensure_ascii=True))
    return decoded


# ---- events ------------------------------------------------------------------------------------------


def test_every_event_kind_is_drawn() -> None:
    assert {DataReceived, DataRelayed, ServerListening, ServerStopped} <= set(EVENT_KINDS)
    assert len(EVENT_KINDS) == len(set(EVENT_KINDS))


@pytest.mark.parametrize("kind", EVENT_KINDS, ids=lambda kind: kind.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_event_round_trips_through_its_record(kind: type, data: st.DataObject) -> None:
    event = data.draw(events_of(kind))
    record = encode_event(event, peer="127.0.0.1:5000", clients_now=3)
    assert record["event"] in DECODERS
    decoded = decode_event(over_json(record))
    assert type(decoded) is type(event)
    assert decoded == event


def test_a_record_that_is_not_an_event_decodes_to_none() -> None:
    assert decode_event({"event": "data_summary", "time": "2026-11-25T04:42:43.260Z"}) is None
    assert decode_event({"type": "counts"}) is None


@settings(max_examples=200, deadline=None)
@given(event=st.one_of(*(events_of(kind) for kind in EVENT_KINDS)), data=st.data())
def test_a_damaged_record_raises_one_of_three_errors_and_never_anything_else(
    event: ServerEvent, data: st.DataObject
) -> None:
    record = dict(over_json(encode_event(event)))
    key = data.draw(st.sampled_from(sorted(record)))
    damaged = data.draw(st.sampled_from(["drop", "null", "text", "number", "list"]))
    if damaged == "drop":
        del record[key]
    else:
        record[key] = {"null": None, "text": "x", "number": -1.5, "list": [1]}[damaged]
    with contextlib.suppress(ValueError, KeyError, TypeError):
        decode_event(record)


def test_data_carries_the_exact_bytes_and_the_escaped_text_the_log_always_had() -> None:
    event = DataReceived(
        client_id=1, data=b"\x1b[31m\xffhi\n", size=9, at=1.5, messages=1, messages_in=1, bytes_in=9, bytes_out=9
    )
    record = encode_event(event, peer="127.0.0.1:5")
    assert record["data"] == "\\x1b[31m\\xffhi\\n" and record["data_b64"] == "G1szMW3/aGkK"
    assert (record["len"], record["truncated"], record["messages"], record["peer"]) == (9, False, 1, "127.0.0.1:5")


# ---- state records -------------------------------------------------------------------------------------


def _round_trip(encode: Callable[[Any], Record], decode: Callable[[Mapping[str, Any]], Any], value: Any) -> None:
    assert decode(over_json(encode(value))) == value


@settings(max_examples=150, deadline=None)
@given(state=every_field(ClientState))
def test_a_client_and_its_counts_round_trip(state: ClientState) -> None:
    _round_trip(encode_client, decode_client, state)
    counts = ClientCounts.of(state)
    assert counts_of(state) == counts == ClientCounts(**{name: getattr(state, name) for name in ClientCounts._fields})
    assert decode_counts(over_json(encode_counts(state.client_id, counts))) == (state.client_id, counts)
    blank = ClientState(client_id=state.client_id, peer=state.peer, connected_at=0.0, last_activity=0.0)
    counts.apply_to(blank)
    assert ClientCounts.of(blank) == counts


def test_a_count_record_carries_exactly_the_counts_a_console_compares() -> None:
    state = ClientState(client_id=7, peer=("::1", 5), connected_at=1.0, last_activity=2.0)
    record = encode_counts(7, ClientCounts.of(state))
    faults = {"fault", "fault_ends", "fault_dropped", "fault_corrupted"}  # only for a client that has had faults
    assert set(record) == {"client", *ClientCounts._fields} - faults
    assert set(encode_client(state)) - set(record) == {"peer", "connected", "tls_version", "tls_cipher", "proxy"}
    state.fault = "stall"
    assert set(encode_counts(7, ClientCounts.of(state))) == {"client", *ClientCounts._fields}


@settings(max_examples=150, deadline=None)
@given(value=totals)
def test_the_totals_round_trip(value: ServerTotals) -> None:
    _round_trip(encode_totals, decode_totals, value)


@settings(max_examples=100, deadline=None)
@given(ban=every_field(ActiveBan), rule=every_field(RuleHits))
def test_a_ban_and_a_rules_hits_round_trip(ban: ActiveBan, rule: RuleHits) -> None:
    _round_trip(encode_ban, decode_ban, ban)
    _round_trip(encode_rule, decode_rule, rule)


@settings(max_examples=100, deadline=None)
@given(info=every_field(ServerInfo, config=configs))
def test_the_server_record_round_trips_with_every_setting(info: ServerInfo) -> None:
    _round_trip(encode_server, decode_server, info)
    assert info.listening().config == info.config


@given(peer=peers)
def test_a_peer_round_trips_through_its_text(peer: tuple[str, int]) -> None:
    assert parse_address(format_address(peer)) == peer
