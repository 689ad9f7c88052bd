"""Loader, folds and metadata join."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.recsys.data import Ratings, kfold_indices, load_items, load_ratings
from models.recsys.metadata import enrich, norm_title


def test_ml100k_from_recbole_wheel(ratings: Ratings) -> None:
    assert (len(ratings), ratings.n_users, ratings.n_items) == (100_000, 943, 1682)
    assert ratings.scale == (1.0, 5.0)
    assert set(np.unique(ratings.values)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # Spot-check the first line of ml-100k.inter: user 196 rated item 242 with 3.
    assert ratings.user_ids[ratings.users[0]] == "196" and ratings.item_ids[ratings.items[0]] == "242"
    assert ratings.values[0] == 3.0
    assert ratings.times is not None and ratings.times[0] == 881250949.0  # its timestamp column


def _triples(r: Ratings) -> set[tuple[str, str, float]]:
    return set(r.triples())


def test_standard_movielens_layouts(tmp_path: Path) -> None:
    rows = [("1", "10", 4.0), ("1", "20", 3.5), ("2", "10", 5.0)]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "u.data").write_text("".join(f"{u}\t{i}\t{int(r)}\t0\n" for u, i, r in rows if r % 1 == 0))
    (tmp_path / "a" / "u.item").write_text(
        "10|Heat (1995)|01-Jan-1995||http://x|0|1|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::0\n" for u, i, r in rows))
    (tmp_path / "b" / "movies.dat").write_text("10::Heat (1995)::Action|Crime\n")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},0\n" for u, i, r in rows))
    (tmp_path / "c" / "movies.csv").write_text('movieId,title,genres\n10,"Heat (1995)",Action|Crime\n')
    assert _triples(load_ratings(tmp_path / "a")) == {t for t in rows if t[2] % 1 == 0}
    assert _triples(load_ratings(tmp_path / "b")) == set(rows)
    assert _triples(load_ratings(tmp_path / "c")) == set(rows)
    assert all((t := load_ratings(tmp_path / d).times) is not None and not t.any() for d in "abc")  # all stamped 0
    for d in "abc":
        item = load_items(tmp_path / d)["10"]
        assert (item.title, item.year) == ("Heat", 1995)
        assert "Action" in item.genres and "Crime" in item.genres


def test_kfold_is_a_seeded_partition() -> None:
    folds = kfold_indices(103, 5, seed=7)
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(103))
    assert [len(f) for f in folds] == [21, 21, 21, 20, 20]
    assert all((a == b).all() for a, b in zip(folds, kfold_indices(103, 5, seed=7), strict=True))


def test_norm_title_moves_trailing_articles() -> None:
    assert norm_title("Usual Suspects, The") == norm_title("The Usual Suspects")
    assert norm_title("Postino, Il") == "il postino"
    assert norm_title("Seven (Se7en)") == "seven"


def test_metadata_coverage(data_dir: Path) -> None:
    items = load_items(data_dir / "ml-100k")
    cov = enrich(items, data_dir / "film-metadata" / "movies.db", data_dir / "plots" / "movies.csv")
    assert cov.metadata >= 0.75 * cov.items  # measured 1,372 / 1,682
    assert cov.plots >= 100
    assert items["1"].director == "John Lasseter"  # Toy Story (1995)
