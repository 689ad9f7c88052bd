"""Owns turning per-frame scores into merged offending segments (like Rekognition's AggregateBy SEGMENTS).

A frame offends a category when its score reaches that category's threshold. Offending frames of one
category closer than `merge_gap_ms` merge into one segment; a segment spans from its first offending frame
to the timestamp of the next sampled frame after its last one (or the media end), since the content is
assumed to continue until the next sample shows otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ScoredFrame:
    ts_ms: int
    scores: Mapping[str, float]


@dataclass
class Segment:
    category: str
    start_ms: int
    end_ms: int
    max_score: float
    max_score_ms: int
    frames: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def merge_segments(frames: Sequence[ScoredFrame], thresholds: Mapping[str, float], *,
                   merge_gap_ms: int = 2000, duration_ms: int | None = None) -> list[Segment]:
    """Offending segments sorted by (start_ms, category). Frames may come in any order."""
    ordered = sorted(frames, key=lambda f: f.ts_ms)
    out: list[Segment] = []
    for category, threshold in sorted(thresholds.items()):
        current: Segment | None = None
        for i, frame in enumerate(ordered):
            score = float(frame.scores.get(category, 0.0))
            if score < threshold:
                continue
            nxt = ordered[i + 1].ts_ms if i + 1 < len(ordered) else (duration_ms or frame.ts_ms)
            end = max(nxt, frame.ts_ms)
            if current is not None and frame.ts_ms - current.end_ms <= merge_gap_ms:
                current.end_ms = max(current.end_ms, end)
                current.frames += 1
                if score > current.max_score:
                    current.max_score, current.max_score_ms = score, frame.ts_ms
                continue
            if current is not None:
                out.append(current)
            current = Segment(category, frame.ts_ms, end, score, frame.ts_ms, 1)
        if current is not None:
            out.append(current)
    return sorted(out, key=lambda s: (s.start_ms, s.category))


def crosses(scores: Mapping[str, float], thresholds: Mapping[str, float]) -> str | None:
    """The first category (by name) whose score reaches its threshold, for early exit; None otherwise."""
    for category, threshold in sorted(thresholds.items()):
        if float(scores.get(category, 0.0)) >= threshold:
            return category
    return None
