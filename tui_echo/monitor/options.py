"""The monitor's own command-line options, for ``tui-echo`` and ``tui-echo attach`` alike. No Textual."""

from __future__ import annotations

import argparse

from tui_echo.arguments import whole_number
from tui_echo.server.config import DEFAULT_FEED_LINES, MAX_FEED_LINES


def add_feed_lines(parser: argparse.ArgumentParser) -> None:
    """--feed-lines, for the monitor here and attached (tui-echo attach)."""
    parser.add_argument(
        "--feed-lines",
        type=whole_number(1, MAX_FEED_LINES),
        default=DEFAULT_FEED_LINES,
        metavar="N",
        help=f"The monitor's feed keeps the last N lines (default {DEFAULT_FEED_LINES}).",
    )
