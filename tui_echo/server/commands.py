"""What the operator asks of the server. Plain frozen dataclasses: no trio, no Textual."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from tui_echo.server.faults import Faults


@dataclass(frozen=True, slots=True)
class Kick:
    client_id: int


@dataclass(frozen=True, slots=True)
class KickAll:
    pass


@dataclass(frozen=True, slots=True)
class SendTo:
    client_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Broadcast:
    data: bytes


@dataclass(frozen=True, slots=True)
class Ban:
    """Refuse the client's address for ``ServerConfig.ban_seconds`` and close every client from it."""

    client_id: int


@dataclass(frozen=True, slots=True)
class BanAddress:
    """Ban an address as a ``Ban`` does, though no client of this server is from it: a console of several
    servers (or a --workers server's workers) passes the ban of one's client on to the others."""

    address: str


@dataclass(frozen=True, slots=True)
class Unban:
    """Lift the ban on an address (as the ban list names it)."""

    address: str


@dataclass(frozen=True, slots=True)
class SetFaults:
    """Give a client these faults in place of any it has; None clears them. ``by`` says who, for the log."""

    client_id: int
    faults: Faults | None
    by: str = "operator"


@dataclass(frozen=True, slots=True)
class Label:
    """Name a client (``""`` takes its label away); cut to ``clients.MAX_LABEL_CHARS``."""

    client_id: int
    text: str


class ClientAction(StrEnum):
    KICK = "kick"
    SEND = "send"
    BAN = "ban"


@dataclass(frozen=True, slots=True)
class ForClients:
    """Kick, send to, or ban the addresses of, a fixed set of clients: all at once, in one command.

    Those of ``client_ids`` still connected when it runs are acted on; the others are reported gone
    (``Done``). ``data`` is what a send sends.
    """

    action: ClientAction
    client_ids: tuple[int, ...]
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Done:
    """What a command did, for whoever waits on it: a ``ForClients`` says how many clients it acted
    on and which of its ids were gone already, a ``Reload`` what it did or why it did nothing; other
    commands leave all empty."""

    acted: int = 0
    gone: tuple[int, ...] = ()
    message: str = ""  # a Reload: what it did ("reloaded: …")
    error: str = ""  # a Reload that found a bad file (nothing changed): why


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop accepting, close every client with reason ``server shutdown``, then stop."""


@dataclass(frozen=True, slots=True)
class Reload:
    """Re-read the access-list files and the reply-rule files (ctl reload, SIGUSR1); a bad file changes nothing."""


ServerCommand: TypeAlias = (
    Kick | KickAll | SendTo | Broadcast | Ban | BanAddress | Unban | Label | ForClients | SetFaults | Shutdown | Reload
)
