"""Browser flows of the review console against the real stack: sign in, claim and decide text, image and video
items by keyboard, two moderators racing for one item, a lease expiring mid-review, and an appeal decided by a
second moderator while the first one is kept out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.console.conftest import Console, assert_labelled, jpeg, long_text, shot, sign_in, wait_until, webm
from training.vision.fetch import DATA_DIR, fetch_data


def flashed(page: Any, text: str) -> str:
    """Wait for a flash message containing `text` (case-insensitive) and return it."""
    page.wait_for_selector(f"#flash p:has-text({text!r})")
    return str(page.text_content("#flash p") or "")


def test_claim_and_decide_text_image_video(console: Console, new_page: Any, tmp_path: Path) -> None:
    fetch_data(DATA_DIR)
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    moderator = console.key("moderator", tenant, "Alice Moderator")
    text_id = console.submit(platform, long_text(), priority=90, metadata={"lang": "en", "channel": "comments"})
    image_id = console.upload(platform, "image", "photo.jpg", jpeg(DATA_DIR), priority="50")
    video_id = console.upload(platform, "video", "clip.webm", webm(tmp_path / "clip.webm"), priority="10")
    text, image, video = console.wait_done(platform, text_id, image_id, video_id)
    assert text["decision"] == image["decision"] == video["decision"] == "review"
    assert text["explanation"]["top_sentences"], "the long text must be explained sentence by sentence"

    page = new_page()
    sign_in(page, moderator)
    page.wait_for_selector("#queue-list li[data-id]")
    assert page.text_content("#count-review") == "3"
    ids = page.eval_on_selector_all("#queue-list li[data-id]", "els => els.map(e => e.dataset.id)")
    assert ids == [text_id, image_id, video_id]  # priority order
    page.keyboard.press("j")
    assert page.get_attribute(f"li[data-id='{image_id}']", "aria-selected") == "true"
    page.keyboard.press("k")
    assert_labelled(page)
    shot(page, "queue")

    # Text: claim next from the queue by keyboard, offending sentences highlighted, remove with a template.
    page.keyboard.press("c")
    page.wait_for_selector("#lease-countdown")
    assert text_id in page.url
    assert page.locator("mark.offending").count() >= 1
    assert "comments" in (page.text_content("#metadata") or "")
    page.select_option("#template", index=1)
    assert_labelled(page)
    shot(page, "item-text")
    page.locator("body").press("r")  # focus is off the form controls, so the shortcut applies
    flashed(page, "Removed")
    page.wait_for_selector("#queue-list li[data-id]")

    # Image: blurred by default, revealed on demand, approved.
    page.keyboard.press("c")
    page.wait_for_selector("#media-image")
    assert "blurred" in (page.get_attribute("#media-image", "class") or "")
    shot(page, "item-image-blurred")
    page.click("#reveal")
    assert "blurred" not in (page.get_attribute("#media-image", "class") or "")
    page.wait_for_function("document.querySelector('#media-image').naturalWidth > 0")
    page.keyboard.press("v")
    assert "blurred" in (page.get_attribute("#media-image", "class") or "")
    page.wait_for_selector("#lease-countdown")
    page.keyboard.press("a")
    flashed(page, "Approved")
    page.wait_for_selector(f"#queue-list li[data-id='{video_id}']")

    # Video: a timeline of flagged segments and thumbnails drawn from the video; escalate, then remove.
    page.keyboard.press("c")
    page.wait_for_selector(".timeline rect.seg")
    page.wait_for_selector("#thumbs[data-ready='true']")
    assert page.locator("#thumbs canvas[data-drawn='true']").count() >= 1
    page.click("#reveal")
    assert_labelled(page)
    shot(page, "item-video")
    page.keyboard.press("e")
    flashed(page, "Escalated")
    page.wait_for_selector(f"#queue-list li[data-id='{video_id}']")
    page.keyboard.press("c")
    page.wait_for_selector("#lease-countdown")
    page.keyboard.press("r")
    flashed(page, "Removed")

    decided = {i: console.item(platform, i) for i in (text_id, image_id, video_id)}
    assert [decided[i]["decision"] for i in (text_id, image_id, video_id)] == ["block", "allow", "block"]
    assert all(d["source"] == "human" and d["human"]["name"] == "Alice Moderator" for d in decided.values())
    assert decided[text_id]["human"]["reason"]  # from the reason template
    # The console's decisions feed the same statistics as the API's.
    stats = console.http.get("/v1/stats/review", params={"resolution": "day", "buckets": 1},
                             headers={"Authorization": f"Bearer {moderator}"}).json()
    [per_action] = stats["totals"]["decisions_per_moderator"].values()
    assert per_action == {"approve": 1, "remove": 2, "escalate": 1}


def test_two_moderators_race_for_one_item(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    ann, bob = console.key("moderator", tenant, "Ann"), console.key("moderator", tenant, "Bob")
    item_id = console.submit(platform, "see you after the show")
    console.wait_done(platform, item_id)
    pages = [new_page(), new_page()]
    for page, key in zip(pages, (ann, bob), strict=True):
        sign_in(page, key)
        page.goto(f"/console#/item/{item_id}")
        page.wait_for_selector("#claim")
    pages[0].click("#claim", no_wait_after=True)
    pages[1].click("#claim", no_wait_after=True)
    holders = []
    for page in pages:
        wait_until(lambda p=page: p.locator("#lease-countdown").count() or p.locator("#lease-other").count())
        holders.append(page.locator("#lease-countdown").count() == 1)
    assert sorted(holders) == [False, True], "exactly one moderator wins the lease"
    loser = pages[holders.index(False)]
    winner_name = "Ann" if holders[0] else "Bob"
    flashed(loser, f"{winner_name} is already reviewing this item")
    assert winner_name in (loser.text_content("#lease-other") or "")
    assert loser.is_disabled("#approve")
    shot(loser, "race-lost")


def test_lease_expiring_mid_review_is_refused_cleanly(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    moderator = console.key("moderator", tenant, "Cleo")
    item_id = console.submit(platform, "a comment to look at")
    console.wait_done(platform, item_id)
    page = new_page()
    sign_in(page, moderator)
    page.goto(f"/console#/item/{item_id}")
    page.click("#claim")
    page.wait_for_selector("#lease-countdown")
    # The lease runs out while the moderator is still reading: the countdown reaches zero and the form locks.
    console.expire_lease(tenant, item_id, time.time() + 2)
    page.wait_for_selector("#lease-expired", timeout=12_000)
    assert page.is_disabled("#remove")
    shot(page, "lease-expired")
    # Deciding anyway is refused, and nothing was written.
    page.keyboard.press("r")
    flashed(page, "lease expired")
    item = console.item(platform, item_id)
    assert item["source"] == "model" and item["review_status"] == "pending" and item["human"] is None
    # Re-claim and decide: the server also refuses a decision on a lease that expired behind the page's back.
    page.click("#claim")
    page.wait_for_selector("#lease-countdown")
    console.expire_lease(tenant, item_id, time.time() - 1)
    page.evaluate("document.getElementById('remove').disabled = false")
    page.click("#remove")
    flashed(page, "lease expired")
    page.wait_for_selector("#lease-expired")
    assert console.item(platform, item_id)["human"] is None


def test_appeal_needs_a_second_moderator(console: Console, new_page: Any) -> None:
    tenant = console.tenant()
    platform = console.key("platform", tenant, "platform")
    first, second = console.key("moderator", tenant, "Dana"), console.key("moderator", tenant, "Eli")
    item_id = console.submit(platform, "this is a quote from the film")
    console.wait_done(platform, item_id)
    auth = {"Authorization": f"Bearer {first}"}
    assert console.http.post(f"/v1/reviews/{item_id}/claim", json={}, headers=auth).status_code == 200
    assert console.http.post(f"/v1/reviews/{item_id}/decision", json={"action": "remove", "reason": "insult"},
                             headers=auth).status_code == 200
    resp = console.http.post(f"/v1/moderations/{item_id}/appeal", json={"message": "it is a film quote"},
                             headers={"Authorization": f"Bearer {platform}"})
    assert resp.status_code == 202, resp.text

    page = new_page()
    sign_in(page, first)
    page.goto("/console#/appeals")
    page.wait_for_selector(f"#queue-list li[data-id='{item_id}']")
    assert "you decided this" in (page.text_content(f"li[data-id='{item_id}']") or "")
    page.goto(f"/console#/item/{item_id}")
    page.wait_for_selector("#appeal-excluded")
    assert page.locator("#claim").count() == 0
    page.goto("/console#/appeals")
    page.wait_for_selector(f"#queue-list li[data-id='{item_id}']")
    page.keyboard.press("c")  # claim next skips what this moderator may not decide
    flashed(page, "Nothing left to claim")

    other = new_page()
    sign_in(other, second)
    other.goto("/console#/appeals")
    other.wait_for_selector(f"#queue-list li[data-id='{item_id}']")
    other.keyboard.press("c")
    other.wait_for_selector("#lease-countdown")
    banner = other.text_content("#appeal-banner") or ""
    assert "it is a film quote" in banner and "block" in banner and "Dana" in banner
    shot(other, "appeal")
    other.keyboard.press("a")
    flashed(other, "Approved")
    item = console.item(platform, item_id)
    assert item["decision"] == "allow" and item["human"]["name"] == "Eli" and item["human"]["appeal"] is True
