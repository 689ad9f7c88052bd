"""Owns loading a Hugging Face sequence-classification checkpoint and batched, explained text scoring."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from models.text.labels import CATEGORIES, load_label_map, resolve_labels

# Sentence ends: Latin punctuation followed by space, CJK full stops (no space needed), and newlines.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
TOP_SENTENCES = 3


class ModelLoadError(RuntimeError):
    """The checkpoint is missing or unusable; the message always names the path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot load text model from {path!r}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class SentenceScore:
    text: str
    start: int
    end: int
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "scores": self.scores}


@dataclass
class TextScore:
    """Per-category scores of one text; `sentences` explains long texts (top offending sentences)."""

    scores: dict[str, float]
    sentences: list[SentenceScore] = field(default_factory=list)
    windows: int = 1


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of non-empty sentences, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    for name in ("model.safetensors", "pytorch_model.bin", "config.json"):
        f = path / name
        if f.exists():
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:12]


class TextClassifier:
    """Multi-label (sigmoid) or single-label (softmax) classifier, chosen from the checkpoint's config."""

    def __init__(
        self,
        path: str,
        label_map: Path | None = None,
        max_tokens: int = 256,
        batch_size: int = 32,
    ) -> None:
        self.path = path
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        local = Path(path)
        if not local.exists() and (path.startswith((".", "/")) or local.suffix):
            raise ModelLoadError(path, "directory does not exist")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(path)
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(path, f"{type(exc).__name__}: {exc}") from exc
        self.model.eval()
        config = self.model.config
        try:
            self.categories = resolve_labels(
                {int(k): v for k, v in config.id2label.items()}, load_label_map(label_map)
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(path, str(exc)) from exc
        self.multi_label = config.problem_type == "multi_label_classification"
        card = self._read_card(local)
        self.name = str(card.get("name") or local.name or path)
        self.version = str(card.get("version") or (_weights_digest(local) if local.exists() else "hub"))

    @staticmethod
    def _read_card(local: Path) -> dict[str, Any]:
        card = local / "moderation.json"
        if card.exists():
            try:
                data = json.loads(card.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ModelLoadError(str(local), f"moderation.json is not valid JSON: {exc}") from exc
            return data if isinstance(data, dict) else {}
        return {}

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    def predict(self, texts: list[str]) -> list[dict[str, float]]:
        return [s.scores for s in self.score(texts)]

    def score(self, texts: list[str]) -> list[TextScore]:
        """Score texts; a text longer than max_tokens is scored sentence by sentence (max per category)."""
        pieces: list[tuple[int, int, int, list[int]]] = []  # (text idx, span start, span end, ids)
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        for i, (text, ids) in enumerate(zip(texts, encoded, strict=True)):
            if len(ids) <= self.max_tokens:
                pieces.append((i, 0, len(text), ids))
                continue
            for a, b in split_sentences(text):
                sent_ids = self.tokenizer(
                    text[a:b], truncation=True, max_length=self.max_tokens,
                    return_overflowing_tokens=True, stride=16, verbose=False,
                )["input_ids"]
                for chunk in sent_ids:
                    pieces.append((i, a, b, chunk))
        probs = self._forward([p[3] for p in pieces])
        results: list[TextScore] = []
        per_text: dict[int, list[tuple[int, int, dict[str, float]]]] = {}
        for (i, a, b, _), row in zip(pieces, probs, strict=True):
            per_text.setdefault(i, []).append((a, b, row))
        for i, text in enumerate(texts):
            rows = per_text.get(i, [])
            scores = {c: 0.0 for c in self.output_categories}
            for _, _, row in rows:
                for c, v in row.items():
                    scores[c] = max(scores[c], v)
            sentences: list[SentenceScore] = []
            if len(rows) > 1:
                merged: dict[tuple[int, int], dict[str, float]] = {}
                for a, b, row in rows:
                    cur = merged.setdefault((a, b), dict.fromkeys(row, 0.0))
                    for c, v in row.items():
                        cur[c] = max(cur[c], v)
                ranked = sorted(merged.items(), key=lambda kv: -max(kv[1].values(), default=0.0))
                sentences = [
                    SentenceScore(text[a:b], a, b, {c: round(v, 4) for c, v in sc.items()})
                    for (a, b), sc in ranked[:TOP_SENTENCES]
                ]
            results.append(TextScore(scores=scores, sentences=sentences, windows=max(1, len(rows))))
        return results

    @property
    def output_categories(self) -> list[str]:
        return sorted({c for c in self.categories if c is not None}, key=CATEGORIES.index)

    def _forward(self, batch_ids: list[list[int]]) -> list[dict[str, float]]:
        """Batched forward with dynamic padding: sort by length so each batch pads to its own longest."""
        order = sorted(range(len(batch_ids)), key=lambda k: len(batch_ids[k]))
        out: list[dict[str, float]] = [{} for _ in batch_ids]
        pad_id = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                width = max(len(batch_ids[k]) for k in idx)
                ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, k in enumerate(idx):
                    seq = batch_ids[k]
                    ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                    mask[row, : len(seq)] = 1
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                for row, k in enumerate(idx):
                    scores: dict[str, float] = {}
                    for j, category in enumerate(self.categories):
                        if category is not None:
                            # Several model labels may share a category (severe_toxic, toxic): keep the max.
                            scores[category] = max(scores.get(category, 0.0), float(probs[row, j]))
                    out[k] = scores
        return out
