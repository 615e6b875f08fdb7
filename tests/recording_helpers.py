"""A served Service with a recording, for the recording, export and replay tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from tui_echo.recording.writer import RecordSettings
from tui_echo.server.config import ServerConfig
from tui_echo.service import Service

from .helpers import TIMEOUT, Recorder


@dataclass
class Recorded:
    service: Service
    recorder: Recorder
    port: int
    path: Path


@asynccontextmanager
async def recorded_server(
    tmp_path: Path, record: RecordSettings | None = None, **settings: object
) -> AsyncIterator[Recorded]:
    """A server on 127.0.0.1:0 recording to ``tmp_path/rec.jsonl``; stopped on exit, its writer done."""
    record = record or RecordSettings(str(tmp_path / "rec.jsonl"))
    config = ServerConfig(**{"host": "127.0.0.1", "port": 0, **settings})  # type: ignore[arg-type]
    service = Service(config, event_buffer=config.event_buffer, record=record)
    service.listen()
    recorder = Recorder()
    recorder.consuming.set()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recorder.consume, service.events)
            await nursery.start(service.serve)
            yield Recorded(service, recorder, service.server.addresses[0][1], Path(record.path))
            service.server.stop()


async def until_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    with trio.fail_after(TIMEOUT):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return bytes(data)
