"""Builds the "movie-like" 720p bench video from real photos, deterministically (seeded; cached under var/).

    .venv/bin/python -m bench.bench_media_movie        # writes and prints the path; bench_media*.py call make_movie

60 s, 1280×720, 30 fps, mp4v, 13 shots of 2–8 s made from the scikit-image sample photos and the LFW face subset
(the safe-set sources, training.vision.fetch): static shots, one with a subject moving across it, a hand-held
shot (random-walk jitter of ~1–2 px), slow pans and zooms, two fast pans, fades from/to black, a
cross-dissolve, and sensor noise (σ ≈ 3 grey levels, fresh each frame) everywhere. Static shots are what
near-duplicate reuse (models.vision.reuse) can save; the bench also reports the worst case (bench_media.make_video:
textures moving 120 px/s, every sampled frame different), so the figures are not only the flattering ones.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.vision.fetch import CACHE, DATA_DIR, fetch_data  # noqa: E402

SIZE = (1280, 720)
FPS = 30


@dataclass(frozen=True)
class Shot:
    source: str  # a scikit-image photo, or "faces" (a montage of LFW faces)
    seconds: float
    kind: str  # static | subject | handheld | pan | zoom | fast
    fade_in: float = 0.0  # from black
    fade_out: float = 0.0  # to black
    dissolve: float = 0.0  # into the next shot


SHOTS = (
    Shot("astronaut.png", 6, "static", fade_in=0.5),
    Shot("coffee.png", 5, "zoom"),
    Shot("chelsea.png", 8, "subject"),
    Shot("rocket.jpg", 4, "pan"),
    Shot("motorcycle_left.png", 2, "fast"),
    Shot("hubble_deep_field.jpg", 7, "zoom"),
    Shot("camera.png", 3, "static", dissolve=0.5),
    Shot("faces", 5, "static"),
    Shot("moon.png", 4, "static"),
    Shot("coffee.png", 5, "handheld"),
    Shot("grass.png", 2, "fast"),
    Shot("chelsea.png", 6, "pan"),
    Shot("astronaut.png", 3, "handheld", fade_out=0.5),
)


def _photo(name: str) -> np.ndarray:
    if name == "faces":
        faces = np.load(DATA_DIR / "skimage" / "lfw_subset.npy")[:15]  # 25×25 grey, 0..1
        rows = [np.hstack(list(faces[r * 5:(r + 1) * 5])) for r in range(3)]
        small = (np.vstack(rows) * 255).astype(np.uint8)
        grey = cv2.resize(small, (small.shape[1] * 8, small.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(Image.open(DATA_DIR / "skimage" / name).convert("RGB"))


def _camera(shot: Shot, t: float, rng: np.random.Generator, state: list[float]) -> tuple[float, float, float]:
    """(zoom, x, y) of the view at `t` (0..1 through the shot); x, y are the view centre as image fractions."""
    if shot.kind == "zoom":
        return 1.0 + 0.15 * t, 0.5, 0.5
    if shot.kind == "pan":
        return 1.2, 0.35 + 0.3 * t, 0.5
    if shot.kind == "fast":
        return 1.3, 0.1 + 0.8 * t, 0.5 + 0.1 * np.sin(12 * t)
    if shot.kind == "handheld":  # random walk, pulled back to the centre
        state[0] = 0.9 * state[0] + float(rng.normal(0, 0.0015))
        state[1] = 0.9 * state[1] + float(rng.normal(0, 0.0015))
        return 1.1, 0.5 + state[0], 0.5 + state[1]
    return 1.0, 0.5, 0.5


def _render(img: np.ndarray, zoom: float, cx: float, cy: float) -> np.ndarray:
    h, w = img.shape[:2]
    out_w, out_h = SIZE
    k = min(w / out_w, h / out_h) / zoom  # source pixels per output pixel (cover the frame)
    half_w, half_h = out_w * k / 2, out_h * k / 2
    sx = float(np.clip(cx * w, half_w, w - half_w))
    sy = float(np.clip(cy * h, half_h, h - half_h))
    matrix = np.array([[k, 0, sx - half_w], [0, k, sy - half_h]], dtype=np.float64)
    return cv2.warpAffine(img, matrix, SIZE, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def _subject(frame: np.ndarray, sprite: np.ndarray, t: float) -> None:
    """A face crossing a static shot slowly (≈ 40 px/s), as a person walking through a still frame."""
    sh, sw = sprite.shape[:2]
    x = int(200 + 320 * t)
    frame[400:400 + sh, x:x + sw] = sprite


def shot_frames(shot: Shot, rng: np.random.Generator) -> list[np.ndarray]:
    img = _photo(shot.source)
    n = round(shot.seconds * FPS)
    sprite = _photo("faces")[:200, :200]
    state = [0.0, 0.0]
    frames = []
    for i in range(n):
        zoom, cx, cy = _camera(shot, i / max(1, n - 1), rng, state)
        frame = _render(img, zoom, cx, cy)
        if shot.kind == "subject":
            _subject(frame, sprite, i / max(1, n - 1))
        gain = 1.0
        if shot.fade_in and i < shot.fade_in * FPS:
            gain = i / (shot.fade_in * FPS)
        if shot.fade_out and n - i <= shot.fade_out * FPS:
            gain = (n - 1 - i) / (shot.fade_out * FPS)
        if gain < 1.0:
            frame = (frame.astype(np.float32) * gain).astype(np.uint8)
        frames.append(frame)
    return frames


def make_movie(path: Path | None = None) -> Path:
    """The cached movie-like video (RGB frames → BGR mp4v), built once."""
    path = path or CACHE / "bench" / "movie_60s_720p_mp4v_v1.mp4"
    if path.exists():
        return path
    fetch_data()
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(14)
    noise_bank = [rng.normal(0, 3, (SIZE[1], SIZE[0], 3)).astype(np.int16) for _ in range(8)]
    tmp = path.with_suffix(".part.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), FPS, SIZE)
    carry: list[np.ndarray] = []  # the dissolving tail of the previous shot
    for shot in SHOTS:
        frames = shot_frames(shot, rng)
        for i, tail in enumerate(carry):  # cross-dissolve over the first frames of this shot
            a = (i + 1) / (len(carry) + 1)
            frames[i] = cv2.addWeighted(frames[i], a, tail, 1 - a, 0)
        cut = round(shot.dissolve * FPS)
        carry = frames[len(frames) - cut:] if cut else []
        for frame in frames[:len(frames) - cut]:
            noise = noise_bank[int(rng.integers(len(noise_bank)))]
            shift = int(rng.integers(0, 64))
            noisy = np.clip(frame.astype(np.int16) + np.roll(noise, shift, axis=1), 0, 255).astype(np.uint8)
            writer.write(cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.rename(path)
    return path


if __name__ == "__main__":
    print(make_movie())
