"""The server's repairs to trio's SSLStream (``tui_echo.server.tls_stream``): the alert after a failed handshake,
session tickets at once, and failed handshakes freed without waiting for a full garbage collection. The first test
fails loudly if a trio upgrade changes the private state they use."""

from __future__ import annotations

import gc
import re
import select
import socket
import ssl
import subprocess
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tui_echo.control.client import Connection
from tui_echo.server import tls_stream

from .helpers import TIMEOUT, connect, receive_until_eof, running_server
from .process import tui_echo_command
from .tls_helpers import Certificates, issue_certificates

HELLO_START = b"\x16\x03\x01\x02\x00"  # the first 5 bytes of a ClientHello: a record header, then nothing


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@pytest.mark.trio
async def test_trio_s_private_state_is_what_the_server_relies_on(certificates: Certificates) -> None:
    """If this fails after a trio upgrade, read tui_echo/server/tls_stream.py and redo what it does."""
    server_side, client_side = trio.socket.socketpair()
    server = trio.SSLStream(trio.SocketStream(server_side), certificates.settings().context, server_side=True)
    client = trio.SSLStream(trio.SocketStream(client_side), certificates.client_context(), server_hostname="localhost")
    assert isinstance(server._outgoing, ssl.MemoryBIO)  # where OpenSSL writes its records, the alerts included
    assert server._handshook._afn.__self__ is server  # the cycle release() breaks
    assert server._delayed_outgoing is None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        await server.do_handshake()
    assert client.version() == "TLSv1.3"
    assert isinstance(server._delayed_outgoing, bytes | bytearray) and server._delayed_outgoing  # the tickets
    tls_stream.release(server)
    assert not hasattr(server, "_handshook")
    await server.transport_stream.aclose()
    await client.transport_stream.aclose()


@pytest.mark.trio
async def test_a_failed_handshake_is_freed_at_once_not_at_the_next_full_collection(certificates: Certificates) -> None:
    streams: weakref.WeakSet[trio.SSLStream[trio.SocketStream]] = weakref.WeakSet()
    created = trio.SSLStream.__init__

    def counted(self: trio.SSLStream[trio.SocketStream], *args: object, **kwargs: object) -> None:
        created(self, *args, **kwargs)  # type: ignore[arg-type]
        streams.add(self)

    gc.disable()  # only reference counting frees anything in this test
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(trio.SSLStream, "__init__", counted)
            async with running_server(tls=certificates.settings(handshake_timeout=0.2)) as run:
                for garbage in (HELLO_START, b"GET / HTTP/1.0\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
                    client = await connect(run.port)
                    await client.send_all(garbage)  # stalls until the timeout, or fails at once
                    await receive_until_eof(client)  # the alert, if any, then EOF: the server is done with it
                    await client.aclose()
                await run.recorder.wait_for(lambda: run.server.totals().tls_handshakes_failed == 3)
                await trio.sleep(0)  # let the server's tasks finish their step
                assert len(streams) == 0
    finally:
        gc.enable()


def tls_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT@SECLEVEL=0")  # this OpenSSL allows TLS 1.0 and 1.1 only at level 0
    return context


@pytest.mark.trio
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")  # old on purpose
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLS 1.0", "TLS 1.1"])
async def test_an_old_tls_client_gets_the_protocol_version_alert(
    certificates: Certificates, version: ssl.TLSVersion
) -> None:
    async with running_server(tls=certificates.settings()) as run:

        def handshake() -> str:
            with socket.create_connection(("127.0.0.1", run.port), timeout=TIMEOUT) as raw:
                try:
                    tls_client(version).wrap_socket(raw).close()
                except ssl.SSLError as exc:
                    return str(exc.reason)
            return "no error"

        assert await trio.to_thread.run_sync(handshake) == "TLSV1_ALERT_PROTOCOL_VERSION"  # not "unexpected eof"
        await run.recorder.wait_for(lambda: run.server.totals().tls_handshakes_failed == 1)


@pytest.mark.trio
async def test_after_a_tls_1_3_handshake_the_server_speaks_first(certificates: Certificates) -> None:
    """Its session tickets follow the client's Finished at once, so a client with Nagle on is never held up waiting
    for the server's delayed ACK (about 40 ms) before its first message. TLS 1.2 needs none: the server's Finished
    comes last."""
    async with running_server(tls=certificates.settings()) as run:

        def first_echo() -> tuple[bool, bytes]:
            raw = socket.create_connection(("127.0.0.1", run.port), timeout=TIMEOUT)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)  # Nagle on, as most clients leave it
            with certificates.client_context().wrap_socket(raw, server_hostname="localhost") as client:
                assert client.version() == "TLSv1.3"
                readable, _, _ = select.select([client], [], [], TIMEOUT)  # the client has sent nothing yet
                client.sendall(b"hello\n")
                return bool(readable), client.recv(100)

        assert await trio.to_thread.run_sync(first_echo) == (True, b"hello\n")


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1)) / 1024


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    control = tmp_path / "control.sock"
    process = subprocess.Popen(
        [tui_echo_command(), "--headless", "--port", "0", "--tls-self-signed", "--tls-handshake-timeout", "0.5"]
        + ["--control", str(control)],
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not control.exists():
            assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
            time.sleep(0.05)
        connection = Connection.open(control, events=False, role="list")
        connection.close()
        yield process, connection.server.addresses[0][1], control
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def failed_handshakes(control: Path) -> int:
    connection = Connection.open(control, events=False, role="list")
    connection.close()
    return int(connection.snapshot["totals"]["tls_handshakes_failed"])


def fail_handshakes(port: int, control: Path, count: int) -> None:
    """``count`` failed handshakes at once: half stall after 5 bytes of a ClientHello until the server's timeout,
    half close right after them. Returns once the server has counted them all."""
    before = failed_handshakes(control)
    stalled = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.sendall(HELLO_START)
        if n % 2:
            sock.close()
        else:
            stalled.append(sock)
    deadline = time.monotonic() + TIMEOUT
    while failed_handshakes(control) < before + count:
        assert time.monotonic() < deadline, "the server did not count every failed handshake"
        time.sleep(0.05)
    for sock in stalled:
        sock.close()


@pytest.mark.heavy  # 1,000 handshakes, 500 at once
def test_1000_failed_handshakes_leave_the_server_s_memory_where_it_was(
    tls_server: tuple[subprocess.Popen[str], int, Path],
) -> None:
    """A real server process, Python's garbage collector left as it is. Before the fix each failed handshake kept
    about 52 KiB until a full collection: 1,000 of them, about 50 MiB."""
    process, port, control = tls_server
    for _ in range(2):  # warm up: the allocator's pools, at the same number of handshakes at once
        fail_handshakes(port, control, 500)
    before = rss_mib(process.pid)
    for _ in range(2):
        fail_handshakes(port, control, 500)
    after = rss_mib(process.pid)
    assert after - before < 8, f"RSS {before:.1f} MiB -> {after:.1f} MiB after 1,000 failed handshakes"
