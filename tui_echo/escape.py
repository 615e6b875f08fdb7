"""Make client bytes safe to show: nothing a client sends may drive a terminal.

Printable text stays readable (UTF-8 included); control bytes, escape
sequences, invalid UTF-8 and invisible format characters (bidi overrides,
zero-width marks) are shown as backslash escapes; a backslash itself is
doubled so that an escape in the output always means one in the data.
"""

from __future__ import annotations

import re

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


def escape_bytes(data: bytes, limit: int = 80) -> tuple[str, bool]:
    """Return (inert text for at most ``limit`` bytes of ``data``, whether it was cut)."""
    head = data[:limit]
    truncated = len(data) > limit
    if _PLAIN_ASCII.fullmatch(head):
        return head.decode("ascii"), truncated
    text = head.decode("utf-8", "surrogateescape")
    return "".join(map(_escape_char, text)), truncated


def preview(data: bytes, limit: int = 80) -> str:
    """Inert text of ``data`` for one log line, with a visible mark when cut."""
    text, truncated = escape_bytes(data, limit)
    return text + TRUNCATION_MARK if truncated else text
