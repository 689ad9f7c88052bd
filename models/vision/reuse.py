"""Owns near-duplicate frame reuse: a sampled frame almost identical to the last scored one takes its scores.

Video is mostly shots that hold still for seconds; scoring both models on each 1 fps sample of such a shot spends
~70 ms of CPU to learn what the previous frame already said. A frame reuses the model scores of the last frame
that was actually scored (the anchor, never a frame that itself reused: differences cannot creep) when
  * its 32×32 colour thumbnail differs from the anchor's by at most `max_mean_diff` on average AND by at most
    `max_cell_diff` in every cell (a cell is ~16×9 px of a 512-px frame, so a small object appearing or
    moving in one corner is a changed frame even when the average barely moves), and
  * it is not a scene-cut frame, and the anchor is younger than `max_age_ms` (a forced re-score bounds how long
    a slow drift under the thresholds can go unscored).
Validation of the default thresholds on real footage: bench/bench_media_reuse.py and docs/models/vision.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.vision.decode import Frame

THUMB_SIDE = 32


@dataclass(frozen=True)
class ReusePolicy:
    # Colour values 0..255, averaged over a thumbnail cell.
    max_mean_diff: float = 1.5
    max_cell_diff: float = 8.0
    max_age_ms: int = 5000


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """32×32×3 float32 area average of the frame (any aspect ratio; only frames of one shape are compared)."""
    return cv2.resize(rgb, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean, max) absolute difference of two thumbnails, per cell averaged over the colour channels."""
    cells = np.abs(a - b).mean(axis=2)
    return float(cells.mean()), float(cells.max())


@dataclass
class _Anchor:
    thumb: np.ndarray
    shape: tuple[int, ...]
    ts_ms: int
    position: int


class ReuseTracker:
    """Decides, frame by frame in order, which frames are scored and which reuse an earlier frame's scores."""

    def __init__(self, policy: ReusePolicy) -> None:
        self.policy = policy
        self._anchor: _Anchor | None = None
        self.reused = 0

    def is_duplicate(self, frame: Frame, thumb: np.ndarray) -> bool:
        anchor, p = self._anchor, self.policy
        if anchor is None or "cut" in frame.reasons or anchor.shape != frame.rgb.shape:
            return False
        if not 0 <= frame.ts_ms - anchor.ts_ms < p.max_age_ms:
            return False
        mean, peak = difference(anchor.thumb, thumb)
        return mean <= p.max_mean_diff and peak <= p.max_cell_diff

    def plan(self, batch: Sequence[Frame], first_position: int) -> list[int | None]:
        """For each frame: None to score it (it becomes the anchor), or the position of the frame whose scores it
        reuses. Positions count every frame given to the tracker so far; `first_position` is the batch's first."""
        out: list[int | None] = []
        for offset, frame in enumerate(batch):
            thumb = thumbnail(frame.rgb)
            if self._anchor is not None and self.is_duplicate(frame, thumb):
                out.append(self._anchor.position)
                self.reused += 1
            else:
                self._anchor = _Anchor(thumb, frame.rgb.shape, frame.ts_ms, first_position + offset)
                out.append(None)
        return out
