"""The demo's server source: the monitor's guest-mode server, plus the cast's process alongside it.

The cast starts with the server and is stopped before the server stops, whichever way the app ends
(the app stops its source on q, on a signal, on a hang-up and on a crash). Should the demo's process
die without that, the cast still ends: it stops at end of file on its standard input, a pipe whose
other end only this process holds. No Textual here.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import IO

from tui_echo.demo import script
from tui_echo.monitor.guest import GuestServer
from tui_echo.server.config import DEFAULT_HOST, DEFAULT_MAX_CLIENTS, ServerConfig
from tui_echo.server.rules import Rule, compile_rule
from tui_echo.server.events import ServerEvent, ServerListening, ServerNotice
from tui_echo.text import format_duration

CAST_STOP_SECONDS = 2.0  # the cast closes its connections and exits within this once told, or is killed
CAST_MEMBERS = 8  # alice, bob, carol, dave, erin, frank, the sensor and the logger


def demo_rules() -> tuple[Rule, ...]:
    """The server names the cast by what they say, as it would name anyone: rules that only label (the
    echo is unchanged). ``name: text`` labels its sender ``name`` (join in with ``nc``: say ``me: hi``),
    and a frame from sensor 7 labels the sensor."""
    return tuple(
        compile_rule(number, f"demo rule {number}", match, None, actions={"label": label})
        for number, (match, label) in enumerate(script.LABEL_RULES, 1)
    )


def demo_config(port: int, speed: float) -> ServerConfig:
    return ServerConfig(
        host=DEFAULT_HOST,
        port=port,
        max_clients=DEFAULT_MAX_CLIENTS,
        idle_timeout=script.IDLE_TIMEOUT / speed,
        write_timeout=script.WRITE_TIMEOUT / speed,
        rules=demo_rules(),
    )


class DemoServer(GuestServer):
    """A ``ServerSource``: the demo server on 127.0.0.1, with no control socket, and its cast."""

    def __init__(self, port: int = 0, speed: float = 1.0) -> None:
        self.config = demo_config(port, speed)
        super().__init__(self.config)
        self.speed = speed
        self.cast: subprocess.Popen[bytes] | None = None
        self._cast_errors: IO[bytes] | None = None  # the cast's stderr: its last line, should it fail
        self._introduced = False
        self._watching_cast = False  # until it is stopped, or found stopped by itself

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def origin(self) -> str:
        return f"demo · join in: nc {DEFAULT_HOST} {self.port}"

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        super().start(on_stopped)
        self._cast_errors = tempfile.TemporaryFile()  # noqa: SIM115 (open for the cast's life; _stop_cast closes it)
        # Not the terminal's process group: a key or signal meant for the demo is handled by the demo.
        self.cast = subprocess.Popen(
            [sys.executable, "-m", "tui_echo.demo.cast", str(self.port), "--speed", repr(self.speed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._cast_errors,
            start_new_session=True,
        )
        self._watching_cast = True

    def take_events(self, limit: int) -> list[ServerEvent]:
        events = super().take_events(limit)
        if not self._introduced:
            for index, event in enumerate(events):
                if isinstance(event, ServerListening):
                    events[index + 1 : index + 1] = self._introduction(event.at)
                    self._introduced = True
                    break
        if self._watching_cast and self.cast is not None and self.cast.poll() is not None:
            self._watching_cast = False
            events.append(ServerNotice(message=self._cast_ended(), at=time.time()))
        return events

    def _introduction(self, at: float) -> list[ServerEvent]:
        idle, write = self.config.idle_timeout, self.config.write_timeout
        assert idle is not None and write is not None
        lines = (
            f"demo: join in with nc {DEFAULT_HOST} {self.port} · {CAST_MEMBERS} simulated clients connect "
            f"from a process of their own, at {self.speed:g}x speed",
            f"demo: idle timeout {format_duration(idle)} (dave goes quiet), "
            f"write timeout {format_duration(write)} (frank never reads his echo)",
        )
        return [ServerNotice(message=line, at=at) for line in lines]

    def _cast_ended(self) -> str:
        assert self.cast is not None and self._cast_errors is not None
        self._cast_errors.seek(0)
        last = self._cast_errors.read()[-2000:].decode(errors="replace").strip().splitlines()[-1:]
        because = f": {last[0]}" if last else ""
        return f"demo: the cast stopped by itself (exit code {self.cast.returncode}){because}"

    async def stop(self) -> None:
        await self._stop_cast()
        await super().stop()

    async def _stop_cast(self) -> None:
        cast = self.cast
        if cast is None:
            return
        self._watching_cast = False
        if cast.stdin is not None:
            cast.stdin.close()  # end of file: the cast closes its connections and exits
        deadline = time.monotonic() + CAST_STOP_SECONDS
        while cast.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if cast.poll() is None:
            cast.kill()
            cast.wait()
        if self._cast_errors is not None:
            self._cast_errors.close()
