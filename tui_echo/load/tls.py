"""``tui-echo load --tls``: the client's side of TLS, and which server certificate it trusts.

The settings are plain data, so that they travel to worker processes; each
worker builds its own ``ssl.SSLContext`` from them. Three ways to trust a
server: the system's CAs (``--tls`` alone), a CA or self-signed certificate
file (``--tls-ca``), or a SHA-256 fingerprint pin (``--tls-fingerprint``,
what ``tui-echo --tls-self-signed`` prints at start); ``--tls-insecure``
trusts any certificate. The handshake happens while connecting, before the
measured clock starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from dataclasses import dataclass

HEX_DIGITS = set("0123456789abcdef")
# What OpenSSL says when the other side is not a TLS server: plain text ("wrong version number"), or a
# plain echo server, which sends the ClientHello back ("unexpected message").
NOT_TLS_REASONS = {"WRONG_VERSION_NUMBER", "UNEXPECTED_MESSAGE", "PACKET_LENGTH_TOO_LONG"}


class TlsClientError(ValueError):
    """A setting that cannot work, as one line for the user."""


def parse_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 hex digits, lower case; ``AB:CD:…`` (openssl's form) and plain hex alike."""
    digits = text.replace(":", "").strip().lower()
    if len(digits) != 64 or not set(digits) <= HEX_DIGITS:
        raise TlsClientError(f"expected a SHA-256 fingerprint (64 hex digits, colons allowed), got {text!r}")
    return digits


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsClient:
    ca_file: str | None = None  # trust this CA (or self-signed certificate) file instead of the system's CAs
    fingerprint: str | None = None  # trust exactly the certificate with this SHA-256 (64 hex digits)
    insecure: bool = False  # trust any certificate

    def context(self) -> ssl.SSLContext:
        """The client context; a CA file that cannot be loaded raises TlsClientError."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except ssl.SSLError as exc:  # before OSError, which it is too
            why = (exc.reason or str(exc)).lower().replace("_", " ")
            raise TlsClientError(f"the CA file {self.ca_file} holds no usable certificate ({why})") from None
        except OSError as exc:
            raise TlsClientError(
                f"cannot read the CA file {self.ca_file}: {(exc.strerror or str(exc)).lower()}"
            ) from None
        if self.insecure or self.fingerprint:
            # The pin is checked on the certificate itself once the handshake is done (``problem``).
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def problem(self, transport: asyncio.BaseTransport) -> str | None:
        """Why this connection's server is not the one pinned, or None."""
        if self.fingerprint is None:
            return None
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der is None:
            return "TLS: the server sent no certificate"
        seen = hashlib.sha256(der).hexdigest()
        if seen != self.fingerprint:
            return (
                f"TLS: the server's certificate has SHA-256 {_colons(seen)}, not the pinned {_colons(self.fingerprint)}"
            )
        return None


def _colons(digits: str) -> str:
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2)).upper()


def describe_connect_error(exc: OSError) -> str:
    """A failed connect, TLS handshakes included, in words (an ``SSLError``'s errno is not an OS error)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the server's certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).lower().replace("_", " ")
        hint = " (does the server speak TLS?)" if exc.reason in NOT_TLS_REASONS else ""
        return f"TLS handshake failed: {reason}{hint}"
    return os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
