"""The blocking client against the running stack (real gateway over loopback HTTP, real worker process)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from moderation_client import (
    Accepted,
    AuthenticationError,
    ConflictError,
    IdempotencyConflictError,
    Moderation,
    ModerationClient,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    UnsupportedMediaError,
    ValidationError,
    WaitTimeout,
)
from service.store.items import ItemStore
from tests.client.media import OneShotStream, jpeg, sha256
from tests.client.support import Fault, RecordingSleep, fault_proxy
from tests.conftest import Stack


@pytest.fixture()
def client(gateway_url: str, platform: tuple[str, str]) -> Iterator[ModerationClient]:
    with ModerationClient(gateway_url, platform[0]) as c:
        yield c


def stored(stack: Stack, item_id: str) -> dict:
    item = ItemStore(redis.Redis.from_url(stack.url, decode_responses=True)).get(item_id)
    assert item is not None
    return dict(item)


def test_submit_then_wait_and_read_back(client: ModerationClient) -> None:
    sub = client.submit_text("what a lovely day", external_id="comment-1", metadata={"lang": "en"}, wait=10)
    assert isinstance(sub, Moderation | Accepted)
    item = client.wait(sub.id, timeout=120)
    assert item.id == sub.id and item.status == "done" and item.kind == "text"
    assert item.decision in ("allow", "review", "block")
    assert item.scores and all(0.0 <= s <= 1.0 for s in item.scores.values())
    assert item.models and item.models[0].name and item.policy_version
    assert item.external_id == "comment-1" and item.metadata == {"lang": "en"}
    assert item.raw["id"] == item.id and item.completed_at is not None
    assert client.get(sub.id) == item  # the GET answers the same document the wait returned
    assert [m.id for m in client.find("comment-1")] == [sub.id]


def test_moderate_text_returns_final_item(client: ModerationClient) -> None:
    item = client.moderate_text("you are an idiot", timeout=120, external_id="comment-2")
    assert item.is_final and item.status == "done" and item.external_id == "comment-2"


def test_listing_pages_newest_first(client: ModerationClient) -> None:
    ids = [client.submit_text(f"text number {i}").id for i in range(3)]
    first = client.list_moderations(limit=2)
    assert [m.id for m in first.items] == ids[::-1][:2] and first.next_cursor
    assert [m.id for m in client.iter_moderations(page_size=2)] == ids[::-1]


def test_wait_polls_with_backoff_until_the_deadline(gateway_url: str, platform: tuple[str, str]) -> None:
    # No media worker runs in this session's stack, so an uploaded image stays queued: a deadline must end the
    # wait. The injected clock advances only when the client sleeps, so the schedule is exact, not timed.
    now = [0.0]

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    delays: list[float] = []
    with ModerationClient(gateway_url, platform[0], sleep=sleep, clock=lambda: now[0]) as client:
        sub = client.submit_image(jpeg(1))
        assert isinstance(sub, Accepted) and sub.status == "queued"
        with pytest.raises(WaitTimeout) as exc:
            client.wait(sub.id, timeout=5, poll_interval=0.25, max_poll_interval=2)
    assert exc.value.item_id == sub.id and exc.value.last_status == "queued"
    assert delays == [0.25, 0.5, 1.0, 2.0, 1.25]  # doubling, capped at 2, the last cut to end at the deadline


def test_errors_are_typed_with_stable_codes(gateway_url: str, client: ModerationClient) -> None:
    with ModerationClient(gateway_url, "not-a-key") as anonymous, pytest.raises(AuthenticationError) as auth:
        anonymous.get("mod_x")
    assert (auth.value.status, auth.value.code) == (401, "invalid_api_key")
    with pytest.raises(NotFoundError) as missing:
        client.get("mod_doesnotexist")
    assert (missing.value.status, missing.value.code) == (404, "moderation_not_found")
    with pytest.raises(ValidationError) as empty:
        client.submit_text("")
    assert (empty.value.status, empty.value.code) == (422, "empty_text")
    with pytest.raises(ValidationError) as too_long_wait:
        client.submit_text("hi", wait=11)
    assert too_long_wait.value.code == "validation_error" and too_long_wait.value.details["errors"]
    with pytest.raises(UnsupportedMediaError) as kind:
        client.submit_video(jpeg(2))
    assert (kind.value.status, kind.value.code) == (415, "wrong_media_kind")
    with pytest.raises(PermissionDeniedError) as role:
        client.list_reviews()
    assert role.value.code == "forbidden_role"


def test_idempotency_conflict_is_not_retried(gateway_url: str, platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    with ModerationClient(gateway_url, platform[0], sleep=sleep) as client:
        first = client.submit_text("one body", idempotency_key="order-77")
        again = client.submit_text("one body", idempotency_key="order-77")
        assert again.id == first.id  # same key, same body: the first item, not a new one
        with pytest.raises(IdempotencyConflictError) as exc:
            client.submit_text("another body", idempotency_key="order-77")
    assert isinstance(exc.value, ConflictError) and exc.value.code == "idempotency_conflict"
    assert exc.value.details["ids"] == [first.id] and sleep.delays == []


@pytest.mark.parametrize("source", ["path", "bytes", "file_at_offset", "chunks"])
def test_image_upload_sources(source: str, client: ModerationClient, stack: Stack, tmp_path: Path) -> None:
    data = jpeg(3)
    if source == "path":
        (tmp_path / "photo.jpg").write_bytes(data)
        sub = client.submit_image(tmp_path / "photo.jpg", external_id="img-path")
    elif source == "bytes":
        sub = client.submit_image(data, filename="photo.jpg")
    elif source == "file_at_offset":  # a caller's file positioned after a header it already consumed
        fh = io.BytesIO(b"HEADER" + data)
        fh.read(6)
        sub = client.submit_image(fh, filename="photo.jpg")
        assert not fh.closed  # the caller's file stays the caller's
    else:
        sub = client.submit_image(iter([data[:100], data[100:]]), filename="photo.jpg")
    assert isinstance(sub, Accepted)
    item = stored(stack, sub.id)
    assert item["kind"] == "image" and item["content_hash"] == sha256(data) and int(item["size"]) == len(data)
    assert Path(stack.settings.blob_dir, item["blob_key"]).read_bytes() == data


def test_one_shot_stream_is_resent_whole_on_retry(gateway_url: str, platform: tuple[str, str],
                                                   stack: Stack) -> None:
    # The proxy drops the first upload before the gateway sees it; the retry must send every byte again although
    # the caller's stream cannot be rewound (the client spooled it).
    data = jpeg(4, size=96)
    stream = OneShotStream(data)
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [Fault("drop")]) as proxy, \
            ModerationClient(proxy.url, platform[0], sleep=sleep) as client:
        sub = client.submit_image(stream, filename="clip.jpg", external_id="streamed")
    assert len(proxy.seen) == 2 and len(sleep.delays) == 1
    assert all(data in s.body for s in proxy.seen)  # (the multipart boundary differs per attempt)
    keys = {s.headers["idempotency-key"] for s in proxy.seen}
    assert len(keys) == 1 and keys.pop().startswith("mc-")
    item = stored(stack, sub.id)
    assert item["content_hash"] == sha256(data)


def test_review_queue_claim_decide_and_appeal(gateway_url: str, review_tenant: tuple[str, str, str]) -> None:
    platform_key, moderator_key, _ = review_tenant
    with ModerationClient(gateway_url, platform_key) as platform, \
            ModerationClient(gateway_url, moderator_key) as moderator:
        item = platform.moderate_text("please review me", timeout=120)
        assert item.decision == "review"
        queue = moderator.list_reviews()
        assert [r.moderation.id for r in queue.items] == [item.id]
        assert queue.items[0].content == "please review me" and queue.items[0].review_status == "pending"
        claim = moderator.claim(item.id, lease_s=60)
        assert claim.id == item.id and claim.lease_holder
        decided = moderator.decide(item.id, "remove", categories=["insult"], reason="targeted insult")
        assert decided.moderation.decision == "block" and decided.moderation.source == "human"
        with pytest.raises(ConflictError) as twice:
            moderator.claim(item.id)
        assert twice.value.code == "not_in_review"
        platform.appeal(item.id, "this was a quote")
        assert platform.get(item.id).review_status == "pending"
        assert [r.moderation.id for r in moderator.list_reviews().items] == [item.id]


def test_retry_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_readme_snippet_runs(gateway_url: str, platform: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The README's Python client block, pointed at this stack (its URL and a fresh platform key)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    snippet = next(b for b in blocks if "from moderation_client import ModerationClient" in b)
    assert "http://127.0.0.1:8000" in snippet and "dev-platform-key" in snippet
    code = snippet.replace("http://127.0.0.1:8000", gateway_url).replace("dev-platform-key", platform[0])
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README
    status, decision, _ = capsys.readouterr().out.split(" ", 2)
    assert status == "done" and decision in ("allow", "review", "block")
