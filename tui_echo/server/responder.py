"""One client's side of the reply rules: its ``once`` rules that fired, its partial line, what it answered.

Pure logic, no trio. A server holds one ``RuleBook`` (``tui_echo.server.rules``)
and one ``Responder`` per client. A rule's actions (``label = '{1}'``) are
rendered here, with the reply's placeholders, and carried out by the server
(``tui_echo.server.answers``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from tui_echo.net import format_address
from tui_echo.server.rules import (
    REPLY_BATCH_BYTES,
    RULE_LINE_BYTES,
    RULE_PREFIX_BYTES,
    Field,
    Piece,
    Rule,
    RuleBook,
)
from tui_echo.times import utc_time


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
    # The rules' actions, rendered: name -> (rule number, text). The last of each name wins (a chunk of
    # three hello lines labels its client once, by the last), which also bounds what is kept.
    actions: dict[str, tuple[int, bytes]] = field(default_factory=dict)

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

    __slots__ = ("_book", "_rules", "_client_id", "_peer", "_fired", "_line_framing", "_partial", "_answers", "_keep")

    def __init__(
        self, book: RuleBook, client_id: int, peer: tuple[str, int], line_framing: bool, *, reply_bytes: int
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

    def take_answers(self) -> Answers:
        """What the rules answered since the last call (``answer``, ``respond``, ``finish``), then start afresh."""
        answers = self._answers
        if answers.count or answers.actions:  # nothing answered (most chunks): nothing to renew
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
            answers = self._answers
            for (name, _), pieces in zip(rule.actions, rule.action_pieces, strict=True):
                answers.actions[name] = (rule.number, self._render(pieces, found, len(message), count, at))
            if rule.pieces is None:
                return None  # a rule that only acts: the message is echoed
            reply = self._render(rule.pieces, found, len(message), count, at)
            answers.add(rule, reply)
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
        newline, up to RULE_LINE_BYTES.
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
                if len(partial) >= RULE_LINE_BYTES:
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
        if len(data) - start >= RULE_LINE_BYTES:
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
