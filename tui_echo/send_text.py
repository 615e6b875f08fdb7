"""What the operator types (the send box, ``ctl send``, reply rules), turned into the exact bytes to send.

Text is sent as UTF-8. Escapes: ``\\n``, ``\\r``, ``\\t``, ``\\0``, ``\\xNN``
(one byte, two hex digits) and ``\\\\`` for a backslash. Anything else after a
backslash is an error, so a typo never sends bytes the operator did not mean.
"""

from __future__ import annotations

import re

_SIMPLE = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\"}
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]{2}")


class SendTextError(ValueError):
    """The text has an escape that means nothing; the message says which and where."""


def parse_send_text(text: str, column: int = 1) -> bytes:
    """The bytes ``text`` spells; ``column``: where ``text`` starts in what was typed, for the error messages."""
    base = column - 1
    out = bytearray()
    i = 0
    while i < len(text):
        backslash = text.find("\\", i)
        if backslash < 0:
            out += text[i:].encode()
            break
        out += text[i:backslash].encode()
        code = text[backslash + 1 : backslash + 2]
        if code in _SIMPLE:
            out += _SIMPLE[code]
            i = backslash + 2
        elif code == "x" and _HEX_DIGITS.fullmatch(text, backslash + 2, backslash + 4):
            out.append(int(text[backslash + 2 : backslash + 4], 16))
            i = backslash + 4
        elif code == "x":
            raise SendTextError(f"\\x at column {base + backslash + 1} needs two hex digits, as in \\x0a")
        elif not code:
            raise SendTextError("a lone \\ at the end; type \\\\ to send a backslash")
        else:
            raise SendTextError(
                f"unknown escape \\{code} at column {base + backslash + 1}; use \\n \\r \\t \\0 \\xNN or \\\\"
            )
    return bytes(out)
