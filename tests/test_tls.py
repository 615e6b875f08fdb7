"""TLS echo: the server against real TLS clients (Python's ssl through trio) on 127.0.0.1, certificates from trustme."""

from __future__ import annotations

import contextlib
import re
import socket
import pytest
import trio

from tui_echo.server.commands import Kick, SendTo
from tui_echo.server.config import Framing
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    DisconnectReason,
    ServerNotice,
    ServerStopped,
)
from tui_echo.server.tls import HANDSHAKE_TIMEOUT_SECONDS

from .helpers import TIMEOUT, connect, receive_exactly, receive_until_eof, running_server
from .tls_helpers import Certificates, connect_tls, issue_certificates

pytestmark = pytest.mark.trio


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("tls"))


def handshake_notices(run) -> list[str]:
    return [e.message for e in run.recorder.of(ServerNotice) if "TLS handshake" in e.message]


async def test_100_kb_echo_over_tls_is_byte_exact_and_counts_plaintext_bytes(certificates: Certificates) -> None:
    payload = bytes(range(256)) * 400  # 100 KiB, every byte value
    async with running_server(tls=certificates.settings()) as run:
        client = await connect_tls(run.port, certificates.client_context())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, payload)
            assert await receive_exactly(client, len(payload)) == payload
        state = next(run.server.clients())
        assert (state.bytes_in, state.bytes_out) == (len(payload), len(payload))
        assert state.tls_version == client.version() and state.tls_cipher == client.cipher()[0]
        (connected,) = run.recorder.of(ClientConnected)
        assert connected.tls_version == client.version() == "TLSv1.3"
        assert connected.tls_cipher == client.cipher()[0]
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
        (gone,) = run.recorder.of(ClientDisconnected)
        assert gone.reason is DisconnectReason.CLOSED_BY_PEER and gone.bytes_out == len(payload)


async def test_line_framing_counts_lines_over_tls(certificates: Certificates) -> None:
    async with running_server(tls=certificates.settings(), framing=Framing.LINE) as run:
        client = await connect_tls(run.port, certificates.client_context())
        for piece in (b"one\ntw", b"o\n", b"three\nfour"):
            await client.send_all(piece)
            assert await receive_exactly(client, len(piece)) == piece
        assert next(run.server.clients()).messages_in == 3  # "four" has no newline yet


async def test_operator_sends_never_interleave_with_the_echo_and_kick_closes_with_close_notify(
    certificates: Certificates,
) -> None:
    payload = b"e" * 300_000
    operator = b"<operator>" * 1000
    async with running_server(tls=certificates.settings()) as run:
        client = await connect_tls(run.port, certificates.client_context())
        received = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, payload)
            received += await receive_exactly(client, 1000)  # the echo is under way
            run.server.command_nowait(SendTo(1, operator))
            received += await receive_exactly(client, len(payload) + len(operator) - 1000)
        assert operator in received  # in one piece
        assert received.replace(operator, b"") == payload
        state = next(run.server.clients())
        assert state.bytes_out == len(payload) + len(operator)
        run.server.command_nowait(Kick(1))
        # trio's client (https_compatible=False) raises on an EOF without close_notify: this EOF is clean.
        assert await receive_until_eof(client) == b""
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
        assert run.recorder.of(ClientDisconnected)[0].reason is DisconnectReason.KICKED


async def test_a_plaintext_client_fails_its_handshake_and_tls_clients_carry_on(certificates: Certificates) -> None:
    async with running_server(tls=certificates.settings()) as run:
        good = await connect_tls(run.port, certificates.client_context())
        plain = await connect(run.port)
        await plain.send_all(b"hello, plain text\n")
        assert await receive_until_eof(plain) == b""  # closed: it never became a client
        await run.recorder.wait_for(lambda: run.server.totals().tls_handshakes_failed == 1)
        await run.recorder.wait_for(lambda: handshake_notices(run))
        assert handshake_notices(run) == [
            f"TLS handshake failed: 127.0.0.1:{plain.socket.getsockname()[1]}: wrong version number"
        ]
        await good.send_all(b"still served")
        assert await receive_exactly(good, 12) == b"still served"
        assert len(run.recorder.of(ClientConnected)) == 1
        assert run.server.totals().clients_total == 1


async def test_a_silent_client_times_out_and_does_not_hold_up_accept(
    certificates: Certificates, autojump_clock: trio.abc.Clock
) -> None:
    async with running_server(tls=certificates.settings()) as run:
        started = trio.current_time()
        silent = await connect(run.port)  # connects, never says hello
        good = await connect_tls(run.port, certificates.client_context())
        await good.send_all(b"hi")
        assert await receive_exactly(good, 2) == b"hi"
        assert run.server.totals().tls_handshakes_failed == 0
        with trio.fail_after(HANDSHAKE_TIMEOUT_SECONDS + 1):  # receive_until_eof's own limit is no longer
            assert await silent.receive_some() == b""
        assert trio.current_time() - started >= HANDSHAKE_TIMEOUT_SECONDS
        await run.recorder.wait_for(lambda: handshake_notices(run))
        assert handshake_notices(run)[0].endswith(f"no handshake within {HANDSHAKE_TIMEOUT_SECONDS:g} s")
        assert run.server.totals().tls_handshakes_failed == 1


async def test_the_handshake_timeout_is_a_setting(certificates: Certificates) -> None:
    async with running_server(tls=certificates.settings(handshake_timeout=0.2)) as run:
        silent = await connect(run.port)
        with trio.fail_after(TIMEOUT):
            assert await receive_until_eof(silent) == b""
        await run.recorder.wait_for(lambda: handshake_notices(run))
        assert handshake_notices(run)[0].endswith("no handshake within 0.2 s")


async def test_a_flood_of_failed_handshakes_is_counted_and_summarised(
    certificates: Certificates, autojump_clock: trio.abc.Clock
) -> None:
    flood = 60
    async with running_server(tls=certificates.settings()) as run:
        for _ in range(flood):
            scanner = await connect(run.port)
            await scanner.send_all(b"\x00" * 16)
            await scanner.aclose()
        await run.recorder.wait_for(lambda: run.server.totals().tls_handshakes_failed == flood)
    notices = handshake_notices(run)
    assert 2 <= len(notices) <= 3, notices  # the first at once, the rest as counts, never one each
    assert sum(int(m.group(1)) if (m := re.match(r"(\d+) TLS handshakes", n)) else 1 for n in notices) == flood
    assert f"{flood} in all" in notices[-1]
    (stopped,) = run.recorder.of(ServerStopped)
    assert stopped.totals.tls_handshakes_failed == flood


async def test_idle_timeout_applies_to_tls_clients(certificates: Certificates, autojump_clock: trio.abc.Clock) -> None:
    async with running_server(tls=certificates.settings(), idle_timeout=5.0) as run:
        client = await connect_tls(run.port, certificates.client_context())
        assert await receive_until_eof(client) == b""
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
        assert run.recorder.of(ClientDisconnected)[0].reason is DisconnectReason.IDLE_TIMEOUT


async def test_stopping_does_not_wait_for_handshakes_in_progress(certificates: Certificates) -> None:
    with trio.fail_after(HANDSHAKE_TIMEOUT_SECONDS / 2):
        async with running_server(tls=certificates.settings()) as run:
            silent = await connect(run.port)
            good = await connect_tls(run.port, certificates.client_context())
            await good.send_all(b"x")
            assert await receive_exactly(good, 1) == b"x"
        assert await receive_until_eof(silent) == b""
        assert await receive_until_eof(good) == b""


async def test_a_tls_client_that_never_reads_is_cut_off_as_a_slow_reader(certificates: Certificates) -> None:
    async with running_server(tls=certificates.settings(), write_timeout=0.5, idle_timeout=0.3) as run:
        hog = await connect_tls(run.port, certificates.client_context())
        hog.transport_stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

        async def flood() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while True:
                    await hog.send_all(b"x" * 65536)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
            nursery.cancel_scope.cancel()
        (gone,) = run.recorder.of(ClientDisconnected)
        assert gone.reason is DisconnectReason.SLOW_READER  # busy sending, so never "idle timeout"
