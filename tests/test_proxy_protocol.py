"""--proxy-protocol against real sockets: the real client's address everywhere, the proxy's kept beside it,
refusals of bad, slow and untrusted headers, access rules on the real address, TLS after the header.

The "proxy" here is a test socket that writes the header itself (HAProxy's own: tests/test_haproxy.py).
Loopback is all of 127.0.0.0/8, so a proxy bound to 127.0.0.2 connects from another address.
"""

from __future__ import annotations

import pytest
import trio

from tui_echo.server.access import parse_network
from tui_echo.server.clients import ClientState
from tui_echo.server.events import ClientConnected, ConnectionRefused, RefusalReason, ServerNotice


from .helpers import TIMEOUT, connect, connect_from, receive_exactly, receive_until_eof, running_server
from .test_proxy_header import v1, v2
from .tls_helpers import Certificates, issue_certificates

pytestmark = pytest.mark.trio


def clients(run) -> list[ClientState]:
    return list(run.server.clients())


async def echoes(stream: trio.SocketStream, data: bytes = b"ping") -> bool:
    await stream.send_all(data)
    return await receive_exactly(stream, len(data)) == data


async def closed(stream: trio.SocketStream) -> bool:
    """The server closed it: EOF, or a reset (a socket closed with the client's bytes unread sends RST)."""
    try:
        return await receive_until_eof(stream) == b""
    except trio.BrokenResourceError:
        return True


async def refused_with(run, reason: RefusalReason, count: int = 1) -> None:
    """Wait until ``count`` refusals for ``reason`` are counted and published."""
    await run.recorder.wait_for(
        lambda: (
            run.server.totals().refused_by_reason.get(reason, 0) >= count
            and sum(e.reason is reason for e in run.recorder.of(ConnectionRefused)) >= count
        )
    )


async def test_the_headers_client_replaces_the_proxy_and_its_first_bytes_are_echoed() -> None:
    async with running_server(proxy_protocol=True) as run:
        proxy = await connect(run.port)
        # The header and the client's first bytes in one write: not one byte of the client's may be lost.
        await proxy.send_all(v1("TCP4", "192.0.2.7", "127.0.0.1", 51000, run.port) + b"hello")
        assert await receive_exactly(proxy, 5) == b"hello"
        [state] = clients(run)
        proxy_address = proxy.socket.getsockname()
        assert state.peer == ("192.0.2.7", 51000) and state.proxy == proxy_address
        await run.recorder.wait_for(lambda: run.recorder.of(ClientConnected))
        [connected] = run.recorder.of(ClientConnected)
        assert (connected.peer, connected.proxy) == (("192.0.2.7", 51000), proxy_address)
        assert (state.messages_in, state.bytes_in) == (1, 5)  # the header is not the client's data
        v6 = await connect(run.port)
        await v6.send_all(v2("2001:db8::5", 443))
        assert await echoes(v6)
        assert {s.peer for s in clients(run)} == {("192.0.2.7", 51000), ("2001:db8::5", 443)}
        await run.recorder.wait_for(
            lambda: any("any client can claim any address" in n.message for n in run.recorder.of(ServerNotice))
        )
        await proxy.aclose()
        await v6.aclose()


async def test_deny_and_the_per_ip_cap_act_on_the_real_client_not_on_the_proxy() -> None:
    async with running_server(proxy_protocol=True, deny=(parse_network("198.51.100.0/24"),), max_per_ip=1) as run:
        denied = await connect(run.port)
        await denied.send_all(v1("TCP4", "198.51.100.9", "127.0.0.1", 1, 2))
        assert await closed(denied)
        await refused_with(run, RefusalReason.DENIED)
        [refused] = [e for e in run.recorder.of(ConnectionRefused) if e.reason is RefusalReason.DENIED]
        assert refused.peer == ("198.51.100.9", 1)
        first, second = await connect(run.port), await connect(run.port)  # one proxy, two real clients
        await first.send_all(v1("TCP4", "192.0.2.1", "127.0.0.1", 1, 2))
        await second.send_all(v1("TCP4", "192.0.2.2", "127.0.0.1", 1, 2))
        assert await echoes(first) and await echoes(second)
        third = await connect(run.port)
        await third.send_all(v1("TCP4", "192.0.2.1", "127.0.0.1", 3, 2))  # the same client again: over its cap
        assert await closed(third)
        await refused_with(run, RefusalReason.PER_IP_LIMIT)
        for stream in (denied, first, second, third):
            await stream.aclose()


@pytest.mark.parametrize(
    "data",
    [b"hello, no header\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 9\r\n", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"],
)
async def test_a_connection_without_a_valid_header_is_refused_counted_and_said(data: bytes) -> None:
    async with running_server(proxy_protocol=True) as run:
        stream = await connect(run.port)
        await stream.send_all(data)
        assert await closed(stream)
        await refused_with(run, RefusalReason.BAD_PROXY_HEADER)
        await run.recorder.wait_for(
            lambda: any("bad PROXY header refused" in n.message for n in run.recorder.of(ServerNotice))
        )
        assert clients(run) == [] and run.server.totals().clients_total == 0
        await stream.aclose()


async def test_a_header_split_over_many_small_writes_is_read_whole() -> None:
    async with running_server(proxy_protocol=True) as run:
        stream = await connect(run.port)
        for byte in v2("192.0.2.7", 7, tlvs=b"\x05\x00\x10" + b"u" * 16):
            await stream.send_all(bytes([byte]))
            await trio.sleep(0.001)
        assert await echoes(stream)
        assert [s.peer for s in clients(run)] == [("192.0.2.7", 7)]
        await stream.aclose()


async def test_a_header_that_never_ends_is_refused_at_the_timeout_and_counts_toward_max_clients() -> None:
    async with running_server(proxy_protocol=True, proxy_header_timeout=1.0, max_clients=2) as run:
        slow = await connect(run.port)
        await slow.send_all(b"PROXY TCP4 192.0.2.7")  # and nothing more
        other = await connect(run.port)
        await other.send_all(v1("TCP4", "192.0.2.8", "127.0.0.1", 1, 2))
        assert await echoes(other)
        full = await connect(run.port)  # one client and one header in progress: the server is full
        assert await closed(full)
        await refused_with(run, RefusalReason.SERVER_FULL)
        with trio.fail_after(TIMEOUT):
            assert await closed(slow)
        await refused_with(run, RefusalReason.BAD_PROXY_HEADER)
        await run.recorder.wait_for(
            lambda: any("no PROXY header within 1 s" in n.message for n in run.recorder.of(ServerNotice))
        )
        assert await echoes(other)
        for stream in (slow, other, full):
            await stream.aclose()


async def test_only_proxy_from_may_send_a_header_and_a_local_header_is_the_proxy_itself() -> None:
    async with running_server(proxy_protocol=True, proxy_from=(parse_network("127.0.0.2"),)) as run:
        forged = await connect_from("127.0.0.3", run.port)
        await forged.send_all(v1("TCP4", "192.0.2.7", "127.0.0.1", 1, 2))
        assert await closed(forged)
        await refused_with(run, RefusalReason.UNTRUSTED_PROXY)
        check = await connect_from("127.0.0.2", run.port)
        await check.send_all(v2("127.0.0.1", 0, local=True))
        assert await echoes(check)
        [state] = clients(run)
        assert state.peer == state.proxy == check.socket.getsockname()  # a health check: the proxy, as itself
        notices = [n.message for n in run.recorder.of(ServerNotice)]
        assert not any("any client can claim" in n for n in notices)
        await forged.aclose()
        await check.aclose()


async def test_tls_after_the_proxy_header(tmp_path) -> None:
    certificates: Certificates = issue_certificates(tmp_path)
    async with running_server(proxy_protocol=True, tls=certificates.settings()) as run:
        raw = await connect(run.port)
        await raw.send_all(v1("TCP4", "192.0.2.7", "127.0.0.1", 4433, run.port))
        stream = trio.SSLStream(raw, certificates.client_context(), server_hostname="127.0.0.1")
        await stream.do_handshake()
        await stream.send_all(b"secret")
        assert await receive_exactly(stream, 6) == b"secret"  # type: ignore[arg-type]
        [state] = clients(run)
        assert state.peer == ("192.0.2.7", 4433) and state.tls_version is not None
        await stream.aclose()


async def test_the_human_log_names_the_proxy_protocol_and_each_clients_proxy() -> None:
    from tui_echo.headless.log import EventLog, HumanFormat
    from tui_echo.server.config import ServerConfig
    from tui_echo.server.events import ServerListening

    log = EventLog(HumanFormat(), lines_lost=lambda: 0)
    config = ServerConfig(proxy_protocol=True, proxy_from=(parse_network("10.0.0.2"),))
    [listening] = log.handle(ServerListening(addresses=(("127.0.0.1", 9),), at=0.0, config=config))
    assert "(PROXY protocol from 10.0.0.2/32, header timeout 5 s, mode echo" in listening
    [line] = log.handle(ClientConnected(client_id=1, peer=("192.0.2.7", 5), at=0.0, proxy=("10.0.0.2", 40000)))
    assert line.endswith("#1 192.0.2.7:5  connected via proxy 10.0.0.2:40000 (1 now)")


async def test_stopping_does_not_wait_for_a_header_in_progress_nor_count_it_as_bad() -> None:
    with trio.fail_after(TIMEOUT):
        async with running_server(proxy_protocol=True, proxy_header_timeout=600.0) as run:
            slow = await connect(run.port)
            await slow.send_all(b"PROXY TCP4 ")
            while not run.server._admission._starting:  # its task waits for the rest of the header
                await trio.sleep(0.01)
        # running_server stopped the server and waited for it: not for the 600 s timeout
    assert run.server.totals().refused_by_reason == {}
    assert await closed(slow)
    await slow.aclose()
