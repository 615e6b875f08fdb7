"""What the command palette offers over the main screen: every action of its keys, and some without a key.

``main_commands`` lists the screen's commands (the app adds Textual's own);
``GoToProvider`` answers a palette search that is a client's id (``1234`` or
``#1234``) with "Go to client #1234", so the palette finds a client as well
as a command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.command import Hit, Hits, Provider

from tui_echo.monitor.screens.saving import save_commands
from tui_echo.monitor.widgets.table_columns import COLUMNS

if TYPE_CHECKING:
    from tui_echo.monitor.screens.main import MainScreen

_CLIENT_ID = re.compile(r"\s*#?\s*(\d{1,9})\s*")


def client_id_of(text: str) -> int | None:
    """``1234`` or ``#1234``: a client's id; None for anything else."""
    found = _CLIENT_ID.fullmatch(text)
    return None if found is None else int(found.group(1))


class GoToProvider(Provider):
    """A search that is a client id: go to that client's row."""

    async def search(self, query: str) -> Hits:
        client_id = client_id_of(query)
        screen = self.screen
        if client_id is None or not hasattr(screen, "go_to"):
            return
        yield Hit(1.0, f"Go to client #{client_id}", partial(screen.go_to, client_id), help="Put the cursor on its row")


def main_commands(screen: MainScreen) -> Iterable[SystemCommand]:
    table = screen.table
    yield from save_commands("Save feed", "every kept line", screen.action_save)
    yield SystemCommand(
        "Go to client…", "Put the cursor on a client's row, by its id (or type #1234 here)", screen.action_go_to
    )
    yield SystemCommand("Client details", "The selected client's own screen (Enter)", screen.open_selected)
    yield SystemCommand("Kick selected client", "Disconnect the client under the cursor (k)", screen.action_kick)
    yield SystemCommand("Kick all clients", "Disconnect every client (K)", screen.action_kick_all)
    yield SystemCommand(
        "Ban selected client's address", "Kick it and refuse its address a while (b)", screen.action_ban
    )
    yield SystemCommand("Banned addresses", "List the bans and lift one (B)", screen.action_bans)
    yield SystemCommand("Reply rules", "Each rule's hits and last match (R)", screen.action_rules)
    yield SystemCommand(
        "Tag or untag selected client", "Kick, send and ban act on the tagged (space)", table.action_tag
    )
    yield SystemCommand("Clear tags", "Untag every client (Esc)", screen.action_clear_tags)
    yield SystemCommand(
        "Freeze table", "Hold its rows and order still; the numbers keep counting (Z)", screen.action_freeze
    )
    yield SystemCommand(
        "Group by address", "One row per peer address, numbers summed; or a row per client (G)", screen.action_group
    )
    yield SystemCommand(
        "Filter feed to selected client", "Show one client's lines, or all again (f)", screen.action_filter
    )
    yield SystemCommand("Find in feed", "Find text or hex bytes in the feed's kept lines (ctrl+f)", screen.action_find)
    yield SystemCommand("Hex view", "Show data as a hex and ASCII dump, or as text again (x)", screen.action_hex)
    yield SystemCommand(
        "Pause feed", "Stop or resume scrolling the feed; the table keeps counting (p)", screen.action_pause
    )
    yield SystemCommand("Clear feed", "Remove every line from the feed (c)", screen.action_clear)
    yield SystemCommand("Send text", "Go to the send box (s)", screen.action_focus_send)
    yield SystemCommand("Sort connections", "Sort the table by the next column (o)", table.action_sort_next)
    yield SystemCommand("Reverse sort", "Reverse the table's order (O)", table.action_sort_reverse)
    for column in COLUMNS:
        again = " (again: the other way)" if column.key == table.sort_key else ""
        yield SystemCommand(
            f"Sort by {column.title}",
            f"Order the table by its {column.title} column{again}",
            partial(table.sort_by, column.key),
        )
    if screen.tls_fingerprint is not None:
        yield SystemCommand(
            "TLS certificate fingerprint", "Show the whole SHA-256 fingerprint", screen.action_tls_fingerprint
        )
