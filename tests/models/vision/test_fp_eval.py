"""Helpers of the false-positive evaluation: intervals, decisions, the frozen held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.vision.fp_eval import BEFORE_THRESHOLDS, level, wilson
from training.vision.safe_set import FROZEN, HELD_OUT_PERCENT, Entry, check_frozen, freeze, split_of


def test_wilson_interval() -> None:
    low, high = wilson(7, 1428)
    assert (round(low, 4), round(high, 4)) == (0.0024, 0.0101)
    assert wilson(0, 1428)[0] == 0.0 and wilson(0, 1428)[1] == pytest.approx(0.00268, abs=1e-5)
    assert wilson(0, 0) == (0.0, 1.0)


def test_level_uses_review_and_block() -> None:
    assert level({"sexual": 0.49, "violence": 0.0}, BEFORE_THRESHOLDS) == "allow"
    assert level({"sexual": 0.5}, BEFORE_THRESHOLDS) == "review"
    assert level({"sexual": 0.1, "violence": 0.9}, BEFORE_THRESHOLDS) == "block"


def test_split_is_by_group_and_stable() -> None:
    groups = [f"g{i}" for i in range(2000)]
    held = sum(split_of(g) == "heldout" for g in groups)
    assert abs(held / len(groups) - HELD_OUT_PERCENT / 100) < 0.05
    assert [split_of(g) for g in groups] == [split_of(g) for g in groups]


def test_frozen_split_detects_drift(tmp_path: Path) -> None:
    entries = [Entry("a/1.png", "a", "a:1", "heldout", "a/1.png", "x" * 64),
               Entry("b/2.png", "b", "b:2", "calib", "b/2.png", "y" * 64)]
    path = tmp_path / "frozen.json"
    freeze(entries, path)
    assert check_frozen(entries, path) == []
    changed = [Entry("a/1.png", "a", "a:1", "heldout", "a/1.png", "z" * 64), entries[1]]
    assert check_frozen(changed, path) == ["changed a/1.png"]
    assert check_frozen(entries[1:], path) == ["missing a/1.png"]


def test_committed_frozen_split() -> None:
    """The committed held-out list: ~40 % of the 3,680-file set, file digests recorded."""
    frozen = json.loads(FROZEN.read_text())
    assert frozen["held_out_percent"] == HELD_OUT_PERCENT
    assert 1300 <= len(frozen["files"]) <= 1600
    assert all(len(d) == 64 for d in frozen["files"].values())
