"""Finding text in the feed's lines: where a query occurs in a line as shown. Pure: no trio, no Textual.

A line is searched as the feed shows it, so in the hex view a query such as
``0d 0a`` finds the bytes in the dump, and its ASCII column is searched too.
Case does not matter; the query is found as typed (spaces included).
"""

from __future__ import annotations

MAX_QUERY = 200  # characters: longer than any line the feed shows


def spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where ``query`` (lower case) occurs in ``text``, as (start, end) character offsets, not overlapping."""
    if not query:
        return []
    found = []
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer ("İ"): a match, not placed
        return [(0, 0)] if query in lowered else []
    start = lowered.find(query)
    while start >= 0:
        found.append((start, start + len(query)))
        start = lowered.find(query, start + len(query))
    return found


def normalise(query: str) -> str:
    return query[:MAX_QUERY].lower()
