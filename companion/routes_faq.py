"""Owns the FAQ endpoints: answer a question, list collections, admin reload."""

from __future__ import annotations

from fastapi import APIRouter

from companion.deps import Admin, State
from companion.errors import ValidationFailed
from companion.schemas import FaqAnswerOut, FaqHit, FaqQuestion, ReloadIn, ReloadOut
from models.faq.search import Hit

router = APIRouter(tags=["faq"])
NO_MATCH = "no confident match"


def _hit(h: Hit) -> FaqHit:
    return FaqHit(id=h.entry.id, answer=h.entry.answer, language=h.entry.language, score=round(h.score, 4),
                  matched_question=h.matched_question, tags=list(h.entry.tags))


@router.post("/v1/faq/answer", response_model=FaqAnswerOut)
def answer(state: State, body: FaqQuestion) -> FaqAnswerOut:
    """Best answer with score and alternatives, or 'no confident match' with the alternatives; the answer is in the
    question's language (or `language`) when the collection has that translation."""
    c = state.settings.companion
    question = body.question.strip()
    if not question:
        raise ValidationFailed("question must not be empty", {"field": "question"})
    if len(question) > c.faq_max_question_chars:
        raise ValidationFailed(f"question longer than {c.faq_max_question_chars} characters", {"field": "question"})
    if body.k > c.faq_max_k:
        raise ValidationFailed(f"k must be between 1 and {c.faq_max_k}", {"k": body.k, "max_k": c.faq_max_k})
    collection = body.collection or c.faq_default_collection
    index = state.faq.get(body.tenant or c.tenant, collection)
    res = index.answer(question, body.k, body.language)
    return FaqAnswerOut(
        answered=res.confident,
        message="" if res.confident else f"{NO_MATCH}: {res.reason}",
        answer=_hit(res.best) if res.best else None,
        alternatives=[_hit(h) for h in res.alternatives],
        collection=collection,
        question_language=res.language,
        thresholds=index.thresholds_for(res.language).as_dict(),
    )


@router.get("/v1/faq/collections")
def collections(state: State) -> dict[str, list[dict[str, str | int | list[str]]]]:
    """Loaded collections per tenant with entry counts and languages."""
    with state.faq.lock:
        items = sorted(state.faq.indexes.items())
    return {"collections": [{"tenant": t, "collection": c, "entries": len(ix.collection.entries),
                             "languages": ix.languages} for (t, c), ix in items]}


@router.post("/v1/admin/faq/reload", response_model=ReloadOut)
def reload(state: State, _: Admin, body: ReloadIn | None = None) -> ReloadOut:
    """Re-read FAQ files without restart (all, one tenant, or one collection); a bad file changes nothing."""
    body = body or ReloadIn()
    keys = state.faq.reload(body.tenant, body.collection)
    with state.faq.lock:
        counts = {k: len(state.faq.indexes[k].collection.entries) for k in keys}
    return ReloadOut(reloaded=[{"tenant": t, "collection": c, "entries": counts[(t, c)]} for t, c in keys])
