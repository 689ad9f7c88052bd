"""Owns the frozen-test evaluation of the text models (v2 vs v1 vs a length-only and a word-list baseline).

`python -m training.text.frozen_eval [--v1 var/models/text-v1] [--json out.json]` scores the frozen test set
(`training/data/frozen_test`, never read by training or tuning) through the serving path (TextClassifier:
sliding windows, max over windows) and the policy's decision rule (per-language thresholds + blocklist), in
one process, and prints ROC-AUC per language, per category and per length band (e5 tokens), with precision
and recall at the policy's review and block thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from common.language import detect_language
from models.text.labels import TOP_LEVEL
from service.core.policy import Policy, load_policy_file
from training.text import corpus

MIN_POS = 5
# v1 (modtext-minilm) has no harassment label: its closest are insult and threat.
V1_MAP: dict[str, tuple[str, ...]] = {"harassment": ("insult", "threat"), "hate": ("hate",), "sexual": ("sexual",),
                                      "violence": ("violence", "threat"), "self_harm": ("self_harm",),
                                      "profanity": ("profanity",)}


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    if y.sum() < MIN_POS or (len(y) - y.sum()) < MIN_POS:
        return None
    return float(roc_auc_score(y, s))


def _pr(y: np.ndarray, flagged: np.ndarray) -> dict[str, float | None]:
    tp = float((flagged & y).sum())
    return {"precision": tp / flagged.sum() if flagged.sum() else None, "recall": tp / y.sum() if y.sum() else None}


def score_model(path: Path, texts: list[str], v1: bool = False) -> np.ndarray:
    """(n, len(TOP_LEVEL)) scores through the serving path; v1 categories mapped onto the top level."""
    from models.text.classifier import TextClassifier

    model = TextClassifier(str(path), max_tokens=256, batch_size=32)
    preds = model.predict(texts)
    if v1:
        return np.array([[max(p.get(c, 0.0) for c in V1_MAP[top]) for top in TOP_LEVEL] for p in preds])
    return np.array([[p.get(c, 0.0) for c in TOP_LEVEL] for p in preds])


def decisions(policy: Policy, texts: list[str], scores: list[dict[str, float]]) -> list[str]:
    return [policy.for_language(detect_language(t)).for_kind("text").decide(s)[0]
            for t, s in zip(texts, scores, strict=True)]


def table(name: str, rows: list[corpus.CorpusRow], s: np.ndarray, bands: list[str]) -> dict[str, Any]:
    """AUCs of one scorer: any-harm (max over categories) per language and band, and per category."""
    y = np.array([[c in r.labels for c in TOP_LEVEL] for r in rows])
    anyy: np.ndarray = np.asarray(y.any(1))
    anys: np.ndarray = np.asarray(s.max(1))
    langs = np.array([r.lang for r in rows])
    band = np.array(bands)
    out: dict[str, Any] = {"name": name, "any": {}, "category": {}, "band": {}}
    for lang in ("all", "en", "zh"):
        m = np.ones(len(rows), bool) if lang == "all" else langs == lang
        out["any"][lang] = _auc(anyy[m], anys[m])
        out["category"][lang] = {c: _auc(y[m, j], s[m, j]) for j, c in enumerate(TOP_LEVEL)}
        out["band"][lang] = {b: _auc(anyy[m & (band == b)], anys[m & (band == b)])
                             for _, _, b in corpus.LENGTH_BANDS}
    return out


def decision_table(rows: list[corpus.CorpusRow], decided: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    harmful = np.array([r.harmful for r in rows])
    langs = np.array([r.lang for r in rows])
    d = np.array(decided)
    for lang in ("all", "en", "zh"):
        m = np.ones(len(rows), bool) if lang == "all" else langs == lang
        out[lang] = {"n": int(m.sum()), "harmful": int(harmful[m].sum()),
                     "review_or_block": _pr(harmful[m], np.isin(d[m], ("review", "block"))),
                     "block": _pr(harmful[m], d[m] == "block"),
                     "benign_flagged": float(np.isin(d[m & ~harmful], ("review", "block")).mean())
                     if (m & ~harmful).any() else None}
    return out


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Frozen test: {report['n']} rows ({report['n_en']} en, {report['n_zh']} zh); near-duplicates of "
             f"training rows: {report['near_duplicates_with_corpus']}", "",
             "| scorer | lang | any-harm AUC | " + " | ".join(TOP_LEVEL) + " | " +
             " | ".join(b for _, _, b in corpus.LENGTH_BANDS) + " |",
             "|---" * (3 + len(TOP_LEVEL) + len(corpus.LENGTH_BANDS)) + "|"]
    for t in report["scorers"]:
        for lang in ("all", "en", "zh"):
            lines.append(f"| {t['name']} | {lang} | {_f(t['any'][lang])} | "
                         + " | ".join(_f(t["category"][lang][c]) for c in TOP_LEVEL) + " | "
                         + " | ".join(_f(t["band"][lang][b]) for _, _, b in corpus.LENGTH_BANDS) + " |")
    lines += ["", f"Decisions through {report['policy']} (per-language thresholds):", "",
              "| lang | n | harmful | P@review | R@review | P@block | R@block | benign flagged |",
              "|---|---|---|---|---|---|---|---|"]
    for lang, d in report["decisions"].items():
        lines.append(f"| {lang} | {d['n']} | {d['harmful']} | {_f(d['review_or_block']['precision'])} | "
                     f"{_f(d['review_or_block']['recall'])} | {_f(d['block']['precision'])} | "
                     f"{_f(d['block']['recall'])} | {_f(d['benign_flagged'])} |")
    lines += ["", "Rows per length band (e5 tokens): " + json.dumps(report["bands"])]
    return "\n".join(lines)


def evaluate(model: Path, policy_path: Path, v1: Path | None, test_dir: Path = corpus.FROZEN_DIR) -> dict[str, Any]:
    from transformers import AutoTokenizer

    rows = corpus.load_dir(test_dir)
    train_rows = corpus.load_dir(corpus.CORPUS_DIR)
    dups = corpus.near_duplicates([r.text for r in rows], [r.text for r in train_rows])
    texts = [r.text for r in rows]
    tok = AutoTokenizer.from_pretrained(str(model))
    n_tokens = [len(ids) for ids in tok(texts, add_special_tokens=True, verbose=False)["input_ids"]]
    bands = [corpus.length_band(n) for n in n_tokens]
    t0 = time.perf_counter()
    from models.text.classifier import TextClassifier

    clf = TextClassifier(str(model), max_tokens=256, batch_size=32)
    preds = clf.predict(texts)
    v2 = np.array([[p.get(c, 0.0) for c in TOP_LEVEL] for p in preds])
    seconds = time.perf_counter() - t0
    scorers = [table(f"{clf.model_id}", rows, v2, bands)]
    if v1 is not None and v1.exists():
        scorers.append(table("v1 " + v1.name, rows, score_model(v1, texts, v1=True), bands))
    length = np.array([[float(n)] * len(TOP_LEVEL) for n in n_tokens])
    scorers.append(table("length only (tokens)", rows, length, bands))
    try:
        from profanity_check import predict_prob

        wl = np.asarray(predict_prob(texts), dtype=float)
        scorers.append(table("alt-profanity-check", rows, np.repeat(wl[:, None], len(TOP_LEVEL), 1), bands))
    except ImportError:
        pass
    policy = load_policy_file(policy_path)
    return {"n": len(rows), "n_en": sum(r.lang == "en" for r in rows), "n_zh": sum(r.lang == "zh" for r in rows),
            "near_duplicates_with_corpus": len(dups), "policy": policy.id, "model": clf.model_id,
            "score_seconds": round(seconds, 1),
            "bands": {b: bands.count(b) for _, _, b in corpus.LENGTH_BANDS}, "scorers": scorers,
            "decisions": decision_table(rows, decisions(policy, texts, preds))}


def main(argv: list[str] | None = None, printer: Callable[[str], None] = print) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("var/models/text-default"))
    ap.add_argument("--policy", type=Path, default=Path("policies/default.yaml"))
    ap.add_argument("--v1", type=Path, default=Path("var/models/text-v1"), help="v1 checkpoint (skipped if absent)")
    ap.add_argument("--test-dir", type=Path, default=corpus.FROZEN_DIR)
    ap.add_argument("--json", type=Path, default=Path("var/eval/text/frozen.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = evaluate(args.model, args.policy, args.v1, args.test_dir)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    printer(markdown(report))
    return report


if __name__ == "__main__":
    main()
