"""Memory per idle connection: the server's RSS slope over 1,000, 5,000 and 10,000 idle clients.

The real `tui-echo` runs once --headless (its log read from a pipe) and once with the monitor in a
tmux pane (120x40, as bench_monitor.py does). This script opens the clients itself, plain blocking
sockets that send nothing, in steps up to each level, and after each step waits until the server
has them all: headless by its log's "connected (N now)", the monitor by its stats bar's
"clients N now". The server's VmRSS is then read from /proc/PID/status, once it has stopped
changing. The slope is ΔRSS/Δconnections by least squares over the levels; the intercept is what
the server holds with no client at all.

Last, every one of the clients sends one byte and must get it back: the server holds them all, not
merely the kernel. The script raises its own soft limit on open files to the hard limit (10,000
client sockets here, and as many in the server, which inherits the limit and raises its own).
Exit status 1 if some client did not get its byte back.

usage: python benchmarks/bench_memory.py [--levels 1000,5000,10000] [--modes headless,monitor]
"""

from __future__ import annotations

import argparse
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import BUILD, TUI_ECHO, load_average  # noqa: E402
from bench_monitor import Pane  # noqa: E402

CONNECT_STEP = 500  # clients opened at once, before waiting for the server to catch up: inside its backlog
SETTLE_SECONDS = 1.0  # RSS must hold still this long before it is read
_NOW = re.compile(r"connected \((\d+) now\)")
_CLIENTS_NOW = re.compile(r"clients (\d+) now")
_LISTENING = re.compile(r"listening (?:on )?127\.0\.0\.1:(\d+)")


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        sys.exit(f"{needed} connections need {needed} open files, the hard limit is {soft}: raise `ulimit -Hn`")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def settled_rss(pid: int, timeout: float = 30.0) -> int:
    """VmRSS once it has not changed for SETTLE_SECONDS (the log drained, the monitor repainted)."""
    deadline = time.monotonic() + timeout
    last, since = rss_kib(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_kib(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE_SECONDS:
            break
    return last


@dataclass
class Server:
    """A tui-echo under test: its pid, its port, and how many clients it says it has now."""

    pid: int
    port: int
    clients_now: Callable[[], int]
    close: Callable[[], None]


def headless() -> Server:
    proc = subprocess.Popen([str(TUI_ECHO), "--headless", "--port", "0"], stdout=subprocess.PIPE, text=True, cwd=BUILD)
    assert proc.stdout is not None
    stdout = proc.stdout
    first = stdout.readline()
    match = _LISTENING.search(first) or sys.exit(f"tui-echo did not start: {first!r}")
    now = [0]

    def read() -> None:  # read the log as a terminal would, keeping the latest count
        for line in stdout:
            found = _NOW.search(line)
            if found:
                now[0] = int(found.group(1))

    threading.Thread(target=read, daemon=True).start()

    def close() -> None:
        proc.terminate()
        proc.wait(10)

    return Server(proc.pid, int(match.group(1)), lambda: now[0], close)


def server_process(pid: int) -> int:
    """The tui-echo process under the pane's shell (or the pane's own process, if the shell exec'd it)."""
    if "tui-echo" in Path(f"/proc/{pid}/comm").read_text():
        return pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"cannot tell tui-echo among the children of {pid}: {children}")
    return server_process(int(children[0]))


def monitor() -> Server:
    pane = Pane([str(TUI_ECHO), "--port", "0"])
    port = int(pane.wait_for(_LISTENING).group(1))

    def clients_now() -> int:
        found = _CLIENTS_NOW.search(pane.screen())
        return int(found.group(1)) if found else 0

    return Server(server_process(pane.pid), port, clients_now, pane.close)


def wait_for_clients(server: Server, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := server.clients_now()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server has {now} of {count} clients after {timeout:g} s")
        time.sleep(0.05)


def echo_all(clients: list[socket.socket], timeout: float = 60.0) -> int:
    """Every client sends one byte; how many got it back within the timeout."""
    with selectors.DefaultSelector() as selector:
        for client in clients:
            client.setblocking(False)
            client.send(b"x")
            selector.register(client, selectors.EVENT_READ)
        echoed, deadline = 0, time.monotonic() + timeout
        while echoed < len(clients) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock.recv(16) == b"x":
                    echoed += 1
                selector.unregister(sock)
    return echoed


def slope(points: list[tuple[int, int]]) -> tuple[float, float]:
    """Least squares: KiB per connection and KiB at none."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    per_connection = sxy / sxx
    return per_connection, mean_y - per_connection * mean_x


@dataclass
class Result:
    mode: str
    idle_kib: int  # RSS with no client
    points: list[tuple[int, int]]  # (connections, RSS KiB)
    echoed: int


def run(mode: str, levels: list[int]) -> Result:
    server = headless() if mode == "headless" else monitor()
    clients: list[socket.socket] = []
    try:
        idle = settled_rss(server.pid)
        points = []
        for level in levels:
            while len(clients) < level:
                for _ in range(min(CONNECT_STEP, level - len(clients))):
                    clients.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
                wait_for_clients(server, len(clients))
            points.append((level, settled_rss(server.pid)))
            print(f"{mode:<8} {level:>6} idle clients  RSS {points[-1][1] / 1024:7.1f} MiB", flush=True)
        echoed = echo_all(clients)
        print(f"{mode:<8} {echoed} of {len(clients)} clients got their byte back", flush=True)
        return Result(mode, idle, points, echoed)
    finally:
        for client in clients:
            client.close()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1000,5000,10000", help="idle connections at each reading")
    parser.add_argument("--modes", default="headless,monitor", help="headless, monitor or both")
    args = parser.parse_args()
    if not TUI_ECHO.exists():
        sys.exit(f"{TUI_ECHO} not found: run `make run` or pip install -e . first")
    levels = sorted(int(x) for x in args.levels.split(","))
    if len(levels) < 2:
        sys.exit("--levels needs at least two counts for a slope")
    raise_fd_limit(levels[-1] + 100)
    BUILD.mkdir(exist_ok=True)
    load_before = load_average()
    results = [run(mode, levels) for mode in args.modes.split(",")]
    print(f"\nload average {load_before} before and {load_average()} after\n")
    header = " | ".join(f"RSS at {level:,}" for level in levels)
    print(f"| mode | RSS with no client | {header} | per idle connection (least squares) | all echo one byte |")
    print("|---|---|" + "---|" * len(levels) + "---|---|")
    for result in results:
        per_connection, _ = slope(result.points)
        cells = " | ".join(f"{rss / 1024:.1f} MiB" for _, rss in result.points)
        print(
            f"| {result.mode} | {result.idle_kib / 1024:.1f} MiB | {cells} | {per_connection:.2f} KiB "
            f"| {result.echoed:,} of {result.points[-1][0]:,} |"
        )
    if any(result.echoed < levels[-1] for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
