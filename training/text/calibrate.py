"""Owns per-category review/block thresholds: picking them for a target precision and writing them out.

`python -m training.text.calibrate --model var/models/text-default --policy policies/default.yaml` copies the
checkpoint's thresholds.json into the policy file, bumping its version only when a threshold changed.
Thresholds are picked on the validation split, whose class balance is far richer in positives than real
traffic: the precision targets hold for that mix, and real-world precision will be lower.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from models.text.labels import ALL_CATEGORIES, CATEGORIES

REVIEW_PRECISION = 0.7
BLOCK_PRECISION = 0.9
UNREACHABLE = 0.999  # a threshold that effectively never fires, used when the target cannot be met


def pick_threshold(y: np.ndarray, s: np.ndarray, target: float) -> dict[str, Any]:
    """Lowest score threshold whose precision on (y, s) reaches `target` (= highest recall at that precision)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos == 0:
        return {"threshold": UNREACHABLE, "precision": None, "recall": None, "n_pos": 0, "reached": False}
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order])
    k = np.arange(1, len(s) + 1)
    precision = tp / k
    # Only cut between distinct scores: ties must fall on the same side of a threshold.
    last_of_tie = np.r_[s[order][1:] != s[order][:-1], True]
    ok = np.flatnonzero((precision >= target) & last_of_tie)
    if ok.size == 0:
        return {"threshold": UNREACHABLE, "precision": None, "recall": 0.0, "n_pos": n_pos, "reached": False}
    i = int(ok.max())
    return {"threshold": round(float(s[order][i]), 4), "precision": round(float(precision[i]), 4),
            "recall": round(float(tp[i] / n_pos), 4), "n_pos": n_pos, "reached": True}


def calibrate(
    y: np.ndarray, scores: np.ndarray, categories: tuple[str, ...] = CATEGORIES,
    review_precision: float = REVIEW_PRECISION, block_precision: float = BLOCK_PRECISION,
) -> dict[str, Any]:
    """thresholds.json content: {categories: {cat: {review, block}}, calibration: {cat: numbers behind them}}."""
    cats: dict[str, dict[str, float]] = {}
    numbers: dict[str, Any] = {}
    for j, cat in enumerate(categories):
        review = pick_threshold(y[:, j], scores[:, j], review_precision)
        block = pick_threshold(y[:, j], scores[:, j], block_precision)
        # block must never be below review, or a text could be blocked without being reviewable.
        block_t = max(block["threshold"], review["threshold"])
        cats[cat] = {"review": review["threshold"], "block": block_t}
        numbers[cat] = {"review": {"target_precision": review_precision, **review},
                        "block": {"target_precision": block_precision, **block}}
    return {"categories": cats, "calibration": numbers}


def write_thresholds(path: Path, data: dict[str, Any], split: str = "val") -> None:
    path.write_text(json.dumps({**data, "split": split}, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _flow(d: Any) -> str:
    return yaml.safe_dump(d, default_flow_style=True, sort_keys=False, width=1000).strip()


def write_policy(policy: Path, thresholds: dict[str, Any], model_id: str) -> int:
    """Rewrite the policy's thresholds + calibration numbers; returns the (possibly bumped) version."""
    current = yaml.safe_load(policy.read_text(encoding="utf-8"))
    order = [c for c in ALL_CATEGORIES if c in thresholds["categories"]]  # policy reads in taxonomy order
    new_cats = {c: dict(thresholds["categories"][c]) for c in order}
    new_langs = {lang: {"categories": {c: dict(v["categories"][c]) for c in order if c in v["categories"]}}
                 for lang, v in (thresholds.get("languages") or {}).items()}
    version = int(current.get("version", 0))
    if current.get("categories") != new_cats or (current.get("languages") or {}) != new_langs:
        version += 1
    lines = [
        "# Default moderation policy. Scores are in [0, 1]; score >= block -> block, >= review -> review, else allow.",
        "# `version` must be bumped whenever a threshold changes: verdicts record name@version and rescans use it.",
        f"# Thresholds written by `python -m training.text.calibrate` from {model_id}: lowest score reaching",
        f"# precision {REVIEW_PRECISION} (review) / {BLOCK_PRECISION} (block) on the validation split; numbers in",
        "# `calibration` (ignored by the loader). 0.999 = target unreachable on validation, effectively off.",
        f"name: {current.get('name', 'default')}",
        f"version: {version}",
        "categories:",
        *(f"  {c}: {_flow(v)}" for c, v in new_cats.items()),
        *(["# Per-language text thresholds (calibrated per language); they replace `categories` for that language.",
            "languages:", *(f"  {lang}: {_flow(v)}" for lang, v in new_langs.items())] if new_langs else []),
        "# Categories not listed use these.",
        f"default_thresholds: {_flow(current.get('default_thresholds') or {'review': 0.5, 'block': 0.9})}",
        "# Term blocklist: exact terms or wildcards (*); a match forces at least `review`.",
        "blocklist:",
        f"  terms: {_flow((current.get('blocklist') or {}).get('terms') or [])}",
        # Sections the text calibration does not own are carried over unchanged (image/video thresholds).
        *([f"review_blocked: {str(bool(current['review_blocked'])).lower()}"] if "review_blocked" in current else []),
        *(["kinds:", *(f"  {k}: {_flow(v)}" for k, v in current["kinds"].items())] if current.get("kinds") else []),
        "calibration:",
        f"  model: {model_id}",
        *(f"  {c}: {_flow(thresholds['calibration'][c])}" for c in order if c in thresholds["calibration"]),
    ]
    policy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return version


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a checkpoint's calibrated thresholds into a policy file.")
    parser.add_argument("--model", type=Path, default=Path("var/models/text-default"))
    parser.add_argument("--policy", type=Path, default=Path("policies/default.yaml"))
    args = parser.parse_args(argv)
    data = json.loads((args.model / "thresholds.json").read_text(encoding="utf-8"))
    card = json.loads((args.model / "moderation.json").read_text(encoding="utf-8"))
    version = write_policy(args.policy, data, f"{card['name']}@{card['version']}")
    print(f"{args.policy}: version {version}")


if __name__ == "__main__":
    main()
