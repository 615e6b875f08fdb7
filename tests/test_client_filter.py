"""Filter expressions (``tui_echo.client_filter``): each kind of term, and properties over drawn rows."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_echo.client_filter import MAX_FILTER_CHARS, ClientFilter, FilterError, compile_filter


@dataclass(frozen=True, slots=True)
class Row:
    client_id: int
    peer: tuple[str, int]
    status: str = "connected"
    tls_version: str | None = None
    label: str = ""


ROWS = [
    Row(1, ("127.0.0.1", 51234), label="alice"),
    Row(2, ("10.0.0.7", 40000), tls_version="TLSv1.2"),
    Row(3, ("10.0.0.70", 40001), status="kicked"),
    Row(12, ("10.0.1.9", 1234), tls_version="TLSv1.3", label="the sensor"),
    Row(1234, ("::1", 5000), status="closing", label="Bob"),
    Row(77, ("192.168.5.5", 8080), status="idle timeout", label="idle"),
]


def ids(text: str) -> list[int]:
    return [row.client_id for row in compile_filter(text).select(ROWS)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [1, 2, 3, 12, 1234, 77]),
        ("#1234", [1234]),
        ("#12", [12]),
        ("12", [1, 12, 1234]),  # id 12, id 1234, port 51234 (and 1234 of #12)
        ("1234", [1, 12, 1234]),
        ("10.0.0.7", [2]),  # not 10.0.0.70
        ("10.0.0.", [2, 3]),
        ("10.0.0", [2, 3]),
        ("10.0.0.7:40000", [2]),
        ("10.0.0.7:40001", []),
        (":51234", [1]),
        (":5000", [1234]),
        ("[::1]:5000", [1234]),
        ("::1", [1234]),
        ("10.0.0.0/24", [2, 3]),
        ("10.0.0.0/16", [2, 3, 12]),
        ("::/0", [1234]),
        ("kicked", [3]),
        ("KICKED", [3]),
        ("closing", [1234]),
        ("idle", [77]),  # the status starts with it, and the label says it
        ("tls", [2, 12]),
        ("TLS", [2, 12]),
        ("plain", [1, 3, 1234, 77]),
        ("TLSv1.2", [2]),
        ("tlsv1.3", [12]),
        ("alice", [1]),
        ("ALI", [1]),
        ("bob", [1234]),
        ("sensor", [12]),
        ("the sensor", [12]),
        ("alice|bob", [1, 1234]),
        ("alice | #2", [1, 2]),
        ("!kicked", [1, 2, 12, 1234, 77]),
        ("!alice|bob", [2, 3, 12, 77]),
        ("/^#1\\b/", [1]),
        ("/ali|sens/", [1, 12]),
        ("!/tlsv1/", [1, 3, 1234, 77]),
        ("/\\[::1\\]/", [1234]),
        ("nobody", []),
    ],
)
def test_each_kind_of_term_matches_what_the_issue_says(text: str, expected: list[int]) -> None:
    assert ids(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/(unclosed/", "bad regex"),
        ("/abc", "closing /"),
        ("#abc", "client id"),
        ("#", "client id"),
        ("a||b", "empty alternative"),
        ("|", "empty alternative"),
        ("!", "inverts"),
        ("10.0.0.0/33", "network"),
        ("10.0.0.1:port", "port"),
        ("localhost:80", None),  # not an address: label text
        ("[::1]:x", "port"),
        ("x" * (MAX_FILTER_CHARS + 1), "at most"),
        ("|".join("a" * 40), "alternatives"),
        ("//", "empty"),
    ],
)
def test_a_bad_expression_is_one_clear_error(text: str, says: str | None) -> None:
    if says is None:
        compile_filter(text)
        return
    with pytest.raises(FilterError, match=says) as raised:
        compile_filter(text)
    assert "\n" not in str(raised.value)


# ---- properties ------------------------------------------------------------------------------

hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
rows = st.builds(
    Row,
    client_id=st.integers(1, 10**7),
    peer=st.tuples(hosts, st.integers(0, 65535)),
    status=st.sampled_from(["connected", "closing", "kicked", "idle timeout", "error: connection reset by peer"]),
    tls_version=st.sampled_from([None, "TLSv1.2", "TLSv1.3"]),
    label=st.text(max_size=64),
)
row_lists = st.lists(rows, max_size=30, unique_by=lambda row: row.client_id)


def _chosen(filter_: ClientFilter, rows: list[Row]) -> set[int]:
    return {row.client_id for row in filter_.select(rows)}


@given(row_lists, st.data())
def test_an_id_term_matches_that_row_alone(rows: list[Row], data: st.DataObject) -> None:
    if not rows:
        return
    row = data.draw(st.sampled_from(rows))
    assert _chosen(compile_filter(f"#{row.client_id}"), rows) == {row.client_id}
    assert row.client_id in _chosen(compile_filter(str(row.client_id)), rows)
    assert row.client_id in _chosen(compile_filter(str(row.peer[1])), rows)
    assert row.client_id in _chosen(compile_filter(f":{row.peer[1]}"), rows)
    assert row.client_id in _chosen(compile_filter(row.peer[0]), rows)


@given(row_lists, st.text(max_size=20))
def test_any_text_compiles_or_is_a_filter_error_and_inverting_gives_the_rest(rows: list[Row], text: str) -> None:
    try:
        chosen = _chosen(compile_filter(text), rows)
    except FilterError:
        return
    if text.strip().startswith("!"):
        return  # a double ! is not an expression the test can invert by prefixing
    try:
        inverted = _chosen(compile_filter(f"!{text}"), rows)
    except FilterError:
        assert not text.strip()  # only "!" alone is refused
        return
    assert chosen.isdisjoint(inverted)
    assert chosen | inverted == {row.client_id for row in rows}


@given(row_lists, st.text(st.characters(codec="ascii"), min_size=1, max_size=8), st.text(min_size=1, max_size=8))
def test_either_is_the_union_and_case_does_not_matter(rows: list[Row], a: str, b: str) -> None:
    try:
        first, second = compile_filter(a), compile_filter(b)
        both = compile_filter(f"{a}|{b}")
    except FilterError:
        return
    if "|" in a or "|" in b or a.strip().startswith(("!", "/")) or b.strip().startswith(("!", "/")):
        return  # these change how the whole expression reads
    assert _chosen(both, rows) == _chosen(first, rows) | _chosen(second, rows)
    assert _chosen(compile_filter(a.upper()), rows) == _chosen(compile_filter(a.lower()), rows)


@given(row_lists, st.data())
def test_a_label_is_found_by_any_part_of_it_in_any_case(rows: list[Row], data: st.DataObject) -> None:
    labelled = [row for row in rows if row.label.strip() and "|" not in row.label]
    if not labelled:
        return
    row = data.draw(st.sampled_from(labelled))
    label = row.label.strip()
    start = data.draw(st.integers(0, len(label) - 1))
    part = label[start:].strip()
    regex = "/" + "".join(f"\\{c}" if not c.isalnum() else c for c in label) + "/"
    with contextlib.suppress(FilterError):  # a character this quoting does not cover: not this test's case
        assert row.client_id in _chosen(compile_filter(regex), rows)
    if not part or part.startswith(("!", "/", "#", ":")):
        return
    try:
        found = _chosen(compile_filter(part.swapcase()), rows)
    except FilterError:
        return
    if part.swapcase().lower() == part.lower():
        # Terms that read as ids, ports, addresses or TLS match those instead of the label.
        assert row.client_id in found or not part.isalpha() or part.lower() in ("tls", "plain")


@settings(max_examples=30)
@given(st.text(alphabet="()[]*+?.ab|\\{}1", max_size=30))
def test_a_regex_compiles_or_is_a_filter_error(source: str) -> None:
    with contextlib.suppress(FilterError):
        compile_filter(f"/{source}/")(ROWS[0])


def test_a_filter_over_ten_thousand_rows_takes_milliseconds_not_a_keypress() -> None:
    """Not a speed assertion: how long it took is printed (``-s``), and the matches are checked."""
    many = [Row(n, (f"10.0.{n // 250}.{n % 250}", 40000 + n), label=f"client {n}") for n in range(1, 10_001)]
    for text in ("#1234", "1234", "10.0.4.", ":41234", "10.0.0.0/22", "client 12", "kicked|tls", "/client 99+$/"):
        flt = compile_filter(text)
        start = time.perf_counter()
        chosen = list(flt.select(many))
        took = time.perf_counter() - start
        print(f"{text!r}: {len(chosen)} of {len(many)} in {took * 1000:.1f} ms")
        assert chosen == [row for row in many if flt(row)]
    assert [row.client_id for row in compile_filter("#1234").select(many)] == [1234]
    assert len(list(compile_filter("10.0.0.0/22").select(many))) == 999  # 10.0.0.1 to 10.0.3.249
