"""The one door to a private Textual view the monitor reads: a node's merged bindings.

Every private API the project uses (trio's, Textual's, textual-serve's) is
listed in one place, the README's "Private APIs we rely on", each with where,
why and the test that fails by name if an upgrade changes it
(``tests/test_private_api.py`` for the monitor's).

``DOMNode._bindings`` is here because the help screen lists the keys of each of
the project's widgets on a screen, "when it has the focus": Textual's public
``Screen.active_bindings`` covers the focused widget, its screen and the app
only, and the help uses it for those.
"""

from __future__ import annotations

from textual.binding import BindingsMap
from textual.dom import DOMNode


def node_bindings(node: DOMNode) -> BindingsMap:
    """Every key bound on ``node``: its own bindings and its classes', merged as Textual merges them."""
    return node._bindings
