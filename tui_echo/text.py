"""Text for people, shared by every front end: inert previews of client bytes, addresses, units.

Nothing a client sends may drive a terminal. Printable text stays readable
(UTF-8 included); control bytes, escape sequences, invalid UTF-8 and
invisible format characters (bidi overrides, zero-width marks) are shown as
backslash escapes; a backslash itself is doubled so that an escape in the
output always means one in the data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from tui_echo.net import Peer, format_address

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_PLAIN_ASCII = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")
TRUNCATION_MARK = "…"


def _escape_char(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, carried by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if ch.isprintable():
        return ch
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def char_boundary(data: bytes, limit: int) -> int:
    """Where to cut ``data`` to keep at most ``limit`` bytes without splitting a UTF-8 character.

    Only a valid character that straddles ``limit`` moves the cut back (by up to 3 bytes); invalid
    bytes are shown as ``\\xNN`` one by one, so any place between them is a boundary.
    """
    if limit >= len(data):
        return len(data)
    for start in range(limit - 1, max(limit - 4, -1), -1):
        byte = data[start]
        if byte < 0x80:
            return limit  # ASCII before the cut: nothing is split
        if byte >= 0xC0:  # the lead byte of the character that reaches the cut
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if start + length <= limit:
                return limit
            try:
                data[start : start + length].decode("utf-8")
            except UnicodeDecodeError:
                return limit  # not a character: its bytes show escaped either way
            return start
    return limit


def escape_bytes(data: bytes, limit: int = 80) -> tuple[str, int]:
    """Return (inert text for at most ``limit`` bytes of ``data``, how many bytes it shows).

    A cut never splits a UTF-8 character, so it never shows a fake ``\\xNN``; fewer bytes than
    ``len(data)`` shown means the text was cut.
    """
    end = char_boundary(data, limit)
    head = data[:end]
    if _PLAIN_ASCII.fullmatch(head):
        return head.decode("ascii"), end
    text = head.decode("utf-8", "surrogateescape")
    return "".join(map(_escape_char, text)), end


def preview(data: bytes, limit: int = 80) -> str:
    """Inert text of ``data`` for one log line, with a visible mark when cut."""
    text, shown = escape_bytes(data, limit)
    return text + TRUNCATION_MARK if shown < len(data) else text


def rule_names(numbers: Sequence[int]) -> str:
    """``rule 1``, ``rules 1, 3``: the reply rules that answered a message."""
    return f"rule{'s' if len(numbers) != 1 else ''} {', '.join(map(str, numbers))}"


# ---- addresses ----------------------------------------------------------


def printable(text: str) -> str:
    """Text the operator wrote (a reply rule), shown inert: control and format characters escaped.

    Unlike client data, a backslash stays single: ``PING (\\d+)`` reads as it was typed.
    """
    return "".join(char if char.isprintable() else _escape_char(char) for char in text)


def describe_addresses(addresses: tuple[Peer, ...]) -> str:
    return ", ".join(format_address(address) for address in addresses)


# ---- times ----------------------------------------------------------------


def local_time(at: float) -> str:
    """``2026-11-25 04:42:43.260``: a wall-clock time to the millisecond, in local time."""
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# ---- numbers --------------------------------------------------------------


def format_size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_count(value: float) -> str:
    """``950``, ``12.3k``, ``4.56M``: at most six characters for any count below a trillion."""
    if value < 10_000:
        return f"{value:.0f}" if value == int(value) or value >= 100 else f"{value:.1f}"
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if value < scale * 1000 or unit == "G":
            scaled = value / scale
            return f"{scaled:.1f}{unit}" if scaled < 100 else f"{scaled:.0f}{unit}"
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``4.2s``, ``3m07s``, ``2h05m``, ``3d04h``."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"
