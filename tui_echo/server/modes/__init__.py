"""One handler per mode, each a loop over one connection with a narrow context (``context.py``).

``echo.py`` (the hot path), ``echo_rules.py`` (echo with reply rules),
``relay.py`` (chat, broker) and ``discard.py``. ``mode_for`` picks one per
server; every client of that server runs it.
"""

from __future__ import annotations

from typing import assert_never

from tui_echo.server.config import Mode
from tui_echo.server.connection import ModeHandler
from tui_echo.server.answers import RuleAnswers
from tui_echo.server.context import Context
from tui_echo.server.modes.discard import DiscardMode
from tui_echo.server.modes.echo import EchoMode
from tui_echo.server.modes.echo_rules import EchoRulesMode
from tui_echo.server.modes.relay import RelayMode


def mode_for(context: Context, answers: RuleAnswers | None) -> ModeHandler:
    """The handler for the server's ``--mode``; echo takes the rules' own loop only when there are rules."""
    mode = context.config.mode
    match mode:
        case Mode.ECHO:
            return EchoMode(context) if answers is None else EchoRulesMode(context, answers)
        case Mode.DISCARD:
            return DiscardMode(context)
        case Mode.CHAT | Mode.BROKER:
            return RelayMode(context, answers)
        case _:
            assert_never(mode)
