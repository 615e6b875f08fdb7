"""Standard output whose reader may go away: ``tui-echo events | head -2`` ends quietly, exit 0.

Python ignores SIGPIPE, so a write to a pipe nobody reads raises BrokenPipeError; left alone, it is a
traceback, or at exit "Exception ignored ... BrokenPipeError" and exit code 120. Every command's output is
flushed inside ``finish`` instead, where a reader that went away ends the command quietly.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable


def silence_stdout() -> None:
    """Whatever still writes to stdout goes nowhere: the interpreter's final flush can neither block nor fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader has gone, found without writing to it.

    For a command that may write nothing for a long time (``events`` on a quiet server): it asks now and
    then, instead of noticing only at its next write. A file or a terminal never says so here.
    """
    poll = select.poll()
    poll.register(sys.stdout.fileno(), 0)  # POLLERR and POLLHUP are reported whatever is asked for
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))


def finish(run: Callable[[], int]) -> int:
    """Run a command (a callable returning its exit code) and flush its output; a reader that went away
    ends it quietly: its exit code if it had one by then, else 0."""
    code = 0
    try:
        try:
            code = run()
        finally:  # also after --help (SystemExit): here, not in the interpreter's last flush
            sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    return code
