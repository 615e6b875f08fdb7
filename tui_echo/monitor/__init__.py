"""The monitor: a Textual app that shows a server live and lets the operator act on it.

``source`` is what the app reads, ``guest`` runs the trio server inside the
app's event loop, ``models`` turn what it reads into what is shown,
``widgets`` show it, and ``screens`` put widgets together (``screens/main.py``
is the main one); ``app`` owns the server's lifetime and holds the screens.
"""
