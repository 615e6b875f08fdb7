"""The clients of every worker of a ``--workers`` server, in memory they share: the whole server's count.

One 8-byte slot per worker in a shared memory file (``memfd``) the parent makes and every worker
maps: a worker writes its own slot each time a client enters or leaves, and reads the others'
at each admission, so that ``--max-clients`` is the whole server's limit. Each slot has one
writer, so there is no lock; two workers admitting at the same moment may each see the other's
count from just before, and the server may hold up to N - 1 clients over the limit for as long
as that takes.
"""

from __future__ import annotations

import mmap
import os
import struct

_SLOT = struct.Struct("q")


def shared_counts(workers: int) -> int:
    """A new shared file of ``workers`` slots, all 0: its file descriptor, for the workers to inherit."""
    fd = os.memfd_create("tui-echo-workers", 0)  # inheritable by default: not close-on-exec
    os.ftruncate(fd, _SLOT.size * workers)
    return fd


class Siblings:
    """Worker ``index`` (1..``workers``)'s view of the shared counts."""

    def __init__(self, fd: int, workers: int, index: int) -> None:
        self._map = mmap.mmap(fd, _SLOT.size * workers)
        self._offset = _SLOT.size * (index - 1)
        self._others = [_SLOT.size * other for other in range(workers) if other != index - 1]

    def publish(self, clients: int) -> None:
        """This worker holds ``clients`` now."""
        _SLOT.pack_into(self._map, self._offset, clients)

    def others(self) -> int:
        """The clients every other worker holds, as each last wrote."""
        return sum(_SLOT.unpack_from(self._map, offset)[0] for offset in self._others)

    def zero(self, index: int) -> None:
        """Worker ``index`` holds no client (its parent says so when it died)."""
        _SLOT.pack_into(self._map, _SLOT.size * (index - 1), 0)

    def close(self) -> None:
        self._map.close()
