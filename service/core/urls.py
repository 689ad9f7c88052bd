"""Owns callback-URL validation: scheme, no credentials, and no private/loopback targets unless allow-listed."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit


class CallbackUrlError(ValueError):
    pass


def _allowed(host: str, ips: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address],
             allow: Sequence[str]) -> bool:
    for entry in allow:
        entry = entry.strip()
        if not entry:
            continue
        if entry.lower() == host.lower():
            return True
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if ips and all(ip in net for ip in ips):
            return True
    return False


# Special-purpose ranges that some Python versions still report as global (CGNAT hosts cloud metadata).
_NOT_PUBLIC = [ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15")]


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if any(ip.version == net.version and ip in net for net in _NOT_PUBLIC):
        return False
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def validate_callback_url(url: str, allow: Sequence[str], allow_http: bool = True,
                          resolve: bool = True) -> str:
    """Return the URL if a webhook may be sent there; raise CallbackUrlError saying why not."""
    resolve_callback(url, allow, allow_http, resolve)
    return url


def resolve_callback(url: str, allow: Sequence[str], allow_http: bool = True,
                     resolve: bool = True) -> str | None:
    """Validate and return the IP address a delivery must connect to (None when not resolved).

    Delivery connects to exactly this address (see workers.tasks.webhooks), so a DNS answer that changes
    between this check and the connection (rebinding) cannot redirect the request inside the network.
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
    host = parts.hostname
    if not host:
        raise CallbackUrlError("URL has no host")
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    try:
        ips = [ipaddress.ip_address(host)]
    except ValueError:
        if resolve:
            try:
                infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
            except OSError as exc:
                raise CallbackUrlError(f"host {host!r} does not resolve") from exc
            ips = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    first = str(ips[0]) if ips else None
    if _allowed(host, ips, allow):
        return first
    bad = [str(ip) for ip in ips if not _is_public(ip)]
    if bad or host.lower() == "localhost":
        raise CallbackUrlError(
            f"host {host!r} resolves to a private or loopback address ({', '.join(bad) or host}); "
            "add it to MOD_CALLBACK_ALLOW_HOSTS to permit it"
        )
    return first
