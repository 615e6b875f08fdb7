"""Reply rules: a byte regex and a reply template; the first rule that matches a message answers it.

Pure logic, no trio. ``compile_rule`` and ``load_rules_file`` turn what the
operator wrote (``--rule 'REGEX => REPLY'``, a TOML file of ``[[rule]]``
tables) into ``Rule`` objects, or raise ``RuleError`` with one line that
names the rule. A server holds one ``RuleBook`` (the rules in order, with
their exact hit counts and last matches) and one ``Responder`` per client
(``tui_echo.server.responder``).

A rule may also have *actions*: keys beside ``reply`` (``label = '{1}'``),
each a template with the reply's placeholders, rendered when the rule
answers and carried out on the client by the server (``answers.py``). The
names are ``ACTIONS``; a new kind (issue 22's ``fault``) adds its name here
and its effect in ``RuleAnswers.act``. On the command line they follow the
reply: ``--rule 'hello (\\w+) => hi {1}\\n ;; label={1}'``.

Python's ``re`` has no timeout: a rule only looks at the first
RULE_PREFIX_BYTES of a message, which bounds what a client can make an
ordinary pattern do. (A pattern with nested quantifiers such as ``(a+)+$`` is
exponential even on a short input; the README says so.)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeAlias

from tui_echo.send_text import SendTextError, parse_send_text
from tui_echo.server.faults import CLEAR_FAULTS, FaultSpecError, parse_faults
from tui_echo.text import escape_bytes, format_duration, plural, printable

RULE_SEPARATOR = " => "  # --rule splits at its first occurrence
RULE_PREFIX_BYTES = 4096  # a rule looks at most at this much of each message
RULE_LINE_BYTES = 64 * 1024  # line framing: a partial line this long is a message as it is
REPLY_BATCH_BYTES = 64 * 1024  # replies and echo are written in batches of about this much
LAST_MATCH_BYTES = 256  # of a rule's last match, kept for the monitor and ctl
ACTIONS = ("label", "fault")  # what a rule may do beside replying, in the order they are carried out
ACTION_SEPARATOR = " ;; "  # --rule 'REGEX => REPLY ;; label={1}'
_FILE_KEYS = {"match", "reply", "once", *ACTIONS}


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
    reply: str | None  # None: the message is echoed as if no rule matched, and the rule's actions run
    once: bool  # answers each client once at most
    pattern: re.Pattern[bytes] = field(repr=False, compare=False)
    pieces: tuple[Piece, ...] | None = field(repr=False, compare=False)
    actions: tuple[tuple[str, str], ...] = ()  # (name, template) as written, in ACTIONS' order
    action_pieces: tuple[tuple[Piece, ...], ...] = field(default=(), repr=False, compare=False)

    @property
    def text(self) -> str:
        return rule_text(self.match, self.reply, self.actions)

    @property
    def inline(self) -> bool:
        """Given with --rule (it stays as started), not read from a --rules file (a reload re-reads those)."""
        return self.origin.startswith("--rule ")

    def same_as(self, other: Rule) -> bool:
        """The same rule wherever it stands: every field alike but its number and origin (a reload keeps its hits)."""
        return replace(other, number=self.number, origin=self.origin) == self


def rule_text(match: str, reply: str | None, actions: tuple[tuple[str, str], ...]) -> str:
    """A rule as --rule writes it; a rule without a reply (only in a file) shows ``(echo)``."""
    return f"{match}{RULE_SEPARATOR}{'(echo)' if reply is None else reply}{describe_actions(actions)}"


def describe_actions(actions: Iterable[tuple[str, str]]) -> str:
    """`` ;; label={1}``: a rule's actions as --rule writes them after its reply (empty without)."""
    return "".join(f"{ACTION_SEPARATOR}{name}={template}" for name, template in actions)


def _quoted(text: str) -> str:
    return f"'{printable(text)}'"


def compile_rule(
    number: int,
    origin: str,
    match: str,
    reply: str | None,
    once: bool = False,
    actions: Mapping[str, str] | None = None,
) -> Rule:
    """A rule from its pattern, reply text (None: echo) and actions (name -> template); raises RuleError
    naming ``origin``."""
    if not match:
        raise RuleError(f"{origin}: the pattern is empty; (?s).* answers every message")
    try:
        # A byte regex: \x02 in the text is the regex escape for the byte 2, so binary protocols work.
        pattern = re.compile(match.encode("utf-8", "surrogateescape"))
    except (re.error, ValueError, OverflowError, RecursionError) as exc:
        raise RuleError(f"{origin}: bad regex {_quoted(match)}: {exc}") from None
    pieces = None
    try:
        if reply is not None:
            pieces = _template(reply, pattern)
    except RuleError as exc:
        raise RuleError(f"{origin}: bad reply {_quoted(reply or '')}: {exc}") from None
    actions = actions or {}
    if reply is None and not actions:
        raise RuleError(f"{origin}: a rule needs a reply, an action ({', '.join(ACTIONS)}), or both")
    unknown = sorted(set(actions) - set(ACTIONS))
    if unknown:
        raise RuleError(f"{origin}: unknown action {_quoted(unknown[0])} (actions: {', '.join(ACTIONS)})")
    written = tuple((name, actions[name]) for name in ACTIONS if name in actions)
    compiled = []
    for name, template in written:
        try:
            compiled.append(_template(template, pattern))
            if name == "fault":
                _check_fault(compiled[-1])
        except RuleError as exc:
            raise RuleError(f"{origin}: bad {name} {_quoted(template)}: {exc}") from None
    return Rule(number, origin, match, reply, once, pattern, pieces, written, tuple(compiled))


def parse_rule_option(text: str, number: int, nth: int) -> Rule:
    """``--rule 'REGEX => REPLY'`` or ``'REGEX => REPLY ;; label={1}'``, the ``nth`` of its kind, tried
    ``number``-th. Only `` ;; NAME=`` with NAME an action starts an action: any other ``;;`` is the reply's."""
    match, separator, reply = text.partition(RULE_SEPARATOR)
    origin = f"--rule {nth}"
    if not separator:
        raise RuleError(
            f"{origin}: expected 'REGEX{RULE_SEPARATOR}REPLY' (a space each side of =>), got {_quoted(text)}"
        )
    reply, *parts = re.split(rf"{re.escape(ACTION_SEPARATOR)}(?=\w+=)", reply)
    actions: dict[str, str] = {}
    for part in parts:
        name, _, template = part.partition("=")
        if name in actions:
            raise RuleError(f"{origin}: {name} is given twice")
        actions[name] = template
    return compile_rule(number, origin, match, reply, actions=actions)


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
        keys = ", ".join(("match", "reply", "once", *ACTIONS))
        raise RuleError(f"{origin}: unknown key {unknown[0]!r} (a rule has {keys})")
    match, reply, once = table.get("match"), table.get("reply"), table.get("once", False)
    if not isinstance(match, str) or not isinstance(reply, str | None):
        raise RuleError(f"{origin}: match and reply must both be strings (a rule with an action may have no reply)")
    if not isinstance(once, bool):
        raise RuleError(f"{origin}: once must be true or false")
    actions = {name: table[name] for name in ACTIONS if name in table}
    for name, template in actions.items():
        if not isinstance(template, str):
            raise RuleError(f"{origin}: {name} must be a string (a template, as the reply)")
    return compile_rule(number, origin, match, reply, once, actions)


def _check_fault(pieces: tuple[Piece, ...]) -> None:
    """A fault action without placeholders is read now, so that a typo fails at start (one with them is
    read when it is rendered: a bad one is a notice, and nothing changes)."""
    if all(isinstance(piece, bytes) for piece in pieces):
        spec = b"".join(piece for piece in pieces if isinstance(piece, bytes)).decode("utf-8", "replace")
        if spec.strip() != CLEAR_FAULTS:
            try:
                parse_faults(spec)
            except FaultSpecError as exc:
                raise RuleError(str(exc)) from None


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
    reply: str | None  # None: it echoes, and only acts
    once: bool
    hits: int
    last_match: str | None = None
    last_client: int | None = None
    last_at: float | None = None  # wall clock
    actions: tuple[tuple[str, str], ...] = ()  # (name, template) as written
    new: bool = False  # added by the latest reload

    def cells(self, now: float) -> tuple[str, str, str, str, str]:
        """Number, hits, last hit, last match, rule text and actions: as a table shows them, inert."""
        last = ""
        if self.last_at is not None:
            last = f"#{self.last_client} {format_duration(max(now - self.last_at, 0))} ago"
        once = "  (once per client)" if self.once else ""
        once += "  (new)" if self.new else ""
        text = printable(rule_text(self.match, self.reply, self.actions)) + once
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
        self.new = [False] * len(self.rules)  # added by the latest reload
        self.generation = 0  # goes up with every reload: a Responder then takes the new rules
        self.first_hits: list[tuple[Rule, bytes, int]] = []  # first hits not yet announced: rule, match, client

    def replace(self, rules: Iterable[Rule]) -> tuple[int, int]:
        """Take a reloaded set of rules: a rule the same as one before keeps its hits and last match,
        the others are new. Returns (new, gone): how many rules came and went."""
        old = list(zip(self.rules, self.hits, self._last, strict=True))
        self.rules = tuple(rules)
        self.hits, self._last, self.new = [], [], []
        for rule in self.rules:
            kept = next((entry for entry in old if rule.same_as(entry[0])), None)
            if kept is not None:
                old.remove(kept)
            self.hits.append(0 if kept is None else kept[1])
            self._last.append(None if kept is None else kept[2])
            self.new.append(kept is None)
        self.generation += 1
        self.first_hits.clear()  # their numbers may have changed; a rule's first hit was said or is lost
        return sum(self.new), len(old)

    def hit(self, index: int, match: bytes, client_id: int, at: float) -> None:
        """Count a hit of the ``index``-th rule."""
        self.hits[index] += 1
        last = self._last[index] = _LastHit(match[:LAST_MATCH_BYTES], client_id, at)
        if self.hits[index] == 1:
            self.first_hits.append((self.rules[index], last.match, client_id))

    def table(self) -> tuple[RuleHits, ...]:
        rows = []
        for rule, hits, last, new in zip(self.rules, self.hits, self._last, self.new, strict=True):
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
                    actions=rule.actions,
                    new=new,
                )
            )
        return tuple(rows)
