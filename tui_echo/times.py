"""Wall-clock times as records carry them: UTC, ISO 8601, to the millisecond. Pure: imports nothing of the package.

The log, the control protocol, reply rules' ``{time}`` and saved feeds all
write times this way, so a time read back from any of them is the same
float as one made from whole milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_time(at: float) -> str:
    """``2026-11-25T04:42:43.260Z``: seconds since the epoch, cut to the millisecond."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc_time(text: object) -> float:
    """The seconds since the epoch that ``utc_time`` wrote as ``text``; raises ValueError if it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"not a time: {text!r}")
    return datetime.fromisoformat(text).timestamp()
