"""A browser tab's console (``tui-echo attach`` run by ``tui-echo web``) dies with its web server, at once.

textual-serve starts one console per tab and tells it to quit when the tab
closes or the web server stops cleanly. A web server that is killed says
nothing; its consoles would only notice the end of their stdin once their
screen is up. So ``web`` puts its process id in the environment its consoles
inherit, and a console asks Linux (``prctl(PR_SET_PDEATHSIG)``) to be killed
when that process ends, from its first moments on. A tab's console has nothing
to clean up that the kernel does not: the server sees one more console leave.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

WEB_PID_VARIABLE = "TUI_ECHO_WEB_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def mark_web_server() -> None:
    """In ``tui-echo web``: the consoles it starts from now on end with this process."""
    os.environ[WEB_PID_VARIABLE] = str(os.getpid())


def end_with_web_server() -> None:
    """In a console: if ``tui-echo web`` started it, be killed when that web server ends (Linux)."""
    web_pid = os.environ.pop(WEB_PID_VARIABLE, "")
    if not web_pid.isdigit() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != int(web_pid):  # the web server ended before this was armed
        os.kill(os.getpid(), signal.SIGKILL)
