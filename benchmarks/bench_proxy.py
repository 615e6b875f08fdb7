"""What the PROXY header costs a new connection: the same burst against a plain server and a --proxy-protocol one.

Per round, for each server in turn (alternating which goes first): --connections clients connect at once,
each sends its first line (behind a PROXY v1 header for the proxy server) and waits for the echo; the figure
is the time from the first connect to the last echo, and the server's CPU seconds over the burst (from
/proc). Then they all close and the server is left to settle. Each server is a fresh `tui-echo --headless`
process for the whole run; the client is asyncio in this process, the same for both.

usage: python benchmarks/bench_proxy.py [--rounds 7] [--connections 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

TUI_ECHO = Path(sys.executable).with_name("tui-echo")
LINE = b"hello, echo\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(*flags: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [str(TUI_ECHO), "--headless", "--port", "0", "--no-control", *flags], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(r"listening on [^ ]+:(\d+)", first)
    assert match, first
    threading.Thread(target=drain, args=(proc.stdout,), daemon=True).start()  # a log nobody reads pauses accept
    return proc, int(match.group(1))


def drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


async def one(port: int, header: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    local = writer.get_extra_info("sockname")
    prefix = f"PROXY TCP4 192.0.2.1 127.0.0.1 {local[1]} {port}\r\n".encode() if header else b""
    writer.write(prefix + LINE)
    assert await reader.readexactly(len(LINE)) == LINE
    return reader, writer


async def burst(port: int, connections: int, header: bool) -> float:
    began = time.perf_counter()
    pairs = await asyncio.gather(*(one(port, header) for _ in range(connections)))
    took = time.perf_counter() - began
    for _, writer in pairs:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for _, writer in pairs), return_exceptions=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    servers = {"plain": start(), "proxy": start("--proxy-protocol", "--proxy-from", "127.0.0.1")}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    try:
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            for name in order:
                proc, port = servers[name]
                cpu = cpu_seconds(proc.pid)
                took = asyncio.run(burst(port, args.connections, header=name == "proxy"))
                time.sleep(0.5)  # the closes settle before the CPU is read and the other server goes
                results[name].append((took, cpu_seconds(proc.pid) - cpu))
            plain, proxy = results["plain"][-1], results["proxy"][-1]
            print(
                f"round {round_ + 1}: plain {plain[0] * 1000:.0f} ms ({plain[1]:.2f} CPU-s), "
                f"proxy {proxy[0] * 1000:.0f} ms ({proxy[1]:.2f} CPU-s): ratio {proxy[0] / plain[0]:.3f}x time, "
                f"{proxy[1] / plain[1] if plain[1] else float('nan'):.3f}x CPU"
            )
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    times = [p[0] / q[0] for p, q in zip(results["proxy"], results["plain"], strict=True)]
    cpus = [p[1] / q[1] for p, q in zip(results["proxy"], results["plain"], strict=True) if q[1]]
    print(
        f"median over {args.rounds} rounds, {args.connections} connections each: proxy/plain "
        f"{statistics.median(times):.3f}x time, {statistics.median(cpus):.3f}x server CPU; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
