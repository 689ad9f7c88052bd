"""Owns the public JSON view of a stored item (API responses and webhook payloads share it)."""

from __future__ import annotations

from typing import Any

from service.core.domain import Item

_INTERNAL = ("text", "content_hash", "verdict_key", "error_code", "error_message", "blob_key", "note")


def public_item(item: Item) -> dict[str, Any]:
    """Store record -> API shape (drops stored content and internal keys)."""
    out = {k: v for k, v in item.items() if k not in _INTERNAL}
    out["status_url"] = f"/v1/moderations/{item['id']}"
    out["error"] = ({"code": item["error_code"], "message": item.get("error_message") or ""}
                    if item.get("error_code") else None)
    return out
