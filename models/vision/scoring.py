"""Owns scoring frames with the configured classifiers and assembling the JSON-ready media result.

Frames arrive in batches (fixed-size from a list, or whatever has been decoded so far from a video that is still
decoding). Each batch is one session run per model, and the models run at the same time on separate threads:
with single-threaded sessions that keeps both cores busy without the per-op synchronisation of intra-op threads.

Early exit keeps its batch semantics whatever the batch sizes: scoring stops at the end of the `batch_size`
boundary after the first frame that crosses a threshold, exactly as when frames were scored in fixed batches.

Gated models (opt-in, `gates={model: threshold}`) run only on frames where the other models' combined score
for one of the gated model's categories reaches the threshold. That skips most of a model's work on ordinary
video, but can lose recall wherever the gated model alone would have flagged a frame. It is off by default:
recall cannot be measured offline (no unsafe images ship with the project), so enable it only after checking
recall on labelled data of your own.

Near-duplicate reuse (`reuse=ReusePolicy(...)`, the worker's default, see models.vision.reuse) runs the models
only on frames that differ from the last scored frame; the others copy its scores and say so (`reused_ms`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

from models.vision.classifiers import CATEGORIES, OnnxImageClassifier, combine
from models.vision.decode import Frame
from models.vision.reuse import ReusePolicy, ReuseTracker
from models.vision.segments import ScoredFrame, crosses, merge_segments

if TYPE_CHECKING:
    from models.vision.pipeline import Prepared


class Scorer:
    """Scores batches of frames in order; collects per-frame results, early exit and gate statistics."""

    def __init__(self, models: Sequence[OnnxImageClassifier], batch_size: int,
                 early_exit: Mapping[str, float] | None = None, gates: Mapping[str, float] | None = None,
                 reuse: ReusePolicy | None = None) -> None:
        gates = dict(gates or {})
        self.models = list(models)
        self.batch_size = batch_size
        self.early_exit = dict(early_exit or {})
        always = [m for m in models if m.name not in gates]
        covered = {c for m in always for c in m.categories}
        # A gate needs another model that scores one of its categories; otherwise it would never open.
        self.gated = [(m, gates[m.name]) for m in models if m.name in gates and covered & set(m.categories)]
        gated_names = {m.name for m, _ in self.gated}
        self.always = [m for m in models if m.name not in gated_names]
        self.gated_runs = {m.name: 0 for m, _ in self.gated}
        self.frames: list[dict[str, Any]] = []
        self.scored: list[ScoredFrame] = []
        self.early: dict[str, Any] | None = None
        self._target: int | None = None
        self.reuse = ReuseTracker(reuse) if reuse is not None else None
        workers = max(len(self.always), 1) - 1
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score") if workers else None

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def done(self) -> bool:
        """True once an early exit has been found and its batch is complete: further frames are not scored."""
        return self._target is not None and len(self.frames) >= self._target

    def _run(self, models: Sequence[OnnxImageClassifier], rgbs: list[Any]) -> dict[str, list[dict[str, float]]]:
        if not rgbs:  # every frame of the batch reused earlier scores
            return {m.name: [] for m in models}
        # The first model runs on this thread while the pool runs the others on the same batch.
        futures = {m.name: self._pool.submit(m.predict, rgbs, self.batch_size) for m in models[1:]} \
            if self._pool is not None else {}
        out = {m.name: m.predict(rgbs, self.batch_size) for m in models if m.name not in futures}
        out.update({name: future.result() for name, future in futures.items()})
        return out

    def add(self, batch: Sequence[Frame]) -> None:
        """Score `batch` (the frames following those already scored)."""
        if self.done() or not batch:
            return
        base = len(self.frames)
        plan: list[int | None] = self.reuse.plan(batch, base) if self.reuse else [None] * len(batch)
        todo = [i for i, source in enumerate(plan) if source is None]
        rgbs = [batch[i].rgb for i in todo]
        per_model = self._run(self.always, rgbs)
        fresh: list[dict[str, dict[str, float]]] = [
            {name: preds[k] for name, preds in per_model.items()} for k in range(len(todo))]
        for model, threshold in self.gated:
            partial = [combine(ms) for ms in fresh]
            chosen = [k for k, p in enumerate(partial) if any(p[c] >= threshold for c in model.categories)]
            if chosen:
                preds = model.predict([rgbs[k] for k in chosen], self.batch_size)
                for k, pred in zip(chosen, preds, strict=True):
                    fresh[k][model.name] = pred
                self.gated_runs[model.name] += len(chosen)
        scored = iter(fresh)
        model_scores: list[dict[str, dict[str, float]]] = []
        for source in plan:
            if source is None:
                model_scores.append(next(scored))
            else:  # the anchor precedes this frame: earlier in this batch, or already in self.frames
                earlier = model_scores[source - base] if source >= base else self.frames[source]["model_scores"]
                model_scores.append({name: dict(s) for name, s in earlier.items()})
        for frame, scores, source in zip(batch, model_scores, plan, strict=True):
            ordered = {m.name: scores[m.name] for m in self.models if m.name in scores}
            combined = combine(ordered)
            record: dict[str, Any] = {"ts_ms": frame.ts_ms, "index": frame.index, "reasons": list(frame.reasons),
                                      "scores": combined, "model_scores": ordered}
            if source is not None:
                record["reused_ms"] = self.frames[source]["ts_ms"]  # the anchor is appended before this frame
            self.frames.append(record)
            self.scored.append(ScoredFrame(frame.ts_ms, combined))
            hit = crosses(combined, self.early_exit) if self.early_exit else None
            if hit and self.early is None:
                position = len(self.frames)
                self.early = {"category": hit, "ts_ms": frame.ts_ms, "frames_scored": position}
                # The end of the fixed-size batch holding this frame: what the verdict has always covered.
                self._target = -(-position // self.batch_size) * self.batch_size
        if self._target is not None and len(self.frames) > self._target:
            del self.frames[self._target:], self.scored[self._target:]

    def notes(self) -> list[str]:
        out = [f"{name} ran on {runs} of {len(self.frames)} frames (gated)" for name, runs in self.gated_runs.items()]
        reused = sum("reused_ms" in f for f in self.frames)
        if reused:
            out.append(f"scores reused for {reused} of {len(self.frames)} frames (near-duplicates of a scored frame)")
        return out


def assemble(prepared: Prepared, scorer: Scorer, segment_thresholds: Mapping[str, float],
             merge_gap_ms: int) -> dict[str, Any]:
    """The JSON-ready result of one file from its decoded form and its scores."""
    frames_out = scorer.frames
    segments = merge_segments(scorer.scored, segment_thresholds, merge_gap_ms=merge_gap_ms,
                              duration_ms=prepared.duration_ms or None)
    scores = {c: max((f["scores"][c] for f in frames_out), default=0.0) for c in CATEGORIES}
    # A gated model has no entry on frames it skipped: its maximum is over the frames it saw.
    model_max = {
        m.name: {c: max((f["model_scores"][m.name][c] for f in frames_out if m.name in f["model_scores"]),
                        default=0.0) for c in m.categories}
        for m in scorer.models
    }
    return {
        "kind": prepared.kind, "format": prepared.fmt, "width": prepared.width, "height": prepared.height,
        "duration_ms": prepared.duration_ms, "animated": prepared.animated,
        "hashes": prepared.hashes(),
        "models": [m.info() for m in scorer.models],
        "scores": scores, "model_scores": model_max,
        "frames": frames_out, "segments": [seg.as_dict() for seg in segments],
        "early_exit": scorer.early, "sampling": prepared.sampling, "notes": prepared.notes + scorer.notes(),
    }
