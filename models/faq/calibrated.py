"""Owns the shipped FAQ decision thresholds per encoder and question language, as chosen on the dev split.

Written from `python -m training.faq.evaluate` (it prints a note when a fresh calibration differs from these).
"""

from __future__ import annotations

from models.faq.search import Thresholds

CALIBRATED: dict[str, dict[str, Thresholds]] = {
    "e5": {"en": Thresholds(0.0, 0.0), "zh": Thresholds(0.0, 0.0)},
    "minilm": {"en": Thresholds(0.33, 0.02), "zh": Thresholds(0.33, 0.02)},
    "tfidf": {"en": Thresholds(0.23, 0.02), "zh": Thresholds(0.23, 0.02)},
}
