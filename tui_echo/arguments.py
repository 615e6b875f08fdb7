"""Command-line pieces every ``tui-echo`` command shares: one-line errors and checked value types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

PROG = "tui-echo"  # the command's name, in every usage and error line


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line and exit code 2, not argparse's usage block.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole_number(low: int, high: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, got {text!r}")
        return value

    return parse


def _above_zero(text: str) -> float | None:
    """The finite number above 0 that ``text`` spells, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def seconds(text: str) -> float:
    value = _above_zero(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def minutes(text: str) -> float:
    value = _above_zero(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a number of minutes above 0, got {text!r}")
    return value


def per_second(what: str) -> Callable[[str], float]:
    """``N/s`` or ``N``: ``what`` a second, above 0."""

    def parse(text: str) -> float:
        value = _above_zero(text.strip().removesuffix("/s"))
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a rate above 0 such as 10/s ({what} a second), got {text!r}")
        return value

    return parse


def seconds_or_off(text: str) -> float | None:
    """Seconds above 0, or 0 for "off"."""
    if text.strip() in ("0", "0.0"):
        return None
    return seconds(text)
