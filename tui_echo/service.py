"""One assembly of a running tui-echo: the server, the channel its events leave on, and its control socket.

The monitor (``monitor/guest.py``) and headless (``headless/runner.py``) both
run a ``Service``; they differ only in what reads ``events``. The server
knows nothing of the control socket: the service tells it where consoles
attach (for the ``listening`` event) when it starts serving.
"""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from tui_echo.control.listener import ControlSettings, ControlSocket, open_control
from tui_echo.ops.metrics import MetricsExporter
from tui_echo.ops.notify import tell_systemd
from tui_echo.ops.systemd import Notifier
from tui_echo.control.protocol import RecordError
from tui_echo.recording.writer import RecordingWriter, RecordSettings
from tui_echo.server.binding import ListenError
from tui_echo.server.config import ServerConfig
from tui_echo.net import Peer
from tui_echo.server.events import ServerEvent
from tui_echo.server.server import EchoServer

CONSOLES_FLUSH_SECONDS = 0.5  # a stopping server gives its consoles this long to read the "stopped" event


class Service:
    def __init__(
        self,
        config: ServerConfig,
        *,
        event_buffer: int,
        control: ControlSettings | None = None,
        listeners: list[socket.socket] | None = None,
        record: RecordSettings | None = None,
    ) -> None:
        """``listeners``: sockets to serve instead of binding (systemd's); systemd hears how it goes, if
        it listens (NOTIFY_SOCKET)."""
        send, self.events = trio.open_memory_channel[ServerEvent](event_buffer)
        self.server = EchoServer(config, send, listeners=listeners)
        self._notifier = Notifier()
        self.metrics = None if config.metrics is None else MetricsExporter(self.server, config.metrics)
        self._control_settings = control
        self.control: ControlSocket | None = None
        self._record_settings = record
        self.recording: RecordingWriter | None = None
        self._nursery: trio.Nursery | None = None

    @property
    def control_path(self) -> str:
        """Where consoles attach ("" without a control socket, or before ``listen``)."""
        return "" if self.control is None else str(self.control.path)

    def listen(self) -> tuple[Peer, ...]:
        """Bind the server's sockets, then the control socket (its default name has the real port).

        Raises ListenError (ControlError is one) before anything runs, so that the command line
        can report a busy port or a live control socket with one line.
        """
        addresses = self.server.listen()
        if self.metrics is not None and self.metrics.address is None:
            self.metrics.listen()
        if self._control_settings is not None and self.control is None:
            try:
                self.control = open_control(self.server, self._control_settings)
            except BaseException:
                if self.metrics is not None:
                    self.metrics.close()
                raise
            self.control.recordings = self
        if self._record_settings is not None and self.recording is None:
            try:
                self.recording = self._recording(self._record_settings)
            except OSError as exc:
                raise ListenError(f"--record {self._record_settings.path}: {exc.strerror or exc}") from None
        return addresses

    def _recording(self, settings: RecordSettings) -> RecordingWriter:
        """A recording's writer, its file created with its header (OSError if it cannot be)."""
        writer = RecordingWriter(
            settings.path,
            self.server.addresses,
            self.server.config,
            control=self.control_path,
            say=self.server.notice,
            max_bytes=settings.max_bytes,
            keep=settings.keep,
        )
        writer.open()
        return writer

    def record_start(self, path: str) -> str:
        """Record from now on (``ctl record start``; the clients that connect from now): the absolute path.
        RecordError if a recording runs already, the server is not serving, or the file cannot be made."""
        if self.recording is not None:
            raise RecordError(f"already recording to {self.recording.path}")
        if self._nursery is None:
            raise RecordError("the server is not serving")
        try:
            self.recording = self._recording(RecordSettings(path))
        except OSError as exc:
            raise RecordError(f"{Path(path).absolute()}: {exc.strerror or exc}") from None
        self._run_recording(self._nursery)
        return str(self.recording.path)

    def record_stop(self) -> str:
        """Stop recording (``ctl record stop``): the path it went to; RecordError if none runs."""
        writer = self.recording
        if writer is None:
            raise RecordError("not recording")
        self.server.stop_recording()
        writer.close()
        self.recording = None
        return str(writer.path)

    def record_status(self) -> dict[str, object]:
        writer = self.recording
        if writer is None:
            return {"recording": None}
        return {"recording": str(writer.path), "gaps": writer.gaps, "lost_bytes": writer.lost_bytes}

    def _run_recording(self, nursery: trio.Nursery) -> None:
        writer = self.recording
        assert writer is not None
        self.server.start_recording(writer, writer.lifecycle)
        nursery.start_soon(writer.run)

    async def serve(self, *, task_status: trio.TaskStatus[tuple[Peer, ...]] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until the server stops, with consoles on the control socket meanwhile; the socket goes
        when the server stops, after the consoles have had a moment to read the ``stopped`` event."""
        self.listen()
        async with trio.open_nursery() as recordings:  # each recording's writer: it ends once its file is closed
            self._nursery = recordings
            if self.recording is not None:
                self._run_recording(recordings)
            try:
                await self._serve(task_status)
            finally:
                self._nursery = None
                if self.recording is not None:
                    self.record_stop()

    async def _serve(self, task_status: trio.TaskStatus[tuple[Peer, ...]]) -> None:
        control = self.control
        async with trio.open_nursery() as nursery:
            if self._notifier.active:
                nursery.start_soon(tell_systemd, self.server, self._notifier)
            if self.metrics is not None:
                self.metrics.bridge()
                nursery.start_soon(self.metrics.serve)
            if control is None:
                await self.server.serve(task_status=task_status)
            else:
                nursery.start_soon(control.serve)
                try:
                    await self.server.serve(control=str(control.path), task_status=task_status)
                finally:
                    control.close()
                with trio.move_on_after(CONSOLES_FLUSH_SECONDS):
                    await control.sessions_done()  # each console ends after it has sent "stopped"
            nursery.cancel_scope.cancel()
        self._notifier.close()
