"""TLS from the command line: the installed ``tui-echo`` against ``openssl s_client`` and plain sockets."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
from pathlib import Path

import pytest

from .process import TIMEOUT, HeadlessProcess, needs_tool, run_cli
from .test_cli import assert_user_error, read_to_eof
from .tls_helpers import Certificates, issue_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def headless():
    started: list[HeadlessProcess] = []

    def start(*args: str) -> HeadlessProcess:
        started.append(HeadlessProcess(*args))
        return started[-1]

    yield start
    for process in started:
        process.close()


def s_client(port: int, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [needs_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{port}", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def read_line(proc: subprocess.Popen[bytes]) -> bytes:
    """One line of the process's output, or fail after TIMEOUT (never hang)."""
    assert proc.stdout is not None
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        assert ready, f"no line within {TIMEOUT} s; got {data!r}"
        chunk = os.read(proc.stdout.fileno(), 4096)
        assert chunk, f"output ended; got {data!r}"
        data += chunk
    return data


def openssl_fingerprint(port: int) -> str:
    """The SHA-256 fingerprint of the certificate the server presents, as openssl sees it."""
    openssl = needs_tool("openssl")
    shown = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
    )
    fingerprint = subprocess.run(
        [openssl, "x509", "-noout", "-fingerprint", "-sha256"], input=shown.stdout, capture_output=True, timeout=TIMEOUT
    )
    assert fingerprint.returncode == 0, fingerprint.stderr
    return fingerprint.stdout.decode().strip().partition("=")[2]  # "sha256 Fingerprint=AB:CD:…"


def test_self_signed_prints_the_fingerprint_openssl_sees(headless) -> None:
    server = headless("--tls-self-signed")
    second = server.wait_for(lambda line: True)
    assert "TLS" in server.first_line
    assert "self-signed certificate" in second and "SHA-256 fingerprint" in second
    printed = second.rsplit(" ", 1)[1]
    assert len(printed) == 95  # 32 bytes as AB:CD:…
    assert openssl_fingerprint(server.port) == printed
    assert server.stop()[0] == 0


def test_openssl_s_client_verifies_the_certificate_and_gets_its_echo(headless, certificates: Certificates) -> None:
    server = headless("--json", "--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key))
    listening = json.loads(server.first_line)
    assert listening["tls"] is True and listening["tls_self_signed"] is False
    assert listening["tls_fingerprint"] == openssl_fingerprint(server.port)
    client = s_client(server.port, "-CAfile", str(certificates.ca_cert), "-verify_return_error", "-quiet")
    try:
        assert client.stdin is not None
        client.stdin.write(b"hello over openssl\n")
        client.stdin.flush()
        assert read_line(client) == b"hello over openssl\n"
    finally:
        client.kill()
        client.wait()
    # (the fingerprint check above was a client too: it connected and left without a word)
    connected = json.loads(server.wait_for(lambda line: '"connected"' in line and '"client":2' in line))
    assert connected["tls_version"] == "TLSv1.3" and connected["tls_cipher"].startswith("TLS_")
    data = json.loads(server.wait_for_text('"event":"data"'))
    assert data["data"] == "hello over openssl\\n" and data["bytes_out"] == 19


def test_a_plaintext_client_is_counted_as_a_failed_handshake(headless, certificates: Certificates) -> None:
    server = headless("--json", "--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key))
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as plain:
        plain.sendall(b"hello in plain text\n")
        assert read_to_eof(plain) == b""
    notice = json.loads(server.wait_for_text('"event":"notice"'))
    assert notice["message"].startswith("TLS handshake failed: 127.0.0.1:")
    assert server.stop()[0] == 0
    stopped = json.loads(next(line for line in server.rest() if '"stopped"' in line))
    assert stopped["tls_handshakes_failed"] == 1 and stopped["clients_total"] == 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--tls-cert", "{missing}", "--tls-key", "{key}"], "cannot read the TLS certificate"),
        (["--tls-cert", "{cert}", "--tls-key", "{other_key}"], "does not match the certificate"),
        (["--tls-cert", "{key}", "--tls-key", "{key}"], "holds no PEM certificate"),
        (["--tls-cert", "{cert}"], "--tls-cert and --tls-key go together"),
        (["--tls-key", "{key}"], "--tls-cert and --tls-key go together"),
        (["--tls-self-signed", "--tls-cert", "{cert}", "--tls-key", "{key}"], "--tls-self-signed makes its own"),
        (["--tls-handshake-timeout", "5"], "--tls-handshake-timeout is for a TLS server"),
        (["--tls-self-signed", "--tls-handshake-timeout", "0"], "expected a number of seconds above 0"),
    ],
)
def test_bad_tls_flags_are_one_clear_line(
    flags: list[str], expected: str, certificates: Certificates, tmp_path: Path
) -> None:
    other = issue_certificates(tmp_path)
    files = {"cert": certificates.cert, "key": certificates.key, "other_key": other.key, "missing": tmp_path / "no.pem"}
    args = [flag.format(**files) for flag in flags]
    assert_user_error(run_cli(["--headless", "--port", "0", *args]), expected)
