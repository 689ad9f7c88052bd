"""Owns our category names and the mapping from a checkpoint's labels onto them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

# Aligned with OpenAI / Detoxify / Azure taxonomies; every text model's labels map onto these.
CATEGORIES: tuple[str, ...] = (
    "toxicity",
    "insult",
    "threat",
    "hate",
    "sexual",
    "self_harm",
    "violence",
    "profanity",
)

# v2 taxonomy (close to what platforms expect: OpenAI / Azure style). A child implies its parent.
TAXONOMY: tuple[str, ...] = (
    "harassment",
    "harassment_threatening",
    "hate",
    "hate_threatening",
    "sexual",
    "sexual_minors",
    "violence",
    "violence_graphic",
    "self_harm",
    "self_harm_intent",
    "self_harm_instructions",
    "profanity",
)
PARENT: dict[str, str] = {
    "harassment_threatening": "harassment",
    "hate_threatening": "hate",
    "sexual_minors": "sexual",
    "violence_graphic": "violence",
    "self_harm_intent": "self_harm",
    "self_harm_instructions": "self_harm",
}
TOP_LEVEL: tuple[str, ...] = ("harassment", "hate", "sexual", "violence", "self_harm", "profanity")
# Every category a checkpoint may emit: v1 names first (v1 checkpoints and the tiny test model use them), then
# the v2 names they lack. The order is the order scores are reported in.
ALL_CATEGORIES: tuple[str, ...] = CATEGORIES + tuple(c for c in TAXONOMY if c not in CATEGORIES)


def with_parents(labels: list[str] | tuple[str, ...]) -> list[str]:
    """The labels plus every parent they imply, in taxonomy order."""
    out = set(labels)
    out.update(PARENT[c] for c in labels if c in PARENT)
    return [c for c in ALL_CATEGORIES if c in out]


# Common hub label spellings, so a toxic-bert / detoxify-style checkpoint works without a map file.
DEFAULT_ALIASES: dict[str, str | None] = {
    "toxic": "toxicity",
    "toxicity": "toxicity",
    "severe_toxic": "toxicity",
    "severe_toxicity": "toxicity",
    "obscene": "profanity",
    "profanity": "profanity",
    "insult": "insult",
    "threat": "threat",
    "identity_hate": "hate",
    "identity_attack": "hate",
    "hate": "hate",
    "sexual": "sexual",
    "sexual_explicit": "sexual",
    "self_harm": "self_harm",
    "self-harm": "self_harm",
    "harassment": "harassment",
    "harassment/threatening": "harassment_threatening",
    "hate/threatening": "hate_threatening",
    "sexual/minors": "sexual_minors",
    "violence/graphic": "violence_graphic",
    "self-harm/intent": "self_harm_intent",
    "self-harm/instructions": "self_harm_instructions",
    "violence": "violence",
    # Negative classes of single-label models carry no category.
    "non-toxic": None,
    "non_toxic": None,
    "neutral": None,
    "ok": None,
    "safe": None,
    "label_0": None,
}


class LabelMapError(ValueError):
    pass


def load_label_map(path: Path | None) -> dict[str, str | None]:
    """Read a JSON or YAML {model_label: category | null} file; None means the built-in aliases."""
    if path is None:
        return dict(DEFAULT_ALIASES)
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise LabelMapError(f"{path}: label map must be a mapping of model label -> category")
    out: dict[str, str | None] = {}
    for label, category in data.items():
        if category is not None and category not in ALL_CATEGORIES:
            raise LabelMapError(f"{path}: label {label!r} maps to unknown category {category!r}")
        out[str(label).lower()] = category
    return out


def resolve_labels(id2label: dict[int, str], label_map: dict[str, str | None]) -> list[str | None]:
    """Category for each output index (None = ignored). Unknown labels are an error, not silently dropped."""
    resolved: list[str | None] = []
    for idx in sorted(id2label):
        name = str(id2label[idx])
        key = name.lower()
        if key in label_map:
            resolved.append(label_map[key])
        elif key in ALL_CATEGORIES:
            resolved.append(key)
        else:
            raise LabelMapError(
                f"model label {name!r} has no category; add it to the label map file (MOD_TEXT_LABEL_MAP)"
            )
    if not any(resolved):
        raise LabelMapError("no model label maps to a moderation category")
    return resolved
