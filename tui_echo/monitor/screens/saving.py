"""Saving what a screen shows (the feed, a client's history): the request a screen makes, and its palette entries.

A screen asks (``SaveRequested``); the app writes the file, in a thread, where
it was told to save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.app import SystemCommand
from textual.message import Message

from tui_echo.monitor.models.feed import FeedEntry
from tui_echo.monitor.models.feed_export import ExportFormat

SAVE_HELP = "Save the feed (on a client's screen: its history) as {} to a new file in the current directory"


@dataclass
class SaveRequested(Message):
    """Save ``entries`` as ``kind``: the file is named for ``subject``, the notification calls them ``what``."""

    entries: tuple[FeedEntry, ...]
    kind: ExportFormat
    subject: str  # "feed", "client3"
    what: str  # "The feed", "#3's history"


def save_commands(title: str, lines: str, save: Callable[[ExportFormat], None]) -> Iterator[SystemCommand]:
    """The palette's "Save … as text" and "… as JSON Lines" (``w`` and ``W``)."""
    for kind in ExportFormat:
        key = "w" if kind is ExportFormat.TEXT else "W"
        yield SystemCommand(
            f"{title} as {kind.label}",
            f"Write {lines} to a new file in the current directory ({key})",
            partial(save, kind),
        )
