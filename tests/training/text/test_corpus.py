"""The v2 corpus loader: validation, implied parent labels, deterministic splits, near-duplicate handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.text import corpus


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path.parent


def _row(i: int, text: str, labels: list[str], lang: str = "en") -> dict[str, object]:
    return {"id": f"{lang}-x-{i:04d}", "lang": lang, "text": text, "labels": labels, "topic": "general",
            "style": "comment", "profane": False, "hard_negative": False, "severity": 0}


def test_children_imply_parents_and_ids_are_unique(tmp_path: Path) -> None:
    d = _write(tmp_path / "c" / "en_x_01.jsonl", [_row(1, "I know where you live.", ["harassment_threatening"]),
                                                   _row(2, "咱们去吃火锅吧", [], "zh")])
    rows = corpus.load_dir(d)
    assert rows[0].labels == ["harassment", "harassment_threatening"]
    assert rows[1].labels == [] and rows[1].lang == "zh" and rows[1].author == "zh-x"
    _write(tmp_path / "c" / "en_x_02.jsonl", [_row(1, "dup id", [])])
    with pytest.raises(corpus.CorpusError, match="already used"):
        corpus.load_dir(d)


@pytest.mark.parametrize("bad", [{"labels": ["toxicity"]}, {"lang": "fr"}, {"text": "  "}])
def test_bad_rows_are_refused_with_their_line(tmp_path: Path, bad: dict[str, object]) -> None:
    d = _write(tmp_path / "c" / "en_x_01.jsonl", [_row(1, "fine", []), {**_row(2, "x", []), **bad}])
    with pytest.raises(corpus.CorpusError, match="en_x_01.jsonl:2"):
        corpus.load_dir(d)


def test_near_duplicates_end_up_in_the_same_split() -> None:
    base = "The referee was blind all match and the home fans booed him off the pitch at full time, deservedly."
    rows = [corpus.CorpusRow(id=f"en-x-{i:04d}", lang="en", text=t, labels=[], topic="general", style="comment",
                             profane=False, hard_negative=False, author="en-x")
            for i, t in enumerate([base, base.replace("deservedly", "deservedly so"), *(
                f"Completely different row number {i} about cooking pasta with garlic." for i in range(40))])]
    pairs = corpus.assign_splits(rows, val_share=0.5)
    assert (0, 1) in [(i, j) for i, j, _ in pairs]
    assert rows[0].split == rows[1].split == "train"
    again = [corpus.CorpusRow(**{**r.__dict__, "split": "train"}) for r in rows]
    corpus.assign_splits(again, val_share=0.5)
    assert [r.split for r in again] == [r.split for r in rows]  # deterministic
    assert {r.split for r in rows} == {"train", "val"}


def test_shipped_corpus_and_frozen_test_are_valid_and_disjoint() -> None:
    train = corpus.load_dir(corpus.CORPUS_DIR)
    test = corpus.load_dir(corpus.FROZEN_DIR)
    assert {r.lang for r in train} == {"en", "zh"} and {r.lang for r in test} == {"en", "zh"}
    assert not {r.id for r in train} & {r.id for r in test}
    assert {r.author for r in train}.isdisjoint({r.author for r in test})
