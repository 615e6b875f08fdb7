"""A server with a control socket in a test folder, and a protocol client for it (trio)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from tui_echo.control import protocol
from tui_echo.control.listener import ControlSettings, ControlSocket
from tui_echo.server.config import ServerConfig
from tui_echo.server.server import EchoServer
from tui_echo.service import Service

from .helpers import TIMEOUT, Recorder


@dataclass
class Console:
    """A protocol client: sends lines, reads messages."""

    stream: trio.SocketStream
    buffer: bytearray = field(default_factory=bytearray)
    eof: bool = False
    held: list[dict[str, Any]] = field(default_factory=list)  # read while waiting for a reply: read again first

    async def send_line(self, line: bytes) -> None:
        await self.stream.send_all(line + b"\n")

    async def send(self, record: dict[str, Any]) -> None:
        await self.stream.send_all(protocol.encode_line(record))

    async def read(self) -> dict[str, Any] | None:
        """The next message, or None at EOF."""
        if self.held:
            return self.held.pop(0)
        with trio.fail_after(TIMEOUT):
            while b"\n" not in self.buffer:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    self.eof = True
                    return None
                self.buffer += data
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer[:] = rest
        message: dict[str, Any] = json.loads(line)
        return message

    async def read_until(self, kind: str, **fields: object) -> dict[str, Any]:
        while True:
            message = await self.read()
            assert message is not None, f"EOF before a {kind} message"
            if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                return message

    async def read_snapshot(self) -> dict[str, Any]:
        """The next snapshot, whole: its header's fields and its pages' clients."""
        pages = protocol.SnapshotPages(await self.read_until("snapshot"))
        while not pages.complete:
            message = await self.read()
            assert message is not None, "EOF inside a snapshot"
            pages.add(message)
        return pages.snapshot

    async def command(self, request_id: int | str, name: str, **fields: object) -> dict[str, Any]:
        """Send a command and return its reply. A reply comes once the command has run, so events it
        caused may come first: those are kept, and later reads return them first, in order."""
        await self.send(protocol.command_message(request_id, name, **fields))
        skipped = []
        try:
            while True:
                message = await self.read()
                assert message is not None, f"EOF before the reply to {name}"
                if message["type"] == "reply" and message.get("id") == request_id:
                    return message
                skipped.append(message)
        finally:
            self.held[:0] = skipped

    async def aclose(self) -> None:
        await self.stream.aclose()


@dataclass
class ControlledServer:
    server: EchoServer
    control: ControlSocket
    recorder: Recorder
    port: int
    path: Path

    async def console(self, *, events: bool = True) -> Console:
        console = Console(await trio.open_unix_socket(str(self.path)))
        hello = await console.read()
        assert hello is not None and hello["type"] == "hello"
        await console.send(protocol.hello("console", events=events))
        return console


@asynccontextmanager
async def controlled_server(tmp_path: Path, **settings: object) -> AsyncIterator[ControlledServer]:
    config = ServerConfig(host="127.0.0.1", port=0, **settings)  # type: ignore[arg-type]
    path = tmp_path / "control.sock"
    service = Service(config, event_buffer=config.event_buffer, control=ControlSettings(str(path)))
    service.listen()
    assert service.control is not None
    recorder = Recorder()
    recorder.consuming.set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(recorder.consume, service.events)
        await nursery.start(service.serve)
        yield ControlledServer(service.server, service.control, recorder, service.server.addresses[0][1], path)
        service.server.stop()
