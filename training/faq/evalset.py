"""Owns the FAQ evaluation set: its dev/frozen files, their rows and how a collection's language files are loaded.

Rows: in_scope {lang, id, q}, near_miss {lang, lure, q} (a neighbouring topic no entry answers; `lure` is the entry it
resembles), far {lang, q}. Methods and thresholds are chosen on the tuning splits (dev, and dev2: written later,
before any change made against it, so unlike dev it is not fitted by the FAQ's phrasings); frozen is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from models.faq.store import FaqCollection, discover, load_collection

DATA = Path(__file__).resolve().parent / "data" / "eval"
SPLITS = ("dev", "dev2", "frozen")
TUNE_SPLITS = ("dev", "dev2")
LANGUAGES = ("en", "zh")
FAQ_ROOT = Path(__file__).resolve().parents[2] / "companion" / "data" / "faq"
DEFAULT_TENANT, DEFAULT_COLLECTION = "demo", "platform"


@dataclass(frozen=True)
class Question:
    q: str
    lang: str
    kind: str  # in_scope | near_miss | far
    gold: str = ""  # the answering entry (in_scope) or the resembled one (near_miss)


@dataclass
class EvalSet:
    split: str
    questions: list[Question]

    def of(self, kind: str, lang: str | None = None) -> list[Question]:
        return [q for q in self.questions if q.kind == kind and (lang is None or q.lang == lang)]


def split_path(split: str, collection: str = DEFAULT_COLLECTION) -> Path:
    return DATA / split / f"{collection}.yaml"


def load_eval(path: Path, split: str | None = None) -> EvalSet:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    qs = [Question(r["q"], r["lang"], "in_scope", r["id"]) for r in raw.get("in_scope", [])]
    qs += [Question(r["q"], r["lang"], "near_miss", r.get("lure", "")) for r in raw.get("near_miss", [])]
    qs += [Question(r["q"], r["lang"], "far") for r in raw.get("far", [])]
    return EvalSet(split or str(raw.get("split", path.parent.name)), qs)


def load_split(split: str, collection: str = DEFAULT_COLLECTION) -> EvalSet:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {SPLITS}")
    return load_eval(split_path(split, collection), split)


def load_faq(tenant: str = DEFAULT_TENANT, collection: str = DEFAULT_COLLECTION,
             root: Path = FAQ_ROOT) -> list[FaqCollection]:
    """All language files of one collection, default language first (as the companion loads them)."""
    files = discover(root).get((tenant, collection))
    if not files:
        raise FileNotFoundError(f"no FAQ files for {tenant}/{collection} under {root}")
    return [load_collection(f, collection) for f in files]
