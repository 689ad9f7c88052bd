"""Owns reason strings, each computed from the same decomposition as the score it explains.

SVD: exact per-rated-item contributions of the fold-in solve; kNN: the neighbours that entered the item's list
score; content: per-rated-item and per-feature terms of the profile cosine; implicit ALS: the library's exact
per-item contributions; hybrid: the reason of the component with the largest weighted z-score for the item.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from models.recsys.content import ContentTfidf
from models.recsys.knn import UserKNN
from models.recsys.svd import SVD

Title = Callable[[int], str]


def _join(words: list[str]) -> str:
    if not words:
        return ""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _stars(r: float) -> str:
    return f"{r:g}★"


def svd_reason(svd: SVD, items: np.ndarray, ratings: np.ndarray, i: int, title: Title) -> str:
    base, contrib = svd.explain(items, ratings, i)
    order = [j for j in np.argsort(-contrib)[:2] if contrib[j] > 0.01]
    est = base + float(contrib.sum())
    if not order:
        return f"predicted {est:.1f}★, mostly from its overall rating ({base:.1f}★ baseline)"
    rated = [f"{title(int(items[j]))} {_stars(float(ratings[j]))}" for j in order]
    return f"predicted {est:.1f}★: because you rated {_join(rated)}"


def knn_reason(knn: UserKNN, items: np.ndarray, ratings: np.ndarray, i: int, u: int | None) -> str:
    ev = knn.evidence(items, ratings, i, u)
    who = "1 user" if ev.n_neighbours == 1 else f"{ev.n_neighbours} users"
    return (f"{who} with tastes like yours rated it {ev.mean_rating:.1f}★ on average "
            f"(your average is {ev.user_mean:.1f}★)")


def content_reason(content: ContentTfidf, items: np.ndarray, ratings: np.ndarray, i: int, X: sp.csr_matrix,
                   title: Title) -> str:
    ev = content.evidence(items, ratings, i, X)
    rating_of = dict(zip(items.tolist(), ratings.tolist(), strict=True))
    like = [f"{title(j)} ({_stars(rating_of[j])})" for j, _ in ev.items]
    if ev.features and like:
        return f"shares {_join(ev.features)} with {_join(like)}"
    if like:
        return f"similar description to {_join(like)}"
    return "closest match to your ratings' genres and people"


def implicit_reason(explain: Callable[[int, int], list[tuple[int, float]]], rated: dict[int, float], i: int,
                    title: Title) -> str:
    top = [j for j, c in explain(i, 2) if c > 0]
    if not top:
        return "liked by people with a similar watch history"
    rated_s = [f"{title(j)} {_stars(rated[j])}" for j in top if j in rated]
    watched = [title(j) for j in top if j not in rated]
    said = ([f"rated {_join(rated_s)}"] if rated_s else []) + ([f"watched {_join(watched)}"] if watched else [])
    return f"because you {' and '.join(said)}"
