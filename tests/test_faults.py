"""Faults against real client sockets on 127.0.0.1, each measured from the client's side.

Lower bounds are strict (a fault never acts early or fast); upper bounds are loose (a slow machine only makes
things later). The chances are seeded (``fault_seed``), so their counts are exact where the test can know them.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest
import trio

from tui_echo.server.commands import SetFaults
from tui_echo.server.events import ClientDisconnected, DataCorrupted, DisconnectReason, FaultChanged
from tui_echo.server.fault_transport import FaultTransport
from tui_echo.server.faults import parse_faults
from tui_echo.server.transport import PlainTransport

from .helpers import TIMEOUT, Running, connect, disconnect_of, receive_exactly, running_server
from .tls_helpers import Certificates, connect_tls, issue_certificates

pytestmark = pytest.mark.trio

SLACK = 0.005  # trio's clock and the kernel's: a deadline met a few ms early by rounding is still met


def faults(spec: str) -> dict[str, object]:
    return {"fault": parse_faults(spec)}


async def round_trip(client: trio.SocketStream, message: bytes) -> float:
    started = trio.current_time()
    await client.send_all(message)
    assert await receive_exactly(client, len(message)) == message
    return trio.current_time() - started


def connection(run: Running, client_id: int = 1) -> object:
    return run.server._registry.connections[client_id]


async def wait_until(condition: object, timeout: float = TIMEOUT) -> None:
    with trio.fail_after(timeout):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.01)


async def test_latency_no_echo_comes_earlier_than_set_and_the_median_is_not_far_above() -> None:
    async with running_server(**faults("latency=200ms")) as run:
        client = await connect(run.port)
        times = [await round_trip(client, b"ping %d\n" % n) for n in range(8)]
        assert min(times) >= 0.2 - SLACK
        assert statistics.median(times) < 0.2 + 1.0
        await client.aclose()


async def test_latency_delays_each_echo_by_itself_while_the_server_keeps_reading() -> None:
    async with running_server(**faults("latency=300ms")) as run:
        client = await connect(run.port)
        sent: list[float] = []
        for n in range(5):  # five messages 50 ms apart: each echo 300 ms after its own message, not after the last
            sent.append(trio.current_time())
            await client.send_all(b"%d" % n)
            await trio.sleep(0.05)
        got = bytearray()
        arrived: list[tuple[float, int]] = []
        with trio.fail_after(TIMEOUT):
            while len(got) < 5:
                got += await client.receive_some(10)
                arrived.append((trio.current_time(), len(got)))
        assert bytes(got) == b"01234"
        for at, count in arrived:  # nothing arrived before the latency of the last message it includes
            assert at >= sent[count - 1] + 0.3 - SLACK
        assert arrived[-1][0] - sent[0] < 0.3 + 0.2 + 1.0  # in flight together, not one after another (5 x 300 ms)
        await client.aclose()


async def test_bandwidth_is_never_faster_than_set() -> None:
    rate = 10 * 1024
    async with running_server(**faults("bandwidth=10KiB/s")) as run:
        client = await connect(run.port)
        payload = bytes(range(256)) * 100  # 25 600 B: 2.5 s at the rate
        started = trio.current_time()
        await client.send_all(payload)
        got = bytearray()
        with trio.fail_after(TIMEOUT):
            while len(got) < len(payload):
                got += await client.receive_some(65536)
                elapsed = trio.current_time() - started
                assert len(got) <= rate * elapsed + SLACK * rate  # never ahead of the rate, at any moment
        assert bytes(got) == payload
        assert trio.current_time() - started >= len(payload) / rate - SLACK
        await client.aclose()


async def test_slicer_pieces_arrive_as_separate_receives_with_gaps() -> None:
    async with running_server(**faults("slicer=16B/30ms")) as run:
        client = await connect(run.port)
        payload = b"x" * 16 * 6
        sent_at = trio.current_time()
        await client.send_all(payload)
        pieces: list[tuple[float, int]] = []
        with trio.fail_after(TIMEOUT):
            while sum(size for _, size in pieces) < len(payload):
                piece = await client.receive_some(65536)
                pieces.append((trio.current_time(), len(piece)))
        assert [size for _, size in pieces] == [16] * 6  # each piece a receive of its own
        for nth, (at, _) in enumerate(pieces):  # the nth piece no earlier than n gaps after the message
            assert at - sent_at >= nth * 0.03 - SLACK
        await client.aclose()


async def test_stall_blocks_the_clients_send_once_the_windows_fill_and_it_resumes_after() -> None:
    async with running_server(**faults("stall=2s")) as run:
        client = await connect(run.port)
        started = trio.current_time()
        chunk = b"s" * 65536
        sent = 0
        with trio.move_on_after(
            1.0
        ) as blocked:  # the server reads nothing: the kernel's buffers fill, then send blocks
            while True:
                await client.send_all(chunk)
                sent += len(chunk)
        assert blocked.cancelled_caught
        read = run.server._registry.connections[1].state.bytes_in
        assert read == 0 or trio.current_time() - started >= 2.0 - SLACK  # nothing read while the stall holds
        # A send cancelled midway may have sent part of its chunk: read until the echo stops coming
        got = await receive_exactly(client, sent)
        assert trio.current_time() - started >= 2.0 - SLACK  # nothing came back before the stall ended
        assert got == b"s" * sent
        await client.aclose()


async def test_reset_after_a_size_gives_econnreset_after_exactly_those_bytes() -> None:
    async with running_server(**faults("reset-after=4KiB")) as run:
        sock = trio.socket.socket()
        await sock.connect(("127.0.0.1", run.port))
        await sock.send(b"r" * 10_000)
        got = bytearray()
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionResetError):
            while True:
                data = await sock.recv(65536)
                assert data, "EOF instead of a reset"
                got += data
        assert len(got) == 4096
        sock.close()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        gone = disconnect_of(run, 1)
        assert gone is not None and gone.reason is DisconnectReason.FAULT and gone.bytes_out == 4096


async def test_reset_after_0_resets_right_after_the_accept() -> None:
    async with running_server(**faults("reset-after=0")) as run:
        sock = trio.socket.socket()
        await sock.connect(("127.0.0.1", run.port))
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionResetError):
            assert await sock.recv(10) != b""
        sock.close()


async def test_close_after_gives_eof_after_exactly_the_given_bytes() -> None:
    async with running_server(**faults("close-after=1000")) as run:
        client = await connect(run.port)
        await client.send_all(b"c" * 5000)
        got = bytearray()
        with trio.fail_after(TIMEOUT):
            while data := await client.receive_some(65536):
                got += data
        assert len(got) == 1000
        await client.aclose()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))


async def test_corrupted_offsets_seen_by_the_client_match_the_servers_record_exactly() -> None:
    async with running_server(**faults("corrupt=0.004"), fault_seed=7) as run:
        client = await connect(run.port)
        payload = random.Random(1).randbytes(20_000)
        await client.send_all(payload)
        got = await receive_exactly(client, len(payload))
        seen = [n for n, (a, b) in enumerate(zip(payload, got, strict=True)) if a != b]
        assert all(got[n] == payload[n] ^ 0xFF for n in seen)
        state = run.server._registry.connections[1].state
        assert len(seen) == state.fault_corrupted > 0
        assert state.bytes_out == len(payload)  # a corrupted byte is still a byte sent
        await run.recorder.wait_for(lambda: sum(e.corrupted for e in run.recorder.of(DataCorrupted)) == len(seen))
        recorded = [offset for event in run.recorder.of(DataCorrupted) for offset in event.offsets]
        assert recorded == seen
        await client.aclose()


async def test_dropped_messages_are_counted_exactly_and_never_sent() -> None:
    async with running_server(**faults("drop=0.3"), fault_seed=3) as run:
        client = await connect(run.port)
        await wait_until(lambda: 1 in run.server._registry.connections)
        state = run.server._registry.connections[1].state
        dropped = 0
        for n in range(60):  # one message at a time: it comes back, or the server counts it dropped
            before = state.fault_dropped
            message = b"message %02d\n" % n
            await client.send_all(message)
            got = bytearray()
            with trio.fail_after(TIMEOUT):
                while state.fault_dropped == before and len(got) < len(message):
                    with trio.move_on_after(0.01):
                        got += await client.receive_some(len(message) - len(got))
            if state.fault_dropped > before:
                assert not got
                dropped += 1
            else:
                assert got == message
        assert dropped == state.fault_dropped
        assert 5 <= dropped <= 35
        assert state.bytes_out == (60 - dropped) * len(b"message 00\n")
        await client.aclose()


async def test_toxicity_gives_the_fault_to_the_seeded_share_of_200_connections() -> None:
    async with running_server(**faults("latency=1ms,toxicity=0.5"), fault_seed=11) as run:
        clients = [await connect(run.port) for _ in range(200)]
        await run.recorder.wait_for(lambda: len(run.server._registry.connections) == 200)
        faulted = {event.client_id for event in run.recorder.of(FaultChanged)}
        assert 60 <= len(faulted) <= 140
        expected = {n for n in range(1, 201) if random.Random(f"11/{n}").random() < 0.5}  # the seeded draw
        assert faulted == expected
        for client in clients:
            await client.aclose()


async def test_a_fault_set_on_a_live_client_applies_at_its_next_message_and_clearing_it_moves_it_back() -> None:
    async with running_server() as run:
        client = await connect(run.port)
        await round_trip(client, b"plain\n")
        conn = run.server._registry.connections[1]
        assert type(conn.transport) is PlainTransport
        assert run.server.command_nowait(SetFaults(1, parse_faults("latency=250ms,jitter=50ms")))
        await run.recorder.wait_for(lambda: run.recorder.of(FaultChanged))
        assert conn.state.fault == "latency=250ms,jitter=50ms"
        assert await round_trip(client, b"late\n") >= 0.2 - SLACK
        assert type(conn.transport) is FaultTransport
        assert run.server.command_nowait(SetFaults(1, None))
        await run.recorder.wait_for(lambda: len(run.recorder.of(FaultChanged)) == 2)
        assert conn.state.fault == "" and run.recorder.of(FaultChanged)[1].faults == ""
        for _ in range(3):  # the next message goes through the fault-aware loop, which hands it back
            await round_trip(client, b"plain again\n")
        assert type(conn.transport) is PlainTransport
        for _ in range(200):  # set and cleared many times: the loops hand over, they never nest
            conn_faults = parse_faults("drop=0.000001")
            run.server.command_nowait(SetFaults(1, conn_faults))
            await round_trip(client, b"x")
            run.server.command_nowait(SetFaults(1, None))
            await round_trip(client, b"y")
        await client.aclose()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        gone = disconnect_of(run, 1)
        assert gone is not None and gone.reason is DisconnectReason.CLOSED_BY_PEER


async def test_timeout_reads_and_drops_and_holds_the_connection_open_past_the_idle_timeout() -> None:
    async with running_server(idle_timeout=0.3, **faults("timeout")) as run:
        client = await connect(run.port)
        await client.send_all(b"into the void\n")
        with trio.move_on_after(1.0):
            assert await client.receive_some(100) == b"", "a timeout fault sent something"
        conn = run.server._registry.connections[1]
        assert conn.state.bytes_in == 14 and conn.state.bytes_out == 0 and conn.state.fault_dropped == 1
        assert not run.recorder.of(ClientDisconnected)  # 1 s idle, with a 0.3 s idle timeout: exempt while faulted
        run.server.command_nowait(SetFaults(1, None))
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))  # cleared: idle again, and timed out
        gone = disconnect_of(run, 1)
        assert gone is not None and gone.reason is DisconnectReason.IDLE_TIMEOUT
        await client.aclose()


async def test_a_stalled_client_is_exempt_from_the_write_timeout() -> None:
    async with running_server(write_timeout=0.2, **faults("stall")) as run:
        client = await connect(run.port)
        await wait_until(lambda: 1 in run.server._registry.connections)
        conn = run.server._registry.connections[1]
        assert conn.write_timeout.seconds == float("inf")
        run.server.command_nowait(SetFaults(1, None))
        await wait_until(lambda: conn.write_timeout.seconds == 0.2)
        await client.aclose()


async def test_an_unknown_client_or_nothing_to_clear_is_a_notice_and_nothing_changes() -> None:
    async with running_server() as run:
        client = await connect(run.port)
        await round_trip(client, b"a")
        run.server.command_nowait(SetFaults(99, parse_faults("stall")))
        run.server.command_nowait(SetFaults(1, None))
        await run.recorder.wait_for(lambda: len(run.recorder.events) >= 4)
        from tui_echo.server.events import ServerNotice

        await run.recorder.wait_for(lambda: len(run.recorder.of(ServerNotice)) == 2)
        messages = [notice.message for notice in run.recorder.of(ServerNotice)]
        assert messages == ["fault: no client #99", "fault: client #1 has no faults to clear"]
        assert not run.recorder.of(FaultChanged)
        await client.aclose()


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return issue_certificates(tmp_path)


async def test_on_tls_faults_act_on_the_application_bytes_before_encryption(certificates: Certificates) -> None:
    async with running_server(tls=certificates.settings(), **faults("corrupt=1.0,latency=200ms")) as run:
        client = await connect_tls(run.port, certificates.client_context())
        started = trio.current_time()
        await client.send_all(b"plain text")
        # Every plaintext byte flipped, and the record still decrypts: corrupted before encryption
        assert await receive_exactly(client, 10) == bytes(byte ^ 0xFF for byte in b"plain text")
        assert trio.current_time() - started >= 0.2 - SLACK
        state = run.server._registry.connections[1].state
        await wait_until(lambda: state.bytes_out == 10)  # counted once the write returned, maybe after it arrived
        assert state.fault_corrupted == 10
        run.server.command_nowait(SetFaults(1, parse_faults("reset-after=0")))
        await client.send_all(b"x")
        with trio.fail_after(TIMEOUT), pytest.raises(trio.BrokenResourceError):
            await client.receive_some(10)


@pytest.mark.parametrize("mode", ["rules", "chat"])
async def test_a_fault_set_live_applies_in_the_other_modes_too(mode: str) -> None:
    from tui_echo.server.config import Framing, Mode
    from tui_echo.server.rules import parse_rule_option

    settings: dict[str, object] = (
        {"rules": (parse_rule_option("PING => PONG\\n", 1, 1),), "framing": Framing.LINE}
        if mode == "rules"
        else {"mode": Mode.CHAT}
    )
    async with running_server(**settings) as run:
        client = await connect(run.port)
        other = await connect(run.port) if mode == "chat" else None
        await wait_until(lambda: len(run.server._registry.connections) == (2 if other else 1))
        run.server.command_nowait(SetFaults(1, parse_faults("drop=1")))
        await run.recorder.wait_for(lambda: run.recorder.of(FaultChanged))
        state = run.server._registry.connections[1].state
        if other is None:
            await client.send_all(b"PING\n")  # the reply is dropped
        else:
            await other.send_all(b"to the others\n")  # its delivery to #1 is dropped
        await wait_until(lambda: state.fault_dropped == 1)
        run.server.command_nowait(SetFaults(1, None))
        await run.recorder.wait_for(lambda: len(run.recorder.of(FaultChanged)) == 2)
        if other is None:
            assert await round_trip(client, b"echoed\n") >= 0
            await client.send_all(b"PING\n")
            assert await receive_exactly(client, 5) == b"PONG\n"
        else:
            await other.send_all(b"again\n")
            got = bytearray()
            with trio.fail_after(TIMEOUT):
                while not got.endswith(b"<#2> again\n"):
                    got += await client.receive_some(1000)
            assert b"to the others" not in got
        await client.aclose()
        if other is not None:
            await other.aclose()


async def test_a_timed_reset_comes_no_earlier_than_set_and_limit_data_closes_cleanly() -> None:
    async with running_server(**faults("reset-after=400ms")) as run:
        sock = trio.socket.socket()
        started = trio.current_time()
        await sock.connect(("127.0.0.1", run.port))
        await sock.send(b"hi")
        assert await sock.recv(10) == b"hi"
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionResetError):
            await sock.recv(10)
        assert trio.current_time() - started >= 0.4 - SLACK
        sock.close()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        gone = disconnect_of(run, 1)
        assert gone is not None and gone.why == "fault: reset by fault after 0.4 s"
    async with running_server(**faults("limit-data=10")) as run:
        client = await connect(run.port)
        await client.send_all(b"0123456789abcdef")
        got = bytearray()
        with trio.fail_after(TIMEOUT):
            while data := await client.receive_some(100):
                got += data
        assert bytes(got) == b"0123456789"  # then EOF, not a reset
        await client.aclose()


async def test_slow_close_delays_the_servers_fin_after_the_client_closes() -> None:
    async with running_server(**faults("slow-close=500ms")) as run:
        client = await connect(run.port)
        await round_trip(client, b"bye")
        closed = trio.current_time()
        await client.send_eof()
        with trio.fail_after(TIMEOUT):
            assert await client.receive_some(10) == b""  # the server's FIN
        assert trio.current_time() - closed >= 0.5 - SLACK
        await client.aclose()


async def test_a_reset_set_on_an_idle_client_resets_it_at_once() -> None:
    async with running_server() as run:
        sock = trio.socket.socket()
        await sock.connect(("127.0.0.1", run.port))
        await sock.send(b"hi")
        assert await sock.recv(10) == b"hi"
        run.server.command_nowait(SetFaults(1, parse_faults("reset")))  # it sends nothing more
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionResetError):
            await sock.recv(10)
        sock.close()
        await run.recorder.wait_for(lambda: disconnect_of(run, 1))
        gone = disconnect_of(run, 1)
        assert gone is not None and gone.reason is DisconnectReason.FAULT
