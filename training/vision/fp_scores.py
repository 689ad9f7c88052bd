"""Owns per-image model scores of the safe set, cached on disk so threshold and combination tuning costs nothing.

Each file is decoded the way the service decodes uploads (models.vision.decode.decode_image: format allow-list,
alpha flattened on white, EXIF orientation, every page/frame of animations up to the limits), scored by every
configured model, and its per-model, per-category maximum over frames is appended to
var/cache/vision/fp_scores/<model>.jsonl keyed by the file's SHA-256 and the model's version string. Files the
service would reject (bad or tiny images) are cached as errors: they never reach the models in production.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.media_settings import MediaSettings
from models.vision.classifiers import OnnxImageClassifier, load_classifiers
from models.vision.decode import decode_image
from models.vision.errors import MediaError
from training.vision.fetch import CACHE

SCORE_DIR = CACHE / "fp_scores"
MAX_FRAMES_PER_FILE = 8  # animations/multi-page test files: enough to find the worst frame of a few pages
log = logging.getLogger(__name__)

ModelScores = dict[str, dict[str, float]]  # model name -> category -> score


def _cache_path(model: OnnxImageClassifier) -> Path:
    return SCORE_DIR / f"{model.name}.jsonl"


def _load_cache(model: OnnxImageClassifier) -> dict[str, dict[str, float] | str]:
    out: dict[str, dict[str, float] | str] = {}
    path = _cache_path(model)
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["version"] == model.version:
                out[row["sha256"]] = row["scores"] if "scores" in row else "error:" + row["error"]
    return out


def score_files(files: Sequence[tuple[str, Path]], settings: MediaSettings | None = None,
                models: Sequence[OnnxImageClassifier] | None = None, chunk: int = 64,
                use_cache: bool = True) -> dict[str, ModelScores | str]:
    """{sha256: {model: {category: max score over frames}}} or {sha256: 'error:<code>'} for (sha256, path) pairs."""
    s = settings or MediaSettings()
    models = list(models) if models is not None else load_classifiers(s.models, s.model_dir, s.onnx_threads)
    caches = {m.name: (_load_cache(m) if use_cache else {}) for m in models}
    todo = [(sha, p) for sha, p in files if any(sha not in caches[m.name] for m in models)]
    SCORE_DIR.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        for start in range(0, len(todo), chunk):
            batch = todo[start:start + chunk]
            frames, owners, errors = [], [], {}
            for sha, path in batch:
                try:
                    decoded = decode_image(path)
                except MediaError as exc:
                    errors[sha] = exc.code
                    continue
                for f in decoded.frames[:MAX_FRAMES_PER_FILE]:
                    frames.append(f.rgb)
                    owners.append(sha)
            futures = {m.name: pool.submit(m.predict, frames, s.batch_size) for m in models}
            preds = {name: fut.result() for name, fut in futures.items()}
            for m in models:
                per_file: dict[str, dict[str, float]] = {}
                for sha, p in zip(owners, preds[m.name], strict=True):
                    cur = per_file.setdefault(sha, dict.fromkeys(p, 0.0))
                    for c, v in p.items():
                        cur[c] = max(cur[c], v)
                if use_cache:
                    with open(_cache_path(m), "a") as fh:
                        for sha, sc in per_file.items():
                            fh.write(json.dumps({"sha256": sha, "version": m.version, "scores": sc}) + "\n")
                        for sha, code in errors.items():
                            fh.write(json.dumps({"sha256": sha, "version": m.version, "error": code}) + "\n")
                caches[m.name].update(per_file)
                caches[m.name].update({sha: "error:" + code for sha, code in errors.items()})
            log.info("scored %d/%d files", min(start + chunk, len(todo)), len(todo))
    out: dict[str, ModelScores | str] = {}
    for sha, _ in files:
        first = caches[models[0].name][sha]
        if isinstance(first, str):
            out[sha] = first
        else:
            out[sha] = {m.name: caches[m.name][sha] for m in models}  # type: ignore[misc]
    return out


if __name__ == "__main__":
    from training.vision.safe_set import SET_DIR, load_manifest

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    entries = load_manifest()
    result = score_files([(e.sha256, SET_DIR / e.path) for e in entries])
    print(f"{sum(not isinstance(v, str) for v in result.values())} scored, "
          f"{sum(isinstance(v, str) for v in result.values())} rejected by the decoder")
