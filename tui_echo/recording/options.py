"""The command line's flags for ``--record``: where, how big a part may grow, how many parts to keep."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tui_echo.arguments import whole_number

if TYPE_CHECKING:
    from tui_echo.recording.writer import RecordSettings


def add_record_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--record",
        metavar="FILE",
        help="Record every client's every byte, both ways, with the connects, disconnects and notices, to FILE "
        "(JSON Lines, created 0600; tui-echo replay and export read it). Clients that connect from the start.",
    )
    parser.add_argument(
        "--record-max-bytes",
        type=whole_number(4096, None),
        default=None,
        metavar="BYTES",
        help="Rotate the recording when FILE would grow past this: FILE becomes FILE.1, and so on (default: never).",
    )
    parser.add_argument(
        "--record-keep",
        type=whole_number(0, 1000),
        default=3,
        metavar="N",
        help="Rotated parts of the recording to keep, FILE.1 the newest (default 3).",
    )


def record_settings(args: argparse.Namespace) -> RecordSettings | None:
    # Imported here: the writer brings trio, and the consoles and --help start without it.
    from tui_echo.recording.writer import RecordSettings

    return None if args.record is None else RecordSettings(args.record, args.record_max_bytes, args.record_keep)
