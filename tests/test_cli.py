"""The installed ``tui-echo`` command, as a user runs it: real process, real clients, real signals."""

from __future__ import annotations

import fcntl
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_echo.headless.log import EventLog, HumanFormat

from .process import (
    TIMEOUT,
    HeadlessProcess,
    LineReader,
    listening_port,
    needs_tool,
    privileged_port_denied_prefix,
    run_cli,
    tui_echo_command,
)


@pytest.fixture
def headless(request: pytest.FixtureRequest):
    started: list[HeadlessProcess] = []

    def start(*args: str, open_files: int | None = None) -> HeadlessProcess:
        process = HeadlessProcess(*args, open_files=open_files)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def talk(port: int, *messages: bytes) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    for message in messages:
        assert talk_on(client, message), "server closed early or echoed something else"
    return client


def read_to_eof(client: socket.socket) -> bytes:
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    return data


def test_headless_echoes_logs_and_stops_cleanly_on_sigterm(headless) -> None:
    server = headless()
    assert "listening on 127.0.0.1:" in server.first_line
    client = talk(server.port, b"hello\n", b"\x1b[2J\x1b]0;owned\x07[bold red]x\r\n")
    server.wait_for_text("#1 127.0.0.1:")
    assert server.wait_for_text("msg 1  echoed 6 B: hello\\n")
    assert server.wait_for_text("msg 2  echoed 27 B: \\x1b[2J\\x1b]0;owned\\x07[bold red]x\\r\\n")
    client.close()
    server.wait_for_text("#1 127.0.0.1:")
    assert "disconnected: closed by peer (2 msgs, 33 B in, 33 B out" in server.lines[-1]
    stays = talk(server.port, b"still here")
    server.wait_for_text("#2 ")
    code, _ = server.stop(signal.SIGTERM)  # within 2 s of trio's clock: test_headless_stop.py
    assert code == 0
    assert read_to_eof(stays) == b""
    rest = server.rest()
    assert any("#2 " in line and "disconnected: server shutdown" in line for line in rest)
    assert "server stopped: 2 clients, 0 refused, 3 msgs, 43 B in, 43 B out" in rest[-1]
    assert server.proc.stderr.read() == ""
    # Nothing a client sent reached the log raw.
    assert not any(ch in line for line in server.lines for ch in "\x1b\x07\r")


def test_sigint_stops_it_too(headless) -> None:
    server = headless()
    client = talk(server.port, b"x")
    server.wait_for_text("msg 1")
    code, _ = server.stop(signal.SIGINT)
    assert code == 0
    assert read_to_eof(client) == b""
    assert "server stopped" in server.rest()[-1]
    assert "Traceback" not in server.proc.stderr.read()


def test_json_lines_mode(headless) -> None:
    server = headless("--json")
    listening = json.loads(server.first_line)
    assert (listening["event"], listening["port"]) == ("listening", server.port)
    client = talk(server.port, b"\x00\xffbin\n")
    records = [
        json.loads(server.wait_for_text('"event":"connected"')),
        json.loads(server.wait_for_text('"event":"data"')),
    ]
    assert records[1]["data"] == "\\x00\\xffbin\\n" and records[1]["len"] == 6 and records[1]["client"] == 1
    client.close()
    gone = json.loads(server.wait_for_text('"event":"disconnected"'))
    assert (gone["reason"], gone["messages_in"], gone["bytes_out"]) == ("closed by peer", 1, 6)
    assert server.stop()[0] == 0
    stopped = json.loads(server.rest()[-1])
    assert (stopped["event"], stopped["clients_total"], stopped["bytes_in"]) == ("stopped", 1, 6)
    assert all(json.loads(line) for line in server.lines)


def test_a_real_nc_client_gets_its_echo(headless) -> None:
    nc = needs_tool("nc")
    server = headless()
    # -N: shut down the sending side at end of input, then read the echo to EOF (a half-close).
    done = subprocess.run(
        [nc, "-N", "127.0.0.1", str(server.port)], input=b"one\ntwo\n", capture_output=True, timeout=TIMEOUT
    )
    assert done.stdout == b"one\ntwo\n" and done.returncode == 0
    server.wait_for_text("disconnected: closed by peer (")
    assert server.stop()[0] == 0


def test_limits_and_framing_flags(headless) -> None:
    server = headless("--framing", "line", "--max-clients", "1", "--idle-timeout", "0.5")
    assert "framing line, max clients 1, idle timeout 0.5 s" in server.first_line
    first = talk(server.port, b"a\nb\nc")
    server.wait_for_text("msg 2  echoed 5 B: a\\nb\\nc")
    second = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    assert read_to_eof(second) == b""
    server.wait_for_text("#2 127.0.0.1:")
    assert "refused: server full" in server.lines[-1]
    assert read_to_eof(first) == b""  # silent for 0.5 s
    line = server.wait_for_text("#1 127.0.0.1:")
    assert "disconnected: idle timeout (2 msgs, 5 B in, 5 B out" in line
    assert server.stop()[0] == 0
    assert "1 refused" in server.rest()[-1]


PER_CLIENT_LINES = EventLog(HumanFormat()).per_client  # a client's data lines a second before it is summarised


def test_busy_clients_are_summarised_not_logged_line_by_line(headless) -> None:
    server = headless()
    client = talk(server.port)
    started = time.monotonic()
    for _ in range(3000):
        client.sendall(b"m" * 32)
        assert len(client.recv(64)) == 32  # request-response: one chunk each on loopback
    summary = server.wait_for_text("busy, lines coalesced")
    client.close()
    gone = server.wait_for_text("disconnected: closed by peer")
    seconds = time.monotonic() - started
    assert "(3000 msgs, 93.8 KiB in" in gone
    assert server.stop()[0] == 0
    # By the time it took, not a count: each second at most the client's 5 data lines and a summary, besides
    # the listening, connected, disconnected and stopped lines.
    assert len(server.lines) <= 4 + (PER_CLIENT_LINES + 1) * (seconds + 2), (len(server.lines), seconds, summary)


def test_exits_quietly_when_nobody_reads_the_log() -> None:
    # Like `tui-echo --headless | head -1`: the reader goes away after the first line.
    proc = subprocess.Popen(
        [tui_echo_command(), "--headless", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline().split(":")[-1].split(" ")[0])
        proc.stdout.close()
        client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            for _ in range(50):
                client.sendall(b"ping\n")
                client.recv(64)
                if proc.poll() is not None:
                    break
        except OSError:
            pass  # the server went away mid-talk: that is the point
        assert proc.wait(TIMEOUT) == 0
        assert proc.stderr.read() == ""
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def test_python_dash_m_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui_echo", "--version"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0 and done.stdout.startswith("tui-echo 0.")


def test_help_explains_every_flag() -> None:
    done = run_cli(["--help"])
    assert done.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--headless",
        "--json",
        "--max-clients",
        "--idle-timeout",
        "--framing",
        "--tls-cert",
        "--tls-key",
        "--tls-self-signed",
        "--tls-handshake-timeout",
        "--allow",
        "--deny",
        "--max-per-ip",
        "--accept-rate",
        "--ban-minutes",
        "--version",
    ):
        assert flag in done.stdout


def assert_user_error(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tui-echo: error: ")
    for text in expected:
        assert text in lines[0]
    assert done.stdout == ""


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_user_error(run_cli(["--headless", "--port", str(port)]), f"127.0.0.1:{port}", "address already in use")


def test_permission_denied_is_one_clear_line() -> None:
    done = run_cli(["--headless", "--port", "1"], prefix=privileged_port_denied_prefix())
    assert_user_error(done, "127.0.0.1:1", "permission denied")


def test_unknown_host_is_one_clear_line() -> None:
    started = time.monotonic()
    assert_user_error(
        run_cli(["--headless", "--host", "no-such-host.invalid", "--port", "0"]),
        "cannot resolve host 'no-such-host.invalid'",
    )
    assert time.monotonic() - started < TIMEOUT


def test_address_not_on_this_machine_is_one_clear_line() -> None:
    assert_user_error(run_cli(["--headless", "--host", "192.0.2.1", "--port", "0"]), "address not available")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "70000"], "argument --port: expected a whole number from 0 to 65535, got '70000'"),
        (["--port", "-1"], "argument --port: expected a whole number from 0 to 65535"),
        (["--port", "http"], "argument --port: expected a whole number from 0 to 65535, got 'http'"),
        (["--max-clients", "0"], "argument --max-clients: expected a whole number of at least 1"),
        (["--idle-timeout", "-5"], "argument --idle-timeout: expected a number of seconds above 0"),
        (["--idle-timeout", "nan"], "argument --idle-timeout: expected a number of seconds above 0"),
        (["--framing", "xml"], "argument --framing: invalid choice: 'xml'"),
        (["--host", ""], "argument --host: expected a host name or address"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--feed-lines", "0"], "argument --feed-lines: expected a whole number from 1 to 100000, got '0'"),
        (["--allow", "10.0.0.0/33"], "argument --allow: expected an address or a CIDR network such as 10.0.0.0/8"),
        (
            ["--deny", "banana"],
            "argument --deny: expected an address or a CIDR network such as 10.0.0.0/8, got 'banana'",
        ),
        (["--accept-rate", "5/m"], "argument --accept-rate: expected a rate above 0 such as 10/s"),
        (["--accept-rate", "0/s"], "argument --accept-rate: expected a rate above 0 such as 10/s"),
        (["--max-per-ip", "0"], "argument --max-per-ip: expected a whole number of at least 1, got '0'"),
        (["--ban-minutes", "3"], "--ban-minutes is for bans from the monitor (b): drop --headless"),
        (["--allow", "127.0.0.2", "--deny", "127.0.0.0/8"], "--allow 127.0.0.2/32 lies inside --deny 127.0.0.0/8"),
    ],
)
def test_bad_flag_values_are_one_clear_line(args: list[str], expected: str) -> None:
    assert_user_error(run_cli(["--headless", *args]), expected)


def test_ipv6_loopback(headless) -> None:
    server = headless("--host", "::1")
    assert f"listening on [::1]:{server.port}" in server.first_line
    with socket.create_connection(("::1", server.port), timeout=TIMEOUT) as client:
        client.sendall(b"six")
        assert client.recv(16) == b"six"
    assert "#1 [::1]:" in server.wait_for_text("disconnected: closed by peer")
    assert server.stop()[0] == 0


def test_wildcard_ipv6_serves_ipv4_clients_too_and_logs_them_as_plain_ipv4(headless) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server = headless("--host", "::", "--deny", "127.0.0.2")
    assert f"listening on [::]:{server.port}" in server.first_line
    talk(server.port, b"four").close()
    assert "#1 127.0.0.1:" in server.wait_for_text("disconnected: closed by peer")
    with socket.socket() as denied:
        denied.settimeout(TIMEOUT)
        denied.bind(("127.0.0.2", 0))
        denied.connect(("127.0.0.1", server.port))
        assert read_to_eof(denied) == b""
    assert "#2 127.0.0.2:" in server.wait_for_text("refused: denied")
    assert server.stop()[0] == 0


def test_running_out_of_file_descriptors_pauses_accept_and_recovers(headless) -> None:
    server = headless(open_files=40)
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) for _ in range(45)]
    server.wait_for_text("notice: accept failed: Too many open files; new connections wait")
    admitted = sum("connected (" in line for line in server.lines)
    assert admitted < 45
    assert talk_on(clients[0], b"still served")
    for client in clients[:20]:
        client.close()
    # The connections that waited in the kernel's queue are admitted as room appears.
    assert talk_on(clients[-1], b"last one in")
    assert server.stop()[0] == 0
    assert "Traceback" not in server.proc.stderr.read()


def talk_on(client: socket.socket, message: bytes) -> bool:
    client.sendall(message)
    received = b""
    while len(received) < len(message):
        chunk = client.recv(65536)
        if not chunk:
            return False
        received += chunk
    return received == message


def test_a_log_reader_that_stalls_never_stalls_the_echo() -> None:
    # stdout is a pipe nobody reads: once its buffer is full every log write blocks.
    proc = subprocess.Popen(
        [tui_echo_command(), "--headless", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        port = int(proc.stdout.readline().split(b"listening on 127.0.0.1:")[1].split()[0])
        for _ in range(1500):  # about 150 KB of connect and disconnect lines: more than a pipe holds
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
        busy = talk(port)  # its socket times out if the echo stalls
        for n in range(2000):
            assert talk_on(busy, b"%06d" % n)
        busy.close()
        # Reading again releases the log: every connect and disconnect is there, in order.
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
        lines = out.decode().splitlines()
        assert sum(" connected (" in line for line in lines) == 1501
        assert sum("disconnected: closed by peer" in line for line in lines) == 1501
        assert "server stopped: 1501 clients" in lines[-1]
        assert proc.returncode == 0 and err == b""
    finally:
        proc.kill()
        proc.wait()


def test_json_without_headless_is_one_clear_line() -> None:
    assert_user_error(run_cli(["--json", "--port", "0"]), "--json is for the headless log: add --headless")


def test_the_monitor_without_a_terminal_is_one_clear_line() -> None:
    assert_user_error(
        run_cli(["--port", "0"]), "the monitor needs a terminal, but stdin, stdout and stderr are not terminals"
    )


def test_the_monitor_with_stdout_redirected_says_so_and_points_to_headless(tmp_path: Path) -> None:
    # tui-echo > out.txt: Textual sizes the screen from stdout, so it would draw at 80x24 whatever the terminal.
    with open(tmp_path / "out.txt", "wb") as out:
        code, output = run_in_terminal(["--port", "0"], stdout=out.fileno())
    assert code == 2 and (tmp_path / "out.txt").read_bytes() == b""
    assert output.strip().splitlines() == [
        "tui-echo: error: the monitor needs a terminal, but stdout is not one; "
        "use --headless to log to a pipe or file (see tui-echo --help)"
    ]


def test_the_web_driver_runs_the_monitor_over_pipes() -> None:
    # textual-serve runs the app this way: TEXTUAL_DRIVER names the web driver, stdin/stdout/stderr are pipes.
    env = {**os.environ, "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"}
    proc = subprocess.Popen(
        [tui_echo_command(), "--port", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"__GANGLION__\n"  # the web driver's greeting: the app is up
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        proc.kill()
        proc.wait()


def run_in_terminal(args: list[str], stdout: int | None = None) -> tuple[int, str]:
    """Run tui-echo with a pseudo-terminal as its terminal (and ``stdout``, unless given); return its exit code
    and what it wrote there."""
    main, terminal = os.openpty()
    proc = subprocess.Popen(
        [tui_echo_command(), *args], stdin=terminal, stdout=terminal if stdout is None else stdout, stderr=terminal
    )
    try:
        code = proc.wait(TIMEOUT)
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            output += chunk
        return code, output.decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()
        os.close(main)


def test_the_monitor_on_a_busy_port_is_one_clear_line_before_the_screen_opens() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = run_in_terminal(["--port", str(port)])
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "\x1b" not in output, output  # nothing drawn: the screen never opened
    assert lines[0].startswith(f"tui-echo: error: cannot listen on 127.0.0.1:{port}: address already in use")


# ---- whatever the log's reader does ------------------------------------------------------------------------


LOST = re.compile(r"tui-echo: (\d+) log lines? lost \(the log could not take them\)")


def stop_and_exit_0(proc: subprocess.Popen[str]) -> None:
    """SIGTERM: it must exit 0 (within TIMEOUT, so not waiting for its log's reader). That the stop's own
    timeouts add up to at most 2 s is test_headless_stop.py, on trio's clock: here the machine's speed counts."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(TIMEOUT) == 0


def short_clients(port: int, count: int) -> None:
    for n in range(count):
        with talk(port, b"%d" % n):
            pass


def test_stops_and_exits_0_while_nobody_reads_its_log() -> None:
    # `tui-echo --headless --json > >(sleep 300)`: the log's pipe fills and stays full.
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)  # fills after about 30 lines
    proc = subprocess.Popen(
        [tui_echo_command(), "--headless", "--json", "--port", "0"], stdout=write, stderr=subprocess.PIPE, text=True
    )
    os.close(write)
    try:
        with os.fdopen(os.dup(read), "rb", buffering=0) as log:
            first = b""
            while not first.endswith(b"\n"):  # one byte at a time: the rest stays unread in the pipe
                first += log.read(1)
        port = json.loads(first)["port"]
        short_clients(port, 100)  # about 300 lines
        clients = [talk(port, b"ping") for _ in range(50)]
        stop_and_exit_0(proc)
        assert all(read_to_eof(client) == b"" for client in clients)
        errors = proc.stderr.read().splitlines()
        assert len(errors) == 1 and (lost := LOST.fullmatch(errors[0])) and int(lost[1]) > 0, errors
    finally:
        proc.kill()
        proc.wait()
        os.close(read)
        proc.stderr.close()


def test_a_log_on_a_full_disk_costs_the_log_not_the_echo() -> None:
    # `tui-echo --headless > /dev/full`: every log write fails with ENOSPC.
    with open("/dev/full", "wb") as full:
        proc = subprocess.Popen(
            [tui_echo_command(), "--headless", "--port", "0"], stdout=full, stderr=subprocess.PIPE, text=True
        )
    try:
        errors = LineReader(proc.stderr)
        port = listening_port(proc.pid)
        short_clients(port, 20)
        errors.wait_for_text("tui-echo: warning: cannot write the log (No space left on device); still serving")
        client = talk(port, b"still echoing\n", b"and again\n")
        stop_and_exit_0(proc)
        assert read_to_eof(client) == b""
        errors.rest()
        assert len(errors.lines) == 2, errors.lines  # the warning once, and the count at exit
        lost = LOST.fullmatch(errors.lines[1])
        assert lost and int(lost[1]) >= 1 + 2 * 21 + 1, errors.lines  # listening, 21 clients in and out, stopped
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def test_a_log_that_hits_the_file_size_limit_mid_run_costs_the_log_not_the_echo(tmp_path: Path) -> None:
    # A disk that fills mid-run, simulated without root: the file-size limit (ulimit -f) stops the log at
    # 4096 bytes with EFBIG (Python ignores SIGXFSZ, which would otherwise kill the process).
    log_path = tmp_path / "log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [tui_echo_command(), "--headless", "--port", "0"],
            stdout=log_file,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)),
        )
    try:
        errors = LineReader(proc.stderr)
        port = listening_port(proc.pid)
        short_clients(port, 60)  # about 120 lines of 70 bytes: past the limit
        errors.wait_for_text("tui-echo: warning: cannot write the log (File too large); still serving")
        client = talk(port, b"still echoing\n")
        stop_and_exit_0(proc)
        assert read_to_eof(client) == b""
        errors.rest()
        assert len(errors.lines) == 2, errors.lines
        lost = LOST.fullmatch(errors.lines[1])
        assert lost, errors.lines
        log = log_path.read_bytes()
        assert len(log) == 4096 and log.startswith(b"20") and b"listening on 127.0.0.1:" in log
        # Every line is in the file or counted: at least listening, 61 clients in and out, stopped.
        assert log.count(b"\n") + int(lost[1]) >= 1 + 2 * 61 + 1
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
