"""Owns the companion's request/response models (pydantic)."""

from __future__ import annotations

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


class RecResponse(BaseModel):
    user_id: str | None = None
    item_id: str | None = None
    strategy: str
    fallback: bool
    fallback_reason: str | None = None
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
    folded_in: bool = True


class PredictionOut(BaseModel):
    user_id: str
    item_id: str
    strategy: str
    estimate: float
    fallback: bool


class FaqQuestion(BaseModel):
    question: str = Field(min_length=1)
    k: int = Field(default=3, ge=1)
    collection: str | None = Field(default=None, pattern=ID_PATTERN)
    tenant: str | None = Field(default=None, pattern=ID_PATTERN)


class FaqHit(BaseModel):
    id: str
    answer: str
    score: float
    matched_question: str
    tags: list[str]


class FaqAnswerOut(BaseModel):
    answered: bool
    message: str
    answer: FaqHit | None
    alternatives: list[FaqHit]
    collection: str
    thresholds: dict[str, float]


class ReloadIn(BaseModel):
    tenant: str | None = Field(default=None, pattern=ID_PATTERN)
    collection: str | None = Field(default=None, pattern=ID_PATTERN)


class ReloadOut(BaseModel):
    reloaded: list[dict[str, str | int]]
