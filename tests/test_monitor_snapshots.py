"""Pictures of the monitor (pytest-textual-snapshot), from scripted data: no real ports or times.

One class per feature. Update them after a deliberate change of look with
``pytest --snapshot-update`` and check the new SVGs under tests/__snapshots__
by eye.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from textual.pilot import Pilot

from tui_echo.monitor.app import MonitorApp

from .monitor_helpers import SIZE
from .scripted_source import T0, classroom


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def scripted_app() -> MonitorApp:
    now = [T0]
    app = MonitorApp(classroom(), clock=lambda: now[0], handle_signals=False)
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


class TestSendBox:
    def test_the_footer_offers_enter_and_esc_while_typing(self, snap_compare: Compare) -> None:
        assert snap_compare(scripted_app(), terminal_size=(80, 24), press=["s", *"hi"])
