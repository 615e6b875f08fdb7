"""bench_monitor.py --clients 10000: the monitor at the default cap, measured as a user meets it.

One round per build (builds alternate, each takes first place in turn), in a tmux pane of 120x40:
  * first paint: this script opens the clients itself (plain blocking sockets that send nothing, as
    fast as it can), and the clock starts when the last connect() returns; it stops when the table's
    title shows them all ("Connections · 10000 now"), which is drawn in the same refresh as the rows;
  * keypresses while some of them echo: 1,000 (--busy) of the idle clients are closed and loadgen.c
    opens 1,000 that echo (so 10,000 in all), then, as in bench_monitor.py, `p` is pressed --presses
    times (the feed's title shows PAUSED) and Down/Up as many times (the table's cursor: the send box
    shows `to #2` / `to #1`, one message further from the key than PAUSED); each press waits --gap
    seconds after the last one showed, and the percentiles are over every press of every round;
  * issue 18's keys, with the same load: in the table's filter prompt (/), "7" and BackSpace in turn
    (--presses times): each one filters all 10,000 rows again, until the stats bar shows (or stops
    showing) "filter: 7"; and go to a client: the palette (ctrl+p) offers "Go to client #N" for a
    random N, and Enter is timed until the send box shows "to #N" (the cursor on that row);
  * q to exit: once the load has stopped, `q` is pressed; the figures are the time until the last of
    the 9,000 idle clients read its EOF (the server's stop) and until the process has exited.
Then the same clients once more against `--headless`, stopped by SIGTERM (what the monitor's `q`
does to the server, without the monitor): its times to the last EOF and to exit are the server's part.

usage: python benchmarks/bench_monitor.py --clients 10000 [--busy 1000] [--rounds 3] [--presses 100]
                                          [--tui-echo BUILD] [--compare-tui-echo BUILD]
"""

from __future__ import annotations

import re
import resource
import selectors
import signal
import socket
import os
import random
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench_echo import BUILD, load_average, rotated
from bench_monitor import KEY_TIMEOUT_SECONDS, Build, Pane, percentile, start_load

_LISTENING = re.compile(r"listening (?:on )?127\.0\.0\.1:(\d+)")
EXIT_TIMEOUT_SECONDS = 30.0


@dataclass
class ScaleRun:
    first_paint_s: float
    pause_keys_s: list[float] = field(default_factory=list)
    cursor_keys_s: list[float] = field(default_factory=list)
    filter_keys_s: list[float] = field(default_factory=list)
    goto_keys_s: list[float] = field(default_factory=list)
    goto_bar_keys_s: list[float] = field(default_factory=list)  # empty for a build without the go-to bar
    quit_to_eof_s: float = 0.0
    quit_to_exit_s: float = 0.0
    headless_to_eof_s: float = 0.0
    headless_to_exit_s: float = 0.0


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"{needed} clients need {needed} open files, the hard limit is {hard}: raise `ulimit -Hn`")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]


def last_eof(clients: list[socket.socket], timeout: float = EXIT_TIMEOUT_SECONDS) -> float:
    """Wait until every client has read its EOF; the time the last one did (monotonic)."""
    with selectors.DefaultSelector() as selector:
        for client in clients:
            client.setblocking(False)
            selector.register(client, selectors.EVENT_READ)
        open_count, last = len(clients), time.monotonic()
        deadline = last + timeout
        while open_count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{open_count} clients never got their EOF")
            for key, _ in selector.select(1.0):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    if sock.recv(4096):
                        continue  # something before the EOF (nothing is expected)
                except ConnectionError:
                    pass
                selector.unregister(sock)
                open_count -= 1
                last = time.monotonic()
    return last


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int) -> float:
    deadline = time.monotonic() + EXIT_TIMEOUT_SECONDS
    while not gone(pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} is still running")
        time.sleep(0.005)
    return time.monotonic()


Press = Callable[[int], tuple[str, Callable[[str], bool]]]  # press n: the key, and "it shows" on a screen


def key_latencies(pane: Pane, presses: int, gap: float, press: Press, styled: bool = False) -> list[float]:
    """Seconds from each key sent until the screen shows it (a capture-pane every 2 ms; ``styled``: with
    the escape sequences)."""
    latencies = []
    screen = pane.styled_screen if styled else pane.screen
    for n in range(presses):
        key, shown = press(n)
        pane.keys(key)
        start = time.monotonic()
        while not shown(screen()):
            if time.monotonic() - start > KEY_TIMEOUT_SECONDS:
                raise TimeoutError(f"{key} never showed:\n{pane.screen()}")
            time.sleep(0.002)
        latencies.append(time.monotonic() - start)
        time.sleep(gap)
    return latencies


def pause_key(n: int) -> tuple[str, Callable[[str], bool]]:
    """The feed's pause, as bench_monitor.py presses it at 100 and 1,000 clients (an even count: left live)."""
    paused = n % 2 == 0
    return "p", lambda screen: ("PAUSED" in screen) == paused


def cursor_key(pane: Pane) -> Press:
    """The table's cursor between its first two rows: the row shown in the cursor's colours (read with the
    escape sequences, from the cursor's row as it is before the first press: #1's)."""
    found = re.search(r"((?:\x1b\[[0-9;]*m)+) *#1 ", pane.styled_screen())
    if found is None:
        raise RuntimeError(f"the cursor is not on #1:\n{pane.screen()}")
    cursor = re.escape(found.group(1))
    on_first, on_second = re.compile(cursor + " *#1 "), re.compile(cursor + " *#2 ")

    def press(n: int) -> tuple[str, Callable[[str], bool]]:
        row = on_second if n % 2 == 0 else on_first
        return ("Down" if n % 2 == 0 else "Up"), lambda screen: row.search(screen) is not None

    return press


def filter_key(n: int) -> tuple[str, Callable[[str], bool]]:
    """In the open filter prompt: "7" (every row whose id, port or address has a 7), then BackSpace (every row)."""
    if n % 2 == 0:
        return "7", lambda screen: "filter: 7 " in screen
    return "BSpace", lambda screen: "filter: " not in screen


def connected_ids(command: list[str], port: int) -> list[int]:
    """The clients connected now, by the server's word (`ctl PORT clients`): the idle clients closed to make
    room for the busy ones are not always the highest ids (a go-to to one of them never shows)."""
    listing = subprocess.run(
        command + ["ctl", str(port), "clients"], capture_output=True, text=True, check=True, cwd=BUILD, timeout=60
    ).stdout
    return [int(found) for found in re.findall(r"(?m)^\s*#(\d+)\s", listing)]


def go_to_latencies(pane: Pane, presses: int, gap: float, connected: list[int]) -> list[float]:
    """Seconds from Enter on the palette's "Go to client #N" (N one of ``connected``, not the cursor's #1) until
    the send box shows "to #N"."""
    latencies, ids = [], random.Random(18).sample(sorted(n for n in connected if n >= 2), presses)
    for client_id in ids:
        pane.keys("C-p")
        pane.wait_for(re.compile(r"Search for commands"))
        pane.keys(f"#{client_id}")
        pane.wait_for(re.compile(rf"Go to client #{client_id}\b"))
        pane.keys("Enter")
        start = time.monotonic()
        shown = re.compile(rf"to #{client_id}\b")
        while not shown.search(pane.screen()):
            if time.monotonic() - start > KEY_TIMEOUT_SECONDS:
                raise TimeoutError(f"go to #{client_id} never showed:\n{pane.screen()}")
            time.sleep(0.002)
        latencies.append(time.monotonic() - start)
        time.sleep(gap)
    return latencies


def go_to_bar_latencies(pane: Pane, presses: int, gap: float, connected: list[int]) -> list[float]:
    """Seconds from Enter in the go-to bar (the palette's "Go to client…", opened once) with "#N" typed until the
    send box shows "to #N"; empty if this build has no go-to bar (its "Go to client…" asks on a screen)."""
    pane.keys("C-p")
    pane.wait_for(re.compile(r"Search for commands"))
    pane.keys("Go to client")
    pane.wait_for(re.compile(r"Go to client…"))
    pane.keys("Enter")
    try:
        pane.wait_for(re.compile(r"go to +#1234 · Enter goes"), timeout=5)  # the bar, empty (not a build's question)
    except TimeoutError:
        pane.keys("Escape")
        return []
    latencies, ids = [], random.Random(19).sample(sorted(n for n in connected if n >= 2), presses)
    for client_id in ids:
        pane.keys("C-u")
        pane.wait_for(re.compile(r"go to +#1234 · Enter goes"))  # emptied (ctrl+u is an action: it may come after keys)
        pane.keys(f"#{client_id}")
        pane.wait_for(re.compile(rf"go to +#{client_id}\b"))
        pane.keys("Enter")
        start = time.monotonic()
        shown = re.compile(rf"to #{client_id}\b")
        while not shown.search(pane.screen().split("go to", 1)[-1].split("\n", 1)[-1]):  # the send box's, not the bar's
            if time.monotonic() - start > KEY_TIMEOUT_SECONDS:
                raise TimeoutError(f"go to #{client_id} from the bar never showed:\n{pane.screen()}")
            time.sleep(0.002)
        latencies.append(time.monotonic() - start)
        time.sleep(gap)
    pane.keys("Escape")
    return latencies


def monitor_run(
    command: list[str], loadgen: Path, clients: int, busy: int, presses: int, gap: float, seconds: float
) -> ScaleRun:
    pane = Pane(command + ["--port", "0"])
    idle: list[socket.socket] = []
    try:
        port = int(pane.wait_for(_LISTENING).group(1))
        pid = server_pid(pane.pid)
        idle = connect(port, clients)
        connected = time.monotonic()
        pane.wait_for(re.compile(rf"Connections · {clients} now"), timeout=60)
        result = ScaleRun(first_paint_s=time.monotonic() - connected)
        for client in idle[clients - busy :]:  # make room for the busy ones: 10,000 in all
            client.close()
        idle = idle[: clients - busy]
        pane.wait_for(re.compile(rf"Connections · {clients - busy} now"), timeout=60)
        load = start_load(loadgen, str(port), busy, presses * 2 * (gap + KEY_TIMEOUT_SECONDS) + 60)
        try:
            pane.wait_for(re.compile(rf"Connections · {clients} now"), timeout=60)
            time.sleep(seconds)  # the load at full speed before the first press
            result.pause_keys_s = key_latencies(pane, presses, gap, pause_key)
            result.cursor_keys_s = key_latencies(pane, presses, gap, cursor_key(pane), styled=True)
            pane.keys("/")
            pane.wait_for(re.compile(r"filter / "))
            result.filter_keys_s = key_latencies(pane, presses, gap, filter_key)
            pane.keys("Escape")
            pane.wait_for(re.compile(r"(?m)^ *Connections · "))
            connected = connected_ids(command, port)
            result.goto_keys_s = go_to_latencies(pane, presses, gap, connected)
            result.goto_bar_keys_s = go_to_bar_latencies(pane, presses, gap, connected)
            if load.poll() is not None:
                raise RuntimeError("the load ended before the keypresses did")
        finally:
            load.send_signal(signal.SIGTERM)
            load.communicate(timeout=60)
        pane.wait_for(re.compile(rf"Connections · {clients - busy} now"), timeout=60)
        pane.keys("q")
        quit_at = time.monotonic()
        result.quit_to_eof_s = last_eof(idle) - quit_at
        result.quit_to_exit_s = wait_gone(pid) - quit_at
        return result
    finally:
        for client in idle:
            client.close()
        pane.close()


def headless_stop(command: list[str], clients: int) -> tuple[float, float]:
    """SIGTERM to `--headless` holding ``clients`` idle clients: seconds to the last EOF, and to exit."""
    proc = subprocess.Popen(
        command + ["--port", "0", "--headless"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    idle: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        stdout = proc.stdout
        match = _LISTENING.search(stdout.readline())
        if match is None:
            raise RuntimeError("tui-echo --headless did not say where it listens")
        all_in = threading.Event()

        def read() -> None:  # the log, as a terminal would read it, to its end
            for line in stdout:
                if f"({clients} now)" in line:
                    all_in.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        idle = connect(int(match.group(1)), clients)
        if not all_in.wait(60):
            raise TimeoutError(f"the headless server never logged {clients} clients")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        eof = last_eof(idle) - signalled
        proc.wait(EXIT_TIMEOUT_SECONDS)
        exited = time.monotonic() - signalled
        reader.join(10)
        return eof, exited
    finally:
        for client in idle:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def server_pid(pane_pid: int) -> int:
    """The process tmux's pane runs: the command itself, or the one child of a shell that did not exec it."""
    if "sh" not in Path(f"/proc/{pane_pid}/comm").read_text().strip():
        return pane_pid
    (child,) = Path(f"/proc/{pane_pid}/task/{pane_pid}/children").read_text().split()
    return int(child)


def scale_table(names: list[str], runs: dict[str, list[ScaleRun]], clients: int, busy: int) -> list[str]:
    rows = [
        f"| build | first paint of {clients:,} rows | `p` presses | p50 | p99 | max "
        "| Down/Up presses | p50 | p99 | max | filter (/) presses | p50 | p99 | max | go-to presses | p50 | p99 | max "
        "| go-to bar presses | p50 | p99 | max "
        "| `q` to the last EOF | `q` to exit | headless SIGTERM to the last EOF | to exit |",
        "|---" * 26 + "|",
    ]
    for name in names:
        measured = runs[name]
        pause = [s * 1000 for r in measured for s in r.pause_keys_s]
        cursor = [s * 1000 for r in measured for s in r.cursor_keys_s]
        filters = [s * 1000 for r in measured for s in r.filter_keys_s]
        goes = [s * 1000 for r in measured for s in r.goto_keys_s]
        bar_goes = [s * 1000 for r in measured for s in r.goto_bar_keys_s]

        def keys(ms: list[float]) -> str:
            if not ms:
                return "– | – | – | –"
            return f"{len(ms)} | {percentile(ms, 50):.0f} ms | {percentile(ms, 99):.0f} ms | {max(ms):.0f} ms"

        def median(attr: str) -> str:
            return f"{statistics.median(getattr(r, attr) for r in measured):.2f} s"  # noqa: B023

        rows.append(
            f"| {name} | {median('first_paint_s')} | {len(pause)} | {percentile(pause, 50):.0f} ms "
            f"| {percentile(pause, 99):.0f} ms | {max(pause):.0f} ms | {len(cursor)} | {percentile(cursor, 50):.0f} ms "
            f"| {percentile(cursor, 99):.0f} ms | {max(cursor):.0f} ms | {keys(filters)} | {keys(goes)} "
            f"| {keys(bar_goes)} "
            f"| {median('quit_to_eof_s')} "
            f"| {median('quit_to_exit_s')} | {median('headless_to_eof_s')} | {median('headless_to_exit_s')} |"
        )
    return rows


SETTLE_SECONDS = 2.0  # the load at full speed before the first press


def run_at_scale(
    builds: list[Build], loadgen: Path, clients: int, busy: int, rounds: int, presses: int, gap: float
) -> None:
    raise_fd_limit(clients + 200)
    load_before = load_average()
    runs: dict[str, list[ScaleRun]] = {build.name: [] for build in builds}
    for round_no in range(rounds):
        for build in rotated(builds, round_no):
            run = monitor_run(build.command, loadgen, clients, busy, presses, gap, SETTLE_SECONDS)
            run.headless_to_eof_s, run.headless_to_exit_s = headless_stop(build.command, clients)
            runs[build.name].append(run)
            pause = [s * 1000 for s in run.pause_keys_s]
            cursor = [s * 1000 for s in run.cursor_keys_s]
            filters = [s * 1000 for s in run.filter_keys_s]
            goes = [s * 1000 for s in run.goto_keys_s]
            bar_goes = [s * 1000 for s in run.goto_bar_keys_s] or [float("nan")]
            print(
                f"round {round_no + 1} {build.name:<16} first paint {run.first_paint_s:.2f} s  "
                f"p: p50 {percentile(pause, 50):.0f} p99 {percentile(pause, 99):.0f} ms  "
                f"Down/Up: p50 {percentile(cursor, 50):.0f} p99 {percentile(cursor, 99):.0f} ms  "
                f"filter: p50 {percentile(filters, 50):.0f} p99 {percentile(filters, 99):.0f} ms  "
                f"go to: p50 {percentile(goes, 50):.0f} p99 {percentile(goes, 99):.0f} ms  "
                f"go-to bar: p50 {percentile(bar_goes, 50):.0f} p99 {percentile(bar_goes, 99):.0f} ms  "
                f"q: last EOF {run.quit_to_eof_s:.2f} s, exit {run.quit_to_exit_s:.2f} s  "
                f"headless: last EOF {run.headless_to_eof_s:.2f} s, exit {run.headless_to_exit_s:.2f} s  "
                f"(load {load_average()})",
                flush=True,
            )
    print(
        f"\n{datetime.now():%Y-%m-%d}, {os.cpu_count()} cores, load average {load_before} before and "
        f"{load_average()} after; {clients:,} clients, {busy:,} of them echoing during the keypresses "
        f"(loadgen, 64-byte messages, one in flight each); medians of {rounds} rounds; keypresses: {presses} "
        "of each kind a round, all rounds together\n"
    )
    print("\n".join(scale_table([build.name for build in builds], runs, clients, busy)))
