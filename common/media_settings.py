"""Owns the media settings section (env: MOD_MEDIA__<FIELD>): upload limits, sampling and scoring options.

A pure leaf (pydantic only): the gateway checks upload limits with it and the vision models read sampling options
from it, and neither layer may import the other.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

_ROOT = Path(__file__).resolve().parents[1]


class MediaSettings(BaseModel):
    """Upload limits and sampling options for the media queue; nested under Settings.media."""

    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 500 * 1024 * 1024

    # Decoding. Pillow's own default bomb limit is ~89 Mpx; 50 Mpx still covers 8K photos.
    max_image_pixels: int = Field(default=50_000_000, gt=0)
    # Animated images decode every frame (GIF/WebP frames are deltas): cap the total work, not just one frame.
    max_animation_pixels: int = Field(default=1_000_000_000, gt=0)
    max_source_frames: int = Field(default=10_000, gt=0)
    # Below this a classifier sees nothing meaningful and a PDQ hash is noise.
    min_image_side: int = Field(default=16, ge=1)

    # Sampling (videos and animated images).
    sample_fps: float = Field(default=1.0, gt=0)
    max_frames: int = Field(default=300, ge=1)
    max_video_duration_s: float = Field(default=15 * 60, gt=0)
    # Histogram difference (Bhattacharyya distance, 0..1) above which two frames are a scene cut.
    scene_cut_threshold: float = Field(default=0.45, gt=0, le=1)
    # How often frames are compared for cuts; 0 compares every decoded frame (slower, exact cut times).
    scene_check_fps: float = Field(default=5.0, ge=0)
    # Share of max_frames reserved for extra frames at scene cuts.
    scene_cut_frame_share: float = Field(default=0.25, ge=0, lt=1)

    # Scoring.
    model_dir: Path = _ROOT / "var" / "models" / "vision"
    models: list[str] = Field(default_factory=lambda: ["open_nsfw", "image_safety_s"])
    batch_size: int = Field(default=16, ge=1)
    onnx_threads: int | None = None
    # Per-category scores at which a frame counts as offending when cutting segments; defaults to the default
    # policy's `review` level. The tenant's policy still decides the verdict from the scores.
    segment_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"sexual": 0.5, "violence": 0.5}
    )
    # Stop scoring a video once a frame crosses this (category → score), e.g. the policy's `block` levels;
    # empty disables early exit.
    early_exit_thresholds: dict[str, float] = Field(default_factory=dict)
    # Gap between offending frames still merged into one segment.
    segment_merge_gap_ms: int = Field(default=2000, ge=0)
    # Near-duplicate reuse (models.vision.reuse): a sampled frame whose 32×32 colour thumbnail differs from the
    # last scored frame's by at most reuse_max_mean_diff on average and reuse_max_cell_diff in every cell (0..255)
    # takes that frame's scores instead of running the models. Never at a scene cut; a frame is scored at
    # least every reuse_max_age_s. Validated in docs/models/vision.md (Performance); false scores every frame.
    reuse_scores: bool = True
    reuse_max_mean_diff: float = Field(default=1.5, ge=0)
    reuse_max_cell_diff: float = Field(default=8.0, ge=0)
    reuse_max_age_s: float = Field(default=5.0, gt=0)
    # PDQ hashes below this quality (0..100) are too flat to match on and are left out.
    pdq_min_quality: int = Field(default=50, ge=0, le=100)
    # ThreatExchange's confident-match distance for PDQ.
    pdq_match_distance: int = Field(default=31, ge=0, le=256)

    @model_validator(mode="after")
    def _check(self) -> MediaSettings:
        for name, value in {**self.segment_thresholds, **self.early_exit_thresholds}.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold for {name!r} must be within 0..1")
        return self
