"""The monitor: a Textual app that shows the server live and lets the operator act on it."""
