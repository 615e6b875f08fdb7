"""What the operator asks of the server. Plain frozen dataclasses: no trio, no Textual."""

from __future__ import annotations

from dataclasses import dataclass
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
class Shutdown:
    """Stop accepting, close every client with reason ``server shutdown``, then stop."""


ServerCommand: TypeAlias = Kick | KickAll | SendTo | Broadcast | Ban | Unban | SetFaults | Shutdown
