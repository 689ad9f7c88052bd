"""Owns the recommendation write endpoints beyond ratings: events, "not interested", runtime items, model, refit."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import APIRouter, Path

from companion.deps import Admin, State
from companion.errors import RecsStoreUnavailable, UnknownItemError, ValidationFailed
from companion.schemas import ID_PATTERN, EventsIn, EventsOut, HiddenIn, ItemIn, ModelOut
from models.recsys.implicit_als import event_weight

router = APIRouter(tags=["recommendations"])
UserId = Annotated[str, Path(pattern=ID_PATTERN)]
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]
PREFIX = "/v1/recommendations"


def _store_error(exc: redis.RedisError) -> RecsStoreUnavailable:
    return RecsStoreUnavailable("cannot write recommendation state", {"error": type(exc).__name__})


@router.post(PREFIX + "/users/{user_id}/events", response_model=EventsOut)
def add_events(state: State, user_id: UserId, body: EventsIn) -> EventsOut:
    """Implicit feedback: play (+1), watch (+1 per 10 min, at most 3), click (+0.5), skip (-1) per item."""
    cap = state.settings.companion.max_events_per_request
    if len(body.events) > cap:
        raise ValidationFailed(f"at most {cap} events per request", {"max": cap})
    engine, cat = state.recs.current()
    weights: dict[str, float] = {}
    for e in body.events:
        if e.item_id not in cat.index:
            raise UnknownItemError(f"unknown item {e.item_id!r}", {"item_id": e.item_id})
        weights[e.item_id] = weights.get(e.item_id, 0.0) + event_weight(e.type, e.seconds)
    try:
        state.recs.store.add_events(user_id, [e.model_dump(exclude_none=True) for e in body.events], weights)
    except redis.RedisError as exc:
        raise _store_error(exc) from exc
    return EventsOut(user_id=user_id, stored=len(body.events), weights=weights, model_version=engine.version)


@router.post(PREFIX + "/users/{user_id}/not-interested", status_code=204)
def not_interested(state: State, user_id: UserId, body: HiddenIn) -> None:
    """Never recommend this item to this user again (every strategy, every process)."""
    _, cat = state.recs.current()
    if body.item_id not in cat.index:
        raise UnknownItemError(f"unknown item {body.item_id!r}", {"item_id": body.item_id})
    try:
        state.recs.store.hide(user_id, body.item_id)
    except redis.RedisError as exc:
        raise _store_error(exc) from exc


@router.delete(PREFIX + "/users/{user_id}/not-interested/{item_id}", status_code=204)
def undo_not_interested(state: State, user_id: UserId, item_id: ItemId) -> None:
    try:
        state.recs.store.unhide(user_id, item_id)
    except redis.RedisError as exc:
        raise _store_error(exc) from exc


@router.put(PREFIX + "/items/{item_id}", status_code=200)
def put_item(state: State, _: Admin, item_id: ItemId, body: ItemIn) -> dict[str, object]:
    """Add or update a catalogue item (admin key): content-based lists and /similar use it at once,
    collaborative models once it has ratings and a refit ran."""
    try:
        version = state.recs.store.put_item(item_id, body.model_dump())
    except redis.RedisError as exc:
        raise _store_error(exc) from exc
    return {"item_id": item_id, "items_version": version}


@router.get(PREFIX + "/model", response_model=ModelOut)
def model(state: State) -> ModelOut:
    """The model this process serves now."""
    engine, _ = state.recs.current()
    b = engine.bundle
    return ModelOut(model_version=b.version, created=b.created, fit_s=round(b.fit_s, 3), users=b.data.n_users,
                    items=b.data.n_items, ratings=len(b.data), blend_weights=b.weights)


@router.post("/v1/admin/recommendations/refit", response_model=ModelOut)
def refit(state: State, _: Admin, tune: bool | None = None) -> ModelOut:
    """Refit every model from the ratings/events/items in Redis, save the artifact, publish, swap (admin key)."""
    try:
        state.recs.refit(tune=tune)
    except redis.RedisError as exc:
        raise _store_error(exc) from exc
    return model(state)
