"""The command line's flags for faults every new client gets: ``--fault SPEC``, ``--fault-seed N``."""

from __future__ import annotations

import argparse

from tui_echo.arguments import whole_number
from tui_echo.server.faults import Faults, FaultSpecError, parse_faults


def _fault_spec(text: str) -> Faults:
    try:
        return parse_faults(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_fault_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault",
        type=_fault_spec,
        default=None,
        metavar="SPEC",
        help="Every new client misbehaves so: latency=200ms[,jitter=50ms], bandwidth=10KiB/s, slicer=16B/5ms, "
        "stall[=5s], timeout, reset, reset-after=4KiB|3s, close-after=…, slow-close=2s, corrupt=0.001, drop=0.1, "
        "limit-data=1MiB, combined with commas; toxicity=0.5 gives it to that share of clients (README: "
        '"A misbehaving peer").',
    )
    parser.add_argument(
        "--fault-seed",
        type=whole_number(0, 2**63 - 1),
        default=None,
        metavar="N",
        help="Seed the faults' chances (toxicity, corrupt, drop, jitter): a run repeats them exactly.",
    )


def fault_settings(args: argparse.Namespace) -> dict[str, object]:
    """The ServerConfig fields of these flags."""
    return {"fault": args.fault, "fault_seed": args.fault_seed}
