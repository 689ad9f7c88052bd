"""Owns FAQ retrieval: a pure top-k over normalised embeddings, per-entry aggregation and the confidence decision.

An index holds one collection in one or more languages (same entry ids) plus its negative exemplars: each entry's
`not_questions` and the collection's `out_of_scope`. A question is answered only if
  1. its best entry scores at least `min_score` (mean cosine to the entry's two closest phrasings, any language,
     after centering the embeddings on the index's mean),
  2. that entry beats the runner-up by `min_gap` (ambiguity, as Rasa's FallbackClassifier), and
  3. it beats the negative exemplars (mean of the two closest) by `min_margin` (a near miss such as "renew my
     passport" sits closer to "where do I apply for a new passport" than to "I forgot my password").
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
AGGREGATE_TOP = 2  # an entry's score: mean of its this many best phrasing scores
MIN_CENTER_TEXTS = 50  # centre embeddings only for indexes with at least this many phrasings + negatives


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
    """One question's top entries and its negative score: (closest negative exemplar, mean score of the two
    closest); None when the collection has no negatives."""

    language: str  # the question's, detected from its script
    hits: list[Hit]
    negative: tuple[str, float] | None = None


@dataclass
class Answer:
    confident: bool
    best: Hit | None
    alternatives: list[Hit] = field(default_factory=list)
    reason: str = ""
    language: str = "en"  # the question's


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
    """One collection (all its languages) and its negatives, encoded once; scoring and the decision as above."""

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
        self.entry_ids = list(dict.fromkeys(eid for eid, _ in self.rows))
        pos = {eid: i for i, eid in enumerate(self.entry_ids)}
        row_entry = np.array([pos[eid] for eid, _ in self.rows], dtype=np.int64)
        self.entry_rows = [np.flatnonzero(row_entry == i) for i in range(len(self.entry_ids))]
        emb = encoder.encode([q for _, q in self.rows] + self.negatives)
        # An ensemble encoder concatenates its parts' vectors: each block is centred and normalised on its own.
        blocks = tuple(getattr(encoder, "blocks", ()) or (emb.shape[1],))
        self.block_slices = [slice(a, a + d) for a, d in zip(np.cumsum((0, *blocks[:-1])), blocks, strict=True)]
        # Centering: sentence encoders put every text in one narrow cone (e5-small: unrelated questions at cosine
        # ~0.8); subtracting the index's mean vector spreads the scores so thresholds and margins separate better.
        # A mean over a handful of texts would be one of them: small collections are left as they are.
        center = getattr(encoder, "center", True) and len(emb) >= MIN_CENTER_TEXTS
        self.mean = emb.mean(0) if center else None
        emb = self._center(emb)
        self.emb, self.neg_emb = emb[:len(self.rows)], emb[len(self.rows):]

    def _center(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None and len(self.block_slices) == 1:
            return x
        x = x - self.mean if self.mean is not None else x.copy()
        for b in self.block_slices:
            x[:, b] /= np.maximum(np.linalg.norm(x[:, b], axis=1, keepdims=True), 1e-12)
        return x

    def _weigh(self, q: np.ndarray, languages: Sequence[str]) -> np.ndarray:
        """Scale each query's blocks by its language's weights, so q @ emb.T is the weighted mean of the blocks'
        cosines (identity for a single encoder)."""
        weights_for = getattr(self.encoder, "weights_for", None)
        if weights_for is None or len(self.block_slices) == 1:
            return q
        q = q.copy()
        for r, lang in enumerate(languages):
            for b, w in zip(self.block_slices, weights_for(lang), strict=True):
                q[r, b] *= w
        return q

    def entry_scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, best row) per (question, entry): an entry scores the mean of its two closest phrasings (its
        only one if it has one), which rewards questions close to the entry as a whole, not to one lucky phrasing."""
        sims = np.atleast_2d(q) @ self.emb.T
        scores = np.empty((sims.shape[0], len(self.entry_ids)), dtype=np.float64)
        best = np.empty_like(scores, dtype=np.int64)
        for i, rows in enumerate(self.entry_rows):
            s = sims[:, rows]
            top = -np.sort(-s, axis=1)[:, :AGGREGATE_TOP]
            scores[:, i] = top.mean(1)
            best[:, i] = rows[np.argmax(s, axis=1)]
        return scores, best

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

    def ranked(self, question: str, k: int, answer_language: str | None = None) -> Ranking:
        """Top-k distinct entries for one question."""
        return self.ranked_many([question], k, answer_language)[0]

    def ranked_many(self, questions: Sequence[str], k: int, answer_language: str | None = None) -> list[Ranking]:
        """Top-k entries per question. The question language (thresholds) is detected from the text; answers are
        given in `answer_language` if set, else in the question's language (falling back to the default one)."""
        langs = [detect_language(q) for q in questions]
        q = self._weigh(self._center(self.encoder.encode(list(questions))), langs)
        scores, best = self.entry_scores(q)
        # Negatives are scored like entries: mean of the AGGREGATE_TOP closest, so one stray exemplar cannot veto.
        neg = top_k(q, self.neg_emb, AGGREGATE_TOP) if self.negatives else [[] for _ in questions]
        out = []
        for i, (lang, n) in enumerate(zip(langs, neg, strict=True)):
            order = np.lexsort((np.arange(scores.shape[1]), -scores[i]))[:k]
            hits = [Hit(self.entry(self.entry_ids[e], answer_language or lang), float(scores[i, e]),
                        self.rows[best[i, e]][1]) for e in order]
            negative = (self.negatives[n[0][0]], float(np.mean([s for _, s in n]))) if n else None
            out.append(Ranking(lang, hits, negative))
        return out

    def answer(self, question: str, k: int = 3, answer_language: str | None = None) -> Answer:
        r = self.ranked(question, max(k, 2), answer_language)
        a = decide(r.hits, self.thresholds_for(r.language), k, r.negative)
        a.language = r.language
        return a
