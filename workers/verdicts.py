"""Owns verdict helpers shared by text and media pipelines (term blocklist reasons)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=64)
def _matcher(terms: tuple[str, ...]) -> Any:
    from models.text.blocklist import compile_blocklist

    return compile_blocklist(list(terms))


def blocklist_reasons(text: str, terms: tuple[str, ...]) -> list[dict[str, Any]]:
    """Blocklist matches as verdict reasons; any match forces at least `review`."""
    if not terms:
        return []
    return [{"type": "blocklist", **m} for m in _matcher(terms).find(text)]
