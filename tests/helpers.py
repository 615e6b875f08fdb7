"""Test helpers: a real server on 127.0.0.1 port 0, and an event recorder that waits on conditions."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import trio

from tui_echo.server.config import ServerConfig
from tui_echo.server.events import ClientDisconnected, ServerEvent
from tui_echo.server.server import EchoServer

# Seconds any single wait may take before the test fails: only a hang should meet it, also on a machine
# many times slower than usual (a busy CI host, make test's parallel workers beside other work).
TIMEOUT = 30


@dataclass
class Recorder:
    """Collects every event the server publishes and lets a test wait for a condition on them."""

    events: list[ServerEvent] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)
    consuming: trio.Event = field(default_factory=trio.Event)

    async def consume(self, channel: trio.MemoryReceiveChannel[ServerEvent]) -> None:
        await self.consuming.wait()
        async for event in channel:
            self.events.append(event)
            self._changed.set()
            self._changed = trio.Event()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, condition: Callable[[], object], timeout: float = TIMEOUT) -> None:
        with trio.fail_after(timeout):
            while not condition():
                await self._changed.wait()


@dataclass
class Running:
    server: EchoServer
    recorder: Recorder
    port: int


@asynccontextmanager
async def running_server(consume: bool = True, **settings: object) -> AsyncIterator[Running]:
    """An EchoServer on 127.0.0.1:0, stopped (and checked to stop) on exit."""
    config = replace(ServerConfig(host="127.0.0.1", port=0), **settings)
    send, receive = trio.open_memory_channel[ServerEvent](config.event_buffer)
    server = EchoServer(config, send)
    recorder = Recorder()
    if consume:
        recorder.consuming.set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(recorder.consume, receive)
        (address,) = await nursery.start(server.serve)
        yield Running(server, recorder, address[1])
        recorder.consuming.set()
        server.stop()


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def connect_from(source: str, port: int) -> trio.SocketStream:
    """Connect to 127.0.0.1 from another loopback address (all of 127.0.0.0/8 is local), e.g. 127.0.0.2."""
    sock = trio.socket.socket()
    try:
        await sock.bind((source, 0))
        with trio.fail_after(TIMEOUT):
            await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def receive_exactly(stream: trio.SocketStream, count: int) -> bytes:
    data = bytearray()
    with trio.fail_after(TIMEOUT):
        while len(data) < count:
            chunk = await stream.receive_some(count - len(data))
            if not chunk:
                raise AssertionError(f"EOF after {len(data)} of {count} bytes")
            data += chunk
    return bytes(data)


async def receive_until_eof(stream: trio.SocketStream) -> bytes:
    data = bytearray()
    with trio.fail_after(TIMEOUT):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return bytes(data)


def reset_on_close(stream: trio.SocketStream) -> None:
    """Make the next close an abrupt reset (RST) instead of a FIN."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def disconnect_of(run: Running, client_id: int) -> ClientDisconnected | None:
    """The client's disconnect event, if it has come."""
    return next((e for e in run.recorder.of(ClientDisconnected) if e.client_id == client_id), None)


LOG_WRITER_THREAD = "tui-echo log writer"


def new_thread(before: set[threading.Thread], name: str) -> threading.Thread:
    """The thread called ``name`` that was not running when ``before`` was taken (``set(threading.enumerate())``)."""
    (thread,) = [t for t in threading.enumerate() if t.name == name and t not in before]
    return thread


def wait_until_stuck_in_a_pipe_write(thread: threading.Thread) -> None:
    """Until ``thread`` sleeps in a write to a full pipe (its wchan in /proc), in real time: it is a thread, and
    the test's trio clock may be a mock. How full the pipe is does not say: small writes share its pages."""
    deadline = time.monotonic() + TIMEOUT
    wchan = Path(f"/proc/self/task/{thread.native_id}/wchan")
    while "pipe_write" not in wchan.read_text():
        assert time.monotonic() < deadline, f"{thread.name} is not stuck in a pipe write but in {wchan.read_text()}"
        time.sleep(0.005)
