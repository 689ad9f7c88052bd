"""Owns the asyncio client: the same calls, retries and waiting as `ModerationClient`, awaitable.

A mirror of moderation_client/client.py: only the I/O differs (`await`ed requests and sleeps, async upload
spooling). Every request, answer, retry decision and poll interval is decided once, in _base.py (and retry.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
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

AsyncUploadSource = UploadSource | Upload | AsyncIterable[bytes]


class AsyncModerationClient(ClientBase):
    """Non-blocking client for the moderation service (asyncio, httpx.AsyncClient).

    ```python
    async with AsyncModerationClient("https://moderation.internal", api_key) as client:
        verdict = await client.moderate_text("you are an idiot", timeout=30)
    ```
    Uploads also accept an async iterator of chunks (spooled once so retries can resend it).
    """

    def __init__(self, base_url: str, api_key: str, *, retry: RetryPolicy | None = None,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT, user_agent: str | None = None,
                 http_client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(base_url, api_key, retry=retry, timeout=timeout, user_agent=user_agent)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self.timeout)
        self._sleep = sleep
        self._clock = clock

    async def __aenter__(self) -> AsyncModerationClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # ---- transport --------------------------------------------------------------------------------------------

    async def _send(self, call: Call) -> httpx.Response:
        if call.upload is not None and call.upload.needs_async_spool:
            await call.upload.aspool()
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.request_args(call) as args:
                    response = await self._http.request(**args)
            except httpx.TransportError as exc:
                await self._sleep(self.delay_after_error(call, attempt, exc))
                continue
            delay = self.delay_after_answer(call, attempt, response)
            if delay is None:
                return response
            await self._sleep(delay)

    # ---- submissions ------------------------------------------------------------------------------------------

    async def submit_text(self, text: str, *, external_id: str | None = None,
                          metadata: Mapping[str, Any] | None = None, callback_url: str | None = None,
                          priority: int | None = None, wait: float | None = None,
                          idempotency_key: str | None = None) -> Submission:
        """Queue one text; see `ModerationClient.submit_text`."""
        item = TextInput(text, external_id, metadata, callback_url, priority)
        return self.parse_submission(await self._send(self.text_call(item, wait, idempotency_key)))

    async def submit_batch(self, items: Sequence[str | TextInput], *,
                           idempotency_key: str | None = None) -> list[Accepted]:
        """Queue many texts in one call; one id each, in order."""
        return self.parse_batch(await self._send(self.batch_call(items, idempotency_key)))

    async def submit_image(self, file: AsyncUploadSource, *, filename: str | None = None,
                           external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                           callback_url: str | None = None, priority: int | None = None, wait: float | None = None,
                           idempotency_key: str | None = None) -> Submission:
        """Upload an image from a path, bytes, a binary file, chunks or an async iterator of chunks."""
        return await self._submit_media("image", file, filename, external_id, metadata, callback_url, priority,
                                        wait, idempotency_key)

    async def submit_video(self, file: AsyncUploadSource, *, filename: str | None = None,
                           external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                           callback_url: str | None = None, priority: int | None = None, wait: float | None = None,
                           idempotency_key: str | None = None) -> Submission:
        """Upload a video (sources as for `submit_image`)."""
        return await self._submit_media("video", file, filename, external_id, metadata, callback_url, priority,
                                        wait, idempotency_key)

    async def _submit_media(self, kind: Kind, file: AsyncUploadSource, filename: str | None,
                            external_id: str | None, metadata: Mapping[str, Any] | None, callback_url: str | None,
                            priority: int | None, wait: float | None, idempotency_key: str | None) -> Submission:
        with owned_upload(file, filename) as upload:
            call = self.media_call(kind, upload, external_id=external_id, metadata=metadata,
                                   callback_url=callback_url, priority=priority, wait=wait,
                                   idempotency_key=idempotency_key)
            return self.parse_submission(await self._send(call))

    # ---- submit and wait --------------------------------------------------------------------------------------

    async def moderate_text(self, text: str, *, timeout: float = 30.0, external_id: str | None = None,
                            metadata: Mapping[str, Any] | None = None, callback_url: str | None = None,
                            priority: int | None = None, idempotency_key: str | None = None) -> Moderation:
        """Submit and return the final item (server wait up to 10 s, then polling until `timeout`)."""
        start = self._clock()
        sub = await self.submit_text(text, external_id=external_id, metadata=metadata, callback_url=callback_url,
                                     priority=priority, wait=server_wait(timeout),
                                     idempotency_key=idempotency_key)
        return await self._finish(sub, timeout - (self._clock() - start))

    async def moderate_image(self, file: AsyncUploadSource, *, timeout: float = 60.0, filename: str | None = None,
                             external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                             callback_url: str | None = None, priority: int | None = None,
                             idempotency_key: str | None = None) -> Moderation:
        """`submit_image`, then wait for the final item."""
        return await self._moderate_media("image", file, timeout, filename, external_id, metadata, callback_url,
                                          priority, idempotency_key)

    async def moderate_video(self, file: AsyncUploadSource, *, timeout: float = 300.0, filename: str | None = None,
                             external_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                             callback_url: str | None = None, priority: int | None = None,
                             idempotency_key: str | None = None) -> Moderation:
        """`submit_video`, then wait for the final item."""
        return await self._moderate_media("video", file, timeout, filename, external_id, metadata, callback_url,
                                          priority, idempotency_key)

    async def _moderate_media(self, kind: Kind, file: AsyncUploadSource, timeout: float, filename: str | None,
                              external_id: str | None, metadata: Mapping[str, Any] | None, callback_url: str | None,
                              priority: int | None, idempotency_key: str | None) -> Moderation:
        start = self._clock()
        sub = await self._submit_media(kind, file, filename, external_id, metadata, callback_url, priority,
                                       server_wait(timeout), idempotency_key)
        return await self._finish(sub, timeout - (self._clock() - start))

    async def _finish(self, sub: Submission, remaining: float) -> Moderation:
        done = final_verdict(sub)
        return done if done is not None else await self.wait(sub.id, max(0.0, remaining))

    async def wait(self, item_id: str, timeout: float = 60.0, *, poll_interval: float = 0.25,
                   max_poll_interval: float = 2.0) -> Moderation:
        """Poll until the item is final or `timeout` seconds pass (then `WaitTimeout`)."""
        poll = Poll(item_id, timeout, self._clock, poll_interval, max_poll_interval)
        while True:
            item = await self.get(item_id)
            delay = poll.next_sleep(item)
            if delay is None:
                return item
            await self._sleep(delay)

    # ---- reads ------------------------------------------------------------------------------------------------

    async def get(self, item_id: str) -> Moderation:
        """The item's status and, once done, its verdict."""
        return self.parse_moderation(await self._send(self.get_call(item_id)))

    async def list_moderations(self, *, limit: int = 50, cursor: str | None = None) -> Page[Moderation]:
        """One page of the tenant's moderations, newest first."""
        return self.parse_page(await self._send(self.list_call(limit, cursor, None)))

    async def iter_moderations(self, *, page_size: int = 100) -> AsyncIterator[Moderation]:
        """Every moderation of the tenant, newest first, following cursors lazily."""
        cursor: str | None = None
        while True:
            page = await self.list_moderations(limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def find(self, external_id: str, *, limit: int = 50) -> list[Moderation]:
        """The moderations submitted with this `external_id`."""
        return self.parse_page(await self._send(self.list_call(limit, None, external_id))).items

    # ---- review queue, appeals, webhook secret ----------------------------------------------------------------

    async def list_reviews(self, *, limit: int = 50, cursor: str | None = None, category: str | None = None,
                           kind: Kind | None = None, status: str | None = None, min_age_s: float | None = None,
                           max_age_s: float | None = None) -> Page[ReviewItem]:
        """The review queue in priority order (moderator or admin key)."""
        filters = {"category": category, "kind": kind, "status": status, "min_age_s": min_age_s,
                   "max_age_s": max_age_s}
        return self.parse_reviews(await self._send(self.reviews_call(limit, cursor, filters)))

    async def claim(self, item_id: str, *, lease_s: float | None = None) -> Claim:
        """Take (or renew) the lease on a review item."""
        return self.parse_claim(await self._send(self.claim_call(item_id, lease_s)))

    async def decide(self, item_id: str, action: ReviewAction, *, categories: Sequence[str] = (),
                     reason: str = "") -> ReviewItem:
        """Approve, remove or escalate a claimed item (lease holder only)."""
        return self.parse_decision(await self._send(self.decision_call(item_id, action, categories, reason)))

    async def appeal(self, item_id: str, message: str) -> None:
        """Send a finished item back to human review as an appeal."""
        await self._send(self.appeal_call(item_id, message))

    async def webhook_secret(self, tenant: str) -> WebhookSecret:
        """The tenant's current webhook signing secret."""
        return self.parse_secret(await self._send(self.secret_call(tenant, False, None)))

    async def rotate_webhook_secret(self, tenant: str, *, grace_s: int | None = None) -> WebhookSecret:
        """New signing secret; the previous one keeps signing for `grace_s`."""
        return self.parse_secret(await self._send(self.secret_call(tenant, True, grace_s)))
