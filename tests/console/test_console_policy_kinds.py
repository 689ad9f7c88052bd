"""The policy editor's per-kind sections: an image-only threshold is added, previewed as a `kinds.image` change and
saved; saving a later change from the editor keeps it (the editor posts the whole override, kinds included)."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import Console, assert_labelled, shot, sign_in
from tests.support.workers import poll


def test_per_kind_thresholds_are_edited_and_kept(console: Console, new_page: Any) -> None:
    tenant = console.tenant(policy={})
    admin = console.key("admin", tenant, "Kinds Admin")
    page = new_page()
    sign_in(page, admin)
    page.goto("/console#/admin/policy")
    page.wait_for_selector("#policy-new-image option[value='violence']", state="attached")
    page.select_option("#policy-new-image", "violence")
    page.click("button:has-text('Add image category')")
    page.fill("input[aria-label='image violence review threshold']", "0.2")
    page.fill("input[aria-label='image violence block threshold']", "0.3")
    # A number the server refuses is reported with the kind's path.
    page.fill("input[aria-label='image violence block threshold']", "0.1")
    page.click("#policy-preview")
    page.wait_for_selector("#policy-errors")
    assert "kinds.image.categories.violence" in (page.text_content("#policy-errors") or "")
    page.fill("input[aria-label='image violence block threshold']", "0.3")
    page.click("#policy-preview")
    page.wait_for_selector("#policy-diff")
    assert "kinds.image.categories.violence.review" in (page.text_content("#policy-diff") or "")
    assert_labelled(page)
    shot(page, "policy-kinds")
    def policy() -> dict[str, Any]:
        return dict(console.http.get(f"/v1/policies/{tenant}", headers=console.admin()).json())

    def save(version: int) -> dict[str, Any]:
        page.click("#policy-save")
        return dict(poll(lambda: (lambda p: p if p["tenant_version"] == version else None)(policy()), 15, 0.05))

    first = policy()["tenant_version"]
    saved = save(first + 1)
    assert saved["override"]["kinds"] == {"image": {"categories": {"violence": {"review": 0.2, "block": 0.3}}}}
    assert saved["resolved"]["image"]["categories"]["violence"] == {"review": 0.2, "block": 0.3}
    assert saved["resolved"]["video"]["categories"]["violence"] != {"review": 0.2, "block": 0.3}
    # A later edit of the shared thresholds keeps the image section (the editor reloaded it after saving).
    page.wait_for_selector("input[aria-label='image violence review threshold']")
    page.fill("#policy-terms", "kept kinds")
    page.click("#policy-preview")
    page.wait_for_selector("#policy-save")
    later = save(first + 2)
    assert "kept kinds" in later["blocklist_terms"]
    assert later["override"]["kinds"] == saved["override"]["kinds"]
    # Removing the row and saving drops the section.
    page.wait_for_selector("button[aria-label='remove image violence']")
    page.click("button[aria-label='remove image violence']")
    page.click("#policy-preview")
    page.wait_for_selector("#policy-diff")
    assert "kinds.image.categories.violence.block" in (page.text_content("#policy-diff") or "")
    assert save(first + 3)["override"]["kinds"] == {}
