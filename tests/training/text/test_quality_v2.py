"""Quality floor of the shipped v2 model on the frozen test set, through the serving path and the policy.

The build is cached (setup builds it); the frozen evaluation scores ~970 texts through TextClassifier with
windows and decides them with policies/default.yaml, as the worker does. Floors sit a few points under the
measured numbers (docs/models/text.md): they catch a broken build or a broken serving path, not small drift.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_v2_meets_frozen_test_floors(tmp_path: Path) -> None:
    from training.text import build_v2, frozen_eval

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = ROOT / build_v2.DEFAULT_OUT
    build_v2.build(out, ROOT / build_v2.DEFAULT_CACHE)
    report = frozen_eval.main(["--model", str(out), "--policy", str(ROOT / "policies" / "default.yaml"),
                               "--v1", str(tmp_path / "no-v1"), "--json", str(tmp_path / "frozen.json")],
                              printer=lambda _: None)
    assert report["near_duplicates_with_corpus"] == 0
    v2, length = report["scorers"][0], next(s for s in report["scorers"] if s["name"].startswith("length"))
    for lang, floor in (("en", 0.93), ("zh", 0.87)):  # measured 0.958 / 0.905
        assert v2["any"][lang] >= floor, (lang, v2["any"])
        # Not a length detector: the length-only baseline stays far below.
        assert v2["any"][lang] - length["any"][lang] >= 0.25, (lang, v2["any"], length["any"])
    for band, auc in v2["band"]["all"].items():
        assert auc is not None and auc >= 0.82, (band, v2["band"])  # measured >= 0.859
    decisions = report["decisions"]["all"]
    assert decisions["review_or_block"]["recall"] >= 0.8 and decisions["block"]["precision"] >= 0.85, decisions
