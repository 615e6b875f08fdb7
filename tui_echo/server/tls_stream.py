"""Three repairs to trio's ``SSLStream`` around the server's TLS handshake, each through trio's private state.

The handshake code calls them: ``send_alert`` and ``release`` when a
handshake fails or times out, ``send_session_tickets`` when one succeeds.

Trio's private state they use (trio 0.32 to 0.35), and why:

- ``SSLStream._outgoing``: the ``ssl.MemoryBIO`` OpenSSL writes its records
  to. A failed handshake leaves OpenSSL's alert there (``protocol_version``
  for a TLS 1.0 client), and trio raises before sending it: the client saw
  only EOF. ``send_alert`` sends it, as a plain ``ssl`` server does.
- ``SSLStream._delayed_outgoing``: the TLS 1.3 session tickets that trio holds
  back until the first write (trio issue 819). Nothing followed the client's
  Finished, so a client with Nagle on held its first message until the
  server's delayed ACK, about 40 ms later. ``send_session_tickets`` sends them
  at once, as OpenSSL on a socket does.
- ``SSLStream._handshook``: a ``_Once`` that holds the bound
  ``_do_handshake``, a reference cycle (stream, ``_Once``, method, stream). A
  stream whose handshake failed, with its OpenSSL state (about 52 KiB), was
  freed only by a full garbage collection. ``release`` breaks the cycle, so
  it goes at once.

``tests/test_tls_stream.py`` fails loudly if a trio upgrade changes any of it.
Each function does nothing, rather than fail, if its attribute is gone.
"""

from __future__ import annotations

import contextlib
import socket

import trio


def send_alert(stream: trio.SSLStream[trio.SocketStream], sock: socket.socket) -> None:
    """After a failed handshake: send the alert OpenSSL wrote, if the socket takes it now (it is closed next)."""
    outgoing = getattr(stream, "_outgoing", None)
    pending = outgoing.read() if outgoing is not None else b""
    if pending:
        with contextlib.suppress(OSError):
            sock.send(pending)


def send_session_tickets(stream: trio.SSLStream[trio.SocketStream], sock: socket.socket) -> None:
    """After a TLS 1.3 handshake, before anything else is written: send the session tickets now.

    What the socket does not take at once stays where trio keeps it, to go
    before the next record, so the order on the wire is kept.
    """
    delayed = getattr(stream, "_delayed_outgoing", None)
    if not delayed:
        return
    try:
        sent = sock.send(delayed)
    except BlockingIOError:
        return
    except OSError:
        return  # the stream's next read or write reports it
    stream._delayed_outgoing = delayed[sent:] or None


def release(stream: trio.SSLStream[trio.SocketStream]) -> None:
    """A stream that will never be used again (its handshake failed): break its reference cycle."""
    with contextlib.suppress(AttributeError):
        del stream._handshook
