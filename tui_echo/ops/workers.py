"""The command line's flags for ``--workers N``: how many, the hidden slot a worker is started with, and what
cannot be combined with them."""

from __future__ import annotations

import argparse
import os
import sys

from tui_echo.arguments import whole_number
from tui_echo.server.config import Mode, WorkerSlot


def _workers(text: str) -> int:
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return whole_number(1, 256)(text)


def _worker_slot(text: str) -> WorkerSlot:
    try:
        index, count, first_id, counts_fd = (int(part) for part in text.split("/"))
        return WorkerSlot(index, count, first_id, counts_fd)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N/FIRST/FD, got {text!r}") from None


def add_worker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="Serve the port with N processes (Linux; 'auto': one per core), each with its own clients, "
        "ids and control socket; with --headless, one merged log. --max-clients counts all "
        "their clients (see the README's limits).",
    )
    parser.add_argument("--worker", type=_worker_slot, default=None, help=argparse.SUPPRESS)  # set by --workers


def workers_problem(args: argparse.Namespace) -> str:
    """Why --workers cannot serve what the other flags ask ("" if it can)."""
    if not sys.platform.startswith("linux"):
        return "--workers needs Linux (SO_REUSEPORT spreading connections over the workers)"
    if not args.headless and args.no_control:
        return "the monitor of a --workers server attaches to its workers' control sockets: drop --no-control"
    if Mode(args.mode).relays:
        return (
            f"--mode {args.mode} delivers to the clients of one process, and each worker has its own: "
            "use one process (no --workers) for chat and broker"
        )
    if args.tls_self_signed:
        return "--tls-self-signed would make one certificate per worker: give --tls-cert and --tls-key instead"
    if args.metrics is not None:
        return "--metrics serves one process's counts, and each worker has its own: use one process for it"
    if args.record is not None:
        return "--record writes one file from one process: record with one process (no --workers)"
    if "LISTEN_FDS" in os.environ:
        return "sockets passed by systemd are served by one process: drop --workers under socket activation"
    return ""
