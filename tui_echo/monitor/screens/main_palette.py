"""What the command palette offers over the main screen: every action of its keys, and some without a key.

``main_commands`` lists the screen's commands (the app adds Textual's own);
``GoToProvider`` answers a palette search that is a client's id (``1234`` or
``#1234``) with "Go to client #1234", so the palette finds a client as well
as a command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from textual.app import SystemCommand
from textual.command import Hit, Hits, Provider

from tui_echo.monitor.models.feed_export import ExportFormat
from tui_echo.monitor.screens.main_table import TableKeys, client_keys_of
from tui_echo.monitor.screens.saving import save_commands
from tui_echo.monitor.widgets.table_columns import COLUMNS


class GoToProvider(Provider):
    """A search that is a client id: go to that client's row."""

    async def search(self, query: str) -> Hits:
        screen = self.screen
        if not isinstance(screen, TableKeys):
            return
        keys = screen.table.view.keys
        client_ids = client_keys_of(query, keys) or []
        if len(client_ids) > 1:  # #12 on several servers: the ones there are
            client_ids = [client_id for client_id in client_ids if screen.table.row_of(client_id) is not None]
        for client_id in client_ids:
            name = keys.label(client_id)
            yield Hit(1.0, f"Go to client {name}", partial(screen.go_to, client_id), help="Put the cursor on its row")


# The screen's own commands: (what the palette says, its help, the screen's method that does it).
SCREEN_COMMANDS = (
    ("Go to client…", "Put the cursor on a client's row, by its id (or type #1234 here)", "action_go_to"),
    (
        "Filter table…",
        "Show only the clients that match: #1234, 10.0.0.7, :51234, kicked, tls, a label (/)",
        "action_filter_table",
    ),
    (
        "Find a client by its port…",
        "Filter the table to a peer's port: type it after the colon (/)",
        "action_filter_port",
    ),
    ("Label selected client…", "Name the client under the cursor; a filter finds it by its label (N)", "action_label"),
    (
        "Kick the filtered clients…",
        "Kick every client the table's filter shows now, after a question",
        "action_kick_filtered",
    ),
    (
        "Send to the filtered clients…",
        "Send text to every client the filter shows now, after a question",
        "action_send_filtered",
    ),
    (
        "Ban the filtered clients' addresses…",
        "Ban the addresses of the clients the filter shows, after a question",
        "action_ban_filtered",
    ),
    ("Client details", "The selected client's own screen (Enter)", "open_selected"),
    ("Kick selected client", "Disconnect the client under the cursor, or the tagged ones (k)", "action_kick"),
    ("Kick all clients", "Disconnect every client (K)", "action_kick_all"),
    ("Ban selected client's address", "Kick it and refuse its address a while; or the tagged ones' (b)", "action_ban"),
    ("Faults", "Give the selected client faults, or clear them (F)", "action_faults"),
    ("Banned addresses", "List the bans and lift one (B)", "action_bans"),
    ("Reply rules", "Each rule's hits and last match (R)", "action_rules"),
    ("Clear tags", "Untag every client (Esc)", "action_clear_tags"),
    ("Freeze table", "Hold its rows and order still; the numbers keep counting (Z)", "action_freeze"),
    ("Group by address", "One row per peer address, numbers summed; or a row per client (G)", "action_group"),
    ("Filter feed to selected client", "Show one client's lines, or all again (f)", "action_filter"),
    (
        "Feed: the filtered clients",
        "Show the lines of the clients the table's filter shows now, or all",
        "action_feed_to_shown",
    ),
    ("Find in feed", "Find text or hex bytes in the feed's kept lines (ctrl+f)", "action_find"),
    ("Hex view", "Show data as a hex and ASCII dump, or as text again (x)", "action_hex"),
    ("Pause feed", "Stop or resume scrolling the feed; the table keeps counting (p)", "action_pause"),
    ("Clear feed", "Remove every line from the feed (c)", "action_clear"),
    ("Send text", "Go to the send box (s)", "action_focus_send"),
)


TLS_COMMAND = ("TLS certificate fingerprint", "Show the whole SHA-256 fingerprint", "action_tls_fingerprint")


def main_commands(screen: TableKeys, save: Callable[[ExportFormat], None]) -> Iterable[SystemCommand]:
    """What the palette offers over the main screen (``screen``; ``save`` saves the feed), besides Textual's
    own."""
    table = screen.table
    yield from save_commands("Save feed", "every kept line", save)
    for title, help_text, method in SCREEN_COMMANDS:
        yield SystemCommand(title, help_text, getattr(screen, method))
    yield SystemCommand(
        "Tag or untag selected client", "Kick, send and ban act on the tagged (space)", table.action_tag
    )
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
        title, help_text, method = TLS_COMMAND
        yield SystemCommand(title, help_text, getattr(screen, method))
