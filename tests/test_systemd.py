"""systemd: socket activation through the real systemd-socket-activate, sd_notify to a NOTIFY_SOCKET of the
test's own, and systemd-analyze verify on contrib/'s unit files."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tui_echo.ops.systemd import PassedSocketError, passed_sockets

from .helpers import TIMEOUT
from .process import HeadlessProcess, LineReader, needs_tool, tui_echo_command

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"


def free_port() -> int:
    """A port free a moment ago: systemd-socket-activate takes a port, not 0 (it says "Invalid argument")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.heavy
def test_systemd_socket_activate_starts_the_server_on_the_socket_it_passes() -> None:
    activate = needs_tool("systemd-socket-activate")
    port = free_port()
    proc = subprocess.Popen(
        [activate, "-l", f"127.0.0.1:{port}", "--fdname=echo", tui_echo_command(), "--headless", "--no-control"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log = LineReader(proc.stdout)  # type: ignore[arg-type]
        log.wait_for_text(f"Listening on 127.0.0.1:{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:  # starts the server
            client.sendall(b"activated\n")
            assert client.recv(100) == b"activated\n"
            log.wait_for_text(f"listening on 127.0.0.1:{port}")  # the very socket, not one of its own
            log.wait_for_text("connected")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_passed_descriptor_that_is_not_a_listening_tcp_socket_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", "-c", f'LISTEN_PID=$$ LISTEN_FDS=1 exec {tui_echo_command()} --headless --no-control 3<"$0"', __file__],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "tui-echo: error: systemd passed file descriptor 3 (unknown), which is not a socket\n"


def test_passed_sockets_are_ignored_when_they_are_another_process_s_and_the_variables_are_consumed() -> None:
    assert passed_sockets({"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}) == []
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "x"}
    with pytest.raises(PassedSocketError):
        passed_sockets(env)
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0", "LISTEN_FDNAMES": ""}
    assert passed_sockets(env) == [] and env == {}


def receive(notify: socket.socket, wanted: str) -> list[str]:
    """Datagrams until one has the field ``wanted``; each datagram as its fields."""
    seen: list[list[str]] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        notify.settimeout(max(0.01, deadline - time.monotonic()))
        fields = notify.recv(4096).decode().split("\n")
        seen.append(fields)
        if any(field == wanted or field.startswith(wanted) for field in fields):
            return fields
    raise AssertionError(f"no {wanted} within {TIMEOUT} s; got {seen}")


def test_ready_status_watchdog_and_stopping_reach_a_notify_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    server = HeadlessProcess("--no-control")
    try:
        ready = receive(notify, "READY=1")
        assert "STATUS=0 clients now, 0 since the start" in ready
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT):
            assert "STATUS=1 client now, 1 since the start" in receive(notify, "STATUS=1 client")
        receive(notify, "WATCHDOG=1")
        server.proc.send_signal(signal.SIGTERM)
        stopping = receive(notify, "STOPPING=1")
        assert any(field.startswith("STATUS=stopping") for field in stopping)
        assert server.proc.wait(TIMEOUT) == 0
    finally:
        server.close()
        notify.close()


@pytest.mark.heavy  # systemd-analyze
def test_the_unit_files_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = needs_tool("systemd-analyze")
    # The units name /usr/local/bin/tui-echo; verify checks that ExecStart= is executable, so point it here.
    service = (CONTRIB / "tui-echo.service").read_text()
    assert "ExecReload=/bin/kill -USR1 $MAINPID" in service and "Type=notify" in service
    (tmp_path / "tui-echo.service").write_text(service.replace("/usr/local/bin/tui-echo", tui_echo_command()))
    shutil.copy(CONTRIB / "tui-echo.socket", tmp_path)
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "tui-echo.socket"), str(tmp_path / "tui-echo.service")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr  # an unknown key is only a warning: none either
