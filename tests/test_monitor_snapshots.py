"""Pictures of the monitor (pytest-textual-snapshot), from scripted data: no real ports or times.

One class per feature. Update them after a deliberate change of look with
``pytest --snapshot-update`` and check the new SVGs under tests/__snapshots__
by eye.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from textual.pilot import Pilot
from textual.widgets import Input

from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.models.stats import Stats
from tui_echo.monitor.widgets.stats_bar import StatsBar

from tui_echo.server.access import ActiveBan
from tui_echo.server.config import Mode

from .monitor_helpers import SIZE
from .scripted_source import T0, ScriptedSource, chat_room, classroom, lab

pytestmark = pytest.mark.tui


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def scripted_app(bans: tuple[ActiveBan, ...] = (), source: ScriptedSource | None = None) -> MonitorApp:
    now = [T0]
    app = MonitorApp(source or classroom(bans), clock=lambda: now[0], handle_signals=False)
    now[0] = T0 + 125  # the app started at T0; every reading from now on is two minutes later
    return app


Compare = Callable[..., bool]


class TestViews:
    def test_main_screen(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=SIZE, press=["down"])

    def test_hex_view(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=SIZE, press=["x"])

    def test_light_theme(self, snap_compare: Compare) -> None:
        def light(pilot: Pilot[None]) -> None:
            pilot.app.theme = "textual-light"

        assert snap_compare(scripted_app(), terminal_size=SIZE, run_before=light)


class TestSizes:
    """Every size from 50x14 up shows the client rows, their kick controls and Quit first."""

    def test_smallest_50x14(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=(50, 14))

    def test_80x24(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=(80, 24))

    def test_wide_200x50(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=(200, 50))


def pressing(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Press ``keys`` once the main screen has the focus, then let every message they caused settle: on a
    busy machine, keys pressed as the app starts can come before the screen is ready."""

    async def run(pilot: Pilot[None]) -> None:
        for _ in range(200):
            if pilot.app.focused is not None:
                break
            await pilot.pause(0.05)
        await pilot.press(*keys)
        for _ in range(3):
            await pilot.pause(0.05)
        # A text box's cursor blinks every 0.5 s: on a busy machine the picture could be taken with it off.
        for box in pilot.app.screen.query(Input):
            box.cursor_blink = False  # Textual shows the cursor, steadily, when blinking stops
        await pilot.pause()

    return run


class TestSendBox:
    def test_the_footer_offers_enter_and_esc_while_typing(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=(80, 24), run_before=pressing("s", *"hi"))


class TestClientScreen:
    """Enter on a row: the client's numbers, its rate, its history and its send box."""

    def test_text(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=SIZE, press=["down", "enter"])

    def test_hex(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=SIZE, press=["down", "down", "enter", "x"])

    def test_after_the_client_left(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=SIZE, press=["end", "enter"])


FINDING = {
    # The filter kept (Enter): the stats bar says "showing 3 of 4 · filter: 127.0.0.1".
    "filtered": ["slash", *"127.0.0.1", "enter"],
    "filter_prompt_open": ["slash", *"10.0"],  # as typed: the prompt's keys in the footer
    "grouped": ["G"],
    "tagged": ["space", "down", "space"],  # #1 and #3
}


class TestFinding:
    """The table filtered, grouped and with a tagged selection, at 80x24 and 120x40."""

    @pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
    @pytest.mark.parametrize("view", list(FINDING))
    def test_view(self, snap_compare: Compare, view: str, size: tuple[int, int]) -> None:
        assert snap_compare(scripted_app(), terminal_size=size, run_before=pressing(*FINDING[view]))


class TestHelp:
    """``?``: the marks, then every key."""

    def test_help_screen(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=SIZE, press=["question_mark"])


class TestBans:
    """``B``: the banned addresses and their time left."""

    def test_ban_list(self, snap_compare: Compare) -> None:
        bans = (ActiveBan("10.0.0.7", T0 + 125 + 480), ActiveBan("2001:db8::5", T0 + 125 + 3599))
        assert snap_compare(scripted_app(bans), terminal_size=SIZE, press=["B"])


class TestModes:
    def test_a_chat_room_with_a_receiver_that_does_not_read(self, snap_compare: Compare) -> None:
        # The stats bar names the mode, the feed shows who said what to whom (⇶), the dropped column
        # counts what #3 never got, and the send box speaks as the operator.
        assert snap_compare(scripted_app(source=chat_room()), terminal_size=(100, 24), press=["down"])


class TestOperatorLines:
    """A broadcast is one line; a rule's answer shows the request, the rule and the reply; the TLS
    fingerprint wraps whole; the table sorted by ``connected`` keeps its header whole."""

    def test_broadcast_rule_reply_fingerprint_and_sorted_header(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(source=lab()), terminal_size=SIZE, press=["o", "o"])

    def test_the_same_in_hex(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(source=lab()), terminal_size=SIZE, press=["x"])

    def test_the_clients_screen_has_its_reply_and_the_broadcast(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(source=lab()), terminal_size=SIZE, press=["down", "enter"])


class TestSparkline:
    """A log scale: beside one spike of 1,052 msg/s, 10 to 40 msg/s still show."""

    def test_a_spike_leaves_the_rest_visible(self, snap_compare: Compare) -> None:
        async def spike(pilot: Pilot[None]) -> None:
            await pilot.pause()  # after the screen's first refresh, which the frozen clock makes its last
            bar = pilot.app.query_one(StatsBar)
            history = tuple([10.0 + n % 30 for n in range(30)] + [1052.0] + [20.0 + n % 20 for n in range(29)])
            bar.show(
                Stats(
                    addresses=(("127.0.0.1", 12354),),
                    mode=Mode.ECHO,
                    uptime=125.0,
                    clients_now=8,
                    clients_peak=8,
                    clients_total=9,
                    refused_total=0,
                    messages=40_123,
                    bytes_in=2_000_000,
                    bytes_out=2_000_000,
                    messages_per_second=22.0,
                    bytes_per_second=1400.0,
                    feed_skipped=0,
                    history=history,
                    tls_fingerprint=None,
                    tls_handshakes_failed=0,
                    dropped_out=0,
                )
            )

        assert snap_compare(scripted_app(), terminal_size=SIZE, run_before=spike)
