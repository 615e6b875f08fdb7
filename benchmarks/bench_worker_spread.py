"""How evenly two ways of sharing one port spread connections over N worker processes.

- ``reuseport``: every worker binds its own listening socket with SO_REUSEPORT; the kernel
  picks a socket per connection by a hash of its addresses.
- ``shared``: the parent binds one listening socket and every worker accepts on it (hypercorn's
  ``run.py``); whichever worker's ``accept`` runs first takes the connection.

Each worker is a trio process that accepts and echoes, as a tui-echo worker does. Two loads:
1,000 long-lived connections (opened in bursts of 100, all held open, each echoing now and then
while the others arrive) and 1,000 short ones (connect, one echo, close; 50 at a time). The
figure is how many connections each worker took: the ideal is 1000/N each.

    python benchmarks/bench_worker_spread.py --workers 2 --rounds 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import sys

import trio


def _worker(listen_fd: int, port: int, reuseport: bool, counts: multiprocessing.Queue[int], index: int) -> None:
    if reuseport:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(4096)
    else:
        sock = socket.socket(fileno=listen_fd)
    sock.setblocking(False)
    accepted = 0

    async def echo(conn: trio.socket.SocketType) -> None:
        with conn:
            try:
                while data := await conn.recv(4096):
                    await conn.send(data)
            except OSError:
                pass

    async def main() -> None:
        nonlocal accepted
        listener = trio.socket.from_stdlib_socket(sock)
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(15) as signals:
                nursery.start_soon(_stop_on, signals, nursery.cancel_scope)
                while True:
                    conn, _ = await listener.accept()
                    accepted += 1
                    nursery.start_soon(echo, conn)

    async def _stop_on(signals: object, scope: trio.CancelScope) -> None:
        async for _ in signals:  # type: ignore[attr-defined]
            scope.cancel()
            return

    trio.run(main)
    counts.put((index, accepted))  # type: ignore[arg-type]


def _long_lived(port: int, total: int) -> None:
    held = []
    for start in range(0, total, 100):
        batch = [socket.create_connection(("127.0.0.1", port)) for _ in range(min(100, total - start))]
        for sock in batch:
            sock.sendall(b"x")
        for sock in batch:
            sock.recv(1)
        held += batch
        for sock in held[:: max(1, len(held) // 50)]:  # some of the older ones keep talking
            sock.sendall(b"y")
            sock.recv(1)
    for sock in held:
        sock.close()


def _short(port: int, total: int) -> None:
    done = 0
    while done < total:
        batch = [socket.create_connection(("127.0.0.1", port)) for _ in range(min(50, total - done))]
        for sock in batch:
            sock.sendall(b"x")
        for sock in batch:
            sock.recv(1)
            sock.close()
        done += len(batch)


def run(workers: int, reuseport: bool, load: str, total: int) -> list[int]:
    parent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuseport:
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    parent.bind(("127.0.0.1", 0))
    if not reuseport:
        parent.listen(4096)
    port = parent.getsockname()[1]
    counts: multiprocessing.Queue[tuple[int, int]] = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_worker, args=(parent.fileno(), port, reuseport, counts, k))
        for k in range(workers)
    ]
    for proc in procs:
        proc.start()
    import time

    time.sleep(1.0)  # every worker listening (reuseport) or waiting in accept (shared)
    (_long_lived if load == "long" else _short)(port, total)
    time.sleep(0.3)
    for proc in procs:
        os.kill(proc.pid or 0, 15)
    result = dict(counts.get(timeout=10) for _ in procs)
    for proc in procs:
        proc.join()
    parent.close()
    return [result[k] for k in range(workers)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}", file=sys.stderr)
    print("| way | load | per worker, each round | max/ideal (median) |")
    print("|---|---|---|---|")
    ideal = args.connections / args.workers
    for load in ("long", "short"):
        rows: dict[str, list[list[int]]] = {"reuseport": [], "shared": []}
        for _ in range(args.rounds):
            for way in ("reuseport", "shared"):  # alternating
                rows[way].append(run(args.workers, way == "reuseport", load, args.connections))
        for way, runs in rows.items():
            worst = statistics.median(max(r) / ideal for r in runs)
            shown = "; ".join("/".join(map(str, r)) for r in runs)
            print(
                f"| {way} | {load}-lived | {shown} | {worst:.2f} |"
                if load == "long"
                else f"| {way} | short | {shown} | {worst:.2f} |"
            )
    print(f"load after: {os.getloadavg()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
