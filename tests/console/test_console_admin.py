"""Browser flows of the admin pages and the dashboard: a rescan started and cancelled (and one run to the end),
a policy with an invalid threshold refused with a clear message (and a valid one saved after its diff), hash
lists, keys, and the operations dashboard with its charts drawn by the locally served Chart.js."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import Console, assert_labelled, shot, sign_in, stopped, wait_until


def flashed(page: Any, text: str) -> str:
    page.wait_for_selector(f"#flash p:has-text({text!r})")
    return str(page.text_content("#flash p") or "")


def test_rescan_started_and_cancelled_from_the_ui(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    admin = console.key("admin", tenant, "Ops Admin")
    console.wait_done(platform, console.submit(platform, "first"), console.submit(platform, "second"))
    page = new_page()
    sign_in(page, admin)
    page.goto("/console#/admin/rescans")
    page.wait_for_selector("#rs-start")
    # With the rescan worker paused the job cannot start working, so the cancel always lands on a live job.
    with stopped(console.media_worker):
        page.select_option("#rs-kind", "text")
        page.click("#rs-start")
        flashed(page, "Started rescan")
        page.wait_for_selector("button[data-cancel]")
        job_id = page.get_attribute("button[data-cancel]", "data-cancel")
        page.click(f"button[data-cancel='{job_id}']")
        flashed(page, "Cancelled")
        page.wait_for_selector("[data-status='cancelled']")
    job = console.http.get(f"/v1/rescans/{job_id}", headers=console.admin()).json()
    assert job["status"] == "cancelled" and job["filter"]["tenant"] == tenant
    # A second rescan runs to the end: the progress bar fills and the ETA clears.
    page.click("#rs-start")
    page.wait_for_selector("[data-status='done']", timeout=30_000)
    assert page.get_attribute("progress", "value") == page.get_attribute("progress", "max") == "2"
    assert_labelled(page)
    shot(page, "rescans")
    # Another tenant's admin does not see these jobs.
    other_admin = console.key("admin", console.tenant(), "Other Admin")
    other = new_page()
    sign_in(other, other_admin)
    other.goto("/console#/admin/rescans")
    other.wait_for_selector("#rescan-jobs p")
    assert "No rescans yet" in (other.text_content("#rescan-jobs") or "")


def test_invalid_policy_is_refused_with_a_clear_message(console: Console, new_page: Any) -> None:
    tenant = console.tenant(policy={})
    admin = console.key("admin", tenant, "Policy Admin")
    page = new_page()
    sign_in(page, admin)
    page.goto("/console#/admin/policy")
    page.wait_for_selector("input[aria-label='toxicity review threshold']")
    page.fill("input[aria-label='toxicity review threshold']", "0.95")
    page.fill("input[aria-label='toxicity block threshold']", "0.5")
    page.click("#policy-preview")
    page.wait_for_selector("#policy-errors")
    message = page.text_content("#policy-errors") or ""
    assert "toxicity" in message and "review <= block" in message
    assert page.locator("#policy-save").count() == 0
    assert_labelled(page)
    shot(page, "policy-invalid")
    page.fill("input[aria-label='toxicity block threshold']", "1.5")
    page.fill("input[aria-label='toxicity review threshold']", "0.4")
    page.click("#policy-preview")
    page.wait_for_selector("#policy-errors:has-text('block <= 1')")
    before = console.http.get(f"/v1/policies/{tenant}", headers=console.admin()).json()["id"]
    # A valid change shows its diff first, then saves.
    page.fill("input[aria-label='toxicity block threshold']", "0.8")
    page.fill("#policy-terms", "spoiler alert")
    page.click("#policy-preview")
    page.wait_for_selector("#policy-diff")
    diff = page.text_content("#policy-diff") or ""
    assert "categories.toxicity.review" in diff and "spoiler alert" in diff
    shot(page, "policy-diff")
    page.click("#policy-save")
    flashed(page, "Saved")
    after = console.http.get(f"/v1/policies/{tenant}", headers=console.admin()).json()
    assert after["id"] != before and after["categories"]["toxicity"] == {"review": 0.4, "block": 0.8}
    assert "spoiler alert" in after["blocklist_terms"]


def test_hash_lists_and_keys_pages(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    admin = console.key("admin", tenant, "List Admin")
    page = new_page()
    sign_in(page, admin)
    page.goto("/console#/admin/hashlists")
    page.wait_for_selector("#hl-add")
    page.fill("#hl-name", "known-bad")
    page.fill("#hl-values", "a" * 64 + "\n" + "b" * 64)
    page.click("#hl-add")
    flashed(page, "Added 2 hash(es)")
    page.wait_for_selector("#hl-entries li")
    assert page.locator("#hl-entries li").count() == 2
    page.fill("#hl-values", "not-hex")
    page.click("#hl-add")
    page.wait_for_selector("#flash p.error")
    page.locator("#hl-entries input[type=checkbox]").first.check()
    page.click("#hl-remove")
    flashed(page, "Removed 1 hash(es)")
    wait_until(lambda: page.locator("#hl-entries li").count() == 1)
    assert_labelled(page)
    shot(page, "hashlists")

    page.goto("/console#/admin/keys")
    page.wait_for_selector("#key-create")
    page.select_option("#key-role", "moderator")
    page.fill("#key-name", "New Hire")
    page.click("#key-create")
    page.wait_for_selector("#new-key")
    key = page.text_content("#new-key") or ""
    assert key.startswith("mk_")
    assert page.locator("#key-role option[value='admin']").count() == 0  # tenant admins grant no admin keys
    page.wait_for_selector("#keys-table td:has-text('New Hire')")
    assert_labelled(page)
    shot(page, "keys")
    key_id = console.http.get("/v1/keys", headers=console.admin()).json()
    new_id = next(k["key_id"] for k in key_id if k["name"] == "New Hire" and k["tenant"] == tenant)
    page.click(f"button[data-revoke='{new_id}']")
    page.click(f"button[data-revoke='{new_id}']")  # second click confirms
    flashed(page, "Revoked")
    assert console.http.get("/v1/reviews", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_dashboard_draws_the_series(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    moderator = console.key("moderator", tenant, "Fay")
    ids = [console.submit(platform, f"dashboard item {i}") for i in range(4)]
    console.wait_done(platform, *ids)
    auth = {"Authorization": f"Bearer {moderator}"}
    for item_id, action in zip(ids[:2], ("approve", "remove"), strict=True):
        console.http.post(f"/v1/reviews/{item_id}/claim", json={}, headers=auth)
        assert console.http.post(f"/v1/reviews/{item_id}/decision", json={"action": action},
                                 headers=auth).status_code == 200
    page = new_page()
    sign_in(page, moderator)
    page.goto("/console#/dashboard")
    page.wait_for_selector("#dash-body[data-loaded='true']")
    assert page.evaluate("typeof window.Chart") == "function"
    assert page.text_content("#card-submitted") == "4" and page.text_content("#card-depth") == "2"
    assert page.locator("canvas#c-submissions").count() == 1 and page.locator(".chart").count() >= 7
    assert "Fay" in (page.text_content("figure:has(#c-moderators) table") or "")
    api = console.http.get("/v1/stats/volume", params={"buckets": 1}, headers=auth).json()
    assert api["buckets"][-1]["submitted"]["text"] >= 1
    assert_labelled(page)
    shot(page, "dashboard")
