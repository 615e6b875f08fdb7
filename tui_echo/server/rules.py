"""Reply rules: a byte regex and a reply template; the first rule that matches a message answers it.

Pure logic, no trio. ``compile_rule`` and ``load_rules_file`` turn what the
operator wrote (``--rule 'REGEX => REPLY'``, a TOML file of ``[[rule]]``
tables) into ``Rule`` objects, or raise ``RuleError`` with one line that
names the rule. A server holds one ``RuleBook`` (the rules in order, with
their exact hit counts and last matches) and one ``Responder`` per client
(its ``once`` rules that have fired, and its partial line). Any mode can use
``Responder.answer`` on a message it has framed itself; the echo uses
``Responder.respond`` on raw chunks.

Python's ``re`` has no timeout: a rule only looks at the first
RULE_PREFIX_BYTES of a message, which bounds what a client can make an
ordinary pattern do. (A pattern with nested quantifiers such as ``(a+)+$`` is
exponential even on a short input; the README says so.)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

from tui_echo.net import format_address
from tui_echo.send_text import SendTextError, parse_send_text
from tui_echo.text import escape_bytes, format_duration, plural, printable
from tui_echo.times import utc_time

RULE_SEPARATOR = " => "  # --rule splits at its first occurrence
RULE_PREFIX_BYTES = 4096  # a rule looks at most at this much of each message
RULE_LINE_BYTES = 64 * 1024  # line framing: a partial line this long is a message as it is (--max-frame's default)
REPLY_BATCH_BYTES = 64 * 1024  # replies and echo are written in batches of about this much
LAST_MATCH_BYTES = 256  # of a rule's last match, kept for the monitor and ctl
_FILE_KEYS = {"match", "reply", "once"}


class RuleError(ValueError):
    """A rule the server cannot use; the message names the rule and says what is wrong."""


class Field(StrEnum):
    """Placeholders of a reply that are not captures."""

    CLIENT = "client"  # the client's id
    PEER = "peer"  # its address, host:port
    COUNT = "count"  # its messages so far, this one included
    TIME = "time"  # now, ISO 8601 (UTC)
    LEN = "len"  # the message's length in bytes


# A reply template, in pieces: literal bytes, a group by number or by name, or a field.
Piece: TypeAlias = bytes | int | str | Field


@dataclass(frozen=True, slots=True)
class Rule:
    number: int  # its place in the order rules are tried, from 1
    origin: str  # where it was written, for messages: "--rule 2" or "rules.toml rule 2"
    match: str  # the pattern and the reply, as written
    reply: str
    once: bool  # answers each client once at most
    pattern: re.Pattern[bytes] = field(repr=False, compare=False)
    pieces: tuple[Piece, ...] = field(repr=False, compare=False)

    @property
    def text(self) -> str:
        return f"{self.match}{RULE_SEPARATOR}{self.reply}"


def _quoted(text: str) -> str:
    return f"'{printable(text)}'"


def compile_rule(number: int, origin: str, match: str, reply: str, once: bool = False) -> Rule:
    """A rule from its pattern and reply text; raises RuleError naming ``origin``."""
    if not match:
        raise RuleError(f"{origin}: the pattern is empty; (?s).* answers every message")
    try:
        # A byte regex: \x02 in the text is the regex escape for the byte 2, so binary protocols work.
        pattern = re.compile(match.encode("utf-8", "surrogateescape"))
    except (re.error, ValueError, OverflowError, RecursionError) as exc:
        raise RuleError(f"{origin}: bad regex {_quoted(match)}: {exc}") from None
    try:
        pieces = _template(reply, pattern)
    except RuleError as exc:
        raise RuleError(f"{origin}: bad reply {_quoted(reply)}: {exc}") from None
    return Rule(number, origin, match, reply, once, pattern, pieces)


def parse_rule_option(text: str, number: int, nth: int) -> Rule:
    """``--rule 'REGEX => REPLY'``, the ``nth`` of its kind, tried ``number``-th."""
    match, separator, reply = text.partition(RULE_SEPARATOR)
    origin = f"--rule {nth}"
    if not separator:
        raise RuleError(
            f"{origin}: expected 'REGEX{RULE_SEPARATOR}REPLY' (a space each side of =>), got {_quoted(text)}"
        )
    return compile_rule(number, origin, match, reply)


def load_rules_file(path: str, first_number: int) -> list[Rule]:
    """The ``[[rule]]`` tables of a TOML file, numbered from ``first_number``."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise RuleError(f"--rules {path}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"--rules {path}: not valid TOML: {exc}") from None
    tables = document.get("rule")
    others = sorted(set(document) - {"rule"})
    if others or not isinstance(tables, list) or not tables:
        unknown = f" (unknown: {', '.join(others)})" if others else ""
        raise RuleError(f"--rules {path}: expected [[rule]] tables with match and reply{unknown}")
    return [_file_rule(path, nth, table, first_number + nth - 1) for nth, table in enumerate(tables, 1)]


def _file_rule(path: str, nth: int, table: Any, number: int) -> Rule:
    origin = f"{path} rule {nth}"
    if not isinstance(table, dict):
        raise RuleError(f"{origin}: expected a [[rule]] table")
    unknown = sorted(set(table) - _FILE_KEYS)
    if unknown:
        raise RuleError(f"{origin}: unknown key {unknown[0]!r} (a rule has match, reply and once)")
    match, reply, once = table.get("match"), table.get("reply"), table.get("once", False)
    if not isinstance(match, str) or not isinstance(reply, str):
        raise RuleError(f"{origin}: match and reply must both be strings")
    if not isinstance(once, bool):
        raise RuleError(f"{origin}: once must be true or false")
    return compile_rule(number, origin, match, reply, once)


def _template(reply: str, pattern: re.Pattern[bytes]) -> tuple[Piece, ...]:
    """The pieces of a reply: ``{…}`` placeholders, ``{{``/``}}`` braces, the send box's escapes elsewhere."""
    pieces: list[Piece] = []

    def literal(text: str, start: int) -> None:
        try:
            data = parse_send_text(text, start + 1)
        except SendTextError as exc:
            raise RuleError(str(exc)) from None
        if data and pieces and isinstance(pieces[-1], bytes):
            pieces[-1] += data
        elif data:
            pieces.append(data)

    run = 0  # where the literal text being collected starts
    i = 0
    while i < len(reply):
        char = reply[i]
        if char == "\\":
            i += 2  # an escape stays in the literal text: parse_send_text checks it
        elif reply.startswith(("{{", "}}"), i):
            literal(reply[run : i + 1], run)
            i = run = i + 2
        elif char == "{":
            end = reply.find("}", i)
            if end < 0:
                raise RuleError(f"{{ at column {i + 1} is not closed; write {{{{ for a brace")
            literal(reply[run:i], run)
            pieces.append(_placeholder(reply[i + 1 : end], pattern))
            i = run = end + 1
        elif char == "}":
            raise RuleError(f"}} at column {i + 1} closes nothing; write }}}} for a brace")
        else:
            i += 1
    literal(reply[run:], run)
    return tuple(pieces)


def _placeholder(name: str, pattern: re.Pattern[bytes]) -> Piece:
    if name.isascii() and name.isdigit():
        number = int(name)
        if number > pattern.groups:
            raise RuleError(f"unknown placeholder {{{name}}}: the pattern has {plural(pattern.groups, 'group')}")
        return number
    fields = {str(f) for f in Field}
    if name in pattern.groupindex:
        if name in fields:
            raise RuleError(f"{{{name}}} is both a group of the pattern and a placeholder; rename the group")
        return name
    if name in fields:
        return Field(name)
    raise RuleError(
        f"unknown placeholder {{{printable(name)}}}; use {{0}}, {{1}}…, {{name}} of a (?P<name>…) group, "
        "{client}, {peer}, {count}, {time}, {len}, or {{ and }} for braces"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleHits:
    """One rule as its readers see it: its text, exact hit count and last match (escaped, inert)."""

    number: int
    match: str
    reply: str
    once: bool
    hits: int
    last_match: str | None = None
    last_client: int | None = None
    last_at: float | None = None  # wall clock

    def cells(self, now: float) -> tuple[str, str, str, str, str]:
        """Number, hits, last hit, last match, rule text: as a table shows them, inert."""
        last = ""
        if self.last_at is not None:
            last = f"#{self.last_client} {format_duration(max(now - self.last_at, 0))} ago"
        once = "  (once per client)" if self.once else ""
        text = printable(f"{self.match}{RULE_SEPARATOR}{self.reply}") + once
        return str(self.number), str(self.hits), last, self.last_match or "", text


@dataclass(slots=True)
class _LastHit:
    match: bytes
    client_id: int
    at: float


class RuleBook:
    """The server's rules in order, with their hit counts and last matches."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self.hits = [0] * len(self.rules)  # exact, in the rules' order
        self._last: list[_LastHit | None] = [None] * len(self.rules)
        self.first_hits: list[tuple[Rule, bytes, int]] = []  # first hits not yet announced: rule, match, client

    def hit(self, index: int, match: bytes, client_id: int, at: float) -> None:
        """Count a hit of the ``index``-th rule."""
        self.hits[index] += 1
        last = self._last[index] = _LastHit(match[:LAST_MATCH_BYTES], client_id, at)
        if self.hits[index] == 1:
            self.first_hits.append((self.rules[index], last.match, client_id))

    def table(self) -> tuple[RuleHits, ...]:
        rows = []
        for rule, hits, last in zip(self.rules, self.hits, self._last, strict=True):
            shown = None if last is None else escape_bytes(last.match, LAST_MATCH_BYTES)[0]
            rows.append(
                RuleHits(
                    number=rule.number,
                    match=rule.match,
                    reply=rule.reply,
                    once=rule.once,
                    hits=hits,
                    last_match=shown,
                    last_client=None if last is None else last.client_id,
                    last_at=None if last is None else last.at,
                )
            )
        return tuple(rows)


@dataclass(slots=True)
class Answers:
    """What the rules answered of one client's chunk (or relayed message), for its event.

    Kept by the client's own ``Responder``, so another client's hits never count here.
    """

    keep: int  # how much of the replies to keep: the events' EVENT_DATA_BYTES (the rules know no events)
    count: int = 0  # messages answered
    rules: list[int] = field(default_factory=list)  # the rules that answered, by number, each once
    reply: bytearray = field(default_factory=bytearray)  # the replies' first ``keep`` bytes
    reply_size: int = 0  # the replies' full length

    def add(self, rule: Rule, reply: bytes) -> None:
        self.count += 1
        if rule.number not in self.rules:
            self.rules.append(rule.number)
        room = self.keep - len(self.reply)
        if room > 0:
            self.reply += reply[:room]
        self.reply_size += len(reply)


class Responder:
    """One client's side of the rules: its ``once`` rules that fired, and (line framing) its partial line."""

    __slots__ = (
        "_book",
        "_rules",
        "_client_id",
        "_peer",
        "_fired",
        "_line_framing",
        "_partial",
        "_answers",
        "_keep",
        "_limit",
    )

    def __init__(
        self,
        book: RuleBook,
        client_id: int,
        peer: tuple[str, int],
        line_framing: bool,
        *,
        reply_bytes: int,
        line_bytes: int = RULE_LINE_BYTES,
    ) -> None:
        self._book = book
        self._rules = tuple(enumerate(book.rules))
        self._client_id = client_id
        self._peer = format_address(peer).encode()
        self._fired: set[int] = set()  # indexes of once rules that have answered this client
        self._line_framing = line_framing
        self._partial = bytearray()
        self._keep = reply_bytes  # of the replies, for the client's event (``Answers.keep``)
        self._answers = Answers(reply_bytes)
        self._limit = line_bytes  # --max-frame

    def take_answers(self) -> Answers:
        """What the rules answered since the last call (``answer``, ``respond``, ``finish``), then start afresh."""
        answers = self._answers
        if answers.count:  # nothing answered (most chunks): nothing to renew
            self._answers = Answers(self._keep)
        return answers

    def answer(self, message: bytes, count: int, at: float) -> bytes | None:
        """The reply of the first rule that matches ``message`` (the ``count``-th, at wall clock ``at``), or None."""
        for index, rule in self._rules:
            if rule.once and index in self._fired:
                continue
            found = rule.pattern.search(message, 0, RULE_PREFIX_BYTES)
            if found is None:
                continue
            if rule.once:
                self._fired.add(index)
            self._book.hit(index, found[0], self._client_id, at)
            reply = self._render(rule.pieces, found, len(message), count, at)
            self._answers.add(rule, reply)
            return reply
        return None

    def _render(self, pieces: tuple[Piece, ...], found: re.Match[bytes], length: int, count: int, at: float) -> bytes:
        out = bytearray()
        for piece in pieces:
            if isinstance(piece, bytes):
                out += piece
            elif isinstance(piece, Field):
                match piece:
                    case Field.CLIENT:
                        out += str(self._client_id).encode()
                    case Field.PEER:
                        out += self._peer
                    case Field.COUNT:
                        out += str(count).encode()
                    case Field.TIME:
                        out += utc_time(at).encode()
                    case Field.LEN:
                        out += str(length).encode()
            else:
                out += found[piece] or b""  # a group that took no part in the match is empty
        return bytes(out)

    def respond(self, data: bytes, count: int, at: float) -> Iterator[bytes]:
        """What to send for ``data``, in batches: each message's reply, or the message itself (the echo).

        ``count`` is the client's message count before ``data``. With line framing a line is a
        message (matched without its newline, echoed with it) and a partial line waits for its
        newline, up to ``line_bytes`` (--max-frame).
        """
        if not self._line_framing:
            reply = self.answer(data, count + 1, at)
            yield data if reply is None else reply
            return
        out = bytearray()
        start = 0
        partial = self._partial
        if partial:
            newline = data.find(b"\n")
            if newline < 0:
                partial += data
                if len(partial) >= self._limit:
                    self._line(out, bytes(partial), count, at)
                    partial.clear()
                    yield bytes(out)
                return
            start = newline + 1
            count += 1
            self._line(out, bytes(partial) + data[:start], count, at)
            partial.clear()
        while (newline := data.find(b"\n", start)) >= 0:
            count += 1
            self._line(out, data[start : newline + 1], count, at)
            start = newline + 1
            if len(out) >= REPLY_BATCH_BYTES:
                yield bytes(out)
                out.clear()
        if len(data) - start >= self._limit:
            self._line(out, data[start:], count, at)
        elif start < len(data):
            partial += data[start:]
        if out:
            yield bytes(out)

    def finish(self, count: int, at: float) -> bytes:
        """At the end of the input: a partial line left over is a message of its own."""
        if not self._partial:
            return b""
        out = bytearray()
        self._line(out, bytes(self._partial), count, at)
        self._partial.clear()
        return bytes(out)

    def _line(self, out: bytearray, line: bytes, count: int, at: float) -> None:
        reply = self.answer(line[:-1] if line.endswith(b"\n") else line, count, at)
        out += line if reply is None else reply
