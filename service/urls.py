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


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified)


def validate_callback_url(url: str, allow: Sequence[str], allow_http: bool = True,
                          resolve: bool = True) -> str:
    """Return the URL if a webhook may be sent there; raise CallbackUrlError saying why not.

    Called at submission and again at delivery, because DNS can change in between (rebinding).
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
    if _allowed(host, ips, allow):
        return url
    bad = [str(ip) for ip in ips if not _is_public(ip)]
    if bad or host.lower() == "localhost":
        raise CallbackUrlError(
            f"host {host!r} resolves to a private or loopback address ({', '.join(bad) or host}); "
            "add it to MOD_CALLBACK_ALLOW_HOSTS to permit it"
        )
    return url
