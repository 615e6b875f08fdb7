"""systemd: sockets it passes (socket activation) and what the service tells it (``sd_notify``).

Written from the protocols' documentation (sd_listen_fds(3), sd_notify(3)) rather than with a
library: each is a few lines over the standard library, and the ``systemd-python`` bindings need
libsystemd's headers to build.

- ``passed_sockets()``: with ``LISTEN_PID`` equal to our pid and ``LISTEN_FDS`` = N, file
  descriptors 3 … 3+N-1 are listening sockets, named by ``LISTEN_FDNAMES`` (``:``-separated).
  The variables are removed once read, so that nothing started later takes them as its own.
- ``Notifier``: datagrams to ``NOTIFY_SOCKET`` (a path, or ``@`` for the abstract namespace):
  ``READY=1``, ``STATUS=…``, ``WATCHDOG=1``, ``STOPPING=1``. Without the variable it does nothing.
  ``ops/notify.py`` says when.

No trio here: the command line reads the passed sockets before anything runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass

FIRST_PASSED_FD = 3  # SD_LISTEN_FDS_START


class PassedSocketError(Exception):
    """A socket systemd passed cannot be served (one line for the user)."""


@dataclass(frozen=True, slots=True)
class PassedSocket:
    sock: socket.socket
    name: str  # FileDescriptorName= of the .socket unit ("unknown" by systemd's default)


def passed_sockets(environ: dict[str, str] | None = None) -> list[PassedSocket]:
    """The listening TCP sockets systemd passed to this process (none without socket activation).

    Raises PassedSocketError for a passed descriptor that is not a listening TCP socket.
    """
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        raise PassedSocketError(f"LISTEN_FDS is not a number: {env.get('LISTEN_FDS')!r}") from None
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(name, None)
    passed = []
    for index in range(count):
        fd = FIRST_PASSED_FD + index
        name = names[index] if index < len(names) else "unknown"
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise PassedSocketError(f"systemd passed file descriptor {fd} ({name}), which is not a socket")
        sock = socket.socket(fileno=fd)
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM or not listening:
            sock.detach()
            raise PassedSocketError(
                f"systemd passed file descriptor {fd} ({name}), which is not a listening TCP socket: "
                "use ListenStream= with an address or a port in the .socket unit"
            )
        sock.setblocking(False)
        passed.append(PassedSocket(sock, name))
    return passed


class Notifier:
    """Tells systemd how the service is doing; a no-op when not started by systemd with Type=notify."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        # WATCHDOG_USEC (and WATCHDOG_PID, if set, naming us): ping at half the period, as systemd advises.
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", str(os.getpid()))
        self.watchdog_seconds = (
            int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and pid == str(os.getpid()) else None
        )

    @property
    def active(self) -> bool:
        return self._sock is not None

    def notify(self, *fields: str) -> None:
        """Send ``READY=1``, ``STATUS=…``: never blocks, never raises (systemd not listening is not our failure)."""
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            self._sock.sendto("\n".join(fields).encode(), self._address)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
