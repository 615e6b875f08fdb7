"""``tui-echo load --tls`` and ``--pattern chat`` against real servers: counts the server agrees with, caught faults."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from .process import HeadlessProcess, run_cli
from .test_load import load
from .tls_helpers import Certificates, issue_certificates

LINE_BYTES = 64  # tui-echo load's default --size: every chat line it says is this long


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def headless() -> Iterator[type[HeadlessProcess]]:
    started: list[HeadlessProcess] = []

    class Started(HeadlessProcess):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Started
    for process in started:
        process.close()


def stopped_record(server: HeadlessProcess) -> dict[str, object]:
    code, _ = server.stop()
    record: dict[str, object] = json.loads(server.rest()[-1])
    assert code == 0 and record["event"] == "stopped"
    return record


def test_tls_load_trusting_a_ca_file_sends_what_the_server_counts(
    headless: type[HeadlessProcess], certificates: Certificates
) -> None:
    server = headless("--json", "--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key))
    done = load(str(server.port), "-c", "200", "-d", "1", "--tls-ca", str(certificates.ca_cert), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    ours = json.loads(done.stdout)["tui_echo"]
    assert ours["clean"] and ours["connections"] == 200 and ours["mode"] == "closed loop, 1 in flight, over TLS"
    assert json.loads(done.stdout)["messages"] > 0
    server.wait_for(lambda line: '"clients_now":0' in line and '"disconnected"' in line)
    stopped = stopped_record(server)
    assert stopped["tls_handshakes_failed"] == 0
    assert stopped["bytes_in"] == ours["bytes_sent"]  # TLS counts plaintext: every byte said arrived
    assert ours["bytes_checked"] <= stopped["bytes_out"]  # type: ignore[operator]


def test_a_fingerprint_pin_lets_only_that_certificate_hear_anything(headless: type[HeadlessProcess]) -> None:
    server = headless("--json", "--tls-self-signed")
    pin = json.loads(server.first_line)["tls_fingerprint"]
    right = load(str(server.port), "-c", "3", "-d", "1", "--tls-fingerprint", pin, "--json")
    assert right.returncode == 0, right.stdout + right.stderr
    sent = json.loads(right.stdout)["tui_echo"]["bytes_sent"]

    wrong_pin = ("00" if not pin.startswith("00") else "11") + pin[2:]
    wrong = load(str(server.port), "-c", "3", "-d", "1", "--tls-fingerprint", wrong_pin.replace(":", "").lower())
    assert wrong.returncode == 1
    assert "3 connect failures" in wrong.stdout
    assert f"connection #1: connect failed: TLS: the server's certificate has SHA-256 {pin}, not the pinned" in (
        wrong.stdout
    )
    server.wait_for_text('"clients_now":0')
    assert stopped_record(server)["bytes_in"] == sent  # the pinned-out runs sent nothing


def test_tls_that_cannot_work_is_a_clear_failure_not_a_hang(headless: type[HeadlessProcess]) -> None:
    tls_server = headless("--tls-self-signed")
    untrusted = load(str(tls_server.port), "-c", "2", "-d", "1", "--tls")
    assert untrusted.returncode == 1
    assert "connect failed: TLS: the server's certificate is not trusted (self-signed certificate)" in untrusted.stdout

    plain_server = headless()
    plain = load(str(plain_server.port), "-c", "2", "-d", "1", "--tls-insecure")
    assert plain.returncode == 1
    assert "2 connect failures" in plain.stdout and "(does the server speak TLS?)" in plain.stdout


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_chat_load_against_a_real_chat_server(headless: type[HeadlessProcess], tls: bool) -> None:
    connections = 200
    server = headless("--json", "--mode", "chat", *(["--tls-self-signed"] if tls else []))
    done = load(
        str(server.port), "-c", str(connections), "-d", "1", "--pattern", "chat", "--json",
        *(["--tls-insecure"] if tls else []),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    ours = result["tui_echo"]
    assert ours["clean"] and ours["pattern"] == "chat" and ours["missed"] == 0
    assert ours["lines"] > 0 and result["messages"] > 0
    assert ours["first_echoes"] == connections and ours["all_first_echo_s"] is not None  # every first line went round
    assert ours["server_lines"] >= connections * (connections - 1) // 2  # every join, to those already in
    server.wait_for(lambda line: '"clients_now":0' in line and '"disconnected"' in line)
    stopped = stopped_record(server)
    # Every line said reached the server, as one message each.
    assert stopped["bytes_in"] == ours["bytes_sent"]
    assert stopped["messages_in"] == ours["bytes_sent"] // LINE_BYTES


class HandmadeChatServer:
    """A chat server written here, speaking as ``tui-echo --mode chat`` does, that spoils one delivery.

    ``spoil`` is "change" (one byte of the ``at``-th delivery is changed) or "drop" (it is never sent).
    """

    def __init__(self, spoil: str, at: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.spoil, self.at = spoil, at
        self.clients: dict[int, socket.socket] = {}
        self.lock = threading.Lock()
        self.deliveries = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one small delivery at a time, at once
            number += 1
            with self.lock:
                for other in self.clients.values():
                    other.sendall(b"* #%d joined from %s:%d\n" % (number, peer[0].encode(), peer[1]))
                self.clients[number] = conn
            threading.Thread(target=self._relay, args=(number, conn), daemon=True).start()

    def _relay(self, number: int, conn: socket.socket) -> None:
        partial = b""
        with contextlib.suppress(OSError):  # the load client resets its connections at the end
            while data := conn.recv(65536):
                *lines, partial = (partial + data).split(b"\n")
                for line in lines:
                    with self.lock:
                        for other_number, other in self.clients.items():
                            if other_number != number:
                                self._deliver(other, b"<#%d> %s\n" % (number, line))
        with self.lock:
            del self.clients[number]

    def _deliver(self, conn: socket.socket, delivery: bytes) -> None:
        self.deliveries += 1
        if self.deliveries == self.at:
            if self.spoil == "drop":
                return
            delivery = delivery[:-2] + b"?\n"  # the last byte before the newline
        conn.sendall(delivery)

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for conn in self.clients.values():
                conn.close()


@pytest.fixture
def handmade() -> Iterator[type[HandmadeChatServer]]:
    started: list[HandmadeChatServer] = []

    class Started(HandmadeChatServer):
        def __init__(self, spoil: str, at: int) -> None:
            super().__init__(spoil, at)
            started.append(self)

    yield Started
    for server in started:
        server.close()


def test_a_handmade_chat_server_passes_and_a_changed_byte_is_caught(handmade: type[HandmadeChatServer]) -> None:
    fine = handmade("change", at=-1)
    done = load(str(fine.port), "-c", "4", "-d", "1", "--pattern", "chat")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 connections in a chat, 64-byte lines, closed loop, 1 line out each" in done.stdout
    assert "lines said reached all 3 others" in done.stdout and "6 lines of its own" in done.stdout

    spoiling = handmade("change", at=100)
    done = load(str(spoiling.port), "-c", "4", "-d", "1", "--pattern", "chat")
    assert done.returncode == 1
    assert "heard a line no other connection said: '<#" in done.stdout and "1 mismatched" in done.stdout


def test_a_delivery_the_server_never_made_is_counted(handmade: type[HandmadeChatServer]) -> None:
    # Two lines out each: the next line of the same connection shows the gap, and nothing waits for the lost one.
    dropping = handmade("drop", at=100)
    done = load(str(dropping.port), "-c", "4", "-d", "1", "--pattern", "chat", "--pipeline", "2", "--json")
    assert done.returncode == 1
    ours = json.loads(done.stdout)["tui_echo"]
    assert ours["missed"] == 1 and ours["mismatches"] == 0 and not ours["clean"]


def test_chat_against_an_echo_server_says_what_is_wrong(headless: type[HeadlessProcess]) -> None:
    server = headless()
    done = load(str(server.port), "-c", "3", "-d", "1", "--pattern", "chat")
    assert done.returncode == 1
    assert "the server said nothing to any connection for 5 s (is it running --mode chat?)" in done.stdout
    assert "connected:  no connection's first line reached all the others, of 3 tried" in done.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--pattern", "chat", "--workers", "2"], "--workers: not with --pattern chat"),
        (["--pattern", "chat", "--rate", "10"], "--rate: not with --pattern chat"),
        (["--pattern", "chat", "--message", "hi"], "--message: not with --pattern chat"),
        (["--pattern", "chat", "-c", "1"], "--pattern chat needs 2 connections at least"),
        (["--pattern", "chat", "--size", "70000"], "--size: at most 65536 with --pattern chat"),
        (["--pattern", "talk"], "invalid choice: 'talk'"),
        (["--tls-fingerprint", "AB:CD"], "--tls-fingerprint: expected a SHA-256 fingerprint (64 hex digits"),
        (["--tls-ca", "/nonexistent/ca.pem"], "--tls-ca: cannot read the CA file /nonexistent/ca.pem: no such file"),
        (["--tls-ca", __file__], "holds no usable certificate"),
        (["--tls-insecure", "--tls-ca", __file__], "not allowed with argument"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    done = run_cli(["load", "1234", *args])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr


def test_the_help_names_the_new_options() -> None:
    help_text = run_cli(["load", "--help"]).stdout
    for option in ("--pattern {echo,chat}", "--tls ", "--tls-ca FILE", "--tls-fingerprint SHA256", "--tls-insecure"):
        assert option in help_text
