"""The shipped combination of image models: calibration points, agreement, monotonicity, unknown models."""

from __future__ import annotations

import itertools

import pytest

from models.vision.classifiers import (
    AGREEMENT,
    BLOCK_LEVEL,
    CALIBRATION,
    REVIEW_LEVEL,
    Calibration,
    combine,
    combine_max,
)


def both(open_nsfw: float, iss_sexual: float, iss_violence: float = 0.0) -> dict[str, float]:
    return combine({"open_nsfw": {"sexual": open_nsfw},
                    "image_safety_s": {"sexual": iss_sexual, "violence": iss_violence}})


def test_calibration_maps_review_and_block_levels() -> None:
    cal = Calibration(review=0.6, block=0.98)
    assert cal(0.0) == 0.0 and cal(1.0) == 1.0
    assert cal(0.6) == pytest.approx(REVIEW_LEVEL) and cal(0.98) == pytest.approx(BLOCK_LEVEL)
    assert cal(0.59) < REVIEW_LEVEL < cal(0.61)


def test_single_model_levels() -> None:
    assert both(0.59, 0.0)["sexual"] < REVIEW_LEVEL <= both(0.6, 0.0)["sexual"]
    assert both(0.0, 0.74)["sexual"] < REVIEW_LEVEL <= both(0.0, 0.75)["sexual"]
    assert both(0.0, 0.0, 0.74)["violence"] < REVIEW_LEVEL <= both(0.0, 0.0, 0.75)["violence"]
    # One model alone blocks only when near-certain; gore (one model) keeps its old block level.
    assert both(0.97, 0.0)["sexual"] < BLOCK_LEVEL <= both(0.98, 0.0)["sexual"]
    assert both(0.0, 0.0, 0.89)["violence"] < BLOCK_LEVEL <= both(0.0, 0.0, 0.9)["violence"]


def test_agreement_reviews_and_blocks() -> None:
    assert both(0.34, 0.34)["sexual"] < REVIEW_LEVEL <= both(0.35, 0.35)["sexual"]
    assert both(0.95, 0.89)["sexual"] < BLOCK_LEVEL <= both(0.9, 0.9)["sexual"]
    # A gap the old rule flagged: one model at 0.55, the other low -> allowed now.
    assert combine_max({"open_nsfw": {"sexual": 0.55}, "image_safety_s": {"sexual": 0.1}})["sexual"] >= 0.5
    assert both(0.55, 0.1)["sexual"] < REVIEW_LEVEL


def test_monotone_in_every_raw_score() -> None:
    grid = [i / 20 for i in range(21)]
    for o, s, v in itertools.product(grid, grid, grid[::4]):
        base = both(o, s, v)
        for bumped in (both(min(1.0, o + 0.05), s, v), both(o, min(1.0, s + 0.05), v), both(o, s, min(1.0, v + 0.05))):
            assert all(bumped[c] >= base[c] - 1e-12 for c in base)


def test_unknown_models_count_raw_and_tables_cover_shipped_models() -> None:
    assert combine({"a": {"sexual": 0.2}, "b": {"sexual": 0.7, "violence": 0.1}}) == {"sexual": 0.7, "violence": 0.1}
    assert set(CALIBRATION) == {("open_nsfw", "sexual"), ("image_safety_s", "sexual"), ("image_safety_s", "violence")}
    assert set(AGREEMENT) == {"sexual"}
    for cal in [*CALIBRATION.values(), *AGREEMENT.values()]:
        assert 0.0 < cal.review < cal.block < 1.0
