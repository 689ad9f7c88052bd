"""Owns the media moderation flow of one item: hash lists first, then safe decoding, sampling and scoring."""

from __future__ import annotations

import logging
from pathlib import Path

from service.core.domain import Item, Verdict
from service.core.policy import Policy
from service.store.blobs import BlobStore
from service.store.hashlists import HashMatcher, Match
from service.store.items import verdict_key
from workers import runtime
from workers.lifecycle import VERDICT_CACHE_TTL_S, fail, finish_all, mark_processing
from workers.runtime import Runtime

log = logging.getLogger(__name__)

_MATCHER: HashMatcher | None = None


def matcher(rt: Runtime) -> HashMatcher:
    global _MATCHER
    if _MATCHER is None:
        _MATCHER = HashMatcher(rt.redis, rt.settings.media.pdq_match_distance)
    return _MATCHER


MAX_MATCHED_FRAMES = 50  # a long video matching throughout names its first frames, not hundreds


def hash_verdict(hit: Match, policy: Policy, frame_ts_ms: list[int] | None = None) -> Verdict:
    """A block by hash list. For a video's PDQ match, `frame_ts_ms` holds the sampled frames' timestamps, so the
    reason says where it matched: `frame_ts_ms` of the best match and `matched_frames_ms` of every match."""
    reason: dict[str, object] = {
        "type": "hash_match", "code": "hash_match", "list": hit.list_name, "hash_kind": hit.kind,
        "distance": hit.distance, "list_hash": hit.list_hash, "query_hash": hit.query_hash}
    if frame_ts_ms and hit.query_indexes:
        reason["frame_ts_ms"] = frame_ts_ms[hit.query_indexes[0]]
        reason["matched_frames_ms"] = sorted(frame_ts_ms[i] for i in hit.query_indexes)[:MAX_MATCHED_FRAMES]
    return {"decision": "block", "scores": {}, "flagged": [], "reasons": [reason], "explanation": None,
            "models": [], "policy_version": policy.id, "media": None}


def evaluate(rt: Runtime, item: Item, path: Path, policy: Policy) -> tuple[Verdict, str]:
    """(verdict, cache key) for a stored file; raises MediaError for files that cannot be decoded.

    Precedence is unchanged: exact hash match, bad input, PDQ match, missing models, cached verdict, model scores.
    But a video's frames are scored while it is still decoding, so the cache is read before decoding (its key
    needs only the content hash) and scoring starts only when its result can be the verdict.
    """
    from models.vision.pipeline import MediaJob

    hit = matcher(rt).match(item["tenant"], item["content_hash"])
    if hit:
        return hash_verdict(hit, policy), ""
    slot = runtime.vision_models(rt)
    key = verdict_key(item["content_hash"], slot.model_id or "", policy.id) if slot.obj is not None else ""
    [cached] = rt.items.cached_verdicts([key]) if key else [None]
    with MediaJob(path, rt.settings.media, item["content_hash"], score=bool(key) and cached is None) as job:
        prepared = job.prepared()
        hit = matcher(rt).match(item["tenant"], None, prepared.pdq_hex())
        if hit:
            frames = [h.ts_ms for h in prepared.pdq] if prepared.kind == "video" or prepared.animated else None
            return hash_verdict(hit, policy, frames), ""  # leaving the block stops the speculative scoring
        if slot.obj is None:
            raise ModelUnavailable(slot.error or "image models not loaded")
        if cached is not None:
            return cached, key
        result = job.result()
    decision, flagged = policy.decide(result["scores"])
    media = {k: result[k] for k in ("format", "width", "height", "duration_ms", "animated", "hashes", "frames",
                                   "segments", "early_exit", "sampling", "notes", "model_scores")}
    verdict: Verdict = {"decision": decision, "scores": {c: round(v, 4) for c, v in result["scores"].items()},
               "flagged": flagged, "reasons": [], "explanation": None, "models": result["models"],
               "policy_version": policy.id, "media": media}
    return rt.items.claim_verdict(key, verdict, VERDICT_CACHE_TTL_S), key


class ModelUnavailable(RuntimeError):
    pass


def run(rt: Runtime, item_id: str) -> None:
    from models.vision.errors import MediaError

    items = mark_processing(rt, [item_id])
    if not items:
        return
    item = items[0]
    path = BlobStore(rt.settings.blob_dir).path(item["blob_key"] or "")
    if not path.is_file():
        fail(rt, [item_id], "blob_missing", f"uploaded file {item['blob_key']} is gone")
        return
    policy = rt.policies.effective(item["tenant"]).for_kind(item["kind"])
    try:
        verdict, key = evaluate(rt, item, path, policy)
    except MediaError as exc:
        fail(rt, [item_id], exc.code, exc.message, status="rejected")
        return
    except ModelUnavailable as exc:
        fail(rt, [item_id], "model_unavailable", str(exc))
        return
    finish_all(rt, [(item, verdict, key, policy)])
