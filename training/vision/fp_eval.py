"""Owns the image false-positive table: the safe set judged before and after the calibrated image policy.

`python -m training.vision.fp_eval [--policy policies/default.yaml] [--json] [--search]`

Builds/loads the safe set (training.vision.safe_set), scores every file once with the configured models
(cached in var/cache/vision/fp_scores, see training.vision.fp_scores), and judges it two ways:
  before: the per-category maximum of the raw model scores (`combine_max`) against the image thresholds shipped
          before issue 15 (review 0.5 / block 0.9 for sexual and violence);
  after:  the shipped combination (models.vision.classifiers.combine) against the policy file's image thresholds
          (service.core.policy, the worker's own merge).
It prints, per split, how many safe images would be sent to review and to block, with two-sided 95 % Wilson
intervals. `--search` lists rules on the calibration split only (the held-out split is never used for choices).
Recall is NOT measured: no unsafe images exist offline (see docs/models/vision.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.vision.classifiers import combine, combine_max
from service.core.policy import Policy, load_policy_file
from training.vision.fetch import ROOT
from training.vision.fp_scores import ModelScores, score_files
from training.vision.safe_set import FROZEN, SET_DIR, Entry, build, check_frozen, load_manifest

DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
# The image thresholds of policies/default.yaml before issue 15 (default@5), with the plain maximum of models.
BEFORE_THRESHOLDS: dict[str, tuple[float, float]] = {"sexual": (0.5, 0.9), "violence": (0.5, 0.9)}

Decider = Callable[[ModelScores], str]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Two-sided 95 % Wilson score interval of the rate k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def level(scores: Mapping[str, float], thresholds: Mapping[str, tuple[float, float]]) -> str:
    if any(scores.get(c, 0.0) >= b for c, (_, b) in thresholds.items()):
        return "block"
    if any(scores.get(c, 0.0) >= r for c, (r, _) in thresholds.items()):
        return "review"
    return "allow"


def before_decider() -> Decider:
    return lambda ms: level(combine_max(ms), BEFORE_THRESHOLDS)


def policy_decider(policy: Policy) -> Decider:
    """The worker's decision for an image: the shipped combination, then the image-kind policy."""
    image = policy.for_kind("image")
    return lambda ms: image.decide(combine(ms))[0]


@dataclass
class Row:
    entry: Entry
    scores: ModelScores


def scored_rows(entries: list[Entry]) -> tuple[list[Row], int]:
    """Rows with model scores, and how many files the decoder rejects (not scored, never reviewed)."""
    result = score_files([(e.sha256, SET_DIR / e.path) for e in entries])
    rows = [Row(e, v) for e in entries if not isinstance(v := result[e.sha256], str)]
    return rows, len(entries) - len(rows)


def judge(rows: list[Row], decide: Decider) -> dict[str, Any]:
    levels = [decide(r.scores) for r in rows]
    n = len(rows)
    review = sum(lv == "review" for lv in levels)
    block = sum(lv == "block" for lv in levels)
    flagged = [{"id": r.entry.id, "level": lv, "scores": r.scores} for r, lv in zip(rows, levels, strict=True)
               if lv != "allow"]
    return {"n": n, "review": review, "block": block,
            "review_rate": review / n if n else 0.0, "review_ci95": wilson(review, n),
            "block_rate": block / n if n else 0.0, "block_ci95": wilson(block, n),
            "flagged": flagged}


def single_model(name: str, threshold: float) -> Decider:
    """One model alone, any category at `threshold` (the reference the outside check compared with)."""
    return lambda ms: "review" if any(v >= threshold for v in ms.get(name, {}).values()) else "allow"


def search(rows: list[Row]) -> list[dict[str, Any]]:
    """Per-model review thresholds on the calibration rows: the loosest combination for each false-positive count."""
    out: list[dict[str, Any]] = []
    grid = [round(0.5 + 0.025 * i, 3) for i in range(20)]
    for t_open in grid:
        for t_sex in grid:
            for t_vio in grid:
                n_flag = sum(r.scores["open_nsfw"]["sexual"] >= t_open or r.scores["image_safety_s"]["sexual"] >= t_sex
                             or r.scores["image_safety_s"]["violence"] >= t_vio for r in rows)
                out.append({"open_nsfw.sexual": t_open, "image_safety_s.sexual": t_sex,
                            "image_safety_s.violence": t_vio, "flagged": n_flag, "rate": n_flag / len(rows)})
    # For each number of flagged images, the loosest thresholds (smallest sum) that reach it.
    best: dict[int, dict[str, Any]] = {}
    for cand in out:
        total = cand["open_nsfw.sexual"] + cand["image_safety_s.sexual"] + cand["image_safety_s.violence"]
        k = int(cand["flagged"])
        if k not in best or total < best[k]["sum"]:
            best[k] = {**cand, "sum": round(total, 3)}
    return [best[k] for k in sorted(best)]


def _fmt(name: str, split: str, j: dict[str, Any]) -> str:
    rl, rh = j["review_ci95"]
    bl, bh = j["block_ci95"]
    return (f"{split:8} {name:34} {j['n']:5d} {j['review']:6d} {100 * j['review_rate']:6.2f}% "
            f"[{100 * rl:.2f}, {100 * rh:.2f}] {j['block']:6d} {100 * j['block_rate']:6.2f}% "
            f"[{100 * bl:.2f}, {100 * bh:.2f}]")


def report(policy_path: Path = DEFAULT_POLICY, rebuild: bool = True) -> dict[str, Any]:
    entries = build() if rebuild else load_manifest()
    drift = set()
    if FROZEN.exists():
        drift = {p.split(" ", 1)[1] for p in check_frozen(entries)}
    rows, rejected = scored_rows(entries)
    deciders: dict[str, Decider] = {
        "before (max, 0.5/0.9)": before_decider(),
        f"after ({policy_path.name})": policy_decider(load_policy_file(policy_path)),
        "open_nsfw alone >= 0.5": single_model("open_nsfw", 0.5),
        "image_safety_s alone >= 0.5": single_model("image_safety_s", 0.5),
    }
    out: dict[str, Any] = {"files": len(entries), "rejected_by_decoder": rejected, "heldout_drift": sorted(drift),
                           "splits": {}}
    for split in ("calib", "heldout"):
        part = [r for r in rows if r.entry.split == split and r.entry.id not in drift]
        out["splits"][split] = {name: judge(part, d) for name, d in deciders.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-build", action="store_true", help="use the existing manifest as it is")
    parser.add_argument("--search", action="store_true", help="per-model threshold search on the calib split")
    args = parser.parse_args(argv)
    if args.search:
        rows, _ = scored_rows([e for e in load_manifest() if e.split == "calib"])
        for cand in search(rows)[:40]:
            print(cand)
        return 0
    out = report(args.policy, rebuild=not args.no_build)
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    print(f"safe files {out['files']}, rejected by the decoder (never scored) {out['rejected_by_decoder']}, "
          f"held-out files that drifted from {FROZEN.name} (excluded) {len(out['heldout_drift'])}")
    print(f"{'split':8} {'rule':34} {'n':>5} {'review':>6} {'rate':>7} {'95% CI':>14} {'block':>6} "
          f"{'rate':>7} {'95% CI':>14}")
    for split, judged in out["splits"].items():
        for name, j in judged.items():
            print(_fmt(name, split, j))
    for split, judged in out["splits"].items():
        for name, j in judged.items():
            if name.startswith("after"):
                for f in j["flagged"]:
                    sc = " ".join(f"{m}.{c}={v:.3f}" for m, s in f["scores"].items() for c, v in s.items())
                    print(f"  {split} {f['level']:6} {f['id']}  {sc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
