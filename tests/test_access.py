"""Who may connect, against real sockets: allow/deny, per-address cap, accept rate, bans, floods, dual stack.

Loopback is all of 127.0.0.0/8, so a client bound to 127.0.0.2 reaches the
server on 127.0.0.1 from a different source address.
"""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from tui_echo.server.access import parse_network
from tui_echo.server.commands import Ban, Unban
from tui_echo.server.refusals import INDIVIDUAL_PER_SECOND, SUMMARY_SECONDS
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DisconnectReason,
    RefusalReason,
    RefusalsSummary,
    ServerNotice,
)

from .helpers import TIMEOUT, connect, connect_from, receive_until_eof, running_server

pytestmark = pytest.mark.trio


MAX_FLOOD = 100_000  # a bound on the flood's loop; it ends as soon as the legitimate client is served


def nets(*texts: str) -> tuple:
    return tuple(parse_network(text) for text in texts)


async def served(stream: trio.SocketStream) -> bool:
    """True if the server echoes; False if it closed the connection at once (refused)."""
    try:
        await stream.send_all(b"ping")
        data = bytearray()
        with trio.fail_after(TIMEOUT):
            while len(data) < 4:
                chunk = await stream.receive_some(4 - len(data))
                if not chunk:
                    return False
                data += chunk
    except trio.BrokenResourceError:  # a reset: closed at the door before our bytes arrived
        return False
    assert data == b"ping"
    return True


async def admitted(source: str, port: int) -> bool:
    """Connect from ``source``: True if served, False if refused; the connection is closed either way."""
    stream = await connect_from(source, port)
    try:
        return await served(stream)
    finally:
        await stream.aclose()


async def test_deny_wins_over_allow_and_is_counted_and_published() -> None:
    async with running_server(allow=nets("127.0.0.0/8"), deny=nets("127.0.0.2")) as run:
        denied = await connect_from("127.0.0.2", run.port)
        assert await receive_until_eof(denied) == b""
        welcome = await connect_from("127.0.0.3", run.port)
        assert await served(welcome)
        await run.recorder.wait_for(lambda: run.recorder.of(ConnectionRefused))
        [refused] = run.recorder.of(ConnectionRefused)
        assert (refused.peer[0], refused.reason) == ("127.0.0.2", RefusalReason.DENIED)
        assert [e.peer[0] for e in run.recorder.of(ClientConnected)] == ["127.0.0.3"]
        totals = run.server.totals()
        assert (totals.refused_total, dict(totals.refused_by_reason)) == (1, {RefusalReason.DENIED: 1})
        await denied.aclose()
        await welcome.aclose()


async def test_allow_admits_only_its_networks() -> None:
    async with running_server(allow=nets("127.0.0.3")) as run:
        assert not await admitted("127.0.0.1", run.port)  # not in the allow list
        assert await admitted("127.0.0.3", run.port)
        assert run.server.totals().refused_by_reason == {RefusalReason.DENIED: 1}


async def test_max_per_ip_caps_one_address_and_frees_its_place_when_a_client_leaves() -> None:
    async with running_server(max_per_ip=2) as run:
        first = await connect_from("127.0.0.2", run.port)
        second = await connect_from("127.0.0.2", run.port)
        assert await served(first) and await served(second)
        assert not await admitted("127.0.0.2", run.port)
        other = await connect_from("127.0.0.3", run.port)  # another address has its own cap
        assert await served(other)
        await first.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
        assert await admitted("127.0.0.2", run.port)
        assert run.server.totals().refused_by_reason == {RefusalReason.PER_IP_LIMIT: 1}


async def test_accept_rate_refuses_the_excess_of_one_address_exactly(mock_clock: trio.testing.MockClock) -> None:
    # The mock clock stands still unless jumped: no token refills during the test, so counts are exact.
    async with running_server(accept_rate=3.0) as run:
        results = [await admitted("127.0.0.2", run.port) for _ in range(10)]
        assert results == [True] * 3 + [False] * 7
        assert await admitted("127.0.0.3", run.port)  # its own bucket
        mock_clock.jump(1.0)  # 3 more tokens for 127.0.0.2
        results = [await admitted("127.0.0.2", run.port) for _ in range(4)]
        assert results == [True] * 3 + [False]
        totals = run.server.totals()
        assert (totals.refused_total, dict(totals.refused_by_reason)) == (8, {RefusalReason.RATE_LIMITED: 8})
        await run.recorder.wait_for(lambda: len(run.recorder.of(ConnectionRefused)) == 8)
        assert {e.reason for e in run.recorder.of(ConnectionRefused)} == {RefusalReason.RATE_LIMITED}


async def test_a_flood_of_refused_connects_neither_backs_up_the_events_nor_delays_a_legitimate_client() -> None:
    # The consumer reads nothing, and the lifecycle backlog is small: one event per refusal would fill
    # channel and backlog within ~300 refusals, and accept would pause for everyone.
    async with running_server(consume=False, deny=nets("127.0.0.2"), event_buffer=256, lifecycle_backlog=50) as run:
        done = 0
        legit_in = trio.Event()

        async def attacker() -> None:
            nonlocal done
            while not legit_in.is_set() and done < MAX_FLOOD:  # the flood goes on until the legitimate one is in
                stream = await connect_from("127.0.0.2", run.port)
                assert await receive_until_eof(stream) == b""
                await stream.aclose()
                done += 1

        began = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(attacker)
            with trio.fail_after(TIMEOUT):
                while done < 500:  # past what one event per refusal could have held
                    await trio.sleep(0.01)
            legit = await connect_from("127.0.0.3", run.port)
            assert await served(legit)  # in the middle of the flood
            legit_in.set()
        flood, seconds = done, trio.current_time() - began
        assert flood < MAX_FLOOD
        totals = run.server.totals()
        assert (totals.refused_total, dict(totals.refused_by_reason)) == (flood, {RefusalReason.DENIED: flood})
        assert run.server._outbox.backlog == 0
        await legit.aclose()
        run.recorder.consuming.set()  # now read everything: one event per refusal would be hundreds of events
        await run.recorder.wait_for(lambda: run.recorder.of(RefusalsSummary))
    individual = run.recorder.of(ConnectionRefused)
    summaries = run.recorder.of(RefusalsSummary)
    # Events by the flood's length (however long it took here), not by its size: the burst and the rate one
    # by one, and a summary a second.
    assert len(individual) <= INDIVIDUAL_PER_SECOND * (1 + seconds), (len(individual), seconds)
    assert len(summaries) <= 2 + seconds / SUMMARY_SECONDS, (len(summaries), seconds)
    assert len(individual) + sum(s.counts[RefusalReason.DENIED] for s in summaries) == flood


async def test_a_ban_closes_the_address_clients_refuses_it_and_ends_on_time(mock_clock: trio.testing.MockClock) -> None:
    async with running_server(ban_seconds=60.0) as run:
        banned = await connect_from("127.0.0.2", run.port)
        also_banned = await connect_from("127.0.0.2", run.port)
        bystander = await connect_from("127.0.0.3", run.port)
        for stream in (banned, also_banned, bystander):
            assert await served(stream)
        run.server.apply(Ban(1))
        assert await receive_until_eof(banned) == b""
        assert await receive_until_eof(also_banned) == b""  # every client of the address goes
        await banned.aclose()  # the server lingers for the close, and the mock clock stands still
        await also_banned.aclose()
        assert await served(bystander)
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == 2)
        assert {e.reason for e in run.recorder.of(ClientDisconnected)} == {DisconnectReason.BANNED}
        [ban] = run.server.bans()
        assert ban.address == "127.0.0.2"
        assert not await admitted("127.0.0.2", run.port)
        await run.recorder.wait_for(lambda: run.recorder.of(ConnectionRefused))
        assert run.recorder.of(ConnectionRefused)[0].reason is RefusalReason.BANNED
        mock_clock.jump(59.0)
        assert not await admitted("127.0.0.2", run.port)
        mock_clock.jump(1.0)
        assert await admitted("127.0.0.2", run.port)
        assert run.server.totals().refused_by_reason == {RefusalReason.BANNED: 2}
        notices = [e.message for e in run.recorder.of(ServerNotice)]
        assert "banned 127.0.0.2 for 1m00s; closed 2 clients" in notices
        await bystander.aclose()


async def test_unban_lifts_a_ban_at_once() -> None:
    async with running_server() as run:
        client = await connect_from("127.0.0.2", run.port)
        assert await served(client)
        run.server.apply(Ban(1))
        assert await receive_until_eof(client) == b""
        await client.aclose()
        assert not await admitted("127.0.0.2", run.port)
        run.server.apply(Unban("127.0.0.2"))
        assert run.server.bans() == ()
        assert await admitted("127.0.0.2", run.port)
        run.server.apply(Unban("127.0.0.2"))
        await run.recorder.wait_for(lambda: len(run.recorder.of(ServerNotice)) == 3)
        assert [e.message for e in run.recorder.of(ServerNotice)][1:] == [
            "ban on 127.0.0.2 lifted",
            "unban: 127.0.0.2 is not banned",
        ]


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 on this machine")
async def test_wildcard_ipv6_is_dual_stack_and_ipv4_peers_are_plain_ipv4_everywhere() -> None:
    async with running_server(host="::", deny=nets("127.0.0.2"), max_per_ip=1) as run:
        ipv4 = await connect(run.port)  # a real IPv4 client to a "::" server
        assert await served(ipv4)
        [state] = run.server.clients()
        assert state.peer[0] == "127.0.0.1"
        assert not await admitted("127.0.0.1", run.port)  # the per-address cap sees plain IPv4
        assert not await admitted("127.0.0.2", run.port)  # so does the IPv4 deny rule
        ipv6 = trio.SocketStream(trio.socket.socket(socket.AF_INET6))
        await ipv6.socket.connect(("::1", run.port))
        assert await served(ipv6)
        await run.recorder.wait_for(lambda: len(run.recorder.of(ConnectionRefused)) == 2)
        assert [e.peer[0] for e in run.recorder.of(ClientConnected)] == ["127.0.0.1", "::1"]
        assert [(e.peer[0], e.reason) for e in run.recorder.of(ConnectionRefused)] == [
            ("127.0.0.1", RefusalReason.PER_IP_LIMIT),
            ("127.0.0.2", RefusalReason.DENIED),
        ]
        await ipv4.aclose()
        await ipv6.aclose()
