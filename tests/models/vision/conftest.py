"""Fixtures for vision tests: fetched weights and media (idempotent), generated videos, a stand-in classifier."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from models.vision import classifiers
from tests.models.vision.media import write_video
from training.vision.fetch import DATA_DIR, MODEL_DIR, fetch_data, fetch_models


@pytest.fixture(scope="session")
def model_dir() -> Path:
    fetch_models(MODEL_DIR)
    return MODEL_DIR


@pytest.fixture(scope="session")
def data_dir() -> Path:
    fetch_data(DATA_DIR)
    return DATA_DIR


@pytest.fixture(scope="session")
def cut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s at 10 fps: scene 0 for 3 s, scene 1 for 4 s (cut at 3000 ms), scene 2 for 5 s (cut at 7000 ms)."""
    out = tmp_path_factory.mktemp("video") / "cuts.mp4"
    return write_video(out, [(3.0, 0), (4.0, 1), (5.0, 2)])


class RedDetector(classifiers.OnnxImageClassifier):
    """Test stand-in: `sexual` = share of strongly red pixels, so a red scene 'offends' at known times."""

    name = "red_detector"
    version = "test-1"
    categories = ("sexual",)

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:  # no ONNX session to build
        self.calls = 0

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 16) -> list[dict[str, float]]:
        self.calls += 1
        out = []
        for rgb in images:
            red = (rgb[:, :, 0] > 150) & (rgb[:, :, 1] < 100) & (rgb[:, :, 2] < 100)
            out.append({"sexual": float(red.mean())})
        return out


@pytest.fixture()
def red_detector() -> Iterator[str]:
    classifiers.register(RedDetector)
    yield RedDetector.name
    classifiers.REGISTRY.pop(RedDetector.name, None)
    for key in [k for k in classifiers._loaded if k[0] == RedDetector.name]:
        del classifiers._loaded[key]
