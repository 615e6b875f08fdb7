"""Reply rules, the pure engine: compiling what the operator wrote, templates, line splitting, hit counts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_echo.server.events import EVENT_DATA_BYTES
from tui_echo.server.responder import Responder
from tui_echo.server.rules import (
    LAST_MATCH_BYTES,
    RULE_LINE_BYTES,
    RULE_PREFIX_BYTES,
    Rule,
    RuleBook,
    RuleError,
    compile_rule,
    load_rules_file,
    parse_rule_option,
)

PEER = ("127.0.0.1", 5555)


def rule(text: str, number: int = 1, once: bool = False) -> Rule:
    parsed = parse_rule_option(text, number, number)
    return compile_rule(number, parsed.origin, parsed.match, parsed.reply, once) if once else parsed


def responder(*rules: Rule, line_framing: bool = True, client_id: int = 3) -> Responder:
    return Responder(RuleBook(rules), client_id, PEER, line_framing, reply_bytes=EVENT_DATA_BYTES)


def clients_of(book: RuleBook, *client_ids: int) -> list[Responder]:
    """One responder per client, all answering from ``book`` (the server's one shared rule book)."""
    return [Responder(book, client_id, PEER, True, reply_bytes=EVENT_DATA_BYTES) for client_id in client_ids]


def respond(who: Responder, *chunks: bytes) -> bytes:
    out, count = b"", 0
    for chunk in chunks:
        out += b"".join(who.respond(chunk, count, 0.0))
        count += chunk.count(b"\n")
    return out + who.finish(count, 0.0)


def test_ping_gets_pong_and_other_lines_their_echo() -> None:
    who = responder(rule(r"PING (\d+) => PONG {1}\n"))
    assert respond(who, b"PING 42\nhello\n") == b"PONG 42\nhello\n"


def test_the_first_rule_that_matches_answers_and_the_order_is_the_order_given() -> None:
    who = responder(rule("a => first\\n", 1), rule("a => second\\n", 2), rule("b => b\\n", 3))
    assert respond(who, b"a\nb\nc\n") == b"first\nb\nc\n"


def test_the_split_is_at_the_first_arrow() -> None:
    parsed = rule("x => y => z")
    assert (parsed.match, parsed.reply) == ("x", "y => z")


@pytest.mark.parametrize(
    ("text", "message", "reply"),
    [
        (r"(\w+)=(?P<v>\d+) => {0}|{1}|{v}|{2}", b"key=12", b"key=12|key|12|12"),
        (r"x => {client} {peer} {count} {len}", b"xyz", b"3 127.0.0.1:5555 1 3"),
        (r"x => {{literal}} }}", b"x", b"{literal} }"),
        (r"x => \x00\t\r\n\\\x7b", b"x", b"\x00\t\r\n\\{"),
        (r"(a)|(b) => [{1}{2}]", b"b", b"[b]"),  # a group that took no part is empty
        (r"x => ", b"x", b""),  # an empty reply swallows the message
        (r"x => é", b"x", "é".encode()),
    ],
)
def test_placeholders_and_escapes(text: str, message: bytes, reply: bytes) -> None:
    assert responder(rule(text), line_framing=False).answer(message, 1, 0.0) == reply


def test_time_is_iso_8601_utc() -> None:
    reply = responder(rule("x => {time}"), line_framing=False).answer(b"x", 1, 1_764_050_400.25)
    assert reply == b"2025-11-25T06:00:00.250Z"


def test_a_binary_pattern_matches_bytes_and_inserts_captures_raw() -> None:
    who = responder(rule(r"\x02(..)\x03 => \x06{1}\xff"), line_framing=False)
    assert who.answer(b"junk\x02\x80\x00\x03", 1, 0.0) == b"\x06\x80\x00\xff"


def test_a_chunk_is_one_message_without_line_framing() -> None:
    who = responder(rule("^a$ => A"), line_framing=False)
    assert respond(who, b"a") == b"A"
    assert respond(who, b"a\nb\n") == b"a\nb\n"  # the chunk is not "a"


def test_count_is_the_clients_messages_so_far_this_one_included() -> None:
    who = responder(rule("x => {count} "))
    assert respond(who, b"x\ny\nx\n") == b"1 y\n3 "


def test_once_answers_each_client_once() -> None:
    book = RuleBook([rule("hello => welcome\\n", once=True)])
    first, second = clients_of(book, 1, 2)
    assert respond(first, b"hello\nhello\n") == b"welcome\nhello\n"
    assert respond(second, b"hello\n") == b"welcome\n"
    assert book.hits == [2]


def test_hits_and_the_last_match_are_kept_and_the_first_hit_is_announced_once() -> None:
    book = RuleBook([rule(r"P(\d) => ok", 1), rule("never => x", 2)])
    who = Responder(book, 7, PEER, True, reply_bytes=EVENT_DATA_BYTES)
    respond(who, b"P1\n", b"P2\n")
    assert book.hits == [2, 0]
    assert [(first.number, match, client) for first, match, client in book.first_hits] == [(1, b"P1", 7)]
    one, two = book.table()
    assert (one.hits, one.last_match, one.last_client, two.hits, two.last_match) == (2, "P2", 7, 0, None)


def test_the_last_match_is_shown_escaped_and_bounded() -> None:
    book = RuleBook([rule("(?s).+ => x")])
    Responder(book, 1, PEER, False, reply_bytes=EVENT_DATA_BYTES).answer(b"\x1b[2J" + b"a" * 1000, 1, 0.0)
    shown = book.table()[0].last_match
    assert shown is not None and shown.startswith("\\x1b[2J") and len(shown) <= LAST_MATCH_BYTES + 3


def test_rules_look_only_at_the_first_4_KiB() -> None:
    who = responder(rule("needle => found"), line_framing=False)
    assert who.answer(b"." * (RULE_PREFIX_BYTES - 6) + b"needle", 1, 0.0) == b"found"
    assert who.answer(b"." * (RULE_PREFIX_BYTES - 5) + b"needle", 1, 0.0) is None


def test_a_partial_line_waits_for_its_newline_and_is_a_message_at_the_end() -> None:
    who = responder(rule("^PING$ => PONG\\n"))
    assert b"".join(who.respond(b"PI", 0, 0.0)) == b""
    assert b"".join(who.respond(b"NG\nPI", 0, 0.0)) == b"PONG\n"
    assert who.finish(1, 0.0) == b"PI"


def test_a_partial_line_past_64_KiB_is_a_message_as_it_is() -> None:
    who = responder(rule("^x => X"))
    assert b"".join(who.respond(b"y" * (RULE_LINE_BYTES - 1), 0, 0.0)) == b""
    assert b"".join(who.respond(b"yy", 0, 0.0)) == b"y" * (RULE_LINE_BYTES + 1)
    assert b"".join(who.respond(b"x" * RULE_LINE_BYTES, 0, 0.0)) == b"X"


def test_replies_come_in_bounded_batches() -> None:
    who = responder(rule("^a$ => " + "b" * 1000))
    batches = list(who.respond(b"a\n" * 1000, 0, 0.0))
    assert b"".join(batches) == b"b" * 1_000_000
    assert max(len(batch) for batch in batches) < 70_000


def test_a_clients_answers_are_its_own_though_another_client_hits_the_shared_book_meanwhile() -> None:
    book = RuleBook([rule("^a$ => " + "A" * 1000 + "\\n")])
    first, second = clients_of(book, 1, 2)
    replies = first.respond(b"a\n" * 300 + b"b\n" * 7, 0, 0.0)  # about five batches, a write apart
    next(replies)
    assert b"".join(second.respond(b"a\n" * 50, 0, 0.0)) == (b"A" * 1000 + b"\n") * 50  # between two writes
    assert second.take_answers().count == 50
    b"".join(replies)
    assert (first.take_answers().count, book.hits) == (300, [350])
    assert first.take_answers().count == 0  # taken: the next chunk starts afresh


@given(
    lines=st.lists(st.sampled_from([b"PING 1", b"PING 22", b"other", b"", b"\x00\xff"]), max_size=20),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=8),
)
def test_how_lines_are_cut_into_chunks_never_changes_the_answer(lines: list[bytes], cuts: list[int]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    edges = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    chunks = [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    expected = b"".join(b"PONG " + line[5:] + b"\n" if line.startswith(b"PING") else line + b"\n" for line in lines)
    who = responder(rule(r"^PING (\d+)$ => PONG {1}\n"))
    assert respond(who, *chunks) == expected
    assert who.take_answers().count == sum(line.startswith(b"PING") for line in lines)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (r"PING (\d+ => x", r"--rule 1: bad regex 'PING (\d+': missing ), unterminated subpattern at position 5"),
        (r"a => {2}", "--rule 1: bad reply '{2}': unknown placeholder {2}: the pattern has 0 groups"),
        (r"a => {nope}", "--rule 1: bad reply '{nope}': unknown placeholder {nope}; use {0}"),
        (r"a => \q", r"--rule 1: bad reply '\q': unknown escape \q at column 1"),
        (r"a => ok\x4", r"--rule 1: bad reply 'ok\x4': \x at column 3 needs two hex digits"),
        (r"a => {", "--rule 1: bad reply '{': { at column 1 is not closed"),
        (r"a => }", "--rule 1: bad reply '}': } at column 1 closes nothing"),
        ("a =>b", "--rule 1: expected 'REGEX => REPLY'"),
        (" => b", "--rule 1: the pattern is empty"),
        ("(?P<peer>a) => {peer}", "--rule 1: bad reply '{peer}': {peer} is both a group"),
        ("(?u)a => b", "--rule 1: bad regex '(?u)a'"),
    ],
)
def test_a_bad_rule_is_one_line_that_names_it(text: str, problem: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rule_option(text, 1, 1)
    message = str(raised.value)
    assert message.startswith(problem)
    assert "\n" not in message


def test_a_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "device.toml"
    path.write_text(
        "[[rule]]\nmatch = 'PING (\\d+)'\nreply = 'PONG {1}\\n'\n\n"
        "[[rule]]\nmatch = '\\x02(..)\\x03'\nreply = '\\x06{1}'\nonce = true\n"
    )
    first, second = load_rules_file(str(path), 4)
    assert (first.number, first.origin, first.match, first.reply, first.once) == (
        4,
        f"{path} rule 1",
        r"PING (\d+)",
        r"PONG {1}\n",
        False,
    )
    assert second.once and second.pattern.search(b"\x02ab\x03")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read it: No such file or directory"),
        ("[[rule]\n", "not valid TOML"),
        ("title = 'x'\n", "expected [[rule]] tables with match and reply (unknown: title)"),
        ("[[rule]]\nmatch = 'a'\n", "rule 1: a rule needs a reply, an action (label, fault), or both"),
        ("[[rule]]\nmatch = 'a'\nreply = 'b'\nonce = 'yes'\n", "rule 1: once must be true or false"),
        ("[[rule]]\nmatch = 'a'\nreply = 'b'\nrepyl = 'c'\n", "rule 1: unknown key 'repyl'"),
        ("[[rule]]\nmatch = 'a'\nreply = 'b'\n[[rule]]\nmatch = '('\nreply = 'b'\n", "rule 2: bad regex '('"),
    ],
)
def test_a_bad_rules_file_is_one_line_that_names_it(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "rules.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RuleError, match=re.escape(problem)) as raised:
        load_rules_file(str(path), 1)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
