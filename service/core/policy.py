"""Owns moderation policies: per-category review/block thresholds, their per-kind and per-language sections,
tenant overrides, the one merge order that turns them into the thresholds an item is judged with, and the
decision rule.

Merge order, per category, later wins (`MERGE_ORDER`, implemented only in `merge_thresholds`):
  1. file `default_thresholds`              a category listed nowhere below
  2. file `categories`                      every kind
  3. file `kinds.<kind>.categories`         image/video scores come from other models, on other scales
  4. file `languages.<lang>.categories`     text only: the text model is calibrated per language
  5. tenant `categories`                    every kind and language
  6. tenant `kinds.<kind>.categories`       that kind only
Every tenant layer sits above every file layer: a value the tenant set explicitly always takes effect, so a
verdict whose policy id names the tenant's override was judged with it (the file's `kinds:` used to overwrite
the tenant's values while the id still named the override). Within one source the more specific section wins.

The policy id (`name@version[+tenant@tenant_version]`) is the same for every kind: it names the file version and
the tenant's override version, and the thresholds an item gets are a pure function of (id, kind, language).
An override that changes nothing for a kind still appears in that kind's verdicts: the id identifies the
tenant's whole policy, so `policy_version_not=<current id>` rescans converge for every kind and the verdict cache
(keyed by id) never mixes two policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DECISION_ORDER = {"allow": 0, "review": 1, "block": 2}

KINDS: tuple[str, ...] = ("text", "image", "video")
# Every category a model can score, per kind. The service may not import the models (import-linter), so the
# names are spelled here; tests/service/test_policies_kinds.py checks them against models.text.labels and
# models.vision.classifiers, so a new model category cannot be forgotten here.
TEXT_CATEGORIES: tuple[str, ...] = (
    "toxicity", "insult", "threat", "hate", "sexual", "self_harm", "violence", "profanity",
    "harassment", "harassment_threatening", "hate_threatening", "sexual_minors", "violence_graphic",
    "self_harm_intent", "self_harm_instructions",
)
MEDIA_CATEGORIES: tuple[str, ...] = ("sexual", "violence")
KIND_CATEGORIES: dict[str, tuple[str, ...]] = {"text": TEXT_CATEGORIES, "image": MEDIA_CATEGORIES,
                                               "video": MEDIA_CATEGORIES}
ALL_CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(c for k in KINDS for c in KIND_CATEGORIES[k]))

MERGE_ORDER: tuple[str, ...] = (
    "file default_thresholds", "file categories", "file kinds.<kind>.categories",
    "file languages.<lang>.categories (text only)", "tenant categories", "tenant kinds.<kind>.categories",
)


class PolicyError(ValueError):
    """A policy that cannot be used. `code` is the API error code; `field` the dotted path of the bad entry."""

    def __init__(self, message: str, code: str = "invalid_policy", field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Thresholds:
    review: float
    block: float

    @classmethod
    def parse(cls, data: Any, where: str) -> Thresholds:
        if not isinstance(data, dict) or "review" not in data or "block" not in data or set(data) - {"review",
                                                                                                     "block"}:
            raise PolicyError(f"{where}: expected {{review: x, block: y}}")
        values = (data["review"], data["block"])
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise PolicyError(f"{where}: review and block must be numbers")
        review, block = float(values[0]), float(values[1])
        if not (0.0 <= review <= block <= 1.0):  # also refuses NaN
            raise PolicyError(f"{where}: need 0 <= review <= block <= 1, got {review}, {block}")
        return cls(review, block)

    def to_dict(self) -> dict[str, float]:
        return {"review": self.review, "block": self.block}


Section = Mapping[str, Thresholds]


@dataclass(frozen=True)
class Layer:
    """One source's thresholds, in the shape the file, the stored override and the API share:
    `categories` (every kind), `kinds.<kind>.categories`, and (the file only) `languages.<lang>.categories`."""

    categories: Section = field(default_factory=dict)
    kinds: Mapping[str, Section] = field(default_factory=dict)
    languages: Mapping[str, Section] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"categories": _section_dict(self.categories),
                               "kinds": {k: {"categories": _section_dict(v)} for k, v in sorted(self.kinds.items())}}
        if self.languages:
            out["languages"] = {k: {"categories": _section_dict(v)} for k, v in sorted(self.languages.items())}
        return out


def _section_dict(section: Section) -> dict[str, dict[str, float]]:
    return {c: t.to_dict() for c, t in sorted(section.items())}


def merge_thresholds(base: Layer, override: Layer, kind: str | None, language: str | None) -> dict[str, Thresholds]:
    """The thresholds an item of `kind` (and, for text, `language`) is judged with: THE merge order.

    `default_thresholds` is the fallback of `Policy.thresholds` for categories missing here. With `kind=None`
    (the kind-independent view an editor shows) only the two `categories` layers apply; a language applies to
    text only.
    """
    layers: list[Section] = [base.categories]
    if kind is not None:
        layers.append(base.kinds.get(kind, {}))
        if kind == "text" and language is not None:
            layers.append(base.languages.get(language, {}))
    layers.append(override.categories)
    if kind is not None:
        layers.append(override.kinds.get(kind, {}))
    merged: dict[str, Thresholds] = {}
    for layer in layers:
        merged.update(layer)
    return merged


@dataclass(frozen=True)
class Policy:
    name: str
    version: int
    default: Thresholds
    base: Layer = field(default_factory=Layer)  # the policy file's thresholds
    blocklist_terms: tuple[str, ...] = ()
    tenant: str | None = None
    tenant_version: int | None = None
    review_blocked: bool = False  # also send automated blocks to human review
    override: Layer = field(default_factory=Layer)  # the tenant's thresholds (no per-language section)
    # What the thresholds are resolved for (`for_kind`, `for_language`); None: the kind-independent view.
    kind: str | None = None
    language: str | None = None
    # The resolved thresholds, derived from the fields above by `merge_thresholds`.
    categories: Section = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", merge_thresholds(self.base, self.override, self.kind, self.language))

    @property
    def id(self) -> str:
        """Policy version recorded on verdicts; part of the verdict cache key. The same for every kind."""
        base = f"{self.name}@{self.version}"
        return f"{base}+{self.tenant}@{self.tenant_version}" if self.tenant_version else base

    def thresholds(self, category: str) -> Thresholds:
        return self.categories.get(category, self.default)

    def for_kind(self, kind: str) -> Policy:
        """The same policy (same id) resolved for one kind (`merge_thresholds`)."""
        return replace(self, kind=kind)

    def for_language(self, language: str) -> Policy:
        """The same policy (same id) resolved for one text language; it counts only once the kind is `text`."""
        return replace(self, language=language)

    def decide(self, scores: dict[str, float], force_review: bool = False) -> tuple[str, list[str]]:
        """Decision = most severe category outcome; flagged = categories at or above `review`."""
        decision = "allow"
        flagged: list[str] = []
        for category, score in scores.items():
            t = self.thresholds(category)
            if score >= t.block:
                decision = "block"
                flagged.append(category)
            elif score >= t.review:
                flagged.append(category)
                if decision == "allow":
                    decision = "review"
        if force_review and decision == "allow":
            decision = "review"
        return decision, flagged

    def resolved(self) -> dict[str, Any]:
        """Every kind's applied thresholds for every category its models score (text: also per file language)."""
        out: dict[str, Any] = {}
        for kind in KINDS:
            policy = self.for_kind(kind)
            entry: dict[str, Any] = {"categories": {c: policy.thresholds(c).to_dict() for c in KIND_CATEGORIES[kind]}}
            if kind == "text" and self.base.languages:
                entry["languages"] = {
                    lang: {"categories": {c: policy.for_language(lang).thresholds(c).to_dict()
                                          for c in KIND_CATEGORIES[kind]}}
                    for lang in sorted(self.base.languages)}
            out[kind] = entry
        return out

    def to_dict(self) -> dict[str, Any]:
        base = self.base.to_dict()
        return {
            "id": self.id, "name": self.name, "version": self.version, "tenant": self.tenant,
            "tenant_version": self.tenant_version,
            # The kind-independent view (file categories < tenant categories): what the editor starts from.
            "categories": _section_dict(self.categories),
            "default_thresholds": self.default.to_dict(), "blocklist_terms": list(self.blocklist_terms),
            "review_blocked": self.review_blocked,
            "kinds": base["kinds"], "languages": base.get("languages", {}),
            "override": ({"version": self.tenant_version, **self.override.to_dict()}
                         if self.tenant_version else None),
            "merge_order": list(MERGE_ORDER),
            "resolved": self.resolved(),
        }


def parse_layer(data: Any, where: str, *, strict: bool = True, languages: bool = False) -> Layer:
    """`categories`, `kinds.<kind>.categories` and (if `languages`) `languages.<lang>.categories` of `data`.

    strict: kinds must be known (`unknown_kind`) and categories ones that kind's models score
    (`unknown_category`), so a typo is refused instead of silently never matching. A stored override is read
    back with strict=False: a name refused by a later release must not break an old tenant's every read.
    """
    errors = layer_errors(data, where, languages=languages) if strict else []
    if errors:
        raise errors[0]
    return _build_layer(data, where, languages)


def layer_errors(data: Any, where: str, *, languages: bool = False) -> list[PolicyError]:
    """Every problem of a thresholds section (an editor shows them all at once); [] when it is usable."""
    if not isinstance(data, dict):
        return [PolicyError(f"{where}: expected a mapping")]
    errors: list[PolicyError] = []
    errors += _section_errors(data.get("categories"), where, "categories", ALL_CATEGORIES, "any kind")
    kinds = data.get("kinds") or {}
    if not isinstance(kinds, dict):
        errors.append(PolicyError(f"{where}: kinds must be a mapping of kind -> {{categories: ...}}", field="kinds"))
        kinds = {}
    for kind, spec in kinds.items():
        path = f"kinds.{kind}"
        if kind not in KINDS:
            errors.append(PolicyError(f"{where}: unknown kind {kind!r}; kinds are {', '.join(KINDS)}",
                                      code="unknown_kind", field=path))
        elif spec is not None and (not isinstance(spec, dict) or set(spec) - {"categories"}):
            errors.append(PolicyError(f"{where}: {path} must be {{categories: ...}}", field=path))
        else:
            errors += _section_errors((spec or {}).get("categories"), where, f"{path}.categories",
                                      KIND_CATEGORIES[kind], kind)
    langs = data.get("languages") or {}
    if langs and not languages:
        errors.append(PolicyError(f"{where}: per-language thresholds are set in the policy file only",
                                  field="languages"))
    elif not isinstance(langs, dict):
        errors.append(PolicyError(f"{where}: languages must be a mapping of language -> {{categories: ...}}",
                                  field="languages"))
    else:
        for lang, spec in langs.items():
            path = f"languages.{lang}"
            if not isinstance(spec, dict) or not isinstance(spec.get("categories"), dict):
                errors.append(PolicyError(f"{where}: {path} needs a categories mapping", field=path))
            else:
                errors += _section_errors(spec["categories"], where, f"{path}.categories", TEXT_CATEGORIES, "text")
    return errors


def _section_errors(cats: Any, where: str, path: str, known: tuple[str, ...], scope: str) -> list[PolicyError]:
    if cats is None:
        return []
    if not isinstance(cats, dict):
        return [PolicyError(f"{where}: {path} must be a mapping of category -> {{review, block}}", field=path)]
    errors: list[PolicyError] = []
    for cat, spec in cats.items():
        if cat not in known:
            errors.append(PolicyError(f"{where}: unknown category {cat!r} for {scope}; known: {', '.join(known)}",
                                      code="unknown_category", field=f"{path}.{cat}"))
            continue
        try:
            Thresholds.parse(spec, f"{where}: {path}.{cat}")
        except PolicyError as exc:
            exc.field = f"{path}.{cat}"
            errors.append(exc)
    return errors


def _parse_section(cats: Any, where: str) -> dict[str, Thresholds]:
    if not isinstance(cats, dict):
        return {}
    return {str(c): Thresholds.parse(t, f"{where}: {c}") for c, t in cats.items()}


def _build_layer(data: Any, where: str, languages: bool) -> Layer:
    data = data if isinstance(data, dict) else {}
    kinds = data.get("kinds") if isinstance(data.get("kinds"), dict) else {}
    langs = data.get("languages") if languages and isinstance(data.get("languages"), dict) else {}
    return Layer(
        categories=_parse_section(data.get("categories"), where),
        kinds={str(k): _parse_section((v or {}).get("categories") if isinstance(v, dict) else None,
                                      f"{where}: kinds.{k}") for k, v in (kinds or {}).items()},
        languages={str(k): _parse_section((v or {}).get("categories") if isinstance(v, dict) else None,
                                          f"{where}: languages.{k}") for k, v in (langs or {}).items()},
    )


def parse_policy(data: Any, where: str) -> Policy:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: policy must be a mapping")
    try:
        name, version = str(data["name"]), int(data["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"{where}: policy needs `name` and integer `version`") from exc
    blocklist = data.get("blocklist") or {}
    terms = blocklist.get("terms") or [] if isinstance(blocklist, dict) else []
    return Policy(
        name=name,
        version=version,
        default=Thresholds.parse(data.get("default_thresholds", {"review": 0.5, "block": 0.9}),
                                 f"{where}: default_thresholds"),
        base=parse_layer(data, where, languages=True),
        blocklist_terms=tuple(str(t) for t in terms),
        review_blocked=bool(data.get("review_blocked", False)),
    )


_FILE_CACHE: dict[Path, tuple[float, Policy]] = {}


def load_policy_file(path: Path) -> Policy:
    """Parse the base policy, re-reading only when the file changed (workers call this per task)."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise PolicyError(f"policy file {path} unreadable: {exc}") from exc
    cached = _FILE_CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    policy = parse_policy(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    _FILE_CACHE[path] = (mtime, policy)
    return policy
