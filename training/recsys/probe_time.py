"""Owns a one-fold probe of time-aware signals at small histories, on fold 0 of the ranking protocol
(models.recsys.protocol): "trending when the user was active" (liked training ratings weighted by a kernel around
the user's own *training* rating times), liked-item co-occurrence, and their mixes with most-liked and implicit
ALS. Exploratory only: it reads fold 0's test ratings to score, so nothing here picks served weights (those are
tuned on a validation split of the training ratings, models.recsys.blend).

    python -m training.recsys.probe_time [--data var/data/ml-100k] [--windows 1 3 7 21]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models.recsys.blend import zscore
from models.recsys.data import kfold_indices, load_ratings
from models.recsys.implicit_als import ImplicitALS, interactions
from models.recsys.popular import Popularity
from models.recsys.protocol import BUCKETS, evaluate, make_split
from models.recsys.trending import Trending

Scorer = Callable[[int], np.ndarray]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("var/data/ml-100k"))
    ap.add_argument("--windows", type=float, nargs="+", default=[1.0, 3.0, 7.0, 21.0])
    args = ap.parse_args(argv)
    data = load_ratings(args.data)
    test = kfold_indices(len(data), 5, 0)[0]
    split = make_split(data, np.setdiff1d(np.arange(len(data)), test), test, seed=0)
    tr = split.train
    assert tr.times is not None
    pop = Popularity().fit(tr).scores
    als = ImplicitALS(factors=16, regularization=0.05, iterations=15, seed=0).fit(tr, interactions(tr, None))
    liked = tr.values >= 4
    x = sp.csr_matrix((np.ones(int(liked.sum())), (tr.users[liked], tr.items[liked])), shape=(tr.n_users, tr.n_items))
    co = (x.T @ x).toarray()
    np.fill_diagonal(co, 0.0)
    n_liked = np.asarray(x.sum(axis=0)).ravel()
    hist = sp.csr_matrix((np.ones(len(tr)), (tr.users, tr.items)), shape=(tr.n_users, tr.n_items))
    tu = tr.users

    def cooc(u: int, damp: float) -> np.ndarray:
        """Sum over the user's liked items of co-liked counts, damped by the candidate's like count ** damp."""
        mine = x[u].indices if x[u].nnz else hist[u].indices
        return co[mine].sum(axis=0) / np.maximum(n_liked, 1.0) ** damp

    results: dict[str, dict[str, dict[str, float]]] = {}

    def show(name: str, fn: Scorer) -> None:
        r = evaluate(split, fn)
        results[name] = r
        print(f"{name:<40}" + "".join(f"{r[b].get('ndcg', 0.0):>8.4f}" for b in (*BUCKETS, "all")), flush=True)

    print(f"{'NDCG@10, fold 0 (exploratory)':<40}" + "".join(f"{b:>8}" for b in (*BUCKETS, "all")))
    show("popularity (most liked)", lambda u: pop)
    show("implicit ALS", als.scores_for_user)
    for damp in (0.0, 0.5):
        show(f"co-liked damp={damp:g}", lambda u, d=damp: cooc(u, d))
    ref = [tr.times[tu == u] for u in range(tr.n_users)]
    for h in args.windows:
        tr_model = Trending(window_days=h).fit(tr)

        def trend(u: int, m: Trending = tr_model) -> np.ndarray:
            return m.scores_at(ref[u])

        show(f"trending h={h:g}d", trend)
        for w in (0.5, 1.0, 2.0):
            show(f"  trend + {w:g} x pop", lambda u, t=trend, w=w: zscore(t(u)) + w * zscore(pop))
        for w in (0.5, 1.0):
            show(f"  trend + {w:g} x ALS", lambda u, t=trend, w=w: zscore(t(u)) + w * zscore(als.scores_for_user(u)))
            show(f"  trend + {w:g} x co-liked(.5)",
                 lambda u, t=trend, w=w: zscore(t(u)) + w * zscore(cooc(u, 0.5)))
        show("  trend + .5 pop + .5 ALS + .5 co",
             lambda u, t=trend: zscore(t(u)) + 0.5 * (zscore(pop) + zscore(als.scores_for_user(u))
                                                      + zscore(cooc(u, 0.5))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
