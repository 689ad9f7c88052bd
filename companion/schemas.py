"""Owns the companion's request/response models (pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"


class RecItem(BaseModel):
    item_id: str
    external_id: str
    title: str
    year: int | None
    genres: list[str]
    score: float
    reason: str
    source: str  # the component the item and its reason come from: svd, knn, content, implicit, trending,
    # corated, popularity


class RecResponse(BaseModel):
    user_id: str | None = None
    item_id: str | None = None
    strategy: str
    model_version: str
    fallback: bool
    fallback_reason: str | None = None
    history_bucket: str | None = None
    excluded_blocked: int = 0
    items: list[RecItem]


class RatingIn(BaseModel):
    item_id: str = Field(pattern=ID_PATTERN)
    rating: float = Field(ge=1.0, le=5.0)


class RatingsIn(BaseModel):
    ratings: list[RatingIn] = Field(min_length=1)


class RatingsOut(BaseModel):
    user_id: str
    n_ratings: int
    model_version: str
    stored: bool = True


class PredictionOut(BaseModel):
    user_id: str
    item_id: str
    strategy: str
    estimate: float
    fallback: bool
    model_version: str


class EventIn(BaseModel):
    item_id: str = Field(pattern=ID_PATTERN)
    type: Literal["play", "watch", "click", "skip"]
    seconds: float | None = Field(default=None, ge=0, le=86400)  # watch time, for type=watch


class EventsIn(BaseModel):
    events: list[EventIn] = Field(min_length=1)


class EventsOut(BaseModel):
    user_id: str
    stored: int
    weights: dict[str, float]  # item -> confidence added by this request
    model_version: str


class HiddenIn(BaseModel):
    item_id: str = Field(pattern=ID_PATTERN)


class ItemIn(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    year: int | None = Field(default=None, ge=1800, le=2200)
    genres: list[str] = Field(default_factory=list, max_length=20)
    director: str = Field(default="", max_length=500)
    writer: str = Field(default="", max_length=500)
    cast: str = Field(default="", max_length=2000)
    plot: str = Field(default="", max_length=5000)


class ModelOut(BaseModel):
    model_version: str
    created: float
    fit_s: float
    users: int
    items: int
    ratings: int
    blend_weights: dict[str, dict[str, float]]


class FaqQuestion(BaseModel):
    question: str = Field(min_length=1)
    k: int = Field(default=3, ge=1)
    collection: str | None = Field(default=None, pattern=ID_PATTERN)
    tenant: str | None = Field(default=None, pattern=ID_PATTERN)
    # Language of the answer; by default the question's own (detected from its script).
    language: str | None = Field(default=None, pattern="^(en|zh)$")


class FaqHit(BaseModel):
    id: str
    answer: str
    language: str
    score: float
    matched_question: str
    tags: list[str]


class FaqAnswerOut(BaseModel):
    answered: bool
    message: str
    answer: FaqHit | None
    alternatives: list[FaqHit]
    collection: str
    question_language: str
    thresholds: dict[str, float]


class ReloadIn(BaseModel):
    tenant: str | None = Field(default=None, pattern=ID_PATTERN)
    collection: str | None = Field(default=None, pattern=ID_PATTERN)


class ReloadOut(BaseModel):
    reloaded: list[dict[str, str | int]]
