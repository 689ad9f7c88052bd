"""Benchmarks SVD fit time, ours (ALS) vs scikit-surprise (SGD), interleaved in one process, same fold.

    python -m bench.bench_svd [--repeats 7] [--threads 1]

Each repeat fits ours then Surprise's SVD (defaults: 100 factors, 20 epochs) on fold 0 of the seeded 5-fold
split, so machine noise hits both alike; prints median and minimum per library, their ratios, and test RMSE.
--threads sets BLAS threads for ours (Surprise is single-threaded Cython). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from models.recsys.data import kfold_indices, load_ratings
from models.recsys.svd import SVD
from training.recsys.evaluate import SurpriseRunner
from training.recsys.fetch import DEFAULT_DATA_DIR, fetch
from training.recsys.metrics import rmse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    threadpool_limits(args.threads)
    from surprise import SVD as SSVD

    fetch(DEFAULT_DATA_DIR)
    data = load_ratings(DEFAULT_DATA_DIR / "ml-100k")
    test_idx = kfold_indices(len(data), 5, 0)[0]
    train_idx = np.setdiff1d(np.arange(len(data)), test_idx)
    train, test = data.subset(train_idx), data.subset(test_idx)
    runner = SurpriseRunner(data)
    ours_t, theirs_t = [], []
    ours = theirs = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = SVD().fit(train)
        ours_t.append(time.perf_counter() - t0)
        theirs, s = runner.fit(SSVD(random_state=0), train_idx)
        theirs_t.append(s)
    runner.close()
    assert ours is not None and theirs is not None
    r_ours = rmse(ours.predict_many(test.users, test.items), test.values)
    r_theirs = rmse(runner.predictor(theirs)(test.users, test.items), test.values)
    med_o, med_t, min_o, min_t = (float(np.median(ours_t)), float(np.median(theirs_t)), min(ours_t), min(theirs_t))
    print(f"SVD fit on ml-100k fold 0 ({len(train)} ratings), {args.repeats} interleaved repeats, "
          f"BLAS threads {args.threads}")
    print(f"{'':<28}{'median s':>10}{'min s':>10}{'RMSE':>9}")
    print(f"{'ours (ALS 20f, 6 ep)':<28}{med_o:>10.3f}{min_o:>10.3f}{r_ours:>9.4f}")
    print(f"{'Surprise SVD (100f, 20 ep)':<28}{med_t:>10.3f}{min_t:>10.3f}{r_theirs:>9.4f}")
    print(f"ratio ours/Surprise: median {med_o / med_t:.2f}, min {min_o / min_t:.2f} (goal <= 0.5 at equal or "
          f"better RMSE: {'met' if med_o / med_t <= 0.5 and r_ours <= r_theirs else 'not met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
