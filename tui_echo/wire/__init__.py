"""The one wire codec: every event and state record as a JSON-ready dict, and back. No trio, no Textual.

- ``wire.records``: what every record is made of (JSON, client bytes, typed reads).
- ``wire.events``: one ``encode_*``/``decode_*`` pair per event kind, and ``encode_event``/``decode_event``.
- ``wire.state``: a client, its counts, the totals, a ban, a rule's hits.
- ``wire.settings``: the server's settings (the ``listening`` event's fields) and the server record.

The ``--json`` log, the control protocol and recordings all write through
these functions; ``tests/test_wire.py`` checks ``decode(encode(x)) == x`` for
every kind and every field.
"""
