"""Owns the recommendation read endpoints and ratings: per-user lists, similar items, predictions, rate/unrate."""

from __future__ import annotations

from typing import Annotated, Literal

import redis
from fastapi import APIRouter, Path, Query

from companion.deps import State
from companion.errors import RecsStoreUnavailable, UnknownItemError, UnknownRatingError, ValidationFailed
from companion.schemas import ID_PATTERN, PredictionOut, RatingsIn, RatingsOut, RecItem, RecResponse
from models.recsys.engine import Catalog, RecResult, UnknownItem

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])
UserId = Annotated[str, Path(pattern=ID_PATTERN)]
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]
StrategyQ = Annotated[Literal["svd", "knn", "content", "implicit", "hybrid"] | None, Query()]


def check_k(state: State, k: int) -> None:
    hi = state.settings.companion.max_k
    if not 1 <= k <= hi:
        raise ValidationFailed(f"k must be between 1 and {hi}", {"k": k, "max_k": hi})


def _items(state: State, cat: Catalog, res: RecResult) -> list[RecItem]:
    out = []
    for r in res.items:
        it = cat.item(r.item_id)
        out.append(RecItem(item_id=r.item_id, external_id=state.external_id(r.item_id), title=it.title,
                           year=it.year, genres=it.genres, score=round(r.score, 4), reason=r.reason, source=r.source))
    return out


def _unknown(item_id: str) -> UnknownItemError:
    return UnknownItemError(f"unknown item {item_id!r}", {"item_id": item_id})


@router.get("/users/{user_id}", response_model=RecResponse)
def recommend_for_user(state: State, user_id: UserId, k: int = 10, strategy: StrategyQ = None) -> RecResponse:
    """Top-k items the user has not rated, watched, hidden or had blocked; fallbacks say so and why."""
    check_k(state, k)
    strat = strategy or state.settings.companion.default_strategy
    engine, cat, hist = state.recs.user(user_id)
    res = engine.recommend(hist, k, strat, state.blocked, state.external_id, cat)
    return RecResponse(user_id=user_id, strategy=strat, model_version=res.model_version, fallback=res.fallback,
                       fallback_reason=res.fallback_reason, history_bucket=res.bucket,
                       excluded_blocked=res.excluded_blocked, items=_items(state, cat, res))


@router.get("/items/{item_id}/similar", response_model=RecResponse)
def similar_items(state: State, item_id: ItemId, k: int = 10) -> RecResponse:
    """Content-similar items (TF-IDF cosine), unblocked; includes items added at runtime."""
    check_k(state, k)
    engine, cat = state.recs.current()
    try:
        res = engine.similar(item_id, k, state.blocked, state.external_id, cat)
    except UnknownItem as exc:
        raise _unknown(item_id) from exc
    return RecResponse(item_id=item_id, strategy="content", model_version=res.model_version, fallback=False,
                       excluded_blocked=res.excluded_blocked, items=_items(state, cat, res))


@router.post("/users/{user_id}/ratings", response_model=RatingsOut)
def add_ratings(state: State, user_id: UserId, body: RatingsIn) -> RatingsOut:
    """Add/replace ratings (stored in Redis, shared by every process); the next list folds them in."""
    cap = state.settings.companion.max_ratings_per_request
    if len(body.ratings) > cap:
        raise ValidationFailed(f"at most {cap} ratings per request", {"max": cap})
    engine, cat = state.recs.current()
    for r in body.ratings:
        if r.item_id not in cat.index:
            raise _unknown(r.item_id)
    try:
        n = state.recs.store.set_ratings(user_id, {r.item_id: r.rating for r in body.ratings})
        state.recs.touch_if_new(engine, [r.item_id for r in body.ratings])
    except redis.RedisError as exc:
        raise RecsStoreUnavailable("cannot store ratings", {"error": type(exc).__name__}) from exc
    return RatingsOut(user_id=user_id, n_ratings=n, model_version=engine.version)


@router.delete("/users/{user_id}/ratings/{item_id}", response_model=RatingsOut)
def delete_rating(state: State, user_id: UserId, item_id: ItemId) -> RatingsOut:
    """Remove one rating; the next list and the next refit no longer use it. 404 if it was not rated."""
    engine, _ = state.recs.current()
    try:
        removed = state.recs.store.delete_rating(user_id, item_id)
        n = len(state.recs.store.user_state(user_id).ratings)
        if removed:
            state.recs.touch_if_new(engine, [item_id])
    except redis.RedisError as exc:
        raise RecsStoreUnavailable("cannot delete the rating", {"error": type(exc).__name__}) from exc
    if not removed:
        raise UnknownRatingError(f"user {user_id!r} has not rated {item_id!r}", {"item_id": item_id})
    return RatingsOut(user_id=user_id, n_ratings=n, model_version=engine.version)


@router.get("/users/{user_id}/items/{item_id}", response_model=PredictionOut)
def predict_rating(state: State, user_id: UserId, item_id: ItemId, strategy: StrategyQ = None) -> PredictionOut:
    """Estimated rating; no ratings yet (or an item not yet fitted) falls back to its average, fallback=true."""
    strat = strategy or state.settings.companion.default_strategy
    engine, cat, hist = state.recs.user(user_id)
    try:
        est, fallback = engine.predict(hist, item_id, strat, cat)
    except UnknownItem as exc:
        raise _unknown(item_id) from exc
    return PredictionOut(user_id=user_id, item_id=item_id, strategy=strat, estimate=round(est, 4),
                         fallback=fallback, model_version=engine.version)
