"""Owns FAQ retrieval: a pure top-k over normalised embeddings, per-entry aggregation and the confidence decision.

An index holds one collection in one or more languages (same entry ids) plus its negative exemplars: each entry's
`not_questions` and the collection's `out_of_scope`. A question is answered only if
  1. its best entry scores at least `min_score` (cosine to the entry's closest phrasing, in any language),
  2. that entry beats the runner-up by `min_gap` (ambiguity, as Rasa's FallbackClassifier), and
  3. it beats the closest negative exemplar by `min_margin` (a near-miss such as "renew my passport" sits closer to
     "how do I renew my passport" than to "I forgot my password").
Thresholds are per query language: encoders score Chinese and English on different scales. The shipped values are
chosen on the dev split of the evaluation set (training.faq.evaluate) and recorded in models.faq.calibrated.
The answer text is the entry's version in the question's language when the collection has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from common.language import detect_language
from models.faq.encoder import Encoder
from models.faq.store import FaqCollection, FaqEntry

NO_MARGIN = -2.0  # cosine differences are >= -2: a margin this low never refuses


def top_k(query: np.ndarray, corpus: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """For each query row, the k corpus rows with the highest dot product (= cosine for unit vectors)."""
    q = np.atleast_2d(query)
    scores = q @ corpus.T
    k = min(k, corpus.shape[0])
    out = []
    for row in scores:
        idx = np.argpartition(-row, k - 1)[:k]
        idx = idx[np.lexsort((idx, -row[idx]))]
        out.append([(int(i), float(row[i])) for i in idx])
    return out


@dataclass(frozen=True)
class Thresholds:
    min_score: float
    min_gap: float
    min_margin: float = NO_MARGIN

    def as_dict(self) -> dict[str, float]:
        return {"min_score": self.min_score, "min_gap": self.min_gap, "min_margin": self.min_margin}


@dataclass
class Hit:
    entry: FaqEntry
    score: float
    matched_question: str


@dataclass
class Ranking:
    """One question's top entries and its closest negative exemplar (None when the collection has none)."""

    language: str
    hits: list[Hit]
    negative: tuple[str, float] | None = None


@dataclass
class Answer:
    confident: bool
    best: Hit | None
    alternatives: list[Hit] = field(default_factory=list)
    reason: str = ""
    language: str = "en"


def decide(hits: list[Hit], t: Thresholds, k: int, negative: tuple[str, float] | None = None) -> Answer:
    """Confident only if the best score clears min_score, beats the runner-up by min_gap and the closest negative
    exemplar by min_margin."""
    if not hits:
        return Answer(False, None, [], "empty collection")
    best = hits[0]
    second = hits[1].score if len(hits) > 1 else -1.0
    alts = hits[1:k]
    if best.score < t.min_score:
        return Answer(False, None, hits[:k], f"best score {best.score:.2f} below threshold {t.min_score:.2f}")
    if best.score - second < t.min_gap:
        return Answer(False, None, hits[:k],
                      f"top two too close ({best.score:.2f} vs {second:.2f}, gap < {t.min_gap:.2f})")
    if negative is not None and best.score - negative[1] < t.min_margin:
        return Answer(False, None, hits[:k],
                      f"closer to the out-of-scope example {negative[0]!r} ({negative[1]:.2f}) than to an answer "
                      f"({best.score:.2f}, margin < {t.min_margin:.2f})")
    return Answer(True, best, alts, "")


def _unique(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))


class FaqIndex:
    """One collection (all its languages) encoded once; an entry's score is its best phrasing's score."""

    def __init__(self, collections: FaqCollection | Sequence[FaqCollection], encoder: Encoder,
                 thresholds: Thresholds | Mapping[str, Thresholds]) -> None:
        cols = [collections] if isinstance(collections, FaqCollection) else list(collections)
        if not cols:
            raise ValueError("an index needs at least one collection")
        self.collection = cols[0]  # the default language: answers fall back to it
        self.by_language = {c.language: c for c in cols}
        self.encoder = encoder
        self.thresholds: dict[str, Thresholds] = (
            {"default": thresholds} if isinstance(thresholds, Thresholds) else dict(thresholds))
        self.rows: list[tuple[str, str]] = list(dict.fromkeys((e.id, q) for c in cols for e in c.entries
                                                              for q in e.questions))
        self.negatives = _unique([q for c in cols for e in c.entries for q in e.not_questions]
                                 + [q for c in cols for q in c.out_of_scope])
        emb = encoder.encode([q for _, q in self.rows] + self.negatives)
        self.emb, self.neg_emb = emb[:len(self.rows)], emb[len(self.rows):]

    @property
    def languages(self) -> list[str]:
        return list(self.by_language)

    def thresholds_for(self, language: str) -> Thresholds:
        return self.thresholds.get(language) or self.thresholds.get("default") or next(iter(self.thresholds.values()))

    def entry(self, entry_id: str, language: str) -> FaqEntry:
        """The entry in `language` if the collection has that translation, else in the default language."""
        col = self.by_language.get(language)
        if col is not None and entry_id in col.by_id:
            return col.by_id[entry_id]
        for c in (self.collection, *self.by_language.values()):
            if entry_id in c.by_id:
                return c.by_id[entry_id]
        raise KeyError(entry_id)

    def ranked(self, question: str, k: int, language: str | None = None) -> Ranking:
        """Top-k distinct entries for one question."""
        return self.ranked_many([question], k, [language] if language else None)[0]

    def ranked_many(self, questions: Sequence[str], k: int,
                    languages: Sequence[str | None] | None = None) -> list[Ranking]:
        langs = [lang or detect_language(q) for q, lang in zip(questions, languages or [None] * len(questions),
                                                                 strict=True)]
        q = self.encoder.encode(list(questions))
        # Ask for more phrasings than k: several phrasings of one entry may fill the top.
        hits = top_k(q, self.emb, min(len(self.rows), k * 4 + 8))
        neg = top_k(q, self.neg_emb, 1) if self.negatives else [[] for _ in questions]
        out = []
        for row, lang, n in zip(hits, langs, neg, strict=True):
            seen: set[str] = set()
            entries: list[Hit] = []
            for idx, score in row:
                eid, phrasing = self.rows[idx]
                if eid not in seen:
                    seen.add(eid)
                    entries.append(Hit(self.entry(eid, lang), score, phrasing))
                if len(entries) == k:
                    break
            out.append(Ranking(lang, entries, (self.negatives[n[0][0]], n[0][1]) if n else None))
        return out

    def answer(self, question: str, k: int = 3, language: str | None = None) -> Answer:
        r = self.ranked(question, max(k, 2), language)
        a = decide(r.hits, self.thresholds_for(r.language), k, r.negative)
        a.language = r.language
        return a
