"""Quality floor: the evaluation CLI on every packaged safe image, under the default policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.vision.evaluate import main, wilson_upper


def test_false_positive_floor(model_dir: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] >= 250
    assert report["by_source"]["skimage"]["n"] >= 20 and report["by_source"]["lfw_faces"]["n"] == 100
    # Measured 0 blocks and 2/258 reviews (both on the heavily compressed carphone_distorted clip).
    assert report["blocked"] == 0
    assert report["fpr_review_or_block"] <= 0.02


def test_wilson_bound() -> None:
    assert wilson_upper(0, 258) == pytest.approx(0.0147, abs=1e-4)
    assert wilson_upper(5, 5) == 1.0 and wilson_upper(0, 0) == 1.0
