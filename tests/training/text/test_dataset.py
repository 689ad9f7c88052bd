"""Dataset builder on tiny inputs: template expansion, deterministic splits, labels, manifest-friendly rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.text.labels import CATEGORIES
from training.text import dataset

GROUPS = {
    "insult": {"labels": ["insult", "toxicity"], "templates": [f"you {{adj}} {{noun}} {i}" for i in range(5)]},
    "probe": {"contrast": "identity", "labels": [], "templates": ["I am a {identity} woman"]},
}
SLOTS = {"adj": ["dumb", "silly"], "noun": ["clown", "fool"], "identity": ["gay", "Muslim"]}


def test_fill_templates_labels_families_and_splits():
    rows = dataset.fill_templates(GROUPS, SLOTS, per_template=8, seed=1, source="t")
    insults = [r for r in rows if r.source == "t:insult"]
    assert insults and all(r.labels == ["insult", "toxicity"] and r.family == "handwritten" for r in insults)
    # Split is the template's position: template 3 is validation, 4 test, the rest train.
    assert {r.split for r in insults if r.text.endswith(" 3")} == {"val"}
    assert {r.split for r in insults if r.text.endswith(" 4")} == {"test"}
    probes = [r for r in rows if r.source == "t:probe"]
    assert probes and all(r.contrast == "identity" and r.labels == [] and r.family == "contrast" for r in probes)
    assert len({r.text for r in rows}) == len(rows)  # no duplicate fills


def test_fill_templates_is_deterministic():
    a = dataset.fill_templates(GROUPS, SLOTS, per_template=8, seed=7, source="t")
    b = dataset.fill_templates(GROUPS, SLOTS, per_template=8, seed=7, source="t")
    assert a == b


def test_unknown_category_and_missing_slot_are_errors():
    with pytest.raises(ValueError, match="unknown categories"):
        dataset.fill_templates({"g": {"labels": ["spam"], "templates": ["x"]}}, {}, 1, 0, "t")
    with pytest.raises(ValueError, match="no fillers"):
        dataset.fill_templates({"g": {"labels": [], "templates": ["{nope}"]}}, {}, 1, 0, "t")


def test_lexicon_templates_are_their_own_family():
    rows = dataset.fill_templates({"g": {"labels": ["profanity"], "templates": ["oh {lex_p}"]}},
                                  {"lex_p": ["damn"]}, 2, 0, "t")
    assert [r.family for r in rows] == ["lexicon_templates"]


def test_hash_split_is_stable_and_roughly_proportional():
    texts = [f"sentence number {i}" for i in range(3000)]
    splits = [dataset.hash_split(t) for t in texts]
    assert splits == [dataset.hash_split(t) for t in texts]
    share = splits.count("test") / len(splits)
    assert 0.12 < share < 0.18


def test_lexicon_slots_keep_strong_terms_only():
    lex = [
        {"text": "bloody", "category_1": "other / general insult", "severity_description": "Mild"},
        {"text": "dickhead", "category_1": "other / general insult", "severity_description": "Strong"},
        {"text": "xyz", "category_1": "political", "severity_description": "Severe"},
    ]
    assert dataset.lexicon_slots(lex) == {"lex_insult": ["dickhead"]}


def test_dedupe_first_wins_case_insensitive():
    a = dataset.Row("Hello there", [], "s", "reviews", "train")
    b = dataset.Row("hello there", ["insult"], "s", "rtp", "test")
    assert dataset.dedupe([a, b]) == [a]


def test_rows_roundtrip_with_unicode_line_separators(tmp_path: Path):
    rows = [dataset.Row("line\u2028sep and \x85 next", ["profanity"], "s", "rtp", "test", None)]
    digest = dataset.write_rows(rows, tmp_path / "d.jsonl")
    assert dataset.read_rows(tmp_path / "d.jsonl") == rows
    assert len(digest) == 64
    assert rows[0].vector() == [int(c == "profanity") for c in CATEGORIES]


def test_shipped_templates_are_valid():
    """Every shipped template group names real categories and has >=5 frames (so val and test get some)."""
    groups = yaml.safe_load((dataset.DATA_DIR / "templates.yaml").read_text())["groups"]
    slots = yaml.safe_load((dataset.DATA_DIR / "slots.yaml").read_text())
    slots.update({k: ["x"] for k in set(dataset.LEXICON_SLOTS.values())})
    rows = dataset.fill_templates(groups, slots, per_template=2, seed=0, source="t")
    assert {r.split for r in rows} == {"train", "val", "test"}
    assert all(len(g["templates"]) >= 5 for g in groups.values())
    contrasts = {g["contrast"] for g in groups.values() if "contrast" in g}
    assert {"identity", "quoted", "medical", "plot"} <= contrasts
