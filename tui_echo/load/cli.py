"""``tui-echo load``: the command line, worker processes, and the live progress line."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import astuple
from multiprocessing.queues import Queue
from typing import Any

from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.live import Live
from rich.text import Text

from tui_echo.arguments import OneLineParser, per_second, seconds, whole_number
from tui_echo.load.chat import run_chat_worker
from tui_echo.load.engine import LoadSpec, Progress, WorkerResult, run_worker
from tui_echo.load.report import Totals, merge, summary, vmbench_json
from tui_echo.load.tls import TlsClient, TlsClientError, parse_fingerprint
from tui_echo.send_text import SendTextError, parse_send_text
from tui_echo.text import plural

PROG = "tui-echo load"
PROGRESS_SECONDS = 0.25  # how often the progress line (and a worker's report) is refreshed
MAX_MESSAGE_BYTES = 16 * 2**20
MAX_CHAT_LINE_BYTES = 64 * 1024  # tui-echo's chat passes a line on whole up to this long, its newline included


def _target(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT``."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port, 10)
    except ValueError:
        number = -1
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT with a port from 1 to 65535, got {text!r}")
    return host, number


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Load any echo server and check every echoed byte: tui-echo, ncat, socat or your own.",
        epilog="Exit code: 0 if every byte came back right, 1 on any mismatch, early EOF or failed "
        "connection, 2 on bad arguments.",
    )
    parser.add_argument("target", type=_target, metavar="[HOST:]PORT", help="The echo server (host 127.0.0.1).")
    parser.add_argument(
        "-c",
        "--connections",
        type=whole_number(1, 100_000),
        default=10,
        metavar="N",
        help="Connections at once (default 10).",
    )
    parser.add_argument(
        "-d",
        "--duration",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="Measured seconds, counted once every connection has had its first echo (default 10).",
    )
    payload = parser.add_mutually_exclusive_group()
    payload.add_argument(
        "--size",
        type=whole_number(1, MAX_MESSAGE_BYTES),
        default=64,
        metavar="BYTES",
        help="Message size; the bytes are a fixed pattern of every byte value (default 64).",
    )
    payload.add_argument(
        "--message",
        metavar="TEXT",
        help="Send this text instead, with the send box's escapes (\\n \\r \\t \\0 \\xNN \\\\).",
    )
    parser.add_argument(
        "--rate",
        type=per_second("messages"),
        default=None,
        metavar="MSGS_PER_S",
        help="Open loop: send this many messages a second in all, on a fixed schedule; latency "
        "counts from when each was due. Default: closed loop, the next message when one is back.",
    )
    parser.add_argument(
        "--pipeline",
        type=whole_number(1, 1000),
        default=1,
        metavar="N",
        help="Closed loop: messages in flight per connection (default 1).",
    )
    parser.add_argument(
        "--ramp",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="Open the connections evenly over this many seconds (default: all at once).",
    )
    parser.add_argument(
        "--workers",
        type=whole_number(1, 64),
        default=1,
        metavar="N",
        help="Worker processes sharing the connections, so one Python process is not the ceiling (default 1).",
    )
    parser.add_argument(
        "--pattern",
        choices=("echo", "chat"),
        default="echo",
        help="echo: each connection checks its own echo. chat, for a server in --mode chat: each connection "
        "says numbered lines of --size bytes and checks every line it hears from the others; the rate is lines "
        "heard a second. Chat is closed loop (no --rate) in one process (no --workers). Default echo.",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="Connect with TLS, trusting the system's CAs unless one of the next three says otherwise. "
        "The handshakes happen before the clock starts.",
    )
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument(
        "--tls-ca", metavar="FILE", help="Trust this CA or self-signed certificate (PEM) instead; implies --tls."
    )
    trust.add_argument(
        "--tls-fingerprint",
        metavar="SHA256",
        help="Trust only the certificate with this SHA-256 fingerprint, as tui-echo --tls-self-signed shows it "
        "(AB:CD:…); implies --tls.",
    )
    trust.add_argument("--tls-insecure", action="store_true", help="Trust any certificate; implies --tls.")
    parser.add_argument(
        "--json",
        action="store_true",
        help="Print one JSON object with vmbench echo_client's keys (ms, MiB/s), ours under 'tui_echo'.",
    )
    return parser


def _tls(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TlsClient | None:
    if not (args.tls or args.tls_ca or args.tls_fingerprint or args.tls_insecure):
        return None
    try:
        fingerprint = None if args.tls_fingerprint is None else parse_fingerprint(args.tls_fingerprint)
        tls = TlsClient(ca_file=args.tls_ca, fingerprint=fingerprint, insecure=args.tls_insecure)
        tls.context()  # a CA file that cannot be used is an error now, not in every connection
    except TlsClientError as exc:
        option = "--tls-fingerprint" if args.tls_fingerprint is not None else "--tls-ca"
        parser.error(f"{option}: {exc}")
    return tls


def _check_chat(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.pattern != "chat":
        return
    if args.message is not None:
        parser.error("--message: not with --pattern chat (its lines are numbered, so that each can be checked)")
    if args.rate is not None:
        parser.error("--rate: not with --pattern chat (a line goes when the last one has reached everyone)")
    if args.workers > 1:
        parser.error(
            "--workers: not with --pattern chat (a line has gone round when every other connection "
            "has heard it, which only one process can see)"
        )
    if args.connections < 2:
        parser.error("--pattern chat needs 2 connections at least")
    if args.size > MAX_CHAT_LINE_BYTES:
        parser.error(f"--size: at most {MAX_CHAT_LINE_BYTES} with --pattern chat (a chat server cuts longer lines)")


def _message(args: argparse.Namespace, parser: argparse.ArgumentParser) -> bytes:
    if args.message is None:
        return bytes(i % 251 for i in range(args.size))  # a prime period: a shifted echo never matches
    try:
        data = parse_send_text(args.message)
    except SendTextError as exc:
        parser.error(f"--message: {exc}")
    if not data:
        parser.error("--message: the message is empty")
    return data


def _specs(args: argparse.Namespace, message: bytes, tls: TlsClient | None) -> list[LoadSpec]:
    host, port = args.target
    workers = min(args.workers, args.connections)
    specs, first = [], 1
    for index in range(workers):
        connections = args.connections // workers + (index < args.connections % workers)
        rate = args.rate * connections / args.connections if args.rate else None
        specs.append(
            LoadSpec(
                host=host,
                port=port,
                connections=connections,
                seconds=args.duration,
                message=message,
                pipeline=args.pipeline,
                rate=rate,
                ramp=args.ramp,
                first_connection=first,
                tls=tls,
                chat=args.pattern == "chat",
            )
        )
        first += connections
    return specs


def _worker_process(spec: LoadSpec, queue: Queue[tuple[Any, ...]], index: int) -> None:
    progress = Progress()
    done = threading.Event()

    def report() -> None:
        while not done.wait(PROGRESS_SECONDS):
            queue.put(("progress", index, astuple(progress)))

    threading.Thread(target=report, daemon=True).start()
    result = _work(spec, progress)
    done.set()
    fields = {name: getattr(result, name) for name in WorkerResult.__slots__ if name != "histogram"}
    queue.put(("done", index, fields, result.histogram.encode()))


def _work(spec: LoadSpec, progress: Progress) -> WorkerResult:
    return run_chat_worker(spec, progress) if spec.chat else run_worker(spec, progress)


def _run_in_processes(specs: list[LoadSpec], shown: list[Progress]) -> list[WorkerResult]:
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited event loop
    queue: Queue[tuple[Any, ...]] = context.Queue()
    processes = [
        context.Process(target=_worker_process, args=(spec, queue, i), daemon=True) for i, spec in enumerate(specs)
    ]
    for process in processes:
        process.start()
    results: dict[int, WorkerResult] = {}
    while len(results) < len(processes):
        message = queue.get()
        if message[0] == "progress":
            shown[message[1]] = Progress(*message[2])
        else:
            _, index, fields, histogram = message
            result = WorkerResult(**fields)
            result.histogram = HdrHistogram.decode(histogram)
            results[index] = result
    for process in processes:
        process.join()
    return [results[i] for i in range(len(processes))]


def _progress_line(shown: list[Progress], started: float, seconds: float, connections: int) -> Text:
    connected = sum(p.connected for p in shown)
    open_now = sum(p.open for p in shown)
    messages = sum(p.messages for p in shown)
    errors = sum(p.errors for p in shown)
    measuring = all(p.measuring for p in shown)
    elapsed = time.monotonic() - started
    phase = "measuring" if measuring else f"connecting {connected}/{connections}"
    rate = messages / max(elapsed, 1e-9)
    return Text(
        f"{phase} · {open_now} open · {messages:,} msgs ({rate:,.0f}/s) · "
        f"{errors} errors · {elapsed:.1f} s / {seconds:g} s"
    )


def run(args: argparse.Namespace, message: bytes, tls: TlsClient | None = None) -> Totals:
    specs = _specs(args, message, tls)
    shown = [Progress() for _ in specs]
    console = Console(stderr=True)
    live = console.is_terminal and not args.json
    started = time.monotonic()
    with Live(console=console, refresh_per_second=4, transient=True) if live else _Quiet() as display:
        ticker = threading.Event()

        def refresh() -> None:
            while not ticker.wait(PROGRESS_SECONDS):
                display.update(_progress_line(shown, started, args.duration, args.connections))

        threading.Thread(target=refresh, daemon=True).start()
        try:
            results = [_work(specs[0], shown[0])] if len(specs) == 1 else _run_in_processes(specs, shown)
        finally:
            ticker.set()
    host, port = args.target
    chat = args.pattern == "chat"
    if args.rate:
        mode = f"open loop, {args.rate:g} msgs/s"
    else:
        mode = f"closed loop, {plural(args.pipeline, 'line') + ' out each' if chat else f'{args.pipeline} in flight'}"
    mode += ", over TLS" if tls is not None else ""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return merge(results, target=target, connections=args.connections, message_bytes=len(message), mode=mode, chat=chat)


class _Quiet:
    """A stand-in for the live display when nobody watches (a pipe, or --json)."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, renderable: Text) -> None:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    message = _message(args, parser)
    _check_chat(args, parser)
    tls = _tls(args, parser)
    try:
        totals = run(args, message, tls)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1
    print(vmbench_json(totals) if args.json else summary(totals))
    return 0 if totals.clean else 1
