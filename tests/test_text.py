"""Client bytes are shown inert: nothing a client sends can drive the operator's terminal."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from tui_echo.text import escape_bytes, preview


def test_plain_text_is_kept() -> None:
    assert preview(b"Hello, world (1234)") == "Hello, world (1234)"


def test_controls_and_escape_sequences_are_escaped() -> None:
    assert preview(b"\x1b[2J\x1b]0;pwned\x07\r\n\t\x00\x7f") == "\\x1b[2J\\x1b]0;pwned\\x07\\r\\n\\t\\x00\\x7f"


def test_backslash_is_doubled_so_escapes_are_unambiguous() -> None:
    assert preview(b"\\x1b") == "\\\\x1b"
    assert preview(b"\x1b") == "\\x1b"


def test_markup_stays_literal_text() -> None:
    assert preview(b"[bold red]boom[/]") == "[bold red]boom[/]"


def test_utf8_text_is_readable_but_invisible_and_c1_characters_are_escaped() -> None:
    assert preview("grüße 日本".encode()) == "grüße 日本"
    assert preview("a\u202eb\u200bc\u0085d".encode()) == "a\\u202eb\\u200bc\\x85d"


def test_invalid_utf8_bytes_show_as_hex() -> None:
    assert preview(b"ok\xff\xfe\xc3") == "ok\\xff\\xfe\\xc3"


def test_long_data_is_cut_with_a_visible_mark() -> None:
    assert escape_bytes(b"a" * 100, limit=10) == ("a" * 10, 10)
    assert preview(b"a" * 100, limit=10) == "a" * 10 + "…"
    assert preview(b"a" * 10, limit=10) == "a" * 10


@given(st.binary(max_size=200))
def test_no_byte_sequence_yields_a_control_or_format_character(data: bytes) -> None:
    shown = preview(data, limit=200)
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for ch in shown)


@given(st.binary(max_size=200))
def test_every_byte_is_accounted_for(data: bytes) -> None:
    # Undo the escaping and get the exact bytes back: nothing is hidden or dropped.
    shown = preview(data, limit=200)
    decoded = shown.encode("utf-8", "surrogatepass").decode("unicode_escape").encode("latin-1", "backslashreplace")
    if all(b < 0x80 for b in data):
        assert decoded == data


def test_a_cut_never_splits_a_character() -> None:
    # "é" is two bytes: a cut after 3 bytes would fall inside the second one and show a fake \xc3.
    assert escape_bytes("éé".encode(), limit=3) == ("é", 2)
    assert preview("日本語".encode(), limit=4) == "日…"
    assert preview(b"ab\xff\xfe", limit=3) == "ab\\xff…"  # invalid bytes are cut anywhere


@given(st.text(max_size=100), st.integers(min_value=0, max_value=400))
def test_cut_text_is_the_start_of_the_whole_text_never_a_fake_escape(text: str, limit: int) -> None:
    data = text.encode()
    whole, _ = escape_bytes(data, len(data))
    shown, count = escape_bytes(data, limit)
    assert whole.startswith(shown)
    assert min(limit, len(data)) - 3 <= count <= min(limit, len(data))
    assert data[:count].decode() == text[: len(data[:count].decode())]
