"""Console security: XSS in text and metadata renders inert, another tenant's key sees nothing, sessions (cookie
flags, CSRF, origin, sign-out, idle timeout, revocation), blobs only for the item's tenant with safe headers."""

from __future__ import annotations

from typing import Any

import httpx

from service.gateway.console.session import COOKIE, CSP
from service.store.sessions import SessionStore
from tests.console.conftest import Console, jpeg, shot, sign_in
from training.vision.fetch import DATA_DIR, fetch_data

XSS_TEXT = ("<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script> "
            "<a href=\"javascript:window.__xss=3\">click</a> you idiot")
XSS_META = {"<b onmouseover=window.__xss=4>title</b>": "<svg onload=window.__xss=5>",
            "nested": {"html": "<iframe src=javascript:window.__xss=6>"}}


def _signed_in_client(console: Console, key: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=console.url, timeout=30)
    resp = client.post("/console/api/session", json={"key": key})
    assert resp.status_code == 200, resp.text
    return client, str(resp.json()["csrf_token"])


def test_xss_in_text_and_metadata_is_inert(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    moderator = console.key("moderator", tenant, "<img src=x onerror=window.__xss=7>")
    item_id = console.submit(platform, XSS_TEXT, metadata=XSS_META, external_id="<script>window.__xss=8</script>")
    console.wait_done(platform, item_id)
    page = new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    sign_in(page, moderator)
    page.wait_for_selector(f"li[data-id='{item_id}']")
    page.goto(f"/console#/item/{item_id}")
    page.wait_for_selector("#content-text")
    assert page.text_content("#content-text") == XSS_TEXT
    metadata = page.text_content("#metadata") or ""
    assert "<svg onload=window.__xss=5>" in metadata and "<iframe" in metadata
    assert "<script>window.__xss=8</script>" in (page.text_content("main") or "")
    assert "<img src=x" in (page.text_content("#who") or "")
    page.click("#claim")
    page.wait_for_selector("#lease-countdown")
    shot(page, "xss-inert")
    assert page.evaluate("window.__xss") is None
    injected = "main img[src=x], main script, main iframe, main svg:not(.timeline)"
    assert page.evaluate(f"document.querySelectorAll({injected!r}).length") == 0
    assert violations == []


def test_another_tenant_sees_nothing(console: Console, new_page: Any) -> None:
    fetch_data(DATA_DIR)
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    item_id = console.upload(platform, "image", "p.jpg", jpeg(DATA_DIR, "coffee.png"))
    console.wait_done(platform, item_id)
    other_tenant = console.tenant()
    outsider = console.key("moderator", other_tenant, "Outsider")
    page = new_page()
    sign_in(page, outsider)
    page.wait_for_selector("#queue-list li")
    assert page.text_content("#count-review") == "0" and page.locator("li[data-id]").count() == 0
    page.goto(f"/console#/item/{item_id}")
    page.wait_for_selector("text=Item not available")
    assert page.request.get(f"/console/api/items/{item_id}/blob").status == 404
    assert page.request.get(f"/console/api/queue?tenant={tenant}").status == 404
    assert page.request.get(f"/console/api/stats/overview?tenant={tenant}").status == 404
    page.goto("/console#/dashboard")
    page.wait_for_selector("#dash-body[data-loaded='true']")
    assert page.text_content("#card-submitted") == "0"
    # The item's own tenant gets the file: sniffed type, nosniff, attachment, sandboxed.
    insider, _ = _signed_in_client(console, console.key("moderator", tenant, "Insider"))
    resp = insider.get(f"/console/api/items/{item_id}/blob")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["content-disposition"].startswith("attachment") and "sandbox" in resp.headers[
        "content-security-policy"]
    assert resp.content[:3] == b"\xff\xd8\xff"
    insider.close()


def test_session_cookie_csrf_sign_out_and_idle_timeout(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    moderator = console.key("moderator", tenant, "Gil")
    platform = console.key("platform", tenant, "platform")
    anonymous = httpx.Client(base_url=console.url, timeout=30)
    assert anonymous.post("/console/api/session", json={"key": platform}).json()["error"]["code"] == "forbidden_role"
    assert anonymous.post("/console/api/session", json={"key": "nope"}).status_code == 401
    page = console.http.get("/console")
    assert page.headers["content-security-policy"] == CSP and page.headers["x-frame-options"] == "DENY"
    assert anonymous.get("/console/static/../session.py").status_code == 404
    assert anonymous.get("/console/api/queue").json()["error"]["code"] == "not_signed_in"

    client, csrf = _signed_in_client(console, moderator)
    cookie = next(c for c in client.cookies.jar if c.name == COOKIE)
    assert cookie.path == "/console" and cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "strict" and moderator not in str(cookie.value)
    # The /v1 API never takes the cookie; state changes need the CSRF token and a same-origin request.
    assert client.get("/v1/reviews").status_code == 401
    assert client.put("/console/api/prefs", json={"blur_media": False}).json()["error"]["code"] == "csrf_failed"
    resp = client.put("/console/api/prefs", json={"blur_media": False},
                      headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "bad_origin"
    ok = client.put("/console/api/prefs", json={"blur_media": False}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.headers["content-security-policy"] == CSP
    assert client.get("/console/api/session").json()["prefs"] == {"blur_media": False}
    # Background polls keep the session valid but do not restart its idle timeout.
    sid = client.cookies[COOKIE]
    store = SessionStore(console.redis)
    store.backdate(sid, 60)
    before = store.touch(sid, active=False)
    assert client.get("/console/api/queue", headers={"X-Console-Poll": "1"}).status_code == 200
    after = store.touch(sid, active=False)
    assert before is not None and after is not None and after.last_seen == before.last_seen
    client.close()

    browser_page = new_page()
    sign_in(browser_page, moderator)
    browser_page.reload()
    browser_page.wait_for_selector("#top:not([hidden])")  # the session survives a reload...
    storage = browser_page.evaluate("JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)])")
    assert storage == "[[],[]]" and moderator not in browser_page.content()  # ...and the key is kept nowhere
    [jar] = [c for c in browser_page.context.cookies() if c["name"] == COOKIE]
    assert jar["httpOnly"] and jar["sameSite"] == "Strict"
    # Idle for longer than the timeout: the next request finds the session gone and the sign-in form shows.
    SessionStore(console.redis).backdate(jar["value"], 16 * 60)
    browser_page.goto("/console#/appeals")
    browser_page.wait_for_selector("#signin-error:has-text('expired')")
    sign_in(browser_page, moderator)
    browser_page.click("#signout")
    browser_page.wait_for_selector("#signin-key")
    assert browser_page.request.get("/console/api/session").status == 401
    # Revoking the key signs its sessions out.
    client, _ = _signed_in_client(console, moderator)
    key_id = client.get("/console/api/session").json()["user"]["key_id"]
    assert console.http.delete(f"/v1/keys/{key_id}", headers=console.admin()).status_code == 204
    assert client.get("/console/api/session").json()["error"]["code"] == "session_revoked"
    client.close()
    anonymous.close()
