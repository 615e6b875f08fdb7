"""Run the installed ``tui-echo`` command as a subprocess and read its output as it comes."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO
from pathlib import Path

from .helpers import TIMEOUT

COMMAND = Path(sys.executable).with_name("tui-echo")


def tui_echo_command() -> str:
    assert COMMAND.exists(), f"{COMMAND} is missing: install the project with pip install -e '.[test]'"
    return str(COMMAND)


def _status(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name: state, parent, ...; None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, waiting for its parent to collect its exit code)."""
    status = _status(pid)
    return status is None or status[0] == "Z"


def parent_of(pid: int) -> int | None:
    status = _status(pid)
    return None if status is None else int(status[1])


def run_cli(args: Sequence[str], prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, tui_echo_command(), *args], capture_output=True, text=True, timeout=TIMEOUT)


class LineReader:
    """The lines of a process's output stream, collected by a thread, to wait for with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        """The next line (from those not yet seen) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout} s; got: {self.lines[-20:]}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended without a matching line; got: {self.lines[-20:]}")
            self.lines.append(line)
            if predicate(line):
                return line

    def wait_for_text(self, text: str, timeout: float = TIMEOUT) -> str:
        return self.wait_for(lambda line: text in line, timeout)

    def rest(self) -> list[str]:
        """Every line still to come, once the process has ended."""
        rest = []
        while (line := self._queue.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        self.lines += rest
        return rest


class HeadlessProcess(LineReader):
    """``tui-echo --headless --port 0 ...`` with its stdout lines collected by a thread."""

    def __init__(self, *args: str, open_files: int | None = None, file_size: int | None = None) -> None:
        """``open_files``: the process's hard limit on open files, to run it out of them; ``file_size``: the
        largest file it may write (RLIMIT_FSIZE: a write past it fails with EFBIG, as on a full disk)."""

        def limits() -> None:
            if open_files:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
            if file_size:
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

        self.proc = subprocess.Popen(
            [tui_echo_command(), "--headless", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            preexec_fn=limits if open_files or file_size else None,
        )
        assert self.proc.stdout is not None
        super().__init__(self.proc.stdout)
        first = self.wait_for(lambda line: True)
        self.first_line = first
        match = re.search(r'listening on (?:\[[^\]]*\]|[^\s:]+):(\d+)|"port":(\d+)', first)
        assert match, f"first line does not say where it listens: {first!r}"
        self.port = int(match.group(1) or match.group(2))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = TIMEOUT) -> tuple[int, float]:
        """Send ``sig``; return (exit code, seconds it took to exit)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def listening_port(pid: int, timeout: float = TIMEOUT) -> int:
    """The IPv4 TCP port a process listens on, found in /proc: for a server whose log cannot be read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sockets = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # an fd closed meanwhile
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    sockets.add(target[len("socket:[") : -1])
        with open("/proc/net/tcp") as table:
            for row in list(table)[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in sockets:  # 0A: LISTEN; field 9: the socket's inode
                    return int(fields[1].split(":")[1], 16)
        time.sleep(0.02)
    raise AssertionError(f"process {pid} listens on no TCP port after {timeout} s")


def needs_tool(name: str) -> str:
    """The path of a system tool the test needs; in CI a missing one is a failure, not a skip."""
    import pytest
    import shutil

    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run should have installed it")
        pytest.skip(f"{name} is not installed (CI installs it)")
    return path


def is_root() -> bool:
    return os.geteuid() == 0


def privileged_port_denied_prefix() -> list[str]:
    """Run a command without the right to bind ports below 1024, even as root."""
    if not is_root():
        return []
    return [needs_tool("setpriv"), "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service"]
