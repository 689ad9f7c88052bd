"""Quality floor of the real default model: runs the build (cached) and the evaluation CLI on real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_default_model_meets_floors() -> None:
    from training.text import build, evaluate

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = ROOT / build.DEFAULT_OUT
    build.build(out, ROOT / build.DEFAULT_CACHE)
    report = evaluate.main(["--model", str(out), "--cache", str(ROOT / build.DEFAULT_CACHE), "--no-cross-source"],
                           printer=lambda _: None)
    ours = {r["category"]: r for r in report["categories"]["ours"]}
    apc = {r["category"]: r for r in report["categories"]["alt-profanity-check"]}
    # Floors sit ~0.05 under the 1.0.0 numbers: they catch a broken build, not small drift.
    for cat in ("toxicity", "insult", "hate", "sexual", "violence"):
        assert ours[cat]["roc_auc"] >= 0.88, (cat, ours[cat])
        assert ours[cat]["roc_auc"] > apc[cat]["roc_auc"], (cat, ours[cat], apc[cat])
    assert ours["toxicity"]["pr_auc"] >= 0.70
    benign = report["benign"]["ours"]
    for probe in ("neutral:reviews", "neutral:plots", "neutral:headlines"):
        assert benign[probe]["block_fpr"] <= 0.02, (probe, benign[probe])
    # Identity terms in neutral sentences must never be blocked (review is tolerated and reported).
    assert benign["contrast:identity"]["block_fpr"] == 0.0
