"""Rescan planning: texts go out in large chunks (batched model calls) capped by characters, media in small ones."""

from __future__ import annotations

from typing import cast

from service.core.domain import Item
from workers.pipelines.rescan import chunks


def test_texts_and_media_are_chunked_by_their_own_sizes() -> None:
    rows = [{"id": f"t{i}", "kind": "text", "text": "short"} for i in range(5)]
    rows += [{"id": f"m{i}", "kind": "video"} for i in range(3)]
    rows.insert(2, {"id": "i0", "kind": "image"})
    items = cast(list[Item], rows)
    out = chunks(items, text_size=2, media_size=3, text_chars=1000)
    assert out == [["t0", "t1"], ["t2", "t3"], ["t4"], ["i0", "m0", "m1"], ["m2"]]
    assert sorted(i for c in out for i in c) == sorted(it["id"] for it in items), "every target once"
    assert chunks([], 2, 3, 1000) == []


def test_long_texts_get_fewer_per_chunk() -> None:
    """A chunk of long texts must fit its time limit like a live text task: characters cap it too."""
    sizes = [600, 300, 200, 900, 50, 50]
    items = cast(list[Item], [{"id": f"t{i}", "kind": "text", "text": "x" * n} for i, n in enumerate(sizes)])
    assert chunks(items, text_size=128, media_size=4, text_chars=1000) == [["t0", "t1"], ["t2"], ["t3", "t4", "t5"]]
    one_huge = cast(list[Item], [{"id": "big", "kind": "text", "text": "x" * 5000}])
    assert chunks(one_huge, 128, 4, 1000) == [["big"]], "a text over the cap still goes out, alone"
