"""Hex + ASCII dump lines, as ``hexdump -C`` prints them, for binary protocols."""

from __future__ import annotations

BYTES_PER_LINE = 16


def _ascii(chunk: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)


def hex_line(data: bytes, offset: int) -> str:
    """One line: offset, 16 bytes in hex (two groups of 8), then the printable ASCII, e.g.
    ``0010  48 65 6c 6c 6f 0a                                 |Hello.|``.

    Only hex digits and printable ASCII come out: the dump is inert whatever the data.
    """
    chunk = data[offset : offset + BYTES_PER_LINE]
    cells = [f"{b:02x}" for b in chunk] + ["  "] * (BYTES_PER_LINE - len(chunk))
    hex_part = " ".join(cells[:8]) + "  " + " ".join(cells[8:])
    return f"{offset:04x}  {hex_part}  |{_ascii(chunk)}|"


def hex_line_count(size: int) -> int:
    return max(1, -(-size // BYTES_PER_LINE))
