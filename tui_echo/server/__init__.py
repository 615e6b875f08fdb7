"""The trio echo server: events out, commands in, exact per-client counts. Imports no Textual."""
