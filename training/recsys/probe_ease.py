"""Owns a one-fold probe of EASE (Steck 2019, item-item ridge regression) at small histories, alone and mixed with
the most-liked list, on fold 0 of the ranking protocol (models.recsys.protocol): is there a signal that beats
popularity by 25% at 1 and 3 ratings? (Measured answer in docs/companion.md: not at 1 rating.)

    python -m training.recsys.probe_ease [--data var/data/ml-100k] [--lambdas 50 200 500]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models.recsys.blend import zscore
from models.recsys.data import Ratings, kfold_indices, load_ratings
from models.recsys.popular import Popularity
from models.recsys.protocol import BUCKETS, evaluate, make_split


def ease(train: Ratings, lam: float, liked_only: bool) -> np.ndarray:
    """B = I - P / diag(P), P = (X'X + lam I)^-1, X binary (all ratings, or only those >= 4); diag(B) = 0."""
    m = train.values >= 4 if liked_only else np.ones(len(train), dtype=bool)
    x = sp.csr_matrix((np.ones(int(m.sum())), (train.users[m], train.items[m])), shape=(train.n_users, train.n_items))
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("var/data/ml-100k"))
    ap.add_argument("--lambdas", type=float, nargs="+", default=[50.0, 200.0, 500.0])
    args = ap.parse_args(argv)
    data = load_ratings(args.data)
    test = kfold_indices(len(data), 5, 0)[0]
    split = make_split(data, np.setdiff1d(np.arange(len(data)), test), test, seed=0)
    tr = split.train
    history = sp.csr_matrix((np.ones(len(tr)), (tr.users, tr.items)), shape=(tr.n_users, tr.n_items))
    pop = Popularity().fit(tr).scores

    def show(name: str, fn: object) -> None:
        r = evaluate(split, fn)  # type: ignore[arg-type]
        print(f"{name:<32}" + "".join(f"{r[b].get('ndcg', 0.0):>8.4f}" for b in (*BUCKETS, "all")))

    print(f"{'NDCG@10, fold 0':<32}" + "".join(f"{b:>8}" for b in (*BUCKETS, "all")))
    show("popularity (most liked)", lambda u: pop)
    for lam in args.lambdas:
        for liked in (False, True):
            b = ease(tr, lam, liked)

            def scores(u: int, b: np.ndarray = b) -> np.ndarray:
                return np.asarray(history[u] @ b).ravel()

            tag = f"EASE l={lam:g}{' liked' if liked else ''}"
            show(tag, scores)
            for w in (1.0, 2.0):
                show(f"  + {w:g} x popularity", lambda u, s=scores, w=w: zscore(s(u)) + w * zscore(pop))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
