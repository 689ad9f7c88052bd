"""Owns the content-based recommender: TF-IDF over item text (title, year, genres, people, plot), cosine similarity.

People and genres become single tokens ("dir_john_lasseter", "genre_sci_fi") so a shared director counts as one
strong feature rather than two common first/last names. No item x item matrix is kept: a similarity row is one
sparse mat-vec (X @ x_i), and items added at runtime are `transform`ed with the fitted vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from models.recsys.base import PredictionImpossible, Recommender
from models.recsys.data import Item, Ratings

_NON_WORD = re.compile(r"[^a-z0-9]+")
_FIELDS = {"genre": "", "dir": "director ", "wri": "writer ", "cast": "", "decade": ""}


def _tok(prefix: str, name: str) -> str:
    return prefix + "_" + _NON_WORD.sub("_", name.lower()).strip("_")


def _names(field: str) -> list[str]:
    return [n.strip() for n in field.split(",") if n.strip()]


def item_tokens(it: Item, max_cast: int = 6) -> dict[str, str]:
    """Structured tokens of an item and their display labels ("dir_george_lucas" -> "director George Lucas")."""
    out = {_tok("genre", g): g for g in it.genres}
    if it.year:
        out[f"decade_{it.year // 10 * 10}"] = f"the {it.year // 10 * 10}s"
    out.update({_tok("dir", p): f"director {p}" for p in _names(it.director)})
    out.update({_tok("wri", p): f"writer {p}" for p in _names(it.writer)})
    out.update({_tok("cast", p): p for p in _names(it.cast)[:max_cast]})
    return out


def item_document(it: Item, max_cast: int = 6) -> str:
    """One bag-of-words string; field prefixes keep a director and an actor of the same name apart."""
    parts = [it.title]
    parts += [_tok("genre", g) for g in it.genres] * 2  # genres are the densest signal: weight them up
    if it.year:
        parts.append(f"decade_{it.year // 10 * 10}")
    parts += [_tok("dir", p) for p in _names(it.director)] * 2
    parts += [_tok("wri", p) for p in _names(it.writer)]
    parts += [_tok("cast", p) for p in _names(it.cast)[:max_cast]]
    parts.append(it.plot)
    return " ".join(parts)


@dataclass
class ContentEvidence:
    """What a content score for one item was computed from: top rated items and the features they share."""

    items: list[tuple[int, float]]  # (inner item, contribution)
    features: list[str]  # display labels of the strongest matched structured features


class ContentTfidf(Recommender):
    """Item-item cosine over TF-IDF; rating estimate = item-based kNN over the user's rated items."""

    name = "content"

    def __init__(self, catalogue: dict[str, Item], k: int = 30) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.k = k
        self.X: sp.csr_matrix = sp.csr_matrix((0, 0))
        self.vectorizer: TfidfVectorizer | None = None
        self.labels: dict[int, str] = {}  # feature column -> display label, for structured tokens only
        self.user_means = np.zeros(0)

    def fit(self, data: Ratings) -> ContentTfidf:
        self._index(data)
        items = [self.catalogue.get(i) or Item(i, i) for i in data.item_ids]
        vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", token_pattern=r"(?u)\b\w+\b", min_df=1)
        self.X = sp.csr_matrix(vec.fit_transform([item_document(it) for it in items]))  # l2 rows: dot = cosine
        self.vectorizer = vec
        vocab = vec.vocabulary_
        self.labels = {}
        for it in items:
            for tok, label in item_tokens(it).items():
                if tok in vocab:
                    self.labels[int(vocab[tok])] = label
        self.user_means = np.array([r.mean() if len(r) else self.global_mean for r in self.user_ratings])
        return self

    def transform(self, items: list[Item]) -> sp.csr_matrix:
        """Feature rows for items outside the fit (runtime additions/updates), in the fitted vocabulary."""
        assert self.vectorizer is not None, "fit() first"
        return sp.csr_matrix(self.vectorizer.transform([item_document(it) for it in items]))

    def item_sims(self, i: int, X: sp.csr_matrix | None = None) -> np.ndarray:
        X = self.X if X is None else X
        row = np.asarray((X @ X[i].T).todense()).ravel()
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
        s = np.asarray((self.X[rated] @ self.X[i].T).todense()).ravel()
        s[rated == i] = 0.0
        return self._estimate(s, r, float(self.user_means[u]))

    def predict_many(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Batch estimates grouped by user: one sparse product (rated x targets) per user."""
        assert self.data is not None
        out = np.empty(len(users))
        order = np.argsort(users, kind="stable")
        bounds = np.flatnonzero(np.diff(users[order])) + 1
        for grp in np.split(order, bounds):
            if not grp.size:
                continue
            u = int(users[grp[0]])
            if u >= len(self.user_items):
                out[grp] = self.global_mean
                continue
            rated, r = self.user_items[u], self.user_ratings[u]
            S = (self.X[rated] @ self.X[items[grp]].T).toarray()
            S[rated[:, None] == items[grp][None, :]] = 0.0
            out[grp] = [self._estimate(S[:, c], r, float(self.user_means[u])) for c in range(len(grp))]
        return np.clip(out, *self.data.scale)

    def _estimate(self, s: np.ndarray, r: np.ndarray, mean: float) -> float:
        if s.size > self.k:
            top = np.argpartition(-s, self.k - 1)[: self.k]
            s, r = s[top], r[top]
        pos = s > 0
        if not pos.any():
            return mean
        return float(mean + (s[pos] * (r[pos] - mean)).sum() / s[pos].sum())

    @staticmethod
    def _weights(r: np.ndarray) -> np.ndarray:
        w = r - r.mean()
        return w if np.any(w) else np.ones_like(r)  # all ratings equal: every rated item counts as liked

    def _profile(self, items: np.ndarray, ratings: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X[items].T @ self._weights(ratings)).ravel()

    def scores_for_history(self, items: np.ndarray, ratings: np.ndarray,
                           X: sp.csr_matrix | None = None) -> np.ndarray:
        """Cosine between each item and the taste profile sum_j (r_j - mean) x_j (NaN without history)."""
        X = self.X if X is None else X
        if len(items) == 0:
            return np.full(X.shape[0], np.nan)
        profile = self._profile(items, ratings, X)
        norm = np.linalg.norm(profile)
        return np.asarray(X @ (profile / norm)).ravel() if norm > 0 else np.full(X.shape[0], np.nan)

    def scores_for_user(self, u: int) -> np.ndarray:
        return self.scores_for_history(self.user_items[u], self.user_ratings[u])

    def evidence(self, items: np.ndarray, ratings: np.ndarray, i: int, X: sp.csr_matrix | None = None,
                 n_items: int = 2, n_features: int = 3) -> ContentEvidence:
        """Split item i's score into per-rated-item terms w_j (x_i . x_j) and per-feature terms x_i[f] p[f]."""
        X = self.X if X is None else X
        w = self._weights(ratings)
        xi = X[i]
        per_item = w * np.asarray((X[items] @ xi.T).todense()).ravel()
        top_items = [(int(items[j]), float(per_item[j])) for j in np.argsort(-per_item)[:n_items] if per_item[j] > 0]
        profile = self._profile(items, ratings, X)
        cols, vals = xi.indices, xi.data * profile[xi.indices]
        feats = [self.labels[int(cols[o])] for o in np.argsort(-vals)
                 if vals[o] > 0 and int(cols[o]) in self.labels][:n_features]
        return ContentEvidence(top_items, feats)

    def shared_features(self, i: int, j: int, X: sp.csr_matrix | None = None, n: int = 3) -> list[str]:
        """Display labels of the structured features items i and j share, strongest first."""
        X = self.X if X is None else X
        a, b = X[i], X[j]
        common = np.intersect1d(a.indices, b.indices)
        if common.size == 0:
            return []
        wa = dict(zip(a.indices.tolist(), a.data.tolist(), strict=True))
        wb = dict(zip(b.indices.tolist(), b.data.tolist(), strict=True))
        ranked = sorted(common.tolist(), key=lambda c: -wa[c] * wb[c])
        return [self.labels[c] for c in ranked if c in self.labels][:n]
