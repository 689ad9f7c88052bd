"""Owns the recommendation endpoints: per-user lists, similar items, rating fold-in, single predictions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from companion.deps import State
from companion.errors import UnknownItemError, ValidationFailed
from companion.schemas import ID_PATTERN, PredictionOut, RatingsIn, RatingsOut, RecItem, RecResponse
from models.recsys.engine import RecEngine, RecResult, UnknownItem

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])
UserId = Annotated[str, Path(pattern=ID_PATTERN)]
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]
StrategyQ = Annotated[Literal["svd", "knn", "content", "hybrid"] | None, Query()]


def _check_k(state: State, k: int) -> None:
    hi = state.settings.companion.max_k
    if not 1 <= k <= hi:
        raise ValidationFailed(f"k must be between 1 and {hi}", {"k": k, "max_k": hi})


def _items(state: State, engine: RecEngine, res: RecResult) -> list[RecItem]:
    out = []
    for r in res.items:
        it = engine.item(r.item_id)
        out.append(RecItem(item_id=r.item_id, external_id=state.external_id(r.item_id), title=it.title,
                           year=it.year, genres=it.genres, score=round(r.score, 4), reason=r.reason))
    return out


@router.get("/users/{user_id}", response_model=RecResponse)
def recommend_for_user(state: State, user_id: UserId, k: int = 10, strategy: StrategyQ = None) -> RecResponse:
    """Top-k unrated, unblocked items; cold-start users get popular items with fallback=true."""
    _check_k(state, k)
    strat = strategy or state.settings.companion.default_strategy
    res = state.engine.recommend(user_id, k, strat, state.blocked, state.external_id)
    return RecResponse(user_id=user_id, strategy=strat, fallback=res.fallback, fallback_reason=res.fallback_reason,
                       excluded_blocked=res.excluded_blocked, items=_items(state, state.engine, res))


@router.get("/items/{item_id}/similar", response_model=RecResponse)
def similar_items(state: State, item_id: ItemId, k: int = 10) -> RecResponse:
    """Content-similar items (TF-IDF cosine), unblocked."""
    _check_k(state, k)
    try:
        res = state.engine.similar(item_id, k, state.blocked, state.external_id)
    except UnknownItem as exc:
        raise UnknownItemError(f"unknown item {item_id!r}", {"item_id": item_id}) from exc
    return RecResponse(item_id=item_id, strategy="content", fallback=False,
                       excluded_blocked=res.excluded_blocked, items=_items(state, state.engine, res))


@router.post("/users/{user_id}/ratings", response_model=RatingsOut)
def add_ratings(state: State, user_id: UserId, body: RatingsIn) -> RatingsOut:
    """Add/replace ratings and fold the user into every model without a retrain."""
    cap = state.settings.companion.max_ratings_per_request
    if len(body.ratings) > cap:
        raise ValidationFailed(f"at most {cap} ratings per request", {"max": cap})
    try:
        n = state.engine.add_ratings(user_id, [(r.item_id, r.rating) for r in body.ratings])
    except UnknownItem as exc:
        raise UnknownItemError(f"unknown item {exc.args[0]!r}", {"item_id": exc.args[0]}) from exc
    return RatingsOut(user_id=user_id, n_ratings=n)


@router.get("/users/{user_id}/items/{item_id}", response_model=PredictionOut)
def predict_rating(state: State, user_id: UserId, item_id: ItemId, strategy: StrategyQ = None) -> PredictionOut:
    """Estimated rating; unknown users fall back to the item's Bayesian average (fallback=true)."""
    strat = strategy or state.settings.companion.default_strategy
    try:
        est, fallback = state.engine.predict(user_id, item_id, strat)
    except UnknownItem as exc:
        raise UnknownItemError(f"unknown item {item_id!r}", {"item_id": item_id}) from exc
    return PredictionOut(user_id=user_id, item_id=item_id, strategy=strat, estimate=round(est, 4),
                         fallback=fallback)
