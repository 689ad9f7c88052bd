"""Owns what the sync and async clients share: configuration, request descriptions, answer parsing, the retry and
polling decisions.

Each public call is described once here as a `Call` (method, path, body, whether it is idempotent, its
Idempotency-Key); what one attempt sends, whether to repeat it and how long to sleep between polls are decided
here too. The two clients only differ in how they send a request and how they sleep (blocking or awaited).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from moderation_client.errors import ModerationClientError, TransportError, WaitTimeout, error_from_response
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

log = logging.getLogger("moderation_client")

__version__ = "0.1.0"
# The longest `?wait=` the service accepts; longer waits continue with client-side polling.
MAX_SERVER_WAIT_S = 10.0
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Extra read time on top of `?wait=`: the server holds the answer that long before it even starts replying.
WAIT_MARGIN_S = 15.0


@dataclass(frozen=True)
class TextInput:
    """One text of a batch, with the optional fields a single submission takes."""

    text: str
    external_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    callback_url: str | None = None
    priority: int | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        for name in ("external_id", "callback_url", "priority"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.metadata is not None:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass
class Call:
    """One logical API call; its attempts all send the same thing, Idempotency-Key included."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    form: dict[str, str] | None = None
    upload: Upload | None = None
    # Safe to repeat after a lost answer: reads, and submissions (the server deduplicates on the key).
    idempotent: bool = False
    idempotency_key: str | None = None
    read_timeout: float | None = None

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}

    def timeout(self, default: httpx.Timeout) -> httpx.Timeout:
        if self.read_timeout is None or (default.read is not None and default.read >= self.read_timeout):
            return default
        return httpx.Timeout(connect=default.connect, read=self.read_timeout, write=default.write, pool=default.pool)


def new_idempotency_key() -> str:
    """A fresh key for one logical call; every retry of that call reuses it."""
    return f"mc-{uuid.uuid4().hex}"


def _path_id(value: str) -> str:
    return quote(value, safe="")


def server_wait(timeout: float) -> float | None:
    """The `?wait=` of a submit-and-wait call: the server holds the answer for at most MAX_SERVER_WAIT_S of it."""
    return min(timeout, MAX_SERVER_WAIT_S) or None


def final_verdict(sub: Submission) -> Moderation | None:
    """The submission's answer when it is already final (the server's `?wait=` sufficed), else None: poll."""
    return sub if isinstance(sub, Moderation) and sub.is_final else None


@contextmanager
def owned_upload(file: UploadSource | AsyncIterable[bytes], filename: str | None) -> Iterator[Upload]:
    """`file` as an `Upload` for one call; one made here is closed afterwards (dropping its spool), while a caller's
    own `Upload` stays open and reusable."""
    upload = Upload.of(file, filename)
    try:
        yield upload
    finally:
        if upload is not file:
            upload.close()


@dataclass
class Poll:
    """The client-side wait for one item: the interval doubles from `interval` up to `max_interval`, and the last
    sleep is cut to end at the deadline (`timeout` seconds after this was made)."""

    item_id: str
    timeout: float
    clock: Callable[[], float]
    interval: float
    max_interval: float
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.timeout

    def next_sleep(self, item: Moderation) -> float | None:
        """None when `item` is final; else how long to sleep before looking again. `WaitTimeout` past the deadline."""
        if item.is_final:
            return None
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise WaitTimeout(self.item_id, item.status, self.timeout)
        sleep = min(self.interval, remaining)
        self.interval = min(self.interval * 2, self.max_interval)
        return sleep


class ClientBase:
    """Settings and call builders shared by `ModerationClient` and `AsyncModerationClient`."""

    def __init__(self, base_url: str, api_key: str, *, retry: RetryPolicy | None = None,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT, user_agent: str | None = None) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=5.0)
        self.default_headers = {"Authorization": f"Bearer {api_key}",
                                "User-Agent": user_agent or f"moderation-client/{__version__}",
                                "Accept": "application/json"}

    # ---- submissions ------------------------------------------------------------------------------------------

    @staticmethod
    def _wait_params(wait: float | None) -> tuple[dict[str, Any] | None, float | None]:
        if not wait:
            return None, None
        return {"wait": wait}, wait + WAIT_MARGIN_S

    def text_call(self, item: TextInput, wait: float | None, idempotency_key: str | None) -> Call:
        params, read_timeout = self._wait_params(wait)
        return Call("POST", "/v1/moderations", params=params, json=item.body(), idempotent=True,
                    idempotency_key=idempotency_key or new_idempotency_key(), read_timeout=read_timeout)

    def batch_call(self, items: Sequence[str | TextInput], idempotency_key: str | None) -> Call:
        body = {"items": [(TextInput(i) if isinstance(i, str) else i).body() for i in items]}
        return Call("POST", "/v1/moderations/batch", json=body, idempotent=True,
                    idempotency_key=idempotency_key or new_idempotency_key())

    def media_call(self, kind: Kind, upload: Upload, *, external_id: str | None, metadata: Mapping[str, Any] | None,
                   callback_url: str | None, priority: int | None, wait: float | None,
                   idempotency_key: str | None) -> Call:
        if kind not in ("image", "video"):
            raise ValueError(f"uploads are images or videos, not {kind!r}")
        form: dict[str, str] = {}
        if external_id is not None:
            form["external_id"] = external_id
        if metadata is not None:
            form["metadata"] = json.dumps(dict(metadata), ensure_ascii=False)
        if callback_url is not None:
            form["callback_url"] = callback_url
        if priority is not None:
            form["priority"] = str(priority)
        params, read_timeout = self._wait_params(wait)
        return Call("POST", f"/v1/moderations/{kind}", params=params, form=form, upload=upload, idempotent=True,
                    idempotency_key=idempotency_key or new_idempotency_key(), read_timeout=read_timeout)

    # ---- reads ------------------------------------------------------------------------------------------------

    @staticmethod
    def get_call(item_id: str) -> Call:
        return Call("GET", f"/v1/moderations/{_path_id(item_id)}", idempotent=True)

    @staticmethod
    def list_call(limit: int, cursor: str | None, external_id: str | None) -> Call:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if external_id is not None:
            params["external_id"] = external_id
        return Call("GET", "/v1/moderations", params=params, idempotent=True)

    # ---- review queue, appeals, webhook secret ----------------------------------------------------------------

    @staticmethod
    def reviews_call(limit: int, cursor: str | None, filters: Mapping[str, Any]) -> Call:
        params: dict[str, Any] = {"limit": limit, **{k: v for k, v in filters.items() if v is not None}}
        if cursor:
            params["cursor"] = cursor
        return Call("GET", "/v1/reviews", params=params, idempotent=True)

    @staticmethod
    def claim_call(item_id: str, lease_s: float | None) -> Call:
        # Claiming again only renews the holder's own lease, so a lost answer may be retried.
        body = {"lease_s": lease_s} if lease_s is not None else {}
        return Call("POST", f"/v1/reviews/{_path_id(item_id)}/claim", json=body, idempotent=True,
                    idempotency_key=new_idempotency_key())

    @staticmethod
    def decision_call(item_id: str, action: ReviewAction, categories: Sequence[str], reason: str) -> Call:
        # Not idempotent on the server: after a lost answer the item is no longer in review, so a repeat would
        # fail confusingly (or, for `escalate`, act twice). Only never-sent requests and 429s are repeated.
        return Call("POST", f"/v1/reviews/{_path_id(item_id)}/decision",
                    json={"action": action, "categories": list(categories), "reason": reason},
                    idempotency_key=new_idempotency_key())

    @staticmethod
    def appeal_call(item_id: str, message: str) -> Call:
        return Call("POST", f"/v1/moderations/{_path_id(item_id)}/appeal", json={"message": message},
                    idempotency_key=new_idempotency_key())

    @staticmethod
    def secret_call(tenant: str, rotate: bool, grace_s: int | None) -> Call:
        path = f"/v1/tenants/{_path_id(tenant)}/webhook-secret"
        if not rotate:
            return Call("GET", path, idempotent=True)
        return Call("POST", path + "/rotate", params={"grace_s": grace_s} if grace_s is not None else None,
                    idempotency_key=new_idempotency_key())

    # ---- attempts -------------------------------------------------------------------------------------------------

    @contextmanager
    def request_args(self, call: Call) -> Iterator[dict[str, Any]]:
        """The keyword arguments of one attempt's `httpx.(Async)Client.request`. An upload is opened at its start
        for this attempt and closed after it, so a retry sends it again from the beginning."""
        with ExitStack() as stack:
            files = None
            if call.upload is not None:
                files = call.upload.multipart(stack.enter_context(call.upload.open()))
            yield {"method": call.method, "url": self.base_url + call.path, "params": call.params, "json": call.json,
                   "data": call.form if files is not None else None, "files": files,
                   "headers": {**self.default_headers, **call.headers()}, "timeout": call.timeout(self.timeout)}

    def delay_after_error(self, call: Call, attempt: int, exc: httpx.TransportError) -> float:
        """Seconds to sleep before repeating a call whose attempt `attempt` failed in transport; raises
        `TransportError` when the failure may not be repeated (or the attempts are used up)."""
        delay = self.retry.delay_after_error(attempt, exc, idempotent=call.idempotent)
        if delay is None:
            raise TransportError(f"{call.method} {call.path} failed after {attempt} attempt(s): "
                                 f"{type(exc).__name__}: {exc}", attempts=attempt) from exc
        log.info("retrying %s %s in %.2fs after %s", call.method, call.path, delay, type(exc).__name__)
        return delay

    def delay_after_answer(self, call: Call, attempt: int, response: httpx.Response) -> float | None:
        """None when `response` is a success (return it); else seconds to sleep before repeating the call. Raises
        the answer as an `APIError` when it may not be repeated (or the attempts are used up)."""
        if response.status_code < 400:
            return None
        error = error_from_response(response)
        delay = self.retry.delay_after_status(attempt, error.status, error.code, error.retry_after,
                                              idempotent=call.idempotent)
        if delay is None:
            raise error
        log.info("retrying %s %s in %.2fs after %s %s", call.method, call.path, delay, error.status, error.code)
        return delay

    # ---- answers ----------------------------------------------------------------------------------------------

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ModerationClientError(
                f"expected JSON from {response.request.method} {response.request.url.path}, "
                f"got {response.headers.get('content-type', 'no content type')}") from exc

    @classmethod
    def parse_submission(cls, response: httpx.Response) -> Submission:
        data = cls._json(response)
        return Moderation.from_json(data) if response.status_code == 200 else Accepted.from_json(data)

    @classmethod
    def parse_batch(cls, response: httpx.Response) -> list[Accepted]:
        return [Accepted.from_json(i) for i in cls._json(response)["items"]]

    @classmethod
    def parse_moderation(cls, response: httpx.Response) -> Moderation:
        return Moderation.from_json(cls._json(response))

    @classmethod
    def parse_page(cls, response: httpx.Response) -> Page[Moderation]:
        data = cls._json(response)
        return Page([Moderation.from_json(i) for i in data["items"]], data.get("next_cursor"))

    @classmethod
    def parse_reviews(cls, response: httpx.Response) -> Page[ReviewItem]:
        data = cls._json(response)
        return Page([ReviewItem.from_json(i) for i in data["items"]], data.get("next_cursor"))

    @classmethod
    def parse_claim(cls, response: httpx.Response) -> Claim:
        data = cls._json(response)
        return Claim(str(data["id"]), str(data["lease_holder"]), float(data["lease_expires_at"]))

    @classmethod
    def parse_decision(cls, response: httpx.Response) -> ReviewItem:
        return ReviewItem.from_json(cls._json(response)["moderation"])

    @classmethod
    def parse_secret(cls, response: httpx.Response) -> WebhookSecret:
        data = cls._json(response)
        expires = data.get("previous_expires_at")
        return WebhookSecret(str(data["tenant"]), str(data["secret"]), float(expires) if expires is not None else None)
