"""What the monitor reads and asks of a server: the one interface its app depends on. No trio, no Textual.

``tui_echo.monitor.guest.GuestServer`` is the real one: the trio server as a
guest in the monitor's event loop. Tests of the look use a scripted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState
from tui_echo.server.commands import ServerCommand
from tui_echo.server.config import Mode
from tui_echo.server.events import ServerEvent, ServerTotals
from tui_echo.net import Peer
from tui_echo.server.rules import RuleHits


class ServerSource(Protocol):
    @property
    def addresses(self) -> tuple[Peer, ...]:
        """The real listening addresses (known before ``start``)."""
        ...

    @property
    def mode(self) -> Mode:
        """What the server does with what clients send (``--mode``)."""
        ...

    @property
    def origin(self) -> str:
        """Where consoles attach to this server, or what this console is attached to, for the screen."""
        ...

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        """Start serving from inside the running event loop. ``on_stopped`` gets the error
        if the server ends by itself with one, ``None`` if it ends cleanly."""
        ...

    def take_events(self, limit: int) -> list[ServerEvent]:
        """The events waiting, oldest first, at most ``limit``. Never blocks."""
        ...

    def clients(self) -> Iterable[ClientState]:
        """The live clients, with exact counts."""
        ...

    def totals(self) -> ServerTotals: ...

    def bans(self) -> Sequence[ActiveBan]:
        """The banned addresses, soonest to end first; a ban whose ``until`` (wall clock) has passed has ended."""
        ...

    def rules(self) -> Sequence[RuleHits]:
        """The reply rules in order, with their exact hit counts and last matches (none without rules)."""
        ...

    def send(self, command: ServerCommand) -> bool:
        """Queue a command; ``False`` if the queue is full (the command is not sent)."""
        ...

    async def stop(self) -> None:
        """Close every client, stop serving and wait until the server has finished."""
        ...
