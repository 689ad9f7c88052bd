"""Fixtures for the client tests: the session's gateway served over real loopback HTTP, and fresh tenants."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.text.labels import CATEGORIES
from tests.client.support import serve_app
from tests.conftest import Stack, admin_headers, new_key


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> Iterator[str]:
    from service.gateway.app import create_app

    with serve_app(create_app(stack.settings)) as url:
        yield url


def raw_key(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture()
def platform(api: TestClient) -> tuple[str, str]:
    """(API key, tenant) of a platform key on a fresh tenant."""
    headers, tenant = new_key(api)
    return raw_key(headers), tenant


@pytest.fixture()
def review_tenant(api: TestClient) -> tuple[str, str, str]:
    """(platform key, moderator key, tenant) for a tenant whose policy sends every text to review."""
    headers, tenant = new_key(api)
    policy = {"categories": {c: {"review": 0.01, "block": 0.999} for c in CATEGORIES}}
    resp = api.put(f"/v1/policies/{tenant}", json=policy, headers=admin_headers())
    assert resp.status_code == 200, resp.text
    mod, _ = new_key(api, "moderator", tenant)
    return raw_key(headers), raw_key(mod), tenant
