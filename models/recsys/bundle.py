"""Owns fitting every recommender together into one versioned bundle, and saving/loading bundles as artifacts.

A bundle is immutable once fitted: serving reads user state from elsewhere (Redis) and folds users in per
request, so swapping models is one reference assignment. Artifacts live in <root>/<version>/bundle.pkl with a
manifest.json; <root>/CURRENT names the newest and is replaced atomically (os.replace). Pickle is used for our
own files only, written by this code under var/; never load a bundle from an untrusted source.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recsys.blend import DEFAULT_WEIGHTS, Weights, tune
from models.recsys.content import ContentTfidf
from models.recsys.corated import CoRated
from models.recsys.data import Item, Ratings
from models.recsys.implicit_als import ImplicitALS, interactions
from models.recsys.knn import UserKNN
from models.recsys.metadata import Coverage
from models.recsys.popular import Popularity
from models.recsys.protocol import make_split
from models.recsys.svd import SVD
from models.recsys.trending import Trending

FORMAT = 2  # 2: + trending and co-rated components (a format-1 artifact is refitted, not loaded)


@dataclass
class FitParams:
    svd_factors: int = 20
    svd_epochs: int = 6
    svd_reg: float = 0.12
    svd_reg_bias: float = 5.0
    knn_k: int = 40
    knn_shrinkage: float = 100.0
    knn_candidates: int = 150
    knn_rank_shrinkage: float = 1.0
    knn_neighbours: int = 400
    als_factors: int = 16
    als_reg: float = 0.05
    als_iterations: int = 15
    content_k: int = 30
    trending_window_days: float = 90.0
    min_support: int = 10
    seed: int = 0


@dataclass
class Bundle:
    version: str
    data: Ratings
    catalogue: dict[str, Item]
    svd: SVD
    knn: UserKNN
    content: ContentTfidf
    implicit: ImplicitALS
    popular: Popularity
    weights: Weights
    params: FitParams
    created: float = field(default_factory=time.time)
    validation: dict[str, Any] = field(default_factory=dict)
    coverage: Coverage | None = None
    fit_s: float = 0.0
    trending: Trending = field(default_factory=Trending)
    corated: CoRated = field(default_factory=CoRated)

    @property
    def thin(self) -> np.ndarray:
        return self.popular.counts < self.params.min_support


def fit_models(data: Ratings, catalogue: dict[str, Item], p: FitParams,
               events: sp.csr_matrix | None = None) -> dict[str, Any]:
    return {
        "svd": SVD(n_factors=p.svd_factors, n_epochs=p.svd_epochs, reg=p.svd_reg, reg_bias=p.svd_reg_bias,
                   seed=p.seed).fit(data),
        "knn": UserKNN(k=p.knn_k, shrinkage=p.knn_shrinkage, candidates=p.knn_candidates,
                       rank_shrinkage=p.knn_rank_shrinkage, neighbours=p.knn_neighbours).fit(data),
        "content": ContentTfidf(catalogue, k=p.content_k).fit(data),
        "implicit": ImplicitALS(factors=p.als_factors, regularization=p.als_reg, iterations=p.als_iterations,
                                seed=p.seed).fit(data, interactions(data, events)),
        "popularity": Popularity().fit(data),
        "trending": Trending(window_days=p.trending_window_days).fit(data),
        "corated": CoRated().fit(data),
    }


def scorers(models: dict[str, Any]) -> dict[str, Any]:
    """Per-component score functions of an inner user id (what the blend mixes)."""
    pop = models["popularity"]
    return {"popularity": lambda u: pop.scores, "implicit": models["implicit"].scores_for_user,
            "svd": models["svd"].scores_for_user, "knn": models["knn"].scores_for_user,
            "content": models["content"].scores_for_user, "trending": models["trending"].scores_for_user,
            "corated": models["corated"].scores_for_user}


def tune_weights(data: Ratings, catalogue: dict[str, Item], p: FitParams, val_fraction: float = 0.2,
                 max_users: int = 2000) -> tuple[Weights, dict[str, Any]]:
    """Blend weights from a validation split of `data` itself (random val_fraction of ratings held out)."""
    rng = np.random.default_rng(p.seed + 1)
    perm = rng.permutation(len(data))
    n_val = int(len(data) * val_fraction)
    val_pos, train_pos = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    split = make_split(data, train_pos, val_pos, seed=p.seed + 2, min_support=p.min_support, max_users=max_users)
    models = fit_models(split.train, catalogue, p)
    return tune(split, scorers(models))


def fit_bundle(data: Ratings, catalogue: dict[str, Item], params: FitParams | None = None,
               events: sp.csr_matrix | None = None, tune_blend: bool = True, weights: Weights | None = None,
               coverage: Coverage | None = None) -> Bundle:
    """Fit all models on `data` (+ event confidences for the implicit model); tune blend weights unless given."""
    p = params or FitParams()
    t0 = time.perf_counter()
    report: dict[str, Any] = {}
    if weights is None:
        weights, report = tune_weights(data, catalogue, p) if tune_blend else (DEFAULT_WEIGHTS, {})
    m = fit_models(data, catalogue, p, events)
    return Bundle(version=make_version(data), data=data, catalogue=catalogue, svd=m["svd"], knn=m["knn"],
                  content=m["content"], implicit=m["implicit"], popular=m["popularity"], weights=weights,
                  params=p, validation=report, coverage=coverage, fit_s=time.perf_counter() - t0,
                  trending=m["trending"], corated=m["corated"])


def make_version(data: Ratings) -> str:
    """UTC time to the millisecond + hash of the ratings snapshot: sortable and says what it was fitted on."""
    h = hashlib.sha256()
    for arr in (data.users, data.items, data.values):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update("\0".join(data.user_ids).encode())
    h.update("\0".join(data.item_ids).encode())
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    return f"{stamp}-{h.hexdigest()[:8]}"


# ---- artifacts ---------------------------------------------------------------------------------------
def save(bundle: Bundle, root: Path, keep: int = 3) -> Path:
    """Write <root>/<version>/ then point CURRENT at it; keep the newest `keep` versions."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / bundle.version
    tmp = root / f".{bundle.version}.tmp{os.getpid()}"
    tmp.mkdir()
    with (tmp / "bundle.pkl").open("wb") as fh:
        pickle.dump({"format": FORMAT, "bundle": bundle}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    manifest = {"version": bundle.version, "format": FORMAT, "created": bundle.created, "fit_s": bundle.fit_s,
                "ratings": len(bundle.data), "users": bundle.data.n_users, "items": bundle.data.n_items,
                "weights": bundle.weights, "validation": bundle.validation}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if final.exists():
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, final)
    _write_current(root, bundle.version)
    for old in versions(root)[:-keep]:
        shutil.rmtree(root / old, ignore_errors=True)
    return final


def _write_current(root: Path, version: str) -> None:
    tmp = root / f".CURRENT.tmp{os.getpid()}"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / "CURRENT")


def versions(root: Path) -> list[str]:
    """Saved versions, oldest first (names sort by time)."""
    if not root.exists():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "bundle.pkl").exists())


def current(root: Path) -> str | None:
    f = root / "CURRENT"
    return f.read_text().strip() if f.exists() else None


def load(root: Path, version: str | None = None) -> Bundle:
    """Load a version (default: CURRENT); FileNotFoundError when there is none."""
    v = version or current(root)
    if not v or not (root / v / "bundle.pkl").exists():
        raise FileNotFoundError(f"no recommender artifact {v!r} under {root}")
    with (root / v / "bundle.pkl").open("rb") as fh:
        payload = pickle.load(fh)  # noqa: S301 - our own artifact under var/, see module docstring
    if payload.get("format") != FORMAT:
        raise FileNotFoundError(f"artifact {v} has format {payload.get('format')}, this code reads {FORMAT}")
    bundle: Bundle = payload["bundle"]
    return bundle
