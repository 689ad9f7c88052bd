"""Owns the shipped FAQ decision thresholds per encoder (by model name) and question language, chosen on the tuning
splits (dev + dev2 pooled, near-miss target 0.92; never the frozen split).

Copied from `python -m training.faq.evaluate`; the CLI prints a note when a fresh calibration differs from these, and
tests/companion/test_faq.py fails on any drift.
"""

from __future__ import annotations

from models.faq.search import Thresholds

CALIBRATED: dict[str, dict[str, Thresholds]] = {
    "multilingual-e5-small+all-MiniLM-L6-v2": {"en": Thresholds(0.0, 0.0, 0.06), "zh": Thresholds(0.51, 0.0, -0.02)},
    "multilingual-e5-small": {"en": Thresholds(0.44, 0.0, 0.05), "zh": Thresholds(0.51, 0.0, -0.02)},
    "all-MiniLM-L6-v2": {"en": Thresholds(0.0, 0.0, 0.07), "zh": Thresholds(0.71, 0.01, 0.01)},
    "tfidf": {"en": Thresholds(0.0, 0.10, 0.10), "zh": Thresholds(0.0, 0.0, 0.03)},
}


def thresholds_for(encoder_name: str, min_score: float | None = None, min_gap: float | None = None,
                   min_margin: float | None = None) -> dict[str, Thresholds]:
    """Per-language thresholds for an encoder, each field overridable for all languages (service configuration)."""
    base = CALIBRATED.get(encoder_name)
    if base is None:
        raise KeyError(f"no calibrated FAQ thresholds for encoder {encoder_name!r}; run training.faq.evaluate")
    return {lang: Thresholds(t.min_score if min_score is None else min_score,
                             t.min_gap if min_gap is None else min_gap,
                             t.min_margin if min_margin is None else min_margin) for lang, t in base.items()}
