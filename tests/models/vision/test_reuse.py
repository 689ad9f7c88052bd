"""Near-duplicate reuse: a static shot reuses the last scored frame's scores; a cut or a changed frame does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.media_settings import MediaSettings
from models.vision.decode import Frame
from models.vision.pipeline import moderate_file
from models.vision.reuse import ReusePolicy, ReuseTracker
from models.vision.scoring import Scorer
from tests.models.vision.media import write_photo_clip
from tests.models.vision.test_scoring import Constant


@pytest.fixture(scope="module")
def clip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 0–4 s static astronaut; 4–6 s the same with a green block in a corner (no cut); 6–9 s coffee (a cut).
    out = tmp_path_factory.mktemp("reuse") / "static.mp4"
    return write_photo_clip(out, data_dir, [(4.0, "astronaut.png", False), (2.0, "astronaut.png", True),
                                            (3.0, "coffee.png", False)])


def test_static_clip_reuses_but_not_across_a_change_or_a_cut(clip: Path, model_dir: Path) -> None:
    on = moderate_file(clip, MediaSettings(model_dir=model_dir))
    off = moderate_file(clip, MediaSettings(model_dir=model_dir, reuse_scores=False))
    by_ts = {f["ts_ms"]: f for f in on["frames"]}
    reused = {f["ts_ms"]: f["reused_ms"] for f in on["frames"] if "reused_ms" in f}
    assert [f["ts_ms"] for f in on["frames"]] == [f["ts_ms"] for f in off["frames"]]
    assert not any("reused_ms" in f for f in off["frames"])
    # The static shot reuses frame 0; the changed frame at 4 s (not a cut) and the cut to coffee are scored.
    assert reused[1000] == reused[2000] == reused[3000] == 0
    assert 4000 not in reused and "cut" not in by_ts[4000]["reasons"]
    assert reused[5000] == 4000
    cut = min(f["ts_ms"] for f in on["frames"] if "cut" in f["reasons"])
    assert 5900 <= cut <= 6100 and cut not in reused
    for ts, source in reused.items():
        assert by_ts[ts]["model_scores"] == by_ts[source]["model_scores"]
    assert on["notes"][-1].startswith(f"scores reused for {len(reused)} of {len(on['frames'])} frames")
    # Reused scores stay next to the true ones (sensor noise only), and the verdict inputs barely move.
    for f_on, f_off in zip(on["frames"], off["frames"], strict=True):
        for category, score in f_off["scores"].items():
            assert f_on["scores"][category] == pytest.approx(score, abs=0.05)


def _frame(ts_ms: int, value: int, reasons: tuple[str, ...] = ("interval",)) -> Frame:
    rgb = np.full((36, 64, 3), value, dtype=np.uint8)
    rgb[0, 0, 0] = min(255, value + 1)
    return Frame(ts_ms, rgb, ts_ms // 1000, reasons)


def test_tracker_forces_a_rescore_and_compares_with_the_anchor_not_the_previous_frame() -> None:
    tracker = ReuseTracker(ReusePolicy(max_mean_diff=1.5, max_cell_diff=8.0, max_age_ms=5000))
    static = [_frame(t, 100) for t in range(0, 12000, 1000)]
    assert [i for i, p in enumerate(tracker.plan(static, 0)) if p is None] == [0, 5, 10]
    # A slow drift (1 level per frame) is compared with the anchor, so it is re-scored once it adds up.
    drift = ReuseTracker(ReusePolicy(max_mean_diff=1.5, max_cell_diff=8.0, max_age_ms=60_000))
    plan = drift.plan([_frame(t * 1000, 100 + t) for t in range(6)], 0)
    assert plan == [None, 0, None, 2, None, 4]


def test_scorer_reuses_across_batches_and_skips_the_models() -> None:
    model = Constant("m")
    frames = [_frame(t, 100) for t in range(0, 4000, 1000)] + [_frame(4000, 100, ("interval", "cut"))]
    with Scorer([model], batch_size=2, reuse=ReusePolicy()) as scorer:
        scorer.add(frames[:1])
        scorer.add(frames[1:3])  # every frame of this batch reuses: no model call at all
        scorer.add(frames[3:])
    assert model.seen == 2  # frame 0 and the cut frame
    assert [f.get("reused_ms") for f in scorer.frames] == [None, 0, 0, 0, None]
