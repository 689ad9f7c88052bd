"""Load-time graph rewrite (GELU fusion) and the shared resize: same numbers as the plain graph and the plain
preprocessing, so the speed-up cannot move a verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image, ImageFilter

from models.vision.classifiers import ImageSafetyS
from models.vision.onnx_graph import fuse_gelu

PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "coffee.png")


def _session(graph: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(graph, sess_options=opts, providers=["CPUExecutionProvider"])


def _rgb(data_dir: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(data_dir / "skimage" / name).convert("RGB"))


@pytest.fixture(scope="module")
def safety(model_dir: Path) -> ImageSafetyS:
    return ImageSafetyS(model_dir, threads=1)


def test_gelu_fusion_matches_the_exported_graph(model_dir: Path, data_dir: Path, safety: ImageSafetyS) -> None:
    original = (model_dir / "image_safety_s" / "model.onnx").read_bytes()
    fused, count = fuse_gelu(original)
    assert count == 25 and b"Erf" not in fused and b"Erf" in original
    batch = np.stack([safety.preprocess(_rgb(data_dir, n)) for n in PHOTOS])
    (want,) = _session(original).run(None, {"image": batch})
    (got,) = _session(fused).run(None, {"image": batch})
    assert np.abs(np.asarray(got) - np.asarray(want)).max() < 1e-5
    # The classifier runs the fused graph.
    (live,) = safety.session.run(None, {safety.input_name: batch})
    assert np.abs(np.asarray(live) - np.asarray(want)).max() < 1e-5


def test_graphs_without_the_pattern_are_returned_unchanged(model_dir: Path) -> None:
    original = (model_dir / "open_nsfw" / "model.onnx").read_bytes()
    fused, count = fuse_gelu(original)
    assert count == 0 and fused is original
    assert fuse_gelu(b"") == (b"", 0)


def _plain_blurpad(rgb: np.ndarray, t: int = 224) -> np.ndarray:
    """The preprocessing as first written: two independent Lanczos resizes."""
    img = Image.fromarray(rgb)
    w, h = img.size
    scale = min(t / w, t / h)
    fw, fh = max(1, min(t, round(w * scale))), max(1, min(t, round(h * scale)))
    canvas = img.resize((t, t), Image.Resampling.LANCZOS).filter(ImageFilter.GaussianBlur(10))
    canvas.paste(img.resize((fw, fh), Image.Resampling.LANCZOS), ((t - fw) // 2, (t - fh) // 2))
    return np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)


@pytest.mark.parametrize("shape", [(288, 512), (720, 1280), (512, 288), (224, 224), (300, 300), (25, 25),
                                   (17, 900), (100, 40), (1001, 1000), (1000, 1001), (224, 500), (120, 224)])
def test_shared_resize_is_bit_identical(safety: ImageSafetyS, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert np.array_equal(safety.preprocess(rgb), _plain_blurpad(rgb))
