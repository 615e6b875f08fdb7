"""How long a stop takes with 10,000 clients: headless (SIGTERM) and the monitor (`q`), to every EOF and to exit.

Per round and per server: a fresh `tui-echo` (headless, its log read from a pipe and dropped; or
the monitor in a tmux pane of 120x40), --clients plain blocking sockets that connect and send
nothing, and, once the server has accepted them all (its open files in /proc) and come to rest
(under a tenth of a core for 0.5 s), the stop: SIGTERM
to the headless server, `q` pressed in the monitor's pane. The clock starts with the signal (the
key); the figures are the time until the last client has read its EOF and until the process has
exited (exit status 0 checked), and the CPU time the server used meanwhile (from /proc: on a
busy machine the wall-clock figures stretch with the load, this one far less). Every client must
read a clean EOF (b"", not a reset).

Two client behaviours (--clients-do): `hold` clients keep their socket open after the EOF (so the
server's lingering close waits for them to the end of its linger), `close` clients close as soon as
they read it (what nc and most programs do). Builds alternate within each round
(--compare-tui-echo: another build's tui-echo executable, e.g. main's .venv/bin/tui-echo).

usage: python benchmarks/bench_stop.py [--clients 10000] [--rounds 3] [--modes headless,monitor]
                                       [--clients-do hold,close] [--compare-tui-echo PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import BUILD, TUI_ECHO, load_average  # noqa: E402
from bench_memory import raise_fd_limit, server_process  # noqa: E402
from bench_monitor import Pane  # noqa: E402

CONNECT_STEP = 1000  # clients opened before the next batch: inside the listen queue (somaxconn 4096 here)
TIMEOUT = 60.0
HERTZ = os.sysconf("SC_CLK_TCK")  # /proc's CPU ticks a second
_LISTENING = re.compile(r"listening (?:on )?127\.0\.0\.1:(\d+)")


@dataclass
class Stop:
    to_last_eof: float
    to_exit: float
    cpu: float  # CPU seconds the server used from the signal to its exit
    clean: int  # clients that read a clean EOF (not a reset)
    code: int | None


def open_clients(port: int, count: int) -> list[socket.socket]:
    clients: list[socket.socket] = []
    while len(clients) < count:
        step = min(CONNECT_STEP, count - len(clients))
        clients += [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(step)]
    return clients


def watch_eofs(clients: list[socket.socket], close_on_eof: bool, started: float) -> tuple[float, int]:
    """Read every client until its EOF; (seconds from ``started`` to the last EOF, clean EOFs)."""
    clean = 0
    last = started
    with selectors.DefaultSelector() as selector:
        for client in clients:
            client.setblocking(False)
            selector.register(client, selectors.EVENT_READ)
        remaining = len(clients)
        deadline = time.monotonic() + TIMEOUT
        while remaining and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = None
                if data:
                    continue  # nothing is echoed here: nothing was sent
                clean += data == b""
                last = time.monotonic()
                remaining -= 1
                selector.unregister(sock)
                if close_on_eof:
                    sock.close()
    return last - started, clean


def process_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def open_files(pid: int) -> int:
    """The process's open files: it has accepted a client once its socket is one (any build, any protocol)."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_until_idle(pid: int, window: float = 0.5, busy: float = 0.1) -> None:
    """Until the server uses under ``busy`` of a core over ``window`` seconds: every connect handled
    and logged (the monitor repaints now and then, so not nothing), so that the stop is measured
    from a server at rest."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        before = cpu_ticks(pid)
        time.sleep(window)
        if cpu_ticks(pid) - before <= busy * window * HERTZ:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not come to rest within {TIMEOUT:g} s")


def follow_until_gone(pid: int) -> Callable[[], tuple[float, int]]:
    """From now, in a thread: when the process ends (a zombie counts) and its CPU ticks then."""
    ticks = [cpu_ticks(pid)]

    def follow() -> None:
        while True:
            try:
                ticks.append(cpu_ticks(pid))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                return
            if process_gone(pid):
                return
            time.sleep(0.002)

    at = when_done(follow)
    return lambda: (at(), ticks[-1])


def when_done(wait: Callable[[], object]) -> Callable[[], float]:
    """Run ``wait`` in a thread from now; the returned function waits for it and says when it returned."""
    done: list[float] = []
    thread = threading.Thread(target=lambda: (wait(), done.append(time.monotonic())), daemon=True)
    thread.start()

    def at() -> float:
        thread.join(TIMEOUT)
        if not done:
            raise TimeoutError(f"not done within {TIMEOUT:g} s")
        return done[0]

    return at


def wait_for_count(count: int, read: Callable[[], int], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while read() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not {count} clients after {TIMEOUT:g} s")
        time.sleep(0.1)


def stop_headless(tui_echo: Path, clients_count: int, close_on_eof: bool) -> Stop:
    proc = subprocess.Popen(
        [str(tui_echo), "--headless", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=BUILD,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = _LISTENING.search(first) or sys.exit(f"tui-echo did not start: {first!r}")
    drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
    before = open_files(proc.pid)
    clients = open_clients(int(match.group(1)), clients_count)
    try:
        wait_for_count(clients_count, lambda: open_files(proc.pid) - before, "headless")
        wait_until_idle(proc.pid)
        ticks = cpu_ticks(proc.pid)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        exited = follow_until_gone(proc.pid)
        to_eof, clean = watch_eofs(clients, close_on_eof, started)
        at, last_ticks = exited()
        return Stop(to_eof, at - started, (last_ticks - ticks) / HERTZ, clean, proc.wait())
    finally:
        for client in clients:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.wait(10)


def stop_monitor(tui_echo: Path, clients_count: int, close_on_eof: bool) -> Stop:
    pane = Pane(["sh", "-c", f"{tui_echo} --port 0; echo exit=$?; sleep 3600"])
    try:
        port = int(pane.wait_for(_LISTENING).group(1))
        pid = server_process(int(Path(f"/proc/{pane.pid}/task/{pane.pid}/children").read_text().split()[0]))
        before = open_files(pid)
        clients = open_clients(port, clients_count)
        try:
            wait_for_count(clients_count, lambda: open_files(pid) - before, "monitor")
            wait_until_idle(pid)
            ticks = cpu_ticks(pid)
            started = time.monotonic()
            pane.keys("q")
            exited = follow_until_gone(pid)
            to_eof, clean = watch_eofs(clients, close_on_eof, started)
            at, last_ticks = exited()
            to_exit, cpu = at - started, (last_ticks - ticks) / HERTZ
            code = re.search(r"exit=(\d+)", pane.wait_for(re.compile(r"exit=\d+")).group(0))
            return Stop(to_eof, to_exit, cpu, clean, int(code.group(1)) if code else None)
        finally:
            for client in clients:
                client.close()
    finally:
        pane.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="headless,monitor")
    parser.add_argument("--clients-do", default="hold,close", help="hold, close or both")
    parser.add_argument("--compare-tui-echo", type=Path, help="another build's tui-echo executable")
    args = parser.parse_args()
    raise_fd_limit(args.clients + 100)
    BUILD.mkdir(exist_ok=True)
    builds = {"this build": TUI_ECHO}
    if args.compare_tui_echo:
        builds["compared"] = args.compare_tui_echo
    load_before = load_average()
    results: dict[tuple[str, str, str], list[Stop]] = {}
    for round_number in range(args.rounds):
        order = list(builds.items())
        if round_number % 2:
            order.reverse()
        for mode in args.modes.split(","):
            for behaviour in args.clients_do.split(","):
                for name, tui_echo in order:
                    run = stop_headless if mode == "headless" else stop_monitor
                    stop = run(tui_echo, args.clients, behaviour == "close")
                    results.setdefault((mode, behaviour, name), []).append(stop)
                    print(
                        f"round {round_number + 1} {mode:<8} clients {behaviour:<5} {name:<10} "
                        f"last EOF {stop.to_last_eof:.2f} s, exit {stop.to_exit:.2f} s (status {stop.code}), "
                        f"server CPU {stop.cpu:.2f} s, "
                        f"{stop.clean} of {args.clients} clean EOFs",
                        flush=True,
                    )
    print(f"\nload average {load_before} before and {load_average()} after\n")
    columns = "to the last EOF (median, max) | to exit (median, max) | server CPU (median) | clean EOFs"
    print(f"| {args.clients:,} clients | clients | build | {columns} |")
    print("|---|---|---|---|---|---|---|")
    for (mode, behaviour, name), stops in results.items():
        eofs = [s.to_last_eof for s in stops]
        exits = [s.to_exit for s in stops]
        print(
            f"| {mode} | {behaviour} | {name} | {statistics.median(eofs):.2f} s, {max(eofs):.2f} s "
            f"| {statistics.median(exits):.2f} s, {max(exits):.2f} s | {statistics.median(s.cpu for s in stops):.2f} s "
            f"| {min(s.clean for s in stops):,} of {args.clients:,} |"
        )


if __name__ == "__main__":
    main()
