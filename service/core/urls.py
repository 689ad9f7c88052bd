"""Owns callback-URL validation: scheme, no credentials, special-purpose addresses and the operator allow/deny lists.

Every address range a webhook must never reach is in ONE table, `SPECIAL_PURPOSE` (the IANA IPv4 and IPv6
special-purpose registries plus multicast, reserved and deprecated space). An address is judged by the most
specific row that contains it. Rows of IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo)
are judged by the IPv4 inside, so `2002:7f00:1::` (6to4 of 127.0.0.1) is refused like 127.0.0.1 while a NAT64
of a public address is accepted.

Order of the checks: the deny-list always wins, then the allow-list (operator-trusted hosts and CIDRs), then the
table. Python's `ipaddress.is_global` is not used: its idea of special-purpose space changes between Python
releases (and missed 6to4 here), while this table is the documented contract.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from service.core.config import Settings

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# How an IPv6 row carries an IPv4 address: "judged" rows are decided by the IPv4 inside (a socket to them
# reaches, or is routed towards, that IPv4 host); "shown" rows are refused outright and only name it.
Embeds = Literal["", "mapped", "compat", "nat64", "6to4", "teredo"]


class CallbackUrlError(ValueError):
    pass


@dataclass(frozen=True)
class SpecialRange:
    network: Network
    name: str
    ref: str
    embeds: Embeds = ""
    judge_embedded: bool = False  # True: refused only when an embedded IPv4 is refused


def _row(cidr: str, name: str, ref: str, embeds: Embeds = "", judge_embedded: bool = False) -> SpecialRange:
    return SpecialRange(ipaddress.ip_network(cidr), name, ref, embeds, judge_embedded)


# The one table. Most specific row wins (a /32 Teredo row inside the /23 IETF row, ::1 inside ::/3, ...).
SPECIAL_PURPOSE: tuple[SpecialRange, ...] = (
    # IPv4 (IANA IPv4 Special-Purpose Address Registry, plus multicast).
    _row("0.0.0.0/8", "'this network'", "RFC 791"),
    _row("10.0.0.0/8", "private-use", "RFC 1918"),
    _row("100.64.0.0/10", "shared address space (CGNAT)", "RFC 6598"),
    _row("127.0.0.0/8", "loopback", "RFC 1122"),
    _row("169.254.0.0/16", "link-local (cloud metadata)", "RFC 3927"),
    _row("172.16.0.0/12", "private-use", "RFC 1918"),
    _row("192.0.0.0/24", "IETF protocol assignments (DS-Lite, PCP/TURN anycast, NAT64 discovery)", "RFC 6890"),
    _row("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737"),
    _row("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    _row("192.52.193.0/24", "AMT", "RFC 7450"),
    _row("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526"),
    _row("192.168.0.0/16", "private-use", "RFC 1918"),
    _row("192.175.48.0/24", "direct delegation AS112 service", "RFC 7534"),
    _row("198.18.0.0/15", "benchmarking", "RFC 2544"),
    _row("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737"),
    _row("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737"),
    _row("224.0.0.0/4", "multicast", "RFC 5771"),
    _row("240.0.0.0/4", "reserved", "RFC 1112"),
    _row("255.255.255.255/32", "limited broadcast", "RFC 919"),
    # IPv6 (IANA IPv6 Special-Purpose Address Registry, plus multicast and deprecated space).
    _row("::/128", "unspecified", "RFC 4291"),
    _row("::1/128", "loopback", "RFC 4291"),
    _row("::/96", "IPv4-compatible (deprecated)", "RFC 4291", "compat"),
    _row("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", "mapped", judge_embedded=True),
    _row("64:ff9b::/96", "NAT64 well-known prefix", "RFC 6052", "nat64", judge_embedded=True),
    _row("64:ff9b:1::/48", "local-use NAT64 (an operator's internal translator)", "RFC 8215"),
    _row("100::/64", "discard-only", "RFC 6666"),
    _row("100:0:0:1::/64", "dummy prefix", "RFC 9780"),
    _row("2001::/23", "IETF protocol assignments", "RFC 2928"),
    _row("2001::/32", "Teredo", "RFC 4380", "teredo", judge_embedded=True),
    _row("2001:2::/48", "benchmarking", "RFC 5180"),
    _row("2001:3::/32", "AMT", "RFC 7450"),
    _row("2001:4:112::/48", "AS112-v6", "RFC 7535"),
    _row("2001:10::/28", "ORCHID (deprecated)", "RFC 4843"),
    _row("2001:20::/28", "ORCHIDv2", "RFC 7343"),
    _row("2001:30::/28", "drone remote ID (DET)", "RFC 9374"),
    _row("2001:db8::/32", "documentation", "RFC 3849"),
    _row("2002::/16", "6to4", "RFC 3056", "6to4", judge_embedded=True),
    _row("2620:4f:8000::/48", "direct delegation AS112 service", "RFC 7534"),
    _row("3fff::/20", "documentation", "RFC 9637"),
    _row("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
    _row("fc00::/7", "unique local (ULA)", "RFC 4193"),
    _row("fe80::/10", "link-local", "RFC 4291"),
    _row("fec0::/10", "site-local (deprecated)", "RFC 3879"),
    _row("ff00::/8", "multicast", "RFC 4291"),
    # Everything outside global unicast 2000::/3 is unassigned or reserved by the IETF; these three rows cover
    # it so a future special range there is refused before anyone lists it.
    _row("::/3", "outside global unicast 2000::/3 (IETF reserved)", "RFC 4291"),
    _row("4000::/2", "outside global unicast 2000::/3 (IETF reserved)", "RFC 4291"),
    _row("8000::/1", "outside global unicast 2000::/3 (IETF reserved)", "RFC 4291"),
)

# Special-use domain names (RFC 6761 and successors) that never name a public host.
SPECIAL_USE_DOMAINS = ("localhost", "local", "internal", "home.arpa", "invalid", "test", "example", "onion", "alt")

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# inet_aton accepts "127.1", "0x7f.1", "2130706433", "0177.0.0.1"; resolvers and HTTP clients disagree on them.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


def special_range(ip: IP) -> SpecialRange | None:
    """The most specific special-purpose row containing `ip`, or None for an ordinary public address."""
    best: SpecialRange | None = None
    for row in SPECIAL_PURPOSE:
        # Compare versions first: IPv4Network.__contains__ does not, and would match an IPv6 address by its
        # low 32 bits.
        if row.network.version == ip.version and ip in row.network:
            if best is None or row.network.prefixlen > best.network.prefixlen:
                best = row
    return best


def embedded_ipv4(ip: IP, embeds: Embeds) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address of the given form carries (Teredo carries server and client)."""
    if not isinstance(ip, ipaddress.IPv6Address) or not embeds:
        return []
    if embeds == "6to4":
        return [ip.sixtofour] if ip.sixtofour else []
    if embeds == "teredo":
        return list(ip.teredo) if ip.teredo else []
    # mapped, compat and the NAT64 /96 all keep the IPv4 address in the low 32 bits.
    return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]


def refusal(ip: IP) -> str | None:
    """Why a webhook must not be sent to `ip` (None: it may). Embedded IPv4 forms are judged by the IPv4."""
    row = special_range(ip)
    if row is None:
        return None
    inner = embedded_ipv4(ip, row.embeds)
    if row.judge_embedded:
        for v4 in inner:
            why = refusal(v4)
            if why:
                return f"{row.name} form of {v4}: {why}"
        return None
    carried = f", carrying {', '.join(map(str, inner))}" if inner else ""
    return f"{row.name} ({row.network}, {row.ref}{carried})"


@dataclass(frozen=True)
class _HostList:
    """Operator list entries: exact hosts, `.domain` / `*.domain` suffixes, and CIDRs (IPs are /32 or /128)."""

    names: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> _HostList:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith(("*.", ".")):
                suffixes.append("." + entry.lstrip("*."))
            else:
                names.add(entry)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def has_name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(s) or host == s[1:] for s in self.suffixes)

    def has_ip(self, ip: IP) -> bool:
        return any(net.version == ip.version and ip in net for net in self.networks)


def _literal_ip(host: str) -> IP | None:
    """The IP if `host` is an IP literal (an IPv6 zone id is refused: only link-local needs one)."""
    if "%" in host:
        raise CallbackUrlError("IPv6 zone identifiers are not allowed in callback URLs")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        # Not dotted-quad decimal, yet some resolver would read it as an IPv4 address (127.1, 0x7f000001).
        raise CallbackUrlError(f"host {host!r} is a non-standard IPv4 form; write the address as a.b.c.d")
    return None


def _check_hostname(host: str) -> str:
    """The host as an ASCII (IDNA) DNS name, or CallbackUrlError when it cannot name a public host."""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise CallbackUrlError(f"host {host!r} is not a valid DNS name") from exc
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise CallbackUrlError(f"host {host!r} is not a valid DNS name")
    for domain in SPECIAL_USE_DOMAINS:
        if ascii_host == domain or ascii_host.endswith("." + domain):
            raise CallbackUrlError(f"host {host!r} is in the special-use domain .{domain}")
    if len(labels) < 2:
        # Single-label names resolve through search domains to internal hosts ("metadata", "redis").
        raise CallbackUrlError(f"host {host!r} is not a fully qualified domain name")
    return ascii_host


def validate_callback_url(url: str, allow: Sequence[str], allow_http: bool = True,
                          resolve: bool = True, deny: Sequence[str] = ()) -> str:
    """Return the URL if a webhook may be sent there; raise CallbackUrlError saying why not."""
    resolve_callback(url, allow, allow_http, resolve, deny)
    return url


def resolve_callback(url: str, allow: Sequence[str], allow_http: bool = True,
                     resolve: bool = True, deny: Sequence[str] = ()) -> str | None:
    """Validate and return the IP address a delivery must connect to (None when not resolved).

    Delivery connects to exactly this address (see workers.tasks.webhooks), so a DNS answer that changes
    between this check and the connection (rebinding) cannot redirect the request inside the network.
    `allow` and `deny` are operator lists of hosts, `.domain` suffixes and CIDRs; `deny` wins over everything.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlError(f"not a valid URL: {exc}") from exc
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise CallbackUrlError(f"scheme must be one of {', '.join(schemes)}")
    if parts.username or parts.password:
        raise CallbackUrlError("credentials in the URL are not allowed; use the signature header")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise CallbackUrlError("URL has no host")
    allowed, denied = _HostList.parse(allow), _HostList.parse(deny)
    literal = _literal_ip(host)
    if literal is not None:
        host = str(literal)
    if denied.has_name(host):
        raise CallbackUrlError(f"host {host!r} is on MOD_CALLBACK_DENY_HOSTS")
    name_allowed = allowed.has_name(host)
    if literal is None and not name_allowed:
        host = _check_hostname(host)

    ips: list[IP] = [literal] if literal is not None else []
    if literal is None and resolve:
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise CallbackUrlError(f"host {host!r} does not resolve") from exc
        ips = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not ips:
            raise CallbackUrlError(f"host {host!r} does not resolve")
    first = str(ips[0]) if ips else None

    for ip in ips:
        # A denied CIDR also catches the IPv4 inside an IPv6 form, so no encoding slips past the deny-list.
        row = special_range(ip)
        carried = embedded_ipv4(ip, row.embeds) if row else []
        if denied.has_ip(ip) or any(denied.has_ip(v4) for v4 in carried):
            raise CallbackUrlError(f"host {host!r} ({ip}) is on MOD_CALLBACK_DENY_HOSTS")
    # The allow-list matches the literal address only (not an IPv4 embedded in it): allowing 127.0.0.1 must not
    # allow a 6to4 address that merely encodes it.
    if name_allowed or (ips and all(allowed.has_ip(ip) for ip in ips)):
        return first
    bad = [f"{ip}: {why}" for ip in ips if (why := refusal(ip))]
    if bad:
        raise CallbackUrlError(
            f"host {host!r} {'is' if literal else 'resolves to'} a special-purpose address ({'; '.join(bad)}); "
            "add it to MOD_CALLBACK_ALLOW_HOSTS to permit it"
        )
    return first


def check_callback(url: str, settings: Settings, resolve: bool = True) -> str | None:
    """resolve_callback with the operator's settings (allow-list, deny-list, http allowed)."""
    return resolve_callback(url, settings.callback_allow_hosts, settings.callback_allow_http, resolve,
                            settings.callback_deny_hosts)
