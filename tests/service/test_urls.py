"""Callback-URL rules: every special-purpose range refused, embedded IPv4 judged, operator allow/deny lists.

No test resolves or contacts a non-loopback host: addresses are IP literals, and `socket.getaddrinfo` is replaced
for the whole module by a fake that fails the test unless a test gave it an answer for that exact name.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.urls import (
    SPECIAL_PURPOSE,
    CallbackUrlError,
    check_callback,
    refusal,
    resolve_callback,
    validate_callback_url,
)

FakeDns = Callable[[dict[str, list[str]]], None]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[Any]:
        if host not in answers:
            # IP literals (the Redis client connecting to 127.0.0.1) are parsed locally, never looked up.
            try:
                return real(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)  # type: ignore[arg-type]
            except socket.gaierror:
                raise AssertionError(f"unexpected DNS lookup of {host!r}") from None
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield answers.update


def url_for(ip: str) -> str:
    return f"http://[{ip}]/hook" if ":" in ip else f"http://{ip}/hook"


# Written out by hand from the IANA registries (not derived from the table under test), edges included.
REFUSED = [
    # IPv4 special-purpose registry, multicast, reserved, broadcast.
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1",
    "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.1", "192.0.0.9", "192.0.0.170",
    "192.0.2.1", "192.31.196.1", "192.52.193.1", "192.88.99.1", "192.168.1.1", "192.175.48.1", "198.18.0.1",
    "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.254", "255.255.255.255",
    # IPv6: unspecified, loopback, IPv4-compatible (deprecated, even of a public address), mapped/NAT64 of
    # special IPv4, local-use NAT64, discard, dummy, IETF assignments, benchmarking, AMT, AS112, ORCHID(v2),
    # DETs, documentation, 6to4 of special IPv4 (the reported bug), ULA, link-local, site-local, multicast,
    # SRv6 SIDs and space outside 2000::/3.
    "::", "::1", "::127.0.0.1", "::8.8.8.8", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::127.0.0.1", "64:ff9b::10.0.0.1", "64:ff9b::100.64.0.1", "64:ff9b:1::8.8.8.8", "100::1",
    "100:0:0:1::1", "2001:1::1", "2001:2::1", "2001:3::1", "2001:4:112::1", "2001:10::1", "2001:20::1",
    "2001:30::1", "2001:db8::1", "2001:db8:ffff::1", "2002:7f00:1::", "2002:7f00:1::1", "2002:a00:1::1",
    "2002:a9fe:a9fe::", "2002:c0a8:101::1", "2620:4f:8000::1", "3fff::1", "3fff:fff::1", "5f00::1", "fc00::1",
    "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff02::1", "ff0e::1", "1fff::1", "4000::1", "e000::1",
    "::ffff:0:7f00:1",
    # Teredo: server 0.0.0.0; documentation client (RFC 4380's example); private server 10.0.0.1.
    "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:a00:1:8000:63bf:f7f7:f7f7",
]
ACCEPTED = [
    # Public IPv4, including the first address past each neighbouring special range.
    "1.1.1.1", "8.8.8.8", "9.9.9.9", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "192.0.1.1",
    "192.0.3.1", "198.17.255.255", "198.20.0.0", "223.255.255.255", "126.255.255.255", "128.0.0.1",
    # Public IPv6, and IPv4-carrying forms of a public IPv4 (judged by the IPv4 inside).
    "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450::1", "2001:200::1", "2001:db9::1", "3fff:1000::1",
    "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo: server 65.54.227.120, client 8.8.8.8
]


@pytest.mark.parametrize("ip", REFUSED)
def test_special_purpose_address_is_refused(ip: str) -> None:
    with pytest.raises(CallbackUrlError, match="special-purpose"):
        validate_callback_url(url_for(ip), allow=[])


@pytest.mark.parametrize("ip", ACCEPTED)
def test_public_address_is_accepted(ip: str) -> None:
    assert resolve_callback(url_for(ip), allow=[]) == str(ipaddress.ip_address(ip))


@pytest.mark.parametrize("row", [r for r in SPECIAL_PURPOSE if not r.judge_embedded], ids=lambda r: str(r.network))
def test_every_table_row_refuses_its_first_and_last_address(row) -> None:  # type: ignore[no-untyped-def]
    for ip in (row.network[0], row.network[-1]):
        assert refusal(ip), f"{ip} of {row.network} ({row.name}) was not refused"


@pytest.mark.parametrize(("ip", "inner"), [("2002:7f00:1::", "127.0.0.1"), ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
                                           ("::ffff:a00:1", "10.0.0.1"), ("2001:0:a00:1::", "10.0.0.1")])
def test_refusal_names_the_embedded_ipv4(ip: str, inner: str) -> None:
    why = refusal(ipaddress.ip_address(ip))
    assert why is not None and inner in why


@pytest.mark.parametrize("url", [
    "http://2130706433/hook", "http://0x7f.1/hook", "http://127.1/hook", "http://0177.0.0.1/hook",
    "http://0x7f000001/hook", "http://10.1/hook",
])
def test_non_standard_ipv4_forms_are_refused(url: str) -> None:
    with pytest.raises(CallbackUrlError, match="non-standard IPv4"):
        validate_callback_url(url, allow=[])


@pytest.mark.parametrize(("url", "match"), [
    ("http://[fe80::1%25eth0]/hook", "zone"),
    ("http://localhost/hook", "special-use"),
    ("http://localhost./hook", "special-use"),
    ("http://hooks.localhost/hook", "special-use"),
    ("http://metadata.internal/hook", "special-use"),
    ("http://printer.local/hook", "special-use"),
    ("http://metadata/hook", "fully qualified"),
    ("http://bad_label-.example.org/hook", "not a valid DNS name"),
    ("ftp://198.51.100.1/hook", "scheme"),
    ("https://u:p@[2606:4700::1111]/hook", "credentials"),
    ("http:///hook", "no host"),
])
def test_hosts_that_cannot_name_a_public_server_are_refused(url: str, match: str) -> None:
    with pytest.raises(CallbackUrlError, match=match):
        validate_callback_url(url, allow=[])


def test_https_only_when_http_is_off() -> None:
    with pytest.raises(CallbackUrlError, match="scheme"):
        validate_callback_url("http://8.8.8.8/hook", allow=[], allow_http=False)
    assert validate_callback_url("https://8.8.8.8/hook", allow=[], allow_http=False)


def test_allow_list_keeps_loopback_receivers_working() -> None:
    """The test-suite's webhook receivers listen on 127.0.0.1, allowed through MOD_CALLBACK_ALLOW_HOSTS."""
    assert resolve_callback("http://127.0.0.1:8080/hook", ["127.0.0.1"]) == "127.0.0.1"
    assert resolve_callback("http://10.1.2.3/hook", ["10.0.0.0/8"]) == "10.1.2.3"
    assert resolve_callback("http://[::1]:9/hook", ["[::1]"]) == "::1"


@pytest.mark.parametrize(("ip", "allow"), [
    ("2002:7f00:1::", "127.0.0.1"),  # allowing an address never allows an encoding of it
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("fd00::a00:1", "10.0.0.0/8"),  # low 32 bits equal 10.0.0.1: versions must be compared
    ("fe80::7f00:1", "127.0.0.0/8"),
])
def test_allow_list_matches_the_literal_address_only(ip: str, allow: str) -> None:
    with pytest.raises(CallbackUrlError, match="special-purpose"):
        validate_callback_url(url_for(ip), allow=[allow])


@pytest.mark.parametrize("ip", ["8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_deny_list_cidr_catches_every_encoding(ip: str) -> None:
    assert validate_callback_url(url_for(ip), allow=[])
    with pytest.raises(CallbackUrlError, match="MOD_CALLBACK_DENY_HOSTS"):
        validate_callback_url(url_for(ip), allow=[], deny=["8.8.8.0/24"])


def test_deny_list_wins_over_the_allow_list() -> None:
    with pytest.raises(CallbackUrlError, match="MOD_CALLBACK_DENY_HOSTS"):
        validate_callback_url("http://127.0.0.1:9/hook", allow=["127.0.0.1"], deny=["127.0.0.0/8"])


def test_deny_list_names_and_domains_refuse_before_any_lookup(fake_dns: FakeDns) -> None:
    # No DNS answer is configured: a lookup would fail the test, so the names are refused before resolving.
    for url in ("http://hooks.example.org/x", "https://a.corp.example.net/x", "https://corp.example.net/x"):
        with pytest.raises(CallbackUrlError, match="MOD_CALLBACK_DENY_HOSTS"):
            validate_callback_url(url, allow=[], deny=["hooks.example.org", "*.corp.example.net"])


def test_resolved_names_are_judged_by_every_address(fake_dns: FakeDns) -> None:
    fake_dns({"hooks.example.org": ["2606:4700:4700::1111", "8.8.8.8"],
              "rebind.example.org": ["8.8.8.8", "2002:7f00:1::"],
              "meta.example.org": ["169.254.169.254"],
              "denied.example.org": ["9.9.9.9"]})
    # Delivery pins the first validated address (DNS rebinding between check and connect cannot move it).
    assert resolve_callback("https://hooks.example.org/x", []) == "2606:4700:4700::1111"
    for name in ("rebind", "meta"):
        with pytest.raises(CallbackUrlError, match="resolves to a special-purpose"):
            validate_callback_url(f"https://{name}.example.org/x", allow=[])
    with pytest.raises(CallbackUrlError, match="MOD_CALLBACK_DENY_HOSTS"):
        validate_callback_url("https://denied.example.org/x", allow=[], deny=["9.9.9.9"])


def test_allow_listed_name_may_resolve_inside(fake_dns: FakeDns) -> None:
    fake_dns({"hooks.internal": ["10.0.0.5"]})
    assert resolve_callback("http://hooks.internal/x", ["hooks.internal"]) == "10.0.0.5"
    with pytest.raises(CallbackUrlError, match="MOD_CALLBACK_DENY_HOSTS"):
        validate_callback_url("http://hooks.internal/x", ["hooks.internal"], deny=["10.0.0.0/24"])


def test_check_callback_reads_the_settings() -> None:
    settings = Settings(env="test", callback_allow_hosts=["127.0.0.1"], callback_deny_hosts=["198.51.100.0/24",
                                                                                             "8.8.4.4"])
    assert check_callback("http://127.0.0.1:1/x", settings) == "127.0.0.1"
    assert check_callback("http://8.8.8.8/x", settings) == "8.8.8.8"
    with pytest.raises(CallbackUrlError, match="MOD_CALLBACK_DENY_HOSTS"):
        check_callback("http://8.8.4.4/x", settings)


def test_api_refuses_6to4_of_loopback(redis_url: str) -> None:
    """The reported bug end to end: the gateway answers 422 invalid_callback_url (nothing is queued)."""
    from service.gateway.app import create_app

    settings = Settings(env="test", redis_url=redis_url, callback_allow_hosts=["127.0.0.1"],
                        bootstrap_platform_key="urls-platform-key",  # type: ignore[arg-type]
                        policy_path=Path(__file__).parents[1] / "support" / "policy.yaml")
    headers = {"Authorization": "Bearer urls-platform-key"}
    with TestClient(create_app(settings)) as api:
        for url in ("http://[2002:7f00:1::]/hook", "http://[::ffff:127.0.0.1]:9/hook", "http://[64:ff9b::a9fe:a9fe]/"):
            resp = api.post("/v1/moderations", json={"text": "hi", "callback_url": url}, headers=headers)
            assert resp.status_code == 422, resp.text
            assert resp.json()["error"]["code"] == "invalid_callback_url"
            assert "127.0.0.1" in resp.json()["error"]["message"] or "169.254" in resp.json()["error"]["message"]
