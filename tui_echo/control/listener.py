"""The control socket: a Unix socket, owner-only, through which consoles watch and steer a running server.

``open_control`` binds it (raising ControlError, a ListenError, for what a
user can get wrong), next to the server's own ``listen()``; ``serve`` takes
consoles until ``close`` removes it (``tui_echo.service`` does both around
the server's run). There is no TCP control listener: remote operators
forward the Unix socket over SSH.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import trio

from tui_echo.control import protocol
from tui_echo.control.paths import (
    ControlError,
    ServerEntry,
    credentials_of,
    default_socket_path,
    ensure_private_dir,
    may_attach,
    remove_entry,
    write_entry,
)
from tui_echo.control.places import MAX_CONSOLES, Places, too_many_consoles
from tui_echo.control.session import ConsoleSession, Recordings
from tui_echo.server.server import EchoServer
from tui_echo.wire.settings import ServerInfo

LISTEN_BACKLOG = 4 * MAX_CONSOLES  # connections the kernel holds until accepted: more than the places themselves
_PROBE_SECONDS = 1.0
_MAX_PATH_BYTES = 107  # sun_path holds 108 bytes with its NUL


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """``--control PATH`` (``path``) or the default for the port (``None``)."""

    path: str | None = None


def _claim(path: Path) -> None:
    """Make room for a new socket at ``path``: replace a stale one, refuse a live one or a non-socket."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ControlError(f"cannot use {path} for the control socket: {exc.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise ControlError(f"{path} exists and is not a socket; remove it or pick another --control PATH")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(_PROBE_SECONDS)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a server that was killed left it: nobody answers
        return
    except OSError as exc:
        raise ControlError(f"cannot check the control socket {path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    raise ControlError(
        f"a running server already answers on the control socket {path}; "
        "stop it, or start this one with --control PATH or --no-control"
    )


def _bind(path: Path) -> socket.socket:
    if len(os.fsencode(path)) > _MAX_PATH_BYTES:
        raise ControlError(f"the control socket path is too long for a Unix socket ({_MAX_PATH_BYTES} bytes): {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # created 0600: no moment when others could connect
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise ControlError(f"cannot create the control socket {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


class ControlSocket:
    def __init__(self, server: EchoServer, path: Path, sock: socket.socket) -> None:
        self._server = server
        self.path = path
        self._sock = sock
        self.recordings: Recordings | None = None  # what ``record`` asks (the service sets it)
        self._inode = os.stat(path).st_ino
        self._started_at = time.time()
        slot = server.config.worker
        self._entry = ServerEntry(
            pid=os.getpid(),
            port=server.addresses[0][1],
            socket=str(path),
            started_at=self._started_at,
            worker=0 if slot is None else slot.index,
            workers=1 if slot is None else slot.count,
        )
        self._places = Places(server.notice)
        self._sessions = 0  # connections being served, attached or still to say hello
        self._sessions_done = trio.Event()
        self._sessions_done.set()
        self._version = version("tui-echo")
        write_entry(self._entry)

    def server_info(self) -> ServerInfo:
        return ServerInfo(
            pid=os.getpid(),
            version=self._version,
            started_at=self._started_at,
            addresses=self._server.addresses,
            config=self._server.config,
            control=str(self.path),
        )

    async def serve(self) -> None:
        listener = trio.socket.from_stdlib_socket(self._sock)
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    sock, _ = await listener.accept()
                except trio.ClosedResourceError:
                    return  # closed: the server stopped (sessions end as they send "stopped")
                except OSError:
                    await trio.sleep(0.1)  # out of files, or the console died in the queue
                    continue
                nursery.start_soon(self._console, sock)

    async def _console(self, sock: trio.socket.SocketType) -> None:
        stream = trio.SocketStream(sock)
        who = credentials_of(sock)
        refusal = None
        if not may_attach(who.uid, os.getuid()):
            refusal = protocol.ProtocolError("not_allowed", f"only uid {os.getuid()} (or root) may attach")
            self._server.notice(f"refused {who}: only uid {os.getuid()} or root may attach")
        elif self._places.full:
            refusal = too_many_consoles()
        if refusal is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError), trio.move_on_after(1):
                await stream.send_all(protocol.encode_line(protocol.error_message(refusal)))
            await stream.aclose()
            return
        self._sessions += 1
        self._sessions_done = trio.Event()
        attached = False
        with trio.CancelScope() as scope:  # cancelled if it has to make room before its hello

            def attach() -> bool:
                nonlocal attached
                attached = self._places.attach(scope)
                return attached

            self._places.wait(scope)
            try:
                await ConsoleSession(self._server, stream, who, self.server_info, attach, self.recordings).run()
            except Exception as exc:  # a bug in one console's handling must not take the echo down with it
                self._server.notice(f"{who} dropped after an internal error: {exc!r}")
                with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                    await stream.aclose()
            finally:
                self._places.leave(scope, attached=attached)
                self._sessions -= 1
                if not self._sessions:
                    self._sessions_done.set()

    def close(self) -> None:
        """Remove the socket file (if it is still ours) and the server's entry; no new console can come."""
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()
        remove_entry(self._entry)
        trio.lowlevel.notify_closing(self._sock)  # wakes the accept loop
        self._sock.close()

    async def sessions_done(self) -> None:
        await self._sessions_done.wait()


def open_control(server: EchoServer, settings: ControlSettings) -> ControlSocket:
    """Bind the control socket for a server that is already listening (its real port names the socket)."""
    if settings.path is None:
        path = default_socket_path(server.addresses[0][1])
        ensure_private_dir(path.parent)
    else:
        path = Path(settings.path).absolute()
    _claim(path)
    return ControlSocket(server, path, _bind(path))
