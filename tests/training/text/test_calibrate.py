"""Threshold picking and the files it writes (thresholds.json, the policy's thresholds + calibration)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from models.text.labels import CATEGORIES, TAXONOMY
from training.text import calibrate


def test_pick_threshold_lowest_cut_reaching_target():
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    r = calibrate.pick_threshold(y, s, 0.75)
    assert r["threshold"] == 0.6 and r["precision"] == 0.75 and r["recall"] == 1.0 and r["reached"]
    assert calibrate.pick_threshold(y, s, 1.0)["threshold"] == 0.8


def test_pick_threshold_unreachable_and_empty():
    y = np.array([0, 1, 0])
    s = np.array([0.9, 0.1, 0.8])
    assert calibrate.pick_threshold(y, s, 0.9) == {
        "threshold": calibrate.UNREACHABLE, "precision": None, "recall": 0.0, "n_pos": 1, "reached": False}
    assert calibrate.pick_threshold(np.zeros(3), s, 0.9)["n_pos"] == 0


def test_ties_never_split():
    y = np.array([1, 0, 1])
    s = np.array([0.5, 0.5, 0.4])
    # Cutting at 0.5 takes both tied rows (precision 0.5), so 1.0 is unreachable rather than faked.
    assert not calibrate.pick_threshold(y, s, 1.0)["reached"]


def _thresholds() -> dict:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(200, len(CATEGORIES)))
    s = np.clip(y * 0.5 + rng.random((200, len(CATEGORIES))) * 0.6, 0, 1)
    return calibrate.calibrate(y, s)


def test_block_never_below_review():
    data = _thresholds()
    for c in CATEGORIES:
        assert data["categories"][c]["block"] >= data["categories"][c]["review"]


def test_write_policy_bumps_version_only_on_change(tmp_path: Path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "name: default\nversion: 3\ncategories:\n  toxicity: {review: 0.5, block: 0.9}\n"
        "default_thresholds: {review: 0.4, block: 0.8}\nblocklist:\n  terms: [foo, 'b*r']\n"
    )
    data = _thresholds()
    assert calibrate.write_policy(policy, data, "m@1") == 4
    loaded = yaml.safe_load(policy.read_text())
    assert loaded["version"] == 4 and loaded["name"] == "default"
    assert loaded["categories"] == data["categories"]
    assert loaded["blocklist"]["terms"] == ["foo", "b*r"]
    assert loaded["default_thresholds"] == {"review": 0.4, "block": 0.8}
    assert loaded["calibration"]["model"] == "m@1"
    assert loaded["calibration"]["toxicity"]["review"]["target_precision"] == calibrate.REVIEW_PRECISION
    assert calibrate.write_policy(policy, data, "m@1") == 4  # same thresholds: same version


def test_write_thresholds_json(tmp_path: Path):
    data = _thresholds()
    calibrate.write_thresholds(tmp_path / "thresholds.json", data)
    back = json.loads((tmp_path / "thresholds.json").read_text())
    assert back["categories"] == data["categories"] and back["split"] == "val"


def test_shipped_policy_is_well_formed():
    """The shipped policy covers every v2 category, in English and (per-language overlay) in Chinese."""
    policy = yaml.safe_load((Path(__file__).parents[3] / "policies" / "default.yaml").read_text())
    for cats in (policy["categories"], policy["languages"]["zh"]["categories"]):
        for c in TAXONOMY:
            t = cats[c]
            assert 0 < t["review"] <= t["block"] <= 1, (c, t)
