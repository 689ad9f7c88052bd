"""Owns a one-fold probe of time-aware and co-occurrence signals at small histories, on fold 0 of the ranking protocol
(models.recsys.protocol): "popular when the user was active" (models.recsys.trending: liked training ratings within
a window of the user's own *training* rating times; held-out times are never read), co-rated / co-liked counts
(models.recsys.corated), and fixed mixes with most-liked and implicit ALS.

Exploratory only: it scores on fold 0's test ratings, so nothing here picks served weights (those are tuned on a
validation split of the training ratings, models.recsys.blend). Measured answers are in docs/companion.md.

    python -m training.recsys.probe_time [--data var/data/ml-100k] [--windows 7 21 42 90]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from models.recsys.blend import _ndcg_rows, zscore
from models.recsys.corated import CoRated
from models.recsys.data import Ratings, kfold_indices, load_ratings
from models.recsys.implicit_als import ImplicitALS, interactions
from models.recsys.popular import Popularity
from models.recsys.protocol import BUCKETS, Split, make_split
from models.recsys.trending import Trending


class Board:
    """Z-score matrices per signal over the split's scored users, and NDCG@10 per bucket of any weighted mix."""

    def __init__(self, split: Split) -> None:
        self.split = split
        n = len(split.thin)
        self.mask = np.zeros((len(split.users), n), dtype=bool)
        self.rel = np.zeros((len(split.users), n), dtype=bool)
        for j in range(len(split.users)):
            self.mask[j, split.exclude[j]] = True
            self.rel[j, split.relevant[j]] = True
        self.mask |= split.thin[None, :]
        self.z: dict[str, np.ndarray] = {}

    def add(self, name: str, rows: list[np.ndarray]) -> None:
        self.z[name] = np.vstack([zscore(r) for r in rows])

    def show(self, label: str, mix: dict[str, float]) -> None:
        s = sum(w * self.z[c] for c, w in mix.items())
        s = np.where(self.mask, -np.inf, s)
        vals = [_ndcg_rows(s[self.split.buckets == b], self.rel[self.split.buckets == b]) for b in BUCKETS]
        vals.append(_ndcg_rows(s, self.rel))
        print(f"{label:<44}" + "".join(f"{v:>8.4f}" for v in vals), flush=True)


def co_liked(tr: Ratings, users: np.ndarray) -> list[np.ndarray]:
    """Liked-only co-occurrence from the user's liked items (all rated items when none is liked)."""
    liked = tr.values >= 4
    x = sp.csr_matrix((np.ones(int(liked.sum())), (tr.users[liked], tr.items[liked])), shape=(tr.n_users, tr.n_items))
    hist = CoRated().fit(tr)
    out = []
    for u in users:
        mine = x[int(u)].indices if x[int(u)].nnz else hist.user_items[int(u)]
        v = np.zeros(tr.n_items)
        v[mine] = 1.0
        out.append(np.asarray(x.T @ (x @ v)).ravel())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("var/data/ml-100k"))
    ap.add_argument("--windows", type=float, nargs="+", default=[7.0, 21.0, 42.0, 90.0])
    args = ap.parse_args(argv)
    threadpool_limits(1)  # oversubscribed BLAS threads on a shared 2-core machine made this 10x slower
    data = load_ratings(args.data)
    test = kfold_indices(len(data), 5, 0)[0]
    split = make_split(data, np.setdiff1d(np.arange(len(data)), test), test, seed=0)
    tr, users = split.train, split.users
    board = Board(split)
    pop = Popularity().fit(tr).scores
    board.add("pop", [pop for _ in users])
    als = ImplicitALS(factors=16, regularization=0.05, iterations=15, seed=0).fit(tr, interactions(tr, None))
    board.add("als", [als.scores_for_user(int(u)) for u in users])
    co = CoRated().fit(tr)
    board.add("corated", [co.scores_for_user(int(u)) for u in users])
    board.add("coliked", co_liked(tr, users))
    print(f"{'NDCG@10, fold 0 (exploratory)':<44}" + "".join(f"{b:>8}" for b in (*BUCKETS, "all")))
    for name in ("pop", "als", "corated", "coliked"):
        board.show(name, {name: 1.0})
    for h in args.windows:
        t = Trending(window_days=h).fit(tr)
        key = f"trend{h:g}"
        board.add(key, [t.scores_for_user(int(u)) for u in users])
        board.show(f"trending {h:g}d", {key: 1.0})
        board.show("  + 1 pop", {key: 1.0, "pop": 1.0})
        board.show("  + 1 ALS", {key: 1.0, "als": 1.0})
        board.show("  + 1 co-rated + .5 ALS", {key: 1.0, "corated": 1.0, "als": 0.5})
    board.show("co-rated + .5 ALS", {"corated": 1.0, "als": 0.5})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
