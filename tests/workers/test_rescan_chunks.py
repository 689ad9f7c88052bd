"""Rescan planning: texts go out in large chunks (batched model calls), media in small ones."""

from __future__ import annotations

from typing import cast

from service.core.domain import Item
from workers.pipelines.rescan import chunks


def test_texts_and_media_are_chunked_by_their_own_sizes() -> None:
    rows = [{"id": f"t{i}", "kind": "text"} for i in range(5)] + [{"id": f"m{i}", "kind": "video"} for i in range(3)]
    rows.insert(2, {"id": "i0", "kind": "image"})
    items = cast(list[Item], rows)
    out = chunks(items, text_size=2, media_size=3)
    assert out == [["t0", "t1"], ["t2", "t3"], ["t4"], ["i0", "m0", "m1"], ["m2"]]
    assert sorted(i for c in out for i in c) == sorted(it["id"] for it in items), "every target once"
    assert chunks([], 2, 3) == []
