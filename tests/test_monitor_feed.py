"""The feed follows the newest line, whatever happens to it, unless the user scrolled up or paused it.

Each case fills the feed from real clients, does one thing to it, then checks
that a new line shows on the screen as the terminal gets it, at 80 and at 120
columns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tui_echo.monitor.models.feed import Direction

from .monitor_helpers import Client, Monitor, on_screen, run_monitor

pytestmark = pytest.mark.tui

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
FILL_CLIENTS = 25  # their connect lines fill the feed at 120x40 (18 lines) and more


async def fill(monitor: Monitor) -> list[Client]:
    clients = [await monitor.connect() for _ in range(FILL_CLIENTS)]
    # Every client's own connect line (not just as many lines: the start's notices count too), or a late one
    # could come after the line a test says next.
    await monitor.until(
        lambda: sum("connected from" in e.text for e in monitor.feed.entries) == FILL_CLIENTS, "the connect lines"
    )
    await monitor.until(lambda: "connected from" in feed_lines(monitor)[-1], "the feed full and drawn")
    return clients


def feed_text(monitor: Monitor) -> str:
    return "\n".join(on_screen(monitor.feed))


def feed_lines(monitor: Monitor) -> list[str]:
    """The feed's lines on screen, without its border and scrollbar."""
    return [line[1:-2] for line in on_screen(monitor.feed)[1:-1]]


def last_line(monitor: Monitor) -> str:
    return next((line for line in reversed(feed_lines(monitor)) if line.strip()), "")


async def newest_shows(monitor: Monitor, client: Client, text: str) -> None:
    """The client says ``text``: it must reach the bottom of the feed on screen."""
    await client.say(text.encode())
    await monitor.until(
        lambda: any(e.text == text for e in monitor.feed.entries if e.direction is Direction.ECHOED), "the line"
    )
    await monitor.until(
        lambda: text in last_line(monitor),
        lambda: (
            f"{text!r} on the feed's last line (following: {monitor.feed.following}; the feed's last lines: "
            f"{monitor.feed.shown_lines()[-3:]})"
        ),
    )


def run_filled(size: tuple[int, int], step: Callable[[Monitor, list[Client]], Awaitable[None]]) -> None:
    async def test(monitor: Monitor) -> None:
        clients = await fill(monitor)
        await newest_shows(monitor, clients[0], "before")
        await step(monitor, clients)
        for n in range(3):
            await newest_shows(monitor, clients[n + 1], f"after {n}")

    run_monitor(test, size=size)


@pytest.mark.parametrize("size", SIZES)
def test_a_line_wider_than_the_feed_is_cut_with_a_mark_and_the_feed_keeps_following(size: tuple[int, int]) -> None:
    async def wide_line(monitor: Monitor, clients: list[Client]) -> None:
        await clients[0].say(b"X" * 140 + b"\n")
        await monitor.until(lambda: "XXX…" in feed_text(monitor), "the wide line, cut with a mark")

    run_filled(size, wide_line)


@pytest.mark.parametrize("size", SIZES)
def test_the_feed_keeps_following_through_a_shrink_and_a_grow(size: tuple[int, int]) -> None:
    async def resize(monitor: Monitor, clients: list[Client]) -> None:
        width, height = size
        await monitor.pilot.resize_terminal(width * 2 // 3, height * 2 // 3)
        await monitor.pilot.pause()
        await newest_shows(monitor, clients[5], "while small")
        await monitor.pilot.resize_terminal(width, height)
        await monitor.pilot.pause()

    run_filled(size, resize)


@pytest.mark.parametrize("size", SIZES)
def test_the_feed_keeps_following_after_filter_and_hex_toggles(size: tuple[int, int]) -> None:
    async def toggles(monitor: Monitor, clients: list[Client]) -> None:
        await monitor.pilot.press("f", "x")
        await monitor.until(lambda: "#1 only · hex" in feed_text(monitor), "the filtered hex view")
        await monitor.pilot.press("f", "x")
        await monitor.until(lambda: "hex" not in feed_text(monitor).splitlines()[0], "the text view")

    run_filled(size, toggles)


@pytest.mark.parametrize("size", SIZES)
def test_the_feed_keeps_following_after_clear_and_a_theme_change(size: tuple[int, int]) -> None:
    async def clear_and_theme(monitor: Monitor, clients: list[Client]) -> None:
        await monitor.pilot.press("c")
        monitor.app.theme = "textual-light"
        await monitor.pilot.pause()
        for client in clients[5:15]:  # fill it again
            await client.say(b"again")
        await monitor.until(lambda: feed_text(monitor).count("again") >= 5, "the feed filling again")

    run_filled(size, clear_and_theme)


@pytest.mark.parametrize("size", SIZES)
def test_scrolling_up_stops_following_and_the_bottom_follows_again(size: tuple[int, int]) -> None:
    async def scroll(monitor: Monitor, clients: list[Client]) -> None:
        monitor.feed.focus()
        await monitor.pilot.press("up", "up")
        held = feed_lines(monitor)
        await clients[7].say(b"unseen")
        await monitor.until(lambda: any(e.text == "unseen" for e in monitor.feed.entries), "the line")
        await monitor.pilot.pause()
        assert feed_lines(monitor) == held
        await monitor.pilot.press("end")

    run_filled(size, scroll)


@pytest.mark.parametrize("size", SIZES)
def test_pause_holds_the_view_still_before_the_feed_is_full(size: tuple[int, int]) -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await newest_shows(monitor, client, "first")
        await monitor.pilot.press("p")
        await monitor.until(lambda: "PAUSED" in feed_text(monitor), "the paused title")
        held = feed_lines(monitor)
        for n in range(3):
            await client.say(b"held %d" % n)
        await monitor.until(lambda: "PAUSED, 3 new lines" in feed_text(monitor), "the title to count 3 new lines")
        assert feed_lines(monitor) == held
        await monitor.pilot.press("p")
        await monitor.until(lambda: "held 2" in last_line(monitor), "the new lines once resumed")

    run_monitor(test, size=size)
