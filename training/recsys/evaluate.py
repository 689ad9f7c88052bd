"""Owns the recommender evaluation CLI: k-fold RMSE/MAE and ranking@10 per history length, ours vs scikit-surprise
and popularity on the same folds, in one run.

    python -m training.recsys.evaluate [--folds 5] [--out var/eval/recsys] [--no-surprise] [--no-sweep]

Prints the RMSE table and the ranking tables (training.recsys.ranking), writes results.json and rmse_sweep.png
(RMSE vs factors and vs epochs) under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from models.recsys.base import Recommender
from models.recsys.content import ContentTfidf
from models.recsys.data import Ratings, kfold_indices, load_items, load_ratings
from models.recsys.knn import UserKNN
from models.recsys.metadata import enrich
from models.recsys.svd import SVD
from training.recsys.fetch import DEFAULT_DATA_DIR, fetch
from training.recsys.metrics import mae, rmse
from training.recsys.ranking import evaluate_ranking, print_ranking

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


class SurpriseRunner:
    """scikit-surprise on exactly our folds: the raw ratings are written in our order and indexed the same."""

    def __init__(self, data: Ratings) -> None:
        from surprise import Dataset, Reader

        fd, self.path = tempfile.mkstemp(suffix=".tsv")
        with os.fdopen(fd, "w") as fh:
            for u, i, r in data.triples():
                fh.write(f"{u}\t{i}\t{r}\n")
        reader = Reader(line_format="user item rating", sep="\t", rating_scale=data.scale)
        self.dataset = Dataset.load_from_file(self.path, reader=reader)
        self.data = data

    def close(self) -> None:
        os.unlink(self.path)

    def fit(self, algo: Any, train_idx: np.ndarray) -> tuple[Any, float]:
        raw = self.dataset.raw_ratings
        trainset = self.dataset.construct_trainset([raw[j] for j in train_idx])
        t0 = time.perf_counter()
        algo.fit(trainset)
        return algo, time.perf_counter() - t0

    def predictor(self, algo: Any) -> Predictor:
        def run(users: np.ndarray, items: np.ndarray) -> np.ndarray:
            uid, iid = self.data.user_ids, self.data.item_ids
            return np.array([algo.predict(uid[u], iid[i]).est for u, i in zip(users, items, strict=True)])

        return run


def _ours(name: str, catalogue: dict[str, Any]) -> Recommender:
    if name == "svd":
        return SVD()
    if name == "knn":
        return UserKNN()
    return ContentTfidf(catalogue)


def evaluate(data_dir: Path, n_folds: int, seed: int, with_surprise: bool,
             with_ranking: bool = True, ranking_folds: int | None = None) -> dict[str, Any]:
    data = load_ratings(data_dir / "ml-100k")
    catalogue = load_items(data_dir / "ml-100k")
    coverage = enrich(catalogue, data_dir / "film-metadata" / "movies.db", data_dir / "plots" / "movies.csv")
    folds = kfold_indices(len(data), n_folds, seed)
    runner = SurpriseRunner(data) if with_surprise else None
    names = ["svd", "knn", "content"] + (["surprise_svd", "surprise_knn_pearson"] if runner else [])
    res: dict[str, dict[str, list[float]]] = {n: {"rmse": [], "mae": [], "fit_s": [], "predict_s": []}
                                              for n in names}
    for f, test_idx in enumerate(tqdm(folds, desc="folds")):
        train_idx = np.setdiff1d(np.arange(len(data)), test_idx)
        train, test = data.subset(train_idx), data.subset(test_idx)
        for name in tqdm(names, desc=f"fold {f}", leave=False):
            if name.startswith("surprise"):
                assert runner is not None
                from surprise import SVD as SSVD
                from surprise import KNNWithMeans

                algo = SSVD(random_state=seed) if name == "surprise_svd" else KNNWithMeans(
                    k=40, sim_options={"name": "pearson", "user_based": True}, verbose=False)
                fitted, fit_s = runner.fit(algo, train_idx)
                predict = runner.predictor(fitted)
            else:
                t0 = time.perf_counter()
                model = _ours(name, catalogue).fit(train)
                fit_s = time.perf_counter() - t0
                predict = model.predict_many
            t0 = time.perf_counter()
            est = predict(test.users, test.items)
            pred_s = time.perf_counter() - t0
            for key, val in (("rmse", rmse(est, test.values)), ("mae", mae(est, test.values)),
                             ("fit_s", fit_s), ("predict_s", pred_s)):
                res[name][key].append(val)
    ranking = evaluate_ranking(data, catalogue, folds[:ranking_folds], seed, runner) if with_ranking else {}
    if runner:
        runner.close()
    summary = {n: {k: float(np.mean(v)) for k, v in m.items()} for n, m in res.items()}
    return {"folds": n_folds, "seed": seed, "ratings": len(data), "coverage": coverage.as_dict(),
            "cv": summary, "cv_per_fold": res, "ranking": ranking}


def surprise_svd_scores(algo: Any, data: Ratings) -> Callable[[int], np.ndarray]:
    """Surprise SVD's own fitted parameters, scored for every item at once (same formula as its predict)."""
    ts = algo.trainset
    # knows_item() takes an *inner* id in Surprise; map raw ids through its own raw->inner table.
    raw2inner = ts._raw2inner_id_items
    inner_items = np.array([raw2inner.get(i, -1) for i in data.item_ids])
    known = inner_items >= 0

    def scores(u: int) -> np.ndarray:
        raw = data.user_ids[u]
        out = np.full(len(inner_items), np.nan)
        iu = ts._raw2inner_id_users.get(raw)
        if iu is None:
            return out
        ii = inner_items[known]
        out[known] = ts.global_mean + algo.bu[iu] + algo.bi[ii] + algo.qi[ii] @ algo.pu[iu]
        return out

    return scores


def sweep(data_dir: Path, seed: int, out_png: Path, with_surprise: bool) -> dict[str, Any]:
    """RMSE on fold 0 vs factors (epochs fixed) and vs epochs (factors fixed); writes a two-panel PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = load_ratings(data_dir / "ml-100k")
    test_idx = kfold_indices(len(data), 5, seed)[0]
    train = data.subset(np.setdiff1d(np.arange(len(data)), test_idx))
    test = data.subset(test_idx)
    factors, epochs = [2, 5, 10, 20, 50, 100], [1, 2, 4, 8, 12, 20]

    def ours(k: int, e: int) -> float:
        return rmse(SVD(n_factors=k, n_epochs=e).fit(train).predict_many(test.users, test.items), test.values)

    out: dict[str, Any] = {"factors": factors, "epochs": epochs}
    out["ours_vs_factors"] = [ours(k, 8) for k in tqdm(factors, desc="sweep factors")]
    out["ours_vs_epochs"] = [ours(20, e) for e in tqdm(epochs, desc="sweep epochs")]
    if with_surprise:
        from surprise import SVD as SSVD

        runner = SurpriseRunner(data)
        train_idx = np.setdiff1d(np.arange(len(data)), test_idx)

        def theirs(k: int, e: int) -> float:
            algo, _ = runner.fit(SSVD(n_factors=k, n_epochs=e, random_state=seed), train_idx)
            return rmse(runner.predictor(algo)(test.users, test.items), test.values)

        out["surprise_vs_factors"] = [theirs(k, 20) for k in tqdm(factors, desc="surprise factors")]
        out["surprise_vs_epochs"] = [theirs(100, e) for e in tqdm(epochs, desc="surprise epochs")]
        runner.close()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "factors", "factors"), (axes[1], "epochs", "epochs")):
        ax.plot(out[key], out[f"ours_vs_{key}"], "o-", label="ours (ALS)")
        if f"surprise_vs_{key}" in out:
            ax.plot(out[key], out[f"surprise_vs_{key}"], "s--", label="surprise SVD (SGD)")
        ax.axhline(0.934, color="grey", lw=0.8, ls=":", label="0.934 goal")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("RMSE (ml-100k fold 0)")
        ax.legend()
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out


def print_table(r: dict[str, Any]) -> None:
    cv = r["cv"]
    print(f"\n{r['folds']}-fold CV on {r['ratings']} ratings (seed {r['seed']})")
    print(f"{'algorithm':<22}{'RMSE':>8}{'MAE':>8}{'fit s':>8}{'pred s':>8}")
    for name, m in cv.items():
        print(f"{name:<22}{m['rmse']:>8.4f}{m['mae']:>8.4f}{m['fit_s']:>8.3f}{m['predict_s']:>8.3f}")
    if "surprise_svd" in cv:
        print(f"\nSVD fit time ratio ours/surprise (mean of folds, not interleaved; see bench/bench_svd.py): "
              f"{cv['svd']['fit_s'] / cv['surprise_svd']['fit_s']:.2f}; RMSE {cv['svd']['rmse']:.4f} vs "
              f"{cv['surprise_svd']['rmse']:.4f}")
        kn, sk = cv["knn"], cv["surprise_knn_pearson"]
        print(f"kNN RMSE ours {kn['rmse']:.4f} vs surprise {sk['rmse']:.4f}; fit+predict time ratio "
              f"{(kn['fit_s'] + kn['predict_s']) / (sk['fit_s'] + sk['predict_s']):.2f}")
    if r.get("ranking"):
        print_ranking(r["ranking"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR.parent / "eval" / "recsys")
    ap.add_argument("--no-surprise", action="store_true", help="skip the scikit-surprise baseline")
    ap.add_argument("--no-sweep", action="store_true", help="skip the RMSE vs factors/epochs plot")
    ap.add_argument("--no-ranking", action="store_true", help="skip the per-history-length ranking tables")
    ap.add_argument("--ranking-folds", type=int, default=None, help="rank on the first N folds only (default all)")
    args = ap.parse_args(argv)
    threadpool_limits(1)  # as the companion runs; oversubscribed BLAS threads on 2 cores distort every time
    fetch(args.data_dir)
    with_surprise = not args.no_surprise
    if with_surprise:
        try:
            import surprise  # noqa: F401
        except ImportError:
            print("scikit-surprise not installed: pip install scikit-surprise==1.1.5 (baseline skipped)")
            with_surprise = False
    results = evaluate(args.data_dir, args.folds, args.seed, with_surprise, not args.no_ranking,
                       args.ranking_folds)
    if not args.no_sweep:
        results["sweep"] = sweep(args.data_dir, args.seed, args.out / "rmse_sweep.png", with_surprise)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwrote {args.out / 'results.json'}" + ("" if args.no_sweep else f" and {args.out / 'rmse_sweep.png'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
