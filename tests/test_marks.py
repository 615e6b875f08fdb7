"""The feed's marks have one definition (``Direction``): README's mark table and the help screen follow it."""

from __future__ import annotations

import re
from pathlib import Path

from tui_echo.monitor.models.feed import Direction

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_marks() -> list[tuple[str, str]]:
    """The rows of README's ``| mark | meaning |`` table."""
    lines = README.read_text().splitlines()
    start = lines.index("| mark | meaning |") + 2  # past the header and its rule
    rows = []
    for line in lines[start:]:
        match = re.fullmatch(r"\| `(.+?)` \| (.+) \|", line)
        if match is None:
            break
        rows.append((match[1], match[2]))
    return rows


def test_readmes_mark_table_matches_the_marks_in_the_code() -> None:
    assert readme_marks() == [(str(direction), direction.meaning) for direction in Direction]


def test_a_mark_is_never_reused_for_another_meaning() -> None:
    # A second member with a mark already taken would be an alias (``@unique`` refuses it at import).
    assert list(Direction.__members__.values()) == list(Direction)
    assert len({direction.meaning for direction in Direction}) == len(Direction)
    assert all(direction.meaning for direction in Direction)
