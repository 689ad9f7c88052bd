"""Owns FAQ retrieval: a pure top-k over normalised embeddings, per-entry aggregation and the confidence decision.

Rasa's FallbackClassifier uses threshold 0.3 and ambiguity gap 0.1 on intent confidences; our scores are cosine
similarities, so both numbers are calibrated on the held-out paraphrase set (see training.faq.evaluate).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.faq.encoder import Encoder
from models.faq.store import FaqCollection, FaqEntry


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


@dataclass
class Hit:
    entry: FaqEntry
    score: float
    matched_question: str


@dataclass
class Answer:
    confident: bool
    best: Hit | None
    alternatives: list[Hit] = field(default_factory=list)
    reason: str = ""


class FaqIndex:
    """One collection's phrasings encoded once; an entry's score is its best phrasing's score."""

    def __init__(self, collection: FaqCollection, encoder: Encoder, thresholds: Thresholds) -> None:
        self.collection, self.encoder, self.thresholds = collection, encoder, thresholds
        self.rows: list[tuple[FaqEntry, str]] = [(e, q) for e in collection.entries for q in e.questions]
        self.emb = encoder.encode([q for _, q in self.rows])

    def ranked(self, question: str, k: int) -> list[Hit]:
        """Top-k distinct entries for one question."""
        return self.ranked_many([question], k)[0]

    def ranked_many(self, questions: list[str], k: int) -> list[list[Hit]]:
        q = self.encoder.encode(questions)
        # Ask for more phrasings than k: several phrasings of one entry may fill the top.
        hits = top_k(q, self.emb, min(len(self.rows), k * 4 + 8))
        out = []
        for row in hits:
            seen: set[str] = set()
            entries: list[Hit] = []
            for idx, score in row:
                e, phrasing = self.rows[idx]
                if e.id not in seen:
                    seen.add(e.id)
                    entries.append(Hit(e, score, phrasing))
                if len(entries) == k:
                    break
            out.append(entries)
        return out

    def answer(self, question: str, k: int = 3) -> Answer:
        return decide(self.ranked(question, max(k, 2)), self.thresholds, k)


def decide(hits: list[Hit], t: Thresholds, k: int) -> Answer:
    """Confident only if the best score clears min_score and beats the runner-up by min_gap."""
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
    return Answer(True, best, alts, "")
