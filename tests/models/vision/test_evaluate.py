"""Quality floor: every packaged safe image scored once, judged under the current and the reference policy."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from training.vision.evaluate import DEFAULT_POLICY, REFERENCE_POLICY, load_policy, main, summarise, wilson_upper


@pytest.fixture(scope="module")
def reports(model_dir: Path, data_dir: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--json"]) == 0
    return dict(json.loads(out.getvalue()))


def test_safe_set_size(reports: dict[str, Any]) -> None:
    ref = reports["reference_0.5_0.9"]
    assert ref["images"] >= 250
    assert ref["by_source"]["skimage"]["n"] >= 20 and ref["by_source"]["lfw_faces"]["n"] == 100


def test_reference_thresholds_floor(reports: dict[str, Any]) -> None:
    """Model/preprocessing regressions show here, independent of policy edits. Measured: 0 blocks, 2 reviews."""
    ref = reports["reference_0.5_0.9"]
    assert ref["policy"] == REFERENCE_POLICY
    assert ref["blocked"] == 0
    assert ref["fpr_review_or_block"] <= 0.02


def test_current_default_policy_floor(reports: dict[str, Any]) -> None:
    """The shipped policy (thresholds may be recalibrated by others) must keep false positives rare."""
    current = reports["policy"]
    assert current["policy"] == load_policy(DEFAULT_POLICY)
    assert current["fpr_block"] <= 0.02
    assert current["fpr_review_or_block"] <= 0.05


def test_summarise_levels() -> None:
    scored = {"models": [{"name": "m", "version": "1"}],
              "rows": [{"source": "s", "name": str(i), "scores": {"sexual": v, "violence": 0.0},
                        "model_scores": {"m": {"sexual": v}}} for i, v in enumerate([0.1, 0.6, 0.95])]}
    report = summarise(scored, REFERENCE_POLICY)
    assert (report["images"], report["flagged"], report["blocked"]) == (3, 2, 1)
    assert report["flagged_by_model"] == {"m": 2}


def test_wilson_bound() -> None:
    assert wilson_upper(0, 258) == pytest.approx(0.0147, abs=1e-4)
    assert wilson_upper(5, 5) == 1.0 and wilson_upper(0, 0) == 1.0
