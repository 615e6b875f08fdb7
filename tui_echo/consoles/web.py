"""``tui-echo web``: the attached console in a browser, served by textual-serve.

textual-serve starts one process per browser tab; here that process is
``tui-echo attach SOCKET``, so every tab is one more console of the same
server. What this module adds to textual-serve's own server:

- it listens on 127.0.0.1 only: kick, send and stop are remote control;
- every request needs a secret token (given in the printed URL, kept in a
  cookie after the first visit), because every local user can reach
  127.0.0.1; and a request from another site's page is refused;
- every request must name this machine in its ``Host`` (127.0.0.1, localhost
  or [::1], any port, so that SSH forwarding works): a page of another name
  that resolves here (DNS rebinding) is refused, as Jupyter and
  webpack-dev-server do; the page's websocket URL is built from that Host;
- the page loads nothing from another host (no web fonts, no CDN), so it
  works without internet.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server

from tui_echo.consoles.tab_process import mark_web_server
from tui_echo.control.client import Connection, ConsoleError

HOST = "127.0.0.1"  # never another address: see the module's docstring
TOKEN_BYTES = 24
SHUTDOWN_SECONDS = 0.5  # at Ctrl+C: a tab never ends by itself; once cancelled, its console gets this long to quit
_TEMPLATES = Path(__file__).with_name("web_templates")
# This machine's names, with any port: ssh -L 9000:127.0.0.1:8000 makes the page localhost:9000.
_LOCAL_HOST = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?", re.IGNORECASE)
_CHECKED_HOST = "tui-echo-host"  # the request's key for its checked Host

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebError(Exception):
    """The web server cannot start; the message is meant for the user as is."""


def attach_command(socket_path: Path) -> str:
    """The shell command textual-serve runs for each tab (``exec``: the tab's process is the console)."""
    return "exec " + shlex.join([sys.executable, "-m", "tui_echo", "attach", str(socket_path)])


class WebConsole(Server):
    """textual-serve's server with a token at the door and a page that needs no other host."""

    def __init__(self, socket_path: Path, *, title: str, token: str) -> None:
        super().__init__(attach_command(socket_path), host=HOST, title=title, templates_path=_TEMPLATES)
        self.socket_path = socket_path
        self.token = token
        self.cookie = "tui-echo-web"  # named after the port once bound: another tui-echo web's cookie is another

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if not _LOCAL_HOST.fullmatch(host):
            shown = repr(host[:100]) if host else "none"
            raise web.HTTPForbidden(
                text=f"tui-echo web: the Host {shown} is not 127.0.0.1, localhost or [::1]; open the URL it printed\n"
            )
        request[_CHECKED_HOST] = host
        in_query = _same(request.query.get("token"), self.token)
        if not (in_query or _same(request.cookies.get(self.cookie), self.token)):
            raise web.HTTPForbidden(text="tui-echo web: open the URL with the token that tui-echo web printed\n")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != host:
            # Another site's page in the same browser (a websocket carries cookies): never steer from there.
            raise web.HTTPForbidden(text="tui-echo web: requests from another site's page are refused\n")
        response = await handler(request)
        if in_query and not response.prepared:
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path="/")
        return response

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        # A tab whose console cannot attach would stay blank (textual-serve keeps its websocket open):
        # say so instead, while the server is down (it may come back on the same socket).
        problem = await asyncio.to_thread(_unreachable, self.socket_path)
        if problem:
            raise web.HTTPServiceUnavailable(text=f"tui-echo web: {problem}; reload this page once it is back\n")
        # URLs relative to the host the browser asked for: behind `ssh -L 9000:127.0.0.1:8000` the page
        # is localhost:9000, and its websocket must go there too, with the cookie for that host.
        return {
            "font_size": _font_size(request.query.get("fontsize", "16")),
            "app_websocket_url": f"ws://{request[_CHECKED_HOST]}/ws",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }

    async def on_startup(self, app: web.Application) -> None:
        """No banner: ``serve`` prints the one line that matters, the URL with its token."""


def _unreachable(path: Path) -> str | None:
    try:
        Connection.open(path, events=False, snapshot=False, role="list").close()
    except ConsoleError as exc:
        return str(exc)
    return None


def _same(given: str | None, token: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def _font_size(text: str) -> int:
    return int(text) if text.isdigit() and 6 <= int(text) <= 64 else 16


async def _serve(console: WebConsole, port: int, started: Callable[[int, str], None]) -> None:
    runner = web.AppRunner(
        await console._make_app(), handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, port)
        try:
            await site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's own message repeats the address
            raise WebError(f"cannot listen on {HOST}:{port}: {reason}") from None
        bound = runner.addresses[0][1]
        console.cookie = f"tui-echo-web-{bound}"  # a browser keeps cookies per host, whatever the port
        started(bound, f"http://{HOST}:{bound}/?token={console.token}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(socket_path: Path, *, title: str, port: int, started: Callable[[int, str], None]) -> None:
    """Serve until SIGINT or SIGTERM; ``started`` gets the port and the URL with the token once it listens.

    Raises WebError if the port cannot be had.
    """
    console = WebConsole(socket_path, title=title, token=secrets.token_urlsafe(TOKEN_BYTES))
    mark_web_server()  # every tab's console dies with this process, even if it is killed
    asyncio.run(_serve(console, port, started))
