"""The server's settings as records: the ``listening`` event's fields, and the server record a console gets.

Both carry the same settings (``encode_setup``; the event's own pair is in
``wire.events``): where it listens, its mode, framing, limits, access rules,
TLS and reply rules. The server record adds the process: its pid, tui-echo
version and start time.

A decoded TLS setting describes the server's TLS: its context holds no
certificate, so it cannot serve (nothing that decodes a record serves).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from functools import cache

from tui_echo.net import Peer, format_address, parse_address
from tui_echo.server.config import (
    DEFAULT_MAX_FRAME,
    DEFAULT_PROXY_HEADER_TIMEOUT,
    Framing,
    Mode,
    Network,
    ServerConfig,
    WorkerSlot,
)
from tui_echo.server.events import ServerListening
from tui_echo.server.faults import Faults, FaultSpecError, format_faults, parse_faults
from tui_echo.server.rules import Rule, compile_rule
from tui_echo.server.tls import TlsSettings
from tui_echo.times import utc_time
from tui_echo.wire.records import (
    Fields,
    Record,
    read_actions,
    read_bool,
    read_float,
    read_int,
    read_list,
    read_optional_float,
    read_optional_int,
    read_optional_str,
    read_str,
    read_time,
)

# ---- the settings -----------------------------------------------------------------------------------


def encode_setup(addresses: tuple[Peer, ...], config: ServerConfig, control: str) -> Record:
    """Where the server listens (``host``, ``port``: the real first address) and with which settings."""
    host, port = addresses[0]
    return {
        "host": host,
        "port": port,
        "addresses": [format_address(address) for address in addresses],
        "asked_host": config.host,  # what --host and --port asked for (port 0: any free one)
        "asked_port": config.port,
        "mode": str(config.mode),
        "framing": str(config.framing),
        "max_clients": config.max_clients,
        "idle_timeout": config.idle_timeout,
        "write_timeout": config.write_timeout,
        "max_per_ip": config.max_per_ip,
        "accept_rate": config.accept_rate,
        "allow": [str(network) for network in config.allow],
        "deny": [str(network) for network in config.deny],
        "ban_seconds": config.ban_seconds,
        "relay_queue_bytes": config.relay_queue_bytes,
        "recv_size": config.recv_size,
        "max_frame": config.max_frame,
        "event_buffer": config.event_buffer,
        "data_event_rate": config.data_event_rate,
        "lifecycle_backlog": config.lifecycle_backlog,
        "max_pending_sends": config.max_pending_sends,
        "tls": config.tls is not None,
        **encode_tls(config.tls),
        "control": control or None,
        "rules": [encode_rule_setting(rule) for rule in config.rules],
        # One worker of a --workers server: [worker, workers, its first client id]; absent for a whole server.
        **(
            {}
            if config.worker is None
            else {"worker": [config.worker.index, config.worker.count, config.worker.first_id]}
        ),
        "proxy_protocol": config.proxy_protocol,
        "proxy_from": [str(network) for network in config.proxy_from],
        "proxy_header_timeout": config.proxy_header_timeout,
        "metrics": None if config.metrics is None else format_address(config.metrics),
        "allow_files": list(config.allow_files),
        "deny_files": list(config.deny_files),
        "rules_files": list(config.rules_files),
        "keep_denied": config.keep_denied,
        "fault": None if config.fault is None else format_faults(config.fault),  # --fault, as a spec
        "fault_seed": config.fault_seed,
    }


def _faults(spec: str | None) -> Faults | None:
    try:
        return None if spec is None else parse_faults(spec)
    except FaultSpecError as exc:
        raise ValueError(f'"fault": {exc}') from None


def decode_setup(record: Fields) -> tuple[tuple[Peer, ...], ServerConfig, str]:
    """The addresses, the settings and the control socket's path ("" for none)."""
    addresses = tuple(parse_address(_str(text)) for text in read_list(record, "addresses"))
    if not addresses:
        raise ValueError('"addresses" is empty')
    config = ServerConfig(
        host=read_str(record, "asked_host"),
        port=read_int(record, "asked_port"),
        mode=Mode(read_str(record, "mode")),
        framing=Framing(read_str(record, "framing")),
        max_clients=read_optional_int(record, "max_clients"),
        idle_timeout=read_optional_float(record, "idle_timeout"),
        write_timeout=read_optional_float(record, "write_timeout"),
        max_per_ip=read_optional_int(record, "max_per_ip"),
        accept_rate=read_optional_float(record, "accept_rate"),
        allow=_networks(read_list(record, "allow")),
        deny=_networks(read_list(record, "deny")),
        ban_seconds=read_float(record, "ban_seconds"),
        relay_queue_bytes=read_int(record, "relay_queue_bytes"),
        recv_size=read_int(record, "recv_size"),
        max_frame=DEFAULT_MAX_FRAME if "max_frame" not in record else read_int(record, "max_frame"),
        event_buffer=read_int(record, "event_buffer"),
        data_event_rate=read_optional_float(record, "data_event_rate") if "data_event_rate" in record else None,
        lifecycle_backlog=read_int(record, "lifecycle_backlog"),
        max_pending_sends=read_int(record, "max_pending_sends"),
        tls=decode_tls(record),
        rules=tuple(decode_rule_setting(rule) for rule in read_list(record, "rules")),
        worker=_worker(record),
        # Optional: a record of a version-2 server has none of these.
        proxy_protocol=record.get("proxy_protocol") is not None and read_bool(record, "proxy_protocol"),
        proxy_from=_networks(read_list(record, "proxy_from")) if "proxy_from" in record else (),
        proxy_header_timeout=read_float(record, "proxy_header_timeout")
        if "proxy_header_timeout" in record
        else DEFAULT_PROXY_HEADER_TIMEOUT,
        metrics=None if record.get("metrics") is None else parse_address(read_str(record, "metrics")),
        allow_files=_paths(record, "allow_files"),
        deny_files=_paths(record, "deny_files"),
        rules_files=_paths(record, "rules_files"),
        keep_denied=record.get("keep_denied") is not None and read_bool(record, "keep_denied"),
        fault=_faults(read_optional_str(record, "fault")),  # absent before protocol version 7
        fault_seed=read_optional_int(record, "fault_seed"),
    )
    return addresses, config, read_optional_str(record, "control") or ""


def _worker(record: Fields) -> WorkerSlot | None:
    if "worker" not in record:
        return None
    parts = read_list(record, "worker")
    if len(parts) != 3 or not all(type(part) is int for part in parts):
        raise TypeError(f'"worker" must be three whole numbers, not {parts!r}')
    return WorkerSlot(*parts)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _paths(record: Fields, name: str) -> tuple[str, ...]:
    """A list of file paths; none in a record of a version-2 server."""
    return tuple(_str(path) for path in read_list(record, name)) if name in record else ()


def _networks(texts: list[object]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(_str(text)) for text in texts)


def encode_tls(tls: TlsSettings | None) -> Record:
    """With TLS: its certificate's fingerprint, whether it is self-signed, the handshake timeout; else nothing."""
    if tls is None:
        return {}
    return {
        "tls_fingerprint": tls.fingerprint,
        "tls_self_signed": tls.self_signed,
        "tls_handshake_timeout": tls.handshake_timeout,
    }


def decode_tls(record: Fields) -> TlsSettings | None:
    if not read_bool(record, "tls"):
        return None
    return TlsSettings(
        context=_describing_only(),
        fingerprint=read_str(record, "tls_fingerprint"),
        self_signed=read_bool(record, "tls_self_signed"),
        handshake_timeout=read_float(record, "tls_handshake_timeout"),
    )


@cache
def _describing_only() -> ssl.SSLContext:
    """A context with no certificate, for TLS settings read back from a record: they describe, never serve."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


def encode_rule_setting(rule: Rule) -> Record:
    """A reply rule as written; ``origin`` says where (``--rule 2``, ``rules.toml rule 1``)."""
    return {
        "rule": rule.number,
        "origin": rule.origin,
        "match": rule.match,
        "reply": rule.reply,
        "once": rule.once,
        "actions": dict(rule.actions),  # name -> template, as written: {"label": "{1}"}
    }


def decode_rule_setting(record: Fields) -> Rule:
    """The rule, compiled again (raises ValueError if it does not compile here)."""
    return compile_rule(
        read_int(record, "rule"),
        read_str(record, "origin"),
        read_str(record, "match"),
        read_optional_str(record, "reply"),
        read_bool(record, "once"),
        dict(read_actions(record)),
    )


# ---- the server record ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerInfo:
    """The server a console talks to: its process, and what it listens on with which settings."""

    pid: int
    version: str  # tui-echo's version (the package's, not the protocol's)
    started_at: float  # wall clock: when its control socket opened
    addresses: tuple[Peer, ...]
    config: ServerConfig
    control: str  # the control socket's path

    def listening(self) -> ServerListening:
        """What the server said when it started listening: what a console shows first, as the monitor does."""
        return ServerListening(addresses=self.addresses, at=self.started_at, config=self.config, control=self.control)


def encode_server(info: ServerInfo) -> Record:
    return {
        "pid": info.pid,
        "version": info.version,
        "started": utc_time(info.started_at),
        **encode_setup(info.addresses, info.config, info.control),
    }


def decode_server(record: Fields) -> ServerInfo:
    addresses, config, control = decode_setup(record)
    return ServerInfo(
        pid=read_int(record, "pid"),
        version=read_str(record, "version"),
        started_at=read_time(record, "started"),
        addresses=addresses,
        config=config,
        control=control,
    )
