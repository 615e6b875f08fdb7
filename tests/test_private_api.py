"""The private API of Textual, textual-serve and asyncio that the monitor and the web console use (README: "Private APIs
we rely on"; trio's is checked in test_tls_stream.py).

Each test names the private piece and what depends on it, so that an upgrade that
changes one fails here, loudly, rather than somewhere in the monitor.
"""

from __future__ import annotations

import asyncio
import inspect

from textual.app import App, ComposeResult
from textual.binding import BindingsMap
from textual.driver import Driver
from textual.drivers.web_driver import WebDriver
from textual.scroll_view import ScrollView
from textual.widgets import Label
from textual_serve.server import Server

from tui_echo.monitor.models.table import TableModel
from tui_echo.monitor.models.table_view import TableView
from tui_echo.monitor.guest import host_has_work, next_timer
from tui_echo.monitor.private_api import node_bindings
from tui_echo.monitor.tab_driver import TabDriver
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed


def broken(what: str, used_by: str) -> str:
    return f"Textual's private {what} changed: {used_by} depends on it (README: Private APIs we rely on)"


def test_a_nodes_merged_bindings_are_still_in_bindings() -> None:
    table = ConnectionsTable(TableView(TableModel()))
    bindings = node_bindings(table)
    assert isinstance(bindings, BindingsMap), broken("DOMNode._bindings", "the help screen's widget keys")
    keys = {key for key, _ in bindings}
    # Its own keys and those of the classes it comes from (ScrollView's sideways scrolling).
    assert {"o", "O", "enter", "left", "right"} <= keys, broken("DOMNode._bindings", "the help screen's widget keys")


class _Scrolled(ScrollView):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float | None] = []

    def _scroll_to(self, x: float | None = None, y: float | None = None, **options: object) -> bool:
        self.seen.append(y)
        return super()._scroll_to(x, y, **options)  # type: ignore[arg-type]


def test_every_scroll_still_passes_through_scroll_to() -> None:
    parameters = list(inspect.signature(ScrollView._scroll_to).parameters)
    assert parameters[:3] == ["self", "x", "y"], broken("ScrollView._scroll_to", "the feed's follow-the-newest-line")
    assert "_scroll_to" in Feed.__dict__  # the override this checks for

    class Probe(App[None]):
        def compose(self) -> ComposeResult:
            yield _Scrolled()

    async def main() -> None:
        app = Probe()
        async with app.run_test(size=(40, 10)) as pilot:
            view = app.query_one(_Scrolled)
            view.virtual_size = view.virtual_size.with_height(100)
            await pilot.pause()
            view.scroll_to(y=5, animate=False, immediate=True)  # the public way, by code
            view.scroll_down(animate=False, immediate=True)  # as a key does
            await pilot.pause()
            assert len(view.seen) >= 2, broken("ScrollView._scroll_to", "the feed's follow-the-newest-line")

    asyncio.run(main())


def test_a_driver_still_keeps_its_app_its_size_and_its_exit_event() -> None:
    source = inspect.getsource(Driver.__init__)
    assert "self._app = app" in source, broken("Driver._app", "tui-echo web's tab driver (tab_driver.py)")
    assert "self._size = size" in source, broken("Driver._size", "tui-echo web's tab driver (tab_driver.py)")
    web = inspect.getsource(WebDriver)
    assert "self.exit_event = Event()" in web, broken("WebDriver.exit_event", "tab_driver.py")
    assert issubclass(TabDriver, WebDriver) and "run_input_thread" in TabDriver.__dict__
    for method in ("run_input_thread", "on_meta", "start_application_mode"):
        assert callable(getattr(WebDriver, method, None)), broken(f"WebDriver.{method}", "tab_driver.py")


def test_textual_serve_still_builds_its_app_in_make_app() -> None:
    make_app = getattr(Server, "_make_app", None)
    assert make_app is not None and inspect.iscoroutinefunction(make_app), (
        "textual-serve's private Server._make_app changed: tui-echo web (consoles/web.py) depends on it"
    )


def test_what_the_tests_read_is_still_there() -> None:
    """tests/monitor_helpers.py reads the notifications shown and what reaches the terminal."""

    class Probe(App[None]):
        def compose(self) -> ComposeResult:
            yield Label("hello")

    async def main() -> None:
        app = Probe()
        async with app.run_test(size=(20, 3)) as pilot:
            app.notify("noted")
            await pilot.pause()
            assert [str(n.message) for n in app._notifications] == ["noted"], broken("App._notifications", "tests")
            strips = app.screen._compositor.render_strips()
            assert "hello" in "".join(s.text for s in strips[0]), broken("Screen._compositor", "tests")

    asyncio.run(main())


def test_asyncios_loop_still_keeps_its_ready_callbacks_in_ready_and_its_timers_in_scheduled() -> None:
    """monitor/guest.py reads ``BaseEventLoop._ready`` and ``._scheduled`` to run trio's next batch only when the
    host loop (Textual) has nothing ready and, after it worked, its repaint is done: without them, trio would
    run at once, and keypresses would wait for its batches again."""

    async def main() -> tuple[bool, bool, float | None, float]:
        loop = asyncio.get_running_loop()
        idle = host_has_work(loop)
        loop.call_soon(lambda: None)
        at = loop.time() + 60
        loop.call_at(at, lambda: None)
        return idle, host_has_work(loop), next_timer(loop), at

    idle, ready, due, at = asyncio.run(main())
    assert (idle, ready) == (False, True), "asyncio's private BaseEventLoop._ready changed: monitor/guest.py"
    assert due == at, "asyncio's private BaseEventLoop._scheduled changed: monitor/guest.py"
