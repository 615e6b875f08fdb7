"""Admission rules, refusal counting and their log/feed lines, as pure logic (no sockets)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from tui_echo.headless.log import EventLog, HumanFormat, JsonFormat
from tui_echo.monitor.models.feed import FeedIntake
from tui_echo.server.access import BAN_LIMIT, RATE_TABLE_LIMIT, AccessControl, is_loopback, parse_network, plain_host
from tui_echo.server.config import ServerConfig
from tui_echo.server.events import RefusalReason, RefusalsSummary, ServerListening, ServerStopped, ServerTotals
from tui_echo.server.refusals import INDIVIDUAL_PER_SECOND, RefusalCounter

T0 = 1_764_050_400.0


def test_ipv4_mapped_peers_become_plain_ipv4() -> None:
    assert plain_host("::ffff:127.0.0.1") == "127.0.0.1"
    assert plain_host("::1") == "::1"
    assert plain_host("10.0.0.7") == "10.0.0.7"
    assert plain_host("::ffff:7f00:1") == "::ffff:7f00:1"  # not how the kernel spells a mapped peer


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.0.2.7", "192.0.2.7/32"),
        ("::1", "::1/128"),
        ("10.1.2.3/8", "10.0.0.0/8"),  # host bits are forgiven, as ncat does
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),  # IPv4-mapped rules are IPv4 rules
    ],
)
def test_rules_are_networks_and_a_bare_address_is_one_host(text: str, network: str) -> None:
    assert parse_network(text) == ipaddress.ip_network(network)


def test_loopback_is_what_needs_a_confirmation_to_ban() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.2") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("10.0.0.7") and not is_loopback("fd00::1")


def test_no_rules_admit_everyone() -> None:
    control = AccessControl(ServerConfig())
    assert all(control.check(f"10.0.{n // 256}.{n % 256}", 0.0, 0) is None for n in range(1000))


def test_the_rate_table_is_bounded_and_forgets_refilled_buckets() -> None:
    control = AccessControl(ServerConfig(accept_rate=1.0))
    for n in range(RATE_TABLE_LIMIT + 500):  # a spoofed-looking spread of sources, all within one second
        assert control.check(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 0.5, 0) is None
    assert len(control._rates) == RATE_TABLE_LIMIT
    assert control.check("10.0.0.0", 0.5, 0) is None  # forgotten, so a fresh bucket
    assert control.check("10.0.0.0", 0.5, 0) is RefusalReason.RATE_LIMITED
    # Two seconds later every bucket has refilled: the next connection sweeps them away.
    assert control.check("192.0.2.1", 3.0, 0) is None
    assert len(control._rates) == 1


def test_the_ban_list_is_bounded_and_ended_bans_make_room() -> None:
    control = AccessControl(ServerConfig())
    assert all(control.ban(f"10.0.{n // 256}.{n % 256}", 60.0, 0.0) for n in range(BAN_LIMIT))
    assert not control.ban("192.0.2.1", 60.0, 1.0)
    assert control.ban("10.0.0.0", 60.0, 1.0)  # banning a banned address again restarts its ban
    assert control.check("192.0.2.1", 1.0, 0) is None
    assert control.ban("192.0.2.1", 60.0, 60.5)  # the first bans ended at 60
    assert control.check("10.0.0.0", 60.5, 0) is RefusalReason.BANNED
    assert control.check("10.0.0.1", 60.5, 0) is None


def test_refusals_are_counted_exactly_and_published_one_by_one_only_while_few() -> None:
    counter = RefusalCounter()
    published = [counter.refused(RefusalReason.DENIED, 0.0) for _ in range(100)]
    assert published == [True] * INDIVIDUAL_PER_SECOND + [False] * (100 - INDIVIDUAL_PER_SECOND)
    assert counter.refused(RefusalReason.SERVER_FULL, 0.5) is False  # held while a summary is pending
    summary = counter.summary(T0, 1.0)
    assert summary is not None
    assert summary.counts == {RefusalReason.DENIED: 90, RefusalReason.SERVER_FULL: 1}
    assert summary.seconds == 1.0
    assert counter.summary(T0, 1.0) is None
    assert counter.refused(RefusalReason.DENIED, 1.0) is True  # the bucket refilled meanwhile
    assert (counter.total, counter.by_reason) == (
        102,
        {RefusalReason.DENIED: 101, RefusalReason.SERVER_FULL: 1},
    )


SUMMARY = RefusalsSummary(at=T0, seconds=1.0, counts={RefusalReason.DENIED: 950, RefusalReason.RATE_LIMITED: 40})


def test_a_refusals_summary_in_the_log_and_the_feed() -> None:
    [human] = EventLog(HumanFormat()).handle(SUMMARY)
    assert human.endswith("refused 990 connections in 1.0 s (too many to log one by one): denied 950, rate limited 40")
    [line] = EventLog(JsonFormat()).handle(SUMMARY)
    assert json.loads(line) == {
        "event": "refused_summary",
        "time": "2025-11-25T06:00:00.000Z",
        "seconds": 1.0,
        "refused": 990,
        "reasons": {"denied": 950, "rate limited": 40},
    }
    [entry] = FeedIntake(80).entries([SUMMARY], T0)
    assert entry.text == "refused 990 connections in 1.0 s: denied 950, rate limited 40"


def test_stopped_counts_refusals_by_reason() -> None:
    totals = ServerTotals(
        clients_total=1,
        clients_now=0,
        clients_peak=1,
        refused_total=3,
        messages_in=0,
        bytes_in=0,
        bytes_out=0,
        events_skipped=0,
        refused_by_reason={RefusalReason.BANNED: 2, RefusalReason.PER_IP_LIMIT: 1},
    )
    stopped = ServerStopped(at=T0, totals=totals)
    [human] = EventLog(HumanFormat()).handle(stopped)
    assert "3 refused (banned 2, per-IP limit 1)" in human
    [line] = EventLog(JsonFormat()).handle(stopped)
    assert json.loads(line)["refused_by_reason"] == {"banned": 2, "per-IP limit": 1}


def test_the_listening_line_states_the_access_rules() -> None:
    config = ServerConfig(
        allow=(parse_network("10.0.0.0/8"),), deny=(parse_network("10.6.6.6"),), max_per_ip=4, accept_rate=2.5
    )
    event = ServerListening(addresses=(("::", 12354),), at=T0, config=config)
    [human] = EventLog(HumanFormat()).handle(event)
    assert "max per IP 4, accept rate 2.5/s per IP, allow 10.0.0.0/8, deny 10.6.6.6/32)" in human
    record = json.loads(EventLog(JsonFormat()).handle(event)[0])
    assert (record["max_per_ip"], record["accept_rate"], record["allow"], record["deny"]) == (
        4,
        2.5,
        ["10.0.0.0/8"],
        ["10.6.6.6/32"],
    )
