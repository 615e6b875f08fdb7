"""Who may connect: allow/deny rules, bans, a per-address cap and a per-address accept rate.

Pure logic, no trio: times are trio's clock, passed in. ``AccessControl.check``
is the one admission decision; it is synchronous and cheap (a few dict
lookups; an ``ipaddress`` parse only when there are allow/deny rules), so an
accept loop can call it for every connection it takes. Addresses are plain
strings as ``accept`` reports them after ``plain_host``: IPv4-mapped IPv6
peers (``::ffff:10.0.0.1``) become plain IPv4, so every rule, count and ban
sees one name per host.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from tui_echo.ratelimit import TokenBucket
from tui_echo.server.config import Network, ServerConfig
from tui_echo.server.events import RefusalReason

RATE_TABLE_LIMIT = 10_000  # source addresses with an accept-rate bucket; the least recently seen is forgotten first
BAN_LIMIT = 1000  # addresses banned at once; further bans are refused with a notice
_MAPPED_PREFIX = "::ffff:"


def plain_host(host: str) -> str:
    """``::ffff:a.b.c.d`` (an IPv4 client of a dual-stack socket) as ``a.b.c.d``; anything else unchanged."""
    if host.startswith(_MAPPED_PREFIX) and "." in host:
        return host[len(_MAPPED_PREFIX) :]
    return host


def parse_network(text: str) -> Network:
    """A CIDR network, or a bare address meaning just that host (/32 or /128). Raises ValueError.

    An IPv4-mapped IPv6 network (``::ffff:10.0.0.0/104``) becomes the IPv4 network it maps,
    since peers are compared in plain IPv4.
    """
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"expected an address or a CIDR network such as 10.0.0.0/8, got {text!r}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def in_networks(host: str, networks: tuple[Network, ...]) -> bool:
    """Whether ``host`` (a plain address, see plain_host) lies in any of ``networks``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1): what most local clients share."""
    try:
        return ipaddress.ip_address(plain_host(host)).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ActiveBan:
    """One banned address and when its ban ends (wall clock)."""

    address: str
    until: float


class AccessControl:
    """The admission rules and the state they need: bans, live clients per address, rate buckets."""

    def __init__(self, config: ServerConfig) -> None:
        self._allow = config.allow
        self._deny = config.deny
        self._max_per_ip = config.max_per_ip
        self._accept_rate = config.accept_rate
        self._rate_burst = max(1.0, config.accept_rate or 0.0)
        self._max_clients = config.max_clients
        self._bans: dict[str, float] = {}  # address -> end of its ban (trio clock)
        self._rates: OrderedDict[str, TokenBucket] = OrderedDict()  # least recently seen first
        self._live: dict[str, int] = {}  # address -> clients connected from it (only with max_per_ip)

    def check(self, host: str, now: float, clients_now: int) -> RefusalReason | None:
        """Why a new connection from ``host`` must be refused, or None to admit it.

        Order: banned, denied, accept rate (so a refused attempt still spends a token), server full,
        per-address cap. Admitting is the caller's next step: call ``admitted`` then.
        """
        if self._bans and self._banned(host, now):
            return RefusalReason.BANNED
        if (self._allow or self._deny) and not self.permitted(host):
            return RefusalReason.DENIED
        if self._accept_rate is not None and not self._take_rate(host, now):
            return RefusalReason.RATE_LIMITED
        if self._max_clients is not None and clients_now >= self._max_clients:
            return RefusalReason.SERVER_FULL
        if self._max_per_ip is not None and self._live.get(host, 0) >= self._max_per_ip:
            return RefusalReason.PER_IP_LIMIT
        return None

    def admitted(self, host: str) -> None:
        if self._max_per_ip is not None:
            self._live[host] = self._live.get(host, 0) + 1

    def left(self, host: str) -> None:
        if self._max_per_ip is not None:
            count = self._live.pop(host) - 1
            if count:
                self._live[host] = count

    # ---- rules -----------------------------------------------------------

    def set_lists(self, allow: tuple[Network, ...], deny: tuple[Network, ...]) -> None:
        """New allow and deny lists (a reload): they decide from the next connection on."""
        self._allow, self._deny = allow, deny

    def permitted(self, host: str) -> bool:
        """ncat's rule: with any --allow, only those; a --deny wins over an --allow."""
        if self._allow and not in_networks(host, self._allow):
            return False  # also what is not an IP address (cannot happen for TCP peers): refuse rather than guess
        return not in_networks(host, self._deny)

    def _take_rate(self, host: str, now: float) -> bool:
        rates = self._rates
        bucket = rates.get(host)
        if bucket is None:
            assert self._accept_rate is not None
            bucket = rates[host] = TokenBucket(self._accept_rate, self._rate_burst, now)
        else:
            rates.move_to_end(host)
        allowed = bucket.take(now)
        # Forget buckets that refilled (a new bucket would be the same), and past the bound the least recent.
        while rates:
            oldest, oldest_bucket = next(iter(rates.items()))
            if oldest == host or (len(rates) <= RATE_TABLE_LIMIT and not oldest_bucket.full(now)):
                break
            del rates[oldest]
        return allowed

    # ---- bans ------------------------------------------------------------

    def _banned(self, host: str, now: float) -> bool:
        until = self._bans.get(host)
        if until is None:
            return False
        if until <= now:
            del self._bans[host]
            return False
        return True

    def ban(self, host: str, seconds: float, now: float) -> bool:
        """Ban ``host`` for ``seconds`` (a new ban on a banned address restarts it); False if the list is full."""
        self._expire(now)
        if host not in self._bans and len(self._bans) >= BAN_LIMIT:
            return False
        self._bans[host] = now + seconds
        return True

    def unban(self, host: str) -> bool:
        """Lift a ban; False if ``host`` was not banned."""
        return self._bans.pop(host, None) is not None

    def bans(self) -> list[tuple[str, float]]:
        """The bans as (address, end of the ban on trio's clock), soonest to end first.

        Ended bans are dropped lazily (at the next check or ban of their address), so a reader
        compares the end with the time itself; that keeps this callable from outside trio.
        """
        return sorted(self._bans.items(), key=lambda ban: ban[1])

    def _expire(self, now: float) -> None:
        for host in [host for host, until in self._bans.items() if until <= now]:
            del self._bans[host]
