"""Behind a real HAProxy (2.6): two tui-echo servers, one sent PROXY v1 (send-proxy), one v2 (send-proxy-v2),
each checked by HAProxy's health check (a v2 LOCAL header, or a v1 UNKNOWN one).

HAProxy listens on a socket the test binds (port 0) and hands it (``bind fd@N``); it connects to the servers
from 127.0.0.2, the only address their --proxy-from trusts. Clients connect from other loopback addresses.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_echo.control.client import Connection

from .helpers import TIMEOUT
from .process import HeadlessProcess, needs_tool, run_cli
from .test_proxy_header import v1

pytestmark = pytest.mark.heavy

PROXY_SOURCE = "127.0.0.2"


def ctl(control: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["ctl", str(control), *args])


def clients(control: Path) -> list[dict]:
    done = ctl(control, "clients", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def snapshot(control: Path) -> Connection:
    connection = Connection.open(control, events=False, role="list")
    connection.close()
    return connection


def totals(control: Path) -> dict:
    return dict(snapshot(control).snapshot["totals"])


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def client_from(source: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    return sock


def echoed(sock: socket.socket, data: bytes) -> bool:
    """True if ``data`` comes back; False if the connection is closed (refused) first."""
    try:
        sock.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = sock.recv(len(data) - len(got))
            if not chunk:
                return False
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return False
    return got == data


@pytest.fixture
def behind_haproxy(tmp_path: Path) -> Iterator[tuple[int, list[Path]]]:
    """HAProxy's port and the two servers' control sockets: [send-proxy (v1), send-proxy-v2]."""
    haproxy = needs_tool("haproxy")
    servers, controls = [], []
    front = socket.socket()
    proxy = None
    try:
        for name in ("v1", "v2"):
            control = tmp_path / f"{name}.sock"
            servers.append(
                HeadlessProcess(
                    "--json",
                    "--proxy-protocol",
                    "--proxy-from",
                    PROXY_SOURCE,
                    "--deny",
                    "127.0.0.66",
                    "--control",
                    str(control),
                )
            )
            controls.append(control)
        front.bind(("127.0.0.1", 0))
        front.listen(64)
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            f"""global
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend echo
    bind fd@{front.fileno()}
    default_backend tui_echo
backend tui_echo
    balance roundrobin
    default-server source {PROXY_SOURCE} check inter 200ms
    server v1 127.0.0.1:{servers[0].port} send-proxy
    server v2 127.0.0.1:{servers[1].port} send-proxy-v2
"""
        )
        proxy = subprocess.Popen(
            [haproxy, "-db", "-f", str(config)],
            pass_fds=[front.fileno()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Both servers up: each has seen a health check.
        wait_until(lambda: all(totals(c)["proxy_checks"] >= 1 for c in controls), "HAProxy checked both servers")
        yield front.getsockname()[1], controls
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(TIMEOUT)
            assert proxy.stdout is not None
            proxy.stdout.close()
        front.close()
        for server in servers:
            server.stop()
            server.close()


def test_clients_through_haproxy_appear_with_their_own_address_and_port(behind_haproxy) -> None:
    port, controls = behind_haproxy
    ours = [client_from(f"127.0.0.{n}", port) for n in (10, 11, 12, 13)]  # round robin: two on each server
    try:
        for n, sock in enumerate(ours):
            assert echoed(sock, f"hello {n}\n".encode())
        addresses = {sock.getsockname() for sock in ours}

        def seen() -> set[tuple[str, int]]:
            found = set()
            for control in controls:
                for record in clients(control):
                    host, _, port_text = record["peer"].rpartition(":")
                    if record["proxy"] is not None and record["proxy"] != record["peer"]:  # not a health check
                        assert record["proxy"].startswith(PROXY_SOURCE + ":")
                        found.add((host, int(port_text)))
            return found

        wait_until(lambda: seen() == addresses, "ctl clients shows every real client")
        for control in controls:  # each server got two of them: v1 and v2 both carry the address
            assert sum(1 for r in clients(control) if r["peer"] != r["proxy"]) == 2
        table = ctl(controls[1], "clients").stdout
        assert "VIA" in table and "127.0.0.1" in table and PROXY_SOURCE in table
    finally:
        for sock in ours:
            sock.close()


def test_a_denied_client_is_refused_through_haproxy_and_a_forged_header_straight_to_a_server_is_refused(
    behind_haproxy,
) -> None:
    port, controls = behind_haproxy
    for _ in range(2):  # once to each server
        denied = client_from("127.0.0.66", port)
        assert not echoed(denied, b"let me in\n")
        denied.close()
    wait_until(
        lambda: all(totals(c)["refused_by_reason"].get("denied") == 1 for c in controls), "each server denied one"
    )
    for control in controls:  # straight to the server, from outside --proxy-from, claiming another address
        server_port = snapshot(control).server.addresses[0][1]
        forged = client_from("127.0.0.1", server_port)
        forged.sendall(v1("TCP4", "10.9.8.7", "127.0.0.1", 1234, server_port))
        assert not echoed(forged, b"hi\n")
        forged.close()
        wait_until(lambda c=control: totals(c)["refused_by_reason"].get("untrusted proxy") == 1, "refused")
        assert not any(r["peer"].startswith("10.9.8.7") for r in clients(control))


def test_haproxy_health_checks_are_counted_apart(behind_haproxy) -> None:
    port, controls = behind_haproxy
    for control in controls:
        before = totals(control)["proxy_checks"]
        wait_until(lambda c=control, b=before: totals(c)["proxy_checks"] >= b + 3, "three more health checks")
        # A check is the proxy itself (its LOCAL or UNKNOWN header names no client), never a client from elsewhere.
        for record in clients(control):
            assert record["peer"] == record["proxy"] and record["peer"].startswith(PROXY_SOURCE + ":")
