"""Consoles against real processes: the installed ``tui-echo`` serving headless, and attach, list,
events and ctl (or a protocol client) talking to it over its control socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tui_echo.consoles.ctl import CTL_ACTIONS
from tui_echo.control.client import Connection
from tui_echo.control import protocol
from tui_echo.monitor.remote import RemoteSource

from .helpers import TIMEOUT
from .process import HeadlessProcess, is_root, needs_tool, run_cli, tui_echo_command
from .test_e2e_tmux import Tmux
from .test_tls_cli import openssl_fingerprint


class Lines:
    """A process whose stdout lines are collected by a thread."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        for line in self.lines:
            if predicate(line):
                return line
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"output ended; got: {self.lines[-20:]}")
            self.lines.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no matching line within {timeout} s; got: {self.lines[-20:]}")

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(TIMEOUT)  # it reads to EOF, then the pipes can close
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:  # closed now: a later test's check for unclosed files must not find them
                pipe.close()


@pytest.fixture
def started() -> Iterator[list[HeadlessProcess | Lines]]:
    processes: list[HeadlessProcess | Lines] = []
    yield processes
    for process in processes:
        if isinstance(process, Lines) and process.proc.poll() is None:
            os.kill(process.proc.pid, signal.SIGCONT)
        process.close()


def server(started: list[HeadlessProcess | Lines], path: Path, *args: str) -> HeadlessProcess:
    process = HeadlessProcess("--control", str(path), *args)
    started.append(process)
    return process


def console(started: list[HeadlessProcess | Lines], *args: str) -> Lines:
    process = Lines([tui_echo_command(), *args])
    started.append(process)
    return process


RAW_CONSOLE = """
import json, sys
from pathlib import Path
from tui_echo.control.client import Connection, ServerGone
connection = Connection.open(Path(sys.argv[1]), events=True)
print(json.dumps(connection.snapshot), flush=True)
connection.sock.settimeout(None)
try:
    while True:
        print(json.dumps(connection.read()), flush=True)
except ServerGone:
    pass
"""


def raw_console(started: list[HeadlessProcess | Lines], path: Path) -> Lines:
    """A protocol client in its own process, printing every message: one we can stop and kill."""
    process = Lines([sys.executable, "-c", RAW_CONSOLE, str(path)])
    started.append(process)
    process.wait_for(lambda line: '"type": "snapshot"' in line)
    return process


def echo(client: socket.socket, data: bytes) -> float:
    """Send ``data``, read its echo, return the round trip in seconds."""
    start = time.monotonic()
    client.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = client.recv(65536)
        assert chunk, "EOF instead of the echo"
        got += chunk
    assert got == data
    return time.monotonic() - start


def until_attached(client: socket.socket, *consoles: Lines) -> None:
    """Consoles attach in their own time: talk until every one of them has seen the client talk."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        echo(client, b"ping\n")
        if all(c.has("ping") for c in consoles):
            return
        for c in consoles:
            with contextlib.suppress(AssertionError):  # not yet: talk again
                c.wait_for(lambda line: "ping" in line, timeout=0.2)
        assert time.monotonic() < deadline, [c.lines[-5:] for c in consoles]


def test_three_consoles_see_one_kick_and_a_detach_touches_nothing(started, tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    headless = server(started, path)
    assert f"control socket {path}" in headless.first_line
    victim = socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT)
    bystander = socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT)
    human = console(started, "events", str(headless.port))
    as_json = console(started, "events", str(path), "--json")
    mine = Connection.open(path, events=True)
    until_attached(victim, human, as_json)

    mine.send(protocol.command_message(1, "kick", client=1))
    seen: list[dict] = []
    while not any(m.get("event") == "disconnected" for m in seen):
        seen.append(mine.read())
    assert {"type": "reply", "id": 1, "ok": True} in seen
    assert victim.recv(100) == b""  # EOF: the kick reached the client
    human.wait_for(lambda line: "#1 127.0.0.1" in line and "disconnected: kicked" in line)
    as_json.wait_for(lambda line: '"event":"disconnected"' in line and '"reason":"kicked"' in line)
    issuer = f"#1 kicked by console uid {os.getuid()} pid {os.getpid()}"
    for lines in (human, as_json, headless):
        lines.wait_for(lambda line: issuer in line)

    human.proc.send_signal(signal.SIGINT)  # one console leaves
    assert human.proc.wait(TIMEOUT) == 0
    for _ in range(3):
        echo(bystander, b"still here\n")
    as_json.wait_for(lambda line: '"client":2' in line and "still here" in line)
    while not any(m.get("event") == "data" and m.get("client") == 2 for m in seen):
        seen.append(mine.read())
    mine.close()
    assert not any("#2" in line and "disconnected" in line for line in headless.lines)
    bystander.close()


def test_ctl_commands_and_exit_codes_against_a_headless_server(started, tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    headless = server(started, path)
    client = socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT)
    echo(client, b"hello\n")

    table = run_cli(["ctl", str(path), "clients"])
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:4] == ["ID", "PEER", "CONNECTED", "MSGS"]
    assert table.stdout.splitlines()[1].split()[0] == "#1"
    records = json.loads(run_cli(["ctl", str(headless.port), "clients", "--json"]).stdout)
    assert [(r["client"], r["messages_in"], r["bytes_in"]) for r in records] == [(1, 1, 6)]

    assert run_cli(["ctl", str(path), "send", "1", r"hi\x21\n"]).returncode == 0
    assert client.recv(100) == b"hi!\n"
    unknown = run_cli(["ctl", str(path), "kick", "#7"])
    assert (unknown.returncode, unknown.stderr) == (1, "tui-echo ctl: error: no client #7 is connected\n")
    bad = run_cli(["ctl", str(path), "kick", "seven"])
    assert bad.returncode == 2 and "expected a client id" in bad.stderr and "Traceback" not in bad.stderr
    bad_escape = run_cli(["ctl", str(path), "broadcast", r"\q"])
    assert bad_escape.returncode == 2 and "Traceback" not in bad_escape.stderr
    nowhere = run_cli(["ctl", str(tmp_path / "nothing.sock"), "clients"])
    assert nowhere.returncode == 2 and "no control socket at" in nowhere.stderr

    assert run_cli(["ctl", str(path), "kick", "1"]).returncode == 0
    client.settimeout(TIMEOUT)
    assert client.recv(100) == b""  # the client sees EOF
    headless.wait_for_text(f"#1 kicked by console uid {os.getuid()}")
    headless.wait_for_text("disconnected: kicked")

    assert run_cli(["ctl", str(path), "stop"]).returncode == 0
    assert headless.proc.wait(TIMEOUT) == 0
    assert not path.exists()  # removed on a clean exit


def test_list_finds_servers_and_a_bare_target_needs_exactly_one(started, tmp_path: Path, monkeypatch) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))  # the children inherit it: a world of our own
    nothing = run_cli(["ctl", "clients"])
    assert nothing.returncode == 2 and "no running tui-echo server" in nothing.stderr
    first = HeadlessProcess()
    started.append(first)
    default_path = runtime / "tui-echo" / f"{first.port}.sock"
    assert f"control socket {default_path}" in first.first_line
    assert run_cli(["ctl", "clients"]).returncode == 0  # the only one
    elsewhere = tmp_path / "elsewhere.sock"
    second = server(started, elsewhere)
    listing = run_cli(["list"])
    assert listing.returncode == 0
    rows = listing.stdout.splitlines()
    assert rows[0].split() == ["PORT", "PID", "UP", "CLIENTS", "SOCKET"]
    found = {(row.split()[0], row.split()[1], row.split()[3], row.split()[4]) for row in rows[1:]}
    assert found == {
        (str(first.port), str(first.proc.pid), "0", str(default_path)),
        (str(second.port), str(second.proc.pid), "0", str(elsewhere)),
    }
    several = run_cli(["ctl", "clients"])
    assert several.returncode == 2 and "several servers" in several.stderr and str(elsewhere) in several.stderr
    assert run_cli(["ctl", str(second.port), "clients"]).returncode == 0  # found through its entry

    second.proc.kill()  # SIGKILL: its entry and socket stay behind
    second.proc.wait()
    listing = run_cli(["list"])
    assert str(second.port) not in listing.stdout
    assert run_cli(["ctl", "clients"]).returncode == 0  # the only one again


def test_a_stale_socket_is_replaced_and_a_live_one_is_exit_2(started, tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    killed = server(started, path)
    killed.proc.kill()
    killed.proc.wait()
    assert path.exists()  # what a killed server leaves
    replacement = server(started, path)
    assert run_cli(["ctl", str(path), "clients"]).returncode == 0
    live = subprocess.run(
        [tui_echo_command(), "--headless", "--port", "0", "--control", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert live.returncode == 2
    assert live.stderr.splitlines() == [
        f"tui-echo: error: a running server already answers on the control socket {path}; "
        "stop it, or start this one with --control PATH or --no-control"
    ]
    assert replacement.proc.poll() is None


def test_no_control_and_a_fallback_folder_that_is_not_private(started, tmp_path: Path) -> None:
    bare = HeadlessProcess("--no-control")
    started.append(bare)
    assert "control socket" not in bare.first_line
    shared = tmp_path / f"tui-echo-{os.getuid()}"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    env = {key: value for key, value in os.environ.items() if key != "XDG_RUNTIME_DIR"} | {"TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [tui_echo_command(), "--headless", "--port", "0"], capture_output=True, text=True, timeout=TIMEOUT, env=env
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"tui-echo: error: {shared} has mode 0755, so other users can reach it")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.skipif(not is_root(), reason="needs root to act as another user")
def test_another_user_is_refused_by_the_file_mode_and_by_the_peer_check(started, tmp_path: Path) -> None:
    setpriv, socat = needs_tool("setpriv"), needs_tool("socat")
    as_nobody = [setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", socat, "-t", "2", "-"]
    folder = Path(tempfile.mkdtemp(prefix="tui-echo-test-"))  # pytest's own folders are closed to others
    os.chmod(folder, 0o755)
    path = folder / "control.sock"
    headless = server(started, path)
    denied = subprocess.run([*as_nobody, f"UNIX-CONNECT:{path}"], capture_output=True, text=True, timeout=TIMEOUT)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr  # the socket is 0600

    os.chmod(path, 0o666)  # take the file mode away: the credential check must hold on its own
    refused = subprocess.run(
        [*as_nobody, f"UNIX-CONNECT:{path}"], input="", capture_output=True, text=True, timeout=TIMEOUT
    )
    assert json.loads(refused.stdout) == {
        "type": "error",
        "error": "not_allowed",
        "message": f"only uid {os.getuid()} (or root) may attach",
    }
    headless.wait_for_text("notice: refused console uid 65534 pid")
    headless.stop()
    shutil.rmtree(folder)


# Data events a stopped console can hold: DATA_LIMIT (1,000) queued in the server, and what its socket takes
# (some 200 KiB of JSON lines of about 450 bytes). Far more than that are published while it is stopped, so
# it loses some, counted, whatever the machine's speed (on a fast one the rate cap drops most of them). That
# lifecycle events still fit in a full queue is test_control's test_past_its_bound_a_subscription_….
ECHOES_WHILE_STOPPED = 5000


def test_a_stopped_or_killed_console_never_changes_the_echo(started, tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    headless = server(started, path)
    busy = socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT)
    busy.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stopped = raw_console(started, path)
    killed = raw_console(started, path)
    echo(busy, b"warm up\n")

    os.kill(stopped.proc.pid, signal.SIGSTOP)
    os.kill(killed.proc.pid, signal.SIGKILL)
    # Every echo comes back (each within the socket's timeout): a server that waited for either console would
    # stall here once the stopped one's socket is full.
    for n in range(ECHOES_WHILE_STOPPED):
        echo(busy, b"x" * 64)
        if n == ECHOES_WHILE_STOPPED // 2:  # a lifecycle while it is stopped
            socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT).close()
    os.kill(stopped.proc.pid, signal.SIGCONT)
    echo(busy, b"after\n")
    busy.close()

    # The stopped console lost data events, with a count, but not the lifecycle.
    stopped.wait_for(lambda line: '"event": "connected"' in line and '"client": 2' in line)
    stopped.wait_for(lambda line: '"event": "disconnected"' in line and '"client": 2' in line)
    gone = json.loads(stopped.wait_for(lambda line: '"event": "disconnected"' in line and '"client": 1,' in line))
    assert gone["messages_in"] == ECHOES_WHILE_STOPPED + 2

    def every_one_seen_or_counted(line: str) -> bool:
        if '"type": "counts"' not in line:
            return False
        seen = sum('"event": "data"' in earlier for earlier in stopped.lines)
        return seen + json.loads(line)["data_dropped"] == gone["messages_in"]

    counts = json.loads(stopped.wait_for(every_one_seen_or_counted))
    assert counts["data_dropped"] > 0
    headless.wait_for_text("#1 127.0.0.1")
    assert not any("Traceback" in line for line in headless.lines)


def test_an_attached_consoles_counts_catch_up_under_load_and_end_equal_to_the_servers(started, tmp_path) -> None:
    # How often counts go out is test_control's test_counts_reach_a_console_within_a_quarter_second (trio's clock).
    path = tmp_path / "control.sock"
    headless = server(started, path)
    stop, release = threading.Event(), threading.Event()
    sent = [0] * 4
    done = [threading.Event() for _ in sent]

    def load(index: int) -> None:
        with socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT) as client:
            while not stop.is_set():
                echo(client, b"y" * 32)
                sent[index] += 1
            done[index].set()
            release.wait(TIMEOUT)  # stay connected: the console's per-client counts are checked too

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()

    async def watch() -> None:
        source = RemoteSource(Connection.open(path, events=True))
        source.start(lambda error: None)
        try:
            for _ in range(5):
                await asyncio.sleep(0.3)
                exact = Connection.open(path, events=False)  # the server's exact counts, now
                exact.close()
                truth = exact.snapshot["totals"]["messages_in"]
                taken = time.monotonic()
                while source.totals().messages_in < truth:
                    assert time.monotonic() - taken < TIMEOUT, (source.totals().messages_in, truth)
                    await asyncio.sleep(0.01)
            stop.set()
            for finished in done:
                await asyncio.to_thread(finished.wait, TIMEOUT)
            total = sum(sent)
            settled = time.monotonic()
            while source.totals().messages_in != total or sum(c.messages_in for c in source.clients()) != total:
                assert time.monotonic() - settled < TIMEOUT, (source.totals().messages_in, total)
                await asyncio.sleep(0.01)
        finally:
            release.set()
            await source.stop()

    asyncio.run(watch())


@pytest.mark.terminal
def test_attach_through_a_forwarded_socket_in_a_real_terminal(started, tmp_path: Path) -> None:
    socat, tmux_path = needs_tool("socat"), needs_tool("tmux")
    path = tmp_path / "control.sock"
    headless = server(started, path)
    forwarded = tmp_path / "forwarded.sock"
    forwarder = subprocess.Popen([socat, f"UNIX-LISTEN:{forwarded},fork", f"UNIX-CONNECT:{path}"])
    tmux = Tmux(tmux_path)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not forwarded.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client = socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT)
        echo(client, b"hello through ssh\n")
        tmux.run("new-session", "-d", "-x", "120", "-y", "40", "env PS1='$ ' bash --norc --noprofile")
        tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} attach {forwarded}; echo exit=$?", "Enter")
        tmux.wait_for(rf"attached to pid {headless.proc.pid} · {forwarded}")
        tmux.wait_for(r"#1 +127\.0\.0\.1:\d+ .* 1 +18 B +18 B .*connected")
        tmux.wait_for(r"q Detach .*S Stop server")

        assert run_cli(["ctl", str(path), "kick", "1"]).returncode == 0  # another console kicks
        tmux.wait_for(r"#1 kicked by console uid \d+ pid \d+")
        tmux.wait_for(r"disconnected: kicked")
        assert client.recv(100) == b""

        other = socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT)
        tmux.wait_for(r"#2 +127\.0\.0\.1")
        tmux.run("send-keys", "q")  # detach: the server and its client carry on
        tmux.wait_for(r"(?m)^exit=0$")
        echo(other, b"still served\n")
        assert headless.proc.poll() is None

        tmux.run("send-keys", "clear", "Enter")
        tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} attach {forwarded}; echo exit=$?", "Enter")
        tmux.wait_for(r"#2 +127\.0\.0\.1")
        headless.proc.kill()  # the server goes away under the console
        tmux.wait_for(r"The server went away")
        tmux.run("send-keys", "q")
        tmux.wait_for(r"(?m)^exit=0$")
        assert "Traceback" not in tmux.screen()
        other.close()
    finally:
        subprocess.run([tmux.tmux, "-L", tmux.socket, "kill-server"], capture_output=True)
        forwarder.terminate()
        forwarder.wait()


@pytest.mark.terminal
def test_attach_shows_the_tls_column_and_the_certificate_fingerprint(started, tmp_path: Path) -> None:
    """What the in-process monitor shows of TLS, an attached console shows too (tui-echo web runs one a tab)."""
    tmux_path = needs_tool("tmux")
    path = tmp_path / "control.sock"
    headless = server(started, path, "--tls-self-signed")
    fingerprint = openssl_fingerprint(headless.port)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed: compared by fingerprint
    client = context.wrap_socket(socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT))
    echo(client, b"secret\n")
    cipher = client.cipher()[0].removeprefix("TLS_")
    tmux = Tmux(tmux_path)
    try:
        tmux.run("new-session", "-d", "-x", "120", "-y", "40", "env PS1='$ ' bash --norc --noprofile")
        tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} attach {path}; echo exit=$?", "Enter")
        tmux.wait_for(re.escape(f"TLS SHA-256 {fingerprint[:11]}…{fingerprint[-8:]}"))  # the stats bar
        tmux.wait_for(r"(?m)^ *id\W* +peer .* tls ")  # the table's header
        tmux.wait_for(rf"#2 +127\.0\.0\.1:\d+ .* 1\.3 {re.escape(cipher[:18])}")  # (#1 was openssl's)
        # the feed; the fingerprint may wrap to a line of its own, under the line's text
        tmux.wait_for(rf"with TLS, certificate SHA-256[\s│]+{re.escape(fingerprint[:30])}")
        tmux.run("send-keys", "q")
        tmux.wait_for(r"(?m)^exit=0$")
    finally:
        subprocess.run([tmux.tmux, "-L", tmux.socket, "kill-server"], capture_output=True)
        client.close()


FAKE_V1_SERVER = """
import json, socket, sys
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen()
print("ready", flush=True)
while True:
    console, _ = listener.accept()
    server = {"pid": 1, "version": "0.1.0", "host": "127.0.0.1", "port": 1, "addresses": ["127.0.0.1:1"]}
    hello = {"type": "hello", "protocol": "tui-echo-control", "version": 1, "server": server}
    console.sendall(json.dumps(hello).encode() + b"\\n")
    print("got", console.recv(65536), flush=True)
    console.close()
"""


def test_a_console_refuses_a_server_of_another_protocol_version_with_one_line(started, tmp_path: Path) -> None:
    path = tmp_path / "old.sock"
    old = Lines([sys.executable, "-c", FAKE_V1_SERVER, str(path)])
    started.append(old)
    old.wait_for(lambda line: line == "ready")
    for command in (["ctl", str(path), "clients"], ["events", str(path)]):
        done = run_cli(command)
        name = command[0]
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.splitlines() == [
            f"tui-echo {name}: error: the server at {path} speaks version 1 of the control protocol and this "
            "console version 5: use a console from the same tui-echo release as the server"
        ]
        assert old.wait_for(lambda line: line.startswith("got")) == "got b''"  # it sent nothing after the hello


def test_help_lists_the_subcommands_and_each_has_its_own() -> None:
    done = run_cli(["--help"])
    assert done.returncode == 0
    for word in ("attach", "list", "events", "ctl", "--control", "--no-control"):
        assert word in done.stdout
    ctl_line = done.stdout[done.stdout.index("tui-echo ctl [TARGET] COMMAND") : done.stdout.index("tui-echo web")]
    assert re.findall(r"\|\s+([a-z-]+)", "|" + ctl_line.split("COMMAND", 1)[1]) == list(CTL_ACTIONS)
    for name in ("attach", "list", "events", "ctl"):
        sub = run_cli([name, "--help"])
        assert sub.returncode == 0 and f"tui-echo {name}" in sub.stdout
    unknown = run_cli(["ctl", "reboot"])
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
