"""Test certificates from a throw-away CA (trustme), and TLS clients that trust it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trio
import trustme

from tui_echo.server.tls import TlsSettings, load_tls


@dataclass(frozen=True)
class Certificates:
    ca: trustme.CA
    cert: Path  # the server's certificate (PEM)
    key: Path  # its private key (PEM)
    ca_cert: Path  # the CA's certificate, for clients such as openssl s_client -CAfile

    def settings(self, handshake_timeout: float | None = None) -> TlsSettings:
        if handshake_timeout is None:
            return load_tls(str(self.cert), str(self.key))
        return load_tls(str(self.cert), str(self.key), handshake_timeout)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def issue_certificates(folder: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1, ::1 and localhost, written to ``folder``."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "::1", "localhost")
    certificates = Certificates(ca, folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(certificates.cert))
    issued.private_key_pem.write_to_path(str(certificates.key))
    ca.cert_pem.write_to_path(str(certificates.ca_cert))
    return certificates


async def connect_tls(port: int, context: ssl.SSLContext) -> trio.SSLStream[trio.SocketStream]:
    """A TLS client (Python's ssl, through trio) that has finished its handshake."""
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=context)
    await stream.do_handshake()
    return stream
