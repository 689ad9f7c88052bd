"""Owns the content-based recommender: TF-IDF over item text (title, year, genres, people, plot), cosine similarity.

People and genres become single tokens ("dir_john_lasseter", "genre_sci_fi") so a shared director counts as one
strong feature rather than two common first/last names.
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from models.recsys.base import PredictionImpossible, Recommender
from models.recsys.data import Item, Ratings

_NON_WORD = re.compile(r"[^a-z0-9]+")


def _tok(prefix: str, name: str) -> str:
    return prefix + "_" + _NON_WORD.sub("_", name.lower()).strip("_")


def item_document(it: Item, max_cast: int = 6) -> str:
    """One bag-of-words string; field prefixes keep a director and an actor of the same name apart."""
    parts = [it.title]
    parts += [_tok("genre", g) for g in it.genres] * 2  # genres are the densest signal: weight them up
    if it.year:
        parts.append(f"decade_{it.year // 10 * 10}")
    parts += [_tok("dir", p) for p in it.director.split(",") if p.strip()] * 2
    parts += [_tok("wri", p) for p in it.writer.split(",") if p.strip()]
    parts += [_tok("cast", p) for p in it.cast.split(",")[:max_cast] if p.strip()]
    parts.append(it.plot)
    return " ".join(parts)


class ContentTfidf(Recommender):
    """Item-item cosine over TF-IDF; rating estimate = item-based kNN over the user's rated items."""

    name = "content"

    def __init__(self, catalogue: dict[str, Item], k: int = 30, dense_limit: int = 20_000) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.k = k
        # Full item x item similarity only when it fits comfortably (ml-100k: 1,682^2 floats = 23 MB).
        self.dense_limit = dense_limit
        self.X: sp.csr_matrix = sp.csr_matrix((0, 0))
        self.S: np.ndarray | None = None
        self.user_means = np.zeros(0)

    def fit(self, data: Ratings) -> ContentTfidf:
        self._index(data)
        docs = [item_document(self.catalogue.get(i) or Item(i, i)) for i in data.item_ids]
        vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", token_pattern=r"(?u)\b\w+\b", min_df=1)
        self.X = sp.csr_matrix(vec.fit_transform(docs))  # rows are l2-normalised: dot product = cosine
        self.S = (self.X @ self.X.T).toarray() if data.n_items <= self.dense_limit else None
        if self.S is not None:
            np.fill_diagonal(self.S, 0.0)
        self.user_means = np.array([r.mean() if len(r) else self.global_mean for r in self.user_ratings])
        return self

    def item_sims(self, i: int) -> np.ndarray:
        if self.S is not None:
            return self.S[i]
        row = np.asarray((self.X @ self.X[i].T).todense()).ravel()
        row[i] = 0.0
        return row

    def similar(self, i: int, n: int, exclude: set[int] | None = None) -> list[tuple[int, float]]:
        s = self.item_sims(i).copy()
        if exclude:
            s[list(exclude)] = -np.inf
        take = min(n, len(s) - 1)
        top = np.argpartition(-s, take - 1)[:take]
        top = top[np.lexsort((top, -s[top]))]
        return [(int(j), float(s[j])) for j in top if s[j] > 0]

    def predict_inner(self, u: int, i: int) -> float:
        if u >= len(self.user_items) or i >= self.X.shape[0]:
            raise PredictionImpossible("unknown id")
        rated, r = self.user_items[u], self.user_ratings[u]
        s = self.item_sims(i)[rated]
        return self._estimate(s, r, float(self.user_means[u]))

    def _estimate(self, s: np.ndarray, r: np.ndarray, mean: float) -> float:
        if s.size > self.k:
            top = np.argpartition(-s, self.k - 1)[: self.k]
            s, r = s[top], r[top]
        pos = s > 0
        if not pos.any():
            return mean
        return float(mean + (s[pos] * (r[pos] - mean)).sum() / s[pos].sum())

    def scores_for_user(self, u: int) -> np.ndarray:
        """Cosine between the item and the user's taste profile (rated items weighted by rating - mean)."""
        rated, r = self.user_items[u], self.user_ratings[u]
        w = r - self.user_means[u]
        if not np.any(w):
            w = np.ones_like(r)  # all ratings equal: every rated item counts as liked
        profile = np.asarray(self.X[rated].T @ w).ravel()
        norm = np.linalg.norm(profile)
        scores = self.X @ (profile / norm) if norm > 0 else np.zeros(self.X.shape[0])
        return np.asarray(scores).ravel()

    def set_user(self, u: int, items: np.ndarray, ratings: np.ndarray) -> None:
        super().set_user(u, items, ratings)
        mean = float(ratings.mean()) if len(ratings) else self.global_mean
        if u == len(self.user_means):
            self.user_means = np.append(self.user_means, mean)
        else:
            self.user_means[u] = mean

    def shared_features(self, i: int, j: int) -> list[str]:
        """Human words for what items i and j share (for reason strings)."""
        assert self.data is not None
        a = self.catalogue.get(self.data.item_ids[i])
        b = self.catalogue.get(self.data.item_ids[j])
        if a is None or b is None:
            return []
        out = []
        if set(a.genres) & set(b.genres):
            out.append("genres")
        if a.director and set(_split(a.director)) & set(_split(b.director)):
            out.append("director")
        if a.writer and set(_split(a.writer)) & set(_split(b.writer)):
            out.append("writer")
        if a.cast and set(_split(a.cast)) & set(_split(b.cast)):
            out.append("cast")
        return out


def _split(names: str) -> list[str]:
    return [n.strip() for n in names.split(",") if n.strip()]
