"""Owns the project-written v2 corpus: loading the JSONL rows, implied labels, splits and near-duplicate checks.

Rows live in `training/data/corpus/*.jsonl` (training + validation) and `training/data/frozen_test/*.jsonl`
(the frozen test set, written separately and only ever read by the evaluation). The split is a hash of the row
id, except that a row whose near-duplicate sits in the other split joins that row's split, so validation
never scores a paraphrase of a training row.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.text.labels import TAXONOMY, TOP_LEVEL, with_parents

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS_DIR = DATA / "corpus"
FROZEN_DIR = DATA / "frozen_test"
VAL_SHARE = 0.2
NEAR_DUP_COSINE = 0.8
LENGTH_BANDS = ((0, 128, "<=128"), (128, 512, "128-512"), (512, 10**9, ">512"))


@dataclass
class CorpusRow:
    id: str
    lang: str
    text: str
    labels: list[str]
    topic: str
    style: str
    profane: bool
    hard_negative: bool
    author: str
    script: str = "hans"
    split: str = "train"
    extra: dict[str, Any] = field(default_factory=dict)

    def vector(self, categories: tuple[str, ...] = TAXONOMY) -> list[int]:
        return [int(c in self.labels) for c in categories]

    @property
    def harmful(self) -> bool:
        return bool(self.labels)


class CorpusError(ValueError):
    pass


def _parse(line: str, where: str) -> CorpusRow:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{where}: not JSON: {exc}") from exc
    labels = [str(x) for x in raw.get("labels") or []]
    unknown = set(labels) - set(TAXONOMY)
    if unknown:
        raise CorpusError(f"{where}: unknown labels {sorted(unknown)}")
    if raw.get("lang") not in ("en", "zh") or not str(raw.get("text") or "").strip():
        raise CorpusError(f"{where}: needs lang en|zh and a non-empty text")
    rid = str(raw["id"])
    return CorpusRow(
        id=rid, lang=raw["lang"], text=str(raw["text"]), labels=with_parents(labels),
        topic=str(raw.get("topic") or "general"), style=str(raw.get("style") or "other"),
        profane=bool(raw.get("profane")), hard_negative=bool(raw.get("hard_negative")),
        author=rid.rsplit("-", 1)[0], script=str(raw.get("script") or ("hans" if raw["lang"] == "zh" else "latn")),
    )


def load_dir(path: Path) -> list[CorpusRow]:
    """Every row of every *.jsonl under `path`, in file then line order; duplicate ids are an error."""
    rows: list[CorpusRow] = []
    seen: dict[str, str] = {}
    for f in sorted(path.glob("*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = _parse(line, f"{f.name}:{n}")
            if row.id in seen:
                raise CorpusError(f"{f.name}:{n}: id {row.id} already used at {seen[row.id]}")
            seen[row.id] = f"{f.name}:{n}"
            rows.append(row)
    return rows


def _char_vectors(texts: list[str]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Character 4-grams work for both scripts (Chinese has no spaces; English paraphrases share 4-grams).
    return TfidfVectorizer(analyzer="char", ngram_range=(4, 4), min_df=1, sublinear_tf=True).fit_transform(texts)


def near_duplicates(a: list[str], b: list[str] | None = None, threshold: float = NEAR_DUP_COSINE,
                    ) -> list[tuple[int, int, float]]:
    """(i, j, cosine) pairs at or above `threshold`: within `a` (i < j) or between `a` and `b`."""
    texts = a + (b or [])
    x = _char_vectors(texts)
    xa = x[: len(a)]
    xb = x[len(a):] if b is not None else xa
    out: list[tuple[int, int, float]] = []
    for start in range(0, xa.shape[0], 512):
        sims = (xa[start:start + 512] @ xb.T).toarray()
        for i, j in zip(*np.nonzero(sims >= threshold), strict=True):
            gi = start + int(i)
            if b is None and int(j) <= gi:
                continue
            out.append((gi, int(j), round(float(sims[i, j]), 3)))
    return out


def assign_splits(rows: list[CorpusRow], val_share: float = VAL_SHARE) -> list[tuple[int, int, float]]:
    """Hash split by id, then pull near-duplicate pairs into one split (train wins). Returns the pairs."""
    for r in rows:
        h = int(hashlib.sha256(r.id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        r.split = "val" if h < val_share else "train"
    pairs = near_duplicates([r.text for r in rows])
    for i, j, _ in pairs:
        if rows[i].split != rows[j].split:
            rows[i].split = rows[j].split = "train"
    return pairs


def length_band(n_tokens: int) -> str:
    return next(name for lo, hi, name in LENGTH_BANDS if lo < n_tokens <= hi or (lo == 0 and n_tokens <= hi))


def digest(rows: list[CorpusRow]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps([r.id, r.text, r.labels, r.split], ensure_ascii=False).encode())
    return h.hexdigest()


def summary(rows: list[CorpusRow]) -> dict[str, Any]:
    """Counts for the data card: by language, split, category, hard negatives, profanity, length."""
    def med(xs: list[int]) -> float:
        return float(np.median(xs)) if xs else 0.0

    out: dict[str, Any] = {"rows": len(rows)}
    for lang in ("en", "zh"):
        sub = [r for r in rows if r.lang == lang]
        harmful = [r for r in sub if r.harmful]
        out[lang] = {
            "rows": len(sub), "harmful": len(harmful), "benign": len(sub) - len(harmful),
            "hard_negatives": sum(r.hard_negative for r in sub),
            "harmful_without_profanity": sum(not r.profane for r in harmful),
            "median_chars": med([len(r.text) for r in sub]),
            "traditional": sum(r.script == "hant" for r in sub),
            "by_split": dict(Counter(r.split for r in sub)),
            "by_category": {c: sum(c in r.labels for r in sub) for c in TAXONOMY},
            "hard_negatives_by_topic": dict(Counter(r.topic for r in sub if r.hard_negative)),
        }
    out["top_level"] = list(TOP_LEVEL)
    return out
