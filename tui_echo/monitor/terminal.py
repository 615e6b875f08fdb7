"""Whether the monitor can draw where it was started. No Textual: asked before Textual is loaded."""

from __future__ import annotations

import os
import sys

# Textual's terminal drivers, as TEXTUAL_DRIVER would name them.
_TERMINAL_DRIVERS = ("", "textual.drivers.linux_driver:LinuxDriver", "textual.drivers.windows_driver:WindowsDriver")


def terminal_problem() -> str | None:
    """Why the monitor cannot draw here, or None.

    Textual's terminal driver reads keys from stdin, draws on stderr and takes the screen's size
    from stdout: with stdout redirected it would draw at 80x24 whatever the terminal's size. Another
    driver (textual-serve sets TEXTUAL_DRIVER to the web driver, which talks over pipes) needs none.
    """
    if os.environ.get("TEXTUAL_DRIVER", "") not in _TERMINAL_DRIVERS:
        return None
    streams = {"stdin": sys.stdin, "stdout": sys.stdout, "stderr": sys.stderr}
    redirected = [name for name, stream in streams.items() if stream is None or not stream.isatty()]
    if not redirected:
        return None
    if len(redirected) == 1:
        return f"but {redirected[0]} is not one"
    return f"but {', '.join(redirected[:-1])} and {redirected[-1]} are not terminals"
