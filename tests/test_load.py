"""``tui-echo load`` against real servers: exact counts, caught corruption, clear failures."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from .helpers import TIMEOUT
from .process import HeadlessProcess, run_cli, tui_echo_command


def load(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tui_echo_command(), "load", *args], capture_output=True, text=True, timeout=timeout)


def test_load_against_a_real_server_reports_counts_the_server_agrees_with() -> None:
    server = HeadlessProcess("--json", "--framing", "line")
    try:
        done = load(str(server.port), "-c", "20", "-d", "1", "--message", "ping 0123456789\\n", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout)
        ours = result["tui_echo"]
        assert ours["clean"] and ours["connections"] == ours["first_echoes"] == 20
        # Every connection's first echo was checked (how many more in the measured second is the machine's)
        assert ours["bytes_checked"] >= 20 * len(b"ping 0123456789\n")
        assert ours["all_first_echo_s"] is not None
        assert set(result) >= {
            "messages",
            "transfer",
            "rps",
            "latency_min",
            "latency_mean",
            "latency_max",
            "latency_std",
            "latency_cv",
            "latency_percentiles",
        }
        assert [p for p, _ in result["latency_percentiles"]] == [25, 50, 75, 90, 99, 99.99]
        server.wait_for(lambda line: '"clients_now":0' in line and '"disconnected"' in line)
        code, _ = server.stop()
        stopped = json.loads(server.rest()[-1])
        assert code == 0 and stopped["event"] == "stopped"
        # Every byte the load sent reached the server, and every line counted as one message.
        assert stopped["bytes_in"] == ours["bytes_sent"]
        assert stopped["messages_in"] == ours["bytes_sent"] // len(b"ping 0123456789\n")
        assert ours["bytes_checked"] <= stopped["bytes_out"]
    finally:
        server.close()


@pytest.fixture
def headless() -> Iterator[HeadlessProcess]:
    server = HeadlessProcess()
    yield server
    server.close()


def test_the_human_summary_and_worker_processes(headless: HeadlessProcess) -> None:
    done = load(f"127.0.0.1:{headless.port}", "-c", "8", "-d", "1", "--workers", "2", "--size", "1000")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 connections, 1000-byte messages, closed loop" in done.stdout
    assert "0 connect failures, 0 mismatched, 0 early EOF or reset" in done.stdout
    assert "connected:  every connection had its first echo after " in done.stdout
    assert "\nlatency ms: " in done.stdout


class CorruptingServer:
    """Echoes every byte except the one at ``offset`` of each connection, which it flips."""

    def __init__(self, offset: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.offset = offset
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        seen = 0
        with conn:
            while data := conn.recv(65536):
                chunk = bytearray(data)
                if seen <= self.offset < seen + len(chunk):
                    chunk[self.offset - seen] ^= 0xFF
                seen += len(chunk)
                conn.sendall(chunk)


@pytest.fixture
def corrupting() -> Iterator[CorruptingServer]:
    server = CorruptingServer(offset=1000)
    yield server
    server.listener.close()


def test_a_corrupting_server_is_caught_with_the_connection_and_byte_offset(corrupting: CorruptingServer) -> None:
    done = load(str(corrupting.port), "-c", "1", "-d", "1", "--size", "64")
    assert done.returncode == 1
    assert "connection #1: mismatch at byte offset 1000" in done.stdout
    assert "1 mismatched" in done.stdout


def test_a_server_that_goes_away_mid_run_gets_a_clear_summary() -> None:
    server = HeadlessProcess()
    try:
        proc = subprocess.Popen(
            [tui_echo_command(), "load", str(server.port), "-c", "5", "-d", "30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.wait_for_text("(5 now)")
        server.proc.kill()
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 1
        assert "5 early EOF or reset" in out
        assert "every connection was closed by the server" in out
    finally:
        server.close()


def test_nothing_listening_is_a_connect_failure_not_a_hang_nor_a_first_echo() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connects are refused
        done = load(str(port), "-c", "3", "-d", "5")
        as_json = load(str(port), "-c", "3", "-d", "5", "--json")
    assert done.returncode == as_json.returncode == 1
    assert "3 connect failures" in done.stdout and "connection refused" in done.stdout.lower()
    assert "connected:  no connection had an echo, of 3 tried\n" in done.stdout
    assert "first echo after" not in done.stdout
    assert "latency ms: none measured (no echo came back in the measured time)" in done.stdout
    ours = json.loads(as_json.stdout)["tui_echo"]
    assert (ours["first_echoes"], ours["all_first_echo_s"], ours["clean"]) == (0, None, False)


def test_some_connections_refused_says_how_many_had_an_echo() -> None:
    server = HeadlessProcess("--max-clients", "2")  # the third is closed at once: an early EOF, no echo
    try:
        done = load(str(server.port), "-c", "3", "-d", "0.5")
    finally:
        server.close()
    assert done.returncode == 1
    assert "connected:  2 of 3 connections had their first echo, after " in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["x"], "expected [HOST:]PORT"),
        (["70000"], "expected [HOST:]PORT"),
        (["1234", "-c", "0"], "expected a whole number from 1"),
        (["1234", "--rate", "-5"], "expected a rate above 0 such as 10/s (messages a second)"),
        (["1234", "--size", "10", "--message", "hi"], "not allowed with argument"),
        (["1234", "--message", "bad \\q"], "unknown escape \\q"),
        (["1234", "--message", ""], "the message is empty"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    done = run_cli(["load", *args])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
