"""Owns serving-side recommendation logic: strategies, history-length blend, fallbacks, exclusions, reasons.

Stateless per request: a fitted `Bundle` (read-only, swapped whole on refit) plus the user's current history
(ratings, event weights, "not interested") handed in by the caller, who keeps it in Redis. Users are folded in
per request, so every process serves the same answer for the same stored state. Pure Python/numpy: the
moderation block list arrives as a callable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models.recsys import reasons
from models.recsys.blend import blend, zscore
from models.recsys.bundle import Bundle, FitParams, fit_bundle
from models.recsys.data import Item, load_items, load_ratings
from models.recsys.implicit_als import ImplicitALS
from models.recsys.knn import predict_history
from models.recsys.metadata import enrich
from models.recsys.protocol import bucket_of

STRATEGIES: tuple[str, ...] = ("svd", "knn", "content", "implicit", "hybrid")
BlockedFn = Callable[[Sequence[str]], set[str]]


class UnknownItem(KeyError):
    """An item id outside the catalogue."""


@dataclass
class UserHistory:
    user_id: str
    ratings: dict[str, float] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)  # item -> summed event weight (implicit confidence)
    hidden: set[str] = field(default_factory=set)  # "not interested"
    rating_times: dict[str, float] = field(default_factory=dict)  # item -> unix time the rating was stored


@dataclass
class Rec:
    item_id: str
    score: float
    reason: str
    source: str


@dataclass
class RecResult:
    items: list[Rec]
    strategy: str
    model_version: str
    fallback: bool = False
    fallback_reason: str | None = None
    excluded_blocked: int = 0
    bucket: str | None = None


def _no_blocks(ids: Sequence[str]) -> set[str]:
    return set()


class Catalog:
    """The bundle's items plus items added/updated at runtime (content features via the fitted vocabulary) and, for
    runtime items rated by fitted users, SVD factors folded in from those ratings (collaborative before a refit)."""

    def __init__(self, bundle: Bundle, runtime: dict[str, Item] | None = None,
                 item_ratings: dict[str, list[tuple[str, float]]] | None = None) -> None:
        runtime = runtime or {}
        self.n_fitted = bundle.data.n_items
        self.ids = list(bundle.data.item_ids)
        self.index = dict(bundle.data.item_index)
        self.user_index = bundle.data.user_index
        self.items = dict(bundle.catalogue)
        X = bundle.content.X
        updated = [iid for iid in runtime if iid in self.index]
        if updated:
            X = X.tolil()
            X[[self.index[i] for i in updated]] = bundle.content.transform([runtime[i] for i in updated])
            X = sp.csr_matrix(X)
        new = [iid for iid in runtime if iid not in self.index]
        if new:
            X = sp.csr_matrix(sp.vstack([X, bundle.content.transform([runtime[i] for i in new])]))
            for iid in new:
                self.index[iid] = len(self.ids)
                self.ids.append(iid)
        self.items.update(runtime)
        self.X: sp.csr_matrix = sp.csr_matrix(X)
        self._fold_in_new_items(bundle, item_ratings or {})

    def _fold_in_new_items(self, bundle: Bundle, item_ratings: dict[str, list[tuple[str, float]]]) -> None:
        """svd_q/svd_b/support rows for items beyond the fitted ones (NaN bias: no fitted user rated it yet)."""
        n_new = len(self.ids) - self.n_fitted
        svd = bundle.svd
        self.svd_q = np.zeros((n_new, svd.n_factors))
        self.svd_b = np.full(n_new, np.nan)
        self.support = np.zeros(n_new, dtype=np.int64)
        for iid, pairs in item_ratings.items():
            j = self.index.get(iid, -1) - self.n_fitted
            known = [(self.user_index[u], r) for u, r in pairs if u in self.user_index]
            if j < 0 or not known:
                continue
            users = np.array([u for u, _ in known], dtype=np.int64)
            self.svd_q[j], self.svd_b[j] = svd.fold_in_item(users, np.array([r for _, r in known], dtype=np.float64))
            self.support[j] = len(known)

    def new_item_scores(self, base: float, p: np.ndarray) -> np.ndarray:
        """SVD estimates of the runtime items for a user with factors p and base = mu + b_u (NaN: no ratings)."""
        return base + self.svd_b + self.svd_q @ p

    def __len__(self) -> int:
        return len(self.ids)

    def item(self, item_id: str) -> Item:
        if item_id not in self.index:
            raise UnknownItem(item_id)
        return self.items.get(item_id) or Item(item_id, item_id)

    def title(self, i: int) -> str:
        return self.item(self.ids[i]).title


class RecEngine:
    """Serves one fitted bundle; `catalog()` overlays runtime items. Thread-safe: nothing here mutates."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._catalog: tuple[object, Catalog] = (None, Catalog(bundle))

    @property
    def version(self) -> str:
        return self.bundle.version

    @classmethod
    def build(cls, data_dir: Path, params: FitParams | None = None, tune_blend: bool = True) -> RecEngine:
        """Load ml-100k (+ metadata when present) from data_dir (var/data layout) and fit a bundle."""
        ratings = load_ratings(data_dir / "ml-100k")
        catalogue = load_items(data_dir / "ml-100k")
        coverage = enrich(catalogue, data_dir / "film-metadata" / "movies.db", data_dir / "plots" / "movies.csv")
        return cls(fit_bundle(ratings, catalogue, params, tune_blend=tune_blend, coverage=coverage))

    def catalog(self, runtime: dict[str, Item] | None = None, key: object = None,
                item_ratings: dict[str, list[tuple[str, float]]] | None = None) -> Catalog:
        """The catalogue with runtime items (and their ratings, for the SVD fold-in); rebuilt only when `key` (e.g.
        the store's items version, bumped when a runtime item is added or rated) changes."""
        cached_key, cat = self._catalog
        if key is None or key != cached_key:
            cat = Catalog(self.bundle, runtime, item_ratings)
            if key is not None:
                self._catalog = (key, cat)
        return cat

    # ---- recommendations -----------------------------------------------------------------------------
    def recommend(self, hist: UserHistory, k: int, strategy: str = "hybrid", blocked: BlockedFn = _no_blocks,
                  format_id: Callable[[str], str] = str, catalog: Catalog | None = None) -> RecResult:
        """Top-k items the user has not rated, interacted with, hidden or had blocked; fallbacks are flagged."""
        cat = catalog or self.catalog()
        b = self.bundle
        h = _Arrays(hist, cat)
        exclude = set(h.r_cat.tolist()) | set(h.e_items.tolist()) | {cat.index[i] for i in hist.hidden
                                                                      if i in cat.index}
        n_hist = len(set(h.r_cat.tolist()) | set(h.e_items[h.e_w > 0].tolist()))
        if n_hist == 0:
            return self._popular(k, exclude, blocked, format_id, cat, strategy, "cold_start")
        bucket = bucket_of(n_hist)
        comp = self._components(strategy, h, cat, bucket)
        if comp is None:
            why = {"knn": "no_similar_users", "svd": "no_ratings", "content": "no_ratings",
                   "implicit": "no_interactions"}.get(strategy, "no_candidates")
            return self._popular(k, exclude, blocked, format_id, cat, strategy, why, bucket)
        scores, parts = comp
        if strategy != "content":  # collaborative lists skip thinly rated items (a 5★ film rated twice is noise)
            scores[np.flatnonzero(b.thin)] = np.nan
        if strategy == "svd":  # runtime items, likewise, until min_support fitted users rated them
            scores[cat.n_fitted + np.flatnonzero(cat.support < b.params.min_support)] = np.nan
        ranked, n_blocked = _filter(scores, k, exclude, blocked, format_id, cat)
        recs = [self._explained(strategy, parts, i, s, h, cat) for i, s in ranked]
        if len(recs) < k:  # not enough personalised candidates: pad with popular items, each labelled as such
            more = self._popular(k - len(recs), exclude | {i for i, _ in ranked}, blocked, format_id, cat,
                                 strategy, "padding")
            recs += more.items
            n_blocked += more.excluded_blocked
        if not ranked:
            return RecResult(recs, strategy, b.version, True, "no_candidates", n_blocked, bucket)
        return RecResult(recs, strategy, b.version, excluded_blocked=n_blocked, bucket=bucket)

    def _components(self, strategy: str, h: _Arrays, cat: Catalog,
                    bucket: str) -> tuple[np.ndarray, dict[str, tuple[float, np.ndarray]]] | None:
        """(list scores over the catalogue, {component: (weight, z-scores)}), or None when it has no basis."""
        b = self.bundle
        names = [c for c, w in b.weights[bucket].items() if w] if strategy == "hybrid" else [strategy]
        raw: dict[str, np.ndarray] = {}
        for c in names:
            s = self._raw(c, h, cat)
            if s is not None and np.isfinite(s).any():
                raw[c] = s
        if not raw:
            return None
        if strategy != "hybrid":
            s = raw[strategy]
            return s.copy(), {strategy: (1.0, s)}
        weights = {c: b.weights[bucket][c] for c in raw}
        h.raw = raw  # the reasons quote raw scores (trending / co-rated counts), not z-scores
        z = {c: zscore(s) for c, s in raw.items()}
        return blend(z, weights), {c: (weights[c], z[c]) for c in raw}

    def _raw(self, c: str, h: _Arrays, cat: Catalog) -> np.ndarray | None:
        b = self.bundle
        pad = len(cat) - cat.n_fitted
        out: np.ndarray
        if c == "content":
            return b.content.scores_for_history(h.r_cat, h.r_val, cat.X) if len(h.r_cat) else None
        if c == "popularity":
            out = b.popular.scores
        elif c == "trending":
            out = b.trending.scores_at(h.ref_times)
        elif c == "corated":
            if not len(h.i_items):
                return None
            out = b.corated.scores_for_history(h.i_items)
        elif c == "implicit":
            if not np.any(h.i_w > 0):
                return None
            out = b.implicit.scores_for_history(h.i_items, h.i_w)
        elif not len(h.r_fit):
            return None
        elif c == "svd":
            out = b.svd.scores_for_history(h.r_fit, h.r_fit_val)
            if pad:  # runtime items: folded-in factors (NaN for those no fitted user rated yet)
                p, b_u = b.svd.fold_in(h.r_fit, h.r_fit_val)
                return np.concatenate([out, cat.new_item_scores(b.svd.global_mean + b_u, p)])
        else:
            out = b.knn.scores_for_history(h.r_fit, h.r_fit_val, h.u)
        return np.concatenate([out, np.full(pad, np.nan)]) if pad else out.astype(np.float64, copy=True)

    def _explained(self, strategy: str, parts: dict[str, tuple[float, np.ndarray]], i: int, s: float,
                   h: _Arrays, cat: Catalog) -> Rec:
        src = strategy
        if strategy == "hybrid":  # the component that lifted this item most
            src = max(parts, key=lambda c: parts[c][0] * (parts[c][1][i] if np.isfinite(parts[c][1][i]) else -9))
        b = self.bundle
        if src == "popularity" or (src in ("trending", "corated") and i >= cat.n_fitted):
            why = b.popular.reason(i)  # a runtime item has no likes or co-ratings yet: "new in the catalogue"
        elif src == "trending":
            why = b.trending.reason(float(h.raw["trending"][i]), h.ref_times)
        elif src == "corated":
            j, n = b.corated.evidence(h.i_items, i)
            why = f"{n} {'person' if n == 1 else 'people'} who watched {cat.title(j)} also rated it"
        elif src == "svd" and i >= cat.n_fitted:
            n = int(cat.support[i - cat.n_fitted])  # a hybrid score is not a rating: name the estimate only for svd
            est = f"predicted {float(np.clip(s, *b.data.scale)):.1f}★ " if strategy == "svd" else ""
            why = f"{est}from the {n} ratings of this new title so far (folded in before the next refit)"
        elif src == "svd":
            why = reasons.svd_reason(b.svd, h.r_fit, h.r_fit_val, i, cat.title)
        elif src == "knn":
            why = reasons.knn_reason(b.knn, h.r_fit, h.r_fit_val, i, h.u)
        elif src == "content":
            why = reasons.content_reason(b.content, h.r_cat, h.r_val, i, cat.X, cat.title)
        else:
            why = reasons.implicit_reason(h.explainer(b.implicit), h.rated_fit, i, cat.title)
        return Rec(cat.ids[i], s, why, src)

    def _popular(self, k: int, exclude: set[int], blocked: BlockedFn, format_id: Callable[[str], str],
                 cat: Catalog, strategy: str, why: str, bucket: str | None = None) -> RecResult:
        scores = np.concatenate([self.bundle.popular.scores, np.full(len(cat) - cat.n_fitted, np.nan)])
        ranked, n_blocked = _filter(scores, k, exclude, blocked, format_id, cat)
        recs = [Rec(cat.ids[i], s, self.bundle.popular.reason(i), "popularity") for i, s in ranked]
        return RecResult(recs, strategy, self.version, True, why, n_blocked, bucket)

    def similar(self, item_id: str, k: int, blocked: BlockedFn = _no_blocks, format_id: Callable[[str], str] = str,
                catalog: Catalog | None = None) -> RecResult:
        cat = catalog or self.catalog()
        cat.item(item_id)
        i = cat.index[item_id]
        content = self.bundle.content
        sims = content.item_sims(i, cat.X)
        sims[sims <= 0] = np.nan
        ranked, n_blocked = _filter(sims, k, {i}, blocked, format_id, cat)
        title = cat.title(i)
        recs = []
        for j, s in ranked:
            shared = content.shared_features(i, j, cat.X)
            why = f"shares {reasons._join(shared)} with {title}" if shared else f"similar description to {title}"
            recs.append(Rec(cat.ids[j], s, why, "content"))
        return RecResult(recs, "content", self.version, excluded_blocked=n_blocked)

    def predict(self, hist: UserHistory, item_id: str, strategy: str = "svd",
                catalog: Catalog | None = None) -> tuple[float, bool]:
        """(estimate, fallback): no rating history or an item not yet fitted falls back to its average."""
        cat = catalog or self.catalog()
        cat.item(item_id)
        i = cat.index[item_id]
        b = self.bundle
        h = _Arrays(hist, cat)
        lo, hi = b.data.scale
        if i >= cat.n_fitted and (strategy == "knn" or not len(h.r_fit)
                                  or not np.isfinite(cat.svd_b[i - cat.n_fitted])):
            return b.svd.global_mean, True  # a runtime item: only SVD knows it (once fitted users rated it)
        if not len(h.r_fit):
            return float(b.popular.bayes[i]), True
        if i >= cat.n_fitted and strategy != "content":
            p, b_u = b.svd.fold_in(h.r_fit, h.r_fit_val)
            est = float(cat.new_item_scores(b.svd.global_mean + b_u, p)[i - cat.n_fitted])
            return float(min(hi, max(lo, est))), False
        if strategy == "knn":
            est = predict_history(b.knn, h.r_fit, h.r_fit_val, i, h.u)
        elif strategy == "content":
            s = np.asarray((cat.X[h.r_cat] @ cat.X[i].T).todense()).ravel()
            s[h.r_cat == i] = 0.0
            est = b.content._estimate(s, h.r_val, float(h.r_val.mean()))
        else:  # svd; hybrid and implicit rank, they do not estimate ratings: SVD answers for them
            est = float(b.svd.scores_for_history(h.r_fit, h.r_fit_val)[i])
        return float(min(hi, max(lo, est))), False


class _Arrays:
    """A history as inner-index arrays: all rated (catalog), rated and fitted, implicit weights (fitted)."""

    def __init__(self, hist: UserHistory, cat: Catalog) -> None:
        rated = [(cat.index[i], r) for i, r in hist.ratings.items() if i in cat.index]
        self.r_cat = np.array([i for i, _ in rated], dtype=np.int64)
        self.r_val = np.array([r for _, r in rated], dtype=np.float64)
        fit = self.r_cat < cat.n_fitted
        self.r_fit, self.r_fit_val = self.r_cat[fit], self.r_val[fit]
        self.rated_fit = dict(zip(self.r_fit.tolist(), self.r_fit_val.tolist(), strict=True))
        ev = [(cat.index[i], w) for i, w in hist.events.items() if i in cat.index]
        self.e_items = np.array([i for i, _ in ev], dtype=np.int64)
        self.e_w = np.array([w for _, w in ev], dtype=np.float64)
        conf = dict.fromkeys(self.r_fit.tolist(), 1.0)  # every rating is one interaction, as in training
        for i, w in ev:
            if i < cat.n_fitted:
                conf[i] = conf.get(i, 0.0) + w
        self.i_items = np.array(list(conf), dtype=np.int64)
        self.i_w = np.array(list(conf.values()), dtype=np.float64)
        self.u = cat.user_index.get(hist.user_id)
        # Trending reference times: the user's stored rating times; none stored (or only events) means "now".
        times = [t for i, t in hist.rating_times.items() if i in hist.ratings and np.isfinite(t)]
        self.ref_times = np.array(times or [time.time()], dtype=np.float64)
        self.raw: dict[str, np.ndarray] = {}
        self._explain: Callable[[int, int], list[tuple[int, float]]] | None = None

    def explainer(self, model: ImplicitALS) -> Callable[[int, int], list[tuple[int, float]]]:
        if self._explain is None:  # one Cholesky per request, shared by the k reasons
            self._explain = model.explainer(self.i_items, self.i_w)
        return self._explain


def _filter(scores: np.ndarray, k: int, exclude: set[int], blocked: BlockedFn, format_id: Callable[[str], str],
            cat: Catalog) -> tuple[list[tuple[int, float]], int]:
    """Best k by score after removing excluded and moderation-blocked items (asks the block list in batches)."""
    s = scores.astype(np.float64, copy=True)
    if exclude:
        s[list(exclude)] = np.nan
    valid = np.flatnonzero(~np.isnan(s))
    order = valid[np.lexsort((valid, -s[valid]))]
    out: list[tuple[int, float]] = []
    n_blocked = 0
    start, batch = 0, max(2 * k, 20)
    while len(out) < k and start < len(order):
        chunk = order[start:start + batch]
        ext = [format_id(cat.ids[i]) for i in chunk]
        bad = blocked(ext)
        for i, e in zip(chunk, ext, strict=True):
            if e in bad:
                n_blocked += 1
            elif len(out) < k:
                out.append((int(i), float(s[i])))
        start += batch
        batch *= 2  # many blocked items in a row: widen the window instead of many tiny round trips
    return out, n_blocked
