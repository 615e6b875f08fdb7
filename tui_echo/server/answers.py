"""Reply rules as the modes use them: the server's one rule book, what the log says about its hits,
and the rules' actions carried out.

The book (``tui_echo.server.rules``) counts every hit exactly. The first hit
of each rule is a notice of its own; after that, hits are summed up in one
notice at most every RULES_SUMMARY_SECONDS (``notices.Paced``). A rule's
actions (``label = '{1}'``) come rendered in the client's ``Answers`` and are
carried out in ``act``, the one place each kind of action has its effect.
"""

from __future__ import annotations

from typing import Any

from tui_echo.server.clients import ClientState
from tui_echo.server.connection import Connection
from tui_echo.server.context import Context
from tui_echo.server.events import EVENT_DATA_BYTES
from tui_echo.server.faulting import Faulting
from tui_echo.server.faults import CLEAR_FAULTS, FaultSpecError, parse_faults
from tui_echo.server.notices import Paced
from tui_echo.server.responder import Answers, Responder
from tui_echo.server.rules import Rule, RuleBook
from tui_echo.text import preview, printable

RULES_SUMMARY_SECONDS = 10.0  # rule hits are summarised this long after the first since the last summary


class RuleAnswers:
    def __init__(self, book: RuleBook, context: Context) -> None:
        self.book = book
        self._context = context
        self._notices = context.notices
        self._faulting = Faulting(context.config, context.outbox, context.clock)  # the server's own: no state
        self._reported = list(book.hits)
        self.summaries = Paced(RULES_SUMMARY_SECONDS, self._summarise, at_once=False)

    def responder(self, conn: Connection, *, line_framing: bool, max_frame: int) -> Responder:
        """One client's side of the rules (its ``once`` rules, its partial line)."""
        state = conn.state
        return Responder(
            self.book, state.client_id, state.peer, line_framing, reply_bytes=EVENT_DATA_BYTES, line_bytes=max_frame
        )

    def hit(self, taken: Answers, state: ClientState) -> dict[str, Any]:
        """After a rule answered: its actions on the client, a notice for each rule's first hit (the rest
        wait for the summary); returns the ``DataAnswered`` fields of what the client's responder
        answered (``taken``)."""
        if taken.actions:
            self.act(taken.actions, state)
        book = self.book
        for rule, match, client_id in book.first_hits:
            self._notices.say(
                f"rule {rule.number} ({printable(rule.match)}) first hit, by #{client_id}: {preview(match)}"
            )
        book.first_hits.clear()
        self.summaries.pending()
        return {
            "answered": taken.count,
            "rules": tuple(taken.rules),
            "reply": bytes(taken.reply),
            "reply_size": taken.reply_size,
        }

    def replace(self, rules: tuple[Rule, ...]) -> tuple[int, int]:
        """Reloaded rules (see RuleBook.replace); the next summary counts from the carried-over hits."""
        counts = self.book.replace(rules)
        self._reported = list(self.book.hits)
        return counts

    def act(self, actions: dict[str, tuple[int, bytes]], state: ClientState) -> None:
        """Carry out rendered actions (name -> rule number, text) on the client, in ``rules.ACTIONS``' order."""
        for name, (rule, text) in actions.items():
            match name:
                case "label":
                    self._context.label(state, text.decode("utf-8", "replace"), rule)
                case "fault":
                    self._fault(state, text.decode("utf-8", "replace"), rule)
                case _:
                    raise AssertionError(f"an action without an effect: {name}")  # rules.ACTIONS names it

    def _fault(self, state: ClientState, spec: str, rule: int) -> None:
        """A rule's fault action: the client gets these faults (``clear``: loses them); a spec its
        placeholders made bad is a notice, and nothing changes."""
        conn = self._context.registry.connections.get(state.client_id)
        if conn is None:
            return
        try:
            faults = None if spec.strip() == CLEAR_FAULTS else parse_faults(spec)
        except FaultSpecError as exc:
            self._notices.say(f"rule {rule}: fault for #{state.client_id} not set: {exc}")
            return
        self._faulting.set(conn, faults, f"rule {rule}")

    def _summarise(self) -> None:
        hits = list(self.book.hits)
        news = [
            f"rule {rule.number} +{now - before} ({now} in all)"
            for rule, now, before in zip(self.book.rules, hits, self._reported, strict=True)
            if now != before
        ]
        self._reported = hits
        if news:
            self._notices.say(f"rule hits in the last {RULES_SUMMARY_SECONDS:g} s: {', '.join(news)}")
