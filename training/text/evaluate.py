"""Owns the evaluation CLI: held-out metrics, contrast-set false positives, baselines, cross-source split.

`python -m training.text.evaluate --model var/models/text-default [--markdown out.md] [--no-cross-source]`
Scores the test split through TextClassifier (the serving path), and runs alt-profanity-check and
better-profanity on the same texts in the same process. The cross-source table retrains the head on
cached encoder features with one source family left out and tests on that family only.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from models.text.labels import CATEGORIES
from training.text import build, dataset, train

POSITIVE_FAMILIES = ("rtp", "slurprompts", "lexicon_templates", "handwritten")
NEUTRAL_FAMILIES = ("reviews", "plots", "headlines", "dialogue")
MIN_POS = 5  # fewer positives than this: AUCs are noise, print "-"


def _auc(y: np.ndarray, s: np.ndarray) -> tuple[float | None, float | None]:
    if y.sum() < MIN_POS or y.sum() == len(y):
        return None, None
    return float(roc_auc_score(y, s)), float(average_precision_score(y, s))


def _pr(y: np.ndarray, flagged: np.ndarray) -> tuple[float | None, float]:
    tp = float((flagged & (y > 0)).sum())
    return (tp / flagged.sum() if flagged.sum() else None), (tp / max(1.0, float((y > 0).sum())))


def category_table(y: np.ndarray, s: np.ndarray, thresholds: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    out = []
    for j, c in enumerate(CATEGORIES):
        auc, ap = _auc(y[:, j], s[:, j])
        row: dict[str, Any] = {"category": c, "n_pos": int(y[:, j].sum()), "roc_auc": auc, "pr_auc": ap}
        for level in ("review", "block"):
            p, r = _pr(y[:, j], s[:, j] >= thresholds[c][level])
            row[f"p@{level}"], row[f"r@{level}"] = p, r
        out.append(row)
    return out


def flag_rates(groups: dict[str, np.ndarray], s: np.ndarray, thresholds: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Share of benign rows that any category would send to review / block."""
    review = np.array([thresholds[c]["review"] for c in CATEGORIES])
    block = np.array([thresholds[c]["block"] for c in CATEGORIES])
    out = {}
    for name, mask in groups.items():
        if mask.sum():
            out[name] = {"n": int(mask.sum()), "review_fpr": float((s[mask] >= review).any(1).mean()),
                         "block_fpr": float((s[mask] >= block).any(1).mean())}
    return out


def baselines(texts: list[str]) -> dict[str, tuple[np.ndarray, float]]:
    """Each baseline's single score, broadcast to every category, with its own decision threshold."""
    from better_profanity import profanity
    from profanity_check import predict_prob

    apc = np.asarray(predict_prob(texts), dtype=np.float64)
    profanity.load_censor_words()
    bp = np.array([float(profanity.contains_profanity(t)) for t in texts])
    return {"alt-profanity-check": (apc, 0.5), "better-profanity": (bp, 0.5)}


def cross_source(rows: list[dataset.Row], feats: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """Leave one family out of training (all its splits), test on it + the neutral test rows."""
    split = np.array([r.split for r in rows])
    fam = np.array([r.family for r in rows])
    neutral_test = np.isin(fam, NEUTRAL_FAMILIES) & (split == "test")
    trainable = split != "test"
    results = []
    for held in (*POSITIVE_FAMILIES, "freeform"):
        tr = trainable & (fam != held) & (fam != "freeform")
        te = (fam == held) | neutral_test
        full_tr = trainable & (fam != "freeform")
        for variant, mask in (("without", tr), ("with", full_tr)):
            if held == "freeform" and variant == "with":
                continue  # freeform is never trained on; "without" is the only honest number
            weight = np.array([build.CONTRAST_WEIGHT if r.contrast else 1.0 for r in rows])[mask]
            dense, clf = train.train_linear_head(feats[mask], y[mask], l2=build.L2, sample_weight=weight)
            s = train.head_scores(dense, clf, feats[te])
            yt = y[te]
            if variant == "with":
                # In-distribution reference: only the held family's *test* rows, so no row is trained on.
                keep = (fam[te] != held) | (split[te] == "test")
                s, yt = s[keep], yt[keep]
            per_cat = {c: _auc(yt[:, j], s[:, j])[0] for j, c in enumerate(CATEGORIES)}
            anyy, anys = yt.max(1), s.max(1)
            results.append({"held_out": held, "train": variant, "n_pos_any": int(anyy.sum()),
                            "any_roc_auc": _auc(anyy, anys)[0], "any_pr_auc": _auc(anyy, anys)[1], **per_cat})
    return results


def _f(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(report: dict[str, Any]) -> str:
    cols = ["category", "n_pos", "roc_auc", "pr_auc", "p@review", "r@review", "p@block", "r@block"]
    out = [f"### Test split ({report['n_test']} rows), model {report['model']}", "",
           "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, table in report["categories"].items():
        for row in table:
            out.append(f"| {name} | " + " | ".join(str(row[c]) if c in ("category", "n_pos") else _f(row[c])
                                                  for c in cols) + " |")
    out += ["", "### False-positive rate on benign probes (any category >= threshold)", "",
            "| model | probe | n | review FPR | block FPR |", "|---|---|---|---|---|"]
    for name, rates in report["benign"].items():
        for probe, r in rates.items():
            out.append(f"| {name} | {probe} | {r['n']} | {_f(r['review_fpr'])} | {_f(r['block_fpr'])} |")
    if report.get("cross_source"):
        out += ["", "### Cross-source (linear head retrained; ROC-AUC, any category = max score vs any label)", "",
                "| held-out family | trained on it | n_pos | any ROC-AUC | any PR-AUC | "
                + " | ".join(CATEGORIES) + " |", "|---" * (5 + len(CATEGORIES)) + "|"]
        for r in report["cross_source"]:
            out.append(f"| {r['held_out']} | {r['train']} | {r['n_pos_any']} | {_f(r['any_roc_auc'])} | "
                       f"{_f(r['any_pr_auc'])} | " + " | ".join(_f(r[c]) for c in CATEGORIES) + " |")
    return "\n".join(out) + "\n"


def evaluate(model_dir: Path, cache: Path, cross: bool = True, policy: Path | None = None) -> dict[str, Any]:
    from models.text.classifier import TextClassifier

    rows, _, digest = build.load_dataset(cache)
    manifest = json.loads((model_dir / "data_manifest.json").read_text())
    if manifest.get("dataset_sha256") != digest:
        print(f"warning: dataset {digest[:12]} differs from the model's {manifest.get('dataset_sha256', '?')[:12]}")
    thresholds = _thresholds(model_dir, policy)
    test = [r for r in rows if r.split == "test"]
    texts = [r.text for r in test]
    clf = TextClassifier(str(model_dir), max_tokens=build.MAX_LEN)
    preds = clf.predict(texts)
    s = np.array([[p.get(c, 0.0) for c in CATEGORIES] for p in preds])
    y = build.labels_matrix(test)
    probes = sorted({r.contrast for r in test if r.contrast})
    benign = {f"contrast:{k}": np.array([r.contrast == k for r in test]) for k in probes}
    benign["contrast:all"] = np.array([r.contrast is not None for r in test])
    benign["freeform benign"] = np.array([r.family == "freeform" and not r.labels for r in test])
    for fam in NEUTRAL_FAMILIES:
        benign[f"neutral:{fam}"] = np.array([r.family == fam for r in test])
    # Everything else in the table is on in-distribution test rows; freeform is reported on its own.
    main = np.array([r.family != "freeform" for r in test])
    free = ~main
    report: dict[str, Any] = {"model": clf.model_id, "n_test": int(main.sum()), "categories": {}, "benign": {}}
    report["categories"]["ours"] = category_table(y[main], s[main], thresholds)
    report["categories"]["ours (freeform)"] = category_table(y[free], s[free], thresholds)
    report["benign"]["ours"] = flag_rates(benign, s, thresholds)
    for name, (score, cut) in baselines(texts).items():
        bs = np.repeat(score[:, None], len(CATEGORIES), axis=1)
        flat = {c: {"review": cut, "block": cut} for c in CATEGORIES}
        report["categories"][name] = category_table(y[main], bs[main], flat)
        report["benign"][name] = flag_rates(benign, bs, flat)
    if cross:
        feats = build.features_for(rows, digest, cache)["mean"]
        report["cross_source"] = cross_source(rows, feats, build.labels_matrix(rows))
    return report


def _thresholds(model_dir: Path, policy: Path | None) -> dict[str, dict[str, float]]:
    if policy is not None:
        import yaml

        data = yaml.safe_load(policy.read_text())
        default = data.get("default_thresholds", {"review": 0.5, "block": 0.9})
        return {c: data.get("categories", {}).get(c, default) for c in CATEGORIES}
    cats: dict[str, dict[str, float]] = json.loads((model_dir / "thresholds.json").read_text())["categories"]
    return cats


def main(argv: list[str] | None = None, printer: Callable[[str], None] = print) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Evaluate a text moderation checkpoint on the held-out data.")
    parser.add_argument("--model", type=Path, default=build.DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, default=build.DEFAULT_CACHE)
    parser.add_argument("--policy", type=Path, default=None, help="thresholds from a policy file instead")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables as markdown")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw report as JSON")
    parser.add_argument("--no-cross-source", action="store_true", help="skip the leave-one-family-out runs")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = evaluate(args.model, args.cache, cross=not args.no_cross_source, policy=args.policy)
    md = markdown(report)
    printer(md)
    if args.markdown:
        args.markdown.write_text(md)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
