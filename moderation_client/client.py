"""Owns the synchronous client: every public call, its retry loop and client-side waiting.

Only the I/O lives here (blocking requests and sleeps); what each call sends, how answers parse, whether to retry
and how long to poll are decided in _base.py, shared with the async client in aio.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from moderation_client._base import (
    DEFAULT_TIMEOUT,
    Call,
    ClientBase,
    Poll,
    TextInput,
    final_verdict,
    owned_upload,
    server_wait,
)
from moderation_client.retry import RetryPolicy
from moderation_client.types import (
    Accepted,
    Claim,
    Kind,
    Moderation,
    Page,
    ReviewAction,
    ReviewItem,
    Submission,
    WebhookSecret,
)
from moderation_client.uploads import Upload, UploadSource


class ModerationClient(ClientBase):
    """Blocking client for the moderation service.

    ```python
    with ModerationClient("https://moderation.internal", api_key) as client:
        verdict = client.moderate_text("you are an idiot", external_id="comment-123", timeout=30)
        verdict.decision, verdict.flagged
    ```
    `sleep` and `clock` are injectable so tests can observe waits (e.g. a honoured `Retry-After`) without
    spending them; `http_client` lets a caller bring its own `httpx.Client` (proxies, TLS), which it then owns.
    """

    def __init__(self, base_url: str, api_key: str, *, retry: RetryPolicy | None = None,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT, user_agent: str | None = None,
                 http_client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(base_url, api_key, retry=retry, timeout=timeout, user_agent=user_agent)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=self.timeout)
        self._sleep = sleep
        self._clock = clock

    def __enter__(self) -> ModerationClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # ---- transport --------------------------------------------------------------------------------------------

    def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.request_args(call) as args:
                    response = self._http.request(**args)
            except httpx.TransportError as exc:
                self._sleep(self.delay_after_error(call, attempt, exc))
                continue
            delay = self.delay_after_answer(call, attempt, response)
            if delay is None:
                return response
            self._sleep(delay)

    # ---- submissions ------------------------------------------------------------------------------------------

    def submit_text(self, text: str, *, external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                    callback_url: str | None = None, priority: int | None = None, wait: float | None = None,
                    idempotency_key: str | None = None) -> Submission:
        """Queue one text. With `wait` (≤ 10 s) the server holds the answer until the verdict: a `Moderation`
        when it was final in time, else `Accepted` (poll it with `wait()`; never submit it again)."""
        item = TextInput(text, external_id, metadata, callback_url, priority)
        return self.parse_submission(self._send(self.text_call(item, wait, idempotency_key)))

    def submit_batch(self, items: Sequence[str | TextInput], *, idempotency_key: str | None = None) -> list[Accepted]:
        """Queue up to the server's batch limit (256 by default) of texts; one id each, in order."""
        return self.parse_batch(self._send(self.batch_call(items, idempotency_key)))

    def submit_image(self, file: UploadSource | Upload, *, filename: str | None = None,
                     external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                     callback_url: str | None = None, priority: int | None = None, wait: float | None = None,
                     idempotency_key: str | None = None) -> Submission:
        """Upload an image from a path, bytes, a binary file (rewound on retry) or a stream of chunks."""
        return self._submit_media("image", file, filename, external_id, metadata, callback_url, priority, wait,
                                  idempotency_key)

    def submit_video(self, file: UploadSource | Upload, *, filename: str | None = None,
                     external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                     callback_url: str | None = None, priority: int | None = None, wait: float | None = None,
                     idempotency_key: str | None = None) -> Submission:
        """Upload a video (sources as for `submit_image`)."""
        return self._submit_media("video", file, filename, external_id, metadata, callback_url, priority, wait,
                                  idempotency_key)

    def _submit_media(self, kind: Kind, file: UploadSource | Upload, filename: str | None, external_id: str | None,
                      metadata: Mapping[str, Any] | None, callback_url: str | None, priority: int | None,
                      wait: float | None, idempotency_key: str | None) -> Submission:
        with owned_upload(file, filename) as upload:
            call = self.media_call(kind, upload, external_id=external_id, metadata=metadata,
                                   callback_url=callback_url, priority=priority, wait=wait,
                                   idempotency_key=idempotency_key)
            return self.parse_submission(self._send(call))

    # ---- submit and wait --------------------------------------------------------------------------------------

    def moderate_text(self, text: str, *, timeout: float = 30.0, external_id: str | None = None,
                      metadata: Mapping[str, Any] | None = None, callback_url: str | None = None,
                      priority: int | None = None, idempotency_key: str | None = None) -> Moderation:
        """Submit and return the final item: the server waits up to 10 s, then the client polls until `timeout`.
        Raises `WaitTimeout` (with the item id) when the deadline passes first."""
        start = self._clock()
        sub = self.submit_text(text, external_id=external_id, metadata=metadata, callback_url=callback_url,
                               priority=priority, wait=server_wait(timeout),
                               idempotency_key=idempotency_key)
        return self._finish(sub, timeout - (self._clock() - start))

    def moderate_image(self, file: UploadSource | Upload, *, timeout: float = 60.0, filename: str | None = None,
                       external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                       callback_url: str | None = None, priority: int | None = None,
                       idempotency_key: str | None = None) -> Moderation:
        """`submit_image`, then wait for the final item as `moderate_text` does."""
        return self._moderate_media("image", file, timeout, filename, external_id, metadata, callback_url,
                                    priority, idempotency_key)

    def moderate_video(self, file: UploadSource | Upload, *, timeout: float = 300.0, filename: str | None = None,
                       external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                       callback_url: str | None = None, priority: int | None = None,
                       idempotency_key: str | None = None) -> Moderation:
        """`submit_video`, then wait for the final item as `moderate_text` does."""
        return self._moderate_media("video", file, timeout, filename, external_id, metadata, callback_url,
                                    priority, idempotency_key)

    def _moderate_media(self, kind: Kind, file: UploadSource | Upload, timeout: float, filename: str | None,
                        external_id: str | None, metadata: Mapping[str, Any] | None, callback_url: str | None,
                        priority: int | None, idempotency_key: str | None) -> Moderation:
        start = self._clock()
        sub = self._submit_media(kind, file, filename, external_id, metadata, callback_url, priority,
                                 server_wait(timeout), idempotency_key)
        return self._finish(sub, timeout - (self._clock() - start))

    def _finish(self, sub: Submission, remaining: float) -> Moderation:
        done = final_verdict(sub)
        return done if done is not None else self.wait(sub.id, max(0.0, remaining))

    def wait(self, item_id: str, timeout: float = 60.0, *, poll_interval: float = 0.25,
             max_poll_interval: float = 2.0) -> Moderation:
        """Poll until the item is final or `timeout` seconds pass (then `WaitTimeout`); the interval doubles
        from `poll_interval` up to `max_poll_interval`, and the last sleep is cut to end at the deadline."""
        poll = Poll(item_id, timeout, self._clock, poll_interval, max_poll_interval)
        while True:
            item = self.get(item_id)
            delay = poll.next_sleep(item)
            if delay is None:
                return item
            self._sleep(delay)

    # ---- reads ------------------------------------------------------------------------------------------------

    def get(self, item_id: str) -> Moderation:
        """The item's status and, once done, its verdict. `NotFoundError` for unknown (or other tenants') ids."""
        return self.parse_moderation(self._send(self.get_call(item_id)))

    def list_moderations(self, *, limit: int = 50, cursor: str | None = None) -> Page[Moderation]:
        """One page of the tenant's moderations, newest first."""
        return self.parse_page(self._send(self.list_call(limit, cursor, None)))

    def iter_moderations(self, *, page_size: int = 100) -> Iterator[Moderation]:
        """Every moderation of the tenant, newest first, following cursors lazily."""
        cursor: str | None = None
        while True:
            page = self.list_moderations(limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def find(self, external_id: str, *, limit: int = 50) -> list[Moderation]:
        """The moderations submitted with this `external_id`."""
        return self.parse_page(self._send(self.list_call(limit, None, external_id))).items

    # ---- review queue, appeals, webhook secret ----------------------------------------------------------------

    def list_reviews(self, *, limit: int = 50, cursor: str | None = None, category: str | None = None,
                     kind: Kind | None = None, status: str | None = None, min_age_s: float | None = None,
                     max_age_s: float | None = None) -> Page[ReviewItem]:
        """The review queue in priority order (moderator or admin key)."""
        filters = {"category": category, "kind": kind, "status": status, "min_age_s": min_age_s,
                   "max_age_s": max_age_s}
        return self.parse_reviews(self._send(self.reviews_call(limit, cursor, filters)))

    def claim(self, item_id: str, *, lease_s: float | None = None) -> Claim:
        """Take (or renew) the lease on a review item; `ConflictError` `already_claimed` if someone else holds it."""
        return self.parse_claim(self._send(self.claim_call(item_id, lease_s)))

    def decide(self, item_id: str, action: ReviewAction, *, categories: Sequence[str] = (),
               reason: str = "") -> ReviewItem:
        """Approve, remove or escalate a claimed item (lease holder only)."""
        return self.parse_decision(self._send(self.decision_call(item_id, action, categories, reason)))

    def appeal(self, item_id: str, message: str) -> None:
        """Send a finished item back to human review as an appeal."""
        self._send(self.appeal_call(item_id, message))

    def webhook_secret(self, tenant: str) -> WebhookSecret:
        """The tenant's current webhook signing secret (created on first request)."""
        return self.parse_secret(self._send(self.secret_call(tenant, False, None)))

    def rotate_webhook_secret(self, tenant: str, *, grace_s: int | None = None) -> WebhookSecret:
        """New signing secret; the previous one keeps signing for `grace_s` (server default 24 h)."""
        return self.parse_secret(self._send(self.secret_call(tenant, True, grace_s)))
