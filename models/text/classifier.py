"""Owns loading a Hugging Face sequence-classification checkpoint and batched, explained text scoring."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from models.text.labels import ALL_CATEGORIES, load_label_map, resolve_labels
from models.text.windows import Windowing, split_sentences

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
    top_windows: list[SentenceScore] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:N`, or `auto` (CUDA when present). Asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(name, "device cuda requested but torch sees no CUDA device")
    return device


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
        device: str = "cpu",
    ) -> None:
        self.path = path
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.device = resolve_device(device)
        local = Path(path)
        if not local.exists() and (path.startswith((".", "/")) or local.suffix):
            raise ModelLoadError(path, "directory does not exist")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(path)
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(path, f"{type(exc).__name__}: {exc}") from exc
        self.model.eval()
        if self.device.type == "cuda":
            # bf16 on GPU: same ranking of scores (checked by bench/bench_text_gpu.py), about 2x the throughput.
            self.model.to(self.device, dtype=torch.bfloat16)
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
        # e5 encoders expect "query: " before the text; the checkpoint's card says which prefix it was trained with.
        self.windowing = Windowing.for_tokenizer(self.tokenizer, max_tokens, str(card.get("text_prefix") or ""))

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

    def score(self, texts: list[str], batch_size: int | None = None) -> list[TextScore]:
        """Score texts. A text longer than one window is cut into windows of whole sentences (≤ max_tokens,
        one sentence of overlap); its score is the max over windows, and the sentences of the worst window
        are scored on their own so the explanation quotes the offending sentences, not a whole window.
        `batch_size` overrides the forward batch for this call (bulk rescans use larger ones than live texts)."""
        size = batch_size or self.batch_size
        windows = self.windowing.windows_batch(texts) if texts else []
        flat = [w for ws in windows for w in ws]
        probs = self._forward([ids for _, _, ids in flat], size)
        results: list[TextScore] = []
        pos = 0
        explain: list[tuple[int, int, int]] = []  # (text idx, window start, window end) to explain
        for i, (text, ws) in enumerate(zip(texts, windows, strict=True)):
            rows = probs[pos:pos + len(ws)]
            pos += len(ws)
            scores = dict.fromkeys(self.output_categories, 0.0)
            for row in rows:
                for c, v in row.items():
                    scores[c] = max(scores[c], v)
            result = TextScore(scores=scores, windows=len(ws))
            if len(ws) > 1:
                ranked = sorted(zip(ws, rows, strict=True), key=lambda wr: -max(wr[1].values(), default=0.0))
                result.top_windows = [SentenceScore(text[a:b], a, b, {c: round(v, 4) for c, v in row.items()})
                                      for (a, b, _), row in ranked[:TOP_SENTENCES]]
                (a, b, _), _ = ranked[0]
                explain.append((i, a, b))
            results.append(result)
        if explain:
            self._explain(texts, results, explain, size)
        return results

    def _explain(self, texts: list[str], results: list[TextScore], todo: list[tuple[int, int, int]],
                 batch_size: int) -> None:
        """Score each sentence of each text's worst window; the top ones become `sentences`."""
        spans: list[tuple[int, int, int]] = []
        for i, a, b in todo:
            for sa, sb in split_sentences(texts[i][a:b]):
                spans.append((i, a + sa, a + sb))
        ids = self.tokenizer([texts[i][a:b] for i, a, b in spans], add_special_tokens=False, verbose=False)
        budget = self.windowing.budget
        probs = self._forward([self.windowing.wrap(x[:budget]) for x in ids["input_ids"]], batch_size)
        per_text: dict[int, list[SentenceScore]] = {}
        for (i, a, b), row in zip(spans, probs, strict=True):
            per_text.setdefault(i, []).append(SentenceScore(texts[i][a:b], a, b,
                                                            {c: round(v, 4) for c, v in row.items()}))
        for i, sentences in per_text.items():
            sentences.sort(key=lambda s: -max(s.scores.values(), default=0.0))
            results[i].sentences = sentences[:TOP_SENTENCES]

    @property
    def output_categories(self) -> list[str]:
        return sorted({c for c in self.categories if c is not None}, key=ALL_CATEGORIES.index)

    def _forward(self, batch_ids: list[list[int]], batch_size: int) -> list[dict[str, float]]:
        """Batched forward with dynamic padding: sort by length so each batch pads to its own longest."""
        order = sorted(range(len(batch_ids)), key=lambda k: len(batch_ids[k]))
        out: list[dict[str, float]] = [{} for _ in batch_ids]
        pad_id = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                width = max(len(batch_ids[k]) for k in idx)
                ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, k in enumerate(idx):
                    seq = batch_ids[k]
                    ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                    mask[row, : len(seq)] = 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                logits = logits.float().cpu()
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                for row, k in enumerate(idx):
                    scores: dict[str, float] = {}
                    for j, category in enumerate(self.categories):
                        if category is not None:
                            # Several model labels may share a category (severe_toxic, toxic): keep the max.
                            scores[category] = max(scores.get(category, 0.0), float(probs[row, j]))
                    out[k] = scores
        return out
