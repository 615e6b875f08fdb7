"""Where control sockets live, how a server is found, and who may attach. No trio, no Textual.

Every server's socket is ``$XDG_RUNTIME_DIR/tui-echo/<port>.sock`` by
default, or ``<tempdir>/tui-echo-<uid>/<port>.sock`` without
``XDG_RUNTIME_DIR``. Another user may create that fallback folder first, so
its owner and mode are checked before use. Each server also writes a small
entry (``<pid>.json``) in the same folder, so that ``tui-echo list`` finds
servers whose socket is elsewhere (``--control PATH``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from tui_echo.server.binding import ListenError

APP_DIR = "tui-echo"
_ENTRY_SUFFIX = ".json"
_ENTRY_BYTES = 4096  # an entry is about 200 bytes; anything bigger is not ours


class ControlError(ListenError):
    """The control socket cannot be opened or reached; the message is meant for the user as is."""


def runtime_dir() -> Path:
    """This user's folder for control sockets and server entries (not created here)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return Path(xdg) / APP_DIR
    return Path(tempfile.gettempdir()) / f"{APP_DIR}-{os.getuid()}"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700, or check that the one there is ours and private."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ControlError(f"cannot use {path} for the control socket: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ControlError(f"{path} is not a folder (a symlink or a file is there); remove it or use --control PATH")
    if info.st_uid != os.getuid():
        raise ControlError(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}): another user may have "
            "created it to watch your server; remove it or use --control PATH"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ControlError(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}, so other users can reach it; "
            f"chmod 700 {path}, or use --control PATH"
        )


def default_socket_path(port: int) -> Path:
    return runtime_dir() / f"{port}.sock"


def worker_socket_path(path: Path, worker: int) -> Path:
    """Worker ``worker``'s control socket of a ``--workers`` server whose socket would be ``path``
    (``12354.sock`` gives ``12354.w2.sock``; ``--control /run/x`` gives ``/run/x.w2``)."""
    if path.suffix == ".sock":
        return path.with_suffix(f".w{worker}.sock")
    return path.with_name(f"{path.name}.w{worker}")


# ---- who may attach -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """A console process, as the kernel reports it (``SO_PEERCRED``). Through a forwarder,
    such as ssh or socat, the pid is the forwarder's."""

    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"console uid {self.uid} pid {self.pid}"


class _Socket(Protocol):
    def getsockopt(self, level: int, option: int, size: int, /) -> bytes: ...


def credentials_of(sock: _Socket) -> Credentials:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Credentials(pid, uid, gid)


def may_attach(peer_uid: int, own_uid: int) -> bool:
    """Only the server's own user, or root, may watch and steer it."""
    return peer_uid in (own_uid, 0)


# ---- the servers' entries ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerEntry:
    pid: int
    port: int
    socket: str
    started_at: float  # wall clock
    worker: int = 0  # of a --workers server: which worker (1..workers) this process is; 0: a whole server
    workers: int = 1

    @property
    def path(self) -> Path:
        return runtime_dir() / f"{self.pid}{_ENTRY_SUFFIX}"


def write_entry(entry: ServerEntry) -> None:
    """Record a running server for ``tui-echo list`` (best effort: a server runs without it)."""
    directory = runtime_dir()
    with contextlib.suppress(ControlError, OSError):
        ensure_private_dir(directory)
        temporary = directory / f".{entry.pid}.tmp"
        temporary.write_text(json.dumps(asdict(entry)))
        temporary.replace(entry.path)


def remove_entry(entry: ServerEntry) -> None:
    with contextlib.suppress(OSError):
        entry.path.unlink()


def read_entries() -> Iterator[ServerEntry]:
    """The entries in this user's folder that parse; whether each server still runs is for the caller."""
    directory = runtime_dir()
    try:
        paths = sorted(directory.glob(f"*{_ENTRY_SUFFIX}"))
    except OSError:
        return
    for path in paths:
        try:
            with path.open("rb") as file:
                record = json.loads(file.read(_ENTRY_BYTES))
            entry = ServerEntry(
                pid=int(record["pid"]),
                port=int(record["port"]),
                socket=str(record["socket"]),
                started_at=float(record["started_at"]),
                worker=int(record.get("worker", 0)),
                workers=int(record.get("workers", 1)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if path.name == f"{entry.pid}{_ENTRY_SUFFIX}":
            yield entry
