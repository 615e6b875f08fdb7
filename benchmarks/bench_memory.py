"""Memory per client: the server's RSS slope over 1,000, 5,000 and 10,000 clients, in three cases.

- ``idle``: clients that connected and never sent anything;
- ``sent``: clients that each sent 60 KiB once, read their whole echo back, and went idle;
- ``partial``: clients that each hold a 60 KiB partial line (no newline yet) on a server with
  ``--framing line`` and a reply rule, which waits for the newline to match it;
- ``tls``: clients that made a TLS handshake (``--tls-self-signed``, TLS 1.3) and sent nothing.

The real `tui-echo` runs once --headless (its log read from a pipe) and once with the monitor in a
tmux pane (120x40, as bench_monitor.py does), a fresh server per case. This script opens the
clients itself, plain blocking sockets, in steps up to each level; each new client does its case's
part; then it waits until the server has them all, through its control socket (a snapshot's
``clients_now`` and ``bytes_in``). The server's VmRSS is then read from /proc/PID/status, once it
has stopped changing. The slope is ΔRSS/Δclients by least squares over the levels; the intercept
is what the server holds with no client at all. The kernel's socket memory is not in a process's
RSS: the script reads the kernel's slab (``Slab`` in /proc/meminfo) and the TCP buffers
(``mem`` in /proc/net/sockstat) as well, machine-wide, both ends of each loopback connection.

Last, every client sends one more byte (a newline in ``partial``) and must get its echo back: the
server holds them all, not merely the kernel. The script raises its own soft limit on open files to
the hard limit (10,000 client sockets here, and as many in the server, which inherits the limit
and raises its own). Exit status 1 if some client did not get its echo back.

usage: python benchmarks/bench_memory.py [--levels 1000,5000,10000] [--modes headless,monitor]
                                         [--cases idle,sent,partial,tls]
"""

from __future__ import annotations

import argparse
import re
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import BUILD, TUI_ECHO, load_average  # noqa: E402
from bench_monitor import Pane  # noqa: E402

from tui_echo.control.client import Connection, ConsoleError  # noqa: E402

CONNECT_STEP = 500  # clients opened at once, before waiting for the server to catch up: inside its backlog
SETTLE_SECONDS = 1.0  # RSS must hold still this long before it is read
CHUNK = 60 * 1024
_LISTENING = re.compile(r"listening (?:on )?127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # the server's flags
    payload: bytes  # what each client sends once it is connected
    echoed: bool  # whether it reads the payload's echo back before going idle
    last: bytes  # what each client sends at the end; its echo must come back whole
    last_echo: int
    tls: bool = False


CASES = {
    "idle": Case("idle", (), b"", False, b"x", 1),
    "sent": Case("sent", (), bytes(range(256)) * (CHUNK // 256), True, b"x", 1),
    "partial": Case("partial", ("--framing", "line", "--rule", "PING => PONG"), b"a" * CHUNK, False, b"\n", CHUNK + 1),
    "tls": Case("tls", ("--tls-self-signed",), b"", False, b"x", 1, tls=True),
}
CLIENT_TLS = ssl.create_default_context()
CLIENT_TLS.check_hostname = False
CLIENT_TLS.verify_mode = ssl.CERT_NONE


def tls_echo_all(clients: list[socket.socket], data: bytes) -> int:
    """One at a time (a TLS socket's buffered bytes hide from a selector): how many got ``data`` back."""
    echoed = 0
    for client in clients:
        client.sendall(data)
        echoed += client.recv(len(data)) == data
    return echoed


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


def kernel_kib() -> tuple[int, int]:
    """Machine-wide: the kernel's slab (sockets, their files and inodes) and TCP's buffer pages, in KiB."""
    slab = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("Slab:")
    )
    tcp = Path("/proc/net/sockstat").read_text().split("TCP:")[1].split("\n")[0].split()
    return slab, int(tcp[tcp.index("mem") + 1]) * (resource.getpagesize() // 1024)


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
    """A tui-echo under test: its pid, its port, its control socket."""

    pid: int
    port: int
    control: Path
    close: Callable[[], None]

    def totals(self) -> dict[str, int]:
        try:
            connection = Connection.open(self.control, events=False, role="list")
        except ConsoleError:
            return {}
        connection.close()
        return dict(connection.snapshot["totals"])


def headless(case: Case, control: Path) -> Server:
    command = [str(TUI_ECHO), "--headless", "--port", "0", "--control", str(control), *case.args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=BUILD)
    assert proc.stdout is not None
    stdout = proc.stdout
    first = stdout.readline()
    match = _LISTENING.search(first) or sys.exit(f"tui-echo did not start: {first!r}")
    # Read the log as a terminal would (a thread that drops it), so that the server never waits for it.
    subprocess.Popen(["cat"], stdin=stdout, stdout=subprocess.DEVNULL)

    def close() -> None:
        proc.terminate()
        proc.wait(10)

    return Server(proc.pid, int(match.group(1)), control, close)


def server_process(pid: int) -> int:
    """The tui-echo process under the pane's shell (or the pane's own process, if the shell exec'd it)."""
    if "tui-echo" in Path(f"/proc/{pid}/comm").read_text():
        return pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"cannot tell tui-echo among the children of {pid}: {children}")
    return server_process(int(children[0]))


def monitor(case: Case, control: Path) -> Server:
    pane = Pane([str(TUI_ECHO), "--port", "0", "--control", str(control), *case.args])
    port = int(pane.wait_for(_LISTENING).group(1))
    return Server(server_process(pane.pid), port, control, pane.close)


def wait_for(server: Server, clients: int, bytes_in: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (totals := server.totals()).get("clients_now") != clients or totals.get("bytes_in") != bytes_in:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the server has {totals} after {timeout:g} s; expected {clients} clients, {bytes_in} B in"
            )
        time.sleep(0.1)


def send_all_read(clients: list[socket.socket], data: bytes, echo: int, timeout: float = 60.0) -> int:
    """Each client sends ``data`` and reads ``echo`` bytes back (none if 0); how many got all of them."""
    with selectors.DefaultSelector() as selector:
        for client in clients:
            client.sendall(data)
            if echo:
                client.setblocking(False)
                selector.register(client, selectors.EVENT_READ, [0])
        done, deadline = 0 if echo else len(clients), time.monotonic() + timeout
        while done < len(clients) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                got = sock.recv(65536)
                key.data[0] += len(got)
                if not got or key.data[0] >= echo:
                    done += key.data[0] == echo
                    selector.unregister(sock)
                    sock.setblocking(True)
    return done


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
    case: str
    idle_kib: int  # RSS with no client
    points: list[tuple[int, int]]  # (connections, RSS KiB)
    kernel: list[tuple[int, tuple[int, int]]]  # (connections, (slab KiB, TCP buffers KiB))
    echoed: int


def run(mode: str, case: Case, levels: list[int]) -> Result:
    control = Path(tempfile.mkdtemp(prefix="bench-memory-")) / "control.sock"
    server = headless(case, control) if mode == "headless" else monitor(case, control)
    clients: list[socket.socket] = []
    try:
        wait_for(server, 0, 0)
        idle = settled_rss(server.pid)
        points, kernel = [], []
        for level in levels:
            while len(clients) < level:
                step = [
                    socket.create_connection(("127.0.0.1", server.port), timeout=30)
                    for _ in range(min(CONNECT_STEP, level - len(clients)))
                ]
                if case.tls:
                    step = [CLIENT_TLS.wrap_socket(client, server_hostname="localhost") for client in step]
                clients += step
                if case.payload and send_all_read(step, case.payload, len(case.payload) if case.echoed else 0) < len(
                    step
                ):
                    sys.exit(f"{mode} {case.name}: some of {len(step)} clients did not get their echo")
                wait_for(server, len(clients), len(clients) * len(case.payload))
            points.append((level, settled_rss(server.pid)))
            kernel.append((level, kernel_kib()))
            print(f"{mode:<8} {case.name:<8} {level:>6} clients  RSS {points[-1][1] / 1024:7.1f} MiB", flush=True)
        echoed = tls_echo_all(clients, case.last) if case.tls else send_all_read(clients, case.last, case.last_echo)
        print(f"{mode:<8} {case.name:<8} {echoed} of {len(clients)} clients got their last echo back", flush=True)
        return Result(mode, case.name, idle, points, kernel, echoed)
    finally:
        for client in clients:
            client.close()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1000,5000,10000", help="clients at each reading")
    parser.add_argument("--modes", default="headless,monitor", help="headless, monitor or both")
    parser.add_argument("--cases", default="idle,sent,partial,tls", help="idle, sent, partial, tls (any of them)")
    args = parser.parse_args()
    if not TUI_ECHO.exists():
        sys.exit(f"{TUI_ECHO} not found: run `make run` or pip install -e . first")
    levels = sorted(int(x) for x in args.levels.split(","))
    if len(levels) < 2:
        sys.exit("--levels needs at least two counts for a slope")
    raise_fd_limit(levels[-1] + 100)
    BUILD.mkdir(exist_ok=True)
    load_before = load_average()
    results = [run(mode, CASES[case], levels) for mode in args.modes.split(",") for case in args.cases.split(",")]
    print(f"\nload average {load_before} before and {load_average()} after\n")
    header = " | ".join(f"RSS at {level:,}" for level in levels)
    kernel = "kernel per connection: slab, TCP buffers"
    print(f"| mode | case | RSS with no client | {header} | per client (least squares) | {kernel} | all echo |")
    print("|---|---|---|" + "---|" * len(levels) + "---|---|---|")
    for result in results:
        per_connection, _ = slope(result.points)
        # Both ends of each loopback connection are this machine's: per connection, both sockets.
        slab, _ = slope([(n, k[0]) for n, k in result.kernel])
        tcp, _ = slope([(n, k[1]) for n, k in result.kernel])
        cells = " | ".join(f"{rss / 1024:.1f} MiB" for _, rss in result.points)
        print(
            f"| {result.mode} | {result.case} | {result.idle_kib / 1024:.1f} MiB | {cells} | {per_connection:.2f} KiB "
            f"| {slab:.2f} KiB, {tcp:.2f} KiB | {result.echoed:,} of {result.points[-1][0]:,} |"
        )
    if any(result.echoed < levels[-1] for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
