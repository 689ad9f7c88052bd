"""Owns the OpenAI moderation wire format: request parsing, our categories mapped onto theirs, the result shape.

Pure Python (no web framework, no models): the gateway route (service.gateway.routes.compat_openai) reads the
body, calls `parse_request`, creates one ordinary item per string or part, waits, then calls `moderation_result`
on each group of finished items. docs/compat-openai.md is the user-facing description of every rule here.

Our category names come from service.core.policy (KIND_CATEGORIES, itself checked against models/ by
tests/service/test_policies_kinds.py); tests/service/test_openai_compat.py checks that every name mapped here is
one of them and that every one of them is either mapped or listed in UNMAPPED_OURS.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from common.sniff import sniff
from service.core.domain import Item
from service.core.policy import KIND_CATEGORIES

InputType = Literal["text", "image"]

# OpenAI's categories, in the order their API documents them (responses list them in this order).
OPENAI_CATEGORIES: tuple[str, ...] = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)

# OpenAI category -> per input type, our categories that score it (the score is their maximum; the category is
# flagged when our policy flagged any of them). Text: the v2 taxonomy (models/text/labels.py TAXONOMY) plus the
# v1 names a v1 checkpoint emits (`insult`, `threat`). Image: models/vision CATEGORIES, where `violence` is the
# NSFL/gore class, i.e. graphic violence, so it scores both violence categories.
CATEGORY_MAP: dict[str, dict[InputType, tuple[str, ...]]] = {
    "harassment": {"text": ("harassment", "insult")},
    "harassment/threatening": {"text": ("harassment_threatening", "threat")},
    "hate": {"text": ("hate",)},
    "hate/threatening": {"text": ("hate_threatening",)},
    "illicit": {},
    "illicit/violent": {},
    "self-harm": {"text": ("self_harm",)},
    "self-harm/intent": {"text": ("self_harm_intent",)},
    "self-harm/instructions": {"text": ("self_harm_instructions",)},
    "sexual": {"text": ("sexual",), "image": ("sexual",)},
    "sexual/minors": {"text": ("sexual_minors",)},
    "violence": {"text": ("violence",), "image": ("violence",)},
    "violence/graphic": {"text": ("violence_graphic",), "image": ("violence",)},
}
# No model of ours scores these: always `false` with score 0 and no applied input type.
UNSUPPORTED: tuple[str, ...] = tuple(c for c, m in CATEGORY_MAP.items() if not m)
INPUT_TYPES: tuple[InputType, ...] = ("text", "image")
# Our categories with no OpenAI counterpart (text: `toxicity`, `profanity`): they still count towards `flagged`
# (our policy decides), but no OpenAI category reports them.
UNMAPPED_OURS: dict[InputType, tuple[str, ...]] = {
    k: tuple(c for c in KIND_CATEGORIES[k] if not any(c in m.get(k, ()) for m in CATEGORY_MAP.values()))
    for k in INPUT_TYPES}

DEFAULT_MODEL = "omni-moderation-latest"
MAX_MODEL_CHARS = 256
ALLOWED_PARAMS = frozenset({"input", "model"})
# `data:[<mediatype>][;param=value]*;base64,<data>`; only the base64 form (images are binary).
_DATA_URL = re.compile(r"^data:(?P<mime>[^,;]*)(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)$",
                       re.IGNORECASE | re.DOTALL)
_B64_SPACE = re.compile(rb"[ \t\r\n]+")


@dataclass(eq=False)  # identity equality, and hashable, like any exception
class CompatError(Exception):
    """An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

    `extra` adds fields to the error object (e.g. `moderation_ids`, so a client never loses accepted items);
    `headers` go on the response (`Retry-After`, `x-should-retry`).
    """

    message: str
    code: str
    param: str | None = None
    status: int = 400
    type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        self.type = self.type or error_type(self.status)

    def body(self) -> dict[str, Any]:
        return openai_error(self.message, self.type, self.code, self.param, self.extra)


def error_type(status: int) -> str:
    """OpenAI's error `type` for a status: clients branch on `code`; `type` only groups them."""
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(message: str, type_: str, code: str | None, param: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code, **(extra or {})}}


@dataclass(frozen=True)
class TextPart:
    text: str
    param: str  # where it sat in the request, e.g. "input[2]" or "input[0].text"


@dataclass(frozen=True)
class ImagePart:
    data: bytes
    fmt: str  # sniffed from the bytes (common.sniff), never from the data URL's declared type
    param: str


Part = TextPart | ImagePart


@dataclass(frozen=True)
class CompatRequest:
    model: str
    groups: list[list[Part]]  # one group per result: a string each, or all parts of a multi-modal input

    @property
    def parts(self) -> list[Part]:
        return [p for g in self.groups for p in g]


@dataclass(frozen=True)
class Limits:
    max_inputs: int
    max_text_chars: int
    max_image_bytes: int


def parse_request(payload: Any, limits: Limits) -> CompatRequest:
    """Validate an OpenAI moderation request body; raises CompatError (400) naming the offending `param`."""
    if not isinstance(payload, dict):
        raise CompatError("the request body must be a JSON object", "invalid_body")
    unknown = sorted(set(payload) - ALLOWED_PARAMS)
    if unknown:
        raise CompatError(f"unrecognized request argument supplied: {', '.join(unknown)}", "unknown_parameter",
                          param=unknown[0])
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not 0 < len(model) <= MAX_MODEL_CHARS:
        raise CompatError(f"`model` must be a string of 1 to {MAX_MODEL_CHARS} characters", "invalid_model",
                          param="model")
    raw = payload.get("input")
    if raw is None or raw == "" or raw == []:
        raise CompatError("`input` is empty: send a string, a list of strings or a list of content parts",
                          "empty_input", param="input")
    if isinstance(raw, str):
        return CompatRequest(model, [[_text(raw, "input", limits)]])
    if not isinstance(raw, list):
        raise CompatError("`input` must be a string, a list of strings or a list of content parts",
                          "invalid_input_type", param="input")
    if len(raw) > limits.max_inputs:
        raise CompatError(f"`input` has {len(raw)} entries; the limit is {limits.max_inputs}", "too_many_inputs",
                          param="input")
    if all(isinstance(x, str) for x in raw):
        return CompatRequest(model, [[_text(x, f"input[{i}]", limits)] for i, x in enumerate(raw)])
    if all(isinstance(x, dict) for x in raw):
        return CompatRequest(model, [[_part(x, f"input[{i}]", limits) for i, x in enumerate(raw)]])
    raise CompatError("`input` must be a list of strings or a list of content parts, not a mix of both or other "
                      "types", "invalid_input_type", param="input")


def _text(value: Any, param: str, limits: Limits) -> TextPart:
    if not isinstance(value, str):
        raise CompatError(f"`{param}` must be a string", "invalid_input_type", param=param)
    if value == "":
        raise CompatError(f"`{param}` is an empty string", "empty_input", param=param)
    if len(value) > limits.max_text_chars:
        raise CompatError(f"`{param}` has {len(value)} characters; the limit is {limits.max_text_chars}",
                          "text_too_long", param=param)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a JSON \ud800 escape: no store or response could encode it
        raise CompatError(f"`{param}` is not valid Unicode (lone surrogate at position {exc.start})",
                          "invalid_text", param=param) from exc
    return TextPart(value, param)


def _part(part: dict[str, Any], param: str, limits: Limits) -> Part:
    kind = part.get("type")
    if kind == "text":
        return _text(part.get("text"), f"{param}.text", limits)
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            raise CompatError(f"`{param}.image_url.url` must be a string", "invalid_input_type",
                              param=f"{param}.image_url.url")
        return _image(url, f"{param}.image_url.url", limits)
    raise CompatError(f"`{param}.type` must be `text` or `image_url`, got {kind!r}", "unsupported_part_type",
                      param=f"{param}.type")


def _image(url: str, param: str, limits: Limits) -> ImagePart:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme != "data":
        # Fetching would make the gateway an open proxy (SSRF) and its latency someone else's; never done.
        shown = f"`{scheme}:` URLs" if scheme else "relative or scheme-less URLs"
        raise CompatError(f"{shown} are not accepted: send the image inline as a `data:image/...;base64,...` URL "
                          "(this service never fetches URLs)", "image_url_not_allowed", param=param)
    match = _DATA_URL.match(url)
    if match is None:
        raise CompatError("malformed data URL: expected `data:<media type>;base64,<data>`", "invalid_data_url",
                          param=param)
    encoded = _B64_SPACE.sub(b"", match["data"].encode("ascii", "replace"))
    # Size first, from the encoded length: decoding an oversized image would cost the memory the limit protects.
    if len(encoded) // 4 * 3 > limits.max_image_bytes + 3:
        raise CompatError(f"the image is larger than {limits.max_image_bytes} bytes", "image_too_large", param=param)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CompatError("the data URL's payload is not valid base64", "invalid_data_url", param=param) from exc
    if not data:
        raise CompatError("the data URL holds no bytes", "invalid_data_url", param=param)
    if len(data) > limits.max_image_bytes:
        raise CompatError(f"the image is larger than {limits.max_image_bytes} bytes", "image_too_large", param=param)
    found = sniff(data[:4096])
    if found.kind != "image":
        raise CompatError(f"the data URL holds {found.fmt} data ({found.mime}); accepted images are JPEG, PNG, WebP, "
                          "GIF, BMP and TIFF", "unsupported_image_format", param=param)
    return ImagePart(data, found.fmt, param)


def request_id(first_item_id: str) -> str:
    """The response `id`: derived from the first item's id, so an idempotent replay answers the same id."""
    suffix = first_item_id.split("_", 1)[-1] if first_item_id else uuid.uuid4().hex
    return f"modr-{suffix}"


def _input_type(item: Item) -> InputType | None:
    kind = item.get("kind")
    return kind if kind in INPUT_TYPES else None  # type: ignore[return-value]


def moderation_result(items: Sequence[Item]) -> dict[str, Any]:
    """One OpenAI result from the finished items of one input (a string, or every part of a multi-modal input).

    `flagged` follows our policy decision: true when any item's decision is `review` or `block`. It can be true
    with every category false (a blocklist or hash-list match, or a category OpenAI has no name for).
    """
    scores = dict.fromkeys(OPENAI_CATEGORIES, 0.0)
    categories = dict.fromkeys(OPENAI_CATEGORIES, False)
    applied: dict[str, list[InputType]] = {c: [] for c in OPENAI_CATEGORIES}
    for item in items:
        kind = _input_type(item)
        if kind is None:
            continue
        ours = item.get("scores") or {}
        ours_flagged = set(item.get("flagged") or [])
        for category, per_kind in CATEGORY_MAP.items():
            # Applied only where the item's model really scored a mapped category (a v1 text checkpoint has no
            # `violence_graphic`; a hash-list match scores nothing).
            names = [n for n in per_kind.get(kind, ()) if n in ours]
            if not names:
                continue
            if kind not in applied[category]:
                applied[category].append(kind)
            scores[category] = max(scores[category], *(float(ours[n]) for n in names))
            categories[category] = categories[category] or bool(ours_flagged.intersection(names))
    return {
        "flagged": any(item.get("decision") in ("review", "block") for item in items),
        "categories": categories,
        "category_scores": scores,
        # Always "text" before "image", whatever the part order, so equal requests answer equal documents.
        "category_applied_input_types": {c: [k for k in INPUT_TYPES if k in v] for c, v in applied.items()},
    }


def models_used(items: Sequence[Item], requested: str) -> str:
    """The response `model`: every model that scored the items, `name@version` joined by `+` in first-use order.

    The requested model is accepted but selects nothing (a deployment runs one model set per kind); it is echoed
    only when no model scored anything (every item decided by a hash list).
    """
    names: list[str] = []
    for item in items:
        for ref in item.get("models") or []:
            name = f"{ref.get('name')}@{ref.get('version')}"
            if name not in names:
                names.append(name)
    return "+".join(names) or requested
