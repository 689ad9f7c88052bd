"""Owns what both text-model builds share: the "is this checkpoint complete?" test, the atomic publish of a
staging directory, the round-trip check against training-time scores, and the idempotent build CLI.

A worker loads whatever directory sits at the output path, so a build writes into `<out>.tmp<pid>` and renames
it into place only after the saved checkpoint reproduces the training-time scores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "moderation.json", "data_manifest.json",
            "thresholds.json", "MODEL_CARD.md")


def is_complete(out: Path, version: str, name: str | None = None) -> bool:
    """True when every file is there and moderation.json names this build (name checked when given)."""
    if not all((out / f).exists() for f in REQUIRED):
        return False
    try:
        card = json.loads((out / "moderation.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return card.get("version") == version and (name is None or card.get("name") == name)


def staging_dir(out: Path) -> Path:
    """An empty per-process directory next to `out`, so a crashed build never leaves a loadable half."""
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def publish(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def check_roundtrip(path: Path, texts: list[str], expected: np.ndarray, labels: Sequence[str], max_len: int,
                    tolerance: float) -> None:
    """The saved checkpoint, loaded the way workers load it, must give the training-time scores."""
    from models.text.classifier import TextClassifier

    got = np.array([[p[c] for c in labels] for p in TextClassifier(str(path), max_tokens=max_len).predict(texts)])
    diff = float(np.abs(got - expected).max())
    if diff > tolerance:
        raise RuntimeError(f"saved checkpoint disagrees with training-time scores (max diff {diff:.2e})")


def cli(description: str, build: Callable[[Path, Path, bool], Path], default_out: Path, default_cache: Path,
        argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--cache", type=Path, default=default_cache)
    parser.add_argument("--force", action="store_true", help="rebuild even if the output is complete")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    build(args.out, args.cache, args.force)
