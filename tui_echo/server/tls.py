"""TLS settings: the server's certificate loaded from files, or a throw-away self-signed one made at start.

No trio, no Textual. Mistakes a user can make (a missing file, a key that does
not match its certificate) raise ``TlsError`` with one line to show; the
command line checks them before it listens. The server's side of TLS lives
in ``admission.py`` (the handshake) and ``transport.py`` (the encrypted stream).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tui_echo.net import describe_error

HANDSHAKE_TIMEOUT_SECONDS = 10.0  # a connection that has not finished its TLS handshake by then is closed
SELF_SIGNED_DAYS = 30  # the throw-away certificate's validity: it lives only as long as the process anyway
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


class TlsError(Exception):
    """A TLS setting that cannot work, as one line for the user."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    context: ssl.SSLContext = field(compare=False, repr=False)
    fingerprint: str  # the certificate's SHA-256, as ``openssl x509 -fingerprint -sha256`` prints it
    self_signed: bool  # made at start, key never written anywhere that outlives the start-up
    handshake_timeout: float = HANDSHAKE_TIMEOUT_SECONDS


def fingerprint(der: bytes) -> str:
    """``AB:CD:…``: the form ``openssl x509 -noout -fingerprint -sha256`` shows, to compare by eye."""
    return hashlib.sha256(der).digest().hex(":").upper()


def _server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    # Python's defaults for a server: TLS 1.2 or newer, no compression, the safe cipher list.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise TlsError(f"cannot read the TLS {what} {path}: {(exc.strerror or str(exc)).lower()}") from None


def load_tls(cert_file: str, key_file: str, handshake_timeout: float = HANDSHAKE_TIMEOUT_SECONDS) -> TlsSettings:
    """The certificate (PEM, the server's first, then any chain) and its private key (PEM, unencrypted)."""
    cert_text = _read(cert_file, "certificate")
    _read(key_file, "key")
    start = cert_text.find(_PEM_CERTIFICATE)
    if start < 0:
        raise TlsError(f"the TLS certificate {cert_file} holds no PEM certificate ({_PEM_CERTIFICATE})")
    try:
        der = ssl.PEM_cert_to_DER_cert(cert_text[start:])
        context = _server_context(cert_file, key_file)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsError(f"the TLS key {key_file} does not match the certificate {cert_file}") from None
        why = exc.reason.lower().replace("_", " ") if exc.reason else "not a valid PEM key"
        raise TlsError(f"cannot load the TLS certificate {cert_file} with key {key_file}: {why}") from None
    except ValueError as exc:  # a PEM block that is not base64
        raise TlsError(f"the TLS certificate {cert_file} is not a valid PEM certificate: {exc}") from None
    return TlsSettings(
        context=context, fingerprint=fingerprint(der), self_signed=False, handshake_timeout=handshake_timeout
    )


def self_signed_names(host: str) -> list[str]:
    """What the throw-away certificate is for: this machine's usual names, and the address served."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host not in names and host not in ("0.0.0.0", "::"):
        names.append(host)
    return names


def self_signed_tls(host: str, handshake_timeout: float = HANDSHAKE_TIMEOUT_SECONDS) -> TlsSettings:
    """A fresh key and certificate for ``self_signed_names(host)``, valid from now for SELF_SIGNED_DAYS.

    The key exists in memory and, for the moment ``ssl`` needs to read it, in a
    private temporary directory that is removed before this returns.
    """
    # Imported here: only --tls-self-signed pays for loading cryptography.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alternative_names: list[x509.GeneralName] = []
    for name in self_signed_names(host):
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative_names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tui-echo self-signed")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a client whose clock is a little behind
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory(prefix="tui-echo-tls-") as directory:  # mode 0700: only this user
        cert_path, key_path = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context = _server_context(str(cert_path), str(key_path))
    return TlsSettings(
        context=context,
        fingerprint=fingerprint(cert.public_bytes(serialization.Encoding.DER)),
        self_signed=True,
        handshake_timeout=handshake_timeout,
    )


def describe_tls_error(exc: BaseException | None) -> str:
    """Why a TLS stream broke (``exc``: the cause trio gives), as a person reads it:
    ``wrong version number``, ``http request``, ``connection reset by peer``."""
    if isinstance(exc, ssl.SSLError):
        text = exc.reason or exc.strerror or str(exc)
        return text.lower().replace("_", " ")
    if isinstance(exc, OSError):
        return describe_error(exc)
    return "broken connection"
