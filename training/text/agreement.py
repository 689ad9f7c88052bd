"""Owns the inter-annotator agreement report: the corpus labels vs an independent blind second pass.

`python -m training.text.agreement` reads `training/data/second_pass/labels_b.jsonl` (labels given without
seeing the first annotator's, for the rows listed in `blind.jsonl`) and prints Cohen's kappa per category,
with parents implied on both sides, overall and per language.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from models.text.labels import TAXONOMY, TOP_LEVEL, with_parents
from training.text import corpus

SECOND_PASS = corpus.DATA / "second_pass"


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    """Cohen's kappa of two binary raters; None when chance agreement is total (kappa undefined)."""
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    return None if pe >= 1.0 else (po - pe) / (1 - pe)


def report(second_pass: Path = SECOND_PASS) -> dict[str, Any]:
    first = {r.id: r for r in corpus.load_dir(corpus.CORPUS_DIR)}
    pairs: list[tuple[str, list[str], list[str]]] = []
    for line in (second_pass / "labels_b.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            row = first[raw["id"]]
            pairs.append((row.lang, row.labels, with_parents([str(x) for x in raw["labels"]])))
    out: dict[str, Any] = {"rows": len(pairs), "categories": {}}
    for lang in ("all", "en", "zh"):
        sub = [(a, b) for la, a, b in pairs if lang in ("all", la)]
        cats: dict[str, Any] = {}
        for c in (*TOP_LEVEL, *(c for c in TAXONOMY if c not in TOP_LEVEL)):
            x, y = [c in a for a, _ in sub], [c in b for _, b in sub]
            cats[c] = {"kappa": cohen_kappa(x, y), "first": sum(x), "second": sum(y)}
        harmful = cohen_kappa([bool(set(a) - {"profanity"}) for a, _ in sub],
                              [bool(set(b) - {"profanity"}) for _, b in sub])
        out["categories"][lang] = {"n": len(sub), "harmful_vs_benign": harmful, **cats}
    return out


def markdown(rep: dict[str, Any]) -> str:
    cats = (*TOP_LEVEL, *(c for c in TAXONOMY if c not in TOP_LEVEL))
    lines = [f"Blind second pass on {rep['rows']} corpus rows: Cohen's kappa (first / second annotator positives)", "",
             "| category | all | en | zh |", "|---|---|---|---|"]

    def cell(d: dict[str, Any]) -> str:
        k = d["kappa"]
        return f"{'-' if k is None else f'{k:.2f}'} ({d['first']}/{d['second']})"

    lines.append("| harmful vs benign (any category but profanity) | " + " | ".join(
        f"{rep['categories'][lang]['harmful_vs_benign']:.2f}" for lang in ("all", "en", "zh")) + " |")
    for c in cats:
        lines.append(f"| {c} | " + " | ".join(cell(rep["categories"][lang][c]) for lang in ("all", "en", "zh")) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--second-pass", type=Path, default=SECOND_PASS)
    args = ap.parse_args(argv)
    rep = report(args.second_pass)
    print(markdown(rep))
    return rep


if __name__ == "__main__":
    main()
