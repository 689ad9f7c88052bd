"""Owns rating/catalogue loading: MovieLens layouts (RecBole atomic, u.data, ratings.csv, ratings.dat) -> arrays.

Raw ids stay strings (MovieLens ids are ints, but other catalogues are not); models map them to dense
inner indices once, in `Ratings`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Item:
    """A catalogue entry; text fields are empty strings when no metadata source joined."""

    item_id: str
    title: str
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    director: str = ""
    writer: str = ""
    cast: str = ""
    plot: str = ""


@dataclass
class Ratings:
    """Explicit ratings as parallel arrays over dense inner ids (user_ids[u] / item_ids[i] give raw ids)."""

    users: np.ndarray  # int32 inner user index per rating
    items: np.ndarray  # int32 inner item index per rating
    values: np.ndarray  # float64 rating
    user_ids: list[str]
    item_ids: list[str]
    scale: tuple[float, float] = (1.0, 5.0)
    # float64 unix seconds per rating, or None when the source has none (then no time-aware component runs).
    times: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.user_index = {u: k for k, u in enumerate(self.user_ids)}
        self.item_index = {i: k for k, i in enumerate(self.item_ids)}

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @classmethod
    def from_triples(
        cls, triples: list[tuple[str, str, float]], scale: tuple[float, float] = (1.0, 5.0),
        users: list[str] | None = None, items: list[str] | None = None, times: list[float] | None = None,
    ) -> Ratings:
        """Inner ids in id order; `users`/`items` add ids without ratings (catalogue items nobody rated yet);
        `times` (parallel to triples) are the ratings' unix times."""
        user_ids = sorted({t[0] for t in triples} | set(users or ()), key=_id_key)
        item_ids = sorted({t[1] for t in triples} | set(items or ()), key=_id_key)
        ui = {u: k for k, u in enumerate(user_ids)}
        ii = {i: k for k, i in enumerate(item_ids)}
        return cls(
            users=np.fromiter((ui[t[0]] for t in triples), np.int32, len(triples)),
            items=np.fromiter((ii[t[1]] for t in triples), np.int32, len(triples)),
            values=np.fromiter((float(t[2]) for t in triples), np.float64, len(triples)),
            user_ids=user_ids,
            item_ids=item_ids,
            scale=scale,
            times=None if times is None else np.asarray(times, dtype=np.float64),
        )

    def subset(self, idx: np.ndarray) -> Ratings:
        """Ratings at positions idx, keeping the same id space (so folds share inner ids)."""
        return Ratings(
            self.users[idx], self.items[idx], self.values[idx], self.user_ids, self.item_ids, self.scale,
            None if self.times is None else self.times[idx],
        )

    def triples(self) -> list[tuple[str, str, float]]:
        return [
            (self.user_ids[u], self.item_ids[i], float(r))
            for u, i, r in zip(self.users, self.items, self.values, strict=True)
        ]


def _id_key(x: str) -> tuple[int, int | str]:
    # Numeric ids sort numerically so inner index order is stable and readable.
    return (0, int(x)) if x.isdigit() else (1, x)


def kfold_indices(n: int, n_folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Fixed-seed random partition of range(n) into n_folds test folds (shared with the Surprise baseline)."""
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, n_folds)]


def load_ratings(path: Path) -> Ratings:
    """Read any supported layout; `path` is a directory or a ratings file."""
    f = _find_ratings_file(path)
    rows: list[tuple[str, str, str, str]] = []  # user, item, rating, timestamp ("" when absent)
    if f.suffix == ".inter":
        with f.open(encoding="utf-8") as fh:
            header = fh.readline().rstrip("\n").split("\t")
            cols = [h.split(":")[0] for h in header]
            iu, ii, ir = cols.index("user_id"), cols.index("item_id"), cols.index("rating")
            it = cols.index("timestamp") if "timestamp" in cols else -1
            for line in fh:
                p = line.rstrip("\n").split("\t")
                rows.append((p[iu], p[ii], p[ir], p[it] if it >= 0 else ""))
    elif f.name == "u.data" or f.suffix == ".dat":
        sep = "\t" if f.name == "u.data" else "::"
        with f.open(encoding="latin-1") as fh:
            rows = [(p[0], p[1], p[2], p[3] if len(p) > 3 else "")
                    for p in (ln.rstrip("\n").split(sep) for ln in fh if ln.strip())]
    else:  # ratings.csv (ml-latest / ml-25m): userId,movieId,rating,timestamp with a header
        with f.open(encoding="utf-8", newline="") as fh:
            rows = [(r["userId"], r["movieId"], r["rating"], r.get("timestamp") or "") for r in csv.DictReader(fh)]
    if not rows:
        raise ValueError(f"{f}: no ratings")
    triples = [(u, i, float(r)) for u, i, r, _ in rows]
    times = [float(t) for *_, t in rows] if all(t for *_, t in rows) else None
    lo = min(t[2] for t in triples)
    scale = (0.5, 5.0) if lo == 0.5 else (1.0, 5.0)
    return Ratings.from_triples(triples, scale, times=times)


def _find_ratings_file(path: Path) -> Path:
    if path.is_file():
        return path
    for pattern in ("*.inter", "u.data", "ratings.dat", "ratings.csv"):  # RecBole first: the shipped default
        hits = sorted(path.glob(pattern))
        if hits:
            return hits[0]
    raise FileNotFoundError(f"{path}: no *.inter, u.data, ratings.dat or ratings.csv")


ML100K_GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy Film-Noir Horror "
    "Musical Mystery Romance Sci-Fi Thriller War Western"
).split()
_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


def load_items(path: Path) -> dict[str, Item]:
    """Catalogue titles/years/genres from the same layouts as load_ratings."""
    d = path if path.is_dir() else path.parent
    items: dict[str, Item] = {}
    # "u.item" also matches *.item but is the pipe-separated GroupLens layout, not RecBole's atomic file.
    if hits := sorted(h for h in d.glob("*.item") if h.name != "u.item"):
        with hits[0].open(encoding="utf-8") as fh:
            cols = [h.split(":")[0] for h in fh.readline().rstrip("\n").split("\t")]
            for line in fh:
                row = dict(zip(cols, line.rstrip("\n").split("\t"), strict=False))
                year_s = row.get("release_year", "")
                items[row["item_id"]] = Item(
                    row["item_id"], row.get("movie_title", ""), int(year_s) if year_s.isdigit() else None,
                    row.get("class", "").split(),
                )
    elif (d / "u.item").exists():
        with (d / "u.item").open(encoding="latin-1") as fh:
            for line in fh:
                p = line.rstrip("\n").split("|")
                title, year = _split_year(p[1])
                flags = p[5:5 + len(ML100K_GENRES)]
                genres = [g for g, f in zip(ML100K_GENRES, flags, strict=False) if f == "1"]
                items[p[0]] = Item(p[0], title, year, genres)
    else:
        for name, sep in (("movies.dat", "::"), ("movies.csv", ",")):
            if (d / name).exists():
                with (d / name).open(encoding="latin-1" if sep == "::" else "utf-8", newline="") as fh:
                    rows = (ln.rstrip("\n").split(sep) for ln in fh) if sep == "::" else csv.reader(fh)
                    for p in rows:
                        if p[0] == "movieId":
                            continue
                        title, year = _split_year(p[1])
                        items[p[0]] = Item(p[0], title, year, [g for g in p[2].split("|") if g])
                break
    return items


def _split_year(title: str) -> tuple[str, int | None]:
    m = _YEAR.search(title)
    return (title[: m.start()], int(m.group(1))) if m else (title, None)
