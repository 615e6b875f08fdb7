"""The private API of Textual (and textual-serve) that tui-echo uses: every use is named here, with why.

Public API first: each of these is used only where Textual offers no public way
to do the same. ``tests/test_private_api.py`` checks every one of them, so
that a Textual upgrade that changes one fails there, by name, rather than
somewhere in the monitor.

- ``DOMNode._bindings``, through ``node_bindings`` below (``screens/help.py``):
  a node's bindings merged with those of its classes, which is what each key
  does on it. The help screen lists the keys of every one of the project's
  widgets on a screen, "when it has the focus"; Textual's public
  ``Screen.active_bindings`` gives the keys of the focused widget, its screen
  and the app only, which the help uses for those.
- ``ScrollView._scroll_to``, overridden (``widgets/feed.py``): every scroll
  passes through it, whether by key, wheel, scrollbar or code. The feed tells
  the user's scrolling (which stops it following the newest line) from its
  own; the public ``scroll_*`` methods are only some of those paths.
- ``Driver._app`` (``tab_driver.py``): the app a driver runs. The web driver
  posts ``ExitApp`` to it when the web server has gone; a driver keeps no
  public reference to its app.
- textual-serve's ``Server._make_app`` (``tui_echo/consoles/web.py``): the
  aiohttp application, to put the token check in front of it as a middleware
  and to run it with a runner that has a shutdown timeout. textual-serve has
  no public hook for either.

The tests also read ``App._notifications`` (the notifications shown) and
``Screen._compositor`` (what reaches the terminal): see ``tests/monitor_helpers.py``.
"""

from __future__ import annotations

from textual.binding import BindingsMap
from textual.dom import DOMNode


def node_bindings(node: DOMNode) -> BindingsMap:
    """Every key bound on ``node``: its own bindings and its classes', merged as Textual merges them."""
    return node._bindings
